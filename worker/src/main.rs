//! The `codecall-worker` binary: read the configuration, start, claim and
//! execute runs until SIGTERM or ctrl-c (finishing in-flight runs within
//! `WORKER_SHUTDOWN_TIMEOUT`). Exits 2 on a configuration error, and 1, with
//! a message saying what to fix, when a dependency is unreachable at
//! start-up. Everything else lives in the library ([`codecall_worker::startup`]).

use std::process::ExitCode;

use codecall_worker::{config::Config, startup::Application};
use tracing_subscriber::{EnvFilter, fmt, prelude::*};

#[tokio::main]
async fn main() -> ExitCode {
    let config = match Config::from_env() {
        Ok(config) => config,
        Err(e) => {
            // Tracing is configured from the config, so this goes to stderr directly.
            #[allow(clippy::print_stderr)]
            {
                eprintln!("codecall-worker: {e}");
            }
            return ExitCode::from(2);
        }
    };
    init_tracing(&config);
    // Listening from the start: a SIGTERM arriving while the worker starts
    // (or just after it said it is ready) stops it cleanly.
    let stop = shutdown_signal();

    let app = match Application::build(config).await {
        Ok(app) => app,
        Err(e) => {
            tracing::error!("codecall-worker stopped: {e:#}");
            return ExitCode::FAILURE;
        }
    };
    match app.run_until_stopped(stop).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!("codecall-worker stopped: {e:#}");
            ExitCode::FAILURE
        }
    }
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

/// Completes on ctrl-c or SIGTERM (what `docker stop` sends). Both are
/// listened for from the moment this is called, not when first polled.
fn shutdown_signal() -> impl Future<Output = ()> + Send + 'static {
    let terminate = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate());
    let ctrl_c = tokio::signal::ctrl_c();
    async move {
        match terminate {
            Ok(mut terminate) => {
                tokio::select! {
                    _ = ctrl_c => {},
                    _ = terminate.recv() => {},
                }
            }
            Err(_) => {
                let _ = ctrl_c.await;
            }
        }
    }
}
