//! The JWT secrets' rules: long enough for HS256, and never a value that
//! was ever published in this repository (anyone could sign tokens with it).
//! The configuration's tests scan the repository for secret-looking values
//! missing from [`PUBLISHED_SECRETS`].

use run_contract::config::{ConfigError, Env};

use super::Secret;

/// Shortest accepted JWT secret, in bytes. HS256 keys shorter than the hash
/// output (32 bytes) weaken the signature.
pub const MIN_SECRET_LEN: usize = 32;

/// JWT secrets that were ever published in this repository (deployment files,
/// examples, docs, including its history): anyone can sign tokens with them,
/// so the api refuses to start with one. A test scans the repository for
/// secret-looking JWT values and fails if one is missing here.
pub const PUBLISHED_SECRETS: &[&str] = &[
    // docker-compose.yml's former fallbacks.
    "dev-only-access-secret-not-for-production-0001",
    "dev-only-refresh-secret-not-for-production-0002",
    // The test harness's and the document benchmark's former fixed values.
    "test-access-secret-0123456789abcdef0123456789",
    "test-refresh-secret-0123456789abcdef012345678",
    "bench-access-secret-0123456789abcdef0123456789",
    "bench-refresh-secret-0123456789abcdef012345678",
];

/// A JWT secret (`name` or `<name>_FILE`, required) that passes both rules.
pub(super) fn jwt_secret(env: &Env<'_>, name: &str) -> Result<Secret<String>, ConfigError> {
    let value = env.required_secret(name)?;
    if value.len() < MIN_SECRET_LEN {
        return Err(ConfigError::new(format!(
            "{name} is too weak: use at least {MIN_SECRET_LEN} random bytes \
             (e.g. `openssl rand -hex 32`)"
        )));
    }
    if PUBLISHED_SECRETS.contains(&value.as_str()) {
        return Err(ConfigError::new(format!(
            "{name} is a value published in the CodeCall repository, so anyone can \
             sign tokens with it: generate your own (e.g. `openssl rand -hex 32`)"
        )));
    }
    Ok(Secret::new(value))
}
