//! Judge0 callbacks: when a run with a `callback_url` finishes, its result is
//! `PUT` there as Judge0 sends it (the default fields, base64-encoded).
//!
//! Every api replica listens for `codecall_run_finished`; the one whose
//! conditional update moves the run's `callback_state` from `pending` to
//! `sending` sends it, so a callback goes out once however many replicas
//! heard the notification. A sweep every [`SWEEP_INTERVAL`] picks up what a
//! missed notification or a replica that died mid-send (its claim older than
//! the callback budget) left behind. Each attempt re-checks the target
//! ([`super::ssrf`]) and connects to the checked addresses only, follows at
//! most [`MAX_REDIRECTS`] redirects (each target checked the same way),
//! reads no response body, and is bounded by `CALLBACK_TIMEOUT`; a refused
//! target is not retried, a failed attempt is, up to `CALLBACK_MAX_TRIES`.

use std::time::Duration;

use reqwest::{StatusCode, Url, redirect::Policy};
use sqlx::postgres::PgListener;
use uuid::Uuid;

use super::judge0_view::{self, DEFAULT_FIELDS, SubmissionRow};
use crate::startup::ApiContext;

/// How often due callbacks are looked for without a notification.
pub const SWEEP_INTERVAL: Duration = Duration::from_secs(10);
/// Redirects followed per attempt.
pub const MAX_REDIRECTS: usize = 3;

/// Listens for finished runs and sends their callbacks.
pub fn spawn(ctx: ApiContext) {
    tokio::spawn(async move {
        let mut listener = loop {
            match PgListener::connect(ctx.config.database.url.expose()).await {
                Ok(mut listener) => {
                    if listener
                        .listen(run_contract::RUN_FINISHED_CHANNEL)
                        .await
                        .is_ok()
                    {
                        break listener;
                    }
                }
                Err(e) => tracing::warn!(error = %e, "callbacks cannot listen yet; retrying"),
            }
            tokio::time::sleep(Duration::from_secs(1)).await;
        };
        let mut sweep = tokio::time::interval(SWEEP_INTERVAL);
        loop {
            tokio::select! {
                received = listener.try_recv() => match received {
                    Ok(Some(notification)) => {
                        if let Ok(id) = notification.payload().parse::<Uuid>() {
                            tokio::spawn(deliver(ctx.clone(), Some(id)));
                        }
                    }
                    Ok(None) => {}
                    Err(e) => {
                        tracing::warn!(error = %e, "callbacks lost their notifications; reconnecting");
                        tokio::time::sleep(Duration::from_secs(1)).await;
                    }
                },
                _ = sweep.tick() => {
                    tokio::spawn(deliver(ctx.clone(), None));
                }
            }
        }
    });
}

/// The longest one callback may take, all attempts included: a claim older
/// than this belongs to a replica that died.
fn budget(ctx: &ApiContext) -> Duration {
    let compat = &ctx.config.compat;
    (compat.callback_timeout * (MAX_REDIRECTS as u32 + 1) + Duration::from_secs(8))
        * compat.callback_max_tries
}

/// Sends the callback of run `id`, or every due callback (one at a time).
async fn deliver(ctx: ApiContext, id: Option<Uuid>) {
    while deliver_one(&ctx, id).await && id.is_none() {}
}

/// Claims the callback of run `id` (or of any due run) and sends it; false
/// when there was none to claim.
async fn deliver_one(ctx: &ApiContext, id: Option<Uuid>) -> bool {
    let claimed = sqlx::query_as!(
        SubmissionRow,
        r#"UPDATE runs SET callback_state = 'sending', callback_claimed_at = now()
           WHERE id = (
             SELECT id FROM runs
             WHERE ($1::uuid IS NULL OR id = $1) AND status = 'finished'
               AND (callback_state = 'pending'
                    OR (callback_state = 'sending'
                        AND callback_claimed_at < now() - make_interval(secs => $2)))
             ORDER BY finished_at LIMIT 1
             FOR UPDATE SKIP LOCKED)
           RETURNING id, status, result, files, stdin, tests, judge0, callback_url, language,
                     created_at, finished_at"#,
        id,
        budget(ctx).as_secs_f64()
    )
    .fetch_optional(&ctx.db)
    .await;
    let row = match claimed {
        Ok(Some(row)) => row,
        Ok(None) => return false,
        Err(e) => {
            tracing::warn!(error = %e, "cannot claim callbacks");
            return false;
        }
    };
    let run_id = row.id;
    let Some(url): Option<String> = row.callback_url.clone() else {
        return true;
    };
    let body = judge0_view::render(row, String::new(), 0, DEFAULT_FIELDS, true)
        .map(|fields| serde_json::to_vec(&fields).unwrap_or_default())
        .unwrap_or_default();
    let outcome = send(ctx, &url, &body).await;
    let state = match &outcome {
        Ok(status) => {
            tracing::info!(%run_id, %status, "callback delivered");
            metrics::counter!("codecall_callbacks_total", "outcome" => "delivered").increment(1);
            "done"
        }
        Err(reason) => {
            tracing::warn!(%run_id, reason, "callback not delivered");
            metrics::counter!("codecall_callbacks_total", "outcome" => "failed").increment(1);
            "failed"
        }
    };
    if let Err(e) = sqlx::query!(
        "UPDATE runs SET callback_state = $2 WHERE id = $1",
        run_id,
        state
    )
    .execute(&ctx.db)
    .await
    {
        tracing::warn!(%run_id, error = %e, "cannot record the callback's outcome");
    }
    true
}

/// PUTs `body` to `url` with retries; the final answer's status, or why it failed.
pub async fn send(ctx: &ApiContext, url: &str, body: &[u8]) -> Result<StatusCode, String> {
    let compat = &ctx.config.compat;
    let mut last = String::new();
    for attempt in 0..compat.callback_max_tries {
        if attempt > 0 {
            tokio::time::sleep(Duration::from_secs(1 << (attempt - 1).min(5))).await;
        }
        match attempt_once(ctx, url, body).await {
            Ok(status) => return Ok(status),
            Err(Attempt::Refused(reason)) => return Err(reason),
            Err(Attempt::Failed(reason)) => last = reason,
        }
    }
    Err(last)
}

enum Attempt {
    /// The target is not allowed: retrying cannot help.
    Refused(String),
    Failed(String),
}

/// One attempt: each hop's target checked, connected to by its checked
/// addresses only.
async fn attempt_once(ctx: &ApiContext, url: &str, body: &[u8]) -> Result<StatusCode, Attempt> {
    let compat = &ctx.config.compat;
    let mut url = Url::parse(url).map_err(|_| Attempt::Refused("not a valid URL".into()))?;
    for _ in 0..=MAX_REDIRECTS {
        let target = super::ssrf::resolve(url, &compat.callback_allowed_hosts)
            .await
            .map_err(|reason| Attempt::Refused(format!("callback_url {reason}")))?;
        let client = reqwest::Client::builder()
            .no_proxy()
            .redirect(Policy::none())
            .timeout(compat.callback_timeout)
            .resolve_to_addrs(&target.host, &target.addresses)
            .build()
            .map_err(|e| Attempt::Failed(e.to_string()))?;
        let response = client
            .put(target.url.clone())
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .body(body.to_vec())
            .send()
            .await
            .map_err(|e| Attempt::Failed(e.to_string()))?;
        let status = response.status();
        if !status.is_redirection() {
            return if status.is_server_error() {
                Err(Attempt::Failed(format!("answered {status}")))
            } else {
                Ok(status)
            };
        }
        let location = response
            .headers()
            .get(reqwest::header::LOCATION)
            .and_then(|l| l.to_str().ok())
            .ok_or_else(|| Attempt::Failed(format!("{status} without a Location")))?;
        url = target
            .url
            .join(location)
            .map_err(|_| Attempt::Refused("redirected to an invalid URL".into()))?;
    }
    Err(Attempt::Refused(format!(
        "more than {MAX_REDIRECTS} redirects"
    )))
}
