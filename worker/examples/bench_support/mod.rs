//! What both benchmarks measure the same way (each example includes this
//! module): a python hello world through the engine, the hardened `docker
//! run` baseline, the raw create-start-wait-remove loop, and percentiles.
// Each example uses its own subset.
#![allow(dead_code)]

use std::{
    sync::Arc,
    time::{Duration, Instant},
};

use bollard::{
    Docker,
    query_parameters::{RemoveContainerOptionsBuilder, WaitContainerOptionsBuilder},
};
use codecall_worker::sandbox::{
    Engine, EngineConfig,
    container::create_body,
    manifest::{Language, Manifest},
};
use futures_util::StreamExt;
use request::request;

/// The engine's tests build their requests the same way.
#[path = "../../tests/support/request.rs"]
mod request;

pub const HELLO: &str = "print('hello')";

/// The local Docker engine, the embedded manifest and its python.
pub async fn connect() -> anyhow::Result<(Docker, Manifest, Language)> {
    let docker = Docker::connect_with_local_defaults()?
        .negotiate_version()
        .await?;
    let manifest = Manifest::embedded();
    let python = manifest
        .get("python")
        .cloned()
        .ok_or_else(|| anyhow::anyhow!("python missing from the manifest"))?;
    Ok((docker, manifest, python))
}

pub async fn execute(engine: &Engine) -> anyhow::Result<Duration> {
    let started = Instant::now();
    let mut hello = request("python", HELLO);
    hello.label = "bench".into();
    let result = engine.execute(hello, &mut |_| {}).await?;
    anyhow::ensure!(result.stdout == "hello\n", "unexpected output {result:?}");
    Ok(started.elapsed())
}

pub async fn docker_run_cli(image: &str, runtime: Option<&str>) -> anyhow::Result<Duration> {
    let started = Instant::now();
    let output = tokio::process::Command::new("docker")
        .arg("run")
        .args(runtime.map(|r| format!("--runtime={r}")))
        .args([
            "--rm",
            "--network",
            "none",
            "--read-only",
            "--tmpfs",
            "/sandbox:rw,exec,nosuid,nodev,size=64m,uid=41000,gid=41000",
            "--cap-drop",
            "ALL",
            "--security-opt",
            "no-new-privileges",
            "--memory",
            "256m",
            "--memory-swap",
            "256m",
            "--pids-limit",
            "64",
            "--user",
            "41000:41000",
            "--entrypoint",
            "python3",
            image,
            "-c",
            HELLO,
        ])
        .output()
        .await?;
    anyhow::ensure!(output.stdout == b"hello\n", "docker run failed: {output:?}");
    Ok(started.elapsed())
}

/// The same hardened container through the API, without runner or pool.
pub async fn raw_create_start_wait_remove(
    docker: &Docker,
    python: &Language,
    config: &EngineConfig,
) -> anyhow::Result<()> {
    let mut body = create_body(
        python,
        config,
        256,
        // Not the sandbox label: a worker's janitor would remove it mid-run.
        [("codecall.bench".to_owned(), "raw".to_owned())].into(),
    );
    body.entrypoint = Some(vec![
        "python3".into(),
        "-B".into(),
        "-S".into(),
        "-c".into(),
        HELLO.into(),
    ]);
    body.attach_stdin = Some(false);
    body.open_stdin = Some(false);
    body.stdin_once = Some(false);
    let id = docker.create_container(None, body).await?.id;
    docker.start_container(&id, None).await?;
    let mut wait = docker.wait_container(&id, Some(WaitContainerOptionsBuilder::new().build()));
    while let Some(item) = wait.next().await {
        item?;
    }
    match docker
        .remove_container(
            &id,
            Some(RemoveContainerOptionsBuilder::new().force(true).build()),
        )
        .await
    {
        Ok(())
        | Err(bollard::errors::Error::DockerResponseServerError {
            status_code: 404 | 409,
            ..
        }) => {}
        Err(e) => return Err(e.into()),
    }
    Ok(())
}

/// The whole machine's CPU time over a stretch of a benchmark, from
/// `/proc/stat` (so it counts the Docker engine, the shims, the runtime, the
/// programs and our own processes alike).
pub struct CpuMeter {
    busy: u64,
    idle: u64,
}

impl CpuMeter {
    pub fn start() -> anyhow::Result<Self> {
        let (busy, idle) = cpu_ticks()?;
        Ok(CpuMeter { busy, idle })
    }

    /// Busy CPU milliseconds per unit of work (`units` of it done since the
    /// start), and the share of CPU time left idle, in percent.
    pub fn per(&self, units: usize) -> anyhow::Result<(f64, f64)> {
        let (busy, idle) = cpu_ticks()?;
        let (busy, idle) = (busy - self.busy, idle - self.idle);
        // Clock ticks are hundredths of a second on Linux.
        Ok((
            busy as f64 * 10.0 / units.max(1) as f64,
            100.0 * idle as f64 / (busy + idle).max(1) as f64,
        ))
    }
}

/// Busy and idle CPU time of the whole machine so far, in clock ticks.
fn cpu_ticks() -> anyhow::Result<(u64, u64)> {
    let stat = std::fs::read_to_string("/proc/stat")?;
    let fields: Vec<u64> = stat
        .lines()
        .next()
        .unwrap_or_default()
        .split_whitespace()
        .skip(1)
        .filter_map(|f| f.parse().ok())
        .collect();
    anyhow::ensure!(fields.len() >= 5, "unexpected /proc/stat");
    let idle = fields[3] + fields[4];
    Ok((fields.iter().sum::<u64>() - idle, idle))
}

pub async fn throughput<F, Fut>(count: usize, concurrency: usize, f: F) -> anyhow::Result<f64>
where
    F: Fn() -> Fut + Clone + Send + 'static,
    Fut: std::future::Future<Output = anyhow::Result<()>> + Send,
{
    let next = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let started = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..concurrency {
        let (f, next) = (f.clone(), Arc::clone(&next));
        tasks.push(tokio::spawn(async move {
            while next.fetch_add(1, std::sync::atomic::Ordering::SeqCst) < count {
                f().await?;
            }
            Ok::<_, anyhow::Error>(())
        }));
    }
    for task in tasks {
        task.await??;
    }
    Ok(count as f64 / started.elapsed().as_secs_f64())
}

pub async fn wait_for_pool(engine: &Engine, n: usize) {
    for _ in 0..200 {
        if engine.pool_size() >= n {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

pub fn p(samples: &[Duration], percentile: usize) -> f64 {
    let i = (samples.len() * percentile / 100).min(samples.len() - 1);
    samples[i].as_secs_f64() * 1000.0
}
