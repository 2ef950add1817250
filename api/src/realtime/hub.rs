//! One Redis subscriber connection per api process, fanned out locally.
//!
//! Every room event travels on the session's Redis channel, published by
//! whichever process caused it (an api replica, a worker). Each replica keeps
//! a single RESP3 connection subscribed to the channels of the rooms it has
//! sockets for, and hands each message to a local `broadcast` channel that
//! every socket of that room reads. The connection resubscribes by itself
//! after a Redis restart. A slow socket lags its own receiver only.
//!
//! Payloads are bytes: the events room carries JSON text, the shared
//! document's channel ([`crate::documents`]) binary Yjs messages, the
//! revocations' channel ([`super::lifetime`]) JSON. Each message is
//! received once per replica and shared by every local socket as it is: its
//! UTF-8 is checked once, and a `session.updated` is read once
//! ([`Payload::membership`]); a socket sends the same buffer, no copy, no
//! re-encoding. That keeps a fan-out's cost per socket to the frame write.

use std::{
    collections::HashMap,
    sync::{Arc, OnceLock},
    time::Duration,
};

use anyhow::Context as _;
use axum::{body::Bytes, extract::ws::Utf8Bytes};
use redis::{
    IntoConnectionInfo, ProtocolVersion, PushInfo, PushKind, Value,
    aio::{ConnectionManager, ConnectionManagerConfig},
};
use run_contract::Audience;
use tokio::sync::{Mutex, broadcast, mpsc, watch};

use super::membership::Membership;

/// One message as published, shared by every local receiver (a clone is a
/// reference count: a room's ring buffer holds one pointer per message).
#[derive(Clone)]
pub struct Payload(Arc<Published>);

struct Published {
    bytes: Bytes,
    /// For an events-room message: who it is for and the event's JSON (the
    /// bytes after the audience tag, no copy), checked as UTF-8 once. `None`
    /// for bytes that are not UTF-8 or name an unknown audience.
    event: Option<(Audience, Utf8Bytes)>,
    /// What a `session.updated` says about membership, read once, by the
    /// first socket that asks.
    membership: OnceLock<Option<Membership>>,
}

impl Payload {
    pub fn new(bytes: impl Into<Bytes>) -> Payload {
        let bytes = bytes.into();
        let event = std::str::from_utf8(&bytes).ok().and_then(|text| {
            let (audience, json) = run_contract::addressee(text)?;
            let json = bytes.slice(text.len() - json.len()..);
            Some((audience, Utf8Bytes::try_from(json).ok()?))
        });
        Payload(Arc::new(Published {
            bytes,
            event,
            membership: OnceLock::new(),
        }))
    }

    pub fn bytes(&self) -> &Bytes {
        &self.0.bytes
    }

    /// The event's audience and JSON, as a text frame's contents.
    pub fn event(&self) -> Option<(Audience, &Utf8Bytes)> {
        self.0
            .event
            .as_ref()
            .map(|(audience, json)| (*audience, json))
    }

    /// The session's status, host and members with their roles, when this
    /// is a `session.updated` (always addressed to everyone).
    pub fn membership(&self) -> Option<&Membership> {
        self.0
            .membership
            .get_or_init(|| match self.event() {
                Some((Audience::Everyone, json)) => Membership::read(json),
                _ => None,
            })
            .as_ref()
    }
}

/// Messages buffered per room for slow sockets before they lag. tokio's
/// broadcast allocates every slot when the room opens (32 bytes a slot:
/// 8 KiB a room, ~4 KiB a socket at two per room), not per socket. Fewer
/// would save memory but let a socket that keeps up fall behind during a
/// burst of output published back to back (64 did, in the lag test).
pub const ROOM_BUFFER: usize = 256;

/// Gives a map's spare capacity back once it is mostly empty: a burst of
/// sockets grows the per-replica maps, and a `HashMap` never shrinks alone.
pub(crate) fn shrink_when_sparse<K: Eq + std::hash::Hash, V>(map: &mut HashMap<K, V>) {
    if map.capacity() > 64 && map.len() * 4 < map.capacity() {
        map.shrink_to(map.len() * 2);
    }
}

pub struct Hub {
    subscriber: ConnectionManager,
    rooms: Mutex<HashMap<String, Room>>,
    /// Counts the subscriber's lost connections: whoever must make up for
    /// messages published while it was away watches this.
    disconnections: watch::Sender<u64>,
}

struct Room {
    sender: broadcast::Sender<Payload>,
    sockets: usize,
}

/// A socket's membership in a room; leaving happens on drop.
pub struct Subscription {
    pub receiver: broadcast::Receiver<Payload>,
    hub: Arc<Hub>,
    channel: String,
}

impl Drop for Subscription {
    fn drop(&mut self) {
        let (hub, channel) = (Arc::clone(&self.hub), std::mem::take(&mut self.channel));
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            runtime.spawn(async move { hub.leave(&channel).await });
        }
    }
}

impl Hub {
    /// Connects lazily (the api starts while Redis is down) with RESP3 push
    /// messages and automatic resubscription.
    pub fn new(url: &str) -> anyhow::Result<Arc<Hub>> {
        let info = url
            .into_connection_info()
            .context("REDIS_URL is not a valid Redis URL")?;
        let settings = info
            .redis_settings()
            .clone()
            .set_protocol(ProtocolVersion::RESP3);
        let client = redis::Client::open(info.set_redis_settings(settings))
            .context("cannot set up the Redis subscriber")?;
        let (push_tx, push_rx) = mpsc::unbounded_channel::<PushInfo>();
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(Duration::from_secs(2)))
            .set_response_timeout(Some(Duration::from_secs(5)))
            .set_push_sender(push_tx)
            .set_automatic_resubscription();
        let subscriber = ConnectionManager::new_lazy_with_config(client, config)
            .context("cannot set up the Redis subscriber")?;
        let hub = Arc::new(Hub {
            subscriber,
            rooms: Mutex::new(HashMap::new()),
            disconnections: watch::Sender::new(0),
        });
        tokio::spawn(Arc::clone(&hub).dispatch(push_rx));
        Ok(hub)
    }

    async fn dispatch(self: Arc<Self>, mut pushes: mpsc::UnboundedReceiver<PushInfo>) {
        while let Some(push) = pushes.recv().await {
            if push.kind != PushKind::Message {
                if push.kind == PushKind::Disconnection {
                    tracing::warn!("room subscriber lost Redis; it resubscribes on reconnect");
                    self.disconnections.send_modify(|n| *n += 1);
                }
                continue;
            }
            let mut data = push.data.into_iter();
            let (Some(Value::BulkString(channel)), Some(Value::BulkString(payload))) =
                (data.next(), data.next())
            else {
                continue;
            };
            let channel = String::from_utf8_lossy(&channel);
            let rooms = self.rooms.lock().await;
            if let Some(room) = rooms.get(channel.as_ref()) {
                let _ = room.sender.send(Payload::new(payload));
            }
        }
    }

    /// Joins the room on `channel`, subscribing in Redis for the first socket.
    pub async fn join(self: &Arc<Self>, channel: &str) -> redis::RedisResult<Subscription> {
        let mut rooms = self.rooms.lock().await;
        let receiver = match rooms.get_mut(channel) {
            Some(room) => {
                room.sockets += 1;
                room.sender.subscribe()
            }
            None => {
                // The lock is held across the subscribe, so a concurrent
                // leave cannot unsubscribe after this subscribe.
                self.subscriber.clone().subscribe(channel).await?;
                let (sender, receiver) = broadcast::channel(ROOM_BUFFER);
                rooms.insert(channel.to_owned(), Room { sender, sockets: 1 });
                receiver
            }
        };
        Ok(Subscription {
            receiver,
            hub: Arc::clone(self),
            channel: channel.to_owned(),
        })
    }

    async fn leave(&self, channel: &str) {
        let mut rooms = self.rooms.lock().await;
        let Some(room) = rooms.get_mut(channel) else {
            return;
        };
        room.sockets = room.sockets.saturating_sub(1);
        if room.sockets == 0 {
            rooms.remove(channel);
            shrink_when_sparse(&mut rooms);
            if let Err(e) = self.subscriber.clone().unsubscribe(channel).await {
                tracing::warn!(channel, error = %e, "could not unsubscribe");
            }
        }
    }

    /// Changes each time the subscriber loses its connection to Redis.
    pub fn disconnections(&self) -> watch::Receiver<u64> {
        self.disconnections.subscribe()
    }

    /// Answers once the subscriber is connected again; a reconnection
    /// resubscribes every channel before it answers anything.
    pub async fn ping(&self) -> redis::RedisResult<()> {
        redis::cmd("PING")
            .query_async::<()>(&mut self.subscriber.clone())
            .await
    }

    /// Rooms with at least one socket on this replica, and their channels.
    pub async fn rooms(&self) -> Vec<String> {
        self.rooms.lock().await.keys().cloned().collect()
    }
}
