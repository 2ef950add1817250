//! CodeCall's api service: REST + WebSocket over PostgreSQL and Redis.
//!
//! Layout, in reading order:
//! - [`config`]: the typed configuration, read once from the environment.
//! - [`startup`]: [`startup::Application`] (connect, migrate, bind, serve,
//!   shut down) and the router with its middleware.
//! - [`error`]: the one error type and the `{"success": false, "error": …}` body.
//! - feature modules, each returning its own `Router`: [`health`], [`auth`]
//!   (register, login, refresh, logout; the [`auth::AuthUser`] extractor),
//!   [`users`] (the caller's account).
//! - [`telemetry`]: tracing set-up.

pub mod auth;
pub mod config;
pub mod error;
pub mod health;
pub mod startup;
pub mod telemetry;
pub mod users;
