//! Friends and interview sessions: the whole flow, friend requests at their
//! edges, and user search (session edges: `session_edges`; who may call
//! what: `authorization`).

use reqwest::Method;
use serde_json::{Value, json};
use uuid::Uuid;

use crate::{
    fixtures::{
        User, befriend, call, create_session, delete, get, get_ok, join, ok, patch_json, post,
        post_json, set_role, user,
    },
    helpers::{assert_error, spawn_app, strings},
};

#[tokio::test]
async fn friends_and_a_session_from_request_to_read_only_end() {
    let app = spawn_app().await;
    let (a, b, c) = (user(&app).await, user(&app).await, user(&app).await);

    // Way one: A asks B by email, B accepts.
    let sent = post_json(
        &app,
        &a,
        "/api/friends/requests",
        json!({"email": b.email.to_uppercase()}),
    )
    .await;
    let request = ok(sent, 201).await;
    assert_eq!(request["request"]["status"], "pending");
    let incoming = get_ok(&app, &b, "/api/friends/requests?direction=incoming").await;
    assert_eq!(incoming["requests"][0]["sender"]["id"], a.id.to_string());
    let outgoing = get_ok(&app, &a, "/api/friends/requests?direction=outgoing").await;
    assert_eq!(outgoing["requests"].as_array().map(Vec::len), Some(1));
    let id = request["request"]["id"].as_str().expect("id");
    ok(
        post(&app, &b, &format!("/api/friends/requests/{id}/accept")).await,
        200,
    )
    .await;

    // Way two: A and C ask each other; the second request makes them friends.
    ok(
        post_json(&app, &a, "/api/friends/requests", json!({"userId": c.id})).await,
        201,
    )
    .await;
    let mutual = ok(
        post_json(&app, &c, "/api/friends/requests", json!({"userId": a.id})).await,
        201,
    )
    .await;
    assert_eq!(mutual["request"]["status"], "accepted");
    let friends = get_ok(&app, &a, "/api/friends").await;
    let mut ids = strings(&friends["friends"], "id");
    ids.sort_unstable();
    let mut expected = vec![b.id.to_string(), c.id.to_string()];
    expected.sort();
    assert_eq!(ids, expected);
    assert_eq!(friends["friends"][0]["online"], false);

    // A hosts a session and invites B; B accepts and is a candidate.
    let session = create_session(&app, &a, &[]).await;
    let invited = post_json(
        &app,
        &a,
        &format!("/api/sessions/{session}/invites"),
        json!({"userId": b.id}),
    )
    .await;
    ok(invited, 201).await;
    join(&app, &b, session).await;
    let detail = get_ok(&app, &b, &format!("/api/sessions/{session}")).await;
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
        post(&app, &a, &format!("/api/sessions/{session}/start")).await,
        200,
    )
    .await;
    assert_eq!(started["session"]["status"], "live");
    assert!(started["session"]["startedAt"].is_string());
    let swapped = set_role(&app, &a, session, &b, "interviewer").await;
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
        post(&app, &a, &format!("/api/sessions/{session}/end")).await,
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
        post(&app, &b, &format!("/api/sessions/{session}/leave")).await,
        409,
        "session_ended",
    )
    .await;
    let read = get_ok(&app, &b, &format!("/api/sessions/{session}")).await;
    assert_eq!(read["session"]["members"].as_array().map(Vec::len), Some(2));
    let ended_list = get_ok(&app, &b, "/api/sessions?status=ended").await;
    assert_eq!(ended_list["sessions"][0]["id"], session.to_string());
    let live_list = get_ok(&app, &b, "/api/sessions?status=live").await;
    assert_eq!(live_list["sessions"].as_array().map(Vec::len), Some(0));
    assert_error(
        get(&app, &b, "/api/sessions?status=paused").await,
        422,
        "invalid_query",
    )
    .await;
}

#[tokio::test]
async fn friend_request_edge_cases() {
    let app = spawn_app().await;
    let (a, b, c) = (user(&app).await, user(&app).await, user(&app).await);
    let request = |who: &User, body: Value| post_json(&app, who, "/api/friends/requests", body);

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
            post(&app, who, &format!("/api/friends/requests/{id}/accept")).await,
            404,
            "not_found",
        )
        .await;
        assert_error(
            post(&app, who, &format!("/api/friends/requests/{id}/decline")).await,
            404,
            "not_found",
        )
        .await;
    }
    for who in [&b, &c] {
        assert_error(
            delete(&app, who, &format!("/api/friends/requests/{id}")).await,
            404,
            "not_found",
        )
        .await;
    }
    let declined = post(&app, &b, &format!("/api/friends/requests/{id}/decline")).await;
    assert_eq!(declined.status().as_u16(), 204);
    // Declined: gone, and A may ask again.
    let again = ok(request(&a, json!({"userId": b.id})).await, 201).await;
    let id = again["request"]["id"].as_str().expect("id").to_owned();
    assert_eq!(
        delete(&app, &a, &format!("/api/friends/requests/{id}"))
            .await
            .status()
            .as_u16(),
        204
    );
    assert_error(
        post(&app, &b, &format!("/api/friends/requests/{id}/accept")).await,
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
        delete(&app, &b, &format!("/api/friends/{}", a.id))
            .await
            .status()
            .as_u16(),
        204
    );
    assert_error(
        delete(&app, &b, &format!("/api/friends/{}", a.id)).await,
        404,
        "not_found",
    )
    .await;
    let friends = get_ok(&app, &a, "/api/friends").await;
    assert_eq!(friends["friends"].as_array().map(Vec::len), Some(0));
    assert_error(
        delete(&app, &a, "/api/friends/not-a-uuid").await,
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
    let patch =
        |who: &User, name: &str| patch_json(&app, who, "/api/users/me", json!({"name": name}));
    patch(&alice, "Alice Anderson").await;
    patch(&me, "Alina Me").await;
    let search = |q: &str| {
        let path = format!("/api/users/search?q={}", urlencode(q));
        get(&app, &me, &path)
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
