//! What a `session.updated` event says about who may stay in the room and
//! in which role.
//!
//! Both sockets follow their member through these events: the events socket
//! relays what its member's current role may read and closes on a
//! departure; a document socket closes (or turns read-only) on one, and a
//! notes socket closes when its user loses the interviewer's seat. The event
//! is read once per event and replica ([`Payload::membership`]), from its
//! JSON alone: the session's body is the sessions module's to define, and
//! only the fields below are read.
//!
//! [`Payload::membership`]: super::hub::Payload::membership

use serde::Deserialize;
use uuid::Uuid;

/// Why a `session.updated` event ends a member's socket: the session ended,
/// or the member is no longer among its members.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Departure {
    Ended,
    Removed,
}

/// The session's status, host and members with their roles, as a
/// `session.updated` event states them.
#[derive(Debug)]
pub struct Membership {
    ended: bool,
    host_id: Uuid,
    /// `(user id, role)` of every member.
    members: Vec<(Uuid, String)>,
}

impl Membership {
    /// `Some` when `payload` (an event's JSON) is a `session.updated` event.
    pub(super) fn read(payload: &str) -> Option<Membership> {
        if !payload.contains("\"session.updated\"") {
            return None;
        }
        #[derive(Deserialize)]
        struct Update {
            session: Brief,
        }
        #[derive(Deserialize)]
        #[serde(rename_all = "camelCase")]
        struct Brief {
            status: String,
            host_id: Uuid,
            members: Vec<MemberId>,
        }
        #[derive(Deserialize)]
        #[serde(rename_all = "camelCase")]
        struct MemberId {
            user_id: Uuid,
            role: String,
        }
        let update: Update = serde_json::from_str(payload).ok()?;
        Some(Membership {
            ended: update.session.status == "ended",
            host_id: update.session.host_id,
            members: update
                .session
                .members
                .into_iter()
                .map(|m| (m.user_id, m.role))
                .collect(),
        })
    }

    /// Whether the update ends `user`'s place in the room.
    pub fn departure(&self, user: Uuid) -> Option<Departure> {
        if self.ended {
            Some(Departure::Ended)
        } else if self.role(user).is_none() {
            Some(Departure::Removed)
        } else {
            None
        }
    }

    /// `user`'s role after the update (`None`: not a member).
    pub fn role(&self, user: Uuid) -> Option<&String> {
        self.members
            .iter()
            .find_map(|(id, role)| (*id == user).then_some(role))
    }

    /// Whether `user` may read the interviewer's notes after the update:
    /// the host, and whoever holds the interviewer's seat.
    pub fn reads_notes(&self, user: Uuid) -> bool {
        self.host_id == user || self.role(user).is_some_and(|r| r == "interviewer")
    }
}
