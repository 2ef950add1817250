//! Whether the tests may use a Docker engine: one definition for the api's
//! and the worker's test binaries (the worker's include this file by path,
//! as `mod docker` at their root).

use std::process::{Command, Stdio};

/// Whether a Docker engine is reachable. When `CI` is set an unreachable
/// engine fails the test instead: a CI without Docker must not pass with the
/// whole run pipeline untested.
pub fn docker_available() -> bool {
    let reachable = Command::new("docker")
        .arg("info")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    assert!(
        reachable || std::env::var_os("CI").is_none(),
        "CI is set but no Docker engine is reachable"
    );
    reachable
}

/// Returns from the test when no Docker engine is reachable (printing that
/// it was skipped) — outside CI: under `CI` [`docker_available`] fails it.
#[allow(unused_macros)] // a test binary without Docker tests
macro_rules! require_docker {
    () => {
        if !$crate::docker::docker_available() {
            eprintln!("skipped: no reachable Docker engine");
            return;
        }
    };
}
#[allow(unused_imports)]
pub(crate) use require_docker;
