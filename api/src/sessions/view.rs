//! A session as its members read it ([`SessionBody`], with its members and
//! the shared editor's current text), loaded from PostgreSQL so every
//! replica answers the same.

use chrono::{DateTime, Utc};
use serde::Serialize;
use sqlx::PgConnection;
use uuid::Uuid;

use crate::error::Result;

#[derive(Debug, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct MemberBody {
    pub user_id: Uuid,
    pub name: String,
    pub role: String,
    pub online: bool,
    pub joined_at: DateTime<Utc>,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct SessionBody {
    pub id: Uuid,
    pub title: String,
    pub language: String,
    pub status: String,
    pub host_id: Uuid,
    pub scheduled_for: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
    pub started_at: Option<DateTime<Utc>>,
    pub ended_at: Option<DateTime<Utc>>,
    /// The problem being solved (`GET /api/sessions/{id}/problem`), if any.
    pub problem_id: Option<Uuid>,
    /// The shared editor's current text.
    pub code: String,
    /// The planned length in seconds; `null`: no clock.
    pub duration_seconds: Option<i32>,
    /// When the session ends (or was to end) by its clock: the start plus
    /// the duration; `null` before it starts or without a clock.
    pub ends_at: Option<DateTime<Utc>>,
    /// Seconds left until `endsAt` while live, as of this body.
    pub remaining_seconds: Option<i64>,
    pub members: Vec<MemberBody>,
}

/// The full session as its members see it.
pub async fn load_session(db: &mut PgConnection, id: Uuid) -> Result<SessionBody> {
    let s = sqlx::query!(
        r#"SELECT id, title, language, status, host_id, scheduled_for, created_at,
                  started_at, ended_at, problem_id, duration_secs, ends_at,
                  CASE WHEN status = 'live' AND ends_at IS NOT NULL
                       THEN GREATEST(0, ceil(extract(epoch FROM ends_at - now())))::bigint
                  END AS remaining_seconds
           FROM interview_sessions WHERE id = $1"#,
        id
    )
    .fetch_one(&mut *db)
    .await?;
    let members = sqlx::query_as!(
        MemberBody,
        r#"SELECT m.user_id, u.name, m.role, false AS "online!", m.joined_at
           FROM session_members m JOIN users u ON u.id = m.user_id
           WHERE m.session_id = $1
           ORDER BY m.joined_at, m.user_id"#,
        id
    )
    .fetch_all(&mut *db)
    .await?;
    Ok(SessionBody {
        id: s.id,
        title: s.title,
        language: s.language,
        status: s.status,
        host_id: s.host_id,
        scheduled_for: s.scheduled_for,
        created_at: s.created_at,
        started_at: s.started_at,
        ended_at: s.ended_at,
        problem_id: s.problem_id,
        code: current_code(db, id).await?,
        duration_seconds: s.duration_secs,
        ends_at: s.ends_at,
        remaining_seconds: s.remaining_seconds,
        members,
    })
}

/// The shared document's text, read from what is stored (never from an api
/// process's memory, so every replica answers the same). When the document
/// cannot be read, the error is logged and the text as of its last
/// compaction (`interview_sessions.code`) is the answer.
pub async fn current_code(db: &mut PgConnection, id: Uuid) -> Result<String> {
    match crate::documents::store::text(db, id, crate::documents::Kind::Code).await {
        Ok(Some(text)) => Ok(text),
        Ok(None) => mirrored_code(db, id).await,
        Err(e) => {
            tracing::error!(session = %id, error = %e, "cannot read the shared document; serving its last compacted text");
            mirrored_code(db, id).await
        }
    }
}

async fn mirrored_code(db: &mut PgConnection, id: Uuid) -> Result<String> {
    Ok(
        sqlx::query_scalar!("SELECT code FROM interview_sessions WHERE id = $1", id)
            .fetch_one(db)
            .await?,
    )
}
