//! The warm pool against the real Docker engine and the python sandbox
//! image: it refills when a container is taken (not after the execution), so
//! back-to-back executions never fall to the cold path; it grows to the
//! demand seen within its window, never past its ceiling, and shrinks back
//! to its floor once that demand is older than the window. No more
//! containers start at once than the cap on starts.

use std::{sync::Arc, time::Duration};

use codecall_worker::sandbox::{
    Engine, EngineConfig, ExecutionResult, manifest::Manifest, pool::TakePath,
};
use eventually::eventually;
use request::request;

#[path = "../../api/tests/api/docker.rs"]
mod docker;
use docker::require_docker;
#[path = "support/docker.rs"]
mod engine_docker;
#[path = "../../api/tests/api/eventually.rs"]
mod eventually;
#[path = "support/request.rs"]
mod request;

/// The engine with `config`, python's image checked.
async fn engine_with(config: EngineConfig) -> Arc<Engine> {
    let docker = engine_docker::connect().await;
    let engine = Engine::new(docker, Manifest::embedded(), config);
    assert!(
        engine
            .available_languages()
            .await
            .iter()
            .any(|l| l.id == "python"),
        "sandbox image for python missing: run sandbox-images/build.sh"
    );
    engine
}

/// The engine with `$config`, or a return from the test when no Docker
/// engine is reachable (`require_docker!`).
macro_rules! engine_or_skip {
    ($config:expr) => {{
        require_docker!();
        engine_with($config).await
    }};
}

async fn hello(engine: &Engine) -> ExecutionResult {
    let result = engine
        .execute(request("python", "print('hi')"), &mut |_| {})
        .await
        .expect("the engine itself does not fail");
    assert_eq!(result.stdout, "hi\n");
    result
}

/// Waits until the pool holds `n` ready containers (`what`: why it should).
async fn pool_reaches(engine: &Engine, n: usize, what: &str) {
    eventually(Duration::from_secs(20), what, || async {
        let size = engine.pool_size();
        if size == n { Ok(()) } else { Err(size) }
    })
    .await
}

#[tokio::test]
async fn back_to_back_executions_never_take_the_cold_path() {
    let engine = engine_or_skip!(EngineConfig {
        worker_id: "pool-test-back-to-back".into(),
        pool_size: 1,
        pool_max: 1,
        ..EngineConfig::default()
    });
    // The first one creates python's lane; after that the pool has one.
    hello(&engine).await;
    pool_reaches(&engine, 1, "the pool fills").await;
    // No pause at all: each take starts the replacement the next one uses
    // (ready, or waited for: it was already starting).
    for i in 0..6 {
        let result = hello(&engine).await;
        assert_ne!(
            result.timings.take_path,
            TakePath::Cold,
            "execution {i} fell to the cold path"
        );
        assert!(result.warm);
    }
    engine.shutdown().await;
}

#[tokio::test]
async fn the_pool_follows_demand_within_its_bounds() {
    let engine = engine_or_skip!(EngineConfig {
        worker_id: "pool-test-demand".into(),
        pool_size: 1,
        pool_max: 3,
        pool_demand_window: Duration::from_secs(3),
        ..EngineConfig::default()
    });
    hello(&engine).await;
    pool_reaches(&engine, 1, "the floor when idle").await;

    // Four at once: the demand (4) is above the ceiling (3).
    let results = futures_util::future::join_all((0..4).map(|_| hello(&engine))).await;
    assert_eq!(results.len(), 4);
    pool_reaches(&engine, 3, "grows to the ceiling").await;
    // Time passing is what is under test here, not a wait for readiness:
    // half the window later the pool still holds the ceiling, no more.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(engine.pool_size(), 3, "never past the ceiling");

    // Once the burst is older than the window, one execution's demand is 1.
    tokio::time::sleep(Duration::from_secs(2)).await;
    hello(&engine).await;
    pool_reaches(&engine, 1, "back to the floor").await;
    engine.shutdown().await;
}

/// Six executions at once, with the pool disabled so each starts its own
/// container: without a cap they start side by side; with a cap of one they
/// start one at a time, and every execution still gets its container.
#[tokio::test]
async fn container_starts_at_once_stay_within_the_cap() {
    for (cap, worker_id) in [(0, "pool-test-uncapped"), (1, "pool-test-cap-1")] {
        let engine = engine_or_skip!(EngineConfig {
            worker_id: worker_id.into(),
            pool_size: 0,
            start_concurrency: cap,
            ..EngineConfig::default()
        });
        let results = futures_util::future::join_all((0..6).map(|_| hello(&engine))).await;
        assert!(
            results
                .iter()
                .all(|r| r.timings.take_path == TakePath::Cold),
            "the pool is disabled: every execution starts its own"
        );
        let peak = engine.starts_peak();
        if cap == 0 {
            assert!(
                peak > 1,
                "uncapped, six executions started one at a time ({peak})"
            );
        } else {
            assert_eq!(peak, cap, "starts at once past the cap of {cap}");
        }
        engine.shutdown().await;
    }
}
