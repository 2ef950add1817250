//! Writing into a session's shared document from the server: the starter
//! code of the problem the host attaches, and only into an empty document.
//!
//! The check and the write happen in the caller's transaction, which holds
//! the session row `FOR UPDATE` (see [`crate::sessions::membership`]):
//! members' updates are stored with `FOR SHARE` on that row
//! ([`store::append`]), so none is stored between the moment the document
//! is read and the moment the starter code is; the document's compaction
//! lock is taken too, so the stored parts are read whole. The starter code
//! is one ordinary Yjs update (a fresh client id, inserting at the start),
//! stored like a member's and published on the document's channel, where
//! every replica's live document applies and relays it — or picks it up at
//! its next resync if the message is lost.
//!
//! A client may still hold edits it has not sent yet (offline, or in
//! flight): they merge with the starter code when they arrive, as any two
//! concurrent edits do. Nothing anyone typed is ever removed.

use sqlx::PgConnection;
use uuid::Uuid;
use yrs::{
    GetString, Text, Transact,
    sync::{Message, SyncMessage},
    updates::encoder::Encode,
};

use super::{Kind, MAX_DOCUMENT_BYTES, TEXT_NAME, live, store};
use crate::startup::ApiContext;

/// An update stored by [`insert_if_empty`], to publish once its transaction
/// has committed.
pub struct Seeded {
    session: Uuid,
    update: Vec<u8>,
}

/// Stores `text` as the document's content when the document holds nothing
/// but whitespace; `None` (nothing written) otherwise. Call it inside a
/// transaction holding the session row `FOR UPDATE`, then [`publish`] what
/// it returns after the commit.
pub async fn insert_if_empty(
    tx: &mut PgConnection,
    session: Uuid,
    text: &str,
) -> anyhow::Result<Option<Seeded>> {
    if text.is_empty() {
        return Ok(None);
    }
    // Waits for a compaction in progress, and keeps the next one out.
    sqlx::query!(
        "SELECT FROM pg_advisory_xact_lock(hashtextextended('document:' || $1::text || ':' || $2::text, 0))",
        session.to_string(),
        Kind::Code.as_str()
    )
    .execute(&mut *tx)
    .await?;
    let stored = store::load(&mut *tx, session, Kind::Code).await?;
    let doc = stored.doc;
    let shared = doc.get_or_insert_text(TEXT_NAME);
    if !shared.get_string(&doc.transact()).trim().is_empty() {
        return Ok(None);
    }
    let update = {
        let mut txn = doc.transact_mut();
        shared.insert(&mut txn, 0, text);
        txn.encode_update_v1()
    };
    if stored.bytes + update.len() > MAX_DOCUMENT_BYTES {
        anyhow::bail!("the starter code does not fit in the document");
    }
    sqlx::query!(
        // No author: the platform wrote it (the timeline shows `authorId: null`).
        "INSERT INTO document_updates (session_id, kind, payload) VALUES ($1, $2, $3)",
        session,
        Kind::Code.as_str(),
        update
    )
    .execute(&mut *tx)
    .await?;
    Ok(Some(Seeded { session, update }))
}

/// Sends a committed [`Seeded`] update to every replica's live document
/// (best effort: each re-reads the stored document every
/// [`super::RESYNC_INTERVAL`]).
pub async fn publish(ctx: &ApiContext, seeded: Seeded) {
    let message = Message::Sync(SyncMessage::Update(seeded.update)).encode_v1();
    // An origin no live document has, so every one of them applies it.
    let mut payload = Vec::with_capacity(16 + message.len());
    payload.extend_from_slice(Uuid::new_v4().as_bytes());
    payload.extend_from_slice(&message);
    let channel = live::channel(&ctx.config.redis.key_prefix, seeded.session, Kind::Code);
    let mut redis = ctx.redis.clone();
    let published: redis::RedisResult<()> = redis::cmd("PUBLISH")
        .arg(&channel)
        .arg(payload)
        .query_async(&mut redis)
        .await;
    if let Err(e) = published {
        tracing::warn!(session = %seeded.session, error = %e, "cannot relay the starter code; replicas pick it up at their next resync");
    }
}
