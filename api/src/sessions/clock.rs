//! Session clocks: a session may have a duration (`durationSeconds`, set at
//! creation or by the host with `PATCH`); once live it ends at `endsAt`,
//! which members see in `session.updated` and the room snapshot (with
//! `remainingSeconds`). `SESSION_END_WARNING` before the end the room gets
//! one `session.ending` event, and at the end the session ends like the
//! host's `/end` (`session.updated` with `status: ended`).
//!
//! On time, on whichever replica: every replica runs one [`spawn`]ed task
//! that sleeps until the earliest deadline (a warning or an end) of all
//! live sessions — read from PostgreSQL, so sessions nobody is connected to
//! end too — or at most `SESSION_CLOCK_SWEEP_INTERVAL`, and is woken at once
//! when this replica starts a session or changes a duration. When a deadline
//! comes, every replica tries; the end takes the session rows with
//! `FOR UPDATE SKIP LOCKED` and the warning is one conditional `UPDATE …
//! RETURNING`, so exactly one replica ends (and announces) each session and
//! exactly one warns.

use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Deserializer};
use sqlx::{PgConnection, PgPool};
use tokio::sync::Notify;
use uuid::Uuid;

use super::events::{SessionEvent, session_updated};
use crate::{
    config::SessionSettings,
    error::{Error, Result},
    realtime::pubsub::publish_to_session,
    startup::ApiContext,
};

/// The shortest sleep between two looks (a deadline a clock skew makes
/// look a little ahead is looked at again this soon, not in a busy loop).
const MIN_SLEEP: Duration = Duration::from_millis(20);

/// Wakes this replica's clock task (a session started, a duration changed).
#[derive(Default)]
pub struct Clock {
    wake: Notify,
}

impl Clock {
    pub fn changed(&self) {
        self.wake.notify_one();
    }
}

/// A duration in seconds within `SESSION_MIN_DURATION`–`SESSION_MAX_DURATION`.
pub fn validate(settings: &SessionSettings, secs: i64) -> Result<i32, String> {
    let min = i64::try_from(settings.min_duration.as_secs())
        .unwrap_or(i64::MAX)
        .max(1);
    let max = i64::try_from(settings.max_duration.as_secs()).unwrap_or(i64::MAX);
    if (min..=max).contains(&secs) {
        i32::try_from(secs).map_err(|_| format!("must be {min}–{max} seconds"))
    } else {
        Err(format!("must be {min}–{max} seconds"))
    }
}

/// For `PATCH`: a field that is present (`Some`, possibly `null`) or absent
/// (`None`, with `#[serde(default)]`).
pub fn present<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Option<i64>>, D::Error> {
    Option::<i64>::deserialize(d).map(Some)
}

/// Sets (or with `None` removes) a session's duration: a live session then
/// ends `duration` after its start (422 when that is already past) and may
/// be warned again.
pub async fn set_duration(
    db: &mut PgConnection,
    session: Uuid,
    duration: Option<i32>,
) -> Result<()> {
    let past = sqlx::query_scalar!(
        r#"UPDATE interview_sessions
           SET duration_secs = $2,
               ends_at = CASE WHEN status = 'live' AND $2::int IS NOT NULL
                              THEN started_at + make_interval(secs => $2::int) END,
               end_warned_at = NULL
           WHERE id = $1
           RETURNING (ends_at IS NOT NULL AND ends_at <= now()) AS "past!""#,
        session,
        duration
    )
    .fetch_one(db)
    .await?;
    if past {
        return Err(Error::invalid_field(
            "durationSeconds",
            "the session has already run longer than that",
        ));
    }
    Ok(())
}

/// Starts this replica's clock task.
pub fn spawn(ctx: ApiContext) {
    tokio::spawn(async move {
        let settings = &ctx.config.sessions;
        let (warning, sweep) = (
            settings.end_warning,
            settings.clock_sweep_interval.max(MIN_SLEEP),
        );
        loop {
            if let Err(e) = tick(&ctx, warning).await {
                tracing::warn!(error = %e, "session clock pass failed");
            }
            let wait = match next_deadline(&ctx.db, warning).await {
                Ok(Some(secs)) => Duration::try_from_secs_f64(secs.max(0.0))
                    .map_or(sweep, |d| d.clamp(MIN_SLEEP, sweep)),
                Ok(None) => sweep,
                Err(e) => {
                    tracing::warn!(error = %e, "cannot read the next session deadline");
                    sweep
                }
            };
            tokio::select! {
                () = tokio::time::sleep(wait) => {}
                () = ctx.clock.wake.notified() => {}
            }
        }
    });
}

/// Ends the sessions whose time is up and warns those near their end.
async fn tick(ctx: &ApiContext, warning: Duration) -> Result<()> {
    for id in end_expired_sessions(&ctx.db).await? {
        tracing::info!(session = %id, "session ended: its time ran out");
        session_updated(ctx, id).await;
    }
    for (session, ends_at, remaining) in warn_ending_sessions(&ctx.db, warning).await? {
        let event = SessionEvent::Ending {
            session_id: session,
            ends_at,
            remaining_seconds: remaining,
        };
        publish_to_session(ctx, session, &event).await;
    }
    Ok(())
}

/// Ends live sessions past their `ends_at`; answers the ones this call ended.
pub async fn end_expired_sessions(db: &PgPool) -> Result<Vec<Uuid>> {
    let mut tx = db.begin().await?;
    let ids = sqlx::query_scalar!(
        r#"SELECT id FROM interview_sessions
           WHERE status = 'live' AND ends_at <= now()
           FOR UPDATE SKIP LOCKED"#
    )
    .fetch_all(&mut *tx)
    .await?;
    for id in &ids {
        super::end_session(&mut tx, *id).await?;
    }
    tx.commit().await?;
    Ok(ids)
}

/// Marks live sessions within `warning` of their end as warned; answers the
/// ones this call marked (each is marked once), with the time left.
async fn warn_ending_sessions(
    db: &PgPool,
    warning: Duration,
) -> Result<Vec<(Uuid, DateTime<Utc>, i64)>> {
    let rows = sqlx::query!(
        r#"UPDATE interview_sessions SET end_warned_at = now()
           WHERE status = 'live' AND end_warned_at IS NULL
             AND ends_at > now() AND ends_at - make_interval(secs => $1) <= now()
           RETURNING id, ends_at AS "ends_at!",
                     ceil(extract(epoch FROM ends_at - now()))::bigint AS "remaining!""#,
        warning.as_secs_f64()
    )
    .fetch_all(db)
    .await?;
    Ok(rows
        .into_iter()
        .map(|r| (r.id, r.ends_at, r.remaining))
        .collect())
}

/// Seconds until the earliest warning or end of a live session, if any.
async fn next_deadline(db: &PgPool, warning: Duration) -> Result<Option<f64>> {
    Ok(sqlx::query_scalar!(
        r#"SELECT extract(epoch FROM min(LEAST(
                      ends_at,
                      CASE WHEN end_warned_at IS NULL
                           THEN ends_at - make_interval(secs => $1) END)) - now())::float8
           FROM interview_sessions
           WHERE status = 'live' AND ends_at IS NOT NULL"#,
        warning.as_secs_f64()
    )
    .fetch_one(db)
    .await?)
}
