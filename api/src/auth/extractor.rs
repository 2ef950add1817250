//! [`AuthUser`]: the authenticated caller, extracted from
//! `Authorization: Bearer <access token>`.
//!
//! Besides the signature, expiry and token type, the extractor checks that the
//! token's login has not been revoked (logout, logout-all, password change,
//! refresh-token reuse), so revocation takes effect at once rather than when
//! the access token expires. That is one indexed query per request.

use std::time::{Duration, UNIX_EPOCH};

use axum::{extract::FromRequestParts, http::request::Parts};
use uuid::Uuid;

use super::tokens::{LEEWAY_SECS, TokenType, invalid_token};
use crate::{error::Error, realtime::lifetime::Holder, startup::ApiContext};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    User,
    Admin,
}

/// The caller of an authenticated route.
#[derive(Debug, Clone)]
pub struct AuthUser {
    pub id: Uuid,
    pub email: String,
    pub name: String,
    pub role: Role,
    /// The login this request's token belongs to.
    pub login_id: Uuid,
    /// The token's `exp` (Unix seconds): a socket it opens closes then.
    pub token_expires_at: u64,
    /// Authenticated by a personal API token (then `login_id` is the
    /// token's id): refused where credentials change ([`LoginUser`]).
    pub api_token: bool,
}

impl FromRequestParts<ApiContext> for AuthUser {
    type Rejection = Error;

    async fn from_request_parts(parts: &mut Parts, ctx: &ApiContext) -> Result<Self, Error> {
        let token = bearer_token(parts)?;
        AuthUser::from_bearer(ctx, token).await
    }
}

/// [`AuthUser`] for the routes that change credentials (password,
/// logout-all, API tokens): a signed-in login's access token only — a
/// personal API token is refused with 403 `login_required`.
pub struct LoginUser(pub AuthUser);

impl FromRequestParts<ApiContext> for LoginUser {
    type Rejection = Error;

    async fn from_request_parts(parts: &mut Parts, ctx: &ApiContext) -> Result<Self, Error> {
        let token = bearer_token(parts)?;
        if token.starts_with(crate::api_tokens::TOKEN_PREFIX) {
            return Err(Error::Forbidden(
                "an API token cannot change credentials; sign in and use an access token",
            ));
        }
        Ok(LoginUser(AuthUser::from_token(ctx, token).await?))
    }
}

/// [`AuthUser`] whose access token may also come as `?token=` (when no
/// `Authorization` header is sent): for what a browser opens without setting
/// headers, the WebSocket upgrades and the admin's dashboard page.
pub struct QueryTokenUser(pub AuthUser);

impl FromRequestParts<ApiContext> for QueryTokenUser {
    type Rejection = Error;

    async fn from_request_parts(parts: &mut Parts, ctx: &ApiContext) -> Result<Self, Error> {
        let from_query = parts.uri.query().and_then(|q| {
            q.split('&')
                .find_map(|pair| pair.strip_prefix("token="))
                .map(str::to_owned)
        });
        let token = match (
            parts
                .headers
                .contains_key(axum::http::header::AUTHORIZATION),
            from_query,
        ) {
            (false, Some(token)) => token,
            _ => bearer_token(parts)?.to_owned(),
        };
        Ok(QueryTokenUser(AuthUser::from_token(ctx, &token).await?))
    }
}

impl AuthUser {
    /// An access token or a personal API token (told apart by its prefix).
    pub async fn from_bearer(ctx: &ApiContext, token: &str) -> Result<Self, Error> {
        if token.starts_with(crate::api_tokens::TOKEN_PREFIX) {
            return crate::api_tokens::authenticate(ctx, token).await;
        }
        AuthUser::from_token(ctx, token).await
    }

    /// The caller as a socket's holder: the socket closes when the token
    /// stops being valid (its `exp` plus the leeway validation allows) or
    /// its login is revoked.
    pub fn socket_holder(&self) -> Holder {
        Holder {
            user: self.id,
            login: self.login_id,
            expires: UNIX_EPOCH + Duration::from_secs(self.token_expires_at + LEEWAY_SECS),
        }
    }

    /// Verifies an access token and loads its (unrevoked) login's user.
    pub async fn from_token(ctx: &ApiContext, token: &str) -> Result<Self, Error> {
        let claims = ctx.tokens.verify(token, TokenType::Access)?;
        let row = sqlx::query!(
            r#"
            SELECT u.id, u.email, u.name, u.role
            FROM logins l
            JOIN users u ON u.id = l.user_id
            WHERE l.id = $1 AND l.user_id = $2 AND l.revoked_at IS NULL
            "#,
            claims.sid,
            claims.sub,
        )
        .fetch_optional(&ctx.db)
        .await?
        .ok_or(Error::Unauthorized {
            code: "token_revoked",
            message: "this login has ended; sign in again",
        })?;
        Ok(AuthUser {
            id: row.id,
            email: row.email,
            name: row.name,
            role: if row.role == "admin" {
                Role::Admin
            } else {
                Role::User
            },
            login_id: claims.sid,
            token_expires_at: claims.exp,
            api_token: false,
        })
    }
}

fn bearer_token(parts: &Parts) -> Result<&str, Error> {
    let header =
        parts
            .headers
            .get(axum::http::header::AUTHORIZATION)
            .ok_or(Error::Unauthorized {
                code: "missing_token",
                message: "an `Authorization: Bearer <token>` header is required",
            })?;
    header
        .to_str()
        .ok()
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::trim)
        .filter(|t| !t.is_empty())
        .ok_or_else(invalid_token)
}
