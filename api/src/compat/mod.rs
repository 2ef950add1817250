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
    response::{IntoResponse, Response},
};
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

/// Which door's error shape an [`Error`] is answered in: Judge0's
/// `{"error": "…"}` (422: `{"field": ["problem"]}`) or Piston's
/// `{"message": "…"}`. Status and headers (`Retry-After`) stay the native ones.
pub enum DoorError {
    Judge0(Error),
    Piston(Error),
}

impl IntoResponse for DoorError {
    fn into_response(self) -> Response {
        let (error, judge0) = match self {
            DoorError::Judge0(e) => (e, true),
            DoorError::Piston(e) => (e, false),
        };
        let fields = match &error {
            Error::Unprocessable { fields, .. } => Some(fields.clone()),
            _ => None,
        };
        let message = error.to_string();
        let native = error.into_response();
        let status = native.status();
        let message = if status.is_server_error() && status.as_u16() != 503 {
            "internal server error".to_owned()
        } else {
            message
        };
        let body = match (judge0, fields) {
            (true, Some(fields)) => serde_json::to_value(
                fields
                    .into_iter()
                    .map(|(field, problem)| (field, vec![problem]))
                    .collect::<BTreeMap<_, _>>(),
            ),
            (true, None) => serde_json::to_value(Judge0Message { error: message }),
            (false, Some(fields)) => serde_json::to_value(PistonMessage {
                message: fields
                    .into_iter()
                    .map(|(field, problem)| format!("{field} {problem}"))
                    .collect::<Vec<_>>()
                    .join("; "),
            }),
            (false, None) => serde_json::to_value(PistonMessage { message }),
        }
        .unwrap_or_default();
        let (mut parts, _) = native.into_parts();
        parts.headers.remove(axum::http::header::CONTENT_LENGTH);
        let replaced = Json(body).into_response();
        let (_, new_body) = replaced.into_parts();
        Response::from_parts(parts, new_body)
    }
}

/// Judge0's error body.
#[derive(serde::Serialize, utoipa::ToSchema)]
pub struct Judge0Message {
    pub error: String,
}

/// Piston's error body.
#[derive(serde::Serialize, utoipa::ToSchema)]
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
