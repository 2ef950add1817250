//! The contract between the api and the worker — and nothing else.
//!
//! Neither binary depends on the other; both depend on this crate. It holds the
//! names both sides must agree on (the job queue, the Redis channels) and the
//! shape of a run job. Changing anything here is a protocol change: old workers
//! and new api replicas run side by side during a deploy, so add fields with
//! `#[serde(default)]` rather than renaming them.

use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// The apalis queue run jobs are pushed to and consumed from.
///
/// Set explicitly: apalis' default is the Rust type path of the job, which would
/// silently rename the queue whenever the type moves.
pub const RUN_QUEUE: &str = "codecall:runs";

/// A request to execute one run. The run's row in PostgreSQL (source, stdin,
/// tests, limits) is the source of truth; the job only carries its id so a job
/// delivered twice can never carry a different program than the stored run.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RunJob {
    pub run_id: Uuid,
}

/// How a run (or one of its tests) ended — SPEC §7's list, in its spelling.
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
    fn a_run_job_is_camel_case_json_with_only_the_run_id() {
        let id = Uuid::nil();
        let json = serde_json::to_value(RunJob { run_id: id }).expect("serialises");
        assert_eq!(json, serde_json::json!({ "runId": id }));
    }

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
    fn session_and_run_channels_never_collide() {
        let id = Uuid::new_v4();
        assert_ne!(session_channel("p:", id), run_channel("p:", id));
        assert!(session_channel("p:", id).starts_with("p:"));
    }
}
