//! PostgreSQL going away: every route answers 503 `dependency_unavailable`
//! (not 500) while it is down, and the api recovers by itself when it is back.

use std::time::Duration;

use codecall_api::{config::Config, startup::Application};
use reqwest::Method;
use serde_json::json;
use uuid::Uuid;

use crate::{
    eventually::eventually,
    fixtures::{User, call, signed_up_user},
    helpers::{OwnPostgres, TestApp, assert_error, create_database, test_env, with_database},
};

#[tokio::test]
async fn postgres_down_answers_503_on_every_route_and_recovers_by_itself() {
    let pg = OwnPostgres::start().await;
    let database = create_database(&pg.url).await;
    let db_url = with_database(&pg.url, &database.name);
    let (_, redis_url) = crate::helpers::server_urls();
    let prefix = format!("test:{}:", Uuid::new_v4().simple());
    let mut env = test_env(&db_url, &redis_url, &prefix);
    env.insert("DATABASE_ACQUIRE_TIMEOUT".into(), "1s".into());
    let config = Config::from_lookup(|k| env.get(k).cloned()).expect("test configuration");
    let server = Application::build(config)
        .await
        .expect("application builds");
    let port = server.port();
    tokio::spawn(server.run_until_stopped(std::future::pending()));
    let app = TestApp {
        address: format!("http://127.0.0.1:{port}"),
        db: sqlx::PgPool::connect_lazy(&db_url).expect("lazy pool"),
        db_name: database.name.clone(),
        database: std::sync::Arc::new(database),
        server_url: pg.url.clone(),
        db_url,
        redis_url,
        redis_prefix: prefix,
        client: reqwest::Client::new(),
    };
    let email = "down@codecall.dev";
    let (id, token, _) = signed_up_user(&app, email).await;
    let me = User {
        id,
        email: email.into(),
        token,
    };
    let login = json!({"email": email, "password": "StrongPass123"});

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
        call(&app, Some(&me), Method::GET, "/api/users/me", None).await,
        503,
        "dependency_unavailable",
    )
    .await;
    assert_error(
        call(&app, Some(&me), Method::GET, "/api/sessions", None).await,
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
            let response = call(&app, Some(&me), Method::GET, "/api/users/me", None).await;
            response.status().as_u16() == 200
        },
    )
    .await;
    let response = app.post_json("/auth/login", &login).await;
    assert_eq!(response.status().as_u16(), 200);
}
