//! Session invites.
//!
//! - `POST /api/sessions/{id}/invites {userId}` — host only, friends only → 201.
//! - `DELETE /api/sessions/{id}/invites/{inviteId}` — host revokes a pending invite.
//! - `GET /api/invites` — the caller's pending invites.
//! - `POST /api/invites/{id}/accept` → the caller joins as `candidate`;
//!   `POST /api/invites/{id}/decline` → 204.
//!
//! Accepting locks the session row, so concurrent accepts for the last seat
//! serialise: exactly one gets in, the others get 409 `session_full`.

use axum::{Json, extract::State, http::StatusCode};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use sqlx::PgConnection;
use utoipa_axum::{router::OpenApiRouter, routes};
use uuid::Uuid;

use super::{SessionAnswer, Status, is_member, load_session, membership, touch};
use crate::{
    auth::AuthUser,
    envelope::Success,
    error::{ApiJson, ApiPath, ApiQuery, Error, ErrorBody, Result, ResultExt},
    friends::are_friends,
    pagination::{self, Page, PageParams, time_key},
    startup::ApiContext,
};

pub fn router() -> OpenApiRouter<ApiContext> {
    OpenApiRouter::new()
        .routes(routes!(invite))
        .routes(routes!(revoke))
        .routes(routes!(my_invites))
        .routes(routes!(accept))
        .routes(routes!(decline))
}

/// Inserts a pending invite; 409 when one is already pending.
pub async fn insert_invite(
    tx: &mut PgConnection,
    session_id: Uuid,
    invitee_id: Uuid,
    inviter_id: Uuid,
) -> Result<(Uuid, DateTime<Utc>)> {
    let row = sqlx::query!(
        r#"INSERT INTO session_invites (id, session_id, invitee_id, inviter_id)
           VALUES ($1, $2, $3, $4) RETURNING id, created_at"#,
        Uuid::new_v4(),
        session_id,
        invitee_id,
        inviter_id
    )
    .fetch_one(&mut *tx)
    .await
    .on_constraint("session_invites_pending_key", || Error::Conflict {
        code: "already_invited",
        message: "this user already has a pending invite to the session".into(),
    })?;
    Ok((row.id, row.created_at))
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
struct NewInvite {
    user_id: Uuid,
}

#[derive(Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
struct InviteBody {
    id: Uuid,
    session_id: Uuid,
    session_title: String,
    session_status: String,
    inviter_id: Uuid,
    inviter_name: String,
    invitee_id: Uuid,
    status: String,
    created_at: DateTime<Utc>,
}

/// 201's body beside `success`.
#[derive(Serialize, utoipa::ToSchema)]
struct InviteAnswer {
    invite: InviteBody,
}

/// Invites a friend (host).
#[utoipa::path(post, path = "/api/sessions/{id}/invites", tag = "invites", security(("bearer" = [])), params(("id" = Uuid, Path, description = "The session")), request_body = NewInvite, responses(
    (status = 201, description = "`{success, invite}`", body = Success<InviteAnswer>),
    (status = 403, description = "Not the host, or not a friend", body = ErrorBody),
    (status = 404, description = "No such session, or not a member", body = ErrorBody),
    (status = 409, description = "`already_invited`, `already_member` or `session_ended`", body = ErrorBody)))]
async fn invite(
    State(ctx): State<ApiContext>,
    user: AuthUser,
    ApiPath(id): ApiPath<Uuid>,
    ApiJson(req): ApiJson<NewInvite>,
) -> Result<(StatusCode, Json<Success<InviteAnswer>>)> {
    let mut tx = ctx.db.begin().await?;
    membership(&mut tx, id, user.id, true)
        .await?
        .require_host()?
        .require_open()?;
    if is_member(&mut tx, id, req.user_id).await? {
        return Err(Error::Conflict {
            code: "already_member",
            message: "this user is already a member of the session".into(),
        });
    }
    if !are_friends(&mut tx, user.id, req.user_id).await? {
        return Err(Error::Forbidden("you can only invite your friends"));
    }
    let (invite_id, _) = insert_invite(&mut tx, id, req.user_id, user.id).await?;
    touch(&mut tx, id).await?;
    let body = load_invite(&mut tx, invite_id).await?;
    tx.commit().await?;
    Ok((
        StatusCode::CREATED,
        Json(Success::new(InviteAnswer { invite: body })),
    ))
}

async fn load_invite(db: &mut PgConnection, id: Uuid) -> Result<InviteBody> {
    Ok(sqlx::query_as!(
        InviteBody,
        r#"SELECT i.id, i.session_id, s.title AS session_title, s.status AS session_status,
                  i.inviter_id, u.name AS inviter_name, i.invitee_id, i.status, i.created_at
           FROM session_invites i
           JOIN interview_sessions s ON s.id = i.session_id
           JOIN users u ON u.id = i.inviter_id
           WHERE i.id = $1"#,
        id
    )
    .fetch_one(db)
    .await?)
}

/// Withdraws a pending invite (host).
#[utoipa::path(delete, path = "/api/sessions/{id}/invites/{invite_id}", tag = "invites", security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "The session"), ("invite_id" = Uuid, Path, description = "The invite")), responses(
    (status = 204, description = "Withdrawn"),
    (status = 403, description = "Not the host", body = ErrorBody), (status = 404, description = "No such pending invite", body = ErrorBody)))]
async fn revoke(
    State(ctx): State<ApiContext>,
    user: AuthUser,
    ApiPath((id, invite_id)): ApiPath<(Uuid, Uuid)>,
) -> Result<StatusCode> {
    let mut tx = ctx.db.begin().await?;
    membership(&mut tx, id, user.id, true)
        .await?
        .require_host()?;
    let revoked = sqlx::query!(
        r#"UPDATE session_invites SET status = 'revoked', responded_at = now()
           WHERE id = $1 AND session_id = $2 AND status = 'pending'"#,
        invite_id,
        id
    )
    .execute(&mut *tx)
    .await?
    .rows_affected();
    if revoked == 0 {
        return Err(Error::NotFound("no such pending invite"));
    }
    tx.commit().await?;
    Ok(StatusCode::NO_CONTENT)
}

/// A page of the caller's pending invites.
#[derive(Serialize, utoipa::ToSchema)]
struct InviteList {
    invites: Vec<InviteBody>,
}

/// The caller's pending invites.
#[utoipa::path(get, path = "/api/invites", tag = "invites", security(("bearer" = [])), params(PageParams),
    responses((status = 200, description = "`{success, invites: [InviteBody], nextCursor}`", body = Success<Page<InviteList>>),
    (status = 422, description = "Bad query", body = ErrorBody)))]
async fn my_invites(
    State(ctx): State<ApiContext>,
    user: AuthUser,
    ApiQuery(page): ApiQuery<PageParams>,
) -> Result<Json<Success<Page<InviteList>>>> {
    let limit = page.limit()?;
    let (after_at, after_id) = page.time_cursor()?;
    let rows = sqlx::query_as!(
        InviteBody,
        r#"SELECT i.id, i.session_id, s.title AS session_title, s.status AS session_status,
                  i.inviter_id, u.name AS inviter_name, i.invitee_id, i.status, i.created_at
           FROM session_invites i
           JOIN interview_sessions s ON s.id = i.session_id
           JOIN users u ON u.id = i.inviter_id
           WHERE i.invitee_id = $1 AND i.status = 'pending'
             AND ($2::timestamptz IS NULL OR (i.created_at, i.id) < ($2, $3))
           ORDER BY i.created_at DESC, i.id DESC
           LIMIT $4"#,
        user.id,
        after_at,
        after_id,
        limit + 1
    )
    .fetch_all(&ctx.db)
    .await?;
    let (invites, next) = pagination::finish(rows, limit, |i| (time_key(i.created_at), i.id));
    Ok(Json(Success::new(Page::new(InviteList { invites }, next))))
}

/// Locks the caller's invite and checks it can still be answered.
async fn pending_invite(tx: &mut PgConnection, id: Uuid, user_id: Uuid) -> Result<Uuid> {
    let invite = sqlx::query!(
        "SELECT session_id, status FROM session_invites WHERE id = $1 AND invitee_id = $2 FOR UPDATE",
        id,
        user_id
    )
    .fetch_optional(&mut *tx)
    .await?
    .ok_or(Error::NotFound("no such invite"))?;
    match invite.status.as_str() {
        "pending" => Ok(invite.session_id),
        "revoked" => Err(Error::Conflict {
            code: "invite_revoked",
            message: "the host withdrew this invite".into(),
        }),
        _ => Err(Error::Conflict {
            code: "invite_answered",
            message: "this invite was already answered".into(),
        }),
    }
}

/// Accepts an invite: the caller joins as candidate.
#[utoipa::path(post, path = "/api/invites/{id}/accept", tag = "invites", security(("bearer" = [])), params(("id" = Uuid, Path, description = "The invite")), responses(
    (status = 200, description = "`{success, session}`", body = Success<SessionAnswer>),
    (status = 404, description = "No such invite for you", body = ErrorBody),
    (status = 409, description = "`session_full`, `invite_revoked`, `invite_answered` or `session_ended`", body = ErrorBody)))]
async fn accept(
    State(ctx): State<ApiContext>,
    user: AuthUser,
    ApiPath(id): ApiPath<Uuid>,
) -> Result<Json<Success<SessionAnswer>>> {
    let mut tx = ctx.db.begin().await?;
    let session_id = pending_invite(&mut tx, id, user.id).await?;
    // Lock the session: concurrent accepts for the last seat queue here.
    let status = sqlx::query_scalar!(
        "SELECT status FROM interview_sessions WHERE id = $1 FOR UPDATE",
        session_id
    )
    .fetch_one(&mut *tx)
    .await?;
    if Status::parse(&status) == Status::Ended {
        return Err(Error::Conflict {
            code: "session_ended",
            message: "the session has ended".into(),
        });
    }
    let members = sqlx::query_scalar!(
        r#"SELECT count(*) AS "n!" FROM session_members WHERE session_id = $1"#,
        session_id
    )
    .fetch_one(&mut *tx)
    .await?;
    if members >= ctx.config.sessions.member_cap {
        return Err(Error::Conflict {
            code: "session_full",
            message: format!(
                "the session already has {} members, its limit",
                ctx.config.sessions.member_cap
            ),
        });
    }
    sqlx::query!(
        r#"INSERT INTO session_members (session_id, user_id, role) VALUES ($1, $2, 'candidate')
           ON CONFLICT (session_id, user_id) DO NOTHING"#,
        session_id,
        user.id
    )
    .execute(&mut *tx)
    .await?;
    sqlx::query!(
        "UPDATE session_invites SET status = 'accepted', responded_at = now() WHERE id = $1",
        id
    )
    .execute(&mut *tx)
    .await?;
    touch(&mut tx, session_id).await?;
    let session = load_session(&mut tx, session_id).await?;
    tx.commit().await?;
    super::events::session_updated(&ctx, session_id).await;
    Ok(SessionAnswer::json(session))
}

/// Declines an invite.
#[utoipa::path(post, path = "/api/invites/{id}/decline", tag = "invites", security(("bearer" = [])), params(("id" = Uuid, Path, description = "The invite")), responses(
    (status = 204, description = "Declined"),
    (status = 404, description = "No such invite for you", body = ErrorBody),
    (status = 409, description = "`invite_revoked` or `invite_answered`", body = ErrorBody)))]
async fn decline(
    State(ctx): State<ApiContext>,
    user: AuthUser,
    ApiPath(id): ApiPath<Uuid>,
) -> Result<StatusCode> {
    let mut tx = ctx.db.begin().await?;
    pending_invite(&mut tx, id, user.id).await?;
    sqlx::query!(
        "UPDATE session_invites SET status = 'declined', responded_at = now() WHERE id = $1",
        id
    )
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(StatusCode::NO_CONTENT)
}
