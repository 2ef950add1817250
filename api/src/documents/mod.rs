//! The session's shared documents: `GET /api/sessions/{id}/doc`
//! (the code, every member) and `GET /api/sessions/{id}/notes` (the
//! interviewer's notes: the session's interviewer and its host only), each a
//! WebSocket speaking the y-websocket protocol, so an off-the-shelf Yjs
//! client (the `y-websocket` provider with y-monaco or y-codemirror) works
//! unchanged. Both are served by the same code; a document is keyed by its
//! session and its [`Kind`] everywhere — live documents, stored rows, Redis
//! channels — and only the code document is mirrored into
//! `interview_sessions.code`, which candidates read.
//!
//! Access to the notes follows the current role: whoever is not the
//! session's interviewer or host is refused before the upgrade (403), and an
//! open notes socket whose user stops being the interviewer (a role swap)
//! is closed with [`CLOSE_NOT_INTERVIEWER`] as soon as the session's update
//! event arrives. The notes belong to the interviewer's seat: whoever takes
//! it reads what was written before.
//!
//! Binary frames, each one or more y-protocol messages: sync (step 1 — a
//! state vector —, step 2 and update — Yjs updates, format v1), awareness
//! (cursors, selections, names), and query-awareness. The editor's text is
//! the `Y.Text` named [`TEXT_NAME`].
//!
//! - [`store`]: PostgreSQL — a snapshot plus appended updates, compacted.
//! - [`checked`]: every update applied to a twin document first, so one
//!   that does not apply is refused before it is stored.
//! - [`live`]: the per-process document of each session, relayed between
//!   replicas through Redis.
//! - [`seed`]: the server's own write (a problem's starter code, into an
//!   empty document only).
//! - this file: the upgrade (the events socket's authentication and
//!   membership rules) and one `select!` loop per socket, on the sockets'
//!   common ground ([`crate::realtime`]): the heartbeat and bounded sends,
//!   the lease, the rates, and the session's events for its membership.
//!   The events socket (`rooms`) is a sibling, not a dependency.
//!
//! Members of an ended session get the document read-only: their updates
//! are refused (not stored, applied or relayed). A malformed message, or an
//! update that does not apply, closes that connection only. Like the events
//! socket, each connection holds a [`Lease`] (closed at its token's expiry or
//! its login's revocation, counted towards the user's socket caps), and its
//! messages count towards the user's rates across sockets and replicas
//! ([`rate`]).
//!
//! A document socket checks membership itself ([`seat`]): the sessions
//! module reads the documents (a session's code), so the documents do not
//! read the sessions.

pub mod checked;
pub mod history;
pub mod live;
pub mod seed;
pub mod store;

use std::time::Duration;

use axum::{
    body::Bytes,
    extract::{
        State,
        ws::{Message, WebSocket, WebSocketUpgrade},
    },
    response::Response,
};
use futures_util::StreamExt;
use sqlx::PgConnection;
use tokio::sync::broadcast::error::RecvError;
use utoipa_axum::{router::OpenApiRouter, routes};
use uuid::Uuid;

use crate::{
    auth::{AuthUser, QueryTokenUser},
    error::{ApiPath, Error, ErrorBody, Result},
    realtime::{
        hub,
        lifetime::Lease,
        membership::Departure,
        pubsub::join_session,
        rate::{self, RateLimiter, UserRate},
        socket::{self, Heartbeat, Sink},
    },
    startup::ApiContext,
};

/// The `Y.Text` holding a document's text (`ydoc.getText("code")`), in
/// the notes as in the code.
pub const TEXT_NAME: &str = "code";
/// Close code of a notes socket whose user is no longer the session's
/// interviewer (nor its host).
pub const CLOSE_NOT_INTERVIEWER: u16 = 4403;

/// Which of a session's documents.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Kind {
    /// The shared editor: every member reads and writes it.
    Code,
    /// The interviewer's notes: the interviewer and the host only.
    Notes,
}

impl Kind {
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Code => "code",
            Kind::Notes => "notes",
        }
    }
}
/// Largest frame a client may send (a paste, or a whole offline session's
/// edits in one sync step 2); larger closes the socket (1009).
pub const MAX_MESSAGE_BYTES: usize = 512 * 1024;
/// Largest stored document (snapshot plus updates since). Updates that
/// would grow it further are refused, not applied.
pub const MAX_DOCUMENT_BYTES: usize = 4 * 1024 * 1024;
/// What a member's updates may leave *pending* (items referring to items
/// the server has not seen, kept aside by yrs until those arrive): this many
/// encoded bytes, from this many updates; an update past either is refused
/// and closes its socket ([`CLOSE_PENDING`]).
pub const MAX_PENDING_BYTES: usize = 64 * 1024;
pub const MAX_PENDING_UPDATES: usize = 32;
/// Close code for an update that does not apply to the document (it is
/// neither stored nor relayed).
pub const CLOSE_INVALID_UPDATE: u16 = 4422;
/// Close code for an update that would leave too much pending.
pub const CLOSE_PENDING: u16 = 4413;
/// Largest awareness state of one client (its JSON).
pub const MAX_AWARENESS_STATE_BYTES: usize = 4 * 1024;
/// Awareness clients one connection may speak for (a y-websocket provider
/// uses one).
pub const MAX_AWARENESS_CLIENTS: usize = 4;
/// An awareness state nobody renewed for this long is dropped (y-protocols
/// clients renew theirs every 15 s and drop others after 30 s).
pub const AWARENESS_TIMEOUT: Duration = Duration::from_secs(30);
/// Messages per second a socket may send (bursts of twice that); a client
/// above it is disconnected and resyncs when it reconnects, so nothing is lost.
pub const MESSAGES_PER_SECOND: f64 = 100.0;
/// How often each replica re-reads the stored document to pick up updates
/// a lost Redis message did not bring.
pub const RESYNC_INTERVAL: Duration = Duration::from_secs(10);
/// Compaction: every this long while edits arrive, and after this many
/// updates, and when the last socket of a replica leaves.
pub const COMPACT_INTERVAL: Duration = Duration::from_secs(30);
pub const COMPACT_AFTER_UPDATES: usize = 500;
/// Close code for a connection over its user's document-update rate: the
/// message is refused before it is stored; the client reconnects and resyncs.
pub const CLOSE_RATE_LIMITED: u16 = 4008;
/// y-websocket's message type of awareness messages (the first byte).
const AWARENESS_MESSAGE: u8 = 1;
/// How long a closing socket waits for the client's close frame.
const CLOSE_GRACE: Duration = Duration::from_secs(1);

pub fn router() -> OpenApiRouter<ApiContext> {
    OpenApiRouter::new()
        .routes(routes!(document))
        .routes(routes!(notes))
}

/// The session's shared document: a y-websocket endpoint (binary frames; see
/// the README). The token may come as `?token=`; a y-websocket provider
/// sends it with `params: { token }`.
#[utoipa::path(get, path = "/api/sessions/{id}/doc", tag = "rooms", security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "The session"),
           ("token" = Option<String>, Query, description = "The access token, for browsers")), responses(
    (status = 101, description = "Switching to the WebSocket protocol (y-websocket)"),
    (status = 401, description = "No or bad token", body = ErrorBody),
    (status = 404, description = "No such session, or not a member", body = ErrorBody),
    (status = 429, description = "Too many open sockets for this user", body = ErrorBody),
    (status = 503, description = "`document_unavailable` or `dependency_unavailable`", body = ErrorBody)))]
async fn document(
    State(ctx): State<ApiContext>,
    QueryTokenUser(user): QueryTokenUser,
    ApiPath(session): ApiPath<Uuid>,
    upgrade: WebSocketUpgrade,
) -> Result<Response> {
    open(ctx, user, session, Kind::Code, upgrade).await
}

/// The interviewer's notes: a second y-websocket document of the session,
/// for its interviewer and its host only (everyone else: 403 before the
/// upgrade). Never mirrored anywhere a candidate reads. Closed with 4403
/// when its user stops being the interviewer.
#[utoipa::path(get, path = "/api/sessions/{id}/notes", tag = "rooms", security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "The session"),
           ("token" = Option<String>, Query, description = "The access token, for browsers")), responses(
    (status = 101, description = "Switching to the WebSocket protocol (y-websocket)"),
    (status = 401, description = "No or bad token", body = ErrorBody),
    (status = 403, description = "A member who is neither the interviewer nor the host", body = ErrorBody),
    (status = 404, description = "No such session, or not a member", body = ErrorBody),
    (status = 429, description = "Too many open sockets for this user", body = ErrorBody),
    (status = 503, description = "`document_unavailable` or `dependency_unavailable`", body = ErrorBody)))]
async fn notes(
    State(ctx): State<ApiContext>,
    QueryTokenUser(user): QueryTokenUser,
    ApiPath(session): ApiPath<Uuid>,
    upgrade: WebSocketUpgrade,
) -> Result<Response> {
    open(ctx, user, session, Kind::Notes, upgrade).await
}

/// `user`'s seat in the session: `None` when not a member, else whether
/// they may open its notes (its interviewer, or its host).
async fn seat(db: &mut PgConnection, session: Uuid, user: Uuid) -> Result<Option<bool>> {
    Ok(sqlx::query_scalar!(
        r#"SELECT (m.role = 'interviewer' OR s.host_id = m.user_id) AS "allowed!"
           FROM session_members m JOIN interview_sessions s ON s.id = m.session_id
           WHERE m.session_id = $1 AND m.user_id = $2"#,
        session,
        user
    )
    .fetch_optional(db)
    .await?)
}

/// The upgrade of either document socket: the events socket's checks, and
/// for the notes the interviewer-or-host rule (checked again once the
/// session's events are subscribed to, so a role change racing the upgrade
/// is seen one way or the other).
async fn open(
    ctx: ApiContext,
    user: AuthUser,
    session: Uuid,
    kind: Kind,
    upgrade: WebSocketUpgrade,
) -> Result<Response> {
    let mut conn = ctx.db.acquire().await?;
    let reads_notes = seat(&mut conn, session, user.id)
        .await?
        .ok_or(Error::NotFound("no such session"))?;
    let forbidden =
        Error::Forbidden("only the session's interviewer and its host can open its notes");
    if kind == Kind::Notes && !reads_notes {
        return Err(forbidden);
    }
    drop(conn);
    let lease = ctx
        .sockets
        .admit(&ctx, &user.socket_holder(), session)
        .await?;
    // The session's events say when this member is removed (or it ends).
    let events = join_session(&ctx, session).await?;
    if kind == Kind::Notes {
        let mut conn = ctx.db.acquire().await?;
        if seat(&mut conn, session, user.id).await? != Some(true) {
            return Err(forbidden);
        }
    }
    let handle = ctx.documents.open(&ctx, session, kind).await?;
    Ok(
        socket::sized(upgrade, &ctx.config.sockets, MAX_MESSAGE_BYTES).on_upgrade(
            move |socket| async move {
                let connection = Connection {
                    id: handle.doc.connection_id(),
                    ctx,
                    user: user.id,
                    handle,
                };
                connection.run(socket, events, lease).await;
            },
        ),
    )
}

struct Connection {
    id: u64,
    ctx: ApiContext,
    user: Uuid,
    handle: live::Handle,
}

impl Connection {
    async fn run(self, socket: WebSocket, mut events: hub::Subscription, mut lease: Lease) {
        let (mut tx, mut rx) = socket.split();
        let doc = &self.handle.doc;
        // Subscribed before the greeting: nothing after its state is missed.
        let mut frames = doc.subscribe();
        let close = if send_all(&mut tx, doc.greeting()).await {
            self.serve(&mut tx, &mut rx, &mut frames, &mut events, &mut lease)
                .await
        } else {
            None
        };
        if let Some((code, reason)) = close {
            socket::close(&mut tx, code, reason).await;
        }
        doc.disconnected(&self.ctx, self.id).await;
        if close.is_some() {
            // The closing handshake: let the client's close frame arrive
            // before the connection drops, so the client reads our reason.
            let _ = tokio::time::timeout(CLOSE_GRACE, async {
                while let Some(Ok(message)) = rx.next().await {
                    if matches!(message, Message::Close(_)) {
                        break;
                    }
                }
            })
            .await;
        }
    }

    /// The socket's loop; returns the close frame to send, if any.
    async fn serve(
        &self,
        tx: &mut Sink,
        rx: &mut futures_util::stream::SplitStream<WebSocket>,
        frames: &mut tokio::sync::broadcast::Receiver<live::Frame>,
        events: &mut hub::Subscription,
        lease: &mut Lease,
    ) -> Option<(u16, &'static str)> {
        let doc = &self.handle.doc;
        let mut heartbeat = Heartbeat::start().await;
        let mut limiter = RateLimiter::new(MESSAGES_PER_SECOND);
        let mut updates_rate = UserRate::new(&self.ctx, self.user, rate::Kind::DocUpdates);
        let mut awareness_rate = UserRate::new(&self.ctx, self.user, rate::Kind::Awareness);
        loop {
            tokio::select! {
                close = lease.ended() => return Some((close.code, close.reason)),
                frame = rx.next() => {
                    heartbeat.heard();
                    let data = match frame {
                        Some(Ok(Message::Binary(data))) => data,
                        Some(Ok(Message::Text(_))) => return Some((1003, "binary y-websocket messages only")),
                        Some(Ok(Message::Ping(_) | Message::Pong(_))) => continue,
                        Some(Ok(Message::Close(_))) | None => return None,
                        Some(Err(e)) => {
                            tracing::debug!(error = %e, "document socket error");
                            return Some((1009, "frame too large or malformed"));
                        }
                    };
                    if !limiter.allow() {
                        return Some((1008, "message rate exceeded"));
                    }
                    // Per user: a frame counts as awareness when it starts
                    // with an awareness message, else as a document message.
                    if data.first() == Some(&AWARENESS_MESSAGE) {
                        if !awareness_rate.allow().await {
                            // Dropped: a later cursor move or renewal replaces it.
                            continue;
                        }
                    } else if !updates_rate.allow().await {
                        return Some((CLOSE_RATE_LIMITED, "rate_limited"));
                    }
                    match doc.receive(&self.ctx, self.id, self.user, &data).await {
                        Ok(replies) => if !send_all(tx, replies).await { return None },
                        Err(live::Refusal(code, reason)) => return Some((code, reason)),
                    }
                }
                frame = frames.recv() => match frame {
                    Ok(frame) if frame.from == self.id => {}
                    Ok(frame) => if !send(tx, frame.bytes).await { return None },
                    Err(RecvError::Lagged(_)) => if !send_all(tx, doc.full_state()).await { return None },
                    Err(RecvError::Closed) => return Some((1011, "document closed")),
                },
                event = events.receiver.recv() => match event {
                    Ok(payload) => {
                        let membership = payload.membership();
                        match membership.and_then(|m| m.departure(self.user)) {
                            Some(Departure::Removed) => return Some((1000, "no longer a member")),
                            Some(Departure::Ended) => doc.set_read_only(),
                            None => {}
                        }
                        if doc.kind == Kind::Notes
                            && membership.is_some_and(|m| !m.reads_notes(self.user))
                        {
                            return Some((CLOSE_NOT_INTERVIEWER, "no longer the interviewer"));
                        }
                    }
                    Err(RecvError::Lagged(_)) => {}
                    Err(RecvError::Closed) => return Some((1011, "room closed")),
                },
                _ = heartbeat.tick() => {
                    if heartbeat.idle() {
                        return Some((1001, "idle"));
                    }
                    if !socket::ping(tx).await {
                        return None;
                    }
                }
            }
        }
    }
}

/// Sends a binary frame; false when the client is gone or too slow.
async fn send(tx: &mut Sink, bytes: Bytes) -> bool {
    socket::send_frame(tx, Message::Binary(bytes)).await
}

async fn send_all(tx: &mut Sink, messages: Vec<Vec<u8>>) -> bool {
    for message in messages {
        if !send(tx, message.into()).await {
            return false;
        }
    }
    true
}
