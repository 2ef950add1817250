//! The shared editor document (`GET /api/sessions/{id}/doc`) with
//! the reference JavaScript client: Debian's yjs and y-websocket packages,
//! driven through `tests/js/ydoc-client.cjs`, against two api replicas.

use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::{Message, protocol::frame::coding::CloseCode};
use uuid::Uuid;

use crate::{
    eventually::eventually,
    fixtures::{
        User, Worker, pair, post, post_json, session_code, start_session, until_compacted, user,
    },
    helpers::{TestApp, json_body, spawn_app, spawn_app_sharing, spawn_replica},
    sockets::{YClient, close_code, raw, upgrade_status},
};

/// Two replicas of one deployment, and a host and a guest in a session.
async fn two_replicas_and_a_pair() -> (TestApp, TestApp, User, User, Uuid) {
    let first = spawn_app().await;
    let second = spawn_app_sharing(&first, &[]).await;
    let (host, guest, session) = pair(&first).await;
    (first, second, host, guest, session)
}

#[tokio::test]
async fn two_clients_on_two_replicas_converge_and_the_api_returns_their_text() {
    let (first, second, host, guest, session) = two_replicas_and_a_pair().await;
    let mut a = YClient::connect(&first, &host, session).await;
    let mut b = YClient::connect(&second, &guest, session).await;

    a.insert(0, "start").await;
    b.wait_text(|t| t == "start").await;

    // Concurrent, interleaved inserts and deletes at the same positions.
    a.send(json!({"op": "edits", "count": 40, "seed": 1, "delayMs": 15, "tag": "A"}))
        .await;
    b.send(json!({"op": "edits", "count": 40, "seed": 2, "delayMs": 15, "tag": "B"}))
        .await;
    a.event("edited").await;
    b.event("edited").await;

    let text = YClient::converge(&mut a, &mut b, Duration::from_secs(10)).await;
    assert!(
        text.contains('A') && text.contains('B'),
        "both clients' edits survive: {text:?}"
    );
    assert_ne!(text, "start");
    // Stored before relayed: both replicas answer with it at once.
    assert_eq!(session_code(&first, &host, session).await, text);
    assert_eq!(session_code(&second, &guest, session).await, text);

    a.close().await;
    b.close().await;
}

#[tokio::test]
async fn after_the_api_restarts_a_new_client_receives_the_whole_document() {
    let base = spawn_app().await;
    let (host, guest, session) = pair(&base).await;
    let (one, stop_one) = spawn_replica(&base, &[]).await;
    let (two, stop_two) = spawn_replica(&base, &[]).await;
    let mut a = YClient::connect(&one, &host, session).await;
    let mut b = YClient::connect(&two, &guest, session).await;
    a.insert(0, "def solve(nums):\n").await;
    b.wait_text(|t| t.ends_with('\n')).await;
    b.insert(17, "    return sorted(nums)\n").await;
    let text = a.wait_text(|t| t.contains("sorted")).await;
    a.close().await;
    b.close().await;
    stop_one.stop().await;
    stop_two.stop().await;

    // The last socket's departure compacted the log into a snapshot.
    until_compacted(&base, session, None, Duration::from_secs(5)).await;
    let mirrored: String = sqlx::query_scalar("SELECT code FROM interview_sessions WHERE id = $1")
        .bind(session)
        .fetch_one(&base.db)
        .await
        .expect("code");
    assert_eq!(mirrored, text);

    // A fresh process, with nothing in memory.
    let (three, stop_three) = spawn_replica(&base, &[]).await;
    let mut c = YClient::connect(&three, &guest, session).await;
    assert_eq!(c.text().await, text);
    assert_eq!(session_code(&three, &host, session).await, text);
    c.close().await;
    stop_three.stop().await;
}

#[tokio::test]
async fn a_killed_clients_awareness_disappears_on_the_other_replica() {
    let (first, second, host, guest, session) = two_replicas_and_a_pair().await;
    let mut a = YClient::connect(&first, &host, session).await;
    let mut b = YClient::connect(&second, &guest, session).await;
    b.command(json!({"op": "awareness", "state": {
        "user": {"name": "Guest", "color": "#30bced"},
        "cursor": {"anchor": 3, "head": 5}
    }}))
    .await;

    let key = b.client_id.to_string();
    let state = a
        .wait_peers(Duration::from_secs(10), "A to see B's awareness", |peers| {
            peers.get(&key).cloned()
        })
        .await;
    assert_eq!(state["user"]["name"], "Guest");
    assert_eq!(state["cursor"]["head"], 5);

    // No goodbye from B: the process dies.
    b.child.start_kill().expect("kill");
    a.wait_peers(
        Duration::from_secs(5),
        "B's awareness to disappear from A",
        |peers| (!peers.contains_key(&key)).then_some(()),
    )
    .await;
    a.close().await;
}

#[tokio::test]
async fn the_document_refuses_bad_tokens_and_non_members_before_the_upgrade() {
    let app = spawn_app().await;
    let (host, _guest, session) = pair(&app).await;
    let stranger = user(&app).await;
    assert_eq!(upgrade_status(&app, session, "doc", None).await, 401);
    assert_eq!(
        upgrade_status(&app, session, "doc", Some("not.a.token")).await,
        401
    );
    assert_eq!(
        upgrade_status(&app, session, "doc", Some(&stranger.token)).await,
        404
    );
    assert_eq!(
        upgrade_status(&app, Uuid::new_v4(), "doc", Some(&host.token)).await,
        404
    );
    assert_eq!(
        upgrade_status(&app, session, "doc", Some(&host.token)).await,
        101
    );
}

#[tokio::test]
async fn an_ended_session_serves_its_document_read_only() {
    let app = spawn_app().await;
    let (host, guest, session) = pair(&app).await;
    let mut h = YClient::connect(&app, &host, session).await;
    h.insert(0, "print(1)").await;
    let mut g = YClient::connect(&app, &guest, session).await;
    g.wait_text(|t| t == "print(1)").await;

    let ended = post(&app, &host, &format!("/api/sessions/{session}/end")).await;
    assert_eq!(ended.status().as_u16(), 200);
    // Still connected after the end; edits are refused, not applied.
    h.insert(0, "# late edit\n").await;
    g.insert(0, "# guest edit\n").await;
    // Lets time pass: a refused edit leaves no trace to wait for.
    tokio::time::sleep(Duration::from_millis(500)).await;

    // A member connecting now gets the document as it was at the end.
    let mut reader = YClient::connect(&app, &guest, session).await;
    assert_eq!(reader.text().await, "print(1)");
    reader.insert(0, "x").await;
    // Lets time pass: a refused edit leaves no trace to wait for.
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(session_code(&app, &host, session).await, "print(1)");
    let mut late = YClient::connect(&app, &host, session).await;
    assert_eq!(late.text().await, "print(1)");
    for client in [h, g, reader, late] {
        client.close().await;
    }
}

#[tokio::test]
async fn a_malformed_or_hostile_message_closes_only_that_connection() {
    let app = spawn_app().await;
    let (host, guest, session) = pair(&app).await;
    let mut a = YClient::connect(&app, &host, session).await;
    a.command(json!({"op": "awareness", "state": {"user": {"name": "Host"}}}))
        .await;
    // B watches A's awareness throughout.
    let mut b = YClient::connect(&app, &guest, session).await;
    let key = a.client_id.to_string();
    assert_eq!(peer_name(&mut b, &key).await, "Host");

    // A sync message with an unknown sub-type.
    let mut bad = raw(&app, &guest, session).await;
    bad.send(Message::Binary(vec![0, 9, 1, 2].into()))
        .await
        .expect("send");
    assert_eq!(close_code(&mut bad).await, Some(CloseCode::Unsupported));

    // An update whose bytes are not a Yjs update.
    let mut bad = raw(&app, &guest, session).await;
    bad.send(Message::Binary(
        vec![0, 2, 4, 0xff, 0xff, 0xff, 0xff].into(),
    ))
    .await
    .expect("send");
    assert_eq!(close_code(&mut bad).await, Some(CloseCode::Unsupported));

    // Text frames are not the protocol.
    let mut bad = raw(&app, &guest, session).await;
    bad.send(Message::Text("hello".into())).await.expect("send");
    assert_eq!(close_code(&mut bad).await, Some(CloseCode::Unsupported));

    // A frame over the limit: closed with 1009, or reset when the server
    // drops the connection with the rest of the frame unread.
    let mut bad = raw(&app, &guest, session).await;
    let huge = vec![0u8; codecall_api::documents::MAX_MESSAGE_BYTES + 1];
    let _ = bad.send(Message::Binary(huge.into())).await;
    let code = close_code(&mut bad).await;
    assert!(matches!(code, Some(CloseCode::Size) | None), "{code:?}");

    // Speaking for another connection's awareness client: a forged cursor
    // with a higher clock under A's client id is ignored. The server answers
    // the query that follows it with the states it holds.
    let mut forger = raw(&app, &guest, session).await;
    let forged = awareness_message(a.client_id, 1000, r#"{"user":{"name":"Forged"}}"#);
    forger
        .send(Message::Binary(forged.into()))
        .await
        .expect("send");
    forger
        .send(Message::Binary(vec![3].into()))
        .await
        .expect("send");
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    let states = loop {
        let frame = tokio::time::timeout_at(deadline, forger.next())
            .await
            .expect("an answer in time")
            .expect("still open")
            .expect("frame");
        if let Message::Binary(bytes) = frame
            && bytes.first() == Some(&1)
            && let Some(states) = awareness_states(&bytes)
            && states.iter().any(|(client, _, _)| *client == a.client_id)
        {
            break states;
        }
    };
    let (_, clock, json) = states
        .iter()
        .find(|(client, _, _)| *client == a.client_id)
        .expect("A's state");
    assert!(*clock < 1000, "the forged clock was not taken");
    assert!(json.contains("Host") && !json.contains("Forged"), "{json}");

    // A is still connected, its edits flow, and B never saw the forgery.
    a.insert(0, "still here").await;
    b.wait_text(|t| t == "still here").await;
    assert_eq!(peer_name(&mut b, &key).await, "Host");
    a.close().await;
    b.close().await;
}

/// The name in peer `key`'s awareness state, once `client` has one.
async fn peer_name(client: &mut YClient, key: &str) -> Value {
    client
        .wait_peers(
            Duration::from_secs(10),
            &format!("an awareness state for {key}"),
            |peers| {
                let name = peers.get(key)?["user"]["name"].clone();
                (!name.is_null()).then_some(name)
            },
        )
        .await
}

#[tokio::test]
async fn updates_past_the_document_size_limit_are_refused_and_the_socket_stays_open() {
    use codecall_api::documents::MAX_DOCUMENT_BYTES;
    use yrs::{
        GetString, ReadTxn, Text, Transact,
        sync::{Message as YMessage, SyncMessage},
        updates::encoder::Encode,
    };

    let app = spawn_app().await;
    let (host, _guest, session) = pair(&app).await;
    let mut ws = raw(&app, &host, session).await;
    // Edits of 400 000 characters each, as one editor would send them.
    let chunk = "x".repeat(400_000);
    let fitting = MAX_DOCUMENT_BYTES / (chunk.len() + 64);
    let local = yrs::Doc::new();
    let text = local.get_or_insert_text("code");
    for _ in 0..fitting + 2 {
        let before = local.transact().state_vector();
        text.push(&mut local.transact_mut(), &chunk);
        let update = local.transact().encode_state_as_update_v1(&before);
        let message = YMessage::Sync(SyncMessage::Update(update)).encode_v1();
        ws.send(Message::Binary(message.into()))
            .await
            .expect("send");
    }
    // Still open: a query after the refusals is answered.
    ws.send(Message::Binary(vec![3].into()))
        .await
        .expect("send");
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        let frame = tokio::time::timeout_at(deadline, ws.next())
            .await
            .expect("an answer in time")
            .expect("still open")
            .expect("frame");
        match frame {
            Message::Binary(bytes) if bytes.first() == Some(&1) => break,
            Message::Close(frame) => panic!("closed: {frame:?}"),
            _ => {}
        }
    }

    let (rows, bytes): (i64, i64) = sqlx::query_as(
        "SELECT count(*), coalesce(sum(length(payload)), 0)::bigint FROM document_updates WHERE session_id = $1",
    )
    .bind(session)
    .fetch_one(&app.db)
    .await
    .expect("stored updates");
    assert_eq!(
        rows as usize, fitting,
        "updates over the limit are not stored"
    );
    assert!(bytes as usize <= MAX_DOCUMENT_BYTES);
    let code = session_code(&app, &host, session).await;
    assert_eq!(code.len(), fitting * chunk.len());
    assert!(text.get_string(&local.transact()).len() > code.len());
}

/// The `(client, clock, json)` entries of a y-protocol awareness message.
fn awareness_states(message: &[u8]) -> Option<Vec<(u64, u64, String)>> {
    fn var(bytes: &[u8], at: &mut usize) -> Option<u64> {
        let mut n = 0u64;
        for shift in (0..64).step_by(7) {
            let byte = *bytes.get(*at)?;
            *at += 1;
            n |= u64::from(byte & 0x7f) << shift;
            if byte & 0x80 == 0 {
                return Some(n);
            }
        }
        None
    }
    let mut at = 1;
    var(message, &mut at)?; // the update's length
    let count = var(message, &mut at)?;
    let mut states = Vec::new();
    for _ in 0..count {
        let client = var(message, &mut at)?;
        let clock = var(message, &mut at)?;
        let len = usize::try_from(var(message, &mut at)?).ok()?;
        let json = message.get(at..at + len)?;
        at += len;
        states.push((client, clock, String::from_utf8(json.to_vec()).ok()?));
    }
    Some(states)
}

/// A y-protocol awareness message for one client.
fn awareness_message(client: u64, clock: u32, json: &str) -> Vec<u8> {
    fn var(out: &mut Vec<u8>, mut n: u64) {
        loop {
            let byte = (n & 0x7f) as u8;
            n >>= 7;
            if n == 0 {
                out.push(byte);
                return;
            }
            out.push(byte | 0x80);
        }
    }
    let mut update = Vec::new();
    var(&mut update, 1);
    var(&mut update, client);
    var(&mut update, u64::from(clock));
    var(&mut update, json.len() as u64);
    update.extend_from_slice(json.as_bytes());
    let mut message = vec![1];
    var(&mut message, update.len() as u64);
    message.extend(update);
    message
}

#[tokio::test]
async fn a_run_without_source_runs_the_sessions_document() {
    crate::fixtures::require_docker!();
    let app = spawn_app().await;
    let (host, guest, session) = pair(&app).await;
    start_session(&app, &host, session).await;
    let body = json!({"language": "python", "sessionId": session});

    // Nothing written yet: nothing to run.
    let empty = post_json(&app, &guest, "/api/runs", body.clone()).await;
    assert_eq!(empty.status().as_u16(), 422);
    assert!(json_body(empty).await["error"]["fields"]["source"].is_string());

    let _worker = Worker::start(&app, &[]).await;
    let mut editor = YClient::connect(&app, &host, session).await;
    editor.insert(0, "print(6 * 7)\n").await;
    // The edit reaches the server asynchronously, as from any editor.
    eventually(
        Duration::from_secs(5),
        "the edit to reach the server",
        || async { session_code(&app, &guest, session).await == "print(6 * 7)\n" },
    )
    .await;
    let run = post_json(&app, &guest, "/api/runs?wait=true", body).await;
    let status = run.status().as_u16();
    let run = json_body(run).await;
    assert_eq!(status, 200, "{run}");
    assert_eq!(run["verdict"], "accepted", "{run}");
    assert_eq!(run["stdout"], "42\n", "{run}");
    editor.close().await;
}
