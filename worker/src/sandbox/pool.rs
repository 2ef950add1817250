//! Pre-started containers: started, attached and blocked reading their
//! request, so an execution skips container start-up (create + attach +
//! start, ~80–200 ms on fuse-overlayfs). Each still serves exactly one
//! execution and is removed after it: the pool only moves the start earlier,
//! it never reuses.
//!
//! How it stays warm:
//! - **Refill ahead of demand.** Taking a container starts its replacement
//!   at once (each start is its own task), so back-to-back executions find
//!   one ready instead of waiting for the previous execution to end.
//! - **Sized by recent demand.** Each language keeps as many ready as the
//!   most executions it had in flight at once during the last
//!   `SANDBOX_POOL_DEMAND_WINDOW`, within `SANDBOX_POOL_SIZE` (the floor,
//!   kept even when idle) and `SANDBOX_POOL_MAX` (the ceiling). Surplus
//!   containers are removed once demand fell for a whole window.
//! - **Cold path only when the engine cannot keep up.** With nothing ready,
//!   an execution waits for a container already being started (it has a head
//!   start over a fresh one) as long as one is not promised to another
//!   execution; only otherwise does it start its own (the cold path).
//! - **A few starts at a time.** Every start, the pool's and the cold
//!   path's, takes one of `SANDBOX_START_CONCURRENCY` permits for its
//!   create, attach and start; the rest queue (still counted as starting,
//!   so executions wait for them instead of starting more). The Docker
//!   engine does each start's work on the same cores as the programs: past
//!   one start per core, more in parallel only makes each one slower.
//! - **Retired without a kill.** A container nobody will use gets its stdin
//!   closed, so its runner exits by itself before the removal (see
//!   [`container::retire`]).
//!
//! Only requests with the default memory limit use the pool (memory is fixed
//! when a container is created); time limits travel with the request. A pooled
//! container older than `pool_max_age` (minus the execution's deadline) is
//! replaced rather than used, so the janitor's expiry never hits a live run.

use std::{
    collections::{HashMap, VecDeque},
    sync::{
        Arc, Mutex, Weak,
        atomic::{AtomicBool, AtomicUsize, Ordering},
    },
    time::{Duration, Instant},
};

use bollard::Docker;
use tokio::sync::{Semaphore, SemaphorePermit, oneshot};

use super::{
    EngineConfig,
    container::{self, Started},
    manifest::Language,
};

/// The longest an execution waits for a container another task is starting
/// before it starts its own (a start normally takes well under a second;
/// past this the engine is stuck and a second start is no worse).
pub const WAIT_FOR_STARTING_MAX: Duration = Duration::from_secs(5);

/// How an execution got its container (the `path` label of the metrics).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TakePath {
    /// One was ready.
    Ready,
    /// None was ready; it waited for one the pool was already starting.
    Waited,
    /// It started its own (the pool is disabled, does not fit, or could not keep up).
    Cold,
}

impl TakePath {
    pub fn as_str(self) -> &'static str {
        match self {
            TakePath::Ready => "ready",
            TakePath::Waited => "waited",
            TakePath::Cold => "cold",
        }
    }
}

pub struct Pool {
    docker: Docker,
    config: EngineConfig,
    lanes: Mutex<HashMap<String, Lane>>,
    /// Set by [`Pool::drain`] while holding `lanes`: nothing is started or
    /// kept any more. [`Pool::refill`] reads it under the same lock, so every
    /// start is either counted in a lane's `starting` before the drain looks
    /// or never begins.
    closed: AtomicBool,
    /// Removals of stale or surplus containers still under way (the drain
    /// waits for them too).
    removing: Arc<AtomicUsize>,
    /// Permits for container starts (`None`: no cap).
    starts: Option<Semaphore>,
    /// Container starts under way now, and the most at once so far.
    starts_under_way: AtomicUsize,
    starts_peak: AtomicUsize,
}

/// One container start under way, holding its permit.
struct Starting<'a> {
    pool: &'a Pool,
    _permit: Option<SemaphorePermit<'a>>,
}

impl Drop for Starting<'_> {
    fn drop(&mut self) {
        let now = self.pool.starts_under_way.fetch_sub(1, Ordering::SeqCst) - 1;
        metrics::gauge!("codecall_container_starts_in_progress").set(now as f64);
    }
}

/// One language's containers and demand.
struct Lane {
    language: Language,
    ready: VecDeque<Started>,
    /// Starts in progress.
    starting: usize,
    /// Executions waiting for one of those starts, first come first served.
    waiters: VecDeque<oneshot::Sender<Started>>,
    /// Executions of this language in flight now (pool-eligible ones).
    in_flight: usize,
    /// `(when, in_flight)` at each execution start, within the demand window.
    peaks: VecDeque<(Instant, usize)>,
}

impl Lane {
    fn new(language: &Language) -> Self {
        Lane {
            language: language.clone(),
            ready: VecDeque::new(),
            starting: 0,
            waiters: VecDeque::new(),
            in_flight: 0,
            peaks: VecDeque::new(),
        }
    }

    /// Starts in progress not yet promised to a waiting execution.
    fn unpromised_starting(&mut self) -> usize {
        self.waiters.retain(|w| !w.is_closed());
        self.starting.saturating_sub(self.waiters.len())
    }
}

/// Holds one unit of a language's demand while its execution runs.
pub struct Demand {
    pool: Arc<Pool>,
    language: String,
}

impl Drop for Demand {
    fn drop(&mut self) {
        if let Some(lane) = self.pool.lock().get_mut(&self.language) {
            lane.in_flight = lane.in_flight.saturating_sub(1);
        }
    }
}

impl Pool {
    pub fn new(docker: Docker, config: EngineConfig) -> Arc<Self> {
        Arc::new(Pool {
            docker,
            lanes: Mutex::new(HashMap::new()),
            closed: AtomicBool::new(false),
            removing: Arc::new(AtomicUsize::new(0)),
            starts: (config.start_concurrency > 0)
                .then(|| Semaphore::new(config.start_concurrency)),
            starts_under_way: AtomicUsize::new(0),
            starts_peak: AtomicUsize::new(0),
            config,
        })
    }

    /// Runs [`Pool::maintain`] every demand window (at least every second)
    /// until the pool is drained or dropped.
    pub fn spawn_maintenance(self: &Arc<Self>) {
        let pool: Weak<Pool> = Arc::downgrade(self);
        let every = self.config.pool_demand_window.max(Duration::from_secs(1));
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(every).await;
                match pool.upgrade() {
                    Some(pool) if !pool.closed.load(Ordering::Relaxed) => pool.maintain(),
                    _ => return,
                }
            }
        });
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Lane>> {
        self.lanes.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn enabled(&self) -> bool {
        self.config.pool_size > 0 && !self.closed.load(Ordering::Relaxed)
    }

    /// A ready container older than this is replaced by the maintenance
    /// even before anyone takes it (the longest execution plus margins must
    /// still fit in `pool_max_age`).
    fn keep_ready_for(&self) -> Duration {
        self.config.pool_max_age.saturating_sub(
            Duration::from_millis(self.config.max_total_ms) + Duration::from_secs(180),
        )
    }

    fn fits(&self, memory_mb: u64) -> bool {
        self.enabled() && memory_mb == self.config.default_memory_mb
    }

    /// How many ready containers `lane` should have now: its peak demand in
    /// the window, within the operator's floor and ceiling.
    fn target(&self, lane: &mut Lane, now: Instant) -> usize {
        let window = self.config.pool_demand_window;
        while lane
            .peaks
            .front()
            .is_some_and(|(at, _)| now.duration_since(*at) > window)
        {
            lane.peaks.pop_front();
        }
        let peak = lane.peaks.iter().map(|(_, n)| *n).max().unwrap_or(0);
        let floor = self.config.pool_size;
        peak.clamp(floor, self.config.pool_max.max(floor))
    }

    /// Counts an execution of `language` in the demand, until the returned
    /// guard is dropped. `None` when the execution cannot use the pool.
    pub fn demand(self: &Arc<Self>, language: &Language, memory_mb: u64) -> Option<Demand> {
        if !self.fits(memory_mb) {
            return None;
        }
        let mut lanes = self.lock();
        let lane = lanes
            .entry(language.id.clone())
            .or_insert_with(|| Lane::new(language));
        lane.in_flight += 1;
        let n = lane.in_flight;
        lane.peaks.push_back((Instant::now(), n));
        Some(Demand {
            pool: Arc::clone(self),
            language: language.id.clone(),
        })
    }

    /// A container for `language`: a ready one, else one the pool is already
    /// starting (if not promised to another execution), else `None` (the
    /// caller starts its own). Either way the replacement starts now.
    pub async fn take(
        self: &Arc<Self>,
        language: &Language,
        memory_mb: u64,
        deadline: Duration,
    ) -> Option<(Started, TakePath)> {
        if !self.fits(memory_mb) {
            return None;
        }
        let usable_until = self
            .config
            .pool_max_age
            .saturating_sub(deadline + Duration::from_secs(60));
        let mut stale = Vec::new();
        let (found, waiting) = {
            let mut lanes = self.lock();
            let lane = lanes
                .entry(language.id.clone())
                .or_insert_with(|| Lane::new(language));
            let mut found = None;
            while let Some(candidate) = lane.ready.pop_front() {
                if candidate.created.elapsed() < usable_until {
                    found = Some(candidate);
                    break;
                }
                stale.push(candidate);
            }
            // Counted under the lock, so a drain that looks finds them.
            self.removing.fetch_add(stale.len(), Ordering::SeqCst);
            let waiting = if found.is_none() && lane.unpromised_starting() > 0 {
                let (tx, rx) = oneshot::channel();
                lane.waiters.push_back(tx);
                Some(rx)
            } else {
                None
            };
            (found, waiting)
        };
        for container in stale {
            self.remove_in_background(container);
        }
        self.refill(language);
        if let Some(container) = found {
            return Some((container, TakePath::Ready));
        }
        let rx = waiting?;
        match tokio::time::timeout(WAIT_FOR_STARTING_MAX, rx).await {
            Ok(Ok(container)) => Some((container, TakePath::Waited)),
            // The start failed, or is stuck: the caller starts its own.
            Ok(Err(_)) | Err(_) => None,
        }
    }

    /// Starts containers in the background until `language` has its target
    /// (ready + starting, not counting those promised to waiting executions),
    /// and removes ready ones beyond it.
    pub fn refill(self: &Arc<Self>, language: &Language) {
        if !self.enabled() {
            return;
        }
        let (missing, surplus) = {
            let mut lanes = self.lock();
            // Checked again under the lock: a drain may have begun since.
            if self.closed.load(Ordering::Relaxed) {
                return;
            }
            let lane = lanes
                .entry(language.id.clone())
                .or_insert_with(|| Lane::new(language));
            let target = self.target(lane, Instant::now());
            metrics::gauge!("codecall_sandbox_pool_target", "language" => language.id.clone())
                .set(target as f64);
            let keep_for = self.keep_ready_for();
            let (kept, mut surplus): (VecDeque<Started>, VecDeque<Started>) = lane
                .ready
                .drain(..)
                .partition(|c| c.created.elapsed() < keep_for);
            lane.ready = kept;
            let supply = lane.ready.len() + lane.unpromised_starting();
            let missing = target.saturating_sub(supply);
            lane.starting += missing;
            while lane.ready.len() > target {
                if let Some(c) = lane.ready.pop_back() {
                    surplus.push_back(c);
                }
            }
            // Counted under the lock, so a drain that looks finds them.
            self.removing.fetch_add(surplus.len(), Ordering::SeqCst);
            (missing, surplus)
        };
        for container in surplus {
            self.remove_in_background(container);
        }
        for _ in 0..missing {
            let pool = Arc::clone(self);
            let language = language.clone();
            tokio::spawn(async move { pool.start_one(&language).await });
        }
    }

    /// Retires a container in its own task; the caller has counted it in
    /// `removing` (under the lanes' lock), and this uncounts it once done.
    fn remove_in_background(&self, started: Started) {
        let docker = self.docker.clone();
        let removing = Arc::clone(&self.removing);
        tokio::spawn(async move {
            container::retire(&docker, started).await;
            removing.fetch_sub(1, Ordering::SeqCst);
        });
    }

    /// Waits for a start permit (see `SANDBOX_START_CONCURRENCY`) and counts
    /// the start as under way until the returned guard is dropped.
    async fn begin_start(&self) -> Starting<'_> {
        let permit = match &self.starts {
            Some(starts) => {
                let queued = Instant::now();
                let permit = starts.acquire().await.ok();
                metrics::histogram!("codecall_container_start_queue_seconds")
                    .record(queued.elapsed().as_secs_f64());
                permit
            }
            None => None,
        };
        let now = self.starts_under_way.fetch_add(1, Ordering::SeqCst) + 1;
        self.starts_peak.fetch_max(now, Ordering::SeqCst);
        metrics::gauge!("codecall_container_starts_in_progress").set(now as f64);
        Starting {
            pool: self,
            _permit: permit,
        }
    }

    /// The most container starts that were under way at once.
    pub fn starts_peak(&self) -> usize {
        self.starts_peak.load(Ordering::SeqCst)
    }

    /// Starts a container for the cold path, within the same cap on starts
    /// at once as the pool's own.
    pub async fn start_cold(
        &self,
        language: &Language,
        memory_mb: u64,
        label: &str,
        lifetime: Duration,
    ) -> Result<Started, bollard::errors::Error> {
        let _starting = self.begin_start().await;
        container::start(
            &self.docker,
            language,
            &self.config,
            memory_mb,
            label,
            lifetime,
        )
        .await
    }

    async fn start_one(&self, language: &Language) {
        let starting = self.begin_start().await;
        // After a drain nothing is kept: a start still queued does not
        // begin, and one that finishes is removed before it counts as done,
        // so a drain waiting for starts finds no container left.
        let started = if self.closed.load(Ordering::Relaxed) {
            None
        } else {
            match container::start(
                &self.docker,
                language,
                &self.config,
                self.config.default_memory_mb,
                "pool",
                self.config.pool_max_age,
            )
            .await
            {
                Ok(c) if self.closed.load(Ordering::Relaxed) => {
                    container::retire(&self.docker, c).await;
                    None
                }
                other => Some(other),
            }
        };
        drop(starting);
        let mut lanes = self.lock();
        let Some(lane) = lanes.get_mut(&language.id) else {
            return;
        };
        lane.starting = lane.starting.saturating_sub(1);
        match started {
            None => {
                // The first waiter goes to the cold path.
                lane.waiters.pop_front();
            }
            Some(Ok(mut c)) => {
                // The first waiter still waiting gets it; else it is ready.
                loop {
                    let Some(waiter) = lane.waiters.pop_front() else {
                        lane.ready.push_back(c);
                        break;
                    };
                    match waiter.send(c) {
                        Ok(()) => break,
                        Err(back) => c = back,
                    }
                }
            }
            Some(Err(e)) => {
                // The first waiter goes to the cold path rather than wait for
                // a start that will not come.
                lane.waiters.pop_front();
                tracing::warn!(language = %language.id, error = %e, "could not pre-start a sandbox container");
            }
        }
    }

    /// Refills (and trims) every language the pool knows: run every demand
    /// window, so a pool shrinks back to its floor after a burst and stale
    /// containers are replaced while nobody executes.
    pub fn maintain(self: &Arc<Self>) {
        let languages: Vec<Language> = self.lock().values().map(|l| l.language.clone()).collect();
        for language in languages {
            self.refill(&language);
        }
    }

    /// Ready containers, all languages.
    pub fn len(&self) -> usize {
        self.lock().values().map(|l| l.ready.len()).sum()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Removes every ready container, those still starting once they are
    /// up, and waits for removals already under way (shutdown; waits for
    /// starts and removals at most [`WAIT_FOR_STARTING_MAX`]).
    ///
    /// `closed` is set under the lanes' lock, which [`Pool::refill`] also
    /// checks it under: a refill racing with the drain either counted its
    /// starts before (and is waited for here) or starts nothing.
    pub async fn drain(&self) {
        {
            let _lanes = self.lock();
            self.closed.store(true, Ordering::Relaxed);
        }
        let waited = Instant::now();
        while (self.lock().values().any(|l| l.starting > 0)
            || self.removing.load(Ordering::SeqCst) > 0)
            && waited.elapsed() < WAIT_FOR_STARTING_MAX
        {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let ready: Vec<Started> = {
            let mut lanes = self.lock();
            lanes.values_mut().flat_map(|l| l.ready.drain(..)).collect()
        };
        futures_util::future::join_all(
            ready
                .into_iter()
                .map(|c| container::retire(&self.docker, c)),
        )
        .await;
    }
}
