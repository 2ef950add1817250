//! Whether the tests may use a Docker engine: one definition for the api's
//! and the worker's test binaries (the worker's include this file by path).

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
