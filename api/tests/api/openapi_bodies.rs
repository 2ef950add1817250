//! The OpenAPI document tells what each success answers: every 2xx body is a
//! named type (a `$ref`, or a composition of them such as
//! `Success<Page<…>>`'s `allOf`), never a bare `{"type": "object"}` that
//! says nothing about the fields.

use serde_json::Value;

use crate::helpers::{json_body, spawn_app};

/// Operations whose 2xx bodies may still be bare objects: the Judge0
/// compatibility routes, owned by `compat/` (their submissions' fields are
/// chosen by the `fields` query parameter). Nothing else may join this list.
const BARE_ALLOWED: &[(&str, &str)] = &[
    ("post", "/judge0/submissions"),
    ("get", "/judge0/submissions/{token}"),
    ("post", "/judge0/submissions/batch"),
    ("get", "/judge0/submissions/batch"),
    ("get", "/judge0/statuses"),
];

/// How deep `$ref`s and compositions are followed before giving up (a
/// recursive schema is not bare: it names a type).
const MAX_DEPTH: usize = 8;

/// Whether `schema` leaves the body undescribed: an object without
/// properties, or no schema at all. `$ref`s are resolved in `doc`.
fn is_bare(doc: &Value, schema: &Value, depth: usize) -> bool {
    if depth > MAX_DEPTH {
        return false;
    }
    if let Some(reference) = schema["$ref"].as_str() {
        let name = reference
            .strip_prefix("#/components/schemas/")
            .unwrap_or_else(|| panic!("a reference outside the components: {reference}"));
        let target = &doc["components"]["schemas"][name];
        assert!(!target.is_null(), "`{reference}` is not in the document");
        return is_bare(doc, target, depth + 1);
    }
    // `allOf` describes the body if any part does; `oneOf`/`anyOf` only if
    // every alternative does.
    if let Some(parts) = schema["allOf"].as_array() {
        return parts.iter().all(|part| is_bare(doc, part, depth + 1));
    }
    for key in ["oneOf", "anyOf"] {
        if let Some(alternatives) = schema[key].as_array() {
            return alternatives.is_empty()
                || alternatives.iter().any(|alt| is_bare(doc, alt, depth + 1));
        }
    }
    let has = |key: &str| schema.get(key).is_some_and(|v| !v.is_null());
    let typed_other_than_object = match &schema["type"] {
        Value::String(t) => t != "object",
        Value::Array(types) => types.iter().any(|t| t != "object" && t != "null"),
        _ => false,
    };
    !(typed_other_than_object
        || has("properties")
        || has("additionalProperties")
        || has("items")
        || has("enum"))
}

/// `(method path status)` of every 2xx answer whose body is bare.
fn bare_success_bodies(doc: &Value) -> Vec<String> {
    let mut bare = Vec::new();
    let paths = doc["paths"].as_object().expect("the document has paths");
    for (path, item) in paths {
        let Some(item) = item.as_object() else {
            continue;
        };
        for (method, operation) in item {
            if BARE_ALLOWED.contains(&(method.as_str(), path.as_str())) {
                continue;
            }
            let Some(responses) = operation["responses"].as_object() else {
                continue;
            };
            for (status, response) in responses {
                if !status.starts_with('2') {
                    continue;
                }
                let Some(content) = response["content"].as_object() else {
                    continue; // no body (e.g. 204)
                };
                // JSON bodies: the text pages (`/metrics`, `/admin`) have no schema.
                let json = content.iter().filter(|(media, _)| {
                    media.starts_with("application/") && media.ends_with("json")
                });
                for (media, body) in json {
                    if is_bare(doc, &body["schema"], 0) {
                        bare.push(format!("{method} {path} {status} ({media})"));
                    }
                }
            }
        }
    }
    bare
}

#[test]
fn the_check_tells_bare_objects_from_described_ones() {
    let doc = serde_json::json!({
        "components": { "schemas": {
            "Bare": { "type": "object" },
            "Named": { "type": "object", "properties": { "id": { "type": "string" } } },
        }},
        "paths": { "/x": {
            "get": { "responses": {
                "200": { "content": { "application/json": { "schema": { "type": "object" } } } },
                "201": { "content": { "application/json": { "schema": { "$ref": "#/components/schemas/Bare" } } } },
                "202": { "content": { "application/json": { "schema": { "allOf": [
                    { "$ref": "#/components/schemas/Named" },
                    { "type": "object", "properties": { "success": { "type": "boolean" } } }
                ] } } } },
                "203": { "content": { "application/json": { "schema": { "oneOf": [
                    { "$ref": "#/components/schemas/Named" }, { "type": "object" }
                ] } } } },
                "204": { "description": "no body" },
                "400": { "content": { "application/json": { "schema": { "type": "object" } } } },
            }},
        }},
    });
    assert_eq!(
        bare_success_bodies(&doc),
        [
            "get /x 200 (application/json)",
            "get /x 201 (application/json)",
            "get /x 203 (application/json)",
        ]
    );
}

#[tokio::test]
async fn every_success_body_is_documented_with_its_fields() {
    let app = spawn_app().await;
    let response = app.get("/api/openapi.json").await;
    assert_eq!(response.status().as_u16(), 200);
    let doc = json_body(response).await;
    let bare = bare_success_bodies(&doc);
    assert!(
        bare.is_empty(),
        "2xx bodies documented as a bare object (name the body's type in `#[utoipa::path]`):\n{}",
        bare.join("\n")
    );
}
