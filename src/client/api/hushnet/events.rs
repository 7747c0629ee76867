//! HushNet's push channel: `GET /ws/{user_id}` upgraded to a WebSocket, no authentication,
//! one stream per **user** (every device of the user sees every event of the user). Frames
//! are notifications only — `{"event_type": …, "payload": {…}}` from PostgreSQL
//! `NOTIFY` triggers — and carry no message: the device then fetches (`GET
//! /messages/pending`, `GET /sessions/pending`). The server never reads from the socket
//! (no ack, no ping reply handling of its own beyond the library's) and drops events when a
//! socket lags 100 behind.

use futures::StreamExt;
use serde::Deserialize;
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Error as WsError;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};
use uuid::Uuid;

use super::error::HushnetError;

/// One notification.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// A message row was inserted for the user (`messages_channel`).
    Message { chat_id: Option<Uuid> },
    /// A pending X3DH session was stored for one of the user's devices
    /// (`pending_sessions_channel`).
    PendingSession {
        pending_session_id: Uuid,
        sender_device_id: Uuid,
        recipient_device_id: Uuid,
    },
    /// A session was confirmed (`sessions_channel`; sent to both users).
    Session {
        sender_device_id: Option<Uuid>,
        receiver_device_id: Option<Uuid>,
    },
    /// A device of the user was inserted or updated (`devices_channel`).
    Device,
    /// Any other `event_type`, kept verbatim.
    Other(String),
}

#[derive(Deserialize)]
struct Frame {
    event_type: String,
    payload: serde_json::Value,
}

impl Event {
    /// Parses one text frame.
    pub fn parse(text: &str) -> Result<Event, HushnetError> {
        let frame: Frame = serde_json::from_str(text)
            .map_err(|e| HushnetError::WebSocket(format!("frame is not an event: {e}: {text}")))?;
        let p = &frame.payload;
        let uuid = |k: &str| -> Option<Uuid> {
            p.get(k)
                .and_then(|v| v.as_str())
                .and_then(|s| s.parse().ok())
        };
        let need = |k: &'static str| {
            uuid(k).ok_or_else(|| {
                HushnetError::WebSocket(format!("{} event without `{k}`: {text}", frame.event_type))
            })
        };
        Ok(match frame.event_type.as_str() {
            "message" => Event::Message {
                chat_id: uuid("chat_id"),
            },
            "pending_session" => Event::PendingSession {
                pending_session_id: need("pending_session_id")?,
                sender_device_id: need("sender_device_id")?,
                recipient_device_id: need("recipient_device_id")?,
            },
            "session" => Event::Session {
                sender_device_id: uuid("sender_device_id"),
                receiver_device_id: uuid("receiver_device_id"),
            },
            "device" => Event::Device,
            other => Event::Other(other.to_string()),
        })
    }
}

/// What the stream hands over next.
#[derive(Debug)]
pub enum Received {
    Event(Event),
    /// A text frame that is not one of HushNet's events.
    Unreadable(HushnetError),
    /// The server closed the stream.
    Closed,
}

/// A user's event stream.
pub struct EventStream {
    stream: WebSocketStream<MaybeTlsStream<TcpStream>>,
}

impl EventStream {
    /// Connects to `{ws_base}/ws/{user}` ([`super::client::HushnetClient::ws_base`]).
    pub async fn connect(ws_base: &str, user: Uuid) -> Result<Self, WsError> {
        let url = format!("{}/ws/{user}", ws_base.trim_end_matches('/'));
        let (stream, _) = tokio_tungstenite::connect_async(url.as_str()).await?;
        Ok(EventStream { stream })
    }

    /// The next event. Cancel-safe (a frame is only taken when it is returned).
    pub async fn next(&mut self) -> Result<Received, WsError> {
        use tokio_tungstenite::tungstenite::Message;
        loop {
            match self.stream.next().await {
                None | Some(Ok(Message::Close(_))) => return Ok(Received::Closed),
                Some(Ok(Message::Text(t))) => {
                    return Ok(match Event::parse(t.as_str()) {
                        Ok(e) => Received::Event(e),
                        Err(e) => Received::Unreadable(e),
                    })
                }
                Some(Ok(_)) => {}
                Some(Err(e)) => return Err(e),
            }
        }
    }

    /// Sends a close and reads until the server's close reply, for at most `wait`; true if
    /// the reply came. (HushNet's socket task never reads, so it never answers: without the
    /// bound a close would wait for as long as the server keeps the socket.)
    pub async fn close(&mut self, wait: std::time::Duration) -> bool {
        let _ = self.stream.close(None).await;
        let reply = async {
            while let Some(Ok(msg)) = self.stream.next().await {
                if msg.is_close() {
                    return true;
                }
            }
            false
        };
        tokio::time::timeout(wait, reply).await.unwrap_or(false)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const A: &str = "f47ac10b-58cc-4372-a567-0e02b2c3d479";
    const B: &str = "d1e2f3a4-b5c6-7890-abcd-ef1234567890";

    #[test]
    fn frames_as_the_server_serializes_them() {
        let msg = format!(
            r#"{{"event_type":"message","payload":{{"type":"message","chat_id":"{A}","user_id":"{B}"}}}}"#
        );
        assert_eq!(
            Event::parse(&msg).unwrap(),
            Event::Message {
                chat_id: Some(A.parse().unwrap())
            }
        );
        let pending = format!(
            r#"{{"event_type":"pending_session","payload":{{"type":"pending_session","user_id":"{B}","recipient_device_id":"{A}","sender_device_id":"{B}","pending_session_id":"{A}","created_at":"2026-11-29T19:00:00"}}}}"#
        );
        assert_eq!(
            Event::parse(&pending).unwrap(),
            Event::PendingSession {
                pending_session_id: A.parse().unwrap(),
                sender_device_id: B.parse().unwrap(),
                recipient_device_id: A.parse().unwrap(),
            }
        );
        let session = format!(
            r#"{{"event_type":"session","payload":{{"type":"session","user_id":"{B}","sender_device_id":"{A}","receiver_device_id":"{B}"}}}}"#
        );
        assert_eq!(
            Event::parse(&session).unwrap(),
            Event::Session {
                sender_device_id: Some(A.parse().unwrap()),
                receiver_device_id: Some(B.parse().unwrap())
            }
        );
        let device =
            format!(r#"{{"event_type":"device","payload":{{"type":"device","user_id":"{B}"}}}}"#);
        assert_eq!(Event::parse(&device).unwrap(), Event::Device);
    }

    #[test]
    fn api_md_flat_shape_is_not_what_the_server_sends() {
        // API.md documents `{"type":"message",…}` without the envelope; refused, named.
        let doc = format!(r#"{{"type":"message","chat_id":"{A}","user_id":"{B}"}}"#);
        let err = Event::parse(&doc).unwrap_err().to_string();
        assert!(err.contains("frame is not an event"), "{err}");
    }
}
