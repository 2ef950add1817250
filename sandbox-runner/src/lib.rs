//! The protocol between the worker and `codecall-runner`, the program that
//! runs as PID 1 inside every sandbox container.
//!
//! The worker writes one [`Request`] as a single JSON line to the container's
//! stdin and closes it. The runner writes the program's files into its tmpfs
//! working directory, compiles once, runs the program once per test, and
//! reports [`Event`]s on its own stdout, one per line, each prefixed with the
//! request's random nonce.
//!
//! Why the user's program cannot forge a report: its stdin, stdout and stderr
//! are pipes owned by the runner, never the container's streams; the runner is
//! PID 1 (signals from inside the container cannot kill it) and marks itself
//! non-dumpable, so `/proc/1/fd/1` and `/proc/1/mem` are closed to the
//! program even though both run as the same user (under runc: gVisor's `/proc`
//! lets the same uid write to `/proc/1/fd/1`, so the worker ignores anything
//! before the nonce on a line, and the program never learns the nonce).
//! Expected outputs never enter the container: the worker compares outputs
//! itself.

use serde::{Deserialize, Serialize};

/// Where the runner writes the program's files (a tmpfs in the container).
pub const WORK_DIR: &str = "/sandbox";

/// A file name the runner accepts: a plain name, no directories. The rule
/// is the api's too (it refuses a run carrying another name), so it lives in
/// `run-contract`.
pub use run_contract::input::valid_file_name;

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Request {
    /// Random per execution; every report line starts with it.
    pub nonce: String,
    pub files: Vec<File>,
    /// Run once before the tests; `None` for interpreted languages.
    pub compile: Option<Vec<String>>,
    pub run: Vec<String>,
    /// Extra arguments for the program.
    pub args: Vec<String>,
    pub env: Vec<(String, String)>,
    /// One execution per entry; at least one.
    pub tests: Vec<TestInput>,
    pub time_limit_ms: u64,
    pub compile_time_limit_ms: u64,
    /// Per stream per execution; past it the program is killed.
    pub output_limit_bytes: usize,
    /// The container's memory limit, to recognise an out-of-memory kill.
    pub memory_limit_bytes: u64,
    /// Wall budget of the whole request (compilation and every test): each
    /// execution gets at most what remains, and a test that finds nothing
    /// left is reported as [`Outcome::TimeLimit`] without running. `None`:
    /// no budget beyond the per-execution limits.
    #[serde(default)]
    pub total_time_limit_ms: Option<u64>,
    /// Limits the runner enforces itself, by watching, because the container
    /// runtime does not confine them to the program: under gVisor the
    /// container's cgroup holds gVisor's own kernel too, so its memory and
    /// pids limits are sized above the program's and the program's own
    /// limits are kept here. `None` under runc, where the cgroup limits are
    /// the program's.
    #[serde(default)]
    pub watch: Option<Watch>,
}

/// See [`Request::watch`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Watch {
    /// Memory in use inside the sandbox past which the program is killed
    /// ([`Outcome::MemoryLimit`]).
    pub memory_bytes: u64,
    /// Tasks (processes and threads, the runner's included) past which the
    /// newest are killed as they appear, as a pids limit refuses them.
    pub tasks: u64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct File {
    pub name: String,
    pub content: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TestInput {
    /// Base64: stdin may be any bytes.
    pub stdin: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Stream {
    Stdout,
    Stderr,
}

/// How one execution (or the compilation) ended.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Outcome {
    Exited {
        code: i32,
    },
    Signaled {
        signal: i32,
        name: String,
    },
    TimeLimit,
    OutputLimit,
    MemoryLimit,
    /// The program could not be started (e.g. the compiler produced nothing).
    FailedToStart {
        message: String,
    },
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Event {
    /// Program output as it happens. `data` is base64.
    Output {
        test: usize,
        stream: Stream,
        data: String,
    },
    Compiled {
        outcome: Outcome,
        /// Compiler stdout + stderr, capped, lossily UTF-8.
        output: String,
        time_ms: u64,
    },
    TestDone {
        test: usize,
        outcome: Outcome,
        time_ms: u64,
        cpu_ms: u64,
        memory_kb: u64,
        stdout_bytes: u64,
        stderr_bytes: u64,
    },
    /// Last line of a complete report.
    Finished,
    /// The runner itself could not proceed (bad request, cannot write files).
    Error { message: String },
}

/// Formats one report line.
pub fn encode_line(nonce: &str, event: &Event) -> String {
    let json = serde_json::to_string(event).unwrap_or_else(|_| "{\"type\":\"finished\"}".into());
    format!("{nonce} {json}\n")
}

/// Parses one report line; `None` for a line without the nonce or not an event.
/// Anything before the nonce is ignored: under gVisor the program can write
/// to the runner's stdout (`/proc/1/fd/1`), and junk it leaves without a
/// newline would otherwise hide the runner's next line. It cannot forge one:
/// it never learns the nonce.
pub fn decode_line(nonce: &str, line: &str) -> Option<Event> {
    let marker = format!("{nonce} ");
    let start = line.find(&marker)? + marker.len();
    serde_json::from_str(line[start..].trim_end()).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn report_lines_round_trip_only_with_the_right_nonce() {
        let line = encode_line("n0nce", &Event::Finished);
        assert!(matches!(decode_line("n0nce", &line), Some(Event::Finished)));
        assert!(decode_line("other", &line).is_none());
        assert!(decode_line("n0nce", "n0nce {\"type\":\"bogus\"}").is_none());
        let glued = format!("junk without a newline{line}");
        assert!(matches!(
            decode_line("n0nce", &glued),
            Some(Event::Finished)
        ));
    }

    #[test]
    fn file_names_cannot_escape_the_work_dir() {
        assert!(valid_file_name("Main.java"));
        for bad in ["", "..", "../x", "a/b", "/etc/passwd", "."] {
            assert!(!valid_file_name(bad), "{bad}");
        }
    }
}
