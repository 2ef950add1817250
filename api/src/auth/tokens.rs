//! JSON Web Tokens: short-lived access tokens and rotating refresh tokens.
//!
//! Both are HS256 JWTs, signed with different secrets (`JWT_ACCESS_SECRET`,
//! `JWT_REFRESH_SECRET`) and carrying a `typ` claim, so one can never pass
//! for the other even if the secrets were equal. Both carry `sid`, the login
//! (refresh-token family) they belong to: revoking the login ends both.
//! Refresh tokens are stored server-side only as SHA-256 hashes.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use jsonwebtoken::{
    Algorithm, DecodingKey, EncodingKey, Header, Validation, decode, encode, errors::ErrorKind,
};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use uuid::Uuid;

use crate::{config::JwtSettings, error::Error};

/// Clock skew allowed when checking `exp`, in seconds: a token is accepted
/// (and a socket it opened stays open) until this long after its `exp`.
pub const LEEWAY_SECS: u64 = 5;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TokenType {
    Access,
    Refresh,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Claims {
    /// The user id.
    pub sub: Uuid,
    /// The user's email at issue time, for clients that read the token (the
    /// server reads the current email from the database instead).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
    pub iat: u64,
    pub exp: u64,
    /// Unique per token; a refresh token's `jti` is its row id.
    pub jti: Uuid,
    /// The login (token family) this token belongs to.
    pub sid: Uuid,
    pub typ: TokenType,
}

/// A freshly signed token with the fields the caller needs to store it.
pub struct Issued {
    pub token: String,
    pub jti: Uuid,
    pub expires_at: SystemTime,
}

pub struct TokenKeys {
    access: (EncodingKey, DecodingKey),
    refresh: (EncodingKey, DecodingKey),
    access_ttl: Duration,
    refresh_ttl: Duration,
    validation: Validation,
}

impl TokenKeys {
    pub fn new(settings: &JwtSettings) -> Self {
        let pair = |secret: &str| {
            (
                EncodingKey::from_secret(secret.as_bytes()),
                DecodingKey::from_secret(secret.as_bytes()),
            )
        };
        // Only HS256 is accepted: `alg: none` and algorithm confusion fail here.
        let mut validation = Validation::new(Algorithm::HS256);
        validation.leeway = LEEWAY_SECS;
        validation.set_required_spec_claims(&["exp", "iat", "sub"]);
        TokenKeys {
            access: pair(settings.access_secret.expose()),
            refresh: pair(settings.refresh_secret.expose()),
            access_ttl: settings.access_ttl,
            refresh_ttl: settings.refresh_ttl,
            validation,
        }
    }

    pub fn issue(
        &self,
        typ: TokenType,
        user_id: Uuid,
        email: &str,
        login_id: Uuid,
    ) -> anyhow::Result<Issued> {
        let (key, ttl) = match typ {
            TokenType::Access => (&self.access.0, self.access_ttl),
            TokenType::Refresh => (&self.refresh.0, self.refresh_ttl),
        };
        let now = SystemTime::now();
        let expires_at = now + ttl;
        let jti = Uuid::new_v4();
        let claims = Claims {
            sub: user_id,
            email: Some(email.to_owned()),
            iat: unix(now),
            exp: unix(expires_at),
            jti,
            sid: login_id,
            typ,
        };
        let token = encode(&Header::new(Algorithm::HS256), &claims, key)?;
        Ok(Issued {
            token,
            jti,
            expires_at,
        })
    }

    /// Verifies signature, expiry and type. Every failure is a 401.
    pub fn verify(&self, token: &str, expected: TokenType) -> Result<Claims, Error> {
        let key = match expected {
            TokenType::Access => &self.access.1,
            TokenType::Refresh => &self.refresh.1,
        };
        let claims = decode::<Claims>(token, key, &self.validation)
            .map_err(|e| match e.kind() {
                ErrorKind::ExpiredSignature => Error::Unauthorized {
                    code: "token_expired",
                    message: "the token has expired",
                },
                _ => invalid_token(),
            })?
            .claims;
        if claims.typ != expected {
            return Err(invalid_token());
        }
        Ok(claims)
    }

    /// Like [`verify`](Self::verify) but accepts an expired token: logging out
    /// with an expired refresh token should still end its login.
    pub fn verify_ignoring_expiry(
        &self,
        token: &str,
        expected: TokenType,
    ) -> Result<Claims, Error> {
        let mut validation = self.validation.clone();
        validation.validate_exp = false;
        let key = match expected {
            TokenType::Access => &self.access.1,
            TokenType::Refresh => &self.refresh.1,
        };
        let claims = decode::<Claims>(token, key, &validation)
            .map_err(|_| invalid_token())?
            .claims;
        if claims.typ != expected {
            return Err(invalid_token());
        }
        Ok(claims)
    }
}

pub fn invalid_token() -> Error {
    Error::Unauthorized {
        code: "invalid_token",
        message: "the token is invalid",
    }
}

/// What the database stores for a refresh token.
pub fn hash_token(token: &str) -> Vec<u8> {
    Sha256::digest(token.as_bytes()).to_vec()
}

fn unix(time: SystemTime) -> u64 {
    time.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs())
}
