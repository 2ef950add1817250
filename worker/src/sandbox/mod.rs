//! The execution engine: runs a program in a fresh, hardened, single-use
//! container and reports what happened.
//!
//! [`Engine::execute`] takes an [`ExecutionRequest`] and a callback that sees
//! output as it happens, and returns an [`ExecutionResult`] with a verdict
//! (`run_contract::Verdict`) for the run and for each test. The program is
//! compiled once and run once per test inside one container by
//! `codecall-runner` (see the `sandbox-runner` crate); expected outputs stay
//! here and are compared here.
//!
//! - [`container`]: the hardened container configuration and Docker calls.
//! - [`pool`]: pre-started containers (each still used exactly once).
//! - [`janitor`]: removes labelled leftovers, at start-up and periodically.
//! - [`manifest`]: the languages and their images.
//!
//! Errors: a [`EngineError`] means the platform failed (Docker, the runner);
//! anything the user's program does is a verdict, never an error.

pub mod container;
pub mod janitor;
pub mod manifest;
pub mod pool;
mod report;

use std::{sync::Arc, time::Duration};

use base64::{Engine as _, engine::general_purpose::STANDARD};
use bollard::{Docker, container::AttachContainerResults};
use futures_util::StreamExt;
use run_contract::RunResult;
use sandbox_runner::{Event, Stream, decode_line, valid_file_name};
use tokio::io::AsyncWriteExt;

use self::{
    container::Started,
    manifest::Manifest,
    pool::{Pool, TakePath},
};

/// Under gVisor compilation gets this many times `compile_time_ms`.
pub const GVISOR_COMPILE_TIME_FACTOR: u64 = 3;

/// The engine's limits and pool settings. The worker binary sets
/// `worker_id`, `runtime`, the pool sizes and `max_total_ms` from its
/// configuration (`WORKER_ID`, `SANDBOX_RUNTIME`, `SANDBOX_POOL_SIZE`,
/// `SANDBOX_POOL_MAX`, `SANDBOX_POOL_DEMAND_WINDOW`, `SANDBOX_START_CONCURRENCY`,
/// `RUN_MAX_TOTAL_TIME`),
/// detects `gvisor` from the engine, and takes every other field from
/// `EngineConfig::default()`: those limits are fixed in code, and no
/// environment variable changes them.
#[derive(Debug, Clone)]
pub struct EngineConfig {
    pub worker_id: String,
    /// Wall time per execution when the request gives none (default 5000).
    /// The worker always gives the run's own limit, which the api chose
    /// (`RUN_DEFAULT_TIME_MS`, at most `RUN_MAX_TIME_MS`).
    pub default_time_ms: u64,
    /// Memory per container when the request gives none (default 256); also
    /// the memory of pre-started containers, so only executions asking for
    /// exactly this use the pool. The worker always gives the run's own
    /// limit (the api's `RUN_DEFAULT_MEMORY_MB`, at most `RUN_MAX_MEMORY_MB`).
    pub default_memory_mb: u64,
    /// Compilation wall time (default 10000; under gVisor,
    /// `GVISOR_COMPILE_TIME_FACTOR` times this).
    pub compile_time_ms: u64,
    /// Kept per stream per execution (default 64 KiB).
    pub output_limit_bytes: usize,
    /// Processes and threads (default 64).
    pub pids_limit: i64,
    /// CPU limit in thousandths of a CPU (Docker's `NanoCpus`, a hard cap;
    /// default 1000, one CPU).
    pub cpu_millis: u64,
    /// Writable work dir size in MiB (default 64) and /tmp's (16).
    pub tmpfs_mb: u64,
    pub tmp_mb: u64,
    /// `nofile` and `fsize` ulimits (256 files, 64 MiB per file).
    pub nofile: i64,
    pub fsize_bytes: i64,
    /// An alternative OCI runtime, e.g. `runsc` for gVisor (`SANDBOX_RUNTIME`).
    pub runtime: Option<String>,
    /// Whether `runtime` is gVisor ([`crate::connect::sandbox_runtime`] tells,
    /// from the engine's runtime list): the container's limits then make
    /// room for gVisor's own kernel and the runner enforces the program's.
    pub gvisor: bool,
    /// Wall budget of one execution, compilation and every test together
    /// (`RUN_MAX_TOTAL_TIME`, default 60 s): each test gets at most what
    /// remains, and tests that find nothing left are `time_limit_exceeded`
    /// without running.
    pub max_total_ms: u64,
    /// Pre-started containers kept per language even when idle: the pool's
    /// floor (`SANDBOX_POOL_SIZE`, 2; 0 disables the pool).
    pub pool_size: usize,
    /// The pool's ceiling per language (`SANDBOX_POOL_MAX`, 4): it grows to
    /// the most executions in flight at once during the demand window.
    pub pool_max: usize,
    /// How far back demand counts (`SANDBOX_POOL_DEMAND_WINDOW`, 60 s); also
    /// how often the pool is trimmed back and stale containers replaced.
    pub pool_demand_window: Duration,
    /// Container starts (create + attach + start) under way at once, pool
    /// and cold path together (`SANDBOX_START_CONCURRENCY`, default
    /// [`default_start_concurrency`]; 0: no cap). Starts beyond it queue, and
    /// an execution with nothing ready waits for a queued one rather than
    /// adding its own: the engine does a start's work on the same cores as
    /// the programs, and past one start per core more at once only slow each
    /// other down (measured in the README's end-to-end benchmark).
    pub start_concurrency: usize,
    /// A pre-started container older than this is replaced (default 10 min;
    /// also its `codecall.expires` lifetime).
    pub pool_max_age: Duration,
}

impl Default for EngineConfig {
    fn default() -> Self {
        EngineConfig {
            worker_id: "worker".into(),
            default_time_ms: 5_000,
            default_memory_mb: 256,
            compile_time_ms: 10_000,
            output_limit_bytes: 64 * 1024,
            pids_limit: 64,
            cpu_millis: 1000,
            tmpfs_mb: 64,
            tmp_mb: 16,
            nofile: 256,
            fsize_bytes: 64 * 1024 * 1024,
            runtime: None,
            gvisor: false,
            max_total_ms: 60_000,
            pool_size: 2,
            pool_max: 4,
            pool_demand_window: Duration::from_secs(60),
            start_concurrency: default_start_concurrency(),
            pool_max_age: Duration::from_secs(600),
        }
    }
}

/// One container start at a time per CPU this process sees (at least 1).
pub fn default_start_concurrency() -> usize {
    std::thread::available_parallelism().map_or(1, std::num::NonZeroUsize::get)
}

#[derive(Debug, Clone)]
pub struct SourceFile {
    pub name: String,
    pub content: String,
}

#[derive(Debug, Clone)]
pub struct TestCase {
    pub stdin: Vec<u8>,
    pub expected_output: String,
}

#[derive(Debug, Clone)]
pub struct ExecutionRequest {
    pub language: String,
    /// One file may be given without a name (`name` empty): it is saved
    /// under the language's source file name.
    pub files: Vec<SourceFile>,
    /// Used when there are no tests.
    pub stdin: Vec<u8>,
    pub args: Vec<String>,
    pub tests: Vec<TestCase>,
    /// Wall time per execution; `None` takes the default.
    pub time_ms: Option<u64>,
    pub memory_mb: Option<u64>,
    /// Labels the container (the run id), for operators.
    pub label: String,
}

/// Output as it happens: which test, which stream, the bytes.
#[derive(Debug, Clone)]
pub struct OutputChunk {
    pub test: usize,
    pub stream: Stream,
    pub data: Vec<u8>,
}

/// One test's result: the contract's type, stored and served as is.
pub type TestResult = run_contract::TestOutcome;

/// What happened: the contract's [`RunResult`] (the top-level output, exit
/// code and signal are those of the execution that decided the verdict — the
/// first failing test, else the first; times and memory are the maxima), plus
/// what the worker measures about the engine itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExecutionResult {
    pub result: RunResult,
    /// Wall time of the whole execution including container start, for metrics.
    pub total_ms: u64,
    /// Whether a pre-started container served it (ready, or waited for).
    pub warm: bool,
    /// Where the execution's time went.
    pub timings: Timings,
}

/// The phases of one execution, in milliseconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timings {
    /// Getting a container: a ready one (~0), waiting for one being started,
    /// or starting one (create + attach + start).
    pub take_ms: u64,
    pub take_path: TakePath,
    /// Request sent to report finished: compilation and tests, in the container.
    pub program_ms: u64,
}

impl std::ops::Deref for ExecutionResult {
    type Target = RunResult;

    fn deref(&self) -> &RunResult {
        &self.result
    }
}

#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    /// The request cannot run anywhere (unknown language, bad file name):
    /// permanent, never retried.
    #[error("invalid execution request: {0}")]
    Invalid(String),
    /// The Docker engine failed: worth retrying.
    #[error("docker: {0}")]
    Docker(#[from] bollard::errors::Error),
    /// The runner did not finish its report (crashed, or the container was
    /// killed at the engine's own deadline).
    #[error("sandbox runner failed: {0}")]
    Runner(String),
}

pub struct Engine {
    docker: Docker,
    manifest: Manifest,
    config: EngineConfig,
    pool: Arc<Pool>,
    /// Container removals still running: a result is returned as soon as it
    /// is known, and the container is removed off the critical path.
    removals: std::sync::Mutex<tokio::task::JoinSet<()>>,
}

impl Engine {
    pub fn new(docker: Docker, manifest: Manifest, config: EngineConfig) -> Arc<Self> {
        let pool = Pool::new(docker.clone(), config.clone());
        Arc::new(Engine {
            docker,
            manifest,
            config,
            pool,
            removals: std::sync::Mutex::new(tokio::task::JoinSet::new()),
        })
    }

    pub fn config(&self) -> &EngineConfig {
        &self.config
    }

    pub fn manifest(&self) -> &Manifest {
        &self.manifest
    }

    pub fn docker(&self) -> &Docker {
        &self.docker
    }

    /// The languages whose image this Docker engine has.
    pub async fn available_languages(&self) -> Vec<manifest::Language> {
        let mut available = Vec::new();
        for language in &self.manifest.languages {
            if self.docker.inspect_image(&language.image).await.is_ok() {
                available.push(language.clone());
            }
        }
        available
    }

    /// Fills the warm pool for every available language (in the background)
    /// and keeps it sized to demand from then on.
    pub async fn warm_up(&self) {
        for language in self.available_languages().await {
            self.pool.refill(&language);
        }
        self.pool.spawn_maintenance();
    }

    /// Removes the warm pool's containers and waits for pending removals (on shutdown).
    pub async fn shutdown(&self) {
        self.pool.drain().await;
        self.settle().await;
    }

    /// Waits until every container of finished executions is removed.
    pub async fn settle(&self) {
        let mut pending =
            std::mem::take(&mut *self.removals.lock().unwrap_or_else(|p| p.into_inner()));
        while pending.join_next().await.is_some() {}
    }

    fn remove_in_background(&self, guard: RemoveGuard) {
        let mut removals = self.removals.lock().unwrap_or_else(|p| p.into_inner());
        while removals.try_join_next().is_some() {}
        removals.spawn(guard.remove_now());
    }

    pub fn pool_size(&self) -> usize {
        self.pool.len()
    }

    /// The most container starts that were under way at once (bounded by
    /// `start_concurrency`).
    pub fn starts_peak(&self) -> usize {
        self.pool.starts_peak()
    }

    /// Runs `request` to completion. `on_output` sees stdout/stderr chunks
    /// as the program writes them (at most the output limit per stream).
    pub async fn execute(
        &self,
        request: ExecutionRequest,
        on_output: &mut (dyn FnMut(OutputChunk) + Send),
    ) -> Result<ExecutionResult, EngineError> {
        let started_at = std::time::Instant::now();
        let language = self
            .manifest
            .get(&request.language)
            .ok_or_else(|| {
                EngineError::Invalid(format!("unknown language `{}`", request.language))
            })?
            .clone();
        let memory_mb = request.memory_mb.unwrap_or(self.config.default_memory_mb);
        let time_ms = request.time_ms.unwrap_or(self.config.default_time_ms);
        let runner_request = self.runner_request(&language, &request, time_ms, memory_mb)?;
        let executions = runner_request.tests.len() as u64;
        // The runner enforces every limit itself; this deadline only catches
        // a runner that stopped answering. Each execution may overrun its
        // limit by the runner's clean-up (about a second at most).
        let deadline = Duration::from_millis(
            (self.compile_time_ms() + executions * time_ms).min(self.config.max_total_ms)
                + executions * 1_000
                + 10_000,
        );

        // Counted in the pool's demand until this execution ends.
        let _demand = self.pool.demand(&language, memory_mb);
        let take_started = std::time::Instant::now();
        let (container, take_path) = match self.pool.take(&language, memory_mb, deadline).await {
            Some(taken) => taken,
            None => (
                self.pool
                    .start_cold(
                        &language,
                        memory_mb,
                        &request.label,
                        deadline + Duration::from_secs(120),
                    )
                    .await?,
                TakePath::Cold,
            ),
        };
        let take_ms = elapsed_ms(take_started);
        metrics::histogram!("codecall_sandbox_take_seconds", "path" => take_path.as_str())
            .record(take_started.elapsed().as_secs_f64());
        let Started {
            id, mut streams, ..
        } = container;
        // Removal happens whatever the outcome; if this future is dropped
        // midway, the guard removes the container in the background.
        let mut guard = RemoveGuard {
            docker: self.docker.clone(),
            id: Some(id.clone()),
            output: None,
        };
        let program_started = std::time::Instant::now();
        let outcome = self
            .drive(&id, &mut streams, &runner_request, deadline, on_output)
            .await;
        let program_ms = elapsed_ms(program_started);
        metrics::histogram!("codecall_sandbox_program_seconds")
            .record(program_started.elapsed().as_secs_f64());
        // Docker's OOM flag only matters when the report is incomplete or a
        // program died of SIGKILL the runner could not attribute.
        let needs_inspect = match &outcome {
            Ok(collected) => collected.needs_oom_check(),
            Err(EngineError::Runner(_)) => true,
            Err(_) => false,
        };
        let oom_killed = needs_inspect
            && self
                .docker
                .inspect_container(&id, None)
                .await
                .ok()
                .and_then(|i| i.state)
                .and_then(|s| s.oom_killed)
                .unwrap_or(false);
        let sandbox_died =
            self.config.gvisor && matches!(&outcome, Ok(c) if !c.finished && !c.deadline_passed);
        // A runner that reported its end exits by itself: removing it once it
        // has spares the engine a kill. Anything else is killed at once.
        if matches!(&outcome, Ok(c) if c.finished) {
            guard.output = Some(streams.output);
        }
        self.remove_in_background(guard);
        let collected = outcome?;

        let expected: Vec<Option<&str>> = if request.tests.is_empty() {
            vec![None]
        } else {
            request
                .tests
                .iter()
                .map(|t| Some(t.expected_output.as_str()))
                .collect()
        };
        let result = report::assemble(
            collected,
            &expected,
            !request.tests.is_empty(),
            oom_killed,
            sandbox_died,
            self.config.output_limit_bytes,
        )?;
        Ok(ExecutionResult {
            result,
            total_ms: elapsed_ms(started_at),
            warm: take_path != TakePath::Cold,
            timings: Timings {
                take_ms,
                take_path,
                program_ms,
            },
        })
    }

    /// The compilation limit: under gVisor, where every system call of a
    /// compiler's many processes goes through gVisor's kernel, three times
    /// the configured one (javac and `go build` take 3–8 s there).
    fn compile_time_ms(&self) -> u64 {
        if self.config.gvisor {
            self.config.compile_time_ms * GVISOR_COMPILE_TIME_FACTOR
        } else {
            self.config.compile_time_ms
        }
    }

    fn runner_request(
        &self,
        language: &manifest::Language,
        request: &ExecutionRequest,
        time_ms: u64,
        memory_mb: u64,
    ) -> Result<sandbox_runner::Request, EngineError> {
        if request.files.is_empty() {
            return Err(EngineError::Invalid("no source files".into()));
        }
        let mut files = Vec::with_capacity(request.files.len());
        for (i, file) in request.files.iter().enumerate() {
            let name = if file.name.is_empty() && i == 0 {
                language.source_file.clone()
            } else {
                file.name.clone()
            };
            if !valid_file_name(&name) {
                return Err(EngineError::Invalid(format!("invalid file name `{name}`")));
            }
            files.push(sandbox_runner::File {
                name,
                content: file.content.clone(),
            });
        }
        let tests = if request.tests.is_empty() {
            vec![sandbox_runner::TestInput {
                stdin: STANDARD.encode(&request.stdin),
            }]
        } else {
            request
                .tests
                .iter()
                .map(|t| sandbox_runner::TestInput {
                    stdin: STANDARD.encode(&t.stdin),
                })
                .collect()
        };
        let mut env: Vec<(String, String)> = vec![
            (
                "PATH".into(),
                "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin".into(),
            ),
            ("HOME".into(), sandbox_runner::WORK_DIR.into()),
            ("LANG".into(), "C.UTF-8".into()),
        ];
        env.extend(language.env.iter().map(|(k, v)| (k.clone(), v.clone())));
        Ok(sandbox_runner::Request {
            nonce: uuid::Uuid::new_v4().simple().to_string(),
            files,
            compile: language.compile.clone(),
            run: language.run.clone(),
            args: request.args.clone(),
            env,
            tests,
            time_limit_ms: time_ms,
            compile_time_limit_ms: self.compile_time_ms(),
            output_limit_bytes: self.config.output_limit_bytes,
            memory_limit_bytes: memory_mb * 1024 * 1024,
            total_time_limit_ms: Some(self.config.max_total_ms),
            watch: self.config.gvisor.then(|| sandbox_runner::Watch {
                memory_bytes: memory_mb * 1024 * 1024,
                tasks: u64::try_from(self.config.pids_limit).unwrap_or(64),
            }),
        })
    }

    /// Sends the request and collects the runner's report until it finishes,
    /// the stream ends, or the deadline passes.
    async fn drive(
        &self,
        id: &str,
        streams: &mut AttachContainerResults,
        request: &sandbox_runner::Request,
        deadline: Duration,
        on_output: &mut (dyn FnMut(OutputChunk) + Send),
    ) -> Result<report::Collected, EngineError> {
        let mut line = serde_json::to_vec(request)
            .map_err(|e| EngineError::Runner(format!("cannot encode request: {e}")))?;
        line.push(b'\n');
        streams.input.write_all(&line).await.map_err(|e| {
            EngineError::Runner(format!("cannot send the request to the container: {e}"))
        })?;
        let _ = streams.input.shutdown().await;
        drop(line);

        let mut collected = report::Collected::default();
        let mut pending = Vec::<u8>::new();
        let nonce = request.nonce.as_str();
        let read = async {
            while let Some(item) = streams.output.next().await {
                match item? {
                    bollard::container::LogOutput::StdOut { message } => {
                        pending.extend_from_slice(&message);
                        while let Some(end) = pending.iter().position(|b| *b == b'\n') {
                            let raw: Vec<u8> = pending.drain(..=end).collect();
                            let text = String::from_utf8_lossy(&raw);
                            match decode_line(nonce, &text) {
                                Some(Event::Output { test, stream, data }) => {
                                    let data = STANDARD.decode(data).unwrap_or_default();
                                    collected.output(test, stream, &data);
                                    on_output(OutputChunk { test, stream, data });
                                }
                                Some(event) => collected.event(event),
                                None => collected.stray_lines += 1,
                            }
                        }
                        if pending.len() > report::MAX_LINE_BYTES {
                            return Err(EngineError::Runner("report line too long".into()));
                        }
                    }
                    bollard::container::LogOutput::StdErr { message } => {
                        collected.runner_stderr(&message);
                    }
                    _ => {}
                }
                if collected.finished {
                    break;
                }
            }
            Ok::<_, EngineError>(())
        };
        match tokio::time::timeout(deadline, read).await {
            Ok(Ok(())) => Ok(collected),
            Ok(Err(e)) => Err(e),
            Err(_) => {
                tracing::warn!(container = %id, ?deadline, "sandbox runner missed the engine deadline");
                collected.deadline_passed = true;
                Ok(collected)
            }
        }
    }
}

fn elapsed_ms(since: std::time::Instant) -> u64 {
    u64::try_from(since.elapsed().as_millis()).unwrap_or(u64::MAX)
}

/// Removes a container when dropped without [`RemoveGuard::remove_now`]
/// (the execution future was cancelled).
struct RemoveGuard {
    docker: Docker,
    id: Option<String>,
    /// The container's output, when it is about to exit by itself: the
    /// removal waits for it to end (see [`container::remove_once_exited`]).
    output: Option<container::Output>,
}

impl RemoveGuard {
    async fn remove_now(mut self) {
        if let Some(id) = self.id.take() {
            container::remove_once_exited(&self.docker, &id, self.output.take()).await;
        }
    }
}

impl Drop for RemoveGuard {
    fn drop(&mut self) {
        if let (Some(id), Ok(handle)) = (self.id.take(), tokio::runtime::Handle::try_current()) {
            let docker = self.docker.clone();
            handle.spawn(async move { container::remove(&docker, &id).await });
        }
    }
}
