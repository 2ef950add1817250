//! `codecall-runner`: PID 1 of every sandbox container (see the library docs
//! for the protocol and why its reports cannot be forged).
//!
//! One request in (a JSON line on stdin), compile once, run each test with its
//! own time limit, output caps and resource figures, report, exit. Exiting as
//! PID 1 ends the container, and with it anything the program left behind.

use std::{
    io::{BufRead, Read, StdoutLock, Write},
    os::unix::process::{CommandExt, ExitStatusExt},
    path::Path,
    process::{Command, ExitStatus, Stdio},
    sync::mpsc::{self, RecvTimeoutError},
    thread,
    time::{Duration, Instant},
};

use base64::{Engine as _, engine::general_purpose::STANDARD};
use nix::{
    sys::{
        resource::{UsageWho, getrusage},
        signal::{Signal, kill, killpg},
        wait::{WaitPidFlag, waitpid},
    },
    unistd::Pid,
};
use sandbox_runner::{Event, Outcome, Request, Stream, WORK_DIR, encode_line, valid_file_name};

/// Largest request line accepted (sources, args and every test's stdin).
const MAX_REQUEST_BYTES: u64 = 64 * 1024 * 1024;
/// Compiler output kept for the report.
const COMPILE_OUTPUT_LIMIT: usize = 64 * 1024;
/// How long pipes may stay open after the program exited (a background
/// child holding them) before everything left is killed.
const LINGER: Duration = Duration::from_millis(50);

fn main() {
    // Non-dumpable: /proc/1/{fd,mem,environ} become root-owned, so the
    // program (same uid) cannot write to our stdout or read our memory.
    let _ = nix::sys::prctl::set_dumpable(false);

    let mut line = Vec::new();
    let read = std::io::stdin()
        .lock()
        .take(MAX_REQUEST_BYTES)
        .read_until(b'\n', &mut line);
    let request: Request = match read.map(|_| serde_json::from_slice(&line)) {
        Ok(Ok(request)) => request,
        Ok(Err(e)) => fail(&format!("invalid request: {e}")),
        Err(e) => fail(&format!("cannot read request: {e}")),
    };
    drop(line);

    let mut out = Reporter {
        nonce: request.nonce.clone(),
        out: std::io::stdout().lock(),
    };
    if let Err(message) = run(&request, &mut out) {
        out.send(&Event::Error { message });
    }
    out.send(&Event::Finished);
}

/// Without a parsed request there is no nonce to report with: say why on
/// stderr and exit non-zero (the worker treats that as an internal error).
fn fail(message: &str) -> ! {
    let _ = writeln!(std::io::stderr(), "codecall-runner: {message}");
    std::process::exit(2);
}

struct Reporter<'a> {
    nonce: String,
    out: StdoutLock<'a>,
}

impl Reporter<'_> {
    fn send(&mut self, event: &Event) {
        let _ = self
            .out
            .write_all(encode_line(&self.nonce, event).as_bytes());
        let _ = self.out.flush();
    }
}

fn run(request: &Request, out: &mut Reporter<'_>) -> Result<(), String> {
    for file in &request.files {
        if !valid_file_name(&file.name) {
            return Err(format!("invalid file name `{}`", file.name));
        }
        std::fs::write(Path::new(WORK_DIR).join(&file.name), &file.content)
            .map_err(|e| format!("cannot write `{}`: {e}", file.name))?;
    }

    if let Some(compile) = &request.compile {
        let mut output = Vec::new();
        let stats = execute(
            compile,
            request,
            Vec::new(),
            Duration::from_millis(request.compile_time_limit_ms),
            usize::MAX,
            &mut |_, data| {
                let room = COMPILE_OUTPUT_LIMIT.saturating_sub(output.len());
                output.extend_from_slice(&data[..data.len().min(room)]);
            },
        );
        let ok = stats.outcome == Outcome::Exited { code: 0 };
        out.send(&Event::Compiled {
            outcome: stats.outcome,
            output: String::from_utf8_lossy(&output).into_owned(),
            time_ms: stats.time_ms,
        });
        if !ok {
            return Ok(());
        }
    }

    let command: Vec<String> = request.run.iter().chain(&request.args).cloned().collect();
    for (index, test) in request.tests.iter().enumerate() {
        let stdin = STANDARD
            .decode(&test.stdin)
            .map_err(|_| format!("test {index}: stdin is not base64"))?;
        let stats = execute(
            &command,
            request,
            stdin,
            Duration::from_millis(request.time_limit_ms),
            request.output_limit_bytes,
            &mut |stream, data| {
                out.send(&Event::Output {
                    test: index,
                    stream,
                    data: STANDARD.encode(data),
                })
            },
        );
        out.send(&Event::TestDone {
            test: index,
            outcome: stats.outcome,
            time_ms: stats.time_ms,
            cpu_ms: stats.cpu_ms,
            memory_kb: stats.memory_kb,
            stdout_bytes: stats.bytes[0],
            stderr_bytes: stats.bytes[1],
        });
    }
    Ok(())
}

struct Stats {
    outcome: Outcome,
    time_ms: u64,
    cpu_ms: u64,
    memory_kb: u64,
    /// Bytes the program wrote per stream, including what was cut off.
    bytes: [u64; 2],
}

/// Runs `command` to completion or a limit. `sink` receives output as it
/// arrives, never more than `output_limit` bytes per stream.
fn execute(
    command: &[String],
    request: &Request,
    stdin: Vec<u8>,
    time_limit: Duration,
    output_limit: usize,
    sink: &mut dyn FnMut(Stream, &[u8]),
) -> Stats {
    let cpu_before = children_cpu_ms();
    let oom_before = oom_kills();
    let started = Instant::now();
    let spawned = command.split_first().map(|(program, args)| {
        Command::new(program)
            .args(args)
            .env_clear()
            .envs(request.env.iter().map(|(k, v)| (k, v)))
            .current_dir(WORK_DIR)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            // Its own process group, so a time-out kills its children too.
            .process_group(0)
            .spawn()
    });
    let mut child = match spawned {
        Some(Ok(child)) => child,
        Some(Err(e)) => return failed_to_start(format!("cannot start `{}`: {e}", command[0])),
        None => return failed_to_start("empty command".into()),
    };
    let pid = child.id();
    // Make the program, not the runner, the out-of-memory killer's choice.
    let _ = std::fs::write(format!("/proc/{pid}/oom_score_adj"), "1000");

    if let Some(mut pipe) = child.stdin.take() {
        // A program that never reads its stdin must not block us: write from
        // a thread; a closed pipe (the program exited early) just ends it.
        thread::spawn(move || {
            let _ = pipe.write_all(&stdin);
        });
    }
    let (tx, rx) = mpsc::channel::<(Stream, Option<Vec<u8>>)>();
    let pipes: [(Stream, Option<Box<dyn Read + Send>>); 2] = [
        (
            Stream::Stdout,
            child
                .stdout
                .take()
                .map(|p| Box::new(p) as Box<dyn Read + Send>),
        ),
        (
            Stream::Stderr,
            child
                .stderr
                .take()
                .map(|p| Box::new(p) as Box<dyn Read + Send>),
        ),
    ];
    for (stream, pipe) in pipes {
        let tx = tx.clone();
        thread::spawn(move || {
            let Some(mut pipe) = pipe else {
                let _ = tx.send((stream, None));
                return;
            };
            let mut buf = vec![0u8; 32 * 1024];
            loop {
                match pipe.read(&mut buf) {
                    Ok(0) | Err(_) => {
                        let _ = tx.send((stream, None));
                        return;
                    }
                    Ok(n) => {
                        if tx.send((stream, Some(buf[..n].to_vec()))).is_err() {
                            return;
                        }
                    }
                }
            }
        });
    }
    drop(tx);

    let deadline = started + time_limit;
    let mut open_pipes = 2;
    let mut bytes = [0u64; 2];
    let mut limit_hit: Option<Outcome> = None;
    let mut exit: Option<(ExitStatus, Instant)> = None;
    let mut peak_kb = 0;
    loop {
        if exit.is_none() {
            peak_kb = peak_kb.max(peak_rss_kb(pid));
            if limit_hit.is_none() && Instant::now() >= deadline {
                kill_program(pid);
                limit_hit = Some(Outcome::TimeLimit);
            }
        }
        match rx.recv_timeout(Duration::from_millis(2)) {
            Ok((stream, Some(data))) => {
                let i = stream as usize;
                let room = (output_limit as u64).saturating_sub(bytes[i]);
                let keep = data.len().min(usize::try_from(room).unwrap_or(usize::MAX));
                if keep > 0 {
                    sink(stream, &data[..keep]);
                }
                bytes[i] += data.len() as u64;
                if bytes[i] > output_limit as u64 && limit_hit.is_none() {
                    kill_program(pid);
                    limit_hit = Some(Outcome::OutputLimit);
                }
            }
            Ok((_, None)) => open_pipes -= 1,
            Err(RecvTimeoutError::Timeout) => {}
            Err(RecvTimeoutError::Disconnected) => open_pipes = 0,
        }
        if exit.is_none()
            && let Ok(Some(status)) = child.try_wait()
        {
            exit = Some((status, Instant::now()));
        }
        if let Some((_, at)) = exit {
            if open_pipes == 0 || at.elapsed() > LINGER * 20 {
                break;
            }
            if at.elapsed() > LINGER {
                // Something the program started still holds its pipes.
                kill_program(pid);
            }
        }
    }
    kill_program(pid);
    reap_orphans();

    let (status, ended) = exit.unwrap_or_else(|| (ExitStatus::from_raw(9), Instant::now()));
    let time_ms = millis(ended.duration_since(started));
    let oom = oom_kills().zip(oom_before).is_some_and(|(a, b)| a > b);
    let outcome = match limit_hit {
        Some(outcome) => outcome,
        None if oom => Outcome::MemoryLimit,
        None => match (status.code(), status.signal()) {
            (Some(code), _) => Outcome::Exited { code },
            (None, Some(signal)) => {
                let near_limit = peak_kb * 1024 >= request.memory_limit_bytes / 10 * 9;
                if signal == Signal::SIGKILL as i32 && near_limit {
                    Outcome::MemoryLimit
                } else {
                    Outcome::Signaled {
                        signal,
                        name: Signal::try_from(signal)
                            .map(|s| s.as_str().to_owned())
                            .unwrap_or_else(|_| format!("signal {signal}")),
                    }
                }
            }
            (None, None) => Outcome::Exited { code: -1 },
        },
    };
    Stats {
        outcome,
        time_ms,
        cpu_ms: children_cpu_ms().saturating_sub(cpu_before),
        memory_kb: peak_kb,
        bytes,
    }
}

fn failed_to_start(message: String) -> Stats {
    Stats {
        outcome: Outcome::FailedToStart { message },
        time_ms: 0,
        cpu_ms: 0,
        memory_kb: 0,
        bytes: [0, 0],
    }
}

/// Kills the program's process group and, when we are the container's PID 1,
/// every other process in the container (a background child that left the
/// group with `setsid`). `kill(-1)` spares PID 1 itself.
fn kill_program(pid: u32) {
    let Ok(pid) = i32::try_from(pid) else { return };
    let _ = killpg(Pid::from_raw(pid), Signal::SIGKILL);
    if std::process::id() == 1 {
        let _ = kill(Pid::from_raw(-1), Signal::SIGKILL);
    }
}

/// As PID 1 we inherit every orphan; reap them so zombies do not count
/// against the pids limit.
fn reap_orphans() {
    while let Ok(status) = waitpid(Pid::from_raw(-1), Some(WaitPidFlag::WNOHANG)) {
        if status == nix::sys::wait::WaitStatus::StillAlive {
            break;
        }
    }
}

fn children_cpu_ms() -> u64 {
    getrusage(UsageWho::RUSAGE_CHILDREN).map_or(0, |u| {
        let ms = |t: nix::sys::time::TimeVal| {
            u64::try_from(t.tv_sec()).unwrap_or(0) * 1000
                + u64::try_from(t.tv_usec()).unwrap_or(0) / 1000
        };
        ms(u.user_time()) + ms(u.system_time())
    })
}

/// The program's peak resident set so far (`VmHWM`), in KiB.
fn peak_rss_kb(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|status| {
            status
                .lines()
                .find_map(|l| l.strip_prefix("VmHWM:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        })
        .unwrap_or(0)
}

/// The container's out-of-memory kill counter (cgroup v2 or v1), if visible.
fn oom_kills() -> Option<u64> {
    [
        "/sys/fs/cgroup/memory.events",
        "/sys/fs/cgroup/memory/memory.oom_control",
    ]
    .iter()
    .find_map(|path| std::fs::read_to_string(path).ok())
    .and_then(|text| {
        text.lines()
            .find_map(|l| l.strip_prefix("oom_kill "))
            .and_then(|n| n.trim().parse().ok())
    })
}

fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}
