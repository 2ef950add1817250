//! Start-up connections. Each is checked with a real round trip, bounded by
//! the configured timeout, so a misconfigured worker exits at once with a
//! message naming what is unreachable instead of idling without work.

use std::time::Duration;

use anyhow::{Context as _, anyhow};
use bollard::Docker;

/// What the Docker engine said about itself.
#[derive(Debug)]
pub struct EngineInfo {
    pub version: String,
    pub api_version: String,
}

/// Connects to PostgreSQL.
pub async fn postgres(url: &str, timeout: Duration) -> anyhow::Result<sqlx::PgPool> {
    sqlx::postgres::PgPoolOptions::new()
        .max_connections(8)
        .acquire_timeout(timeout)
        .connect(url)
        .await
        .context("cannot connect to PostgreSQL (DATABASE_URL)")
}

/// Connects to Redis and checks it answers `PING`.
pub async fn redis(url: &str, timeout: Duration) -> anyhow::Result<redis::aio::ConnectionManager> {
    let client = redis::Client::open(url).context("REDIS_URL is not a valid Redis URL")?;
    let config = redis::aio::ConnectionManagerConfig::new()
        .set_connection_timeout(Some(timeout))
        // Redis' 500 ms default turns a slow reply under load into a fatal error.
        .set_response_timeout(Some(Duration::from_secs(5)))
        .set_number_of_retries(1);
    let mut conn = tokio::time::timeout(
        timeout,
        redis::aio::ConnectionManager::new_with_config(client, config),
    )
    .await
    .map_err(|_| anyhow!("Redis did not answer within {timeout:?} (REDIS_URL)"))?
    .context("cannot connect to Redis (REDIS_URL)")?;
    let pong: String = redis::cmd("PING")
        .query_async(&mut conn)
        .await
        .context("Redis refused PING (REDIS_URL)")?;
    anyhow::ensure!(pong == "PONG", "unexpected PING reply from Redis: {pong}");
    Ok(conn)
}

/// Connects to the local Docker engine (or `DOCKER_HOST`), negotiating the
/// API version: the engine may be older than bollard's default (1.53).
pub async fn docker(timeout: Duration) -> anyhow::Result<(Docker, EngineInfo)> {
    let unreachable = "cannot reach the Docker engine (is the daemon running, and is \
                       /var/run/docker.sock or DOCKER_HOST reachable by this user?)";
    let docker = Docker::connect_with_local_defaults().context(unreachable)?;
    let docker = tokio::time::timeout(timeout, docker.negotiate_version())
        .await
        .map_err(|_| anyhow!("{unreachable}: no answer within {timeout:?}"))?
        .context(unreachable)?;
    let version = docker.version().await.context(unreachable)?;
    Ok((
        docker,
        EngineInfo {
            version: version.version.unwrap_or_default(),
            api_version: version.api_version.unwrap_or_default(),
        },
    ))
}

/// The OCI runtime sandboxes run under, as the engine knows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SandboxRuntime {
    /// `None`: the engine's default runtime.
    pub name: Option<String>,
    /// The runtime is gVisor (its binary is `runsc`).
    pub gvisor: bool,
}

/// Checks that `configured` (`SANDBOX_RUNTIME`) is registered with the
/// engine, and says whether it is gVisor. An unknown runtime is refused with
/// a message naming it: never a silent fall back to the default.
pub async fn sandbox_runtime(
    docker: &Docker,
    configured: Option<&str>,
) -> anyhow::Result<SandboxRuntime> {
    let info = docker
        .info()
        .await
        .context("cannot read the Docker engine's runtimes (docker info)")?;
    let runtimes = info.runtimes.unwrap_or_default();
    let name = configured
        .map(str::to_owned)
        .or(info.default_runtime)
        .unwrap_or_else(|| "runc".into());
    let Some(runtime) = runtimes.get(&name) else {
        let mut known: Vec<&str> = runtimes.keys().map(String::as_str).collect();
        known.sort_unstable();
        anyhow::bail!(
            "SANDBOX_RUNTIME is `{name}`, but the Docker engine has no runtime of that name \
             (it has: {}); register it in the engine's daemon.json (see the README, gVisor)",
            known.join(", ")
        );
    };
    let path = runtime.path.as_deref().unwrap_or(&name);
    Ok(SandboxRuntime {
        name: configured.map(str::to_owned),
        gvisor: std::path::Path::new(path)
            .file_name()
            .is_some_and(|f| f == "runsc"),
    })
}
