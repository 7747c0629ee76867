//! The devices a check sets up: registered through the dialect with real keys, holding real
//! X3DH / Double Ratchet sessions, sending and receiving real encrypted messages. Every step
//! is written to the check's evidence.

use std::collections::BTreeSet;
use std::time::Duration;

use uuid::Uuid;

use super::{Context, Probe, Setup, Target};
use crate::client::api::{
    Bundle, Capability, Envelope, Incoming, OutgoingMessage, SendOutcome, SendRequest,
};
use crate::client::device::{to_prekey_bundle, Device};
use crate::client::keys::{DeviceKeys, KeyFactory};
use crate::client::wire;
use crate::metrics::DeviceAddr;

/// Plaintext size of a check's message (its ciphertext is then neither 32 nor 64 bytes, so
/// the input corpus never mistakes it for a key).
pub(crate) const MESSAGE_SIZE: usize = 100;
/// How long a push channel may take to hand over its backlog.
const BACKLOG_TIMEOUT: Duration = Duration::from_secs(15);
/// After the backlog: how long to keep listening for envelopes pushed twice.
const AFTER_BACKLOG: Duration = Duration::from_millis(500);

/// One registered device.
pub(crate) struct Actor {
    pub(crate) device: Device,
    /// The public keys it registered with (for read-back comparisons).
    pub(crate) signed_key_id: u32,
    pub(crate) signed_public: [u8; 32],
    pub(crate) one_time_public: Vec<[u8; 32]>,
}

impl Actor {
    pub(crate) fn user(&self) -> Uuid {
        self.device.addr.user
    }

    pub(crate) fn id(&self) -> u32 {
        self.device.addr.device
    }

    pub(crate) fn cred(&self) -> &crate::client::api::Credential {
        &self.device.credential
    }

    pub(crate) fn label(&self) -> String {
        format!("{}/{}", short(self.user()), self.id())
    }
}

/// The first 8 hex digits of a UUID, for evidence lines.
pub(crate) fn short(u: Uuid) -> String {
    u.simple().to_string()[..8].to_string()
}

/// Fresh keys for one device with `one_time` one-time prekeys.
pub(crate) fn keys(one_time: usize) -> DeviceKeys {
    KeyFactory::new(0, one_time).take()
}

fn actor(reg: crate::client::api::Registered, keys: DeviceKeys) -> Actor {
    let signed_key_id = keys.signed.id;
    let signed_public = keys.signed.public();
    let one_time_public = keys.one_time.iter().map(|k| k.public()).collect();
    let addr = DeviceAddr {
        user: reg.user_id,
        device: reg.device_id,
    };
    Actor {
        device: Device::new(addr, reg.credential, keys, rand::random()),
        signed_key_id,
        signed_public,
        one_time_public,
    }
}

impl Target {
    /// A new user with one device holding `one_time` one-time prekeys.
    pub(crate) async fn user(&self, p: &mut Probe, one_time: usize) -> Result<Actor, Setup> {
        let mut keys = keys(one_time);
        let reg = self
            .api
            .register_user(&mut keys)
            .await
            .during("register_user")?;
        p.note(format!(
            "register_user ({one_time} one-time prekeys) → user {} device {}",
            short(reg.user_id),
            reg.device_id
        ));
        Ok(actor(reg, keys))
    }

    /// Another device of `owner`'s user ([`Capability::MultiDevice`]).
    pub(crate) async fn device_of(
        &self,
        p: &mut Probe,
        owner: &Actor,
        one_time: usize,
    ) -> Result<Actor, Setup> {
        let mut keys = keys(one_time);
        let reg = self
            .api
            .add_device(owner.cred(), &mut keys)
            .await
            .during("add_device")?;
        p.note(format!(
            "add_device by {} → device {}",
            owner.label(),
            reg.device_id
        ));
        Ok(actor(reg, keys))
    }

    /// Bundles of `user`'s devices as `reader` fetches them (each claims a one-time prekey).
    pub(crate) async fn bundles_of(
        &self,
        p: &mut Probe,
        reader: &Actor,
        user: Uuid,
    ) -> Result<Vec<Bundle>, Setup> {
        let bundles = self
            .api
            .bundles(reader.cred(), user)
            .await
            .during("bundles")?;
        let devices: Vec<u32> = bundles.iter().map(|b| b.device_id).collect();
        p.note(format!(
            "bundles of user {} by {} → devices {devices:?}",
            short(user),
            reader.label()
        ));
        Ok(bundles)
    }

    /// Sets up sessions from `from` to every current device of `user` that it has none with.
    pub(crate) async fn sessions(
        &self,
        p: &mut Probe,
        from: &Actor,
        user: Uuid,
    ) -> Result<Vec<u32>, Setup> {
        let bundles = self.bundles_of(p, from, user).await?;
        for b in &bundles {
            let peer = DeviceAddr {
                user,
                device: b.device_id,
            };
            if !from.device.can_send_to(peer) {
                from.device
                    .establish(peer, &to_prekey_bundle(b))
                    .during("X3DH with the fetched bundle")?;
            }
        }
        Ok(bundles.iter().map(|b| b.device_id).collect())
    }

    /// The request that sends message `id` from `from` to `devices` of `user`, each envelope
    /// really encrypted for its device (sessions must exist).
    pub(crate) fn seal(
        &self,
        from: &Actor,
        user: Uuid,
        devices: &[u32],
        id: Uuid,
    ) -> Result<SendRequest, Setup> {
        let plaintext = wire::plaintext(id, MESSAGE_SIZE);
        let mut messages = Vec::new();
        for &device in devices {
            let sealed = from
                .device
                .seal(DeviceAddr { user, device }, &plaintext)
                .during("encrypting")?;
            messages.push(OutgoingMessage {
                device_id: device,
                kind: sealed.kind,
                header: sealed.header,
                ciphertext: sealed.ciphertext,
            });
        }
        Ok(SendRequest {
            message_id: id,
            messages,
        })
    }

    /// Sends `req` from `from` to `user`, noting the answer.
    pub(crate) async fn send(
        &self,
        p: &mut Probe,
        from: &Actor,
        user: Uuid,
        req: &SendRequest,
    ) -> Result<SendOutcome, Setup> {
        let devices: Vec<u32> = req.messages.iter().map(|m| m.device_id).collect();
        let result = self.api.send(from.cred(), user, req).await;
        p.note(format!(
            "send {} from {} to user {} devices {devices:?} → {}",
            short(req.message_id),
            from.label(),
            short(user),
            match &result {
                Ok(o) => format!("{o:?}"),
                Err(e) => e.to_string(),
            }
        ));
        result.during("send")
    }

    /// Encrypts and sends message `id` to every current device of `user`; `Stored` expected.
    pub(crate) async fn send_all(
        &self,
        p: &mut Probe,
        from: &Actor,
        user: Uuid,
        id: Uuid,
    ) -> Result<SendRequest, Setup> {
        let devices = self.sessions(p, from, user).await?;
        let devices: Vec<u32> = devices
            .into_iter()
            .filter(|d| !(user == from.user() && *d == from.id()))
            .collect();
        let req = self.seal(from, user, &devices, id)?;
        match self.send(p, from, user, &req).await? {
            SendOutcome::Stored { .. } => Ok(req),
            other => Err(Setup::Other(format!(
                "send to every device of user {} was not stored: {other:?}",
                short(user)
            ))),
        }
    }
}

/// What a device received on one connection.
pub(crate) struct Received {
    pub(crate) envelopes: Vec<Envelope>,
    /// Message ids whose envelope decrypted to exactly what was sent.
    pub(crate) decrypted: BTreeSet<Uuid>,
    /// Envelopes that did not decrypt, with why.
    pub(crate) undecryptable: Vec<String>,
    /// Whether the server answered the device's close (so every ack before it was processed).
    pub(crate) close_confirmed: bool,
}

impl Received {
    pub(crate) fn ids(&self) -> Vec<Uuid> {
        self.envelopes.iter().map(|e| e.message_id).collect()
    }

    pub(crate) fn count(&self, id: Uuid) -> usize {
        self.envelopes.iter().filter(|e| e.message_id == id).count()
    }
}

impl Target {
    /// Connects `who`'s push channel, takes its backlog (and anything pushed shortly after),
    /// decrypts every envelope, acknowledges them when `ack` (and the API has acks), closes.
    pub(crate) async fn receive(
        &self,
        p: &mut Probe,
        who: &Actor,
        ack: bool,
    ) -> Result<Received, Setup> {
        self.receive_for(p, who, ack, AFTER_BACKLOG).await
    }

    /// How many envelopes are queued for `who` (the backlog only, not acknowledged).
    pub(crate) async fn queued(&self, p: &mut Probe, who: &Actor) -> Result<usize, Setup> {
        let got = self.receive_for(p, who, false, Duration::ZERO).await?;
        Ok(got.envelopes.len())
    }

    /// [`Target::receive`], listening `linger` after the backlog.
    async fn receive_for(
        &self,
        p: &mut Probe,
        who: &Actor,
        ack: bool,
        linger: Duration,
    ) -> Result<Received, Setup> {
        let mut push = self.api.open_push(who.cred()).await.during("open_push")?;
        let mut got = Received {
            envelopes: Vec::new(),
            decrypted: BTreeSet::new(),
            undecryptable: Vec::new(),
            close_confirmed: false,
        };
        let ack = ack && self.api.has(Capability::Acknowledge);
        let mut deadline = tokio::time::Instant::now() + BACKLOG_TIMEOUT;
        let mut backlog_done = false;
        loop {
            let next = tokio::time::timeout_at(deadline, push.next()).await;
            let item = match next {
                Err(_) if backlog_done => break,
                Err(_) => {
                    push.close().await;
                    return Err(Setup::Other(format!(
                        "the push channel of {} did not finish its backlog within {BACKLOG_TIMEOUT:?}",
                        who.label()
                    )));
                }
                Ok(item) => item.during("push channel")?,
            };
            match item {
                Incoming::Envelope(env) => {
                    self.open(who, &env, &mut got);
                    if ack {
                        push.ack(env.id).await.during("ack")?;
                    }
                    got.envelopes.push(env);
                }
                Incoming::BacklogDone => {
                    backlog_done = true;
                    deadline = tokio::time::Instant::now() + linger;
                }
                Incoming::Closed => break,
            }
        }
        got.close_confirmed = push.close().await;
        let ids: Vec<String> = got.ids().iter().map(|u| short(*u)).collect();
        let acking = if ack {
            "acknowledging"
        } else {
            "not acknowledging"
        };
        let close = if got.close_confirmed {
            "answered"
        } else {
            "not answered"
        };
        p.note(format!(
            "push channel of {} ({acking}) → {} envelopes {ids:?}; close {close}",
            who.label(),
            got.envelopes.len(),
        ));
        Ok(got)
    }

    fn open(&self, who: &Actor, env: &Envelope, got: &mut Received) {
        let sender = DeviceAddr {
            user: env.sender_user,
            device: env.sender_device,
        };
        match who
            .device
            .open(sender, env.kind, &env.header, &env.ciphertext)
        {
            Ok(plain) if wire::is_expected(env.message_id, MESSAGE_SIZE, &plain) => {
                got.decrypted.insert(env.message_id);
            }
            Ok(_) => got.undecryptable.push(format!(
                "{}: decrypted to something else than was sent",
                short(env.message_id)
            )),
            Err(e) => got
                .undecryptable
                .push(format!("{}: {e}", short(env.message_id))),
        }
    }
}
