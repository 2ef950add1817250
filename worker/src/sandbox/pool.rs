//! Pre-started containers: started, attached and blocked reading their
//! request, so an execution skips container start-up (~60 ms of the ~80 ms a
//! cold start costs). Each still serves exactly one execution and is removed
//! after it: the pool only moves the start earlier, it never reuses.
//!
//! Only requests with the default memory limit use the pool (memory is fixed
//! when a container is created); time limits travel with the request. A pooled
//! container older than `pool_max_age` (minus the execution's deadline) is
//! replaced rather than used, so the janitor's expiry never hits a live run.

use std::{
    collections::{HashMap, VecDeque},
    sync::{Arc, Mutex},
    time::Duration,
};

use bollard::Docker;

use super::{
    EngineConfig,
    container::{self, Started},
    manifest::Language,
};

pub struct Pool {
    docker: Docker,
    config: EngineConfig,
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    ready: HashMap<String, VecDeque<Started>>,
    starting: HashMap<String, usize>,
}

impl Pool {
    pub fn new(docker: Docker, config: EngineConfig) -> Arc<Self> {
        Arc::new(Pool {
            docker,
            config,
            state: Mutex::new(State::default()),
        })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// A ready container for `language`, if one fits. The caller refills
    /// after its execution (not during it: on a small machine the start of a
    /// replacement would compete with the execution for CPU).
    pub fn take(
        self: &Arc<Self>,
        language: &Language,
        memory_mb: u64,
        deadline: Duration,
    ) -> Option<Started> {
        if self.config.pool_size == 0 || memory_mb != self.config.default_memory_mb {
            return None;
        }
        let mut stale = Vec::new();
        let found = {
            let mut state = self.lock();
            let queue = state.ready.get_mut(&language.id)?;
            let mut found = None;
            while let Some(candidate) = queue.pop_front() {
                let usable_until = self
                    .config
                    .pool_max_age
                    .saturating_sub(deadline + Duration::from_secs(60));
                if candidate.created.elapsed() < usable_until {
                    found = Some(candidate);
                    break;
                }
                stale.push(candidate.id);
            }
            found
        };
        for id in stale {
            let docker = self.docker.clone();
            tokio::spawn(async move { container::remove(&docker, &id).await });
        }
        found
    }

    /// Starts containers in the background until `language` has `pool_size` ready.
    pub fn refill(self: &Arc<Self>, language: &Language) {
        let missing = {
            let mut state = self.lock();
            let ready = state.ready.get(&language.id).map_or(0, VecDeque::len);
            let starting = state.starting.get(&language.id).copied().unwrap_or(0);
            let missing = self.config.pool_size.saturating_sub(ready + starting);
            *state.starting.entry(language.id.clone()).or_default() += missing;
            missing
        };
        if missing == 0 {
            return;
        }
        let pool = Arc::clone(self);
        let language = language.clone();
        tokio::spawn(async move {
            for _ in 0..missing {
                let started = container::start(
                    &pool.docker,
                    &language,
                    &pool.config,
                    pool.config.default_memory_mb,
                    "pool",
                    pool.config.pool_max_age,
                )
                .await;
                let mut state = pool.lock();
                if let Some(n) = state.starting.get_mut(&language.id) {
                    *n = n.saturating_sub(1);
                }
                match started {
                    Ok(c) => state
                        .ready
                        .entry(language.id.clone())
                        .or_default()
                        .push_back(c),
                    Err(e) => {
                        tracing::warn!(language = %language.id, error = %e, "could not pre-start a sandbox container");
                    }
                }
            }
        });
    }

    /// Ready containers, all languages.
    pub fn len(&self) -> usize {
        self.lock().ready.values().map(VecDeque::len).sum()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Removes every ready container (shutdown).
    pub async fn drain(&self) {
        let ids: Vec<String> = {
            let mut state = self.lock();
            state
                .ready
                .drain()
                .flat_map(|(_, q)| q.into_iter().map(|c| c.id))
                .collect()
        };
        for id in ids {
            container::remove(&self.docker, &id).await;
        }
    }
}
