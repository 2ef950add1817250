//! The `codecall-worker` binary: connect to PostgreSQL, Redis and Docker,
//! then claim and execute runs until SIGTERM (finishing in-flight runs within
//! `WORKER_SHUTDOWN_TIMEOUT`). Exits non-zero, with a message saying what to
//! fix, when a dependency is unreachable at start-up.

use std::{process::ExitCode, sync::Arc, time::Duration};

use codecall_worker::{config::Config, connect, dispatch, pipeline, presence, prometheus, sandbox};
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
    let db = connect::postgres(config.database_url.expose(), config.startup_timeout).await?;
    // The api applies the same migrations; whichever starts first does it
    // (sqlx serialises them with an advisory lock), so start order is free.
    // Migrations newer than this binary are fine: during a rolling deploy an
    // older worker runs against a schema its successors already extended.
    let mut migrator = sqlx::migrate!("../migrations");
    migrator.set_ignore_missing(true);
    migrator
        .run(&db)
        .await
        .map_err(|e| anyhow::anyhow!("applying database migrations failed: {e}"))?;
    tracing::info!("connected to PostgreSQL");
    let redis = connect::redis(config.redis_url.expose(), config.startup_timeout).await?;
    tracing::info!("connected to Redis");
    let (docker, engine_info) = connect::docker(config.startup_timeout).await?;
    tracing::info!(
        engine_version = %engine_info.version,
        engine_api_version = %engine_info.api_version,
        "connected to the Docker engine"
    );
    let runtime = connect::sandbox_runtime(&docker, config.sandbox_runtime.as_deref()).await?;
    // Leftovers of a crashed worker go first, then every janitor interval.
    let janitor = sandbox::janitor::spawn(docker.clone(), db.clone(), config.janitor_interval);
    let manifest = sandbox::manifest::Manifest::load(config.languages_manifest.as_deref())?;
    let engine = sandbox::Engine::new(
        docker,
        manifest,
        sandbox::EngineConfig {
            worker_id: config.worker_id.clone(),
            pool_size: config.pool_size,
            pool_max: config.pool_max,
            pool_demand_window: config.pool_demand_window,
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
        redis,
        engine: Arc::clone(&engine),
        key_prefix: config.key_prefix.clone(),
        worker_id: config.worker_id.clone(),
        max_attempts: config.max_attempts,
        max_running_per_user: config.max_running_per_user,
        lease: config.lease,
        running: Default::default(),
        done: Default::default(),
    });
    let announcer = presence::spawn(
        db.clone(),
        presence::Announcement::new(&config, &languages),
        Arc::clone(&pipeline),
        config.heartbeat,
    )
    .await?;
    // The last resort: the lease makes runs of dead workers run again, so
    // this only ends what is still unfinished long after any run could be.
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

    let dispatcher = dispatch::Dispatcher {
        pipeline: Arc::clone(&pipeline),
        languages: languages.iter().map(|l| l.id.clone()).collect(),
        concurrency: config.concurrency,
        recheck: config.recheck_interval,
        shutdown_timeout: config.shutdown_timeout,
    };
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    tokio::spawn(async move {
        shutdown_signal().await;
        tracing::info!("SIGTERM received: finishing in-flight runs, taking no new ones");
        let _ = stop_tx.send(true);
    });
    tracing::info!(
        worker_id = %config.worker_id,
        languages = ?languages.iter().map(|l| l.id.as_str()).collect::<Vec<_>>(),
        concurrency = config.concurrency,
        "worker ready"
    );
    dispatcher
        .run(config.database_url.expose(), stop_rx)
        .await?;

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
