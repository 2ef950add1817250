//! Compatibility doors: the HTTP APIs of Judge0 CE 1.13.1 (under `/judge0`)
//! and Piston v2 (under `/piston/{token}/api/v2`), so programs written for
//! those engines work by changing their base URL.
//!
//! Both are translations onto the native run pipeline: a submission or an
//! execute request becomes one `runs` row (owned by the token's user, in
//! their history, counted by the quotas and metrics, executed by the
//! workers in the sandbox), and the answer is that run read back in the
//! other engine's shape. Nothing here executes code.
//!
//! - [`judge0`]: submissions (single, `wait`, batch), with
//!   [`judge0_input`] checking a submission and turning it into a run and
//!   [`judge0_view`] turning a run into a Judge0 submission (status ids,
//!   times, memory, base64, fields); [`judge0_info`]: languages, statuses,
//!   `config_info`, `about`, `workers`.
//! - [`piston`]: `runtimes` and `execute`.
//! - [`callbacks`]: Judge0's `callback_url`, sent once per run from whichever
//!   replica claims it, with the SSRF checks of [`ssrf`].
//!
//! Quotas: these clients send batches (the Judge0 SDK sends 20 at once and
//! raises on any error), so a user may have `RUN_MAX_BACKLOG_PER_USER`
//! unfinished runs through these doors instead of
//! `RUN_MAX_CONCURRENT_PER_USER`; the workers still execute at most
//! `WORKER_MAX_RUNNING_PER_USER` of one user's runs at once, in the usual
//! fair order, and the rest wait queued. The per-minute quota counts every
//! submission of a batch.

pub mod callbacks;
pub mod judge0;
pub mod judge0_info;
pub mod judge0_input;
pub mod judge0_view;
pub mod piston;
pub mod ssrf;

use std::collections::BTreeMap;

use axum::{
    Json,
    http::{StatusCode, header},
    response::{IntoResponse, Response},
};
use serde::Serialize;
use utoipa_axum::router::OpenApiRouter;

use crate::{error::Error, runs::Fleet, startup::ApiContext};

pub fn router() -> OpenApiRouter<ApiContext> {
    OpenApiRouter::new()
        .merge(judge0::router())
        .merge(piston::router())
}

/// One of our languages as the other engines name it.
pub struct Language {
    /// Our language id (`GET /api/languages`).
    pub id: &'static str,
    /// Judge0 CE 1.13.1's ids for it; the first is the one listed first.
    /// Older compiler versions' ids map to the same language (clients pick
    /// ids by name, e.g. the Python SDK's `CPP` alias is 52).
    pub judge0_ids: &'static [u32],
    /// Judge0's name before the version, and the version's label.
    pub judge0_name: &'static str,
    pub version_label: &'static str,
    pub source_file: &'static str,
    pub compile_cmd: Option<&'static str>,
    pub run_cmd: &'static str,
    /// Piston's language name and aliases.
    pub piston_name: &'static str,
    pub piston_aliases: &'static [&'static str],
}

/// The languages of the sandbox images (sandbox-images/languages.json).
pub const LANGUAGES: &[Language] = &[
    Language {
        id: "c",
        judge0_ids: &[50, 49, 48],
        judge0_name: "C",
        version_label: "GCC ",
        source_file: "main.c",
        compile_cmd: Some("gcc -O2 -std=gnu17 -pipe -o main main.c -lm"),
        run_cmd: "./main",
        piston_name: "c",
        piston_aliases: &["gcc"],
    },
    Language {
        id: "cpp",
        judge0_ids: &[54, 53, 52],
        judge0_name: "C++",
        version_label: "GCC ",
        source_file: "main.cpp",
        compile_cmd: Some("g++ -O2 -std=gnu++17 -pipe -o main main.cpp"),
        run_cmd: "./main",
        piston_name: "c++",
        piston_aliases: &["cpp", "g++"],
    },
    Language {
        id: "go",
        judge0_ids: &[60],
        judge0_name: "Go",
        version_label: "",
        source_file: "main.go",
        compile_cmd: Some("go build -o main main.go"),
        run_cmd: "./main",
        piston_name: "go",
        piston_aliases: &["go", "golang"],
    },
    Language {
        id: "java",
        judge0_ids: &[62],
        judge0_name: "Java",
        version_label: "OpenJDK ",
        source_file: "Main.java",
        compile_cmd: Some("javac Main.java"),
        run_cmd: "java Main",
        piston_name: "java",
        piston_aliases: &[],
    },
    Language {
        id: "javascript",
        judge0_ids: &[63],
        judge0_name: "JavaScript",
        version_label: "Node.js ",
        source_file: "main.js",
        compile_cmd: None,
        run_cmd: "node main.js",
        piston_name: "javascript",
        piston_aliases: &["node-javascript", "node-js", "javascript", "js"],
    },
    Language {
        id: "python",
        judge0_ids: &[71],
        judge0_name: "Python",
        version_label: "",
        source_file: "main.py",
        compile_cmd: None,
        run_cmd: "python3 main.py",
        piston_name: "python",
        piston_aliases: &["py", "py3", "python3"],
    },
];

impl Language {
    pub fn by_id(id: &str) -> Option<&'static Language> {
        LANGUAGES.iter().find(|l| l.id == id)
    }

    pub fn by_judge0_id(id: u32) -> Option<&'static Language> {
        LANGUAGES.iter().find(|l| l.judge0_ids.contains(&id))
    }

    pub fn by_piston_name(name: &str) -> Option<&'static Language> {
        let name = name.to_ascii_lowercase();
        LANGUAGES
            .iter()
            .find(|l| l.piston_name == name || l.piston_aliases.contains(&name.as_str()))
    }

    /// Judge0's display name with our version: "C++ (GCC 12)".
    pub fn judge0_display(&self, version: &str) -> String {
        format!("{} ({}{version})", self.judge0_name, self.version_label)
    }

    /// The version the fleet runs, if any worker announced the language
    /// recently.
    pub fn version(&self, fleet: &Fleet) -> Option<String> {
        fleet
            .live
            .get(self.id)
            .or_else(|| fleet.recent.get(self.id))
            .map(|info| info.version.clone())
    }
}

/// The door a request came through, which picks its error shape: Judge0's
/// `{"error": "…"}` (422: `{"field": ["problem"]}`) or Piston's
/// `{"message": "…"}`.
#[derive(Clone, Copy)]
pub enum Door {
    Judge0,
    Piston,
}

impl Door {
    /// `e` answered in this door's shape.
    pub fn fail(self, e: impl Into<Error>) -> DoorError {
        DoorError {
            door: self,
            error: e.into(),
        }
    }

    /// A 400 with this door's message.
    pub fn bad_request(self, message: impl Into<String>) -> DoorError {
        self.fail(Error::BadRequest {
            code: "bad_request",
            message: message.into(),
        })
    }
}

/// An [`Error`] answered in its door's shape. Status and headers
/// (`Retry-After`) stay the native ones.
pub struct DoorError {
    door: Door,
    error: Error,
}

impl DoorError {
    /// `e` in Judge0's shape (`.map_err(DoorError::judge0)`).
    pub fn judge0(e: impl Into<Error>) -> Self {
        Door::Judge0.fail(e)
    }

    /// `e` in Piston's shape.
    pub fn piston(e: impl Into<Error>) -> Self {
        Door::Piston.fail(e)
    }

    /// The body this error answers with.
    fn body(&self) -> ErrorShape {
        match self.door {
            Door::Judge0 => ErrorShape::Judge0(Judge0Error::of(&self.error)),
            Door::Piston => ErrorShape::Piston(PistonMessage::of(&self.error)),
        }
    }
}

impl IntoResponse for DoorError {
    fn into_response(self) -> Response {
        let body = self.body();
        // The native response carries the status, `Retry-After` and the log
        // line of a 500; only its body is replaced.
        let (mut parts, _) = self.error.into_response().into_parts();
        parts.headers.remove(header::CONTENT_LENGTH);
        let (_, body) = Json(body).into_response().into_parts();
        Response::from_parts(parts, body)
    }
}

/// What a client is told of an error: its message, except that a 500 says
/// only "internal server error" (its cause is logged).
fn public_message(error: &Error) -> String {
    let status = error.status();
    if status.is_server_error() && status != StatusCode::SERVICE_UNAVAILABLE {
        "internal server error".to_owned()
    } else {
        error.to_string()
    }
}

#[derive(Serialize)]
#[serde(untagged)]
enum ErrorShape {
    Judge0(Judge0Error),
    Piston(PistonMessage),
}

/// A Judge0 error body: `{field: [problem]}` for invalid fields, else
/// `{error}` (also a rejected submission's entry in a batch).
#[derive(Serialize, utoipa::ToSchema)]
#[serde(untagged)]
pub enum Judge0Error {
    Problems(Judge0Problems),
    Message(Judge0Message),
}

impl Judge0Error {
    pub fn of(error: &Error) -> Self {
        match error {
            Error::Unprocessable { fields, .. } => Judge0Error::Problems(Judge0Problems(
                fields
                    .iter()
                    .map(|(field, problem)| (field.clone(), vec![problem.clone()]))
                    .collect(),
            )),
            _ => Judge0Error::Message(Judge0Message {
                error: public_message(error),
            }),
        }
    }
}

impl PistonMessage {
    /// Piston has one message; invalid fields are listed in it.
    fn of(error: &Error) -> Self {
        let message = match error {
            Error::Unprocessable { fields, .. } => fields
                .iter()
                .map(|(field, problem)| format!("{field} {problem}"))
                .collect::<Vec<_>>()
                .join("; "),
            _ => public_message(error),
        };
        PistonMessage { message }
    }
}

/// Judge0's error body.
#[derive(Serialize, utoipa::ToSchema)]
pub struct Judge0Message {
    pub error: String,
}

/// Judge0's 422 body: each invalid field with its problems.
#[derive(Serialize, utoipa::ToSchema)]
pub struct Judge0Problems(pub BTreeMap<String, Vec<String>>);

/// Piston's error body.
#[derive(Serialize, utoipa::ToSchema)]
pub struct PistonMessage {
    pub message: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn judge0_ids_and_piston_names_are_unique() {
        let mut ids: Vec<u32> = LANGUAGES
            .iter()
            .flat_map(|l| l.judge0_ids)
            .copied()
            .collect();
        let count = ids.len();
        ids.sort_unstable();
        ids.dedup();
        assert_eq!(ids.len(), count);
        for language in LANGUAGES {
            assert_eq!(
                Language::by_piston_name(language.piston_name).map(|l| l.id),
                Some(language.id)
            );
            for alias in language.piston_aliases {
                assert_eq!(
                    Language::by_piston_name(alias).map(|l| l.id),
                    Some(language.id)
                );
            }
        }
    }
}
