//! The interviewer's notes (`GET /api/sessions/{id}/notes`): a second
//! y-websocket document for the interviewer and the host, with the reference
//! JavaScript client; nothing of it reaches a candidate.

use std::time::Duration;

use futures_util::StreamExt;
use serde_json::json;
use tokio_tungstenite::tungstenite::Message;
use uuid::Uuid;

use crate::{
    fixtures::{
        User, befriend, get, joined_session, session_code, set_role, start_session,
        until_compacted, user,
    },
    helpers::{TestApp, spawn_app, spawn_app_sharing},
    sockets::{self, Ws, YClient, close_code, raw, raw_to, upgrade_status},
};

/// A host, an interviewer (given the role by the host, who becomes a
/// candidate while staying the host) and a candidate, in a live session.
async fn trio(app: &TestApp) -> (User, User, User, Uuid) {
    let (host, interviewer, candidate) = (user(app).await, user(app).await, user(app).await);
    befriend(app, &host, &interviewer).await;
    befriend(app, &host, &candidate).await;
    let session = joined_session(app, &host, &[&interviewer, &candidate]).await;
    set_role(app, &host, session, &interviewer, "interviewer").await;
    start_session(app, &host, session).await;
    (host, interviewer, candidate, session)
}

/// Every frame's bytes a socket receives within `window`.
async fn drain(ws: &mut Ws, window: Duration) -> Vec<u8> {
    let mut seen = Vec::new();
    let deadline = tokio::time::Instant::now() + window;
    while let Ok(Some(Ok(frame))) = tokio::time::timeout_at(deadline, ws.next()).await {
        match frame {
            Message::Text(text) => seen.extend_from_slice(text.as_bytes()),
            Message::Binary(bytes) => seen.extend_from_slice(&bytes),
            _ => {}
        }
    }
    seen
}

fn contains(haystack: &[u8], needle: &str) -> bool {
    haystack
        .windows(needle.len())
        .any(|w| w == needle.as_bytes())
}

#[tokio::test]
async fn notes_are_for_the_interviewer_and_the_host_and_never_reach_a_candidate() {
    let app = spawn_app().await;
    let second = spawn_app_sharing(&app, &[]).await;
    let (host, interviewer, candidate, session) = trio(&app).await;
    let stranger = user(&app).await;

    // Refused before the upgrade.
    assert_eq!(upgrade_status(&app, session, "notes", None).await, 401);
    assert_eq!(
        upgrade_status(&app, session, "notes", Some(&candidate.token)).await,
        403
    );
    assert_eq!(
        upgrade_status(&app, session, "notes", Some(&stranger.token)).await,
        404
    );

    // Everything the candidate can read, recorded from before the notes exist.
    let mut events = sockets::connect(&app, &candidate, session).await;
    let mut code = raw(&second, &candidate, session).await;
    let mut editor = YClient::connect(&app, &candidate, session).await;
    editor.insert(0, "def solve():\n    pass\n").await;

    // The interviewer (replica one) and the host (replica two) share the notes.
    let secret = "NOTE-4c1e: weak on complexity";
    let mut mine = YClient::connect_to(&app, &interviewer, session, "notes").await;
    let mut hosts = YClient::connect_to(&second, &host, session, "notes").await;
    mine.insert(0, secret).await;
    hosts.wait_text(|t| t == secret).await;
    hosts.insert(0, "[host] ").await;
    mine.wait_text(|t| t.starts_with("[host] ") && t.ends_with(secret))
        .await;
    // The notes and the code are separate documents.
    assert!(
        !mine.text().await.contains("def solve"),
        "the code is not in the notes"
    );
    let chat = json!({"type": "chat.send", "text": "hello"});
    sockets::send(&mut events, chat).await;
    mine.close().await;
    hosts.close().await;

    // The last notes socket compacted the notes: stored, never mirrored.
    until_compacted(&app, session, Some("notes"), Duration::from_secs(5)).await;
    let notes: Vec<u8> = sqlx::query_scalar(
        "SELECT snapshot FROM documents WHERE session_id = $1 AND kind = 'notes'",
    )
    .bind(session)
    .fetch_one(&app.db)
    .await
    .expect("the notes' snapshot");
    assert!(contains(&notes, secret));
    let mirrored: String = sqlx::query_scalar("SELECT code FROM interview_sessions WHERE id = $1")
        .bind(session)
        .fetch_one(&app.db)
        .await
        .expect("code");
    assert!(!mirrored.contains("NOTE-4c1e"), "{mirrored}");

    // Every byte the candidate received, on every socket and over REST.
    let mut received = drain(&mut events, Duration::from_millis(500)).await;
    received.extend(drain(&mut code, Duration::from_millis(500)).await);
    assert!(contains(&received, "hello"), "the recording works");
    assert!(contains(&received, "def solve"), "the recording works");
    let detail = get(&app, &candidate, &format!("/api/sessions/{session}"))
        .await
        .text()
        .await
        .expect("body");
    received.extend_from_slice(detail.as_bytes());
    for part in ["NOTE-4c1e", "complexity", "[host]"] {
        assert!(!contains(&received, part), "{part} reached the candidate");
    }
    assert_eq!(
        editor.text().await,
        session_code(&app, &candidate, session).await
    );
    editor.close().await;
}

#[tokio::test]
async fn a_role_swap_closes_the_former_interviewers_notes_and_opens_them_to_the_new_one() {
    let app = spawn_app().await;
    let (host, interviewer, candidate, session) = trio(&app).await;
    let mut old = raw_to(&app, &interviewer, session, "notes").await;
    let mut hosts = raw_to(&app, &host, session, "notes").await;
    // Both are in: the greeting (sync step 1) arrives.
    for ws in [&mut old, &mut hosts] {
        let first = tokio::time::timeout(Duration::from_secs(10), ws.next())
            .await
            .expect("greeting in time");
        assert!(matches!(first, Some(Ok(Message::Binary(_)))), "{first:?}");
    }

    // The host gives the interviewer's seat to the candidate.
    set_role(&app, &host, session, &candidate, "interviewer").await;
    let code = close_code(&mut old).await.map(u16::from);
    assert_eq!(
        code,
        Some(codecall_api::documents::CLOSE_NOT_INTERVIEWER),
        "the former interviewer's notes socket is closed"
    );
    assert_eq!(
        upgrade_status(&app, session, "notes", Some(&interviewer.token)).await,
        403
    );
    assert_eq!(
        upgrade_status(&app, session, "notes", Some(&candidate.token)).await,
        101
    );
    // The host keeps the notes whatever the roles.
    assert_eq!(
        upgrade_status(&app, session, "notes", Some(&host.token)).await,
        101
    );
    let still_open = tokio::time::timeout(Duration::from_millis(500), hosts.next()).await;
    assert!(
        !matches!(still_open, Ok(Some(Ok(Message::Close(_)))) | Ok(None)),
        "the host's notes socket stays open: {still_open:?}"
    );
}
