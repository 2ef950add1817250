//! The session's sockets as tests use them: the events socket (JSON frames),
//! raw document sockets, and [`YClient`], the reference JavaScript document
//! client (Debian's yjs and y-websocket, driven through
//! `tests/js/ydoc-client.cjs`) in a `node` process of its own.

use std::{process::Stdio, time::Duration};

use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio::{
    io::{AsyncBufReadExt, AsyncWriteExt, BufReader, Lines},
    process::{Child, ChildStdin, ChildStdout},
};
use tokio_tungstenite::{
    MaybeTlsStream, WebSocketStream, connect_async,
    tungstenite::{Message, client::IntoClientRequest, protocol::frame::coding::CloseCode},
};
use uuid::Uuid;

use crate::{eventually::eventually, fixtures::User, helpers::TestApp};

/// A raw WebSocket to one of a session's sockets.
pub type Ws = WebSocketStream<MaybeTlsStream<tokio::net::TcpStream>>;

/// Opens `who`'s events socket of `session`.
pub async fn connect(app: &TestApp, who: &User, session: Uuid) -> Ws {
    let url = format!(
        "{}/api/sessions/{session}/events?token={}",
        app.address.replace("http", "ws"),
        who.token
    );
    let (ws, _) = connect_async(url).await.expect("socket opens");
    ws
}

/// The HTTP status an upgrade attempt to the session's `socket`
/// (`events` or `doc`) gets.
pub async fn upgrade_status(
    app: &TestApp,
    session: Uuid,
    socket: &str,
    token: Option<&str>,
) -> u16 {
    let url = format!(
        "{}/api/sessions/{session}/{socket}",
        app.address.replace("http", "ws")
    );
    let mut request = url.into_client_request().expect("request");
    if let Some(token) = token {
        request.headers_mut().insert(
            "authorization",
            format!("Bearer {token}").parse().expect("header"),
        );
    }
    match connect_async(request).await {
        Ok(_) => 101,
        Err(tokio_tungstenite::tungstenite::Error::Http(response)) => response.status().as_u16(),
        Err(e) => panic!("unexpected error {e}"),
    }
}

/// Reads frames until one of type `kind` satisfying `check` arrives.
pub async fn expect(ws: &mut Ws, kind: &str, check: impl Fn(&Value) -> bool) -> Value {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        let frame = tokio::time::timeout_at(deadline, ws.next())
            .await
            .unwrap_or_else(|_| panic!("no {kind} event in time"))
            .expect("socket open")
            .expect("frame");
        if let Message::Text(text) = frame {
            let event: Value = serde_json::from_str(&text).expect("JSON frame");
            if event["type"] == kind && check(&event) {
                return event;
            }
        }
    }
}

pub async fn send(ws: &mut Ws, value: Value) {
    ws.send(Message::Text(value.to_string().into()))
        .await
        .expect("sent");
}

/// Opens `who`'s raw socket to the session's document (`doc`).
pub async fn raw(app: &TestApp, who: &User, session: Uuid) -> Ws {
    raw_to(app, who, session, "doc").await
}

/// The same on the session's document socket `room` (`doc` or `notes`).
pub async fn raw_to(app: &TestApp, who: &User, session: Uuid, room: &str) -> Ws {
    let url = format!(
        "{}/api/sessions/{session}/{room}?token={}",
        app.address.replace("http", "ws"),
        who.token
    );
    connect_async(url).await.expect("socket opens").0
}

/// Reads until the server closes; returns the close code.
pub async fn close_code(ws: &mut Ws) -> Option<CloseCode> {
    loop {
        match tokio::time::timeout(Duration::from_secs(10), ws.next())
            .await
            .expect("closed in time")
        {
            Some(Ok(Message::Close(frame))) => return frame.map(|f| f.code),
            Some(Ok(_)) => continue,
            Some(Err(_)) | None => return None,
        }
    }
}

const CLIENT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/js/ydoc-client.cjs");
/// Where Debian installs its Node.js modules.
const NODE_MODULES: &str = "/usr/share/nodejs";

/// One reference client (a `node` process) connected to one replica.
pub struct YClient {
    pub child: Child,
    stdin: ChildStdin,
    lines: Lines<BufReader<ChildStdout>>,
    pub client_id: u64,
    /// Connection events seen (for failure messages).
    pub history: Vec<Value>,
}

impl YClient {
    /// Connects and waits until the client is synced with the server.
    pub async fn connect(app: &TestApp, who: &User, session: Uuid) -> YClient {
        YClient::connect_to(app, who, session, "doc").await
    }

    /// The same on the session's document socket `room` (`doc` or `notes`).
    pub async fn connect_to(app: &TestApp, who: &User, session: Uuid, room: &str) -> YClient {
        assert!(
            std::path::Path::new(NODE_MODULES)
                .join("y-websocket")
                .exists(),
            "the reference client needs node and Debian's node-yjs, node-y-websocket and node-ws \
             (scripts/test.sh installs them)"
        );
        let base = format!(
            "{}/api/sessions/{session}",
            app.address.replace("http", "ws")
        );
        let mut child = tokio::process::Command::new("node")
            .arg(CLIENT)
            .arg(base)
            .arg(&who.token)
            .arg(room)
            .env("NODE_PATH", NODE_MODULES)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .expect("node starts");
        let stdin = child.stdin.take().expect("stdin");
        let lines = BufReader::new(child.stdout.take().expect("stdout")).lines();
        let mut client = YClient {
            child,
            stdin,
            lines,
            client_id: 0,
            history: Vec::new(),
        };
        let synced = client.event("synced").await;
        client.client_id = synced["clientId"].as_u64().expect("client id");
        client
    }

    async fn next_line(&mut self) -> Value {
        let line = tokio::time::timeout(Duration::from_secs(30), self.lines.next_line())
            .await
            .expect("the client answers in time")
            .expect("read")
            .expect("the client is running");
        let line: Value =
            serde_json::from_str(&line).unwrap_or_else(|_| panic!("not JSON: {line}"));
        if matches!(line["event"].as_str(), Some("status" | "closed" | "synced")) {
            self.history.push(line.clone());
        }
        line
    }

    /// Waits for the event `name`, skipping others.
    pub async fn event(&mut self, name: &str) -> Value {
        loop {
            let line = self.next_line().await;
            if line["event"] == name {
                return line;
            }
            assert!(
                line["event"] != "closed" || name == "closed",
                "closed: {line}"
            );
        }
    }

    /// Sends a command and returns its reply (events in between are skipped).
    pub async fn command(&mut self, command: Value) -> Value {
        self.send(command).await;
        loop {
            let line = self.next_line().await;
            if line.get("event").is_none() {
                return line;
            }
        }
    }

    pub async fn send(&mut self, command: Value) {
        let line = format!("{command}\n");
        self.stdin.write_all(line.as_bytes()).await.expect("write");
    }

    pub async fn insert(&mut self, index: usize, text: &str) {
        self.command(json!({"op": "insert", "index": index, "text": text}))
            .await;
    }

    pub async fn text(&mut self) -> String {
        self.command(json!({"op": "text"})).await["text"]
            .as_str()
            .expect("text")
            .to_owned()
    }

    /// Polls the client's text until `check` holds (or fails after 15 s).
    pub async fn wait_text(&mut self, check: impl Fn(&str) -> bool) -> String {
        let client = tokio::sync::Mutex::new(self);
        eventually(
            Duration::from_secs(15),
            "the client's text to match",
            || async {
                let text = client.lock().await.text().await;
                if check(&text) { Ok(text) } else { Err(text) }
            },
        )
        .await
    }

    pub async fn peers(&mut self) -> serde_json::Map<String, Value> {
        self.command(json!({"op": "peers"})).await["peers"]
            .as_object()
            .expect("peers")
            .clone()
    }

    /// Polls both clients' texts until they are equal (or fails after
    /// `timeout`); answers the text.
    pub async fn converge(a: &mut YClient, b: &mut YClient, timeout: Duration) -> String {
        let clients = tokio::sync::Mutex::new((a, b));
        eventually(timeout, "both clients to converge to one text", || async {
            let mut clients = clients.lock().await;
            let (ta, tb) = (clients.0.text().await, clients.1.text().await);
            if ta == tb { Ok(ta) } else { Err((ta, tb)) }
        })
        .await
    }

    /// Polls the client's awareness states (by client id) until `check`
    /// answers `Some`, failing after `timeout` with the last states seen.
    pub async fn wait_peers<T>(
        &mut self,
        timeout: Duration,
        what: &str,
        check: impl Fn(&serde_json::Map<String, Value>) -> Option<T>,
    ) -> T {
        let client = tokio::sync::Mutex::new(self);
        eventually(timeout, what, || async {
            let mut client = client.lock().await;
            let peers = client.peers().await;
            check(&peers)
                .ok_or_else(|| format!("peers {peers:?}; connection: {:?}", client.history))
        })
        .await
    }

    pub async fn close(mut self) {
        self.command(json!({"op": "close"})).await;
        let _ = tokio::time::timeout(Duration::from_secs(5), self.child.wait()).await;
    }
}
