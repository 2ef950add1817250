//! Session clocks: a session with a duration warns its room and ends on
//! time, on whichever of two replicas, exactly once.

use std::time::Duration;

use chrono::{DateTime, Utc};
use serde_json::{Value, json};
use uuid::Uuid;

use crate::{
    fixtures::{User, befriend, join, patch_json, post_json, start_session, user},
    helpers::{TestApp, assert_error, json_body, spawn_app_sharing, spawn_app_with},
    sockets::{self, Ws},
};

/// A few seconds are allowed as a duration here, and the warning comes 2 s
/// before the end (the defaults: 60 s and 5 minutes).
const CLOCK: &[(&str, &str)] = &[
    ("SESSION_MIN_DURATION", "1s"),
    ("SESSION_END_WARNING", "2s"),
];

async fn session_with_clock(app: &TestApp, host: &User, guest: &User, seconds: i64) -> Uuid {
    let body = json!({"title": "Timed", "inviteeIds": [guest.id], "durationSeconds": seconds});
    let created = post_json(app, host, "/api/sessions", body).await;
    assert_eq!(created.status().as_u16(), 201);
    let created = json_body(created).await;
    assert_eq!(created["session"]["durationSeconds"], seconds, "{created}");
    assert!(created["session"]["endsAt"].is_null(), "not started yet");
    created["session"]["id"]
        .as_str()
        .and_then(|s| s.parse().ok())
        .expect("id")
}

fn at(value: &Value) -> DateTime<Utc> {
    value
        .as_str()
        .and_then(|s| DateTime::parse_from_rfc3339(s).ok())
        .map(|t| t.with_timezone(&Utc))
        .unwrap_or_else(|| panic!("not a time: {value}"))
}

/// The next event of `kind` and when it arrived.
async fn next(ws: &mut Ws, kind: &str) -> (Value, DateTime<Utc>) {
    let event = sockets::expect(ws, kind, |_| true).await;
    (event, Utc::now())
}

/// The `session.updated` that ends the session, and when it arrived.
async fn until_ended(ws: &mut Ws) -> (Value, DateTime<Utc>) {
    loop {
        let (event, arrived) = next(ws, "session.updated").await;
        if event["session"]["status"] == "ended" {
            return (event, arrived);
        }
    }
}

#[tokio::test]
async fn a_session_warns_and_ends_on_time_exactly_once_across_replicas() {
    let one = spawn_app_with(CLOCK).await;
    let two = spawn_app_sharing(&one, CLOCK).await;
    let (host, guest) = (user(&one).await, user(&one).await);
    befriend(&one, &host, &guest).await;
    let session = session_with_clock(&one, &host, &guest, 5).await;
    join(&one, &guest, session).await;
    let mut hosts = sockets::connect(&one, &host, session).await;
    let mut guests = sockets::connect(&two, &guest, session).await;
    let (snapshot, _) = next(&mut guests, "presence.snapshot").await;
    assert!(snapshot["endsAt"].is_null(), "{snapshot}");

    let live = start_session(&one, &host, session).await;
    let ends_at = at(&live["endsAt"]);
    let started = at(&live["startedAt"]);
    assert_eq!((ends_at - started).num_seconds(), 5, "{live}");
    assert!(
        live["remainingSeconds"]
            .as_i64()
            .is_some_and(|r| (4..=5).contains(&r)),
        "{live}"
    );
    let (update, _) = next(&mut guests, "session.updated").await;
    assert_eq!(update["session"]["endsAt"], live["endsAt"]);
    // A socket opened now sees the clock in its snapshot.
    let mut late = sockets::connect(&two, &guest, session).await;
    let (snapshot, _) = next(&mut late, "presence.snapshot").await;
    assert_eq!(snapshot["endsAt"], live["endsAt"], "{snapshot}");
    assert!(
        snapshot["remainingSeconds"]
            .as_i64()
            .is_some_and(|r| r <= 5),
        "{snapshot}"
    );

    // The warning, 2 s before the end, once (two replicas run clocks).
    for ws in [&mut hosts, &mut guests] {
        let (warning, arrived) = next(ws, "session.ending").await;
        assert_eq!(warning["sessionId"], session.to_string());
        assert_eq!(warning["endsAt"], live["endsAt"]);
        let early = (ends_at - arrived).num_milliseconds();
        assert!(
            (0..=3_000).contains(&early),
            "warned {early} ms before the end"
        );
    }
    // Then the end, within 2 s of the deadline, with no second warning first.
    for ws in [&mut hosts, &mut guests] {
        let (ended, arrived) = until_ended(ws).await;
        let late_by = (arrived - ends_at).num_milliseconds();
        assert!(
            (-100..=2_000).contains(&late_by),
            "ended {late_by} ms after the deadline: {ended}"
        );
    }
    let ended_at: DateTime<Utc> =
        sqlx::query_scalar("SELECT ended_at FROM interview_sessions WHERE id = $1")
            .bind(session)
            .fetch_one(&one.db)
            .await
            .expect("ended_at");
    assert!((ended_at - ends_at).num_milliseconds().abs() <= 2_000);
}

#[tokio::test]
async fn the_host_changes_or_removes_the_clock_of_a_live_session() {
    let app = spawn_app_with(CLOCK).await;
    let (host, guest) = (user(&app).await, user(&app).await);
    befriend(&app, &host, &guest).await;
    let session = session_with_clock(&app, &host, &guest, 3600).await;
    join(&app, &guest, session).await;
    let path = format!("/api/sessions/{session}");

    // Out of bounds, or not the host.
    for bad in [json!(0), json!(-5), json!(86_401), json!("soon")] {
        let body = json!({ "durationSeconds": bad });
        let refused = patch_json(&app, &host, &path, body).await;
        assert_eq!(refused.status().as_u16(), 422, "{bad}");
    }
    let not_host = patch_json(&app, &guest, &path, json!({"durationSeconds": 60})).await;
    assert_error(not_host, 403, "forbidden").await;

    let live = start_session(&app, &host, session).await;
    assert_eq!(
        (at(&live["endsAt"]) - at(&live["startedAt"])).num_seconds(),
        3600
    );
    let mut ws = sockets::connect(&app, &guest, session).await;
    // Shortened to 30 s from the start.
    let changed = patch_json(&app, &host, &path, json!({"durationSeconds": 30})).await;
    let changed = json_body(changed).await;
    let ends_at = at(&changed["session"]["endsAt"]);
    assert_eq!((ends_at - at(&live["startedAt"])).num_seconds(), 30);
    let (update, _) = next(&mut ws, "session.updated").await;
    assert_eq!(update["session"]["endsAt"], changed["session"]["endsAt"]);

    // Removed: no clock, no end.
    let removed = patch_json(&app, &host, &path, json!({"durationSeconds": null})).await;
    let removed = json_body(removed).await;
    assert!(removed["session"]["endsAt"].is_null(), "{removed}");
    assert!(removed["session"]["durationSeconds"].is_null(), "{removed}");

    // A duration the session has already run past is refused.
    // Lets time pass: the session runs past one second.
    tokio::time::sleep(Duration::from_millis(1_100)).await;
    let past = patch_json(&app, &host, &path, json!({"durationSeconds": 1})).await;
    assert_error(past, 422, "validation_failed").await;
    let short = patch_json(&app, &host, &path, json!({"durationSeconds": 6})).await;
    let ends_at = at(&json_body(short).await["session"]["endsAt"]);
    let (ended, arrived) = until_ended(&mut ws).await;
    let late_by = (arrived - ends_at).num_milliseconds();
    assert!(
        (-100..=2_000).contains(&late_by),
        "ended {late_by} ms after the deadline: {ended}"
    );
}
