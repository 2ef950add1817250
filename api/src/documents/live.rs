//! The documents this process has sockets for: one [`LiveDoc`] (a yrs `Doc`
//! with its awareness) per session and [`Kind`], loaded from PostgreSQL by the first
//! socket and dropped, after a final compaction, when the last one leaves.
//!
//! Every update a socket sends is checked first (applied to the document's
//! twin, [`Checked`]; one that does not apply closes the socket), then
//! stored ([`store::append`]), then applied, then sent to this process's
//! other sockets (a local `broadcast`) and to the other replicas (the
//! session's document channel in Redis, via the [`Hub`](crate::rooms::hub::Hub)).
//! One update of a document at a time goes through these steps, and updates
//! from other replicas and the stored document are applied through the same
//! checks. Each live document runs one relay
//! task that applies what other replicas publish, re-reads the stored
//! document every [`RESYNC_INTERVAL`] (so a lost Redis message only delays
//! an edit), compacts, and forgets awareness states nobody renewed.

use std::{
    collections::HashMap,
    panic::catch_unwind,
    sync::{
        Arc, Mutex, MutexGuard, PoisonError,
        atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering},
    },
};

use axum::body::Bytes;
use tokio::sync::{Notify, OnceCell, broadcast, broadcast::error::RecvError};
use uuid::Uuid;
use yrs::{
    ClientID, ReadTxn, StateVector, Transact, Update,
    encoding::read::Cursor,
    sync::{Awareness, Message, MessageReader, SyncMessage, awareness::AwarenessUpdate},
    updates::{
        decoder::{Decode, DecoderV1},
        encoder::Encode,
    },
};

use super::{
    CLOSE_INVALID_UPDATE, CLOSE_PENDING, COMPACT_AFTER_UPDATES, COMPACT_INTERVAL, Kind,
    MAX_AWARENESS_CLIENTS, MAX_AWARENESS_STATE_BYTES, MAX_DOCUMENT_BYTES, MAX_PENDING_BYTES,
    MAX_PENDING_UPDATES, RESYNC_INTERVAL,
    checked::{Check, Checked, Limits, Refused},
    store,
};
use crate::{
    error::Error,
    rooms::hub::{self, ROOM_BUFFER},
    startup::ApiContext,
};

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
                    Ok(mut conn) => compact_stored(&mut conn, session, kind, history_cap).await,
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
        messages.extend(awareness_message(&state.awareness));
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
        messages.extend(awareness_message(&state.awareness));
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

    /// Applies a client's awareness message; returns a reply for the sender
    /// when it announced itself with a clock the server has passed.
    ///
    /// y-websocket clients send back every awareness change they receive, so
    /// most entries are echoes: only an entry newer than the server's copy
    /// changes anything, and its sender becomes the client's owner. Entries
    /// for another local connection's client are ignored (no one edits
    /// another's cursor).
    async fn awareness(
        &self,
        ctx: &ApiContext,
        from: u64,
        update: AwarenessUpdate,
    ) -> Result<Option<Vec<u8>>, Refusal> {
        if update
            .clients
            .values()
            .any(|entry| entry.json.len() > MAX_AWARENESS_STATE_BYTES)
        {
            return Err(Refusal(1009, "awareness state too large"));
        }
        let (accepted, reply) = {
            let mut state = lock(&self.state);
            let State {
                awareness, owners, ..
            } = &mut *state;
            let mut accepted = HashMap::new();
            let mut revive = Vec::new();
            for (client, entry) in update.clients {
                let owner = owners.get(&client).copied();
                if owner.is_some_and(|owner| owner != from) {
                    continue;
                }
                let newer = awareness
                    .meta(client)
                    .is_none_or(|(clock, _)| entry.clock > clock);
                if newer {
                    if owner.is_none() {
                        let mine = owners.values().filter(|&&owner| owner == from).count();
                        if mine >= MAX_AWARENESS_CLIENTS {
                            return Err(Refusal(
                                1008,
                                "too many awareness clients on one connection",
                            ));
                        }
                        owners.insert(client, from);
                    }
                    accepted.insert(client, entry);
                } else if entry.json.as_ref() != "null"
                    && awareness.state::<serde::de::IgnoredAny>(client).is_none()
                {
                    // A client back after its state was removed (say, a
                    // reconnect) reuses its old clock, which the removal
                    // passed. Told of the removal, it bumps its clock and
                    // announces itself again.
                    revive.push(client);
                }
            }
            let accepted = AwarenessUpdate { clients: accepted };
            let changed = !accepted.clients.is_empty()
                && awareness
                    .apply_update_summary(accepted.clone())
                    .map_err(|_| Refusal(1003, "malformed awareness update"))?
                    .is_some();
            let reply = (!revive.is_empty())
                .then(|| awareness.update_with_clients(revive).ok())
                .flatten()
                .map(|update| Message::Awareness(update).encode_v1());
            (changed.then_some(accepted), reply)
        };
        if let Some(accepted) = accepted {
            // Echoed to the sender too, as the reference server does: a
            // y-websocket client that hears nothing for 30 s reconnects, and
            // its own 15-second awareness renewal is what it hears when alone.
            self.share(ctx, 0, Message::Awareness(accepted).encode_v1())
                .await;
        }
        Ok(reply)
    }

    /// Forgets the awareness states connection `from` announced (the client
    /// may not have said goodbye) and tells everyone they are gone.
    pub async fn disconnected(&self, ctx: &ApiContext, from: u64) {
        let message = {
            let mut state = lock(&self.state);
            let State {
                awareness, owners, ..
            } = &mut *state;
            let gone: Vec<ClientID> = owners
                .iter()
                .filter(|&(_, &owner)| owner == from)
                .map(|(&client, _)| client)
                .collect();
            for client in &gone {
                owners.remove(client);
                awareness.remove_state(*client);
            }
            if gone.is_empty() {
                return;
            }
            match awareness.update_with_clients(gone) {
                Ok(update) => Message::Awareness(update).encode_v1(),
                Err(_) => return,
            }
        };
        self.share(ctx, from, message).await;
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

    /// The relay task: other replicas' messages, resync, compaction,
    /// awareness expiry; ends when the last socket leaves.
    async fn relay(self: Arc<Self>, ctx: ApiContext, mut relay: hub::Subscription) {
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

    /// Drops awareness states not renewed within [`super::AWARENESS_TIMEOUT`]
    /// (clients renew theirs every 15 s): those of clients whose replica
    /// died, which no disconnect will clear.
    fn expire_awareness(&self) {
        let message = {
            let mut state = lock(&self.state);
            let State {
                awareness, owners, ..
            } = &mut *state;
            let now = now_ms();
            let stale: Vec<ClientID> = awareness
                .iter()
                .filter(|(client, s)| {
                    s.data.is_some()
                        && !owners.contains_key(client)
                        && now.saturating_sub(s.last_updated)
                            > super::AWARENESS_TIMEOUT.as_millis() as u64
                })
                .map(|(client, _)| client)
                .collect();
            for client in &stale {
                awareness.remove_state(*client);
            }
            if stale.is_empty() {
                return;
            }
            match awareness.update_with_clients(stale) {
                Ok(update) => Message::Awareness(update).encode_v1(),
                Err(_) => return,
            }
        };
        let _ = self.local.send(Frame {
            from: 0,
            bytes: Bytes::from(message),
        });
    }
}

/// Compacts a stored document, then keeps its history within `history_cap`
/// bytes; answers the document's stored size.
async fn compact_stored(
    conn: &mut sqlx::PgConnection,
    session: Uuid,
    kind: Kind,
    history_cap: i64,
) -> anyhow::Result<usize> {
    let bytes = store::compact(conn, session, kind).await?;
    if kind == Kind::Code {
        super::history::fold(conn, session, history_cap).await?;
    }
    Ok(bytes)
}

/// Every awareness state, as one message (`None` when there is none).
fn awareness_message(awareness: &Awareness) -> Option<Vec<u8>> {
    let update = awareness.update().ok()?;
    (!update.clients.is_empty()).then(|| Message::Awareness(update).encode_v1())
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

fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// A poisoned lock (a panic elsewhere) still guards consistent data here:
/// every panic-prone yrs call runs under `catch_unwind`.
fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}
