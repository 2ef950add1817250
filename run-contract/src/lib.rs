//! The contract between the api and the worker.
//!
//! Neither binary depends on the other; both depend on this crate. It holds the
//! names both sides must agree on (the PostgreSQL notification channels of
//! run dispatch, the Redis channels of room events), the shapes both read
//! (a run's stored input in [`input`], its result, its events), and the
//! configuration notation both binaries share ([`config`]). The sandbox runner
//! depends on it for one rule only: which file names a run may carry
//! ([`input::valid_file_name`]). Changing anything here is a protocol change:
//! old workers and new api replicas run side by side during a deploy, so add
//! fields with `#[serde(default)]` rather than renaming them.

pub mod config;
pub mod input;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// The PostgreSQL `NOTIFY` channel on which a run becoming claimable is
/// announced (payload: its language). Sent by a trigger on `runs`, so every
/// path that queues a run — the api's insert, a retry, a released lease —
/// wakes the workers without remembering to.
pub const RUNS_QUEUED_CHANNEL: &str = "codecall_runs_queued";

/// The PostgreSQL `NOTIFY` channel on which a run's finish is announced
/// (payload: its id), by the same trigger. `?wait=true` callers wait on it.
pub const RUN_FINISHED_CHANNEL: &str = "codecall_run_finished";

/// How a run (or one of its tests) ended. Serialised in snake_case
/// (`wrong_answer`, `time_limit_exceeded`, …), the spelling clients see.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    Accepted,
    WrongAnswer,
    CompileError,
    RuntimeError,
    TimeLimitExceeded,
    MemoryLimitExceeded,
    OutputLimitExceeded,
    /// The platform failed (not the user's program).
    InternalError,
}

impl Verdict {
    pub fn as_str(self) -> &'static str {
        match self {
            Verdict::Accepted => "accepted",
            Verdict::WrongAnswer => "wrong_answer",
            Verdict::CompileError => "compile_error",
            Verdict::RuntimeError => "runtime_error",
            Verdict::TimeLimitExceeded => "time_limit_exceeded",
            Verdict::MemoryLimitExceeded => "memory_limit_exceeded",
            Verdict::OutputLimitExceeded => "output_limit_exceeded",
            Verdict::InternalError => "internal_error",
        }
    }
}

/// One test's result, as stored in `runs.result` and served by the api.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TestOutcome {
    pub index: usize,
    pub verdict: Verdict,
    pub exit_code: Option<i32>,
    pub signal: Option<String>,
    pub stdout: String,
    pub stderr: String,
    pub stdout_truncated: bool,
    pub stderr_truncated: bool,
    pub time_ms: u64,
    pub cpu_ms: u64,
    pub memory_kb: u64,
}

/// A finished run's result (the `runs.result` JSON column). The top-level
/// output is that of the execution that decided the verdict.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RunResult {
    pub verdict: Verdict,
    pub exit_code: Option<i32>,
    pub signal: Option<String>,
    pub stdout: String,
    pub stderr: String,
    pub stdout_truncated: bool,
    pub stderr_truncated: bool,
    pub compile_output: Option<String>,
    /// `stdout` byte for byte, base64-encoded, when it is not valid UTF-8
    /// (`stdout` then holds it lossily). The Judge0 door's `base64_encoded`
    /// answers serve these bytes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stdout_base64: Option<String>,
    pub time_ms: u64,
    pub cpu_ms: u64,
    pub memory_kb: u64,
    pub tests: Vec<TestOutcome>,
}

impl RunResult {
    /// A result for a run the platform could not execute.
    pub fn internal_error(message: &str) -> Self {
        RunResult {
            verdict: Verdict::InternalError,
            exit_code: None,
            signal: None,
            stdout: String::new(),
            stderr: message.to_owned(),
            stdout_truncated: false,
            stderr_truncated: false,
            compile_output: None,
            stdout_base64: None,
            time_ms: 0,
            cpu_ms: 0,
            memory_kb: 0,
            tests: Vec::new(),
        }
    }
}

#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RunStatus {
    Queued,
    Running,
    Finished,
}

impl RunStatus {
    pub fn parse(raw: &str) -> RunStatus {
        match raw {
            "running" => RunStatus::Running,
            "finished" => RunStatus::Finished,
            _ => RunStatus::Queued,
        }
    }
}

/// A run as clients see it (`GET /api/runs/{id}` and the `run.finished`
/// event): built by the api and the worker from the same row, so both agree.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RunView {
    pub id: Uuid,
    pub user_id: Uuid,
    pub session_id: Option<Uuid>,
    pub language: String,
    pub status: RunStatus,
    pub verdict: Option<Verdict>,
    pub exit_code: Option<i32>,
    pub signal: Option<String>,
    pub stdout: String,
    pub stderr: String,
    pub compile_output: Option<String>,
    pub stdout_truncated: bool,
    pub stderr_truncated: bool,
    pub time_ms: Option<u64>,
    pub cpu_ms: Option<u64>,
    pub memory_kb: Option<u64>,
    pub tests: Vec<TestOutcome>,
    pub created_at: DateTime<Utc>,
    pub started_at: Option<DateTime<Utc>>,
    pub finished_at: Option<DateTime<Utc>>,
    /// What the run was for (a plain run, a problem's samples, a submission).
    #[serde(default)]
    pub kind: RunKind,
    /// The problem a `samples` run or a submission was tested against.
    #[serde(default)]
    pub problem_id: Option<Uuid>,
    /// Output and exit statuses were left out ([`RunView::redacted`]).
    #[serde(default)]
    pub redacted: bool,
}

/// What a run was for (the `runs.kind` column).
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RunKind {
    /// A plain run.
    #[default]
    Run,
    /// The session's code against its problem's sample tests (visible to all).
    Samples,
    /// The session's code against its problem's hidden tests.
    Submission,
}

impl RunKind {
    pub fn parse(raw: &str) -> RunKind {
        match raw {
            "samples" => RunKind::Samples,
            "submission" => RunKind::Submission,
            _ => RunKind::Run,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            RunKind::Run => "run",
            RunKind::Samples => "samples",
            RunKind::Submission => "submission",
        }
    }

    /// Whether its output and test data are for the session's interviewer
    /// only (the tests are hidden ones).
    pub fn is_hidden(self) -> bool {
        self == RunKind::Submission
    }
}

impl RunView {
    /// What a session's candidate may see of a submission: the verdict and,
    /// per test, its verdict, time and memory. Everything the program
    /// printed (which may echo a hidden input) and every exit status is left
    /// out. The compiler's output stays: it is produced before any test runs.
    pub fn redacted(mut self) -> RunView {
        self.stdout.clear();
        self.stderr.clear();
        self.stdout_truncated = false;
        self.stderr_truncated = false;
        self.exit_code = None;
        self.signal = None;
        for test in &mut self.tests {
            test.stdout.clear();
            test.stderr.clear();
            test.stdout_truncated = false;
            test.stderr_truncated = false;
            test.exit_code = None;
            test.signal = None;
        }
        self.redacted = true;
        self
    }
}

/// Who a room event is for. Most events are for everyone; the output of a
/// submission against hidden tests is for the interviewer, and its redacted
/// result for everyone else.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Audience {
    Everyone,
    Interviewers,
    Candidates,
}

impl Audience {
    fn tag(self) -> Option<&'static str> {
        match self {
            Audience::Everyone => None,
            Audience::Interviewers => Some("interviewers"),
            Audience::Candidates => Some("candidates"),
        }
    }

    /// Whether a member with this role (`interviewer` or `candidate`) gets it.
    pub fn includes(self, role: &str) -> bool {
        match self {
            Audience::Everyone => true,
            Audience::Interviewers => role == "interviewer",
            Audience::Candidates => role == "candidate",
        }
    }
}

/// A room event's payload on its Redis channel: the event's JSON as is for
/// everyone, or `@<audience>\n` then the JSON. Each audience's JSON is
/// serialised once by the publisher, and relayed byte for byte.
pub fn addressed(audience: Audience, json: &str) -> String {
    match audience.tag() {
        None => json.to_owned(),
        Some(tag) => format!("@{tag}\n{json}"),
    }
}

/// Splits a room payload into its audience and the event's JSON; `None` for
/// a payload addressed to an audience this version does not know (it is
/// dropped rather than shown to the wrong people).
pub fn addressee(payload: &str) -> Option<(Audience, &str)> {
    let Some(rest) = payload.strip_prefix('@') else {
        return Some((Audience::Everyone, payload));
    };
    let (tag, json) = rest.split_once('\n')?;
    let audience = match tag {
        "interviewers" => Audience::Interviewers,
        "candidates" => Audience::Candidates,
        _ => return None,
    };
    Some((audience, json))
}

/// The columns of a `runs` row a [`RunView`] is made of.
pub struct RunRow {
    pub id: Uuid,
    pub user_id: Uuid,
    pub session_id: Option<Uuid>,
    pub language: String,
    pub status: String,
    pub result: Option<serde_json::Value>,
    pub created_at: DateTime<Utc>,
    pub started_at: Option<DateTime<Utc>>,
    pub finished_at: Option<DateTime<Utc>>,
}

impl From<RunRow> for RunView {
    fn from(row: RunRow) -> Self {
        let result: Option<RunResult> = row.result.and_then(|r| serde_json::from_value(r).ok());
        let status = RunStatus::parse(&row.status);
        let mut view = RunView {
            id: row.id,
            user_id: row.user_id,
            session_id: row.session_id,
            language: row.language,
            status,
            verdict: None,
            exit_code: None,
            signal: None,
            stdout: String::new(),
            stderr: String::new(),
            compile_output: None,
            stdout_truncated: false,
            stderr_truncated: false,
            time_ms: None,
            cpu_ms: None,
            memory_kb: None,
            tests: Vec::new(),
            created_at: row.created_at,
            started_at: row.started_at,
            finished_at: row.finished_at,
            kind: RunKind::Run,
            problem_id: None,
            redacted: false,
        };
        if let (RunStatus::Finished, Some(r)) = (status, result) {
            view.verdict = Some(r.verdict);
            view.exit_code = r.exit_code;
            view.signal = r.signal;
            view.stdout = r.stdout;
            view.stderr = r.stderr;
            view.compile_output = r.compile_output;
            view.stdout_truncated = r.stdout_truncated;
            view.stderr_truncated = r.stderr_truncated;
            view.time_ms = Some(r.time_ms);
            view.cpu_ms = Some(r.cpu_ms);
            view.memory_kb = Some(r.memory_kb);
            view.tests = r.tests;
        }
        view
    }
}

/// Events a run publishes on its room's channel (the session's, else the
/// run's own). The real-time layer relays them to sockets unchanged.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type")]
pub enum RunEvent {
    #[serde(rename = "run.queued", rename_all = "camelCase")]
    Queued {
        run_id: Uuid,
        language: String,
        user_id: Uuid,
    },
    #[serde(rename = "run.started", rename_all = "camelCase")]
    Started { run_id: Uuid, attempt: i32 },
    /// `seq` counts from 0 per run and attempt, so clients order chunks and
    /// notice gaps. `data` is the chunk, lossily UTF-8.
    #[serde(rename = "run.output", rename_all = "camelCase")]
    Output {
        run_id: Uuid,
        test: usize,
        stream: String,
        data: String,
        seq: u64,
    },
    #[serde(rename = "run.finished")]
    Finished { run: Box<RunView> },
}

/// The channel a run's events go to.
pub fn run_event_channel(prefix: &str, run_id: Uuid, session_id: Option<Uuid>) -> String {
    match session_id {
        Some(session) => session_channel(prefix, session),
        None => run_channel(prefix, run_id),
    }
}

/// A worker as it announces itself (a row of the `workers` table, renewed
/// every heartbeat) and as the queue monitor shows it.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct WorkerAnnouncement {
    pub id: String,
    pub host: String,
    pub started_at: DateTime<Utc>,
    pub heartbeat_at: DateTime<Utc>,
    pub languages: Vec<LanguageInfo>,
    pub running: u64,
    pub done: u64,
    /// Set when the worker shut down cleanly.
    #[serde(default)]
    pub stopped_at: Option<DateTime<Utc>>,
}

/// A language as `GET /api/languages` lists it.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LanguageInfo {
    pub id: String,
    pub name: String,
    pub version: String,
    pub compiled: bool,
}

/// The Redis pub/sub channel carrying every real-time event of one interview
/// session (presence, chat, run output), so rooms work across api replicas.
pub fn session_channel(prefix: &str, session_id: Uuid) -> String {
    format!("{prefix}session:{session_id}")
}

/// The Redis pub/sub channel for the events of a run that has no session.
pub fn run_channel(prefix: &str, run_id: Uuid) -> String {
    format!("{prefix}run:{run_id}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn verdicts_serialise_as_spec_strings() {
        for v in [
            Verdict::Accepted,
            Verdict::TimeLimitExceeded,
            Verdict::InternalError,
        ] {
            let json = serde_json::to_value(v).expect("serialises");
            assert_eq!(json, serde_json::Value::String(v.as_str().to_owned()));
        }
    }

    #[test]
    fn run_events_are_tagged_with_dotted_types() {
        let id = Uuid::nil();
        let json = serde_json::to_value(RunEvent::Output {
            run_id: id,
            test: 0,
            stream: "stdout".into(),
            data: "hi".into(),
            seq: 3,
        })
        .expect("serialises");
        assert_eq!(json["type"], "run.output");
        assert_eq!(json["runId"], id.to_string());
        assert_eq!(json["seq"], 3);
    }

    #[test]
    fn addressed_payloads_round_trip_and_unknown_audiences_are_dropped() {
        let json = r#"{"type":"run.output"}"#;
        assert_eq!(
            addressee(&addressed(Audience::Everyone, json)),
            Some((Audience::Everyone, json))
        );
        for audience in [Audience::Interviewers, Audience::Candidates] {
            assert_eq!(
                addressee(&addressed(audience, json)),
                Some((audience, json))
            );
        }
        assert_eq!(addressee("@auditors\n{}"), None);
        assert!(Audience::Interviewers.includes("interviewer"));
        assert!(!Audience::Interviewers.includes("candidate"));
        assert!(!Audience::Candidates.includes("interviewer"));
    }

    #[test]
    fn session_and_run_channels_never_collide() {
        let id = Uuid::new_v4();
        assert_ne!(session_channel("p:", id), run_channel("p:", id));
        assert!(session_channel("p:", id).starts_with("p:"));
    }
}
