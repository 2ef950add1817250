//! `POST /api/runs?wait=true` without polling: each api process keeps one
//! `LISTEN codecall_run_finished` connection (a trigger on `runs` sends the
//! run id when a run finishes, on commit) and wakes the requests waiting for
//! that run. A waiter registers *before* it reads the row, so a finish that
//! happened before it listened is seen by that read, and one after by the
//! notification. If the connection is lost, every waiter re-reads once it is
//! back (a notification may have been missed meanwhile).

use std::{
    collections::HashMap,
    sync::{Arc, Mutex, Weak},
    time::Duration,
};

use sqlx::postgres::PgListener;
use tokio::sync::Notify;
use uuid::Uuid;

use run_contract::RUN_FINISHED_CHANNEL;

#[derive(Default)]
pub struct RunWaiters {
    waiting: Mutex<HashMap<Uuid, Weak<Notify>>>,
    /// Woken when the listening connection came back: re-read everything.
    reconnected: Notify,
}

/// One request's interest in one run; dropping it forgets the run when it
/// was the last.
pub struct Ticket<'a> {
    waiters: &'a RunWaiters,
    run_id: Uuid,
    notify: Arc<Notify>,
}

impl RunWaiters {
    /// Connects the listener and spawns its task.
    pub async fn spawn(database_url: &str) -> anyhow::Result<Arc<Self>> {
        let mut listener = PgListener::connect(database_url).await?;
        listener.listen(RUN_FINISHED_CHANNEL).await?;
        let waiters = Arc::new(RunWaiters::default());
        tokio::spawn({
            let waiters = Arc::clone(&waiters);
            async move {
                loop {
                    match listener.try_recv().await {
                        Ok(Some(notification)) => {
                            if let Ok(id) = notification.payload().parse::<Uuid>() {
                                waiters.finished(id);
                            }
                        }
                        Ok(None) => waiters.reconnected.notify_waiters(),
                        Err(e) => {
                            tracing::warn!(error = %e, "lost the run-finished notifications; reconnecting");
                            // Listening again proves the connection is back.
                            loop {
                                tokio::time::sleep(Duration::from_secs(1)).await;
                                if listener.unlisten(RUN_FINISHED_CHANNEL).await.is_ok()
                                    && listener.listen(RUN_FINISHED_CHANNEL).await.is_ok()
                                {
                                    break;
                                }
                            }
                            waiters.reconnected.notify_waiters();
                        }
                    }
                }
            }
        });
        Ok(waiters)
    }

    pub fn register(&self, run_id: Uuid) -> Ticket<'_> {
        let mut waiting = self.waiting.lock().unwrap_or_else(|e| e.into_inner());
        let notify = match waiting.get(&run_id).and_then(Weak::upgrade) {
            Some(notify) => notify,
            None => {
                let notify = Arc::new(Notify::new());
                waiting.insert(run_id, Arc::downgrade(&notify));
                notify
            }
        };
        Ticket {
            waiters: self,
            run_id,
            notify,
        }
    }

    fn finished(&self, run_id: Uuid) {
        let notify = {
            let waiting = self.waiting.lock().unwrap_or_else(|e| e.into_inner());
            waiting.get(&run_id).and_then(Weak::upgrade)
        };
        if let Some(notify) = notify {
            notify.notify_waiters();
        }
    }

    /// Runs being waited for (for tests and metrics).
    pub fn len(&self) -> usize {
        self.waiting.lock().map(|w| w.len()).unwrap_or(0)
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl Ticket<'_> {
    /// Completes at the next notification for this run, or reconnection.
    /// Create it (and `enable` it) before reading the row.
    pub fn changed(&self) -> impl Future<Output = ()> + '_ {
        let finished = self.notify.notified();
        let reconnected = self.waiters.reconnected.notified();
        async move {
            tokio::select! {
                () = finished => {}
                () = reconnected => {}
            }
        }
    }
}

impl Drop for Ticket<'_> {
    fn drop(&mut self) {
        let mut waiting = self
            .waiters
            .waiting
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        // Ours and the map's weak: nobody else waits for this run.
        if Arc::strong_count(&self.notify) == 1 {
            waiting.remove(&self.run_id);
        }
    }
}
