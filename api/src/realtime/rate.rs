//! Message rates: per socket, and per user across all of the user's sockets
//! and replicas.
//!
//! Each socket has its own limiter ([`RateLimiter`], a local token bucket).
//! The per-user ones ([`UserRate`]) hold per *user*, so opening more sockets buys no more throughput. One token
//! bucket per user and kind lives in Redis (`{prefix}rate:{kind}:{user}`,
//! refilled by Redis' clock, so replicas' clocks do not matter). A socket
//! takes tokens in chunks ([`Kind::chunk`]) and spends them locally, so
//! busy document sockets ask Redis once per several messages; what a socket
//! holds was taken from the shared bucket, so chunks never raise the limit.
//!
//! When Redis cannot answer, messages are allowed (the per-socket limits
//! still hold): an outage of the counter must not stop every editor.

use std::{sync::LazyLock, time::Instant};

use redis::aio::ConnectionManager;
use uuid::Uuid;

use crate::startup::ApiContext;

/// What a bucket counts.
#[derive(Debug, Clone, Copy)]
pub enum Kind {
    /// `chat.send` on the events socket.
    Chat,
    /// Document sync messages and updates on the `/doc` socket.
    DocUpdates,
    /// Awareness messages on the `/doc` socket.
    Awareness,
}

impl Kind {
    fn name(self) -> &'static str {
        match self {
            Kind::Chat => "chat",
            Kind::DocUpdates => "doc",
            Kind::Awareness => "awareness",
        }
    }

    /// Tokens a socket takes from Redis at a time.
    fn chunk(self) -> u32 {
        match self {
            // Every chat message is a database write anyway.
            Kind::Chat => 1,
            Kind::DocUpdates => 8,
            Kind::Awareness => 4,
        }
    }
}

/// Refills the bucket by Redis' clock (`rate` per second up to `burst`),
/// then grants up to `want` whole tokens. Returns the number granted.
const TAKE: &str = r"
local rate, burst, want = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local state = redis.call('HMGET', KEYS[1], 'tokens', 'at')
local tokens, at = tonumber(state[1]), tonumber(state[2])
if tokens == nil or at == nil then tokens, at = burst, now end
tokens = math.min(burst, tokens + math.max(0, now - at) * rate / 1000)
local granted = math.min(want, math.floor(tokens))
tokens = tokens - granted
redis.call('HSET', KEYS[1], 'tokens', tostring(tokens), 'at', tostring(now))
redis.call('PEXPIRE', KEYS[1], math.ceil(burst * 1000 / rate) + 1000)
return granted
";
static TAKE_SCRIPT: LazyLock<redis::Script> = LazyLock::new(|| redis::Script::new(TAKE));

/// One socket's share of its user's bucket for one [`Kind`].
pub struct UserRate {
    kind: Kind,
    key: String,
    rate: u32,
    burst: u32,
    held: u32,
    redis: ConnectionManager,
}

impl UserRate {
    pub fn new(ctx: &ApiContext, user: Uuid, kind: Kind) -> Self {
        let settings = &ctx.config.sockets;
        let rate = match kind {
            Kind::Chat => settings.chat_per_second,
            Kind::DocUpdates => settings.doc_updates_per_second,
            Kind::Awareness => settings.awareness_per_second,
        };
        UserRate {
            kind,
            key: format!("{}rate:{}:{user}", ctx.config.redis.key_prefix, kind.name()),
            rate,
            burst: rate.saturating_mul(2),
            held: 0,
            redis: ctx.redis.clone(),
        }
    }

    /// Whether one more message is within the user's rate.
    pub async fn allow(&mut self) -> bool {
        if self.held == 0 {
            let granted: redis::RedisResult<u32> = TAKE_SCRIPT
                .key(&self.key)
                .arg(self.rate)
                .arg(self.burst)
                .arg(self.kind.chunk().min(self.burst))
                .invoke_async(&mut self.redis)
                .await;
            match granted {
                Ok(granted) => self.held = granted,
                Err(e) => {
                    tracing::warn!(error = %e, kind = self.kind.name(),
                        "per-user rate limit unavailable; allowing");
                    return true;
                }
            }
        }
        if self.held == 0 {
            return false;
        }
        self.held -= 1;
        true
    }
}

/// A socket's own token bucket: `rate` per second, bursts of twice that.
pub struct RateLimiter {
    rate: f64,
    tokens: f64,
    last: Instant,
}

impl RateLimiter {
    pub fn new(rate: f64) -> Self {
        RateLimiter {
            rate,
            tokens: rate * 2.0,
            last: Instant::now(),
        }
    }

    pub fn allow(&mut self) -> bool {
        let now = Instant::now();
        self.tokens = (self.tokens + now.duration_since(self.last).as_secs_f64() * self.rate)
            .min(self.rate * 2.0);
        self.last = now;
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            true
        } else {
            false
        }
    }
}
