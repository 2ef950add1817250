//! Failed-login throttling, counted in Redis so the limits hold across api
//! replicas. Three counters per attempt, each over a sliding-from-first-failure
//! window (`LOGIN_THROTTLE_WINDOW`):
//!
//! - account + client address: stops one attacker guessing one account, while
//!   the account's owner, from another address, can still sign in;
//! - account (any address): stops guessing spread over many addresses — then
//!   the owner waits too, which is the price of not reopening the attack;
//! - client address (any account): stops password spraying.
//!
//! An attempt is counted *before* the password is checked (atomically with the
//! limit check, in one Lua script), so parallel guesses cannot slip past the
//! limit; a successful login takes its own attempt back and clears the
//! account + address counter. Unknown emails are counted like known ones, so
//! the throttle does not reveal which accounts exist.
//!
//! Registrations are counted per client address too ([`reserve_registration`]):
//! each one costs an argon2 hash and a row, so one address may create at most
//! `REGISTER_MAX_PER_ADDRESS` accounts per `REGISTER_THROTTLE_WINDOW`.
//!
//! Key names carry a hash of the email and address ([`key_part`]), never the
//! raw values: the keys stay the same short length whatever a client sends,
//! and Redis holds no list of who tried to sign in.

use std::{net::IpAddr, time::Duration};

use redis::{Script, aio::ConnectionManager};
use sha2::{Digest, Sha256};

use crate::{config::AuthSettings, error::Error};

const RESERVE: &str = r"
local wait = 0
for i = 1, 3 do
  local n = tonumber(redis.call('GET', KEYS[i]) or '0')
  if n >= tonumber(ARGV[i]) then
    local ttl = redis.call('PTTL', KEYS[i])
    if ttl > wait then wait = ttl end
  end
end
if wait > 0 then return wait end
for i = 1, 3 do
  if redis.call('INCR', KEYS[i]) == 1 then
    redis.call('PEXPIRE', KEYS[i], ARGV[4])
  end
end
return 0
";

const RELEASE: &str = r"
redis.call('DEL', KEYS[1])
for i = 2, 3 do
  if tonumber(redis.call('GET', KEYS[i]) or '0') > 0 then
    redis.call('DECR', KEYS[i])
  end
end
return 0
";

#[derive(Clone)]
pub struct LoginThrottle {
    prefix: String,
    limits: [u32; 3],
    window: Duration,
    reserve: std::sync::Arc<Script>,
    release: std::sync::Arc<Script>,
}

impl LoginThrottle {
    pub fn new(prefix: &str, settings: &AuthSettings) -> Self {
        LoginThrottle {
            prefix: format!("{prefix}login-failures:"),
            limits: [
                settings.max_failures_per_account_address,
                settings.max_failures_per_account,
                settings.max_failures_per_address,
            ],
            window: settings.throttle_window,
            reserve: std::sync::Arc::new(Script::new(RESERVE)),
            release: std::sync::Arc::new(Script::new(RELEASE)),
        }
    }

    fn keys(&self, email: &str, address: IpAddr) -> [String; 3] {
        let p = &self.prefix;
        let (email, address) = (key_part(email), key_part(&address.to_string()));
        [
            format!("{p}pair:{address}:{email}"),
            format!("{p}account:{email}"),
            format!("{p}address:{address}"),
        ]
    }

    /// Counts an attempt, or answers how long the caller must wait.
    pub async fn reserve(
        &self,
        redis: &mut ConnectionManager,
        email: &str,
        address: IpAddr,
    ) -> redis::RedisResult<Option<Duration>> {
        let [a, b, c] = self.keys(email, address);
        let window_ms = u64::try_from(self.window.as_millis()).unwrap_or(u64::MAX);
        let wait_ms: u64 = self
            .reserve
            .key(a)
            .key(b)
            .key(c)
            .arg(self.limits[0])
            .arg(self.limits[1])
            .arg(self.limits[2])
            .arg(window_ms)
            .invoke_async(redis)
            .await?;
        Ok((wait_ms > 0).then(|| Duration::from_millis(wait_ms)))
    }

    /// Takes back a successful attempt.
    pub async fn release(
        &self,
        redis: &mut ConnectionManager,
        email: &str,
        address: IpAddr,
    ) -> redis::RedisResult<()> {
        let [a, b, c] = self.keys(email, address);
        self.release
            .key(a)
            .key(b)
            .key(c)
            .invoke_async::<()>(redis)
            .await
    }
}

/// Counts a registration attempt from `address`, or answers how long the
/// caller must wait (the window runs from the first attempt).
pub async fn reserve_registration(
    redis: &mut ConnectionManager,
    prefix: &str,
    settings: &AuthSettings,
    address: IpAddr,
) -> redis::RedisResult<Option<Duration>> {
    let key = format!("{prefix}registrations:{}", key_part(&address.to_string()));
    let window_ms = u64::try_from(settings.register_window.as_millis()).unwrap_or(u64::MAX);
    let (count, ttl_ms): (u32, i64) = redis::pipe()
        .atomic()
        .incr(&key, 1)
        .cmd("PEXPIRE")
        .arg(&key)
        .arg(window_ms)
        .arg("NX")
        .ignore()
        .cmd("PTTL")
        .arg(&key)
        .query_async(redis)
        .await?;
    Ok((count > settings.register_max_per_address)
        .then(|| Duration::from_millis(u64::try_from(ttl_ms).unwrap_or(1000).max(1000))))
}

/// What a throttle's verdict answers: without Redis the route fails closed
/// (503: unthrottled guesses or sign-ups are the abuse), over the limit 429
/// `too_many` with `Retry-After`. `action` names what is refused in the log
/// and in the 503 (`unavailable`).
pub fn enforce(
    verdict: redis::RedisResult<Option<Duration>>,
    action: &str,
    unavailable: &str,
    too_many: &'static str,
) -> Result<(), Error> {
    match verdict {
        Err(e) => {
            tracing::error!(error = %e, "{action} throttle unavailable");
            Err(Error::Unavailable {
                code: "dependency_unavailable",
                message: format!("{unavailable} is temporarily unavailable"),
            })
        }
        Ok(Some(retry_after)) => Err(Error::TooManyRequests {
            message: too_many,
            retry_after,
        }),
        Ok(None) => Ok(()),
    }
}

/// The part of a Redis key that names a client-supplied identifier (an email,
/// an address): the first 128 bits of its SHA-256, in hex (32 characters).
pub fn key_part(identifier: &str) -> String {
    Sha256::digest(identifier.as_bytes())[..16]
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_parts_are_short_fixed_length_hashes() {
        let long = "x".repeat(4 << 20);
        for identifier in ["a@b.dev", "127.0.0.1", long.as_str()] {
            let part = key_part(identifier);
            assert_eq!(part.len(), 32);
            assert!(part.chars().all(|c| c.is_ascii_hexdigit()));
        }
        assert_ne!(key_part("a@b.dev"), key_part("b@b.dev"));
    }
}
