//! Accounts and authentication, the original Node backend's endpoints and
//! response shapes included, against real PostgreSQL and Redis.
//!
//! Over 600 lines on purpose: one feature's suite, each test independent and
//! reading as one scenario; the shared setup is in the harness (`fixtures`).

use base64::Engine as _;
use serde_json::{Value, json};
use uuid::Uuid;

use crate::{
    fixtures::{login, register, signed_up_user},
    helpers::{
        ACCESS_SECRET, AppProcess, REFRESH_SECRET, TestApp, assert_error, claims_of, count,
        json_body, sign, spawn_app, spawn_app_with, unix_now,
    },
};

const README_REGISTER: &str =
    r#"{"name": "Test User", "email": "test@codecall.dev", "password": "StrongPass123"}"#;
const README_LOGIN: &str = r#"{"email": "test@codecall.dev", "password": "StrongPass123"}"#;

async fn post_raw(app: &TestApp, path: &str, body: &str) -> reqwest::Response {
    app.client
        .post(app.url(path))
        .header("content-type", "application/json")
        .body(body.to_owned())
        .send()
        .await
        .expect("sent")
}

async fn get_with(app: &TestApp, path: &str, token: &str) -> reqwest::Response {
    app.client
        .get(app.url(path))
        .bearer_auth(token)
        .send()
        .await
        .expect("sent")
}

/// `GET /api/test/protected` (it needs nothing but a valid access token)
/// with `token`.
async fn protected(app: &TestApp, token: &str) -> reqwest::Response {
    get_with(app, "/api/test/protected", token).await
}

/// The api's password counters (see `codecall_api::auth::password`).
const HASHES: &str = "codecall_password_hashes_total";
const MATCHES: &str = r#"codecall_password_verifications_total{outcome="match"}"#;
const MISMATCHES: &str = r#"codecall_password_verifications_total{outcome="mismatch"}"#;
const UNKNOWN_USERS: &str = r#"codecall_password_verifications_total{outcome="unknown_user"}"#;

async fn refresh(app: &TestApp, token: &str) -> reqwest::Response {
    app.post_json("/auth/refresh", &json!({ "refreshToken": token }))
        .await
}

#[tokio::test]
async fn the_readme_register_and_login_examples_answer_with_the_original_backend_shapes() {
    let app = spawn_app().await;

    let response = post_raw(&app, "/auth/register", README_REGISTER).await;
    assert_eq!(response.status().as_u16(), 201);
    let registered = json_body(response).await;
    assert_eq!(registered["success"], true);
    assert_eq!(registered["user"]["email"], "test@codecall.dev");
    assert!(registered["user"].get("passwordHash").is_none());

    let response = post_raw(&app, "/auth/login", README_LOGIN).await;
    assert_eq!(response.status().as_u16(), 200);
    let body = json_body(response).await;
    let keys: Vec<&str> = body
        .as_object()
        .expect("object")
        .keys()
        .map(String::as_str)
        .collect();
    assert_eq!(keys, ["accessToken", "refreshToken", "success"]);
    assert_eq!(body["success"], true);

    let access = body["accessToken"].as_str().expect("token");
    let response = protected(&app, access).await;
    assert_eq!(response.status().as_u16(), 200);
    assert_eq!(
        json_body(response).await,
        json!({
            "success": true,
            "message": "Protected route accessed",
            "user": { "userId": registered["user"]["id"], "email": "test@codecall.dev" },
        })
    );
}

#[tokio::test]
async fn auth_is_also_served_under_api_auth() {
    let app = spawn_app().await;
    let response = post_raw(&app, "/api/auth/register", README_REGISTER).await;
    assert_eq!(response.status().as_u16(), 201);
    let response = post_raw(&app, "/api/auth/login", README_LOGIN).await;
    assert_eq!(response.status().as_u16(), 200);
}

#[tokio::test]
async fn a_duplicate_email_is_409_even_with_other_case_or_spaces() {
    let app = spawn_app().await;
    assert_eq!(
        register(&app, "A", "dup@codecall.dev", "StrongPass123")
            .await
            .status(),
        201
    );
    for email in [
        "dup@codecall.dev",
        "  DUP@CodeCall.dev ",
        "Dup@codecall.DEV",
    ] {
        let response = register(&app, "B", email, "StrongPass123").await;
        assert_error(response, 409, "email_taken").await;
    }
}

#[tokio::test]
async fn two_concurrent_registrations_of_one_email_give_exactly_one_201() {
    let app = spawn_app().await;
    let attempts = (0..4).map(|i| {
        let app = &app;
        async move {
            register(
                app,
                &format!("racer {i}"),
                "race@codecall.dev",
                "StrongPass123",
            )
            .await
        }
    });
    let statuses: Vec<u16> = futures_util::future::join_all(attempts)
        .await
        .iter()
        .map(|r| r.status().as_u16())
        .collect();
    assert_eq!(
        statuses.iter().filter(|s| **s == 201).count(),
        1,
        "{statuses:?}"
    );
    assert_eq!(
        statuses.iter().filter(|s| **s == 409).count(),
        3,
        "{statuses:?}"
    );
    let rows = count(&app, "SELECT count(*) FROM users").await;
    assert_eq!(rows, 1);
}

#[tokio::test]
async fn invalid_registrations_get_422_with_field_errors_before_any_hashing() {
    // A process of its own: its password counters count only this test.
    let app = AppProcess::start(&[]).await;
    assert_eq!(app.first_ready_answer().await.status(), 200);
    let cases = [
        (
            json!({"name": "", "email": "a@codecall.dev", "password": "StrongPass123"}),
            "name",
        ),
        (
            json!({"name": "   ", "email": "a@codecall.dev", "password": "StrongPass123"}),
            "name",
        ),
        (
            json!({"name": "x".repeat(101), "email": "a@codecall.dev", "password": "StrongPass123"}),
            "name",
        ),
        (
            json!({"name": "A", "email": "not-an-email", "password": "StrongPass123"}),
            "email",
        ),
        (
            json!({"name": "A", "email": "a@codecall.dev", "password": "Short77"}),
            "password",
        ),
        (
            json!({"name": "A", "email": "a@codecall.dev", "password": "p".repeat(129)}),
            "password",
        ),
        (
            json!({"name": "A", "email": "a@codecall.dev", "password": "p".repeat(10 * 1024)}),
            "password",
        ),
        (
            json!({"email": "a@codecall.dev", "password": "StrongPass123"}),
            "name",
        ),
    ];
    for (body, field) in cases {
        let response = app.post_json("/auth/register", &body).await;
        let error = assert_error(response, 422, "validation_failed").await;
        assert!(error["fields"][field].is_string(), "{field}: {error}");
        // A refusal does no argon2 work.
        assert_eq!(app.metric(HASHES).await, 0.0, "{field} hashed a password");
    }
    // Several problems at once are all reported.
    let response = app
        .post_json(
            "/auth/register",
            &json!({"name": "", "email": "x", "password": "1"}),
        )
        .await;
    let error = assert_error(response, 422, "validation_failed").await;
    assert_eq!(
        error["fields"].as_object().map(|o| o.len()),
        Some(3),
        "{error}"
    );
    let db = sqlx::PgPool::connect(&app.db_url).await.expect("database");
    let rows: i64 = sqlx::query_scalar("SELECT count(*) FROM users")
        .fetch_one(&db)
        .await
        .expect("count");
    assert_eq!(rows, 0, "nothing written");
    db.close().await;
    assert_eq!(app.metric(HASHES).await, 0.0, "no refusal hashed");

    // The counter does count: a valid registration hashes once.
    let response = app
        .post_json(
            "/auth/register",
            &json!({"name": "A", "email": "a@codecall.dev", "password": "StrongPass123"}),
        )
        .await;
    assert_eq!(response.status().as_u16(), 201);
    assert_eq!(app.metric(HASHES).await, 1.0);
}

#[tokio::test]
async fn malformed_wrongly_typed_unsupported_and_oversize_bodies_get_the_error_body() {
    let app = spawn_app_with(&[("BODY_LIMIT_BYTES", "4096")]).await;
    assert_error(
        post_raw(&app, "/auth/register", r#"{"name": "A","#).await,
        400,
        "malformed_json",
    )
    .await;
    assert_error(
        post_raw(&app, "/auth/register", r#"{"name": 42}"#).await,
        422,
        "invalid_body",
    )
    .await;
    assert_error(
        post_raw(&app, "/auth/register", r#""a string""#).await,
        422,
        "invalid_body",
    )
    .await;
    let response = app
        .client
        .post(app.url("/auth/register"))
        .header("content-type", "text/plain")
        .body(README_REGISTER)
        .send()
        .await
        .expect("sent");
    assert_error(response, 415, "unsupported_media_type").await;
    let huge = json!({"name": "A", "email": "a@codecall.dev", "password": "p".repeat(8000)});
    assert_error(
        app.post_json("/auth/register", &huge).await,
        413,
        "payload_too_large",
    )
    .await;
}

#[tokio::test]
async fn sql_metacharacters_and_unicode_are_stored_and_returned_literally() {
    let app = spawn_app().await;
    let name = "Robert'); DROP TABLE users;-- Ünïcødé 名前 🚀";
    let email = "o'brien+\"quote\"@exämple.dev";
    let response = register(&app, name, email, "StrongPass123").await;
    assert_eq!(response.status().as_u16(), 201);
    let (access, _) = login(&app, email, "StrongPass123").await;
    let me = json_body(get_with(&app, "/api/users/me", &access).await).await;
    assert_eq!(me["user"]["name"], name);
    assert_eq!(me["user"]["email"], email);
}

#[tokio::test]
async fn passwords_are_stored_as_argon2id_with_owasp_parameters() {
    let app = spawn_app().await;
    register(&app, "A", "hash@codecall.dev", "StrongPass123").await;
    let hash: String = sqlx::query_scalar("SELECT password_hash FROM users")
        .fetch_one(&app.db)
        .await
        .expect("hash");
    assert!(
        hash.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"),
        "{hash}"
    );
    assert!(!hash.contains("StrongPass123"));
}

#[tokio::test]
async fn unknown_email_and_wrong_password_are_indistinguishable() {
    // A process of its own: its password counters count only this test.
    let app = AppProcess::start(&[]).await;
    assert_eq!(app.first_ready_answer().await.status(), 200);
    let registered = app
        .post_json(
            "/auth/register",
            &json!({"name": "A", "email": "known@codecall.dev", "password": "StrongPass123"}),
        )
        .await;
    assert_eq!(registered.status().as_u16(), 201);
    let attempt = |email: &'static str| {
        let app = &app;
        async move {
            app.post_json(
                "/auth/login",
                &json!({"email": email, "password": "WrongPass123"}),
            )
            .await
        }
    };
    for round in 1..=4 {
        let r = attempt("known@codecall.dev").await;
        assert_eq!(
            assert_error(r, 401, "invalid_credentials").await["message"],
            "invalid email or password"
        );
        let r = attempt("nobody@codecall.dev").await;
        assert_eq!(
            assert_error(r, 401, "invalid_credentials").await["message"],
            "invalid email or password"
        );
        // Both ran exactly one argon2 verification each: the unknown email
        // against the dummy hash (its cost is a real hash's), so it takes as
        // long as a wrong password.
        assert_eq!(app.metric(MISMATCHES).await, f64::from(round));
        assert_eq!(app.metric(UNKNOWN_USERS).await, f64::from(round));
    }
    assert_eq!(app.metric(MATCHES).await, 0.0);
    assert_eq!(
        app.metric(HASHES).await,
        1.0,
        "only the registration hashed"
    );
}

#[tokio::test]
async fn access_tokens_carry_the_documented_claims() {
    let app = spawn_app().await;
    let (id, access, refresh) = signed_up_user(&app, "claims@codecall.dev").await;
    let claims = claims_of(&access);
    assert_eq!(claims["sub"], id.to_string());
    assert_eq!(claims["email"], "claims@codecall.dev");
    assert_eq!(claims["typ"], "access");
    assert!(claims["jti"].is_string() && claims["sid"].is_string());
    let (iat, exp) = (
        claims["iat"].as_u64().expect("iat"),
        claims["exp"].as_u64().expect("exp"),
    );
    assert_eq!(exp - iat, 15 * 60, "JWT_ACCESS_EXPIRES_IN default");
    let refresh_claims = claims_of(&refresh);
    assert_eq!(refresh_claims["typ"], "refresh");
    assert_eq!(refresh_claims["sid"], claims["sid"]);
    assert_eq!(
        refresh_claims["exp"].as_u64().expect("exp") - refresh_claims["iat"].as_u64().expect("iat"),
        7 * 86_400
    );
    // Only a hash of the refresh token is stored.
    let stored: Vec<u8> = sqlx::query_scalar("SELECT token_hash FROM refresh_tokens")
        .fetch_one(&app.db)
        .await
        .expect("row");
    assert_eq!(stored.len(), 32);
    assert!(!String::from_utf8_lossy(&stored).contains(&refresh));
}

#[tokio::test]
async fn bad_tokens_are_refused_with_401() {
    let app = spawn_app().await;
    let (id, access, refresh_token) = signed_up_user(&app, "tokens@codecall.dev").await;
    let sid = claims_of(&access)["sid"].clone();
    let good_claims = |typ: &str, exp: u64| {
        json!({"sub": id, "email": "tokens@codecall.dev", "iat": unix_now(), "exp": exp,
               "jti": Uuid::new_v4(), "sid": sid, "typ": typ})
    };
    // The forged tokens are otherwise perfect: signed with the right secret they work.
    let control = sign(&ACCESS_SECRET, &good_claims("access", unix_now() + 600));
    assert_eq!(protected(&app, &control).await.status(), 200);

    let response = app.get("/api/test/protected").await;
    assert_error(response, 401, "missing_token").await;
    for header in [
        "Token abc",
        "Bearer",
        "Bearer ",
        "bearer x.y.z",
        "Bearer not.a.jwt",
    ] {
        let response = app
            .client
            .get(app.url("/api/test/protected"))
            .header("authorization", header)
            .send()
            .await
            .expect("sent");
        assert_error(response, 401, "invalid_token").await;
    }

    let b64 = |v: &Value| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(v.to_string());
    let alg_none = format!(
        "{}.{}.",
        b64(&json!({"alg": "none", "typ": "JWT"})),
        b64(&good_claims("access", unix_now() + 600))
    );
    let wrong_signature = sign(
        "another-secret-another-secret-another-secret",
        &good_claims("access", unix_now() + 600),
    );
    let expired = sign(&ACCESS_SECRET, &good_claims("access", unix_now() - 3600));
    for (what, token, code) in [
        ("alg none", alg_none.as_str(), "invalid_token"),
        ("wrong signature", &wrong_signature, "invalid_token"),
        ("expired", &expired, "token_expired"),
        (
            "refresh token as access token",
            &refresh_token,
            "invalid_token",
        ),
    ] {
        let response = protected(&app, token).await;
        assert_eq!(response.status().as_u16(), 401, "{what}");
        assert_error(response, 401, code).await;
    }
    // A refresh-typed token signed with the access secret is still not an access token.
    let typed_refresh = sign(&ACCESS_SECRET, &good_claims("refresh", unix_now() + 600));
    assert_error(protected(&app, &typed_refresh).await, 401, "invalid_token").await;

    // And an access token cannot refresh.
    assert_error(refresh(&app, &access).await, 401, "invalid_token").await;
    let forged_refresh = sign(&REFRESH_SECRET, &good_claims("refresh", unix_now() + 600));
    assert_error(refresh(&app, &forged_refresh).await, 401, "invalid_token").await;
}

#[tokio::test]
async fn a_refresh_token_works_once_and_its_reuse_revokes_the_whole_family() {
    let app = spawn_app().await;
    let (_, access0, refresh0) = signed_up_user(&app, "rotate@codecall.dev").await;
    // A second, unrelated login of the same user.
    let (other_access, other_refresh) = login(&app, "rotate@codecall.dev", "StrongPass123").await;

    let response = refresh(&app, &refresh0).await;
    assert_eq!(response.status().as_u16(), 200);
    let body = json_body(response).await;
    assert_eq!(body["success"], true);
    let access1 = body["accessToken"].as_str().expect("access").to_owned();
    let refresh1 = body["refreshToken"].as_str().expect("refresh").to_owned();
    assert_ne!(refresh1, refresh0);
    assert_eq!(protected(&app, &access1).await.status(), 200);

    let response = refresh(&app, &refresh1).await;
    let refresh2 = json_body(response).await["refreshToken"]
        .as_str()
        .expect("r2")
        .to_owned();

    // Reuse of the first token: the family is revoked, down to its newest token.
    assert_error(refresh(&app, &refresh0).await, 401, "refresh_token_reused").await;
    assert_error(refresh(&app, &refresh2).await, 401, "token_revoked").await;
    for access in [&access0, &access1] {
        assert_error(protected(&app, access).await, 401, "token_revoked").await;
    }
    // The other login is untouched.
    assert_eq!(protected(&app, &other_access).await.status(), 200);
    assert_eq!(refresh(&app, &other_refresh).await.status(), 200);
}

#[tokio::test]
async fn logout_ends_one_login_and_logout_all_ends_every_login() {
    let app = spawn_app().await;
    let (_, access_a, refresh_a) = signed_up_user(&app, "out@codecall.dev").await;
    let (access_b, refresh_b) = login(&app, "out@codecall.dev", "StrongPass123").await;
    let (access_c, refresh_c) = login(&app, "out@codecall.dev", "StrongPass123").await;

    let response = app
        .post_json("/auth/logout", &json!({"refreshToken": refresh_a}))
        .await;
    assert_eq!(response.status().as_u16(), 204);
    assert_error(refresh(&app, &refresh_a).await, 401, "token_revoked").await;
    assert_error(protected(&app, &access_a).await, 401, "token_revoked").await;
    assert_eq!(protected(&app, &access_b).await.status(), 200);

    let response = app
        .client
        .post(app.url("/auth/logout-all"))
        .bearer_auth(&access_b)
        .send()
        .await
        .expect("sent");
    assert_eq!(response.status().as_u16(), 204);
    for (access, spent) in [(&access_b, &refresh_b), (&access_c, &refresh_c)] {
        assert_error(protected(&app, access).await, 401, "token_revoked").await;
        assert_error(refresh(&app, spent).await, 401, "token_revoked").await;
    }
    // logout-all needs an access token.
    let response = app
        .client
        .post(app.url("/auth/logout-all"))
        .send()
        .await
        .expect("sent");
    assert_error(response, 401, "missing_token").await;
    // logout with garbage is refused; with a spent login it is idempotent.
    assert_error(
        app.post_json("/auth/logout", &json!({"refreshToken": "garbage"}))
            .await,
        401,
        "invalid_token",
    )
    .await;
    let again = app
        .post_json("/auth/logout", &json!({"refreshToken": refresh_a}))
        .await;
    assert_eq!(again.status().as_u16(), 204);
}

#[tokio::test]
async fn changing_the_password_revokes_other_logins_and_keeps_this_one() {
    let app = spawn_app().await;
    let (_, access_here, refresh_here) = signed_up_user(&app, "pw@codecall.dev").await;
    let (access_there, refresh_there) = login(&app, "pw@codecall.dev", "StrongPass123").await;
    let change = |current: &str, new: &str| {
        app.client
            .post(app.url("/api/users/me/password"))
            .bearer_auth(&access_here)
            .json(&json!({"currentPassword": current, "newPassword": new}))
            .send()
    };

    let wrong = change("NotMyPassword", "NewStrongPass456")
        .await
        .expect("sent");
    let error = assert_error(wrong, 422, "validation_failed").await;
    assert!(error["fields"]["currentPassword"].is_string());
    let short = change("StrongPass123", "short").await.expect("sent");
    assert_error(short, 422, "validation_failed").await;

    let response = change("StrongPass123", "NewStrongPass456")
        .await
        .expect("sent");
    assert_eq!(response.status().as_u16(), 204);

    assert_eq!(protected(&app, &access_here).await.status(), 200);
    assert_eq!(refresh(&app, &refresh_here).await.status(), 200);
    assert_error(protected(&app, &access_there).await, 401, "token_revoked").await;
    assert_error(refresh(&app, &refresh_there).await, 401, "token_revoked").await;

    let old = app
        .post_json(
            "/auth/login",
            &json!({"email": "pw@codecall.dev", "password": "StrongPass123"}),
        )
        .await;
    assert_error(old, 401, "invalid_credentials").await;
    login(&app, "pw@codecall.dev", "NewStrongPass456").await;
}

#[tokio::test]
async fn users_can_read_and_rename_themselves() {
    let app = spawn_app().await;
    let (id, access, _) = signed_up_user(&app, "me@codecall.dev").await;
    let me = json_body(get_with(&app, "/api/users/me", &access).await).await;
    assert_eq!(me["user"]["id"], id.to_string());
    assert_eq!(me["user"]["role"], "user");
    assert!(
        me["user"]["createdAt"]
            .as_str()
            .is_some_and(|t| t.ends_with('Z'))
    );
    assert!(me["user"].get("passwordHash").is_none());

    let patch = |body: Value| {
        app.client
            .patch(app.url("/api/users/me"))
            .bearer_auth(&access)
            .json(&body)
            .send()
    };
    let renamed = json_body(patch(json!({"name": "  New Name "})).await.expect("sent")).await;
    assert_eq!(renamed["user"]["name"], "New Name");
    assert_error(
        patch(json!({"name": ""})).await.expect("sent"),
        422,
        "validation_failed",
    )
    .await;
    assert_error(app.get("/api/users/me").await, 401, "missing_token").await;
}

#[tokio::test]
async fn admin_emails_get_the_admin_role() {
    let app = spawn_app_with(&[("ADMIN_EMAILS", "Boss@CodeCall.dev, other@x.dev")]).await;
    let (_, access, _) = signed_up_user(&app, "boss@codecall.dev").await;
    let me = json_body(get_with(&app, "/api/users/me", &access).await).await;
    assert_eq!(me["user"]["role"], "admin");
    let (_, access, _) = signed_up_user(&app, "worker@codecall.dev").await;
    let me = json_body(get_with(&app, "/api/users/me", &access).await).await;
    assert_eq!(me["user"]["role"], "user");
}

async fn login_from(
    app: &TestApp,
    address: &str,
    email: &str,
    password: &str,
) -> reqwest::Response {
    app.client
        .post(app.url("/auth/login"))
        .header("x-forwarded-for", format!("203.0.113.99, {address}"))
        .json(&json!({"email": email, "password": password}))
        .send()
        .await
        .expect("sent")
}

#[tokio::test]
async fn repeated_failed_logins_are_throttled_per_account_and_address() {
    let app = spawn_app_with(&[
        ("TRUST_FORWARDED_FOR", "true"),
        ("LOGIN_MAX_FAILURES_PER_ACCOUNT_ADDRESS", "3"),
        ("LOGIN_MAX_FAILURES_PER_ACCOUNT", "6"),
        ("LOGIN_MAX_FAILURES_PER_ADDRESS", "100"),
    ])
    .await;
    register(&app, "Victim", "victim@codecall.dev", "StrongPass123").await;
    register(&app, "Bystander", "bystander@codecall.dev", "StrongPass123").await;
    let attacker = "198.51.100.1";

    for _ in 0..3 {
        let r = login_from(&app, attacker, "victim@codecall.dev", "guess-guess").await;
        assert_error(r, 401, "invalid_credentials").await;
    }
    // The attacker's address is now locked out of the account, even with the right password.
    let response = login_from(&app, attacker, "victim@codecall.dev", "StrongPass123").await;
    let retry_after: u64 = response.headers()["retry-after"]
        .to_str()
        .expect("ascii")
        .parse()
        .expect("seconds");
    assert!(retry_after > 0 && retry_after <= 15 * 60, "{retry_after}");
    assert_error(response, 429, "too_many_requests").await;

    // A different account from the same address is not locked out.
    assert_eq!(
        login_from(&app, attacker, "bystander@codecall.dev", "StrongPass123")
            .await
            .status(),
        200
    );
    // The owner, from their own address, still gets in.
    assert_eq!(
        login_from(&app, "192.0.2.7", "victim@codecall.dev", "StrongPass123")
            .await
            .status(),
        200
    );

    // Guessing spread over many addresses hits the account-wide limit: then
    // everyone waits, the owner included (letting them in would reopen the attack).
    for i in 0..6 {
        let r = login_from(
            &app,
            &format!("198.51.100.{}", 10 + i),
            "victim@codecall.dev",
            "guess",
        )
        .await;
        assert!(matches!(r.status().as_u16(), 401 | 429));
    }
    let response = login_from(&app, "192.0.2.7", "victim@codecall.dev", "StrongPass123").await;
    assert_error(response, 429, "too_many_requests").await;
    // Unknown accounts are throttled the same way (no enumeration through 429s).
    for _ in 0..3 {
        login_from(&app, attacker, "ghost@codecall.dev", "guess-guess").await;
    }
    assert_error(
        login_from(&app, attacker, "ghost@codecall.dev", "guess-guess").await,
        429,
        "too_many_requests",
    )
    .await;
}

#[tokio::test]
async fn password_spraying_from_one_address_is_throttled() {
    let app = spawn_app_with(&[("LOGIN_MAX_FAILURES_PER_ADDRESS", "4")]).await;
    register(&app, "A", "spray@codecall.dev", "StrongPass123").await;
    for i in 0..4 {
        let r = app
            .post_json(
                "/auth/login",
                &json!({"email": format!("user{i}@codecall.dev"), "password": "Summer2026!"}),
            )
            .await;
        assert_error(r, 401, "invalid_credentials").await;
    }
    let r = app
        .post_json(
            "/auth/login",
            &json!({"email": "spray@codecall.dev", "password": "StrongPass123"}),
        )
        .await;
    assert_error(r, 429, "too_many_requests").await;
}

#[tokio::test]
async fn a_client_cannot_choose_its_address_with_its_own_forwarded_for_line() {
    // A proxy that adds its own `X-Forwarded-For` line (HAProxy's
    // `option forwardfor`) after the one the client sent: the proxy's line,
    // the last, names the client.
    let app = spawn_app_with(&[
        ("TRUST_FORWARDED_FOR", "true"),
        ("REGISTER_MAX_PER_ADDRESS", "1"),
    ])
    .await;
    let register_as = |spoofed: &'static str| {
        let email = format!(
            "s{}@codecall.dev",
            &Uuid::new_v4().simple().to_string()[..12]
        );
        app.client
            .post(app.url("/auth/register"))
            .header("x-forwarded-for", spoofed)
            .header("x-forwarded-for", "198.51.100.20")
            .json(&json!({"name": "Spoofer", "email": email, "password": "StrongPass123"}))
            .send()
    };
    assert_eq!(
        register_as("203.0.113.1")
            .await
            .expect("sent")
            .status()
            .as_u16(),
        201
    );
    // Another spoofed first line does not make it another client.
    assert_error(
        register_as("203.0.113.2").await.expect("sent"),
        429,
        "too_many_requests",
    )
    .await;
}
