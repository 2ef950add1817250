//! Turning the runner's events into an [`ExecutionResult`]: verdicts, output
//! comparison (here, outside the sandbox) and the run's summary.

use std::collections::BTreeMap;

use run_contract::{RunResult, Verdict};
use sandbox_runner::{Event, Outcome, Stream};

use super::{EngineError, TestResult};

/// Longest report line accepted from a runner.
pub const MAX_LINE_BYTES: usize = 1 << 20;
/// Runner diagnostics kept (its own stderr, not the program's).
const RUNNER_STDERR_LIMIT: usize = 8 * 1024;
/// Output kept per stream per test, whatever the runner sends.
const HARD_OUTPUT_CAP: usize = 4 * 1024 * 1024;

struct Done {
    outcome: Outcome,
    time_ms: u64,
    cpu_ms: u64,
    memory_kb: u64,
    bytes: [u64; 2],
}

#[derive(Default)]
pub struct Collected {
    outputs: BTreeMap<usize, [Vec<u8>; 2]>,
    compiled: Option<(Outcome, String)>,
    done: BTreeMap<usize, Done>,
    error: Option<String>,
    stderr: Vec<u8>,
    pub finished: bool,
    pub deadline_passed: bool,
    pub stray_lines: usize,
}

impl Collected {
    pub fn output(&mut self, test: usize, stream: Stream, data: &[u8]) {
        let buffer = &mut self.outputs.entry(test).or_default()[stream as usize];
        let room = HARD_OUTPUT_CAP.saturating_sub(buffer.len());
        buffer.extend_from_slice(&data[..data.len().min(room)]);
    }

    /// Whether the container's OOM flag could change a verdict.
    pub fn needs_oom_check(&self) -> bool {
        !self.finished
            || self
                .done
                .values()
                .any(|d| matches!(d.outcome, Outcome::Signaled { signal: 9, .. }))
    }

    pub fn runner_stderr(&mut self, data: &[u8]) {
        let room = RUNNER_STDERR_LIMIT.saturating_sub(self.stderr.len());
        self.stderr.extend_from_slice(&data[..data.len().min(room)]);
    }

    pub fn event(&mut self, event: Event) {
        match event {
            Event::Output { .. } => {}
            Event::Compiled {
                outcome, output, ..
            } => self.compiled = Some((outcome, output)),
            Event::TestDone {
                test,
                outcome,
                time_ms,
                cpu_ms,
                memory_kb,
                stdout_bytes,
                stderr_bytes,
            } => {
                self.done.insert(
                    test,
                    Done {
                        outcome,
                        time_ms,
                        cpu_ms,
                        memory_kb,
                        bytes: [stdout_bytes, stderr_bytes],
                    },
                );
            }
            Event::Finished => self.finished = true,
            Event::Error { message } => self.error = Some(message),
        }
    }
}

/// Output comparison: trailing whitespace of each line and trailing empty
/// lines do not matter.
pub fn same_output(actual: &str, expected: &str) -> bool {
    fn lines(s: &str) -> Vec<&str> {
        let mut lines: Vec<&str> = s.lines().map(str::trim_end).collect();
        while lines.last() == Some(&"") {
            lines.pop();
        }
        lines
    }
    lines(actual) == lines(expected)
}

/// Appended to the stderr of a test during which a gVisor sandbox died.
pub const SANDBOX_DIED: &str =
    "[the sandbox was killed: the program exhausted gVisor's own process resources]";

/// `sandbox_died`: the container ended without the runner's last report and
/// not at the engine's deadline, under gVisor, where a program (a fork bomb)
/// can take the whole sandbox down: the test it was running is the
/// program's failure (`runtime_error`), not the platform's.
pub fn assemble(
    mut collected: Collected,
    expected: &[Option<&str>],
    with_tests: bool,
    oom_killed: bool,
    sandbox_died: bool,
    output_limit: usize,
) -> Result<RunResult, EngineError> {
    if let Some(message) = collected.error.take() {
        return Err(EngineError::Runner(message));
    }
    let compile_output = collected.compiled.as_ref().map(|(_, out)| out.clone());
    if let Some((outcome, output)) = &collected.compiled
        && *outcome != (Outcome::Exited { code: 0 })
    {
        let mut output = output.clone();
        if *outcome == Outcome::TimeLimit {
            output.push_str("\n[compilation exceeded its time limit]");
        }
        return Ok(RunResult {
            verdict: Verdict::CompileError,
            exit_code: match outcome {
                Outcome::Exited { code } => Some(*code),
                _ => None,
            },
            signal: None,
            stdout: String::new(),
            stderr: String::new(),
            stdout_truncated: false,
            stderr_truncated: false,
            compile_output: Some(output),
            stdout_base64: None,
            time_ms: 0,
            cpu_ms: 0,
            memory_kb: 0,
            tests: Vec::new(),
        });
    }

    let mut tests = Vec::with_capacity(expected.len());
    // Output that is not UTF-8 or holds NUL (which the stored result cannot
    // keep), byte for byte (the text fields hold it lossily).
    let mut raw_stdout = BTreeMap::new();
    for (index, expected) in expected.iter().enumerate() {
        let [stdout, stderr] = collected.outputs.remove(&index).unwrap_or_default();
        if std::str::from_utf8(&stdout).is_err() || stdout.contains(&0) {
            use base64::Engine as _;
            raw_stdout.insert(
                index,
                base64::engine::general_purpose::STANDARD.encode(&stdout),
            );
        }
        let (stdout, stderr) = (
            String::from_utf8_lossy(&stdout).into_owned(),
            String::from_utf8_lossy(&stderr).into_owned(),
        );
        let Some(done) = collected.done.remove(&index) else {
            // The runner stopped before this test ended.
            if oom_killed {
                tests.push(missing(index, Verdict::MemoryLimitExceeded, stdout, stderr));
                continue;
            }
            if sandbox_died {
                let stderr = format!("{stderr}{SANDBOX_DIED}");
                tests.push(missing(index, Verdict::RuntimeError, stdout, stderr));
                continue;
            }
            let diagnostics = String::from_utf8_lossy(&collected.stderr).into_owned();
            return Err(EngineError::Runner(if collected.deadline_passed {
                format!("no report within the engine deadline (test {index})")
            } else {
                format!("the runner ended without reporting test {index}: {diagnostics}")
            }));
        };
        let mut result = TestResult {
            index,
            verdict: Verdict::Accepted,
            exit_code: None,
            signal: None,
            stdout_truncated: done.bytes[0] > output_limit as u64
                || done.bytes[0] > stdout.len() as u64,
            stderr_truncated: done.bytes[1] > output_limit as u64
                || done.bytes[1] > stderr.len() as u64,
            stdout,
            stderr,
            time_ms: done.time_ms,
            cpu_ms: done.cpu_ms,
            memory_kb: done.memory_kb,
        };
        result.verdict = match done.outcome {
            Outcome::Exited { code } => {
                result.exit_code = Some(code);
                match (code, expected) {
                    (0, Some(expected)) if !same_output(&result.stdout, expected) => {
                        Verdict::WrongAnswer
                    }
                    (0, _) => Verdict::Accepted,
                    _ => Verdict::RuntimeError,
                }
            }
            Outcome::Signaled { signal, name } => {
                result.signal = Some(name);
                if oom_killed && signal == 9 {
                    Verdict::MemoryLimitExceeded
                } else {
                    Verdict::RuntimeError
                }
            }
            Outcome::TimeLimit => Verdict::TimeLimitExceeded,
            Outcome::OutputLimit => Verdict::OutputLimitExceeded,
            Outcome::MemoryLimit => Verdict::MemoryLimitExceeded,
            Outcome::FailedToStart { message } => {
                result.stderr = message;
                Verdict::RuntimeError
            }
        };
        tests.push(result);
    }

    let deciding = tests
        .iter()
        .position(|t| t.verdict != Verdict::Accepted)
        .unwrap_or(0);
    let decider = tests
        .get(deciding)
        .cloned()
        .ok_or_else(|| EngineError::Runner("no executions reported".into()))?;
    Ok(RunResult {
        verdict: decider.verdict,
        exit_code: decider.exit_code,
        signal: decider.signal,
        stdout_base64: raw_stdout.remove(&deciding),
        stdout: decider.stdout,
        stderr: decider.stderr,
        stdout_truncated: decider.stdout_truncated,
        stderr_truncated: decider.stderr_truncated,
        compile_output,
        time_ms: tests.iter().map(|t| t.time_ms).max().unwrap_or(0),
        cpu_ms: tests.iter().map(|t| t.cpu_ms).max().unwrap_or(0),
        memory_kb: tests.iter().map(|t| t.memory_kb).max().unwrap_or(0),
        tests: if with_tests { tests } else { Vec::new() },
    })
}

fn missing(index: usize, verdict: Verdict, stdout: String, stderr: String) -> TestResult {
    TestResult {
        index,
        verdict,
        exit_code: None,
        signal: Some("SIGKILL".into()),
        stdout,
        stderr,
        stdout_truncated: false,
        stderr_truncated: false,
        time_ms: 0,
        cpu_ms: 0,
        memory_kb: 0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn comparison_ignores_trailing_whitespace_per_line_only() {
        assert!(same_output("1 2 \n3\t\n\n", "1 2\n3"));
        assert!(same_output("a\r\nb\r\n", "a\nb\n"));
        assert!(!same_output(" 1\n", "1\n"), "leading whitespace matters");
        assert!(
            !same_output("1\n2\n", "1\n\n2\n"),
            "inner blank lines matter"
        );
        assert!(!same_output("", "0"));
    }

    fn done(test: usize, outcome: Outcome) -> Event {
        Event::TestDone {
            test,
            outcome,
            time_ms: 1,
            cpu_ms: 1,
            memory_kb: 1,
            stdout_bytes: 2,
            stderr_bytes: 0,
        }
    }

    #[test]
    fn the_run_verdict_is_the_first_failing_tests() {
        let mut collected = Collected::default();
        for i in 0..3 {
            collected.output(i, Stream::Stdout, format!("{i}\n").as_bytes());
            collected.event(done(i, Outcome::Exited { code: 0 }));
        }
        collected.event(Event::Finished);
        let result = assemble(
            collected,
            &[Some("0"), Some("7"), Some("2")],
            true,
            false,
            false,
            64,
        )
        .expect("assembled");
        let verdicts: Vec<Verdict> = result.tests.iter().map(|t| t.verdict).collect();
        assert_eq!(
            verdicts,
            [Verdict::Accepted, Verdict::WrongAnswer, Verdict::Accepted]
        );
        assert_eq!(result.verdict, Verdict::WrongAnswer);
        assert_eq!(result.stdout, "1\n");
    }

    #[test]
    fn a_runner_error_is_an_engine_error_not_a_verdict() {
        let mut collected = Collected::default();
        collected.event(Event::Error {
            message: "disk full".into(),
        });
        assert!(assemble(collected, &[None], false, false, true, 64).is_err());
    }
}
