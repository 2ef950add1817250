//! The session's own events in its room: `session.updated {session}` after
//! every change to the session (status, roles, title, language, members,
//! problem, clock) and `session.ending {sessionId, endsAt, remainingSeconds}`,
//! the clock's warning. They travel on the session's channel like every room
//! event ([`crate::realtime::pubsub`]); the sockets read the membership in a
//! `session.updated` ([`crate::realtime::membership`]) to follow their
//! member's role or close.

use chrono::{DateTime, Utc};
use serde::Serialize;
use uuid::Uuid;

use super::{SessionBody, load_session};
use crate::{realtime::pubsub::publish_to_session, startup::ApiContext};

/// The events the sessions publish in their rooms.
#[derive(Debug, Serialize)]
#[serde(tag = "type")]
pub enum SessionEvent {
    /// Boxed: the session's body is large, and the warning small.
    #[serde(rename = "session.updated")]
    Updated { session: Box<SessionBody> },
    /// The session's clock is about to run out (`SESSION_END_WARNING` before).
    #[serde(rename = "session.ending", rename_all = "camelCase")]
    Ending {
        session_id: Uuid,
        ends_at: DateTime<Utc>,
        remaining_seconds: i64,
    },
}

/// Announces a session's new state (status, roles, title, language, members).
pub async fn session_updated(ctx: &ApiContext, session: Uuid) {
    match ctx.db.acquire().await {
        Ok(mut conn) => match load_session(&mut conn, session).await {
            Ok(body) => {
                publish_to_session(
                    ctx,
                    session,
                    &SessionEvent::Updated {
                        session: Box::new(body),
                    },
                )
                .await;
            }
            Err(e) => {
                tracing::warn!(%session, error = %e, "cannot load session for its update event")
            }
        },
        Err(e) => tracing::warn!(%session, error = %e, "cannot load session for its update event"),
    }
}
