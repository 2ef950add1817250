//! What every socket loop does the same way, whatever its frames mean:
//! buffers sized at the upgrade, a heartbeat that pings the client and
//! closes a silent one, and sends bounded in time, so a client that stopped
//! reading never holds its task.

use std::time::{Duration, Instant};

use axum::extract::ws::{CloseFrame, Message, Utf8Bytes, WebSocket, WebSocketUpgrade};
use futures_util::{SinkExt, stream::SplitSink};

use crate::config::SocketSettings;

/// Server heartbeat: a WebSocket ping per socket, and the replica's presence
/// refresh.
pub const HEARTBEAT: Duration = Duration::from_secs(10);
/// A socket silent (no frame, no pong) for this long is closed.
pub const IDLE_TIMEOUT: Duration = Duration::from_secs(45);
/// A client that does not take a frame within this long is dropped.
pub const SEND_TIMEOUT: Duration = Duration::from_secs(5);

/// A socket's sending half.
pub type Sink = SplitSink<WebSocket, Message>;

/// Sizes a socket's buffers and limits its frames.
///
/// The read buffer is allocated up front for every socket (tungstenite's
/// default is 128 KiB, most of an idle socket's memory); a frame larger than
/// it still arrives whole, up to `max_frame`, in a buffer grown for it. The
/// write buffer grows to the largest frame sent; no frames wait in it, as
/// every send flushes ([`SEND_TIMEOUT`] bounds a send to a stuck client).
pub fn sized(
    upgrade: WebSocketUpgrade,
    settings: &SocketSettings,
    max_frame: usize,
) -> WebSocketUpgrade {
    upgrade
        .read_buffer_size(settings.read_buffer_bytes)
        .write_buffer_size(0)
        .max_message_size(max_frame)
        .max_frame_size(max_frame)
}

/// Sends a frame; false when the client is gone or too slow to take it.
pub async fn send_frame(tx: &mut Sink, frame: Message) -> bool {
    matches!(
        tokio::time::timeout(SEND_TIMEOUT, tx.send(frame)).await,
        Ok(Ok(()))
    )
}

/// Sends a close frame, bounded like every send.
pub async fn close(tx: &mut Sink, code: u16, reason: &'static str) -> bool {
    let frame = CloseFrame {
        code,
        reason: Utf8Bytes::from_static(reason),
    };
    send_frame(tx, Message::Close(Some(frame))).await
}

/// A socket's heartbeat: ticks every [`HEARTBEAT`], and knows when the
/// client was last heard from.
pub struct Heartbeat {
    interval: tokio::time::Interval,
    last_heard: Instant,
}

impl Heartbeat {
    /// Starts the beat; the first tick comes one [`HEARTBEAT`] from now.
    pub async fn start() -> Heartbeat {
        let mut interval = tokio::time::interval(HEARTBEAT);
        interval.tick().await;
        Heartbeat {
            interval,
            last_heard: Instant::now(),
        }
    }

    /// Resolves at the next beat. Cancel-safe (for `select!` loops).
    pub async fn tick(&mut self) {
        self.interval.tick().await;
    }

    /// The client sent something (a frame, a pong).
    pub fn heard(&mut self) {
        self.last_heard = Instant::now();
    }

    /// Whether the client has been silent longer than [`IDLE_TIMEOUT`].
    pub fn idle(&self) -> bool {
        self.last_heard.elapsed() > IDLE_TIMEOUT
    }
}

/// Pings the client; false when it does not take the ping within
/// [`SEND_TIMEOUT`] (a broken connection shows on the next read).
pub async fn ping(tx: &mut Sink) -> bool {
    tokio::time::timeout(SEND_TIMEOUT, tx.send(Message::Ping(Default::default())))
        .await
        .is_ok()
}
