//! The `codecall-api` binary: read the configuration, start, serve until
//! SIGTERM or ctrl-c. Everything else lives in the library.

use std::process::ExitCode;

use codecall_api::{config::Config, startup::Application, telemetry};

/// jemalloc with its background thread gives memory back to the system a few
/// seconds after a burst of sockets closes, even while the api is idle (the
/// README's *Sockets at scale* measured it against mimalloc, which keeps
/// freed pages until the thread that owns them allocates again). Features
/// pick another: `--no-default-features --features mimalloc`, or
/// `--no-default-features` for the system allocator.
#[cfg(all(feature = "mimalloc", not(feature = "jemalloc")))]
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;
#[cfg(feature = "jemalloc")]
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

#[tokio::main]
async fn main() -> ExitCode {
    let config = match Config::from_env() {
        Ok(config) => config,
        Err(e) => {
            // Tracing is configured from the config, so this goes to stderr directly.
            #[allow(clippy::print_stderr)]
            {
                eprintln!("codecall-api: {e}");
            }
            return ExitCode::from(2);
        }
    };
    telemetry::init(&config.log);

    let app = match Application::build(config).await {
        Ok(app) => app,
        Err(e) => {
            tracing::error!("start-up failed: {e:#}");
            return ExitCode::FAILURE;
        }
    };
    match app.run_until_stopped(shutdown_signal()).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!("server error: {e}");
            ExitCode::FAILURE
        }
    }
}

/// Completes on ctrl-c or SIGTERM (what `docker stop` sends).
async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending().await,
        }
    };
    tokio::select! {
        () = ctrl_c => {},
        () = terminate => {},
    }
}
