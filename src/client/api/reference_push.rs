//! The reference API's push channel: `GET /v1/websocket` with the bearer token; the server
//! sends `envelope` frames (backlog first, then `queue_empty`, then live ones) and the device
//! answers each with `{"type":"ack","id":N}`.
//!
//! Memory matters here (one socket per virtual device, 10,000 per process): buffers are small
//! (envelopes are small; they grow on demand for a big one).

use async_trait::async_trait;
use futures::{SinkExt, StreamExt};
use serde::Deserialize;
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::HeaderValue;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

use super::{Envelope, Incoming, PushChannel, PushError};

type Stream = WebSocketStream<MaybeTlsStream<TcpStream>>;

#[derive(Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum ServerFrame {
    Envelope { envelope: Envelope },
    QueueEmpty,
    Error { error: String, message: String },
}

/// A device's delivery WebSocket.
pub(crate) struct WebSocketPush {
    stream: Stream,
}

fn config() -> WebSocketConfig {
    WebSocketConfig::default()
        .read_buffer_size(2 * 1024)
        .write_buffer_size(0)
}

impl WebSocketPush {
    /// Upgrades `GET {base}/v1/websocket` (http → ws) with the bearer `token`.
    pub(crate) async fn connect(base: &str, token: &str) -> Result<WebSocketPush, PushError> {
        let ws_base = base
            .replacen("http://", "ws://", 1)
            .replacen("https://", "wss://", 1);
        let mut request = format!("{ws_base}/v1/websocket").into_client_request()?;
        let bearer = HeaderValue::from_str(&format!("Bearer {token}"))
            .map_err(|e| PushError::BadFrame(e.to_string()))?;
        request.headers_mut().insert("authorization", bearer);
        let (stream, _) =
            tokio_tungstenite::connect_async_with_config(request, Some(config()), true).await?;
        Ok(WebSocketPush { stream })
    }
}

#[async_trait]
impl PushChannel for WebSocketPush {
    async fn next(&mut self) -> Result<Incoming, PushError> {
        loop {
            let text = match self.stream.next().await {
                None => return Ok(Incoming::Closed),
                Some(msg) => match msg? {
                    Message::Text(t) => t,
                    Message::Close(_) => return Ok(Incoming::Closed),
                    _ => continue,
                },
            };
            let frame: ServerFrame = serde_json::from_str(text.as_str())
                .map_err(|e| PushError::BadFrame(e.to_string()))?;
            return match frame {
                ServerFrame::QueueEmpty => Ok(Incoming::BacklogDone),
                ServerFrame::Envelope { envelope } => Ok(Incoming::Envelope(envelope)),
                ServerFrame::Error { error, message } => {
                    Err(PushError::BadFrame(format!("{error}: {message}")))
                }
            };
        }
    }

    async fn ack(&mut self, id: i64) -> Result<(), PushError> {
        self.stream
            .send(Message::Text(
                format!(r#"{{"type":"ack","id":{id}}}"#).into(),
            ))
            .await?;
        Ok(())
    }

    /// Sends a close and reads until the server's close reply: the server processes frames
    /// in order, so by then it has processed every ack.
    async fn close(&mut self) -> bool {
        let _ = self.stream.close(None).await;
        while let Some(Ok(msg)) = self.stream.next().await {
            if msg.is_close() {
                return true;
            }
        }
        false
    }
}
