//! An authorization matrix over every friends and sessions endpoint: each
//! row is one endpoint and the status each kind of caller gets.

use reqwest::Method;
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

impl Fixture {
    /// `template` with `{session}`, `{invite}`, `{request}`, `{member}` and
    /// `{friend}` replaced by the fixture's.
    fn fill(&self, template: &str) -> String {
        template
            .replace("{session}", &self.session.to_string())
            .replace("{invite}", &self.invite)
            .replace("{request}", &self.request)
            .replace("{member}", &self.member.id.to_string())
            .replace("{friend}", &self.friend.id.to_string())
    }
}

/// One endpoint (method, path, JSON body or "" for none; both templates for
/// [`Fixture::fill`]) and the status each actor gets:
/// [host/owner, member, friend who is not a member, stranger, no token].
type Row = (&'static str, &'static str, &'static str, [u16; 5]);

// One row a line: the matrix reads as a table.
#[rustfmt::skip]
const ROWS: &[Row] = &[
    ("GET", "/api/users/search?q=u", "", [200, 200, 200, 200, 401]),
    ("GET", "/api/users/me", "", [200, 200, 200, 200, 401]),
    ("GET", "/api/friends", "", [200, 200, 200, 200, 401]),
    ("GET", "/api/friends/requests?direction=outgoing", "", [200, 200, 200, 200, 401]),
    ("POST", "/api/friends/requests", r#"{"userId": "{friend}"}"#, [409, 201, 422, 201, 401]),
    ("POST", "/api/friends/requests/{request}/accept", "", [404, 404, 404, 200, 401]),
    ("POST", "/api/friends/requests/{request}/decline", "", [404, 404, 404, 204, 401]),
    ("DELETE", "/api/friends/requests/{request}", "", [404, 204, 404, 404, 401]),
    ("DELETE", "/api/friends/{friend}", "", [204, 404, 404, 404, 401]),
    ("POST", "/api/sessions", r#"{"title": "t"}"#, [201, 201, 201, 201, 401]),
    ("GET", "/api/sessions", "", [200, 200, 200, 200, 401]),
    ("GET", "/api/sessions/{session}", "", [200, 200, 404, 404, 401]),
    ("PATCH", "/api/sessions/{session}", r#"{"title": "New"}"#, [200, 403, 404, 404, 401]),
    ("POST", "/api/sessions/{session}/start", "", [200, 403, 404, 404, 401]),
    ("POST", "/api/sessions/{session}/end", "", [200, 403, 404, 404, 401]),
    ("POST", "/api/sessions/{session}/leave", "", [409, 204, 404, 404, 401]),
    ("POST", "/api/sessions/{session}/roles", r#"{"userId": "{member}", "role": "interviewer"}"#, [200, 403, 404, 404, 401]),
    ("POST", "/api/sessions/{session}/invites", r#"{"userId": "{friend}"}"#, [409, 403, 404, 404, 401]),
    ("DELETE", "/api/sessions/{session}/invites/{invite}", "", [204, 403, 404, 404, 401]),
    ("GET", "/api/invites", "", [200, 200, 200, 200, 401]),
    ("POST", "/api/invites/{invite}/accept", "", [404, 404, 200, 404, 401]),
    ("POST", "/api/invites/{invite}/decline", "", [404, 404, 204, 404, 401]),
];

#[tokio::test]
async fn authorization_matrix() {
    let app = spawn_app().await;
    let mut failures = Vec::new();
    for &(method, path, body, expected) in ROWS {
        let method = Method::from_bytes(method.as_bytes()).expect("a method");
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
            let path = fixture.fill(path);
            let body = (!body.is_empty())
                .then(|| serde_json::from_str(&fixture.fill(body)).expect("a JSON body"));
            let response = call(&app, actors[i], method.clone(), &path, body).await;
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
