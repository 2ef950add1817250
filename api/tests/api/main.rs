//! Integration tests against real PostgreSQL and Redis (see `helpers`).
//! One test binary, one module per feature; the shared harness is
//! `helpers`, `fixtures`, `sockets` and `eventually` (with `database` and
//! `docker`, which the worker's tests share).

mod auth;
mod authorization;
mod clock;
mod compat;
mod database;
mod dependencies;
mod docker;
mod document_integrity;
mod documents;
mod eventually;
mod faults;
mod feedback;
mod fixtures;
mod foundation;
mod helpers;
mod input_limits;
mod notes;
mod openapi_bodies;
mod operability;
mod problems;
mod rooms;
mod runs;
mod session_edges;
mod social;
mod socket_limits;
mod socket_release;
mod sockets;
mod timeline;
