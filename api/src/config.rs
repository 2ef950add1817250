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
//! ([`run_contract::config::parse_duration`]).

use std::{fmt, net::IpAddr, str::FromStr, time::Duration};

use axum::http::HeaderValue;
pub use run_contract::config::Secret;
use run_contract::config::{DEFAULT_REDIS_KEY_PREFIX, parse_duration};

/// Shortest accepted JWT secret, in bytes. HS256 keys shorter than the hash
/// output (32 bytes) weaken the signature.
pub const MIN_SECRET_LEN: usize = 32;

/// JWT secrets that were ever published in this repository (deployment files,
/// examples, docs, including its history): anyone can sign tokens with them,
/// so the api refuses to start with one. A test scans the repository for
/// secret-looking JWT values and fails if one is missing here.
pub const PUBLISHED_SECRETS: &[&str] = &[
    // docker-compose.yml's former fallbacks.
    "dev-only-access-secret-not-for-production-0001",
    "dev-only-refresh-secret-not-for-production-0002",
    // The test harness's and the document benchmark's former fixed values.
    "test-access-secret-0123456789abcdef0123456789",
    "test-refresh-secret-0123456789abcdef012345678",
    "bench-access-secret-0123456789abcdef0123456789",
    "bench-refresh-secret-0123456789abcdef012345678",
];

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

/// Interview feedback.
#[derive(Debug, Clone)]
pub struct FeedbackSettings {
    /// `FEEDBACK_EDIT_WINDOW` (default `7d`): feedback can be written and
    /// changed for this long after its session ended, then it is frozen.
    pub edit_window: Duration,
}

/// How long run bodies are kept and how much each user may store.
#[derive(Debug, Clone)]
pub struct RetentionSettings {
    /// `RUN_RETENTION` (default `30d`): a finished run older than this loses
    /// its body (files, stdin, arguments, tests, outputs); its verdict row stays.
    pub run_retention: Duration,
    /// `RUN_RETENTION_SWEEP_INTERVAL` (default `1h`): how often to look.
    pub sweep_interval: Duration,
    /// `RUN_MAX_STORED_BYTES_PER_USER` (default 128 MiB): stored run bodies
    /// (not yet purged) a user may have; once they reach it, new runs get 409
    /// `run_storage_full`.
    pub max_stored_bytes_per_user: i64,
    /// `SESSION_HISTORY_RETENTION` (default `90d`): this long after a session
    /// ends, its edit history and role changes are deleted (swept every
    /// `RUN_RETENTION_SWEEP_INTERVAL`).
    pub history_retention: Duration,
    /// `SESSION_HISTORY_MAX_BYTES` (default 16 MiB): a session's edit
    /// history over this is folded, oldest edits first, into a checkpoint.
    pub history_max_bytes: i64,
}

/// Code-run limits: defaults a request gets, maxima it may ask for (over a
/// maximum: 422), and per-user quotas.
#[derive(Debug, Clone)]
pub struct RunSettings {
    /// `RUN_DEFAULT_TIME_MS` (5000) / `RUN_MAX_TIME_MS` (15000): wall time per execution.
    pub default_time_ms: u32,
    pub max_time_ms: u32,
    /// `RUN_DEFAULT_MEMORY_MB` (256) / `RUN_MAX_MEMORY_MB` (1024).
    pub default_memory_mb: u32,
    pub max_memory_mb: u32,
    /// `RUN_MAX_SOURCE_BYTES` (256 KiB, all files together).
    pub max_source_bytes: usize,
    /// `RUN_MAX_STDIN_BYTES` (1 MiB, per execution).
    pub max_stdin_bytes: usize,
    /// `RUN_MAX_TESTS` (50) and `RUN_MAX_TESTS_BYTES` (8 MiB: all tests' stdin
    /// and expected output together).
    pub max_tests: usize,
    pub max_tests_bytes: usize,
    /// `RUN_MAX_CONCURRENT_PER_USER` (3): unfinished runs a user may have.
    pub max_concurrent_per_user: i64,
    /// `RUN_MAX_PER_MINUTE` (20): runs a user may start per minute.
    pub max_per_minute: u32,
    /// `RUN_QUEUE_MAX_DEPTH` (1000): queued runs over which new ones get 503.
    pub queue_max_depth: i64,
    /// `RUN_WAIT_MAX` (`30s`): how long `?wait=true` waits before answering
    /// with the current state (at most a second less than `REQUEST_TIMEOUT`,
    /// so the wait is never cut off by a 408).
    pub wait_max: std::time::Duration,
    /// `RUN_WORKER_GRACE` (`5m`): runs in a language some worker announced
    /// this recently are accepted (and queued) even while no worker is up —
    /// a rolling restart is not an outage. With no worker seen for longer,
    /// runs get 503 `no_workers`.
    pub worker_grace: std::time::Duration,
}

/// Personal API tokens.
#[derive(Debug, Clone)]
pub struct ApiTokenSettings {
    /// `API_TOKENS_MAX_PER_USER` (20): unrevoked, unexpired tokens a user may hold.
    pub max_per_user: i64,
}

/// The Judge0 and Piston compatibility doors.
#[derive(Debug, Clone)]
pub struct CompatSettings {
    /// `RUN_MAX_BACKLOG_PER_USER` (40): unfinished runs a user may have when
    /// submitting through the compatibility doors (a Judge0 batch is 20).
    /// Runs over `RUN_MAX_CONCURRENT_PER_USER` wait in the queue: workers
    /// execute at most `WORKER_MAX_RUNNING_PER_USER` of one user's runs at once.
    pub max_backlog_per_user: i64,
    /// `JUDGE0_MAX_BATCH_SIZE` (20): submissions per Judge0 batch.
    pub max_batch_size: usize,
    /// `CALLBACKS_ENABLED` (true): whether Judge0 `callback_url` is accepted.
    pub callbacks_enabled: bool,
    /// `CALLBACK_TIMEOUT` (`5s`): each HTTP request of a callback attempt
    /// (every redirect hop gets its own), connect to answer.
    pub callback_timeout: Duration,
    /// `CALLBACK_MAX_TRIES` (3): attempts per callback (1 s, 2 s … apart).
    pub callback_max_tries: u32,
    /// `CALLBACK_ALLOWED_HOSTS` (empty): host names or IP addresses a
    /// callback may go to even though they resolve to a non-public address
    /// (loopback, private, link-local and the others `compat::ssrf` refuses:
    /// an operator's internal receiver). Every other callback to such an
    /// address is refused.
    pub callback_allowed_hosts: Vec<String>,
}

#[derive(Debug, Clone)]
pub struct SessionSettings {
    /// `SESSION_MEMBER_CAP` (default 8): members per session, host included.
    pub member_cap: i64,
    /// `SESSION_IDLE_TIMEOUT` (default `2h`): a live session with no activity
    /// for this long is ended automatically.
    pub idle_timeout: std::time::Duration,
    /// `SESSION_IDLE_SWEEP_INTERVAL` (default `60s`): how often to look.
    pub idle_sweep_interval: std::time::Duration,
    /// `SESSION_MIN_DURATION` (default `60s`) and `SESSION_MAX_DURATION`
    /// (default `24h`): the durations a session's clock may be set to.
    pub min_duration: std::time::Duration,
    pub max_duration: std::time::Duration,
    /// `SESSION_END_WARNING` (default `5m`): how long before a clock runs
    /// out the room gets its `session.ending` warning.
    pub end_warning: std::time::Duration,
    /// `SESSION_CLOCK_SWEEP_INTERVAL` (default `10s`): the longest a
    /// replica's clock sleeps without looking at the deadlines (it wakes at
    /// the earliest one, and when it starts a session or changes a clock).
    pub clock_sweep_interval: std::time::Duration,
}

/// Limits per user on the WebSockets (events and document), counted in Redis
/// so they hold across every socket and replica of the user.
#[derive(Debug, Clone)]
pub struct SocketSettings {
    /// `SOCKET_MAX_PER_USER` (default 16): open sockets (events and document
    /// together) one user may have across all sessions and replicas.
    pub max_per_user: u32,
    /// `SOCKET_MAX_PER_USER_SESSION` (default 8): the same within one session
    /// (a browser tab uses two).
    pub max_per_user_session: u32,
    /// `SOCKET_CHAT_PER_USER_PER_SECOND` (default 5, bursts of twice that):
    /// chat messages one user may send, all sockets together.
    pub chat_per_second: u32,
    /// `SOCKET_DOC_UPDATES_PER_USER_PER_SECOND` (default 100, bursts of twice
    /// that): document messages (sync and updates) one user may send.
    pub doc_updates_per_second: u32,
    /// `SOCKET_AWARENESS_PER_USER_PER_SECOND` (default 50, bursts of twice
    /// that): awareness messages (cursors, selections) one user may send.
    pub awareness_per_second: u32,
    /// `SOCKET_READ_BUFFER_BYTES` (default 1024, at least 256): each socket's
    /// read buffer, allocated when it opens. Client frames are small (a
    /// ping, a chat line, a keystroke's update); a larger one, up to the
    /// socket's frame limit, is read into a buffer grown for it.
    pub read_buffer_bytes: usize,
}

#[derive(Debug, Clone)]
pub struct DatabaseSettings {
    /// `DATABASE_URL` (required).
    pub url: Secret<String>,
    /// `DATABASE_MAX_CONNECTIONS` (default 10).
    pub max_connections: u32,
    /// `DATABASE_ACQUIRE_TIMEOUT` (default `3s`): how long a request waits for
    /// a connection before answering 503 `dependency_unavailable`.
    pub acquire_timeout: Duration,
}

#[derive(Debug, Clone)]
pub struct RedisSettings {
    /// `REDIS_URL` (default `redis://127.0.0.1:6379`).
    pub url: Secret<String>,
    /// `REDIS_KEY_PREFIX` (default `codecall:`): every key and channel starts
    /// with it, so several deployments (or tests) can share one Redis.
    pub key_prefix: String,
}

#[derive(Debug, Clone)]
pub struct JwtSettings {
    /// `JWT_ACCESS_SECRET` (required, at least [`MIN_SECRET_LEN`] bytes).
    pub access_secret: Secret<String>,
    /// `JWT_REFRESH_SECRET` (required, at least [`MIN_SECRET_LEN`] bytes, not
    /// equal to the access secret).
    pub refresh_secret: Secret<String>,
    /// `JWT_ACCESS_EXPIRES_IN` (default `15m`).
    pub access_ttl: Duration,
    /// `JWT_REFRESH_EXPIRES_IN` (default `7d`).
    pub refresh_ttl: Duration,
}

#[derive(Debug, Clone)]
pub struct HttpSettings {
    /// `REQUEST_TIMEOUT` (default `30s`): a request still running after this
    /// answers 408 `request_timeout`, so a slow client cannot hold a task.
    pub request_timeout: Duration,
    /// `BODY_LIMIT_BYTES` (default 16 MiB: a run's 256 KiB source, 1 MiB of
    /// stdin and 8 MiB of tests, with room for JSON escaping): the largest
    /// body any route accepts, and the limit of the routes that carry code and
    /// tests (runs, problems, the Judge0 and Piston doors). Larger bodies get
    /// 413; each field has its own, smaller limit (422).
    pub body_limit_bytes: usize,
    /// `AUTH_BODY_LIMIT_BYTES` (default 16 KiB, at most `BODY_LIMIT_BYTES`):
    /// `/auth/*`, `/api/auth/*` and `/api/users/*`, whose fields are all small.
    pub auth_body_limit_bytes: usize,
    /// `SMALL_BODY_LIMIT_BYTES` (default 64 KiB, at most `BODY_LIMIT_BYTES`):
    /// every other route (sessions, invites, friends, feedback, API tokens,
    /// admin, …).
    pub small_body_limit_bytes: usize,
    /// `CORS_ORIGINS`: comma-separated origins allowed to call the API from a
    /// browser. Empty (the default) allows none.
    pub cors_origins: Vec<HeaderValue>,
    /// `SHUTDOWN_GRACE` (default `10s`): how long in-flight requests get to
    /// finish after SIGTERM before the process exits anyway.
    pub shutdown_grace: Duration,
}

#[derive(Debug, Clone)]
pub struct AuthSettings {
    /// `PASSWORD_HASH_CONCURRENCY` (default: number of CPUs, 2 when that
    /// cannot be read): at most this many argon2 hashes run at once; each
    /// takes ~19 MiB and tens of ms of CPU.
    pub password_hash_concurrency: usize,
    /// Failed-login throttling, all counted over `LOGIN_THROTTLE_WINDOW`
    /// (default `15m`) in Redis, so the limits hold across replicas:
    /// `LOGIN_MAX_FAILURES_PER_ACCOUNT_ADDRESS` (default 5) locks one address
    /// out of one account; `LOGIN_MAX_FAILURES_PER_ACCOUNT` (default 20) locks
    /// the account from every address (distributed guessing);
    /// `LOGIN_MAX_FAILURES_PER_ADDRESS` (default 50) locks an address out of
    /// every account (password spraying).
    pub max_failures_per_account_address: u32,
    pub max_failures_per_account: u32,
    pub max_failures_per_address: u32,
    pub throttle_window: Duration,
    /// `TRUST_FORWARDED_FOR` (default false): take the client address from
    /// the last `X-Forwarded-For` entry (the one the trusted proxy appended;
    /// earlier entries are client-controlled). Only enable behind a proxy that
    /// sets it.
    pub trust_forwarded_for: bool,
    /// `REGISTER_MAX_PER_ADDRESS` (default 10) registrations from one client
    /// address per `REGISTER_THROTTLE_WINDOW` (default `1h`), counted in Redis.
    pub register_max_per_address: u32,
    pub register_window: Duration,
    /// `ADMIN_EMAILS`: comma-separated emails that get the `admin` role when
    /// they register or at start-up if they already exist.
    pub admin_emails: Vec<String>,
}

#[derive(Debug, Clone)]
pub struct LogSettings {
    /// `LOG_FORMAT`: `pretty` (default) or `json`.
    pub format: LogFormat,
    /// `RUST_LOG` (default `info`): a tracing `EnvFilter` directive.
    pub filter: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    Pretty,
    Json,
}

/// A configuration problem that stops start-up. The message names the variable.
#[derive(Debug, thiserror::Error)]
#[error("configuration error: {0}")]
pub struct ConfigError(String);

impl Config {
    /// Reads the process environment.
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_lookup(|name| std::env::var(name).ok())
    }

    /// Reads configuration through `lookup`, so tests can supply a map.
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let env = Env(&lookup);
        let access_secret = env.secret("JWT_ACCESS_SECRET")?;
        let refresh_secret = env.secret("JWT_REFRESH_SECRET")?;
        if access_secret.expose() == refresh_secret.expose() {
            return Err(ConfigError(
                "JWT_REFRESH_SECRET must differ from JWT_ACCESS_SECRET".into(),
            ));
        }
        let body_limit_bytes = env.parsed("BODY_LIMIT_BYTES", 16 * 1024 * 1024)?;
        Ok(Config {
            host: env.parsed("HOST", "0.0.0.0".parse().expect("valid literal"))?,
            port: env.parsed("PORT", 5000)?,
            database: DatabaseSettings {
                url: Secret::new(env.required_secret("DATABASE_URL")?),
                max_connections: env.parsed("DATABASE_MAX_CONNECTIONS", 10)?,
                acquire_timeout: env.duration("DATABASE_ACQUIRE_TIMEOUT", "3s")?,
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
                access_ttl: env.duration("JWT_ACCESS_EXPIRES_IN", "15m")?,
                refresh_ttl: env.duration("JWT_REFRESH_EXPIRES_IN", "7d")?,
            },
            http: HttpSettings {
                request_timeout: env.duration("REQUEST_TIMEOUT", "30s")?,
                body_limit_bytes,
                auth_body_limit_bytes: env
                    .parsed("AUTH_BODY_LIMIT_BYTES", 16 * 1024)?
                    .min(body_limit_bytes),
                small_body_limit_bytes: env
                    .parsed("SMALL_BODY_LIMIT_BYTES", 64 * 1024)?
                    .min(body_limit_bytes),
                cors_origins: env.cors_origins("CORS_ORIGINS")?,
                shutdown_grace: env.duration("SHUTDOWN_GRACE", "10s")?,
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
                throttle_window: env.duration("LOGIN_THROTTLE_WINDOW", "15m")?,
                trust_forwarded_for: env.parsed("TRUST_FORWARDED_FOR", false)?,
                register_max_per_address: env.parsed("REGISTER_MAX_PER_ADDRESS", 10)?,
                register_window: env.duration("REGISTER_THROTTLE_WINDOW", "1h")?,
                admin_emails: env
                    .list("ADMIN_EMAILS")
                    .into_iter()
                    .map(|e| e.to_lowercase())
                    .collect(),
            },
            sessions: SessionSettings {
                member_cap: env.parsed("SESSION_MEMBER_CAP", 8)?,
                idle_timeout: env.duration("SESSION_IDLE_TIMEOUT", "2h")?,
                idle_sweep_interval: env.duration("SESSION_IDLE_SWEEP_INTERVAL", "60s")?,
                min_duration: env.duration("SESSION_MIN_DURATION", "60s")?,
                max_duration: env.duration("SESSION_MAX_DURATION", "24h")?,
                end_warning: env.duration("SESSION_END_WARNING", "5m")?,
                clock_sweep_interval: env.duration("SESSION_CLOCK_SWEEP_INTERVAL", "10s")?,
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
                        return Err(ConfigError(
                            "SOCKET_READ_BUFFER_BYTES must be at least 256".into(),
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
                wait_max: env.duration("RUN_WAIT_MAX", "30s")?,
                worker_grace: env.duration("RUN_WORKER_GRACE", "5m")?,
            },
            api_tokens: ApiTokenSettings {
                max_per_user: env.parsed("API_TOKENS_MAX_PER_USER", 20)?,
            },
            compat: CompatSettings {
                max_backlog_per_user: env.parsed("RUN_MAX_BACKLOG_PER_USER", 40)?,
                max_batch_size: env.parsed("JUDGE0_MAX_BATCH_SIZE", 20)?,
                callbacks_enabled: env.parsed("CALLBACKS_ENABLED", true)?,
                callback_timeout: env.duration("CALLBACK_TIMEOUT", "5s")?,
                callback_max_tries: env.positive("CALLBACK_MAX_TRIES", 3)?,
                callback_allowed_hosts: env
                    .list("CALLBACK_ALLOWED_HOSTS")
                    .into_iter()
                    .map(|h| h.to_lowercase())
                    .collect(),
            },
            retention: RetentionSettings {
                run_retention: env.duration("RUN_RETENTION", "30d")?,
                sweep_interval: env.duration("RUN_RETENTION_SWEEP_INTERVAL", "1h")?,
                max_stored_bytes_per_user: env
                    .parsed("RUN_MAX_STORED_BYTES_PER_USER", 128 * 1024 * 1024)?,
                history_retention: env.duration("SESSION_HISTORY_RETENTION", "90d")?,
                history_max_bytes: env.parsed("SESSION_HISTORY_MAX_BYTES", 16 * 1024 * 1024)?,
            },
            feedback: FeedbackSettings {
                edit_window: env.duration("FEEDBACK_EDIT_WINDOW", "7d")?,
            },
            log: LogSettings {
                format: match env.string("LOG_FORMAT", "pretty").as_str() {
                    "pretty" => LogFormat::Pretty,
                    "json" => LogFormat::Json,
                    other => {
                        return Err(ConfigError(format!(
                            "LOG_FORMAT must be `pretty` or `json`, got `{other}`"
                        )));
                    }
                },
                filter: env.string("RUST_LOG", "info"),
            },
        })
    }
}

/// Typed accessors over a lookup function; every error names the variable.
struct Env<'a>(&'a dyn Fn(&str) -> Option<String>);

impl Env<'_> {
    fn get(&self, name: &str) -> Option<String> {
        (self.0)(name).filter(|v| !v.trim().is_empty())
    }

    fn string(&self, name: &str, default: &str) -> String {
        self.get(name).unwrap_or_else(|| default.to_owned())
    }

    /// A secret given either as `name` or as `<name>_FILE` (a path whose
    /// contents, without the trailing newline, are the value); both is an error.
    fn secret_value(&self, name: &str) -> Result<Option<String>, ConfigError> {
        let file_var = format!("{name}_FILE");
        match (self.get(name), self.get(&file_var)) {
            (Some(_), Some(_)) => Err(ConfigError(format!(
                "set either {name} or {file_var}, not both"
            ))),
            (Some(value), None) => Ok(Some(value)),
            (None, Some(path)) => {
                let contents = std::fs::read_to_string(path.trim()).map_err(|e| {
                    ConfigError(format!(
                        "{file_var} cannot be read (`{}`): {e}",
                        path.trim()
                    ))
                })?;
                let value = contents
                    .strip_suffix('\n')
                    .map(|v| v.strip_suffix('\r').unwrap_or(v))
                    .unwrap_or(&contents);
                if value.trim().is_empty() {
                    return Err(ConfigError(format!(
                        "{file_var} names an empty file (`{}`)",
                        path.trim()
                    )));
                }
                Ok(Some(value.to_owned()))
            }
            (None, None) => Ok(None),
        }
    }

    fn required_secret(&self, name: &str) -> Result<String, ConfigError> {
        self.secret_value(name)?
            .ok_or_else(|| ConfigError(format!("{name} (or {name}_FILE) is required but not set")))
    }

    fn secret(&self, name: &str) -> Result<Secret<String>, ConfigError> {
        let value = self.required_secret(name)?;
        if value.len() < MIN_SECRET_LEN {
            return Err(ConfigError(format!(
                "{name} is too weak: use at least {MIN_SECRET_LEN} random bytes \
                 (e.g. `openssl rand -hex 32`)"
            )));
        }
        if PUBLISHED_SECRETS.contains(&value.as_str()) {
            return Err(ConfigError(format!(
                "{name} is a value published in the CodeCall repository, so anyone can \
                 sign tokens with it: generate your own (e.g. `openssl rand -hex 32`)"
            )));
        }
        Ok(Secret::new(value))
    }

    fn parsed<T: FromStr>(&self, name: &str, default: T) -> Result<T, ConfigError>
    where
        T::Err: fmt::Display,
    {
        match self.get(name) {
            None => Ok(default),
            Some(raw) => raw
                .trim()
                .parse()
                .map_err(|e| ConfigError(format!("{name} is invalid: {e}"))),
        }
    }

    /// A count or rate that must be at least 1.
    fn positive(&self, name: &str, default: u32) -> Result<u32, ConfigError> {
        match self.parsed(name, default)? {
            0 => Err(ConfigError(format!("{name} must be at least 1"))),
            n => Ok(n),
        }
    }

    fn duration(&self, name: &str, default: &str) -> Result<Duration, ConfigError> {
        let raw = self.string(name, default);
        parse_duration(&raw).ok_or_else(|| {
            ConfigError(format!(
                "{name} is invalid: `{raw}` is not a duration like 30s, 15m, 12h or 7d"
            ))
        })
    }

    fn list(&self, name: &str) -> Vec<String> {
        self.get(name)
            .map(|raw| {
                raw.split(',')
                    .map(str::trim)
                    .filter(|s| !s.is_empty())
                    .map(str::to_owned)
                    .collect()
            })
            .unwrap_or_default()
    }

    fn cors_origins(&self, name: &str) -> Result<Vec<HeaderValue>, ConfigError> {
        self.list(name)
            .into_iter()
            .map(|origin| {
                HeaderValue::from_str(&origin)
                    .map_err(|_| ConfigError(format!("{name} has an invalid origin `{origin}`")))
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    fn lookup(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let map: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        move |k| map.get(k).cloned()
    }

    const A: &str = "access-secret-access-secret-access-secret";
    const R: &str = "refresh-secret-refresh-secret-refresh-secret";

    fn base() -> Vec<(&'static str, &'static str)> {
        vec![
            ("DATABASE_URL", "postgres://localhost/x"),
            ("JWT_ACCESS_SECRET", A),
            ("JWT_REFRESH_SECRET", R),
        ]
    }

    #[test]
    fn defaults_follow_the_seed() {
        let config = Config::from_lookup(lookup(&base())).expect("valid");
        assert_eq!(config.port, 5000);
        assert_eq!(config.jwt.access_ttl, Duration::from_secs(15 * 60));
        assert_eq!(config.jwt.refresh_ttl, Duration::from_secs(7 * 86_400));
        assert!(config.http.cors_origins.is_empty());
        assert_eq!(config.http.body_limit_bytes, 16 * 1024 * 1024);
        assert_eq!(config.http.auth_body_limit_bytes, 16 * 1024);
        assert_eq!(config.http.small_body_limit_bytes, 64 * 1024);
        assert_eq!(config.database.acquire_timeout, Duration::from_secs(3));
        assert_eq!(config.auth.register_max_per_address, 10);
        assert_eq!(
            config.retention.run_retention,
            Duration::from_secs(30 * 86_400)
        );
        assert_eq!(config.sockets.max_per_user, 16);
        assert_eq!(config.sockets.max_per_user_session, 8);
        assert_eq!(config.feedback.edit_window, Duration::from_secs(7 * 86_400));
        assert_eq!(config.sockets.read_buffer_bytes, 1024);
    }

    #[test]
    fn no_route_accepts_more_than_body_limit_bytes() {
        let mut pairs = base();
        pairs.push(("BODY_LIMIT_BYTES", "4096"));
        let config = Config::from_lookup(lookup(&pairs)).expect("valid");
        assert_eq!(config.http.auth_body_limit_bytes, 4096);
        assert_eq!(config.http.small_body_limit_bytes, 4096);
    }

    #[test]
    fn a_zero_socket_limit_is_refused() {
        let mut pairs = base();
        pairs.push(("SOCKET_CHAT_PER_USER_PER_SECOND", "0"));
        let err = Config::from_lookup(lookup(&pairs)).expect_err("zero");
        assert!(
            err.to_string().contains("SOCKET_CHAT_PER_USER_PER_SECOND"),
            "{err}"
        );
    }

    #[test]
    fn a_tiny_socket_read_buffer_is_refused() {
        let mut pairs = base();
        pairs.push(("SOCKET_READ_BUFFER_BYTES", "16"));
        let err = Config::from_lookup(lookup(&pairs)).expect_err("too small");
        assert!(
            err.to_string().contains("SOCKET_READ_BUFFER_BYTES"),
            "{err}"
        );
    }

    #[test]
    fn each_missing_required_variable_is_named() {
        for missing in ["DATABASE_URL", "JWT_ACCESS_SECRET", "JWT_REFRESH_SECRET"] {
            let pairs: Vec<_> = base().into_iter().filter(|(k, _)| *k != missing).collect();
            let err = Config::from_lookup(lookup(&pairs)).expect_err("must fail");
            assert!(err.to_string().contains(missing), "{err}");
        }
    }

    #[test]
    fn a_weak_or_reused_secret_is_refused() {
        let mut pairs = base();
        pairs[1] = ("JWT_ACCESS_SECRET", "your_access_secret");
        let err = Config::from_lookup(lookup(&pairs)).expect_err("weak");
        assert!(err.to_string().contains("JWT_ACCESS_SECRET"), "{err}");

        let mut pairs = base();
        pairs[2] = ("JWT_REFRESH_SECRET", A);
        let err = Config::from_lookup(lookup(&pairs)).expect_err("same");
        assert!(err.to_string().contains("JWT_REFRESH_SECRET"), "{err}");
    }

    #[test]
    fn published_secrets_are_refused() {
        for published in PUBLISHED_SECRETS {
            for (i, name) in [(1, "JWT_ACCESS_SECRET"), (2, "JWT_REFRESH_SECRET")] {
                let mut pairs = base();
                pairs[i] = (name, *published);
                let err = Config::from_lookup(lookup(&pairs)).expect_err("published");
                let message = err.to_string();
                assert!(
                    message.contains(name) && message.contains("published"),
                    "{message}"
                );
            }
        }
    }

    /// The values following `JWT_ACCESS_SECRET` / `JWT_REFRESH_SECRET` in
    /// `text` (`NAME=v`, `NAME: v`, `${NAME:-v}`, `("NAME", "v")`), long
    /// enough to pass the length check.
    fn published_values(text: &str) -> Vec<String> {
        let mut found = Vec::new();
        for name in ["JWT_ACCESS_SECRET", "JWT_REFRESH_SECRET"] {
            for (at, _) in text.match_indices(name) {
                let mut rest = &text[at + name.len()..];
                if rest.starts_with("_FILE") {
                    continue;
                }
                rest = rest.trim_start_matches(|c: char| {
                    c.is_whitespace() || matches!(c, '"' | '\'' | ':' | '=' | ',' | '(')
                });
                if let Some(inner) = rest.strip_prefix("${") {
                    match inner.split_once(":-") {
                        Some((_, default)) => rest = default,
                        None => continue,
                    }
                }
                let value: String = rest
                    .chars()
                    .take_while(|c| {
                        !c.is_whitespace() && !matches!(c, '"' | '\'' | '}' | ')' | ',' | '`' | '|')
                    })
                    .collect();
                if value.len() >= MIN_SECRET_LEN {
                    found.push(value);
                }
            }
        }
        found
    }

    #[test]
    fn secret_values_are_found_in_every_notation() {
        let a = "a".repeat(40);
        for text in [
            format!("JWT_ACCESS_SECRET={a}\n"),
            format!("      JWT_ACCESS_SECRET: ${{JWT_ACCESS_SECRET:-{a}}}\n"),
            format!("(\n    \"JWT_ACCESS_SECRET\",\n    \"{a}\",\n)"),
            format!("export JWT_REFRESH_SECRET='{a}'"),
        ] {
            assert!(published_values(&text).contains(&a), "{text}");
        }
        assert!(
            published_values("JWT_ACCESS_SECRET_FILE=/run/secrets/jwt-access-secret-0001")
                .is_empty()
        );
        assert!(published_values("| `JWT_ACCESS_SECRET` | required, ≥ 32 bytes |").is_empty());
    }

    /// Every file of the repository (no build output, no VCS data).
    fn repository_files(dir: &std::path::Path, out: &mut Vec<std::path::PathBuf>) {
        for entry in std::fs::read_dir(dir)
            .expect("readable directory")
            .flatten()
        {
            let path = entry.path();
            let name = entry.file_name().to_string_lossy().into_owned();
            if path.is_dir() {
                if !(name.starts_with('.') || name == "target" || name == "node_modules") {
                    repository_files(&path, out);
                }
            } else {
                out.push(path);
            }
        }
    }

    #[test]
    fn every_secret_published_in_the_repository_is_refused() {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
        let mut files = Vec::new();
        repository_files(&root, &mut files);
        assert!(files.iter().any(|f| f.ends_with("docker-compose.yml")));
        let mut unlisted = Vec::new();
        for file in &files {
            let Ok(text) = std::fs::read_to_string(file) else {
                continue; // not text
            };
            for value in published_values(&text) {
                if !PUBLISHED_SECRETS.contains(&value.as_str()) {
                    unlisted.push(format!("{}: {value}", file.display()));
                }
            }
        }
        assert!(
            unlisted.is_empty(),
            "JWT secrets published in the repository but not refused (add them to \
             PUBLISHED_SECRETS, and remove them from the file): {unlisted:#?}"
        );
    }

    #[test]
    fn debug_output_never_shows_secrets() {
        let config = Config::from_lookup(lookup(&base())).expect("valid");
        let printed = format!("{config:?}");
        assert!(!printed.contains(A) && !printed.contains(R));
        assert!(!printed.contains("postgres://localhost/x"));
    }

    #[test]
    fn durations_use_the_seed_notation() {
        assert_eq!(parse_duration("15m"), Some(Duration::from_secs(900)));
        assert_eq!(parse_duration("7d"), Some(Duration::from_secs(604_800)));
        assert_eq!(parse_duration("90"), Some(Duration::from_secs(90)));
        assert_eq!(parse_duration("250ms"), Some(Duration::from_millis(250)));
        assert_eq!(parse_duration("soon"), None);
        assert_eq!(parse_duration("5w"), None);
    }

    /// A file in the test's own temporary directory holding `contents`.
    fn secret_file(test: &str, name: &str, contents: &str) -> String {
        let dir =
            std::env::temp_dir().join(format!("codecall-config-{test}-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        let path = dir.join(name);
        std::fs::write(&path, contents).expect("write secret file");
        path.to_string_lossy().into_owned()
    }

    #[test]
    fn every_secret_can_come_from_a_file() {
        let access = secret_file("files", "access", &format!("{A}\n"));
        let refresh = secret_file("files", "refresh", R);
        let db = secret_file("files", "db", "postgres://from-file/x\r\n");
        let redis = secret_file("files", "redis", "redis://from-file:6379\n");
        let config = Config::from_lookup(lookup(&[
            ("JWT_ACCESS_SECRET_FILE", access.as_str()),
            ("JWT_REFRESH_SECRET_FILE", refresh.as_str()),
            ("DATABASE_URL_FILE", db.as_str()),
            ("REDIS_URL_FILE", redis.as_str()),
        ]))
        .expect("valid");
        assert_eq!(config.jwt.access_secret.expose(), A);
        assert_eq!(config.jwt.refresh_secret.expose(), R);
        assert_eq!(config.database.url.expose(), "postgres://from-file/x");
        assert_eq!(config.redis.url.expose(), "redis://from-file:6379");
    }

    #[test]
    fn a_secret_given_twice_or_unreadable_is_refused() {
        let access = secret_file("twice", "access", A);
        let mut pairs: Vec<(&str, &str)> = base();
        pairs.push(("JWT_ACCESS_SECRET_FILE", access.as_str()));
        let err = Config::from_lookup(lookup(&pairs)).expect_err("both set");
        let message = err.to_string();
        assert!(
            message.contains("JWT_ACCESS_SECRET") && message.contains("JWT_ACCESS_SECRET_FILE"),
            "{message}"
        );

        let mut pairs: Vec<(&str, &str)> = base()
            .into_iter()
            .filter(|(k, _)| *k != "DATABASE_URL")
            .collect();
        pairs.push(("DATABASE_URL_FILE", "/nonexistent/codecall/db-url"));
        let err = Config::from_lookup(lookup(&pairs)).expect_err("unreadable");
        assert!(err.to_string().contains("DATABASE_URL_FILE"), "{err}");

        let empty = secret_file("twice", "empty", "\n");
        let mut pairs: Vec<(&str, &str)> = base()
            .into_iter()
            .filter(|(k, _)| *k != "JWT_REFRESH_SECRET")
            .collect();
        pairs.push(("JWT_REFRESH_SECRET_FILE", empty.as_str()));
        let err = Config::from_lookup(lookup(&pairs)).expect_err("empty");
        assert!(err.to_string().contains("JWT_REFRESH_SECRET_FILE"), "{err}");
    }

    #[test]
    fn a_weak_secret_from_a_file_is_refused_too() {
        let weak = secret_file("weak", "access", "short\n");
        let mut pairs: Vec<(&str, &str)> = base()
            .into_iter()
            .filter(|(k, _)| *k != "JWT_ACCESS_SECRET")
            .collect();
        pairs.push(("JWT_ACCESS_SECRET_FILE", weak.as_str()));
        let err = Config::from_lookup(lookup(&pairs)).expect_err("weak");
        assert!(err.to_string().contains("JWT_ACCESS_SECRET"), "{err}");
    }

    #[test]
    fn an_invalid_number_names_its_variable() {
        let mut pairs = base();
        pairs.push(("PORT", "eighty"));
        let err = Config::from_lookup(lookup(&pairs)).expect_err("invalid");
        assert!(err.to_string().contains("PORT"), "{err}");
    }
}
