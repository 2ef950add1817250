//! Interview sessions at their edges: invites, the last seat taken by two
//! at once, idle sessions ending by themselves, and stable pagination.

use std::time::Duration;

use serde_json::json;
use uuid::Uuid;

use crate::{
    eventually::eventually,
    fixtures::{
        User, befriend, create_session, delete, get, get_ok, invite_id, ok, post, post_json,
        start_session, user,
    },
    helpers::{assert_error, spawn_app, spawn_app_with},
};

#[tokio::test]
async fn session_invite_edge_cases() {
    let app = spawn_app_with(&[("SESSION_MEMBER_CAP", "3")]).await;
    let (host, m1, m2, m3, stranger) = (
        user(&app).await,
        user(&app).await,
        user(&app).await,
        user(&app).await,
        user(&app).await,
    );
    for friend in [&m1, &m2, &m3] {
        befriend(&app, &host, friend).await;
    }
    // Creating with a non-friend invitee creates nothing.
    let bad = post_json(
        &app,
        &host,
        "/api/sessions",
        json!({"title": "x", "inviteeIds": [stranger.id]}),
    )
    .await;
    assert_error(bad, 403, "forbidden").await;
    let mine = get_ok(&app, &host, "/api/sessions").await;
    assert_eq!(mine["sessions"].as_array().map(Vec::len), Some(0));
    let invalid = post_json(
        &app,
        &host,
        "/api/sessions",
        json!({"title": "", "language": "cobol"}),
    )
    .await;
    let error = assert_error(invalid, 422, "validation_failed").await;
    assert!(error["fields"]["title"].is_string() && error["fields"]["language"].is_string());

    let session = create_session(&app, &host, &[]).await;
    let invite = |who: &User| {
        post_json(
            &app,
            &host,
            &format!("/api/sessions/{session}/invites"),
            json!({"userId": who.id}),
        )
    };
    assert_error(invite(&stranger).await, 403, "forbidden").await;
    ok(invite(&m1).await, 201).await;
    assert_error(invite(&m1).await, 409, "already_invited").await;
    assert_error(invite(&host).await, 409, "already_member").await;

    // Revoked, then accepted: a clear conflict and no membership.
    let revoked_id = invite_id(&app, &m1, session).await;
    let revoke = delete(
        &app,
        &host,
        &format!("/api/sessions/{session}/invites/{revoked_id}"),
    )
    .await;
    assert_eq!(revoke.status().as_u16(), 204);
    assert_error(
        post(&app, &m1, &format!("/api/invites/{revoked_id}/accept")).await,
        409,
        "invite_revoked",
    )
    .await;
    assert_error(
        get(&app, &m1, &format!("/api/sessions/{session}")).await,
        404,
        "not_found",
    )
    .await;

    // Cap 3 = host + 2: three friends race for the two seats, in parallel.
    for friend in [&m1, &m2, &m3] {
        ok(invite(friend).await, 201).await;
    }
    let mut ids = Vec::new();
    for friend in [&m1, &m2, &m3] {
        ids.push(invite_id(&app, friend, session).await);
    }
    let accepts = [&m1, &m2, &m3].into_iter().zip(&ids).map(|(who, id)| {
        let app = &app;
        async move {
            post(app, who, &format!("/api/invites/{id}/accept"))
                .await
                .status()
                .as_u16()
        }
    });
    let outcomes = futures_util::future::join_all(accepts).await;
    let mut statuses = outcomes.clone();
    statuses.sort_unstable();
    assert_eq!(statuses, [200, 200, 409]);
    // Whoever got in: their invite is answered.
    let winner = outcomes.iter().position(|s| *s == 200).expect("a winner");
    let winner_user = [&m1, &m2, &m3][winner];
    let detail = get_ok(&app, &host, &format!("/api/sessions/{session}")).await;
    assert_eq!(
        detail["session"]["members"].as_array().map(Vec::len),
        Some(3)
    );
    // An answered invite stays answered.
    assert_error(
        post(
            &app,
            winner_user,
            &format!("/api/invites/{}/decline", ids[winner]),
        )
        .await,
        409,
        "invite_answered",
    )
    .await
    .to_string();
}

#[tokio::test]
async fn two_concurrent_accepts_for_the_last_seat_let_exactly_one_in() {
    let app = spawn_app_with(&[("SESSION_MEMBER_CAP", "2")]).await;
    let (host, a, b) = (user(&app).await, user(&app).await, user(&app).await);
    befriend(&app, &host, &a).await;
    befriend(&app, &host, &b).await;
    for _ in 0..3 {
        let session = create_session(&app, &host, &[&a, &b]).await;
        let (ia, ib) = (
            invite_id(&app, &a, session).await,
            invite_id(&app, &b, session).await,
        );
        let (ra, rb) = tokio::join!(
            post(&app, &a, &format!("/api/invites/{ia}/accept")),
            post(&app, &b, &format!("/api/invites/{ib}/accept")),
        );
        let mut statuses = [ra.status().as_u16(), rb.status().as_u16()];
        statuses.sort_unstable();
        assert_eq!(statuses, [200, 409]);
        let members: i64 =
            sqlx::query_scalar("SELECT count(*) FROM session_members WHERE session_id = $1")
                .bind(session)
                .fetch_one(&app.db)
                .await
                .expect("count");
        assert_eq!(members, 2);
    }
}

#[tokio::test]
async fn an_idle_live_session_ends_by_itself() {
    let app = spawn_app_with(&[
        ("SESSION_IDLE_TIMEOUT", "1s"),
        ("SESSION_IDLE_SWEEP_INTERVAL", "200ms"),
    ])
    .await;
    let host = user(&app).await;
    let idle = create_session(&app, &host, &[]).await;
    let scheduled = create_session(&app, &host, &[]).await;
    start_session(&app, &host, idle).await;
    let status = |id: Uuid| {
        let (app, host) = (&app, &host);
        async move {
            get_ok(app, host, &format!("/api/sessions/{id}")).await["session"]["status"].clone()
        }
    };
    assert_eq!(status(idle).await, "live");
    eventually(
        Duration::from_secs(4),
        "the idle live session to end",
        || async { status(idle).await == "ended" },
    )
    .await;
    assert_eq!(
        status(scheduled).await,
        "scheduled",
        "only live sessions time out"
    );
}

#[tokio::test]
async fn lists_paginate_with_a_stable_cursor() {
    let app = spawn_app().await;
    let host = user(&app).await;
    let mut created = Vec::new();
    for _ in 0..5 {
        created.push(create_session(&app, &host, &[]).await.to_string());
    }
    created.reverse(); // newest first
    let mut seen = Vec::new();
    let mut path = "/api/sessions?limit=2".to_owned();
    loop {
        let page = get_ok(&app, &host, &path).await;
        let ids: Vec<String> = page["sessions"]
            .as_array()
            .expect("sessions")
            .iter()
            .map(|s| s["id"].as_str().unwrap_or("").to_owned())
            .collect();
        assert!(ids.len() <= 2);
        seen.extend(ids);
        match page["nextCursor"].as_str() {
            Some(cursor) => path = format!("/api/sessions?limit=2&cursor={cursor}"),
            None => break,
        }
    }
    assert_eq!(seen, created);
    assert_error(
        get(&app, &host, "/api/sessions?limit=1000").await,
        422,
        "validation_failed",
    )
    .await;
    assert_error(
        get(&app, &host, "/api/sessions?cursor=bogus").await,
        422,
        "validation_failed",
    )
    .await;
}
