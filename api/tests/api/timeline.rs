//! Replay (`GET /api/sessions/{id}/timeline`): edits made with the
//! reference Yjs client, runs, chat and role changes come back in time
//! order, and applying the edits in order with yrs rebuilds the session's
//! final code exactly — also after compaction, and after the history was
//! folded under its size cap.

use std::{collections::HashMap, time::Duration};

use base64::{Engine as _, engine::general_purpose::STANDARD};
use serde_json::{Value, json};
use uuid::Uuid;
use yrs::{GetString, Transact, Update, updates::decoder::Decode};

use crate::{
    eventually::eventually,
    fixtures::{
        User, fake_worker, get, pair, post, post_json, session_code, start_session,
        until_compacted, user,
    },
    helpers::{TestApp, assert_error, json_body, spawn_app, spawn_app_with},
    sockets::{self, YClient},
};

/// Every item of the session's timeline, page by page (`limit` per page).
async fn timeline(app: &TestApp, who: &User, session: Uuid, limit: usize) -> Vec<Value> {
    let mut items = Vec::new();
    let mut cursor: Option<String> = None;
    for _ in 0..1000 {
        let mut path = format!("/api/sessions/{session}/timeline?limit={limit}");
        if let Some(c) = &cursor {
            path.push_str(&format!("&cursor={c}"));
        }
        let page = get(app, who, &path).await;
        assert_eq!(page.status().as_u16(), 200);
        let page = json_body(page).await;
        let batch = page["items"].as_array().expect("items").clone();
        assert!(batch.len() <= limit, "a page holds at most `limit` items");
        items.extend(batch);
        match page["nextCursor"].as_str() {
            Some(next) => cursor = Some(next.to_owned()),
            None => return items,
        }
    }
    panic!("the timeline never ended");
}

/// Applies every edit in order, one update at a time, as a replaying client
/// would; returns the text after the last.
fn replay(items: &[Value]) -> String {
    let doc = yrs::Doc::new();
    let text = doc.get_or_insert_text("code");
    for item in items.iter().filter(|i| i["type"] == "edit") {
        let bytes = STANDARD
            .decode(item["update"].as_str().expect("update"))
            .expect("base64");
        let update = Update::decode_v1(&bytes).expect("a Yjs update");
        doc.transact_mut().apply_update(update).expect("applies");
    }
    text.get_string(&doc.transact())
}

async fn end(app: &TestApp, host: &User, session: Uuid) {
    let ended = post(app, host, &format!("/api/sessions/{session}/end")).await;
    assert_eq!(ended.status().as_u16(), 200);
}

/// Two clients make `each` edits each, concurrently; answers the final text.
async fn edit(app: &TestApp, host: &User, guest: &User, session: Uuid, each: usize) -> String {
    let mut a = YClient::connect(app, host, session).await;
    let mut b = YClient::connect(app, guest, session).await;
    for (client, seed, tag) in [(&mut a, 11, "H"), (&mut b, 12, "G")] {
        client
            .send(json!({"op": "edits", "count": each, "seed": seed, "delayMs": 15, "tag": tag}))
            .await;
    }
    a.event("edited").await;
    b.event("edited").await;
    let text = YClient::converge(&mut a, &mut b, Duration::from_secs(15)).await;
    // The last socket's departure compacts the log: history survives it.
    a.close().await;
    b.close().await;
    until_compacted(app, session, None, Duration::from_secs(10)).await;
    text
}

#[tokio::test]
async fn a_sessions_timeline_replays_200_edits_to_the_final_code_between_its_runs_and_chat() {
    let app = spawn_app().await;
    let (host, guest, session) = pair(&app).await;
    start_session(&app, &host, session).await;
    fake_worker(&app).await;
    let hidden = "STDIN-7f3a";
    for who in [&host, &guest, &guest] {
        let body = json!({"language": "python", "sessionId": session,
                          "source": "print(input())", "stdin": hidden});
        let run = post_json(&app, who, "/api/runs", body).await;
        assert_eq!(run.status().as_u16(), 202);
    }
    let text = edit(&app, &host, &guest, session, 100).await;
    let mut ws = sockets::connect(&app, &guest, session).await;
    sockets::send(
        &mut ws,
        json!({"type": "chat.send", "text": "done, I think"}),
    )
    .await;
    sockets::expect(&mut ws, "chat.message", |_| true).await;
    end(&app, &host, session).await;

    let code = session_code(&app, &guest, session).await;
    assert_eq!(code, text);
    let items = timeline(&app, &guest, session, 100).await;
    assert_eq!(
        replay(&items),
        code,
        "replaying the edits rebuilds the code"
    );

    let mut kinds: HashMap<String, usize> = HashMap::new();
    for item in &items {
        *kinds
            .entry(item["type"].as_str().expect("type").to_owned())
            .or_default() += 1;
    }
    assert_eq!(kinds.get("edit"), Some(&200), "{kinds:?}");
    assert_eq!(kinds.get("run"), Some(&3), "{kinds:?}");
    assert_eq!(kinds.get("chat"), Some(&1), "{kinds:?}");
    // The host arrives as interviewer, the guest as candidate.
    let roles: Vec<(String, String)> = items
        .iter()
        .filter(|i| i["type"] == "role")
        .map(|i| {
            (
                i["userId"].as_str().unwrap_or("").to_owned(),
                i["role"].as_str().unwrap_or("").to_owned(),
            )
        })
        .collect();
    assert_eq!(
        roles,
        [
            (host.id.to_string(), "interviewer".to_owned()),
            (guest.id.to_string(), "candidate".to_owned())
        ]
    );
    // Authors and time order.
    let authors = |who: &User| {
        items
            .iter()
            .filter(|i| i["type"] == "edit" && i["authorId"] == who.id.to_string())
            .count()
    };
    assert_eq!((authors(&host), authors(&guest)), (100, 100));
    let times: Vec<&str> = items
        .iter()
        .map(|i| i["at"].as_str().expect("at"))
        .collect();
    let parsed: Vec<chrono::DateTime<chrono::Utc>> =
        times.iter().map(|t| t.parse().expect("a time")).collect();
    assert!(parsed.windows(2).all(|w| w[0] <= w[1]), "in time order");
    // Runs carry their summary only: nothing of their input or output.
    for run in items.iter().filter(|i| i["type"] == "run") {
        let mut keys: Vec<&str> = run
            .as_object()
            .expect("object")
            .keys()
            .map(String::as_str)
            .collect();
        keys.sort_unstable();
        assert_eq!(
            keys,
            [
                "at",
                "finishedAt",
                "id",
                "language",
                "status",
                "testsPassed",
                "testsTotal",
                "timeMs",
                "type",
                "userId",
                "verdict"
            ]
        );
    }
    let everything = serde_json::to_string(&items).expect("json");
    assert!(
        !everything.contains(hidden),
        "a run's stdin is not in the timeline"
    );

    // Pages of one item give the same timeline.
    let small = timeline(&app, &guest, session, 7).await;
    assert_eq!(small, items);

    // Members only; a bad cursor is refused.
    let stranger = user(&app).await;
    let path = format!("/api/sessions/{session}/timeline");
    assert_error(get(&app, &stranger, &path).await, 404, "not_found").await;
    let bad = format!("{path}?cursor=nope");
    assert_error(get(&app, &host, &bad).await, 422, "validation_failed").await;

    // Past SESSION_HISTORY_RETENTION the sweeper deletes the history (and
    // the role changes); the code, runs and chat stay.
    let purged = codecall_api::retention::purge_old_history(&app.db, std::time::Duration::ZERO)
        .await
        .expect("sweep");
    assert_eq!(purged, 1);
    let page = json_body(get(&app, &guest, &path).await).await;
    assert!(page["historyPurgedAt"].is_string(), "{page}");
    let left = timeline(&app, &guest, session, 100).await;
    assert!(
        left.iter()
            .all(|i| i["type"] == "run" || i["type"] == "chat"),
        "{left:?}"
    );
    assert_eq!(left.len(), 4);
    assert_eq!(session_code(&app, &guest, session).await, code);
}

#[tokio::test]
async fn a_history_over_its_cap_is_folded_and_still_replays_exactly() {
    let app = spawn_app_with(&[("SESSION_HISTORY_MAX_BYTES", "1024")]).await;
    let (host, guest, session) = pair(&app).await;
    start_session(&app, &host, session).await;
    let text = edit(&app, &host, &guest, session, 60).await;
    // The fold follows the last socket's compaction.
    eventually(
        Duration::from_secs(5),
        "a checkpoint folding several updates",
        || async {
            let checkpoint: Option<i32> = sqlx::query_scalar(
                "SELECT max(updates) FROM document_history WHERE session_id = $1",
            )
            .bind(session)
            .fetch_one(&app.db)
            .await
            .expect("history");
            if checkpoint > Some(1) {
                Ok(())
            } else {
                Err(checkpoint)
            }
        },
    )
    .await;
    let stored: i64 = sqlx::query_scalar(
        "SELECT coalesce(sum(octet_length(payload)), 0)::bigint FROM document_history WHERE session_id = $1",
    )
    .bind(session)
    .fetch_one(&app.db)
    .await
    .expect("history bytes");
    let items = timeline(&app, &host, session, 100).await;
    let edits: Vec<&Value> = items.iter().filter(|i| i["type"] == "edit").collect();
    let folded: i64 = edits
        .iter()
        .map(|e| e["updates"].as_i64().expect("updates"))
        .sum();
    assert_eq!(folded, 120, "every edit is held once");
    assert!(
        edits.len() < 120,
        "the oldest edits were folded: {} rows",
        edits.len()
    );
    assert!(edits[0]["updates"].as_i64() > Some(1), "{}", edits[0]);
    assert!(
        stored <= 4096,
        "the history stays near its cap: {stored} bytes"
    );
    assert_eq!(replay(&items), text);
    assert_eq!(session_code(&app, &host, session).await, text);
}

#[tokio::test]
async fn the_openapi_document_covers_the_notes_and_the_timeline() {
    let app = spawn_app().await;
    let doc = json_body(app.get("/api/openapi.json").await).await;
    for path in ["/api/sessions/{id}/notes", "/api/sessions/{id}/timeline"] {
        assert!(
            doc["paths"][path]["get"].is_object(),
            "{path} is documented"
        );
    }
    let patch = &doc["components"]["schemas"]["UpdateSession"]["properties"];
    assert!(patch["durationSeconds"].is_object(), "{patch}");
}
