//! The whole worker in-process ([`Application`]) against real PostgreSQL (a
//! fresh database per test, migrations applied by the worker, created and
//! dropped as the api's tests do), real Redis
//! (a unique key prefix per test) and the real Docker engine, fed the way
//! the api feeds it: a `queued` row in `runs` (whose insert trigger wakes the
//! worker) with its input in [`RunInput`]'s stored shape.
//!
//! A python run finishes `accepted` with its stdout stored; its events reach
//! its Redis channel in order, ending with `run.finished`; a run in a
//! language the worker lacks stays queued for a worker that has it; and
//! stopping the worker lets the run in flight finish before
//! `run_until_stopped` returns. Without a reachable Docker engine each test
//! prints `skipped: no reachable Docker engine` and passes — unless `CI` is
//! set, then it fails.

use std::{collections::HashMap, time::Duration};

use codecall_worker::{config::Config, startup::Application};
use futures_util::StreamExt as _;
use run_contract::{
    RunEvent, Verdict,
    input::{RunFile, RunInput},
};
use sqlx::{AssertSqlSafe, PgPool, Row as _, postgres::PgRow};
use tokio::{sync::oneshot, task::JoinHandle};
use uuid::Uuid;

/// How long anything a test waits for may take on a busy machine.
const DEADLINE: Duration = Duration::from_secs(90);

#[path = "../../api/tests/api/docker.rs"]
mod docker;
#[path = "../../api/tests/api/eventually.rs"]
mod eventually;
use docker::require_docker;
use eventually::eventually;
#[path = "../../api/tests/api/database.rs"]
#[allow(dead_code)] // what the worker's tests do not use of the api's harness
mod database;
use database::{TestDatabase, server_urls};

/// A worker running in this process on a database of its own.
struct TestWorker {
    db: PgPool,
    redis_url: String,
    key_prefix: String,
    worker_id: String,
    languages: Vec<String>,
    stop: Option<oneshot::Sender<()>>,
    running: Option<JoinHandle<anyhow::Result<()>>>,
    /// Dropped after the worker is told to stop: the database goes too.
    _database: TestDatabase,
}

impl TestWorker {
    /// Builds and starts the worker (a Docker engine is reachable).
    async fn spawn() -> TestWorker {
        let (server_url, redis_url) = server_urls();
        let database = TestDatabase::create(&server_url).await;
        let key_prefix = format!("test:{}:", Uuid::new_v4().simple());
        let env: HashMap<&str, String> = [
            ("DATABASE_URL", database.url.clone()),
            ("REDIS_URL", redis_url.clone()),
            ("REDIS_KEY_PREFIX", key_prefix.clone()),
            ("SANDBOX_POOL_SIZE", "0".into()),
            ("METRICS_PORT", "0".into()),
            ("WORKER_HEARTBEAT", "1s".into()),
            ("WORKER_SHUTDOWN_TIMEOUT", "60s".into()),
        ]
        .into_iter()
        .collect();
        let config = Config::from_lookup(|name| env.get(name).cloned()).expect("test config");
        let app = Application::build(config).await.expect("the worker builds");
        assert!(
            app.languages().iter().any(|l| l == "python"),
            "sandbox image for python missing: run sandbox-images/build.sh"
        );
        let (worker_id, languages) = (app.worker_id().to_owned(), app.languages().to_vec());
        let (stop, stopped) = oneshot::channel::<()>();
        let running = tokio::spawn(app.run_until_stopped(async {
            let _ = stopped.await;
        }));
        let db = PgPool::connect(&database.url)
            .await
            .expect("connect to the test database");
        TestWorker {
            db,
            _database: database,
            redis_url,
            key_prefix,
            worker_id,
            languages,
            stop: Some(stop),
            running: Some(running),
        }
    }

    /// Signals the worker to stop and waits until `run_until_stopped` returns.
    async fn stop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(running) = self.running.take() {
            tokio::time::timeout(DEADLINE, running)
                .await
                .expect("the worker stops in time")
                .expect("the worker task does not panic")
                .expect("the worker stops cleanly");
        }
    }

    /// A user to own runs.
    async fn user(&self) -> Uuid {
        let id = Uuid::new_v4();
        sqlx::query(
            "INSERT INTO users (id, name, email, password_hash) VALUES ($1, 'Runner', $2, 'x')",
        )
        .bind(id)
        .bind(format!("{}@example.com", id.simple()))
        .execute(&self.db)
        .await
        .expect("insert user");
        id
    }

    /// Queues a run as the api stores one.
    async fn enqueue(&self, user_id: Uuid, id: Uuid, language: &str, source: &str) {
        let input = RunInput {
            files: vec![RunFile {
                name: String::new(),
                content: source.into(),
            }],
            ..RunInput::default()
        }
        .to_columns();
        sqlx::query(
            "INSERT INTO runs (id, user_id, language, files, args, tests, time_limit_ms,
                               memory_limit_mb, kind)
             VALUES ($1, $2, $3, $4, $5, $6, 5000, 256, 'run')",
        )
        .bind(id)
        .bind(user_id)
        .bind(language)
        .bind(input.files)
        .bind(input.args)
        .bind(input.tests)
        .execute(&self.db)
        .await
        .expect("insert run");
    }

    /// `columns` of the run's row.
    async fn run_row(&self, id: Uuid, columns: &str) -> PgRow {
        sqlx::query(AssertSqlSafe(format!(
            "SELECT {columns} FROM runs WHERE id = $1"
        )))
        .bind(id)
        .fetch_one(&self.db)
        .await
        .expect("run row")
    }

    /// The run's `status` column.
    async fn status(&self, id: Uuid) -> String {
        self.run_row(id, "status").await.get("status")
    }

    /// Waits until the run's status is `status`; panics at the deadline.
    async fn wait_for_status(&self, id: Uuid, status: &str) {
        eventually(DEADLINE, &format!("run {id} to be {status}"), || async {
            let now = self.status(id).await;
            if now == status || (status == "running" && now == "finished") {
                Ok(())
            } else {
                Err(now)
            }
        })
        .await;
    }

    /// The finished run's verdict and stored stdout.
    async fn result(&self, id: Uuid) -> (Verdict, String) {
        let row = self.run_row(id, "status, result").await;
        assert_eq!(row.get::<String, _>("status"), "finished");
        let result: run_contract::RunResult =
            serde_json::from_value(row.get::<serde_json::Value, _>("result"))
                .expect("a stored RunResult");
        (result.verdict, result.stdout)
    }
}

impl Drop for TestWorker {
    /// A test that panicked still stops its worker (its containers go).
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_python_run_completes_with_its_stdout_stored_and_its_events_in_order() {
    require_docker!();
    let mut worker = TestWorker::spawn().await;
    let user = worker.user().await;
    let id = Uuid::new_v4();
    // Listening before the run exists, as a room does.
    let client = redis::Client::open(worker.redis_url.as_str()).expect("redis url");
    let mut subscriber = client.get_async_pubsub().await.expect("subscribe");
    subscriber
        .subscribe(run_contract::run_event_channel(
            &worker.key_prefix,
            id,
            None,
        ))
        .await
        .expect("subscribe");

    worker
        .enqueue(user, id, "python", "print('hello')\nprint('world')")
        .await;
    worker.wait_for_status(id, "finished").await;
    assert_eq!(
        worker.result(id).await,
        (Verdict::Accepted, "hello\nworld\n".to_owned())
    );

    let mut events = Vec::new();
    let mut messages = subscriber.on_message();
    let deadline = tokio::time::Instant::now() + DEADLINE;
    while !matches!(events.last(), Some(RunEvent::Finished { .. })) {
        let message = tokio::time::timeout_at(deadline, messages.next())
            .await
            .unwrap_or_else(|_| panic!("no run.finished; events so far: {events:?}"))
            .expect("the subscription stays open");
        let payload: String = message.get_payload().expect("text payload");
        let (_, json) = run_contract::addressee(&payload).expect("a known audience");
        events.push(serde_json::from_str::<RunEvent>(json).expect("a run event"));
    }
    let Some((RunEvent::Started { run_id, attempt }, rest)) = events.split_first() else {
        panic!("run.started comes first: {events:?}");
    };
    assert_eq!((*run_id, *attempt), (id, 1));
    let Some((RunEvent::Finished { run }, outputs)) = rest.split_last() else {
        panic!("run.finished comes last: {events:?}");
    };
    assert_eq!(run.id, id);
    assert_eq!(run.verdict, Some(Verdict::Accepted));
    assert_eq!(run.stdout, "hello\nworld\n");
    let mut printed = String::new();
    for (expected_seq, event) in outputs.iter().enumerate() {
        let RunEvent::Output {
            run_id, seq, data, ..
        } = event
        else {
            panic!("only output between start and finish: {events:?}");
        };
        assert_eq!((*run_id, *seq), (id, expected_seq as u64), "{events:?}");
        printed.push_str(data);
    }
    assert_eq!(printed, "hello\nworld\n");
    drop(messages);
    worker.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_in_a_language_the_worker_lacks_stays_queued() {
    require_docker!();
    let mut worker = TestWorker::spawn().await;
    assert!(!worker.languages.iter().any(|l| l == "cobol"));
    let user = worker.user().await;
    let (cobol, python) = (Uuid::new_v4(), Uuid::new_v4());
    // The older run first: the worker would take it first if it could.
    worker.enqueue(user, cobol, "cobol", "DISPLAY 'HI'.").await;
    worker.enqueue(user, python, "python", "print('hi')").await;
    worker.wait_for_status(python, "finished").await;
    assert_eq!(
        worker.result(python).await,
        (Verdict::Accepted, "hi\n".to_owned())
    );

    let row = worker.run_row(cobol, "status, attempts, worker_id").await;
    assert_eq!(row.get::<String, _>("status"), "queued");
    assert_eq!(row.get::<i32, _>("attempts"), 0);
    assert_eq!(row.get::<Option<String>, _>("worker_id"), None);
    worker.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stopping_finishes_the_run_in_flight_before_returning() {
    require_docker!();
    let mut worker = TestWorker::spawn().await;
    let user = worker.user().await;
    let id = Uuid::new_v4();
    worker
        .enqueue(
            user,
            id,
            "python",
            "import time\ntime.sleep(1.5)\nprint('slept')",
        )
        .await;
    worker.wait_for_status(id, "running").await;
    assert_eq!(worker.status(id).await, "running", "stopped mid-run");

    worker.stop().await;
    assert_eq!(
        worker.result(id).await,
        (Verdict::Accepted, "slept\n".to_owned()),
        "finished before run_until_stopped returned"
    );
    let stopped: bool =
        sqlx::query_scalar("SELECT stopped_at IS NOT NULL FROM workers WHERE id = $1")
            .bind(&worker.worker_id)
            .fetch_one(&worker.db)
            .await
            .expect("worker row");
    assert!(stopped, "the worker marked itself stopped");
}
