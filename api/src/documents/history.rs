//! The code document's history, for replay (see the `document_history`
//! migration): every update as its author sent it, with its time, copied
//! there by [`super::store::compact`] in the transaction that folds it into
//! the snapshot. The live document's size limit never counts it.
//!
//! A session's history is bounded by `SESSION_HISTORY_MAX_BYTES`: [`fold`]
//! merges its oldest rows (half of its bytes) into one checkpoint whenever
//! it is over. Yjs updates merge without loss, so applying the history in
//! order still ends at the document's exact text; only the earliest typing
//! is replayed in fewer steps. A history holds at most the cap plus one
//! checkpoint, and a checkpoint is no larger than the document it rebuilds.

use sqlx::{Connection as _, PgConnection};
use uuid::Uuid;
use yrs::merge_updates_v1;

/// Folds the session's oldest history rows into one checkpoint while the
/// history is over `max_bytes` (each pass folds the oldest half of its
/// bytes, the previous checkpoint included); returns the rows folded.
pub async fn fold(db: &mut PgConnection, session: Uuid, max_bytes: i64) -> anyhow::Result<usize> {
    let mut folded = 0;
    loop {
        match fold_once(db, session, max_bytes).await? {
            0 => return Ok(folded),
            n => folded += n,
        }
    }
}

/// One pass of [`fold`]: 0 when the history is within its cap (or cannot
/// fold further).
async fn fold_once(db: &mut PgConnection, session: Uuid, max_bytes: i64) -> anyhow::Result<usize> {
    let total = sqlx::query_scalar!(
        r#"SELECT coalesce(sum(octet_length(payload)), 0)::bigint AS "bytes!"
           FROM document_history WHERE session_id = $1"#,
        session
    )
    .fetch_one(&mut *db)
    .await?;
    if total <= max_bytes {
        return Ok(0);
    }
    let mut tx = db.begin().await?;
    // One fold of a session at a time (compactions append meanwhile).
    sqlx::query!(
        "SELECT FROM pg_advisory_xact_lock(hashtextextended('history:' || $1::text, 0))",
        session.to_string()
    )
    .execute(&mut *tx)
    .await?;
    let rows = sqlx::query!(
        r#"SELECT id, seq, author_id, payload, created_at, updates FROM document_history
           WHERE session_id = $1 ORDER BY created_at, seq"#,
        session
    )
    .fetch_all(&mut *tx)
    .await?;
    let total: i64 = rows.iter().map(|r| r.payload.len() as i64).sum();
    let mut folded = 0;
    let mut bytes = 0i64;
    while folded < rows.len() && (bytes < total / 2 || folded < 2) {
        bytes += rows[folded].payload.len() as i64;
        folded += 1;
    }
    let oldest = &rows[..folded];
    if oldest.len() < 2 {
        return Ok(0);
    }
    let payloads: Vec<&[u8]> = oldest.iter().map(|r| r.payload.as_slice()).collect();
    // yrs asserts on some impossible input: a panic is an error here too.
    let merged = std::panic::catch_unwind(|| merge_updates_v1(&payloads))
        .map_err(|_| anyhow::anyhow!("merging history rows made yrs panic"))??;
    let last = oldest.last().expect("two rows or more");
    let author = oldest
        .iter()
        .all(|r| r.author_id == oldest[0].author_id)
        .then_some(oldest[0].author_id)
        .flatten();
    let updates: i32 = oldest.iter().map(|r| r.updates).sum();
    let ids: Vec<i64> = oldest.iter().map(|r| r.id).collect();
    sqlx::query!("DELETE FROM document_history WHERE id = ANY($1)", &ids)
        .execute(&mut *tx)
        .await?;
    sqlx::query!(
        r#"INSERT INTO document_history (session_id, seq, author_id, payload, created_at, updates)
           VALUES ($1, $2, $3, $4, $5, $6)"#,
        session,
        last.seq,
        author,
        merged,
        last.created_at,
        updates
    )
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    metrics::counter!("codecall_document_history_folded_total").increment(ids.len() as u64);
    Ok(ids.len())
}
