//! Friends and interview sessions: the whole flows, the edge cases, and an
//! authorization matrix over every endpoint.

use std::time::Duration;

use reqwest::Method;
use serde_json::{Value, json};
use uuid::Uuid;

use crate::{
    eventually::eventually,
    fixtures::{User, befriend, call, create_session, friend_request, invite_id, join, ok, user},
    helpers::{TestApp, assert_error, json_body, spawn_app, spawn_app_with},
};

#[tokio::test]
async fn friends_and_a_session_from_request_to_read_only_end() {
    let app = spawn_app().await;
    let (a, b, c) = (user(&app).await, user(&app).await, user(&app).await);

    // Way one: A asks B by email, B accepts.
    let sent = call(
        &app,
        Some(&a),
        Method::POST,
        "/api/friends/requests",
        Some(json!({"email": b.email.to_uppercase()})),
    )
    .await;
    let request = ok(sent, 201).await;
    assert_eq!(request["request"]["status"], "pending");
    let incoming = ok(
        call(
            &app,
            Some(&b),
            Method::GET,
            "/api/friends/requests?direction=incoming",
            None,
        )
        .await,
        200,
    )
    .await;
    assert_eq!(incoming["requests"][0]["sender"]["id"], a.id.to_string());
    let outgoing = ok(
        call(
            &app,
            Some(&a),
            Method::GET,
            "/api/friends/requests?direction=outgoing",
            None,
        )
        .await,
        200,
    )
    .await;
    assert_eq!(outgoing["requests"].as_array().map(Vec::len), Some(1));
    let id = request["request"]["id"].as_str().expect("id");
    ok(
        call(
            &app,
            Some(&b),
            Method::POST,
            &format!("/api/friends/requests/{id}/accept"),
            None,
        )
        .await,
        200,
    )
    .await;

    // Way two: A and C ask each other; the second request makes them friends.
    ok(
        call(
            &app,
            Some(&a),
            Method::POST,
            "/api/friends/requests",
            Some(json!({"userId": c.id})),
        )
        .await,
        201,
    )
    .await;
    let mutual = ok(
        call(
            &app,
            Some(&c),
            Method::POST,
            "/api/friends/requests",
            Some(json!({"userId": a.id})),
        )
        .await,
        201,
    )
    .await;
    assert_eq!(mutual["request"]["status"], "accepted");
    let friends = ok(
        call(&app, Some(&a), Method::GET, "/api/friends", None).await,
        200,
    )
    .await;
    let mut ids: Vec<&str> = friends["friends"]
        .as_array()
        .expect("friends")
        .iter()
        .filter_map(|f| f["id"].as_str())
        .collect();
    ids.sort_unstable();
    let mut expected = vec![b.id.to_string(), c.id.to_string()];
    expected.sort();
    assert_eq!(ids, expected);
    assert_eq!(friends["friends"][0]["online"], false);

    // A hosts a session and invites B; B accepts and is a candidate.
    let session = create_session(&app, &a, &[]).await;
    let invited = call(
        &app,
        Some(&a),
        Method::POST,
        &format!("/api/sessions/{session}/invites"),
        Some(json!({"userId": b.id})),
    )
    .await;
    ok(invited, 201).await;
    join(&app, &b, session).await;
    let detail = ok(
        call(
            &app,
            Some(&b),
            Method::GET,
            &format!("/api/sessions/{session}"),
            None,
        )
        .await,
        200,
    )
    .await;
    let roles: Vec<(String, String)> = detail["session"]["members"]
        .as_array()
        .expect("members")
        .iter()
        .map(|m| {
            (
                m["userId"].as_str().unwrap_or("").to_owned(),
                m["role"].as_str().unwrap_or("").to_owned(),
            )
        })
        .collect();
    assert!(
        roles.contains(&(a.id.to_string(), "interviewer".into())),
        "{roles:?}"
    );
    assert!(
        roles.contains(&(b.id.to_string(), "candidate".into())),
        "{roles:?}"
    );

    // Start, swap roles in one call, end.
    let started = ok(
        call(
            &app,
            Some(&a),
            Method::POST,
            &format!("/api/sessions/{session}/start"),
            None,
        )
        .await,
        200,
    )
    .await;
    assert_eq!(started["session"]["status"], "live");
    assert!(started["session"]["startedAt"].is_string());
    let swapped = ok(
        call(
            &app,
            Some(&a),
            Method::POST,
            &format!("/api/sessions/{session}/roles"),
            Some(json!({"userId": b.id, "role": "interviewer"})),
        )
        .await,
        200,
    )
    .await;
    let role_of = |who: &User| {
        swapped["session"]["members"]
            .as_array()
            .expect("members")
            .iter()
            .find(|m| m["userId"] == who.id.to_string())
            .map(|m| m["role"].clone())
            .expect("member")
    };
    assert_eq!(role_of(&b), "interviewer");
    assert_eq!(role_of(&a), "candidate");
    let ended = ok(
        call(
            &app,
            Some(&a),
            Method::POST,
            &format!("/api/sessions/{session}/end"),
            None,
        )
        .await,
        200,
    )
    .await;
    assert_eq!(ended["session"]["status"], "ended");

    // Ended: read-only but readable.
    let changes = [
        (
            Method::PATCH,
            format!("/api/sessions/{session}"),
            Some(json!({"title": "again"})),
        ),
        (Method::POST, format!("/api/sessions/{session}/start"), None),
        (Method::POST, format!("/api/sessions/{session}/end"), None),
        (
            Method::POST,
            format!("/api/sessions/{session}/roles"),
            Some(json!({"userId": a.id, "role": "interviewer"})),
        ),
        (
            Method::POST,
            format!("/api/sessions/{session}/invites"),
            Some(json!({"userId": c.id})),
        ),
    ];
    for (method, path, body) in changes {
        assert_error(
            call(&app, Some(&a), method, &path, body).await,
            409,
            "session_ended",
        )
        .await;
    }
    assert_error(
        call(
            &app,
            Some(&b),
            Method::POST,
            &format!("/api/sessions/{session}/leave"),
            None,
        )
        .await,
        409,
        "session_ended",
    )
    .await;
    let read = ok(
        call(
            &app,
            Some(&b),
            Method::GET,
            &format!("/api/sessions/{session}"),
            None,
        )
        .await,
        200,
    )
    .await;
    assert_eq!(read["session"]["members"].as_array().map(Vec::len), Some(2));
    let ended_list = ok(
        call(
            &app,
            Some(&b),
            Method::GET,
            "/api/sessions?status=ended",
            None,
        )
        .await,
        200,
    )
    .await;
    assert_eq!(ended_list["sessions"][0]["id"], session.to_string());
    let live_list = ok(
        call(
            &app,
            Some(&b),
            Method::GET,
            "/api/sessions?status=live",
            None,
        )
        .await,
        200,
    )
    .await;
    assert_eq!(live_list["sessions"].as_array().map(Vec::len), Some(0));
    assert_error(
        call(
            &app,
            Some(&b),
            Method::GET,
            "/api/sessions?status=paused",
            None,
        )
        .await,
        422,
        "invalid_query",
    )
    .await;
}

#[tokio::test]
async fn friend_request_edge_cases() {
    let app = spawn_app().await;
    let (a, b, c) = (user(&app).await, user(&app).await, user(&app).await);
    let request = |who: &User, body: Value| {
        call(
            &app,
            Some(who),
            Method::POST,
            "/api/friends/requests",
            Some(body),
        )
    };

    assert_error(
        request(&a, json!({"userId": a.id})).await,
        422,
        "validation_failed",
    )
    .await;
    assert_error(
        request(&a, json!({"email": a.email})).await,
        422,
        "validation_failed",
    )
    .await;
    assert_error(
        request(&a, json!({"userId": Uuid::new_v4()})).await,
        404,
        "not_found",
    )
    .await;
    assert_error(
        request(&a, json!({"email": "nobody@codecall.dev"})).await,
        404,
        "not_found",
    )
    .await;
    assert_error(request(&a, json!({})).await, 422, "validation_failed").await;

    let sent = ok(request(&a, json!({"userId": b.id})).await, 201).await;
    assert_error(
        request(&a, json!({"userId": b.id})).await,
        409,
        "request_exists",
    )
    .await;
    let id = sent["request"]["id"].as_str().expect("id").to_owned();
    // Only the receiver accepts or declines; only the sender cancels; others see nothing.
    for who in [&a, &c] {
        assert_error(
            call(
                &app,
                Some(who),
                Method::POST,
                &format!("/api/friends/requests/{id}/accept"),
                None,
            )
            .await,
            404,
            "not_found",
        )
        .await;
        assert_error(
            call(
                &app,
                Some(who),
                Method::POST,
                &format!("/api/friends/requests/{id}/decline"),
                None,
            )
            .await,
            404,
            "not_found",
        )
        .await;
    }
    for who in [&b, &c] {
        assert_error(
            call(
                &app,
                Some(who),
                Method::DELETE,
                &format!("/api/friends/requests/{id}"),
                None,
            )
            .await,
            404,
            "not_found",
        )
        .await;
    }
    let declined = call(
        &app,
        Some(&b),
        Method::POST,
        &format!("/api/friends/requests/{id}/decline"),
        None,
    )
    .await;
    assert_eq!(declined.status().as_u16(), 204);
    // Declined: gone, and A may ask again.
    let again = ok(request(&a, json!({"userId": b.id})).await, 201).await;
    let id = again["request"]["id"].as_str().expect("id").to_owned();
    assert_eq!(
        call(
            &app,
            Some(&a),
            Method::DELETE,
            &format!("/api/friends/requests/{id}"),
            None
        )
        .await
        .status()
        .as_u16(),
        204
    );
    assert_error(
        call(
            &app,
            Some(&b),
            Method::POST,
            &format!("/api/friends/requests/{id}/accept"),
            None,
        )
        .await,
        404,
        "not_found",
    )
    .await;

    befriend(&app, &a, &b).await;
    assert_error(
        request(&b, json!({"userId": a.id})).await,
        409,
        "already_friends",
    )
    .await;
    assert_eq!(
        call(
            &app,
            Some(&b),
            Method::DELETE,
            &format!("/api/friends/{}", a.id),
            None
        )
        .await
        .status()
        .as_u16(),
        204
    );
    assert_error(
        call(
            &app,
            Some(&b),
            Method::DELETE,
            &format!("/api/friends/{}", a.id),
            None,
        )
        .await,
        404,
        "not_found",
    )
    .await;
    let friends = ok(
        call(&app, Some(&a), Method::GET, "/api/friends", None).await,
        200,
    )
    .await;
    assert_eq!(friends["friends"].as_array().map(Vec::len), Some(0));
    assert_error(
        call(
            &app,
            Some(&a),
            Method::DELETE,
            "/api/friends/not-a-uuid",
            None,
        )
        .await,
        400,
        "invalid_path",
    )
    .await;
}

#[tokio::test]
async fn search_finds_exact_emails_and_name_prefixes_without_leaking_emails() {
    let app = spawn_app().await;
    let me = user(&app).await;
    let alice = user(&app).await;
    let patch = |who: &User, name: &str| {
        call(
            &app,
            Some(who),
            Method::PATCH,
            "/api/users/me",
            Some(json!({"name": name})),
        )
    };
    patch(&alice, "Alice Anderson").await;
    patch(&me, "Alina Me").await;
    let search = |q: &str| {
        let path = format!("/api/users/search?q={}", urlencode(q));
        call(&app, Some(&me), Method::GET, &path, None)
    };

    let by_prefix = ok(search("ali").await, 200).await;
    let users = by_prefix["users"].as_array().expect("users");
    assert_eq!(users.len(), 1, "the caller is excluded: {users:?}");
    assert_eq!(users[0]["name"], "Alice Anderson");
    assert!(
        users[0].get("email").is_none(),
        "no email for a non-friend found by name"
    );
    let by_email = ok(search(&alice.email.to_uppercase()).await, 200).await;
    assert_eq!(by_email["users"][0]["email"], alice.email);
    // LIKE wildcards match literally.
    assert_eq!(
        ok(search("%").await, 200).await["users"]
            .as_array()
            .map(Vec::len),
        Some(0)
    );
    assert_error(search("").await, 422, "validation_failed").await;
}

fn urlencode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b'-' | b'.' | b'_' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

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
    let bad = call(
        &app,
        Some(&host),
        Method::POST,
        "/api/sessions",
        Some(json!({"title": "x", "inviteeIds": [stranger.id]})),
    )
    .await;
    assert_error(bad, 403, "forbidden").await;
    let mine = ok(
        call(&app, Some(&host), Method::GET, "/api/sessions", None).await,
        200,
    )
    .await;
    assert_eq!(mine["sessions"].as_array().map(Vec::len), Some(0));
    let invalid = call(
        &app,
        Some(&host),
        Method::POST,
        "/api/sessions",
        Some(json!({"title": "", "language": "cobol"})),
    )
    .await;
    let error = assert_error(invalid, 422, "validation_failed").await;
    assert!(error["fields"]["title"].is_string() && error["fields"]["language"].is_string());

    let session = create_session(&app, &host, &[]).await;
    let invite = |who: &User| {
        call(
            &app,
            Some(&host),
            Method::POST,
            &format!("/api/sessions/{session}/invites"),
            Some(json!({"userId": who.id})),
        )
    };
    assert_error(invite(&stranger).await, 403, "forbidden").await;
    ok(invite(&m1).await, 201).await;
    assert_error(invite(&m1).await, 409, "already_invited").await;
    assert_error(invite(&host).await, 409, "already_member").await;

    // Revoked, then accepted: a clear conflict and no membership.
    let revoked_id = invite_id(&app, &m1, session).await;
    let revoke = call(
        &app,
        Some(&host),
        Method::DELETE,
        &format!("/api/sessions/{session}/invites/{revoked_id}"),
        None,
    )
    .await;
    assert_eq!(revoke.status().as_u16(), 204);
    assert_error(
        call(
            &app,
            Some(&m1),
            Method::POST,
            &format!("/api/invites/{revoked_id}/accept"),
            None,
        )
        .await,
        409,
        "invite_revoked",
    )
    .await;
    assert_error(
        call(
            &app,
            Some(&m1),
            Method::GET,
            &format!("/api/sessions/{session}"),
            None,
        )
        .await,
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
            call(
                app,
                Some(who),
                Method::POST,
                &format!("/api/invites/{id}/accept"),
                None,
            )
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
    let detail = ok(
        call(
            &app,
            Some(&host),
            Method::GET,
            &format!("/api/sessions/{session}"),
            None,
        )
        .await,
        200,
    )
    .await;
    assert_eq!(
        detail["session"]["members"].as_array().map(Vec::len),
        Some(3)
    );
    // An answered invite stays answered.
    assert_error(
        call(
            &app,
            Some(winner_user),
            Method::POST,
            &format!("/api/invites/{}/decline", ids[winner]),
            None,
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
            call(
                &app,
                Some(&a),
                Method::POST,
                &format!("/api/invites/{ia}/accept"),
                None
            ),
            call(
                &app,
                Some(&b),
                Method::POST,
                &format!("/api/invites/{ib}/accept"),
                None
            ),
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
    ok(
        call(
            &app,
            Some(&host),
            Method::POST,
            &format!("/api/sessions/{idle}/start"),
            None,
        )
        .await,
        200,
    )
    .await;
    let status = |id: Uuid| {
        let (app, host) = (&app, &host);
        async move {
            ok(
                call(
                    app,
                    Some(host),
                    Method::GET,
                    &format!("/api/sessions/{id}"),
                    None,
                )
                .await,
                200,
            )
            .await["session"]["status"]
                .clone()
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
        let page = ok(call(&app, Some(&host), Method::GET, &path, None).await, 200).await;
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
        call(
            &app,
            Some(&host),
            Method::GET,
            "/api/sessions?limit=1000",
            None,
        )
        .await,
        422,
        "validation_failed",
    )
    .await;
    assert_error(
        call(
            &app,
            Some(&host),
            Method::GET,
            "/api/sessions?cursor=bogus",
            None,
        )
        .await,
        422,
        "validation_failed",
    )
    .await;
}

/// Everyone a matrix row is called as.
struct Fixture {
    host: User,
    member: User,
    friend: User,
    stranger: User,
    session: Uuid,
    /// The friend's pending invite to the session.
    invite: String,
    /// A pending friend request from the member to the stranger.
    request: String,
}

impl Fixture {
    async fn new(app: &TestApp) -> Fixture {
        let (host, member, friend, stranger) = (
            user(app).await,
            user(app).await,
            user(app).await,
            user(app).await,
        );
        befriend(app, &host, &member).await;
        befriend(app, &host, &friend).await;
        let session = create_session(app, &host, &[&member, &friend]).await;
        join(app, &member, session).await;
        let invite = invite_id(app, &friend, session).await;
        let request = friend_request(app, &member, &stranger).await;
        Fixture {
            host,
            member,
            friend,
            stranger,
            session,
            invite,
            request,
        }
    }
}

type PathFn = fn(&Fixture) -> String;
type BodyFn = fn(&Fixture) -> Option<Value>;

/// One endpoint and the status each actor gets:
/// [host/owner, member, friend who is not a member, stranger, no token].
struct Row(Method, PathFn, BodyFn, [u16; 5]);

fn no_body(_: &Fixture) -> Option<Value> {
    None
}

#[tokio::test]
async fn authorization_matrix() {
    let app = spawn_app().await;
    let rows: Vec<Row> = vec![
        Row(
            Method::GET,
            |_| "/api/users/search?q=u".into(),
            no_body,
            [200, 200, 200, 200, 401],
        ),
        Row(
            Method::GET,
            |_| "/api/users/me".into(),
            no_body,
            [200, 200, 200, 200, 401],
        ),
        Row(
            Method::GET,
            |_| "/api/friends".into(),
            no_body,
            [200, 200, 200, 200, 401],
        ),
        Row(
            Method::GET,
            |_| "/api/friends/requests?direction=outgoing".into(),
            no_body,
            [200, 200, 200, 200, 401],
        ),
        Row(
            Method::POST,
            |_| "/api/friends/requests".into(),
            |f| Some(json!({"userId": f.friend.id})),
            [409, 201, 422, 201, 401],
        ),
        Row(
            Method::POST,
            |f| format!("/api/friends/requests/{}/accept", f.request),
            no_body,
            [404, 404, 404, 200, 401],
        ),
        Row(
            Method::POST,
            |f| format!("/api/friends/requests/{}/decline", f.request),
            no_body,
            [404, 404, 404, 204, 401],
        ),
        Row(
            Method::DELETE,
            |f| format!("/api/friends/requests/{}", f.request),
            no_body,
            [404, 204, 404, 404, 401],
        ),
        Row(
            Method::DELETE,
            |f| format!("/api/friends/{}", f.friend.id),
            no_body,
            [204, 404, 404, 404, 401],
        ),
        Row(
            Method::POST,
            |_| "/api/sessions".into(),
            |_| Some(json!({"title": "t"})),
            [201, 201, 201, 201, 401],
        ),
        Row(
            Method::GET,
            |_| "/api/sessions".into(),
            no_body,
            [200, 200, 200, 200, 401],
        ),
        Row(
            Method::GET,
            |f| format!("/api/sessions/{}", f.session),
            no_body,
            [200, 200, 404, 404, 401],
        ),
        Row(
            Method::PATCH,
            |f| format!("/api/sessions/{}", f.session),
            |_| Some(json!({"title": "New"})),
            [200, 403, 404, 404, 401],
        ),
        Row(
            Method::POST,
            |f| format!("/api/sessions/{}/start", f.session),
            no_body,
            [200, 403, 404, 404, 401],
        ),
        Row(
            Method::POST,
            |f| format!("/api/sessions/{}/end", f.session),
            no_body,
            [200, 403, 404, 404, 401],
        ),
        Row(
            Method::POST,
            |f| format!("/api/sessions/{}/leave", f.session),
            no_body,
            [409, 204, 404, 404, 401],
        ),
        Row(
            Method::POST,
            |f| format!("/api/sessions/{}/roles", f.session),
            |f| Some(json!({"userId": f.member.id, "role": "interviewer"})),
            [200, 403, 404, 404, 401],
        ),
        Row(
            Method::POST,
            |f| format!("/api/sessions/{}/invites", f.session),
            |f| Some(json!({"userId": f.friend.id})),
            [409, 403, 404, 404, 401],
        ),
        Row(
            Method::DELETE,
            |f| format!("/api/sessions/{}/invites/{}", f.session, f.invite),
            no_body,
            [204, 403, 404, 404, 401],
        ),
        Row(
            Method::GET,
            |_| "/api/invites".into(),
            no_body,
            [200, 200, 200, 200, 401],
        ),
        Row(
            Method::POST,
            |f| format!("/api/invites/{}/accept", f.invite),
            no_body,
            [404, 404, 200, 404, 401],
        ),
        Row(
            Method::POST,
            |f| format!("/api/invites/{}/decline", f.invite),
            no_body,
            [404, 404, 204, 404, 401],
        ),
    ];
    let mut failures = Vec::new();
    for Row(method, path, body, expected) in rows {
        let fixture = Fixture::new(&app).await;
        let actors = [
            Some(&fixture.host),
            Some(&fixture.member),
            Some(&fixture.friend),
            Some(&fixture.stranger),
            None,
        ];
        // Refusals first: they must change nothing, so the allowed call that
        // follows still finds the fixture intact.
        let mut order: Vec<usize> = (0..5).collect();
        order.sort_by_key(|i| expected[*i] < 300);
        for i in order {
            let path = path(&fixture);
            let response = call(&app, actors[i], method.clone(), &path, body(&fixture)).await;
            let status = response.status().as_u16();
            if status != expected[i] {
                failures.push(format!(
                    "{method} {path} as actor {i}: got {status}, want {}",
                    expected[i]
                ));
            } else if status >= 400 {
                let body = json_body(response).await;
                assert_eq!(body["success"], false, "{method} {path}: {body}");
            }
        }
    }
    assert!(failures.is_empty(), "{failures:#?}");
}
