//! Run retention and the per-user storage cap.
//!
//! Every run keeps its inputs (files, stdin, arguments, tests) and outputs in
//! its row. Kept forever, that is unbounded storage paid for by whoever runs
//! the service, so:
//!
//! - [`spawn_sweeper`]: every `RUN_RETENTION_SWEEP_INTERVAL`, finished runs
//!   older than `RUN_RETENTION` lose their body — files, stdin, arguments and
//!   tests are emptied, and the result keeps its verdict, exit code, signal,
//!   time and memory (per test too) but not its outputs, whose
//!   `*Truncated` flags are set when there was output. `purged_at` records
//!   when. The verdict row stays for history and metrics.
//! - [`check_stored_bytes`]: a user whose unpurged runs already take
//!   `RUN_MAX_STORED_BYTES_PER_USER` cannot start another (409
//!   `run_storage_full`) until older ones are purged.
//!
//! - [`purge_old_history`]: in the same sweep, sessions that ended more
//!   than `SESSION_HISTORY_RETENTION` ago lose their edit history and role
//!   changes (the timeline's replay); `history_purged_at` records when.
//!
//! All are safe on every replica at once: the sweep takes rows with
//! `FOR UPDATE SKIP LOCKED` in bounded batches.

use std::time::Duration;

use sqlx::PgPool;

use crate::{
    error::{Error, Result},
    startup::ApiContext,
};

/// Runs purged per statement, so one sweep never holds many row locks.
const PURGE_BATCH: i64 = 500;

/// Purges old runs' bodies every `RUN_RETENTION_SWEEP_INTERVAL`, for as long
/// as the process runs.
pub fn spawn_sweeper(ctx: ApiContext) {
    let settings = ctx.config.retention.clone();
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(settings.sweep_interval);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            match purge_old_runs(&ctx.db, settings.run_retention).await {
                Ok(0) => {}
                Ok(purged) => tracing::info!(purged, "purged the bodies of old runs"),
                Err(e) => tracing::warn!(error = %e, "run retention sweep failed"),
            }
            match purge_old_history(&ctx.db, settings.history_retention).await {
                Ok(0) => {}
                Ok(purged) => tracing::info!(purged, "deleted the history of old sessions"),
                Err(e) => tracing::warn!(error = %e, "session history retention sweep failed"),
            }
        }
    });
}

/// Empties the body of every finished run older than `retention`; answers
/// how many were purged.
pub async fn purge_old_runs(db: &PgPool, retention: Duration) -> Result<u64> {
    let retention_secs = retention.as_secs_f64();
    let mut total = 0;
    loop {
        let purged = sqlx::query!(
            r#"
            UPDATE runs SET
                files = '[]', stdin = '\x', args = '[]', tests = '[]',
                result = CASE WHEN result IS NULL THEN NULL ELSE (result - 'stdoutBase64') || jsonb_build_object(
                    'stdout', '', 'stderr', '', 'compileOutput', NULL,
                    'stdoutTruncated', coalesce(result->>'stdout', '') <> ''
                        OR coalesce((result->>'stdoutTruncated')::boolean, false),
                    'stderrTruncated', coalesce(result->>'stderr', '') <> ''
                        OR coalesce((result->>'stderrTruncated')::boolean, false),
                    'tests', coalesce((
                        SELECT jsonb_agg(t || jsonb_build_object(
                            'stdout', '', 'stderr', '',
                            'stdoutTruncated', coalesce(t->>'stdout', '') <> ''
                                OR coalesce((t->>'stdoutTruncated')::boolean, false),
                            'stderrTruncated', coalesce(t->>'stderr', '') <> ''
                                OR coalesce((t->>'stderrTruncated')::boolean, false))
                            ORDER BY n)
                        FROM jsonb_array_elements(
                            CASE WHEN jsonb_typeof(result->'tests') = 'array'
                                 THEN result->'tests' ELSE '[]' END)
                            WITH ORDINALITY AS e(t, n)), '[]'))
                END,
                purged_at = now()
            WHERE id IN (
                SELECT id FROM runs
                WHERE status = 'finished' AND purged_at IS NULL
                  AND finished_at < now() - make_interval(secs => $1)
                ORDER BY finished_at
                LIMIT $2
                FOR UPDATE SKIP LOCKED)
            "#,
            retention_secs,
            PURGE_BATCH,
        )
        .execute(db)
        .await?
        .rows_affected();
        total += purged;
        if purged < u64::try_from(PURGE_BATCH).unwrap_or(u64::MAX) {
            return Ok(total);
        }
    }
}

/// Deletes the edit history and role changes of sessions that ended more
/// than `retention` ago (their code, runs and chat stay); answers how many
/// sessions lost theirs. `history_purged_at` says when.
pub async fn purge_old_history(db: &PgPool, retention: Duration) -> Result<u64> {
    let retention_secs = retention.as_secs_f64();
    let mut total = 0;
    loop {
        let mut tx = db.begin().await?;
        let ids = sqlx::query_scalar!(
            r#"SELECT id FROM interview_sessions
               WHERE status = 'ended' AND history_purged_at IS NULL
                 AND ended_at <= now() - make_interval(secs => $1)
               ORDER BY ended_at
               LIMIT $2
               FOR UPDATE SKIP LOCKED"#,
            retention_secs,
            PURGE_BATCH
        )
        .fetch_all(&mut *tx)
        .await?;
        sqlx::query!(
            "DELETE FROM document_history WHERE session_id = ANY($1)",
            &ids
        )
        .execute(&mut *tx)
        .await?;
        sqlx::query!(
            "DELETE FROM session_role_changes WHERE session_id = ANY($1)",
            &ids
        )
        .execute(&mut *tx)
        .await?;
        sqlx::query!(
            "UPDATE interview_sessions SET history_purged_at = now() WHERE id = ANY($1)",
            &ids
        )
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        total += ids.len() as u64;
        if ids.len() < usize::try_from(PURGE_BATCH).unwrap_or(usize::MAX) {
            return Ok(total);
        }
    }
}

/// 409 `run_storage_full` when the user's unpurged runs already take
/// `RUN_MAX_STORED_BYTES_PER_USER` or more (`stored`: their sum, read by
/// [`crate::runs::check_quotas`] in the same statement as the run quotas).
pub fn check_stored_bytes(ctx: &ApiContext, stored: i64) -> Result<()> {
    let cap = ctx.config.retention.max_stored_bytes_per_user;
    if stored >= cap {
        return Err(Error::Conflict {
            code: "run_storage_full",
            message: format!(
                "your stored runs take {stored} bytes, the limit is {cap}; runs older than \
                 the retention period are purged automatically"
            ),
        });
    }
    Ok(())
}
