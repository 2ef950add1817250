//! A user for the api's benchmarks: both examples include this file with
//! `#[path]` (a file directly under `examples/` would be an example of its
//! own).

use anyhow::Context as _;
use serde_json::{Value, json};
use uuid::Uuid;

/// Registers a new user on the api at `base` and signs in: the user's
/// access token.
pub async fn sign_up(http: &reqwest::Client, base: &str) -> anyhow::Result<String> {
    let email = format!("{}@bench.codecall.dev", Uuid::new_v4().simple());
    let credentials = json!({"name": "Bench", "email": email, "password": "correct horse battery"});
    http.post(format!("{base}/api/auth/register"))
        .json(&credentials)
        .send()
        .await?
        .error_for_status()?;
    let login: Value = http
        .post(format!("{base}/api/auth/login"))
        .json(&credentials)
        .send()
        .await?
        .error_for_status()?
        .json()
        .await?;
    Ok(login["accessToken"]
        .as_str()
        .context("no access token")?
        .to_owned())
}
