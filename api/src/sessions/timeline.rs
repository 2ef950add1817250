//! `GET /api/sessions/{id}/timeline`: how a session went, for replay —
//! every step of the code document (the Yjs updates, with their time and
//! author), interleaved with runs (and submissions: runs too), chat
//! messages and role changes, in time order, for the session's members.
//!
//! Applying every `edit` item's `update` in order to an empty `Y.Doc`
//! rebuilds the document's exact text (`getText("code")`); applying them
//! one at a time replays the typing. A run shows its language, status,
//! verdict and test counts only — never its input, expected output or
//! output, so hidden-test data cannot appear here. The interviewer's notes
//! are never part of it.
//!
//! Cursor-paginated like every list (`limit` 1–100, default 20), and a page
//! also stops once its updates and chat texts take [`MAX_PAGE_BYTES`]
//! (always at least one item). Items tie-break on (time, kind, key), so
//! pages never repeat or skip an item. The history is bounded per session
//! (`SESSION_HISTORY_MAX_BYTES`, see [`crate::documents::history`]) and
//! deleted `SESSION_HISTORY_RETENTION` after the session ends
//! (`historyPurgedAt` says when; runs and chat follow their own retention).

use axum::{Json, extract::State};
use base64::{
    Engine as _,
    engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD},
};
use chrono::{DateTime, Utc};
use serde::Serialize;
use utoipa_axum::{router::OpenApiRouter, routes};
use uuid::Uuid;

use super::membership;
use crate::{
    auth::AuthUser,
    envelope::Success,
    error::{ApiPath, ApiQuery, Error, ErrorBody, Result},
    pagination::{Page, PageParams, time_key},
    startup::ApiContext,
};

/// What one page's updates (base64) and chat texts may take together.
pub const MAX_PAGE_BYTES: usize = 1024 * 1024;

pub fn router() -> OpenApiRouter<ApiContext> {
    OpenApiRouter::new().routes(routes!(timeline))
}

/// One step of a session.
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[serde(tag = "type", rename_all = "camelCase")]
pub enum Item {
    /// A change to the code document.
    #[serde(rename_all = "camelCase")]
    Edit {
        at: DateTime<Utc>,
        /// Replay order among edits of the same instant.
        seq: i64,
        /// Its author; `null` for a checkpoint of several authors' edits.
        author_id: Option<Uuid>,
        /// Edits it holds: 1, more for a checkpoint (the oldest edits of a
        /// history over its size cap, merged), 0 for the document as it was
        /// before history was kept.
        updates: i32,
        /// The Yjs update (format v1), base64.
        update: String,
    },
    /// A run or a submission, when it was asked for, as it stands now.
    #[serde(rename_all = "camelCase")]
    Run {
        at: DateTime<Utc>,
        id: Uuid,
        user_id: Uuid,
        language: String,
        status: String,
        verdict: Option<String>,
        tests_total: i64,
        tests_passed: i64,
        time_ms: Option<i64>,
        finished_at: Option<DateTime<Utc>>,
    },
    #[serde(rename_all = "camelCase")]
    Chat {
        at: DateTime<Utc>,
        id: Uuid,
        user_id: Uuid,
        name: String,
        text: String,
    },
    /// A member's arrival (with their role), role change, or departure (`left`).
    #[serde(rename_all = "camelCase")]
    Role {
        at: DateTime<Utc>,
        user_id: Uuid,
        name: String,
        role: String,
    },
}

/// A page of a session's steps (beside `success` and `nextCursor`).
#[derive(Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Timeline {
    items: Vec<Item>,
    /// When the session's edit history and role changes were deleted
    /// (`SESSION_HISTORY_RETENTION` after it ended).
    history_purged_at: Option<DateTime<Utc>>,
}

/// Where an item sorts: time, then kind, then a key within the kind.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
struct Position {
    at: DateTime<Utc>,
    rank: i32,
    key: String,
}

const EDIT: i32 = 0;
const ROLE: i32 = 1;
const RUN: i32 = 2;
const CHAT: i32 = 3;

impl Position {
    fn encode(&self) -> String {
        URL_SAFE_NO_PAD.encode(format!(
            "{}\n{}\n{}",
            time_key(self.at),
            self.rank,
            self.key
        ))
    }

    fn decode(raw: &str) -> Result<Position> {
        let invalid = || Error::invalid_field("cursor", "is not a cursor this API issued");
        let bytes = URL_SAFE_NO_PAD.decode(raw).map_err(|_| invalid())?;
        let text = String::from_utf8(bytes).map_err(|_| invalid())?;
        let mut parts = text.splitn(3, '\n');
        let (Some(at), Some(rank), Some(key)) = (parts.next(), parts.next(), parts.next()) else {
            return Err(invalid());
        };
        Ok(Position {
            at: DateTime::parse_from_rfc3339(at)
                .map_err(|_| invalid())?
                .with_timezone(&Utc),
            rank: rank.parse().map_err(|_| invalid())?,
            key: key.to_owned(),
        })
    }
}

/// An edit's key: its sequence number, zero-padded so keys sort as numbers.
fn seq_key(seq: i64) -> String {
    format!("{seq:020}")
}

/// The session's steps, oldest first (members).
#[utoipa::path(get, path = "/api/sessions/{id}/timeline", tag = "sessions", security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "The session"),
           ("limit" = Option<i64>, Query, description = "Items per page, 1–100 (default 20); a page also stops at 1 MiB of updates and chat"),
           ("cursor" = Option<String>, Query, description = "The previous page's `nextCursor`")), responses(
    (status = 200, description = "`{success, items, nextCursor, historyPurgedAt}`", body = Success<Page<Timeline>>),
    (status = 404, description = "No such session, or not a member", body = ErrorBody),
    (status = 422, description = "Bad `limit` or `cursor`", body = ErrorBody)))]
async fn timeline(
    State(ctx): State<ApiContext>,
    user: AuthUser,
    ApiPath(session): ApiPath<Uuid>,
    ApiQuery(page): ApiQuery<PageParams>,
) -> Result<Json<Success<Page<Timeline>>>> {
    let limit = page.limit()?;
    let after = page.cursor.as_deref().map(Position::decode).transpose()?;
    let mut conn = ctx.db.acquire().await?;
    membership(&mut conn, session, user.id, false).await?;
    let (after_at, after_rank, after_key) = match &after {
        Some(p) => (Some(p.at), p.rank, p.key.clone()),
        None => (None, 0, String::new()),
    };
    let mut items: Vec<(Position, usize, Item)> = Vec::new();
    // Each kind's query takes the same parameters: the session, the cursor
    // (time, kind, key) and one row more than a page holds.
    macro_rules! after_cursor {
        ($sql:tt) => {
            sqlx::query!($sql, session, after_at, after_rank, after_key, limit + 1)
                .fetch_all(&mut *conn)
                .await?
        };
    }

    let edits = after_cursor!(
        r#"SELECT at AS "at!", seq AS "seq!", author_id, updates AS "updates!", payload AS "payload!"
           FROM (SELECT created_at AS at, seq, author_id, updates, payload
                 FROM document_history WHERE session_id = $1
                 UNION ALL
                 SELECT created_at, id, author_id, 1, payload
                 FROM document_updates WHERE session_id = $1 AND kind = 'code') e
           WHERE $2::timestamptz IS NULL
              OR (at, 0, lpad(seq::text, 20, '0') COLLATE "C") > ($2, $3, $4::text COLLATE "C")
           ORDER BY at, seq
           LIMIT $5"#
    );
    for e in edits {
        let update = STANDARD.encode(&e.payload);
        let position = Position {
            at: e.at,
            rank: EDIT,
            key: seq_key(e.seq),
        };
        let item = Item::Edit {
            at: e.at,
            seq: e.seq,
            author_id: e.author_id,
            updates: e.updates,
            update,
        };
        let bytes = e.payload.len() * 4 / 3;
        items.push((position, bytes, item));
    }

    let roles = after_cursor!(
        r#"SELECT c.id, c.created_at, c.user_id, u.name, c.role
           FROM session_role_changes c JOIN users u ON u.id = c.user_id
           WHERE c.session_id = $1
             AND ($2::timestamptz IS NULL
                  OR (c.created_at, 1, lpad(c.id::text, 20, '0') COLLATE "C") > ($2, $3, $4::text COLLATE "C"))
           ORDER BY c.created_at, c.id
           LIMIT $5"#
    );
    for r in roles {
        let position = Position {
            at: r.created_at,
            rank: ROLE,
            key: seq_key(r.id),
        };
        let item = Item::Role {
            at: r.created_at,
            user_id: r.user_id,
            name: r.name,
            role: r.role,
        };
        items.push((position, 0, item));
    }

    let runs = after_cursor!(
        r#"SELECT r.id, r.user_id, r.language, r.status, r.verdict, r.created_at, r.finished_at,
                  (r.result->>'timeMs')::bigint AS time_ms,
                  t.total AS "tests_total!", t.passed AS "tests_passed!"
           FROM runs r
           CROSS JOIN LATERAL (
               SELECT count(*) AS total, count(*) FILTER (WHERE e->>'verdict' = 'accepted') AS passed
               FROM jsonb_array_elements(CASE WHEN jsonb_typeof(r.result->'tests') = 'array'
                                              THEN r.result->'tests' ELSE '[]'::jsonb END) AS e) t
           WHERE r.session_id = $1
             AND ($2::timestamptz IS NULL
                  OR (r.created_at, 2, r.id::text COLLATE "C") > ($2, $3, $4::text COLLATE "C"))
           ORDER BY r.created_at, r.id::text COLLATE "C"
           LIMIT $5"#
    );
    for r in runs {
        let position = Position {
            at: r.created_at,
            rank: RUN,
            key: r.id.to_string(),
        };
        let item = Item::Run {
            at: r.created_at,
            id: r.id,
            user_id: r.user_id,
            language: r.language,
            status: r.status,
            verdict: r.verdict,
            tests_total: r.tests_total,
            tests_passed: r.tests_passed,
            time_ms: r.time_ms,
            finished_at: r.finished_at,
        };
        items.push((position, 0, item));
    }

    let chat = after_cursor!(
        r#"SELECT c.id, c.created_at, c.user_id, u.name, c.text
           FROM chat_messages c JOIN users u ON u.id = c.user_id
           WHERE c.session_id = $1
             AND ($2::timestamptz IS NULL
                  OR (c.created_at, 3, c.id::text COLLATE "C") > ($2, $3, $4::text COLLATE "C"))
           ORDER BY c.created_at, c.id::text COLLATE "C"
           LIMIT $5"#
    );
    for c in chat {
        let position = Position {
            at: c.created_at,
            rank: CHAT,
            key: c.id.to_string(),
        };
        let bytes = c.text.len();
        let item = Item::Chat {
            at: c.created_at,
            id: c.id,
            user_id: c.user_id,
            name: c.name,
            text: c.text,
        };
        items.push((position, bytes, item));
    }

    let history_purged_at = sqlx::query_scalar!(
        "SELECT history_purged_at FROM interview_sessions WHERE id = $1",
        session
    )
    .fetch_one(&mut *conn)
    .await?;

    items.sort_by(|a, b| a.0.cmp(&b.0));
    let fetched = items.len();
    let mut taken = 0;
    let mut bytes = 0;
    for (_, size, _) in &items {
        if taken == usize::try_from(limit).unwrap_or(0)
            || (taken > 0 && bytes + size > MAX_PAGE_BYTES)
        {
            break;
        }
        bytes += size;
        taken += 1;
    }
    items.truncate(taken);
    let next_cursor = (fetched > taken)
        .then(|| items.last().map(|(position, _, _)| position.encode()))
        .flatten();
    let page = Timeline {
        items: items.into_iter().map(|(_, _, item)| item).collect(),
        history_purged_at,
    };
    Ok(Json(Success::new(Page::new(page, next_cursor))))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_round_trip_and_edit_keys_sort_as_numbers() {
        let position = Position {
            at: Utc::now(),
            rank: EDIT,
            key: seq_key(42),
        };
        let decoded = Position::decode(&position.encode()).expect("valid");
        assert_eq!(decoded.rank, position.rank);
        assert_eq!(decoded.key, position.key);
        assert_eq!(time_key(decoded.at), time_key(position.at));
        assert!(seq_key(9) < seq_key(10));
        assert!(Position::decode("garbage!").is_err());
    }
}
