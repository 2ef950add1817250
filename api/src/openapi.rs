//! The OpenAPI document, generated from the handlers' `#[utoipa::path]`
//! attributes as the routes are registered (`utoipa_axum::routes!`), so the
//! router and the document come from one source. Served at
//! `/api/openapi.json`, with an interactive page at `/api/docs` (Swagger UI,
//! bundled: no internet needed).
//!
//! The handlers document what they decide (404, 409, their 422s…); the
//! statuses that come from the shared machinery — extractors, body limits,
//! authentication, the time limit, the dependencies, panics — are added to
//! every operation they apply to by [`document`], so the document tells
//! every status a route can answer (the OpenAPI fuzz of
//! `scripts/openapi-fuzz.sh` holds it to that).

use utoipa::{
    Modify, OpenApi,
    openapi::{
        ContentBuilder, ObjectBuilder, OneOfBuilder, Ref, RefOr, Response, ResponseBuilder, Schema,
        Type,
        path::{Operation, ParameterIn},
        schema::AnyOfBuilder,
        security::{ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityScheme},
    },
};

#[derive(OpenApi)]
#[openapi(
    info(
        title = "CodeCall API",
        description = "Practise technical interviews with friends: accounts, friends, interview sessions, real-time rooms, sandboxed code runs, problems with hidden tests and feedback. Errors always have the body `ErrorBody`."
    ),
    modifiers(&BearerAuth),
    components(schemas(
        crate::error::ErrorBody,
        crate::compat::Judge0Message,
        crate::compat::Judge0Problems,
        crate::compat::PistonMessage
    )),
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

/// The whole document: the handlers' paths (`paths`, from the router) with
/// the shared error statuses added.
pub fn document(mut paths: utoipa::openapi::OpenApi) -> utoipa::openapi::OpenApi {
    SharedErrors.modify(&mut paths);
    paths
}

/// Routes that touch neither PostgreSQL nor Redis: no 503 there.
const NO_DEPENDENCY: &[&str] = &["/health", "/metrics"];

/// Adds to each operation the error statuses of the machinery it goes
/// through (a status its handler documents keeps the handler's words, and
/// gains the machinery's body as an alternative where it differs):
///
/// - a JSON body: 400 (malformed), 413 (over the route's body limit), 415
///   (not `application/json`), 422 (JSON of the wrong shape);
/// - path parameters: 400 (e.g. not a UUID); query parameters: 422;
/// - a security requirement: 401;
/// - every route: 408 (`REQUEST_TIMEOUT`) and 500; 503 where a dependency
///   is used (a database or Redis that cannot be reached);
/// - a WebSocket route: 400 in plain text (not an upgrade).
///
/// The Judge0 and Piston routes answer in their engine's shape (see
/// [`crate::compat`]), except the 408, which the server's time limit
/// answers before any route, and a panic's 500.
struct SharedErrors;

/// Which error body a path answers with.
#[derive(Clone, Copy, PartialEq)]
enum Shape {
    Native,
    Judge0,
    Piston,
}

impl Shape {
    fn of(path: &str) -> Self {
        if path.starts_with("/judge0/") {
            Shape::Judge0
        } else if path.starts_with("/piston/") {
            Shape::Piston
        } else {
            Shape::Native
        }
    }

    /// The body of most errors.
    fn message(self) -> RefOr<Schema> {
        RefOr::Ref(Ref::from_schema_name(match self {
            Shape::Native => "ErrorBody",
            Shape::Judge0 => "Judge0Message",
            Shape::Piston => "PistonMessage",
        }))
    }

    /// The body of a 422 (invalid fields).
    fn problems(self) -> RefOr<Schema> {
        match self {
            Shape::Judge0 => RefOr::Ref(Ref::from_schema_name("Judge0Problems")),
            other => other.message(),
        }
    }

    /// The body of a 500: a handler's error in the route's shape, a panic
    /// (caught for every route) in the native one.
    fn internal(self) -> RefOr<Schema> {
        match self {
            Shape::Native => self.message(),
            door => OneOfBuilder::new()
                .item(door.message())
                .item(Shape::Native.message())
                .into(),
        }
    }
}

impl Modify for SharedErrors {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        for (path, item) in openapi.paths.paths.iter_mut() {
            for operation in [
                &mut item.get,
                &mut item.put,
                &mut item.post,
                &mut item.delete,
                &mut item.patch,
            ]
            .into_iter()
            .flatten()
            {
                for (status, description, schema) in shared_errors(path, operation) {
                    add_response(operation, status, description, schema);
                }
                document_upgrade_rejection(operation);
            }
        }
    }
}

/// The statuses, descriptions and bodies of the machinery `operation` on
/// `path` goes through.
fn shared_errors(
    path: &str,
    operation: &Operation,
) -> Vec<(&'static str, &'static str, RefOr<Schema>)> {
    let shape = Shape::of(path);
    let has = |location: ParameterIn| {
        operation.parameters.iter().flatten().any(|p| match p {
            RefOr::T(p) => p.parameter_in == location,
            RefOr::Ref(_) => false,
        })
    };
    let mut errors = Vec::new();
    if operation.request_body.is_some() {
        errors.extend([
            ("400", "The body is not valid JSON", shape.message()),
            (
                "413",
                "The body is over the route's size limit",
                shape.message(),
            ),
            (
                "415",
                "The body is not `Content-Type: application/json`",
                shape.message(),
            ),
            (
                "422",
                "The body is JSON of the wrong shape",
                shape.problems(),
            ),
        ]);
    }
    if has(ParameterIn::Path) && shape == Shape::Native {
        errors.push((
            "400",
            "A path parameter is invalid (`invalid_path`)",
            shape.message(),
        ));
    }
    if has(ParameterIn::Query) {
        errors.push((
            "422",
            "The query string is invalid (`invalid_query`)",
            shape.problems(),
        ));
    }
    if operation.security.as_ref().is_some_and(|s| !s.is_empty()) {
        errors.push(("401", "Not authenticated", shape.message()));
    }
    errors.extend([
        (
            "408",
            "Over `REQUEST_TIMEOUT` (`request_timeout`)",
            Shape::Native.message(),
        ),
        (
            "500",
            "Internal error (logged, not detailed)",
            shape.internal(),
        ),
    ]);
    if !NO_DEPENDENCY.contains(&path) {
        errors.push((
            "503",
            "PostgreSQL or Redis cannot be reached (`dependency_unavailable`)",
            shape.message(),
        ));
    }
    errors
}

/// A response with one body.
fn response(description: &str, content_type: &str, schema: RefOr<Schema>) -> RefOr<Response> {
    ResponseBuilder::new()
        .description(description)
        .content(
            content_type,
            ContentBuilder::new().schema(Some(schema)).build(),
        )
        .build()
        .into()
}

/// Documents `status` on `operation` with a JSON `schema`. A status the
/// handler documents keeps its description; a different JSON body it gives
/// that status is kept as an alternative (`anyOf`).
fn add_response(operation: &mut Operation, status: &str, description: &str, schema: RefOr<Schema>) {
    let responses = &mut operation.responses.responses;
    let Some(RefOr::T(documented)) = responses.get_mut(status) else {
        responses.insert(
            status.to_owned(),
            response(description, "application/json", schema),
        );
        return;
    };
    let Some(RefOr::T(content)) = documented.content.get_mut("application/json") else {
        return;
    };
    match content.schema.take() {
        Some(documented) if !same_schema(&documented, &schema) => {
            content.schema = Some(AnyOfBuilder::new().item(documented).item(schema).into());
        }
        documented => content.schema = documented.or(Some(schema)),
    }
}

fn same_schema(a: &RefOr<Schema>, b: &RefOr<Schema>) -> bool {
    serde_json::to_value(a).ok() == serde_json::to_value(b).ok()
}

/// A WebSocket route (it documents 101) refuses a request that is not an
/// upgrade with axum's own 400, in plain text.
fn document_upgrade_rejection(operation: &mut Operation) {
    if !operation.responses.responses.contains_key("101") {
        return;
    }
    let plain: RefOr<Schema> = ObjectBuilder::new().schema_type(Type::String).into();
    match operation.responses.responses.get_mut("400") {
        Some(RefOr::T(documented)) => {
            documented
                .description
                .push_str("; or not a WebSocket upgrade (plain text)");
            documented.content.insert(
                "text/plain".to_owned(),
                ContentBuilder::new().schema(Some(plain)).build().into(),
            );
        }
        _ => {
            operation.responses.responses.insert(
                "400".to_owned(),
                response("Not a WebSocket upgrade (plain text)", "text/plain", plain),
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::Value;
    use utoipa::openapi::{
        ContentBuilder, HttpMethod, OpenApiBuilder, PathItem, PathsBuilder, Ref, ResponseBuilder,
        path::{OperationBuilder, ParameterBuilder, ParameterIn},
        request_body::RequestBodyBuilder,
        security::SecurityRequirement,
    };

    /// The responses `document` gives an operation of `method` on `path`.
    fn responses(path: &str, method: HttpMethod, body: bool, secured: bool) -> Value {
        let mut operation = OperationBuilder::new()
            .response("200", ResponseBuilder::new().description("ok").build())
            .response(
                "422",
                ResponseBuilder::new()
                    .description("the handler's own")
                    .build(),
            );
        if body {
            operation = operation.request_body(Some(RequestBodyBuilder::new().build()));
        }
        if secured {
            operation =
                operation.security(SecurityRequirement::new("bearer", Vec::<String>::new()));
        }
        if path.contains('{') {
            operation = operation.parameter(
                ParameterBuilder::new()
                    .name("id")
                    .parameter_in(ParameterIn::Path)
                    .build(),
            );
        }
        let paths =
            PathsBuilder::new().path(path, PathItem::new(method.clone(), operation.build()));
        let doc = super::document(OpenApiBuilder::new().paths(paths).build());
        let doc = serde_json::to_value(doc).expect("serializes");
        let method = serde_json::to_value(method).expect("serializes");
        doc["paths"][path][method.as_str().expect("a string")]["responses"].clone()
    }

    fn statuses(responses: &Value) -> Vec<&str> {
        responses
            .as_object()
            .expect("responses")
            .keys()
            .map(String::as_str)
            .collect()
    }

    fn schema(responses: &Value, status: &str) -> Value {
        responses[status]["content"]["application/json"]["schema"].clone()
    }

    #[test]
    fn a_secured_json_route_documents_every_shared_error() {
        let r = responses("/api/things/{id}", HttpMethod::Post, true, true);
        assert_eq!(
            statuses(&r),
            [
                "200", "400", "401", "408", "413", "415", "422", "500", "503"
            ]
        );
        // What the handler documents stays as it is.
        assert_eq!(r["422"]["description"], "the handler's own");
        assert_eq!(schema(&r, "415")["$ref"], "#/components/schemas/ErrorBody");
    }

    #[test]
    fn a_route_without_body_credentials_or_dependencies_documents_only_timeouts_and_500() {
        let r = responses("/health", HttpMethod::Get, false, false);
        assert_eq!(statuses(&r), ["200", "408", "422", "500"]);
    }

    #[test]
    fn a_status_the_handler_documents_with_another_body_gets_both() {
        let paths = PathsBuilder::new().path(
            "/judge0/submissions/batch",
            PathItem::new(
                HttpMethod::Post,
                OperationBuilder::new()
                    .request_body(Some(RequestBodyBuilder::new().build()))
                    .response(
                        "422",
                        ResponseBuilder::new()
                            .description("each submission's problems")
                            .content(
                                "application/json",
                                ContentBuilder::new()
                                    .schema(Some(Ref::from_schema_name("Batch")))
                                    .build(),
                            )
                            .build(),
                    )
                    .build(),
            ),
        );
        let doc = super::document(OpenApiBuilder::new().paths(paths).build());
        let doc = serde_json::to_value(doc).expect("serializes");
        let r = &doc["paths"]["/judge0/submissions/batch"]["post"]["responses"];
        assert_eq!(r["422"]["description"], "each submission's problems");
        assert_eq!(
            schema(r, "422")["anyOf"],
            serde_json::json!([
                {"$ref": "#/components/schemas/Batch"},
                {"$ref": "#/components/schemas/Judge0Problems"}
            ])
        );
    }

    #[test]
    fn a_websocket_route_documents_the_plain_text_refusal_of_a_non_upgrade() {
        let paths = PathsBuilder::new().path(
            "/api/sessions/{id}/events",
            PathItem::new(
                HttpMethod::Get,
                OperationBuilder::new()
                    .response(
                        "101",
                        ResponseBuilder::new().description("upgraded").build(),
                    )
                    .parameter(
                        ParameterBuilder::new()
                            .name("id")
                            .parameter_in(ParameterIn::Path)
                            .build(),
                    )
                    .build(),
            ),
        );
        let doc = super::document(OpenApiBuilder::new().paths(paths).build());
        let doc = serde_json::to_value(doc).expect("serializes");
        let bad_request = &doc["paths"]["/api/sessions/{id}/events"]["get"]["responses"]["400"];
        assert!(bad_request["content"]["application/json"].is_object());
        assert_eq!(
            bad_request["content"]["text/plain"]["schema"]["type"],
            "string"
        );
    }

    #[test]
    fn the_compat_routes_document_their_own_shapes() {
        let r = responses("/judge0/submissions", HttpMethod::Post, true, true);
        assert_eq!(
            schema(&r, "400")["$ref"],
            "#/components/schemas/Judge0Message"
        );
        assert_eq!(
            schema(&r, "401")["$ref"],
            "#/components/schemas/Judge0Message"
        );
        // The server's time limit answers before the route, natively.
        assert_eq!(schema(&r, "408")["$ref"], "#/components/schemas/ErrorBody");
        assert_eq!(schema(&r, "500")["oneOf"].as_array().map(Vec::len), Some(2));
        let r = responses(
            "/piston/{token}/api/v2/execute",
            HttpMethod::Post,
            true,
            false,
        );
        assert_eq!(
            schema(&r, "413")["$ref"],
            "#/components/schemas/PistonMessage"
        );
        assert!(r.get("401").is_none(), "the handler documents Piston's 401");
        assert!(r.get("400").is_some());
    }
}
