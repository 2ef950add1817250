//! Queue monitoring and Prometheus metrics.

use std::collections::BTreeMap;

use reqwest::Method;
use serde_json::json;

use crate::{
    eventually::eventually,
    fixtures::{User, Worker, call, get, post_json, signed_up_user, user},
    helpers::{TestApp, assert_error, free_port, json_body, spawn_app_with},
};

/// Parses Prometheus text exposition: `name{labels} value` lines, `#` comments.
fn parse_prometheus(text: &str) -> BTreeMap<String, Vec<(String, f64)>> {
    let mut series: BTreeMap<String, Vec<(String, f64)>> = BTreeMap::new();
    for line in text
        .lines()
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
    {
        let (key, value) = line
            .rsplit_once(' ')
            .unwrap_or_else(|| panic!("no value: {line}"));
        let value: f64 = value
            .parse()
            .unwrap_or_else(|_| panic!("bad value: {line}"));
        let (name, labels) = match key.split_once('{') {
            Some((name, rest)) => {
                assert!(rest.ends_with('}'), "unterminated labels: {line}");
                (name, rest.trim_end_matches('}').to_owned())
            }
            None => (key, String::new()),
        };
        assert!(
            !name.is_empty()
                && name
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':'),
            "bad metric name: {line}"
        );
        series
            .entry(name.to_owned())
            .or_default()
            .push((labels, value));
    }
    series
}

async fn admin_app() -> (TestApp, User) {
    let app = spawn_app_with(&[("ADMIN_EMAILS", "root@codecall.dev")]).await;
    let (id, token, _) = signed_up_user(&app, "root@codecall.dev").await;
    (
        app,
        User {
            id,
            email: "root@codecall.dev".into(),
            token,
        },
    )
}

#[tokio::test]
async fn only_admins_see_the_queue_and_the_dashboard() {
    let (app, admin) = admin_app().await;
    let someone = user(&app).await;
    let report = json_body(get(&app, &admin, "/api/admin/queue").await).await;
    for key in [
        "pending",
        "running",
        "finished",
        "failed",
        "throughput",
        "dispatch",
        "workers",
    ] {
        assert!(report.get(key).is_some(), "{key} in {report}");
    }
    assert_error(
        get(&app, &someone, "/api/admin/queue").await,
        403,
        "forbidden",
    )
    .await;
    assert_error(
        call(&app, None, Method::GET, "/api/admin/queue", None).await,
        401,
        "missing_token",
    )
    .await;

    let page = app
        .client
        .get(app.url(&format!("/admin?token={}", admin.token)))
        .send()
        .await
        .expect("sent");
    assert_eq!(page.status().as_u16(), 200);
    assert!(
        page.headers()["content-type"]
            .to_str()
            .unwrap_or("")
            .starts_with("text/html")
    );
    let html = page.text().await.expect("html");
    assert!(html.contains("http-equiv=\"refresh\"") && html.contains("Workers"));
    let denied = app
        .client
        .get(app.url(&format!("/admin?token={}", someone.token)))
        .send()
        .await
        .expect("sent");
    assert_eq!(denied.status().as_u16(), 403);
}

#[tokio::test]
async fn queue_counts_move_and_a_stopped_workers_heartbeat_goes_stale() {
    crate::fixtures::require_docker!();
    let (app, admin) = admin_app().await;
    let report = || async { json_body(get(&app, &admin, "/api/admin/queue").await).await };
    let before = report().await;
    assert_eq!(before["pending"], 0);

    let metrics_port = free_port();
    let mut worker = Worker::start(&app, &[("METRICS_PORT", &metrics_port.to_string())]).await;
    let run = json_body(
        post_json(
            &app,
            &admin,
            "/api/runs?wait=true",
            json!({"language": "python", "source": "print(7)"}),
        )
        .await,
    )
    .await;
    assert_eq!(run["verdict"], "accepted");
    let after = report().await;
    assert_eq!(after["finished"], 1);
    assert_eq!(after["throughput"]["lastMinute"], 1);
    let workers = after["workers"].as_array().expect("workers");
    assert_eq!(workers.len(), 1);
    assert_eq!(workers[0]["stale"], false);
    assert!(workers[0]["done"].as_u64().is_some());

    // The worker's own metrics, after a run.
    let text = reqwest::get(format!("http://127.0.0.1:{metrics_port}/metrics"))
        .await
        .expect("metrics")
        .text()
        .await
        .expect("text");
    let series = parse_prometheus(&text);
    let runs = series
        .get("codecall_runs_total")
        .expect("codecall_runs_total");
    assert!(
        runs.iter()
            .any(|(labels, v)| labels.contains("verdict=\"accepted\"")
                && labels.contains("language=\"python\"")
                && *v >= 1.0),
        "{runs:?}"
    );
    for name in [
        "codecall_run_duration_seconds_bucket",
        "codecall_container_start_seconds_count",
    ] {
        assert!(series.contains_key(name), "{name} missing");
    }

    // A queued run is pending while no worker takes it.
    worker.kill_and_wait().await;
    post_json(
        &app,
        &admin,
        "/api/runs",
        json!({"language": "python", "source": "print(8)"}),
    )
    .await;
    eventually(
        std::time::Duration::from_secs(20),
        "the killed worker's heartbeat to go stale",
        || async {
            let r = report().await;
            assert_eq!(r["pending"], 1);
            assert!(r["oldestPendingAgeSeconds"].as_f64().is_some());
            let workers = r["workers"].as_array().expect("workers");
            // Its announcement expired: gone from the list is stale too.
            let stale = workers.first().is_none_or(|w| w["stale"] == true);
            if stale { Ok(()) } else { Err(r) }
        },
    )
    .await;
}

#[tokio::test]
async fn api_metrics_parse_and_count_requests_by_route_and_status() {
    let (app, admin) = admin_app().await;
    get(&app, &admin, "/api/users/me").await;
    call(&app, None, Method::GET, "/api/users/me", None).await;
    let text = app.get("/metrics").await.text().await.expect("text");
    let series = parse_prometheus(&text);
    let requests = series
        .get("http_requests_total")
        .expect("http_requests_total");
    assert!(
        requests
            .iter()
            .any(|(l, _)| l.contains("route=\"/api/users/me\"") && l.contains("status=\"200\"")),
        "{requests:?}"
    );
    assert!(
        requests
            .iter()
            .any(|(l, _)| l.contains("route=\"/api/users/me\"") && l.contains("status=\"401\"")),
        "{requests:?}"
    );
    assert!(series.contains_key("http_request_duration_seconds_bucket"));
    assert!(series.contains_key("codecall_rooms"));
}

#[tokio::test]
async fn the_openapi_document_is_valid_and_every_documented_route_exists() {
    let (app, _) = admin_app().await;
    let response = app.get("/api/openapi.json").await;
    assert_eq!(response.status().as_u16(), 200);
    let doc = crate::helpers::json_body(response).await;
    assert!(
        doc["openapi"].as_str().is_some_and(|v| v.starts_with("3.")),
        "{}",
        doc["openapi"]
    );
    assert!(doc["components"]["schemas"]["ErrorBody"].is_object());
    assert!(doc["components"]["securitySchemes"]["bearer"].is_object());
    let paths = doc["paths"].as_object().expect("paths");

    // Routes are registered through `utoipa_axum::routes!`, so every route is
    // documented by construction; here, every documented operation must be
    // served by the router (the fallback's 404/405 would say otherwise).
    let mut operations = 0;
    for (path, item) in paths {
        let concrete = path
            .split('/')
            .map(|segment| {
                if segment.starts_with('{') {
                    uuid::Uuid::new_v4().to_string()
                } else {
                    segment.to_owned()
                }
            })
            .collect::<Vec<_>>()
            .join("/");
        for method in ["get", "post", "patch", "put", "delete"] {
            let Some(operation) = item.get(method) else {
                continue;
            };
            operations += 1;
            assert!(
                operation["responses"]
                    .as_object()
                    .is_some_and(|r| !r.is_empty()),
                "{method} {path}"
            );
            let response = app
                .client
                .request(
                    method.to_uppercase().parse().expect("method"),
                    app.url(&concrete),
                )
                .header("content-type", "application/json")
                .body("{}")
                .send()
                .await
                .expect("sent");
            let status = response.status().as_u16();
            let body = response.text().await.unwrap_or_default();
            assert!(status != 405, "{method} {path}: method not routed");
            assert!(
                !(status == 404 && body.contains("no such route")),
                "{method} {path}: not routed"
            );
        }
    }
    // The original Node backend's endpoints (health, `/auth/*`, the
    // protected test route) and a few of each area are there.
    for path in [
        "/health",
        "/auth/register",
        "/auth/login",
        "/api/auth/refresh",
        "/api/test/protected",
        "/api/friends/requests",
        "/api/sessions/{id}",
        "/api/runs",
        "/api/sessions/{id}/events",
        "/api/admin/queue",
        "/metrics",
        "/api/problems",
        "/api/problems/{id}",
        "/api/sessions/{id}/problem",
        "/api/sessions/{id}/submit",
        "/api/sessions/{id}/feedback",
        "/api/sessions/{id}/feedback/{candidateId}",
        "/api/sessions/{id}/review",
        "/api/users/me/feedback",
    ] {
        assert!(paths.contains_key(path), "{path} undocumented");
    }
    assert!(operations >= 40, "{operations} operations");

    // The interactive page is served from the binary (no internet).
    let docs = app
        .client
        .get(app.url("/api/docs/"))
        .send()
        .await
        .expect("sent");
    assert_eq!(docs.status().as_u16(), 200);
    assert!(docs.text().await.unwrap_or_default().contains("swagger"));
}
