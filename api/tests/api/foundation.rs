//! The service skeleton: health, readiness, the error body for requests the
//! router or the JSON extractor refuses, migrations, start-up and shutdown.

use std::{process::Stdio, time::Duration};

use serde_json::{Value, json};
use sqlx::{AssertSqlSafe, Connection, Executor, PgConnection};

use crate::helpers::{
    AppProcess, TestDatabase, assert_error, free_port, json_body, server_urls, spawn_app,
    spawn_app_with, test_env,
};

#[tokio::test]
async fn health_answers_200_while_the_process_runs() {
    let app = spawn_app().await;
    let response = app.get("/health").await;
    assert_eq!(response.status().as_u16(), 200);
    assert_eq!(json_body(response).await["success"], true);
}

#[tokio::test]
async fn ready_is_200_when_postgres_and_redis_answer() {
    let app = spawn_app().await;
    let response = app.get("/ready").await;
    assert_eq!(response.status().as_u16(), 200);
    let body = json_body(response).await;
    assert_eq!(body["checks"], json!({"postgres": "up", "redis": "up"}));
}

#[tokio::test]
async fn ready_is_503_naming_redis_when_redis_is_unreachable() {
    // A port nothing listens on: bind, note the port, close.
    let port = free_port();
    let redis_url = format!("redis://127.0.0.1:{port}");
    let app = spawn_app_with(&[("REDIS_URL", &redis_url)]).await;

    let response = app.get("/ready").await;
    let checks = response_checks(response, 503).await;
    assert_eq!(checks["error"]["code"], "dependency_unavailable");
    assert!(
        checks["error"]["message"]
            .as_str()
            .unwrap_or("")
            .contains("redis")
    );
    assert_eq!(checks["checks"], json!({"postgres": "up", "redis": "down"}));
    // Liveness is unaffected.
    assert_eq!(app.get("/health").await.status().as_u16(), 200);
}

#[tokio::test]
async fn ready_is_503_naming_postgres_when_the_database_goes_away() {
    let app = spawn_app().await;
    assert_eq!(app.get("/ready").await.status().as_u16(), 200);

    app.db.close().await;
    let mut admin = PgConnection::connect(&app.server_url)
        .await
        .expect("connect");
    admin
        .execute(sqlx::raw_sql(AssertSqlSafe(format!(
            r#"DROP DATABASE "{}" WITH (FORCE)"#,
            app.db_name
        ))))
        .await
        .expect("drop the app's database");

    let checks = response_checks(app.get("/ready").await, 503).await;
    assert_eq!(checks["checks"], json!({"postgres": "down", "redis": "up"}));
    assert!(
        checks["error"]["message"]
            .as_str()
            .unwrap_or("")
            .contains("postgres")
    );
}

async fn response_checks(response: reqwest::Response, status: u16) -> Value {
    assert_eq!(response.status().as_u16(), status);
    let body = json_body(response).await;
    assert_eq!(body["success"], false, "{body}");
    body
}

#[tokio::test]
async fn unknown_routes_get_the_error_body() {
    let app = spawn_app().await;
    assert_error(app.get("/no/such/thing").await, 404, "not_found").await;
    let response = app
        .client
        .delete(app.url("/health"))
        .send()
        .await
        .expect("sent");
    assert_error(response, 405, "method_not_allowed").await;
}

#[tokio::test]
async fn every_response_carries_a_request_id_and_keeps_a_given_one() {
    let app = spawn_app().await;
    let response = app.get("/health").await;
    let generated = response.headers().get("x-request-id").expect("request id");
    assert_eq!(generated.len(), 36, "a uuid");

    let response = app
        .client
        .get(app.url("/health"))
        .header("x-request-id", "trace-me-42")
        .send()
        .await
        .expect("sent");
    assert_eq!(response.headers()["x-request-id"], "trace-me-42");
}

/// Behind a load balancer, each replica names itself: the host name (the
/// container id under Docker), on successes and errors alike.
#[tokio::test]
async fn every_response_names_the_instance_that_answered() {
    let app = spawn_app().await;
    let host = std::fs::read_to_string("/etc/hostname").expect("/etc/hostname");
    let host = host.trim();
    assert!(!host.is_empty(), "this machine has a host name");
    for (path, status) in [
        ("/health", 200),
        ("/no/such/thing", 404),
        ("/api/users/me", 401),
    ] {
        let response = app.get(path).await;
        assert_eq!(response.status().as_u16(), status, "{path}");
        assert_eq!(
            response
                .headers()
                .get("x-instance-id")
                .map(|v| v.to_str().unwrap()),
            Some(host),
            "{path}"
        );
    }
}

#[tokio::test]
async fn migrations_apply_to_an_empty_database_and_are_idempotent() {
    let (server_url, redis_url) = server_urls();
    let database = TestDatabase::create(&server_url).await;
    let db_url = &database.url;
    let env = test_env(db_url, &redis_url, "test:migrations:");
    let config =
        || codecall_api::config::Config::from_lookup(|k| env.get(k).cloned()).expect("config");

    codecall_api::startup::Application::build(config())
        .await
        .expect("first start migrates");
    codecall_api::startup::Application::build(config())
        .await
        .expect("second start is a no-op");

    let mut conn = PgConnection::connect(db_url).await.expect("connect");
    let applied: i64 = sqlx::query_scalar("SELECT count(*) FROM _sqlx_migrations WHERE success")
        .fetch_one(&mut conn)
        .await
        .expect("migrations table");
    let files = std::fs::read_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/../migrations"))
        .expect("migrations dir")
        .filter(|e| {
            e.as_ref()
                .is_ok_and(|e| e.path().extension().is_some_and(|x| x == "sql"))
        })
        .count();
    assert_eq!(applied as usize, files);
    let users: i64 = sqlx::query_scalar("SELECT count(*) FROM users")
        .fetch_one(&mut conn)
        .await
        .expect("users table exists");
    assert_eq!(users, 0);
}

/// The binary as operators run it.
fn api_binary() -> std::process::Command {
    let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_codecall-api"));
    command
        .env_clear()
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    command
}

#[tokio::test]
async fn a_missing_secret_stops_start_up_naming_the_variable() {
    let (server_url, redis_url) = server_urls();
    for missing in ["JWT_ACCESS_SECRET", "JWT_REFRESH_SECRET", "DATABASE_URL"] {
        let mut env = test_env(&server_url, &redis_url, "test:x:");
        env.remove(missing);
        let output = api_binary().envs(&env).output().expect("binary runs");
        assert!(!output.status.success(), "{missing}: must not start");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(stderr.contains(missing), "{missing} not named in: {stderr}");
        // And no secret is echoed.
        assert!(
            !stderr.contains(crate::helpers::ACCESS_SECRET.as_str()),
            "{stderr}"
        );
    }
}

#[tokio::test]
async fn the_binary_serves_and_exits_cleanly_on_sigterm() {
    let mut app = AppProcess::start(&[("LOG_FORMAT", "json")]).await;
    assert_eq!(
        app.first_ready_answer().await.status(),
        200,
        "the binary answered /ready with 200"
    );
    let child = &mut app.child;

    let pid = child.id().expect("pid").to_string();
    let status = std::process::Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .expect("kill");
    assert!(status.success());
    let exit = tokio::time::timeout(Duration::from_secs(10), child.wait())
        .await
        .expect("exits within 10 s")
        .expect("exit status");
    assert!(exit.success(), "{exit:?}");

    // Its logs were JSON lines, and they never printed a secret.
    let mut stdout = String::new();
    use tokio::io::AsyncReadExt;
    child
        .stdout
        .take()
        .expect("stdout")
        .read_to_string(&mut stdout)
        .await
        .expect("read");
    assert!(!stdout.is_empty());
    for line in stdout.lines() {
        serde_json::from_str::<Value>(line).unwrap_or_else(|_| panic!("not JSON: {line}"));
        assert!(!line.contains(crate::helpers::ACCESS_SECRET.as_str()));
    }
}
