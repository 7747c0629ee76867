//! Malformed input: every operation the dialect describes, mutated by the [`corpus`], must
//! never get a 5xx (or no answer) and must never write anything. Writes are looked for by
//! reading state back through the protocol (prekey counts, bundles, device lists, queued
//! envelopes) before and after each operation's corpus; a 2xx to a malformed write is a
//! write by the server's own account.

use uuid::Uuid;

use super::actor::{keys, short, Actor};
use super::corpus::{self, Class};
use super::http::{line, Wire};
use super::{Context, Probe, Setup, Target, Verdict};
use crate::client::api::raw::{RawRequest, RawSubject};
use crate::client::api::{
    Capability, Credential, EnvelopeType, OneTimePrekeyBody, SignedPrekeyBody,
};
use crate::client::keys::DeviceKeys;
use crate::conform::outcome::{Check, Kind};

/// Everything a [`RawSubject`] borrows, owned.
pub(super) struct Subject {
    /// The caller's credential (the dialect may fetch what its examples need as the caller).
    me_cred: Credential,
    me_user: Uuid,
    me_device: u32,
    spare_device: u32,
    peer_user: Uuid,
    peer_devices: Vec<u32>,
    envelope_id: Option<i64>,
    new_keys: DeviceKeys,
    new_signed: SignedPrekeyBody,
    new_one_time: Vec<OneTimePrekeyBody>,
    sealed: Vec<(u32, EnvelopeType, Vec<u8>, Vec<u8>)>,
    message_id: Uuid,
}

impl Subject {
    /// `me` addressing `peer`, with fresh keys; no envelopes (enough for key operations).
    pub(super) fn simple(me: &Actor, peer: &Actor) -> Subject {
        let fresh = keys(3);
        Subject {
            me_cred: me.cred().clone(),
            me_user: me.user(),
            me_device: me.id(),
            spare_device: me.id(),
            peer_user: peer.user(),
            peer_devices: vec![peer.id()],
            envelope_id: None,
            new_signed: me.device.rotate_signed(),
            new_one_time: me.device.add_one_time(keys(3).one_time),
            new_keys: fresh,
            sealed: Vec::new(),
            message_id: Uuid::new_v4(),
        }
    }

    /// Like [`Subject::simple`], with a real envelope for the peer's device (a session is
    /// set up) and `me`'s spare device and queued envelope.
    pub(super) async fn full(
        t: &Target,
        p: &mut Probe,
        me: &Actor,
        spare: u32,
        peer: &Actor,
        envelope_id: Option<i64>,
    ) -> Result<Subject, Setup> {
        let mut s = Subject::simple(me, peer);
        s.spare_device = spare;
        s.envelope_id = envelope_id;
        t.sessions(p, me, peer.user()).await?;
        let req = t.seal(me, peer.user(), &[peer.id()], s.message_id)?;
        s.sealed = req
            .messages
            .into_iter()
            .map(|m| (m.device_id, m.kind, m.header, m.ciphertext))
            .collect();
        Ok(s)
    }

    /// The dialect's examples addressed with this subject (after the dialect fetched what
    /// they need that is single use, `ServerApi::prepare_raw`).
    pub(super) async fn examples(&self, t: &Target) -> Result<Vec<RawRequest>, Setup> {
        let raw = t
            .api
            .raw()
            .ok_or_else(|| Setup::Other("the dialect describes no raw requests".into()))?;
        t.api
            .prepare_raw(&self.me_cred)
            .await
            .during("prepare_raw")?;
        Ok(raw.examples(&self.borrow()))
    }

    pub(super) fn borrow(&self) -> RawSubject<'_> {
        RawSubject {
            me_user: self.me_user,
            me_device: self.me_device,
            spare_device: self.spare_device,
            peer_user: self.peer_user,
            peer_devices: self.peer_devices.clone(),
            envelope_id: self.envelope_id,
            new_keys: &self.new_keys,
            new_signed: self.new_signed.clone(),
            new_one_time: self.new_one_time.clone(),
            sealed: self.sealed.clone(),
            message_id: self.message_id,
        }
    }
}

/// What can be read back of the state malformed requests might write.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Snapshot {
    me_count: Option<u64>,
    me_devices: Vec<u32>,
    me_signed: Option<(u32, [u8; 32])>,
    /// Whether reading `me`'s bundle claimed one of its one-time prekeys.
    me_claimed: bool,
    peer_count: Option<u64>,
    /// Envelopes queued for each (only with acks: otherwise reading takes them away).
    me_queued: Option<usize>,
    peer_queued: Option<usize>,
}

impl Snapshot {
    /// How `after` differs from `self` beyond the one-time prekey `self`'s read claimed.
    fn changes(&self, after: &Snapshot) -> Vec<String> {
        let mut out = Vec::new();
        if let (Some(b), Some(a)) = (self.me_count, after.me_count) {
            let expected = b - u64::from(self.me_claimed && b > 0);
            if a != expected {
                out.push(format!(
                    "the caller's one-time prekey count went {b} → {a} (expected {expected}: \
                     the read-back claimed {})",
                    u64::from(self.me_claimed && b > 0)
                ));
            }
        }
        let pairs = [
            (
                "the caller's devices",
                format!("{:?}", self.me_devices),
                format!("{:?}", after.me_devices),
            ),
            (
                "the caller's signed prekey",
                format!("{:?}", self.me_signed.map(|s| s.0)),
                format!("{:?}", after.me_signed.map(|s| s.0)),
            ),
            (
                "the peer's one-time prekey count",
                format!("{:?}", self.peer_count),
                format!("{:?}", after.peer_count),
            ),
            (
                "envelopes queued for the caller",
                format!("{:?}", self.me_queued),
                format!("{:?}", after.me_queued),
            ),
            (
                "envelopes queued for the peer",
                format!("{:?}", self.peer_queued),
                format!("{:?}", after.peer_queued),
            ),
        ];
        for (what, b, a) in pairs {
            if b != a {
                out.push(format!("{what}: {b} → {a}"));
            }
        }
        if self.me_signed != after.me_signed
            && self.me_signed.map(|s| s.0) == after.me_signed.map(|s| s.0)
        {
            out.push("the caller's signed prekey changed its key".into());
        }
        out
    }
}

struct Parties {
    me: Actor,
    peer: Actor,
    /// Reads bundles (so that reading claims nobody's prekeys but the read device's).
    reader: Actor,
}

impl Target {
    async fn snapshot(&self, p: &mut Probe, w: &Parties) -> Result<Snapshot, Setup> {
        let count = |a: &Actor| {
            let api = self.api.clone();
            let cred = a.cred().clone();
            async move {
                if api.has(Capability::PrekeyCount) {
                    Ok(Some(api.prekey_count(&cred).await.during("prekey_count")?))
                } else {
                    Ok::<_, Setup>(None)
                }
            }
        };
        let me_count = count(&w.me).await?;
        let bundles = self
            .api
            .bundles(w.reader.cred(), w.me.user())
            .await
            .during("bundles")?;
        let mine = bundles.iter().find(|b| b.device_id == w.me.id());
        let mut me_devices: Vec<u32> = bundles.iter().map(|b| b.device_id).collect();
        me_devices.sort_unstable();
        let acks = self.api.has(Capability::Acknowledge);
        let snap = Snapshot {
            me_count,
            me_claimed: mine.is_some_and(|b| b.one_time_prekey.is_some()),
            me_signed: mine.map(|b| (b.signed_prekey.key_id, b.signed_prekey.public_key)),
            me_devices,
            peer_count: count(&w.peer).await?,
            me_queued: if acks {
                Some(self.queued(p, &w.me).await?)
            } else {
                None
            },
            peer_queued: if acks {
                Some(self.queued(p, &w.peer).await?)
            } else {
                None
            },
        };
        Ok(snap)
    }
}

const STATEMENT: &str = "malformed requests (wrong types, bad base64, wrong key lengths, huge \
    bodies, unknown or invalid ids) never get a 5xx and never write anything";

pub(super) async fn run(t: &Target) -> Vec<Check> {
    if t.api.raw().is_none() {
        let na = Verdict::NotApplicable(format!(
            "the {} dialect describes no raw requests",
            t.api.dialect()
        ));
        return vec![Probe::new(Kind::Input, "input.malformed", STATEMENT).finish(Ok(na))];
    }
    let mut setup = Probe::new(Kind::Input, "input.malformed", STATEMENT);
    let (w, spare, envelope) = match parties(t, &mut setup).await {
        Ok(x) => x,
        Err(e) => return vec![setup.finish(Err(e))],
    };
    let operations = match Subject::full(t, &mut setup, &w.me, spare, &w.peer, envelope).await {
        Ok(s) => match s.examples(t).await {
            Ok(ops) => ops,
            Err(e) => return vec![setup.finish(Err(e))],
        },
        Err(e) => return vec![setup.finish(Err(e))],
    };
    let mut out = Vec::new();
    for op in operations {
        if corpus::mutations(&op).is_empty() {
            continue; // no body and no path ids: nothing to malform
        }
        let name = op.operation;
        let mut p = Probe::new(
            Kind::Input,
            format!("input.{name}"),
            format!("malformed {name} requests never get a 5xx and never write anything"),
        );
        let r = async {
            // A fresh subject per operation: fresh key ids, a fresh message.
            let s = Subject::full(t, &mut p, &w.me, spare, &w.peer, envelope).await?;
            let Some(req) = s
                .examples(t)
                .await?
                .into_iter()
                .find(|r| r.operation == name)
            else {
                return Ok(Verdict::Fail(format!(
                    "the dialect's {name} example vanished"
                )));
            };
            operation(t, &mut p, &w, &req).await
        }
        .await;
        out.push(p.finish(r));
    }
    out
}

/// The caller (with a spare device to remove, if the API has several per user, and an
/// envelope queued for it), the peer it addresses, and a reader.
async fn parties(t: &Target, p: &mut Probe) -> Result<(Parties, u32, Option<i64>), Setup> {
    let me = t.user(p, 2).await?;
    let peer = t.user(p, 50).await?;
    let reader = t.user(p, 0).await?;
    let spare = if t.api.has(Capability::MultiDevice) {
        t.device_of(p, &me, 0).await?.id()
    } else {
        me.id()
    };
    let w = Parties { me, peer, reader };
    t.send_all(p, &w.peer, w.me.user(), Uuid::new_v4()).await?;
    let got = t.receive(p, &w.me, false).await?;
    let envelope = got.envelopes.first().map(|e| e.id);
    Ok((w, spare, envelope))
}

/// One operation's corpus, its read-back, then the valid example itself.
async fn operation(
    t: &Target,
    p: &mut Probe,
    w: &Parties,
    req: &RawRequest,
) -> Result<Verdict, Setup> {
    let before = t.snapshot(p, w).await?;
    let mut problems = Vec::new();
    let mut accepted = Vec::new();
    for m in corpus::mutations(req) {
        let answer = t.raw_as(req, &m.wire, w.me.cred()).await;
        p.note(line(req, &m.wire, &m.label, &answer));
        if m.class == Class::Huge && answer.status().is_none() {
            // Refusing a huge body by closing the connection is fine, if the server lives on.
            if let Err(e) = t.api.health().await {
                problems.push(format!(
                    "[{}] → {answer}; then the server stopped answering: {e}",
                    m.label
                ));
            }
        } else if answer.is_server_error() || answer.status().is_none() {
            problems.push(format!("[{}] → {answer}", m.label));
        } else if answer.is_success() && req.writes && m.class != Class::UnknownId {
            problems.push(format!("[{}] accepted: {answer}", m.label));
        } else if answer.is_success() {
            accepted.push(m.label.clone());
        }
    }
    let after = t.snapshot(p, w).await?;
    let changes = before.changes(&after);
    if !changes.is_empty() {
        p.note(format!("read back before: {before:?}"));
        p.note(format!("read back after: {after:?}"));
        problems.push(format!(
            "state changed: {} (of user {})",
            changes.join("; "),
            short(w.me.user())
        ));
    }
    // The valid example: shows that the corpus mutated a request the server does accept.
    let wire = Wire::of(req);
    let answer = t.raw_as(req, &wire, w.me.cred()).await;
    p.note(line(req, &wire, "the valid example", &answer));
    if !answer.is_success() {
        problems.push(format!(
            "the valid example itself was refused ({answer}): the corpus proves little for {}",
            req.operation
        ));
    }
    if problems.is_empty() && !accepted.is_empty() {
        p.note(format!(
            "answered 2xx, nothing written: {}",
            accepted.join(", ")
        ));
    }
    Ok(Verdict::from_problems(problems))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn snap(count: u64, claimed: bool) -> Snapshot {
        Snapshot {
            me_count: Some(count),
            me_devices: vec![1, 2],
            me_signed: Some((1, [7; 32])),
            me_claimed: claimed,
            peer_count: Some(50),
            me_queued: Some(1),
            peer_queued: Some(0),
        }
    }

    #[test]
    fn the_prekey_the_read_back_claims_is_not_a_change() {
        assert!(snap(3, true).changes(&snap(2, true)).is_empty());
        assert!(snap(0, false).changes(&snap(0, false)).is_empty());
        let stored = snap(3, true).changes(&snap(3, true));
        assert_eq!(
            stored,
            ["the caller's one-time prekey count went 3 → 3 (expected 2: the read-back claimed 1)"]
        );
    }

    #[test]
    fn every_read_back_field_is_compared() {
        let before = snap(0, false);
        let mut after = snap(0, false);
        after.me_devices.push(3);
        after.peer_queued = Some(1);
        after.me_signed = Some((1, [8; 32]));
        let changes = before.changes(&after);
        assert_eq!(changes.len(), 3, "{changes:?}");
        assert!(changes.iter().any(|c| c.contains("changed its key")));
    }
}
