//! A document in PostgreSQL: a snapshot plus the updates appended since
//! (see the `documents` migration), keyed by session and [`Kind`].
//!
//! Everything here reads and writes rows, never the in-memory document: a
//! compaction merges what the database holds, so a replica that missed an
//! update cannot drop it, and a document is never replaced by an empty one.
//!
//! Updates are checked before they are stored, yet a stored row may still
//! not apply (a row from before the check, a bug, a bad restore). Loading
//! never fails on one: [`build`] leaves it out, and the next [`compact`]
//! moves it aside to `document_quarantine` with the reason, in the same
//! transaction that writes the rest as the new snapshot.

use std::panic::{AssertUnwindSafe, catch_unwind};

use chrono::{DateTime, Utc};
use sqlx::{Connection as _, PgConnection, PgPool};
use uuid::Uuid;
use yrs::{Doc, GetString, ReadTxn, StateVector, Transact, Update, updates::decoder::Decode};

use super::{
    Kind, TEXT_NAME,
    checked::{self, Checked},
};

/// A document as stored.
pub struct Stored {
    pub doc: Doc,
    /// Bytes stored (snapshot and updates): what the size limit counts.
    pub bytes: usize,
    /// The session has ended: the document is read-only.
    pub ended: bool,
}

/// One stored part of a document.
pub struct Part {
    /// The `document_updates` row, or `None` for the snapshot.
    pub id: Option<i64>,
    pub payload: Vec<u8>,
}

impl Part {
    /// A document's parts in the order they apply: the snapshot (if any),
    /// then the appended updates (`(row id, payload)`) oldest first.
    fn in_order(
        snapshot: Option<Vec<u8>>,
        updates: impl IntoIterator<Item = (i64, Vec<u8>)>,
    ) -> Vec<Part> {
        snapshot
            .map(|payload| Part { id: None, payload })
            .into_iter()
            .chain(updates.into_iter().map(|(id, payload)| Part {
                id: Some(id),
                payload,
            }))
            .collect()
    }
}

/// A document built from its parts, and the parts left out.
pub struct Built {
    pub doc: Doc,
    /// `(part id, reason)` of every part that does not apply.
    pub refused: Vec<(Option<i64>, String)>,
}

/// Loads one of the session's documents (an empty one when nothing was ever
/// stored). Rows that do not apply are quarantined first.
pub async fn load(db: &mut PgConnection, session: Uuid, kind: Kind) -> anyhow::Result<Stored> {
    let ended = sqlx::query_scalar!(
        "SELECT status = 'ended' AS \"ended!\" FROM interview_sessions WHERE id = $1",
        session
    )
    .fetch_one(&mut *db)
    .await?;
    let (built, bytes) = document(db, session, kind).await?;
    Ok(Stored {
        doc: built.doc,
        bytes,
        ended,
    })
}

/// The document's current text, or `None` when it was never edited.
pub async fn text(
    db: &mut PgConnection,
    session: Uuid,
    kind: Kind,
) -> anyhow::Result<Option<String>> {
    let (built, bytes) = document(db, session, kind).await?;
    Ok((bytes > 0).then(|| text_of(&built.doc)))
}

/// Builds the stored document; when a row does not apply, compacts (which
/// quarantines it) and builds again.
async fn document(
    db: &mut PgConnection,
    session: Uuid,
    kind: Kind,
) -> anyhow::Result<(Built, usize)> {
    let (parts, bytes) = rows(db, session, kind).await?;
    let built = build(&parts);
    if built.refused.is_empty() {
        return Ok((built, bytes));
    }
    compact(db, session, kind).await?;
    let (parts, bytes) = rows(db, session, kind).await?;
    Ok((build(&parts), bytes))
}

/// The snapshot (if any) followed by every appended update, and their size.
async fn rows(
    db: &mut PgConnection,
    session: Uuid,
    kind: Kind,
) -> anyhow::Result<(Vec<Part>, usize)> {
    let snapshot = sqlx::query_scalar!(
        "SELECT snapshot FROM documents WHERE session_id = $1 AND kind = $2",
        session,
        kind.as_str()
    )
    .fetch_optional(&mut *db)
    .await?;
    let updates = sqlx::query!(
        "SELECT id, payload FROM document_updates WHERE session_id = $1 AND kind = $2 ORDER BY id",
        session,
        kind.as_str()
    )
    .fetch_all(&mut *db)
    .await?;
    let parts = Part::in_order(snapshot, updates.into_iter().map(|u| (u.id, u.payload)));
    let bytes = parts.iter().map(|p| p.payload.len()).sum();
    Ok((parts, bytes))
}

/// Stores one update by `author` unless the session has ended; `false` when it has.
///
/// The session row is share-locked, so an update racing the session's end
/// is either stored before the end commits or refused after it.
pub async fn append(
    db: &PgPool,
    session: Uuid,
    kind: Kind,
    author: Uuid,
    update: &[u8],
) -> sqlx::Result<bool> {
    let stored = sqlx::query!(
        r#"INSERT INTO document_updates (session_id, kind, author_id, payload)
           SELECT id, $2, $3, $4 FROM interview_sessions
           WHERE id = $1 AND status <> 'ended'
           FOR SHARE"#,
        session,
        kind.as_str(),
        author,
        update
    )
    .execute(db)
    .await?
    .rows_affected();
    Ok(stored == 1)
}

/// Merges the snapshot and the appended updates into a new snapshot, deletes
/// exactly the updates merged, moves those that do not apply (and a snapshot
/// that does not) to `document_quarantine`, copies the code document's
/// merged updates to its history, mirrors the code document's text
/// (never the notes') into `interview_sessions.code` and counts the edits as
/// session activity. Returns the stored size after.
pub async fn compact(db: &mut PgConnection, session: Uuid, kind: Kind) -> anyhow::Result<usize> {
    let mut tx = db.begin().await?;
    // One compaction of a document at a time, also before its first
    // snapshot exists (so two never merge different rows, or quarantine a
    // row twice); appends go on.
    sqlx::query!(
        "SELECT FROM pg_advisory_xact_lock(hashtextextended('document:' || $1::text || ':' || $2::text, 0))",
        session.to_string(),
        kind.as_str()
    )
    .execute(&mut *tx)
    .await?;
    let snapshot = sqlx::query!(
        "SELECT snapshot, compacted_at FROM documents WHERE session_id = $1 AND kind = $2",
        session,
        kind.as_str()
    )
    .fetch_optional(&mut *tx)
    .await?;
    let updates = sqlx::query!(
        "SELECT id, payload, created_at FROM document_updates
         WHERE session_id = $1 AND kind = $2 ORDER BY id",
        session,
        kind.as_str()
    )
    .fetch_all(&mut *tx)
    .await?;
    let snapshot_len = snapshot.as_ref().map_or(0, |s| s.snapshot.len());
    let last_edit: Option<DateTime<Utc>> = updates.iter().map(|u| u.created_at).max();
    let ids: Vec<i64> = updates.iter().map(|u| u.id).collect();
    let parts = Part::in_order(
        snapshot.as_ref().map(|s| s.snapshot.clone()),
        updates.into_iter().map(|u| (u.id, u.payload)),
    );
    let built = build(&parts);
    if ids.is_empty() && built.refused.is_empty() {
        return Ok(snapshot_len);
    }
    for (id, reason) in &built.refused {
        tracing::error!(%session, row = ?id, %reason, "a stored document row does not apply: moved to document_quarantine");
    }
    metrics::counter!("codecall_document_rows_quarantined_total")
        .increment(built.refused.len() as u64);
    let (refused_ids, reasons): (Vec<i64>, Vec<String>) = built
        .refused
        .iter()
        .filter_map(|(id, reason)| id.map(|id| (id, reason.clone())))
        .unzip();
    sqlx::query!(
        r#"INSERT INTO document_quarantine (session_id, kind, update_id, payload, stored_at, reason)
           SELECT u.session_id, u.kind, u.id, u.payload, u.created_at, r.reason
           FROM document_updates u
           JOIN unnest($2::bigint[], $3::text[]) AS r (id, reason) ON r.id = u.id
           WHERE u.session_id = $1"#,
        session,
        &refused_ids,
        &reasons
    )
    .execute(&mut *tx)
    .await?;
    if let Some((_, reason)) = built.refused.iter().find(|(id, _)| id.is_none())
        && let Some(snapshot) = &snapshot
    {
        sqlx::query!(
            r#"INSERT INTO document_quarantine (session_id, kind, update_id, payload, stored_at, reason)
               VALUES ($1, $5, NULL, $2, $3, $4)"#,
            session,
            snapshot.snapshot,
            snapshot.compacted_at,
            reason,
            kind.as_str()
        )
        .execute(&mut *tx)
        .await?;
    }
    let merged = built
        .doc
        .transact()
        .encode_state_as_update_v1(&StateVector::default());
    sqlx::query!(
        r#"INSERT INTO documents (session_id, kind, snapshot) VALUES ($1, $3, $2)
           ON CONFLICT (session_id, kind) DO UPDATE SET snapshot = $2, compacted_at = now()"#,
        session,
        merged,
        kind.as_str()
    )
    .execute(&mut *tx)
    .await?;
    // The code document's history keeps every update merged (not those
    // quarantined), in the transaction that deletes them from the log.
    if kind == Kind::Code {
        sqlx::query!(
            r#"INSERT INTO document_history (session_id, seq, author_id, payload, created_at)
               SELECT session_id, id, author_id, payload, created_at FROM document_updates
               WHERE id = ANY($1) AND NOT (id = ANY($2))
               ORDER BY id"#,
            &ids,
            &refused_ids
        )
        .execute(&mut *tx)
        .await?;
    }
    // Exactly the rows merged or quarantined: an update committed meanwhile stays.
    sqlx::query!("DELETE FROM document_updates WHERE id = ANY($1)", &ids)
        .execute(&mut *tx)
        .await?;
    // The notes are never mirrored: `code` is read by every member.
    let mirrored = (kind == Kind::Code).then(|| text_of(&built.doc));
    sqlx::query!(
        r#"UPDATE interview_sessions
           SET code = COALESCE($2, code), last_activity_at = GREATEST(last_activity_at, $3)
           WHERE id = $1"#,
        session,
        mirrored,
        last_edit
    )
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(merged.len())
}

/// Applies stored parts to a new document. A part that does not decode or
/// apply (or makes yrs panic) is left out and listed in [`Built::refused`],
/// with the parts whose pending items it was that did not apply; the rest
/// loads.
pub fn build(parts: &[Part]) -> Built {
    // Every part at once: the common case, and the fastest.
    let doc = checked::empty();
    let whole = catch_unwind(AssertUnwindSafe(|| {
        let mut txn = doc.transact_mut();
        parts.iter().all(|part| {
            Update::decode_v1(&part.payload).is_ok_and(|update| txn.apply_update(update).is_ok())
        })
    }));
    if matches!(whole, Ok(true)) {
        return Built {
            doc,
            refused: Vec::new(),
        };
    }
    // One part at a time, each checked before it counts.
    let mut document = Checked::new(checked::empty());
    let mut refused = Vec::new();
    let mut pending_from: Vec<Option<i64>> = Vec::new();
    for part in parts {
        match document.apply(&part.payload, None) {
            Ok(check) => {
                if check.drops_pending {
                    refused.extend(pending_from.drain(..).map(|id| {
                        (
                            id,
                            "its pending items do not apply to the document".to_owned(),
                        )
                    }));
                }
                if check.adds_pending {
                    pending_from.push(part.id);
                }
                if document.pending_bytes() == 0 {
                    pending_from.clear();
                }
            }
            Err(refusal) => refused.push((part.id, refusal.to_string())),
        }
    }
    Built {
        doc: document.into_doc(),
        refused,
    }
}

/// The shared text of a document.
pub fn text_of(doc: &Doc) -> String {
    let text = doc.get_or_insert_text(TEXT_NAME);
    text.get_string(&doc.transact())
}
