//! The worker's wiring, in one place the binary and the tests share:
//! [`Application::build`] connects to PostgreSQL (applying migrations), Redis
//! and the Docker engine, checks the sandbox runtime and images, and starts
//! the background tasks (janitor, heartbeat, stuck-run reaper);
//! [`Application::run_until_stopped`] claims and executes runs until its
//! stop signal, then finishes the runs in flight (within
//! `WORKER_SHUTDOWN_TIMEOUT`) and cleans up. The binary passes SIGTERM as the
//! stop signal; tests pass whatever they like, so they run the whole worker
//! in-process.

use std::{future::Future, sync::Arc};

use anyhow::Context as _;
use sqlx::PgPool;
use tokio::task::JoinHandle;

use crate::{
    config::Config,
    connect,
    dispatch::Dispatcher,
    pipeline::Pipeline,
    presence::{self, Announcer},
    prometheus, reaper,
    sandbox::{self, Engine},
};

/// A worker connected to its dependencies, announced, and ready to claim runs.
pub struct Application {
    config: Config,
    engine: Arc<Engine>,
    pipeline: Arc<Pipeline>,
    /// The ids of the languages this worker can run (those whose sandbox
    /// image the engine has).
    languages: Vec<String>,
    announcer: Announcer,
    janitor: Background,
    reaper: Background,
}

/// A background task that ends when its handle is dropped: a start-up that
/// fails halfway, or an application dropped without running, leaves no
/// task behind.
struct Background(JoinHandle<()>);

impl Drop for Background {
    fn drop(&mut self) {
        self.0.abort();
    }
}

impl Application {
    /// Connects to everything the worker needs, each bounded by
    /// `STARTUP_TIMEOUT` and failing with a message naming what to fix, and
    /// announces the worker. The background tasks run from here on; runs
    /// are claimed only once [`Application::run_until_stopped`] is called.
    pub async fn build(config: Config) -> anyhow::Result<Self> {
        if config.metrics_port != 0 {
            prometheus::serve(config.metrics_port).await?;
        }
        let db = connect::postgres(config.database_url.expose(), config.startup_timeout).await?;
        migrate(&db).await?;
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
        let janitor = Background(sandbox::janitor::spawn(
            docker.clone(),
            db.clone(),
            config.janitor_interval,
        ));
        let manifest = sandbox::manifest::Manifest::load(config.languages_manifest.as_deref())?;
        let engine = Engine::new(
            docker,
            manifest,
            sandbox::EngineConfig {
                worker_id: config.worker_id.clone(),
                pool_size: config.pool_size,
                pool_max: config.pool_max,
                pool_demand_window: config.pool_demand_window,
                start_concurrency: config.start_concurrency,
                runtime: config.sandbox_runtime.clone(),
                gvisor: runtime.gvisor,
                max_total_ms: u64::try_from(config.run_max_total_time.as_millis())
                    .unwrap_or(60_000),
                ..sandbox::EngineConfig::default()
            },
        );
        let languages = engine.available_languages().await;
        anyhow::ensure!(
            !languages.is_empty(),
            "no sandbox image is available on this Docker engine: build them with sandbox-images/build.sh"
        );
        engine.warm_up().await;

        let pipeline = Arc::new(Pipeline {
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
        .await
        .context("cannot announce the worker (DATABASE_URL)")?;
        let reaper = Background(reaper::spawn(
            db.clone(),
            config.stuck_after,
            reaper::REAP_INTERVAL,
        ));
        Ok(Application {
            languages: languages.into_iter().map(|l| l.id).collect(),
            config,
            engine,
            pipeline,
            announcer,
            janitor,
            reaper,
        })
    }

    /// This worker's id (`WORKER_ID`, or the generated one).
    pub fn worker_id(&self) -> &str {
        &self.config.worker_id
    }

    /// The ids of the languages this worker runs.
    pub fn languages(&self) -> &[String] {
        &self.languages
    }

    /// Claims and executes runs until `stop` completes; then takes no new
    /// run, lets the runs in flight finish (those still running after
    /// `WORKER_SHUTDOWN_TIMEOUT` are put back in the queue), marks the
    /// worker stopped and removes its warm containers.
    pub async fn run_until_stopped(
        self,
        stop: impl Future<Output = ()> + Send + 'static,
    ) -> anyhow::Result<()> {
        let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
        let signal = tokio::spawn(async move {
            stop.await;
            tracing::info!("stopping: finishing in-flight runs, taking no new ones");
            let _ = stop_tx.send(true);
        });
        let dispatcher = Dispatcher {
            pipeline: Arc::clone(&self.pipeline),
            languages: self.languages.clone(),
            concurrency: self.config.concurrency,
            recheck: self.config.recheck_interval,
            shutdown_timeout: self.config.shutdown_timeout,
        };
        tracing::info!(
            worker_id = %self.config.worker_id,
            languages = ?self.languages,
            concurrency = self.config.concurrency,
            "worker ready"
        );
        let dispatched = dispatcher
            .run(self.config.database_url.expose(), stop_rx)
            .await;

        signal.abort();
        drop(self.reaper);
        drop(self.janitor);
        self.announcer.stop().await;
        self.engine.shutdown().await;
        tracing::info!("stopped");
        dispatched
    }
}

/// Applies the migrations. The api applies the same ones; whichever starts
/// first does it (sqlx serialises them with an advisory lock), so start
/// order is free. Migrations newer than this binary are fine: during a
/// rolling deploy an older worker runs against a schema its successors
/// already extended.
async fn migrate(db: &PgPool) -> anyhow::Result<()> {
    let mut migrator = sqlx::migrate!("../migrations");
    migrator.set_ignore_missing(true);
    migrator
        .run(db)
        .await
        .map_err(|e| anyhow::anyhow!("applying database migrations failed: {e}"))
}
