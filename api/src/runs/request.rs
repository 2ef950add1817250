//! A run request as posted (`POST /api/runs`, and the Judge0 and Piston
//! doors, which build the same [`CreateRun`]) and its validation into a
//! [`NewRun`]: every field checked against the configured limits, all
//! problems answered together as one 422.

use run_contract::input::{RunFile, RunInput, RunTest, valid_file_name};
use serde::Deserialize;
use uuid::Uuid;

use super::admission::Fleet;
use crate::{error::Result, startup::ApiContext, validation::Problems};

/// Extra arguments a run may pass to the program.
pub const MAX_ARGS: usize = 32;
pub const MAX_ARG_CHARS: usize = 256;
/// Files per run.
pub const MAX_FILES: usize = 16;

/// A file as posted (the request's shape; stored as a
/// [`run_contract::input::RunFile`]).
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub(crate) struct FileBody {
    #[serde(default)]
    pub(crate) name: String,
    pub(crate) content: String,
}

impl From<FileBody> for RunFile {
    fn from(file: FileBody) -> Self {
        RunFile {
            name: file.name,
            content: file.content,
        }
    }
}

/// A test as posted (the request's shape; stored as a
/// [`run_contract::input::RunTest`]).
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub(crate) struct TestBody {
    #[serde(default)]
    pub(crate) stdin: String,
    pub(crate) expected_output: String,
}

impl From<TestBody> for RunTest {
    fn from(test: TestBody) -> Self {
        RunTest {
            stdin: test.stdin,
            expected_output: test.expected_output,
        }
    }
}

#[derive(Deserialize, Default, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub(crate) struct LimitsBody {
    pub(crate) time_ms: Option<u32>,
    pub(crate) memory_mb: Option<u32>,
}

/// Exactly one of `source` and `files`; with `sessionId` and neither, the
/// session's shared document is run.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub(crate) struct CreateRun {
    #[serde(default)]
    pub(crate) language: String,
    pub(crate) source: Option<String>,
    pub(crate) files: Option<Vec<FileBody>>,
    #[serde(default)]
    pub(crate) stdin: String,
    #[serde(default)]
    pub(crate) args: Vec<String>,
    pub(crate) session_id: Option<Uuid>,
    #[serde(default)]
    pub(crate) tests: Vec<TestBody>,
    #[serde(default)]
    pub(crate) limits: LimitsBody,
}

/// A validated run, ready to store.
pub(crate) struct NewRun {
    pub(crate) language: String,
    /// Its files, arguments and tests (the row's `jsonb` columns).
    pub(super) input: RunInput,
    pub(super) stdin: Vec<u8>,
    pub(super) time_ms: u32,
    pub(super) memory_mb: u32,
    /// The Judge0 submission's parameters (Judge0 door only).
    pub(crate) judge0: Option<serde_json::Value>,
    /// Where the result is PUT when the run finishes (Judge0 door only).
    pub(crate) callback_url: Option<String>,
}

pub(crate) fn validate(ctx: &ApiContext, req: CreateRun, fleet: &Fleet) -> Result<NewRun> {
    let limits = &ctx.config.runs;
    let mut problems = Problems::default();
    fleet.admit(&req.language, &mut problems)?;
    let files: Vec<FileBody> = match (req.source, req.files) {
        (Some(source), None) => vec![FileBody {
            name: String::new(),
            content: source,
        }],
        (None, Some(files)) if !files.is_empty() => files,
        _ => {
            problems.add(
                "source",
                "give exactly one of `source` and a non-empty `files`",
            );
            Vec::new()
        }
    };
    if files.len() > MAX_FILES {
        problems.add("files", format!("at most {MAX_FILES} files"));
    }
    for file in &files {
        if !file.name.is_empty() && !valid_file_name(&file.name) {
            problems.add(
                "files",
                format!(
                    "`{}` is not a plain file name (letters, digits, . _ -)",
                    file.name
                ),
            );
        }
    }
    let source_bytes: usize = files.iter().map(|f| f.content.len()).sum();
    if source_bytes > limits.max_source_bytes {
        problems.add(
            "source",
            format!(
                "is {source_bytes} bytes; the limit is {}",
                limits.max_source_bytes
            ),
        );
    }
    if req.stdin.len() > limits.max_stdin_bytes {
        problems.add(
            "stdin",
            format!(
                "is {} bytes; the limit is {}",
                req.stdin.len(),
                limits.max_stdin_bytes
            ),
        );
    }
    if req.args.len() > MAX_ARGS || req.args.iter().any(|a| a.chars().count() > MAX_ARG_CHARS) {
        problems.add(
            "args",
            format!("at most {MAX_ARGS} arguments of at most {MAX_ARG_CHARS} characters"),
        );
    }
    if req.tests.len() > limits.max_tests {
        problems.add("tests", format!("at most {} tests", limits.max_tests));
    }
    let tests_bytes: usize = req
        .tests
        .iter()
        .map(|t| t.stdin.len() + t.expected_output.len())
        .sum();
    if tests_bytes > limits.max_tests_bytes
        || req
            .tests
            .iter()
            .any(|t| t.stdin.len() > limits.max_stdin_bytes)
    {
        problems.add(
            "tests",
            format!(
                "each test's stdin is limited to {} bytes and all tests together to {}",
                limits.max_stdin_bytes, limits.max_tests_bytes
            ),
        );
    }
    let time_ms = req.limits.time_ms.unwrap_or(limits.default_time_ms);
    if !(100..=limits.max_time_ms).contains(&time_ms) {
        problems.add(
            "limits.timeMs",
            format!("must be between 100 and {}", limits.max_time_ms),
        );
    }
    let memory_mb = req.limits.memory_mb.unwrap_or(limits.default_memory_mb);
    if !(32..=limits.max_memory_mb).contains(&memory_mb) {
        problems.add(
            "limits.memoryMb",
            format!("must be between 32 and {}", limits.max_memory_mb),
        );
    }
    problems.into_result()?;
    Ok(NewRun {
        language: req.language,
        input: RunInput {
            files: files.into_iter().map(RunFile::from).collect(),
            args: req.args,
            tests: req.tests.into_iter().map(RunTest::from).collect(),
        },
        stdin: req.stdin.into_bytes(),
        time_ms,
        memory_mb,
        judge0: None,
        callback_url: None,
    })
}
