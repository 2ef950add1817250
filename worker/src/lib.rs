//! CodeCall's run worker.
//!
//! - [`config`]: typed configuration from the environment.
//! - [`connect`]: start-up connections to Redis and the Docker engine, each
//!   failing with a message that says what to fix.

pub mod config;
pub mod connect;
