//! The rooms' scale benchmark: idle sockets' memory and run-event fan-out
//! latency, against two api replicas running as separate processes on real
//! PostgreSQL and Redis. `scripts/socket-bench.sh` starts all of that and
//! runs this; the README's "Sockets at scale" section has the figures.
//!
//! **Memory.** For each N in `--sockets`, opens N idle events sockets on the
//! first replica (one user, `--per-room` sockets per session), holds them
//! through `--hold` seconds of heartbeats, closes them, and reads the
//! replica's resident set (`VmRSS`) before, while open, and `--after`
//! seconds after they closed. Redis' command rate while they idle shows what
//! their heartbeats cost.
//!
//! **Fan-out.** Opens `--fanout` sockets in one session, half on each
//! replica, then publishes `--events` `run.output` events on the session's
//! channel as a worker does (the same channel and JSON), one every
//! `--interval-ms`. Each delivery's latency is measured from just before the
//! `PUBLISH` to the frame's arrival at the client, and compared with a plain
//! Redis subscriber of the same channel in the same process: the bare
//! pub/sub hop, measured on the same events.

#[path = "bench_user/mod.rs"]
mod bench_user;

use std::{
    collections::HashMap,
    time::{Duration, Instant},
};

use futures_util::{SinkExt, StreamExt};
use run_contract::RunEvent;
use serde_json::{Value, json};
use tokio::{sync::watch, task::JoinSet};
use tokio_tungstenite::{
    MaybeTlsStream, WebSocketStream, connect_async_with_config,
    tungstenite::{Message, protocol::WebSocketConfig},
};
use uuid::Uuid;

type Ws = WebSocketStream<MaybeTlsStream<tokio::net::TcpStream>>;
type Result<T> = std::result::Result<T, Box<dyn std::error::Error + Send + Sync>>;

/// A replica under test: its base URL and process id.
#[derive(Clone)]
struct Replica {
    url: String,
    pid: u32,
}

struct Options {
    replicas: [Replica; 2],
    redis: String,
    prefix: String,
    sockets: Vec<usize>,
    per_room: usize,
    hold: Duration,
    after: Duration,
    fanout: usize,
    events: usize,
    interval: Duration,
    connect_concurrency: usize,
}

impl Options {
    fn parse() -> Result<Options> {
        let args: Vec<String> = std::env::args().skip(1).collect();
        let mut map = HashMap::new();
        for pair in args.chunks(2) {
            let [key, value] = pair else {
                return Err(format!("`{}` needs a value", pair[0]).into());
            };
            let key = key.strip_prefix("--").ok_or("options are --name value")?;
            map.insert(key.to_owned(), value.clone());
        }
        let get = |key: &str, default: Option<&str>| -> Result<String> {
            map.get(key)
                .cloned()
                .or(default.map(str::to_owned))
                .ok_or_else(|| format!("--{key} is required").into())
        };
        let number =
            |key: &str, default: &str| -> Result<usize> { Ok(get(key, Some(default))?.parse()?) };
        let replica = |n: u8| -> Result<Replica> {
            Ok(Replica {
                url: get(&format!("api{n}"), None)?,
                pid: get(&format!("pid{n}"), None)?.parse()?,
            })
        };
        Ok(Options {
            replicas: [replica(1)?, replica(2)?],
            redis: get("redis", None)?,
            prefix: get(
                "prefix",
                Some(run_contract::config::DEFAULT_REDIS_KEY_PREFIX),
            )?,
            sockets: get("sockets", Some("1000,10000"))?
                .split(',')
                .map(str::parse)
                .collect::<std::result::Result<_, _>>()?,
            per_room: number("per-room", "2")?.max(1),
            hold: Duration::from_secs(number("hold", "25")? as u64),
            after: Duration::from_secs(number("after", "60")? as u64),
            fanout: number("fanout", "50")?,
            events: number("events", "500")?,
            interval: Duration::from_millis(number("interval-ms", "10")? as u64),
            connect_concurrency: number("connect-concurrency", "64")?,
        })
    }
}

/// The resident set of a process, in KiB (`VmRSS` in `/proc/{pid}/status`).
fn rss_kib(pid: u32) -> Result<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    let line = status
        .lines()
        .find(|l| l.starts_with("VmRSS:"))
        .ok_or("no VmRSS")?;
    Ok(line
        .split_whitespace()
        .nth(1)
        .ok_or("malformed VmRSS")?
        .parse()?)
}

fn mib(kib: u64) -> f64 {
    kib as f64 / 1024.0
}

async fn create_sessions(
    http: &reqwest::Client,
    api: &str,
    token: &str,
    count: usize,
) -> Result<Vec<Uuid>> {
    let mut created = Vec::with_capacity(count);
    let mut pending = JoinSet::new();
    for n in 0..count {
        let (http, url, token) = (
            http.clone(),
            format!("{api}/api/sessions"),
            token.to_owned(),
        );
        pending.spawn(async move {
            let body: Value = http
                .post(url)
                .bearer_auth(token)
                .json(
                    &json!({"title": format!("bench {n}"), "language": "python", "inviteeIds": []}),
                )
                .send()
                .await?
                .error_for_status()?
                .json()
                .await?;
            let id: Uuid = body["session"]["id"]
                .as_str()
                .ok_or("no session id")?
                .parse()?;
            Ok::<_, Box<dyn std::error::Error + Send + Sync>>(id)
        });
        if pending.len() >= 16 {
            created.push(pending.join_next().await.ok_or("join")???);
        }
    }
    while let Some(id) = pending.join_next().await {
        created.push(id??);
    }
    Ok(created)
}

/// Opens an events socket with a small client-side read buffer (the client
/// holds as many sockets as the server) and waits for its snapshot.
async fn open(api: &str, token: &str, session: Uuid) -> Result<Ws> {
    let url = format!(
        "{}/api/sessions/{session}/events?token={token}",
        api.replace("http", "ws")
    );
    let config = WebSocketConfig::default().read_buffer_size(4096);
    let (mut ws, _) = connect_async_with_config(url, Some(config), true).await?;
    match tokio::time::timeout(Duration::from_secs(30), ws.next()).await {
        Ok(Some(Ok(Message::Text(_)))) => Ok(ws),
        other => Err(format!("no snapshot: {other:?}").into()),
    }
}

/// Opens `targets` (replica, session) sockets, `concurrency` at a time, and
/// hands each one to `serve`.
async fn open_all<F, Fut, T>(
    token: &str,
    targets: Vec<(String, Uuid)>,
    concurrency: usize,
    serve: F,
) -> Result<JoinSet<T>>
where
    F: Fn(usize, Ws) -> Fut,
    Fut: Future<Output = T> + Send + 'static,
    T: Send + 'static,
{
    let mut sockets = JoinSet::new();
    let mut opening = JoinSet::new();
    let mut index = 0;
    for (api, session) in targets {
        let token = token.to_owned();
        opening.spawn(async move { open(&api, &token, session).await });
        if opening.len() >= concurrency {
            let ws = opening.join_next().await.ok_or("join")???;
            sockets.spawn(serve(index, ws));
            index += 1;
        }
    }
    while let Some(ws) = opening.join_next().await {
        sockets.spawn(serve(index, ws??));
        index += 1;
    }
    Ok(sockets)
}

/// An idle client: answers pings (tungstenite does, while reading) until
/// told to close. Returns whether the server kept it open the whole time.
async fn idle(mut ws: Ws, mut stop: watch::Receiver<bool>) -> bool {
    loop {
        tokio::select! {
            frame = ws.next() => match frame {
                Some(Ok(Message::Close(_)) | Err(_)) | None => return false,
                Some(Ok(_)) => {}
            },
            _ = stop.changed() => {
                let _ = ws.send(Message::Close(None)).await;
                let _ = tokio::time::timeout(Duration::from_secs(5), async {
                    while let Some(Ok(_)) = ws.next().await {}
                })
                .await;
                return true;
            }
        }
    }
}

async fn redis_commands(redis: &mut redis::aio::MultiplexedConnection) -> Result<u64> {
    let info: String = redis::cmd("INFO").arg("stats").query_async(redis).await?;
    Ok(info
        .lines()
        .find_map(|l| l.strip_prefix("total_commands_processed:"))
        .ok_or("no total_commands_processed")?
        .trim()
        .parse()?)
}

async fn memory(options: &Options, http: &reqwest::Client, token: &str, n: usize) -> Result<()> {
    let api = &options.replicas[0];
    let rooms = n.div_ceil(options.per_room);
    let sessions = create_sessions(http, &api.url, token, rooms).await?;
    let mut redis = redis::Client::open(options.redis.as_str())?
        .get_multiplexed_async_connection()
        .await?;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let before = rss_kib(api.pid)?;
    let other_before = rss_kib(options.replicas[1].pid)?;

    let started = Instant::now();
    let targets = (0..n)
        .map(|i| (api.url.clone(), sessions[i / options.per_room]))
        .collect();
    let (stop, stopped) = watch::channel(false);
    let mut sockets = open_all(token, targets, options.connect_concurrency, |_, ws| {
        idle(ws, stopped.clone())
    })
    .await?;
    let opened_in = started.elapsed();

    // Held through at least two heartbeats and presence refreshes.
    let commands_from = redis_commands(&mut redis).await?;
    let held_from = Instant::now();
    let mut with = rss_kib(api.pid)?;
    while held_from.elapsed() < options.hold {
        tokio::time::sleep(Duration::from_secs(1)).await;
        with = with.max(rss_kib(api.pid)?);
    }
    let commands_per_second = (redis_commands(&mut redis).await? - commands_from) as f64
        / held_from.elapsed().as_secs_f64();

    let _ = stop.send(true);
    let mut kept = 0;
    while let Some(open_throughout) = sockets.join_next().await {
        kept += usize::from(open_throughout?);
    }
    let closed_at = Instant::now();
    tokio::time::sleep(Duration::from_secs(5)).await;
    let soon_after = rss_kib(api.pid)?;
    tokio::time::sleep(options.after.saturating_sub(closed_at.elapsed())).await;
    let after = rss_kib(api.pid)?;
    let other_after = rss_kib(options.replicas[1].pid)?;

    let per_socket = (with.saturating_sub(before)) as f64 / n as f64;
    println!(
        "sockets={n} rooms={rooms} opened_in={:.1}s kept_open={kept}/{n} \
         rss_before={:.1}MiB rss_with={:.1}MiB per_socket={per_socket:.1}KiB \
         rss_5s_after={:.1}MiB rss_{}s_after={:.1}MiB after_vs_before={:+.0}% \
         redis_cmds_per_s_idle={commands_per_second:.0} other_replica={:.1}->{:.1}MiB",
        opened_in.as_secs_f64(),
        mib(before),
        mib(with),
        mib(soon_after),
        options.after.as_secs(),
        mib(after),
        (after as f64 / before as f64 - 1.0) * 100.0,
        mib(other_before),
        mib(other_after),
    );
    Ok(())
}

/// Arrival times of `run.output` events by `seq`, read off the raw text
/// (no JSON parse on the clock).
fn seq_of(text: &str) -> Option<usize> {
    let rest = &text[text.find("\"seq\":")? + 6..];
    let end = rest
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(rest.len());
    rest[..end].parse().ok()
}

async fn receive(
    mut ws: Ws,
    events: usize,
    mut stop: watch::Receiver<bool>,
) -> Vec<Option<Instant>> {
    let mut arrived = vec![None; events];
    loop {
        tokio::select! {
            frame = ws.next() => match frame {
                Some(Ok(Message::Text(text))) => {
                    let now = Instant::now();
                    if let Some(seq) = seq_of(&text).filter(|s| *s < events) {
                        arrived[seq] = Some(now);
                    }
                }
                Some(Ok(_)) => {}
                _ => return arrived,
            },
            _ = stop.changed() => {
                let _ = ws.close(None).await;
                return arrived;
            }
        }
    }
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

async fn fanout(options: &Options, http: &reqwest::Client, token: &str) -> Result<()> {
    let session = create_sessions(http, &options.replicas[0].url, token, 1).await?[0];
    let events = options.events;
    let targets = (0..options.fanout)
        .map(|i| (options.replicas[i % 2].url.clone(), session))
        .collect();
    let (stop, stopped) = watch::channel(false);
    let mut sockets = open_all(token, targets, options.connect_concurrency, |_, ws| {
        receive(ws, events, stopped.clone())
    })
    .await?;

    let client = redis::Client::open(options.redis.as_str())?;
    let channel = run_contract::session_channel(&options.prefix, session);
    let mut pubsub = client.get_async_pubsub().await?;
    pubsub.subscribe(&channel).await?;
    let mut bare_stop = stopped.clone();
    let bare = tokio::spawn(async move {
        let mut arrived = vec![None; events];
        let mut messages = pubsub.on_message();
        loop {
            tokio::select! {
                message = messages.next() => {
                    let Some(message) = message else { break };
                    let now = Instant::now();
                    let payload: String = message.get_payload().unwrap_or_default();
                    if let Some(seq) = seq_of(&payload).filter(|s| *s < events) {
                        arrived[seq] = Some(now);
                    }
                }
                _ = bare_stop.changed() => break,
            }
        }
        arrived
    });
    tokio::time::sleep(Duration::from_secs(1)).await;

    let mut publisher = client.get_multiplexed_async_connection().await?;
    let run_id = Uuid::new_v4();
    let mut sent = Vec::with_capacity(events);
    let mut tick = tokio::time::interval(options.interval);
    for seq in 0..events {
        tick.tick().await;
        let event = RunEvent::Output {
            run_id,
            test: 0,
            stream: "stdout".into(),
            data: format!("line {seq}: the quick brown fox jumps over the lazy dog\n"),
            seq: seq as u64,
        };
        let payload = serde_json::to_string(&event)?;
        sent.push(Instant::now());
        let _: i64 = redis::cmd("PUBLISH")
            .arg(&channel)
            .arg(payload)
            .query_async(&mut publisher)
            .await?;
    }
    tokio::time::sleep(Duration::from_secs(1)).await;
    let _ = stop.send(true);

    let latency = |arrived: &[Option<Instant>]| -> (Vec<f64>, bool) {
        let mut in_order = true;
        let mut last = None;
        let mut out = Vec::new();
        for (seq, at) in arrived.iter().enumerate() {
            match at {
                Some(at) => {
                    if last.is_some_and(|last| *at < last) {
                        in_order = false;
                    }
                    last = Some(*at);
                    out.push(at.duration_since(sent[seq]).as_secs_f64() * 1000.0);
                }
                None => in_order = false,
            }
        }
        (out, in_order)
    };
    let mut deliveries = Vec::new();
    let mut complete = 0;
    while let Some(arrived) = sockets.join_next().await {
        let (latencies, whole) = latency(&arrived?);
        complete += usize::from(whole && latencies.len() == events);
        deliveries.extend(latencies);
    }
    let (mut baseline, _) = latency(&bare.await?);
    deliveries.sort_by(f64::total_cmp);
    baseline.sort_by(f64::total_cmp);
    let (p50, p99) = (percentile(&deliveries, 50.0), percentile(&deliveries, 99.0));
    let (b50, b99) = (percentile(&baseline, 50.0), percentile(&baseline, 99.0));
    println!(
        "fanout sockets={} events={events} complete_in_order={complete}/{} \
         socket_p50={p50:.2}ms socket_p99={p99:.2}ms bare_p50={b50:.2}ms bare_p99={b99:.2}ms \
         p99_ratio={:.2} p50_ratio={:.2}",
        options.fanout,
        options.fanout,
        p99 / b99,
        p50 / b50,
    );
    Ok(())
}

#[tokio::main]
async fn main() -> Result<()> {
    let options = Options::parse()?;
    let http = reqwest::Client::new();
    // A user of the first replica.
    let token = bench_user::sign_up(&http, &options.replicas[0].url).await?;
    println!(
        "idle rss: replica1={:.1}MiB replica2={:.1}MiB",
        mib(rss_kib(options.replicas[0].pid)?),
        mib(rss_kib(options.replicas[1].pid)?)
    );
    for &n in &options.sockets {
        memory(&options, &http, &token, n).await?;
    }
    if options.fanout > 0 {
        fanout(&options, &http, &token).await?;
    }
    Ok(())
}
