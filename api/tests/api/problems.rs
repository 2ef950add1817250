//! Problems: the catalogue (visibility, search, pagination), attaching a
//! problem to a session (starter code only into an empty document, checked
//! with the reference y-websocket client on two replicas), and submissions
//! against hidden tests through real workers and Docker — with every byte a
//! candidate can read checked for the hidden data.
//!
//! Over 600 lines on purpose: one feature's suite, each test independent and
//! reading as one scenario; the shared setup is in the harness (`fixtures`).

use std::{collections::HashSet, time::Duration};

use futures_util::StreamExt;
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;
use uuid::Uuid;

use crate::{
    eventually::eventually,
    fixtures::{
        User, Worker, befriend, delete, get, get_ok, live_pair, ok, pair, patch_json, post_json,
        put_json, served, session_code, set_role, user,
    },
    helpers::{TestApp, assert_error, count, json_body, spawn_app, spawn_app_sharing, strings},
    sockets::{Ws, YClient, connect},
};

/// The platform's FizzBuzz (shipped by a migration).
pub const FIZZBUZZ: &str = "00000000-0000-4000-8000-000000000001";

fn problem(title: &str, difficulty: &str, tags: &[&str], visibility: &str, marker: &str) -> Value {
    json!({
        "title": title,
        "statement": format!("Solve **{title}**."),
        "difficulty": difficulty,
        "tags": tags,
        "timeSuggestionMinutes": 30,
        "starterCode": {"python": "import sys\nsys.stdout.write(sys.stdin.read())\n"},
        "sampleTests": [{"stdin": "sample-in\n", "expectedOutput": "sample-in\n"}],
        "hiddenTests": [
            {"stdin": format!("{marker}-INPUT-1\n"), "expectedOutput": format!("{marker}-EXPECTED-1\n")},
            {"stdin": format!("{marker}-INPUT-2\n"), "expectedOutput": format!("{marker}-EXPECTED-2\n")}
        ],
        "visibility": visibility,
    })
}

async fn create(app: &TestApp, who: &User, body: Value) -> String {
    let created = ok(post_json(app, who, "/api/problems", body).await, 201).await;
    assert!(created["problem"]["hiddenTests"].is_array(), "{created}");
    created["problem"]["id"].as_str().expect("id").to_owned()
}

async fn get_status(app: &TestApp, who: &User, path: &str) -> u16 {
    get(app, who, path).await.status().as_u16()
}

/// Every page of a listing, following `nextCursor`.
async fn all_pages(app: &TestApp, who: &User, query: &str) -> Vec<Value> {
    let mut items = Vec::new();
    let mut cursor: Option<String> = None;
    for _ in 0..50 {
        let path = match &cursor {
            Some(c) => format!("/api/problems?{query}&limit=2&cursor={c}"),
            None => format!("/api/problems?{query}&limit=2"),
        };
        let page = get_ok(app, who, &path).await;
        let problems = page["problems"].as_array().expect("problems");
        assert!(problems.len() <= 2);
        items.extend(problems.iter().cloned());
        match page["nextCursor"].as_str() {
            Some(next) => cursor = Some(next.to_owned()),
            None => return items,
        }
    }
    panic!("pagination never ended");
}

fn titles(items: &[Value]) -> Vec<&str> {
    items.iter().filter_map(|p| p["title"].as_str()).collect()
}

#[tokio::test]
async fn problems_are_visible_by_rule_searchable_and_paginated() {
    let app = spawn_app().await;
    let (author, friend, stranger) = (user(&app).await, user(&app).await, user(&app).await);
    befriend(&app, &author, &friend).await;
    let marker = format!("SECRET{}", Uuid::new_v4().simple());
    let private = create(
        &app,
        &author,
        problem(
            "Shortest Graph Path",
            "hard",
            &["Graphs", "bfs"],
            "private",
            &marker,
        ),
    )
    .await;
    let friends = create(
        &app,
        &author,
        problem(
            "Friendly Graph Walk",
            "medium",
            &["graphs"],
            "friends",
            &marker,
        ),
    )
    .await;
    let public = create(
        &app,
        &author,
        problem(
            "Public Palindromes",
            "easy",
            &["strings"],
            "public",
            &marker,
        ),
    )
    .await;

    // Who reads what; hidden tests for the author only.
    for (id, expected) in [
        (&private, [200, 404, 404]),
        (&friends, [200, 200, 404]),
        (&public, [200, 200, 200]),
    ] {
        for (who, status) in [&author, &friend, &stranger].into_iter().zip(expected) {
            let path = format!("/api/problems/{id}");
            assert_eq!(get_status(&app, who, &path).await, status, "{path}");
            if status == 200 {
                let body = json_body(get(&app, who, &path).await).await;
                assert_eq!(body["problem"]["hiddenTestCount"], 2);
                assert_eq!(
                    body["problem"]["hiddenTests"].is_array(),
                    who.id == author.id,
                    "{body}"
                );
                assert_eq!(body.to_string().contains(&marker), who.id == author.id);
            }
        }
    }
    let created = json_body(get(&app, &author, &format!("/api/problems/{private}")).await).await;
    assert_eq!(
        created["problem"]["tags"],
        json!(["graphs", "bfs"]),
        "tags are normalised"
    );

    // Listing: what each may see, search by title or tag, filters; never a hidden test.
    let everything = all_pages(&app, &friend, "").await;
    let seen = titles(&everything);
    for title in [
        "FizzBuzz",
        "Two Sum",
        "Valid Parentheses",
        "Maximum Subarray",
        "Climbing Stairs",
    ] {
        assert!(seen.contains(&title), "{title} in {seen:?}");
    }
    assert!(seen.contains(&"Friendly Graph Walk") && seen.contains(&"Public Palindromes"));
    assert!(!seen.contains(&"Shortest Graph Path"));
    let ids: HashSet<&str> = everything.iter().filter_map(|p| p["id"].as_str()).collect();
    assert_eq!(ids.len(), everything.len(), "no problem twice across pages");
    assert!(
        !serde_json::to_string(&everything)
            .expect("json")
            .contains(&marker)
    );
    assert!(everything.iter().all(|p| p.get("hiddenTests").is_none()));

    let strangers = titles(&all_pages(&app, &stranger, "q=graph").await).join(",");
    assert_eq!(strangers, "");
    assert_eq!(
        titles(&all_pages(&app, &author, "q=GRAPH").await),
        ["Friendly Graph Walk", "Shortest Graph Path"]
    );
    assert_eq!(
        titles(&all_pages(&app, &friend, "q=graphs").await),
        ["Friendly Graph Walk"]
    );
    assert_eq!(
        titles(&all_pages(&app, &stranger, "tag=dynamic-programming").await),
        ["Climbing Stairs", "Maximum Subarray"]
    );
    assert_eq!(
        titles(&all_pages(&app, &stranger, "tag=dynamic-programming&difficulty=medium").await),
        ["Maximum Subarray"]
    );
    assert_eq!(
        titles(&all_pages(&app, &author, "mine=true").await),
        [
            "Public Palindromes",
            "Friendly Graph Walk",
            "Shortest Graph Path"
        ]
    );
    assert_eq!(
        titles(&all_pages(&app, &stranger, "q=100%25").await).len(),
        0
    );
    assert_error(
        get(&app, &stranger, "/api/problems?difficulty=impossible").await,
        422,
        "invalid_query",
    )
    .await;

    // Only the author changes a problem; others get 403 (visible) or 404.
    let patch = json!({"title": "Palindromes", "visibility": "private"});
    assert_error(
        patch_json(
            &app,
            &friend,
            &format!("/api/problems/{public}"),
            patch.clone(),
        )
        .await,
        403,
        "forbidden",
    )
    .await;
    assert_error(
        patch_json(
            &app,
            &stranger,
            &format!("/api/problems/{private}"),
            patch.clone(),
        )
        .await,
        404,
        "not_found",
    )
    .await;
    let patched = ok(
        patch_json(&app, &author, &format!("/api/problems/{public}"), patch).await,
        200,
    )
    .await;
    assert_eq!(patched["problem"]["title"], "Palindromes");
    assert_eq!(
        patched["problem"]["difficulty"], "easy",
        "untouched fields stay"
    );
    assert_eq!(
        get_status(&app, &stranger, &format!("/api/problems/{public}")).await,
        404
    );
    // The shipped problems have no author: nobody edits them.
    assert_error(
        delete(&app, &author, &format!("/api/problems/{FIZZBUZZ}")).await,
        403,
        "forbidden",
    )
    .await;
    assert_eq!(
        delete(&app, &author, &format!("/api/problems/{friends}"))
            .await
            .status()
            .as_u16(),
        204
    );
    assert_eq!(
        get_status(&app, &friend, &format!("/api/problems/{friends}")).await,
        404
    );
    assert_eq!(
        get_status(&app, &author, &format!("/api/problems/{friends}")).await,
        404
    );

    // Invalid problems are refused whole, nothing written.
    let before = count(&app, "SELECT count(*) FROM problems").await;
    let too_many: Vec<Value> = (0..51)
        .map(|_| json!({"stdin": "", "expectedOutput": ""}))
        .collect();
    for (body, field) in [
        (
            json!({"title": " ", "statement": "s", "difficulty": "easy"}),
            "title",
        ),
        (
            json!({"title": "t", "statement": "", "difficulty": "easy"}),
            "statement",
        ),
        (
            json!({"title": "t", "statement": "s", "difficulty": "easy", "starterCode": {"cobol": "x"}}),
            "starterCode",
        ),
        (
            json!({"title": "t", "statement": "s", "difficulty": "easy", "hiddenTests": too_many}),
            "hiddenTests",
        ),
        (
            json!({"title": "t", "statement": "s", "difficulty": "easy", "tags": ["no spaces please"]}),
            "tags",
        ),
        (
            json!({"title": "t", "statement": "s", "difficulty": "easy", "timeSuggestionMinutes": 0}),
            "timeSuggestionMinutes",
        ),
    ] {
        let error = assert_error(
            post_json(&app, &author, "/api/problems", body).await,
            422,
            "validation_failed",
        )
        .await;
        assert!(error["fields"][field].is_string(), "{field}: {error}");
    }
    assert_error(
        post_json(
            &app,
            &author,
            "/api/problems",
            json!({"title": "t", "statement": "s", "difficulty": "impossible"}),
        )
        .await,
        422,
        "invalid_body",
    )
    .await;
    let after = count(&app, "SELECT count(*) FROM problems").await;
    assert_eq!(before, after);
}

/// Attaches `problem` to `session` as `who`; returns the answer.
async fn attach(app: &TestApp, who: &User, session: Uuid, problem: &str) -> reqwest::Response {
    put_json(
        app,
        who,
        &format!("/api/sessions/{session}/problem"),
        json!({"problemId": problem}),
    )
    .await
}

const FIZZBUZZ_STARTER: &str =
    "n = int(input())\n# print the numbers 1..n, with Fizz, Buzz and FizzBuzz\n";

#[tokio::test]
async fn attaching_a_problem_fills_an_empty_document_and_never_touches_written_code() {
    let one = spawn_app().await;
    let two = spawn_app_sharing(&one, &[]).await;

    // An empty document, open on both replicas: both editors get the starter code.
    let (host, guest, session) = pair(&one).await;
    let mut a = YClient::connect(&one, &host, session).await;
    let mut b = YClient::connect(&two, &guest, session).await;
    assert_error(
        attach(&one, &guest, session, FIZZBUZZ).await,
        403,
        "forbidden",
    )
    .await;
    let attached = ok(attach(&one, &host, session, FIZZBUZZ).await, 200).await;
    assert_eq!(attached["starterInserted"], true, "{attached}");
    assert_eq!(attached["problem"]["title"], "FizzBuzz");
    a.wait_text(|t| t == FIZZBUZZ_STARTER).await;
    b.wait_text(|t| t == FIZZBUZZ_STARTER).await;
    assert_eq!(session_code(&two, &guest, session).await, FIZZBUZZ_STARTER);
    let detail = json_body(get(&two, &guest, &format!("/api/sessions/{session}")).await).await;
    assert_eq!(detail["session"]["problemId"], FIZZBUZZ);
    // Attaching again (the document now holds code) changes nothing.
    let again = ok(attach(&two, &host, session, FIZZBUZZ).await, 200).await;
    assert_eq!(again["starterInserted"], false);
    a.close().await;
    b.close().await;

    // A document someone wrote in is left exactly as it is.
    let (host, guest, session) = pair(&one).await;
    let mut a = YClient::connect(&one, &host, session).await;
    let mut b = YClient::connect(&two, &guest, session).await;
    let mine = "print('my own solution')\n";
    b.insert(0, mine).await;
    a.wait_text(|t| t == mine).await;
    eventually(
        Duration::from_secs(5),
        "the written code to reach the server",
        || async { session_code(&one, &host, session).await == mine },
    )
    .await;
    let attached = ok(attach(&one, &host, session, FIZZBUZZ).await, 200).await;
    assert_eq!(attached["starterInserted"], false, "{attached}");
    // Lets time pass: a starter wrongly inserted would show up meanwhile.
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(a.text().await, mine);
    assert_eq!(b.text().await, mine);
    assert_eq!(session_code(&two, &guest, session).await, mine);
    a.close().await;
    b.close().await;

    // With nobody connected, the stored document gets it; a later editor reads it.
    let (host, guest, session) = pair(&one).await;
    let attached = ok(attach(&two, &host, session, FIZZBUZZ).await, 200).await;
    assert_eq!(attached["starterInserted"], true);
    let mut c = YClient::connect(&one, &guest, session).await;
    assert_eq!(
        c.wait_text(|t| t == FIZZBUZZ_STARTER).await,
        FIZZBUZZ_STARTER
    );
    c.close().await;
}

/// Every text frame a socket receives until `done` holds for one of them,
/// then for `linger` more: the raw bytes, as the client got them.
async fn frames_until(ws: &mut Ws, done: impl Fn(&Value) -> bool, linger: Duration) -> Vec<String> {
    let mut frames = Vec::new();
    let mut deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    let mut finished = false;
    loop {
        let Ok(frame) = tokio::time::timeout_at(deadline, ws.next()).await else {
            assert!(finished, "the awaited event never came: {frames:#?}");
            return frames;
        };
        let Some(Ok(frame)) = frame else {
            assert!(finished, "socket closed early: {frames:#?}");
            return frames;
        };
        if let Message::Text(text) = frame {
            let text = text.to_string();
            let event: Value = serde_json::from_str(&text).expect("every frame is JSON");
            if !finished && done(&event) {
                finished = true;
                deadline = tokio::time::Instant::now() + linger;
            }
            frames.push(text);
        }
    }
}

fn finished_run(id: &str) -> impl Fn(&Value) -> bool + '_ {
    move |e| e["type"] == "run.finished" && e["run"]["id"] == id
}

async fn submit(app: &TestApp, who: &User, session: Uuid, tests: &str) -> Value {
    ok(
        post_json(
            app,
            who,
            &format!("/api/sessions/{session}/submit?wait=true"),
            json!({"tests": tests}),
        )
        .await,
        200,
    )
    .await
}

#[tokio::test]
async fn a_candidates_submission_shows_verdicts_and_never_the_hidden_tests() {
    crate::fixtures::require_docker!();
    let app = spawn_app().await;
    let _worker = Worker::start(&app, &[]).await;
    let (interviewer, candidate, session) = live_pair(&app).await;

    // The hidden tests carry a marker; the starter code prints its stdin back.
    let marker = format!("HIDDEN{}", Uuid::new_v4().simple());
    let problem = create(
        &app,
        &interviewer,
        problem("Echo", "easy", &["io"], "private", &marker),
    )
    .await;
    assert_eq!(
        ok(attach(&app, &interviewer, session, &problem).await, 200).await["starterInserted"],
        true
    );
    let mut candidate_ws = connect(&app, &candidate, session).await;
    let mut interviewer_ws = connect(&app, &interviewer, session).await;

    let mut candidate_reads: Vec<String> = Vec::new();
    let run = submit(&app, &candidate, session, "hidden").await;
    candidate_reads.push(run.to_string());
    let id = run["id"].as_str().expect("id").to_owned();
    assert_eq!(run["kind"], "submission");
    assert_eq!(run["redacted"], true);
    assert_eq!(run["verdict"], "wrong_answer");
    let tests = run["tests"].as_array().expect("tests");
    assert_eq!(tests.len(), 2);
    for test in tests {
        assert_eq!(test["verdict"], "wrong_answer", "{test}");
        assert!(
            test["timeMs"].is_u64() && test["memoryKb"].is_u64(),
            "{test}"
        );
        assert_eq!(test["stdout"], "");
    }
    let seen = frames_until(&mut candidate_ws, finished_run(&id), Duration::from_secs(2)).await;
    assert!(
        seen.iter().any(|f| f.contains("\"run.started\"")),
        "{seen:#?}"
    );
    assert!(
        !seen.iter().any(|f| f.contains("\"run.output\"")),
        "{seen:#?}"
    );
    candidate_reads.extend(seen);
    let watched = frames_until(
        &mut interviewer_ws,
        finished_run(&id),
        Duration::from_millis(200),
    )
    .await;
    let output: String = watched
        .iter()
        .filter(|f| f.contains("\"run.output\""))
        .cloned()
        .collect();
    assert!(
        output.contains(&format!("{marker}-INPUT-1")),
        "the interviewer watches the output: {watched:#?}"
    );

    // The interviewer reads everything; the candidate, over REST, nothing hidden.
    let full = json_body(get(&app, &interviewer, &format!("/api/runs/{id}")).await).await;
    assert_eq!(full["tests"][0]["stdout"], format!("{marker}-INPUT-1\n"));
    assert_eq!(full["redacted"], false);
    let their_problem = json_body(
        get(
            &app,
            &interviewer,
            &format!("/api/sessions/{session}/problem"),
        )
        .await,
    )
    .await;
    assert_eq!(
        their_problem["problem"]["hiddenTests"]
            .as_array()
            .map(Vec::len),
        Some(2)
    );
    for path in [
        format!("/api/runs/{id}"),
        format!("/api/sessions/{session}/runs"),
        format!("/api/sessions/{session}/problem"),
        format!("/api/sessions/{session}"),
        format!("/api/sessions/{session}/review"),
        format!("/api/problems/{problem}"),
        "/api/problems".to_owned(),
        format!("/api/sessions/{session}/timeline"),
    ] {
        let response = get(&app, &candidate, &path).await;
        candidate_reads.push(response.text().await.expect("body"));
    }
    assert!(candidate_reads[candidate_reads.len() - 6].contains("\"sampleTests\""));
    assert!(
        candidate_reads
            .last()
            .is_some_and(|timeline| timeline.contains(&id)),
        "the timeline shows the submission: {:?}",
        candidate_reads.last()
    );

    // Samples: data visible to everyone, output included.
    let samples = submit(&app, &candidate, session, "samples").await;
    assert_eq!(
        (samples["kind"].as_str(), samples["verdict"].as_str()),
        (Some("samples"), Some("accepted"))
    );
    assert_eq!(samples["stdout"], "sample-in\n");
    let sample_id = samples["id"].as_str().expect("id").to_owned();
    let seen = frames_until(
        &mut candidate_ws,
        finished_run(&sample_id),
        Duration::from_millis(200),
    )
    .await;
    assert!(
        seen.iter()
            .any(|f| f.contains("\"run.output\"") && f.contains("sample-in")),
        "{seen:#?}"
    );
    candidate_reads.extend(seen);

    // Roles swap: the former interviewer is now a candidate, and is shown nothing hidden.
    set_role(&app, &interviewer, session, &candidate, "interviewer").await;
    let swapped = |e: &Value| {
        e["type"] == "session.updated"
            && e["session"]["members"].as_array().is_some_and(|m| {
                m.iter()
                    .any(|m| m["role"] == "candidate" && m["userId"] == interviewer.id.to_string())
            })
    };
    let mut former_reads = frames_until(&mut interviewer_ws, swapped, Duration::ZERO).await;
    candidate_reads.extend(frames_until(&mut candidate_ws, swapped, Duration::ZERO).await);
    let run = submit(&app, &interviewer, session, "hidden").await;
    let again = run["id"].as_str().expect("id").to_owned();
    assert_eq!(run["redacted"], true, "{run}");
    let new_interviewer = frames_until(
        &mut candidate_ws,
        finished_run(&again),
        Duration::from_millis(200),
    )
    .await;
    assert!(
        new_interviewer
            .iter()
            .any(|f| f.contains(&format!("{marker}-INPUT-2"))),
        "{new_interviewer:#?}"
    );
    let since_swap = frames_until(
        &mut interviewer_ws,
        finished_run(&again),
        Duration::from_secs(2),
    )
    .await;
    former_reads.extend(since_swap);
    former_reads.push(run.to_string());

    // Not one byte of the hidden tests reached a candidate.
    for read in candidate_reads.iter().chain(former_reads.iter()) {
        assert!(
            !read.contains(&marker),
            "hidden data leaked to a candidate: {read}"
        );
    }
}

/// Reference solutions to the shipped problems (Python).
const SOLUTIONS: &[(&str, &str)] = &[
    (
        "FizzBuzz",
        "n = int(input())\nfor i in range(1, n + 1):\n    print('FizzBuzz' if i % 15 == 0 else 'Fizz' if i % 3 == 0 else 'Buzz' if i % 5 == 0 else i)\n",
    ),
    (
        "Two Sum",
        "nums = list(map(int, input().split()))\nt = int(input())\nseen = {}\nfor i, x in enumerate(nums):\n    if t - x in seen:\n        print(seen[t - x], i)\n        break\n    seen[x] = i\n",
    ),
    (
        "Valid Parentheses",
        "s = input().strip()\nst = []\npairs = {')': '(', ']': '[', '}': '{'}\nok = True\nfor c in s:\n    if c in '([{':\n        st.append(c)\n    elif not st or st.pop() != pairs[c]:\n        ok = False\n        break\nprint('true' if ok and not st else 'false')\n",
    ),
    (
        "Maximum Subarray",
        "a = list(map(int, input().split()))\nbest = cur = a[0]\nfor x in a[1:]:\n    cur = max(x, cur + x)\n    best = max(best, cur)\nprint(best)\n",
    ),
    (
        "Climbing Stairs",
        "n = int(input())\na, b = 1, 1\nfor _ in range(n):\n    a, b = b, a + b\nprint(a)\n",
    ),
];

#[tokio::test]
async fn the_shipped_problems_pass_with_reference_solutions_and_fail_without() {
    crate::fixtures::require_docker!();
    let (app, _worker, me) = served().await;
    let shipped: Vec<(String, Value, Value)> = sqlx::query_as(
        "SELECT title, sample_tests, hidden_tests FROM problems WHERE author_id IS NULL ORDER BY created_at",
    )
    .fetch_all(&app.db)
    .await
    .expect("shipped problems");
    assert!(shipped.len() >= 4, "{} shipped", shipped.len());
    assert_eq!(
        shipped.len(),
        SOLUTIONS.len(),
        "a reference solution per shipped problem"
    );
    for (title, samples, hidden) in shipped {
        let solution = SOLUTIONS
            .iter()
            .find(|(t, _)| *t == title)
            .map(|(_, s)| *s)
            .unwrap_or_else(|| panic!("no solution for {title}"));
        let mut tests = samples.as_array().expect("samples").clone();
        let hidden = hidden.as_array().expect("hidden").clone();
        assert!(
            tests.len() >= 2 && hidden.len() >= 4,
            "{title}: too few tests"
        );
        tests.extend(hidden);
        let count = tests.len();
        for (source, expect_accepted) in [(solution, true), ("print(0)\n", false)] {
            let run = ok(
                post_json(
                    &app,
                    &me,
                    "/api/runs?wait=true",
                    json!({"language": "python", "source": source, "tests": tests}),
                )
                .await,
                200,
            )
            .await;
            let verdicts = strings(&run["tests"], "verdict");
            assert_eq!(verdicts.len(), count, "{title}: {run}");
            if expect_accepted {
                assert!(
                    verdicts.iter().all(|v| *v == "accepted"),
                    "{title}: {verdicts:?}"
                );
            } else {
                assert!(
                    verdicts.contains(&"wrong_answer"),
                    "{title}: a wrong program passes every test"
                );
            }
        }
    }
}
