//! The worker binary against real Redis and the real Docker engine: it starts
//! when both answer, stops cleanly on SIGTERM, and exits non-zero with a
//! message naming the dependency when either is unreachable, or the
//! sandbox runtime when the engine does not have it.

use std::{
    process::{Command, Stdio},
    time::{Duration, Instant},
};

/// The worker binary as operators run it, on the database at `database_url`
/// (Redis and the rest are up to each test).
fn worker(database_url: &str) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_codecall-worker"));
    command
        .env_clear()
        .env("DATABASE_URL", database_url)
        .env(
            "REDIS_KEY_PREFIX",
            format!("test:{}:", uuid::Uuid::new_v4().simple()),
        )
        .env("SANDBOX_POOL_SIZE", "0")
        .env("METRICS_PORT", "0")
        .env("STARTUP_TIMEOUT", "3s")
        .env("RUST_LOG", "info")
        .env("NO_COLOR", "1")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    command
}

/// Runs `worker` to its exit, which must be a failure (`why` says what is
/// checked otherwise); answers what it logged.
fn failure_logs(worker: &mut Command, why: &str) -> String {
    let output = worker.output().expect("runs");
    assert!(!output.status.success(), "{why}");
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// A database of the test's own (the worker migrates it), and Redis's URL.
fn servers() -> (TestDatabase, String) {
    let (server_url, redis_url) = server_urls();
    (TestDatabase::create_blocking(&server_url), redis_url)
}

#[path = "../../api/tests/api/docker.rs"]
mod docker;
use docker::require_docker;
#[path = "../../api/tests/api/database.rs"]
#[allow(dead_code)] // what the worker's tests do not use of the api's harness
mod database;
use database::{TestDatabase, server_urls};

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("free port")
        .port()
}

#[test]
fn an_unreachable_redis_stops_the_worker_with_a_clear_message() {
    let (database, _) = servers();
    let started = Instant::now();
    let logs = failure_logs(
        worker(&database.url).env("REDIS_URL", format!("redis://127.0.0.1:{}", free_port())),
        "exits with an error",
    );
    assert!(
        logs.contains("Redis") && logs.contains("REDIS_URL"),
        "{logs}"
    );
    // A bound on purpose, five times STARTUP_TIMEOUT (3 s): what is tested
    // is that the worker gives up after its startup timeout instead of
    // retrying for as long as Redis is down, and only time tells them apart.
    assert!(started.elapsed() < Duration::from_secs(15), "fails fast");
}

#[test]
fn an_unreachable_database_stops_the_worker_with_a_clear_message() {
    let (_, redis_url) = server_urls();
    let logs = failure_logs(
        worker(&format!("postgres://nobody@127.0.0.1:{}/x", free_port()))
            .env("REDIS_URL", redis_url),
        "exits with an error",
    );
    assert!(logs.contains("DATABASE_URL"), "{logs}");
}

#[test]
fn an_unreachable_docker_engine_stops_the_worker_with_a_clear_message() {
    let (database, redis_url) = servers();
    let logs = failure_logs(
        worker(&database.url)
            .env("REDIS_URL", redis_url)
            .env("DOCKER_HOST", "unix:///nonexistent/docker.sock"),
        "exits with an error",
    );
    assert!(logs.contains("Docker engine"), "{logs}");
}

#[test]
fn a_sandbox_runtime_the_engine_does_not_have_stops_the_worker_naming_it() {
    require_docker!();
    let (database, redis_url) = servers();
    let started = Instant::now();
    let logs = failure_logs(
        worker(&database.url)
            .env("REDIS_URL", redis_url)
            .env("SANDBOX_RUNTIME", "no-such-runtime"),
        "never falls back to runc",
    );
    assert!(
        logs.contains("SANDBOX_RUNTIME") && logs.contains("`no-such-runtime`"),
        "{logs}"
    );
    assert!(!logs.contains("worker ready"), "{logs}");
    // Generous on purpose, as for Redis above: it gives up, it does not retry.
    assert!(started.elapsed() < Duration::from_secs(15), "fails fast");
}

#[test]
fn with_redis_and_docker_up_the_worker_runs_until_sigterm() {
    require_docker!();
    let (database, redis_url) = servers();
    let mut child = worker(&database.url)
        .env("REDIS_URL", redis_url)
        .spawn()
        .expect("spawn");
    // The worker's output lines and its exit, as they happen.
    let pid = child.id();
    let stdout = child.stdout.take().expect("stdout");
    let (tx, events) = std::sync::mpsc::channel();
    let lines = tx.clone();
    std::thread::spawn(move || {
        use std::io::BufRead;
        for line in std::io::BufReader::new(stdout)
            .lines()
            .map_while(Result::ok)
        {
            let _ = lines.send(Event::Line(line));
        }
    });
    std::thread::spawn(move || {
        let _ = tx.send(Event::Exited(child.wait().expect("wait")));
    });

    // Wait for the ready line.
    let deadline = Instant::now() + Duration::from_secs(15);
    let mut seen = Vec::new();
    while let Some(event) = next_event(&events, deadline) {
        match event {
            Event::Line(line) => {
                let ready = line.contains("worker ready");
                seen.push(line);
                if ready {
                    break;
                }
            }
            Event::Exited(status) => panic!("exited ({status}): {seen:?}"),
        }
    }
    assert!(seen.iter().any(|l| l.contains("worker ready")), "{seen:?}");
    assert!(
        seen.iter().any(|l| l.contains("engine_api_version")),
        "logs the negotiated engine: {seen:?}"
    );
    assert!(
        seen.iter().any(|l| l.contains("python")),
        "logs its languages: {seen:?}"
    );

    let status = Command::new("kill")
        .args(["-TERM", &pid.to_string()])
        .status()
        .expect("kill");
    assert!(status.success());
    let deadline = Instant::now() + Duration::from_secs(10);
    let exit = loop {
        match next_event(&events, deadline) {
            Some(Event::Exited(exit)) => break exit,
            Some(Event::Line(_)) => {}
            None => panic!("did not stop within 10 s of SIGTERM"),
        }
    };
    assert!(exit.success(), "{exit:?}");
}

/// What a running worker did: printed a line, or exited.
enum Event {
    Line(String),
    Exited(std::process::ExitStatus),
}

/// The next event, or None once `deadline` has passed.
fn next_event(events: &std::sync::mpsc::Receiver<Event>, deadline: Instant) -> Option<Event> {
    events
        .recv_timeout(deadline.saturating_duration_since(Instant::now()))
        .ok()
}
