//! One sandbox container: the hardened configuration (every knob of SPEC §8
//! is set here, explicitly) and the Docker calls to start, attach and remove it.

use std::{
    collections::HashMap,
    time::{Duration, Instant, SystemTime, UNIX_EPOCH},
};

use bollard::{
    Docker,
    container::AttachContainerResults,
    models::{ContainerCreateBody, HostConfig, ResourcesUlimits},
    query_parameters::{
        AttachContainerOptionsBuilder, CreateContainerOptionsBuilder, RemoveContainerOptionsBuilder,
    },
};

use super::{EngineConfig, manifest::Language};

/// Every sandbox container carries this label (value: the run id once known,
/// else `pool`), so `docker ps -a --filter label=codecall.sandbox` finds them.
pub const LABEL: &str = "codecall.sandbox";
/// Unix time after which any janitor may remove the container.
pub const EXPIRES_LABEL: &str = "codecall.expires";
/// The worker that created it (for operators).
pub const WORKER_LABEL: &str = "codecall.worker";
/// The non-root user every sandbox image creates.
pub const SANDBOX_USER: &str = "10001:10001";

/// A started container blocked on reading its request, with its streams attached.
pub struct Started {
    pub id: String,
    pub streams: AttachContainerResults,
    pub memory_mb: u64,
    pub created: Instant,
}

/// The container configuration. Nothing of the host is shared: no network, no
/// mounts, no capabilities, a read-only root, small writable tmpfs dirs.
pub fn create_body(
    language: &Language,
    config: &EngineConfig,
    memory_mb: u64,
    labels: HashMap<String, String>,
) -> ContainerCreateBody {
    let memory = i64::try_from(memory_mb * 1024 * 1024).unwrap_or(i64::MAX);
    let tmpfs_opts = |size_mb: u64, exec: bool| {
        format!(
            "rw,nosuid,nodev,{},size={size_mb}m,uid=10001,gid=10001,mode=0700",
            if exec { "exec" } else { "noexec" }
        )
    };
    let ulimit = |name: &str, value: i64| ResourcesUlimits {
        name: Some(name.into()),
        soft: Some(value),
        hard: Some(value),
    };
    ContainerCreateBody {
        image: Some(language.image.clone()),
        user: Some(SANDBOX_USER.into()),
        working_dir: Some(sandbox_runner::WORK_DIR.into()),
        // Only what the toolchains need: nothing of the worker's environment.
        env: Some(vec![
            "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin".into(),
            format!("HOME={}", sandbox_runner::WORK_DIR),
            "LANG=C.UTF-8".into(),
        ]),
        attach_stdin: Some(true),
        attach_stdout: Some(true),
        attach_stderr: Some(true),
        open_stdin: Some(true),
        stdin_once: Some(true),
        tty: Some(false),
        network_disabled: Some(true),
        labels: Some(labels),
        host_config: Some(HostConfig {
            network_mode: Some("none".into()),
            binds: None,
            mounts: None,
            privileged: Some(false),
            cap_drop: Some(vec!["ALL".into()]),
            security_opt: Some(vec!["no-new-privileges".into()]),
            readonly_rootfs: Some(true),
            tmpfs: Some(HashMap::from([
                (
                    sandbox_runner::WORK_DIR.to_owned(),
                    tmpfs_opts(config.tmpfs_mb, true),
                ),
                ("/tmp".to_owned(), tmpfs_opts(config.tmp_mb, false)),
            ])),
            // memory = memory + swap: no swap.
            memory: Some(memory),
            memory_swap: Some(memory),
            nano_cpus: Some(i64::try_from(config.cpu_millis).unwrap_or(1000) * 1_000_000),
            pids_limit: Some(config.pids_limit),
            ulimits: Some(vec![
                ulimit("nofile", config.nofile),
                ulimit("fsize", config.fsize_bytes),
                ulimit("core", 0),
            ]),
            ipc_mode: Some("private".into()),
            // The runner is PID 1 on purpose: signals from inside cannot kill it.
            init: Some(false),
            auto_remove: Some(false),
            runtime: config.runtime.clone(),
            ..Default::default()
        }),
        ..Default::default()
    }
}

/// Creates, attaches and starts a container that waits for its request.
pub async fn start(
    docker: &Docker,
    language: &Language,
    config: &EngineConfig,
    memory_mb: u64,
    label_value: &str,
    lifetime: Duration,
) -> Result<Started, bollard::errors::Error> {
    let expires = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .saturating_add(lifetime)
        .as_secs();
    let labels = HashMap::from([
        (LABEL.to_owned(), label_value.to_owned()),
        (EXPIRES_LABEL.to_owned(), expires.to_string()),
        (WORKER_LABEL.to_owned(), config.worker_id.clone()),
    ]);
    let body = create_body(language, config, memory_mb, labels);
    let created = Instant::now();
    let id = docker
        .create_container(Some(CreateContainerOptionsBuilder::new().build()), body)
        .await?
        .id;
    let started = async {
        // Attach before start, so no output can be missed.
        let streams = docker
            .attach_container(
                &id,
                Some(
                    AttachContainerOptionsBuilder::new()
                        .stdin(true)
                        .stdout(true)
                        .stderr(true)
                        .stream(true)
                        .logs(false)
                        .build(),
                ),
            )
            .await?;
        docker.start_container(&id, None).await?;
        Ok(streams)
    };
    match started.await {
        Ok(streams) => {
            metrics::histogram!("codecall_container_start_seconds")
                .record(created.elapsed().as_secs_f64());
            Ok(Started {
                id,
                streams,
                memory_mb,
                created,
            })
        }
        Err(e) => {
            remove(docker, &id).await;
            Err(e)
        }
    }
}

/// Force-removes a container (and its anonymous volumes). Errors are logged:
/// the janitor retries what this could not do.
pub async fn remove(docker: &Docker, id: &str) {
    let options = RemoveContainerOptionsBuilder::new()
        .force(true)
        .v(true)
        .build();
    if let Err(e) = docker.remove_container(id, Some(options)).await {
        let gone = matches!(
            &e,
            bollard::errors::Error::DockerResponseServerError {
                status_code: 404 | 409,
                ..
            }
        );
        if !gone {
            tracing::warn!(container = %id, error = %e, "could not remove sandbox container");
        }
    }
}
