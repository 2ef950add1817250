//! The `codecall-worker` binary: connect to Redis and Docker, then serve run
//! jobs until SIGTERM. Exits non-zero, with a message saying what to fix,
//! when a dependency is unreachable at start-up.

use std::process::ExitCode;

use codecall_worker::{config::Config, connect, sandbox};
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
    let _redis = connect::redis(&config.redis_url, config.startup_timeout).await?;
    tracing::info!("connected to Redis");
    let (docker, engine) = connect::docker(config.startup_timeout).await?;
    tracing::info!(
        engine_version = %engine.version,
        engine_api_version = %engine.api_version,
        "connected to the Docker engine"
    );
    // Leftovers of a crashed worker go first, then every JANITOR_INTERVAL.
    let janitor = sandbox::janitor::spawn(docker.clone(), sandbox::janitor::INTERVAL);
    let manifest = sandbox::manifest::Manifest::load(config.languages_manifest.as_deref())?;
    let engine = sandbox::Engine::new(
        docker,
        manifest,
        sandbox::EngineConfig {
            worker_id: config.worker_id.clone(),
            ..sandbox::EngineConfig::default()
        },
    );
    let languages: Vec<String> = engine
        .available_languages()
        .await
        .into_iter()
        .map(|l| l.id)
        .collect();
    tracing::info!(
        worker_id = %config.worker_id,
        ?languages,
        queue = run_contract::RUN_QUEUE,
        "worker ready"
    );
    shutdown_signal().await;
    janitor.abort();
    engine.shutdown().await;
    tracing::info!("SIGTERM received: stopping");
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
