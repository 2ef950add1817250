//! PostgreSQL going away: every route answers 503 `dependency_unavailable`
//! (not 500) while it is down, and the api recovers by itself when it is back.

use std::time::Duration;

use serde_json::json;

use crate::{
    eventually::eventually,
    fixtures::{get, user},
    helpers::{OwnPostgres, assert_error, spawn_app_on},
};

#[tokio::test]
async fn postgres_down_answers_503_on_every_route_and_recovers_by_itself() {
    let pg = OwnPostgres::start().await;
    let app = spawn_app_on(&pg.url, &[("DATABASE_ACQUIRE_TIMEOUT", "1s")]).await;
    let me = user(&app).await;
    let login = json!({"email": me.email, "password": "StrongPass123"});

    pg.stop();
    let started = std::time::Instant::now();
    assert_error(
        app.post_json("/auth/login", &login).await,
        503,
        "dependency_unavailable",
    )
    .await;
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "answered promptly"
    );
    assert_error(
        get(&app, &me, "/api/users/me").await,
        503,
        "dependency_unavailable",
    )
    .await;
    assert_error(
        get(&app, &me, "/api/sessions").await,
        503,
        "dependency_unavailable",
    )
    .await;
    assert_error(
        app.post_json(
            "/auth/register",
            &json!({"name": "Late", "email": "late@codecall.dev", "password": "StrongPass123"}),
        )
        .await,
        503,
        "dependency_unavailable",
    )
    .await;

    pg.restart().await;
    // Routes without a sign-in throttle first: failed logins would count.
    eventually(
        Duration::from_secs(10),
        "the api to work again without a restart",
        || async {
            let response = get(&app, &me, "/api/users/me").await;
            response.status().as_u16() == 200
        },
    )
    .await;
    let response = app.post_json("/auth/login", &login).await;
    assert_eq!(response.status().as_u16(), 200);
}
