//! A device's delivery WebSocket: connect with its bearer token, take the backlog up to
//! `queue_empty`, then handle each live envelope (open, check, account) and acknowledge it.
//!
//! Memory matters here (one socket per virtual device, 10,000 per process): buffers are
//! small (envelopes are small; they grow on demand for a big one) and each connection is
//! a single task owning its stream.

use std::sync::Arc;
use std::time::Duration;

use futures::{SinkExt, StreamExt};
use serde::Deserialize;
use tokio::net::TcpStream;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::HeaderValue;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

use crate::client::device::Device;
use crate::client::http::Envelope;
use crate::client::population::World;
use crate::metrics::integrity::ConnId;

type Stream = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// How long to wait for the upgrade and the backlog.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(15);
/// How long a close waits for the server's close reply before the connection is dropped
/// (a frozen server must not hang the end of a run).
pub const CLOSE_TIMEOUT: Duration = Duration::from_secs(2);

#[derive(Debug, thiserror::Error)]
pub enum WsError {
    #[error("websocket: {0}")]
    Protocol(#[from] tokio_tungstenite::tungstenite::Error),
    #[error("websocket closed before queue_empty")]
    ClosedEarly,
    #[error("websocket connect timed out after {0:?}")]
    Timeout(Duration),
    #[error("bad frame from server: {0}")]
    BadFrame(String),
}

#[derive(Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum ServerFrame {
    Envelope { envelope: Envelope },
    QueueEmpty,
    Error { error: String, message: String },
}

/// A live connection; [`Connection::close`] ends it cleanly (acks already sent go first).
pub struct Connection {
    close: Option<oneshot::Sender<()>>,
    task: JoinHandle<()>,
}

impl Connection {
    /// Closes the socket and waits, at most [`CLOSE_TIMEOUT`], for the server's close reply;
    /// past that the connection is dropped (counted). Returns whether it closed in time.
    pub async fn close(mut self, world: &World) -> bool {
        if let Some(tx) = self.close.take() {
            let _ = tx.send(());
        }
        if tokio::time::timeout(CLOSE_TIMEOUT, &mut self.task)
            .await
            .is_ok()
        {
            return true;
        }
        self.task.abort();
        world
            .counters
            .ws_close_timeouts
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        false
    }

    /// The connection ended on its own (server closed it, network error).
    pub fn is_finished(&self) -> bool {
        self.task.is_finished()
    }
}

fn config() -> WebSocketConfig {
    WebSocketConfig::default()
        .read_buffer_size(2 * 1024)
        .write_buffer_size(0)
}

/// Connects `device`, processes its backlog (not timed as live delivery), and returns once
/// the server said `queue_empty`. Live envelopes are then handled by the connection's task.
pub async fn connect(world: Arc<World>, device: Arc<Device>) -> Result<Connection, WsError> {
    let conn = world.next_connection_id();
    let mut request = format!("{}/v1/websocket", world.ws_base).into_client_request()?;
    let bearer = HeaderValue::from_str(&format!("Bearer {}", device.token))
        .map_err(|e| WsError::BadFrame(e.to_string()))?;
    request.headers_mut().insert("authorization", bearer);
    let connect = async {
        let (mut stream, _) =
            tokio_tungstenite::connect_async_with_config(request, Some(config()), true).await?;
        // The backlog, up to queue_empty.
        loop {
            match stream.next().await {
                None => return Err(WsError::ClosedEarly),
                Some(msg) => match handle(&world, &device, conn, &mut stream, msg?).await? {
                    Step::QueueEmpty => return Ok(stream),
                    Step::Continue => {}
                    Step::Closed => return Err(WsError::ClosedEarly),
                },
            }
        }
    };
    let stream = tokio::time::timeout(CONNECT_TIMEOUT, connect)
        .await
        .map_err(|_| WsError::Timeout(CONNECT_TIMEOUT))??;
    world.counters.ws_opened();
    let (close_tx, close_rx) = oneshot::channel();
    let task = tokio::spawn(live(world, device, conn, stream, close_rx));
    Ok(Connection {
        close: Some(close_tx),
        task,
    })
}

async fn live(
    world: Arc<World>,
    device: Arc<Device>,
    conn: ConnId,
    mut stream: Stream,
    mut close: oneshot::Receiver<()>,
) {
    loop {
        tokio::select! {
            _ = &mut close => {
                let _ = stream.close(None).await;
                // Read until the server's close reply: then it has processed every ack.
                while let Some(Ok(msg)) = stream.next().await {
                    if msg.is_close() {
                        world.ledger.closed_cleanly_after_acks(conn);
                        break;
                    }
                }
                break;
            }
            msg = stream.next() => {
                let step = match msg {
                    None => Step::Closed,
                    Some(Err(e)) => { tracing::debug!(error = %e, "websocket error"); Step::Closed }
                    Some(Ok(msg)) => match handle(&world, &device, conn, &mut stream, msg).await {
                        Ok(step) => step,
                        // The ack could not be written: the connection is gone.
                        Err(WsError::Protocol(e)) => { tracing::debug!(error = %e, "websocket write"); Step::Closed }
                        Err(e) => { tracing::debug!(error = %e, "websocket frame"); Step::Continue }
                    },
                };
                if let Step::Closed = step {
                    if !world.is_stopping() {
                        world.ws_dropped(&device);
                    }
                    break;
                }
            }
        }
    }
    world.counters.ws_closed();
}

enum Step {
    Continue,
    QueueEmpty,
    Closed,
}

async fn handle(
    world: &World,
    device: &Device,
    conn: ConnId,
    stream: &mut Stream,
    msg: Message,
) -> Result<Step, WsError> {
    let text = match msg {
        Message::Text(t) => t,
        Message::Close(_) => return Ok(Step::Closed),
        _ => return Ok(Step::Continue),
    };
    let frame: ServerFrame =
        serde_json::from_str(text.as_str()).map_err(|e| WsError::BadFrame(e.to_string()))?;
    match frame {
        ServerFrame::QueueEmpty => Ok(Step::QueueEmpty),
        ServerFrame::Error { error, message } => {
            Err(WsError::BadFrame(format!("{error}: {message}")))
        }
        ServerFrame::Envelope { envelope } => {
            let (id, message_id) = (envelope.id, envelope.message_id);
            world.on_envelope(device, envelope, conn);
            if device.take_ack_fault() {
                // Injected ack failure: the connection breaks instead of acknowledging.
                return Ok(Step::Closed);
            }
            stream
                .send(Message::Text(
                    format!(r#"{{"type":"ack","id":{id}}}"#).into(),
                ))
                .await?;
            world.ledger.ack_written(message_id, device.addr, conn);
            Ok(Step::Continue)
        }
    }
}
