//! The flows a scenario mixes, each a real protocol exchange between virtual devices.
//!
//! Timing: a flow is timed as a whole from its *intended* start, and its first operation is
//! too, so a flow that starts late carries its lateness into the figures instead of hiding it
//! (no coordinated omission). Later operations of a flow are timed from their own start.
//! Every failure is recorded against the operation that failed; the run goes on.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Instant;

use futures::future::BoxFuture;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha20Rng;
use uuid::Uuid;

use crate::client::api::{
    ApiError, Bundle, Capability, OutgoingMessage, PushError, SendOutcome, SendRequest,
};
use crate::client::device::{to_prekey_bundle, Device};
use crate::client::population::{User, World};
use crate::client::retry;
use crate::client::wire;
use crate::crypto::CryptoError;
use crate::metrics::{DeviceAddr, Op};
use crate::scenario::FlowKind;

/// Why a flow stopped early.
#[derive(Debug, thiserror::Error)]
pub enum FlowError {
    #[error("{op}: {source}")]
    Api { op: &'static str, source: ApiError },
    #[error("crypto: {0}")]
    Crypto(#[from] CryptoError),
    #[error("push channel: {0}")]
    Push(#[from] PushError),
    #[error("{0}")]
    Protocol(String),
}

/// One flow's context: its world, its own seeded randomness, and its intended start (taken
/// by the first timed operation).
///
/// Dropped before the flow finished (the executor cancelled it at the end of the run), it
/// records the cancellation as a failure of the flow and of the operation in progress, so
/// nothing a cancelled flow was doing disappears from the figures.
pub struct FlowCtx {
    pub(crate) world: Arc<World>,
    pub(crate) rng: ChaCha20Rng,
    intended: Option<Instant>,
    /// Every timed step of this flow, for executors that report steps themselves (goose).
    pub(crate) steps: Vec<Step>,
    kind: FlowKind,
    flow_intended: Instant,
    finished: bool,
    /// Operations started and not yet recorded (innermost last).
    pending: Vec<(Op, Instant)>,
}

impl Drop for FlowCtx {
    fn drop(&mut self) {
        if self.finished {
            return;
        }
        for (op, start) in std::mem::take(&mut self.pending) {
            self.world.recorder.record_error(op, start);
        }
        self.world
            .recorder
            .record_error(Op::Flow(self.kind), self.flow_intended);
        self.world.counters.flow_cancelled(self.kind);
    }
}

/// One timed step of a flow.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Step {
    pub(crate) op: Op,
    pub(crate) elapsed: std::time::Duration,
    pub(crate) ok: bool,
}

impl FlowCtx {
    pub fn new(world: Arc<World>, kind: FlowKind, seed: u64, intended: Instant) -> FlowCtx {
        FlowCtx {
            world,
            rng: ChaCha20Rng::seed_from_u64(seed),
            intended: Some(intended),
            steps: Vec::new(),
            kind,
            flow_intended: intended,
            finished: false,
            pending: Vec::new(),
        }
    }

    /// Marks `op`, started at `start`, as in progress until [`FlowCtx::ok`] or
    /// [`FlowCtx::failed`] records it.
    fn track(&mut self, op: Op, start: Instant) -> Instant {
        self.pending.push((op, start));
        start
    }

    fn untrack(&mut self, op: Op, start: Instant) {
        if let Some(i) = self.pending.iter().rposition(|p| *p == (op, start)) {
            self.pending.remove(i);
        }
    }

    /// Records a success of `op` that started at `start` (recorder and step list).
    fn ok(&mut self, op: Op, start: Instant) {
        self.untrack(op, start);
        let end = Instant::now();
        self.world.recorder.record(op, start, end);
        self.steps.push(Step {
            op,
            elapsed: end.saturating_duration_since(start),
            ok: true,
        });
    }

    /// Records a failure of `op` that started at `start`.
    fn failed(&mut self, op: Op, start: Instant) {
        self.untrack(op, start);
        self.world.recorder.record_error(op, start);
        self.steps.push(Step {
            op,
            elapsed: start.elapsed(),
            ok: false,
        });
    }

    /// Start of the next timed operation `op`: the flow's intended start for the first one.
    fn begin(&mut self, op: Op) -> Instant {
        let start = self.intended.take().unwrap_or_else(Instant::now);
        self.track(op, start)
    }

    fn uuid(&mut self) -> Uuid {
        self.world.message_id(self.rng.gen())
    }

    /// Times an API call as `op`, from its first attempt: transient failures are retried
    /// within the retry budget ([`retry::with_retry`]), as a real client does.
    async fn timed<T, Fut>(&mut self, op: Op, call: impl FnMut() -> Fut) -> Result<T, FlowError>
    where
        Fut: std::future::Future<Output = Result<T, ApiError>>,
    {
        let start = self.begin(op);
        let world = self.world.clone();
        match retry::with_retry(&world, op, call).await {
            Ok(v) => {
                self.ok(op, start);
                Ok(v)
            }
            Err(source) => {
                self.failed(op, start);
                Err(FlowError::Api {
                    op: op.name(),
                    source,
                })
            }
        }
    }
}

/// What a flow did: its timed steps (its result is recorded as it ends).
pub(crate) struct FlowOutcome {
    pub(crate) steps: Vec<Step>,
}

/// The result of a flow's steps.
type FlowResult = Result<(), FlowError>;
/// A flow's steps, run on its context.
type RunFn = for<'a> fn(&'a mut FlowCtx) -> BoxFuture<'a, FlowResult>;

/// Everything about one kind of flow, in one place: the scenario's `[mix]` key and the
/// report's `flow_<name>` operation derive from `name`; the capability check from `needs`,
/// budget checks from `records`, and `e2ee-harness scenarios`' list of flows from `name`,
/// `summary` and `params`. Adding a flow is a [`FlowKind`] variant, a row
/// here and its function.
pub(crate) struct Flow {
    pub(crate) kind: FlowKind,
    /// Its `[mix]` weight key.
    pub(crate) name: &'static str,
    /// The operation timing the whole flow (`flow_<name>`).
    pub(crate) op_name: &'static str,
    /// What it does, in a line (`e2ee-harness scenarios` prints it).
    pub(crate) summary: &'static str,
    /// The scenario settings it reads besides its weight, as `section.key` (or `key` at the
    /// top level); each must be a key of the scenario file (a unit test checks it).
    pub(crate) params: &'static [&'static str],
    /// The operations it records (besides its own).
    pub(crate) records: &'static [Op],
    /// What it needs of the server beyond the core every dialect has.
    pub(crate) needs: &'static [Capability],
    run: RunFn,
}

/// Boxes an `async fn(&mut FlowCtx) -> FlowResult` into a [`RunFn`].
macro_rules! run_fn {
    ($f:ident) => {{
        fn run(ctx: &mut FlowCtx) -> BoxFuture<'_, FlowResult> {
            Box::pin($f(ctx))
        }
        run
    }};
}

/// Every flow, indexed by `FlowKind as usize`.
pub(crate) static FLOWS: [Flow; FlowKind::COUNT] = [
    Flow {
        kind: FlowKind::Register,
        name: "register",
        op_name: "flow_register",
        summary: "a new user's device registers its keys and connects",
        params: &["population.one_time_prekeys"],
        records: &[Op::KeyInsert, Op::WsConnect],
        needs: &[],
        run: run_fn!(register),
    },
    Flow {
        kind: FlowKind::Replenish,
        name: "replenish",
        op_name: "flow_replenish",
        summary: "a device counts its one-time prekeys and uploads a batch when low",
        params: &[
            "population.one_time_prekeys",
            "population.replenish_threshold",
        ],
        records: &[Op::KeyCount, Op::KeyInsert],
        needs: &[Capability::PrekeyCount, Capability::PrekeyUpload],
        run: run_fn!(replenish),
    },
    Flow {
        kind: FlowKind::Rotate,
        name: "rotate",
        op_name: "flow_rotate",
        summary: "a device rotates its signed prekey",
        params: &[],
        records: &[Op::KeyInsert],
        needs: &[Capability::SignedPrekeyRotation],
        run: run_fn!(rotate),
    },
    Flow {
        kind: FlowKind::Initiate,
        name: "initiate",
        op_name: "flow_initiate",
        summary: "fetch a user's bundles, verify, X3DH, send the prekey message",
        params: &["message_size"],
        records: &[Op::BundleFetch, Op::MessageInsert, Op::Delivery],
        needs: &[],
        run: run_fn!(initiate),
    },
    Flow {
        kind: FlowKind::Converse,
        name: "converse",
        op_name: "flow_converse",
        summary: "K ratcheted messages each way, each decrypted before the answer",
        params: &["converse.messages", "message_size"],
        records: &[Op::BundleFetch, Op::MessageInsert, Op::Delivery],
        needs: &[],
        run: run_fn!(converse),
    },
    Flow {
        kind: FlowKind::Fanout,
        name: "fanout",
        op_name: "flow_fanout",
        summary: "one message to a multi-device user, then one to each of a group of M users",
        params: &["fanout.group_size", "message_size"],
        records: &[Op::BundleFetch, Op::MessageInsert, Op::Delivery],
        needs: &[],
        run: run_fn!(fanout),
    },
    Flow {
        kind: FlowKind::Offline,
        name: "offline",
        op_name: "flow_offline",
        summary: "a device goes offline, messages queue, it reconnects and drains them",
        params: &["offline.messages", "offline.away", "message_size"],
        records: &[
            Op::BundleFetch,
            Op::MessageInsert,
            Op::WsConnect,
            Op::OfflineDrain,
            Op::Delivery,
        ],
        needs: &[],
        run: run_fn!(offline),
    },
    Flow {
        kind: FlowKind::Fetch,
        name: "fetch",
        op_name: "flow_fetch",
        summary: "fetch a user's bundles, nothing else (the prekey-bundle read alone)",
        params: &[],
        records: &[Op::BundleFetch],
        needs: &[],
        run: run_fn!(fetch),
    },
];

impl Flow {
    /// The flow of `kind`.
    pub(crate) fn of(kind: FlowKind) -> &'static Flow {
        let flow = &FLOWS[kind as usize];
        debug_assert_eq!(flow.kind, kind, "FLOWS is in FlowKind order");
        flow
    }

    /// The flows that record `op` (a flow's own `flow_<name>` operation included).
    pub(crate) fn recording(op: Op) -> Vec<&'static Flow> {
        FLOWS
            .iter()
            .filter(|f| op == Op::Flow(f.kind) || f.records.contains(&op))
            .collect()
    }
}

/// The flows a scenario's `[mix]` can weigh, one aligned line each: its key, what it does,
/// and the settings it reads besides its weight (`e2ee-harness scenarios` prints it).
pub(crate) fn mix_listing() -> String {
    let name_w = FLOWS.iter().map(|f| f.name.len()).max().unwrap_or(0);
    let summary_w = FLOWS
        .iter()
        .map(|f| f.summary.chars().count())
        .max()
        .unwrap_or(0);
    let mut out = String::from("flows ([mix] keys):\n");
    for f in &FLOWS {
        let reads = if f.params.is_empty() {
            "-".to_string()
        } else {
            f.params.join(", ")
        };
        out.push_str(&format!(
            "  {:name_w$}  {:summary_w$}  reads: {reads}\n",
            f.name, f.summary
        ));
    }
    out
}

/// Runs one flow of `kind` intended to start at `intended`, recording it as `flow_<kind>`.
pub(crate) async fn run(
    world: Arc<World>,
    kind: FlowKind,
    intended: Instant,
    seed: u64,
) -> FlowOutcome {
    let mut ctx = FlowCtx::new(world.clone(), kind, seed, intended);
    let result = (Flow::of(kind).run)(&mut ctx).await;
    match &result {
        Ok(()) => ctx.ok(Op::Flow(kind), intended),
        Err(e) => {
            tracing::debug!(flow = kind.name(), error = %e, "flow failed");
            world.counters.flows_failed.fetch_add(1, Ordering::Relaxed);
            // What a failed step left in progress failed with it.
            for (op, start) in std::mem::take(&mut ctx.pending) {
                ctx.failed(op, start);
            }
            ctx.failed(Op::Flow(kind), intended);
        }
    }
    ctx.finished = true;
    FlowOutcome {
        steps: std::mem::take(&mut ctx.steps),
    }
}

/// A new user's device registers (identity, signed prekey, one-time prekeys) and connects.
async fn register(ctx: &mut FlowCtx) -> Result<(), FlowError> {
    let world = ctx.world.clone();
    // Behind a lock only so that each retry can lend the keys out again (the dialect may
    // give them ids: `ServerApi::register_user`).
    let keys = tokio::sync::Mutex::new(world.keys.take());
    let reg = ctx
        .timed(Op::KeyInsert, || async {
            world.api.register_user(&mut *keys.lock().await).await
        })
        .await?;
    let device = world.device_from(reg, keys.into_inner());
    connect_timed(ctx, &device).await?;
    world.add_user(Arc::new(User {
        id: device.addr.user,
        devices: vec![device],
    }));
    Ok(())
}

async fn connect_timed(ctx: &mut FlowCtx, device: &Arc<Device>) -> Result<(), FlowError> {
    let start = ctx.begin(Op::WsConnect);
    match ctx.world.connect_with_retry(device).await {
        Ok(()) => {
            ctx.ok(Op::WsConnect, start);
            Ok(())
        }
        Err(e) => {
            ctx.failed(Op::WsConnect, start);
            Err(e.into())
        }
    }
}

/// A device checks its one-time prekey count and tops it up when below the threshold.
async fn replenish(ctx: &mut FlowCtx) -> Result<(), FlowError> {
    let world = ctx.world.clone();
    let device = world.pick_device(&mut ctx.rng);
    let _turn = device.key_upload.lock().await;
    let count = ctx
        .timed(Op::KeyCount, || world.api.prekey_count(&device.credential))
        .await?;
    if count < world.cfg.replenish_threshold as u64 {
        let n = (world.cfg.one_time_prekeys as u64 - count) as usize;
        let bodies = device.add_one_time(world.keys.take_one_time(n));
        let up = ctx
            .timed(Op::KeyInsert, || {
                world.api.upload_one_time(&device.credential, &bodies)
            })
            .await?;
        if up.stored != bodies.len() as u64 {
            return Err(FlowError::Protocol(format!(
                "uploaded {} one-time prekeys, server stored {}",
                bodies.len(),
                up.stored
            )));
        }
    }
    Ok(())
}

/// A device rotates its signed prekey.
async fn rotate(ctx: &mut FlowCtx) -> Result<(), FlowError> {
    let world = ctx.world.clone();
    let device = world.pick_device(&mut ctx.rng);
    let _turn = device.key_upload.lock().await;
    let body = device.rotate_signed();
    ctx.timed(Op::KeyInsert, || {
        world.api.rotate_signed(&device.credential, &body)
    })
    .await
}

/// Fetch a user's bundles, verify, X3DH with each device, send the prekey message.
async fn initiate(ctx: &mut FlowCtx) -> Result<(), FlowError> {
    let world = ctx.world.clone();
    let sender = world.pick_device(&mut ctx.rng);
    let to = world.pick_user(&mut ctx.rng, Some(sender.addr.user));
    fetch_and_establish(ctx, &sender, to.id, None).await?;
    send_message(ctx, &sender, &to).await?;
    Ok(())
}

/// One bundle fetch of another user, claims recorded and nothing else: no signature check,
/// no session. It measures the read path alone, and the generator's own cost per request
/// against a plain HTTP load tool on the same route (docs/performance.md).
async fn fetch(ctx: &mut FlowCtx) -> Result<(), FlowError> {
    let world = ctx.world.clone();
    let sender = world.pick_device(&mut ctx.rng);
    let to = world.pick_user(&mut ctx.rng, Some(sender.addr.user));
    let bundles = ctx
        .timed(Op::BundleFetch, || {
            world.api.bundles(&sender.credential, to.id)
        })
        .await?;
    record_claims(&world, to.id, &bundles);
    Ok(())
}

/// Tells the ledger which one-time prekeys of `user`'s devices the server handed out (each
/// one handed out twice is an integrity failure), whatever the fetcher does with them.
fn record_claims(world: &World, user: Uuid, bundles: &[Bundle]) {
    for b in bundles {
        if let Some(k) = &b.one_time_prekey {
            let peer = DeviceAddr {
                user,
                device: b.device_id,
            };
            world.ledger.claim_prekey(peer, k.key_id);
        }
    }
}

/// K messages each way between a device and a user, each decrypted before the answer.
async fn converse(ctx: &mut FlowCtx) -> Result<(), FlowError> {
    let world = ctx.world.clone();
    let a = world.pick_device(&mut ctx.rng);
    let b_user = world.pick_user(&mut ctx.rng, Some(a.addr.user));
    let a_user = world
        .user(a.addr.user)
        .ok_or_else(|| FlowError::Protocol("sender's user vanished".into()))?;
    for _ in 0..world.cfg.converse_messages {
        let (id, targets) = send_message(ctx, &a, &b_user).await?;
        // The answer comes from a recipient device that is online (an offline flow may have
        // one of them disconnected).
        let online: Vec<&DeviceAddr> = targets
            .iter()
            .filter(|t| {
                world
                    .device(**t)
                    .is_some_and(|d| !d.offline.load(Ordering::Relaxed))
            })
            .collect();
        let Some(&b_addr) = online.first().copied() else {
            return Ok(());
        };
        wait_decrypted(ctx, id, b_addr).await?;
        let b = world
            .device(b_addr)
            .ok_or_else(|| FlowError::Protocol("recipient vanished".into()))?;
        let (id, _) = send_message(ctx, &b, &a_user).await?;
        if !a.offline.load(Ordering::Relaxed) {
            wait_decrypted(ctx, id, a.addr).await?;
        }
    }
    Ok(())
}

/// One message to a user with several devices, then one to each of a group of M users.
async fn fanout(ctx: &mut FlowCtx) -> Result<(), FlowError> {
    let world = ctx.world.clone();
    let sender = world.pick_device(&mut ctx.rng);
    let multi = world.pick_user(&mut ctx.rng, Some(sender.addr.user));
    send_message(ctx, &sender, &multi).await?;
    let group = world.pick_users(
        &mut ctx.rng,
        world.cfg.fanout_group_size as usize,
        sender.addr.user,
    );
    for member in group {
        send_message(ctx, &sender, &member).await?;
    }
    Ok(())
}

/// A device goes offline, messages queue for it, it reconnects and drains them.
async fn offline(ctx: &mut FlowCtx) -> Result<(), FlowError> {
    let world = ctx.world.clone();
    let mut device = None;
    for _ in 0..16 {
        let d = world.pick_device(&mut ctx.rng);
        if d.offline
            .compare_exchange(false, true, Ordering::AcqRel, Ordering::Relaxed)
            .is_ok()
        {
            device = Some(d);
            break;
        }
    }
    let Some(device) = device else {
        return Err(FlowError::Protocol("no device free to go offline".into()));
    };
    let result = offline_with(ctx, &device).await;
    device.offline.store(false, Ordering::Release);
    result
}

async fn offline_with(ctx: &mut FlowCtx, device: &Arc<Device>) -> Result<(), FlowError> {
    let world = ctx.world.clone();
    let conn = device.connection.lock().await.take();
    if let Some(conn) = conn {
        conn.close(&world).await;
    }
    let user = world
        .user(device.addr.user)
        .ok_or_else(|| FlowError::Protocol("user vanished".into()))?;
    let mut queued = Vec::new();
    let outcome = async {
        for _ in 0..world.cfg.offline_messages {
            let sender = world.pick_user(&mut ctx.rng, Some(user.id));
            let sender = sender.devices[ctx.rng.gen_range(0..sender.devices.len())].clone();
            let (id, _) = send_message(ctx, &sender, &user).await?;
            queued.push(id);
        }
        Ok::<(), FlowError>(())
    }
    .await;
    tokio::time::sleep(world.cfg.offline_away).await;
    // Reconnect even if sending failed, so the device is never left offline.
    let start = ctx.track(Op::OfflineDrain, Instant::now());
    connect_timed(ctx, device).await?;
    outcome?;
    for id in queued {
        wait_decrypted(ctx, id, device.addr).await?;
    }
    ctx.ok(Op::OfflineDrain, start);
    Ok(())
}

/// Waits until `recipient` has processed `message_id`; fails if it could not decrypt it.
async fn wait_decrypted(
    ctx: &FlowCtx,
    message_id: Uuid,
    recipient: DeviceAddr,
) -> Result<(), FlowError> {
    let world = &ctx.world;
    let rx = world
        .ledger
        .wait_decrypted(message_id, recipient)
        .ok_or_else(|| FlowError::Protocol(format!("message {message_id} is not in the ledger")))?;
    match tokio::time::timeout(world.cfg.reply_timeout, rx).await {
        Ok(Ok(true)) => Ok(()),
        Ok(Ok(false)) => Err(FlowError::Protocol(format!(
            "{recipient:?} could not decrypt {message_id}"
        ))),
        Ok(Err(_)) => Err(FlowError::Protocol("ledger dropped a waiter".into())),
        Err(_) => Err(FlowError::Protocol(format!(
            "{recipient:?} had not decrypted {message_id} after {:?}",
            world.cfg.reply_timeout
        ))),
    }
}

/// Fetches bundles of `user` (all devices, or one) and sets up a new session with each:
/// the signature is checked, and every one-time prekey handed out is checked against all
/// handed out before in this run.
async fn fetch_and_establish(
    ctx: &mut FlowCtx,
    sender: &Device,
    user: Uuid,
    device: Option<u32>,
) -> Result<(), FlowError> {
    let world = ctx.world.clone();
    let bundles: Vec<Bundle> = match device {
        None => {
            ctx.timed(Op::BundleFetch, || {
                world.api.bundles(&sender.credential, user)
            })
            .await?
        }
        // Without per-device bundles, the user's bundles give the missing session too.
        Some(_) if !world.api.has(Capability::DeviceBundle) => {
            ctx.timed(Op::BundleFetch, || {
                world.api.bundles(&sender.credential, user)
            })
            .await?
        }
        Some(d) => {
            ctx.timed(Op::BundleFetch, || {
                world.api.device_bundle(&sender.credential, user, d)
            })
            .await?
        }
    };
    if device.is_none() {
        sender.set_known_devices(user, bundles.iter().map(|b| b.device_id).collect());
    }
    record_claims(&world, user, &bundles);
    for b in &bundles {
        let peer = DeviceAddr {
            user,
            device: b.device_id,
        };
        match sender.establish(peer, &to_prekey_bundle(b)) {
            Ok(()) => {}
            Err(CryptoError::BadSignature) => {
                world.ledger.signature_failure();
                return Err(CryptoError::BadSignature.into());
            }
            Err(e) => return Err(e.into()),
        }
    }
    Ok(())
}

/// Sends one logical message from `sender` to every device of `to` (one envelope each):
/// sessions are set up where missing, `409 mismatched_devices` is answered by learning the
/// device list and retrying, as a real client does. Returns the message id and the devices
/// it was stored for.
pub async fn send_message(
    ctx: &mut FlowCtx,
    sender: &Device,
    to: &User,
) -> Result<(Uuid, Vec<DeviceAddr>), FlowError> {
    let world = ctx.world.clone();
    let mut devices = recipient_devices(ctx, sender, to).await?;
    let message_id = ctx.uuid();
    let plaintext = wire::plaintext(message_id, world.cfg.message_size);
    for _attempt in 0..3 {
        establish_missing(ctx, sender, to.id, &devices).await?;
        let targets: Vec<DeviceAddr> = devices
            .iter()
            .map(|d| DeviceAddr {
                user: to.id,
                device: *d,
            })
            .filter(|a| *a != sender.addr)
            .collect();
        let start = ctx.begin(Op::MessageInsert);
        let messages = match seal_for(sender, &targets, &plaintext) {
            Ok(m) => m,
            Err(e) => {
                ctx.failed(Op::MessageInsert, start);
                return Err(e.into());
            }
        };
        world.ledger.expect(message_id, &targets, start);
        let req = SendRequest {
            message_id,
            messages,
        };
        let (answer, retried) = send_until_answered(&world, sender, to.id, &req).await;
        match answer {
            Ok(SendOutcome::Stored {
                stored: 0,
                duplicate: true,
            }) if retried => {
                // An earlier attempt was stored; its answer was lost on the way back.
                ctx.ok(Op::MessageInsert, start);
                world.ledger.confirm(message_id, &targets);
                remember_devices(sender, to.id, &devices);
                return Ok((message_id, targets));
            }
            Ok(SendOutcome::Stored { stored, duplicate }) => {
                ctx.ok(Op::MessageInsert, start);
                world.ledger.confirm(message_id, &targets);
                remember_devices(sender, to.id, &devices);
                if duplicate || stored != targets.len() as u64 {
                    return Err(FlowError::Protocol(format!(
                        "server stored {stored} of {} envelopes (duplicate: {duplicate})",
                        targets.len()
                    )));
                }
                return Ok((message_id, targets));
            }
            Ok(SendOutcome::MismatchedDevices { missing, extra }) => {
                // The normal way a client learns about devices: not an error.
                ctx.untrack(Op::MessageInsert, start);
                world.ledger.withdraw(message_id, &targets);
                devices.retain(|d| !extra.contains(d));
                devices.extend(missing);
                sender.set_known_devices(to.id, devices.clone());
                devices = sender.known_devices(to.id).unwrap_or_default();
            }
            Err(source) => {
                ctx.failed(Op::MessageInsert, start);
                return Err(FlowError::Api {
                    op: Op::MessageInsert.name(),
                    source,
                });
            }
        }
    }
    Err(FlowError::Protocol(format!(
        "device list of {} kept changing",
        to.id
    )))
}

/// The devices of `to` a message goes to: the list the sender learned, else those it already
/// has sessions with, else the user's bundles fetched now (which set up the sessions).
async fn recipient_devices(
    ctx: &mut FlowCtx,
    sender: &Device,
    to: &User,
) -> Result<Vec<u32>, FlowError> {
    if let Some(d) = sender.known_devices(to.id) {
        return Ok(d);
    }
    let with_session: Vec<u32> = to
        .devices
        .iter()
        .map(|d| d.addr.device)
        .filter(|d| {
            sender.can_send_to(DeviceAddr {
                user: to.id,
                device: *d,
            })
        })
        .collect();
    if !with_session.is_empty() {
        return Ok(with_session);
    }
    fetch_and_establish(ctx, sender, to.id, None).await?;
    Ok(sender.known_devices(to.id).unwrap_or_default())
}

/// Sets up a session with each of `devices` of `user` the sender has none with yet.
async fn establish_missing(
    ctx: &mut FlowCtx,
    sender: &Device,
    user: Uuid,
    devices: &[u32],
) -> Result<(), FlowError> {
    for d in devices {
        let peer = DeviceAddr { user, device: *d };
        if peer != sender.addr && !sender.can_send_to(peer) {
            fetch_and_establish(ctx, sender, user, Some(*d)).await?;
        }
    }
    Ok(())
}

/// One envelope per target, sealed with the sender's session to it.
fn seal_for(
    sender: &Device,
    targets: &[DeviceAddr],
    plaintext: &[u8],
) -> Result<Vec<OutgoingMessage>, CryptoError> {
    targets
        .iter()
        .map(|t| {
            let sealed = sender.seal(*t, plaintext)?;
            Ok(OutgoingMessage {
                device_id: t.device,
                kind: sealed.kind,
                header: sealed.header,
                ciphertext: sealed.ciphertext,
            })
        })
        .collect()
}

/// The same request (same message id, same ciphertexts) until the server answers, within
/// the retry budget: a retry of a send that was stored after all is answered `duplicate`.
/// Returns the answer and whether it took a retry.
async fn send_until_answered(
    world: &World,
    sender: &Device,
    to: Uuid,
    req: &SendRequest,
) -> (Result<SendOutcome, ApiError>, bool) {
    let mut backoff = retry::Backoff::new(retry::BUDGET);
    let mut retried = false;
    loop {
        match world.api.send(&sender.credential, to, req).await {
            Err(e) if retry::retryable(&e) => {
                if !backoff.wait().await {
                    retry::count_exhausted(world, Op::MessageInsert);
                    return (Err(e), retried);
                }
                retry::count_retry(world, Op::MessageInsert);
                retried = true;
            }
            other => return (other, retried),
        }
    }
}

/// Keeps the device list a send was stored for, unless the sender already learned one.
fn remember_devices(sender: &Device, user: Uuid, devices: &[u32]) {
    if sender.known_devices(user).is_none() {
        sender.set_known_devices(user, devices.to_vec());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every `params` entry names a setting of the scenario file: the smoke scenario sets
    /// each one, and it parses with unknown keys refused. A misspelled param is found in no
    /// scenario and fails here.
    #[test]
    fn every_flow_param_is_a_scenario_setting() {
        let (path, text) =
            crate::builtin::scenario(std::path::Path::new("smoke")).expect("built-in smoke");
        crate::scenario::Scenario::parse(&path, text).expect("smoke parses");
        let file = toml::Value::Table(toml::from_str(text).expect("smoke is TOML"));
        let set = |param: &str| {
            param
                .split('.')
                .try_fold(&file, |v, key| v.get(key))
                .is_some()
        };
        assert!(!set("converse.mesages"), "the check tells a misspelling");
        for flow in &FLOWS {
            for param in flow.params {
                assert!(
                    set(param),
                    "flow {}: param {param:?} is not a key of the scenario file (smoke sets \
                     every setting a flow reads)",
                    flow.name
                );
            }
        }
    }

    #[test]
    fn the_mix_listing_names_every_flow_and_what_it_reads() {
        let listing = mix_listing();
        for flow in &FLOWS {
            let line = listing
                .lines()
                .find(|l| l.split_whitespace().next() == Some(flow.name))
                .unwrap_or_else(|| panic!("no line for {}:\n{listing}", flow.name));
            assert!(line.contains(flow.summary), "{line}");
            for param in flow.params {
                assert!(line.contains(param), "{line}");
            }
        }
    }
}
