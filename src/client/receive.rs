//! A device's receiving side, whatever the server's API: open its push channel, take the
//! backlog up to [`Incoming::BacklogDone`], then handle each live envelope (open, check,
//! account) and acknowledge it.
//!
//! Each connection is a single task owning its channel (one per virtual device, 10,000 per
//! process).

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use crate::client::api::{Incoming, PushChannel, PushError};
use crate::client::device::Device;
use crate::client::population::World;
use crate::metrics::integrity::ConnId;

/// How long to wait for the connection and the backlog.
pub(crate) const CONNECT_TIMEOUT: Duration = Duration::from_secs(15);
/// How long a close waits for the server's close reply before the connection is dropped
/// (a frozen server must not hang the end of a run).
pub(crate) const CLOSE_TIMEOUT: Duration = Duration::from_secs(2);

/// A live connection; [`Connection::close`] ends it cleanly (acks already sent go first).
pub struct Connection {
    close: Option<oneshot::Sender<()>>,
    task: JoinHandle<()>,
}

impl Connection {
    /// Closes the channel and waits, at most [`CLOSE_TIMEOUT`], for the server's close reply;
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
    pub(crate) fn is_finished(&self) -> bool {
        self.task.is_finished()
    }
}

/// Connects `device`, processes its backlog, and returns once the server said the backlog
/// is done. Live envelopes are then handled by the connection's task.
pub(crate) async fn connect(
    world: Arc<World>,
    device: Arc<Device>,
) -> Result<Connection, PushError> {
    let conn = world.next_connection_id();
    let connect = async {
        let mut push = world.api.open_push(&device.credential).await?;
        loop {
            let incoming = push.next().await?;
            match process(&world, &device, conn, push.as_mut(), incoming).await? {
                Step::BacklogDone => return Ok(push),
                Step::Continue => {}
                Step::Closed => return Err(PushError::ClosedEarly),
            }
        }
    };
    let push = tokio::time::timeout(CONNECT_TIMEOUT, connect)
        .await
        .map_err(|_| PushError::Timeout(CONNECT_TIMEOUT))??;
    world.counters.ws_opened();
    let (close_tx, close_rx) = oneshot::channel();
    let task = tokio::spawn(live(world, device, conn, push, close_rx));
    Ok(Connection {
        close: Some(close_tx),
        task,
    })
}

async fn live(
    world: Arc<World>,
    device: Arc<Device>,
    conn: ConnId,
    mut push: Box<dyn PushChannel>,
    mut close: oneshot::Receiver<()>,
) {
    loop {
        tokio::select! {
            _ = &mut close => {
                if push.close().await {
                    world.ledger.closed_cleanly_after_acks(conn);
                }
                break;
            }
            incoming = push.next() => {
                // Processing is not part of the select: an envelope taken is acknowledged.
                let step = match incoming {
                    Ok(incoming) => process(&world, &device, conn, push.as_mut(), incoming).await,
                    Err(e) => Err(e),
                };
                let step = match step {
                    Ok(step) => step,
                    // The channel broke (or an ack could not be written): it is gone.
                    Err(e @ (PushError::WebSocket(_) | PushError::Api(_))) => {
                        tracing::debug!(error = %e, "push channel");
                        Step::Closed
                    }
                    Err(e) => { tracing::debug!(error = %e, "push frame"); Step::Continue }
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
    BacklogDone,
    Closed,
}

/// What the device does with an event of its channel: an envelope is accounted, opened and
/// acknowledged (unless a fault says the ack must fail, which breaks the connection).
async fn process(
    world: &World,
    device: &Device,
    conn: ConnId,
    push: &mut dyn PushChannel,
    incoming: Incoming,
) -> Result<Step, PushError> {
    match incoming {
        Incoming::BacklogDone => Ok(Step::BacklogDone),
        Incoming::Closed => Ok(Step::Closed),
        Incoming::Envelope(envelope) => {
            let (id, message_id) = (envelope.id, envelope.message_id);
            world.on_envelope(device, envelope, conn);
            if device.take_ack_fault() {
                return Ok(Step::Closed);
            }
            push.ack(id).await?;
            world.ledger.ack_written(message_id, device.addr, conn);
            Ok(Step::Continue)
        }
    }
}
