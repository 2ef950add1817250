//! A run as a Judge0 CE 1.13.1 submission: its status id (runtime errors
//! split by signal), `expected_output` compared the way Judge0 compares it,
//! times in seconds as strings, memory in KB, the requested `fields`, and
//! base64 when asked.

use base64::{Engine as _, engine::general_purpose::STANDARD};
use chrono::{DateTime, Utc};
use run_contract::{RunResult, RunStatus, Verdict, input};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// Judge0's statuses, by id (its `app/enumerations/status.rb`).
pub const STATUSES: &[(u8, &str)] = &[
    (1, "In Queue"),
    (2, "Processing"),
    (3, "Accepted"),
    (4, "Wrong Answer"),
    (5, "Time Limit Exceeded"),
    (6, "Compilation Error"),
    (7, "Runtime Error (SIGSEGV)"),
    (8, "Runtime Error (SIGXFSZ)"),
    (9, "Runtime Error (SIGFPE)"),
    (10, "Runtime Error (SIGABRT)"),
    (11, "Runtime Error (NZEC)"),
    (12, "Runtime Error (Other)"),
    (13, "Internal Error"),
    (14, "Exec Format Error"),
];

/// The fields a submission has (`fields=*`), in Judge0's order.
pub const ALL_FIELDS: &[&str] = &[
    "source_code",
    "language_id",
    "stdin",
    "expected_output",
    "stdout",
    "status_id",
    "created_at",
    "finished_at",
    "time",
    "memory",
    "stderr",
    "token",
    "number_of_runs",
    "cpu_time_limit",
    "cpu_extra_time",
    "wall_time_limit",
    "memory_limit",
    "stack_limit",
    "max_processes_and_or_threads",
    "enable_per_process_and_thread_time_limit",
    "enable_per_process_and_thread_memory_limit",
    "max_file_size",
    "compile_output",
    "exit_code",
    "exit_signal",
    "message",
    "wall_time",
    "compiler_options",
    "command_line_arguments",
    "redirect_stderr_to_stdout",
    "callback_url",
    "additional_files",
    "enable_network",
    "status",
    "language",
];

/// The fields answered when none are asked for.
pub const DEFAULT_FIELDS: &[&str] = &[
    "token",
    "time",
    "memory",
    "stdout",
    "stderr",
    "compile_output",
    "message",
    "status",
];

/// A submission's Judge0 parameters as accepted (the `runs.judge0` column).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Params {
    pub language_id: u32,
    pub number_of_runs: u32,
    pub cpu_time_limit: f64,
    pub cpu_extra_time: f64,
    pub wall_time_limit: f64,
    pub memory_limit: u32,
    pub stack_limit: u32,
    pub max_processes_and_or_threads: u32,
    pub enable_per_process_and_thread_time_limit: bool,
    pub enable_per_process_and_thread_memory_limit: bool,
    pub max_file_size: u32,
    pub redirect_stderr_to_stdout: bool,
    pub enable_network: bool,
    pub command_line_arguments: Option<String>,
    pub has_expected_output: bool,
}

/// The columns of a `runs` row a submission is made of.
pub struct SubmissionRow {
    pub id: Uuid,
    pub status: String,
    pub result: Option<serde_json::Value>,
    pub files: serde_json::Value,
    pub stdin: Vec<u8>,
    pub tests: serde_json::Value,
    pub judge0: Option<serde_json::Value>,
    pub callback_url: Option<String>,
    pub language: String,
    pub created_at: DateTime<Utc>,
    pub finished_at: Option<DateTime<Utc>>,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct StatusBody {
    pub id: u8,
    pub description: &'static str,
}

impl StatusBody {
    pub fn of(id: u8) -> StatusBody {
        let description = STATUSES
            .iter()
            .find(|(i, _)| *i == id)
            .map_or("Internal Error", |(_, d)| d);
        StatusBody { id, description }
    }
}

#[derive(Serialize)]
struct LanguageRef {
    id: u32,
    name: String,
}

/// Every field of a submission; [`render`] keeps the requested ones.
#[derive(Serialize)]
struct Submission {
    source_code: Option<String>,
    language_id: u32,
    stdin: Option<String>,
    expected_output: Option<String>,
    stdout: Option<String>,
    status_id: u8,
    created_at: String,
    finished_at: Option<String>,
    time: Option<String>,
    memory: Option<u64>,
    stderr: Option<String>,
    token: Uuid,
    number_of_runs: u32,
    cpu_time_limit: String,
    cpu_extra_time: String,
    wall_time_limit: String,
    memory_limit: u32,
    stack_limit: u32,
    max_processes_and_or_threads: u32,
    enable_per_process_and_thread_time_limit: bool,
    enable_per_process_and_thread_memory_limit: bool,
    max_file_size: u32,
    compile_output: Option<String>,
    exit_code: Option<i32>,
    exit_signal: Option<i32>,
    message: Option<String>,
    wall_time: Option<String>,
    compiler_options: Option<String>,
    command_line_arguments: Option<String>,
    redirect_stderr_to_stdout: bool,
    callback_url: Option<String>,
    additional_files: Option<String>,
    enable_network: bool,
    status: StatusBody,
    language: LanguageRef,
}

/// Why a submission cannot be shown as text.
pub struct NotUtf8;

/// Text or bytes, encoded the way the request asked.
fn encode(bytes: &[u8], base64: bool) -> Result<String, NotUtf8> {
    if base64 {
        Ok(STANDARD.encode(bytes))
    } else {
        String::from_utf8(bytes.to_vec()).map_err(|_| NotUtf8)
    }
}

/// Judge0 stores empty outputs as null.
fn non_empty(bytes: Vec<u8>) -> Option<Vec<u8>> {
    (!bytes.is_empty()).then_some(bytes)
}

/// Judge0's comparison: each line right-trimmed, trailing whitespace and
/// newlines ignored.
pub fn judge0_strip(text: &str) -> String {
    text.split('\n')
        .map(str::trim_end)
        .collect::<Vec<_>>()
        .join("\n")
        .trim_end()
        .to_owned()
}

fn signal_number(name: &str) -> i32 {
    match name.trim_start_matches("SIG") {
        "HUP" => 1,
        "INT" => 2,
        "QUIT" => 3,
        "ILL" => 4,
        "TRAP" => 5,
        "ABRT" => 6,
        "BUS" => 7,
        "FPE" => 8,
        "KILL" => 9,
        "USR1" => 10,
        "SEGV" => 11,
        "USR2" => 12,
        "PIPE" => 13,
        "ALRM" => 14,
        "TERM" => 15,
        "XCPU" => 24,
        "XFSZ" => 25,
        _ => 0,
    }
}

/// Status id, message and exit signal of a finished run, as Judge0 decides them.
pub fn judge0_status(
    result: &RunResult,
    expected: Option<&str>,
) -> (u8, Option<String>, Option<i32>) {
    match result.verdict {
        Verdict::Accepted | Verdict::WrongAnswer => match expected {
            Some(expected) if judge0_strip(expected) != judge0_strip(&result.stdout) => {
                (4, None, None)
            }
            _ => (3, None, None),
        },
        Verdict::TimeLimitExceeded => (5, Some("Time limit exceeded".into()), None),
        Verdict::CompileError => (6, None, None),
        Verdict::RuntimeError => match result.signal.as_deref().map(signal_number) {
            Some(signal) => {
                let id = match signal {
                    11 => 7,
                    25 => 8,
                    8 => 9,
                    6 => 10,
                    _ => 12,
                };
                (
                    id,
                    Some(format!("Caught fatal signal {signal}")),
                    Some(signal),
                )
            }
            None => (
                11,
                Some(format!(
                    "Exited with error status {}",
                    result.exit_code.unwrap_or(1)
                )),
                None,
            ),
        },
        // A memory-limit kill is SIGKILL by the cgroup: "Runtime Error (Other)".
        Verdict::MemoryLimitExceeded => (12, Some("Caught fatal signal 9".into()), Some(9)),
        // Output over the limit: the file-size signal.
        Verdict::OutputLimitExceeded => (8, Some("Caught fatal signal 25".into()), Some(25)),
        Verdict::InternalError => (13, Some(result.stderr.clone()), None),
    }
}

fn seconds(ms: u64) -> String {
    format!("{:.3}", ms as f64 / 1000.0)
}

fn timestamp(at: DateTime<Utc>) -> String {
    at.format("%Y-%m-%dT%H:%M:%S%.3fZ").to_string()
}

/// The submission, restricted to `fields` (already validated), encoded as
/// asked. `Err(NotUtf8)` when a text field is not UTF-8 and base64 was not
/// asked for (Judge0 answers that with an error).
pub fn render(
    row: SubmissionRow,
    language_name: String,
    fallback_language_id: u32,
    fields: &[&str],
    base64: bool,
) -> Result<serde_json::Map<String, serde_json::Value>, NotUtf8> {
    let params: Option<Params> = row.judge0.and_then(|p| serde_json::from_value(p).ok());
    let params = params.unwrap_or(Params {
        language_id: fallback_language_id,
        number_of_runs: 1,
        cpu_time_limit: 0.0,
        cpu_extra_time: 0.0,
        wall_time_limit: 0.0,
        memory_limit: 0,
        stack_limit: 0,
        max_processes_and_or_threads: 0,
        enable_per_process_and_thread_time_limit: false,
        enable_per_process_and_thread_memory_limit: false,
        max_file_size: 0,
        redirect_stderr_to_stdout: false,
        enable_network: false,
        command_line_arguments: None,
        has_expected_output: false,
    });
    // A stored input this version cannot read shows as absent (the worker
    // ends such a run as `internal_error`).
    let source: Option<String> = input::read_files(row.files)
        .ok()
        .and_then(|files| files.into_iter().next())
        .map(|f| f.content);
    let expected: Option<String> = if params.has_expected_output {
        input::read_tests(row.tests)
            .ok()
            .and_then(|tests| tests.into_iter().next())
            .map(|t| t.expected_output)
    } else {
        None
    };
    let status = RunStatus::parse(&row.status);
    let result: Option<RunResult> = match status {
        RunStatus::Finished => row.result.and_then(|r| serde_json::from_value(r).ok()),
        _ => None,
    };
    let text = |s: Option<String>| -> Result<Option<String>, NotUtf8> {
        s.map(|s| encode(s.as_bytes(), base64)).transpose()
    };

    let mut submission = Submission {
        source_code: text(source)?,
        language_id: params.language_id,
        stdin: non_empty(row.stdin)
            .map(|b| encode(&b, base64))
            .transpose()?,
        expected_output: text(expected.clone())?,
        stdout: None,
        status_id: match status {
            RunStatus::Queued => 1,
            _ => 2,
        },
        created_at: timestamp(row.created_at),
        finished_at: row.finished_at.map(timestamp),
        time: None,
        memory: None,
        stderr: None,
        token: row.id,
        number_of_runs: params.number_of_runs,
        cpu_time_limit: format!("{:.1}", params.cpu_time_limit),
        cpu_extra_time: format!("{:.1}", params.cpu_extra_time),
        wall_time_limit: format!("{:.1}", params.wall_time_limit),
        memory_limit: params.memory_limit,
        stack_limit: params.stack_limit,
        max_processes_and_or_threads: params.max_processes_and_or_threads,
        enable_per_process_and_thread_time_limit: params.enable_per_process_and_thread_time_limit,
        enable_per_process_and_thread_memory_limit: params
            .enable_per_process_and_thread_memory_limit,
        max_file_size: params.max_file_size,
        compile_output: None,
        exit_code: None,
        exit_signal: None,
        message: None,
        wall_time: None,
        compiler_options: None,
        command_line_arguments: params.command_line_arguments.clone(),
        redirect_stderr_to_stdout: params.redirect_stderr_to_stdout,
        callback_url: row.callback_url,
        additional_files: None,
        enable_network: params.enable_network,
        status: StatusBody::of(1),
        language: LanguageRef {
            id: params.language_id,
            name: language_name,
        },
    };
    if let Some(result) = result {
        let (id, message, signal) = judge0_status(&result, expected.as_deref());
        submission.status_id = id;
        submission.message = message.map(|m| encode(m.as_bytes(), base64)).transpose()?;
        submission.exit_signal = signal;
        let mut stdout = match &result.stdout_base64 {
            Some(raw) => STANDARD.decode(raw).unwrap_or_default(),
            None => result.stdout.into_bytes(),
        };
        let mut stderr = result.stderr.into_bytes();
        if params.redirect_stderr_to_stdout {
            stdout.append(&mut stderr);
        }
        if id != 13 {
            submission.stdout = non_empty(stdout).map(|b| encode(&b, base64)).transpose()?;
            submission.stderr = non_empty(stderr).map(|b| encode(&b, base64)).transpose()?;
        }
        submission.compile_output = result
            .compile_output
            .filter(|c| !c.is_empty())
            .map(|c| encode(c.as_bytes(), base64))
            .transpose()?;
        if !matches!(
            result.verdict,
            Verdict::CompileError | Verdict::InternalError
        ) {
            submission.time = Some(seconds(result.cpu_ms));
            submission.wall_time = Some(seconds(result.time_ms));
            submission.memory = Some(result.memory_kb);
            submission.exit_code = Some(result.exit_code.unwrap_or(0));
        }
    }
    submission.status = StatusBody::of(submission.status_id);

    let serde_json::Value::Object(all) = serde_json::to_value(&submission).unwrap_or_default()
    else {
        return Ok(serde_json::Map::new());
    };
    Ok(all
        .into_iter()
        .filter(|(key, _)| fields.contains(&key.as_str()))
        .collect())
}

/// Parses `fields` (comma-separated, `*` for all; empty for the default);
/// `Err` lists the unknown ones.
pub fn parse_fields(raw: Option<&str>) -> Result<Vec<&'static str>, Vec<String>> {
    let requested: Vec<&str> = raw
        .unwrap_or_default()
        .split(',')
        .map(str::trim)
        .filter(|f| !f.is_empty())
        .collect();
    let invalid: Vec<String> = requested
        .iter()
        .filter(|f| **f != "*" && !ALL_FIELDS.contains(f))
        .map(|f| (*f).to_owned())
        .collect();
    if !invalid.is_empty() {
        return Err(invalid);
    }
    if requested.contains(&"*") {
        return Ok(ALL_FIELDS.to_vec());
    }
    let chosen: Vec<&'static str> = ALL_FIELDS
        .iter()
        .copied()
        .filter(|f| requested.contains(f))
        .collect();
    Ok(if chosen.is_empty() {
        DEFAULT_FIELDS.to_vec()
    } else {
        chosen
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expected_output_is_compared_per_line_right_trimmed() {
        assert_eq!(judge0_strip("a  \nb\t\n\n\n"), "a\nb");
        assert_eq!(judge0_strip("a\r\nb"), "a\nb");
        assert_ne!(judge0_strip(" a"), judge0_strip("a"));
    }

    #[test]
    fn fields_default_star_and_unknown() {
        assert_eq!(parse_fields(None).ok(), Some(DEFAULT_FIELDS.to_vec()));
        assert_eq!(parse_fields(Some("*")).ok(), Some(ALL_FIELDS.to_vec()));
        assert_eq!(
            parse_fields(Some("stdout,token")).ok(),
            Some(vec!["stdout", "token"])
        );
        assert_eq!(
            parse_fields(Some("stdout,nope")).err(),
            Some(vec!["nope".to_owned()])
        );
    }
}
