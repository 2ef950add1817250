//! The documents this process has sockets for: one [`LiveDoc`] (a yrs `Doc`
//! with its awareness) per session and [`Kind`], loaded from PostgreSQL by the first
//! socket and dropped, after a final compaction, when the last one leaves.
//!
//! Every update a socket sends is checked first (applied to the document's
//! twin, [`Checked`]; one that does not apply closes the socket), then
//! stored ([`store::append`]), then applied, then sent to this process's
//! other sockets (a local `broadcast`) and to the other replicas (the
//! session's document channel in Redis, via the [`Hub`](crate::realtime::hub::Hub)).
//! One update of a document at a time goes through these steps, and updates
//! from other replicas and the stored document are applied through the same
//! checks.
//!
//! - this file: the registry of live documents, and a document's sync
//!   messages (a member's updates checked, stored, applied and shared).
//! - [`awareness`]: cursors and names, announced, left behind, expired.
//! - [`relay`]: each live document's task — other replicas' messages, the
//!   periodic resync from PostgreSQL, compaction.

mod awareness;
mod relay;

use std::{
    collections::HashMap,
    panic::catch_unwind,
    sync::{
        Arc, Mutex, MutexGuard, PoisonError,
        atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering},
    },
};

use axum::body::Bytes;
use tokio::sync::{Notify, OnceCell, broadcast};
use uuid::Uuid;
use yrs::{
    ClientID, ReadTxn, StateVector, Transact, Update,
    encoding::read::Cursor,
    sync::{Awareness, Message, MessageReader, SyncMessage},
    updates::{
        decoder::{Decode, DecoderV1},
        encoder::Encode,
    },
};

use super::{
    CLOSE_INVALID_UPDATE, CLOSE_PENDING, COMPACT_AFTER_UPDATES, Kind, MAX_DOCUMENT_BYTES,
    MAX_PENDING_BYTES, MAX_PENDING_UPDATES,
    checked::{Check, Checked, Limits, Refused},
    store,
};
use crate::{error::Error, realtime::hub::ROOM_BUFFER, startup::ApiContext};

/// A y-websocket message for local sockets, with the connection that sent
/// it (which does not get it back); 0 for messages from other replicas.
#[derive(Clone)]
pub struct Frame {
    pub from: u64,
    pub bytes: Bytes,
}

/// Why a connection must close, with its WebSocket close code.
#[derive(Debug)]
pub struct Refusal(pub u16, pub &'static str);

/// The Redis channel carrying one of a session's documents' messages between
/// replicas: each payload is the publishing document's 16-byte id, then one
/// message. The notes have their own channel, which only notes sockets read.
pub fn channel(prefix: &str, session: Uuid, kind: Kind) -> String {
    match kind {
        Kind::Code => format!("{}{session}", channel_prefix(prefix)),
        Kind::Notes => format!("{}{session}:notes", channel_prefix(prefix)),
    }
}

/// What every document channel starts with.
pub fn channel_prefix(prefix: &str) -> String {
    format!("{prefix}doc:")
}

/// The live documents of this process.
#[derive(Default)]
pub struct Documents {
    slots: Mutex<HashMap<(Uuid, Kind), Slot>>,
}

struct Slot {
    sockets: usize,
    doc: Arc<OnceCell<Arc<LiveDoc>>>,
}

/// A socket's hold on a live document; released on drop.
pub struct Handle {
    pub doc: Arc<LiveDoc>,
    _claim: Claim,
}

/// One count in a slot, taken before the document is loaded, so an opener
/// that fails or is cancelled mid-load gives it back too.
struct Claim {
    documents: Arc<Documents>,
    ctx: ApiContext,
    session: Uuid,
    kind: Kind,
}

impl Drop for Claim {
    fn drop(&mut self) {
        self.documents.release(&self.ctx, self.session, self.kind);
    }
}

impl Documents {
    /// The session's live document, loaded (and subscribed to the other
    /// replicas) by the first socket. A load failure is `503`: nothing is
    /// served, and nothing stored is touched.
    pub async fn open(
        self: &Arc<Self>,
        ctx: &ApiContext,
        session: Uuid,
        kind: Kind,
    ) -> Result<Handle, Error> {
        let cell = {
            let mut slots = lock(&self.slots);
            let slot = slots.entry((session, kind)).or_insert_with(|| Slot {
                sockets: 0,
                doc: Arc::new(OnceCell::new()),
            });
            slot.sockets += 1;
            Arc::clone(&slot.doc)
        };
        let claim = Claim {
            documents: Arc::clone(self),
            ctx: ctx.clone(),
            session,
            kind,
        };
        match cell
            .get_or_try_init(|| LiveDoc::start(ctx, session, kind))
            .await
        {
            Ok(doc) => Ok(Handle {
                doc: Arc::clone(doc),
                _claim: claim,
            }),
            Err(e) => {
                tracing::error!(%session, error = %e, "cannot load the shared document");
                Err(Error::Unavailable {
                    code: "document_unavailable",
                    message: "the shared document cannot be loaded right now".into(),
                })
            }
        }
    }

    fn release(&self, ctx: &ApiContext, session: Uuid, kind: Kind) {
        let last = {
            let mut slots = lock(&self.slots);
            let Some(slot) = slots.get_mut(&(session, kind)) else {
                return;
            };
            slot.sockets -= 1;
            if slot.sockets > 0 {
                return;
            }
            slots
                .remove(&(session, kind))
                .and_then(|slot| slot.doc.get().cloned())
        };
        if let Some(doc) = last {
            doc.stop.notify_one();
            let db = ctx.db.clone();
            let history_cap = ctx.config.retention.history_max_bytes;
            let Ok(runtime) = tokio::runtime::Handle::try_current() else {
                return;
            };
            runtime.spawn(async move {
                let compacted = match db.acquire().await {
                    Ok(mut conn) => relay::compact_stored(&mut conn, session, kind, history_cap).await,
                    Err(e) => Err(e.into()),
                };
                if let Err(e) = compacted {
                    tracing::warn!(%session, error = %e, "final compaction failed; updates stay appended");
                }
            });
        }
    }

    /// Documents live here.
    pub fn len(&self) -> usize {
        lock(&self.slots).len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// One session's document in this process.
pub struct LiveDoc {
    pub session: Uuid,
    pub kind: Kind,
    /// This instance's id on the Redis channel (to skip its own messages).
    origin: Uuid,
    channel: String,
    state: Mutex<State>,
    /// Held while an update is checked, stored and applied, and while one
    /// from elsewhere is applied: the twin then differs from the document
    /// only by the update in hand.
    writer: tokio::sync::Mutex<()>,
    local: broadcast::Sender<Frame>,
    read_only: AtomicBool,
    /// Stored size as this replica knows it (snapshot + updates seen since).
    bytes: AtomicUsize,
    /// Updates this replica appended since its last compaction.
    pending: AtomicUsize,
    next_connection: AtomicU64,
    compact_soon: Notify,
    stop: Notify,
}

struct State {
    /// The document (the one `awareness` holds) and its twin.
    doc: Checked,
    awareness: Awareness,
    /// Which local connection announced each awareness client.
    owners: HashMap<ClientID, u64>,
}

impl LiveDoc {
    async fn start(ctx: &ApiContext, session: Uuid, kind: Kind) -> anyhow::Result<Arc<LiveDoc>> {
        let channel = channel(&ctx.config.redis.key_prefix, session, kind);
        // Subscribe before loading: an update published meanwhile arrives
        // twice at worst, and applying an update twice changes nothing.
        let relay = ctx.hub.join(&channel).await?;
        let mut conn = ctx.db.acquire().await?;
        let stored = store::load(&mut conn, session, kind).await?;
        let doc = Arc::new(LiveDoc {
            session,
            kind,
            origin: Uuid::new_v4(),
            channel,
            state: Mutex::new(State {
                doc: Checked::new(stored.doc.clone()),
                awareness: Awareness::new(stored.doc),
                owners: HashMap::new(),
            }),
            writer: tokio::sync::Mutex::new(()),
            local: broadcast::channel(ROOM_BUFFER).0,
            read_only: AtomicBool::new(stored.ended),
            bytes: AtomicUsize::new(stored.bytes),
            pending: AtomicUsize::new(0),
            next_connection: AtomicU64::new(1),
            compact_soon: Notify::new(),
            stop: Notify::new(),
        });
        tokio::spawn(Arc::clone(&doc).relay(ctx.clone(), relay));
        Ok(doc)
    }

    pub fn connection_id(&self) -> u64 {
        self.next_connection.fetch_add(1, Ordering::Relaxed)
    }

    pub fn subscribe(&self) -> broadcast::Receiver<Frame> {
        self.local.subscribe()
    }

    pub fn set_read_only(&self) {
        self.read_only.store(true, Ordering::Relaxed);
    }

    /// What the server sends first: its state vector (sync step 1) and, when
    /// anyone is present, every awareness state.
    pub fn greeting(&self) -> Vec<Vec<u8>> {
        let state = lock(&self.state);
        let sv = state.awareness.doc().transact().state_vector();
        let mut messages = vec![Message::Sync(SyncMessage::SyncStep1(sv)).encode_v1()];
        messages.extend(awareness::awareness_message(&state.awareness));
        messages
    }

    /// The whole document and awareness, for a socket that fell behind.
    pub fn full_state(&self) -> Vec<Vec<u8>> {
        let state = lock(&self.state);
        let update = state
            .awareness
            .doc()
            .transact()
            .encode_state_as_update_v1(&StateVector::default());
        let mut messages = vec![Message::Sync(SyncMessage::SyncStep2(update)).encode_v1()];
        messages.extend(awareness::awareness_message(&state.awareness));
        messages
    }

    /// Handles one binary frame from connection `from`; returns the replies
    /// for that connection. Malformed input is a [`Refusal`] (1003).
    pub async fn receive(
        &self,
        ctx: &ApiContext,
        from: u64,
        author: Uuid,
        data: &[u8],
    ) -> Result<Vec<Vec<u8>>, Refusal> {
        let messages = decode(data).ok_or(Refusal(1003, "malformed y-websocket message"))?;
        let mut replies = Vec::new();
        for message in messages {
            match message {
                Message::Sync(SyncMessage::SyncStep1(sv)) => {
                    let state = lock(&self.state);
                    let update = state
                        .awareness
                        .doc()
                        .transact()
                        .encode_state_as_update_v1(&sv);
                    replies.push(Message::Sync(SyncMessage::SyncStep2(update)).encode_v1());
                }
                Message::Sync(SyncMessage::SyncStep2(update) | SyncMessage::Update(update)) => {
                    self.update(ctx, from, author, update).await?;
                }
                Message::Awareness(update) => {
                    replies.extend(self.awareness(ctx, from, update).await?);
                }
                Message::AwarenessQuery => {
                    // Answered even when nobody is there, as the reference server does.
                    let state = lock(&self.state);
                    if let Ok(update) = state.awareness.update() {
                        replies.push(Message::Awareness(update).encode_v1());
                    }
                }
                // Auth is the server's to send; other tags are extensions we do not speak.
                Message::Auth(_) | Message::Custom(..) => {}
            }
        }
        Ok(replies)
    }

    async fn update(
        &self,
        ctx: &ApiContext,
        from: u64,
        author: Uuid,
        bytes: Vec<u8>,
    ) -> Result<(), Refusal> {
        let update = decode_update(&bytes).ok_or(Refusal(1003, "malformed document update"))?;
        if update.is_empty() {
            return Ok(());
        }
        drop(update);
        if self.read_only.load(Ordering::Relaxed) {
            metrics::counter!("codecall_document_updates_refused_total", "reason" => "read_only")
                .increment(1);
            return Ok(());
        }
        if self.bytes.load(Ordering::Relaxed) + bytes.len() > MAX_DOCUMENT_BYTES {
            metrics::counter!("codecall_document_updates_refused_total", "reason" => "size")
                .increment(1);
            tracing::info!(session = %self.session, "update refused: the document is at its size limit");
            return Ok(());
        }
        let writer = self.writer.lock().await;
        let check = lock(&self.state).doc.check(
            &bytes,
            Some(&Limits {
                max_pending_bytes: MAX_PENDING_BYTES,
                max_pending_updates: MAX_PENDING_UPDATES,
            }),
        );
        let check = match check {
            Ok(check) => check,
            Err(refused) => {
                tracing::warn!(session = %self.session, %refused, "update refused");
                return Err(match refused {
                    Refused::Invalid(_) => {
                        metrics::counter!("codecall_document_updates_refused_total", "reason" => "invalid")
                            .increment(1);
                        Refusal(
                            CLOSE_INVALID_UPDATE,
                            "the update does not apply to the document",
                        )
                    }
                    Refused::Pending { .. } => {
                        metrics::counter!("codecall_document_updates_refused_total", "reason" => "pending")
                            .increment(1);
                        Refusal(
                            CLOSE_PENDING,
                            "too many updates waiting for items the server has not seen",
                        )
                    }
                });
            }
        };
        match store::append(&ctx.db, self.session, self.kind, author, &bytes).await {
            Ok(true) => {}
            Ok(false) => {
                lock(&self.state).doc.rollback();
                self.set_read_only();
                metrics::counter!("codecall_document_updates_refused_total", "reason" => "read_only")
                    .increment(1);
                return Ok(());
            }
            Err(e) => {
                // Not stored, so not applied: the client keeps the edit and
                // sends it again when it reconnects (sync step 2).
                tracing::warn!(session = %self.session, error = %e, "cannot store a document update");
                lock(&self.state).doc.rollback();
                return Err(Refusal(1011, "the document cannot be saved right now"));
            }
        }
        self.commit(&bytes, check);
        drop(writer);
        self.bytes.fetch_add(bytes.len(), Ordering::Relaxed);
        if self.pending.fetch_add(1, Ordering::Relaxed) + 1 >= COMPACT_AFTER_UPDATES {
            self.compact_soon.notify_one();
        }
        metrics::counter!("codecall_document_updates_total").increment(1);
        self.share(
            ctx,
            from,
            Message::Sync(SyncMessage::Update(bytes)).encode_v1(),
        )
        .await;
        Ok(())
    }

    fn commit(&self, bytes: &[u8], check: Check) {
        if check.drops_pending {
            metrics::counter!("codecall_document_pending_dropped_total").increment(1);
            tracing::warn!(session = %self.session, "pending document items do not apply: dropped");
        }
        lock(&self.state).doc.commit(bytes, check);
    }

    /// Applies an update another replica stored (or the stored document),
    /// through the same checks as a member's; `false` when it does not apply.
    async fn apply_stored(&self, bytes: &[u8]) -> bool {
        let _writer = self.writer.lock().await;
        let check = lock(&self.state).doc.check(bytes, None);
        match check {
            Ok(check) => {
                self.commit(bytes, check);
                true
            }
            Err(refused) => {
                tracing::warn!(session = %self.session, %refused, "a stored update does not apply here");
                false
            }
        }
    }

    /// Sends a message to this process's other sockets and to the other replicas.
    async fn share(&self, ctx: &ApiContext, from: u64, message: Vec<u8>) {
        let mut payload = Vec::with_capacity(16 + message.len());
        payload.extend_from_slice(self.origin.as_bytes());
        payload.extend_from_slice(&message);
        let _ = self.local.send(Frame {
            from,
            bytes: Bytes::from(message),
        });
        let mut redis = ctx.redis.clone();
        let published: redis::RedisResult<()> = redis::cmd("PUBLISH")
            .arg(&self.channel)
            .arg(payload)
            .query_async(&mut redis)
            .await;
        if let Err(e) = published {
            // The other replicas catch up at their next resync.
            tracing::warn!(session = %self.session, error = %e, "cannot relay a document message");
        }
    }
}

/// The messages in one frame; `None` if any is malformed. yrs asserts on
/// some impossible values, so a panic while decoding counts as malformed.
fn decode(data: &[u8]) -> Option<Vec<Message>> {
    catch_unwind(|| {
        let mut decoder = DecoderV1::new(Cursor::new(data));
        MessageReader::new(&mut decoder).collect::<Result<Vec<_>, _>>()
    })
    .ok()?
    .ok()
    .filter(|messages| !messages.is_empty())
}

fn decode_update(bytes: &[u8]) -> Option<Update> {
    catch_unwind(|| Update::decode_v1(bytes)).ok()?.ok()
}

/// A poisoned lock (a panic elsewhere) still guards consistent data here:
/// every panic-prone yrs call runs under `catch_unwind`.
fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}
