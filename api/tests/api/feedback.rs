//! Feedback after an interview: who writes it, who reads it, the edit
//! window (`FEEDBACK_EDIT_WINDOW`, set here, crossed by moving the session's
//! end back rather than by sleeping), progress over time, and the review
//! document as each role sees it.

use serde_json::{Value, json};
use uuid::Uuid;

use crate::{
    fixtures::{
        User, befriend, get, get_ok, joined_session, ok, post, post_json, put_json, start_session,
        user,
    },
    helpers::{TestApp, assert_error, json_body, spawn_app_with},
};

fn rubric(marks: [i64; 4], signal: &str, text: &str) -> Value {
    json!({
        "rubric": {"problemSolving": marks[0], "communication": marks[1], "codeQuality": marks[2], "testing": marks[3]},
        "signal": signal,
        "text": text,
    })
}

async fn write(
    app: &TestApp,
    who: &User,
    session: Uuid,
    about: Uuid,
    body: Value,
) -> reqwest::Response {
    put_json(
        app,
        who,
        &format!("/api/sessions/{session}/feedback/{about}"),
        body,
    )
    .await
}

/// POSTs `path` without a body as `who`, expecting 200.
async fn post_ok(app: &TestApp, who: &User, path: &str) {
    ok(post(app, who, path).await, 200).await;
}

/// A live session hosted by `host` with `candidates` joined.
async fn live_session(app: &TestApp, host: &User, candidates: &[&User]) -> Uuid {
    let session = joined_session(app, host, candidates).await;
    start_session(app, host, session).await;
    session
}

fn texts(body: &Value) -> Vec<String> {
    body["feedback"]
        .as_array()
        .expect("feedback")
        .iter()
        .filter_map(|f| f["text"].as_str().map(str::to_owned))
        .collect()
}

#[tokio::test]
async fn feedback_is_written_by_the_interviewer_read_by_its_candidate_and_frozen_after_the_window()
{
    let app = spawn_app_with(&[("FEEDBACK_EDIT_WINDOW", "1h")]).await;
    let host = user(&app).await;
    let (ada, bob, stranger) = (user(&app).await, user(&app).await, user(&app).await);
    befriend(&app, &host, &ada).await;
    befriend(&app, &host, &bob).await;
    let first = live_session(&app, &host, &[&ada, &bob]).await;
    let marker = format!("HIDDEN{}", Uuid::new_v4().simple());
    let problem = ok(
        post_json(&app, &host, "/api/problems", json!({
            "title": "Echo", "statement": "Print stdin.", "difficulty": "easy",
            "sampleTests": [{"stdin": "a\n", "expectedOutput": "a\n"}],
            "hiddenTests": [{"stdin": format!("{marker}\n"), "expectedOutput": format!("{marker}\n")}],
        })).await,
        201,
    )
    .await;
    let problem_id = problem["problem"]["id"].as_str().expect("id").to_owned();
    ok(
        put_json(
            &app,
            &host,
            &format!("/api/sessions/{first}/problem"),
            json!({"problemId": problem_id}),
        )
        .await,
        200,
    )
    .await;

    // Not before the end.
    let body = rubric([3, 3, 3, 3], "yes", "early");
    assert_error(
        write(&app, &host, first, ada.id, body).await,
        409,
        "session_not_ended",
    )
    .await;
    post_ok(&app, &host, &format!("/api/sessions/{first}/end")).await;

    let body = rubric([3, 4, 2, 3], "yes", "Ada: clear thinking");
    let written = ok(write(&app, &host, first, ada.id, body).await, 201).await;
    assert_eq!(written["feedback"]["rubric"]["communication"], 4);
    assert!(written["feedback"]["editableUntil"].is_string());
    let body = rubric([4, 4, 3, 3], "strong_yes", "Ada: excellent");
    let rewritten = ok(write(&app, &host, first, ada.id, body).await, 200).await;
    assert_eq!(
        rewritten["feedback"]["id"], written["feedback"]["id"],
        "one piece per author and candidate"
    );
    let body = rubric([1, 2, 1, 1], "no", "Bob: needs practice");
    ok(write(&app, &host, first, bob.id, body).await, 201).await;

    // Candidates do not write it; nobody writes about a non-candidate.
    let body = rubric([1, 1, 1, 1], "strong_no", "x");
    assert_error(
        write(&app, &ada, first, bob.id, body).await,
        403,
        "forbidden",
    )
    .await;
    for about in [host.id, stranger.id] {
        let body = rubric([2, 2, 2, 2], "no", "x");
        let error = assert_error(
            write(&app, &host, first, about, body).await,
            422,
            "validation_failed",
        )
        .await;
        assert!(error["fields"]["candidateId"].is_string(), "{error}");
    }
    let body = rubric([5, 0, 2, 2], "no", "x");
    let error = assert_error(
        write(&app, &host, first, ada.id, body).await,
        422,
        "validation_failed",
    )
    .await;
    assert!(
        error["fields"]["rubric.problemSolving"].is_string()
            && error["fields"]["rubric.communication"].is_string(),
        "{error}"
    );
    let body = rubric([2, 2, 2, 2], "maybe", "x");
    assert_error(
        write(&app, &host, first, ada.id, body).await,
        422,
        "invalid_body",
    )
    .await;
    let body = rubric([2, 2, 2, 2], "no", "x");
    assert_error(
        write(&app, &stranger, first, ada.id, body).await,
        404,
        "not_found",
    )
    .await;

    // Reading: the host everything, each candidate only about themselves.
    let path = format!("/api/sessions/{first}/feedback");
    let all = get_ok(&app, &host, &path).await;
    assert_eq!(texts(&all), ["Ada: excellent", "Bob: needs practice"]);
    let ada_reads = get_ok(&app, &ada, &path).await;
    assert_eq!(texts(&ada_reads), ["Ada: excellent"]);
    assert_eq!(ada_reads["feedback"][0]["signal"], "strong_yes");
    let bob_reads = get_ok(&app, &bob, &path).await;
    assert_eq!(texts(&bob_reads), ["Bob: needs practice"]);
    assert_error(get(&app, &stranger, &path).await, 404, "not_found").await;

    // The review document, per role.
    let review_path = format!("/api/sessions/{first}/review");
    let host_review = get_ok(&app, &host, &review_path).await;
    let review = &host_review["review"];
    assert_eq!(review["viewerRole"], "interviewer");
    assert_eq!(review["problem"]["title"], "Echo");
    assert_eq!(
        review["problem"]["hiddenTests"][0]["stdin"],
        format!("{marker}\n")
    );
    assert_eq!(review["feedback"].as_array().map(Vec::len), Some(2));
    assert!(review["finalCode"].is_string() && review["runs"].is_array());
    assert_eq!(review["session"]["status"], "ended");
    let ada_review = get(&app, &ada, &review_path).await;
    let ada_review = ada_review.text().await.expect("body");
    assert!(!ada_review.contains(&marker), "{ada_review}");
    assert!(!ada_review.contains("Bob: needs practice"), "{ada_review}");
    let ada_review: Value = serde_json::from_str(&ada_review).expect("json");
    assert_eq!(ada_review["review"]["viewerRole"], "candidate");
    assert_eq!(ada_review["review"]["problem"]["hiddenTestCount"], 1);
    assert_eq!(texts(&ada_review["review"]), ["Ada: excellent"]);

    // A second interview; progress over time, newest first, a page at a time.
    let second = live_session(&app, &host, &[&ada]).await;
    post_ok(&app, &host, &format!("/api/sessions/{second}/end")).await;
    let body = rubric([4, 4, 4, 4], "strong_yes", "Ada again");
    ok(write(&app, &host, second, ada.id, body).await, 201).await;
    let page = get_ok(&app, &ada, "/api/users/me/feedback?limit=1").await;
    assert_eq!(texts(&page), ["Ada again"]);
    let cursor = page["nextCursor"].as_str().expect("a second page");
    let page = get_ok(
        &app,
        &ada,
        &format!("/api/users/me/feedback?limit=1&cursor={cursor}"),
    )
    .await;
    assert_eq!(texts(&page), ["Ada: excellent"]);
    assert!(page["nextCursor"].is_null());
    let bobs = get_ok(&app, &bob, "/api/users/me/feedback").await;
    assert_eq!(texts(&bobs), ["Bob: needs practice"]);
    let hosts = get_ok(&app, &host, "/api/users/me/feedback").await;
    assert_eq!(texts(&hosts), Vec::<String>::new());

    // The window (1h here, 7d by default): inside it, edits go on; past it, frozen.
    sqlx::query(
        "UPDATE interview_sessions SET ended_at = now() - interval '50 minutes' WHERE id = $1",
    )
    .bind(second)
    .execute(&app.db)
    .await
    .expect("move the end back");
    let body = rubric([4, 4, 4, 3], "strong_yes", "Ada again, edited");
    ok(write(&app, &host, second, ada.id, body).await, 200).await;
    sqlx::query(
        "UPDATE interview_sessions SET ended_at = now() - interval '61 minutes' WHERE id = ANY($1)",
    )
    .bind(vec![first, second])
    .execute(&app.db)
    .await
    .expect("move the ends back");
    let body = rubric([1, 1, 1, 1], "strong_no", "too late");
    let frozen = assert_error(
        write(&app, &host, second, ada.id, body).await,
        409,
        "feedback_frozen",
    )
    .await;
    assert!(
        frozen["message"].as_str().is_some_and(|m| m.contains("1h")),
        "{frozen}"
    );
    let body = rubric([4, 4, 4, 4], "yes", "changed my mind");
    assert_error(
        write(&app, &host, first, bob.id, body).await,
        409,
        "feedback_frozen",
    )
    .await;
    let after = get_ok(&app, &bob, &path).await;
    assert_eq!(
        texts(&after),
        ["Bob: needs practice"],
        "frozen feedback is unchanged"
    );
    let json = json_body(get(&app, &ada, "/api/users/me/feedback").await).await;
    assert_eq!(texts(&json), ["Ada again, edited", "Ada: excellent"]);
}
