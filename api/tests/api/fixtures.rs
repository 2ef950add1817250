//! Fixtures the feature tests share: signed-in users, friendships and
//! sessions, runs, and `codecall-worker` processes serving a test app's queue.
//! They drive the public API the way a client does, so a fixture breaks when
//! the flow it stands for does.

use std::{process::Stdio, time::Duration};

use reqwest::Method;
use serde_json::{Value, json};
use uuid::Uuid;

use crate::{
    eventually::eventually,
    helpers::{TestApp, free_port, json_body},
};

// Accounts.

pub async fn register(app: &TestApp, name: &str, email: &str, password: &str) -> reqwest::Response {
    app.post_json(
        "/auth/register",
        &json!({ "name": name, "email": email, "password": password }),
    )
    .await
}

/// Logs in and returns (access, refresh).
pub async fn login(app: &TestApp, email: &str, password: &str) -> (String, String) {
    let response = app
        .post_json(
            "/auth/login",
            &json!({ "email": email, "password": password }),
        )
        .await;
    assert_eq!(response.status().as_u16(), 200, "login of {email}");
    let body = json_body(response).await;
    (
        body["accessToken"]
            .as_str()
            .expect("accessToken")
            .to_owned(),
        body["refreshToken"]
            .as_str()
            .expect("refreshToken")
            .to_owned(),
    )
}

/// Registers a fresh user and logs in: (user id, access, refresh).
pub async fn signed_up_user(app: &TestApp, email: &str) -> (Uuid, String, String) {
    let response = register(app, "Someone", email, "StrongPass123").await;
    assert_eq!(response.status().as_u16(), 201);
    let id = json_body(response).await["user"]["id"]
        .as_str()
        .and_then(|s| s.parse().ok())
        .expect("user id");
    let (access, refresh) = login(app, email, "StrongPass123").await;
    (id, access, refresh)
}

/// A signed-in test user.
#[derive(Clone)]
pub struct User {
    pub id: Uuid,
    pub email: String,
    pub token: String,
}

pub async fn user(app: &TestApp) -> User {
    let email = format!(
        "u{}@codecall.dev",
        &Uuid::new_v4().simple().to_string()[..12]
    );
    let (id, token, _) = signed_up_user(app, &email).await;
    User { id, email, token }
}

/// Sends a request as `who` (None: without a token). The request is built
/// before the future is returned, so the future borrows nothing.
pub fn call(
    app: &TestApp,
    who: Option<&User>,
    method: Method,
    path: &str,
    body: Option<Value>,
) -> impl Future<Output = reqwest::Response> + use<> {
    let mut request = app.client.request(method, app.url(path));
    if let Some(u) = who {
        request = request.bearer_auth(&u.token);
    }
    if let Some(b) = body {
        request = request.json(&b);
    }
    let sent = request.send();
    async move { sent.await.expect("request sent") }
}

/// [`call`] as a user, one function per method: `get(app, who, path)`,
/// `post_json(app, who, path, body)`. Like `call`, each builds its request
/// at once and answers a future that borrows nothing.
macro_rules! calls_as_a_user {
    ($($name:ident: $method:ident;)+) => {$(
        #[doc = concat!("`", stringify!($method), " path` as `who`.")]
        pub fn $name(app: &TestApp, who: &User, path: &str)
            -> impl Future<Output = reqwest::Response> + use<> {
            call(app, Some(who), Method::$method, path, None)
        }
    )+};
    ($($name:ident: $method:ident with a body;)+) => {$(
        #[doc = concat!("`", stringify!($method), " path` with a JSON `body` as `who`.")]
        pub fn $name(app: &TestApp, who: &User, path: &str, body: Value)
            -> impl Future<Output = reqwest::Response> + use<> {
            call(app, Some(who), Method::$method, path, Some(body))
        }
    )+};
}

calls_as_a_user! {
    get: GET;
    post: POST;
    delete: DELETE;
}

calls_as_a_user! {
    post_json: POST with a body;
    put_json: PUT with a body;
    patch_json: PATCH with a body;
}

/// `GET path` as `who`, expecting 200: the JSON body.
pub async fn get_ok(app: &TestApp, who: &User, path: &str) -> Value {
    ok(get(app, who, path).await, 200).await
}

/// Asserts the status (showing the body otherwise) and returns the JSON body.
pub async fn ok(response: reqwest::Response, status: u16) -> Value {
    let actual = response.status().as_u16();
    let body = json_body(response).await;
    assert_eq!(actual, status, "{body}");
    body
}

/// `from` asks `to` to be friends; the request's id.
pub async fn friend_request(app: &TestApp, from: &User, to: &User) -> String {
    let sent = call(
        app,
        Some(from),
        Method::POST,
        "/api/friends/requests",
        Some(json!({"userId": to.id})),
    )
    .await;
    ok(sent, 201).await["request"]["id"]
        .as_str()
        .expect("id")
        .to_owned()
}

pub async fn befriend(app: &TestApp, a: &User, b: &User) {
    let id = friend_request(app, a, b).await;
    let accepted = call(
        app,
        Some(b),
        Method::POST,
        &format!("/api/friends/requests/{id}/accept"),
        None,
    )
    .await;
    ok(accepted, 200).await;
}

/// Creates a session hosted by `host` inviting `invitees`; returns its id.
pub async fn create_session(app: &TestApp, host: &User, invitees: &[&User]) -> Uuid {
    let ids: Vec<Uuid> = invitees.iter().map(|u| u.id).collect();
    let body = json!({"title": "Two Sum practice", "language": "python", "inviteeIds": ids});
    let created = call(app, Some(host), Method::POST, "/api/sessions", Some(body)).await;
    ok(created, 201).await["session"]["id"]
        .as_str()
        .and_then(|s| s.parse().ok())
        .expect("session id")
}

/// Starts `session` (`scheduled` → `live`) as its host; answers the session.
pub async fn start_session(app: &TestApp, host: &User, session: Uuid) -> Value {
    let started = call(
        app,
        Some(host),
        Method::POST,
        &format!("/api/sessions/{session}/start"),
        None,
    )
    .await;
    ok(started, 200).await["session"].clone()
}

/// As `host`, gives `who` the `role` in `session`; expects 200 and
/// answers the body (the session as it is now).
pub async fn set_role(app: &TestApp, host: &User, session: Uuid, who: &User, role: &str) -> Value {
    let path = format!("/api/sessions/{session}/roles");
    let body = json!({"userId": who.id, "role": role});
    ok(post_json(app, host, &path, body).await, 200).await
}

/// The id of `who`'s pending invite to `session`.
pub async fn invite_id(app: &TestApp, who: &User, session: Uuid) -> String {
    let invites = ok(
        call(app, Some(who), Method::GET, "/api/invites", None).await,
        200,
    )
    .await;
    invites["invites"]
        .as_array()
        .expect("invites")
        .iter()
        .find(|i| i["sessionId"] == session.to_string())
        .and_then(|i| i["id"].as_str())
        .expect("a pending invite")
        .to_owned()
}

/// Accepts `who`'s invite to `session`.
pub async fn join(app: &TestApp, who: &User, session: Uuid) {
    let id = invite_id(app, who, session).await;
    ok(
        call(
            app,
            Some(who),
            Method::POST,
            &format!("/api/invites/{id}/accept"),
            None,
        )
        .await,
        200,
    )
    .await;
}

/// A session hosted by `host` that each of `members` (the host's friends)
/// was invited to and joined.
pub async fn joined_session(app: &TestApp, host: &User, members: &[&User]) -> Uuid {
    let session = create_session(app, host, members).await;
    for member in members {
        join(app, member, session).await;
    }
    session
}

/// A host and a guest in a session (the guest joined), on `app`.
pub async fn pair(app: &TestApp) -> (User, User, Uuid) {
    let host = user(app).await;
    let guest = user(app).await;
    befriend(app, &host, &guest).await;
    let session = joined_session(app, &host, &[&guest]).await;
    (host, guest, session)
}

/// [`pair`], with the session started (live).
pub async fn live_pair(app: &TestApp) -> (User, User, Uuid) {
    let (host, guest, session) = pair(app).await;
    start_session(app, &host, session).await;
    (host, guest, session)
}

pub async fn session_code(app: &TestApp, who: &User, session: Uuid) -> String {
    let body = json_body(
        call(
            app,
            Some(who),
            Method::GET,
            &format!("/api/sessions/{session}"),
            None,
        )
        .await,
    )
    .await;
    body["session"]["code"]
        .as_str()
        .unwrap_or_else(|| panic!("no code in {body}"))
        .to_owned()
}

// Runs and workers.

pub(crate) use crate::docker::require_docker;

/// A `codecall-worker` process serving `app`'s queue.
///
/// Its log (warnings, and the worker's own info lines: claims, finishes)
/// goes to a file that is printed when the test fails and deleted either way,
/// so a failure that involves the worker says what the worker saw.
pub struct Worker {
    child: tokio::process::Child,
    log: std::path::PathBuf,
}

impl Worker {
    pub async fn start(app: &TestApp, extra: &[(&str, &str)]) -> Worker {
        // The worker binary sits next to this test binary's directory.
        let exe = std::env::current_exe().expect("test binary path");
        let dir = exe.parent().and_then(|d| d.parent()).expect("target dir");
        let binary = dir.join("codecall-worker");
        assert!(
            binary.exists(),
            "{binary:?} missing: run `cargo test --workspace`"
        );
        let log = std::env::temp_dir().join(format!("codecall-worker-{}.log", Uuid::new_v4()));
        let log_file = std::fs::File::create(&log).expect("worker log file");
        let mut command = tokio::process::Command::new(binary);
        command
            .env_clear()
            .env("DATABASE_URL", &app.db_url)
            .env("REDIS_URL", &app.redis_url)
            .env("REDIS_KEY_PREFIX", &app.redis_prefix)
            .env("WORKER_HEARTBEAT", "1s")
            .env("WORKER_MISSED_HEARTBEATS", "2")
            // Short enough that a killed worker's run is taken over within
            // seconds, long enough for a saturated machine to renew it.
            .env("RUN_LEASE", "6s")
            .env("SANDBOX_POOL_SIZE", "0")
            .env("METRICS_PORT", free_port().to_string())
            .env("RUST_LOG", "warn,codecall_worker=info")
            .stdout(Stdio::null())
            .stderr(log_file)
            .kill_on_drop(true);
        for (k, v) in extra {
            command.env(k, v);
        }
        let child = command.spawn().expect("worker starts");
        let worker = Worker { child, log };
        eventually(
            Duration::from_secs(10),
            "the worker to announce its languages",
            || async {
                let languages = json_body(app.get("/api/languages").await).await;
                let announced = languages["languages"]
                    .as_array()
                    .is_some_and(|l| !l.is_empty());
                if announced { Ok(()) } else { Err(languages) }
            },
        )
        .await;
        worker
    }

    pub fn kill(&mut self) {
        let _ = self.child.start_kill();
    }

    /// SIGKILL, then waits until the process is gone.
    pub async fn kill_and_wait(&mut self) {
        self.kill();
        let _ = self.child.wait().await;
    }
}

impl Drop for Worker {
    /// Stops the worker the way operators do (SIGTERM), so it removes its
    /// containers before exiting; SIGKILL only if it does not stop in time.
    fn drop(&mut self) {
        if let Some(pid) = self.child.id() {
            let _ = std::process::Command::new("kill")
                .args(["-TERM", &pid.to_string()])
                .status();
            let stopped = (0..200).any(|_| {
                let exited = self.child.try_wait().ok().flatten().is_some();
                if !exited {
                    std::thread::sleep(Duration::from_millis(50));
                }
                exited
            });
            if !stopped {
                let _ = self.child.start_kill();
            }
        }
        if std::thread::panicking() {
            let log = std::fs::read_to_string(&self.log).unwrap_or_default();
            let lines: Vec<&str> = log.lines().collect();
            let tail = &lines[lines.len().saturating_sub(80)..];
            eprintln!("--- worker log (last {} lines) ---", tail.len());
            for line in tail {
                eprintln!("{line}");
            }
        }
        let _ = std::fs::remove_file(&self.log);
    }
}

/// An app with one worker serving it ([`Worker::start`]'s defaults) and a
/// signed-in user: where a run's story starts.
pub async fn served() -> (TestApp, Worker, User) {
    let app = crate::helpers::spawn_app().await;
    let worker = Worker::start(&app, &[]).await;
    let me = user(&app).await;
    (app, worker, me)
}

/// A fake live worker announcing python, so the api accepts python runs
/// without Docker (nothing executes them).
pub async fn fake_worker(app: &TestApp) {
    sqlx::query(
        "INSERT INTO workers (id, host, languages, expires_at)
         VALUES ('w', 'h', $1, now() + interval '1 hour')",
    )
    .bind(json!([{"id": "python", "name": "Python", "version": "3", "compiled": false}]))
    .execute(&app.db)
    .await
    .expect("fake worker");
}

/// Waits until the session's update log (of documents of `kind`, or all)
/// is compacted into snapshots (the last socket's departure does it).
pub async fn until_compacted(app: &TestApp, session: Uuid, kind: Option<&str>, timeout: Duration) {
    eventually(timeout, "the update log to be compacted", || async {
        let pending: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM document_updates
             WHERE session_id = $1 AND ($2::text IS NULL OR kind = $2)",
        )
        .bind(session)
        .bind(kind)
        .fetch_one(&app.db)
        .await
        .expect("count");
        if pending == 0 { Ok(()) } else { Err(pending) }
    })
    .await;
}

/// Posts a run as `who` (`?wait=true`: answered once it finished).
pub async fn post_run(app: &TestApp, who: &User, body: Value, wait: bool) -> reqwest::Response {
    let path = if wait {
        "/api/runs?wait=true"
    } else {
        "/api/runs"
    };
    post_json(app, who, path, body).await
}

/// The `id` in a response's JSON body (a run's, as `POST /api/runs` answers).
pub async fn id_of(response: reqwest::Response) -> String {
    json_body(response).await["id"]
        .as_str()
        .expect("id")
        .to_owned()
}

/// How many times run `id` was claimed (one per execution started).
pub async fn attempts(app: &TestApp, id: &str) -> i32 {
    sqlx::query_scalar("SELECT attempts FROM runs WHERE id = $1::uuid")
        .bind(id)
        .fetch_one(&app.db)
        .await
        .expect("attempts")
}

/// Waits until every run of `app` finished; answers how long that took.
/// Reads through `app.db`, a pool that survives a PostgreSQL restart by
/// reconnecting.
pub async fn all_finished(app: &TestApp, within: Duration) -> Duration {
    let started = std::time::Instant::now();
    eventually(within, "every run to finish", || async {
        let unfinished: Result<i64, _> =
            sqlx::query_scalar("SELECT count(*) FROM runs WHERE status <> 'finished'")
                .fetch_one(&app.db)
                .await;
        match unfinished {
            Ok(0) => Ok(()),
            other => Err(format!("unfinished: {other:?}")),
        }
    })
    .await;
    started.elapsed()
}

/// The number of sandbox containers (running or not) labelled `label`
/// (e.g. `codecall.worker=…`, `codecall.sandbox=…`).
pub fn containers(label: &str) -> usize {
    let output = std::process::Command::new("docker")
        .args(["ps", "-aq", "--filter", &format!("label={label}")])
        .output()
        .expect("docker ps");
    String::from_utf8_lossy(&output.stdout).lines().count()
}

pub async fn wait_finished(app: &TestApp, who: &User, id: &str) -> Value {
    eventually(
        Duration::from_secs(30),
        &format!("run {id} to finish"),
        || async {
            let run = json_body(
                call(
                    app,
                    Some(who),
                    Method::GET,
                    &format!("/api/runs/{id}"),
                    None,
                )
                .await,
            )
            .await;
            if run["status"] == "finished" {
                Ok(run)
            } else {
                Err(run)
            }
        },
    )
    .await
}
