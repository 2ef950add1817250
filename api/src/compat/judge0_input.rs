//! A Judge0 submission as clients send it, checked and turned into a run
//! of ours: Judge0's field names, ranges and messages ("can't be blank",
//! "… is not allowed"), numbers and flags sent as JSON or as strings, base64
//! when asked; limits mapped onto our one wall-time limit (the smaller of
//! `cpu_time_limit` and `wall_time_limit`) and whole megabytes.

use base64::{Engine as _, engine::general_purpose::STANDARD};
use serde::Deserialize;

use super::{Language, judge0_view::Params};
use crate::{
    error::Error,
    runs::{self, CreateRun, Fleet, LimitsBody, TestBody},
    startup::ApiContext,
    validation::Problems,
};

/// Judge0's limits we accept and leave to the sandbox's fixed ones.
pub const STACK_LIMIT_KB: u32 = 64_000;
pub const MAX_STACK_LIMIT_KB: u32 = 128_000;
pub const MAX_PROCESSES: u32 = 60;
pub const MAX_MAX_PROCESSES: u32 = 120;
pub const MAX_FILE_SIZE_KB: u32 = 1024;
pub const MAX_MAX_FILE_SIZE_KB: u32 = 4096;
pub const CPU_EXTRA_TIME_S: f64 = 1.0;
pub const MAX_CPU_EXTRA_TIME_S: f64 = 5.0;
/// Longest `command_line_arguments`, as Judge0.
const MAX_COMMAND_LINE_CHARS: usize = 512;

/// A number sent as a number or a string (Judge0 clients do both).
#[derive(Deserialize, Clone, utoipa::ToSchema)]
#[serde(untagged)]
enum Number {
    Number(f64),
    Text(String),
}

impl Number {
    fn value(&self) -> Option<f64> {
        match self {
            Number::Number(n) => Some(*n),
            Number::Text(s) => s.trim().parse().ok(),
        }
    }
}

/// A flag sent as a boolean or a string.
#[derive(Deserialize, Clone, utoipa::ToSchema)]
#[serde(untagged)]
enum Flag {
    Bool(bool),
    Text(String),
}

impl Flag {
    fn value(&self) -> bool {
        match self {
            Flag::Bool(b) => *b,
            Flag::Text(s) => s == "true" || s == "1",
        }
    }
}

/// A Judge0 submission as clients send it.
#[derive(Deserialize, Clone, Default, utoipa::ToSchema)]
pub struct SubmissionBody {
    source_code: Option<String>,
    language_id: Option<Number>,
    compiler_options: Option<String>,
    command_line_arguments: Option<String>,
    number_of_runs: Option<Number>,
    stdin: Option<String>,
    expected_output: Option<String>,
    cpu_time_limit: Option<Number>,
    cpu_extra_time: Option<Number>,
    wall_time_limit: Option<Number>,
    memory_limit: Option<Number>,
    stack_limit: Option<Number>,
    max_processes_and_or_threads: Option<Number>,
    enable_per_process_and_thread_time_limit: Option<Flag>,
    enable_per_process_and_thread_memory_limit: Option<Flag>,
    max_file_size: Option<Number>,
    redirect_stderr_to_stdout: Option<Flag>,
    callback_url: Option<String>,
    additional_files: Option<String>,
    enable_network: Option<Flag>,
}

/// The limits `config_info` announces, from our run limits.
pub struct Limits {
    pub cpu_time_limit: f64,
    pub max_cpu_time_limit: f64,
    pub wall_time_limit: f64,
    pub max_wall_time_limit: f64,
    pub memory_limit: u32,
    pub max_memory_limit: u32,
}

pub fn limits(ctx: &ApiContext) -> Limits {
    let runs = &ctx.config.runs;
    let max = f64::from(runs.max_time_ms) / 1000.0;
    Limits {
        cpu_time_limit: f64::from(runs.default_time_ms) / 1000.0,
        max_cpu_time_limit: max,
        wall_time_limit: (f64::from(runs.default_time_ms) / 500.0).min(max),
        max_wall_time_limit: max,
        memory_limit: runs.default_memory_mb * 1024,
        max_memory_limit: runs.max_memory_mb * 1024,
    }
}

/// Decodes a text field (base64 when asked); `None` when absent.
fn field_bytes(
    value: Option<&String>,
    base64: bool,
    name: &str,
    problems: &mut Problems,
) -> Option<Vec<u8>> {
    let value = value?;
    if !base64 {
        return Some(value.clone().into_bytes());
    }
    let compact: String = value.chars().filter(|c| !c.is_ascii_whitespace()).collect();
    match STANDARD.decode(compact) {
        Ok(bytes) => Some(bytes),
        Err(_) => {
            problems.add(name, "is not valid base64");
            None
        }
    }
}

/// A text field decoded (base64 when asked) that must be UTF-8.
fn field_text(
    value: Option<&String>,
    base64: bool,
    name: &str,
    problems: &mut Problems,
) -> Option<String> {
    let bytes = field_bytes(value, base64, name, problems)?;
    match String::from_utf8(bytes) {
        Ok(text) => Some(text),
        Err(_) => {
            problems.add(name, "is not UTF-8 text");
            None
        }
    }
}

/// A Judge0 submission → a validated run of ours (422 with Judge0's field
/// names when it is not acceptable).
pub(crate) async fn to_run(
    ctx: &ApiContext,
    fleet: &Fleet,
    body: SubmissionBody,
    base64: bool,
) -> std::result::Result<runs::NewRun, Error> {
    let limits = limits(ctx);
    let mut problems = Problems::default();
    let source = field_text(
        body.source_code.as_ref(),
        base64,
        "source_code",
        &mut problems,
    )
    .filter(|s| !s.is_empty());
    if source.is_none() {
        problems.add("source_code", "can't be blank");
    }
    let stdin =
        field_bytes(body.stdin.as_ref(), base64, "stdin", &mut problems).unwrap_or_default();
    let expected = field_text(
        body.expected_output.as_ref(),
        base64,
        "expected_output",
        &mut problems,
    );
    let language_id = body.language_id.as_ref().and_then(Number::value);
    let language = match language_id {
        None => {
            problems.add("language_id", "can't be blank");
            None
        }
        Some(id) => {
            let found = Language::by_judge0_id(id as u32).filter(|_| id.fract() == 0.0 && id > 0.0);
            match found {
                Some(l) if l.version(fleet).is_some() => Some(l),
                _ => {
                    problems.add(
                        "language_id",
                        format!("language with id {id} doesn't exist"),
                    );
                    None
                }
            }
        }
    };
    let mut number =
        |value: &Option<Number>, name: &str, min: f64, max: f64, default: f64| -> f64 {
            match value.as_ref().map(Number::value) {
                None => default,
                Some(Some(n)) if (min..=max).contains(&n) => n,
                Some(_) => {
                    problems.add(
                        name,
                        format!(
                            "must be greater than or equal to {min} and less than or equal to {max}"
                        ),
                    );
                    default
                }
            }
        };
    let number_of_runs = number(&body.number_of_runs, "number_of_runs", 1.0, 1.0, 1.0);
    let cpu_time_limit = number(
        &body.cpu_time_limit,
        "cpu_time_limit",
        0.0,
        limits.max_cpu_time_limit,
        limits.cpu_time_limit,
    );
    let cpu_extra_time = number(
        &body.cpu_extra_time,
        "cpu_extra_time",
        0.0,
        MAX_CPU_EXTRA_TIME_S,
        CPU_EXTRA_TIME_S,
    );
    let wall_time_limit = number(
        &body.wall_time_limit,
        "wall_time_limit",
        1.0,
        limits.max_wall_time_limit,
        limits.wall_time_limit,
    );
    let memory_limit = number(
        &body.memory_limit,
        "memory_limit",
        2048.0,
        f64::from(limits.max_memory_limit),
        f64::from(limits.memory_limit),
    );
    let stack_limit = number(
        &body.stack_limit,
        "stack_limit",
        0.0,
        f64::from(MAX_STACK_LIMIT_KB),
        f64::from(STACK_LIMIT_KB),
    );
    let max_processes = number(
        &body.max_processes_and_or_threads,
        "max_processes_and_or_threads",
        1.0,
        f64::from(MAX_MAX_PROCESSES),
        f64::from(MAX_PROCESSES),
    );
    let max_file_size = number(
        &body.max_file_size,
        "max_file_size",
        0.0,
        f64::from(MAX_MAX_FILE_SIZE_KB),
        f64::from(MAX_FILE_SIZE_KB),
    );
    let flag = |f: &Option<Flag>| f.as_ref().is_some_and(Flag::value);
    let filled = |text: &Option<String>| text.as_deref().is_some_and(|t| !t.trim().is_empty());
    // Options Judge0 has and a server configured like ours refuses.
    for (set, name, problem) in [
        (
            flag(&body.enable_per_process_and_thread_time_limit),
            "enable_per_process_and_thread_time_limit",
            "this option cannot be enabled",
        ),
        (
            flag(&body.enable_per_process_and_thread_memory_limit),
            "enable_per_process_and_thread_memory_limit",
            "this option cannot be enabled",
        ),
        (
            filled(&body.compiler_options),
            "compiler_options",
            "setting compiler options is not allowed",
        ),
        (
            filled(&body.additional_files),
            "additional_files",
            "setting additional files is not allowed",
        ),
        (
            flag(&body.enable_network),
            "enable_network",
            "enabling network is not allowed",
        ),
    ] {
        if set {
            problems.add(name, problem);
        }
    }
    let arguments = body.command_line_arguments.filter(|a| !a.trim().is_empty());
    if arguments
        .as_ref()
        .is_some_and(|a| a.chars().count() > MAX_COMMAND_LINE_CHARS)
    {
        problems.add(
            "command_line_arguments",
            format!("is too long (maximum is {MAX_COMMAND_LINE_CHARS} characters)"),
        );
    }
    let callback_url = body.callback_url.filter(|u| !u.trim().is_empty());
    if let Some(url) = &callback_url {
        if !ctx.config.compat.callbacks_enabled {
            problems.add("callback_url", "setting callback is not allowed");
        } else if let Err(reason) =
            super::ssrf::check_url(url, &ctx.config.compat.callback_allowed_hosts).await
        {
            problems.add("callback_url", reason);
        }
    }
    problems.into_result()?;
    let (Some(language), Some(source)) = (language, source) else {
        return Err(Error::invalid_field("source_code", "can't be blank"));
    };

    let stdin_text = String::from_utf8_lossy(&stdin).into_owned();
    let time_ms = (cpu_time_limit.min(wall_time_limit) * 1000.0)
        .round()
        .max(100.0) as u32;
    let memory_mb = ((memory_limit / 1024.0).ceil() as u32).max(32);
    let request = CreateRun {
        language: language.id.to_owned(),
        source: Some(source),
        files: None,
        // With an expected output the test's stdin is the one executed;
        // the run's own is kept for the submission's `stdin` field.
        stdin: stdin_text.clone(),
        args: arguments
            .as_deref()
            .map(|a| a.split_whitespace().map(str::to_owned).collect())
            .unwrap_or_default(),
        session_id: None,
        tests: expected
            .clone()
            .map(|expected_output| {
                vec![TestBody {
                    stdin: stdin_text,
                    expected_output,
                }]
            })
            .unwrap_or_default(),
        limits: LimitsBody {
            time_ms: Some(time_ms.min(ctx.config.runs.max_time_ms)),
            memory_mb: Some(memory_mb.min(ctx.config.runs.max_memory_mb)),
        },
    };
    let mut run = runs::validate(ctx, request, fleet)?;
    run.judge0 = serde_json::to_value(Params {
        language_id: language_id.unwrap_or_default() as u32,
        number_of_runs: number_of_runs as u32,
        cpu_time_limit,
        cpu_extra_time,
        wall_time_limit,
        memory_limit: memory_limit as u32,
        stack_limit: stack_limit as u32,
        max_processes_and_or_threads: max_processes as u32,
        enable_per_process_and_thread_time_limit: false,
        enable_per_process_and_thread_memory_limit: false,
        max_file_size: max_file_size as u32,
        redirect_stderr_to_stdout: flag(&body.redirect_stderr_to_stdout),
        enable_network: false,
        command_line_arguments: arguments,
        has_expected_output: expected.is_some(),
    })
    .ok();
    run.callback_url = callback_url;
    Ok(run)
}
