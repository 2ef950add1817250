//! The local Docker engine as the engine's tests connect to it, once
//! `require_docker!` (the api's `docker.rs`) found it reachable. Included by
//! path (`#[path]`).

use bollard::Docker;

/// The engine `docker info` reached, its API version negotiated.
pub async fn connect() -> Docker {
    Docker::connect_with_local_defaults()
        .expect("the engine `docker info` reached")
        .negotiate_version()
        .await
        .expect("the engine `docker info` reached answers")
}
