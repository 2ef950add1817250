//! Typed configuration, read once from the environment at start-up.
//!
//! `PORT`, `DATABASE_URL` and the `JWT_*` variables keep the names and
//! defaults of the original Node backend, so its environment files still work.
//! The README's Configuration section documents every variable; `.env.example`
//! shows the common ones. Nothing else in the crate reads the environment.
//! Secrets are wrapped in [`Secret`] so they never reach a log line through
//! `Debug`. Each secret (`JWT_ACCESS_SECRET`, `JWT_REFRESH_SECRET`,
//! `DATABASE_URL`, `REDIS_URL`) may instead be given as `<NAME>_FILE`, the path
//! of a file holding it (Docker and Kubernetes secrets), so the value never
//! sits in the process environment. Durations are written as the worker's
//! ([`run_contract::config::parse_duration`]), and every variable is read
//! through the [`Env`] the worker uses too, so both report a wrong value the
//! same way ([`ConfigError`], naming the variable).
//!
//! - [`settings`]: the sections of [`Config`], each variable documented on
//!   its field.
//! - [`secrets`]: the JWT secrets' strength rules.

mod secrets;
mod settings;
#[cfg(test)]
mod tests;

use std::{net::IpAddr, time::Duration};

use axum::http::HeaderValue;
pub use run_contract::config::{ConfigError, Secret};
use run_contract::config::{DEFAULT_REDIS_KEY_PREFIX, Env};
pub use secrets::{MIN_SECRET_LEN, PUBLISHED_SECRETS};
pub use settings::*;

#[derive(Debug, Clone)]
pub struct Config {
    /// `HOST` (default `0.0.0.0`) and `PORT` (default 5000; 0 picks a free port).
    pub host: IpAddr,
    pub port: u16,
    pub database: DatabaseSettings,
    pub redis: RedisSettings,
    pub jwt: JwtSettings,
    pub http: HttpSettings,
    pub auth: AuthSettings,
    pub sessions: SessionSettings,
    pub sockets: SocketSettings,
    pub runs: RunSettings,
    pub api_tokens: ApiTokenSettings,
    pub compat: CompatSettings,
    pub retention: RetentionSettings,
    pub feedback: FeedbackSettings,
    pub log: LogSettings,
}

impl Config {
    /// Reads the process environment.
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_lookup(|name| std::env::var(name).ok())
    }

    /// Reads configuration through `lookup`, so tests can supply a map.
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let env = Env::new(&lookup);
        let access_secret = secrets::jwt_secret(&env, "JWT_ACCESS_SECRET")?;
        let refresh_secret = secrets::jwt_secret(&env, "JWT_REFRESH_SECRET")?;
        if access_secret.expose() == refresh_secret.expose() {
            return Err(ConfigError::new(
                "JWT_REFRESH_SECRET must differ from JWT_ACCESS_SECRET",
            ));
        }
        let body_limit_bytes = env.parsed("BODY_LIMIT_BYTES", 16 * 1024 * 1024)?;
        Ok(Config {
            host: env.parsed("HOST", "0.0.0.0".parse().expect("valid literal"))?,
            port: env.parsed("PORT", 5000)?,
            database: DatabaseSettings {
                url: Secret::new(env.required_secret("DATABASE_URL")?),
                max_connections: env.parsed("DATABASE_MAX_CONNECTIONS", 10)?,
                acquire_timeout: env
                    .duration("DATABASE_ACQUIRE_TIMEOUT", Duration::from_secs(3))?,
            },
            redis: RedisSettings {
                url: Secret::new(
                    env.secret_value("REDIS_URL")?
                        .unwrap_or_else(|| "redis://127.0.0.1:6379".to_owned()),
                ),
                key_prefix: env.string("REDIS_KEY_PREFIX", DEFAULT_REDIS_KEY_PREFIX),
            },
            jwt: JwtSettings {
                access_secret,
                refresh_secret,
                access_ttl: env.duration("JWT_ACCESS_EXPIRES_IN", Duration::from_secs(15 * 60))?,
                refresh_ttl: env
                    .duration("JWT_REFRESH_EXPIRES_IN", Duration::from_secs(7 * 86_400))?,
            },
            http: HttpSettings {
                request_timeout: env.duration("REQUEST_TIMEOUT", Duration::from_secs(30))?,
                body_limit_bytes,
                auth_body_limit_bytes: env
                    .parsed("AUTH_BODY_LIMIT_BYTES", 16 * 1024)?
                    .min(body_limit_bytes),
                small_body_limit_bytes: env
                    .parsed("SMALL_BODY_LIMIT_BYTES", 64 * 1024)?
                    .min(body_limit_bytes),
                cors_origins: cors_origins(&env, "CORS_ORIGINS")?,
                shutdown_grace: env.duration("SHUTDOWN_GRACE", Duration::from_secs(10))?,
            },
            auth: AuthSettings {
                password_hash_concurrency: env.parsed(
                    "PASSWORD_HASH_CONCURRENCY",
                    std::thread::available_parallelism().map_or(2, usize::from),
                )?,
                max_failures_per_account_address: env
                    .parsed("LOGIN_MAX_FAILURES_PER_ACCOUNT_ADDRESS", 5)?,
                max_failures_per_account: env.parsed("LOGIN_MAX_FAILURES_PER_ACCOUNT", 20)?,
                max_failures_per_address: env.parsed("LOGIN_MAX_FAILURES_PER_ADDRESS", 50)?,
                throttle_window: env
                    .duration("LOGIN_THROTTLE_WINDOW", Duration::from_secs(15 * 60))?,
                trust_forwarded_for: env.parsed("TRUST_FORWARDED_FOR", false)?,
                register_max_per_address: env.parsed("REGISTER_MAX_PER_ADDRESS", 10)?,
                register_window: env
                    .duration("REGISTER_THROTTLE_WINDOW", Duration::from_secs(3600))?,
                admin_emails: env
                    .list("ADMIN_EMAILS")
                    .into_iter()
                    .map(|e| e.to_lowercase())
                    .collect(),
            },
            sessions: SessionSettings {
                member_cap: env.parsed("SESSION_MEMBER_CAP", 8)?,
                idle_timeout: env
                    .duration("SESSION_IDLE_TIMEOUT", Duration::from_secs(2 * 3600))?,
                idle_sweep_interval: env
                    .duration("SESSION_IDLE_SWEEP_INTERVAL", Duration::from_secs(60))?,
                min_duration: env.duration("SESSION_MIN_DURATION", Duration::from_secs(60))?,
                max_duration: env
                    .duration("SESSION_MAX_DURATION", Duration::from_secs(24 * 3600))?,
                end_warning: env.duration("SESSION_END_WARNING", Duration::from_secs(5 * 60))?,
                clock_sweep_interval: env
                    .duration("SESSION_CLOCK_SWEEP_INTERVAL", Duration::from_secs(10))?,
            },
            sockets: SocketSettings {
                max_per_user: env.positive("SOCKET_MAX_PER_USER", 16)?,
                max_per_user_session: env.positive("SOCKET_MAX_PER_USER_SESSION", 8)?,
                chat_per_second: env.positive("SOCKET_CHAT_PER_USER_PER_SECOND", 5)?,
                doc_updates_per_second: env
                    .positive("SOCKET_DOC_UPDATES_PER_USER_PER_SECOND", 100)?,
                awareness_per_second: env.positive("SOCKET_AWARENESS_PER_USER_PER_SECOND", 50)?,
                read_buffer_bytes: match env.parsed("SOCKET_READ_BUFFER_BYTES", 1024)? {
                    n if n < 256 => {
                        return Err(ConfigError::new(
                            "SOCKET_READ_BUFFER_BYTES must be at least 256",
                        ));
                    }
                    n => n,
                },
            },
            runs: RunSettings {
                default_time_ms: env.parsed("RUN_DEFAULT_TIME_MS", 5_000)?,
                max_time_ms: env.parsed("RUN_MAX_TIME_MS", 15_000)?,
                default_memory_mb: env.parsed("RUN_DEFAULT_MEMORY_MB", 256)?,
                max_memory_mb: env.parsed("RUN_MAX_MEMORY_MB", 1024)?,
                max_source_bytes: env.parsed("RUN_MAX_SOURCE_BYTES", 256 * 1024)?,
                max_stdin_bytes: env.parsed("RUN_MAX_STDIN_BYTES", 1024 * 1024)?,
                max_tests: env.parsed("RUN_MAX_TESTS", 50)?,
                max_tests_bytes: env.parsed("RUN_MAX_TESTS_BYTES", 8 * 1024 * 1024)?,
                max_concurrent_per_user: env.parsed("RUN_MAX_CONCURRENT_PER_USER", 3)?,
                max_per_minute: env.parsed("RUN_MAX_PER_MINUTE", 20)?,
                queue_max_depth: env.parsed("RUN_QUEUE_MAX_DEPTH", 1000)?,
                wait_max: env.duration("RUN_WAIT_MAX", Duration::from_secs(30))?,
                worker_grace: env.duration("RUN_WORKER_GRACE", Duration::from_secs(5 * 60))?,
            },
            api_tokens: ApiTokenSettings {
                max_per_user: env.parsed("API_TOKENS_MAX_PER_USER", 20)?,
            },
            compat: CompatSettings {
                max_backlog_per_user: env.parsed("RUN_MAX_BACKLOG_PER_USER", 40)?,
                max_batch_size: env.parsed("JUDGE0_MAX_BATCH_SIZE", 20)?,
                callbacks_enabled: env.parsed("CALLBACKS_ENABLED", true)?,
                callback_timeout: env.duration("CALLBACK_TIMEOUT", Duration::from_secs(5))?,
                callback_max_tries: env.positive("CALLBACK_MAX_TRIES", 3)?,
                callback_allowed_hosts: env
                    .list("CALLBACK_ALLOWED_HOSTS")
                    .into_iter()
                    .map(|h| h.to_lowercase())
                    .collect(),
            },
            retention: RetentionSettings {
                run_retention: env.duration("RUN_RETENTION", Duration::from_secs(30 * 86_400))?,
                sweep_interval: env
                    .duration("RUN_RETENTION_SWEEP_INTERVAL", Duration::from_secs(3600))?,
                max_stored_bytes_per_user: env
                    .parsed("RUN_MAX_STORED_BYTES_PER_USER", 128 * 1024 * 1024)?,
                history_retention: env.duration(
                    "SESSION_HISTORY_RETENTION",
                    Duration::from_secs(90 * 86_400),
                )?,
                history_max_bytes: env.parsed("SESSION_HISTORY_MAX_BYTES", 16 * 1024 * 1024)?,
            },
            feedback: FeedbackSettings {
                edit_window: env
                    .duration("FEEDBACK_EDIT_WINDOW", Duration::from_secs(7 * 86_400))?,
            },
            log: LogSettings {
                format: match env.string("LOG_FORMAT", "pretty").as_str() {
                    "pretty" => LogFormat::Pretty,
                    "json" => LogFormat::Json,
                    other => {
                        return Err(ConfigError::new(format!(
                            "LOG_FORMAT must be `pretty` or `json`, got `{other}`"
                        )));
                    }
                },
                filter: env.string("RUST_LOG", "info"),
            },
        })
    }
}

/// `CORS_ORIGINS`-style list of origins, each a valid header value.
fn cors_origins(env: &Env<'_>, name: &str) -> Result<Vec<HeaderValue>, ConfigError> {
    env.list(name)
        .into_iter()
        .map(|origin| {
            HeaderValue::from_str(&origin)
                .map_err(|_| ConfigError::new(format!("{name} has an invalid origin `{origin}`")))
        })
        .collect()
}
