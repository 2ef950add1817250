//! Friends and interview sessions: the whole flow, friend requests at their
//! edges, and user search (session edges: `session_edges`; who may call
//! what: `authorization`).

use reqwest::Method;
use serde_json::{Value, json};
use uuid::Uuid;

use crate::{
    fixtures::{User, befriend, call, create_session, join, ok, user},
    helpers::{assert_error, spawn_app},
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
