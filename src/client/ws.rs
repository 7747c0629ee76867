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

type Stream = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// How long to wait for the upgrade and the backlog.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(15);

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
    /// Closes the socket and waits until the task has finished.
    pub async fn close(mut self) {
        if let Some(tx) = self.close.take() {
            let _ = tx.send(());
        }
        let _ = (&mut self.task).await;
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
                Some(msg) => match handle(&world, &device, &mut stream, msg?, false).await? {
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
    let task = tokio::spawn(live(world, device, stream, close_rx));
    Ok(Connection {
        close: Some(close_tx),
        task,
    })
}

async fn live(
    world: Arc<World>,
    device: Arc<Device>,
    mut stream: Stream,
    mut close: oneshot::Receiver<()>,
) {
    loop {
        tokio::select! {
            _ = &mut close => {
                let _ = stream.close(None).await;
                // Read until the server's close reply so it has processed every ack.
                while let Some(Ok(msg)) = stream.next().await {
                    if msg.is_close() { break; }
                }
                break;
            }
            msg = stream.next() => {
                let step = match msg {
                    None => Step::Closed,
                    Some(Err(e)) => { tracing::debug!(error = %e, "websocket error"); Step::Closed }
                    Some(Ok(msg)) => handle(&world, &device, &mut stream, msg, true).await.unwrap_or_else(|e| {
                        tracing::debug!(error = %e, "websocket frame");
                        Step::Continue
                    }),
                };
                if let Step::Closed = step {
                    if !world.is_stopping() {
                        world.ws_dropped();
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
    stream: &mut Stream,
    msg: Message,
    live: bool,
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
            let id = envelope.id;
            world.on_envelope(device, envelope, live);
            stream
                .send(Message::Text(
                    format!(r#"{{"type":"ack","id":{id}}}"#).into(),
                ))
                .await?;
            Ok(Step::Continue)
        }
    }
}
