//! The caller's own account, and a protected test route for checking a token.
//!
//! - `GET /api/test/protected`: `{"success": true, "message", "user": {"userId", "email"}}`.
//! - `GET /api/users/me`, `PATCH /api/users/me {name}`.
//! - `POST /api/users/me/password {currentPassword, newPassword}` → 204; every
//!   other login of the user is revoked, the current one stays.

use axum::{Json, extract::State, http::StatusCode};
use serde::{Deserialize, Serialize};
use utoipa_axum::{router::OpenApiRouter, routes};
use uuid::Uuid;

use crate::{
    auth::{AuthUser, LoginUser, Problems, UserBody, validate_name, validate_password},
    envelope::Success,
    error::{ApiJson, Error, ErrorBody, Result},
    rooms::lifetime::{Revocation, revoke},
    startup::ApiContext,
};

pub fn router() -> OpenApiRouter<ApiContext> {
    OpenApiRouter::new()
        .routes(routes!(protected))
        .routes(routes!(me, update_me))
        .routes(routes!(change_password))
}

#[derive(Serialize, utoipa::ToSchema)]
struct Protected {
    /// `Protected route accessed`.
    message: &'static str,
    user: TokenOwner,
}

/// Whom the presented token names.
#[derive(Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
struct TokenOwner {
    user_id: Uuid,
    email: String,
}

/// Checks an access token: 200 with the caller's id and email, else 401.
#[utoipa::path(get, path = "/api/test/protected", tag = "users", security(("bearer" = [])), responses(
    (status = 200, description = "`{success, message, user: {userId, email}}`", body = Success<Protected>),
    (status = 401, description = "Not authenticated", body = ErrorBody)))]
async fn protected(user: AuthUser) -> Json<Success<Protected>> {
    Json(Success::new(Protected {
        message: "Protected route accessed",
        user: TokenOwner {
            user_id: user.id,
            email: user.email,
        },
    }))
}

/// The caller's account, beside `success`.
#[derive(Serialize, utoipa::ToSchema)]
struct UserAnswer {
    user: UserBody,
}

/// The caller's account.
#[utoipa::path(get, path = "/api/users/me", tag = "users", security(("bearer" = [])), responses(
    (status = 200, description = "`{success, user}`", body = Success<UserAnswer>),
    (status = 401, description = "Not authenticated", body = ErrorBody)))]
async fn me(State(ctx): State<ApiContext>, user: AuthUser) -> Result<Json<Success<UserAnswer>>> {
    let user = sqlx::query_as!(
        UserBody,
        "SELECT id, name, email, role, created_at FROM users WHERE id = $1",
        user.id
    )
    .fetch_one(&ctx.db)
    .await?;
    Ok(Json(Success::new(UserAnswer { user })))
}

#[derive(Deserialize, utoipa::ToSchema)]
struct UpdateMe {
    name: Option<String>,
}

/// Renames the caller.
#[utoipa::path(patch, path = "/api/users/me", tag = "users", security(("bearer" = [])), request_body = UpdateMe, responses(
    (status = 200, description = "`{success, user}`", body = Success<UserAnswer>),
    (status = 401, description = "Not authenticated", body = ErrorBody),
    (status = 422, description = "Invalid name", body = ErrorBody)))]
async fn update_me(
    State(ctx): State<ApiContext>,
    user: AuthUser,
    ApiJson(req): ApiJson<UpdateMe>,
) -> Result<Json<Success<UserAnswer>>> {
    let name = match req.name {
        Some(raw) => validate_name(&raw).map_err(|p| Error::invalid_field("name", p))?,
        None => return Err(Error::invalid_field("name", "is required")),
    };
    let user = sqlx::query_as!(
        UserBody,
        "UPDATE users SET name = $2 WHERE id = $1 RETURNING id, name, email, role, created_at",
        user.id,
        name
    )
    .fetch_one(&ctx.db)
    .await?;
    Ok(Json(Success::new(UserAnswer { user })))
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
struct ChangePassword {
    #[serde(default)]
    current_password: String,
    #[serde(default)]
    new_password: String,
}

/// Changes the password and revokes every other login.
#[utoipa::path(post, path = "/api/users/me/password", tag = "users", security(("bearer" = [])), request_body = ChangePassword, responses(
    (status = 204, description = "Changed; other logins revoked"),
    (status = 401, description = "Not authenticated", body = ErrorBody),
    (status = 422, description = "Wrong current password or invalid new one", body = ErrorBody)))]
async fn change_password(
    State(ctx): State<ApiContext>,
    LoginUser(user): LoginUser,
    ApiJson(req): ApiJson<ChangePassword>,
) -> Result<StatusCode> {
    let mut problems = Problems::default();
    if req.current_password.is_empty() || req.current_password.chars().count() > 128 {
        problems.add("currentPassword", "is incorrect");
    }
    problems.check("newPassword", validate_password(&req.new_password));
    problems.into_result()?;

    let stored = sqlx::query_scalar!("SELECT password_hash FROM users WHERE id = $1", user.id)
        .fetch_one(&ctx.db)
        .await?;
    if !ctx
        .passwords
        .verify(req.current_password, Some(stored))
        .await?
    {
        return Err(Error::invalid_field("currentPassword", "is incorrect"));
    }
    let new_hash = ctx.passwords.hash(req.new_password).await?;

    let mut tx = ctx.db.begin().await?;
    sqlx::query!(
        "UPDATE users SET password_hash = $2 WHERE id = $1",
        user.id,
        new_hash
    )
    .execute(&mut *tx)
    .await?;
    let revoked = sqlx::query!(
        r#"UPDATE logins SET revoked_at = now(), revoked_reason = 'password_changed'
           WHERE user_id = $1 AND id <> $2 AND revoked_at IS NULL"#,
        user.id,
        user.login_id
    )
    .execute(&mut *tx)
    .await?
    .rows_affected();
    tx.commit().await?;
    revoke(
        &ctx,
        Revocation::User {
            user: user.id,
            except: Some(user.login_id),
        },
    )
    .await;
    tracing::info!(user_id = %user.id, revoked, "password changed; other logins revoked");
    Ok(StatusCode::NO_CONTENT)
}
