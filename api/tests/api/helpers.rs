//! The test harness: [`spawn_app`] starts the real application on a random
//! port against a fresh database (created on the server named by the test
//! command's `DATABASE_URL`, dropped when the test ends) and a unique Redis
//! key prefix, so tests run in parallel without seeing each other.
//!
//! Feature modules take everything shared from the harness: this module
//! (the app, servers of a test's own, tokens), [`crate::fixtures`] (users,
//! sessions, runs and worker processes), [`crate::sockets`] (the session's
//! sockets and the reference document client) and [`crate::eventually`]
//! (waiting for a condition); never from one another.

use std::{
    collections::HashMap,
    sync::Arc,
    time::{SystemTime, UNIX_EPOCH},
};

use base64::Engine as _;

use codecall_api::{config::Config, startup::Application};
use serde_json::Value;
use sqlx::PgPool;
use uuid::Uuid;

pub use crate::database::{TestDatabase, server_urls};

/// JWT secrets generated for this test run: no fixed value in the
/// repository is ever accepted by the api.
pub static ACCESS_SECRET: std::sync::LazyLock<String> =
    std::sync::LazyLock::new(|| format!("test-access-{}", Uuid::new_v4().simple()));
pub static REFRESH_SECRET: std::sync::LazyLock<String> =
    std::sync::LazyLock::new(|| format!("test-refresh-{}", Uuid::new_v4().simple()));

#[derive(Clone)]
pub struct TestApp {
    pub address: String,
    pub db: PgPool,
    pub db_name: String,
    /// Dropped with the last clone (replicas share it): the database goes.
    pub database: Arc<TestDatabase>,
    pub server_url: String,
    pub db_url: String,
    pub redis_url: String,
    pub redis_prefix: String,
    pub client: reqwest::Client,
}

/// The environment a test app starts with; `overrides` replace or add entries.
pub fn test_env(db_url: &str, redis_url: &str, prefix: &str) -> HashMap<String, String> {
    [
        ("HOST", "127.0.0.1"),
        ("PORT", "0"),
        ("DATABASE_URL", db_url),
        ("DATABASE_MAX_CONNECTIONS", "5"),
        ("REDIS_URL", redis_url),
        ("REDIS_KEY_PREFIX", prefix),
        ("JWT_ACCESS_SECRET", ACCESS_SECRET.as_str()),
        ("JWT_REFRESH_SECRET", REFRESH_SECRET.as_str()),
        // Tests register many users from one address; the throttle's own
        // test lowers this.
        ("REGISTER_MAX_PER_ADDRESS", "100000"),
        ("SHUTDOWN_GRACE", "1s"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v.to_owned()))
    .collect()
}

pub async fn spawn_app() -> TestApp {
    spawn_app_with(&[]).await
}

/// Starts the app with extra environment entries (e.g. a lower limit).
pub async fn spawn_app_with(overrides: &[(&str, &str)]) -> TestApp {
    let (server_url, _) = server_urls();
    spawn_app_on(&server_url, overrides).await
}

/// Starts the app on a fresh database of the PostgreSQL server at
/// `server_url` (e.g. an [`OwnPostgres`]).
pub async fn spawn_app_on(server_url: &str, overrides: &[(&str, &str)]) -> TestApp {
    let server_url = server_url.to_owned();
    let (_, redis_url) = server_urls();
    let database = TestDatabase::create(&server_url).await;
    let db_url = database.url.clone();
    let redis_prefix = format!("test:{}:", Uuid::new_v4().simple());
    let mut env = test_env(&db_url, &redis_url, &redis_prefix);
    for (k, v) in overrides {
        env.insert((*k).to_owned(), (*v).to_owned());
    }
    let redis_url = env["REDIS_URL"].clone();
    let config = Config::from_lookup(|k| env.get(k).cloned()).expect("test configuration");
    let app = Application::build(config)
        .await
        .expect("application builds");
    let port = app.port();
    tokio::spawn(app.run_until_stopped(std::future::pending()));
    let db = PgPool::connect(&db_url)
        .await
        .expect("connect to test database");
    TestApp {
        address: format!("http://127.0.0.1:{port}"),
        db,
        db_name: database.name.clone(),
        database: Arc::new(database),
        server_url,
        db_url,
        redis_url,
        redis_prefix,
        client: reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .expect("http client"),
    }
}

/// A second api process (in-process) on `app`'s database, with other settings
/// (e.g. an unreachable Redis): tokens issued by `app` work here too.
pub async fn spawn_app_sharing(app: &TestApp, overrides: &[(&str, &str)]) -> TestApp {
    let (replica, stopper) = spawn_replica(app, overrides).await;
    std::mem::forget(stopper);
    replica
}

/// The api binary in a process of its own, serving on a database of its
/// own: for what only a whole process shows (its exit on SIGTERM, its logs,
/// its process-wide metrics, which in-process apps would share).
pub struct AppProcess {
    pub child: tokio::process::Child,
    pub address: String,
    pub client: reqwest::Client,
    pub db_url: String,
    /// Dropped after the process is killed: the database goes too.
    _database: TestDatabase,
}

impl AppProcess {
    /// Starts the binary (stdout piped, stderr discarded; killed on drop)
    /// and waits until it answers `/ready` at all.
    pub async fn start(overrides: &[(&str, &str)]) -> AppProcess {
        let (server_url, redis_url) = server_urls();
        let database = TestDatabase::create(&server_url).await;
        let db_url = database.url.clone();
        let port = free_port();
        let prefix = format!("test:{}:", Uuid::new_v4().simple());
        let mut env = test_env(&db_url, &redis_url, &prefix);
        env.insert("PORT".into(), port.to_string());
        for (k, v) in overrides {
            env.insert((*k).to_owned(), (*v).to_owned());
        }
        let child = tokio::process::Command::new(env!("CARGO_BIN_EXE_codecall-api"))
            .env_clear()
            .envs(&env)
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .expect("spawn the api binary");
        AppProcess {
            child,
            address: format!("http://127.0.0.1:{port}"),
            client: reqwest::Client::new(),
            db_url,
            _database: database,
        }
    }

    /// The first answer to `GET /ready`, once the binary answers at all.
    pub async fn first_ready_answer(&self) -> reqwest::Response {
        let url = format!("{}/ready", self.address);
        crate::eventually::eventually(
            std::time::Duration::from_secs(10),
            "the binary to answer /ready",
            || async { self.client.get(&url).send().await },
        )
        .await
    }

    pub async fn post_json(&self, path: &str, body: &Value) -> reqwest::Response {
        self.client
            .post(format!("{}{path}", self.address))
            .json(body)
            .send()
            .await
            .expect("request sent")
    }

    /// The value of one series of `/metrics` (`name` with its labels, as
    /// exported), or 0 while it has never been counted.
    pub async fn metric(&self, series: &str) -> f64 {
        let text = self
            .client
            .get(format!("{}/metrics", self.address))
            .send()
            .await
            .expect("metrics")
            .text()
            .await
            .expect("metrics text");
        text.lines()
            .find_map(|line| line.strip_prefix(series)?.strip_prefix(' '))
            .map_or(0.0, |value| value.trim().parse().expect("a number"))
    }
}

/// Stops a replica started by [`spawn_replica`] (as SIGTERM would).
pub struct Stopper {
    signal: tokio::sync::oneshot::Sender<()>,
    server: tokio::task::JoinHandle<std::io::Result<()>>,
}

impl Stopper {
    /// Shuts the replica down and waits until it has stopped serving.
    pub async fn stop(self) {
        let _ = self.signal.send(());
        let _ = self.server.await;
    }
}

/// Like [`spawn_app_sharing`], with a handle that stops the replica.
pub async fn spawn_replica(app: &TestApp, overrides: &[(&str, &str)]) -> (TestApp, Stopper) {
    let mut env = test_env(&app.db_url, &app.redis_url, &app.redis_prefix);
    for (k, v) in overrides {
        env.insert((*k).to_owned(), (*v).to_owned());
    }
    let config = Config::from_lookup(|k| env.get(k).cloned()).expect("test configuration");
    let server = Application::build(config)
        .await
        .expect("application builds");
    let port = server.port();
    let (signal, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(server.run_until_stopped(async move {
        let _ = stopped.await;
    }));
    let stopper = Stopper { signal, server };
    let replica = TestApp {
        address: format!("http://127.0.0.1:{port}"),
        db: app.db.clone(),
        db_name: app.db_name.clone(),
        database: Arc::clone(&app.database),
        server_url: app.server_url.clone(),
        db_url: app.db_url.clone(),
        redis_url: env["REDIS_URL"].clone(),
        redis_prefix: app.redis_prefix.clone(),
        client: app.client.clone(),
    };
    (replica, stopper)
}

impl TestApp {
    /// A connection to the app's Redis server.
    pub async fn redis(&self) -> redis::aio::MultiplexedConnection {
        redis::Client::open(self.redis_url.as_str())
            .expect("url")
            .get_multiplexed_async_connection()
            .await
            .expect("redis")
    }

    /// Every Redis key of this deployment: those under its own prefix (the
    /// server is shared with other tests).
    pub async fn redis_keys(&self, redis: &mut redis::aio::MultiplexedConnection) -> Vec<String> {
        redis::cmd("KEYS")
            .arg(format!("{}*", self.redis_prefix))
            .query_async(redis)
            .await
            .expect("keys")
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.address)
    }

    pub async fn get(&self, path: &str) -> reqwest::Response {
        self.client
            .get(self.url(path))
            .send()
            .await
            .expect("request sent")
    }

    pub async fn post_json(&self, path: &str, body: &Value) -> reqwest::Response {
        self.client
            .post(self.url(path))
            .json(body)
            .send()
            .await
            .expect("request sent")
    }
}

/// The count a `SELECT count(*) …` query of `app`'s database answers.
pub async fn count(app: &TestApp, sql: &'static str) -> i64 {
    sqlx::query_scalar(sql)
        .fetch_one(&app.db)
        .await
        .expect("count")
}

/// Reads a response body as JSON, failing the test with the raw text otherwise.
pub async fn json_body(response: reqwest::Response) -> Value {
    let text = response.text().await.expect("body");
    serde_json::from_str(&text).unwrap_or_else(|_| panic!("body is not JSON: {text}"))
}

/// The string `field` of each item of the JSON array `list` (items without
/// it are left out), e.g. the verdicts of a run's tests.
pub fn strings<'a>(list: &'a Value, field: &str) -> Vec<&'a str> {
    list.as_array()
        .unwrap_or_else(|| panic!("not a list: {list}"))
        .iter()
        .filter_map(|item| item[field].as_str())
        .collect()
}

/// Asserts the status and the error body every failure answers with
/// (`{success: false, error: {code, message}}`, with this `code`), and
/// returns its `error` object.
pub async fn assert_error(response: reqwest::Response, status: u16, code: &str) -> Value {
    assert_eq!(response.status().as_u16(), status, "status");
    let body = json_body(response).await;
    assert_eq!(body["success"], Value::Bool(false), "{body}");
    assert_eq!(body["error"]["code"], code, "{body}");
    assert!(body["error"]["message"].is_string(), "{body}");
    body["error"].clone()
}

/// A Redis server of one test's own (on a free port), so the test can stop
/// and restart it without disturbing the others. Stopped on drop.
pub struct OwnRedis {
    pub url: String,
    port: u16,
    child: Option<std::process::Child>,
}

impl OwnRedis {
    pub async fn start() -> OwnRedis {
        let port = free_port();
        let mut redis = OwnRedis {
            url: format!("redis://127.0.0.1:{port}"),
            port,
            child: None,
        };
        redis.restart().await;
        redis
    }

    /// Starts the server again (after [`OwnRedis::stop`]) on the same port.
    pub async fn restart(&mut self) {
        let port = self.port.to_string();
        let child = std::process::Command::new("redis-server")
            .args([
                "--port",
                &port,
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
            ])
            .stdout(std::process::Stdio::null())
            .spawn()
            .expect("redis-server runs");
        self.child = Some(child);
        let client = redis::Client::open(self.url.as_str()).expect("redis url");
        crate::eventually::eventually(
            std::time::Duration::from_secs(10),
            "the started redis-server to answer PING",
            || async {
                let mut conn = client.get_multiplexed_async_connection().await?;
                redis::cmd("PING").query_async::<String>(&mut conn).await
            },
        )
        .await;
    }

    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for OwnRedis {
    fn drop(&mut self) {
        self.stop();
    }
}

/// A PostgreSQL server of one test's own (a fresh cluster on a free port),
/// so the test can stop and restart it. Runs as `postgres` when the tests
/// run as root (PostgreSQL refuses root), as `scripts/servers.sh` does.
/// Stopped and deleted on drop.
pub struct OwnPostgres {
    /// A superuser URL on the `postgres` database.
    pub url: String,
    port: u16,
    dir: std::path::PathBuf,
}

impl OwnPostgres {
    pub async fn start() -> OwnPostgres {
        let port = free_port();
        let dir = std::env::temp_dir().join(format!("codecall-own-pg-{}", Uuid::new_v4().simple()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        let pg = OwnPostgres {
            url: format!("postgres://postgres@127.0.0.1:{port}/postgres"),
            port,
            dir,
        };
        pg.as_owner(
            &["chown", "-R", "postgres", &pg.dir.to_string_lossy()],
            true,
        );
        let data = pg.data();
        pg.run(
            "initdb",
            &["-D", &data, "-U", "postgres", "--auth=trust", "-E", "UTF8"],
        );
        pg.restart().await;
        pg
    }

    fn data(&self) -> String {
        self.dir.join("data").to_string_lossy().into_owned()
    }

    fn bindir() -> std::path::PathBuf {
        let mut found: Vec<std::path::PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
            .expect("PostgreSQL is installed under /usr/lib/postgresql")
            .filter_map(|e| e.ok().map(|e| e.path().join("bin")))
            .filter(|b| b.join("pg_ctl").exists())
            .collect();
        found.sort();
        found.pop().expect("a PostgreSQL bindir")
    }

    fn is_root() -> bool {
        std::process::Command::new("id")
            .arg("-u")
            .output()
            .is_ok_and(|o| o.stdout.starts_with(b"0\n"))
    }

    /// Runs a command as root (`chown`) or, for the server's own tools, as
    /// the `postgres` user when we are root.
    fn as_owner(&self, command: &[&str], root_only: bool) {
        if root_only && !Self::is_root() {
            return;
        }
        let status = std::process::Command::new(command[0])
            .args(&command[1..])
            .stdout(std::process::Stdio::null())
            .status()
            .expect("command runs");
        assert!(status.success(), "{command:?} failed");
    }

    fn run(&self, tool: &str, args: &[&str]) {
        let binary = Self::bindir().join(tool);
        let binary = binary.to_string_lossy();
        let mut command: Vec<&str> = Vec::new();
        if Self::is_root() {
            command.extend(["runuser", "-u", "postgres", "--"]);
        }
        command.push(&binary);
        command.extend(args);
        self.as_owner(&command, false);
    }

    /// Starts the server (again) on the same port and data, waiting until it accepts connections.
    pub async fn restart(&self) {
        let options = format!(
            "-p {} -k {} -c listen_addresses=127.0.0.1 -c max_connections=200 -c fsync=off",
            self.port,
            self.dir.to_string_lossy()
        );
        let log = self.dir.join("server.log").to_string_lossy().into_owned();
        self.run(
            "pg_ctl",
            &[
                "-D",
                &self.data(),
                "-l",
                &log,
                "-w",
                "-t",
                "30",
                "-o",
                &options,
                "start",
            ],
        );
    }

    /// Stops the server at once (connections are cut, as in a crash or restart).
    pub fn stop(&self) {
        self.run(
            "pg_ctl",
            &["-D", &self.data(), "-m", "immediate", "-w", "stop"],
        );
    }
}

impl Drop for OwnPostgres {
    fn drop(&mut self) {
        let binary = Self::bindir().join("pg_ctl");
        let mut command = if Self::is_root() {
            let mut c = std::process::Command::new("runuser");
            c.args(["-u", "postgres", "--"]).arg(&binary);
            c
        } else {
            std::process::Command::new(&binary)
        };
        let _ = command
            .args(["-D", &self.data(), "-m", "immediate", "stop"])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .status();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// A port nothing listens on (bound, noted, closed): for a server a test
/// starts, or for a dependency that must be unreachable.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("free port")
        .port()
}

/// Seconds since the epoch, as JWTs count time.
pub fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock")
        .as_secs()
}

/// Signs `claims` as an HS256 JWT with `secret`.
pub fn sign(secret: &str, claims: &Value) -> String {
    jsonwebtoken::encode(
        &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256),
        claims,
        &jsonwebtoken::EncodingKey::from_secret(secret.as_bytes()),
    )
    .expect("sign")
}

/// The claims of a JWT, read without verifying it.
pub fn claims_of(token: &str) -> Value {
    let payload = token.split('.').nth(1).expect("payload");
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload)
        .expect("base64");
    serde_json::from_slice(&bytes).expect("json")
}

/// `access` (a token the app issued) as it will be once expired: the same
/// claims and login, signed with the app's secret, with `iat` and `exp`
/// moved an hour back, far past the verification's leeway. No test has to
/// sleep until a real token expires.
pub fn expired_access_token(access: &str) -> String {
    let mut claims = claims_of(access);
    let now = unix_now();
    claims["iat"] = (now - 3_600 - 60).into();
    claims["exp"] = (now - 3_600).into();
    sign(&ACCESS_SECRET, &claims)
}
