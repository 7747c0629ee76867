//! Live delivery over a WebSocket per device: the backlog first, then `queue_empty`, then each
//! new envelope as the LISTEN connection hears of it. Acks over the socket delete envelopes
//! exactly like `DELETE /v1/messages/{id}`. Reading the queue writes nothing: a push is marked
//! delivered only if it stays unacknowledged ([`MARK_DELIVERED_AFTER`], or session end).

use axum::extract::ws::rejection::WebSocketUpgradeRejection;
use axum::extract::ws::{CloseFrame, Message, WebSocket, WebSocketUpgrade};
use axum::extract::State;
use axum::response::Response;
use std::collections::{HashMap, VecDeque};
use std::time::Duration;

use chrono::{DateTime, Utc};
use tokio::time::Instant;

use futures::stream::SplitSink;
use futures::{SinkExt, StreamExt};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::messages::{envelope, Envelope};
use super::{extract, AppState, POLL_BATCH};
use crate::auth::{Device, SocketDevice};
use crate::delivery::{Backoff, Subscription};
use crate::error::{ApiError, ErrorBody};

/// Open WebSockets per device and server instance. One is normal; a few cover a client that
/// reconnects before the server noticed its old socket died. Each session gets every envelope,
/// so without a cap one token could multiply the server's delivery work at will.
pub const MAX_SESSIONS_PER_DEVICE: usize = 4;

/// A pushed envelope still unacknowledged this long after its push is marked delivered in the
/// database (`delivered_at`, the push time); one acknowledged sooner is deleted unmarked, which
/// saves a write and a commit flush per envelope. Unacknowledged pushes are also marked when
/// the session ends.
pub(super) const MARK_DELIVERED_AFTER: Duration = Duration::from_secs(1);

/// Largest frame a client may send (acks are tiny).
const MAX_CLIENT_FRAME: usize = 4 * 1024;

/// Server → client.
#[derive(Debug, Serialize, ToSchema)]
#[serde(tag = "type", rename_all = "snake_case")]
pub(super) enum ServerFrame {
    Envelope {
        envelope: Envelope,
    },
    /// Everything queued at connect time has been sent.
    QueueEmpty,
    /// A client frame was not understood, named an envelope that is not the caller's, or could
    /// not be carried out (`database_unavailable`: retry the ack). The connection stays open.
    Error {
        error: &'static str,
        message: String,
    },
}

/// Client → server.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub(super) enum ClientFrame {
    Ack { id: i64 },
}

/// Open the delivery WebSocket (token in the Authorization header or `?token=`).
#[utoipa::path(get, path = "/v1/websocket", tag = "messages", security(("bearer" = [])),
    params(("token" = Option<String>, Query, description = "the bearer token, for clients that cannot set headers")),
    responses(
        (status = 101, description = "switching to the WebSocket protocol; frames are JSON `ServerFrame`/`ClientFrame`"),
        (status = 400, description = "not a WebSocket upgrade request", body = ErrorBody),
        (status = 401, body = ErrorBody),
        (status = 429, description = "the device already has the maximum number of open sessions", body = ErrorBody)))]
pub(super) async fn upgrade(
    State(app): State<AppState>,
    SocketDevice(device): SocketDevice,
    ws: Result<WebSocketUpgrade, WebSocketUpgradeRejection>,
) -> Result<Response, ApiError> {
    let ws = ws.map_err(|e| {
        ApiError::NotWebSocket(format!("expected a WebSocket upgrade: {}", e.body_text()))
    })?;
    // Registered before the upgrade completes, so nothing stored meanwhile is missed.
    let subscription = app
        .hub
        .try_subscribe(device.row, MAX_SESSIONS_PER_DEVICE)
        .ok_or_else(|| {
            ApiError::TooManySessions(format!(
                "this device already has {MAX_SESSIONS_PER_DEVICE} open WebSocket sessions; close one first"
            ))
        })?;
    // Clients only send small acks, so the 128 KiB default read buffer per connection is
    // waste; with thousands of idle devices connected it dominates the server's memory.
    Ok(ws
        .max_message_size(MAX_CLIENT_FRAME)
        .read_buffer_size(8 * 1024)
        .write_buffer_size(8 * 1024)
        .on_upgrade(move |socket| async move {
            if let Err(e) = session(app, device, subscription, socket).await {
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

/// The sending half of a session's socket.
type Sink = SplitSink<WebSocket, Message>;

async fn session(
    app: AppState,
    device: Device,
    subscription: Subscription,
    socket: WebSocket,
) -> Result<(), SessionEnd> {
    let mut pushed = InFlight::default();
    let ended = serve(&app, &device, &subscription, socket, &mut pushed).await;
    // Whatever was pushed and never acknowledged here was delivered all the same.
    mark_delivered(&app, &device, pushed.take_due(None)).await;
    ended
}

async fn serve(
    app: &AppState,
    device: &Device,
    subscription: &Subscription,
    socket: WebSocket,
    pushed: &mut InFlight,
) -> Result<(), SessionEnd> {
    let mut shutdown = app.shutdown.clone();
    let (mut tx, mut rx) = socket.split();
    if let Err(e) = app.store.touch(device).await {
        tracing::warn!(error = %e, "could not record last_seen_at"); // best effort
    }
    let mut backlog_sent = false;
    // Read the queue on the first pass, on a wake-up, and after a failed read (with backoff);
    // not after an ack, which cannot make anything new deliverable.
    let mut read = true;
    let mut retry = Backoff::default();
    let mut retry_at: Option<Duration> = None;
    loop {
        if read {
            match push_queued(app, device, pushed, &mut tx).await {
                Ok(()) => {
                    retry.reset();
                    retry_at = None;
                    if !backlog_sent {
                        backlog_sent = true;
                        tx.feed(text(&ServerFrame::QueueEmpty)).await?;
                    }
                }
                // The database is away: keep the socket, try again later (a re-LISTEN also wakes us).
                Err(SessionEnd::Store(e)) => {
                    tracing::warn!(error = %e, "reading the queue failed; retrying");
                    retry_at = Some(retry.next());
                }
                Err(e) => return Err(e),
            }
            tx.flush().await?;
        }
        read = false;
        let mark_at = pushed.mark_due();
        tokio::select! {
            _ = subscription.wake.notified() => read = true,
            _ = sleep_or_never(retry_at) => read = true,
            _ = sleep_until_or_never(mark_at) => {
                mark_delivered(app, device, pushed.take_due(Some(Instant::now()))).await;
            }
            frame = rx.next() => match frame {
                None => return Ok(()),
                Some(Ok(Message::Close(_))) => {
                    // The library queues the close reply (RFC 6455 §5.5.1) and sends it on the
                    // next write; flushing sends it now, so the client learns that every frame
                    // before its close (every ack) was processed. Sending it may end the socket.
                    let _ = tx.flush().await;
                    return Ok(());
                }
                Some(Err(e)) => return Err(e.into()),
                Some(Ok(Message::Text(t))) => {
                    if let Some(reply) = client_frame(app, device, pushed, t.as_bytes()).await {
                        tx.send(text(&reply)).await?;
                    }
                }
                Some(Ok(Message::Binary(b))) => {
                    if let Some(reply) = client_frame(app, device, pushed, &b).await {
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

/// Best effort: `delivered_at` is a record for operators, not part of delivery (an envelope
/// is redelivered until it is acknowledged, whether or not it is marked).
async fn mark_delivered(app: &AppState, device: &Device, due: Vec<(i64, DateTime<Utc>)>) {
    if let Err(e) = app.store.mark_delivered(device, &due).await {
        tracing::warn!(error = %e, count = due.len(), "could not record delivered_at");
    }
}

async fn sleep_until_or_never(at: Option<Instant>) {
    match at {
        Some(t) => tokio::time::sleep_until(t).await,
        None => std::future::pending().await,
    }
}

async fn sleep_or_never(after: Option<Duration>) {
    match after {
        Some(d) => tokio::time::sleep(d).await,
        None => std::future::pending().await,
    }
}

/// Sends every queued envelope this session has not pushed yet, oldest first.
async fn push_queued(
    app: &AppState,
    device: &Device,
    pushed: &mut InFlight,
    tx: &mut Sink,
) -> Result<(), SessionEnd> {
    loop {
        let (batch, more) = app
            .store
            .peek_queue(device, &pushed.ids(), POLL_BATCH)
            .await?;
        for e in batch {
            pushed.insert(e.id);
            tx.feed(text(&ServerFrame::Envelope {
                envelope: envelope(e),
            }))
            .await?;
        }
        if !more {
            return Ok(());
        }
    }
}

/// Envelopes pushed on this socket and not yet acknowledged on it, with their push times.
/// Re-reads exclude them instead of reading after a cursor, so an id that commits late is
/// still found (see `store::messages::QUEUE`). An envelope acknowledged elsewhere (HTTP) stays
/// listed until the session ends; excluding (or marking) a deleted id is harmless.
#[derive(Default)]
struct InFlight {
    pushed: HashMap<i64, DateTime<Utc>>,
    /// Pushes not yet marked delivered, oldest first; acknowledged ones are skipped lazily.
    unmarked: VecDeque<(Instant, i64)>,
}

impl InFlight {
    fn insert(&mut self, id: i64) {
        self.pushed.insert(id, Utc::now());
        self.unmarked.push_back((Instant::now(), id));
    }

    fn remove(&mut self, id: i64) {
        self.pushed.remove(&id);
    }

    fn ids(&self) -> Vec<i64> {
        self.pushed.keys().copied().collect()
    }

    /// When the oldest unacknowledged, unmarked push is due for its mark.
    fn mark_due(&mut self) -> Option<Instant> {
        while let Some((_, id)) = self.unmarked.front() {
            if self.pushed.contains_key(id) {
                break;
            }
            self.unmarked.pop_front();
        }
        self.unmarked
            .front()
            .map(|(at, _)| *at + MARK_DELIVERED_AFTER)
    }

    /// Takes the unacknowledged pushes due for marking by `now` (all of them with `None`).
    fn take_due(&mut self, now: Option<Instant>) -> Vec<(i64, DateTime<Utc>)> {
        let mut due = Vec::new();
        while let Some(&(at, id)) = self.unmarked.front() {
            if now.is_some_and(|now| at + MARK_DELIVERED_AFTER > now) {
                break;
            }
            self.unmarked.pop_front();
            if let Some(pushed_at) = self.pushed.get(&id) {
                due.push((id, *pushed_at));
            }
        }
        due
    }
}

/// Handles one client frame; an error frame back for anything wrong (including a database
/// error while acknowledging, which the client may retry), so one bad frame or one database
/// hiccup does not cost the connection.
async fn client_frame(
    app: &AppState,
    device: &Device,
    pushed: &mut InFlight,
    bytes: &[u8],
) -> Option<ServerFrame> {
    let error = |e: ApiError| {
        Some(ServerFrame::Error {
            error: e.code(),
            message: e.to_string(),
        })
    };
    match extract::parse::<ClientFrame>(bytes) {
        Err(e) => error(e),
        Ok(ClientFrame::Ack { id }) => match app.store.acknowledge(device, id).await {
            Ok(found) => {
                pushed.remove(id);
                match found {
                    true => None,
                    false => error(ApiError::NotFound(format!("id: you have no envelope {id}"))),
                }
            }
            Err(e) => {
                tracing::warn!(error = %e, "acknowledgement failed");
                error(e)
            }
        },
    }
}
