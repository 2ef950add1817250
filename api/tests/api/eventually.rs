//! [`eventually`]: the one way the tests wait for something to become true.
//!
//! Every wait polls the same way, has a budget stated at the call site, and
//! fails with a message naming what it waited for and what it last saw,
//! instead of each test growing its own loop, interval and panic. The worker
//! tests include this file too (`#[path]`), so both suites wait alike.

use std::{fmt::Debug, future::Future, time::Duration};

/// How often a condition is checked again.
const INTERVAL: Duration = Duration::from_millis(50);

/// What one check answers: done (with a value) or not yet (with what it saw,
/// for the failure message).
pub trait Attempt {
    type Output;
    fn into_result(self) -> Result<Self::Output, String>;
}

impl Attempt for bool {
    type Output = ();
    fn into_result(self) -> Result<(), String> {
        if self { Ok(()) } else { Err("false".into()) }
    }
}

impl<T> Attempt for Option<T> {
    type Output = T;
    fn into_result(self) -> Result<T, String> {
        self.ok_or_else(|| "nothing yet".into())
    }
}

impl<T, E: Debug> Attempt for Result<T, E> {
    type Output = T;
    fn into_result(self) -> Result<T, String> {
        self.map_err(|e| format!("{e:?}"))
    }
}

/// Runs `check` until it answers done (`true`, `Some`, `Ok`) and returns its
/// value; panics naming `what` (and the last answer) once `timeout` has
/// passed, including when one check is still running at that moment.
pub async fn eventually<A, F, Fut>(timeout: Duration, what: &str, mut check: F) -> A::Output
where
    A: Attempt,
    F: FnMut() -> Fut,
    Fut: Future<Output = A>,
{
    let deadline = tokio::time::Instant::now() + timeout;
    let mut last = String::from("no answer yet");
    loop {
        match tokio::time::timeout_at(deadline, check()).await {
            Ok(answer) => match answer.into_result() {
                Ok(value) => return value,
                Err(seen) => last = seen,
            },
            Err(_) => break,
        }
        if tokio::time::Instant::now() + INTERVAL > deadline {
            break;
        }
        tokio::time::sleep(INTERVAL).await;
    }
    panic!("waited {timeout:?} for {what}; last: {last}");
}
