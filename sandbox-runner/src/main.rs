//! `codecall-runner`: PID 1 of every sandbox container (see the library docs
//! for the protocol and why its reports cannot be forged).
//!
//! One request in (a JSON line on stdin), compile once, run each test with its
//! own time limit, output caps and resource figures, report, exit. Exiting as
//! PID 1 ends the container, and with it anything the program left behind.

use std::{
    io::{BufRead, Read, StdoutLock, Write},
    os::{
        fd::{AsFd, OwnedFd},
        unix::process::{CommandExt, ExitStatusExt},
    },
    path::Path,
    process::{Command, ExitStatus, Stdio},
    thread,
    time::{Duration, Instant},
};

use base64::{Engine as _, engine::general_purpose::STANDARD};
use nix::{
    errno::Errno,
    fcntl::{FcntlArg, OFlag, fcntl},
    poll::{PollFd, PollFlags, PollTimeout, poll},
    sys::{
        resource::{UsageWho, getrusage},
        signal::{Signal, kill, killpg},
        wait::{WaitPidFlag, WaitStatus, waitpid},
    },
    unistd::Pid,
};
use sandbox_runner::{
    Event, Outcome, Request, Stream, WORK_DIR, Watch, encode_line, valid_file_name,
};

/// Largest request line accepted (sources, args and every test's stdin).
const MAX_REQUEST_BYTES: u64 = 64 * 1024 * 1024;
/// Compiler output kept for the report.
const COMPILE_OUTPUT_LIMIT: usize = 64 * 1024;
/// How long pipes may stay open after the program exited (a background
/// child holding them) before everything left is killed.
const LINGER: Duration = Duration::from_millis(50);
/// How often the limits the runtime leaves to the runner ([`Watch`], under
/// gVisor) are checked while the program runs.
const WATCH_TICK: Duration = Duration::from_millis(2);
/// How often the program's peak memory is sampled otherwise (the cgroup
/// enforces the limits). Output and the time limit wake the loop on their
/// own; every wake-up is a context switch and a `/proc` read taken from the
/// programs of the machine, so an idle program is looked at rarely.
const SAMPLE_TICK: Duration = Duration::from_millis(10);
/// How often a program whose output pipes are closed is checked for its
/// exit (closing them is usually its last act before exiting).
const EXIT_TICK: Duration = Duration::from_millis(1);
/// How long the runner waits for everything it killed to be reaped before
/// the next execution starts.
const REAP_TIMEOUT: Duration = Duration::from_secs(2);

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
    // The run's total budget starts when its request arrives.
    let budget_end = request
        .total_time_limit_ms
        .map(|ms| Instant::now() + Duration::from_millis(ms));

    let mut out = Reporter {
        nonce: request.nonce.clone(),
        out: std::io::stdout().lock(),
    };
    if let Err(message) = run(&request, budget_end, &mut out) {
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

/// `limit`, cut to what remains of the run's budget.
fn within_budget(limit: Duration, budget_end: Option<Instant>) -> Duration {
    budget_end.map_or(limit, |end| {
        limit.min(end.saturating_duration_since(Instant::now()))
    })
}

fn run(
    request: &Request,
    budget_end: Option<Instant>,
    out: &mut Reporter<'_>,
) -> Result<(), String> {
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
            &[],
            within_budget(
                Duration::from_millis(request.compile_time_limit_ms),
                budget_end,
            ),
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
        let time_limit = within_budget(Duration::from_millis(request.time_limit_ms), budget_end);
        let stats = if time_limit.is_zero() {
            // The run's budget is spent: the test is not run.
            Stats {
                outcome: Outcome::TimeLimit,
                time_ms: 0,
                cpu_ms: 0,
                memory_kb: 0,
                bytes: [0, 0],
            }
        } else {
            execute(
                &command,
                request,
                &stdin,
                time_limit,
                request.output_limit_bytes,
                &mut |stream, data| {
                    out.send(&Event::Output {
                        test: index,
                        stream,
                        data: STANDARD.encode(data),
                    })
                },
            )
        };
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
///
/// One thread does everything (the pipes are polled, stdin is written as
/// the program reads it): a program that exhausts the pids limit cannot
/// make the runner fail to start a thread of its own.
fn execute(
    command: &[String],
    request: &Request,
    stdin: &[u8],
    time_limit: Duration,
    output_limit: usize,
    sink: &mut dyn FnMut(Stream, &[u8]),
) -> Stats {
    let cpu_before = children_cpu_ms();
    let maxrss_before = children_maxrss_kb();
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
        Some(Err(e)) => {
            reap_all();
            return failed_to_start(format!("cannot start `{}`: {e}", command[0]));
        }
        None => return failed_to_start("empty command".into()),
    };
    let pid = child.id();
    // Make the program, not the runner, the out-of-memory killer's choice.
    let _ = std::fs::write(format!("/proc/{pid}/oom_score_adj"), "1000");

    // Our ends of the pipes, non-blocking: a program that never reads its
    // stdin, or floods its output, never blocks the runner.
    let mut input: Option<OwnedFd> = child
        .stdin
        .take()
        .map(OwnedFd::from)
        .filter(|_| !stdin.is_empty());
    let mut pipes: [Option<OwnedFd>; 2] = [
        child.stdout.take().map(OwnedFd::from),
        child.stderr.take().map(OwnedFd::from),
    ];
    for fd in input.iter().chain(pipes.iter().flatten()) {
        let _ = fcntl(fd, FcntlArg::F_SETFL(OFlag::O_NONBLOCK));
    }
    let mut written = 0usize;
    let mut buf = vec![0u8; 32 * 1024];

    let deadline = started + time_limit;
    let mut bytes = [0u64; 2];
    let mut limit_hit: Option<Outcome> = None;
    let mut exit: Option<(ExitStatus, Instant)> = None;
    let mut peak_kb = 0;
    let tick = if request.watch.is_some() {
        WATCH_TICK
    } else {
        SAMPLE_TICK
    };
    loop {
        if exit.is_none() {
            peak_kb = peak_kb.max(rss_kb(pid));
            if limit_hit.is_none() && Instant::now() >= deadline {
                kill_program(pid);
                limit_hit = Some(Outcome::TimeLimit);
            }
            if limit_hit.is_none()
                && let Some(watch) = request.watch
                && !watch_limits(watch)
            {
                kill_program(pid);
                limit_hit = Some(Outcome::MemoryLimit);
            }
        }

        // The next moment something must be checked without a pipe waking
        // us: the time limit, or the end of the linger after an exit.
        let due = match exit {
            None if limit_hit.is_none() => deadline,
            None => Instant::now() + tick,
            Some((_, at)) if at.elapsed() > LINGER => at + LINGER * 20,
            Some((_, at)) => at + LINGER,
        };
        let timeout = tick.min(due.saturating_duration_since(Instant::now()));
        let ready = wait_for_pipes(&pipes, input.as_ref(), timeout);
        for (slot, events) in ready {
            match slot {
                Slot::Output(i) => {
                    let Some(fd) = &pipes[i] else { continue };
                    match nix::unistd::read(fd, &mut buf) {
                        Ok(0) => pipes[i] = None,
                        Ok(n) => {
                            let stream = if i == 0 {
                                Stream::Stdout
                            } else {
                                Stream::Stderr
                            };
                            let room = (output_limit as u64).saturating_sub(bytes[i]);
                            let keep = n.min(usize::try_from(room).unwrap_or(usize::MAX));
                            if keep > 0 {
                                sink(stream, &buf[..keep]);
                            }
                            bytes[i] += n as u64;
                            if bytes[i] > output_limit as u64 && limit_hit.is_none() {
                                kill_program(pid);
                                limit_hit = Some(Outcome::OutputLimit);
                            }
                        }
                        Err(Errno::EAGAIN | Errno::EINTR) => {}
                        Err(_) => pipes[i] = None,
                    }
                }
                Slot::Input => {
                    let Some(fd) = &input else { continue };
                    if !events.contains(PollFlags::POLLOUT) {
                        // The program closed its stdin (or exited).
                        input = None;
                        continue;
                    }
                    let end = stdin.len().min(written + 64 * 1024);
                    match nix::unistd::write(fd, &stdin[written..end]) {
                        Ok(n) => {
                            written += n;
                            if written >= stdin.len() {
                                input = None; // EOF for the program
                            }
                        }
                        Err(Errno::EAGAIN | Errno::EINTR) => {}
                        Err(_) => input = None,
                    }
                }
            }
        }

        if exit.is_none()
            && let Ok(Some(status)) = child.try_wait()
        {
            exit = Some((status, Instant::now()));
            input = None;
        }
        if let Some((_, at)) = exit {
            if pipes.iter().all(Option::is_none) || at.elapsed() > LINGER * 20 {
                break;
            }
            if at.elapsed() > LINGER {
                // Something the program started still holds its pipes.
                kill_program(pid);
            }
        }
    }
    drop(pipes);
    kill_program(pid);
    let _ = child.wait();
    reap_all();

    let (status, ended) = exit.unwrap_or_else(|| (ExitStatus::from_raw(9), Instant::now()));
    let time_ms = millis(ended.duration_since(started));
    let maxrss_after = children_maxrss_kb();
    if maxrss_after > maxrss_before {
        // The largest resident set of any child so far grew: this one's.
        peak_kb = peak_kb.max(maxrss_after);
    }
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

#[derive(Clone, Copy)]
enum Slot {
    /// 0: stdout, 1: stderr.
    Output(usize),
    Input,
}

/// Waits up to `timeout` for a pipe to be ready (with none left open, one
/// [`EXIT_TICK`]); which ones are.
fn wait_for_pipes(
    pipes: &[Option<OwnedFd>; 2],
    input: Option<&OwnedFd>,
    timeout: Duration,
) -> Vec<(Slot, PollFlags)> {
    let mut slots = Vec::with_capacity(3);
    let mut fds = Vec::with_capacity(3);
    for (i, fd) in pipes.iter().enumerate() {
        if let Some(fd) = fd {
            slots.push(Slot::Output(i));
            fds.push(PollFd::new(fd.as_fd(), PollFlags::POLLIN));
        }
    }
    if let Some(fd) = input {
        slots.push(Slot::Input);
        fds.push(PollFd::new(fd.as_fd(), PollFlags::POLLOUT));
    }
    if fds.is_empty() {
        thread::sleep(EXIT_TICK.min(timeout));
        return Vec::new();
    }
    let timeout = PollTimeout::try_from(timeout).unwrap_or(PollTimeout::ZERO);
    if poll(&mut fds, timeout).unwrap_or(0) <= 0 {
        return Vec::new();
    }
    slots
        .into_iter()
        .zip(
            fds.iter()
                .map(|fd| fd.revents().unwrap_or(PollFlags::empty())),
        )
        .filter(|(_, events)| !events.is_empty())
        .collect()
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

/// As PID 1 we inherit every orphan: kill and reap them all, so the next
/// execution starts with nothing of this one left (zombies would count
/// against the pids limit). Bounded by [`REAP_TIMEOUT`].
fn reap_all() {
    if std::process::id() != 1 {
        return;
    }
    let until = Instant::now() + REAP_TIMEOUT;
    loop {
        let _ = kill(Pid::from_raw(-1), Signal::SIGKILL);
        match waitpid(Pid::from_raw(-1), Some(WaitPidFlag::WNOHANG)) {
            Err(Errno::ECHILD) => return,
            Ok(WaitStatus::StillAlive) => {
                if Instant::now() >= until {
                    return;
                }
                thread::sleep(Duration::from_millis(1));
            }
            Ok(_) | Err(Errno::EINTR) => {}
            Err(_) => return,
        }
    }
}

/// Checks the limits the runtime leaves to us (see [`Watch`]): kills the
/// newest processes while the sandbox holds more live tasks than allowed
/// (a pids limit would have refused them), and answers false when the
/// memory in use inside the sandbox is past the limit.
fn watch_limits(watch: Watch) -> bool {
    enforce_tasks(watch.tasks);
    sandbox_memory_bytes().is_none_or(|used| used <= watch.memory_bytes)
}

/// Memory in use inside the sandbox, from `/proc/meminfo` (under gVisor its
/// own kernel's accounting of the sandbox: anonymous memory, page tables,
/// tmpfs files).
fn sandbox_memory_bytes() -> Option<u64> {
    let text = std::fs::read_to_string("/proc/meminfo").ok()?;
    let field = |name: &str| {
        text.lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
    };
    Some(field("MemTotal:")?.saturating_sub(field("MemFree:")?) * 1024)
}

/// Kills the newest live processes until the live tasks (threads of every
/// process, the runner's included; zombies hold nothing) fit in `limit`.
fn enforce_tasks(limit: u64) {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return;
    };
    let mut live: Vec<(i32, u64)> = entries
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<i32>().ok())
        .filter_map(|pid| {
            let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
            let field = |name: &str| status.lines().find_map(|l| l.strip_prefix(name));
            if field("State:").is_some_and(|s| s.trim_start().starts_with(['Z', 'X'])) {
                return None;
            }
            let threads = field("Threads:").and_then(|t| t.trim().parse().ok())?;
            Some((pid, threads))
        })
        .collect();
    let mut total: u64 = live.iter().map(|(_, t)| t).sum();
    live.sort_unstable_by_key(|(pid, _)| std::cmp::Reverse(*pid));
    for (pid, threads) in live {
        if total <= limit {
            break;
        }
        if pid != 1 {
            let _ = kill(Pid::from_raw(pid), Signal::SIGKILL);
            total = total.saturating_sub(threads);
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

/// The largest resident set of any reaped child so far, in KiB.
fn children_maxrss_kb() -> u64 {
    getrusage(UsageWho::RUSAGE_CHILDREN).map_or(0, |u| u64::try_from(u.max_rss()).unwrap_or(0))
}

/// The program's peak resident set so far (`VmHWM`; gVisor has only the
/// current `VmRSS`, sampled), in KiB.
fn rss_kb(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|status| {
            let field = |name: &str| {
                status
                    .lines()
                    .find_map(|l| l.strip_prefix(name))
                    .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            };
            field("VmHWM:").or_else(|| field("VmRSS:"))
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
