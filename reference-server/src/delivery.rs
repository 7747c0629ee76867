//! Real-time delivery. Each server instance holds one dedicated connection that LISTENs on the
//! `envelopes` channel (notified by whichever instance stored a send, right after its commit,
//! so it hears sends made through *any* instance) and wakes the local WebSocket sessions of the addressed device. A wake-up carries
//! no data: the session re-reads its unacknowledged queue, so bursts coalesce and a missed
//! notification (e.g. while reconnecting) costs nothing but a re-read. The same connection
//! hears device removals and evicts their tokens from the [`TokenCache`].

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::StreamExt;
use tokio::sync::{oneshot, watch, Notify};
use tokio::task::JoinHandle;
use tokio_postgres::AsyncMessage;

use crate::token_cache::TokenCache;
use crate::Error;

/// Channel the server notifies after storing a send (payload: the recipient device's row id).
pub const CHANNEL: &str = "envelopes";
/// Channel the trigger of migration 0002 notifies on when a device row is deleted (payload:
/// the row id); the listener evicts that device's token from the [`TokenCache`].
pub const REMOVED_CHANNEL: &str = "devices_removed";

/// The wake-up handles of one device's local sessions, by subscription key.
type Sessions = Vec<(u64, Arc<Notify>)>;

/// Local subscribers by device row id.
#[derive(Default)]
pub struct Hub {
    subscribers: Mutex<HashMap<i64, Sessions>>,
    next_key: AtomicU64,
}

/// A WebSocket session's registration; dropping it unregisters.
pub struct Subscription {
    hub: Arc<Hub>,
    device: i64,
    key: u64,
    pub wake: Arc<Notify>,
}

impl Drop for Subscription {
    fn drop(&mut self) {
        let mut subs = self
            .hub
            .subscribers
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        if let Some(list) = subs.get_mut(&self.device) {
            list.retain(|(k, _)| *k != self.key);
            if list.is_empty() {
                subs.remove(&self.device);
            }
        }
    }
}

impl Hub {
    pub fn subscribe(self: &Arc<Self>, device: i64) -> Subscription {
        self.try_subscribe(device, usize::MAX)
            .expect("no limit, always subscribed")
    }

    /// Subscribes unless `device` already has `max` local sessions (checked and registered
    /// under one lock, so concurrent upgrades cannot overshoot).
    pub fn try_subscribe(self: &Arc<Self>, device: i64, max: usize) -> Option<Subscription> {
        let mut subs = self.subscribers.lock().unwrap_or_else(|p| p.into_inner());
        let list = subs.entry(device).or_default();
        if list.len() >= max {
            return None;
        }
        let key = self.next_key.fetch_add(1, Ordering::Relaxed);
        let wake = Arc::new(Notify::new());
        list.push((key, wake.clone()));
        Some(Subscription {
            hub: self.clone(),
            device,
            key,
            wake,
        })
    }

    /// Wakes every local session of `device` (a stored permit if it is busy, so none is lost).
    pub fn wake(&self, device: i64) {
        let subs = self.subscribers.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(list) = subs.get(&device) {
            for (_, n) in list {
                n.notify_one();
            }
        }
    }

    fn wake_all(&self) {
        let subs = self.subscribers.lock().unwrap_or_else(|p| p.into_inner());
        for (_, n) in subs.values().flatten() {
            n.notify_one();
        }
    }

    pub fn sessions(&self) -> usize {
        self.subscribers
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .values()
            .map(Vec::len)
            .sum()
    }
}

/// Exponential backoff between attempts to reach the database: 250 ms doubling to 8 s.
#[derive(Debug)]
pub(crate) struct Backoff {
    next: Duration,
}

impl Backoff {
    const FIRST: Duration = Duration::from_millis(250);
    const MAX: Duration = Duration::from_secs(8);

    /// The wait before the next attempt; each call doubles the one after.
    pub(crate) fn next(&mut self) -> Duration {
        let now = self.next;
        self.next = (self.next * 2).min(Self::MAX);
        now
    }

    pub(crate) fn reset(&mut self) {
        self.next = Self::FIRST;
    }
}

impl Default for Backoff {
    fn default() -> Backoff {
        Backoff { next: Self::FIRST }
    }
}

/// `"<device row id>"` (what the server sends after a send commits) or
/// `"<device row id>:<envelope id>"` (the trigger of schema version 1) → device row id.
fn route(payload: &str) -> Option<i64> {
    payload.split(':').next()?.parse().ok()
}

/// Starts the LISTEN task and returns once the first LISTEN is active, so anything stored
/// after `start` returns is heard. Reconnects with backoff if the connection drops (database
/// restart, terminated backend) and then wakes every session, which re-reads its queue: what
/// was stored while nobody listened is delivered then.
pub async fn spawn_listener(
    database_url: String,
    hub: Arc<Hub>,
    tokens: Arc<TokenCache>,
    mut shutdown: watch::Receiver<bool>,
) -> Result<JoinHandle<()>, Error> {
    let (ready_tx, ready_rx) = oneshot::channel();
    let task = tokio::spawn(async move {
        let mut ready = Some(ready_tx);
        let mut backoff = Backoff::default();
        loop {
            let heard = Heard {
                hub: &hub,
                tokens: &tokens,
            };
            match listen_once(
                &database_url,
                heard,
                &mut shutdown,
                &mut ready,
                &mut backoff,
            )
            .await
            {
                Ok(()) => return, // shutdown
                Err(e) => {
                    if let Some(tx) = ready.take() {
                        let _ = tx.send(Err(e));
                        return;
                    }
                    let wait = backoff.next();
                    tracing::warn!(error = %e, ?wait, "delivery listener lost its connection; reconnecting");
                    tokio::select! {
                        _ = tokio::time::sleep(wait) => {}
                        _ = shutdown.changed() => return,
                    }
                }
            }
        }
    });
    match ready_rx.await {
        Ok(Ok(())) => Ok(task),
        Ok(Err(e)) => Err(e),
        Err(_) => Err(Error::Task(
            "delivery listener ended before it was ready".into(),
        )),
    }
}

/// Where notifications go: envelope wake-ups to the hub, device removals to the token cache.
#[derive(Clone, Copy)]
struct Heard<'a> {
    hub: &'a Hub,
    tokens: &'a TokenCache,
}

impl Heard<'_> {
    fn notification(self, n: &tokio_postgres::Notification) {
        let routed = match n.channel() {
            REMOVED_CHANNEL => n.payload().parse().ok().map(|row| self.tokens.evict(row)),
            _ => route(n.payload()).map(|device| self.hub.wake(device)),
        };
        if routed.is_none() {
            tracing::warn!(
                channel = n.channel(),
                payload = n.payload(),
                "unroutable notification"
            );
        }
    }
}

async fn listen_once(
    url: &str,
    heard: Heard<'_>,
    shutdown: &mut watch::Receiver<bool>,
    ready: &mut Option<oneshot::Sender<Result<(), Error>>>,
    backoff: &mut Backoff,
) -> Result<(), Error> {
    let (client, mut connection) = tokio_postgres::connect(url, tokio_postgres::NoTls)
        .await
        .map_err(|source| Error::Connect {
            target: disposable_pg::display_target(url),
            source,
        })?;
    let mut messages = futures::stream::poll_fn(move |cx| connection.poll_message(cx));
    // The connection must be polled for LISTEN to complete; drive both together.
    let sql = format!("LISTEN {CHANNEL}; LISTEN {REMOVED_CHANNEL}");
    let listen = client.batch_execute(&sql);
    tokio::pin!(listen);
    loop {
        tokio::select! {
            r = &mut listen => {
                r.map_err(|source| Error::Sql { what: "LISTEN".into(), source })?;
                break;
            }
            m = messages.next() => match m {
                Some(Ok(AsyncMessage::Notification(n))) => heard.notification(&n),
                Some(Ok(_)) => {}
                Some(Err(source)) => return Err(Error::Sql { what: "LISTEN connection".into(), source }),
                None => return Err(Error::Task("LISTEN connection closed".into())),
            }
        }
    }
    backoff.reset();
    match ready.take() {
        Some(tx) => {
            let _ = tx.send(Ok(()));
        }
        // A reconnect: anything stored or removed while we were away was not heard.
        None => {
            tracing::info!("delivery listener reconnected; sessions re-read their queues");
            heard.tokens.clear();
            heard.hub.wake_all();
        }
    }
    loop {
        tokio::select! {
            m = messages.next() => match m {
                Some(Ok(AsyncMessage::Notification(n))) => heard.notification(&n),
                Some(Ok(_)) => {}
                Some(Err(source)) => return Err(Error::Sql { what: "LISTEN connection".into(), source }),
                None => return Err(Error::Task("LISTEN connection closed".into())),
            },
            _ = shutdown.changed() => return Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn route_reads_the_device_part() {
        assert_eq!(route("17:12345"), Some(17));
        assert_eq!(route("17"), Some(17));
        assert_eq!(route("garbage"), None);
        assert_eq!(route("x:1"), None);
    }

    #[tokio::test]
    async fn wake_reaches_only_the_addressed_device_and_unsubscribes_on_drop() {
        let hub = Arc::new(Hub::default());
        let a = hub.subscribe(1);
        let b = hub.subscribe(2);
        hub.wake(1);
        tokio::time::timeout(Duration::from_secs(1), a.wake.notified())
            .await
            .expect("device 1 woken");
        assert!(
            tokio::time::timeout(Duration::from_millis(50), b.wake.notified())
                .await
                .is_err()
        );
        drop(a);
        assert_eq!(hub.sessions(), 1);
    }
}
