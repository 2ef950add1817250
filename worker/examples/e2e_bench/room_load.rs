//! The room load: live interview sessions of two members each, both on the
//! session's events socket, each member posting a short program every few
//! seconds (as people practising do), through the real api and worker.
//!
//! For every run it records when the author's `POST /api/runs` left and when
//! the *other* member's socket got `run.finished` — the figure an interviewer
//! watching a candidate's run sees — and it checks that both members got
//! every run complete and in order: `run.output` chunks numbered from 0
//! without a gap, then `run.finished` carrying the same output. The socket
//! side's share is split out: from the run's `finishedAt` (the result's
//! commit, on this machine's clock) to the other member's socket.

use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
    time::{Duration, Instant, SystemTime},
};

use chrono::{DateTime, Utc};

use futures_util::StreamExt as _;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use tokio_tungstenite::tungstenite::Message;
use uuid::Uuid;

/// Three lines, as the measurement that opened the work used.
const PROGRAM: &str = "import sys\nfor i in range(3):\n    print(i)\n";
const EXPECTED_STDOUT: &str = "0\n1\n2\n";
const PASSWORD: &str = "BenchPass-123456";

pub struct Load {
    pub sessions: usize,
    /// Each member posts a run this often.
    pub period: Duration,
    /// How long members keep posting.
    pub duration: Duration,
}

/// What one load measured.
pub struct Outcome {
    /// POST → the other member's `run.finished`, sorted.
    pub latencies: Vec<Duration>,
    /// The result's write (`finishedAt`) → the other member's `run.finished`, sorted.
    pub deliveries: Vec<Duration>,
    pub posted: usize,
    /// Runs both members saw complete and in order.
    pub complete: usize,
    pub elapsed: Duration,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct NewSessionRun<'a> {
    language: &'a str,
    source: &'a str,
    session_id: Uuid,
}

#[derive(Deserialize)]
struct Created {
    id: Uuid,
}

struct Member {
    token: String,
    id: Uuid,
}

/// What one member's socket saw of one run.
#[derive(Default)]
struct Seen {
    next_seq: u64,
    output: String,
    in_order: bool,
    finished: Option<Instant>,
    /// When `run.finished` arrived by the wall clock, and the commit time it carried.
    delivered: Option<(SystemTime, DateTime<Utc>)>,
}

type Sightings = Arc<Mutex<HashMap<Uuid, Seen>>>;

/// A posted run: its id, its room's index, its author's index in the room,
/// when the POST left.
type Post = (Uuid, usize, usize, Instant);

pub async fn run(http: &reqwest::Client, base: &str, load: &Load) -> anyhow::Result<Outcome> {
    let ws_base = base.replacen("http", "ws", 1);
    // Sessions with two members each, both sockets open and past their snapshot.
    let mut rooms = Vec::new();
    for _ in 0..load.sessions {
        let (a, b) = (member(http, base).await?, member(http, base).await?);
        let session = live_session(http, base, &a, &b).await?;
        let mut sockets = Vec::new();
        for m in [&a, &b] {
            let url = format!("{ws_base}/api/sessions/{session}/events?token={}", m.token);
            let (mut socket, _) = tokio_tungstenite::connect_async(url.as_str()).await?;
            // Wait for the snapshot: the socket is in the room from then on.
            loop {
                match socket.next().await {
                    Some(Ok(Message::Text(t))) if t.contains("\"presence.snapshot\"") => break,
                    Some(Ok(_)) => {}
                    other => anyhow::bail!("events socket ended before its snapshot: {other:?}"),
                }
            }
            let seen: Sightings = Arc::default();
            let reader = tokio::spawn(read(socket, Arc::clone(&seen)));
            sockets.push((seen, reader));
        }
        rooms.push((session, [a, b], sockets));
    }

    // Every member posts every `period`, members spread evenly over it.
    let members = load.sessions * 2;
    let posts: Arc<Mutex<Vec<Post>>> = Arc::default();
    let started = Instant::now();
    let mut posters = Vec::new();
    for (r, (session, pair, _)) in rooms.iter().enumerate() {
        for (i, m) in pair.iter().enumerate() {
            let offset = load.period.mul_f64((r * 2 + i) as f64 / members as f64);
            let (http, base, token, session, posts) = (
                http.clone(),
                base.to_owned(),
                m.token.clone(),
                *session,
                Arc::clone(&posts),
            );
            let (period, until) = (load.period, started + load.duration);
            posters.push(tokio::spawn(async move {
                tokio::time::sleep(offset).await;
                let mut tick = tokio::time::interval(period);
                loop {
                    tick.tick().await;
                    if Instant::now() >= until {
                        return anyhow::Ok(());
                    }
                    let sent = Instant::now();
                    let response = http
                        .post(format!("{base}/api/runs"))
                        .bearer_auth(&token)
                        .json(&NewSessionRun {
                            language: "python",
                            source: PROGRAM,
                            session_id: session,
                        })
                        .send()
                        .await?;
                    anyhow::ensure!(
                        response.status().as_u16() == 202,
                        "POST /api/runs: {}",
                        response.status()
                    );
                    let created: Created = response.json().await?;
                    posts.lock().expect("posts").push((created.id, r, i, sent));
                }
            }));
        }
    }
    for poster in posters {
        poster.await??;
    }

    // Every posted run reaches both members (or the wait gives up).
    let posts = std::mem::take(&mut *posts.lock().expect("posts"));
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let missing = posts.iter().any(|(id, r, _, _)| {
            rooms[*r].2.iter().any(|(seen, _)| {
                seen.lock()
                    .expect("seen")
                    .get(id)
                    .is_none_or(|s| s.finished.is_none())
            })
        });
        if !missing || Instant::now() > deadline {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let elapsed = started.elapsed();

    let (mut latencies, mut deliveries, mut complete) = (Vec::new(), Vec::new(), 0);
    for (id, r, author, sent) in &posts {
        let sockets = &rooms[*r].2;
        let whole = sockets.iter().all(|(seen, _)| {
            seen.lock()
                .expect("seen")
                .get(id)
                .is_some_and(|s| s.finished.is_some() && s.in_order && s.output == EXPECTED_STDOUT)
        });
        if whole {
            complete += 1;
        }
        let other = sockets[1 - author].0.lock().expect("seen");
        if let Some(s) = other.get(id) {
            if let Some(at) = s.finished {
                latencies.push(at.duration_since(*sent));
            }
            if let Some((wall, committed)) = s.delivered {
                let committed = SystemTime::from(committed);
                deliveries.push(wall.duration_since(committed).unwrap_or_default());
            }
        }
    }
    for (_, _, sockets) in rooms {
        for (_, reader) in sockets {
            reader.abort();
        }
    }
    latencies.sort();
    deliveries.sort();
    anyhow::ensure!(
        !latencies.is_empty(),
        "no run reached the other member ({} posted)",
        posts.len()
    );
    Ok(Outcome {
        latencies,
        deliveries,
        posted: posts.len(),
        complete,
        elapsed,
    })
}

/// Records a member's run events as they arrive.
async fn read<S>(mut socket: S, seen: Sightings)
where
    S: futures_util::Stream<Item = Result<Message, tokio_tungstenite::tungstenite::Error>> + Unpin,
{
    while let Some(Ok(frame)) = socket.next().await {
        let Message::Text(text) = frame else { continue };
        let (at, wall) = (Instant::now(), SystemTime::now());
        let Ok(event) = serde_json::from_str::<Value>(&text) else {
            continue;
        };
        let run_id = |v: &Value| v.as_str().and_then(|s| s.parse::<Uuid>().ok());
        let mut seen = seen.lock().expect("seen");
        match event["type"].as_str() {
            Some("run.output") => {
                let Some(id) = run_id(&event["runId"]) else {
                    continue;
                };
                let s = seen.entry(id).or_insert_with(|| Seen {
                    in_order: true,
                    ..Seen::default()
                });
                if event["seq"].as_u64() != Some(s.next_seq) || s.finished.is_some() {
                    s.in_order = false;
                }
                s.next_seq += 1;
                s.output
                    .push_str(event["data"].as_str().unwrap_or_default());
            }
            Some("run.finished") => {
                let Some(id) = run_id(&event["run"]["id"]) else {
                    continue;
                };
                let s = seen.entry(id).or_insert_with(|| Seen {
                    in_order: true,
                    ..Seen::default()
                });
                // The result carries the same output the chunks did.
                if event["run"]["stdout"].as_str() != Some(s.output.as_str()) {
                    s.in_order = false;
                }
                s.finished = Some(at);
                s.delivered = event["run"]["finishedAt"]
                    .as_str()
                    .and_then(|t| t.parse::<DateTime<Utc>>().ok())
                    .map(|committed| (wall, committed));
            }
            _ => {}
        }
    }
}

/// A registered, logged-in user.
async fn member(http: &reqwest::Client, base: &str) -> anyhow::Result<Member> {
    let email = format!("room-{}@bench.codecall.dev", Uuid::new_v4().simple());
    let registered: Value = expect(
        http.post(format!("{base}/auth/register"))
            .json(&serde_json::json!({
                "name": "Bench", "email": email, "password": PASSWORD
            })),
        201,
    )
    .await?;
    let id = registered["user"]["id"]
        .as_str()
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| anyhow::anyhow!("register answered no user id"))?;
    let login: Value = expect(
        http.post(format!("{base}/auth/login"))
            .json(&serde_json::json!({"email": email, "password": PASSWORD})),
        200,
    )
    .await?;
    let token = login["accessToken"]
        .as_str()
        .ok_or_else(|| anyhow::anyhow!("login answered no token"))?
        .to_owned();
    Ok(Member { token, id })
}

/// `a` and `b` become friends; `a` hosts a session `b` joins, and starts it.
async fn live_session(
    http: &reqwest::Client,
    base: &str,
    a: &Member,
    b: &Member,
) -> anyhow::Result<Uuid> {
    let request: Value = expect(
        http.post(format!("{base}/api/friends/requests"))
            .bearer_auth(&a.token)
            .json(&serde_json::json!({"userId": b.id})),
        201,
    )
    .await?;
    let request = request["request"]["id"].as_str().unwrap_or_default();
    expect::<Value>(
        http.post(format!("{base}/api/friends/requests/{request}/accept"))
            .bearer_auth(&b.token),
        200,
    )
    .await?;
    let session: Value = expect(
        http.post(format!("{base}/api/sessions"))
            .bearer_auth(&a.token)
            .json(&serde_json::json!({
                "title": "Room load", "language": "python", "inviteeIds": [b.id]
            })),
        201,
    )
    .await?;
    let id: Uuid = session["session"]["id"]
        .as_str()
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| anyhow::anyhow!("no session id"))?;
    // `b` accepts the invitation, then `a` starts the session.
    let invites: Value = expect(
        http.get(format!("{base}/api/invites"))
            .bearer_auth(&b.token),
        200,
    )
    .await?;
    let invite = invites["invites"]
        .as_array()
        .and_then(|all| all.iter().find(|i| i["sessionId"] == id.to_string()))
        .and_then(|i| i["id"].as_str())
        .ok_or_else(|| anyhow::anyhow!("no invite for the session"))?
        .to_owned();
    expect::<Value>(
        http.post(format!("{base}/api/invites/{invite}/accept"))
            .bearer_auth(&b.token),
        200,
    )
    .await?;
    expect::<Value>(
        http.post(format!("{base}/api/sessions/{id}/start"))
            .bearer_auth(&a.token),
        200,
    )
    .await?;
    Ok(id)
}

async fn expect<T: serde::de::DeserializeOwned>(
    request: reqwest::RequestBuilder,
    status: u16,
) -> anyhow::Result<T> {
    let response = request.send().await?;
    let got = response.status().as_u16();
    anyhow::ensure!(
        got == status,
        "{got} instead of {status}: {}",
        response.text().await?
    );
    Ok(response.json().await?)
}
