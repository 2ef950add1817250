//! Password hashing: argon2id with the argon2 crate's defaults, which are
//! OWASP's recommendation (m = 19 MiB, t = 2, p = 1).
//!
//! A hash costs tens of milliseconds of CPU and 19 MiB of memory, so it runs on
//! the blocking pool, and a semaphore bounds how many run at once: a burst of
//! logins queues instead of exhausting memory or starving the async runtime.
//!
//! Counted for `/metrics`: `codecall_password_hashes_total` (passwords
//! hashed) and `codecall_password_verifications_total{outcome}` (`match`,
//! `mismatch`, or `unknown_user` for the dummy verification an unknown
//! email gets).

use std::sync::Arc;

use anyhow::Context as _;
use argon2::{Argon2, PasswordHash, PasswordHasher as _, PasswordVerifier as _};
use tokio::sync::Semaphore;

#[derive(Clone)]
pub struct Passwords {
    permits: Arc<Semaphore>,
    /// A real hash of a random password, verified against when a login names
    /// an unknown email, so that answer takes as long as a wrong password.
    dummy_hash: Arc<str>,
}

impl Passwords {
    /// `concurrency`: how many hashes may run at once (at least 1).
    pub fn new(concurrency: usize) -> anyhow::Result<Self> {
        let random: [u8; 16] = rand::random();
        let dummy_hash = hash_blocking(&format!("{random:x?}"))?;
        Ok(Passwords {
            permits: Arc::new(Semaphore::new(concurrency.max(1))),
            dummy_hash: dummy_hash.into(),
        })
    }

    pub async fn hash(&self, password: String) -> anyhow::Result<String> {
        let _permit = self
            .permits
            .acquire()
            .await
            .context("hash semaphore closed")?;
        let hash = tokio::task::spawn_blocking(move || hash_blocking(&password))
            .await
            .context("password hashing task failed")??;
        metrics::counter!("codecall_password_hashes_total").increment(1);
        Ok(hash)
    }

    /// Whether `password` matches `hash`; `None` verifies against the dummy
    /// hash (and answers false) to keep unknown users indistinguishable by time.
    pub async fn verify(&self, password: String, hash: Option<String>) -> anyhow::Result<bool> {
        let known = hash.is_some();
        let hash = hash.unwrap_or_else(|| self.dummy_hash.to_string());
        let _permit = self
            .permits
            .acquire()
            .await
            .context("hash semaphore closed")?;
        let matches = tokio::task::spawn_blocking(move || {
            let parsed =
                PasswordHash::new(&hash).map_err(|e| anyhow::anyhow!("stored hash: {e}"))?;
            Ok::<_, anyhow::Error>(
                Argon2::default()
                    .verify_password(password.as_bytes(), &parsed)
                    .is_ok(),
            )
        })
        .await
        .context("password verification task failed")??;
        let outcome = match (known, matches) {
            (false, _) => "unknown_user",
            (true, true) => "match",
            (true, false) => "mismatch",
        };
        metrics::counter!("codecall_password_verifications_total", "outcome" => outcome)
            .increment(1);
        Ok(known && matches)
    }
}

fn hash_blocking(password: &str) -> anyhow::Result<String> {
    // A random salt is generated per hash (OS randomness).
    Argon2::default()
        .hash_password(password.as_bytes())
        .map(|h| h.to_string())
        .map_err(|e| anyhow::anyhow!("argon2 hashing failed: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn hashes_are_argon2id_with_owasp_parameters_and_verify() {
        let passwords = Passwords::new(2).expect("passwords");
        let hash = passwords.hash("StrongPass123".into()).await.expect("hash");
        assert!(
            hash.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"),
            "{hash}"
        );
        assert!(
            passwords
                .verify("StrongPass123".into(), Some(hash.clone()))
                .await
                .expect("verify")
        );
        assert!(
            !passwords
                .verify("StrongPass124".into(), Some(hash))
                .await
                .expect("verify")
        );
    }

    #[tokio::test]
    async fn an_unknown_user_never_verifies() {
        let passwords = Passwords::new(1).expect("passwords");
        assert!(!passwords.verify(String::new(), None).await.expect("verify"));
    }
}
