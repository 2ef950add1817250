//! The one error type of the API and the body every failure answers with:
//!
//! ```json
//! {"success": false, "error": {"code": "snake_case", "message": "…", "fields": {…}}}
//! ```
//!
//! Handlers return `Result<_, Error>`; `?` on a `sqlx::Error` or `anyhow::Error`
//! becomes a 500 whose cause is logged here and never sent to the client —
//! except when PostgreSQL or Redis cannot be reached (the pool found no
//! connection in `DATABASE_ACQUIRE_TIMEOUT`, a connection broke): that is 503
//! `dependency_unavailable`, and the next request tries again, so the api
//! recovers by itself when the dependency is back.
//! Extractor failures (malformed JSON, wrong content type, oversize body) and
//! unknown routes are converted into the same body.

use std::{collections::BTreeMap, time::Duration};

use axum::{
    Json,
    extract::{
        FromRequest, FromRequestParts,
        rejection::{JsonRejection, PathRejection, QueryRejection},
    },
    http::{HeaderValue, StatusCode, header},
    response::{IntoResponse, Response},
};
use serde::Serialize;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// 400: the request cannot be understood (malformed JSON, bad header…).
    #[error("{message}")]
    BadRequest { code: &'static str, message: String },

    /// 401: no valid credentials.
    #[error("{message}")]
    Unauthorized {
        code: &'static str,
        message: &'static str,
    },

    /// 403: authenticated, but not allowed.
    #[error("{0}")]
    Forbidden(&'static str),

    /// 404: absent, or not yours (existence is not leaked).
    #[error("{0}")]
    NotFound(&'static str),

    /// 405: the path exists but not with this method.
    #[error("method not allowed")]
    MethodNotAllowed,

    /// 409: conflicts with existing state.
    #[error("{message}")]
    Conflict { code: &'static str, message: String },

    /// 413: the body is over the configured limit.
    #[error("request body is over the size limit")]
    PayloadTooLarge,

    /// 408: the request did not complete within the server's time limit.
    #[error("request took too long")]
    Timeout,

    /// 415: the body is not `application/json`.
    #[error("expected a request with `Content-Type: application/json`")]
    UnsupportedMediaType,

    /// 422: well-formed, but some fields are invalid. `fields` maps each field
    /// (camelCase, as the client sent it) to what is wrong with it.
    #[error("request has invalid fields")]
    Unprocessable {
        code: &'static str,
        fields: BTreeMap<String, String>,
    },

    /// 429: throttled; the client may retry after the given time.
    #[error("{message}")]
    TooManyRequests {
        message: &'static str,
        retry_after: Duration,
    },

    /// 503: a dependency is down or the request ran out of time.
    #[error("{message}")]
    Unavailable { code: &'static str, message: String },

    /// 503 with `Retry-After`: nothing can serve this now, and the client
    /// should come back later (e.g. `no_workers`).
    #[error("{message}")]
    Busy {
        code: &'static str,
        message: String,
        retry_after: Duration,
    },

    /// 500: logged with its cause, answered without it.
    #[error("database error: {0}")]
    Sqlx(sqlx::Error),

    #[error("redis error: {0}")]
    Redis(redis::RedisError),

    #[error("internal error: {0:#}")]
    Internal(anyhow::Error),
}

/// PostgreSQL cannot be reached: no connection within the pool's acquire
/// timeout, or the connection itself failed.
fn database_unreachable(e: &sqlx::Error) -> bool {
    matches!(
        e,
        sqlx::Error::PoolTimedOut | sqlx::Error::PoolClosed | sqlx::Error::Io(_)
    )
}

/// Redis cannot be reached (refused, dropped or timed out).
fn redis_unreachable(e: &redis::RedisError) -> bool {
    e.is_io_error() || e.is_connection_refusal() || e.is_connection_dropped() || e.is_timeout()
}

impl Error {
    /// 503 `dependency_unavailable`, naming the dependency; the cause is logged.
    pub fn dependency_unavailable(dependency: &str, cause: &dyn std::fmt::Display) -> Self {
        tracing::warn!(dependency, error = %cause, "dependency unavailable");
        Error::Unavailable {
            code: "dependency_unavailable",
            message: format!("the {dependency} is unavailable; try again shortly"),
        }
    }
}

impl From<sqlx::Error> for Error {
    fn from(e: sqlx::Error) -> Self {
        if database_unreachable(&e) {
            Error::dependency_unavailable("database", &e)
        } else {
            Error::Sqlx(e)
        }
    }
}

impl From<redis::RedisError> for Error {
    fn from(e: redis::RedisError) -> Self {
        if redis_unreachable(&e) {
            Error::dependency_unavailable("cache", &e)
        } else {
            Error::Redis(e)
        }
    }
}

impl From<anyhow::Error> for Error {
    fn from(e: anyhow::Error) -> Self {
        // A database or Redis failure that travelled through `anyhow`.
        let unreachable = e.chain().any(|cause| {
            cause
                .downcast_ref::<sqlx::Error>()
                .is_some_and(database_unreachable)
                || cause
                    .downcast_ref::<redis::RedisError>()
                    .is_some_and(redis_unreachable)
        });
        if unreachable {
            Error::dependency_unavailable("database or cache", &format!("{e:#}"))
        } else {
            Error::Internal(e)
        }
    }
}

impl Error {
    /// A 422 for one field.
    pub fn invalid_field(field: &str, problem: impl Into<String>) -> Self {
        Error::Unprocessable {
            code: "validation_failed",
            fields: BTreeMap::from([(field.to_owned(), problem.into())]),
        }
    }

    pub fn status(&self) -> StatusCode {
        match self {
            Error::BadRequest { .. } => StatusCode::BAD_REQUEST,
            Error::Unauthorized { .. } => StatusCode::UNAUTHORIZED,
            Error::Forbidden(_) => StatusCode::FORBIDDEN,
            Error::NotFound(_) => StatusCode::NOT_FOUND,
            Error::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            Error::Conflict { .. } => StatusCode::CONFLICT,
            Error::PayloadTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            Error::Timeout => StatusCode::REQUEST_TIMEOUT,
            Error::UnsupportedMediaType => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            Error::Unprocessable { .. } => StatusCode::UNPROCESSABLE_ENTITY,
            Error::TooManyRequests { .. } => StatusCode::TOO_MANY_REQUESTS,
            Error::Unavailable { .. } | Error::Busy { .. } => StatusCode::SERVICE_UNAVAILABLE,
            Error::Sqlx(_) | Error::Redis(_) | Error::Internal(_) => {
                StatusCode::INTERNAL_SERVER_ERROR
            }
        }
    }

    fn code(&self) -> &'static str {
        match self {
            Error::BadRequest { code, .. }
            | Error::Unauthorized { code, .. }
            | Error::Conflict { code, .. }
            | Error::Unprocessable { code, .. }
            | Error::Unavailable { code, .. }
            | Error::Busy { code, .. } => code,
            Error::Forbidden(_) => "forbidden",
            Error::NotFound(_) => "not_found",
            Error::MethodNotAllowed => "method_not_allowed",
            Error::PayloadTooLarge => "payload_too_large",
            Error::Timeout => "request_timeout",
            Error::UnsupportedMediaType => "unsupported_media_type",
            Error::TooManyRequests { .. } => "too_many_requests",
            Error::Sqlx(_) | Error::Redis(_) | Error::Internal(_) => "internal_error",
        }
    }
}

/// The body of every error response: `{success: false, error: {code, message, fields?}}`.
#[derive(Serialize, utoipa::ToSchema)]
pub struct ErrorBody {
    pub success: bool,
    pub error: ErrorDetail,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct ErrorDetail {
    pub code: &'static str,
    pub message: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fields: Option<BTreeMap<String, String>>,
}

impl IntoResponse for Error {
    fn into_response(self) -> Response {
        let status = self.status();
        let message = if status.is_server_error() && status != StatusCode::SERVICE_UNAVAILABLE {
            // The cause goes to the log, never to the client.
            tracing::error!(error = %self, "request failed");
            "internal server error".to_owned()
        } else {
            self.to_string()
        };
        let retry_after = match &self {
            Error::TooManyRequests { retry_after, .. } | Error::Busy { retry_after, .. } => {
                Some(retry_after.as_secs().max(1))
            }
            _ => None,
        };
        let body = ErrorBody {
            success: false,
            error: ErrorDetail {
                code: self.code(),
                message,
                fields: match self {
                    Error::Unprocessable { fields, .. } => Some(fields),
                    _ => None,
                },
            },
        };
        let mut response = (status, Json(body)).into_response();
        if let Some(secs) = retry_after {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(secs));
        }
        response
    }
}

impl From<JsonRejection> for Error {
    fn from(rejection: JsonRejection) -> Self {
        match rejection {
            JsonRejection::JsonSyntaxError(e) => Error::BadRequest {
                code: "malformed_json",
                message: format!("request body is not valid JSON: {}", e.body_text()),
            },
            // Valid JSON of the wrong shape: a wrong type, a missing field or an
            // unknown enum value. serde's message names the field.
            JsonRejection::JsonDataError(e) => Error::Unprocessable {
                code: "invalid_body",
                fields: BTreeMap::from([("body".to_owned(), e.body_text())]),
            },
            JsonRejection::MissingJsonContentType(_) => Error::UnsupportedMediaType,
            JsonRejection::BytesRejection(e) if e.status() == StatusCode::PAYLOAD_TOO_LARGE => {
                Error::PayloadTooLarge
            }
            other => Error::BadRequest {
                code: "bad_request",
                message: other.body_text(),
            },
        }
    }
}

impl From<QueryRejection> for Error {
    fn from(rejection: QueryRejection) -> Self {
        Error::Unprocessable {
            code: "invalid_query",
            fields: BTreeMap::from([("query".to_owned(), rejection.body_text())]),
        }
    }
}

impl From<PathRejection> for Error {
    fn from(rejection: PathRejection) -> Self {
        Error::BadRequest {
            code: "invalid_path",
            message: rejection.body_text(),
        }
    }
}

/// `axum::extract::Query` whose rejections answer with [`Error`]'s body.
#[derive(FromRequestParts)]
#[from_request(via(axum::extract::Query), rejection(Error))]
pub struct ApiQuery<T>(pub T);

/// `axum::extract::Path` whose rejections (e.g. an id that is not a UUID)
/// answer with [`Error`]'s body.
#[derive(FromRequestParts)]
#[from_request(via(axum::extract::Path), rejection(Error))]
pub struct ApiPath<T>(pub T);

/// `axum::Json` whose rejections answer with [`Error`]'s body.
#[derive(FromRequest)]
#[from_request(via(axum::Json), rejection(Error))]
pub struct ApiJson<T>(pub T);

impl<T: Serialize> IntoResponse for ApiJson<T> {
    fn into_response(self) -> Response {
        Json(self.0).into_response()
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Maps a violation of a named database constraint to a client error, the
/// way realworld-axum-sqlx does: constraints are named in the migrations, so
/// the mapping is explicit and everything else stays a logged 500.
pub trait ResultExt<T> {
    fn on_constraint(self, name: &str, map: impl FnOnce() -> Error) -> Result<T>;
}

impl<T, E: Into<Error>> ResultExt<T> for std::result::Result<T, E> {
    fn on_constraint(self, name: &str, map: impl FnOnce() -> Error) -> Result<T> {
        self.map_err(|e| match e.into() {
            Error::Sqlx(sqlx::Error::Database(db)) if db.constraint() == Some(name) => map(),
            other => other,
        })
    }
}
