//! Awareness (cursors, selections, names) of a live document: what a
//! client announces, what a connection leaves behind when it goes, and
//! what nobody renewed. A client announced on this replica is this
//! replica's to speak for; the others' states arrive through the relay.

use std::collections::HashMap;

use axum::body::Bytes;
use yrs::{
    ClientID,
    sync::{Awareness, Message, awareness::AwarenessUpdate},
    updates::encoder::Encode,
};

use super::{Frame, LiveDoc, Refusal, State, lock};
use crate::{
    documents::{AWARENESS_TIMEOUT, MAX_AWARENESS_CLIENTS, MAX_AWARENESS_STATE_BYTES},
    startup::ApiContext,
};

impl LiveDoc {
    /// Applies a client's awareness message; returns a reply for the sender
    /// when it announced itself with a clock the server has passed.
    ///
    /// y-websocket clients send back every awareness change they receive, so
    /// most entries are echoes: only an entry newer than the server's copy
    /// changes anything, and its sender becomes the client's owner. Entries
    /// for another local connection's client are ignored (no one edits
    /// another's cursor).
    pub(super) async fn awareness(
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
                .then(|| states_message(awareness, revive))
                .flatten();
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
            }
            let Some(message) = remove_states(awareness, gone) else {
                return;
            };
            message
        };
        self.share(ctx, from, message).await;
    }

    /// Drops awareness states not renewed within [`AWARENESS_TIMEOUT`]
    /// (clients renew theirs every 15 s): those of clients whose replica
    /// died, which no disconnect will clear.
    pub(super) fn expire_awareness(&self) {
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
                        && now.saturating_sub(s.last_updated) > AWARENESS_TIMEOUT.as_millis() as u64
                })
                .map(|(client, _)| client)
                .collect();
            let Some(message) = remove_states(awareness, stale) else {
                return;
            };
            message
        };
        let _ = self.local.send(Frame {
            from: 0,
            bytes: Bytes::from(message),
        });
    }
}

/// The states of `clients`, as one message (a removed state says so).
fn states_message(awareness: &Awareness, clients: Vec<ClientID>) -> Option<Vec<u8>> {
    let update = awareness.update_with_clients(clients).ok()?;
    Some(Message::Awareness(update).encode_v1())
}

/// Removes the states of `clients`; the message telling the peers so
/// (`None` when there is none to remove).
fn remove_states(awareness: &mut Awareness, clients: Vec<ClientID>) -> Option<Vec<u8>> {
    if clients.is_empty() {
        return None;
    }
    for client in &clients {
        awareness.remove_state(*client);
    }
    states_message(awareness, clients)
}

/// Every awareness state, as one message (`None` when there is none).
pub(super) fn awareness_message(awareness: &Awareness) -> Option<Vec<u8>> {
    let update = awareness.update().ok()?;
    (!update.clients.is_empty()).then(|| Message::Awareness(update).encode_v1())
}

fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}
