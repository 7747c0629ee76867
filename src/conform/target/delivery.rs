//! Delivery: a message reaches each of the recipient's current devices exactly once (and
//! decrypts); a send that leaves out a device or names a removed one is refused or reported;
//! a resent message is not delivered twice; an offline device gets its backlog in order.

use uuid::Uuid;

use super::actor::{short, Actor};
use super::{require, Probe, Setup, Target, Verdict};
use crate::client::api::{Capability, SendOutcome};
use crate::conform::outcome::{Check, Kind};

/// Devices of the fan-out recipient (when the API has several per user).
const FAN_OUT: usize = 3;
/// Messages sent to the offline device.
const BACKLOG: usize = 5;

pub(super) async fn run(t: &Target) -> Vec<Check> {
    let mut out = Vec::new();
    macro_rules! check {
        ($id:literal, $statement:expr, $f:ident) => {{
            let mut p = Probe::new(Kind::Delivery, $id, $statement);
            let r = $f(t, &mut p).await;
            out.push(p.finish(r));
        }};
    }
    check!(
        "delivery.fan_out_once",
        "a message to a user reaches every one of that user's current devices exactly once, \
         decrypts there, and is not delivered again once acknowledged",
        fan_out_once
    );
    check!(
        "delivery.omitted_device",
        "a send that leaves out one of the recipient's devices is refused or reported",
        omitted_device
    );
    check!(
        "delivery.removed_device",
        "a send that names a removed device is refused or reported",
        removed_device
    );
    check!(
        "delivery.resend_once",
        "sending the same logical message again (same message id and envelopes, as a retry \
         does) does not deliver it twice",
        resend_once
    );
    check!(
        "delivery.close_confirmed",
        "the push channel answers a device's close, so the device knows that every \
         acknowledgement it sent before was processed (and the acknowledged message is not \
         delivered again)",
        close_confirmed
    );
    check!(
        "delivery.offline_backlog",
        "a device that was offline receives its backlog on connecting, each message once, in \
         the order sent",
        offline_backlog
    );
    out
}

/// A user with `n` devices (one when the API has one per user).
async fn user_with(t: &Target, p: &mut Probe, n: usize) -> Result<Vec<Actor>, Setup> {
    let first = t.user(p, 4).await?;
    let mut devices = Vec::new();
    if t.api.has(Capability::MultiDevice) {
        for _ in 1..n {
            devices.push(t.device_of(p, &first, 4).await?);
        }
    } else {
        p.note(format!(
            "the {} API has one device per user",
            t.api.dialect()
        ));
    }
    devices.insert(0, first);
    Ok(devices)
}

async fn fan_out_once(t: &Target, p: &mut Probe) -> Result<Verdict, Setup> {
    let sender = t.user(p, 1).await?;
    let recipient = user_with(t, p, FAN_OUT).await?;
    let id = Uuid::new_v4();
    t.send_all(p, &sender, recipient[0].user(), id).await?;
    let mut problems = Vec::new();
    for device in &recipient {
        let got = t.receive(p, device, true).await?;
        match got.count(id) {
            1 if got.decrypted.contains(&id) => {}
            1 => problems.push(format!(
                "{} got message {} but it did not decrypt: {:?}",
                device.label(),
                short(id),
                got.undecryptable
            )),
            n => problems.push(format!(
                "{} got message {} {n} times",
                device.label(),
                short(id)
            )),
        }
    }
    if t.api.has(Capability::Acknowledge) {
        for device in &recipient {
            let again = t.receive(p, device, true).await?;
            if again.count(id) > 0 {
                problems.push(format!(
                    "{} got message {} again after acknowledging it",
                    device.label(),
                    short(id)
                ));
            }
        }
    }
    Ok(Verdict::from_problems(problems))
}

/// Refused (an error answer that is the client's fault) or reported (the server names the
/// device list it expects): both pass; stored as if nothing were wrong fails.
fn refused_or_reported(
    outcome: Result<SendOutcome, super::Setup>,
    device: u32,
    missing: bool,
) -> Verdict {
    match outcome {
        Ok(SendOutcome::MismatchedDevices {
            missing: m,
            extra: e,
        }) => {
            let named = if missing {
                m.contains(&device)
            } else {
                e.contains(&device)
            };
            if named {
                Verdict::Pass
            } else {
                Verdict::Fail(format!(
                    "reported a device mismatch that does not name device {device} \
                     (missing {m:?}, extra {e:?})"
                ))
            }
        }
        Ok(SendOutcome::Stored { stored, duplicate }) => Verdict::Fail(format!(
            "stored as if nothing were wrong (stored {stored}, duplicate {duplicate})"
        )),
        Err(Setup::Api { source, .. })
            if source.status().is_some_and(|s| (400..500).contains(&s)) =>
        {
            Verdict::Pass
        }
        Err(e) => Verdict::Fail(format!(
            "neither refused as the client's fault nor reported: {e}"
        )),
    }
}

async fn omitted_device(t: &Target, p: &mut Probe) -> Result<Verdict, Setup> {
    if let Err(na) = require(t.api.as_ref(), &[Capability::MultiDevice]) {
        return Ok(na);
    }
    let sender = t.user(p, 1).await?;
    let recipient = user_with(t, p, 2).await?;
    let user = recipient[0].user();
    t.sessions(p, &sender, user).await?;
    let left_out = recipient[1].id();
    let req = t.seal(&sender, user, &[recipient[0].id()], Uuid::new_v4())?;
    let outcome = t.send(p, &sender, user, &req).await;
    Ok(refused_or_reported(outcome, left_out, true))
}

async fn removed_device(t: &Target, p: &mut Probe) -> Result<Verdict, Setup> {
    if let Err(na) = require(
        t.api.as_ref(),
        &[Capability::MultiDevice, Capability::RemoveDevice],
    ) {
        return Ok(na);
    }
    let sender = t.user(p, 1).await?;
    let recipient = user_with(t, p, 2).await?;
    let user = recipient[0].user();
    t.sessions(p, &sender, user).await?;
    let removed = recipient[1].id();
    t.api
        .remove_device(recipient[0].cred(), removed)
        .await
        .map_err(|source| Setup::Api {
            operation: "remove_device",
            source,
        })?;
    p.note(format!(
        "remove_device {removed} by {} → removed",
        recipient[0].label()
    ));
    let req = t.seal(&sender, user, &[recipient[0].id(), removed], Uuid::new_v4())?;
    let outcome = t.send(p, &sender, user, &req).await;
    Ok(refused_or_reported(outcome, removed, false))
}

async fn resend_once(t: &Target, p: &mut Probe) -> Result<Verdict, Setup> {
    let sender = t.user(p, 1).await?;
    let recipient = t.user(p, 2).await?;
    let id = Uuid::new_v4();
    let req = t.send_all(p, &sender, recipient.user(), id).await?;
    // The retry: the very same request, as a client sends it again after a lost answer.
    let _ = t.send(p, &sender, recipient.user(), &req).await;
    let got = t.receive(p, &recipient, true).await?;
    Ok(match got.count(id) {
        1 => Verdict::Pass,
        n => Verdict::Fail(format!(
            "message {} was delivered {n} times to {}",
            short(id),
            recipient.label()
        )),
    })
}

async fn offline_backlog(t: &Target, p: &mut Probe) -> Result<Verdict, Setup> {
    let sender = t.user(p, 1).await?;
    let recipient = t.user(p, 2).await?;
    let mut sent = Vec::new();
    for _ in 0..BACKLOG {
        let id = Uuid::new_v4();
        t.send_all(p, &sender, recipient.user(), id).await?;
        sent.push(id);
    }
    let got = t.receive(p, &recipient, true).await?;
    let received = got.ids();
    let mut problems = Vec::new();
    if received != sent {
        let show = |v: &[Uuid]| v.iter().map(|u| short(*u)).collect::<Vec<_>>();
        problems.push(format!(
            "sent {:?}, received {:?}",
            show(&sent),
            show(&received)
        ));
    }
    let undecrypted: Vec<String> = sent
        .iter()
        .filter(|id| !got.decrypted.contains(id))
        .map(|id| short(*id))
        .collect();
    if !undecrypted.is_empty() {
        problems.push(format!(
            "did not decrypt: {undecrypted:?} ({:?})",
            got.undecryptable
        ));
    }
    Ok(Verdict::from_problems(problems))
}

async fn close_confirmed(t: &Target, p: &mut Probe) -> Result<Verdict, Setup> {
    let sender = t.user(p, 1).await?;
    let recipient = t.user(p, 2).await?;
    let id = Uuid::new_v4();
    t.send_all(p, &sender, recipient.user(), id).await?;
    let got = t.receive(p, &recipient, true).await?;
    let mut problems = Vec::new();
    if got.count(id) != 1 {
        problems.push(format!(
            "message {} arrived {} times",
            short(id),
            got.count(id)
        ));
    }
    if !got.close_confirmed {
        problems.push(
            "the server did not answer the close (no close frame back): the device cannot \
             know whether its acknowledgements were processed"
                .to_string(),
        );
    }
    if t.api.has(Capability::Acknowledge) {
        let again = t.receive(p, &recipient, true).await?;
        if again.count(id) > 0 {
            problems.push(format!(
                "message {} was delivered again after it was acknowledged and the channel closed",
                short(id)
            ));
        }
    }
    Ok(Verdict::from_problems(problems))
}
