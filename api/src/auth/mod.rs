//! Accounts and authentication, served identically under `/auth/*` (the
//! original Node backend's paths) and `/api/auth/*`.
//!
//! - `POST /auth/register` → 201 with the new user.
//! - `POST /auth/login` → `{"success": true, "accessToken", "refreshToken"}`.
//! - `POST /auth/refresh` → a new pair; the presented refresh token is spent.
//!   Presenting a spent token again is reuse: 401 `refresh_token_reused` and
//!   the whole login (every token descended from it) is revoked.
//! - `POST /auth/logout` (that login) and `POST /auth/logout-all` (every login
//!   of the caller) → 204.
//!
//! Submodules: [`password`] (argon2id off the runtime), [`tokens`] (JWTs),
//! [`extractor`] ([`AuthUser`]), [`throttle`] (failed-login limits in Redis).

pub mod extractor;
pub mod password;
pub mod throttle;
pub mod tokens;

use std::net::{IpAddr, SocketAddr};

use axum::{
    Json,
    extract::{ConnectInfo, FromRequestParts, State},
    http::{StatusCode, request::Parts},
};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa_axum::{router::OpenApiRouter, routes};
use uuid::Uuid;

pub use self::extractor::{AuthUser, LoginUser, QueryTokenUser, Role};
use self::tokens::{Issued, TokenType, hash_token};
use crate::{
    envelope::Success,
    error::{ApiJson, Error, ErrorBody, Result, ResultExt},
    realtime::lifetime::{Revocation, revoke},
    startup::ApiContext,
    validation::{
        EMAIL_MAX_BYTES, PASSWORD_MAX_CHARS, Problems, normalize_email, validate_name,
        validate_password,
    },
};

pub fn router() -> OpenApiRouter<ApiContext> {
    let routes = || {
        OpenApiRouter::new()
            .routes(routes!(register))
            .routes(routes!(login))
            .routes(routes!(refresh))
            .routes(routes!(logout))
            .routes(routes!(logout_all))
    };
    OpenApiRouter::new()
        .nest("/auth", routes())
        .nest("/api/auth", routes())
}

/// A user as clients see it. Never carries the password hash.
#[derive(Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct UserBody {
    pub id: Uuid,
    pub name: String,
    pub email: String,
    pub role: String,
    pub created_at: DateTime<Utc>,
}

#[derive(Deserialize, utoipa::ToSchema)]
struct RegisterRequest {
    #[serde(default)]
    name: String,
    #[serde(default)]
    email: String,
    #[serde(default)]
    password: String,
}

/// 201's body beside `success`.
#[derive(Serialize, utoipa::ToSchema)]
struct Registered {
    /// `User registered successfully`.
    message: &'static str,
    user: UserBody,
}

/// Creates an account: 201 `{success, message, user}`.
#[utoipa::path(post, path = "/register", tag = "auth", request_body = RegisterRequest, responses(
    (status = 201, description = "`{success, message, user}`", body = Success<Registered>),
    (status = 409, description = "`email_taken`", body = ErrorBody),
    (status = 413, description = "Body over `AUTH_BODY_LIMIT_BYTES`", body = ErrorBody),
    (status = 422, description = "Invalid fields", body = ErrorBody),
    (status = 429, description = "Too many registrations from this address; see `Retry-After`", body = ErrorBody)))]
async fn register(
    State(ctx): State<ApiContext>,
    ClientAddress(address): ClientAddress,
    ApiJson(req): ApiJson<RegisterRequest>,
) -> Result<(StatusCode, Json<Success<Registered>>)> {
    let mut problems = Problems::default();
    let name = problems.check("name", validate_name(&req.name));
    let email = problems.check("email", normalize_email(&req.email));
    problems.check("password", validate_password(&req.password));
    problems.into_result()?;
    let (name, email) = (name.unwrap_or_default(), email.unwrap_or_default());

    let mut redis = ctx.redis.clone();
    let wait = throttle::reserve_registration(
        &mut redis,
        &ctx.config.redis.key_prefix,
        &ctx.config.auth,
        address,
    )
    .await;
    throttle::enforce(
        wait,
        "registration",
        "registration",
        "too many accounts registered from this address; try again later",
    )?;

    let password_hash = ctx.passwords.hash(req.password).await?;
    let role = if ctx.config.auth.admin_emails.contains(&email) {
        "admin"
    } else {
        "user"
    };
    let user = sqlx::query_as!(
        UserBody,
        r#"
        INSERT INTO users (id, name, email, password_hash, role)
        VALUES ($1, $2, $3, $4, $5)
        RETURNING id, name, email, role, created_at
        "#,
        Uuid::new_v4(),
        name,
        email,
        password_hash,
        role,
    )
    .fetch_one(&ctx.db)
    .await
    .on_constraint("users_email_key", || Error::Conflict {
        code: "email_taken",
        message: "an account with this email already exists".into(),
    })?;
    tracing::info!(user_id = %user.id, "user registered");
    Ok((
        StatusCode::CREATED,
        Json(Success::new(Registered {
            message: "User registered successfully",
            user,
        })),
    ))
}

#[derive(Deserialize, utoipa::ToSchema)]
struct LoginRequest {
    #[serde(default)]
    email: String,
    #[serde(default)]
    password: String,
}

/// A signed-in login's tokens: a short-lived access token for requests, and
/// the refresh token that (once) exchanges for a new pair.
#[derive(Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
struct TokenPair {
    access_token: String,
    refresh_token: String,
}

/// Signs in: `{success, accessToken, refreshToken}`, exactly these keys.
#[utoipa::path(post, path = "/login", tag = "auth", request_body = LoginRequest, responses(
    (status = 200, description = "`{success, accessToken, refreshToken}`", body = Success<TokenPair>),
    (status = 401, description = "`invalid_credentials`", body = ErrorBody),
    (status = 413, description = "Body over `AUTH_BODY_LIMIT_BYTES`", body = ErrorBody),
    (status = 422, description = "Missing or oversize fields", body = ErrorBody),
    (status = 429, description = "Throttled; see `Retry-After`", body = ErrorBody)))]
async fn login(
    State(ctx): State<ApiContext>,
    ClientAddress(address): ClientAddress,
    ApiJson(req): ApiJson<LoginRequest>,
) -> Result<Json<Success<TokenPair>>> {
    let mut problems = Problems::default();
    // Bounded before it is copied, hashed or looked up.
    let email = if req.email.trim().len() > EMAIL_MAX_BYTES {
        problems.add("email", format!("must be at most {EMAIL_MAX_BYTES} bytes"));
        String::new()
    } else {
        req.email.trim().to_lowercase()
    };
    if email.is_empty() && req.email.trim().is_empty() {
        problems.add("email", "is required");
    }
    if req.password.is_empty() {
        problems.add("password", "is required");
    } else if req.password.chars().count() > PASSWORD_MAX_CHARS {
        problems.add(
            "password",
            format!("must be at most {PASSWORD_MAX_CHARS} characters"),
        );
    }
    problems.into_result()?;

    let mut redis = ctx.redis.clone();
    let wait = ctx.throttle.reserve(&mut redis, &email, address).await;
    throttle::enforce(
        wait,
        "login",
        "sign-in",
        "too many failed sign-in attempts; try again later",
    )?;

    let user = sqlx::query!(
        "SELECT id, email, password_hash FROM users WHERE email = $1",
        email
    )
    .fetch_optional(&ctx.db)
    .await?;
    let (stored_hash, user) = match user {
        Some(u) => (Some(u.password_hash), Some((u.id, u.email))),
        None => (None, None),
    };
    let matches = ctx.passwords.verify(req.password, stored_hash).await?;
    let Some((user_id, email)) = user.filter(|_| matches) else {
        return Err(Error::Unauthorized {
            code: "invalid_credentials",
            message: "invalid email or password",
        });
    };
    if let Err(e) = ctx.throttle.release(&mut redis, &email, address).await {
        tracing::warn!(error = %e, "could not release a successful login attempt");
    }

    let mut tx = ctx.db.begin().await?;
    let login_id = Uuid::new_v4();
    sqlx::query!(
        "INSERT INTO logins (id, user_id) VALUES ($1, $2)",
        login_id,
        user_id
    )
    .execute(&mut *tx)
    .await?;
    let pair = issue_pair(&ctx, &mut tx, user_id, &email, login_id).await?;
    tx.commit().await?;
    tracing::info!(%user_id, login = %log_id(login_id), "user signed in");
    Ok(Json(Success::new(pair)))
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
struct RefreshRequest {
    #[serde(default)]
    refresh_token: String,
}

/// Exchanges a refresh token for a new pair; reuse revokes the login.
#[utoipa::path(post, path = "/refresh", tag = "auth", request_body = RefreshRequest, responses(
    (status = 200, description = "`{success, accessToken, refreshToken}`", body = Success<TokenPair>),
    (status = 401, description = "`invalid_token`, `token_expired`, `token_revoked`, `refresh_token_reused`", body = ErrorBody)))]
async fn refresh(
    State(ctx): State<ApiContext>,
    ApiJson(req): ApiJson<RefreshRequest>,
) -> Result<Json<Success<TokenPair>>> {
    if req.refresh_token.is_empty() {
        return Err(Error::invalid_field("refreshToken", "is required"));
    }
    let claims = ctx.tokens.verify(&req.refresh_token, TokenType::Refresh)?;

    let mut tx = ctx.db.begin().await?;
    // FOR UPDATE: two concurrent exchanges of one token serialise here, and
    // the second sees `used_at` set — that is reuse.
    let stored = sqlx::query!(
        r#"
        SELECT rt.login_id, rt.used_at, l.revoked_at, u.id AS user_id, u.email
        FROM refresh_tokens rt
        JOIN logins l ON l.id = rt.login_id
        JOIN users u ON u.id = l.user_id
        WHERE rt.token_hash = $1
        FOR UPDATE OF rt, l
        "#,
        hash_token(&req.refresh_token),
    )
    .fetch_optional(&mut *tx)
    .await?
    .ok_or_else(tokens::invalid_token)?;

    if stored.revoked_at.is_some() {
        return Err(Error::Unauthorized {
            code: "token_revoked",
            message: "this login has ended; sign in again",
        });
    }
    if stored.used_at.is_some() {
        sqlx::query!(
            r#"UPDATE logins SET revoked_at = now(), revoked_reason = 'refresh_token_reused'
               WHERE id = $1"#,
            stored.login_id
        )
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        revoke(
            &ctx,
            Revocation::Login {
                login: stored.login_id,
            },
        )
        .await;
        tracing::warn!(login = %log_id(stored.login_id), user_id = %stored.user_id,
            "refresh token reused: login revoked");
        return Err(Error::Unauthorized {
            code: "refresh_token_reused",
            message: "this refresh token was already used; every token of this login is revoked",
        });
    }
    debug_assert_eq!(stored.login_id, claims.sid);
    sqlx::query!(
        "UPDATE refresh_tokens SET used_at = now() WHERE token_hash = $1",
        hash_token(&req.refresh_token)
    )
    .execute(&mut *tx)
    .await?;
    let pair = issue_pair(
        &ctx,
        &mut tx,
        stored.user_id,
        &stored.email,
        stored.login_id,
    )
    .await?;
    tx.commit().await?;
    Ok(Json(Success::new(pair)))
}

/// Ends the login the refresh token belongs to.
#[utoipa::path(post, path = "/logout", tag = "auth", request_body = RefreshRequest, responses(
    (status = 204, description = "Signed out"),
    (status = 401, description = "Not a refresh token this API issued", body = ErrorBody)))]
async fn logout(
    State(ctx): State<ApiContext>,
    ApiJson(req): ApiJson<RefreshRequest>,
) -> Result<StatusCode> {
    if req.refresh_token.is_empty() {
        return Err(Error::invalid_field("refreshToken", "is required"));
    }
    // An expired refresh token still names its login: ending it is harmless.
    let claims = ctx
        .tokens
        .verify_ignoring_expiry(&req.refresh_token, TokenType::Refresh)?;
    let revoked = sqlx::query!(
        r#"
        UPDATE logins SET revoked_at = now(), revoked_reason = 'logout'
        WHERE id = (SELECT login_id FROM refresh_tokens WHERE token_hash = $1)
          AND revoked_at IS NULL
        "#,
        hash_token(&req.refresh_token)
    )
    .execute(&ctx.db)
    .await?
    .rows_affected();
    if revoked > 0 {
        revoke(&ctx, Revocation::Login { login: claims.sid }).await;
    }
    Ok(StatusCode::NO_CONTENT)
}

/// Ends every login of the caller.
#[utoipa::path(post, path = "/logout-all", tag = "auth", security(("bearer" = [])), responses(
    (status = 204, description = "Signed out everywhere")))]
async fn logout_all(
    State(ctx): State<ApiContext>,
    LoginUser(user): LoginUser,
) -> Result<StatusCode> {
    let revoked = sqlx::query!(
        r#"UPDATE logins SET revoked_at = now(), revoked_reason = 'logout_all'
           WHERE user_id = $1 AND revoked_at IS NULL"#,
        user.id
    )
    .execute(&ctx.db)
    .await?
    .rows_affected();
    revoke(
        &ctx,
        Revocation::User {
            user: user.id,
            except: None,
        },
    )
    .await;
    tracing::info!(user_id = %user.id, revoked, "signed out everywhere");
    Ok(StatusCode::NO_CONTENT)
}

/// Signs an access + refresh pair for `login_id` and stores the refresh
/// token's hash, inside the caller's transaction.
async fn issue_pair(
    ctx: &ApiContext,
    tx: &mut sqlx::PgConnection,
    user_id: Uuid,
    email: &str,
    login_id: Uuid,
) -> Result<TokenPair> {
    let access = ctx
        .tokens
        .issue(TokenType::Access, user_id, email, login_id)?;
    let Issued {
        token: refresh,
        jti,
        expires_at,
    } = ctx
        .tokens
        .issue(TokenType::Refresh, user_id, email, login_id)?;
    sqlx::query!(
        r#"INSERT INTO refresh_tokens (id, login_id, token_hash, expires_at)
           VALUES ($1, $2, $3, $4)"#,
        jti,
        login_id,
        hash_token(&refresh),
        DateTime::<Utc>::from(expires_at),
    )
    .execute(&mut *tx)
    .await?;
    Ok(TokenPair {
        access_token: access.token,
        refresh_token: refresh,
    })
}

/// How a login id (a token's `sid`) appears in logs: its first 8 hex
/// digits, enough to correlate lines, not the whole id a token carries.
pub fn log_id(login_id: Uuid) -> String {
    login_id.simple().to_string()[..8].to_owned()
}

/// The client's IP address: the socket peer, or with `TRUST_FORWARDED_FOR`
/// the last `X-Forwarded-For` entry across every such header line (the one
/// the trusted proxy appended, whether to the client's line or as a line of
/// its own; everything before it is client-controlled).
pub struct ClientAddress(pub IpAddr);

impl FromRequestParts<ApiContext> for ClientAddress {
    type Rejection = Error;

    async fn from_request_parts(parts: &mut Parts, ctx: &ApiContext) -> Result<Self> {
        if ctx.config.auth.trust_forwarded_for
            && let Some(ip) = parts
                .headers
                .get_all("x-forwarded-for")
                .iter()
                .next_back()
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.rsplit(',').next())
                .and_then(|v| v.trim().parse().ok())
        {
            return Ok(ClientAddress(ip));
        }
        parts
            .extensions
            .get::<ConnectInfo<SocketAddr>>()
            .map(|ConnectInfo(addr)| ClientAddress(addr.ip()))
            .ok_or_else(|| Error::Internal(anyhow::anyhow!("no connect info on the request")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn logged_login_ids_are_shortened() {
        let id = Uuid::new_v4();
        let logged = log_id(id);
        assert_eq!(logged.len(), 8);
        assert!(id.simple().to_string().starts_with(&logged));
    }
}
