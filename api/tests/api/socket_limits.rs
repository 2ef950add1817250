//! Sockets never outlive their token, and one user's sockets are limited as
//! a whole: the events socket and the shared document's socket (driven by
//! the reference y-websocket client) close with 4003 `token_revoked` when
//! their login is revoked on any replica and with 4001 `token_expired` at the
//! token's expiry; a user's open sockets are capped; a user's chat rate
//! holds across all of their sockets and replicas.

use std::time::{Duration, Instant};

use codecall_api::{
    auth::tokens::{LEEWAY_SECS, TokenKeys, TokenType},
    config::{JwtSettings, Secret},
};
use futures_util::StreamExt;
use serde_json::{Value, json};
use tokio_tungstenite::{connect_async, tungstenite::Message};
use uuid::Uuid;

use crate::{
    eventually::eventually,
    fixtures::{User, create_session, login, post, post_json, signed_up_user, user},
    helpers::{ACCESS_SECRET, REFRESH_SECRET, TestApp, spawn_app, spawn_app_sharing},
    sockets::{Ws, YClient, expect, send},
};

/// How soon a revoked login's sockets must be closed.
const REVOCATION_BOUND: Duration = Duration::from_secs(10);
const TOKEN_EXPIRED: u16 = 4001;
const TOKEN_REVOKED: u16 = 4003;

fn socket_url(app: &TestApp, session: Uuid, socket: &str, token: &str) -> String {
    format!(
        "{}/api/sessions/{session}/{socket}?token={token}",
        app.address.replace("http", "ws")
    )
}

/// Two replicas of one deployment, and a signed-in user.
async fn two_replicas_and_a_user() -> (TestApp, TestApp, User) {
    let one = spawn_app().await;
    let two = spawn_app_sharing(&one, &[]).await;
    let host = user(&one).await;
    (one, two, host)
}

/// An events socket whose snapshot has arrived.
async fn events(app: &TestApp, token: &str, session: Uuid) -> Ws {
    let (mut ws, _) = connect_async(socket_url(app, session, "events", token))
        .await
        .expect("socket opens");
    expect(&mut ws, "presence.snapshot", |_| true).await;
    ws
}

/// The upgrade's outcome: 101, or the refusal's status and error code.
async fn attempt(app: &TestApp, token: &str, session: Uuid, socket: &str) -> (u16, Option<Ws>) {
    match connect_async(socket_url(app, session, socket, token)).await {
        Ok((ws, _)) => (101, Some(ws)),
        Err(tokio_tungstenite::tungstenite::Error::Http(response)) => {
            let body: Value = response
                .body()
                .as_deref()
                .and_then(|b| serde_json::from_slice(b).ok())
                .unwrap_or(Value::Null);
            let status = response.status().as_u16();
            if status == 429 {
                assert_eq!(body["error"]["code"], "too_many_requests", "{body}");
            }
            (status, None)
        }
        Err(e) => panic!("unexpected error {e}"),
    }
}

/// Reads until the server closes the socket within `within`; the close code.
async fn closed_within(ws: &mut Ws, within: Duration) -> Option<u16> {
    tokio::time::timeout(within, async {
        loop {
            match ws.next().await {
                Some(Ok(Message::Close(frame))) => return frame.map(|f| u16::from(f.code)),
                Some(Ok(_)) => continue,
                Some(Err(_)) | None => return None,
            }
        }
    })
    .await
    .unwrap_or_else(|_| panic!("the socket was still open after {within:?}"))
}

/// The close code the reference client reports, and how long it took.
async fn client_closed(client: &mut YClient, started: Instant) -> (u16, Duration) {
    let closed = client.event("closed").await;
    let code = closed["code"].as_u64().expect("close code");
    (u16::try_from(code).expect("u16"), started.elapsed())
}

/// A still-open events socket answers a ping.
async fn still_open(ws: &mut Ws) {
    send(ws, json!({"type": "ping"})).await;
    expect(ws, "pong", |_| true).await;
}

fn as_user(who: &User, token: &str) -> User {
    User {
        token: token.to_owned(),
        ..who.clone()
    }
}

/// Asserts every socket closes with `code` within the bound.
async fn all_closed(sockets: &mut [Ws], clients: &mut [YClient], code: u16, started: Instant) {
    for ws in sockets.iter_mut() {
        let remaining = REVOCATION_BOUND.saturating_sub(started.elapsed());
        assert_eq!(closed_within(ws, remaining).await, Some(code));
    }
    for client in clients.iter_mut() {
        let (got, after) = client_closed(client, started).await;
        assert_eq!(got, code);
        assert!(after <= REVOCATION_BOUND, "closed after {after:?}");
    }
}

#[tokio::test]
async fn logout_all_on_one_replica_closes_both_sockets_on_every_replica() {
    let (one, two, host) = two_replicas_and_a_user().await;
    let session = create_session(&one, &host, &[]).await;
    let mut sockets = vec![
        events(&two, &host.token, session).await,
        events(&one, &host.token, session).await,
    ];
    let mut clients = vec![
        YClient::connect(&two, &host, session).await,
        YClient::connect(&one, &host, session).await,
    ];

    let started = Instant::now();
    let out = post(&one, &host, "/auth/logout-all").await;
    assert_eq!(out.status().as_u16(), 204);
    all_closed(&mut sockets, &mut clients, TOKEN_REVOKED, started).await;

    // The old token is refused; a fresh one connects and resyncs.
    assert_eq!(attempt(&two, &host.token, session, "events").await.0, 401);
    drop(clients);
    let (fresh, _) = login(&one, &host.email, "StrongPass123").await;
    let again = as_user(&host, &fresh);
    let mut ws = events(&two, &fresh, session).await;
    still_open(&mut ws).await;
    let mut editor = YClient::connect(&two, &again, session).await;
    editor.insert(0, "after logout").await;
    let mut reader = YClient::connect(&one, &again, session).await;
    reader.wait_text(|t| t == "after logout").await;
    editor.close().await;
    reader.close().await;
}

#[tokio::test]
async fn a_password_change_closes_the_other_logins_sockets_only() {
    let (one, two, host) = two_replicas_and_a_user().await;
    let (kept_token, _) = login(&one, &host.email, "StrongPass123").await;
    let session = create_session(&one, &host, &[]).await;
    let mut sockets = vec![events(&two, &host.token, session).await];
    let mut clients = vec![YClient::connect(&two, &host, session).await];
    let mut kept = events(&two, &kept_token, session).await;

    let started = Instant::now();
    let changed = post_json(
        &one,
        &as_user(&host, &kept_token),
        "/api/users/me/password",
        json!({"currentPassword": "StrongPass123", "newPassword": "EvenStronger456"}),
    )
    .await;
    assert_eq!(changed.status().as_u16(), 204);
    all_closed(&mut sockets, &mut clients, TOKEN_REVOKED, started).await;
    // The login that changed the password keeps its socket.
    still_open(&mut kept).await;
}

#[tokio::test]
async fn refresh_token_reuse_closes_the_logins_sockets() {
    let one = spawn_app().await;
    let two = spawn_app_sharing(&one, &[]).await;
    let email = format!(
        "r{}@codecall.dev",
        &Uuid::new_v4().simple().to_string()[..12]
    );
    let (id, access, refresh) = signed_up_user(&one, &email).await;
    let host = User {
        id,
        email,
        token: access,
    };
    let session = create_session(&one, &host, &[]).await;
    let mut sockets = vec![events(&two, &host.token, session).await];
    let mut clients = vec![YClient::connect(&two, &host, session).await];

    let body = json!({ "refreshToken": refresh });
    let first = one.post_json("/auth/refresh", &body).await;
    assert_eq!(first.status().as_u16(), 200);
    let started = Instant::now();
    let reused = one.post_json("/auth/refresh", &body).await;
    assert_eq!(reused.status().as_u16(), 401);
    all_closed(&mut sockets, &mut clients, TOKEN_REVOKED, started).await;
}

#[tokio::test]
async fn both_sockets_close_when_their_access_token_expires() {
    let app = spawn_app().await;
    let host = user(&app).await;
    let session = create_session(&app, &host, &[]).await;
    // A token of the same login that expires in a second.
    let keys = TokenKeys::new(&JwtSettings {
        access_secret: Secret::new(ACCESS_SECRET.to_owned()),
        refresh_secret: Secret::new(REFRESH_SECRET.to_owned()),
        access_ttl: Duration::from_secs(1),
        refresh_ttl: Duration::from_secs(60),
    });
    let claims = keys
        .verify(&host.token, TokenType::Access)
        .expect("a valid token");
    let short = keys
        .issue(TokenType::Access, host.id, &host.email, claims.sid)
        .expect("signed");
    // Open until the expiry plus the leeway (`exp` is in whole seconds, so
    // up to a second earlier than `expires_at`), closed right after.
    let close_at = Instant::now()
        + short
            .expires_at
            .duration_since(std::time::SystemTime::now())
            .unwrap_or_default()
        + Duration::from_secs(LEEWAY_SECS);
    let short_lived = as_user(&host, &short.token);
    let mut ws = events(&app, &short.token, session).await;
    let mut client = YClient::connect(&app, &short_lived, session).await;

    let bound = close_at.saturating_duration_since(Instant::now()) + Duration::from_secs(3);
    assert_eq!(closed_within(&mut ws, bound).await, Some(TOKEN_EXPIRED));
    let early = Duration::from_millis(1200);
    assert!(
        Instant::now() + early >= close_at,
        "closed before the expiry"
    );
    let (code, _) = client_closed(&mut client, close_at).await;
    assert_eq!(code, TOKEN_EXPIRED);
    assert!(
        Instant::now() + early >= close_at,
        "closed before the expiry"
    );
    assert!(
        Instant::now() <= close_at + Duration::from_secs(3),
        "closed late"
    );
    // A fresh token of the same login connects again.
    let mut again = events(&app, &host.token, session).await;
    still_open(&mut again).await;
}

#[tokio::test]
async fn fifty_sockets_of_one_user_are_capped_per_session_and_per_user() {
    // Defaults: 8 sockets per user per session, 16 per user.
    let (one, two, host) = two_replicas_and_a_user().await;
    let sessions = [
        create_session(&one, &host, &[]).await,
        create_session(&one, &host, &[]).await,
        create_session(&one, &host, &[]).await,
    ];
    let mut open = Vec::new();
    let mut accepted = [0usize; 3];
    for i in 0..50 {
        let which = match i {
            0..20 => 0,
            20..35 => 1,
            _ => 2,
        };
        let replica = if i % 2 == 0 { &one } else { &two };
        let socket = if i % 5 == 4 { "doc" } else { "events" };
        let (status, ws) = attempt(replica, &host.token, sessions[which], socket).await;
        assert!(status == 101 || status == 429, "status {status}");
        if let Some(ws) = ws {
            accepted[which] += 1;
            open.push((which, ws));
        }
    }
    assert_eq!(accepted, [8, 8, 0], "accepted per session");

    // Closing one frees its place.
    let position = open.iter().position(|(w, _)| *w == 0).expect("one");
    let (_, mut ws) = open.remove(position);
    ws.close(None).await.expect("closed");
    drop(ws);
    let ws = eventually(
        Duration::from_secs(5),
        "the closed socket to stop counting",
        || async {
            let (status, ws) = attempt(&two, &host.token, sessions[2], "events").await;
            if ws.is_none() {
                assert_eq!(status, 429);
            }
            ws.ok_or(status)
        },
    )
    .await;
    open.push((2, ws));
    // Another user is unaffected.
    let other = user(&one).await;
    let theirs = create_session(&one, &other, &[]).await;
    assert_eq!(attempt(&one, &other.token, theirs, "events").await.0, 101);
}

#[tokio::test]
async fn a_chat_flood_over_several_sockets_is_limited_per_user() {
    // Default: 5 chat messages a second per user, bursts of 10.
    let (one, two, host) = two_replicas_and_a_user().await;
    let session = create_session(&one, &host, &[]).await;
    let mut sockets = Vec::new();
    for i in 0..6 {
        let replica = if i % 2 == 0 { &one } else { &two };
        sockets.push(events(replica, &host.token, session).await);
    }
    let started = Instant::now();
    // Each socket stays within its own limit (bursts of 10, with the ping).
    for ws in &mut sockets {
        for n in 0..9 {
            send(
                ws,
                json!({"type": "chat.send", "text": format!("flood {n}")}),
            )
            .await;
        }
    }
    let mut refusals = 0;
    for ws in &mut sockets {
        send(ws, json!({"type": "ping"})).await;
        // Everything this socket sent before the ping has been handled.
        loop {
            let frame = tokio::time::timeout(Duration::from_secs(20), ws.next())
                .await
                .expect("in time")
                .expect("open")
                .expect("frame");
            let Message::Text(text) = frame else { continue };
            let event: Value = serde_json::from_str(&text).expect("JSON");
            if event["type"] == "error" {
                assert_eq!(event["code"], "rate_limited", "{event}");
                refusals += 1;
            }
            if event["type"] == "pong" {
                break;
            }
        }
    }
    let elapsed = started.elapsed().as_secs_f64();
    let stored: i64 =
        sqlx::query_scalar("SELECT count(*) FROM chat_messages WHERE session_id = $1")
            .bind(session)
            .fetch_one(&one.db)
            .await
            .expect("count");
    // 54 were sent; the user's bucket allows its burst plus the refill.
    let allowed = 10.0 + 5.0 * elapsed.ceil();
    assert!(
        (stored as f64) <= allowed && stored >= 10,
        "{stored} stored in {elapsed:.1}s (at most {allowed})"
    );
    assert_eq!(stored + refusals, 54, "each message stored or refused");
}
