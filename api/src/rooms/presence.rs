//! Presence in Redis, shared by every api replica.
//!
//! Each socket is a member `{userId}:{connectionId}` of the sorted set
//! `{prefix}presence:{sessionId}` and of `{prefix}online:{userId}`, scored with
//! its expiry time (ms). Sockets refresh their score every heartbeat; a socket
//! whose replica died simply stops refreshing and expires after
//! [`PRESENCE_TTL`]. A user counts once however many tabs they have: they are
//! present while any of their members is unexpired.

use std::{
    collections::BTreeSet,
    time::{Duration, SystemTime, UNIX_EPOCH},
};

use redis::aio::ConnectionManager;
use uuid::Uuid;

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

/// Removes expired sockets of a session (a replica died). Returns the users
/// who thereby left; only the replica whose removal succeeded reports them,
/// so each departure is announced once.
pub async fn sweep(
    redis: &mut ConnectionManager,
    prefix: &str,
    session: Uuid,
) -> redis::RedisResult<Vec<Uuid>> {
    let key = session_key(prefix, session);
    let expired: Vec<String> = redis::cmd("ZRANGEBYSCORE")
        .arg(&key)
        .arg("-inf")
        .arg(format!("({}", now_ms()))
        .query_async(redis)
        .await?;
    let mut left = Vec::new();
    for stale in expired {
        let Some((user, connection)) = stale
            .split_once(':')
            .and_then(|(u, c)| Some((u.parse::<Uuid>().ok()?, c.parse::<Uuid>().ok()?)))
        else {
            continue;
        };
        if remove(redis, prefix, session, user, connection).await? {
            left.push(user);
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
