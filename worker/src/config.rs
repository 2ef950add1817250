//! The worker's typed configuration, read once from the environment.
//! `.env.example` lists every variable.

use std::time::Duration;

#[derive(Debug, Clone)]
pub struct Config {
    /// `REDIS_URL` (default `redis://127.0.0.1:6379`): the job queue and the
    /// rooms' pub/sub.
    pub redis_url: String,
    /// `WORKER_ID` (default: host name plus a random suffix). apalis refuses a
    /// restart under a name still marked alive, so the default is unique per start.
    pub worker_id: String,
    /// `STARTUP_TIMEOUT` (default `10s`): how long Redis and Docker each get
    /// to answer at start-up before the worker gives up with a non-zero exit.
    pub startup_timeout: Duration,
    /// `LANGUAGES_MANIFEST`: a language manifest file replacing the embedded
    /// `sandbox-images/languages.json`.
    pub languages_manifest: Option<String>,
    /// `LOG_FORMAT` (`pretty` | `json`) and `RUST_LOG` (default `info`).
    pub log_json: bool,
    pub log_filter: String,
    // The Docker engine is found the way the `docker` CLI finds it: `DOCKER_HOST`,
    // else the local socket (read by bollard itself).
}

impl Config {
    pub fn from_env() -> anyhow::Result<Self> {
        let var = |name: &str| std::env::var(name).ok().filter(|v| !v.trim().is_empty());
        let startup_timeout = match var("STARTUP_TIMEOUT") {
            None => Duration::from_secs(10),
            Some(raw) => parse_seconds(&raw).ok_or_else(|| {
                anyhow::anyhow!("STARTUP_TIMEOUT is invalid: `{raw}` is not like `10s`")
            })?,
        };
        let log_json = match var("LOG_FORMAT").as_deref() {
            None | Some("pretty") => false,
            Some("json") => true,
            Some(other) => anyhow::bail!("LOG_FORMAT must be `pretty` or `json`, got `{other}`"),
        };
        Ok(Config {
            redis_url: var("REDIS_URL").unwrap_or_else(|| "redis://127.0.0.1:6379".into()),
            worker_id: var("WORKER_ID").unwrap_or_else(default_worker_id),
            startup_timeout,
            languages_manifest: var("LANGUAGES_MANIFEST"),
            log_json,
            log_filter: var("RUST_LOG").unwrap_or_else(|| "info".into()),
        })
    }
}

/// `10s` or `10`: whole seconds.
fn parse_seconds(raw: &str) -> Option<Duration> {
    let raw = raw.trim();
    raw.strip_suffix('s')
        .unwrap_or(raw)
        .parse()
        .ok()
        .map(Duration::from_secs)
}

fn default_worker_id() -> String {
    let host = std::fs::read_to_string("/etc/hostname")
        .map(|h| h.trim().to_owned())
        .unwrap_or_else(|_| "worker".into());
    let suffix = uuid::Uuid::new_v4().simple().to_string();
    format!("{host}-{}", &suffix[..8])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seconds_accept_a_suffix_or_none() {
        assert_eq!(parse_seconds("10s"), Some(Duration::from_secs(10)));
        assert_eq!(parse_seconds("3"), Some(Duration::from_secs(3)));
        assert_eq!(parse_seconds("ten"), None);
    }

    #[test]
    fn default_worker_ids_are_unique_per_start() {
        assert_ne!(default_worker_id(), default_worker_id());
    }
}
