//! CodeCall's run worker.
//!
//! - [`config`]: typed configuration from the environment.
//! - [`connect`]: start-up connections to Redis and the Docker engine, each
//!   failing with a message that says what to fix.
//! - [`sandbox`]: the execution engine (hardened single-use containers,
//!   warm pool, janitor, language manifest).

pub mod config;
pub mod connect;
pub mod sandbox;
