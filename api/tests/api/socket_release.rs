//! Per-socket state is released when sockets close: the replica's gauges
//! (open sockets, rooms, live documents, presence entries) and the socket's
//! entries in Redis (presence, the user's socket leases) go back to zero,
//! whether the client closed cleanly or vanished.

use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use tokio_tungstenite::{connect_async, tungstenite::Message};
use uuid::Uuid;

use crate::{
    eventually::eventually,
    fixtures::{User, create_session, user},
    helpers::{TestApp, spawn_app},
    sockets::Ws,
};

const GAUGES: [&str; 4] = [
    "codecall_websocket_connections",
    "codecall_rooms",
    "codecall_documents_live",
    "codecall_presence_entries",
];

async fn open(app: &TestApp, who: &User, session: Uuid, socket: &str) -> Ws {
    let url = format!(
        "{}/api/sessions/{session}/{socket}?token={}",
        app.address.replace("http", "ws"),
        who.token
    );
    let (mut ws, _) = connect_async(url).await.expect("socket opens");
    // The first frame (the snapshot, the document's greeting) says the
    // server has set the socket up.
    let first = tokio::time::timeout(Duration::from_secs(10), ws.next())
        .await
        .expect("a first frame in time")
        .expect("open")
        .expect("frame");
    assert!(matches!(first, Message::Text(_) | Message::Binary(_)));
    ws
}

/// The four gauges, as `/metrics` shows them now.
async fn gauges(app: &TestApp) -> [f64; 4] {
    let text = app.get("/metrics").await.text().await.expect("metrics");
    GAUGES.map(|name| {
        text.lines()
            .find_map(|line| line.strip_prefix(name)?.strip_prefix(' '))
            .and_then(|value| value.trim().parse().ok())
            .unwrap_or_else(|| panic!("{name} is exported"))
    })
}

/// Members of the Redis sorted set `key`.
async fn members(redis: &mut redis::aio::MultiplexedConnection, key: &str) -> u64 {
    redis::cmd("ZCARD")
        .arg(key)
        .query_async(redis)
        .await
        .expect("ZCARD")
}

#[tokio::test]
async fn closing_sockets_releases_their_state_on_the_replica_and_in_redis() {
    let app = spawn_app().await;
    let host = user(&app).await;
    let sessions = [
        create_session(&app, &host, &[]).await,
        create_session(&app, &host, &[]).await,
    ];
    let mut clean = Vec::new();
    let mut vanishing = Vec::new();
    for session in sessions {
        clean.push(open(&app, &host, session, "events").await);
        vanishing.push(open(&app, &host, session, "events").await);
        clean.push(open(&app, &host, session, "doc").await);
    }
    let mut redis = redis::Client::open(app.redis_url.as_str())
        .expect("url")
        .get_multiplexed_async_connection()
        .await
        .expect("redis");
    let presence = |session: Uuid| format!("{}presence:{session}", app.redis_prefix);
    let leases = format!("{}sockets:{}", app.redis_prefix, host.id);

    assert_eq!(gauges(&app).await, [6.0, 2.0, 2.0, 4.0]);
    assert_eq!(members(&mut redis, &presence(sessions[0])).await, 2);
    assert_eq!(members(&mut redis, &leases).await, 6);

    for mut ws in clean {
        ws.send(Message::Close(None)).await.expect("close sent");
    }
    // Gone without a close frame: the connection just drops.
    drop(vanishing);

    eventually(
        Duration::from_secs(15),
        "the closed sockets' gauges, presence and leases to be released",
        || async {
            let mut redis = redis.clone();
            let now = gauges(&app).await;
            let held = (
                members(&mut redis, &presence(sessions[0])).await
                    + members(&mut redis, &presence(sessions[1])).await,
                members(&mut redis, &leases).await,
            );
            if now == [0.0; 4] && held == (0, 0) {
                Ok(())
            } else {
                Err(format!(
                    "gauges {now:?}, presence and lease members {held:?}"
                ))
            }
        },
    )
    .await;
}
