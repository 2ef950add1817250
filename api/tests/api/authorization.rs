//! An authorization matrix over every friends and sessions endpoint: each
//! row is one endpoint and the status each kind of caller gets.

use reqwest::Method;
use serde_json::{Value, json};
use uuid::Uuid;

use crate::{
    fixtures::{User, befriend, call, create_session, friend_request, invite_id, join, user},
    helpers::{TestApp, json_body, spawn_app},
};

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
