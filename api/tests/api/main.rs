//! Integration tests against real PostgreSQL and Redis (see `helpers`).
//! One test binary, one module per feature.

mod auth;
mod documents;
mod foundation;
mod helpers;
mod operability;
mod rooms;
mod runs;
mod social;
mod socket_limits;
