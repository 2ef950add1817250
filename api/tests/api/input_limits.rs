//! Hostile input: oversize bodies and fields, what they leave in Redis, the
//! registration throttle, and the run storage cap and retention.

use std::time::Duration;

use serde_json::{Value, json};
use uuid::Uuid;

use crate::{
    eventually::eventually,
    fixtures::{User, get, patch_json, post_json, user},
    helpers::{TestApp, assert_error, count, json_body, spawn_app, spawn_app_with},
};

/// Every Redis key under the app's prefix, with its memory usage in bytes.
async fn redis_keys(app: &TestApp) -> Vec<(String, i64)> {
    let mut redis = app.redis().await;
    let keys = app.redis_keys(&mut redis).await;
    let mut out = Vec::new();
    for key in keys {
        let bytes: Option<i64> = redis::cmd("MEMORY")
            .arg("USAGE")
            .arg(&key)
            .query_async(&mut redis)
            .await
            .expect("memory usage");
        out.push((key, bytes.unwrap_or(0)));
    }
    out
}

#[tokio::test]
async fn a_4_mb_login_email_is_refused_with_413_and_grows_nothing_in_redis() {
    let app = spawn_app().await;
    let huge = format!("{}@codecall.dev", "x".repeat(4 << 20));
    for _ in 0..5 {
        let response = app
            .post_json(
                "/auth/login",
                &json!({"email": huge, "password": "StrongPass123"}),
            )
            .await;
        assert_error(response, 413, "payload_too_large").await;
    }
    assert_eq!(redis_keys(&app).await, Vec::new(), "nothing was counted");

    // Within the body limit, an email over 254 bytes is refused before the
    // throttle counts it.
    let long = format!("{}@codecall.dev", "x".repeat(10_000));
    let error = assert_error(
        app.post_json(
            "/auth/login",
            &json!({"email": long, "password": "StrongPass123"}),
        )
        .await,
        422,
        "validation_failed",
    )
    .await;
    assert!(error["fields"]["email"].is_string(), "{error}");
    assert_eq!(redis_keys(&app).await, Vec::new(), "nothing was counted");

    // A failed login at the limit (254 bytes) is counted under short hashed
    // keys that do not contain the email.
    let at_limit = format!("{}@codecall.dev", "y".repeat(241));
    assert_eq!(at_limit.len(), 254);
    assert_error(
        app.post_json(
            "/auth/login",
            &json!({"email": at_limit, "password": "StrongPass123"}),
        )
        .await,
        401,
        "invalid_credentials",
    )
    .await;
    let keys = redis_keys(&app).await;
    assert_eq!(keys.len(), 3, "{keys:?}");
    for (key, bytes) in &keys {
        let own = &key[app.redis_prefix.len()..];
        assert!(own.len() <= 100, "key name is short: {key}");
        assert!(
            !key.contains("yyyy") && !key.contains("codecall.dev"),
            "{key}"
        );
        assert!(*bytes < 300, "{key} takes {bytes} bytes");
    }
}

#[tokio::test]
async fn each_route_has_its_own_body_limit() {
    let app = spawn_app().await;
    let me = user(&app).await;

    // Auth and users: 16 KiB.
    let name_20k = "n".repeat(20 * 1024);
    assert_error(
        app.post_json(
            "/auth/register",
            &json!({"name": name_20k, "email": "big@codecall.dev", "password": "StrongPass123"}),
        )
        .await,
        413,
        "payload_too_large",
    )
    .await;
    assert_error(
        patch_json(&app, &me, "/api/users/me", json!({"name": name_20k})).await,
        413,
        "payload_too_large",
    )
    .await;
    let users = count(&app, "SELECT count(*) FROM users").await;
    assert_eq!(users, 1, "nothing written");

    // Other routes: 64 KiB. 20 KiB gets through to the field check.
    let error = assert_error(
        post_json(&app, &me, "/api/sessions", json!({"title": name_20k})).await,
        422,
        "validation_failed",
    )
    .await;
    assert!(error["fields"]["title"].is_string(), "{error}");
    assert_error(
        post_json(
            &app,
            &me,
            "/api/sessions",
            json!({"title": "t".repeat(70 * 1024)}),
        )
        .await,
        413,
        "payload_too_large",
    )
    .await;

    // Runs: a maximal run fits (1 MiB of stdin gets to validation, where
    // its too-short time limit is refused).
    crate::fixtures::fake_worker(&app).await;
    let response = post_json(
        &app,
        &me,
        "/api/runs",
        json!({"language": "python", "source": "x", "stdin": "s".repeat(1 << 20),
            "limits": {"timeMs": 1}}),
    )
    .await;
    assert_ne!(response.status().as_u16(), 413);
    assert_error(response, 422, "validation_failed").await;
}

async fn register_from(app: &TestApp, forwarded_for: Option<&str>) -> reqwest::Response {
    let email = format!(
        "r{}@codecall.dev",
        &Uuid::new_v4().simple().to_string()[..12]
    );
    let mut request = app
        .client
        .post(app.url("/auth/register"))
        .json(&json!({"name": "Someone", "email": email, "password": "StrongPass123"}));
    if let Some(address) = forwarded_for {
        request = request.header("x-forwarded-for", address);
    }
    request.send().await.expect("sent")
}

#[tokio::test]
async fn registrations_are_throttled_per_client_address() {
    let app = spawn_app_with(&[("REGISTER_MAX_PER_ADDRESS", "3")]).await;
    for _ in 0..3 {
        assert_eq!(register_from(&app, None).await.status().as_u16(), 201);
    }
    let response = register_from(&app, None).await;
    let retry_after: u64 = response
        .headers()
        .get("retry-after")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok())
        .expect("Retry-After");
    assert!((1..=3600).contains(&retry_after), "{retry_after}");
    assert_error(response, 429, "too_many_requests").await;
    let users = count(&app, "SELECT count(*) FROM users").await;
    assert_eq!(users, 3, "the refused registration wrote nothing");
    let keys = redis_keys(&app).await;
    let throttle: Vec<_> = keys
        .iter()
        .filter(|(k, _)| k.contains("registrations:"))
        .collect();
    assert_eq!(throttle.len(), 1, "{keys:?}");
    assert!(!throttle[0].0.contains("127.0.0.1"), "hashed: {throttle:?}");

    // Behind a load balancer the address comes from X-Forwarded-For.
    let app = spawn_app_with(&[
        ("REGISTER_MAX_PER_ADDRESS", "1"),
        ("TRUST_FORWARDED_FOR", "true"),
    ])
    .await;
    let a = Some("198.51.100.7");
    assert_eq!(register_from(&app, a).await.status().as_u16(), 201);
    assert_error(register_from(&app, a).await, 429, "too_many_requests").await;
    let b = Some("198.51.100.8");
    assert_eq!(register_from(&app, b).await.status().as_u16(), 201);
}

/// A finished run of `who`, stored directly, finished `age` ago.
async fn finished_run(app: &TestApp, who: &User, age: Duration, stdin_bytes: usize) -> Uuid {
    let outcome = |index: usize| {
        json!({"index": index, "verdict": "wrong_answer", "exitCode": 0, "signal": null,
            "stdout": "test output", "stderr": "", "stdoutTruncated": false,
            "stderrTruncated": false, "timeMs": 12, "cpuMs": 10, "memoryKb": 2048})
    };
    let result = json!({"verdict": "wrong_answer", "exitCode": 0, "signal": null,
        "stdout": "the program's output", "stderr": "a warning", "stdoutTruncated": false,
        "stderrTruncated": false, "compileOutput": null, "timeMs": 25, "cpuMs": 20,
        "memoryKb": 4096, "tests": [outcome(0), outcome(1)]});
    let id = Uuid::new_v4();
    sqlx::query(
        r#"INSERT INTO runs (id, user_id, language, files, stdin, tests, time_limit_ms,
                             memory_limit_mb, status, verdict, result, created_at,
                             started_at, finished_at)
           VALUES ($1, $2, 'python', $3, $4, $5, 5000, 256, 'finished', 'wrong_answer', $6,
                   now() - $7 * interval '1 second', now() - $7 * interval '1 second',
                   now() - $7 * interval '1 second')"#,
    )
    .bind(id)
    .bind(who.id)
    .bind(json!([{"name": "", "content": "print(input())"}]))
    .bind(vec![b's'; stdin_bytes])
    .bind(json!([{"stdin": "1", "expectedOutput": "2"}, {"stdin": "3", "expectedOutput": "4"}]))
    .bind(result)
    .bind(age.as_secs_f64())
    .execute(&app.db)
    .await
    .expect("insert run");
    id
}

#[tokio::test]
async fn old_runs_lose_their_bodies_and_keep_their_verdicts() {
    let app = spawn_app_with(&[
        ("RUN_RETENTION", "1h"),
        ("RUN_RETENTION_SWEEP_INTERVAL", "200ms"),
    ])
    .await;
    let me = user(&app).await;
    let old = finished_run(&app, &me, Duration::from_secs(7200), 1000).await;
    let recent = finished_run(&app, &me, Duration::from_secs(60), 1000).await;

    eventually(
        Duration::from_secs(10),
        "the sweeper to purge the old run",
        || async {
            let at: Option<chrono::DateTime<chrono::Utc>> =
                sqlx::query_scalar("SELECT purged_at FROM runs WHERE id = $1")
                    .bind(old)
                    .fetch_one(&app.db)
                    .await
                    .expect("purged_at");
            at
        },
    )
    .await;

    let (files, stdin, tests, bytes): (Value, Vec<u8>, Value, i64) =
        sqlx::query_as("SELECT files, stdin, tests, stored_bytes FROM runs WHERE id = $1")
            .bind(old)
            .fetch_one(&app.db)
            .await
            .expect("row");
    assert_eq!((files, stdin, tests), (json!([]), Vec::new(), json!([])));
    assert!(bytes < 1000, "{bytes}");

    let run = json_body(get(&app, &me, &format!("/api/runs/{old}")).await).await;
    assert_eq!(run["status"], "finished", "{run}");
    assert_eq!(run["verdict"], "wrong_answer", "{run}");
    assert_eq!(run["timeMs"], 25, "{run}");
    assert_eq!(run["stdout"], "", "{run}");
    assert_eq!(run["stderr"], "", "{run}");
    assert_eq!(run["stdoutTruncated"], true, "{run}");
    assert_eq!(run["tests"][1]["verdict"], "wrong_answer", "{run}");
    assert_eq!(run["tests"][1]["stdout"], "", "{run}");
    assert_eq!(run["tests"][1]["stdoutTruncated"], true, "{run}");

    let kept = json_body(get(&app, &me, &format!("/api/runs/{recent}")).await).await;
    assert_eq!(kept["stdout"], "the program's output", "{kept}");
    let untouched: Option<chrono::DateTime<chrono::Utc>> =
        sqlx::query_scalar("SELECT purged_at FROM runs WHERE id = $1")
            .bind(recent)
            .fetch_one(&app.db)
            .await
            .expect("purged_at");
    assert!(untouched.is_none());
}

#[tokio::test]
async fn a_user_over_the_stored_bytes_cap_cannot_start_runs() {
    let app = spawn_app_with(&[("RUN_MAX_STORED_BYTES_PER_USER", "10000")]).await;
    crate::fixtures::fake_worker(&app).await;
    let me = user(&app).await;
    let other = user(&app).await;
    finished_run(&app, &me, Duration::from_secs(60), 20_000).await;

    let body = json!({"language": "python", "source": "print(1)"});
    let error = assert_error(
        post_json(&app, &me, "/api/runs", body.clone()).await,
        409,
        "run_storage_full",
    )
    .await;
    assert!(
        error["message"]
            .as_str()
            .unwrap_or_default()
            .contains("10000"),
        "{error}"
    );
    let runs = count(&app, "SELECT count(*) FROM runs").await;
    assert_eq!(runs, 1, "nothing written");

    // The cap is per user.
    let response = post_json(&app, &other, "/api/runs", body.clone()).await;
    assert_eq!(response.status().as_u16(), 202);

    // Once the old run is purged, its bytes no longer count.
    sqlx::query(
        "UPDATE runs SET files = '[]', stdin = '', tests = '[]', purged_at = now() \
         WHERE user_id = $1",
    )
    .bind(me.id)
    .execute(&app.db)
    .await
    .expect("purge");
    let response = post_json(&app, &me, "/api/runs", body).await;
    assert_eq!(response.status().as_u16(), 202);
}
