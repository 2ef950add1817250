//! What each part of an execution costs the Docker engine (not a test): run
//! on an idle machine with the sandbox images built.
//!
//! ```text
//! cargo run --release -p worker --example docker_costs [-- EXECUTIONS [ROUNDS [VARIANTS]]]
//! ```
//!
//! (`VARIANTS`: some of the names below, comma-separated; default all.)
//!
//! On a busy engine the machine's CPUs, not latency, bound how many
//! executions finish per second, so every extra step per container shows up
//! as lost throughput. This measures executions per second at concurrency 4
//! (python hello world, the same hardened container everywhere), each
//! variant adding one step to the raw create-start-wait-remove loop, in
//! rounds so that the engine's drift hits every variant alike:
//!
//! - `raw`: create, start, wait, remove;
//! - `attach`: attached (stdout, stderr) before start, read to the end;
//! - `kill`: as `attach`, but removed as soon as the output arrived, while
//!   the program may still be exiting (the engine kills it first);
//! - `stdin`: as `attach`, with stdin attached too (closed at once, as
//!   the engine closes it after the request);
//! - `runner`: the image's runner as PID 1 with a request on stdin, removed
//!   once it exited (what the engine's cold path does by hand);
//! - `engine cold` / `engine warm`: the engine itself, without and with its
//!   pool.
//!
//! It prints each variant's rate and the machine's busy CPU time per
//! execution (from `/proc/stat`, so it counts the engine, the shims, the
//! runtime and the programs alike).

#[path = "bench_support/mod.rs"]
mod bench_support;

use std::time::Duration;

use bench_support::{
    CpuMeter, HELLO, execute, raw_create_start_wait_remove, throughput, wait_for_pool,
};
use bollard::{
    Docker,
    query_parameters::{AttachContainerOptionsBuilder, RemoveContainerOptionsBuilder},
};
use codecall_worker::sandbox::{Engine, EngineConfig, container::create_body, manifest::Language};
use futures_util::StreamExt;
use tokio::io::AsyncWriteExt;

const CONCURRENCY: usize = 4;

#[derive(Clone, Copy, PartialEq, Eq)]
enum Variant {
    Raw,
    Attach,
    Kill,
    Stdin,
    Runner,
    EngineCold,
    EngineWarm,
}

impl Variant {
    const ALL: [Variant; 7] = [
        Variant::Raw,
        Variant::Attach,
        Variant::Kill,
        Variant::Stdin,
        Variant::Runner,
        Variant::EngineCold,
        Variant::EngineWarm,
    ];

    fn name(self) -> &'static str {
        match self {
            Variant::Raw => "raw",
            Variant::Attach => "attach",
            Variant::Kill => "kill",
            Variant::Stdin => "stdin",
            Variant::Runner => "runner",
            Variant::EngineCold => "engine cold",
            Variant::EngineWarm => "engine warm",
        }
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1).take(2).map(|a| a.parse::<usize>());
    let executions = args.next().transpose()?.unwrap_or(120);
    let rounds = args.next().transpose()?.unwrap_or(3);
    let only = std::env::args().nth(3);
    let variants: Vec<Variant> = Variant::ALL
        .into_iter()
        .filter(|v| {
            only.as_deref()
                .is_none_or(|o| o.split(',').any(|n| n == v.name()))
        })
        .collect();
    let (docker, manifest, python) = bench_support::connect().await?;
    let cold = Engine::new(
        docker.clone(),
        manifest.clone(),
        EngineConfig {
            worker_id: "docker-costs-cold".into(),
            pool_size: 0,
            ..EngineConfig::default()
        },
    );
    let warm = Engine::new(
        docker.clone(),
        manifest,
        EngineConfig {
            worker_id: "docker-costs-warm".into(),
            ..EngineConfig::default()
        },
    );
    warm.warm_up().await;
    wait_for_pool(&warm, 2).await;
    println!(
        "python hello world, concurrency {CONCURRENCY}, {executions} executions per variant and round"
    );

    let mut rates = vec![Vec::new(); variants.len()];
    for round in 1..=rounds {
        for (i, &variant) in variants.iter().enumerate() {
            let cpu = CpuMeter::start()?;
            let rate = match variant {
                Variant::EngineCold | Variant::EngineWarm => {
                    let engine = if variant == Variant::EngineCold {
                        &cold
                    } else {
                        &warm
                    };
                    let engine = engine.clone();
                    throughput(executions, CONCURRENCY, move || {
                        let engine = engine.clone();
                        async move { execute(&engine).await.map(|_| ()) }
                    })
                    .await?
                }
                _ => {
                    let (docker, python) = (docker.clone(), python.clone());
                    throughput(executions, CONCURRENCY, move || {
                        let (docker, python) = (docker.clone(), python.clone());
                        async move { by_hand(&docker, &python, variant).await }
                    })
                    .await?
                }
            };
            let (busy, idle) = cpu.per(executions)?;
            println!(
                "round {round}  {:<12} {rate:6.1} exec/s   busy CPU {busy:6.1} ms per execution   idle {idle:3.0} %",
                variant.name(),
            );
            rates[i].push(rate);
            cold.settle().await;
            warm.settle().await;
            tokio::time::sleep(Duration::from_secs(2)).await;
        }
    }
    let mean = |v: &[f64]| v.iter().sum::<f64>() / v.len().max(1) as f64;
    let raw = variants
        .iter()
        .position(|v| *v == Variant::Raw)
        .map_or(f64::NAN, |i| mean(&rates[i]));
    println!("\nmean over {rounds} rounds, and against raw:");
    for (variant, rates) in variants.iter().zip(&rates) {
        let rate = mean(rates);
        println!(
            "  {:<12} {rate:6.1} exec/s   {:5.2}",
            variant.name(),
            rate / raw
        );
    }
    warm.shutdown().await;
    Ok(())
}

/// One execution of a hand-written variant.
async fn by_hand(docker: &Docker, python: &Language, variant: Variant) -> anyhow::Result<()> {
    let config = EngineConfig::default();
    if variant == Variant::Raw {
        return raw_create_start_wait_remove(docker, python, &config).await;
    }
    let runner = variant == Variant::Runner;
    let stdin = runner || variant == Variant::Stdin;
    // Not the sandbox label: a worker's janitor would remove it mid-run.
    let labels = [("codecall.bench".to_owned(), "costs".to_owned())].into();
    let mut body = create_body(python, &config, 256, labels);
    if !runner {
        body.entrypoint = Some(
            ["python3", "-B", "-S", "-c", HELLO]
                .map(String::from)
                .to_vec(),
        );
    }
    if !stdin {
        body.attach_stdin = Some(false);
        body.open_stdin = Some(false);
        body.stdin_once = Some(false);
    }
    let id = docker.create_container(None, body).await?.id;
    let attach = AttachContainerOptionsBuilder::new()
        .stdin(stdin)
        .stdout(true)
        .stderr(true)
        .stream(true)
        .logs(false)
        .build();
    let mut streams = docker.attach_container(&id, Some(attach)).await?;
    docker.start_container(&id, None).await?;
    if runner {
        let mut line = serde_json::to_vec(&runner_request())?;
        line.push(b'\n');
        streams.input.write_all(&line).await?;
    }
    if stdin {
        streams.input.shutdown().await?;
    }
    while let Some(item) = streams.output.next().await {
        item?;
        if variant == Variant::Kill {
            break;
        }
    }
    docker
        .remove_container(
            &id,
            Some(RemoveContainerOptionsBuilder::new().force(true).build()),
        )
        .await?;
    Ok(())
}

/// The request the engine sends for a python hello world.
fn runner_request() -> sandbox_runner::Request {
    sandbox_runner::Request {
        nonce: "costs".into(),
        files: vec![sandbox_runner::File {
            name: "main.py".into(),
            content: HELLO.into(),
        }],
        compile: None,
        run: ["python3", "-B", "-S", "main.py"]
            .map(String::from)
            .to_vec(),
        args: Vec::new(),
        env: vec![
            ("PATH".into(), "/usr/local/bin:/usr/bin:/bin".into()),
            ("HOME".into(), sandbox_runner::WORK_DIR.into()),
            ("LANG".into(), "C.UTF-8".into()),
        ],
        tests: vec![sandbox_runner::TestInput {
            stdin: String::new(),
        }],
        time_limit_ms: 5_000,
        compile_time_limit_ms: 10_000,
        output_limit_bytes: 64 * 1024,
        memory_limit_bytes: 256 << 20,
        total_time_limit_ms: Some(60_000),
        watch: None,
    }
}
