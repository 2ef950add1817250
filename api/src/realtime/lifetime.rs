//! How long a WebSocket (events or document) may stay open, and how many one
//! user may hold.
//!
//! **Lifetime.** A socket lives no longer than the access token that opened
//! it: it is closed with [`Close::EXPIRED`] (4001) at the token's `exp` plus
//! the leeway token validation allows, and with [`Close::REVOKED`] (4003)
//! when its login is revoked (logout, logout-all, password change,
//! refresh-token reuse) on any replica. Revocations are rare, so they are
//! broadcast rather than polled for: the revoking replica closes its own
//! sockets and publishes a [`Revocation`] on `{prefix}revocations`; every
//! replica keeps a registry of its open sockets with their logins and closes
//! the matching ones. PostgreSQL is read at the upgrade (after the socket is
//! registered, so a revocation racing the upgrade is caught one way or the
//! other), and, in one query for all open sockets, when the replica's
//! subscriber is back after losing Redis (what was published meanwhile is
//! lost) or has fallen behind.
//!
//! **Caps.** Open sockets are counted per user and per user and session in
//! Redis sorted sets scored by lease expiry, so the caps hold across
//! replicas, and the sockets of a replica that crashed stop counting after
//! [`LEASE`]. One task per replica renews all of its leases in one pipeline
//! every [`LEASE_RENEWAL`]: no Redis round trip per socket per heartbeat.

use std::{
    collections::{BTreeSet, HashMap},
    sync::{Arc, LazyLock, Mutex, PoisonError},
    time::{Duration, SystemTime, UNIX_EPOCH},
};

use redis::aio::ConnectionManager;
use serde::{Deserialize, Serialize};
use tokio::sync::{broadcast::error::RecvError, watch};
use uuid::Uuid;

use crate::{
    error::{Error, Result},
    startup::ApiContext,
};

/// How long a socket counts towards its user's caps without a renewal.
pub const LEASE: Duration = Duration::from_secs(30);
/// How often each replica renews its sockets' leases.
pub const LEASE_RENEWAL: Duration = Duration::from_secs(10);
/// How long a refused upgrade is told to wait (`Retry-After`).
pub const CAP_RETRY_AFTER: Duration = Duration::from_secs(10);

/// A close code and reason sent to a socket whose token stops being valid.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Close {
    pub code: u16,
    pub reason: &'static str,
}

impl Close {
    /// The access token reached its `exp` (plus the leeway).
    pub const EXPIRED: Close = Close {
        code: 4001,
        reason: "token_expired",
    };
    /// The token's login was revoked.
    pub const REVOKED: Close = Close {
        code: 4003,
        reason: "token_revoked",
    };
}

/// A revocation as broadcast to every replica, published once it is committed.
#[derive(Debug, Clone, Copy, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "camelCase")]
pub enum Revocation {
    /// One login (logout, refresh-token reuse).
    Login { login: Uuid },
    /// Every login of a user but `except` (logout-all; a password change
    /// keeps the caller's own login).
    User { user: Uuid, except: Option<Uuid> },
}

impl Revocation {
    fn covers(&self, user: Uuid, login: Uuid) -> bool {
        match *self {
            Revocation::Login { login: revoked } => login == revoked,
            Revocation::User {
                user: revoked,
                except,
            } => user == revoked && except != Some(login),
        }
    }
}

/// The channel revocations travel on.
pub fn channel(prefix: &str) -> String {
    format!("{prefix}revocations")
}

/// Closes the sockets a committed revocation ends, here and on every other
/// replica.
pub async fn revoke(ctx: &ApiContext, revocation: Revocation) {
    ctx.sockets
        .close_where(|user, login| revocation.covers(user, login), Close::REVOKED);
    super::pubsub::publish(ctx, &channel(&ctx.config.redis.key_prefix), &revocation).await;
}

fn user_key(prefix: &str, user: Uuid) -> String {
    format!("{prefix}sockets:{user}")
}

fn session_key(prefix: &str, user: Uuid, session: Uuid) -> String {
    format!("{prefix}sockets:{user}:{session}")
}

/// Drops expired leases, then adds this socket's to both sets if neither
/// cap is reached. Returns 0 (admitted), 1 (user cap) or 2 (session cap).
const ADMIT: &str = r"
local now = tonumber(ARGV[1])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', now)
if redis.call('ZCARD', KEYS[1]) >= tonumber(ARGV[4]) then return 1 end
if redis.call('ZCARD', KEYS[2]) >= tonumber(ARGV[5]) then return 2 end
redis.call('ZADD', KEYS[1], ARGV[2], ARGV[3])
redis.call('ZADD', KEYS[2], ARGV[2], ARGV[3])
redis.call('PEXPIRE', KEYS[1], ARGV[6])
redis.call('PEXPIRE', KEYS[2], ARGV[6])
return 0
";
static ADMIT_SCRIPT: LazyLock<redis::Script> = LazyLock::new(|| redis::Script::new(ADMIT));

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

fn lease_ms() -> u64 {
    u64::try_from(LEASE.as_millis()).unwrap_or(30_000)
}

/// Whose socket asks to be admitted, and until when its token lets it stay
/// open (the routes' authentication fills it in).
pub struct Holder {
    pub user: Uuid,
    /// The login its token belongs to: revoking the login closes the socket.
    pub login: Uuid,
    /// When the token stops being valid.
    pub expires: SystemTime,
}

struct Entry {
    user: Uuid,
    login: Uuid,
    session: Uuid,
    close: watch::Sender<Option<Close>>,
}

/// This replica's open sockets.
#[derive(Default)]
pub struct Sockets {
    open: Mutex<HashMap<Uuid, Entry>>,
}

impl Sockets {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<Uuid, Entry>> {
        self.open.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Admits a socket of `holder` to `session`, before the upgrade: 429
    /// over a cap, 503 without Redis, 401 `token_revoked` if the login was
    /// revoked meanwhile. The lease ends when the returned value is dropped.
    pub async fn admit(
        self: &Arc<Self>,
        ctx: &ApiContext,
        holder: &Holder,
        session: Uuid,
    ) -> Result<Lease> {
        let settings = &ctx.config.sockets;
        let prefix = &ctx.config.redis.key_prefix;
        let id = Uuid::new_v4();
        let mut redis = ctx.redis.clone();
        let now = now_ms();
        let verdict: i64 = ADMIT_SCRIPT
            .key(user_key(prefix, holder.user))
            .key(session_key(prefix, holder.user, session))
            .arg(now)
            .arg(now + lease_ms())
            .arg(id.to_string())
            .arg(settings.max_per_user)
            .arg(settings.max_per_user_session)
            .arg(lease_ms() * 2)
            .invoke_async(&mut redis)
            .await
            .map_err(|e| Error::Unavailable {
                code: "dependency_unavailable",
                message: format!("real-time sockets are unavailable: {e}"),
            })?;
        match verdict {
            0 => {}
            1 => {
                return Err(Error::TooManyRequests {
                    message: "too many open sockets for this user (SOCKET_MAX_PER_USER)",
                    retry_after: CAP_RETRY_AFTER,
                });
            }
            _ => {
                return Err(Error::TooManyRequests {
                    message: "too many open sockets for this user in this session \
                              (SOCKET_MAX_PER_USER_SESSION)",
                    retry_after: CAP_RETRY_AFTER,
                });
            }
        }
        let (close, closed) = watch::channel(None);
        self.lock().insert(
            id,
            Entry {
                user: holder.user,
                login: holder.login,
                session,
                close,
            },
        );
        let lease = Lease {
            id,
            user: holder.user,
            session,
            sockets: Arc::clone(self),
            redis,
            prefix: prefix.clone(),
            closed,
            deadline: tokio::time::Instant::now()
                + holder
                    .expires
                    .duration_since(SystemTime::now())
                    .unwrap_or_default(),
        };
        // Registered first, checked second: a revocation committed before
        // this query is seen here, one committed after it is broadcast to
        // the registered socket.
        if !revoked(ctx, &[holder.login]).await?.is_empty() {
            return Err(Error::Unauthorized {
                code: "token_revoked",
                message: "this login has ended; sign in again",
            });
        }
        Ok(lease)
    }

    /// Closes every socket whose `(user, login)` matches.
    fn close_where(&self, matches: impl Fn(Uuid, Uuid) -> bool, close: Close) {
        for entry in self.lock().values() {
            if matches(entry.user, entry.login) {
                entry.close.send_if_modified(|current| {
                    let first = current.is_none();
                    if first {
                        *current = Some(close);
                    }
                    first
                });
            }
        }
    }

    fn logins(&self) -> Vec<Uuid> {
        let logins: BTreeSet<Uuid> = self.lock().values().map(|e| e.login).collect();
        logins.into_iter().collect()
    }

    /// Number of sockets open on this replica.
    pub fn len(&self) -> usize {
        self.lock().len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// The logins among `logins` that are revoked.
async fn revoked(ctx: &ApiContext, logins: &[Uuid]) -> Result<Vec<Uuid>> {
    Ok(sqlx::query_scalar!(
        "SELECT id FROM logins WHERE id = ANY($1) AND revoked_at IS NOT NULL",
        logins
    )
    .fetch_all(&ctx.db)
    .await?)
}

/// A socket's place in the registry and in its user's counts.
pub struct Lease {
    id: Uuid,
    user: Uuid,
    session: Uuid,
    sockets: Arc<Sockets>,
    redis: ConnectionManager,
    prefix: String,
    closed: watch::Receiver<Option<Close>>,
    deadline: tokio::time::Instant,
}

impl Lease {
    /// Resolves when the socket must close: its token expired or its login
    /// was revoked. Cancel-safe (for `select!` loops).
    pub async fn ended(&mut self) -> Close {
        tokio::select! {
            () = tokio::time::sleep_until(self.deadline) => Close::EXPIRED,
            Ok(close) = self.closed.wait_for(Option::is_some) => (*close).unwrap_or(Close::REVOKED),
        }
    }
}

impl Drop for Lease {
    fn drop(&mut self) {
        {
            let mut open = self.sockets.lock();
            open.remove(&self.id);
            super::hub::shrink_when_sparse(&mut open);
        }
        let mut redis = self.redis.clone();
        let (user_key, session_key) = (
            user_key(&self.prefix, self.user),
            session_key(&self.prefix, self.user, self.session),
        );
        let member = self.id.to_string();
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            runtime.spawn(async move {
                let removed: redis::RedisResult<()> = redis::pipe()
                    .zrem(&user_key, &member)
                    .ignore()
                    .zrem(&session_key, &member)
                    .ignore()
                    .query_async(&mut redis)
                    .await;
                if let Err(e) = removed {
                    tracing::debug!(error = %e, "socket lease not removed; it expires by itself");
                }
            });
        }
    }
}

/// Starts this replica's revocation listener and lease renewal.
pub fn spawn(ctx: &ApiContext) {
    tokio::spawn(listen(ctx.clone()));
    tokio::spawn(renew(ctx.clone()));
}

/// Applies the revocations other replicas publish; after losing Redis (or
/// falling behind), looks up what it may have missed.
async fn listen(ctx: ApiContext) {
    let channel = channel(&ctx.config.redis.key_prefix);
    let mut subscription = loop {
        match ctx.hub.join(&channel).await {
            Ok(subscription) => break subscription,
            Err(e) => {
                tracing::warn!(error = %e, "cannot subscribe to revocations yet; retrying");
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
        }
    };
    let mut disconnections = ctx.hub.disconnections();
    disconnections.mark_unchanged();
    recheck(&ctx).await;
    loop {
        tokio::select! {
            message = subscription.receiver.recv() => match message {
                Ok(payload) => match serde_json::from_slice::<Revocation>(payload.bytes()) {
                    Ok(revocation) => ctx.sockets.close_where(
                        |user, login| revocation.covers(user, login),
                        Close::REVOKED,
                    ),
                    Err(e) => tracing::warn!(error = %e, "malformed revocation ignored"),
                },
                Err(RecvError::Lagged(_)) => recheck(&ctx).await,
                Err(RecvError::Closed) => return,
            },
            changed = disconnections.changed() => {
                if changed.is_err() {
                    return;
                }
                while let Err(e) = ctx.hub.ping().await {
                    tracing::debug!(error = %e, "waiting for Redis to come back");
                    tokio::time::sleep(Duration::from_secs(1)).await;
                }
                recheck(&ctx).await;
            }
        }
    }
}

/// Closes the open sockets whose logins were revoked (one query for all).
async fn recheck(ctx: &ApiContext) {
    let logins = ctx.sockets.logins();
    if logins.is_empty() {
        return;
    }
    match revoked(ctx, &logins).await {
        Ok(revoked) if !revoked.is_empty() => {
            tracing::info!(
                count = revoked.len(),
                "closing sockets of logins revoked while revocations were missed"
            );
            ctx.sockets
                .close_where(|_, login| revoked.contains(&login), Close::REVOKED);
        }
        Ok(_) => {}
        Err(e) => tracing::warn!(error = %e, "cannot check open sockets' logins"),
    }
}

/// Renews every lease of this replica, in one pipeline per round. `XX`: a
/// lease removed meanwhile (its socket closed) is not brought back.
async fn renew(ctx: ApiContext) {
    let prefix = ctx.config.redis.key_prefix.clone();
    let mut redis = ctx.redis.clone();
    let mut tick = tokio::time::interval(LEASE_RENEWAL);
    loop {
        tick.tick().await;
        let leases: Vec<(Uuid, Uuid, Uuid)> = ctx
            .sockets
            .lock()
            .iter()
            .map(|(id, e)| (*id, e.user, e.session))
            .collect();
        if leases.is_empty() {
            continue;
        }
        // One `ZADD XX` per key with all of its members, then its `PEXPIRE`.
        let expiry = now_ms() + lease_ms();
        let mut members: HashMap<String, Vec<String>> = HashMap::new();
        for (id, user, session) in &leases {
            for key in [
                user_key(&prefix, *user),
                session_key(&prefix, *user, *session),
            ] {
                members.entry(key).or_default().push(id.to_string());
            }
        }
        let mut pipe = redis::pipe();
        for (key, members) in &members {
            let zadd = pipe.cmd("ZADD").arg(key).arg("XX");
            for member in members {
                zadd.arg(expiry).arg(member);
            }
            zadd.ignore();
            pipe.pexpire(key, i64::try_from(lease_ms() * 2).unwrap_or(60_000))
                .ignore();
        }
        if let Err(e) = pipe.query_async::<()>(&mut redis).await {
            tracing::warn!(error = %e, "socket leases not renewed");
        }
    }
}
