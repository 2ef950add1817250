//! What both WebSockets stand on: the events room ([`crate::rooms`], JSON)
//! and the shared documents ([`crate::documents`], Yjs). Neither socket
//! borrows from the other; both, and whoever publishes into a room (the
//! sessions, the runs), use this module.
//!
//! - [`pubsub`]: publishing on Redis channels, and joining a session's
//!   events channel.
//! - [`hub`]: one Redis subscriber per api process, fanned out to the
//!   local sockets of each channel.
//! - [`membership`]: what a `session.updated` event says about who may stay
//!   in the room, read once per event and replica.
//! - [`socket`]: a socket's buffers, its heartbeat and idle timeout, and
//!   sends bounded in time (frames and the close frame).
//! - [`lifetime`]: a socket lives no longer than its token and login, and
//!   counts towards its user's socket caps.
//! - [`rate`]: message rates, per socket and per user across replicas.
//! - [`presence`]: who is connected to which session, in Redis.
//!
//! Nothing here knows a session's rows, a socket's protocol or how a caller
//! authenticates: the events socket and the document socket decide what
//! their frames mean, and [`crate::auth`] hands [`lifetime`] a token's user,
//! login and expiry (and calls it when a login is revoked), never the
//! reverse.

pub mod hub;
pub mod lifetime;
pub mod membership;
pub mod presence;
pub mod pubsub;
pub mod rate;
pub mod socket;
