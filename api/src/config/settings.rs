//! The sections of the api's [`Config`](super::Config): one struct per
//! concern, each field documented with its variable and default.

use std::time::Duration;

use axum::http::HeaderValue;

use super::Secret;

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
    pub wait_max: Duration,
    /// `RUN_WORKER_GRACE` (`5m`): runs in a language some worker announced
    /// this recently are accepted (and queued) even while no worker is up —
    /// a rolling restart is not an outage. With no worker seen for longer,
    /// runs get 503 `no_workers`.
    pub worker_grace: Duration,
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
    pub idle_timeout: Duration,
    /// `SESSION_IDLE_SWEEP_INTERVAL` (default `60s`): how often to look.
    pub idle_sweep_interval: Duration,
    /// `SESSION_MIN_DURATION` (default `60s`) and `SESSION_MAX_DURATION`
    /// (default `24h`): the durations a session's clock may be set to.
    pub min_duration: Duration,
    pub max_duration: Duration,
    /// `SESSION_END_WARNING` (default `5m`): how long before a clock runs
    /// out the room gets its `session.ending` warning.
    pub end_warning: Duration,
    /// `SESSION_CLOCK_SWEEP_INTERVAL` (default `10s`): the longest a
    /// replica's clock sleeps without looking at the deadlines (it wakes at
    /// the earliest one, and when it starts a session or changes a clock).
    pub clock_sweep_interval: Duration,
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
    /// `JWT_ACCESS_SECRET` (required, at least [`MIN_SECRET_LEN`](super::MIN_SECRET_LEN) bytes).
    pub access_secret: Secret<String>,
    /// `JWT_REFRESH_SECRET` (required, at least [`MIN_SECRET_LEN`](super::MIN_SECRET_LEN) bytes, not
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
