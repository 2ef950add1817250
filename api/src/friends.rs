//! Friends.
//!
//! - `POST /api/friends/requests {userId | email}` → 201. If the other user had
//!   already asked the caller, the two become friends at once (status `accepted`).
//! - `GET /api/friends/requests?direction=incoming|outgoing`
//! - `POST /api/friends/requests/{id}/accept|decline` — the receiver only.
//! - `DELETE /api/friends/requests/{id}` — the sender only (cancel).
//! - `GET /api/friends`, `DELETE /api/friends/{userId}`.
//!
//! A request is visible only to its two users: anyone else gets 404, as for a
//! request that does not exist. Friendships are stored once per unordered
//! pair (smaller id first), see the migration.

use axum::{Json, extract::State, http::StatusCode};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use sqlx::{PgConnection, PgPool};
use utoipa_axum::{router::OpenApiRouter, routes};
use uuid::Uuid;

use crate::{
    auth::AuthUser,
    envelope::Success,
    error::{ApiJson, ApiPath, ApiQuery, Error, ErrorBody, Result, ResultExt},
    pagination::{self, Page, PageParams, time_key},
    startup::ApiContext,
    validation::normalize_email,
};

pub fn router() -> OpenApiRouter<ApiContext> {
    OpenApiRouter::new()
        .routes(routes!(list_friends))
        .routes(routes!(unfriend))
        .routes(routes!(send_request, list_requests))
        .routes(routes!(cancel_request))
        .routes(routes!(accept_request))
        .routes(routes!(decline_request))
}

/// A friendship's key: the two users, smaller id first (one row per pair).
fn pair(a: Uuid, b: Uuid) -> (Uuid, Uuid) {
    if a < b { (a, b) } else { (b, a) }
}

/// Whether `a` and `b` are friends.
pub async fn are_friends(db: &mut PgConnection, a: Uuid, b: Uuid) -> Result<bool> {
    let (low, high) = pair(a, b);
    Ok(sqlx::query_scalar!(
        r#"SELECT EXISTS (SELECT 1 FROM friendships WHERE user_a = $1 AND user_b = $2) AS "e!""#,
        low,
        high
    )
    .fetch_one(db)
    .await?)
}

#[derive(Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
struct UserSummary {
    id: Uuid,
    name: String,
}

#[derive(Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
struct FriendRequestBody {
    id: Uuid,
    sender: UserSummary,
    receiver: UserSummary,
    status: &'static str,
    created_at: DateTime<Utc>,
}

/// Exactly one of `userId` and `email`.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
struct NewRequest {
    user_id: Option<Uuid>,
    email: Option<String>,
}

/// 201's body beside `success`.
#[derive(Serialize, utoipa::ToSchema)]
struct FriendRequestAnswer {
    request: FriendRequestBody,
}

/// Sends a friend request; if the other user had asked already, you are friends.
#[utoipa::path(post, path = "/api/friends/requests", tag = "friends", security(("bearer" = [])), request_body = NewRequest, responses(
    (status = 201, description = "`{success, request}` (`status`: pending or accepted)", body = Success<FriendRequestAnswer>),
    (status = 404, description = "No such user", body = ErrorBody),
    (status = 409, description = "`request_exists` or `already_friends`", body = ErrorBody),
    (status = 422, description = "To yourself, or neither/both of userId and email", body = ErrorBody)))]
async fn send_request(
    State(ctx): State<ApiContext>,
    user: AuthUser,
    ApiJson(req): ApiJson<NewRequest>,
) -> Result<(StatusCode, Json<Success<FriendRequestAnswer>>)> {
    let mut tx = ctx.db.begin().await?;
    let target = match (req.user_id, req.email) {
        (Some(id), None) => sqlx::query!("SELECT id, name FROM users WHERE id = $1", id)
            .fetch_optional(&mut *tx)
            .await?
            .map(|r| (r.id, r.name)),
        (None, Some(email)) => {
            let email = normalize_email(&email).map_err(|p| Error::invalid_field("email", p))?;
            sqlx::query!("SELECT id, name FROM users WHERE email = $1", email)
                .fetch_optional(&mut *tx)
                .await?
                .map(|r| (r.id, r.name))
        }
        _ => {
            return Err(Error::invalid_field(
                "userId",
                "give exactly one of `userId` and `email`",
            ));
        }
    };
    let (target_id, target_name) = target.ok_or(Error::NotFound("no such user"))?;
    if target_id == user.id {
        return Err(Error::invalid_field(
            "userId",
            "you cannot send a friend request to yourself",
        ));
    }
    if are_friends(&mut tx, user.id, target_id).await? {
        return Err(Error::Conflict {
            code: "already_friends",
            message: "you are already friends".into(),
        });
    }
    // The other user already asked: become friends.
    let reverse = sqlx::query!(
        "DELETE FROM friend_requests WHERE sender_id = $1 AND receiver_id = $2 RETURNING id, created_at",
        target_id,
        user.id
    )
    .fetch_optional(&mut *tx)
    .await?;
    let body = if let Some(reverse) = reverse {
        befriend(&mut tx, user.id, target_id).await?;
        FriendRequestBody {
            id: reverse.id,
            sender: UserSummary {
                id: target_id,
                name: target_name,
            },
            receiver: UserSummary {
                id: user.id,
                name: user.name,
            },
            status: "accepted",
            created_at: reverse.created_at,
        }
    } else {
        let created = sqlx::query!(
            "INSERT INTO friend_requests (id, sender_id, receiver_id) VALUES ($1, $2, $3) RETURNING id, created_at",
            Uuid::new_v4(),
            user.id,
            target_id
        )
        .fetch_one(&mut *tx)
        .await
        .on_constraint("friend_requests_pair_key", || Error::Conflict {
            code: "request_exists",
            message: "a friend request between you is already pending".into(),
        })?;
        FriendRequestBody {
            id: created.id,
            sender: UserSummary {
                id: user.id,
                name: user.name,
            },
            receiver: UserSummary {
                id: target_id,
                name: target_name,
            },
            status: "pending",
            created_at: created.created_at,
        }
    };
    tx.commit().await?;
    Ok((
        StatusCode::CREATED,
        Json(Success::new(FriendRequestAnswer { request: body })),
    ))
}

async fn befriend(tx: &mut PgConnection, a: Uuid, b: Uuid) -> Result<()> {
    let (low, high) = pair(a, b);
    sqlx::query!(
        "INSERT INTO friendships (user_a, user_b) VALUES ($1, $2) ON CONFLICT DO NOTHING",
        low,
        high
    )
    .execute(&mut *tx)
    .await?;
    Ok(())
}

#[derive(Deserialize, Clone, Copy, Default, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
enum Direction {
    #[default]
    Incoming,
    Outgoing,
}

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
struct RequestListParams {
    /// `incoming` (default) or `outgoing`.
    #[serde(default)]
    #[param(inline)]
    direction: Direction,
    /// Documented as [`PageParams`] itself.
    #[serde(flatten)]
    #[param(ignore)]
    page: PageParams,
}

/// A page of pending friend requests.
#[derive(Serialize, utoipa::ToSchema)]
struct FriendRequestList {
    requests: Vec<FriendRequestBody>,
}

/// Pending requests to (`incoming`, default) or from (`outgoing`) the caller.
#[utoipa::path(get, path = "/api/friends/requests", tag = "friends", security(("bearer" = [])),
    params(RequestListParams, PageParams),
    responses((status = 200, description = "`{success, requests: [FriendRequestBody], nextCursor}`", body = Success<Page<FriendRequestList>>),
    (status = 422, description = "Bad query", body = ErrorBody)))]
async fn list_requests(
    State(ctx): State<ApiContext>,
    user: AuthUser,
    ApiQuery(params): ApiQuery<RequestListParams>,
) -> Result<Json<Success<Page<FriendRequestList>>>> {
    let limit = params.page.limit()?;
    let (after_at, after_id) = params.page.time_cursor()?;
    let incoming = matches!(params.direction, Direction::Incoming);
    let rows = sqlx::query!(
        r#"
        SELECT r.id, r.created_at,
               s.id AS sender_id, s.name AS sender_name,
               v.id AS receiver_id, v.name AS receiver_name
        FROM friend_requests r
        JOIN users s ON s.id = r.sender_id
        JOIN users v ON v.id = r.receiver_id
        WHERE (CASE WHEN $2 THEN r.receiver_id ELSE r.sender_id END) = $1
          AND ($3::timestamptz IS NULL OR (r.created_at, r.id) < ($3, $4))
        ORDER BY r.created_at DESC, r.id DESC
        LIMIT $5
        "#,
        user.id,
        incoming,
        after_at,
        after_id,
        limit + 1
    )
    .fetch_all(&ctx.db)
    .await?;
    let requests: Vec<FriendRequestBody> = rows
        .into_iter()
        .map(|r| FriendRequestBody {
            id: r.id,
            sender: UserSummary {
                id: r.sender_id,
                name: r.sender_name,
            },
            receiver: UserSummary {
                id: r.receiver_id,
                name: r.receiver_name,
            },
            status: "pending",
            created_at: r.created_at,
        })
        .collect();
    let (requests, next) = pagination::finish(requests, limit, |r| (time_key(r.created_at), r.id));
    Ok(Json(Success::new(Page::new(
        FriendRequestList { requests },
        next,
    ))))
}

/// The new friend, as accepting a request answers it.
#[derive(Serialize, utoipa::ToSchema)]
struct NewFriend {
    id: Uuid,
    name: String,
    email: String,
}

/// The body of an accepted friend request, beside `success`.
#[derive(Serialize, utoipa::ToSchema)]
struct AcceptedRequest {
    friend: NewFriend,
}

/// Accepts a request (the receiver only).
#[utoipa::path(post, path = "/api/friends/requests/{id}/accept", tag = "friends", security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "The request")), responses(
    (status = 200, description = "`{success, friend}`", body = Success<AcceptedRequest>),
    (status = 404, description = "No such request for you", body = ErrorBody)))]
async fn accept_request(
    State(ctx): State<ApiContext>,
    user: AuthUser,
    ApiPath(id): ApiPath<Uuid>,
) -> Result<Json<Success<AcceptedRequest>>> {
    let mut tx = ctx.db.begin().await?;
    let request = sqlx::query!(
        "DELETE FROM friend_requests WHERE id = $1 AND receiver_id = $2 RETURNING sender_id",
        id,
        user.id
    )
    .fetch_optional(&mut *tx)
    .await?
    .ok_or(Error::NotFound("no such friend request"))?;
    befriend(&mut tx, user.id, request.sender_id).await?;
    let friend = sqlx::query!(
        "SELECT id, name, email FROM users WHERE id = $1",
        request.sender_id
    )
    .fetch_one(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(Json(Success::new(AcceptedRequest {
        friend: NewFriend {
            id: friend.id,
            name: friend.name,
            email: friend.email,
        },
    })))
}

/// Declines a request (the receiver only).
#[utoipa::path(post, path = "/api/friends/requests/{id}/decline", tag = "friends", security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "The request")), responses(
    (status = 204, description = "Declined"),
    (status = 404, description = "No such request for you", body = ErrorBody)))]
async fn decline_request(
    State(ctx): State<ApiContext>,
    user: AuthUser,
    ApiPath(id): ApiPath<Uuid>,
) -> Result<StatusCode> {
    drop_request(&ctx.db, id, user.id, End::Receiver).await
}

/// Cancels a request (the sender only).
#[utoipa::path(delete, path = "/api/friends/requests/{id}", tag = "friends", security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "The request")), responses(
    (status = 204, description = "Cancelled"),
    (status = 404, description = "No such request of yours", body = ErrorBody)))]
async fn cancel_request(
    State(ctx): State<ApiContext>,
    user: AuthUser,
    ApiPath(id): ApiPath<Uuid>,
) -> Result<StatusCode> {
    drop_request(&ctx.db, id, user.id, End::Sender).await
}

/// The end of a friend request a user is.
#[derive(Clone, Copy)]
enum End {
    Sender,
    Receiver,
}

/// Deletes request `id` if `user` is its `end` (declining is the
/// receiver's, cancelling the sender's); 404 otherwise.
async fn drop_request(db: &PgPool, id: Uuid, user: Uuid, end: End) -> Result<StatusCode> {
    let delete = match end {
        End::Receiver => sqlx::query!(
            "DELETE FROM friend_requests WHERE id = $1 AND receiver_id = $2",
            id,
            user
        ),
        End::Sender => sqlx::query!(
            "DELETE FROM friend_requests WHERE id = $1 AND sender_id = $2",
            id,
            user
        ),
    };
    let deleted = delete.execute(db).await?;
    if deleted.rows_affected() == 0 {
        return Err(Error::NotFound("no such friend request"));
    }
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
struct Friend {
    id: Uuid,
    name: String,
    email: String,
    /// Connected to a room or the user channel on any api replica.
    online: bool,
    since: DateTime<Utc>,
}

/// A page of the caller's friends.
#[derive(Serialize, utoipa::ToSchema)]
struct FriendList {
    friends: Vec<Friend>,
}

/// The caller's friends, with their online flag.
#[utoipa::path(get, path = "/api/friends", tag = "friends", security(("bearer" = [])), params(PageParams),
    responses((status = 200, description = "`{success, friends: [Friend], nextCursor}`", body = Success<Page<FriendList>>),
    (status = 422, description = "Bad query", body = ErrorBody)))]
async fn list_friends(
    State(ctx): State<ApiContext>,
    user: AuthUser,
    ApiQuery(page): ApiQuery<PageParams>,
) -> Result<Json<Success<Page<FriendList>>>> {
    let limit = page.limit()?;
    let (after_at, after_id) = page.time_cursor()?;
    let rows = sqlx::query!(
        r#"
        SELECT u.id, u.name, u.email, f.created_at AS since
        FROM friendships f
        JOIN users u ON u.id = CASE WHEN f.user_a = $1 THEN f.user_b ELSE f.user_a END
        WHERE (f.user_a = $1 OR f.user_b = $1)
          AND ($2::timestamptz IS NULL OR (f.created_at, u.id) < ($2, $3))
        ORDER BY f.created_at DESC, u.id DESC
        LIMIT $4
        "#,
        user.id,
        after_at,
        after_id,
        limit + 1
    )
    .fetch_all(&ctx.db)
    .await?;
    let ids: Vec<Uuid> = rows.iter().map(|r| r.id).collect();
    let online =
        crate::realtime::presence::online(&ctx.redis, &ctx.config.redis.key_prefix, &ids).await;
    let friends: Vec<Friend> = rows
        .into_iter()
        .map(|r| Friend {
            online: online.contains(&r.id),
            id: r.id,
            name: r.name,
            email: r.email,
            since: r.since,
        })
        .collect();
    let (friends, next) = pagination::finish(friends, limit, |f| (time_key(f.since), f.id));
    Ok(Json(Success::new(Page::new(FriendList { friends }, next))))
}

/// Ends a friendship.
#[utoipa::path(delete, path = "/api/friends/{user_id}", tag = "friends", security(("bearer" = [])),
    params(("user_id" = Uuid, Path, description = "The friend")), responses(
    (status = 204, description = "No longer friends"),
    (status = 404, description = "Not a friend", body = ErrorBody)))]
async fn unfriend(
    State(ctx): State<ApiContext>,
    user: AuthUser,
    ApiPath(other): ApiPath<Uuid>,
) -> Result<StatusCode> {
    let (low, high) = pair(user.id, other);
    let deleted = sqlx::query!(
        "DELETE FROM friendships WHERE user_a = $1 AND user_b = $2",
        low,
        high
    )
    .execute(&ctx.db)
    .await?
    .rows_affected();
    if deleted == 0 {
        return Err(Error::NotFound("not a friend"));
    }
    Ok(StatusCode::NO_CONTENT)
}
