//! Who is in a session and as what: its [`Status`], a member's [`Role`],
//! and [`membership`], the one check every session route (and both room
//! sockets) makes before anything else.

use serde::{Deserialize, Serialize};
use sqlx::PgConnection;
use uuid::Uuid;

use crate::error::{Error, Result};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Scheduled,
    Live,
    Ended,
}

impl Status {
    pub(super) fn parse(raw: &str) -> Status {
        match raw {
            "live" => Status::Live,
            "ended" => Status::Ended,
            _ => Status::Scheduled,
        }
    }

    pub(super) fn as_str(self) -> &'static str {
        match self {
            Status::Scheduled => "scheduled",
            Status::Live => "live",
            Status::Ended => "ended",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    Interviewer,
    Candidate,
}

impl Role {
    pub(super) fn parse(raw: &str) -> Role {
        if raw == "interviewer" {
            Role::Interviewer
        } else {
            Role::Candidate
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Role::Interviewer => "interviewer",
            Role::Candidate => "candidate",
        }
    }
}

/// The caller's standing in a session, loaded (and row-locked when `lock`)
/// by [`membership`].
pub struct Membership {
    pub session_id: Uuid,
    pub status: Status,
    pub is_host: bool,
    /// The caller's role now.
    pub role: Role,
}

impl Membership {
    pub fn require_host(&self) -> Result<&Self> {
        if self.is_host {
            Ok(self)
        } else {
            Err(Error::Forbidden("only the host can do this"))
        }
    }

    pub fn require_open(&self) -> Result<&Self> {
        if self.status == Status::Ended {
            Err(Error::Conflict {
                code: "session_ended",
                message: "the session has ended and is read-only".into(),
            })
        } else {
            Ok(self)
        }
    }
}

/// Loads the caller's membership; 404 when the session does not exist or the
/// caller is not a member. With `lock`, the session row is locked until the
/// transaction ends, serialising changes to one session.
pub async fn membership(
    db: &mut PgConnection,
    session_id: Uuid,
    user_id: Uuid,
    lock: bool,
) -> Result<Membership> {
    let row = if lock {
        sqlx::query!(
            r#"SELECT s.status, s.host_id, m.role FROM interview_sessions s
               JOIN session_members m ON m.session_id = s.id AND m.user_id = $2
               WHERE s.id = $1 FOR UPDATE OF s"#,
            session_id,
            user_id
        )
        .fetch_optional(&mut *db)
        .await?
        .map(|r| (r.status, r.host_id, r.role))
    } else {
        sqlx::query!(
            r#"SELECT s.status, s.host_id, m.role FROM interview_sessions s
               JOIN session_members m ON m.session_id = s.id AND m.user_id = $2
               WHERE s.id = $1"#,
            session_id,
            user_id
        )
        .fetch_optional(&mut *db)
        .await?
        .map(|r| (r.status, r.host_id, r.role))
    };
    let (status, host_id, role) = row.ok_or(Error::NotFound("no such session"))?;
    Ok(Membership {
        session_id,
        status: Status::parse(&status),
        is_host: host_id == user_id,
        role: Role::parse(&role),
    })
}

/// Whether `user_id` is a member of the session (whoever asks).
pub(super) async fn is_member(
    db: &mut PgConnection,
    session_id: Uuid,
    user_id: Uuid,
) -> Result<bool> {
    Ok(sqlx::query_scalar!(
        r#"SELECT EXISTS (SELECT 1 FROM session_members WHERE session_id = $1 AND user_id = $2) AS "e!""#,
        session_id,
        user_id
    )
    .fetch_one(db)
    .await?)
}

pub(super) async fn touch(db: &mut PgConnection, session_id: Uuid) -> Result<()> {
    sqlx::query!(
        "UPDATE interview_sessions SET last_activity_at = now() WHERE id = $1",
        session_id
    )
    .execute(db)
    .await?;
    Ok(())
}
