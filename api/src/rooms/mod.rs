//! Real-time rooms: `GET /api/sessions/{id}/events`, a WebSocket of
//! JSON text frames `{"type": …}`.
//!
//! Server → client: `presence.snapshot {users, chat}` (on join),
//! `presence.joined {user}`, `presence.left {userId}`, `chat.message`,
//! `session.updated {session}`, `session.ending {sessionId, endsAt,
//! remainingSeconds}` (the clock's warning), `run.queued`, `run.started`, `run.output`,
//! `run.finished`, `error {code, message}`, `pong`.
//! Client → server: `chat.send {text}`, `ping`.
//!
//! This module sends the presence, chat, `error` and `pong` events
//! ([`ServerEvent`]); the session's own events come from
//! [`crate::sessions::events`], the run events from the runs and the worker.
//!
//! Every event crosses replicas on the session's Redis channel
//! ([`crate::realtime::pubsub`], [`crate::realtime::hub`]); a socket never
//! writes another socket's events directly, so all members see one order.
//! An event may be addressed to one role ([`run_contract::Audience`]: a
//! submission's output is for the interviewer, its redacted result for the
//! candidates): its payload is serialised once per audience by its
//! publisher, read once per replica ([`hub::Payload`]), and each socket
//! relays the payloads addressed to its member's current role, which it
//! follows through `session.updated` ([`crate::realtime::membership`]). One
//! `select!` loop per socket handles the client's frames, the room's events
//! and the heartbeat. Presence lives in Redis ([`crate::realtime::presence`]),
//! refreshed by one task per replica ([`spawn`]), which announces the
//! departures of sockets whose replica died. Every socket holds a [`Lease`]:
//! it closes when its token expires or its login is revoked, and counts
//! towards its user's socket caps; chat is also limited per user across
//! sockets and replicas ([`crate::realtime::rate`]).

use std::time::Duration;

use axum::{
    extract::{
        State,
        ws::{Message, WebSocket, WebSocketUpgrade},
    },
    response::Response,
};
use chrono::{DateTime, Utc};
use futures_util::StreamExt;
use serde::{Deserialize, Serialize};
use tokio::sync::broadcast::error::RecvError;
use utoipa_axum::{router::OpenApiRouter, routes};
use uuid::Uuid;

use crate::{
    auth::QueryTokenUser,
    error::{ApiPath, Error, ErrorBody, Result},
    realtime::{
        hub,
        lifetime::Lease,
        membership::Departure,
        presence,
        pubsub::{join_session, publish_to_session},
        rate::{self, RateLimiter},
        socket::{self, Heartbeat, Sink},
    },
    sessions::{Status, membership},
    startup::ApiContext,
};

/// Largest client frame accepted; a larger one closes the socket (1009).
pub const MAX_FRAME_BYTES: usize = 16 * 1024;
/// Longest chat message, in characters.
pub const CHAT_MAX_CHARS: usize = 2000;
/// Chat messages sent in the snapshot.
pub const CHAT_HISTORY: i64 = 50;
/// Client messages allowed per second (burst: twice that); more are refused
/// with an `error` frame, and a client that keeps flooding is disconnected.
pub const MESSAGES_PER_SECOND: f64 = 5.0;
pub const FLOOD_DISCONNECT_AFTER: u32 = 50;
/// Joining (presence and the snapshot) must finish within this long, or the
/// socket is closed (1011) rather than left half-open.
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

pub fn router() -> OpenApiRouter<ApiContext> {
    OpenApiRouter::new().routes(routes!(events))
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PresenceUser {
    pub user_id: Uuid,
    pub name: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ChatMessage {
    pub id: Uuid,
    pub user_id: Uuid,
    pub name: String,
    pub text: String,
    pub created_at: DateTime<Utc>,
}

/// Events this socket sends (the session's own come from
/// [`crate::sessions::events`], run events from the runs and the worker,
/// relayed as is).
#[derive(Debug, Serialize)]
#[serde(tag = "type")]
pub enum ServerEvent {
    #[serde(rename = "presence.snapshot", rename_all = "camelCase")]
    PresenceSnapshot {
        users: Vec<PresenceUser>,
        chat: Vec<ChatMessage>,
        /// The session's clock: when it ends, and the seconds left.
        ends_at: Option<DateTime<Utc>>,
        remaining_seconds: Option<i64>,
    },
    #[serde(rename = "presence.joined")]
    PresenceJoined { user: PresenceUser },
    #[serde(rename = "presence.left", rename_all = "camelCase")]
    PresenceLeft { user_id: Uuid },
    #[serde(rename = "chat.message")]
    ChatMessage(ChatMessage),
    #[serde(rename = "error")]
    Error { code: &'static str, message: String },
    #[serde(rename = "pong")]
    Pong,
}

/// Messages clients send.
#[derive(Debug, Deserialize)]
#[serde(tag = "type")]
pub enum ClientMessage {
    #[serde(rename = "chat.send")]
    ChatSend { text: String },
    #[serde(rename = "ping")]
    Ping,
}

/// The room's WebSocket (JSON text frames; see the README for the protocol).
/// The token may come as `?token=` (browsers cannot set headers here).
#[utoipa::path(get, path = "/api/sessions/{id}/events", tag = "rooms", security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "The session"),
           ("token" = Option<String>, Query, description = "The access token, for browsers")), responses(
    (status = 101, description = "Switching to the WebSocket protocol"),
    (status = 401, description = "No or bad token", body = ErrorBody),
    (status = 404, description = "No such session, or not a member", body = ErrorBody),
    (status = 409, description = "`session_ended`", body = ErrorBody),
    (status = 429, description = "Too many open sockets for this user", body = ErrorBody)))]
async fn events(
    State(ctx): State<ApiContext>,
    QueryTokenUser(user): QueryTokenUser,
    ApiPath(session): ApiPath<Uuid>,
    upgrade: WebSocketUpgrade,
) -> Result<Response> {
    // Refused before the upgrade: bad tokens (401, by the extractor),
    // non-members (404), ended sessions (409), over a socket cap (429).
    let mut conn = ctx.db.acquire().await?;
    let member = membership(&mut conn, session, user.id, false).await?;
    if member.status == Status::Ended {
        return Err(Error::Conflict {
            code: "session_ended",
            message: "the session has ended".into(),
        });
    }
    drop(conn);
    let lease = ctx
        .sockets
        .admit(&ctx, &user.socket_holder(), session)
        .await?;
    let subscription = join_session(&ctx, session).await?;
    // Read after subscribing: a later role change arrives as an event.
    let role = member_role(&ctx, session, user.id).await?;
    Ok(
        socket::sized(upgrade, &ctx.config.sockets, MAX_FRAME_BYTES).on_upgrade(
            move |socket| async move {
                let socket_ctx = Socket {
                    ctx,
                    session,
                    user: PresenceUser {
                        user_id: user.id,
                        name: user.name,
                    },
                    connection: Uuid::new_v4(),
                    role,
                };
                socket_ctx.run(socket, subscription, lease).await;
            },
        ),
    )
}

struct Socket {
    ctx: ApiContext,
    session: Uuid,
    user: PresenceUser,
    connection: Uuid,
    /// The member's role when the socket joined.
    role: String,
}

/// A member's current role in a session (404 when no longer a member).
async fn member_role(ctx: &ApiContext, session: Uuid, user: Uuid) -> Result<String> {
    sqlx::query_scalar!(
        "SELECT role FROM session_members WHERE session_id = $1 AND user_id = $2",
        session,
        user
    )
    .fetch_optional(&ctx.db)
    .await?
    .ok_or(Error::NotFound("no such session"))
}

/// Why a socket loop ended.
enum End {
    Gone,
    Close(u16, &'static str),
}

impl Socket {
    async fn run(self, socket: WebSocket, mut subscription: hub::Subscription, mut lease: Lease) {
        let (mut tx, mut rx) = socket.split();

        // The joins, the snapshot and the leave are boxed: they run once, and
        // unboxed their futures would size the state machine every idle
        // socket keeps for its whole life.
        let (present, joined) = Box::pin(self.ctx.presence.join(
            &self.ctx,
            self.session,
            self.user.user_id,
            self.connection,
        ))
        .await;
        match joined {
            Ok(true) => {
                let joined = ServerEvent::PresenceJoined {
                    user: self.user.clone(),
                };
                Box::pin(publish_to_session(&self.ctx, self.session, &joined)).await;
            }
            Ok(false) => {}
            Err(e) => tracing::warn!(error = %e, "presence unavailable"),
        }
        let end = match Box::pin(self.snapshot()).await {
            Ok(snapshot) if send(&mut tx, &snapshot).await => {
                self.serve(&mut tx, &mut rx, &mut subscription, &mut lease)
                    .await
            }
            _ => End::Gone,
        };
        if let End::Close(code, reason) = end {
            // Bounded like every send: a client that stopped reading does
            // not hold the task.
            socket::close(&mut tx, code, reason).await;
        }
        // The socket's buffers go now, not after the presence round trip.
        drop((tx, rx, subscription));
        match Box::pin(self.ctx.presence.leave(&self.ctx, present)).await {
            Ok(true) => {
                let left = ServerEvent::PresenceLeft {
                    user_id: self.user.user_id,
                };
                Box::pin(publish_to_session(&self.ctx, self.session, &left)).await;
            }
            Ok(false) => {}
            Err(e) => tracing::warn!(error = %e, "presence unavailable"),
        }
    }

    async fn serve(
        &self,
        tx: &mut Sink,
        rx: &mut futures_util::stream::SplitStream<WebSocket>,
        subscription: &mut hub::Subscription,
        lease: &mut Lease,
    ) -> End {
        let mut heartbeat = Heartbeat::start().await;
        let mut limiter = RateLimiter::new(MESSAGES_PER_SECOND);
        let mut chat_rate = rate::UserRate::new(&self.ctx, self.user.user_id, rate::Kind::Chat);
        let mut refused = 0u32;
        let mut role = self.role.clone();
        loop {
            tokio::select! {
                close = lease.ended() => return End::Close(close.code, close.reason),
                frame = rx.next() => {
                    heartbeat.heard();
                    let text = match frame {
                        Some(Ok(Message::Text(text))) => text,
                        Some(Ok(Message::Binary(_))) => {
                            if !send(tx, &error("invalid_message", "frames must be JSON text")).await { return End::Gone; }
                            continue;
                        }
                        Some(Ok(Message::Ping(_) | Message::Pong(_))) => continue,
                        Some(Ok(Message::Close(_))) | None => return End::Gone,
                        Some(Err(e)) => {
                            tracing::debug!(error = %e, "socket error");
                            return End::Close(1009, "frame too large or malformed");
                        }
                    };
                    if !limiter.allow() {
                        refused += 1;
                        if refused >= FLOOD_DISCONNECT_AFTER {
                            return End::Close(1008, "message rate exceeded");
                        }
                        if !send(tx, &error("rate_limited", "too many messages; slow down")).await { return End::Gone; }
                        continue;
                    }
                    refused = 0;
                    let reply = match serde_json::from_str::<ClientMessage>(&text) {
                        Ok(ClientMessage::Ping) => Some(ServerEvent::Pong),
                        // Boxed, like the snapshot below: an idle socket's
                        // state machine then holds a pointer, not these
                        // database futures (most of its size otherwise).
                        Ok(ClientMessage::ChatSend { text }) => Box::pin(self.chat(text, &mut chat_rate)).await.err(),
                        Err(e) => Some(error("invalid_message", &format!("unknown or malformed message: {e}"))),
                    };
                    if let Some(reply) = reply
                        && !send(tx, &reply).await
                    {
                        return End::Gone;
                    }
                }
                event = subscription.receiver.recv() => match event {
                    Ok(payload) => {
                        let Some((audience, text)) = payload.event() else { continue };
                        if !audience.includes(&role) { continue; }
                        if !socket::send_frame(tx, Message::Text(text.clone())).await { return End::Gone; }
                        if let Some(membership) = payload.membership() {
                            if let Some(departure) = membership.departure(self.user.user_id) {
                                return closes_socket(departure);
                            }
                            if let Some(now) = membership.role(self.user.user_id) {
                                now.clone_into(&mut role);
                            }
                        }
                    }
                    Err(RecvError::Lagged(missed)) => {
                        // Too slow for the room: say so and resync.
                        let message = format!("{missed} events were dropped; state resent");
                        if !send(tx, &error("lagged", &message)).await { return End::Gone; }
                        match Box::pin(self.snapshot()).await {
                            Ok(snapshot) if send(tx, &snapshot).await => {}
                            _ => return End::Gone,
                        }
                    }
                    Err(RecvError::Closed) => return End::Close(1011, "room closed"),
                },
                _ = heartbeat.tick() => {
                    // Presence is refreshed for all of the replica's sockets
                    // at once (`spawn`); this only checks the client.
                    if heartbeat.idle() {
                        return End::Close(1001, "idle");
                    }
                    if !socket::ping(tx).await {
                        return End::Gone;
                    }
                }
            }
        }
    }
}

/// The events socket closes (after delivering the event) on either departure.
fn closes_socket(departure: Departure) -> End {
    match departure {
        Departure::Ended => End::Close(1000, "session ended"),
        Departure::Removed => End::Close(1000, "no longer a member"),
    }
}

impl Socket {
    async fn snapshot(&self) -> Result<ServerEvent> {
        let mut redis = self.ctx.redis.clone();
        let present =
            presence::present(&mut redis, &self.ctx.config.redis.key_prefix, self.session)
                .await
                .unwrap_or_default();
        let ids: Vec<Uuid> = present.into_iter().collect();
        let users = sqlx::query_as!(
            PresenceUser,
            r#"SELECT id AS user_id, name FROM users WHERE id = ANY($1) ORDER BY name, id"#,
            &ids
        )
        .fetch_all(&self.ctx.db)
        .await?;
        let mut chat = sqlx::query_as!(
            ChatMessage,
            r#"SELECT c.id, c.user_id, u.name, c.text, c.created_at
               FROM chat_messages c JOIN users u ON u.id = c.user_id
               WHERE c.session_id = $1
               ORDER BY c.created_at DESC, c.id DESC
               LIMIT $2"#,
            self.session,
            CHAT_HISTORY
        )
        .fetch_all(&self.ctx.db)
        .await?;
        chat.reverse();
        let clock = sqlx::query!(
            r#"SELECT ends_at,
                      CASE WHEN ends_at IS NOT NULL
                           THEN GREATEST(0, ceil(extract(epoch FROM ends_at - now())))::bigint
                      END AS remaining_seconds
               FROM interview_sessions WHERE id = $1 AND status = 'live'"#,
            self.session
        )
        .fetch_optional(&self.ctx.db)
        .await?;
        let (ends_at, remaining_seconds) =
            clock.map_or((None, None), |c| (c.ends_at, c.remaining_seconds));
        Ok(ServerEvent::PresenceSnapshot {
            users,
            chat,
            ends_at,
            remaining_seconds,
        })
    }

    /// Stores and publishes a chat message; an `error` event if refused.
    async fn chat(&self, text: String, user_rate: &mut rate::UserRate) -> Result<(), ServerEvent> {
        let text = text.trim().to_owned();
        let chars = text.chars().count();
        if chars == 0 || chars > CHAT_MAX_CHARS {
            return Err(error(
                "invalid_message",
                &format!("chat messages are 1–{CHAT_MAX_CHARS} characters"),
            ));
        }
        if !user_rate.allow().await {
            return Err(error(
                "rate_limited",
                "too many chat messages from this user; slow down",
            ));
        }
        let status = sqlx::query_scalar!(
            "SELECT status FROM interview_sessions WHERE id = $1",
            self.session
        )
        .fetch_optional(&self.ctx.db)
        .await
        .map_err(|_| error("internal_error", "could not send the message"))?;
        if status.as_deref() == Some("ended") {
            return Err(error("session_ended", "the session has ended"));
        }
        let message = sqlx::query_as!(
            ChatMessage,
            r#"WITH inserted AS (
                 INSERT INTO chat_messages (id, session_id, user_id, text) VALUES ($1, $2, $3, $4)
                 RETURNING id, user_id, text, created_at)
               SELECT i.id, i.user_id, u.name, i.text, i.created_at
               FROM inserted i JOIN users u ON u.id = i.user_id"#,
            Uuid::new_v4(),
            self.session,
            self.user.user_id,
            text
        )
        .fetch_one(&self.ctx.db)
        .await
        .map_err(|_| error("internal_error", "could not send the message"))?;
        publish_to_session(&self.ctx, self.session, &ServerEvent::ChatMessage(message)).await;
        Ok(())
    }
}

fn error(code: &'static str, message: &str) -> ServerEvent {
    ServerEvent::Error {
        code,
        message: message.to_owned(),
    }
}

async fn send(tx: &mut Sink, event: &ServerEvent) -> bool {
    match serde_json::to_string(event) {
        Ok(json) => socket::send_frame(tx, Message::Text(json.into())).await,
        Err(_) => true,
    }
}

/// Starts this replica's presence refresh and sweep: every heartbeat, the
/// replica's present sockets are renewed in Redis, and the departures of
/// sockets whose replica died are announced in their rooms.
pub fn spawn(ctx: &ApiContext) {
    let ctx = ctx.clone();
    tokio::spawn(async move {
        let prefix = ctx.config.redis.key_prefix.clone();
        let mut redis = ctx.redis.clone();
        let mut tick = tokio::time::interval(socket::HEARTBEAT);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        tick.tick().await;
        loop {
            tick.tick().await;
            let sessions = ctx.presence.refresh(&mut redis, &prefix).await;
            match presence::sweep(&mut redis, &prefix, &sessions).await {
                Ok(left) => {
                    for (session, user_id) in left {
                        let event = ServerEvent::PresenceLeft { user_id };
                        publish_to_session(&ctx, session, &event).await;
                    }
                }
                Err(e) => tracing::debug!(error = %e, "presence sweep failed"),
            }
        }
    });
}
