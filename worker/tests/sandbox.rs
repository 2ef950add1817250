//! The execution engine against the real Docker engine and the real sandbox
//! images (built by the test command): every language, the verdicts, and the
//! adversarial programs. After every execution, no container of that
//! execution may remain.
//!
//! `SANDBOX_TEST_RUNTIME=runsc` runs the whole suite under gVisor (the test
//! command does, as a second pass, when runsc is registered with the engine):
//! every verdict must be the same as under the default runtime.
//!
//! Over 600 lines on purpose: one engine, one suite; every case is a short
//! program and its expected verdict, run under both runtimes.

use std::{collections::HashMap, sync::Arc, time::Instant};

use bollard::{Docker, query_parameters::ListContainersOptionsBuilder};
use codecall_worker::sandbox::{
    Engine, EngineConfig, ExecutionRequest, ExecutionResult, OutputChunk, TestCase,
    manifest::Manifest,
};
use eventually::eventually;
use request::request;
use run_contract::Verdict;

#[path = "../../api/tests/api/docker.rs"]
mod docker;
use docker::require_docker;
#[path = "support/docker.rs"]
mod engine_docker;
#[path = "../../api/tests/api/eventually.rs"]
mod eventually;
#[path = "support/request.rs"]
mod request;

const KIB: usize = 1024;

/// The runtime under test: `SANDBOX_TEST_RUNTIME`, else the engine's default.
fn runtime_under_test() -> Option<String> {
    std::env::var("SANDBOX_TEST_RUNTIME")
        .ok()
        .filter(|r| !r.is_empty())
}

/// The engine under test with `config`, every language's image checked.
async fn engine_with(mut config: EngineConfig) -> Arc<Engine> {
    let docker = engine_docker::connect().await;
    let runtime = runtime_under_test();
    let checked = codecall_worker::connect::sandbox_runtime(&docker, runtime.as_deref())
        .await
        .expect("SANDBOX_TEST_RUNTIME is registered with the engine");
    config.runtime = runtime;
    config.gvisor = checked.gvisor;
    let engine = Engine::new(docker, Manifest::embedded(), config);
    let available: Vec<String> = engine
        .available_languages()
        .await
        .into_iter()
        .map(|l| l.id)
        .collect();
    for id in ["python", "javascript", "c", "cpp", "java", "go"] {
        assert!(
            available.iter().any(|a| a == id),
            "sandbox image for {id} missing: run sandbox-images/build.sh (the test command does)"
        );
    }
    engine
}

/// A cold-path engine's configuration (no pool).
fn cold() -> EngineConfig {
    EngineConfig {
        worker_id: "sandbox-tests".into(),
        pool_size: 0,
        default_time_ms: 2_000,
        ..EngineConfig::default()
    }
}

/// The engine under test (a cold-path one unless `$config` says otherwise),
/// or a return from the test when no Docker engine is reachable — which
/// fails the test when `CI` is set (`require_docker!`): a CI without Docker
/// must not pass with the sandbox untested.
macro_rules! engine_or_skip {
    () => {
        engine_or_skip!(cold())
    };
    ($config:expr) => {{
        require_docker!();
        engine_with($config).await
    }};
}

async fn containers_labelled(docker: &Docker, label: &str) -> usize {
    let filter = format!("codecall.sandbox={label}");
    let options = ListContainersOptionsBuilder::new()
        .all(true)
        .filters(&HashMap::from([("label", vec![filter.as_str()])]))
        .build();
    docker
        .list_containers(Some(options))
        .await
        .map_or(0, |c| c.len())
}

/// Executes and checks that nothing of the execution is left behind.
async fn run(engine: &Engine, request: ExecutionRequest) -> ExecutionResult {
    let label = request.label.clone();
    let result = engine
        .execute(request, &mut |_| {})
        .await
        .expect("the engine itself does not fail");
    engine.settle().await;
    assert_eq!(
        containers_labelled(engine.docker(), &label).await,
        0,
        "container left behind"
    );
    result
}

async fn python(engine: &Engine, source: &str) -> ExecutionResult {
    run(engine, request("python", source)).await
}

#[tokio::test]
async fn every_language_says_hello_and_echoes_stdin() {
    let engine = engine_or_skip!();
    let programs = [
        (
            "python",
            "import sys\nprint('Hello, World!')\nprint(sys.stdin.read(), end='')\n",
        ),
        (
            "javascript",
            "process.stdout.write('Hello, World!\\n');\nprocess.stdout.write(require('fs').readFileSync(0, 'utf8'));\n",
        ),
        (
            "c",
            "#include <stdio.h>\nint main(void){char b[256];puts(\"Hello, World!\");while(fgets(b,sizeof b,stdin))fputs(b,stdout);return 0;}\n",
        ),
        (
            "cpp",
            "#include <iostream>\n#include <string>\nint main(){std::cout<<\"Hello, World!\\n\";std::string l;while(std::getline(std::cin,l))std::cout<<l<<\"\\n\";}\n",
        ),
        (
            "java",
            "import java.io.*;\npublic class Main{public static void main(String[] a)throws IOException{System.out.println(\"Hello, World!\");BufferedReader r=new BufferedReader(new InputStreamReader(System.in));String l;while((l=r.readLine())!=null)System.out.println(l);}}\n",
        ),
        (
            "go",
            "package main\nimport (\"bufio\";\"fmt\";\"os\")\nfunc main(){fmt.Println(\"Hello, World!\");s:=bufio.NewScanner(os.Stdin);for s.Scan(){fmt.Println(s.Text())}}\n",
        ),
    ];
    for (language, source) in programs {
        let mut req = request(language, source);
        req.stdin = b"echo me\n".to_vec();
        req.time_ms = Some(5_000);
        let result = run(&engine, req).await;
        assert_eq!(result.verdict, Verdict::Accepted, "{language}: {result:?}");
        assert_eq!(result.stdout, "Hello, World!\necho me\n", "{language}");
        assert_eq!(result.exit_code, Some(0));
    }
}

#[tokio::test]
async fn output_streams_to_the_callback_as_it_happens() {
    let engine = engine_or_skip!();
    let req = request(
        "python",
        "import time\nfor i in range(3):\n    print(i, flush=True)\n    time.sleep(0.2)\n",
    );
    let started = Instant::now();
    let mut seen: Vec<(u128, Vec<u8>)> = Vec::new();
    let mut on_output = |chunk: OutputChunk| seen.push((started.elapsed().as_millis(), chunk.data));
    let label = req.label.clone();
    let result = engine.execute(req, &mut on_output).await.expect("executes");
    engine.settle().await;
    assert_eq!(containers_labelled(engine.docker(), &label).await, 0);
    assert_eq!(result.stdout, "0\n1\n2\n");
    let joined: Vec<u8> = seen.iter().flat_map(|(_, d)| d.clone()).collect();
    assert_eq!(joined, b"0\n1\n2\n");
    assert!(seen.len() >= 3, "one chunk per flush: {seen:?}");
    // The first chunk arrived well before the program finished.
    assert!(seen[seen.len() - 1].0 - seen[0].0 >= 300, "{seen:?}");
}

#[tokio::test]
async fn a_compile_error_reports_the_compilers_message() {
    let engine = engine_or_skip!();
    let result = run(&engine, request("c", "int main(void) { return nope; }\n")).await;
    assert_eq!(result.verdict, Verdict::CompileError);
    let message = result.compile_output.clone().expect("compiler output");
    assert!(
        message.contains("nope") && message.contains("error"),
        "{message}"
    );
}

#[tokio::test]
async fn a_crash_is_a_runtime_error_naming_the_signal() {
    let engine = engine_or_skip!();
    let result = run(
        &engine,
        request("c", "int main(void){ int *p = 0; return *p; }\n"),
    )
    .await;
    assert_eq!(result.verdict, Verdict::RuntimeError);
    assert_eq!(result.signal.as_deref(), Some("SIGSEGV"));
    let result = python(&engine, "raise SystemExit(3)\n").await;
    assert_eq!(result.verdict, Verdict::RuntimeError);
    assert_eq!(result.exit_code, Some(3));
}

#[tokio::test]
async fn a_wrong_answer_on_test_two_of_three_is_reported_per_test() {
    let engine = engine_or_skip!();
    let mut req = request(
        "python",
        "n = int(input())\nprint(n * 2 if n != 5 else 0)\n",
    );
    req.tests = [("1", "2"), ("5", "10"), ("7", "14  \n\n")]
        .into_iter()
        .map(|(stdin, expected)| TestCase {
            stdin: format!("{stdin}\n").into_bytes(),
            expected_output: expected.into(),
        })
        .collect();
    let result = run(&engine, req).await;
    let verdicts: Vec<Verdict> = result.tests.iter().map(|t| t.verdict).collect();
    assert_eq!(
        verdicts,
        [Verdict::Accepted, Verdict::WrongAnswer, Verdict::Accepted]
    );
    assert_eq!(result.verdict, Verdict::WrongAnswer);
    assert_eq!(result.stdout, "0\n", "the deciding test's output");
}

#[tokio::test]
async fn compiled_languages_compile_once_for_all_tests() {
    let engine = engine_or_skip!();
    // The binary counts its own runs in a file next to it: compiled once,
    // it sees the file grow across tests.
    let source = "#include <stdio.h>\nint main(void){FILE*f=fopen(\"runs\",\"a+\");fputc('x',f);long n=ftell(f);fclose(f);int v;scanf(\"%d\",&v);printf(\"%d %ld\\n\",v,n);return 0;}\n";
    let mut req = request("c", source);
    req.tests = (1..=3)
        .map(|i| TestCase {
            stdin: format!("{i}\n").into_bytes(),
            expected_output: format!("{i} {i}"),
        })
        .collect();
    let result = run(&engine, req).await;
    assert_eq!(result.verdict, Verdict::Accepted, "{result:?}");
}

#[tokio::test]
async fn a_fork_bomb_times_out_and_the_engine_stays_healthy() {
    let engine = engine_or_skip!();
    let result = run(
        &engine,
        request(
            "c",
            "#include <unistd.h>\nint main(void){ for(;;) fork(); }\n",
        ),
    )
    .await;
    if engine.config().gvisor {
        // The one verdict that differs: a fork bomb takes a gVisor sandbox
        // down (its kernel runs out of threads before the runner, starved of
        // CPU by the bomb, can keep up); the engine maps the dead sandbox to
        // the program's failure, never to an internal error.
        assert_eq!(result.verdict, Verdict::RuntimeError, "{result:?}");
        assert!(
            result
                .stderr
                .contains("exhausted gVisor's own process resources"),
            "{result:?}"
        );
    } else {
        assert_eq!(result.verdict, Verdict::TimeLimitExceeded, "{result:?}");
    }
    assert_eq!(
        python(&engine, "print('ok')").await.verdict,
        Verdict::Accepted
    );
}

#[tokio::test]
async fn a_memory_bomb_is_memory_limit_exceeded() {
    let engine = engine_or_skip!();
    let result = python(
        &engine,
        "a = []\nwhile True:\n    a.append(bytearray(10 * 2**20))\n",
    )
    .await;
    assert_eq!(result.verdict, Verdict::MemoryLimitExceeded, "{result:?}");
    assert_eq!(python(&engine, "print('ok')").await.stdout, "ok\n");
}

#[tokio::test]
async fn loops_and_sleeps_past_the_limit_time_out_keeping_partial_output() {
    let engine = engine_or_skip!();
    let started = Instant::now();
    let result = python(
        &engine,
        "print('partial', flush=True)\nwhile True:\n    pass\n",
    )
    .await;
    assert_eq!(result.verdict, Verdict::TimeLimitExceeded);
    assert_eq!(result.stdout, "partial\n");
    let result = python(
        &engine,
        "import time\nprint('before', flush=True)\ntime.sleep(60)\n",
    )
    .await;
    assert_eq!(result.verdict, Verdict::TimeLimitExceeded);
    assert_eq!(result.stdout, "before\n");
    assert!(started.elapsed().as_secs() < 15, "killed at the 2 s limit");
}

#[tokio::test]
async fn a_hundred_megabytes_of_output_keeps_the_first_64_kib() {
    let engine = engine_or_skip!();
    let result = python(
        &engine,
        "import sys\nchunk = 'x' * 2**20\nfor _ in range(100):\n    sys.stdout.write(chunk)\n",
    )
    .await;
    assert_eq!(result.verdict, Verdict::OutputLimitExceeded);
    assert_eq!(result.stdout.len(), 64 * KIB);
    assert!(result.stdout_truncated);
    assert!(!result.stderr_truncated);
}

#[tokio::test]
async fn binary_output_is_returned_lossily() {
    let engine = engine_or_skip!();
    let result = python(
        &engine,
        "import sys\nsys.stdout.buffer.write(bytes(range(256)))\n",
    )
    .await;
    assert_eq!(result.verdict, Verdict::Accepted);
    assert!(result.stdout.contains('\u{FFFD}'));
    assert!(result.stdout.starts_with("\u{0}\u{1}\u{2}"));
}

#[tokio::test]
async fn filling_the_tmpfs_fails_inside_the_sandbox_only() {
    let engine = engine_or_skip!();
    let result = python(
        &engine,
        "import os\ntry:\n    with open('big', 'wb') as f:\n        for _ in range(200):\n            f.write(b'x' * 2**20)\nexcept OSError as e:\n    print('refused', e.errno)\n",
    )
    .await;
    assert_eq!(result.verdict, Verdict::Accepted);
    assert!(result.stdout.starts_with("refused"), "{result:?}");
    assert_eq!(python(&engine, "print('ok')").await.stdout, "ok\n");
}

#[tokio::test]
async fn writing_outside_the_work_dir_is_refused() {
    let engine = engine_or_skip!();
    let result = python(
        &engine,
        "import os\nfor p in ['/etc/pwned', '/usr/pwned', '/pwned', '/var/pwned', '/home/pwned']:\n    try:\n        open(p, 'w').write('x')\n        print('WROTE', p)\n    except OSError:\n        print('refused', p)\n",
    )
    .await;
    assert!(!result.stdout.contains("WROTE"), "{}", result.stdout);
    assert_eq!(result.stdout.matches("refused").count(), 5);
}

#[tokio::test]
async fn there_is_no_network() {
    let engine = engine_or_skip!();
    let result = python(
        &engine,
        "import socket\nfor host in [('1.1.1.1', 53), ('172.17.0.1', 2375), ('127.0.0.1', 6379)]:\n    try:\n        socket.create_connection(host, timeout=1)\n        print('CONNECTED', host)\n    except OSError:\n        print('no route')\nprint(open('/proc/net/dev').read().count(':'))\n",
    )
    .await;
    assert!(!result.stdout.contains("CONNECTED"), "{}", result.stdout);
    assert!(
        result.stdout.ends_with("1\n"),
        "only the loopback interface: {}",
        result.stdout
    );
}

#[tokio::test]
async fn the_host_environment_and_the_runners_memory_are_not_visible() {
    // `cargo test` gives this process CARGO_* variables: none may reach the sandbox.
    assert!(std::env::var("CARGO_MANIFEST_DIR").is_ok());
    let engine = engine_or_skip!();
    let result = python(
        &engine,
        "import os\nprint(sorted(os.environ))\nfor p in ['/proc/1/environ', '/proc/1/mem', '/proc/1/fd/1', '/var/run/docker.sock']:\n    try:\n        open(p, 'rb').read(1)\n        print('READ', p)\n    except OSError:\n        print('refused', p)\nprint(os.getuid(), os.getgid())\n",
    )
    .await;
    assert!(!result.stdout.contains("CARGO"), "{}", result.stdout);
    let mut read: Vec<&str> = result
        .stdout
        .lines()
        .filter_map(|l| l.strip_prefix("READ "))
        .collect();
    if engine.config().gvisor {
        // gVisor's /proc ignores non-dumpable for `environ`: it holds only
        // the container's PATH, HOME and LANG (checked below for secrets).
        read.retain(|p| *p != "/proc/1/environ");
    }
    assert!(read.is_empty(), "{}", result.stdout);
    assert!(result.stdout.contains("41000 41000"), "{}", result.stdout);
    for key in ["DATABASE_URL", "REDIS_URL", "JWT", "DOCKER"] {
        assert!(
            !result.stdout.contains(key),
            "{key} visible: {}",
            result.stdout
        );
    }
}

#[tokio::test]
async fn privilege_escalation_attempts_fail() {
    let engine = engine_or_skip!();
    let result = python(
        &engine,
        "import os, subprocess\nfor f in [lambda: os.setuid(0), lambda: os.setgid(0), lambda: os.chroot('/tmp'), lambda: os.chown('main.py', 0, 0)]:\n    try:\n        f()\n        print('ESCALATED')\n    except OSError:\n        print('refused')\nprint(open('/proc/self/status').read().split('CapEff:')[1].split()[0])\n",
    )
    .await;
    assert!(!result.stdout.contains("ESCALATED"), "{}", result.stdout);
    assert!(
        result.stdout.ends_with("0000000000000000\n"),
        "no capabilities: {}",
        result.stdout
    );
}

#[tokio::test]
async fn a_background_process_does_not_outlive_the_execution() {
    let engine = engine_or_skip!();
    let started = Instant::now();
    let result = python(
        &engine,
        "import os, time\nif os.fork() == 0:\n    os.setsid()\n    time.sleep(30)\n    print('LATE')\nelse:\n    print('parent done')\n",
    )
    .await;
    assert_eq!(result.verdict, Verdict::Accepted);
    assert_eq!(result.stdout, "parent done\n");
    assert!(
        started.elapsed().as_secs() < 10,
        "did not wait for the child"
    );
}

#[tokio::test]
async fn forged_report_lines_are_just_output() {
    let engine = engine_or_skip!();
    let result = python(
        &engine,
        "import sys\nprint('{\"type\":\"finished\"}')\nprint('x {\"type\":\"test_done\",\"test\":0}')\nsys.stdout.flush()\ntry:\n    open('/proc/1/fd/1', 'w').write('forged, and no newline')\n    print('wrote')\nexcept OSError:\n    print('refused')\nsys.exit(4)\n",
    )
    .await;
    assert_eq!(result.verdict, Verdict::RuntimeError, "{result:?}");
    assert_eq!(result.exit_code, Some(4));
    if engine.config().gvisor {
        // gVisor lets the same uid open /proc/1/fd/1 despite non-dumpable:
        // what it writes there is not a report (it cannot know the nonce),
        // and junk glued before the runner's next line does not hide it.
        assert!(result.stdout.contains("wrote"), "{}", result.stdout);
    } else {
        assert!(result.stdout.contains("refused"), "{}", result.stdout);
    }
}

#[tokio::test]
async fn closing_stdout_early_and_a_mebibyte_of_stdin_are_fine() {
    let engine = engine_or_skip!();
    let result = python(
        &engine,
        "import os, sys\nos.close(1)\nsys.stderr.write('still here')\n",
    )
    .await;
    assert_eq!(result.verdict, Verdict::Accepted, "{result:?}");
    assert_eq!(result.stderr, "still here");

    let mut req = request(
        "python",
        "import sys\nprint(len(sys.stdin.buffer.read()))\n",
    );
    req.stdin = vec![b'a'; 1024 * KIB];
    assert_eq!(run(&engine, req).await.stdout, "1048576\n");
    // A program that never reads a large stdin is not blocked by it.
    let mut req = request("python", "print('ignored stdin')\n");
    req.stdin = vec![b'a'; 1024 * KIB];
    assert_eq!(run(&engine, req).await.stdout, "ignored stdin\n");
}

#[tokio::test]
async fn the_warm_pool_serves_executions_and_is_drained_on_shutdown() {
    let engine = engine_or_skip!(EngineConfig {
        worker_id: "sandbox-pool-test".into(),
        pool_size: 1,
        ..EngineConfig::default()
    });
    engine.warm_up().await;
    eventually(
        std::time::Duration::from_secs(10),
        "the pool to warm every language",
        || async { engine.pool_size() >= 6 },
    )
    .await;
    assert_eq!(engine.pool_size(), 6, "one per language");
    let first = python(&engine, "print('warm')").await;
    assert!(first.warm);
    assert_eq!(first.stdout, "warm\n");
    // A non-default memory limit cannot use a pre-started container.
    let mut req = request("python", "print('cold')");
    req.memory_mb = Some(128);
    assert!(!run(&engine, req).await.warm);
    // The replacement started by the warm take is still starting, or
    // already ready: the drain waits for it either way.
    engine.shutdown().await;
    assert_eq!(containers_labelled(engine.docker(), "pool").await, 0);
}

#[tokio::test]
async fn the_janitor_removes_expired_sandbox_containers_only() {
    let engine = engine_or_skip!();
    let python = engine.manifest().get("python").cloned().expect("python");
    let config = EngineConfig::default();
    let label = format!("janitor-{}", uuid::Uuid::new_v4().simple());
    let expired = codecall_worker::sandbox::container::start(
        engine.docker(),
        &python,
        &config,
        256,
        &label,
        std::time::Duration::ZERO,
    )
    .await
    .expect("started");
    let live_label = format!("{label}-live");
    let live = codecall_worker::sandbox::container::start(
        engine.docker(),
        &python,
        &config,
        256,
        &live_label,
        std::time::Duration::from_secs(600),
    )
    .await
    .expect("started");
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;

    let removed = codecall_worker::sandbox::janitor::sweep(engine.docker())
        .await
        .expect("sweep");
    assert!(removed >= 1);
    assert_eq!(containers_labelled(engine.docker(), &label).await, 0);
    assert_eq!(containers_labelled(engine.docker(), &live_label).await, 1);
    codecall_worker::sandbox::container::remove(engine.docker(), &live.id).await;
    drop(expired);
}

#[tokio::test]
async fn the_container_is_created_with_every_hardening_knob_stated() {
    let engine = engine_or_skip!();
    let language = engine.manifest().get("python").cloned().expect("python");
    let label = format!("hostconfig-{}", uuid::Uuid::new_v4().simple());
    let started = codecall_worker::sandbox::container::start(
        engine.docker(),
        &language,
        engine.config(),
        256,
        &label,
        std::time::Duration::from_secs(60),
    )
    .await
    .expect("started");
    let inspected = engine
        .docker()
        .inspect_container(&started.id, None)
        .await
        .expect("inspect");
    codecall_worker::sandbox::container::remove(engine.docker(), &started.id).await;
    let host = inspected.host_config.expect("host config");
    let config = inspected.config.expect("config");

    assert_eq!(config.user.as_deref(), Some("41000:41000"));
    assert_eq!(
        host.log_config.and_then(|l| l.typ).as_deref(),
        Some("none"),
        "no log driver output"
    );
    assert_eq!(host.ipc_mode.as_deref(), Some("none"), "no /dev/shm");
    assert_eq!(host.shm_size, Some(1024 * 1024));
    let tmpfs = host.tmpfs.expect("tmpfs");
    assert!(tmpfs["/sandbox"].contains("nr_inodes=8192"), "{tmpfs:?}");
    assert!(tmpfs["/tmp"].contains("nr_inodes=1024"), "{tmpfs:?}");
    assert!(tmpfs["/sandbox"].contains("uid=41000"), "{tmpfs:?}");
    let security = host.security_opt.unwrap_or_default();
    assert!(
        security.iter().any(|o| o == "no-new-privileges"),
        "{security:?}"
    );
    // The engine's default seccomp profile applies: nothing turns it off.
    assert!(
        !security.iter().any(|o| o.starts_with("seccomp")),
        "{security:?}"
    );
    assert_eq!(host.cap_drop, Some(vec!["ALL".to_owned()]));
    assert_eq!(host.readonly_rootfs, Some(true));
    assert_eq!(host.network_mode.as_deref(), Some("none"));
    assert_eq!(
        host.runtime.as_deref(),
        engine
            .config()
            .runtime
            .as_deref()
            .or(host.runtime.as_deref())
    );
    if engine.config().gvisor {
        // Room for gVisor's own kernel; the runner enforces the program's limits.
        assert_eq!(host.memory, Some((256 + 128) * 1024 * 1024));
        assert!(host.pids_limit > Some(64));
    } else {
        assert_eq!(host.memory, Some(256 * 1024 * 1024));
        assert_eq!(host.pids_limit, Some(64));
    }

    // Inside: no /dev/shm, the inode bound holds, and (under runc) a
    // seccomp filter is in force.
    // The inode loop only under runc (gVisor's tmpfs has no inode bound).
    let mut req = request(
        "python",
        "import os, sys\nprint(os.path.exists('/dev/shm'))\ngo = sys.stdin.read() == '1'\nn = 0\ntry:\n    while go and n < 20000:\n        open('f%d' % n, 'w').close()\n        n += 1\nexcept OSError:\n    pass\nprint(n > 0 and n < 8192)\nprint([l.split()[1] for l in open('/proc/self/status') if l.startswith('Seccomp:')])\n",
    );
    req.stdin = if engine.config().gvisor {
        b"0".to_vec()
    } else {
        b"1".to_vec()
    };
    let result = run(&engine, req).await;
    let lines: Vec<&str> = result.stdout.lines().collect();
    if !engine.config().gvisor {
        // gVisor mounts a /dev/shm of its own, inside its memory (which the
        // runner's memory watch caps).
        assert_eq!(lines.first(), Some(&"False"), "{result:?}");
        // gVisor's tmpfs has no inode bound (it drops `nr_inodes`): its
        // files live in gVisor's memory, which the runner's memory watch caps.
        assert_eq!(lines.get(1), Some(&"True"), "{result:?}");
        assert_eq!(
            lines.get(2),
            Some(&"['2']"),
            "seccomp filter mode: {result:?}"
        );
    }
}

#[tokio::test]
async fn the_runs_total_budget_cuts_the_remaining_tests() {
    let engine = engine_or_skip!(EngineConfig {
        worker_id: "sandbox-budget-test".into(),
        max_total_ms: 3_000,
        ..cold()
    });
    let mut req = request(
        "python",
        "import time\nd = float(input())\ntime.sleep(d)\nprint('done')\n",
    );
    req.tests = ["10", "10", "0", "0"]
        .into_iter()
        .map(|d| TestCase {
            stdin: format!("{d}\n").into_bytes(),
            expected_output: "done".into(),
        })
        .collect();
    let started = Instant::now();
    let result = run(&engine, req).await;
    let verdicts: Vec<Verdict> = result.tests.iter().map(|t| t.verdict).collect();
    assert_eq!(verdicts, [Verdict::TimeLimitExceeded; 4], "{result:?}");
    // Test 0 used its own 2 s; test 1 got what remained of the 3 s.
    assert!(result.tests[1].time_ms < 1_800, "{result:?}");
    // Tests 2 and 3 never ran.
    for test in &result.tests[2..] {
        assert_eq!(test.time_ms, 0, "{test:?}");
        assert_eq!(test.stdout, "");
    }
    assert!(started.elapsed().as_secs() < 10, "{:?}", started.elapsed());
}

#[tokio::test]
async fn a_fork_bomb_in_every_test_gets_a_verdict_for_every_test() {
    let engine = engine_or_skip!();
    // Each test starts with the pids limit exhausted by the previous one's
    // leftovers unless the runner reaps everything in between; a runner that
    // needs a thread then fails (it did: "failed to spawn thread").
    let mut req = request(
        "c",
        "#include <unistd.h>\nint main(void){ for(;;) fork(); }\n",
    );
    req.tests = (0..3)
        .map(|_| TestCase {
            stdin: Vec::new(),
            expected_output: String::new(),
        })
        .collect();
    let result = run(&engine, req).await;
    let verdicts: Vec<Verdict> = result.tests.iter().map(|t| t.verdict).collect();
    let expected = if engine.config().gvisor {
        // See a_fork_bomb_times_out_and_the_engine_stays_healthy.
        Verdict::RuntimeError
    } else {
        Verdict::TimeLimitExceeded
    };
    assert_eq!(verdicts, [expected; 3], "{result:?}");
    assert_eq!(
        python(&engine, "print('ok')").await.verdict,
        Verdict::Accepted
    );
}
