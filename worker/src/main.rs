//! The `codecall-worker` binary: connect to PostgreSQL, Redis and Docker,
//! then execute run jobs until SIGTERM (finishing in-flight runs within
//! `WORKER_SHUTDOWN_TIMEOUT`). Exits non-zero, with a message saying what to
//! fix, when a dependency is unreachable at start-up.

use std::{process::ExitCode, sync::Arc, time::Duration};

use apalis::prelude::{BackendExt, Monitor, WorkerBuilder, WorkerBuilderExt};
use apalis_redis::RedisStorage;
use codecall_worker::{config::Config, connect, pipeline, presence, prometheus, sandbox};
use run_contract::RunJob;
use tracing_subscriber::{EnvFilter, fmt, prelude::*};

#[tokio::main]
async fn main() -> ExitCode {
    let config = match Config::from_env() {
        Ok(config) => config,
        Err(e) => {
            #[allow(clippy::print_stderr)]
            {
                eprintln!("codecall-worker: configuration error: {e:#}");
            }
            return ExitCode::from(2);
        }
    };
    init_tracing(&config);

    match run(config).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!("codecall-worker stopped: {e:#}");
            ExitCode::FAILURE
        }
    }
}

async fn run(config: Config) -> anyhow::Result<()> {
    if config.metrics_port != 0 {
        prometheus::serve(config.metrics_port).await?;
    }
    let db = connect::postgres(&config.database_url, config.startup_timeout).await?;
    tracing::info!("connected to PostgreSQL");
    let redis = connect::redis(&config.redis_url, config.startup_timeout).await?;
    tracing::info!("connected to Redis");
    let (docker, engine_info) = connect::docker(config.startup_timeout).await?;
    tracing::info!(
        engine_version = %engine_info.version,
        engine_api_version = %engine_info.api_version,
        "connected to the Docker engine"
    );
    let runtime = connect::sandbox_runtime(&docker, config.sandbox_runtime.as_deref()).await?;
    // Leftovers of a crashed worker go first, then every 30 s.
    let janitor = sandbox::janitor::spawn(docker.clone(), sandbox::janitor::INTERVAL);
    let manifest = sandbox::manifest::Manifest::load(config.languages_manifest.as_deref())?;
    let engine = sandbox::Engine::new(
        docker,
        manifest,
        sandbox::EngineConfig {
            worker_id: config.worker_id.clone(),
            pool_size: config.pool_size,
            runtime: config.sandbox_runtime.clone(),
            gvisor: runtime.gvisor,
            max_total_ms: u64::try_from(config.run_max_total_time.as_millis()).unwrap_or(60_000),
            ..sandbox::EngineConfig::default()
        },
    );
    let languages = engine.available_languages().await;
    anyhow::ensure!(
        !languages.is_empty(),
        "no sandbox image is available on this Docker engine: build them with sandbox-images/build.sh"
    );
    engine.warm_up().await;

    let pipeline = Arc::new(pipeline::Pipeline {
        db: db.clone(),
        redis: redis.clone(),
        engine: Arc::clone(&engine),
        key_prefix: config.key_prefix.clone(),
        worker_id: config.worker_id.clone(),
        max_attempts: config.max_attempts,
        running: Default::default(),
        done: Default::default(),
    });
    let announcer = presence::spawn(
        redis.clone(),
        presence::Announcement::new(&config, &languages),
        Arc::clone(&pipeline),
        config.heartbeat,
    );
    let reaper = tokio::spawn({
        let (db, stuck_after) = (db.clone(), config.stuck_after);
        async move {
            let mut tick = tokio::time::interval(Duration::from_secs(30));
            loop {
                tick.tick().await;
                match pipeline::reap_stuck_runs(&db, stuck_after).await {
                    Ok(0) => {}
                    Ok(n) => tracing::warn!(reaped = n, "ended lost runs as internal_error"),
                    Err(e) => tracing::warn!(error = %e, "stuck-run reaper failed"),
                }
            }
        }
    });

    let queue = run_contract::run_queue(&config.key_prefix);
    let queue_config = apalis_redis::Config::default()
        .queue(&queue)
        // Prefetch no more than we run: a prefetched job waits for this
        // worker even when another is idle.
        .batch_size(config.concurrency)
        .heartbeat_interval(config.heartbeat)
        .missed_heartbeats(config.missed_heartbeats)
        .emit_events(false);
    let (worker_id, concurrency, poll) = (
        config.worker_id.clone(),
        config.concurrency,
        config.poll_interval,
    );
    let monitor = Monitor::new()
        .register(move |restarts| {
            let backend = RedisStorage::<RunJob>::new(redis.clone())
                .with_config(queue_config.clone())
                .poll_with_interval(poll)
                .before_start(move |_| async move {
                    // A restart usually follows a Redis outage: do not spin.
                    if restarts > 0 {
                        tokio::time::sleep(Duration::from_secs(1)).await;
                    }
                    Ok(())
                });
            // A new name per incarnation: apalis refuses a name it still
            // believes alive.
            WorkerBuilder::new(format!("{worker_id}-{restarts}"))
                .backend(backend)
                .concurrency(concurrency)
                .data(Arc::clone(&pipeline))
                .build(pipeline::handle)
        })
        .should_restart(|worker, error| {
            tracing::warn!(worker = worker.name(), %error, "queue consumer failed; restarting");
            true
        })
        .shutdown_timeout(config.shutdown_timeout);
    tracing::info!(
        worker_id = %config.worker_id,
        languages = ?languages.iter().map(|l| l.id.as_str()).collect::<Vec<_>>(),
        %queue,
        concurrency = config.concurrency,
        "worker ready"
    );
    monitor
        .run_with_signal(async {
            shutdown_signal().await;
            tracing::info!("SIGTERM received: finishing in-flight runs, taking no new ones");
            Ok(())
        })
        .await
        .map_err(|e| anyhow::anyhow!("queue monitor: {e}"))?;

    reaper.abort();
    janitor.abort();
    announcer.stop().await;
    engine.shutdown().await;
    tracing::info!("stopped");
    Ok(())
}

fn init_tracing(config: &Config) {
    let filter = EnvFilter::try_new(&config.log_filter).unwrap_or_else(|_| EnvFilter::new("info"));
    let registry = tracing_subscriber::registry().with(filter);
    if config.log_json {
        registry
            .with(fmt::layer().json().flatten_event(true))
            .init();
    } else {
        registry.with(fmt::layer()).init();
    }
}

async fn shutdown_signal() {
    let mut terminate =
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(signal) => signal,
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
                return;
            }
        };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {},
        _ = terminate.recv() => {},
    }
}
