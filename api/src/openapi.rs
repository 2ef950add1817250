//! The OpenAPI document, generated from the handlers' `#[utoipa::path]`
//! attributes as the routes are registered (`utoipa_axum::routes!`), so the
//! router and the document come from one source. Served at
//! `/api/openapi.json`, with an interactive page at `/api/docs` (Swagger UI,
//! bundled: no internet needed).

use utoipa::{
    Modify, OpenApi,
    openapi::security::{ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityScheme},
};

#[derive(OpenApi)]
#[openapi(
    info(
        title = "CodeCall API",
        description = "Practise technical interviews with friends: accounts, friends, interview sessions, real-time rooms, sandboxed code runs, problems with hidden tests and feedback. Errors always have the body `ErrorBody`."
    ),
    modifiers(&BearerAuth),
    components(schemas(crate::error::ErrorBody)),
    tags(
        (name = "health", description = "Liveness, readiness, metrics"),
        (name = "auth", description = "Accounts and tokens (also under /api/auth)"),
        (name = "users", description = "The caller's account"),
        (name = "friends", description = "Search and the friend graph"),
        (name = "sessions", description = "Interview sessions"),
        (name = "invites", description = "Session invites"),
        (name = "runs", description = "Code execution"),
        (name = "problems", description = "Interview problems, attaching one to a session, submissions"),
        (name = "feedback", description = "Feedback after an interview, and a session's review document"),
        (name = "rooms", description = "Real-time WebSockets"),
        (name = "admin", description = "Queue monitoring (admins)"),
        (name = "tokens", description = "Personal API tokens (for programs; refused on credential changes)"),
        (name = "judge0", description = "Judge0 CE 1.13.1-compatible API (base URL `/judge0`, a personal API token as `X-Auth-Token`); errors are Judge0's `{error}` or `{field: [problem]}`"),
        (name = "piston", description = "Piston v2-compatible API (base URL `/piston/{token}/api/v2`); errors are Piston's `{message}`")
    )
)]
pub struct ApiDoc;

/// Declares the `bearer` security scheme the paths refer to.
struct BearerAuth;

impl Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .bearer_format("JWT or personal API token")
                    .build(),
            ),
        );
        components.add_security_scheme(
            "judge0_token",
            SecurityScheme::ApiKey(ApiKey::Header(ApiKeyValue::new("X-Auth-Token"))),
        );
    }
}
