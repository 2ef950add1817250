//! CodeCall's api service: REST + WebSocket over PostgreSQL and Redis.
//!
//! Layout, in reading order:
//! - [`config`]: the typed configuration, read once from the environment.
//! - [`startup`]: [`startup::Application`] (connect, migrate, bind, serve,
//!   shut down) and the router with its middleware.
//! - [`error`]: the one error type and the `{"success": false, "error": …}`
//!   body; [`envelope`]: the `{"success": true, …}` one; [`validation`]:
//!   field problems answered as one 422, and the account fields' rules.
//! - feature modules, each returning its own `Router`: [`health`], [`auth`]
//!   (register, login, refresh, logout; the [`auth::AuthUser`] extractor),
//!   [`users`] (the caller's account, user search), [`friends`],
//!   [`sessions`] (rooms, members, roles, invites, the session's own room
//!   events), [`runs`] (code execution requests; the
//!   `runs` row is the queue), with [`run_wait`] (`?wait=true` woken by the
//!   run's finish notification).
//! - [`problems`]: the problem catalogue, attaching a problem to a session
//!   and submitting the session's code against its hidden tests, with
//!   [`run_access`] deciding who sees what of a run.
//! - [`feedback`]: feedback after an interview, and the review document.
//! - [`realtime`]: what both sockets stand on — publishing on Redis and the
//!   per-process fan-out of its channels, the sockets' heartbeat and bounded
//!   sends, leases, rates and presence.
//! - [`rooms`]: the real-time events socket (presence, chat, run output)
//!   across replicas through Redis.
//! - [`documents`]: the shared editor document (a y-websocket server on
//!   yrs), persisted in PostgreSQL and relayed across replicas.
//!
//!   Dependencies run one way: [`rooms`] and [`documents`] use [`realtime`]
//!   and never each other; [`rooms`] reads [`sessions`] (membership) and
//!   [`sessions`] reads [`documents`] (a session's code); [`sessions`]
//!   publishes its events through [`realtime`] and imports no socket.
//! - [`retention`]: purging old runs' bodies and the per-user storage cap.
//! - [`pagination`]: `limit` + opaque `cursor` for every list.
//! - [`api_tokens`]: personal API tokens for programs.
//! - [`compat`]: the Judge0 CE and Piston v2 compatible APIs (and Judge0's
//!   callbacks), translated onto runs.
//! - [`admin`]: queue monitoring (JSON and a dashboard page) for admins.
//! - [`openapi`]: the OpenAPI document (`/api/openapi.json`, `/api/docs`).
//! - [`prometheus`]: Prometheus `/metrics` and the request metrics middleware.
//! - [`telemetry`]: tracing set-up.

pub mod admin;
pub mod api_tokens;
pub mod auth;
pub mod compat;
pub mod config;
pub mod documents;
pub mod envelope;
pub mod error;
pub mod feedback;
pub mod friends;
pub mod health;
pub mod openapi;
pub mod pagination;
pub mod problems;
pub mod prometheus;
pub mod realtime;
pub mod retention;
pub mod rooms;
pub mod run_access;
pub mod run_wait;
pub mod runs;
pub mod sessions;
pub mod startup;
pub mod telemetry;
pub mod users;
pub mod validation;
