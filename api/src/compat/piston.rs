//! The Piston v2 API under `/piston/{token}/api/v2`: Piston clients send no
//! credentials (many take only a base URL), so the personal API token is a
//! segment of the base URL: `https://host/piston/ccpat_…/api/v2`.
//!
//! - `GET …/runtimes` — `[{language, version, aliases, runtime}]`.
//! - `POST …/execute` — runs the files (the first is the main one; contents
//!   `utf8`, `base64` or `hex`), waits for the result (at most
//!   `RUN_WAIT_MAX`) and answers `{language, version, run, compile?}` as
//!   Piston does (`run` is the compile stage when compilation failed).
//!   `run_timeout` (ms) and `run_memory_limit` (bytes) map onto our limits;
//!   compile limits are the sandbox's own.
//!
//! Errors are Piston's `{"message": "…"}`.

use axum::{
    Json,
    extract::{Path, State, rejection::JsonRejection},
};
use base64::{Engine as _, engine::general_purpose::STANDARD};
use run_contract::{RunResult, RunStatus, Verdict};
use serde::{Deserialize, Serialize};
use utoipa_axum::{router::OpenApiRouter, routes};

use super::{Door, DoorError, Language, PistonMessage};
use crate::{
    auth::AuthUser,
    error::Error,
    runs::{self, CreateRun, FileBody, LimitsBody},
    startup::ApiContext,
};

type Result<T> = std::result::Result<T, DoorError>;

pub fn router() -> OpenApiRouter<ApiContext> {
    OpenApiRouter::new()
        .routes(routes!(runtimes))
        .routes(routes!(execute))
}

/// A request path for the logs: the Piston door's token segment hidden.
pub fn redact(path: &str) -> std::borrow::Cow<'_, str> {
    match path.strip_prefix("/piston/") {
        Some(rest) => {
            let tail = rest.find('/').map_or("", |i| &rest[i..]);
            format!("/piston/[token]{tail}").into()
        }
        None => path.into(),
    }
}

async fn authenticate(ctx: &ApiContext, token: &str) -> Result<AuthUser> {
    AuthUser::from_bearer(ctx, token)
        .await
        .map_err(DoorError::piston)
}

#[derive(Serialize, utoipa::ToSchema)]
struct Runtime {
    language: String,
    version: String,
    aliases: Vec<String>,
    runtime: Option<String>,
}

/// The languages the fleet runs, Piston-named.
#[utoipa::path(get, path = "/piston/{token}/api/v2/runtimes", tag = "piston",
    params(("token" = String, Path, description = "A personal API token")), responses(
    (status = 200, description = "The runtimes", body = [Runtime]),
    (status = 401, description = "Invalid token", body = PistonMessage)))]
async fn runtimes(
    State(ctx): State<ApiContext>,
    Path(token): Path<String>,
) -> Result<Json<Vec<Runtime>>> {
    authenticate(&ctx, &token).await?;
    let fleet = runs::fleet(&ctx).await.map_err(DoorError::piston)?;
    Ok(Json(
        super::LANGUAGES
            .iter()
            .filter_map(|l| {
                l.version(&fleet).map(|version| Runtime {
                    language: l.piston_name.to_owned(),
                    version,
                    aliases: l.piston_aliases.iter().map(|a| (*a).to_owned()).collect(),
                    runtime: None,
                })
            })
            .collect(),
    ))
}

#[derive(Deserialize, utoipa::ToSchema)]
struct PistonFile {
    #[serde(default)]
    name: Option<String>,
    content: Option<String>,
    #[serde(default)]
    encoding: Option<String>,
}

#[derive(Deserialize, utoipa::ToSchema)]
struct ExecuteBody {
    language: Option<String>,
    version: Option<String>,
    files: Option<Vec<PistonFile>>,
    #[serde(default)]
    stdin: Option<String>,
    #[serde(default)]
    args: Option<Vec<String>>,
    run_timeout: Option<f64>,
    compile_timeout: Option<f64>,
    run_memory_limit: Option<f64>,
    compile_memory_limit: Option<f64>,
}

/// One stage's result, as Piston reports it.
#[derive(Serialize, Clone, utoipa::ToSchema)]
struct Stage {
    stdout: String,
    stderr: String,
    output: String,
    code: Option<i32>,
    signal: Option<String>,
    message: Option<String>,
    status: Option<String>,
    cpu_time: Option<u64>,
    wall_time: Option<u64>,
    memory: Option<u64>,
}

#[derive(Serialize, utoipa::ToSchema)]
struct Executed {
    language: String,
    version: String,
    run: Stage,
    #[serde(skip_serializing_if = "Option::is_none")]
    compile: Option<Stage>,
}

/// Whether a requested version selects ours: `*`, equal, or one a prefix
/// of the other at a dot ("3" and "3.11.4" both select "3.11").
fn version_matches(requested: &str, ours: &str) -> bool {
    let prefix = |short: &str, long: &str| long == short || long.starts_with(&format!("{short}."));
    requested == "*" || prefix(requested, ours) || prefix(ours, requested)
}

fn decode(file: &PistonFile, index: usize) -> Result<String> {
    let content = file.content.as_ref().ok_or_else(|| {
        Door::Piston.bad_request(format!("files[{index}].content is required as a string"))
    })?;
    let bytes = match file.encoding.as_deref().unwrap_or("utf8") {
        "utf8" => return Ok(content.clone()),
        "base64" => STANDARD.decode(content).ok(),
        "hex" => (0..content.len())
            .step_by(2)
            .map(|i| {
                content
                    .get(i..i + 2)
                    .and_then(|h| u8::from_str_radix(h, 16).ok())
            })
            .collect(),
        other => {
            return Err(
                Door::Piston.bad_request(format!("files[{index}].encoding `{other}` is unknown"))
            );
        }
    };
    bytes
        .and_then(|b| String::from_utf8(b).ok())
        .ok_or_else(|| {
            Door::Piston.bad_request(format!(
                "files[{index}].content is not valid UTF-8 once decoded"
            ))
        })
}

/// Executes code and answers when it finished.
#[utoipa::path(post, path = "/piston/{token}/api/v2/execute", tag = "piston", request_body = ExecuteBody,
    params(("token" = String, Path, description = "A personal API token")), responses(
    (status = 200, description = "`{language, version, run, compile?}`", body = Executed),
    (status = 400, description = "Invalid request (`{message}`)", body = PistonMessage),
    (status = 401, description = "Invalid token", body = PistonMessage),
    (status = 429, description = "Quota", body = PistonMessage),
    (status = 503, description = "No worker, queue full, or not finished within `RUN_WAIT_MAX`", body = PistonMessage)))]
async fn execute(
    State(ctx): State<ApiContext>,
    Path(token): Path<String>,
    body: std::result::Result<Json<ExecuteBody>, JsonRejection>,
) -> Result<Json<Executed>> {
    let user = authenticate(&ctx, &token).await?;
    let Json(body) = body.map_err(DoorError::piston)?;
    let name = body
        .language
        .as_deref()
        .ok_or_else(|| Door::Piston.bad_request("language is required as a string"))?;
    let requested = body
        .version
        .as_deref()
        .ok_or_else(|| Door::Piston.bad_request("version is required as a string"))?;
    let files = body
        .files
        .as_ref()
        .ok_or_else(|| Door::Piston.bad_request("files is required as an array"))?;
    let fleet = runs::fleet(&ctx).await.map_err(DoorError::piston)?;
    let (language, version) = Language::by_piston_name(name)
        .and_then(|l| l.version(&fleet).map(|v| (l, v)))
        .filter(|(_, v)| version_matches(requested, v))
        .ok_or_else(|| {
            Door::Piston.bad_request(format!("{name}-{requested} runtime is unknown"))
        })?;
    if files.is_empty() {
        return Err(Door::Piston.bad_request("files must include at least one utf8 encoded file"));
    }
    let mut bodies = Vec::with_capacity(files.len());
    for (index, file) in files.iter().enumerate() {
        bodies.push(FileBody {
            // One file: the language's own file name; several: the first is
            // the main file, the others keep their names.
            name: match (index, files.len()) {
                (_, 1) => String::new(),
                (0, _) => language.source_file.to_owned(),
                _ => file.name.clone().unwrap_or_default(),
            },
            content: decode(file, index)?,
        });
    }
    let positive = |value: Option<f64>, name: &str| -> Result<Option<f64>> {
        match value {
            Some(v) if v < 0.0 && v != -1.0 => {
                Err(Door::Piston.bad_request(format!("{name} must be non-negative")))
            }
            Some(v) if v > 0.0 => Ok(Some(v)),
            _ => Ok(None),
        }
    };
    positive(body.compile_timeout, "compile_timeout")?;
    positive(body.compile_memory_limit, "compile_memory_limit")?;
    let limits = &ctx.config.runs;
    let time_ms = positive(body.run_timeout, "run_timeout")?.map(|ms| ms.round() as u32);
    if time_ms.is_some_and(|ms| ms > limits.max_time_ms) {
        return Err(Door::Piston.bad_request(format!(
            "run_timeout cannot exceed the configured limit of {}",
            limits.max_time_ms
        )));
    }
    let memory_mb = positive(body.run_memory_limit, "run_memory_limit")?
        .map(|bytes| ((bytes / (1024.0 * 1024.0)).ceil() as u32).max(32));
    if memory_mb.is_some_and(|mb| mb > limits.max_memory_mb) {
        return Err(Door::Piston.bad_request(format!(
            "run_memory_limit cannot exceed the configured limit of {}",
            u64::from(limits.max_memory_mb) * 1024 * 1024
        )));
    }
    let request = CreateRun {
        language: language.id.to_owned(),
        source: None,
        files: Some(bodies),
        stdin: body.stdin.clone().unwrap_or_default(),
        args: body.args.clone().unwrap_or_default(),
        session_id: None,
        tests: Vec::new(),
        limits: LimitsBody {
            time_ms: time_ms.map(|ms| ms.max(100)),
            memory_mb,
        },
    };
    let run = runs::validate(&ctx, request, &fleet).map_err(DoorError::piston)?;
    runs::check_quotas(&ctx, user.id, ctx.config.compat.max_backlog_per_user, 1)
        .await
        .map_err(DoorError::piston)?;
    let id = runs::store(&ctx, user.id, None, run, run_contract::RunKind::Run, None)
        .await
        .map_err(DoorError::piston)?;
    let view = runs::wait_finished(&ctx, id, runs::wait_budget(&ctx))
        .await
        .map_err(DoorError::piston)?;
    if view.status != RunStatus::Finished {
        return Err(DoorError::piston(Error::Unavailable {
            code: "not_finished",
            message: format!("the run did not finish within RUN_WAIT_MAX; it is {id}"),
        }));
    }
    let result = sqlx::query_scalar!("SELECT result FROM runs WHERE id = $1", id)
        .fetch_one(&ctx.db)
        .await
        .map_err(DoorError::piston)?
        .and_then(|r| serde_json::from_value::<RunResult>(r).ok())
        .ok_or_else(|| {
            DoorError::piston(Error::Internal(anyhow::anyhow!(
                "finished run {id} has no result"
            )))
        })?;
    Ok(Json(executed(language, version, result)))
}

/// A finished run in Piston's shape.
fn executed(language: &'static Language, version: String, result: RunResult) -> Executed {
    let compile = language.compile_cmd.map(|_| {
        let output = result.compile_output.clone().unwrap_or_default();
        let failed = result.verdict == Verdict::CompileError;
        Stage {
            stdout: if failed {
                String::new()
            } else {
                output.clone()
            },
            stderr: if failed {
                output.clone()
            } else {
                String::new()
            },
            output,
            code: Some(if failed {
                result.exit_code.unwrap_or(1)
            } else {
                0
            }),
            signal: None,
            message: None,
            status: failed.then(|| "RE".to_owned()),
            cpu_time: None,
            wall_time: None,
            memory: None,
        }
    });
    if result.verdict == Verdict::CompileError
        && let Some(compile) = compile
    {
        return Executed {
            language: language.piston_name.to_owned(),
            version,
            run: compile.clone(),
            compile: Some(compile),
        };
    }
    let killed = matches!(
        result.verdict,
        Verdict::TimeLimitExceeded | Verdict::MemoryLimitExceeded | Verdict::OutputLimitExceeded
    );
    let (status, message) = match result.verdict {
        Verdict::TimeLimitExceeded => (Some("TO"), Some("Time limit exceeded".to_owned())),
        Verdict::OutputLimitExceeded => (Some("OL"), Some("stdout length exceeded".to_owned())),
        Verdict::MemoryLimitExceeded => (Some("SG"), Some("Memory limit exceeded".to_owned())),
        Verdict::InternalError => (Some("XX"), Some(result.stderr.clone())),
        _ if result.signal.is_some() => (Some("SG"), None),
        Verdict::RuntimeError => (Some("RE"), None),
        _ => (None, None),
    };
    let signal = if killed {
        Some("SIGKILL".to_owned())
    } else {
        result.signal.clone()
    };
    let run = Stage {
        output: format!("{}{}", result.stdout, result.stderr),
        stdout: result.stdout,
        stderr: result.stderr,
        code: if signal.is_some() {
            None
        } else {
            result.exit_code
        },
        signal,
        message,
        status: status.map(str::to_owned),
        cpu_time: Some(result.cpu_ms),
        wall_time: Some(result.time_ms),
        memory: Some(result.memory_kb * 1024),
    };
    Executed {
        language: language.piston_name.to_owned(),
        version,
        run,
        compile,
    }
}

#[cfg(test)]
mod tests {
    use super::version_matches;

    #[test]
    fn versions_match_at_dots() {
        assert!(version_matches("*", "3.11"));
        assert!(version_matches("3.11", "3.11"));
        assert!(version_matches("3", "3.11"));
        assert!(version_matches("3.11.4", "3.11"));
        assert!(!version_matches("3.1", "3.11"));
        assert!(!version_matches("2", "3.11"));
    }
}
