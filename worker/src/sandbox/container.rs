//! One sandbox container: the hardened configuration (every isolation and
//! resource setting — network, mounts, capabilities, read-only root, tmpfs,
//! memory, CPU, pids, ulimits, IPC, logging, user — is set here explicitly,
//! never left to the engine's defaults) and the Docker calls to start, attach
//! and remove it.

use std::{
    collections::HashMap,
    time::{Duration, Instant, SystemTime, UNIX_EPOCH},
};

use bollard::{
    Docker,
    container::{AttachContainerResults, LogOutput},
    models::{ContainerCreateBody, HostConfig, HostConfigLogConfig, ResourcesUlimits},
    query_parameters::{
        AttachContainerOptionsBuilder, CreateContainerOptionsBuilder, RemoveContainerOptionsBuilder,
    },
};

use futures_util::StreamExt;
use tokio::io::AsyncWriteExt;

use super::{EngineConfig, manifest::Language};

/// Every sandbox container carries this label (value: the run id once known,
/// else `pool`), so `docker ps -a --filter label=codecall.sandbox` finds them.
pub const LABEL: &str = "codecall.sandbox";
/// Unix time after which any janitor may remove the container.
pub const EXPIRES_LABEL: &str = "codecall.expires";
/// The worker that created it (for operators).
pub const WORKER_LABEL: &str = "codecall.worker";
/// The non-root user every sandbox image creates: a uid/gid used by nothing
/// else on the host (the api and worker images run as 10001), so per-uid
/// kernel budgets a program exhausts (inotify instances, `RLIMIT_NPROC`
/// counts, user keyrings) are the sandboxes' own, never the worker's.
pub const SANDBOX_UID: u32 = 41000;
pub const SANDBOX_USER: &str = "41000:41000";
/// Inodes of the work dir and of `/tmp` (`nr_inodes`): without a bound, a
/// program creating empty files grows kernel memory the size cap ignores.
pub const WORK_DIR_INODES: u64 = 8192;
pub const TMP_INODES: u64 = 1024;
/// Under gVisor the container's cgroup also holds gVisor's own kernel (the
/// Sentry, the gofer, and on the ptrace platform about eight host tasks per
/// guest process): its limits are the program's plus this room, and the
/// runner enforces the program's own limits inside (see `sandbox_runner::Watch`).
pub const GVISOR_MEMORY_OVERHEAD_MB: u64 = 128;
pub const GVISOR_TASKS_PER_GUEST_TASK: i64 = 16;
pub const GVISOR_BASE_TASKS: i64 = 256;

/// How long a removal waits for a container to exit by itself before it has
/// the engine kill it: a container that reported its end exits within
/// milliseconds, and removing one still running costs the engine a kill
/// (one more `runc` process per container, a few percent of the machine's
/// container throughput when it is busy).
pub const EXIT_WAIT: Duration = Duration::from_secs(2);

/// A container's attach output: it ends when the container exits.
pub type Output = std::pin::Pin<
    Box<dyn futures_util::Stream<Item = Result<LogOutput, bollard::errors::Error>> + Send>,
>;

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
    let host_memory_mb = if config.gvisor {
        memory_mb + GVISOR_MEMORY_OVERHEAD_MB
    } else {
        memory_mb
    };
    let memory = i64::try_from(host_memory_mb * 1024 * 1024).unwrap_or(i64::MAX);
    let pids_limit = if config.gvisor {
        config.pids_limit * GVISOR_TASKS_PER_GUEST_TASK + GVISOR_BASE_TASKS
    } else {
        config.pids_limit
    };
    let tmpfs_opts = |size_mb: u64, inodes: u64, exec: bool| {
        format!(
            "rw,nosuid,nodev,{},size={size_mb}m,nr_inodes={inodes},uid={SANDBOX_UID},gid={SANDBOX_UID},mode=0700",
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
                    tmpfs_opts(config.tmpfs_mb, WORK_DIR_INODES, true),
                ),
                (
                    "/tmp".to_owned(),
                    tmpfs_opts(config.tmp_mb, TMP_INODES, false),
                ),
            ])),
            // memory = memory + swap: no swap.
            memory: Some(memory),
            memory_swap: Some(memory),
            nano_cpus: Some(i64::try_from(config.cpu_millis).unwrap_or(1000) * 1_000_000),
            pids_limit: Some(pids_limit),
            ulimits: Some(vec![
                ulimit("nofile", config.nofile),
                ulimit("fsize", config.fsize_bytes),
                ulimit("core", 0),
            ]),
            // A private IPC namespace without /dev/shm: no shared memory
            // tmpfs (whose inodes nothing would bound) to fill. `ShmSize` is
            // stated anyway (1 MiB), should the mode ever change.
            ipc_mode: Some("none".into()),
            shm_size: Some(1024 * 1024),
            // No log driver output: the runner reports over the attach
            // stream, and nothing a program prints lands on the host's disk.
            log_config: Some(HostConfigLogConfig {
                typ: Some("none".into()),
                config: None,
            }),
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

/// Removes a container once it has exited by itself (its `output` ended),
/// waiting at most [`EXIT_WAIT`]; with no output to watch, or past the wait,
/// it is killed and removed at once.
pub async fn remove_once_exited(docker: &Docker, id: &str, output: Option<Output>) {
    if let Some(mut output) = output {
        let drained = async { while output.next().await.is_some() {} };
        let _ = tokio::time::timeout(EXIT_WAIT, drained).await;
    }
    remove(docker, id).await;
}

/// Removes a pre-started container nobody will use: its stdin is closed, so
/// its runner, finding no request, exits by itself before the removal.
pub async fn retire(docker: &Docker, container: Started) {
    let Started {
        id, mut streams, ..
    } = container;
    let _ = streams.input.shutdown().await;
    remove_once_exited(docker, &id, Some(streams.output)).await;
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
