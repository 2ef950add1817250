//! CodeCall's run worker.
//!
//! - [`config`]: typed configuration from the environment.
//! - [`connect`]: start-up connections to Redis and the Docker engine, each
//!   failing with a message that says what to fix.
//! - [`pipeline`]: run jobs → engine → PostgreSQL + room events, exactly once.
//! - [`prometheus`]: the worker's `/metrics`.
//! - [`presence`]: the worker's heartbeat announcement in Redis.
//! - [`sandbox`]: the execution engine (hardened single-use containers,
//!   warm pool, janitor, language manifest).

pub mod config;
pub mod connect;
pub mod pipeline;
pub mod presence;
pub mod prometheus;
pub mod sandbox;
