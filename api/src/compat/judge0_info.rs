//! Judge0's informational routes: languages, statuses, `config_info`,
//! `about` and `workers`, answered from our fleet and configuration.

use axum::{
    Json,
    extract::{Path, State},
};
use serde::Serialize;
use utoipa_axum::{router::OpenApiRouter, routes};

use super::{
    DoorError, Judge0Message, Language,
    judge0::{JUDGE0_VERSION, Judge0User, Result},
    judge0_input::{
        CPU_EXTRA_TIME_S, MAX_CPU_EXTRA_TIME_S, MAX_FILE_SIZE_KB, MAX_MAX_FILE_SIZE_KB,
        MAX_MAX_PROCESSES, MAX_PROCESSES, MAX_STACK_LIMIT_KB, STACK_LIMIT_KB, limits,
    },
    judge0_view::{STATUSES, StatusBody},
};
use crate::{error::Error, runs, startup::ApiContext};

pub fn router() -> OpenApiRouter<ApiContext> {
    OpenApiRouter::new()
        .routes(routes!(languages))
        .routes(routes!(language))
        .routes(routes!(statuses))
        .routes(routes!(config_info))
        .routes(routes!(about))
        .routes(routes!(workers))
}

#[derive(Serialize, utoipa::ToSchema)]
struct LanguageBody {
    id: u32,
    name: String,
}

#[derive(Serialize, utoipa::ToSchema)]
struct LanguageDetail {
    id: u32,
    name: String,
    is_archived: bool,
    source_file: String,
    compile_cmd: Option<String>,
    run_cmd: String,
}

/// The languages the fleet runs, under each of their Judge0 ids.
#[utoipa::path(get, path = "/judge0/languages", tag = "judge0", security(("judge0_token" = [])), responses(
    (status = 200, description = "`[{id, name}]`", body = [LanguageBody])))]
async fn languages(
    State(ctx): State<ApiContext>,
    _user: Judge0User,
) -> Result<Json<Vec<LanguageBody>>> {
    let fleet = runs::fleet(&ctx).await.map_err(DoorError::judge0)?;
    let mut list: Vec<LanguageBody> = super::LANGUAGES
        .iter()
        .filter_map(|l| l.version(&fleet).map(|v| (l, v)))
        .flat_map(|(l, version)| {
            l.judge0_ids.iter().map(move |&id| LanguageBody {
                id,
                name: l.judge0_display(&version),
            })
        })
        .collect();
    list.sort_by(|a, b| a.name.cmp(&b.name).then(a.id.cmp(&b.id)));
    Ok(Json(list))
}

/// One language, with its source file and commands.
#[utoipa::path(get, path = "/judge0/languages/{id}", tag = "judge0", security(("judge0_token" = [])),
    params(("id" = u32, Path, description = "Judge0 language id")), responses(
    (status = 200, description = "The language", body = LanguageDetail),
    (status = 404, description = "Not one we run", body = Judge0Message)))]
async fn language(
    State(ctx): State<ApiContext>,
    _user: Judge0User,
    Path(id): Path<String>,
) -> Result<Json<LanguageDetail>> {
    let fleet = runs::fleet(&ctx).await.map_err(DoorError::judge0)?;
    let found = id
        .parse::<u32>()
        .ok()
        .and_then(|id| Language::by_judge0_id(id).map(|l| (id, l)))
        .and_then(|(id, l)| l.version(&fleet).map(|v| (id, l, v)));
    let (id, l, version) = found.ok_or_else(|| DoorError::judge0(Error::NotFound("not found")))?;
    Ok(Json(LanguageDetail {
        id,
        name: l.judge0_display(&version),
        is_archived: false,
        source_file: l.source_file.to_owned(),
        compile_cmd: l.compile_cmd.map(str::to_owned),
        run_cmd: l.run_cmd.to_owned(),
    }))
}

/// Judge0's statuses.
#[utoipa::path(get, path = "/judge0/statuses", tag = "judge0", security(("judge0_token" = [])), responses(
    (status = 200, description = "`[{id, description}]`", body = [StatusBody])))]
async fn statuses(_user: Judge0User) -> Json<Vec<StatusBody>> {
    Json(STATUSES.iter().map(|(id, _)| StatusBody::of(*id)).collect())
}

/// Every field Judge0's `config_info` has, with our values.
#[derive(Serialize, utoipa::ToSchema)]
struct ConfigInfo {
    maintenance_mode: bool,
    enable_wait_result: bool,
    enable_compiler_options: bool,
    allowed_languages_for_compile_options: Vec<String>,
    enable_command_line_arguments: bool,
    enable_submission_delete: bool,
    enable_callbacks: bool,
    callbacks_max_tries: u32,
    callbacks_timeout: f64,
    enable_additional_files: bool,
    max_queue_size: i64,
    cpu_time_limit: f64,
    max_cpu_time_limit: f64,
    cpu_extra_time: f64,
    max_cpu_extra_time: f64,
    wall_time_limit: f64,
    max_wall_time_limit: f64,
    memory_limit: u32,
    max_memory_limit: u32,
    stack_limit: u32,
    max_stack_limit: u32,
    max_processes_and_or_threads: u32,
    max_max_processes_and_or_threads: u32,
    enable_per_process_and_thread_time_limit: bool,
    allow_enable_per_process_and_thread_time_limit: bool,
    enable_per_process_and_thread_memory_limit: bool,
    allow_enable_per_process_and_thread_memory_limit: bool,
    max_file_size: u32,
    max_max_file_size: u32,
    number_of_runs: u32,
    max_number_of_runs: u32,
    redirect_stderr_to_stdout: bool,
    max_extract_size: u32,
    enable_batched_submissions: bool,
    max_submission_batch_size: usize,
    submission_cache_duration: f64,
    use_docs_as_homepage: bool,
    allow_enable_network: bool,
    enable_network: bool,
}

/// This server's configuration, in Judge0's terms.
#[utoipa::path(get, path = "/judge0/config_info", tag = "judge0", security(("judge0_token" = [])), responses(
    (status = 200, description = "Every `config_info` field of Judge0 CE 1.13.1", body = ConfigInfo)))]
async fn config_info(State(ctx): State<ApiContext>, _user: Judge0User) -> Json<ConfigInfo> {
    let l = limits(&ctx);
    let compat = &ctx.config.compat;
    Json(ConfigInfo {
        maintenance_mode: false,
        enable_wait_result: true,
        enable_compiler_options: false,
        allowed_languages_for_compile_options: Vec::new(),
        enable_command_line_arguments: true,
        enable_submission_delete: false,
        enable_callbacks: compat.callbacks_enabled,
        callbacks_max_tries: compat.callback_max_tries,
        callbacks_timeout: compat.callback_timeout.as_secs_f64(),
        enable_additional_files: false,
        max_queue_size: ctx.config.runs.queue_max_depth,
        cpu_time_limit: l.cpu_time_limit,
        max_cpu_time_limit: l.max_cpu_time_limit,
        cpu_extra_time: CPU_EXTRA_TIME_S,
        max_cpu_extra_time: MAX_CPU_EXTRA_TIME_S,
        wall_time_limit: l.wall_time_limit,
        max_wall_time_limit: l.max_wall_time_limit,
        memory_limit: l.memory_limit,
        max_memory_limit: l.max_memory_limit,
        stack_limit: STACK_LIMIT_KB,
        max_stack_limit: MAX_STACK_LIMIT_KB,
        max_processes_and_or_threads: MAX_PROCESSES,
        max_max_processes_and_or_threads: MAX_MAX_PROCESSES,
        enable_per_process_and_thread_time_limit: false,
        allow_enable_per_process_and_thread_time_limit: false,
        enable_per_process_and_thread_memory_limit: false,
        allow_enable_per_process_and_thread_memory_limit: false,
        max_file_size: MAX_FILE_SIZE_KB,
        max_max_file_size: MAX_MAX_FILE_SIZE_KB,
        number_of_runs: 1,
        max_number_of_runs: 1,
        redirect_stderr_to_stdout: false,
        max_extract_size: 0,
        enable_batched_submissions: true,
        max_submission_batch_size: compat.max_batch_size,
        submission_cache_duration: 0.0,
        use_docs_as_homepage: false,
        allow_enable_network: false,
        enable_network: false,
    })
}

#[derive(Serialize, utoipa::ToSchema)]
struct About {
    version: String,
    homepage: String,
    source_code: String,
    maintainer: String,
}

/// The Judge0 version this door speaks (the SDKs pick language ids by it).
#[utoipa::path(get, path = "/judge0/about", tag = "judge0", security(("judge0_token" = [])), responses(
    (status = 200, description = "`{version: \"1.13.1\", …}`", body = About)))]
async fn about(_user: Judge0User) -> Json<About> {
    Json(About {
        version: JUDGE0_VERSION.to_owned(),
        homepage: "CodeCall (Judge0 CE 1.13.1 compatibility)".to_owned(),
        source_code: "CodeCall".to_owned(),
        maintainer: "the operator of this CodeCall server".to_owned(),
    })
}

#[derive(Serialize, utoipa::ToSchema)]
struct WorkerQueue {
    queue: String,
    size: i64,
    available: i64,
    idle: i64,
    working: i64,
    paused: i64,
    failed: i64,
}

/// The run queue and the live workers, in Judge0's `workers` shape.
#[utoipa::path(get, path = "/judge0/workers", tag = "judge0", security(("judge0_token" = [])), responses(
    (status = 200, description = "`[{queue, size, available, idle, working, paused, failed}]`", body = [WorkerQueue])))]
async fn workers(
    State(ctx): State<ApiContext>,
    _user: Judge0User,
) -> Result<Json<Vec<WorkerQueue>>> {
    let row = sqlx::query!(
        r#"SELECT (SELECT count(*) FROM runs WHERE status = 'queued') AS "queued!",
                  (SELECT count(*) FROM runs WHERE status = 'running') AS "running!",
                  (SELECT count(*) FROM workers WHERE expires_at > now() AND stopped_at IS NULL) AS "live!",
                  (SELECT count(*) FROM workers WHERE expires_at > now() AND stopped_at IS NULL AND running = 0) AS "idle!""#
    )
    .fetch_one(&ctx.db)
    .await
    .map_err(DoorError::judge0)?;
    Ok(Json(vec![WorkerQueue {
        queue: JUDGE0_VERSION.to_owned(),
        size: row.queued,
        available: row.live,
        idle: row.idle,
        working: row.running,
        paused: 0,
        failed: 0,
    }]))
}
