//! Integration tests against real PostgreSQL and Redis (see `helpers`).
//! One test binary, one module per feature.

mod auth;
mod clock;
mod compat;
mod dependencies;
mod document_integrity;
mod documents;
mod faults;
mod feedback;
mod foundation;
mod helpers;
mod input_limits;
mod notes;
mod openapi_bodies;
mod operability;
mod problems;
mod rooms;
mod runs;
mod social;
mod socket_limits;
mod socket_release;
mod timeline;
