//! The caller's own account, finding other users, and a protected test
//! route for checking a token.
//!
//! - `GET /api/test/protected`: `{"success": true, "message", "user": {"userId", "email"}}`.
//! - `GET /api/users/me`, `PATCH /api/users/me {name}`.
//! - `GET /api/users/search?q=` — exact email or name prefix; never the caller.
//! - `POST /api/users/me/password {currentPassword, newPassword}` → 204; every
//!   other login of the user is revoked, the current one stays.

use axum::{Json, extract::State, http::StatusCode};
use serde::{Deserialize, Serialize};
use utoipa_axum::{router::OpenApiRouter, routes};
use uuid::Uuid;

use crate::{
    auth::{AuthUser, LoginUser, UserBody},
    envelope::Success,
    error::{ApiJson, ApiQuery, Error, ErrorBody, Result},
    pagination::{self, Page, PageParams},
    realtime::lifetime::{Revocation, revoke},
    startup::ApiContext,
    validation::{Problems, validate_name, validate_password},
};

/// Longest accepted search query, in characters.
pub const SEARCH_MAX_CHARS: usize = 100;

pub fn router() -> OpenApiRouter<ApiContext> {
    OpenApiRouter::new()
        .routes(routes!(protected))
        .routes(routes!(me, update_me))
        .routes(routes!(change_password))
        .routes(routes!(search))
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
    (status = 200, description = "`{success, message, user: {userId, email}}`", body = Success<Protected>)))]
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
    (status = 200, description = "`{success, user}`", body = Success<UserAnswer>)))]
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

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
struct SearchParams {
    /// An exact email or a name prefix.
    #[serde(default)]
    #[param(required = true)]
    q: String,
    /// Documented as [`PageParams`] itself.
    #[serde(flatten)]
    #[param(ignore)]
    page: PageParams,
}

#[derive(Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
struct SearchHit {
    id: Uuid,
    name: String,
    /// Only when the search matched it exactly or the user is a friend.
    #[serde(skip_serializing_if = "Option::is_none")]
    email: Option<String>,
    is_friend: bool,
}

/// A page of user search hits.
#[derive(Serialize, utoipa::ToSchema)]
struct SearchHitList {
    users: Vec<SearchHit>,
}

/// Users by exact email or name prefix (never the caller).
#[utoipa::path(get, path = "/api/users/search", tag = "friends", security(("bearer" = [])),
    params(SearchParams, PageParams),
    responses((status = 200, description = "`{success, users: [{id, name, email?, isFriend}], nextCursor}`", body = Success<Page<SearchHitList>>),
    (status = 422, description = "Bad query", body = ErrorBody)))]
async fn search(
    State(ctx): State<ApiContext>,
    user: AuthUser,
    ApiQuery(params): ApiQuery<SearchParams>,
) -> Result<Json<Success<Page<SearchHitList>>>> {
    let q = params.q.trim();
    if q.is_empty() || q.chars().count() > SEARCH_MAX_CHARS {
        return Err(Error::invalid_field(
            "q",
            format!("must be 1–{SEARCH_MAX_CHARS} characters"),
        ));
    }
    let limit = params.page.limit()?;
    let (after_name, after_id) = match params.page.cursor()? {
        Some((name, id)) => (Some(name), Some(id)),
        None => (None, None),
    };
    let email = q.to_lowercase();
    // LIKE metacharacters in the query are matched literally.
    let prefix = format!(
        "{}%",
        q.to_lowercase()
            .replace('\\', "\\\\")
            .replace('%', "\\%")
            .replace('_', "\\_")
    );
    let rows = sqlx::query!(
        r#"
        SELECT u.id, u.name, u.email,
               EXISTS (SELECT 1 FROM friendships f
                       WHERE (f.user_a, f.user_b) = (LEAST(u.id, $1), GREATEST(u.id, $1))) AS "is_friend!"
        FROM users u
        WHERE u.id <> $1
          AND (u.email = $2 OR lower(u.name) LIKE $3)
          AND ($4::text IS NULL OR (u.name, u.id) > ($4, $5))
        ORDER BY u.name, u.id
        LIMIT $6
        "#,
        user.id,
        email,
        prefix,
        after_name,
        after_id,
        limit + 1,
    )
    .fetch_all(&ctx.db)
    .await?;
    let hits: Vec<SearchHit> = rows
        .into_iter()
        .map(|r| SearchHit {
            email: (r.is_friend || r.email == email).then_some(r.email),
            id: r.id,
            name: r.name,
            is_friend: r.is_friend,
        })
        .collect();
    let (users, next) = pagination::finish(hits, limit, |h| (h.name.clone(), h.id));
    Ok(Json(Success::new(Page::new(SearchHitList { users }, next))))
}
