//! The run pipeline end to end: the api in-process, real `codecall-worker`
//! processes, real PostgreSQL, Redis and Docker.
//!
//! Over 600 lines on purpose: one feature's suite, each test independent and
//! reading as one scenario; the shared setup is in the harness (`fixtures`).

use std::time::Duration;

use serde_json::{Value, json};
use uuid::Uuid;

use crate::{
    eventually::eventually,
    fixtures::{
        User, Worker, all_finished, attempts, containers, fake_worker, get, id_of, pair, post,
        post_run, require_docker, served, user, wait_finished,
    },
    helpers::{
        TestApp, assert_error, count, free_port, json_body, spawn_app, spawn_app_with, strings,
        unix_now,
    },
};

#[tokio::test]
async fn a_python_run_with_stdin_is_accepted_waited_for_and_polled() {
    require_docker!();
    let (app, _worker, me) = served().await;

    let languages = json_body(app.get("/api/languages").await).await;
    let ids = strings(&languages["languages"], "id");
    for id in ["c", "cpp", "go", "java", "javascript", "python"] {
        assert!(ids.contains(&id), "{id} in {ids:?}");
    }

    let body = json!({"language": "python", "source": "print(input()[::-1])", "stdin": "olleh\n"});
    let response = post_run(&app, &me, body.clone(), true).await;
    assert_eq!(response.status().as_u16(), 200);
    let run = json_body(response).await;
    assert_eq!(run["status"], "finished");
    assert_eq!(run["verdict"], "accepted");
    assert_eq!(run["stdout"], "hello\n");
    assert_eq!(run["exitCode"], 0);
    assert!(run["timeMs"].is_u64() && run["memoryKb"].is_u64());

    let response = post_run(&app, &me, body, false).await;
    assert_eq!(response.status().as_u16(), 202);
    let queued = json_body(response).await;
    assert_eq!(queued["status"], "queued");
    let run = wait_finished(&app, &me, queued["id"].as_str().expect("id")).await;
    assert_eq!(run["stdout"], "hello\n");
    let row: (String, i32) =
        sqlx::query_as("SELECT verdict, attempts FROM runs WHERE id = $1::uuid")
            .bind(queued["id"].as_str().expect("id"))
            .fetch_one(&app.db)
            .await
            .expect("row");
    assert_eq!(row, ("accepted".to_owned(), 1));
}

#[tokio::test]
async fn a_program_printing_nul_bytes_gets_its_result_stored_at_once() {
    require_docker!();
    let (app, _worker, me) = served().await;
    // PostgreSQL's jsonb refuses U+0000: this result used to be retried for
    // minutes, then executed again.
    let body = json!({"language": "python",
        "source": "import sys\nsys.stdout.write('a\\0b\\n')\nsys.stderr.write('c\\0d')"});
    let response = post_run(&app, &me, body, true).await;
    assert_eq!(response.status().as_u16(), 200);
    let run = json_body(response).await;
    assert_eq!(run["verdict"], "accepted", "{run}");
    assert_eq!(run["stdout"], "a\u{FFFD}b\n");
    assert_eq!(run["stderr"], "c\u{FFFD}d");
    let attempts = attempts(&app, run["id"].as_str().expect("id")).await;
    assert_eq!(attempts, 1);
}

#[tokio::test]
async fn tests_get_per_test_verdicts_and_every_language_runs_end_to_end() {
    require_docker!();
    let app = spawn_app_with(&[("RUN_MAX_CONCURRENT_PER_USER", "20")]).await;
    let _worker = Worker::start(&app, &[("WORKER_CONCURRENCY", "2")]).await;
    let me = user(&app).await;
    let body = json!({
        "language": "python",
        "source": "n = int(input())\nprint(n * n if n != 3 else -1)",
        "tests": [
            {"stdin": "2\n", "expectedOutput": "4"},
            {"stdin": "3\n", "expectedOutput": "9"},
            {"stdin": "4\n", "expectedOutput": "16\n"}
        ]
    });
    let run = json_body(post_run(&app, &me, body, true).await).await;
    assert_eq!(run["verdict"], "wrong_answer", "{run}");
    let verdicts = strings(&run["tests"], "verdict");
    assert_eq!(verdicts, ["accepted", "wrong_answer", "accepted"]);

    let hello = [
        ("python", "print('Hello, World!')"),
        ("javascript", "console.log('Hello, World!')"),
        (
            "c",
            "#include <stdio.h>\nint main(void){puts(\"Hello, World!\");return 0;}",
        ),
        (
            "cpp",
            "#include <iostream>\nint main(){std::cout<<\"Hello, World!\"<<std::endl;}",
        ),
        (
            "java",
            "public class Main{public static void main(String[] a){System.out.println(\"Hello, World!\");}}",
        ),
        (
            "go",
            "package main\nimport \"fmt\"\nfunc main(){fmt.Println(\"Hello, World!\")}",
        ),
    ];
    let mut ids = Vec::new();
    for (language, source) in hello {
        let response = post_run(
            &app,
            &me,
            json!({"language": language, "source": source}),
            false,
        )
        .await;
        assert_eq!(response.status().as_u16(), 202, "{language}");
        ids.push((language, id_of(response).await));
    }
    for (language, id) in ids {
        let run = wait_finished(&app, &me, &id).await;
        assert_eq!(run["verdict"], "accepted", "{language}: {run}");
        assert_eq!(run["stdout"], "Hello, World!\n", "{language}");
        assert_eq!(run["language"], language);
    }
}

#[tokio::test]
async fn runs_are_visible_to_their_author_and_their_sessions_members_only() {
    require_docker!();
    let app = spawn_app().await;
    let _worker = Worker::start(&app, &[]).await;
    let (host, member, session) = pair(&app).await;
    let stranger = user(&app).await;
    let body = json!({"language": "python", "source": "print(1)", "sessionId": session});

    // Only live sessions take runs.
    assert_error(
        post_run(&app, &member, body.clone(), false).await,
        409,
        "session_not_live",
    )
    .await;
    post(&app, &host, &format!("/api/sessions/{session}/start")).await;
    let run = json_body(post_run(&app, &member, body.clone(), true).await).await;
    let id = run["id"].as_str().expect("id").to_owned();
    assert_eq!(run["sessionId"], session.to_string());

    // The host (a member, not the author) sees it; a stranger does not.
    let seen = json_body(get(&app, &host, &format!("/api/runs/{id}")).await).await;
    assert_eq!(seen["stdout"], "1\n");
    assert_error(
        get(&app, &stranger, &format!("/api/runs/{id}")).await,
        404,
        "not_found",
    )
    .await;
    let history = json_body(get(&app, &host, &format!("/api/sessions/{session}/runs")).await).await;
    assert_eq!(history["runs"][0]["id"], id);
    assert_error(
        get(&app, &stranger, &format!("/api/sessions/{session}/runs")).await,
        404,
        "not_found",
    )
    .await;
    // A non-member cannot post into the session.
    assert_error(
        post_run(&app, &stranger, body, false).await,
        404,
        "not_found",
    )
    .await;
    // A run without a session is private to its author.
    let private = json_body(
        post_run(
            &app,
            &member,
            json!({"language": "python", "source": "print(2)"}),
            true,
        )
        .await,
    )
    .await;
    let private_id = private["id"].as_str().expect("id");
    assert_error(
        get(&app, &host, &format!("/api/runs/{private_id}")).await,
        404,
        "not_found",
    )
    .await;
}

#[tokio::test]
async fn invalid_and_oversize_runs_are_refused_with_nothing_written() {
    let app = spawn_app_with(&[
        ("RUN_MAX_SOURCE_BYTES", "1000"),
        ("BODY_LIMIT_BYTES", "65536"),
    ])
    .await;
    fake_worker(&app).await;
    let me = user(&app).await;
    let cases = [
        (json!({"language": "cobol", "source": "x"}), "language"),
        (json!({"language": "python"}), "source"),
        (
            json!({"language": "python", "source": "x", "files": [{"name": "a.py", "content": "x"}]}),
            "source",
        ),
        (
            json!({"language": "python", "source": "x".repeat(1001)}),
            "source",
        ),
        (
            json!({"language": "python", "files": [{"name": "../etc/passwd", "content": "x"}]}),
            "files",
        ),
        (
            json!({"language": "python", "source": "x", "limits": {"timeMs": 60000}}),
            "limits.timeMs",
        ),
        (
            json!({"language": "python", "source": "x", "limits": {"memoryMb": 4096}}),
            "limits.memoryMb",
        ),
        (
            json!({"language": "python", "source": "x", "tests": (0..51).map(|_| json!({"stdin": "", "expectedOutput": ""})).collect::<Vec<_>>()}),
            "tests",
        ),
    ];
    for (body, field) in cases {
        let error = assert_error(
            post_run(&app, &me, body, false).await,
            422,
            "validation_failed",
        )
        .await;
        assert!(error["fields"][field].is_string(), "{field}: {error}");
    }
    let huge = json!({"language": "python", "source": "x", "stdin": "y".repeat(100_000)});
    assert_error(
        post_run(&app, &me, huge, false).await,
        413,
        "payload_too_large",
    )
    .await;
    let rows = count(&app, "SELECT count(*) FROM runs").await;
    assert_eq!(rows, 0);
}

/// Marks every run finished, as if a worker had run them: concurrency is
/// then no limit.
async fn finish_every_run(app: &TestApp) {
    sqlx::query(
        "UPDATE runs SET status = 'finished', verdict = 'internal_error', result = '{}'::jsonb,
                         finished_at = now()",
    )
    .execute(&app.db)
    .await
    .expect("finish");
}

#[tokio::test]
async fn quotas_answer_429_and_a_full_queue_503() {
    let app = spawn_app_with(&[
        ("RUN_MAX_CONCURRENT_PER_USER", "2"),
        ("RUN_MAX_PER_MINUTE", "3"),
        ("RUN_QUEUE_MAX_DEPTH", "4"),
    ])
    .await;
    fake_worker(&app).await;
    let body = json!({"language": "python", "source": "print(1)"});
    // No worker consumes: runs stay queued.
    let a = user(&app).await;
    for _ in 0..2 {
        let response = post_run(&app, &a, body.clone(), false).await;
        assert_eq!(response.status().as_u16(), 202);
    }
    let response = post_run(&app, &a, body.clone(), false).await;
    assert!(response.headers().contains_key("retry-after"));
    assert_error(response, 429, "too_many_requests").await;

    let b = user(&app).await;
    for _ in 0..2 {
        let response = post_run(&app, &b, body.clone(), false).await;
        assert_eq!(response.status().as_u16(), 202);
    }
    // Four queued in all: the queue is at its depth.
    let c = user(&app).await;
    assert_error(
        post_run(&app, &c, body.clone(), false).await,
        503,
        "queue_full",
    )
    .await;
    // Per minute: c tried once (counted); finish runs so concurrency is not the limit.
    finish_every_run(&app).await;
    for _ in 0..2 {
        let response = post_run(&app, &c, body.clone(), false).await;
        assert_eq!(response.status().as_u16(), 202);
        finish_every_run(&app).await;
    }
    assert_error(
        post_run(&app, &c, body, false).await,
        429,
        "too_many_requests",
    )
    .await;
}

#[tokio::test]
async fn with_redis_down_a_run_is_refused_with_503_and_nothing_written() {
    let port = free_port();
    let dead = format!("redis://127.0.0.1:{port}");
    let healthy = spawn_app().await;
    fake_worker(&healthy).await;
    let me = user(&healthy).await;
    let app = crate::helpers::spawn_app_sharing(&healthy, &[("REDIS_URL", &dead)]).await;
    let response = post_run(
        &app,
        &me,
        json!({"language": "python", "source": "print(1)"}),
        false,
    )
    .await;
    assert_error(response, 503, "queue_unavailable").await;
    let rows = count(&app, "SELECT count(*) FROM runs").await;
    assert_eq!(rows, 0);
}

#[tokio::test]
async fn a_worker_killed_mid_run_loses_nothing_when_another_is_alive() {
    require_docker!();
    let app = spawn_app().await;
    let mut first = Worker::start(&app, &[]).await;
    let me = user(&app).await;
    let body = json!({"language": "python", "source": "import time\ntime.sleep(2)\nprint('done')"});
    let id = id_of(post_run(&app, &me, body, false).await).await;
    // Wait until the first worker runs it, then SIGKILL it.
    until_running(&app, &id).await;
    first.kill();
    let _second = Worker::start(&app, &[]).await;
    let run = wait_finished(&app, &me, &id).await;
    assert_eq!(run["verdict"], "accepted", "{run}");
    assert_eq!(run["stdout"], "done\n");
    let attempts = attempts(&app, &id).await;
    assert_eq!(attempts, 2, "ran again once after the kill");
    assert_no_container_left(&id).await;
}

/// Waits until a worker executes run `id`.
async fn until_running(app: &TestApp, id: &str) {
    eventually(Duration::from_secs(30), "the run to start", || async {
        let status: String = sqlx::query_scalar("SELECT status FROM runs WHERE id = $1::uuid")
            .bind(id)
            .fetch_one(&app.db)
            .await
            .expect("status");
        if status == "running" {
            Ok(())
        } else {
            Err(status)
        }
    })
    .await;
}

/// No sandbox container of run `id` remains (removal runs in the background).
async fn assert_no_container_left(id: &str) {
    eventually(
        Duration::from_secs(10),
        &format!("the containers of run {id} to be removed"),
        || async { containers(&format!("codecall.sandbox={id}")) == 0 },
    )
    .await;
}

#[tokio::test]
async fn a_killed_worker_restarted_alone_finishes_its_run() {
    require_docker!();
    let app = spawn_app().await;
    let mut only = Worker::start(&app, &[]).await;
    let me = user(&app).await;
    let body =
        json!({"language": "python", "source": "import time\ntime.sleep(1)\nprint('again')"});
    let id = id_of(post_run(&app, &me, body, false).await).await;
    until_running(&app, &id).await;
    only.kill();
    let _restarted = Worker::start(&app, &[]).await;
    let run = wait_finished(&app, &me, &id).await;
    assert!(
        run["verdict"] == "accepted" || run["verdict"] == "internal_error",
        "{run}"
    );
}

#[tokio::test]
async fn docker_failures_are_retried_then_end_as_internal_error() {
    require_docker!();
    let app = spawn_app().await;
    // A "python" whose image has no runner (the plain base image the sandbox
    // images are built from): every execution ends without a runner report,
    // which is the platform failing, never the program. (A worker configured
    // with a runtime the engine lacks refuses to start instead.)
    let manifest = std::env::temp_dir().join(format!("codecall-broken-{}.json", Uuid::new_v4()));
    std::fs::write(
        &manifest,
        json!({"languages": [{"id": "python", "name": "Python", "version": "3",
            "image": "debian:bookworm-slim", "sourceFile": "main.py", "compile": null,
            "run": ["python3", "main.py"], "env": {}}]})
        .to_string(),
    )
    .expect("manifest written");
    let _worker = Worker::start(
        &app,
        &[
            ("LANGUAGES_MANIFEST", manifest.to_str().expect("utf-8 path")),
            ("SANDBOX_POOL_SIZE", "0"),
            ("RUN_MAX_ATTEMPTS", "2"),
        ],
    )
    .await;
    let me = user(&app).await;
    let body = json!({"language": "python", "source": "print(1)"});
    let id = id_of(post_run(&app, &me, body, false).await).await;
    let run = wait_finished(&app, &me, &id).await;
    assert_eq!(run["verdict"], "internal_error", "{run}");
    let attempts = attempts(&app, &id).await;
    assert!(attempts >= 2, "retried: {attempts}");
}

/// A python run of `who` queued by writing its row directly, the way a
/// drifted writer (or an older or newer api) would: `files` and `tests` are
/// stored exactly as given.
async fn queue_stored_run(app: &TestApp, who: &User, files: Value, tests: Value) -> String {
    let id = Uuid::new_v4();
    sqlx::query(
        "INSERT INTO runs (id, user_id, language, files, tests, time_limit_ms, memory_limit_mb)
         VALUES ($1, $2, 'python', $3, $4, 5000, 256)",
    )
    .bind(id)
    .bind(who.id)
    .bind(files)
    .bind(tests)
    .execute(&app.db)
    .await
    .expect("insert run");
    id.to_string()
}

/// How many sandbox containers were created for run `id` since `since`
/// (Unix seconds), from the Docker engine's event log.
fn containers_created_for(id: &str, since: u64) -> usize {
    let until = unix_now() + 1;
    let output = std::process::Command::new("docker")
        .args([
            "events",
            "--since",
            &since.to_string(),
            "--until",
            &until.to_string(),
            "--filter",
            "type=container",
            "--filter",
            "event=create",
            "--filter",
            &format!("label=codecall.sandbox={id}"),
            "--format",
            "{{.ID}}",
        ])
        .output()
        .expect("docker events");
    assert!(output.status.success(), "docker events failed");
    String::from_utf8_lossy(&output.stdout).lines().count()
}

#[tokio::test]
async fn a_run_whose_stored_input_is_unreadable_ends_as_internal_error_unexecuted() {
    require_docker!();
    let app = spawn_app().await;
    let me = user(&app).await;
    let since = unix_now() - 1;
    // Today's stored shape, written by hand: it runs (optional fields may
    // be left out).
    let readable = queue_stored_run(
        &app,
        &me,
        json!([{"name": "", "content": "print('ran')"}]),
        json!([{"expectedOutput": "ran"}]),
    )
    .await;
    // A file without `content`: read leniently, this was an empty program.
    let bad_files = queue_stored_run(
        &app,
        &me,
        json!([{"name": "main.py", "source": "print('ran')"}]),
        json!([]),
    )
    .await;
    // A test without `expectedOutput`: read leniently, the tests were
    // dropped and the program ran (and was accepted) without them.
    let bad_tests = queue_stored_run(
        &app,
        &me,
        json!([{"name": "", "content": "print('ran')"}]),
        json!([{"stdin": "", "expected": "wrong"}]),
    )
    .await;
    // A later version's shape (an object in place of the array).
    let other_shape = queue_stored_run(
        &app,
        &me,
        json!({"v": 2, "files": [{"name": "", "content": "print('ran')"}]}),
        json!([]),
    )
    .await;
    // Without a pool (`Worker::start`'s default) every execution creates its
    // own container, labelled with the run's id.
    let _worker = Worker::start(&app, &[]).await;

    let run = wait_finished(&app, &me, &readable).await;
    assert_eq!(run["verdict"], "accepted", "{run}");
    assert_eq!(run["stdout"], "ran\n");
    assert_eq!(run["tests"].as_array().map(Vec::len), Some(1), "{run}");
    assert!(containers_created_for(&readable, since) >= 1);

    for (id, column) in [
        (&bad_files, "files"),
        (&bad_tests, "tests"),
        (&other_shape, "files"),
    ] {
        let run = wait_finished(&app, &me, id).await;
        assert_eq!(run["verdict"], "internal_error", "{run}");
        let stderr = run["stderr"].as_str().expect("stderr");
        assert!(
            stderr.contains(column) && stderr.contains("not executed"),
            "{run}"
        );
        assert_eq!(run["stdout"], "", "{run}");
        assert_eq!(run["tests"], json!([]), "{run}");
        let attempts = attempts(&app, id).await;
        assert_eq!(attempts, 1, "not retried");
        assert_eq!(
            containers_created_for(id, since),
            0,
            "no sandbox was started for {id}"
        );
    }
}

#[tokio::test]
async fn two_hundred_runs_across_two_workers_finish_exactly_once() {
    require_docker!();
    let app = spawn_app_with(&[
        ("RUN_MAX_CONCURRENT_PER_USER", "1000"),
        ("RUN_MAX_PER_MINUTE", "1000"),
    ])
    .await;
    // A generous orphan window: on a saturated 2-core machine a 2 s window
    // can pass between heartbeats and re-queue a live worker's runs.
    let settings = [
        ("WORKER_CONCURRENCY", "2"),
        ("WORKER_MISSED_HEARTBEATS", "10"),
        ("RUN_LEASE", "10s"),
    ];
    let _a = Worker::start(&app, &settings).await;
    let _b = Worker::start(&app, &settings).await;
    let me = user(&app).await;
    let mut ids = Vec::new();
    for i in 0..200 {
        let body = json!({"language": "python", "source": format!("print({i})")});
        let response = post_run(&app, &me, body, false).await;
        assert_eq!(response.status().as_u16(), 202);
        ids.push(id_of(response).await);
    }
    all_finished(&app, Duration::from_secs(240)).await;
    let (finished, accepted, reruns, workers): (i64, i64, i64, i64) = sqlx::query_as(
        "SELECT count(*), count(*) FILTER (WHERE verdict = 'accepted'), count(*) FILTER (WHERE attempts <> 1),
                count(DISTINCT worker_id) FROM runs",
    )
    .fetch_one(&app.db)
    .await
    .expect("counts");
    assert_eq!((finished, accepted, reruns), (200, 200, 0));
    assert_eq!(workers, 2, "both workers took runs");
    // Each run's output is its own.
    let run = json_body(get(&app, &me, &format!("/api/runs/{}", ids[137])).await).await;
    assert_eq!(run["stdout"], "137\n");
}

#[tokio::test]
async fn a_redis_restart_does_not_end_the_worker() {
    require_docker!();
    // A Redis of this test's own, so restarting it disturbs nobody else.
    let mut redis = crate::helpers::OwnRedis::start().await;
    let url = redis.url.clone();
    let app = spawn_app_with(&[("REDIS_URL", &url)]).await;
    let _worker = Worker::start(&app, &[]).await;
    let me = user(&app).await;
    let body = json!({"language": "python", "source": "print('before')"});
    assert_eq!(
        json_body(post_run(&app, &me, body, true).await).await["stdout"],
        "before\n"
    );

    redis.stop();
    // Lets time pass: the outage lasts two seconds.
    tokio::time::sleep(Duration::from_secs(2)).await;
    redis.restart().await;
    // The worker re-announces itself and consumes again.
    let body = json!({"language": "python", "source": "print('after')"});
    let id = eventually(
        Duration::from_secs(60),
        "the api to accept a run again",
        || async {
            let response = post_run(&app, &me, body.clone(), false).await;
            match response.status().as_u16() {
                202 => Ok(id_of(response).await),
                status => Err(status),
            }
        },
    )
    .await;
    let run = wait_finished(&app, &me, &id).await;
    assert_eq!(run["stdout"], "after\n");
}

#[tokio::test]
async fn a_run_id_that_is_not_a_uuid_or_unknown_is_an_error_body() {
    let app = spawn_app().await;
    let me = user(&app).await;
    assert_error(get(&app, &me, "/api/runs/abc").await, 400, "invalid_path").await;
    let path = format!("/api/runs/{}", Uuid::new_v4());
    assert_error(get(&app, &me, &path).await, 404, "not_found").await;
}
