//! A live document's relay task: applies what the other replicas publish,
//! re-reads the stored document every [`RESYNC_INTERVAL`] (so a lost Redis
//! message only delays an edit), compacts, and forgets awareness states
//! nobody renewed; it ends when the last socket of this replica leaves.

use std::sync::{Arc, atomic::Ordering};

use axum::body::Bytes;
use tokio::sync::broadcast::error::RecvError;
use uuid::Uuid;
use yrs::{
    ReadTxn, StateVector, Transact,
    sync::{Message, SyncMessage, awareness::AwarenessUpdate},
    updates::encoder::Encode,
};

use super::{Frame, LiveDoc, State, decode, decode_update, lock};
use crate::{
    documents::{COMPACT_INTERVAL, Kind, RESYNC_INTERVAL, history, store},
    realtime::hub,
    startup::ApiContext,
};

impl LiveDoc {
    /// The relay task: other replicas' messages, resync, compaction,
    /// awareness expiry; ends when the last socket leaves.
    pub(super) async fn relay(self: Arc<Self>, ctx: ApiContext, mut relay: hub::Subscription) {
        let mut resync = tokio::time::interval(RESYNC_INTERVAL);
        let mut compact = tokio::time::interval(COMPACT_INTERVAL);
        resync.tick().await;
        compact.tick().await;
        loop {
            tokio::select! {
                () = self.stop.notified() => break,
                message = relay.receiver.recv() => match message {
                    Ok(payload) => self.remote(payload.bytes()).await,
                    Err(RecvError::Lagged(_)) => self.resync(&ctx).await,
                    Err(RecvError::Closed) => break,
                },
                _ = resync.tick() => {
                    self.resync(&ctx).await;
                    self.expire_awareness();
                }
                _ = compact.tick() => self.compact(&ctx).await,
                () = self.compact_soon.notified() => self.compact(&ctx).await,
            }
        }
    }

    /// Applies a message another replica published, and passes it on
    /// (an update only if it applies here).
    async fn remote(&self, payload: &Bytes) {
        let Some((origin, message)) = payload.split_first_chunk::<16>() else {
            return;
        };
        if Uuid::from_bytes(*origin) == self.origin {
            return;
        }
        let Some(messages) = decode(message) else {
            tracing::warn!(session = %self.session, "undecodable message on the document channel");
            return;
        };
        for decoded in messages {
            match decoded {
                Message::Sync(SyncMessage::Update(bytes)) => {
                    if !self.apply_stored(&bytes).await {
                        return;
                    }
                    self.bytes.fetch_add(bytes.len(), Ordering::Relaxed);
                }
                Message::Awareness(update) => {
                    let mut state = lock(&self.state);
                    // A client announced here is this replica's to speak for.
                    let State {
                        awareness, owners, ..
                    } = &mut *state;
                    let foreign = AwarenessUpdate {
                        clients: update
                            .clients
                            .into_iter()
                            .filter(|(client, _)| !owners.contains_key(client))
                            .collect(),
                    };
                    let _ = awareness.apply_update(foreign);
                }
                _ => {}
            }
        }
        let _ = self.local.send(Frame {
            from: 0,
            bytes: payload.slice(16..),
        });
    }

    /// Merges the stored document into this one and sends local sockets
    /// what they were missing (updates lost on the way from other replicas).
    async fn resync(&self, ctx: &ApiContext) {
        let stored = match ctx.db.acquire().await {
            Ok(mut conn) => store::load(&mut conn, self.session, self.kind).await,
            Err(e) => Err(e.into()),
        };
        let stored = match stored {
            Ok(stored) => stored,
            Err(e) => {
                tracing::warn!(session = %self.session, error = %e, "document resync failed");
                return;
            }
        };
        if stored.ended {
            self.set_read_only();
        }
        let full = stored
            .doc
            .transact()
            .encode_state_as_update_v1(&StateVector::default());
        let before = lock(&self.state).doc.doc().transact().state_vector();
        if !self.apply_stored(&full).await {
            return;
        }
        let missing = {
            let state = lock(&self.state);
            let missing = state
                .doc
                .doc()
                .transact()
                .encode_state_as_update_v1(&before);
            decode_update(&missing)
                .is_some_and(|u| !u.is_empty())
                .then_some(missing)
        };
        self.bytes.store(stored.bytes, Ordering::Relaxed);
        if let Some(missing) = missing {
            metrics::counter!("codecall_document_resyncs_total").increment(1);
            let _ = self.local.send(Frame {
                from: 0,
                bytes: Bytes::from(Message::Sync(SyncMessage::Update(missing)).encode_v1()),
            });
        }
    }

    async fn compact(&self, ctx: &ApiContext) {
        let pending = self.pending.load(Ordering::Relaxed);
        if pending == 0 {
            return;
        }
        let compacted = match ctx.db.acquire().await {
            Ok(mut conn) => {
                let cap = ctx.config.retention.history_max_bytes;
                compact_stored(&mut conn, self.session, self.kind, cap).await
            }
            Err(e) => Err(e.into()),
        };
        match compacted {
            Ok(bytes) => {
                self.pending.fetch_sub(pending, Ordering::Relaxed);
                self.bytes.store(bytes, Ordering::Relaxed);
            }
            Err(e) => tracing::warn!(session = %self.session, error = %e, "compaction failed"),
        }
    }
}

/// Compacts a stored document, then keeps its history within `history_cap`
/// bytes; answers the document's stored size.
pub(super) async fn compact_stored(
    conn: &mut sqlx::PgConnection,
    session: Uuid,
    kind: Kind,
    history_cap: i64,
) -> anyhow::Result<usize> {
    let bytes = store::compact(conn, session, kind).await?;
    if kind == Kind::Code {
        history::fold(conn, session, history_cap).await?;
    }
    Ok(bytes)
}
