//! The document in PostgreSQL: a snapshot plus the updates appended since
//! (see the `documents` migration).
//!
//! Everything here reads and writes rows, never the in-memory document: a
//! compaction merges what the database holds, so a replica that missed an
//! update cannot drop it, and a document that fails to load is an error,
//! never an empty document written over the stored one.

use std::panic::{AssertUnwindSafe, catch_unwind};

use anyhow::{Context as _, anyhow};
use sqlx::{PgConnection, PgPool};
use uuid::Uuid;
use yrs::{Doc, GetString, ReadTxn, StateVector, Transact, Update, updates::decoder::Decode};

use super::TEXT_NAME;

/// A document as stored.
pub struct Stored {
    pub doc: Doc,
    /// Bytes stored (snapshot and updates): what the size limit counts.
    pub bytes: usize,
    /// The session has ended: the document is read-only.
    pub ended: bool,
}

/// Loads the session's document; `Ok` with an empty document only when
/// nothing was ever stored.
pub async fn load(db: &mut PgConnection, session: Uuid) -> anyhow::Result<Stored> {
    let ended = sqlx::query_scalar!(
        "SELECT status = 'ended' AS \"ended!\" FROM interview_sessions WHERE id = $1",
        session
    )
    .fetch_one(&mut *db)
    .await?;
    let (parts, bytes) = rows(db, session).await?;
    let doc = build(parts.iter().map(Vec::as_slice))?;
    Ok(Stored { doc, bytes, ended })
}

/// The document's current text, or `None` when it was never edited.
pub async fn text(db: &mut PgConnection, session: Uuid) -> anyhow::Result<Option<String>> {
    let (parts, _) = rows(db, session).await?;
    if parts.is_empty() {
        return Ok(None);
    }
    let doc = build(parts.iter().map(Vec::as_slice))?;
    Ok(Some(text_of(&doc)))
}

/// The snapshot (if any) followed by every appended update, and their size.
async fn rows(db: &mut PgConnection, session: Uuid) -> anyhow::Result<(Vec<Vec<u8>>, usize)> {
    let snapshot = sqlx::query_scalar!(
        "SELECT snapshot FROM documents WHERE session_id = $1",
        session
    )
    .fetch_optional(&mut *db)
    .await?;
    let updates = sqlx::query_scalar!(
        "SELECT payload FROM document_updates WHERE session_id = $1 ORDER BY id",
        session
    )
    .fetch_all(&mut *db)
    .await?;
    let parts: Vec<Vec<u8>> = snapshot.into_iter().chain(updates).collect();
    let bytes = parts.iter().map(Vec::len).sum();
    Ok((parts, bytes))
}

/// Stores one update unless the session has ended; `false` when it has.
///
/// The session row is share-locked, so an update racing the session's end
/// is either stored before the end commits or refused after it.
pub async fn append(db: &PgPool, session: Uuid, update: &[u8]) -> sqlx::Result<bool> {
    let stored = sqlx::query!(
        r#"INSERT INTO document_updates (session_id, payload)
           SELECT id, $2 FROM interview_sessions
           WHERE id = $1 AND status <> 'ended'
           FOR SHARE"#,
        session,
        update
    )
    .execute(db)
    .await?
    .rows_affected();
    Ok(stored == 1)
}

/// Merges the snapshot and the appended updates into a new snapshot, deletes
/// exactly the updates merged, mirrors the text into `interview_sessions.code`
/// and counts the edits as session activity. Returns the stored size after.
pub async fn compact(db: &PgPool, session: Uuid) -> anyhow::Result<usize> {
    let mut tx = db.begin().await?;
    // The row lock serialises compactions of one document; appends go on.
    let snapshot = sqlx::query_scalar!(
        "SELECT snapshot FROM documents WHERE session_id = $1 FOR UPDATE",
        session
    )
    .fetch_optional(&mut *tx)
    .await?;
    let updates = sqlx::query!(
        "SELECT id, payload, created_at FROM document_updates WHERE session_id = $1 ORDER BY id",
        session
    )
    .fetch_all(&mut *tx)
    .await?;
    let Some(last_edit) = updates.iter().map(|u| u.created_at).max() else {
        return Ok(snapshot.map_or(0, |s| s.len()));
    };
    let doc = build(
        snapshot
            .iter()
            .map(Vec::as_slice)
            .chain(updates.iter().map(|u| u.payload.as_slice())),
    )?;
    let merged = doc
        .transact()
        .encode_state_as_update_v1(&StateVector::default());
    let ids: Vec<i64> = updates.iter().map(|u| u.id).collect();
    sqlx::query!(
        r#"INSERT INTO documents (session_id, snapshot) VALUES ($1, $2)
           ON CONFLICT (session_id) DO UPDATE SET snapshot = $2, compacted_at = now()"#,
        session,
        merged
    )
    .execute(&mut *tx)
    .await?;
    // Exactly the rows merged: an update committed meanwhile stays.
    sqlx::query!("DELETE FROM document_updates WHERE id = ANY($1)", &ids)
        .execute(&mut *tx)
        .await?;
    sqlx::query!(
        r#"UPDATE interview_sessions
           SET code = $2, last_activity_at = GREATEST(last_activity_at, $3)
           WHERE id = $1"#,
        session,
        text_of(&doc),
        last_edit
    )
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(merged.len())
}

/// Applies stored updates to a new document. Any update that does not decode
/// or apply is an error (and so is a panic inside yrs on crafted input).
pub fn build<'a>(parts: impl Iterator<Item = &'a [u8]>) -> anyhow::Result<Doc> {
    let doc = Doc::new();
    doc.get_or_insert_text(TEXT_NAME);
    catch_unwind(AssertUnwindSafe(|| -> anyhow::Result<()> {
        let mut txn = doc.transact_mut();
        for (i, part) in parts.enumerate() {
            let update = Update::decode_v1(part)
                .with_context(|| format!("stored update {i} does not decode"))?;
            txn.apply_update(update)
                .with_context(|| format!("stored update {i} does not apply"))?;
        }
        Ok(())
    }))
    .map_err(|_| anyhow!("the stored document made yrs panic"))??;
    Ok(doc)
}

/// The shared text of a document.
pub fn text_of(doc: &Doc) -> String {
    let text = doc.get_or_insert_text(TEXT_NAME);
    text.get_string(&doc.transact())
}
