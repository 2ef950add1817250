//! Personal API tokens: credentials for programs rather than browsers.
//!
//! - `POST /api/tokens {name, expiresInDays?}` → 201 with the token, shown
//!   this once (`ccpat_` + 48 hex digits: 192 random bits).
//! - `GET /api/tokens` — the caller's tokens (name, prefix, created, last
//!   used, expiry), never the secrets.
//! - `DELETE /api/tokens/{id}` — revokes a token; the next request with it
//!   is a 401.
//!
//! Only a token's SHA-256 is stored. A token authenticates like an access
//! token (`Authorization: Bearer`) on the REST API, as `X-Auth-Token` on the
//! Judge0 door and inside the Piston door's base URL; quotas count per user
//! whatever the door. It is refused (403 `forbidden`) on the routes that
//! change credentials — password, logout-all and these token routes — so a
//! leaked token cannot lock its owner out or mint more tokens. It cannot open
//! sockets either (those take access tokens only).

use axum::{Json, extract::State, http::StatusCode};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa_axum::{router::OpenApiRouter, routes};
use uuid::Uuid;

use crate::{
    auth::{AuthUser, LoginUser, tokens::hash_token},
    envelope::Success,
    error::{ApiJson, ApiPath, Error, ErrorBody, Result},
    startup::ApiContext,
    validation::Problems,
};

/// What every API token starts with (and how the extractor tells them from JWTs).
pub const TOKEN_PREFIX: &str = "ccpat_";
/// Characters of a token shown in listings.
const SHOWN_PREFIX_CHARS: usize = 12;
/// Longest token name.
const MAX_NAME_CHARS: usize = 100;
/// Longest lifetime a token may be given.
const MAX_EXPIRES_IN_DAYS: u32 = 3650;

pub fn router() -> OpenApiRouter<ApiContext> {
    OpenApiRouter::new()
        .routes(routes!(create, list))
        .routes(routes!(revoke))
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
struct CreateToken {
    name: String,
    /// Days until it expires (1–3650); absent: never.
    expires_in_days: Option<u32>,
}

/// A token as listed (without its secret).
#[derive(Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
struct TokenInfo {
    id: Uuid,
    name: String,
    prefix: String,
    created_at: DateTime<Utc>,
    expires_at: Option<DateTime<Utc>>,
    last_used_at: Option<DateTime<Utc>>,
}

/// A new token, beside `success`.
#[derive(Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
struct CreatedToken {
    /// The secret: shown this once.
    token: String,
    #[serde(flatten)]
    info: TokenInfo,
}

/// The caller's tokens, beside `success`.
#[derive(Serialize, utoipa::ToSchema)]
struct TokenList {
    tokens: Vec<TokenInfo>,
}

/// Creates a personal API token (the secret is in this answer only).
#[utoipa::path(post, path = "/api/tokens", tag = "tokens", security(("bearer" = [])), request_body = CreateToken, responses(
    (status = 201, description = "Created; `token` is shown only here", body = Success<CreatedToken>),
    (status = 403, description = "`forbidden`: an API token cannot create tokens", body = ErrorBody),
    (status = 422, description = "Invalid name or expiry, or over `API_TOKENS_MAX_PER_USER`", body = ErrorBody)))]
async fn create(
    State(ctx): State<ApiContext>,
    LoginUser(user): LoginUser,
    ApiJson(req): ApiJson<CreateToken>,
) -> Result<(StatusCode, Json<Success<CreatedToken>>)> {
    let mut problems = Problems::default();
    let name = req.name.trim().to_owned();
    if name.is_empty() || name.chars().count() > MAX_NAME_CHARS {
        problems.add("name", format!("1 to {MAX_NAME_CHARS} characters"));
    }
    if let Some(days) = req.expires_in_days
        && !(1..=MAX_EXPIRES_IN_DAYS).contains(&days)
    {
        problems.add(
            "expiresInDays",
            format!("between 1 and {MAX_EXPIRES_IN_DAYS}"),
        );
    }
    problems.into_result()?;

    let random: [u8; 24] = rand::random();
    let token = format!("{TOKEN_PREFIX}{}", hex(&random));
    let prefix: String = token.chars().take(SHOWN_PREFIX_CHARS).collect();
    let id = Uuid::new_v4();
    let mut tx = ctx.db.begin().await?;
    // One token creation at a time per user, so the cap holds.
    sqlx::query!("SELECT id FROM users WHERE id = $1 FOR UPDATE", user.id)
        .fetch_one(&mut *tx)
        .await?;
    let live = sqlx::query_scalar!(
        r#"SELECT count(*) AS "n!" FROM api_tokens
           WHERE user_id = $1 AND revoked_at IS NULL AND (expires_at IS NULL OR expires_at > now())"#,
        user.id
    )
    .fetch_one(&mut *tx)
    .await?;
    if live >= ctx.config.api_tokens.max_per_user {
        return Err(Error::invalid_field(
            "name",
            format!(
                "you have {live} tokens, the limit; revoke one first (API_TOKENS_MAX_PER_USER)"
            ),
        ));
    }
    let row = sqlx::query!(
        r#"INSERT INTO api_tokens (id, user_id, name, prefix, token_hash, expires_at)
           VALUES ($1, $2, $3, $4, $5, now() + make_interval(days => $6))
           RETURNING created_at, expires_at"#,
        id,
        user.id,
        name,
        prefix,
        hash_token(&token),
        req.expires_in_days
            .map(|d| i32::try_from(d).unwrap_or(i32::MAX)),
    )
    .fetch_one(&mut *tx)
    .await?;
    tx.commit().await?;
    tracing::info!(user_id = %user.id, token_id = %id, "API token created");
    Ok((
        StatusCode::CREATED,
        Json(Success::new(CreatedToken {
            token,
            info: TokenInfo {
                id,
                name,
                prefix,
                created_at: row.created_at,
                expires_at: row.expires_at,
                last_used_at: None,
            },
        })),
    ))
}

/// The caller's unrevoked tokens, newest first.
#[utoipa::path(get, path = "/api/tokens", tag = "tokens", security(("bearer" = [])), responses(
    (status = 200, description = "The tokens (no secrets)", body = Success<TokenList>),
    (status = 403, description = "`forbidden`", body = ErrorBody)))]
async fn list(
    State(ctx): State<ApiContext>,
    LoginUser(user): LoginUser,
) -> Result<Json<Success<TokenList>>> {
    let tokens = sqlx::query_as!(
        TokenInfo,
        r#"SELECT id, name, prefix, created_at, expires_at, last_used_at FROM api_tokens
           WHERE user_id = $1 AND revoked_at IS NULL
           ORDER BY created_at DESC, id DESC"#,
        user.id
    )
    .fetch_all(&ctx.db)
    .await?;
    Ok(Json(Success::new(TokenList { tokens })))
}

/// Revokes a token at once.
#[utoipa::path(delete, path = "/api/tokens/{id}", tag = "tokens", security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "The token's id")), responses(
    (status = 204, description = "Revoked"),
    (status = 403, description = "`forbidden`", body = ErrorBody),
    (status = 404, description = "No such token of yours", body = ErrorBody)))]
async fn revoke(
    State(ctx): State<ApiContext>,
    LoginUser(user): LoginUser,
    ApiPath(id): ApiPath<Uuid>,
) -> Result<StatusCode> {
    let revoked = sqlx::query!(
        "UPDATE api_tokens SET revoked_at = now() WHERE id = $1 AND user_id = $2 AND revoked_at IS NULL",
        id,
        user.id
    )
    .execute(&ctx.db)
    .await?
    .rows_affected();
    if revoked == 0 {
        return Err(Error::NotFound("no such token"));
    }
    tracing::info!(user_id = %user.id, token_id = %id, "API token revoked");
    Ok(StatusCode::NO_CONTENT)
}

/// The user an API token belongs to, if it is valid, unrevoked and
/// unexpired (401 otherwise). Records its use at most once a minute.
pub async fn authenticate(ctx: &ApiContext, token: &str) -> Result<AuthUser> {
    let row = sqlx::query!(
        r#"SELECT t.id AS token_id, t.last_used_at, u.id, u.email, u.name, u.role
           FROM api_tokens t JOIN users u ON u.id = t.user_id
           WHERE t.token_hash = $1 AND t.revoked_at IS NULL
             AND (t.expires_at IS NULL OR t.expires_at > now())"#,
        hash_token(token)
    )
    .fetch_optional(&ctx.db)
    .await?
    .ok_or(Error::Unauthorized {
        code: "invalid_token",
        message: "the API token is invalid, expired or revoked",
    })?;
    if row
        .last_used_at
        .is_none_or(|at| at < Utc::now() - chrono::Duration::minutes(1))
    {
        sqlx::query!(
            "UPDATE api_tokens SET last_used_at = now() WHERE id = $1",
            row.token_id
        )
        .execute(&ctx.db)
        .await?;
    }
    Ok(AuthUser {
        id: row.id,
        email: row.email,
        name: row.name,
        role: if row.role == "admin" {
            crate::auth::Role::Admin
        } else {
            crate::auth::Role::User
        },
        login_id: row.token_id,
        token_expires_at: u64::MAX,
        api_token: true,
    })
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
