//! Presence in Redis, shared by every api replica.
//!
//! Each socket is a member `{userId}:{connectionId}` of the sorted set
//! `{prefix}presence:{sessionId}` and of `{prefix}online:{userId}`, scored with
//! its expiry time (ms). A user counts once however many tabs they have: they
//! are present while any of their members is unexpired.
//!
//! Each replica keeps its present sockets in a registry ([`Local`]) and one
//! task (the events room's, which announces departures) refreshes them all
//! every [`HEARTBEAT`](super::socket::HEARTBEAT), in one pipeline
//! ([`Local::refresh`]), then sweeps the expired members of each of its
//! rooms once ([`sweep`]): a few Redis commands per replica per heartbeat,
//! not two round trips per socket. A socket whose replica died simply stops
//! being refreshed and expires after [`PRESENCE_TTL`]; the next sweep of its
//! room announces the departure.

use std::{
    collections::{BTreeSet, HashMap},
    sync::{Mutex, PoisonError},
    time::{Duration, SystemTime, UNIX_EPOCH},
};

use redis::aio::ConnectionManager;
use tokio::sync::RwLock;
use uuid::Uuid;

use crate::startup::ApiContext;

/// How long a socket counts as present without a heartbeat.
pub const PRESENCE_TTL: Duration = Duration::from_secs(30);

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

fn expiry() -> u64 {
    now_ms() + u64::try_from(PRESENCE_TTL.as_millis()).unwrap_or(30_000)
}

pub fn session_key(prefix: &str, session: Uuid) -> String {
    format!("{prefix}presence:{session}")
}

pub fn online_key(prefix: &str, user: Uuid) -> String {
    format!("{prefix}online:{user}")
}

fn member(user: Uuid, connection: Uuid) -> String {
    format!("{user}:{connection}")
}

/// Registers (or refreshes) a socket. Returns whether the user just became
/// present in the session (no other live socket of theirs).
pub async fn touch(
    redis: &mut ConnectionManager,
    prefix: &str,
    session: Uuid,
    user: Uuid,
    connection: Uuid,
) -> redis::RedisResult<bool> {
    let (key, online) = (session_key(prefix, session), online_key(prefix, user));
    let expires = expiry();
    let ttl_secs = PRESENCE_TTL.as_secs() * 2;
    let (_, _, _, _, members): ((), (), (), (), Vec<String>) = redis::pipe()
        .zadd(&key, member(user, connection), expires)
        .expire(&key, i64::try_from(ttl_secs).unwrap_or(60))
        .zadd(&online, connection.to_string(), expires)
        .expire(&online, i64::try_from(ttl_secs).unwrap_or(60))
        .zrangebyscore(&key, now_ms(), "+inf")
        .query_async(redis)
        .await?;
    let prefix_of_user = format!("{user}:");
    Ok(members
        .iter()
        .filter(|m| m.starts_with(&prefix_of_user))
        .count()
        == 1)
}

/// Removes a socket. Returns whether the user left the session (it was their
/// last live socket there).
pub async fn remove(
    redis: &mut ConnectionManager,
    prefix: &str,
    session: Uuid,
    user: Uuid,
    connection: Uuid,
) -> redis::RedisResult<bool> {
    let key = session_key(prefix, session);
    let (removed, _, members): (i64, (), Vec<String>) = redis::pipe()
        .zrem(&key, member(user, connection))
        .zrem(online_key(prefix, user), connection.to_string())
        .zrangebyscore(&key, now_ms(), "+inf")
        .query_async(redis)
        .await?;
    let prefix_of_user = format!("{user}:");
    Ok(removed > 0 && !members.iter().any(|m| m.starts_with(&prefix_of_user)))
}

/// The users present in a session.
pub async fn present(
    redis: &mut ConnectionManager,
    prefix: &str,
    session: Uuid,
) -> redis::RedisResult<BTreeSet<Uuid>> {
    let members: Vec<String> = redis::cmd("ZRANGEBYSCORE")
        .arg(session_key(prefix, session))
        .arg(now_ms())
        .arg("+inf")
        .query_async(redis)
        .await?;
    Ok(members
        .iter()
        .filter_map(|m| m.split_once(':').and_then(|(u, _)| u.parse().ok()))
        .collect())
}

/// Removes the expired sockets of `sessions` (a replica died), looked up in
/// one pipeline. Returns the users who thereby left, by session; only the
/// replica whose removal succeeded reports them, so each departure is
/// announced once.
pub async fn sweep(
    redis: &mut ConnectionManager,
    prefix: &str,
    sessions: &[Uuid],
) -> redis::RedisResult<Vec<(Uuid, Uuid)>> {
    if sessions.is_empty() {
        return Ok(Vec::new());
    }
    let now = now_ms();
    let mut pipe = redis::pipe();
    for session in sessions {
        pipe.cmd("ZRANGEBYSCORE")
            .arg(session_key(prefix, *session))
            .arg("-inf")
            .arg(format!("({now}"));
    }
    let expired: Vec<Vec<String>> = pipe.query_async(redis).await?;
    let mut left = Vec::new();
    for (session, stale) in sessions.iter().zip(expired) {
        for stale in stale {
            let Some((user, connection)) = stale
                .split_once(':')
                .and_then(|(u, c)| Some((u.parse::<Uuid>().ok()?, c.parse::<Uuid>().ok()?)))
            else {
                continue;
            };
            if remove(redis, prefix, *session, user, connection).await? {
                left.push((*session, user));
            }
        }
    }
    Ok(left)
}

/// Which of `users` are online (a live socket in any room, on any replica).
/// Redis being down makes everyone offline rather than failing the request.
pub async fn online(redis: &ConnectionManager, prefix: &str, users: &[Uuid]) -> BTreeSet<Uuid> {
    if users.is_empty() {
        return BTreeSet::new();
    }
    let mut pipe = redis::pipe();
    let now = now_ms();
    for user in users {
        pipe.zcount(online_key(prefix, *user), now, "+inf");
    }
    let counts: Vec<u64> = match pipe.query_async(&mut redis.clone()).await {
        Ok(counts) => counts,
        Err(e) => {
            tracing::warn!(error = %e, "presence unavailable; reporting everyone offline");
            return BTreeSet::new();
        }
    };
    users
        .iter()
        .zip(counts)
        .filter(|(_, n)| *n > 0)
        .map(|(u, _)| *u)
        .collect()
}

/// One socket's presence, as this replica refreshes it.
#[derive(Debug, Clone, Copy)]
struct Entry {
    session: Uuid,
    user: Uuid,
}

/// This replica's present sockets, refreshed together ([`Local::refresh`]).
#[derive(Default)]
pub struct Local {
    entries: Mutex<HashMap<Uuid, Entry>>,
    /// Removals hold it shared, a refresh exclusively: a refresh that read a
    /// socket before it left cannot reach Redis after its removal and bring
    /// it back.
    writes: RwLock<()>,
}

/// A socket's entry in [`Local`]; dropping it stops its refreshes (the
/// Redis member then expires), [`Local::leave`] also removes it at once.
pub struct Presence {
    local: std::sync::Arc<Local>,
    connection: Uuid,
    session: Uuid,
    user: Uuid,
}

impl Drop for Presence {
    fn drop(&mut self) {
        let mut entries = self.local.lock();
        entries.remove(&self.connection);
        super::hub::shrink_when_sparse(&mut entries);
    }
}

impl Local {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<Uuid, Entry>> {
        self.entries.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Registers a socket and makes it present. The boolean says whether its
    /// user just became present in the session (no other live socket).
    pub async fn join(
        self: &std::sync::Arc<Self>,
        ctx: &ApiContext,
        session: Uuid,
        user: Uuid,
        connection: Uuid,
    ) -> (Presence, redis::RedisResult<bool>) {
        self.lock().insert(connection, Entry { session, user });
        let presence = Presence {
            local: std::sync::Arc::clone(self),
            connection,
            session,
            user,
        };
        let mut redis = ctx.redis.clone();
        let joined = touch(
            &mut redis,
            &ctx.config.redis.key_prefix,
            session,
            user,
            connection,
        )
        .await;
        (presence, joined)
    }

    /// Removes a socket's presence. Returns whether its user left the
    /// session (it was their last live socket there).
    pub async fn leave(&self, ctx: &ApiContext, presence: Presence) -> redis::RedisResult<bool> {
        let _write = self.writes.read().await;
        let (session, user, connection) = (presence.session, presence.user, presence.connection);
        drop(presence);
        remove(
            &mut ctx.redis.clone(),
            &ctx.config.redis.key_prefix,
            session,
            user,
            connection,
        )
        .await
    }

    /// Present sockets on this replica.
    pub fn len(&self) -> usize {
        self.lock().len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Renews every local member's expiry in one pipeline (`ZADD` without
    /// `XX`, as a join does: a member lost with Redis' data comes back).
    /// Returns the sessions with a local socket.
    pub async fn refresh(&self, redis: &mut ConnectionManager, prefix: &str) -> Vec<Uuid> {
        let _write = self.writes.write().await;
        let entries: Vec<(Uuid, Entry)> = self.lock().iter().map(|(c, e)| (*c, *e)).collect();
        let mut sessions = BTreeSet::new();
        if entries.is_empty() {
            return Vec::new();
        }
        // One `ZADD` per key with all of its members (one user's many
        // sockets share their `online` key), then one `EXPIRE` per key.
        let mut members: HashMap<String, Vec<String>> = HashMap::new();
        for (connection, entry) in &entries {
            sessions.insert(entry.session);
            members
                .entry(session_key(prefix, entry.session))
                .or_default()
                .push(member(entry.user, *connection));
            members
                .entry(online_key(prefix, entry.user))
                .or_default()
                .push(connection.to_string());
        }
        let expires = expiry();
        let ttl = i64::try_from(PRESENCE_TTL.as_secs() * 2).unwrap_or(60);
        let mut pipe = redis::pipe();
        for (key, members) in &members {
            let scored: Vec<(u64, &String)> = members.iter().map(|m| (expires, m)).collect();
            pipe.zadd_multiple(key, &scored).ignore();
            pipe.expire(key, ttl).ignore();
        }
        if let Err(e) = pipe.query_async::<()>(redis).await {
            tracing::warn!(error = %e, "presence refresh failed");
        }
        sessions.into_iter().collect()
    }
}
