//! Live delivery over a WebSocket per device: the backlog first, then `queue_empty`, then each
//! new envelope as the LISTEN connection hears of it. Acks over the socket delete envelopes
//! exactly like `DELETE /v1/messages/{id}`.

use axum::extract::ws::rejection::WebSocketUpgradeRejection;
use axum::extract::ws::{CloseFrame, Message, WebSocket, WebSocketUpgrade};
use axum::extract::State;
use axum::response::Response;
use futures::{SinkExt, StreamExt};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::messages::{envelope, Envelope};
use super::{extract, AppState, POLL_BATCH};
use crate::auth::{Device, SocketDevice};
use crate::error::{ApiError, ErrorBody};

/// Largest frame a client may send (acks are tiny).
const MAX_CLIENT_FRAME: usize = 4 * 1024;

/// Server → client.
#[derive(Debug, Serialize, ToSchema)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ServerFrame {
    Envelope {
        envelope: Envelope,
    },
    /// Everything queued at connect time has been sent.
    QueueEmpty,
    /// A client frame was not understood or named an envelope that is not the caller's.
    Error {
        error: &'static str,
        message: String,
    },
}

/// Client → server.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum ClientFrame {
    Ack { id: i64 },
}

/// Open the delivery WebSocket (token in the Authorization header or `?token=`).
#[utoipa::path(get, path = "/v1/websocket", tag = "messages", security(("bearer" = [])),
    params(("token" = Option<String>, Query, description = "the bearer token, for clients that cannot set headers")),
    responses(
        (status = 101, description = "switching to the WebSocket protocol; frames are JSON `ServerFrame`/`ClientFrame`"),
        (status = 400, description = "not a WebSocket upgrade request", body = ErrorBody),
        (status = 401, body = ErrorBody)))]
pub async fn upgrade(
    State(app): State<AppState>,
    SocketDevice(device): SocketDevice,
    ws: Result<WebSocketUpgrade, WebSocketUpgradeRejection>,
) -> Result<Response, ApiError> {
    let ws = ws.map_err(|e| {
        ApiError::NotWebSocket(format!("expected a WebSocket upgrade: {}", e.body_text()))
    })?;
    // Clients only send small acks, so the 128 KiB default read buffer per connection is
    // waste; with thousands of idle devices connected it dominates the server's memory.
    Ok(ws
        .max_message_size(MAX_CLIENT_FRAME)
        .read_buffer_size(8 * 1024)
        .write_buffer_size(8 * 1024)
        .on_upgrade(move |socket| async move {
            if let Err(e) = session(app, device, socket).await {
                tracing::debug!(error = %e, "websocket session ended");
            }
        }))
}

#[derive(Debug, thiserror::Error)]
enum SessionEnd {
    #[error("socket: {0}")]
    Socket(#[from] axum::Error),
    #[error("store: {0}")]
    Store(#[from] ApiError),
}

fn text(frame: &ServerFrame) -> Message {
    Message::Text(
        serde_json::to_string(frame)
            .expect("frames serialize")
            .into(),
    )
}

async fn session(app: AppState, device: Device, socket: WebSocket) -> Result<(), SessionEnd> {
    // Subscribe before reading the backlog, so nothing stored in between is missed.
    let subscription = app.hub.subscribe(device.row);
    let mut shutdown = app.shutdown.clone();
    let (mut tx, mut rx) = socket.split();
    app.store.touch(&device).await?;
    let mut cursor = 0i64;
    let mut drained = false;
    loop {
        // Send everything after the cursor (the backlog on the first pass).
        loop {
            let (batch, more) = app.store.queue(&device, cursor, POLL_BATCH).await?;
            for e in batch {
                cursor = cursor.max(e.id);
                tx.feed(text(&ServerFrame::Envelope {
                    envelope: envelope(e),
                }))
                .await?;
            }
            if !more {
                break;
            }
        }
        if !drained {
            drained = true;
            tx.feed(text(&ServerFrame::QueueEmpty)).await?;
        }
        tx.flush().await?;
        tokio::select! {
            _ = subscription.wake.notified() => {}
            frame = rx.next() => match frame {
                None | Some(Ok(Message::Close(_))) => return Ok(()),
                Some(Err(e)) => return Err(e.into()),
                Some(Ok(Message::Text(t))) => {
                    if let Some(reply) = client_frame(&app, &device, t.as_bytes()).await? {
                        tx.send(text(&reply)).await?;
                    }
                }
                Some(Ok(Message::Binary(b))) => {
                    if let Some(reply) = client_frame(&app, &device, &b).await? {
                        tx.send(text(&reply)).await?;
                    }
                }
                Some(Ok(_)) => {} // ping/pong: answered by the library
            },
            _ = shutdown.changed() => {
                let _ = tx.send(Message::Close(Some(CloseFrame { code: 1001, reason: "server shutting down".into() }))).await;
                return Ok(());
            }
        }
    }
}

/// Handles one client frame; an error frame back for anything wrong, so one bad frame does
/// not cost the connection.
async fn client_frame(
    app: &AppState,
    device: &Device,
    bytes: &[u8],
) -> Result<Option<ServerFrame>, ApiError> {
    let error = |e: ApiError| {
        Some(ServerFrame::Error {
            error: e.code(),
            message: e.to_string(),
        })
    };
    match extract::parse::<ClientFrame>(bytes) {
        Err(e) => Ok(error(e)),
        Ok(ClientFrame::Ack { id }) => {
            if app.store.acknowledge(device, id).await? {
                Ok(None)
            } else {
                Ok(error(ApiError::NotFound(format!(
                    "id: you have no envelope {id}"
                ))))
            }
        }
    }
}
