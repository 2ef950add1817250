//! Whether a run may be queued at all: the worker fleet can run its
//! language ([`Fleet`], from the `workers` rows) and the user and the queue
//! are within their quotas ([`check_quotas`]); and how long a `?wait=true`
//! caller may wait ([`wait_budget`]). Shared by the native API and the
//! compatibility doors.

use std::{collections::BTreeMap, time::Duration};

use run_contract::LanguageInfo;
use uuid::Uuid;

use crate::{
    error::{Error, Result},
    startup::ApiContext,
    validation::Problems,
};

/// `Retry-After` of a 503 `no_workers`.
const NO_WORKERS_RETRY_AFTER: Duration = Duration::from_secs(10);

/// What the worker fleet can run, from the `workers` table: the languages
/// of live workers, and those of workers seen within `RUN_WORKER_GRACE`
/// (a fleet restarting is not a fleet gone).
pub struct Fleet {
    pub live: BTreeMap<String, LanguageInfo>,
    pub recent: BTreeMap<String, LanguageInfo>,
}

pub async fn fleet(ctx: &ApiContext) -> Result<Fleet> {
    let rows = sqlx::query!(
        r#"SELECT languages, (expires_at > now() AND stopped_at IS NULL) AS "live!"
           FROM workers
           WHERE expires_at > now() OR heartbeat_at > now() - make_interval(secs => $1)"#,
        ctx.config.runs.worker_grace.as_secs_f64()
    )
    .fetch_all(&ctx.db)
    .await?;
    let mut fleet = Fleet {
        live: BTreeMap::new(),
        recent: BTreeMap::new(),
    };
    for row in rows {
        let languages: Vec<LanguageInfo> =
            serde_json::from_value(row.languages).unwrap_or_default();
        for language in languages {
            if row.live {
                fleet.live.insert(language.id.clone(), language.clone());
            }
            fleet.recent.insert(language.id.clone(), language);
        }
    }
    Ok(fleet)
}

impl Fleet {
    /// Whether a run in `language` may be queued: a live worker runs it, or
    /// one did within the grace period (it is queued and runs when a worker
    /// is back). No worker seen for longer than the grace → 503
    /// `no_workers`; a language no worker knows → 422.
    pub(crate) fn admit(&self, language: &str, problems: &mut Problems) -> Result<()> {
        if self.live.contains_key(language) || self.recent.contains_key(language) {
            return Ok(());
        }
        if self.recent.is_empty() {
            return Err(Error::Busy {
                code: "no_workers",
                message: "no worker is running; try again shortly".into(),
                retry_after: NO_WORKERS_RETRY_AFTER,
            });
        }
        let known: Vec<&str> = self.recent.keys().map(String::as_str).collect();
        problems.add(
            "language",
            format!("is not available; available: {}", known.join(", ")),
        );
        Ok(())
    }
}

#[allow(clippy::needless_pass_by_value)] // used as `map_err(unavailable)`
fn unavailable(e: redis::RedisError) -> Error {
    tracing::error!(error = %e, "redis unavailable");
    Error::Unavailable {
        code: "queue_unavailable",
        message: "the run queue is unavailable; try again shortly".into(),
    }
}

/// How long a `?wait=true` request may wait: `RUN_WAIT_MAX`, but answering
/// before the request timeout would cut the wait off with a 408.
pub(crate) fn wait_budget(ctx: &ApiContext) -> Duration {
    ctx.config.runs.wait_max.min(
        ctx.config
            .http
            .request_timeout
            .saturating_sub(Duration::from_secs(1)),
    )
}

/// 429 when the user would have more than `unfinished_cap` unfinished runs
/// with these `count` new ones, or start too many this minute; 503 when the
/// queue is over its depth. The native API's cap is
/// `RUN_MAX_CONCURRENT_PER_USER`; the compatibility doors' is
/// `RUN_MAX_BACKLOG_PER_USER` (their clients send batches).
pub(crate) async fn check_quotas(
    ctx: &ApiContext,
    user_id: Uuid,
    unfinished_cap: i64,
    count: i64,
) -> Result<()> {
    let limits = &ctx.config.runs;
    // One statement for every figure PostgreSQL holds: it is on the path of
    // every run.
    let counts = sqlx::query!(
        r#"SELECT count(*) FILTER (WHERE user_id = $1) AS "unfinished!",
                  count(*) FILTER (WHERE status = 'queued') AS "queued!",
                  (SELECT coalesce(sum(stored_bytes), 0)::bigint FROM runs
                   WHERE user_id = $1 AND purged_at IS NULL) AS "stored!"
           FROM runs WHERE status <> 'finished'"#,
        user_id
    )
    .fetch_one(&ctx.db)
    .await?;
    crate::retention::check_stored_bytes(ctx, counts.stored)?;
    let (unfinished, queued) = (counts.unfinished, counts.queued);
    if unfinished + count > unfinished_cap {
        return Err(Error::TooManyRequests {
            message: "too many runs in progress; wait for one to finish",
            retry_after: Duration::from_secs(1),
        });
    }
    let key = format!("{}runs-per-minute:{user_id}", ctx.config.redis.key_prefix);
    let mut redis = ctx.redis.clone();
    let (minute_count, ttl): (u32, i64) = redis::pipe()
        .atomic()
        .incr(&key, count)
        .cmd("EXPIRE")
        .arg(&key)
        .arg(60)
        .arg("NX")
        .ignore()
        .ttl(&key)
        .query_async(&mut redis)
        .await
        .map_err(unavailable)?;
    if minute_count > limits.max_per_minute {
        return Err(Error::TooManyRequests {
            message: "too many runs this minute",
            retry_after: Duration::from_secs(u64::try_from(ttl.max(1)).unwrap_or(60)),
        });
    }
    if queued + count > limits.queue_max_depth {
        return Err(Error::Unavailable {
            code: "queue_full",
            message: "the run queue is full; try again shortly".into(),
        });
    }
    Ok(())
}
