//! Shared-document benchmark (not a test). Needs a PostgreSQL server and a
//! Redis server; it creates a database of its own on the first:
//!
//! ```text
//! DATABASE_URL=postgres://… REDIS_URL=redis://… \
//!   cargo run --release -p api --example doc_bench [-- EDITS]
//! ```
//!
//! In one process it starts two api replicas and measures:
//! 1. edit latency: a one-character Yjs update sent by a socket on replica 1
//!    until a socket on replica 2 (and, separately, on replica 1) receives it;
//! 2. the floor under that path, the same process doing only what the path
//!    cannot avoid: a PostgreSQL insert of the update, then a Redis
//!    publish received by a subscriber;
//! 3. opening a document of 5 000 appended updates before and after
//!    compaction, and the compaction itself.

#[path = "bench_user/mod.rs"]
mod bench_user;

use std::time::{Duration, Instant};

use anyhow::Context as _;
use codecall_api::{
    config::Config,
    documents::{Kind, store},
    startup::Application,
};
use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use sqlx::{AssertSqlSafe, Connection, Executor, PgConnection, PgPool};
use tokio_tungstenite::{connect_async, tungstenite::Message};
use uuid::Uuid;
use yrs::{
    ReadTxn, Text, Transact,
    sync::{Message as YMessage, SyncMessage},
    updates::encoder::Encode,
};

/// Under the socket's limit of 100 messages a second.
const PACE: Duration = Duration::from_millis(12);

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let edits: usize = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(300);
    let server = std::env::var("DATABASE_URL").context("DATABASE_URL")?;
    let redis_url = std::env::var("REDIS_URL").context("REDIS_URL")?;
    let name = format!("codecall_bench_{}", Uuid::new_v4().simple());
    let mut admin = PgConnection::connect(&server).await?;
    admin
        .execute(sqlx::raw_sql(AssertSqlSafe(format!(
            r#"CREATE DATABASE "{name}""#
        ))))
        .await?;
    let db_url = {
        let (base, _) = server.rsplit_once('/').context("DATABASE_URL path")?;
        format!("{base}/{name}")
    };
    let prefix = format!("bench:{}:", Uuid::new_v4().simple());
    let one = replica(&db_url, &redis_url, &prefix).await?;
    let two = replica(&db_url, &redis_url, &prefix).await?;
    let db = PgPool::connect(&db_url).await?;

    let token = bench_user::sign_up(&reqwest::Client::new(), &one).await?;
    let session = create_session(&one, &token).await?;
    let url = |base: &str| {
        format!(
            "{}/api/sessions/{session}/doc?token={token}",
            base.replace("http", "ws")
        )
    };
    let (mut writer, _) = connect_async(url(&one)).await?;
    let (mut same, _) = connect_async(url(&one)).await?;
    let (mut other, _) = connect_async(url(&two)).await?;

    let local = yrs::Doc::new();
    let text = local.get_or_insert_text("code");
    let mut cross = Vec::with_capacity(edits);
    let mut near = Vec::with_capacity(edits);
    for _ in 0..edits {
        let before = local.transact().state_vector();
        text.push(&mut local.transact_mut(), "x");
        let update = local.transact().encode_state_as_update_v1(&before);
        let message = YMessage::Sync(SyncMessage::Update(update)).encode_v1();
        let started = Instant::now();
        writer.send(Message::Binary(message.into())).await?;
        let mut pending = (true, true);
        while pending.0 || pending.1 {
            tokio::select! {
                frame = other.next(), if pending.0 => if is_update(frame) {
                    cross.push(started.elapsed());
                    pending.0 = false;
                },
                frame = same.next(), if pending.1 => if is_update(frame) {
                    near.push(started.elapsed());
                    pending.1 = false;
                },
            }
        }
        tokio::time::sleep(PACE).await;
    }

    // The floor: store the same bytes, then one Redis pub/sub hop.
    let client = redis::Client::open(redis_url.as_str())?;
    let mut publisher = client.get_multiplexed_async_connection().await?;
    let mut subscriber = client.get_async_pubsub().await?;
    let channel = format!("{prefix}floor");
    subscriber.subscribe(&channel).await?;
    let mut messages = subscriber.on_message();
    let mut floor = Vec::with_capacity(edits);
    for _ in 0..edits {
        let before = local.transact().state_vector();
        text.push(&mut local.transact_mut(), "y");
        let update = local.transact().encode_state_as_update_v1(&before);
        let started = Instant::now();
        sqlx::query("INSERT INTO document_updates (session_id, payload) VALUES ($1, $2)")
            .bind(session)
            .bind(&update)
            .execute(&db)
            .await?;
        redis::cmd("PUBLISH")
            .arg(&channel)
            .arg(&update)
            .query_async::<()>(&mut publisher)
            .await?;
        messages.next().await.context("subscriber closed")?;
        floor.push(started.elapsed());
    }
    drop(messages);

    println!("edit latency, {edits} one-character edits (paced at 1 per {PACE:?}):");
    println!("| path | p50 | p95 | p99 |\n| --- | --- | --- | --- |");
    for (label, samples) in [
        ("replica 1 → replica 2 (socket to socket)", &mut cross),
        ("replica 1 → replica 1 (socket to socket)", &mut near),
        ("floor: PostgreSQL insert + Redis pub/sub hop", &mut floor),
    ] {
        samples.sort();
        println!(
            "| {label} | {} | {} | {} |",
            ms(pct(samples, 50)),
            ms(pct(samples, 95)),
            ms(pct(samples, 99))
        );
    }
    println!(
        "ratio cross-replica p50 / floor p50 = {:.2}",
        pct(&cross, 50).as_secs_f64() / pct(&floor, 50).as_secs_f64()
    );

    drop((writer, same, other));
    load_and_compaction(&db).await?;
    Ok(())
}

/// Opening a document of many appended updates, before and after compaction.
async fn load_and_compaction(db: &PgPool) -> anyhow::Result<()> {
    const UPDATES: usize = 5_000;
    let token = Uuid::new_v4();
    let host: Uuid = sqlx::query_scalar(
        "INSERT INTO users (id, name, email, password_hash) VALUES ($1, 'bench', $2, 'x') RETURNING id",
    )
    .bind(token)
    .bind(format!("{token}@bench.dev"))
    .fetch_one(db)
    .await?;
    let session = Uuid::new_v4();
    sqlx::query(
        "INSERT INTO interview_sessions (id, host_id, title, language) VALUES ($1, $2, 'bench', 'python')",
    )
    .bind(session)
    .bind(host)
    .execute(db)
    .await?;
    let local = yrs::Doc::new();
    let text = local.get_or_insert_text("code");
    for i in 0..UPDATES {
        let before = local.transact().state_vector();
        text.insert(
            &mut local.transact_mut(),
            (i * 7) as u32 % (i as u32 + 1),
            "ab",
        );
        let update = local.transact().encode_state_as_update_v1(&before);
        store::append(db, session, Kind::Code, host, &update).await?;
    }
    let mut conn = db.acquire().await?;
    let mut appended = Vec::new();
    let mut bytes_before = 0;
    for _ in 0..5 {
        let (took, bytes) = time_load(&mut conn, session).await?;
        appended.push(took);
        bytes_before = bytes;
    }
    let started = Instant::now();
    let bytes_after = store::compact(&mut conn, session, Kind::Code).await?;
    let compaction = started.elapsed();
    let mut compacted = Vec::new();
    for _ in 0..5 {
        compacted.push(time_load(&mut conn, session).await?.0);
    }
    appended.sort();
    compacted.sort();
    println!("\nopening a document of {UPDATES} edits (median of 5):");
    println!("| stored as | size | load |\n| --- | --- | --- |");
    println!(
        "| {UPDATES} appended updates | {} KiB | {} |",
        bytes_before / 1024,
        ms(appended[2])
    );
    println!(
        "| one compacted snapshot | {} KiB | {} |",
        bytes_after / 1024,
        ms(compacted[2])
    );
    println!("compaction itself: {}", ms(compaction));
    Ok(())
}

async fn time_load(conn: &mut PgConnection, session: Uuid) -> anyhow::Result<(Duration, usize)> {
    let started = Instant::now();
    let stored = store::load(conn, session, Kind::Code).await?;
    Ok((started.elapsed(), stored.bytes))
}

fn is_update(frame: Option<Result<Message, tokio_tungstenite::tungstenite::Error>>) -> bool {
    matches!(frame, Some(Ok(Message::Binary(bytes))) if bytes.starts_with(&[0, 2]))
}

fn pct(sorted: &[Duration], p: usize) -> Duration {
    sorted[(sorted.len() * p / 100).min(sorted.len() - 1)]
}

fn ms(d: Duration) -> String {
    format!("{:.2} ms", d.as_secs_f64() * 1000.0)
}

async fn replica(db_url: &str, redis_url: &str, prefix: &str) -> anyhow::Result<String> {
    // Fresh per run (the api refuses any secret published in the
    // repository) and the same on both replicas, which accept each other's
    // tokens: derived from the run's key prefix.
    let access_secret = format!("bench-access-{prefix}");
    let refresh_secret = format!("bench-refresh-{prefix}");
    let env: std::collections::HashMap<&str, &str> = [
        ("HOST", "127.0.0.1"),
        ("PORT", "0"),
        ("DATABASE_URL", db_url),
        ("REDIS_URL", redis_url),
        ("REDIS_KEY_PREFIX", prefix),
        ("JWT_ACCESS_SECRET", access_secret.as_str()),
        ("JWT_REFRESH_SECRET", refresh_secret.as_str()),
    ]
    .into_iter()
    .collect();
    let config = Config::from_lookup(|k| env.get(k).map(|v| (*v).to_owned()))?;
    let app = Application::build(config).await?;
    let address = format!("http://127.0.0.1:{}", app.port());
    tokio::spawn(app.run_until_stopped(std::future::pending()));
    Ok(address)
}

async fn create_session(base: &str, token: &str) -> anyhow::Result<Uuid> {
    let created: Value = reqwest::Client::new()
        .post(format!("{base}/api/sessions"))
        .bearer_auth(token)
        .json(&json!({"title": "bench", "language": "python"}))
        .send()
        .await?
        .error_for_status()?
        .json()
        .await?;
    created["session"]["id"]
        .as_str()
        .and_then(|id| id.parse().ok())
        .context("no session id")
}
