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

/// Connects to the local Docker engine (`/var/run/docker.sock`, or the
/// `unix://` socket `DOCKER_HOST` names; other `DOCKER_HOST` schemes are
/// ignored), negotiating the API version: the engine may be older than
/// bollard's default (1.53).
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
    let gvisor = std::path::Path::new(path)
        .file_name()
        .is_some_and(|f| f == "runsc");
    if !gvisor {
        let profile = seccomp_profile(info.security_options.as_deref().unwrap_or_default())?;
        if profile != SeccompProfile::Default {
            tracing::warn!(
                ?profile,
                "the Docker engine filters sandbox syscalls with its own seccomp profile, \
                 not the engine's default"
            );
        }
    }
    Ok(SandboxRuntime {
        name: configured.map(str::to_owned),
        gvisor,
    })
}

/// The seccomp profile the engine applies to containers that name none (the
/// sandboxes name none, and nothing turns it off: `container::create_body`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SeccompProfile {
    /// The engine's built-in default profile (an allow-list of syscalls).
    Default,
    /// An operator's profile set in the engine's `daemon.json`.
    Custom(String),
}

/// Reads the seccomp entry of the engine's security options (`docker info`:
/// `name=seccomp,profile=default`). Under runc a sandbox without a syscall
/// filter is refused: an engine built without seccomp, or one whose default
/// is `unconfined`, would run strangers' code with every syscall open. (Under
/// gVisor the Sentry filters the host syscalls itself, so this is not asked.)
pub fn seccomp_profile(security_options: &[String]) -> anyhow::Result<SeccompProfile> {
    let entry = security_options.iter().find_map(|option| {
        let mut fields = option.split(',');
        (fields.next() == Some("name=seccomp")).then(|| {
            fields
                .find_map(|f| f.strip_prefix("profile="))
                .unwrap_or("")
        })
    });
    match entry {
        None => anyhow::bail!(
            "the Docker engine reports no seccomp support (docker info: SecurityOptions \
             {security_options:?}); sandboxes would run without a syscall filter"
        ),
        Some("unconfined") => anyhow::bail!(
            "the Docker engine's default seccomp profile is `unconfined`; sandboxes would \
             run without a syscall filter (remove `seccomp-profile` from daemon.json)"
        ),
        // `builtin` is how newer engines name the same default.
        Some("default" | "builtin" | "") => Ok(SeccompProfile::Default),
        Some(custom) => Ok(SeccompProfile::Custom(custom.to_owned())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn options(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| (*s).to_owned()).collect()
    }

    #[test]
    fn the_engines_default_seccomp_profile_is_recognised() {
        let list = options(&[
            "name=apparmor",
            "name=seccomp,profile=default",
            "name=cgroupns",
        ]);
        assert_eq!(seccomp_profile(&list).unwrap(), SeccompProfile::Default);
        let newer = options(&["name=seccomp,profile=builtin"]);
        assert_eq!(seccomp_profile(&newer).unwrap(), SeccompProfile::Default);
    }

    #[test]
    fn an_engine_without_a_syscall_filter_is_refused() {
        assert!(seccomp_profile(&options(&["name=apparmor"])).is_err());
        assert!(seccomp_profile(&options(&["name=seccomp,profile=unconfined"])).is_err());
    }

    #[test]
    fn an_operators_profile_is_named() {
        let list = options(&["name=seccomp,profile=/etc/docker/strict.json"]);
        assert_eq!(
            seccomp_profile(&list).unwrap(),
            SeccompProfile::Custom("/etc/docker/strict.json".into())
        );
    }
}
