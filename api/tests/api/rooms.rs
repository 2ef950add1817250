//! Real-time rooms over two api replicas sharing PostgreSQL and Redis:
//! presence, chat, session updates and live run output.

use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;
use uuid::Uuid;

use crate::{
    eventually::eventually,
    fixtures::{User, befriend, create_session, get, live_pair, patch_json, post, post_json, user},
    helpers::{
        TestApp, expired_access_token, json_body, spawn_app, spawn_app_sharing, spawn_app_with,
    },
    sockets::{Ws, connect, expect, send, upgrade_status},
};

async fn refused(app: &TestApp, session: Uuid, token: Option<&str>) -> u16 {
    upgrade_status(app, session, "events", token).await
}

/// Two replicas, a host and a candidate in a live session.
async fn room() -> (TestApp, TestApp, User, User, Uuid) {
    room_on(spawn_app().await).await
}

/// [`room`], with `one` as the first replica.
async fn room_on(one: TestApp) -> (TestApp, TestApp, User, User, Uuid) {
    let two = spawn_app_sharing(&one, &[]).await;
    let (a, b, session) = live_pair(&one).await;
    (one, two, a, b, session)
}

/// Opens `who`'s events socket on `app` and waits for its presence snapshot.
async fn present(app: &TestApp, who: &User, session: Uuid) -> Ws {
    let mut ws = connect(app, who, session).await;
    expect(&mut ws, "presence.snapshot", |_| true).await;
    ws
}

#[tokio::test]
async fn members_on_two_replicas_see_presence_chat_and_session_updates() {
    let (one, two, a, b, session) = room().await;
    let mut wa = connect(&one, &a, session).await;
    let snapshot = expect(&mut wa, "presence.snapshot", |_| true).await;
    assert_eq!(snapshot["users"].as_array().map(Vec::len), Some(1));

    let mut wb = connect(&two, &b, session).await;
    let snapshot = expect(&mut wb, "presence.snapshot", |_| true).await;
    assert_eq!(
        snapshot["users"].as_array().map(Vec::len),
        Some(2),
        "{snapshot}"
    );
    let joined = expect(&mut wa, "presence.joined", |e| {
        e["user"]["userId"] == b.id.to_string()
    })
    .await;
    assert!(joined["user"]["name"].is_string());

    send(
        &mut wa,
        json!({"type": "chat.send", "text": "hi from replica one"}),
    )
    .await;
    let chat = expect(&mut wb, "chat.message", |_| true).await;
    assert_eq!(chat["text"], "hi from replica one");
    assert_eq!(chat["userId"], a.id.to_string());

    // Both see the online flag over HTTP, from either replica.
    let detail = json_body(get(&two, &a, &format!("/api/sessions/{session}")).await).await;
    assert!(
        detail["session"]["members"]
            .as_array()
            .expect("members")
            .iter()
            .all(|m| m["online"] == true),
        "{detail}"
    );
    let friends = json_body(get(&one, &b, "/api/friends").await).await;
    assert_eq!(friends["friends"][0]["online"], true);

    patch_json(
        &one,
        &a,
        &format!("/api/sessions/{session}"),
        json!({"title": "Renamed"}),
    )
    .await;
    for ws in [&mut wa, &mut wb] {
        let update = expect(ws, "session.updated", |_| true).await;
        assert_eq!(update["session"]["title"], "Renamed");
    }
    send(&mut wb, json!({"type": "ping"})).await;
    expect(&mut wb, "pong", |_| true).await;

    // A new joiner gets the chat history in its snapshot.
    drop(wb);
    let mut again = connect(&two, &b, session).await;
    let snapshot = expect(&mut again, "presence.snapshot", |_| true).await;
    assert_eq!(snapshot["chat"][0]["text"], "hi from replica one");

    // Ending the session tells everyone, then closes the sockets.
    post(&one, &a, &format!("/api/sessions/{session}/end")).await;
    expect(&mut again, "session.updated", |e| {
        e["session"]["status"] == "ended"
    })
    .await;
    let closed = tokio::time::timeout(Duration::from_secs(5), async {
        while let Some(Ok(frame)) = again.next().await {
            if let Message::Close(_) = frame {
                return true;
            }
        }
        true
    })
    .await;
    assert_eq!(closed, Ok(true));
}

#[tokio::test]
async fn two_tabs_count_once_and_a_dropped_connection_leaves() {
    let (one, two, a, b, session) = room().await;
    let mut watcher = present(&one, &b, session).await;

    let mut tab1 = connect(&one, &a, session).await;
    expect(&mut watcher, "presence.joined", |e| {
        e["user"]["userId"] == a.id.to_string()
    })
    .await;
    let mut tab2 = connect(&two, &a, session).await;
    let snapshot = expect(&mut tab2, "presence.snapshot", |_| true).await;
    assert_eq!(
        snapshot["users"].as_array().map(Vec::len),
        Some(2),
        "one entry per user: {snapshot}"
    );

    tab1.close(None).await.expect("closed");
    // Still present through the other tab: no presence.left for A.
    send(&mut watcher, json!({"type": "ping"})).await;
    let next = expect(&mut watcher, "pong", |_| true).await;
    assert_eq!(next["type"], "pong");
    let detail = json_body(get(&one, &b, &format!("/api/sessions/{session}")).await).await;
    let a_online = detail["session"]["members"]
        .as_array()
        .expect("members")
        .iter()
        .find(|m| m["userId"] == a.id.to_string())
        .map(|m| m["online"].clone());
    assert_eq!(a_online, Some(Value::Bool(true)));

    // Kill the TCP connection without a close frame.
    drop(tab2);
    let left = expect(&mut watcher, "presence.left", |_| true).await;
    assert_eq!(left["userId"], a.id.to_string());
}

#[tokio::test]
async fn bad_tokens_non_members_and_ended_sessions_are_refused_before_the_upgrade() {
    let (one, _two, a, b, session) = room().await;
    let stranger = user(&one).await;
    assert_eq!(refused(&one, session, None).await, 401);
    assert_eq!(refused(&one, session, Some("not-a-token")).await, 401);
    assert_eq!(refused(&one, session, Some(&stranger.token)).await, 404);
    assert_eq!(refused(&one, Uuid::new_v4(), Some(&a.token)).await, 404);
    assert_eq!(refused(&one, session, Some(&b.token)).await, 101);
    post(&one, &a, &format!("/api/sessions/{session}/end")).await;
    assert_eq!(refused(&one, session, Some(&a.token)).await, 409);
}

#[tokio::test]
async fn an_expired_token_is_refused() {
    let app = spawn_app().await;
    let (a, b) = (user(&app).await, user(&app).await);
    befriend(&app, &a, &b).await;
    let session = create_session(&app, &a, &[]).await;
    // The same token as it is once expired (past the leeway), signed here.
    let expired = expired_access_token(&a.token);
    assert_eq!(refused(&app, session, Some(&expired)).await, 401);
}

#[tokio::test]
async fn malformed_oversize_and_flooding_clients_get_the_documented_treatment() {
    let (one, two, a, b, session) = room().await;
    let mut calm = present(&two, &b, session).await;
    let mut noisy = present(&one, &a, session).await;

    for bad in [
        "not json",
        r#"{"type": "nope"}"#,
        r#"{"type": "chat.send"}"#,
    ] {
        noisy.send(Message::Text(bad.into())).await.expect("sent");
        let error = expect(&mut noisy, "error", |_| true).await;
        assert_eq!(error["code"], "invalid_message", "{bad}");
    }
    send(
        &mut noisy,
        json!({"type": "chat.send", "text": "x".repeat(2001)}),
    )
    .await;
    assert_eq!(
        expect(&mut noisy, "error", |_| true).await["code"],
        "invalid_message"
    );

    // A flood: the excess is refused with rate_limited errors.
    for _ in 0..40 {
        send(&mut noisy, json!({"type": "ping"})).await;
    }
    expect(&mut noisy, "error", |e| e["code"] == "rate_limited").await;

    // The other member is unaffected.
    send(&mut calm, json!({"type": "ping"})).await;
    expect(&mut calm, "pong", |_| true).await;

    // Oversize frame: that socket is closed (1009), the other stays.
    noisy
        .send(Message::Text("y".repeat(64 * 1024).into()))
        .await
        .expect("sent");
    let closed = tokio::time::timeout(Duration::from_secs(5), async {
        loop {
            match noisy.next().await {
                Some(Ok(Message::Close(frame))) => return frame.map(|f| u16::from(f.code)),
                Some(Ok(_)) => continue,
                _ => return None,
            }
        }
    })
    .await
    .expect("closed in time");
    assert!(matches!(closed, Some(1009) | None), "{closed:?}");
    send(&mut calm, json!({"type": "ping"})).await;
    expect(&mut calm, "pong", |_| true).await;
}

#[tokio::test]
async fn events_flow_again_after_a_redis_restart() {
    let mut redis = crate::helpers::OwnRedis::start().await;
    let url = redis.url.clone();
    let (one, two, a, b, session) = room_on(spawn_app_with(&[("REDIS_URL", &url)]).await).await;
    let wa = present(&one, &a, session).await;
    let wb = present(&two, &b, session).await;

    redis.stop();
    // Lets time pass: the outage lasts a second.
    tokio::time::sleep(Duration::from_secs(1)).await;
    redis.restart().await;
    // Retry until the subscriber has resubscribed: chat keeps flowing.
    let sockets = tokio::sync::Mutex::new((wa, wb, 0));
    eventually(
        Duration::from_secs(20),
        "chat to cross replicas after the restart",
        || async {
            let mut sockets = sockets.lock().await;
            let (wa, wb, attempt) = &mut *sockets;
            *attempt += 1;
            send(
                wa,
                json!({"type": "chat.send", "text": format!("after restart {attempt}")}),
            )
            .await;
            let got = tokio::time::timeout(Duration::from_millis(500), async {
                loop {
                    match wb.next().await {
                        Some(Ok(Message::Text(text))) if text.contains("after restart") => {
                            return true;
                        }
                        Some(Ok(_)) => continue,
                        _ => return false,
                    }
                }
            })
            .await;
            got == Ok(true)
        },
    )
    .await;
}

#[tokio::test]
async fn run_output_streams_in_order_to_members_on_both_replicas() {
    crate::fixtures::require_docker!();
    let (one, two, a, b, session) = room().await;
    let _worker = crate::fixtures::Worker::start(&one, &[]).await;
    let mut wa = present(&one, &a, session).await;
    let mut wb = present(&two, &b, session).await;

    let source =
        "import time\nfor i in range(5):\n    print(i, flush=True)\n    time.sleep(0.05)\n";
    let body = json!({"language": "python", "source": source, "sessionId": session});
    let posted = json_body(post_json(&two, &b, "/api/runs", body).await).await;
    let id = posted["id"].as_str().expect("id").to_owned();

    for ws in [&mut wa, &mut wb] {
        expect(ws, "run.queued", |e| e["runId"] == id).await;
        expect(ws, "run.started", |e| e["runId"] == id).await;
        let mut output = String::new();
        let mut next_seq = 0;
        let finished = loop {
            let frame = tokio::time::timeout(Duration::from_secs(30), ws.next())
                .await
                .expect("in time")
                .expect("open")
                .expect("frame");
            let Message::Text(text) = frame else { continue };
            let event: Value = serde_json::from_str(&text).expect("json");
            match event["type"].as_str() {
                Some("run.output") if event["runId"] == id => {
                    assert_eq!(event["seq"], next_seq, "in order");
                    next_seq += 1;
                    output.push_str(event["data"].as_str().unwrap_or_default());
                }
                Some("run.finished") if event["run"]["id"] == id => break event,
                _ => {}
            }
        };
        assert_eq!(output, "0\n1\n2\n3\n4\n", "all chunks");
        let mut fetched = json_body(get(&one, &a, &format!("/api/runs/{id}")).await).await;
        fetched.as_object_mut().expect("object").remove("success");
        assert_eq!(
            finished["run"], fetched,
            "run.finished equals GET /api/runs/{{id}}"
        );
    }
}

#[tokio::test]
async fn a_slow_client_lags_alone_and_is_told_and_resynced() {
    let (one, _two, a, b, session) = room().await;
    let mut slow = present(&one, &a, session).await;
    let mut fast = present(&one, &b, session).await;

    // Far more events than a room buffers, published straight to the channel
    // (as a worker would), while `slow` reads nothing.
    let channel = run_contract::session_channel(&one.redis_prefix, session);
    let mut redis = redis::Client::open(one.redis_url.as_str())
        .expect("url")
        .get_multiplexed_async_connection()
        .await
        .expect("redis");
    let total = 2000;
    let padding = "x".repeat(2048);
    for seq in 0..total {
        let event = json!({"type": "run.output", "runId": "r", "test": 0, "stream": "stdout", "data": padding, "seq": seq});
        let _: i64 = redis::cmd("PUBLISH")
            .arg(&channel)
            .arg(event.to_string())
            .query_async(&mut redis)
            .await
            .expect("publish");
    }
    // The fast client gets every event, in order, despite the slow one.
    let mut next = 0;
    while next < total {
        let event = expect(&mut fast, "run.output", |_| true).await;
        assert_eq!(event["seq"], next);
        next += 1;
    }
    // The slow one either kept up in full (the kernel buffered it all), or
    // is told it lagged and gets a fresh snapshot, or was dropped for not
    // taking frames: never a silent gap or reordering.
    let outcome = tokio::time::timeout(Duration::from_secs(30), async {
        let (mut lagged, mut next) = (false, 0);
        while let Some(frame) = slow.next().await {
            match frame {
                Ok(Message::Text(text)) => {
                    let event: Value = serde_json::from_str(&text).expect("json");
                    match event["type"].as_str() {
                        Some("error") if event["code"] == "lagged" => lagged = true,
                        Some("presence.snapshot") if lagged => return "resynced",
                        Some("run.output") if !lagged => {
                            assert_eq!(event["seq"], next, "no silent gap");
                            next += 1;
                            if next == total {
                                return "complete";
                            }
                        }
                        _ => {}
                    }
                }
                Ok(Message::Close(_)) | Err(_) => return "dropped",
                Ok(_) => {}
            }
        }
        "dropped"
    })
    .await
    .expect("the slow client hears about it in time");
    assert!(
        ["complete", "resynced", "dropped"].contains(&outcome),
        "{outcome}"
    );
}
