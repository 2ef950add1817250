//! The local Docker engine as the engine's tests connect to it, when
//! [`docker_available`] says there is one (which fails the test instead when
//! `CI` is set). Included by path (`#[path]`), next to the api's `docker.rs`.

use bollard::Docker;

use crate::docker::docker_available;

/// The engine, or None (outside CI) when no Docker engine is reachable.
pub async fn connect() -> Option<Docker> {
    if !docker_available() {
        return None;
    }
    let docker = Docker::connect_with_local_defaults()
        .expect("the engine `docker info` reached")
        .negotiate_version()
        .await
        .expect("the engine `docker info` reached answers");
    Some(docker)
}
