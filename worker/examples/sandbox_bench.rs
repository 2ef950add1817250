//! Sandbox latency and throughput benchmark (not a test): run it on an idle
//! machine with the sandbox images built.
//!
//! ```text
//! cargo run --release -p worker --example sandbox_bench [-- ITERATIONS]
//! ```
//!
//! In one process, against the same Docker engine and the same hardened
//! python image, it measures a python hello world (`python3 -B -S`, the
//! manifest's command, everywhere), under the engine's default runtime and,
//! when the engine has it, under gVisor (`runsc`), side by side:
//! 1. `docker run` through the CLI (the baseline a newcomer would write);
//! 2. the engine's cold path (create + attach + start + run + remove);
//! 3. the engine's warm path (a pre-started container from the pool);
//! 4. executions per second at concurrency 4: the engine (warm pool) versus a
//!    raw create-start-wait-remove loop over the Docker API.

use std::{sync::Arc, time::Duration};

mod bench_support;

use bench_support::{
    docker_run_cli, execute, p, raw_create_start_wait_remove, throughput, wait_for_pool,
};
use bollard::Docker;
use codecall_worker::sandbox::{
    Engine, EngineConfig,
    manifest::{Language, Manifest},
};

/// One cell of the side-by-side table.
type Cell = fn(&Figures) -> String;

/// One runtime's figures.
struct Figures {
    cli: Vec<Duration>,
    cold: Vec<Duration>,
    warm: Vec<Duration>,
    engine_rate: f64,
    raw_rate: f64,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let iterations: usize = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(30);
    let (docker, manifest, python) = bench_support::connect().await?;
    println!("sandbox benchmark: python hello world, {iterations} iterations each\n");

    let mut runtimes = vec![("default", None, false)];
    match codecall_worker::connect::sandbox_runtime(&docker, Some("runsc")).await {
        Ok(runsc) => runtimes.push(("runsc", Some("runsc".to_owned()), runsc.gvisor)),
        Err(e) => println!("gVisor not measured: {e:#}\n"),
    }
    let mut all = Vec::new();
    for (name, runtime, gvisor) in runtimes {
        println!("runtime {name}:");
        let config = EngineConfig {
            runtime,
            gvisor,
            ..EngineConfig::default()
        };
        all.push((
            name,
            bench(&docker, &manifest, &python, &config, iterations).await?,
        ));
        println!();
    }

    let count = iterations.max(8) * 2;
    println!("side by side (p50 / p99 in ms; throughput at concurrency 4, {count} executions):");
    print!("  {:<34}", "path");
    for (name, _) in &all {
        print!("{name:>22}");
    }
    println!();
    let rows: [(&str, Cell); 5] = [
        ("docker run (CLI, hardened)", |f| latency(&f.cli)),
        ("engine, cold path", |f| latency(&f.cold)),
        ("engine, warm pool", |f| latency(&f.warm)),
        ("engine (warm pool), exec/s", |f| {
            format!("{:.1}", f.engine_rate)
        }),
        ("raw create-start-wait-remove, exec/s", |f| {
            format!("{:.1}", f.raw_rate)
        }),
    ];
    for (label, cell) in rows {
        print!("  {label:<34}");
        for (_, figures) in &all {
            print!("{:>22}", cell(figures));
        }
        println!();
    }
    if let [(_, runc), (_, runsc)] = &all[..] {
        println!("\ngVisor's cost (runsc / default):");
        println!(
            "  docker run p50                    {:8.2}",
            p(&runsc.cli, 50) / p(&runc.cli, 50)
        );
        println!(
            "  cold p50                          {:8.2}",
            p(&runsc.cold, 50) / p(&runc.cold, 50)
        );
        println!(
            "  warm p50                          {:8.2}",
            p(&runsc.warm, 50) / p(&runc.warm, 50)
        );
        println!(
            "  engine throughput                 {:8.2}",
            runsc.engine_rate / runc.engine_rate
        );
    }
    Ok(())
}

fn latency(samples: &[Duration]) -> String {
    format!("{:.1} / {:.1}", p(samples, 50), p(samples, 99))
}

async fn bench(
    docker: &Docker,
    manifest: &Manifest,
    python: &Language,
    config: &EngineConfig,
    iterations: usize,
) -> anyhow::Result<Figures> {
    let runtime = config.runtime.clone();
    let cli = measure(iterations, || {
        docker_run_cli(&python.image, runtime.as_deref())
    })
    .await?;
    report("docker run (CLI, hardened)", &cli);

    // The same engine, with and without a pool of warm containers.
    let engine = |worker_id: &str, pool_size| {
        Engine::new(
            docker.clone(),
            manifest.clone(),
            EngineConfig {
                worker_id: worker_id.into(),
                pool_size,
                ..config.clone()
            },
        )
    };
    let cold_engine = engine("bench-cold", 0);
    let cold = measure(iterations, || execute(&cold_engine)).await?;
    report("engine, cold path", &cold);

    let warm_engine = engine("bench-warm", 4);
    warm_engine.warm_up().await;
    wait_for_pool(&warm_engine, 4).await;
    // Moderate load: a short pause lets the pool refill between executions.
    let warm = measure(iterations, || async {
        let t = execute(&warm_engine).await;
        tokio::time::sleep(Duration::from_millis(150)).await;
        t
    })
    .await?;
    report("engine, warm pool", &warm);

    let count = iterations.max(8) * 2;
    let engine_rate = throughput(count, 4, {
        let engine = Arc::clone(&warm_engine);
        move || {
            let engine = Arc::clone(&engine);
            async move { execute(&engine).await.map(|_| ()) }
        }
    })
    .await?;
    let raw_rate = throughput(count, 4, {
        let docker = docker.clone();
        let python = python.clone();
        let config = config.clone();
        move || {
            let docker = docker.clone();
            let python = python.clone();
            let config = config.clone();
            async move { raw_create_start_wait_remove(&docker, &python, &config).await }
        }
    })
    .await?;
    warm_engine.shutdown().await;
    println!("  engine (warm pool), concurrency 4 {engine_rate:8.1} exec/s");
    println!("  raw create-start-wait-remove      {raw_rate:8.1} exec/s");
    Ok(Figures {
        cli,
        cold,
        warm,
        engine_rate,
        raw_rate,
    })
}

async fn measure<F, Fut>(n: usize, mut f: F) -> anyhow::Result<Vec<Duration>>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = anyhow::Result<Duration>>,
{
    f().await?; // warm-up, not counted
    let mut samples = Vec::with_capacity(n);
    for _ in 0..n {
        samples.push(f().await?);
    }
    samples.sort();
    Ok(samples)
}

fn report(name: &str, samples: &[Duration]) {
    println!(
        "  {name:<34}p50 {:7.1} ms   p99 {:7.1} ms",
        p(samples, 50),
        p(samples, 99)
    );
}
