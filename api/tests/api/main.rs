//! Integration tests against real PostgreSQL and Redis (see `helpers`).
//! One test binary, one module per feature.

mod auth;
mod compat;
mod dependencies;
mod document_integrity;
mod documents;
mod faults;
mod foundation;
mod helpers;
mod input_limits;
mod operability;
mod rooms;
mod runs;
mod social;
mod socket_limits;
