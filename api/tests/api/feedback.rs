//! Feedback after an interview: who writes it, who reads it, the edit
//! window (`FEEDBACK_EDIT_WINDOW`, set here, crossed by moving the session's
//! end back rather than by sleeping), progress over time, and the review
//! document as each role sees it.

use reqwest::Method;
use serde_json::{Value, json};
use uuid::Uuid;

use crate::{
    fixtures::{User, befriend, call, create_session, join, ok, user},
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
    call(
        app,
        Some(who),
        Method::PUT,
        &format!("/api/sessions/{session}/feedback/{about}"),
        Some(body),
    )
    .await
}

async fn post(app: &TestApp, who: &User, path: &str) {
    ok(call(app, Some(who), Method::POST, path, None).await, 200).await;
}

/// A live session hosted by `host` with `candidates` joined.
async fn live_session(app: &TestApp, host: &User, candidates: &[&User]) -> Uuid {
    let session = create_session(app, host, candidates).await;
    for candidate in candidates {
        join(app, candidate, session).await;
    }
    post(app, host, &format!("/api/sessions/{session}/start")).await;
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
        call(&app, Some(&host), Method::POST, "/api/problems", Some(json!({
            "title": "Echo", "statement": "Print stdin.", "difficulty": "easy",
            "sampleTests": [{"stdin": "a\n", "expectedOutput": "a\n"}],
            "hiddenTests": [{"stdin": format!("{marker}\n"), "expectedOutput": format!("{marker}\n")}],
        }))).await,
        201,
    )
    .await;
    let problem_id = problem["problem"]["id"].as_str().expect("id").to_owned();
    ok(
        call(
            &app,
            Some(&host),
            Method::PUT,
            &format!("/api/sessions/{first}/problem"),
            Some(json!({"problemId": problem_id})),
        )
        .await,
        200,
    )
    .await;

    // Not before the end.
    assert_error(
        write(
            &app,
            &host,
            first,
            ada.id,
            rubric([3, 3, 3, 3], "yes", "early"),
        )
        .await,
        409,
        "session_not_ended",
    )
    .await;
    post(&app, &host, &format!("/api/sessions/{first}/end")).await;

    let written = ok(
        write(
            &app,
            &host,
            first,
            ada.id,
            rubric([3, 4, 2, 3], "yes", "Ada: clear thinking"),
        )
        .await,
        201,
    )
    .await;
    assert_eq!(written["feedback"]["rubric"]["communication"], 4);
    assert!(written["feedback"]["editableUntil"].is_string());
    let rewritten = ok(
        write(
            &app,
            &host,
            first,
            ada.id,
            rubric([4, 4, 3, 3], "strong_yes", "Ada: excellent"),
        )
        .await,
        200,
    )
    .await;
    assert_eq!(
        rewritten["feedback"]["id"], written["feedback"]["id"],
        "one piece per author and candidate"
    );
    ok(
        write(
            &app,
            &host,
            first,
            bob.id,
            rubric([1, 2, 1, 1], "no", "Bob: needs practice"),
        )
        .await,
        201,
    )
    .await;

    // Candidates do not write it; nobody writes about a non-candidate.
    assert_error(
        write(
            &app,
            &ada,
            first,
            bob.id,
            rubric([1, 1, 1, 1], "strong_no", "x"),
        )
        .await,
        403,
        "forbidden",
    )
    .await;
    for about in [host.id, stranger.id] {
        let error = assert_error(
            write(&app, &host, first, about, rubric([2, 2, 2, 2], "no", "x")).await,
            422,
            "validation_failed",
        )
        .await;
        assert!(error["fields"]["candidateId"].is_string(), "{error}");
    }
    let error = assert_error(
        write(&app, &host, first, ada.id, rubric([5, 0, 2, 2], "no", "x")).await,
        422,
        "validation_failed",
    )
    .await;
    assert!(
        error["fields"]["rubric.problemSolving"].is_string()
            && error["fields"]["rubric.communication"].is_string(),
        "{error}"
    );
    assert_error(
        write(
            &app,
            &host,
            first,
            ada.id,
            rubric([2, 2, 2, 2], "maybe", "x"),
        )
        .await,
        422,
        "invalid_body",
    )
    .await;
    assert_error(
        write(
            &app,
            &stranger,
            first,
            ada.id,
            rubric([2, 2, 2, 2], "no", "x"),
        )
        .await,
        404,
        "not_found",
    )
    .await;

    // Reading: the host everything, each candidate only about themselves.
    let path = format!("/api/sessions/{first}/feedback");
    let all = ok(call(&app, Some(&host), Method::GET, &path, None).await, 200).await;
    assert_eq!(texts(&all), ["Ada: excellent", "Bob: needs practice"]);
    let ada_reads = ok(call(&app, Some(&ada), Method::GET, &path, None).await, 200).await;
    assert_eq!(texts(&ada_reads), ["Ada: excellent"]);
    assert_eq!(ada_reads["feedback"][0]["signal"], "strong_yes");
    let bob_reads = ok(call(&app, Some(&bob), Method::GET, &path, None).await, 200).await;
    assert_eq!(texts(&bob_reads), ["Bob: needs practice"]);
    assert_error(
        call(&app, Some(&stranger), Method::GET, &path, None).await,
        404,
        "not_found",
    )
    .await;

    // The review document, per role.
    let review_path = format!("/api/sessions/{first}/review");
    let host_review = ok(
        call(&app, Some(&host), Method::GET, &review_path, None).await,
        200,
    )
    .await;
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
    let ada_review = call(&app, Some(&ada), Method::GET, &review_path, None).await;
    let ada_review = ada_review.text().await.expect("body");
    assert!(!ada_review.contains(&marker), "{ada_review}");
    assert!(!ada_review.contains("Bob: needs practice"), "{ada_review}");
    let ada_review: Value = serde_json::from_str(&ada_review).expect("json");
    assert_eq!(ada_review["review"]["viewerRole"], "candidate");
    assert_eq!(ada_review["review"]["problem"]["hiddenTestCount"], 1);
    assert_eq!(texts(&ada_review["review"]), ["Ada: excellent"]);

    // A second interview; progress over time, newest first, a page at a time.
    let second = live_session(&app, &host, &[&ada]).await;
    post(&app, &host, &format!("/api/sessions/{second}/end")).await;
    ok(
        write(
            &app,
            &host,
            second,
            ada.id,
            rubric([4, 4, 4, 4], "strong_yes", "Ada again"),
        )
        .await,
        201,
    )
    .await;
    let page = ok(
        call(
            &app,
            Some(&ada),
            Method::GET,
            "/api/users/me/feedback?limit=1",
            None,
        )
        .await,
        200,
    )
    .await;
    assert_eq!(texts(&page), ["Ada again"]);
    let cursor = page["nextCursor"].as_str().expect("a second page");
    let page = ok(
        call(
            &app,
            Some(&ada),
            Method::GET,
            &format!("/api/users/me/feedback?limit=1&cursor={cursor}"),
            None,
        )
        .await,
        200,
    )
    .await;
    assert_eq!(texts(&page), ["Ada: excellent"]);
    assert!(page["nextCursor"].is_null());
    let bobs = ok(
        call(
            &app,
            Some(&bob),
            Method::GET,
            "/api/users/me/feedback",
            None,
        )
        .await,
        200,
    )
    .await;
    assert_eq!(texts(&bobs), ["Bob: needs practice"]);
    let hosts = ok(
        call(
            &app,
            Some(&host),
            Method::GET,
            "/api/users/me/feedback",
            None,
        )
        .await,
        200,
    )
    .await;
    assert_eq!(texts(&hosts), Vec::<String>::new());

    // The window (1h here, 7d by default): inside it, edits go on; past it, frozen.
    sqlx::query(
        "UPDATE interview_sessions SET ended_at = now() - interval '50 minutes' WHERE id = $1",
    )
    .bind(second)
    .execute(&app.db)
    .await
    .expect("move the end back");
    ok(
        write(
            &app,
            &host,
            second,
            ada.id,
            rubric([4, 4, 4, 3], "strong_yes", "Ada again, edited"),
        )
        .await,
        200,
    )
    .await;
    sqlx::query(
        "UPDATE interview_sessions SET ended_at = now() - interval '61 minutes' WHERE id = ANY($1)",
    )
    .bind(vec![first, second])
    .execute(&app.db)
    .await
    .expect("move the ends back");
    let frozen = assert_error(
        write(
            &app,
            &host,
            second,
            ada.id,
            rubric([1, 1, 1, 1], "strong_no", "too late"),
        )
        .await,
        409,
        "feedback_frozen",
    )
    .await;
    assert!(
        frozen["message"].as_str().is_some_and(|m| m.contains("1h")),
        "{frozen}"
    );
    assert_error(
        write(
            &app,
            &host,
            first,
            bob.id,
            rubric([4, 4, 4, 4], "yes", "changed my mind"),
        )
        .await,
        409,
        "feedback_frozen",
    )
    .await;
    let after = ok(call(&app, Some(&bob), Method::GET, &path, None).await, 200).await;
    assert_eq!(
        texts(&after),
        ["Bob: needs practice"],
        "frozen feedback is unchanged"
    );
    let json = json_body(
        call(
            &app,
            Some(&ada),
            Method::GET,
            "/api/users/me/feedback",
            None,
        )
        .await,
    )
    .await;
    assert_eq!(texts(&json), ["Ada again, edited", "Ada: excellent"]);
}
