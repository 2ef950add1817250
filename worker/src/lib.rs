//! CodeCall's run worker.
//!
//! - [`config`]: typed configuration from the environment.
//! - [`connect`]: start-up connections to Redis and the Docker engine, each
//!   failing with a message that says what to fix.
//! - [`dispatch`]: when this worker claims which run (PostgreSQL is the
//!   queue; `NOTIFY` wakes idle workers).
//! - [`pipeline`]: a claimed run → engine → PostgreSQL + room events, exactly once.
//! - [`prometheus`]: the worker's `/metrics`.
//! - [`presence`]: the worker's heartbeat (a `workers` row) and its leases.
//! - [`reaper`]: ends runs lost for longer than any run can take.
//! - [`sandbox`]: the execution engine (hardened single-use containers,
//!   warm pool, janitor, language manifest).
//! - [`startup`]: the wiring of all the above ([`startup::Application`]),
//!   shared by the binary and the in-process tests.

pub mod config;
pub mod connect;
pub mod dispatch;
pub mod pipeline;
pub mod presence;
pub mod prometheus;
pub mod reaper;
pub mod sandbox;
pub mod startup;
