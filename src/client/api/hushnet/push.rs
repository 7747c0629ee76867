//! HushNet's push channel as a [`PushChannel`]: the user's WebSocket (`/ws/{user_id}`,
//! notifications only) and, on each notification, the signed fetches that carry the
//! messages: `GET /sessions/pending` (each session's first message, confirmed with
//! `POST /sessions/confirm` as soon as it is fetched, which creates the users' chat so the
//! recipient can answer) and `GET /messages/pending` (which marks what it returns
//! delivered). The backlog is one round of both fetches, made after the socket is open so
//! that nothing stored meanwhile goes unnoticed.
//!
//! A task owns the socket and does the fetches; [`PushChannel::next`] only reads what it
//! queued, so dropping `next` loses nothing (fetched messages are already marked delivered
//! on the server). There is no ack: [`PushChannel::ack`] does nothing.

use std::collections::HashSet;
use std::sync::Arc;

use async_trait::async_trait;
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;
use uuid::Uuid;

use super::codec::{unb64, HeaderJson};
use super::events::{Event, EventStream, Received};
use super::wire::{ConfirmSessionRequest, PendingMessage, PendingSession};
use super::{keys, Inner, Me};
use crate::client::api::{ApiError, Envelope, EnvelopeType, Incoming, PushChannel, PushError};
use crate::client::wire as envelope;

type Queue = mpsc::UnboundedSender<Result<Incoming, PushError>>;

/// How long a close waits for the server's close reply (HushNet's never comes: its socket
/// task does not read), well within the caller's own bound (`receive::CLOSE_TIMEOUT`).
const CLOSE_WAIT: std::time::Duration = std::time::Duration::from_secs(1);

/// A device's push channel.
pub(crate) struct HushnetPush {
    rx: mpsc::UnboundedReceiver<Result<Incoming, PushError>>,
    close: Option<oneshot::Sender<oneshot::Sender<bool>>>,
    task: JoinHandle<()>,
}

impl Drop for HushnetPush {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// The envelope id of a HushNet row (its UUID's first 63 bits): the same row always gets
/// the same id, so a row fetched twice is seen as one envelope delivered twice.
fn envelope_id(row: Uuid) -> i64 {
    (row.as_u128() >> 65) as i64
}

/// What the task fetches for one device.
struct Fetcher {
    inner: Arc<Inner>,
    me: Me,
    /// Pending sessions already handed over (one whose confirmation failed is listed again
    /// by the server until confirmed).
    seen: HashSet<Uuid>,
}

impl HushnetPush {
    /// Opens `me`'s channel: socket first, then the backlog, then live notifications.
    pub(crate) async fn open(inner: Arc<Inner>, me: Me) -> Result<HushnetPush, PushError> {
        let events = EventStream::connect(&inner.http.ws_base(), me.user).await?;
        let (tx, rx) = mpsc::unbounded_channel();
        let mut f = Fetcher {
            inner,
            me,
            seen: HashSet::new(),
        };
        f.sessions(&tx).await?;
        f.messages(&tx).await?;
        let _ = tx.send(Ok(Incoming::BacklogDone));
        let (close, close_rx) = oneshot::channel();
        let task = tokio::spawn(f.live(events, tx, close_rx));
        Ok(HushnetPush {
            rx,
            close: Some(close),
            task,
        })
    }
}

impl Fetcher {
    /// Handles notifications until the socket ends or a close is asked for.
    async fn live(
        mut self,
        mut events: EventStream,
        tx: Queue,
        mut close: oneshot::Receiver<oneshot::Sender<bool>>,
    ) {
        loop {
            let received = tokio::select! {
                reply = &mut close => {
                    let confirmed = events.close(CLOSE_WAIT).await;
                    if let Ok(reply) = reply {
                        let _ = reply.send(confirmed);
                    }
                    return;
                }
                r = events.next() => r,
            };
            let fetched = match received {
                Ok(Received::Event(Event::Message { .. })) => self.messages(&tx).await,
                Ok(Received::Event(Event::PendingSession {
                    recipient_device_id,
                    ..
                })) if recipient_device_id == self.me.device => self.sessions(&tx).await,
                Ok(Received::Event(_)) => Ok(()),
                Ok(Received::Unreadable(e)) => {
                    let _ = tx.send(Err(PushError::BadFrame(e.to_string())));
                    Ok(())
                }
                Ok(Received::Closed) => {
                    let _ = tx.send(Ok(Incoming::Closed));
                    return;
                }
                Err(e) => Err(PushError::WebSocket(e)),
            };
            if let Err(e) = fetched {
                let _ = tx.send(Err(e));
                return;
            }
        }
    }

    /// Fetches the device's pending sessions, confirms each new one and queues its first
    /// message as a `prekey` envelope.
    async fn sessions(&mut self, tx: &Queue) -> Result<(), PushError> {
        let http = &self.inner.http;
        let pending = http.pending_sessions(&self.me.auth()).await.map_err(api)?;
        for p in pending {
            if !self.seen.insert(p.id) {
                continue;
            }
            let env = self.first_message(&p).await;
            let confirm = ConfirmSessionRequest {
                pending_session_id: p.id,
                sender_device_id: p.sender_device_id,
                receiver_device_id: self.me.device,
            };
            if let Err(e) = http.confirm_session(&self.me.auth(), &confirm).await {
                tracing::warn!(error = %e, session = %p.id, "HushNet session not confirmed");
            }
            match env {
                Ok(env) => {
                    let _ = tx.send(Ok(Incoming::Envelope(env)));
                }
                Err(e) => {
                    tracing::warn!(error = %e, session = %p.id, "unreadable HushNet session");
                }
            }
        }
        Ok(())
    }

    async fn first_message(&self, p: &PendingSession) -> Result<Envelope, ApiError> {
        let first = keys::first_message(p)?;
        let (sender_user, sender_device) = self.inner.user_of(p.sender_device_id).await?;
        Ok(Envelope {
            id: envelope_id(p.id),
            message_id: first.message_id,
            sender_user,
            sender_device,
            kind: EnvelopeType::Prekey,
            header: envelope::prekey_header(&first.initial.to_bytes(), &first.header),
            ciphertext: first.ciphertext,
        })
    }

    /// Fetches the device's pending messages (the fetch marks them delivered) and queues
    /// each as a `ratchet` envelope.
    async fn messages(&mut self, tx: &Queue) -> Result<(), PushError> {
        let pending = self
            .inner
            .http
            .pending_messages(&self.me.auth())
            .await
            .map_err(api)?;
        for m in pending {
            match self.message(&m).await {
                Ok(env) => {
                    let _ = tx.send(Ok(Incoming::Envelope(env)));
                }
                Err(e) => tracing::warn!(error = %e, message = %m.id, "unreadable HushNet message"),
            }
        }
        Ok(())
    }

    async fn message(&self, m: &PendingMessage) -> Result<Envelope, ApiError> {
        let bad = |field: &'static str, why: String| {
            ApiError::from(super::HushnetError::encoding(field, why))
        };
        let message_id = m
            .logical_msg_id
            .parse()
            .map_err(|e| bad("logical_msg_id", format!("not a UUID: {e}")))?;
        let from = m
            .from_device_id
            .ok_or_else(|| bad("from_device_id", "missing".into()))?;
        let (sender_user, sender_device) = self.inner.user_of(from).await?;
        if let (Some(chat), Some(user)) = (m.chat_id, m.from_user_id) {
            self.inner.dir.set_chat(self.me.user, user, chat);
        }
        let header = HeaderJson::from_value(&m.header)?.to_header()?;
        Ok(Envelope {
            id: envelope_id(m.id),
            message_id,
            sender_user,
            sender_device,
            kind: EnvelopeType::Ratchet,
            header: envelope::ratchet_header(&header),
            ciphertext: unb64("ciphertext", &m.ciphertext)?,
        })
    }
}

fn api(e: super::HushnetError) -> PushError {
    PushError::Api(e.into())
}

#[async_trait]
impl PushChannel for HushnetPush {
    async fn next(&mut self) -> Result<Incoming, PushError> {
        match self.rx.recv().await {
            Some(item) => item,
            None => Ok(Incoming::Closed),
        }
    }

    /// HushNet has no ack: fetching marked the message delivered.
    async fn ack(&mut self, _id: i64) -> Result<(), PushError> {
        Ok(())
    }

    /// Closes the socket; true only if the server answered the close.
    async fn close(&mut self) -> bool {
        let Some(close) = self.close.take() else {
            return false;
        };
        let (reply, answer) = oneshot::channel();
        if close.send(reply).is_err() {
            return false;
        }
        answer.await.unwrap_or(false)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn envelope_ids_are_stable_and_positive() {
        let row = Uuid::from_u128(u128::MAX);
        assert_eq!(envelope_id(row), i64::MAX);
        assert_eq!(envelope_id(row), envelope_id(row));
        assert!(envelope_id(Uuid::new_v4()) >= 0);
        assert_ne!(
            envelope_id(Uuid::from_u128(1 << 100)),
            envelope_id(Uuid::from_u128(2 << 100))
        );
    }
}
