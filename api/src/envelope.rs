//! The envelope of successful answers: `{"success": true, …}`, the body's own
//! fields beside `success` (the original Node backend's shape, which clients
//! of the accounts, friends, sessions and runs routes rely on; failures
//! answer [`crate::error::ErrorBody`], whose `success` is `false`).
//!
//! [`Success<T>`] flattens `T` into the envelope, so a handler declares what it
//! answers as a type — `Json<Success<Login>>` — and its `#[utoipa::path]`
//! names that same type: the OpenAPI document then shows the real fields
//! (an `allOf` of `T` and `success`) instead of a bare object.

use serde::Serialize;

/// `success: true` beside the fields of the body.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Success<T> {
    /// Always `true`.
    success: bool,
    #[serde(flatten)]
    body: T,
}

impl<T> Success<T> {
    pub fn new(body: T) -> Self {
        Success {
            success: true,
            body,
        }
    }
}

impl<T> From<T> for Success<T> {
    fn from(body: T) -> Self {
        Success::new(body)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Serialize)]
    #[serde(rename_all = "camelCase")]
    struct Tokens {
        access_token: &'static str,
        refresh_token: &'static str,
    }

    #[test]
    fn the_body_sits_beside_success() {
        let body = Success::new(Tokens {
            access_token: "a",
            refresh_token: "r",
        });
        assert_eq!(
            serde_json::to_value(body).expect("serialises"),
            serde_json::json!({ "success": true, "accessToken": "a", "refreshToken": "r" })
        );
    }
}
