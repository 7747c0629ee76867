//! The virtual world of a run: every virtual user and device, the shared API client, and the
//! shared measurement (recorder, ledger, counters). Flows pick their participants here.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, OnceLock, RwLock};
use std::time::{Duration, Instant};

use futures::StreamExt;
use rand::Rng;
use uuid::Uuid;

use crate::client::api::{ApiError, Envelope, PushError, Registered, ServerApi};
use crate::client::device::Device;
use crate::client::keys::KeyFactory;
use crate::client::receive;
use crate::client::retry::{self, Backoff};
use crate::client::wire;
use crate::load::shard::Shard;
use crate::metrics::integrity::ConnId;
use crate::metrics::{Arrival, DeviceAddr, GeneratorCounters, Ledger, Op, Recorder};

/// Reconnections in flight at once during the drain.
const RECONNECT_PARALLELISM: usize = 64;
/// How long a device whose socket dropped keeps trying to reconnect.
pub(crate) const RECONNECT_BUDGET: Duration = Duration::from_secs(30);

/// What flows need to know from the scenario.
#[derive(Debug, Clone)]
pub struct FlowConfig {
    pub converse_messages: u32,
    pub fanout_group_size: u32,
    pub offline_messages: u32,
    pub offline_away: Duration,
    pub message_size: usize,
    pub one_time_prekeys: u32,
    pub replenish_threshold: u32,
    pub devices_per_user: u32,
    /// How long a flow waits for its peer to decrypt before it gives up (the message is
    /// still accounted for by the ledger).
    pub reply_timeout: Duration,
}

/// A virtual user and its devices (fixed once registered).
pub struct User {
    pub(crate) id: Uuid,
    pub devices: Vec<Arc<Device>>,
}

#[derive(Default)]
struct Roster {
    list: Vec<Arc<User>>,
    by_id: HashMap<Uuid, Arc<User>>,
}

/// A setup step that failed.
#[derive(Debug, thiserror::Error)]
pub enum SetupError {
    #[error("registering a device: {0}")]
    Api(#[from] ApiError),
    #[error("connecting a device: {0}")]
    Push(#[from] PushError),
}

pub struct World {
    pub(crate) api: Arc<dyn ServerApi>,
    pub recorder: Arc<Recorder>,
    pub ledger: Arc<Ledger>,
    pub counters: Arc<GeneratorCounters>,
    pub(crate) keys: KeyFactory,
    pub(crate) cfg: FlowConfig,
    roster: RwLock<Roster>,
    seed: u64,
    device_seq: AtomicU64,
    stopping: AtomicBool,
    ws_dropped: AtomicU64,
    next_conn: AtomicU64,
    /// This worker's shard of a sharded test: stamps its message ids.
    shard: OnceLock<Shard>,
}

impl World {
    pub fn new(
        api: Arc<dyn ServerApi>,
        recorder: Arc<Recorder>,
        ledger: Arc<Ledger>,
        counters: Arc<GeneratorCounters>,
        keys: KeyFactory,
        cfg: FlowConfig,
        seed: u64,
    ) -> Arc<World> {
        Arc::new(World {
            api,
            recorder,
            ledger,
            counters,
            keys,
            cfg,
            roster: RwLock::new(Roster::default()),
            seed,
            device_seq: AtomicU64::new(0),
            stopping: AtomicBool::new(false),
            ws_dropped: AtomicU64::new(0),
            next_conn: AtomicU64::new(1),
            shard: OnceLock::new(),
        })
    }

    /// Makes this world one shard of a sharded test (before any flow runs).
    pub(crate) fn set_shard(&self, shard: Option<Shard>) {
        if let Some(s) = shard {
            let _ = self.shard.set(s);
        }
    }

    pub(crate) fn shard(&self) -> Option<Shard> {
        self.shard.get().copied()
    }

    /// A message id from `random` bytes: stamped with the shard in a sharded run, so the
    /// workers of one test never send the same id.
    pub(crate) fn message_id(&self, random: [u8; 16]) -> Uuid {
        let id = uuid::Builder::from_random_bytes(random).into_uuid();
        self.shard().map_or(id, |s| s.stamp(id))
    }

    /// From now on a closing WebSocket is expected, not a failure.
    pub(crate) fn set_stopping(&self) {
        self.stopping.store(true, Ordering::Relaxed);
    }

    pub(crate) fn is_stopping(&self) -> bool {
        self.stopping.load(Ordering::Relaxed)
    }

    /// A live WebSocket ended without being asked to: counted, and the device reconnects
    /// at once, with backoff ([`World::reconnect_after_drop`]).
    pub(crate) fn ws_dropped(self: &Arc<Self>, device: &Arc<Device>) {
        self.ws_dropped.fetch_add(1, Ordering::Relaxed);
        tokio::spawn(self.clone().reconnect_after_drop(device.clone()));
    }

    /// Reconnects a device whose socket dropped, as a real client does: at once, then with
    /// backoff, within [`RECONNECT_BUDGET`]; the backlog is drained on connect. Gives way to
    /// whoever else connected the device meanwhile (a flow, the drain) and to the offline
    /// flow. A success is a `ws_connect` sample timed from the drop; running out of budget
    /// is a `ws_connect` error.
    pub(crate) async fn reconnect_after_drop(self: Arc<Self>, device: Arc<Device>) {
        let dropped = Instant::now();
        let mut backoff = Backoff::new(RECONNECT_BUDGET);
        loop {
            if self.is_stopping() || device.offline.load(Ordering::Acquire) {
                return;
            }
            self.counters
                .ws_reconnect_attempts
                .fetch_add(1, Ordering::Relaxed);
            match receive::connect(self.clone(), device.clone()).await {
                Ok(conn) => {
                    self.adopt_reconnected(&device, conn).await;
                    self.recorder.record(Op::WsConnect, dropped, Instant::now());
                    return;
                }
                Err(e) => {
                    tracing::debug!(device = ?device.addr, error = %e, "reconnect failed");
                    if !backoff.wait().await {
                        retry::count_exhausted(&self, Op::WsConnect);
                        self.recorder.record_error(Op::WsConnect, dropped);
                        return;
                    }
                    retry::count_retry(&self, Op::WsConnect);
                }
            }
        }
    }

    /// Keeps a reconnected socket unless the device got another one, went offline, or the
    /// run is ending meanwhile (then the new one is closed).
    async fn adopt_reconnected(self: &Arc<Self>, device: &Device, conn: receive::Connection) {
        let mut slot = device.connection.lock().await;
        let taken = slot.as_ref().is_some_and(|c| !c.is_finished());
        if taken || device.offline.load(Ordering::Acquire) || self.is_stopping() {
            drop(slot);
            conn.close(self).await;
            return;
        }
        let old = slot.replace(conn);
        drop(slot);
        self.counters.ws_reconnects.fetch_add(1, Ordering::Relaxed);
        if let Some(old) = old {
            old.close(self).await;
        }
    }

    /// [`World::connect`], retried with backoff within the retry budget (a flow's connect).
    pub(crate) async fn connect_with_retry(
        self: &Arc<Self>,
        device: &Arc<Device>,
    ) -> Result<(), PushError> {
        let mut backoff = Backoff::new(retry::BUDGET);
        loop {
            match self.connect(device).await {
                Ok(()) => return Ok(()),
                Err(e) => {
                    if !backoff.wait().await {
                        retry::count_exhausted(self, Op::WsConnect);
                        return Err(e);
                    }
                    retry::count_retry(self, Op::WsConnect);
                }
            }
        }
    }

    /// A fresh id for a delivery connection.
    pub(crate) fn next_connection_id(&self) -> ConnId {
        self.next_conn.fetch_add(1, Ordering::Relaxed)
    }

    /// What a device does with an envelope that came on connection `conn`: account, open,
    /// check, and time its delivery — live or from a backlog on reconnect, since a message
    /// that waited in a queue was delivered that late.
    pub(crate) fn on_envelope(&self, device: &Device, env: Envelope, conn: ConnId) {
        let sender = DeviceAddr {
            user: env.sender_user,
            device: env.sender_device,
        };
        let arrival = self
            .ledger
            .arrived(env.message_id, device.addr, env.id, conn);
        if let Arrival::Fresh { intended } = arrival {
            let ok = match device.open(sender, env.kind, &env.header, &env.ciphertext) {
                Ok(plain) => wire::is_expected(env.message_id, self.cfg.message_size, &plain),
                Err(e) => {
                    tracing::warn!(error = %e, message = %env.message_id, sender = ?sender, recipient = ?device.addr, kind = ?env.kind, "undecryptable envelope");
                    false
                }
            };
            if ok {
                self.recorder.record(Op::Delivery, intended, Instant::now());
            }
            self.ledger.decrypted(env.message_id, device.addr, ok);
        }
    }

    fn next_device_seed(&self) -> u64 {
        self.seed
            ^ (self.device_seq.fetch_add(1, Ordering::Relaxed) + 1)
                .wrapping_mul(0x9E37_79B9_7F4A_7C15)
    }

    /// A device object for a registration the server accepted.
    pub(crate) fn device_from(
        &self,
        reg: Registered,
        keys: crate::client::keys::DeviceKeys,
    ) -> Arc<Device> {
        self.counters.devices.fetch_add(1, Ordering::Relaxed);
        Arc::new(Device::new(
            DeviceAddr {
                user: reg.user_id,
                device: reg.device_id,
            },
            reg.credential,
            keys,
            self.next_device_seed(),
        ))
    }

    /// Connects a device's WebSocket and keeps the connection on the device.
    pub async fn connect(self: &Arc<Self>, device: &Arc<Device>) -> Result<(), PushError> {
        let conn = receive::connect(self.clone(), device.clone()).await?;
        let old = device.connection.lock().await.replace(conn);
        if let Some(old) = old {
            old.close(self).await;
        }
        Ok(())
    }

    /// Registers a user with `devices` devices, all connected (setup: not timed).
    pub async fn register_user(self: &Arc<Self>, devices: u32) -> Result<Arc<User>, SetupError> {
        let mut keys = self.keys.take();
        let reg = self.api.register_user(&mut keys).await?;
        let user_id = reg.user_id;
        let first = self.device_from(reg, keys);
        let mut list = vec![first.clone()];
        for _ in 1..devices {
            let mut keys = self.keys.take();
            let reg = self.api.add_device(&first.credential, &mut keys).await?;
            list.push(self.device_from(reg, keys));
        }
        for d in &list {
            self.connect(d).await?;
        }
        let user = Arc::new(User {
            id: user_id,
            devices: list,
        });
        self.add_user(user.clone());
        Ok(user)
    }

    pub(crate) fn add_user(&self, user: Arc<User>) {
        let mut r = self.roster.write().unwrap_or_else(|p| p.into_inner());
        r.by_id.insert(user.id, user.clone());
        r.list.push(user);
    }

    /// Registers the starting population, `parallel` users at a time.
    pub(crate) async fn populate(
        self: &Arc<Self>,
        users: u32,
        devices_per_user: u32,
        parallel: usize,
    ) -> Result<(), SetupError> {
        let mut stream = futures::stream::iter(0..users)
            .map(|_| {
                let w = self.clone();
                async move { w.register_user(devices_per_user).await }
            })
            .buffer_unordered(parallel);
        while let Some(r) = stream.next().await {
            r?;
        }
        Ok(())
    }

    pub(crate) fn user(&self, id: Uuid) -> Option<Arc<User>> {
        self.roster
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .by_id
            .get(&id)
            .cloned()
    }

    pub(crate) fn device(&self, addr: DeviceAddr) -> Option<Arc<Device>> {
        self.user(addr.user)?
            .devices
            .iter()
            .find(|d| d.addr.device == addr.device)
            .cloned()
    }

    /// A random user other than `not`.
    pub(crate) fn pick_user(&self, rng: &mut impl Rng, not: Option<Uuid>) -> Arc<User> {
        let r = self.roster.read().unwrap_or_else(|p| p.into_inner());
        loop {
            let u = &r.list[rng.gen_range(0..r.list.len())];
            if Some(u.id) != not || r.list.len() == 1 {
                return u.clone();
            }
        }
    }

    /// A random device of a random user.
    pub(crate) fn pick_device(&self, rng: &mut impl Rng) -> Arc<Device> {
        let u = self.pick_user(rng, None);
        u.devices[rng.gen_range(0..u.devices.len())].clone()
    }

    /// `n` distinct users other than `not` (fewer if there are not enough).
    pub(crate) fn pick_users(&self, rng: &mut impl Rng, n: usize, not: Uuid) -> Vec<Arc<User>> {
        let r = self.roster.read().unwrap_or_else(|p| p.into_inner());
        let candidates: Vec<&Arc<User>> = r.list.iter().filter(|u| u.id != not).collect();
        rand::seq::index::sample(rng, candidates.len(), n.min(candidates.len()))
            .into_iter()
            .map(|i| candidates[i].clone())
            .collect()
    }

    pub(crate) fn all_devices(&self) -> Vec<Arc<Device>> {
        let r = self.roster.read().unwrap_or_else(|p| p.into_inner());
        r.list
            .iter()
            .flat_map(|u| u.devices.iter().cloned())
            .collect()
    }

    /// Reconnects every device whose socket is gone (dropped, or left offline by a cancelled
    /// flow), so queued envelopes can still be delivered during the drain: in parallel, and
    /// giving up at `deadline`. Devices left unconnected are counted.
    pub(crate) async fn reconnect_all(self: &Arc<Self>, deadline: Instant) {
        let mut dead = Vec::new();
        for d in self.all_devices() {
            let gone = match d.connection.try_lock() {
                Ok(c) => c.as_ref().is_none_or(|c| c.is_finished()),
                // Someone (a flow being cancelled) holds it: look again below.
                Err(_) => true,
            };
            if gone {
                dead.push(d);
            }
        }
        let attempts = futures::stream::iter(dead)
            .map(|d| {
                let w = self.clone();
                async move {
                    match tokio::time::timeout_at(deadline.into(), w.connect(&d)).await {
                        Ok(Ok(())) => {}
                        Ok(Err(e)) => w.reconnect_failed(&d, &e.to_string()),
                        Err(_) => w.reconnect_failed(&d, "the drain ended first"),
                    }
                }
            })
            .buffer_unordered(RECONNECT_PARALLELISM);
        attempts.collect::<Vec<()>>().await;
    }

    fn reconnect_failed(&self, d: &Device, why: &str) {
        tracing::warn!(device = ?d.addr, error = why, "could not reconnect for the drain");
        self.counters
            .drain_reconnect_failures
            .fetch_add(1, Ordering::Relaxed);
    }

    /// Closes every WebSocket (end of run), all at once; each close waits at most
    /// [`ws::CLOSE_TIMEOUT`] for the server's reply.
    pub async fn disconnect_all(&self) {
        self.set_stopping();
        let conns: Vec<receive::Connection> = {
            let mut out = Vec::new();
            for d in self.all_devices() {
                if let Some(c) = d.connection.lock().await.take() {
                    out.push(c);
                }
            }
            out
        };
        futures::future::join_all(conns.into_iter().map(|c| c.close(self))).await;
    }
}
