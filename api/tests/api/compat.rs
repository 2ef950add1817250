//! Personal API tokens and the Judge0 / Piston compatibility doors: the
//! official Judge0 Python SDK and a Piston client from PyPI, unchanged,
//! against the api and a real worker; Judge0's documented status and
//! language tables; the callback SSRF defences with real local listeners.
//!
//! Over 600 lines on purpose: both doors share the token, worker and client
//! set-up below, and each test reads as one client scenario.

use std::{
    path::PathBuf,
    process::Command,
    sync::{
        Arc, Mutex,
        atomic::{AtomicUsize, Ordering},
    },
    time::Duration,
};

use reqwest::Method;
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::{
    eventually::eventually,
    fixtures::{User, Worker, call, delete, get, post_json, require_docker, user},
    helpers::{TestApp, count, json_body, spawn_app_with},
};

/// Enough runs per minute for a whole client suite.
const GENEROUS: &[(&str, &str)] = &[("RUN_MAX_PER_MINUTE", "1000")];

/// Judge0's statuses as its documentation lists them (docs/api/statuses_and_languages).
/// Written out here on purpose, not taken from the api's own table: the test
/// checks the wire format against Judge0's documentation, as a client would,
/// independently of the server's types.
const DOCUMENTED_STATUSES: &[(u64, &str)] = &[
    (1, "In Queue"),
    (2, "Processing"),
    (3, "Accepted"),
    (4, "Wrong Answer"),
    (5, "Time Limit Exceeded"),
    (6, "Compilation Error"),
    (7, "Runtime Error (SIGSEGV)"),
    (8, "Runtime Error (SIGXFSZ)"),
    (9, "Runtime Error (SIGFPE)"),
    (10, "Runtime Error (SIGABRT)"),
    (11, "Runtime Error (NZEC)"),
    (12, "Runtime Error (Other)"),
    (13, "Internal Error"),
    (14, "Exec Format Error"),
];

/// Judge0 CE 1.13.1's documented languages for the ones we run.
const DOCUMENTED_LANGUAGES: &[(u64, &str)] = &[
    (48, "C (GCC 7.4.0)"),
    (49, "C (GCC 8.3.0)"),
    (50, "C (GCC 9.2.0)"),
    (52, "C++ (GCC 7.4.0)"),
    (53, "C++ (GCC 8.3.0)"),
    (54, "C++ (GCC 9.2.0)"),
    (60, "Go (1.13.5)"),
    (62, "Java (OpenJDK 13.0.1)"),
    (63, "JavaScript (Node.js 12.14.0)"),
    (71, "Python (3.8.1)"),
];

/// The fields of the SDK's `Config` model: it refuses to start without any.
const CONFIG_INFO_FIELDS: &[&str] = &[
    "allow_enable_network",
    "allow_enable_per_process_and_thread_memory_limit",
    "allow_enable_per_process_and_thread_time_limit",
    "allowed_languages_for_compile_options",
    "callbacks_max_tries",
    "callbacks_timeout",
    "cpu_extra_time",
    "cpu_time_limit",
    "enable_additional_files",
    "enable_batched_submissions",
    "enable_callbacks",
    "enable_command_line_arguments",
    "enable_compiler_options",
    "enable_network",
    "enable_per_process_and_thread_memory_limit",
    "enable_per_process_and_thread_time_limit",
    "enable_submission_delete",
    "enable_wait_result",
    "maintenance_mode",
    "max_cpu_extra_time",
    "max_cpu_time_limit",
    "max_extract_size",
    "max_file_size",
    "max_max_file_size",
    "max_max_processes_and_or_threads",
    "max_memory_limit",
    "max_number_of_runs",
    "max_processes_and_or_threads",
    "max_queue_size",
    "max_stack_limit",
    "max_submission_batch_size",
    "max_wall_time_limit",
    "memory_limit",
    "number_of_runs",
    "redirect_stderr_to_stdout",
    "stack_limit",
    "submission_cache_duration",
    "use_docs_as_homepage",
];

/// A fake live worker announcing all six languages (nothing executes).
async fn fake_fleet(app: &TestApp) {
    let languages: Vec<Value> = ["c", "cpp", "go", "java", "javascript", "python"]
        .iter()
        .map(|id| json!({"id": id, "name": id, "version": "1", "compiled": false}))
        .collect();
    sqlx::query(
        "INSERT INTO workers (id, host, languages, expires_at)
         VALUES ('w', 'h', $1, now() + interval '1 hour')",
    )
    .bind(Value::Array(languages))
    .execute(&app.db)
    .await
    .expect("fake worker");
}

/// Creates a personal API token for `who`: (id, secret).
async fn api_token(app: &TestApp, who: &User) -> (String, String) {
    let response = post_json(app, who, "/api/tokens", json!({"name": "ci"})).await;
    assert_eq!(response.status().as_u16(), 201);
    let body = json_body(response).await;
    (
        body["id"].as_str().expect("id").to_owned(),
        body["token"].as_str().expect("token").to_owned(),
    )
}

/// What a client scenario starts from: the app with a real worker (two at
/// a time) and a token of a fresh user's (its secret).
async fn served_by_a_worker() -> (TestApp, Worker, String) {
    let app = spawn_app_with(GENEROUS).await;
    let worker = Worker::start(&app, &[("WORKER_CONCURRENCY", "2")]).await;
    let owner = user(&app).await;
    let (_, secret) = api_token(&app, &owner).await;
    (app, worker, secret)
}

fn judge0(app: &TestApp, token: &str, method: Method, path: &str) -> reqwest::RequestBuilder {
    app.client
        .request(method, app.url(&format!("/judge0{path}")))
        .header("X-Auth-Token", token)
}

/// `GET /judge0{path}` with `token`.
async fn judge0_get(app: &TestApp, token: &str, path: &str) -> reqwest::Response {
    judge0(app, token, Method::GET, path)
        .send()
        .await
        .expect("sent")
}

/// Piston's runtimes, with `token` in the path as Piston clients send it.
async fn piston_runtimes(app: &TestApp, token: &str) -> reqwest::Response {
    app.client
        .get(app.url(&format!("/piston/{token}/api/v2/runtimes")))
        .send()
        .await
        .expect("sent")
}

/// The venv with the pinned client libraries (created on first use; a
/// failure to create it fails the test, it never skips it).
fn compat_python() -> PathBuf {
    static READY: Mutex<bool> = Mutex::new(false);
    let mut ready = READY.lock().unwrap_or_else(|e| e.into_inner());
    let venv = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("compat-venv");
    let python = venv.join("bin/python");
    let requirements =
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/compat/requirements.txt");
    let wanted = std::fs::read_to_string(&requirements).expect("requirements.txt");
    let stamp = venv.join(".requirements");
    if !*ready && std::fs::read_to_string(&stamp).ok().as_deref() != Some(wanted.as_str()) {
        let created = Command::new("python3")
            .args(["-m", "venv", "--clear"])
            .arg(&venv)
            .status()
            .is_ok_and(|s| s.success());
        assert!(created, "`python3 -m venv` failed: install python3-venv");
        let installed = Command::new(venv.join("bin/pip"))
            .args(["install", "-q", "--disable-pip-version-check", "-r"])
            .arg(&requirements)
            .status()
            .is_ok_and(|s| s.success());
        assert!(
            installed,
            "pip could not install {requirements:?} (PyPI unreachable?)"
        );
        std::fs::write(&stamp, &wanted).expect("stamp");
    }
    *ready = true;
    python
}

/// Runs one of the client scripts; panics with its output unless it passed.
async fn run_client(script: &str, args: &[String], passed: &str) {
    let python = compat_python();
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/compat")
        .join(script);
    // A client that polls a run which never finishes must fail, not hang CI.
    let output = tokio::time::timeout(
        Duration::from_secs(600),
        tokio::process::Command::new(python)
            .arg(path)
            .args(args)
            .kill_on_drop(true)
            .output(),
    )
    .await
    .unwrap_or_else(|_| panic!("{script} did not finish within 10 minutes"))
    .expect("python runs");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success() && stdout.contains(passed),
        "{script} failed ({}):\n{stdout}\n{stderr}",
        output.status
    );
}

#[tokio::test]
async fn api_tokens_work_on_every_door_are_refused_on_credential_changes_and_revoke_at_once() {
    let app = spawn_app_with(GENEROUS).await;
    fake_fleet(&app).await;
    let owner = user(&app).await;
    let (id, secret) = api_token(&app, &owner).await;
    assert!(
        secret.starts_with("ccpat_") && secret.len() == 54,
        "{secret}"
    );

    let listed = json_body(get(&app, &owner, "/api/tokens").await).await;
    assert_eq!(listed["tokens"][0]["id"], id.as_str());
    assert_eq!(listed["tokens"][0]["prefix"], &secret[..12]);
    assert!(
        !listed.to_string().contains(&secret),
        "the secret is never listed again"
    );
    let stored: Vec<u8> = sqlx::query_scalar("SELECT token_hash FROM api_tokens")
        .fetch_one(&app.db)
        .await
        .expect("row");
    assert_eq!(stored.len(), 32, "only a SHA-256 is stored");

    let as_token = User {
        token: secret.clone(),
        ..owner.clone()
    };
    let me = get(&app, &as_token, "/api/users/me").await;
    assert_eq!(
        me.status().as_u16(),
        200,
        "REST accepts it as a bearer token"
    );
    let languages = judge0_get(&app, &secret, "/languages").await;
    assert_eq!(
        languages.status().as_u16(),
        200,
        "Judge0 accepts it as X-Auth-Token"
    );
    let runtimes = piston_runtimes(&app, &secret).await;
    assert_eq!(
        runtimes.status().as_u16(),
        200,
        "Piston accepts it in the path"
    );

    // A submission through the door is a run of the owner's, counted by the
    // native quota (3 unfinished): the fourth native run is refused.
    for _ in 0..3 {
        let created = judge0(&app, &secret, Method::POST, "/submissions")
            .json(&json!({"source_code": "print(1)", "language_id": 71}))
            .send()
            .await
            .expect("sent");
        assert_eq!(created.status().as_u16(), 201);
        let token = json_body(created).await["token"]
            .as_str()
            .expect("token")
            .to_owned();
        let run = get(&app, &owner, &format!("/api/runs/{token}")).await;
        assert_eq!(run.status().as_u16(), 200, "in the owner's runs");
    }
    let native = post_json(
        &app,
        &owner,
        "/api/runs",
        json!({"language": "python", "source": "print(1)"}),
    )
    .await;
    assert_eq!(
        native.status().as_u16(),
        429,
        "quotas count per user whatever the door"
    );

    for (method, path, body) in [
        (Method::POST, "/api/tokens", Some(json!({"name": "more"}))),
        (Method::GET, "/api/tokens", None),
        (Method::DELETE, &*format!("/api/tokens/{id}"), None),
        (Method::POST, "/api/auth/logout-all", None),
        (
            Method::POST,
            "/api/users/me/password",
            Some(json!({"currentPassword": "StrongPass123", "newPassword": "AnotherPass456"})),
        ),
    ] {
        let refused = call(&app, Some(&as_token), method, path, body).await;
        assert_eq!(
            refused.status().as_u16(),
            403,
            "{path} refuses an API token"
        );
    }
    let still = get(&app, &as_token, "/api/users/me").await;
    assert_eq!(
        still.status().as_u16(),
        200,
        "nothing was changed by the refused calls"
    );

    let revoked = delete(&app, &owner, &format!("/api/tokens/{id}")).await;
    assert_eq!(revoked.status().as_u16(), 204);
    let me = get(&app, &as_token, "/api/users/me").await;
    assert_eq!(me.status().as_u16(), 401);
    let languages = judge0_get(&app, &secret, "/languages").await;
    assert_eq!(languages.status().as_u16(), 401);
    assert!(
        json_body(languages).await["error"].is_string(),
        "Judge0's error shape"
    );
    let runtimes = piston_runtimes(&app, &secret).await;
    assert_eq!(runtimes.status().as_u16(), 401);
    assert!(
        json_body(runtimes).await["message"].is_string(),
        "Piston's error shape"
    );
    let listed = json_body(get(&app, &owner, "/api/tokens").await).await;
    assert_eq!(listed["tokens"], json!([]));
}

#[tokio::test]
async fn judge0_tables_config_and_refusals_match_judge0() {
    let app = spawn_app_with(GENEROUS).await;
    fake_fleet(&app).await;
    let owner = user(&app).await;
    let (_, secret) = api_token(&app, &owner).await;

    let statuses = json_body(judge0_get(&app, &secret, "/statuses").await).await;
    let expected: Vec<Value> = DOCUMENTED_STATUSES
        .iter()
        .map(|(id, description)| json!({"id": id, "description": description}))
        .collect();
    assert_eq!(statuses, Value::Array(expected));

    let languages = json_body(judge0_get(&app, &secret, "/languages").await).await;
    let languages = languages.as_array().expect("a list");
    assert_eq!(languages.len(), DOCUMENTED_LANGUAGES.len(), "{languages:?}");
    for (id, documented) in DOCUMENTED_LANGUAGES {
        let ours = languages
            .iter()
            .find(|l| l["id"] == *id)
            .unwrap_or_else(|| panic!("language {id} listed"));
        let family = |name: &str| name.split(" (").next().unwrap_or_default().to_owned();
        assert_eq!(
            family(ours["name"].as_str().expect("name")),
            family(documented),
            "{id}"
        );
    }
    let python = json_body(judge0_get(&app, &secret, "/languages/71").await).await;
    assert_eq!(python["source_file"], "main.py");
    assert_eq!(python["is_archived"], false);
    assert_eq!(
        judge0_get(&app, &secret, "/languages/70")
            .await
            .status()
            .as_u16(),
        404
    );

    let config = json_body(judge0_get(&app, &secret, "/config_info").await).await;
    for field in CONFIG_INFO_FIELDS {
        assert!(config.get(*field).is_some(), "config_info lacks {field}");
    }
    assert_eq!(config["max_submission_batch_size"], 20);
    let about = json_body(judge0_get(&app, &secret, "/about").await).await;
    assert_eq!(about["version"], "1.13.1");
    let workers = json_body(judge0_get(&app, &secret, "/workers").await).await;
    assert_eq!(workers[0]["available"], 1);

    let submit = |body: Value| {
        judge0(&app, &secret, Method::POST, "/submissions")
            .json(&body)
            .send()
    };
    for (body, field) in [
        (
            json!({"source_code": "x", "language_id": 999}),
            "language_id",
        ),
        (json!({"language_id": 71}), "source_code"),
        (
            json!({"source_code": "x", "language_id": 71, "compiler_options": "-O3"}),
            "compiler_options",
        ),
        (
            json!({"source_code": "x", "language_id": 71, "enable_network": true}),
            "enable_network",
        ),
        (
            json!({"source_code": "x", "language_id": 71, "memory_limit": 10}),
            "memory_limit",
        ),
        (
            json!({"source_code": "x", "language_id": 71, "number_of_runs": 3}),
            "number_of_runs",
        ),
        (
            json!({"source_code": "x", "language_id": 71, "additional_files": "UEsDBA=="}),
            "additional_files",
        ),
    ] {
        let refused = submit(body).await.expect("sent");
        assert_eq!(refused.status().as_u16(), 422);
        let errors = json_body(refused).await;
        assert!(errors[field][0].is_string(), "{field}: {errors}");
    }
    let bad_fields = judge0_get(
        &app,
        &secret,
        "/submissions/00000000-0000-4000-8000-000000000000?fields=stdout,nope",
    )
    .await;
    assert_eq!(bad_fields.status().as_u16(), 400);
    assert_eq!(
        json_body(bad_fields).await["error"],
        "invalid fields: [nope]"
    );
    let runs = count(&app, "SELECT count(*) FROM runs").await;
    assert_eq!(runs, 0, "nothing written by refused submissions");

    // A batch of 20 is queued (no worker executes here) although it is
    // more than the native 3 unfinished runs; 21 is refused as Judge0 does.
    let batch: Vec<Value> = (0..21)
        .map(|i| json!({"source_code": format!("print({i})"), "language_id": 71}))
        .collect();
    let too_many = judge0(&app, &secret, Method::POST, "/submissions/batch")
        .json(&json!({"submissions": batch}))
        .send()
        .await
        .expect("sent");
    assert_eq!(too_many.status().as_u16(), 400);
    let created = judge0(&app, &secret, Method::POST, "/submissions/batch")
        .json(&json!({"submissions": &batch[..20]}))
        .send()
        .await
        .expect("sent");
    assert_eq!(created.status().as_u16(), 201);
    let tokens: Vec<String> = json_body(created)
        .await
        .as_array()
        .expect("list")
        .iter()
        .map(|t| t["token"].as_str().expect("token").to_owned())
        .collect();
    assert_eq!(tokens.len(), 20);
    let unknown = "00000000-0000-4000-8000-000000000000";
    let shown = json_body(
        judge0_get(&app, &secret, &format!(
            "/submissions/batch?tokens={},{unknown}&fields=token,status,language_id,source_code",
            tokens[0]
        )).await,
    )
    .await;
    assert_eq!(shown["submissions"][0]["status"]["id"], 1);
    assert_eq!(shown["submissions"][0]["language_id"], 71);
    assert_eq!(shown["submissions"][0]["source_code"], "print(0)");
    assert_eq!(shown["submissions"][1], Value::Null);
}

#[tokio::test]
async fn the_official_judge0_sdk_passes_against_a_real_worker() {
    require_docker!();
    let (app, _worker, secret) = served_by_a_worker().await;
    run_client(
        "judge0_sdk.py",
        &[app.url("/judge0"), secret.clone()],
        "judge0 sdk: all checks passed",
    )
    .await;

    // `wait=true` (the SDK polls instead), without base64, every field.
    let waited = judge0(
        &app,
        &secret,
        Method::POST,
        "/submissions?wait=true&fields=*",
    )
    .json(
        &json!({"source_code": "print(input() * 2)", "language_id": 71, "stdin": "ab",
                      "expected_output": "abab\n"}),
    )
    .send()
    .await
    .expect("sent");
    assert_eq!(waited.status().as_u16(), 201);
    let waited = json_body(waited).await;
    assert_eq!(
        waited["status"],
        json!({"id": 3, "description": "Accepted"}),
        "{waited}"
    );
    assert_eq!(waited["stdout"], "abab\n");
    assert_eq!(waited["expected_output"], "abab\n");
    assert!(
        waited["time"]
            .as_str()
            .is_some_and(|t| t.parse::<f64>().is_ok()),
        "{waited}"
    );
    assert!(
        waited["memory"].as_u64().is_some_and(|kb| kb > 0),
        "{waited}"
    );
    // Output that is not UTF-8 asks for base64, as Judge0 does.
    let raw = judge0(&app, &secret, Method::POST, "/submissions?wait=true")
        .json(&json!({"source_code": "import sys\nsys.stdout.buffer.write(b'\\xff')", "language_id": 71}))
        .send()
        .await
        .expect("sent");
    assert_eq!(raw.status().as_u16(), 201);
    let raw = json_body(raw).await;
    assert!(
        raw["error"]
            .as_str()
            .is_some_and(|e| e.contains("base64_encoded=true")),
        "{raw}"
    );
    let token = raw["token"].as_str().expect("token");
    let encoded = json_body(
        judge0(
            &app,
            &secret,
            Method::GET,
            &format!("/submissions/{token}?base64_encoded=true"),
        )
        .send()
        .await
        .expect("sent"),
    )
    .await;
    assert_eq!(encoded["stdout"], "/w==", "the byte 0xff, base64");
}

#[tokio::test]
async fn a_piston_client_passes_against_a_real_worker() {
    require_docker!();
    let (app, _worker, secret) = served_by_a_worker().await;
    run_client(
        "piston_client.py",
        &[app.url(&format!("/piston/{secret}/api/v2"))],
        "piston client: all checks passed",
    )
    .await;
}

/// A local HTTP listener that records what reaches it and answers `reply`.
struct Listener {
    port: u16,
    hits: Arc<AtomicUsize>,
    bodies: Arc<Mutex<Vec<String>>>,
}

async fn listener(ip: &str, reply: String) -> Listener {
    let socket = tokio::net::TcpListener::bind((ip, 0)).await.expect("bind");
    let port = socket.local_addr().expect("address").port();
    let hits = Arc::new(AtomicUsize::new(0));
    let bodies = Arc::new(Mutex::new(Vec::new()));
    let (h, b) = (Arc::clone(&hits), Arc::clone(&bodies));
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = socket.accept().await {
            h.fetch_add(1, Ordering::SeqCst);
            let mut buffer = vec![0u8; 64 * 1024];
            let mut read = 0;
            // Headers, then as much body as Content-Length says.
            loop {
                let Ok(n) =
                    tokio::time::timeout(Duration::from_secs(2), stream.read(&mut buffer[read..]))
                        .await
                        .unwrap_or(Ok(0))
                else {
                    break;
                };
                read += n;
                let text = String::from_utf8_lossy(&buffer[..read]).to_string();
                if n == 0
                    || text.split_once("\r\n\r\n").is_some_and(|(head, body)| {
                        let length = head
                            .lines()
                            .find_map(|l| {
                                l.to_ascii_lowercase()
                                    .strip_prefix("content-length:")
                                    .map(|v| v.trim().parse::<usize>().unwrap_or(0))
                            })
                            .unwrap_or(0);
                        body.len() >= length
                    })
                {
                    break;
                }
            }
            b.lock()
                .expect("lock")
                .push(String::from_utf8_lossy(&buffer[..read]).to_string());
            let _ = stream.write_all(reply.as_bytes()).await;
            let _ = stream.shutdown().await;
        }
    });
    Listener { port, hits, bodies }
}

#[tokio::test]
async fn callbacks_to_internal_addresses_are_refused_and_nothing_is_sent() {
    // 127.0.0.2 stands for an operator's allowed receiver.
    let trap = listener(
        "127.0.0.1",
        "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n".into(),
    )
    .await;
    let redirector = listener(
        "127.0.0.2",
        format!("HTTP/1.1 302 Found\r\nLocation: http://127.0.0.1:{}/stolen\r\nContent-Length: 0\r\n\r\n", trap.port),
    )
    .await;
    let receiver = listener("127.0.0.2", "HTTP/1.1 204 No Content\r\n\r\n".into()).await;
    let app = spawn_app_with(&[
        ("RUN_MAX_PER_MINUTE", "1000"),
        ("CALLBACK_ALLOWED_HOSTS", "127.0.0.2"),
        ("CALLBACK_TIMEOUT", "2s"),
        ("CALLBACK_MAX_TRIES", "1"),
    ])
    .await;
    fake_fleet(&app).await;
    let owner = user(&app).await;
    let (_, secret) = api_token(&app, &owner).await;
    let submit = |callback: String| {
        judge0(&app, &secret, Method::POST, "/submissions")
            .json(&json!({"source_code": "print(1)", "language_id": 71, "callback_url": callback}))
            .send()
    };

    let port = trap.port;
    for callback in [
        format!("http://127.0.0.1:{port}/cb"),
        format!("http://[::1]:{port}/cb"),
        format!("http://[::ffff:127.0.0.1]:{port}/cb"),
        "http://10.1.2.3/cb".to_owned(),
        "http://169.254.169.254/latest/meta-data/".to_owned(),
        format!("http://localhost:{port}/cb"),
        format!("http://user:pw@127.0.0.2:{port}/cb"),
        "https://127.0.0.2/cb".to_owned(),
    ] {
        let refused = submit(callback.clone()).await.expect("sent");
        assert_eq!(refused.status().as_u16(), 422, "{callback}");
        assert!(
            json_body(refused).await["callback_url"][0].is_string(),
            "{callback}"
        );
    }

    // Allowed targets: one redirects to loopback (refused at the hop), one
    // receives the result. The runs are finished by hand (no worker here).
    let mut tokens = Vec::new();
    for target in [&redirector, &receiver] {
        let created = submit(format!("http://127.0.0.2:{}/cb", target.port))
            .await
            .expect("sent");
        assert_eq!(created.status().as_u16(), 201);
        tokens.push(
            json_body(created).await["token"]
                .as_str()
                .expect("token")
                .to_owned(),
        );
    }
    let result = json!({"verdict": "accepted", "exitCode": 0, "signal": null, "stdout": "1\n",
        "stderr": "", "stdoutTruncated": false, "stderrTruncated": false, "compileOutput": null,
        "timeMs": 20, "cpuMs": 10, "memoryKb": 900, "tests": []});
    sqlx::query(
        "UPDATE runs SET status = 'finished', verdict = 'accepted', result = $1, finished_at = now()",
    )
    .bind(&result)
    .execute(&app.db)
    .await
    .expect("finish runs");

    let states = eventually(
        Duration::from_secs(10),
        "every callback to be done or failed",
        || async {
            let states = sqlx::query_scalar::<_, String>(
                "SELECT callback_state FROM runs WHERE callback_state IS NOT NULL ORDER BY callback_url",
            )
            .fetch_all(&app.db)
            .await
            .expect("states");
            if states.iter().all(|s| s == "done" || s == "failed") {
                Ok(states)
            } else {
                Err(states)
            }
        },
    )
    .await;
    let state_of = |token: &str| {
        let token = token.to_owned();
        let db = app.db.clone();
        async move {
            sqlx::query_scalar::<_, String>("SELECT callback_state FROM runs WHERE id = $1::uuid")
                .bind(token)
                .fetch_one(&db)
                .await
                .expect("state")
        }
    };
    assert_eq!(
        state_of(&tokens[0]).await,
        "failed",
        "a redirect to loopback is refused"
    );
    assert_eq!(state_of(&tokens[1]).await, "done", "{states:?}");
    assert_eq!(redirector.hits.load(Ordering::SeqCst), 1);
    assert_eq!(receiver.hits.load(Ordering::SeqCst), 1, "sent once");
    let delivered = receiver.bodies.lock().expect("lock")[0].clone();
    assert!(delivered.starts_with("PUT /cb HTTP/1.1"), "{delivered}");
    let body: Value =
        serde_json::from_str(delivered.split_once("\r\n\r\n").expect("body").1).expect("JSON");
    assert_eq!(body["token"], tokens[1].as_str());
    assert_eq!(body["status"]["id"], 3);
    assert_eq!(body["stdout"], "MQo=", "base64, as Judge0 sends callbacks");
    // Lets time pass: a stray request to the trap would arrive meanwhile.
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(
        trap.hits.load(Ordering::SeqCst),
        0,
        "nothing reached the loopback trap"
    );
}
