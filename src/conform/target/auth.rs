//! Authentication and isolation: every route but the public ones needs a credential the server
//! issued; the push channel too; one device cannot read, acknowledge or write for another;
//! captured requests cannot be replayed and dead credentials are refused.
//!
//! What "replay" means depends on the credential kind, and each check says which it tested:
//! a bearer token is by nature replayable while it is valid (that is what a bearer token is),
//! so for bearer tokens the property is that a captured request stops working once its
//! device is removed; for per-request signatures it is that the very same signed request
//! (same headers, same body) does not succeed twice, and that a signature over a time well
//! outside the present is refused.

use std::time::{Duration, SystemTime};

use uuid::Uuid;

use super::actor::{short, Actor};
use super::http::{line, Wire};
use super::input::Subject;
use super::{require, Context, Probe, Setup, Target, Verdict};
use crate::client::api::raw::RawRequest;
use crate::client::api::{Capability, Credential, OneTimePrekeyBody};
use crate::conform::outcome::{Check, Kind};

pub(super) async fn run(t: &Target) -> Vec<Check> {
    let mut out = Vec::new();
    macro_rules! check {
        ($id:literal, $statement:expr, $f:ident) => {{
            let mut p = Probe::new(Kind::Auth, $id, $statement);
            let r = $f(t, &mut p).await;
            out.push(p.finish(r));
        }};
    }
    check!(
        "auth.routes_need_credential",
        "every route but the public ones refuses a request without a credential or with one \
         the server never issued",
        routes_need_credential
    );
    check!(
        "auth.push_needs_credential",
        "the push channel refuses a connection without a credential or with a forged one",
        push_needs_credential
    );
    check!(
        "auth.no_cross_read",
        "a device never receives envelopes addressed to another device",
        no_cross_read
    );
    check!(
        "auth.no_cross_ack",
        "a device cannot acknowledge (delete) another device's envelopes",
        no_cross_ack
    );
    check!(
        "auth.no_cross_write",
        "a device cannot upload keys for, or remove, another user's device",
        no_cross_write
    );
    check!(
        "auth.no_replay",
        "a captured authenticated request cannot be replayed successfully (bearer token: \
         once its device is removed; signature: not a second time)",
        no_replay
    );
    check!(
        "auth.dead_credential_refused",
        "an expired or revoked credential is refused (bearer token: its device removed; \
         signature: signed an hour in the past or future)",
        dead_credential_refused
    );
    out
}

fn no_raw(t: &Target) -> Verdict {
    Verdict::NotApplicable(format!(
        "the {} dialect describes no raw requests",
        t.api.dialect()
    ))
}

/// A caller and a peer with examples of every operation addressed with them.
async fn examples(t: &Target, p: &mut Probe) -> Result<(Actor, Vec<RawRequest>), Setup> {
    let me = t.user(p, 2).await?;
    let peer = t.user(p, 2).await?;
    let subject = Subject::full(t, p, &me, me.id(), &peer, None).await?;
    Ok((me, subject.examples(t).await?))
}

async fn routes_need_credential(t: &Target, p: &mut Probe) -> Result<Verdict, Setup> {
    let Some(raw) = t.api.raw() else {
        return Ok(no_raw(t));
    };
    let (_me, requests) = examples(t, p).await?;
    let forged = raw.forged_credential();
    let mut problems = Vec::new();
    let mut unclear = Vec::new();
    for req in requests.iter().filter(|r| r.authenticated) {
        let wire = Wire::of(req);
        let bare = t.raw(req, &wire, &[]).await;
        p.note(line(req, &wire, "no credential", &bare));
        let fake = t.raw_as(req, &wire, &forged).await;
        p.note(line(req, &wire, "forged credential", &fake));
        for (how, a) in [
            ("without a credential", &bare),
            ("with a forged credential", &fake),
        ] {
            if !a.is_refusal() {
                problems.push(format!("{} {} {how} → {a}", req.method, req.template));
            } else if !matches!(a.status(), Some(401 | 403)) {
                unclear.push(format!("{} {} {how} → {a}", req.method, req.template));
            }
        }
    }
    if problems.is_empty() && !unclear.is_empty() {
        return Ok(Verdict::Finding(format!(
            "refused, but not as an authentication failure (401/403), so a client cannot tell \
             why:\n{}",
            unclear.join("\n")
        )));
    }
    Ok(Verdict::from_problems(problems))
}

async fn push_needs_credential(t: &Target, p: &mut Probe) -> Result<Verdict, Setup> {
    let mut problems = Vec::new();
    if let Some(raw) = t.api.raw() {
        let forged = raw.forged_credential();
        let r = t.api.open_push(&forged).await;
        p.note(format!(
            "open_push with a forged credential → {}",
            r.as_ref()
                .map_or_else(|e| e.to_string(), |_| "connected".into())
        ));
        if r.is_ok() {
            problems.push("the push channel accepted a forged credential".to_string());
        }
        // The channel of a real user's devices (some APIs name the user in the path).
        let owner = t.user(p, 0).await?;
        if let Some(path) = raw.push_path(owner.user()) {
            let url = format!(
                "{}{path}",
                t.api
                    .base()
                    .replacen("http://", "ws://", 1)
                    .replacen("https://", "wss://", 1)
            );
            let r = tokio_tungstenite::connect_async(url.as_str()).await;
            p.note(format!(
                "WebSocket upgrade of {path} without a credential → {}",
                r.as_ref()
                    .map_or_else(|e| e.to_string(), |_| "connected".into())
            ));
            if r.is_ok() {
                problems.push(format!("{path} upgraded without a credential"));
            }
        }
    } else {
        return Ok(no_raw(t));
    }
    Ok(Verdict::from_problems(problems))
}

/// A sender, a recipient with two messages queued, and a bystander of another user.
async fn two_queued(t: &Target, p: &mut Probe) -> Result<(Actor, Actor, Vec<Uuid>), Setup> {
    let sender = t.user(p, 2).await?;
    let owner = t.user(p, 2).await?;
    let other = t.user(p, 2).await?;
    let mut ids = Vec::new();
    for _ in 0..2 {
        let id = Uuid::new_v4();
        t.send_all(p, &sender, owner.user(), id).await?;
        ids.push(id);
    }
    Ok((owner, other, ids))
}

async fn no_cross_read(t: &Target, p: &mut Probe) -> Result<Verdict, Setup> {
    let (owner, other, ids) = two_queued(t, p).await?;
    let theirs = t.receive(p, &other, true).await?;
    let mut problems = Vec::new();
    for id in &ids {
        if theirs.count(*id) > 0 {
            problems.push(format!(
                "{} received message {} addressed to {}",
                other.label(),
                short(*id),
                owner.label()
            ));
        }
    }
    let own = t.receive(p, &owner, false).await?;
    if ids.iter().any(|id| own.count(*id) == 0) {
        problems.push(format!("{} did not get its own messages", owner.label()));
    }
    Ok(Verdict::from_problems(problems))
}

async fn no_cross_ack(t: &Target, p: &mut Probe) -> Result<Verdict, Setup> {
    if let Err(na) = require(t.api.as_ref(), &[Capability::Acknowledge]) {
        return Ok(na);
    }
    let (owner, other, ids) = two_queued(t, p).await?;
    let queued = t.receive(p, &owner, false).await?;
    let envelope_ids: Vec<i64> = queued.envelopes.iter().map(|e| e.id).collect();
    let mut push = t.api.open_push(other.cred()).await.during("open_push")?;
    for id in &envelope_ids {
        let r = push.ack(*id).await;
        p.note(format!(
            "{} acknowledges envelope {id} of {} → {}",
            other.label(),
            owner.label(),
            r.as_ref().map_or_else(|e| e.to_string(), |_| "sent".into())
        ));
    }
    let confirmed = push.close().await;
    p.note(format!(
        "push channel of {} closed (confirmed: {confirmed})",
        other.label()
    ));
    if t.api.raw().is_some() {
        let subject = Subject::full(
            t,
            p,
            &other,
            other.id(),
            &owner,
            envelope_ids.first().copied(),
        )
        .await?;
        if let Some(req) = subject
            .examples(t)
            .await?
            .into_iter()
            .find(|r| r.operation == "acknowledge")
        {
            let wire = Wire::of(&req);
            let a = t.raw_as(&req, &wire, other.cred()).await;
            p.note(line(&req, &wire, &format!("as {}", other.label()), &a));
        }
    }
    let again = t.receive(p, &owner, false).await?;
    let lost: Vec<String> = ids
        .iter()
        .filter(|id| again.count(**id) == 0)
        .map(|id| short(*id))
        .collect();
    Ok(if lost.is_empty() {
        Verdict::Pass
    } else {
        Verdict::Fail(format!(
            "messages {lost:?} of {} are gone after {} acknowledged them",
            owner.label(),
            other.label()
        ))
    })
}

/// Another user's device uploads keys as if for the owner and removes the owner's device,
/// each where the API has the routes for it.
async fn no_cross_write(t: &Target, p: &mut Probe) -> Result<Verdict, Setup> {
    let owner = t.user(p, 3).await?;
    let other = t.user(p, 3).await?;
    let api = t.api.as_ref();
    let uploads = require(api, &[Capability::PrekeyUpload, Capability::PrekeyCount]).is_ok();
    let removals = require(api, &[Capability::RemoveDevice, Capability::MultiDevice]).is_ok();
    if !uploads && !removals {
        return Ok(Verdict::NotApplicable(format!(
            "the {} API lacks prekey_upload + prekey_count and remove_device + multi_device",
            t.api.dialect()
        )));
    }
    let mut problems = Vec::new();
    if uploads {
        problems.extend(upload_for_another(t, p, &owner, &other).await?);
    }
    if removals {
        problems.extend(remove_anothers_device(t, p, &owner, &other).await?);
    }
    Ok(Verdict::from_problems(problems))
}

/// `other` uploads one-time keys with its own credential: `owner`'s prekey count must not
/// move. The problem, if it did.
async fn upload_for_another(
    t: &Target,
    p: &mut Probe,
    owner: &Actor,
    other: &Actor,
) -> Result<Option<String>, Setup> {
    let before = t
        .api
        .prekey_count(owner.cred())
        .await
        .during("prekey_count")?;
    let fresh: Vec<OneTimePrekeyBody> = other.device.add_one_time(super::actor::keys(4).one_time);
    let r = t.api.upload_one_time(other.cred(), &fresh).await;
    p.note(format!(
        "upload_one_time of 4 keys by {} → {}",
        other.label(),
        r.as_ref()
            .map_or_else(|e| e.to_string(), |u| format!("stored {}", u.stored))
    ));
    let after = t
        .api
        .prekey_count(owner.cred())
        .await
        .during("prekey_count")?;
    p.note(format!(
        "prekey_count of {}: {before} → {after}",
        owner.label()
    ));
    Ok((after != before).then(|| {
        format!(
            "{}'s upload changed {}'s prekey count {before} → {after}",
            other.label(),
            owner.label()
        )
    }))
}

/// `other` asks to remove a second device of `owner`'s user: it must still be listed. The
/// problem, if it is gone.
async fn remove_anothers_device(
    t: &Target,
    p: &mut Probe,
    owner: &Actor,
    other: &Actor,
) -> Result<Option<String>, Setup> {
    let second = t.device_of(p, owner, 1).await?;
    let r = t.api.remove_device(other.cred(), second.id()).await;
    p.note(format!(
        "remove_device {} by {} (whose user has no such device) → {}",
        second.id(),
        other.label(),
        r.as_ref()
            .map_or_else(|e| e.to_string(), |_| "removed".into())
    ));
    let devices: Vec<u32> = t
        .bundles_of(p, other, owner.user())
        .await?
        .iter()
        .map(|b| b.device_id)
        .collect();
    Ok((!devices.contains(&second.id())).then(|| {
        format!(
            "{} removed device {} of user {}",
            other.label(),
            second.id(),
            short(owner.user())
        )
    }))
}

/// The first authenticated read among the examples (harmless to send again).
fn a_read(requests: Vec<RawRequest>) -> Option<RawRequest> {
    requests
        .into_iter()
        .find(|r| r.authenticated && !r.writes && r.body.is_none())
}

async fn no_replay(t: &Target, p: &mut Probe) -> Result<Verdict, Setup> {
    if t.api.raw().is_none() {
        return Ok(no_raw(t));
    }
    let (me, requests) = examples(t, p).await?;
    let Some(req) = a_read(requests) else {
        return Ok(Verdict::NotApplicable(
            "the dialect describes no authenticated read".into(),
        ));
    };
    match me.cred() {
        Credential::Bearer(_) => replay_after_removal(t, p, &me, &req).await,
        Credential::IdentitySignature { .. } => {
            let wire = Wire::of(&req);
            let headers = t
                .sign(&req, &wire, me.cred(), SystemTime::now())
                .during("signing")?;
            let first = t.raw(&req, &wire, &headers).await;
            p.note(line(&req, &wire, "signed request", &first));
            let second = t.raw(&req, &wire, &headers).await;
            p.note(line(&req, &wire, "the same request again", &second));
            Ok(if !first.is_success() {
                Verdict::Fail(format!("the signed request itself was refused: {first}"))
            } else if second.is_success() {
                Verdict::Fail("the identical signed request succeeded a second time".into())
            } else {
                Verdict::Pass
            })
        }
    }
}

/// Bearer tokens: a request captured from a second device works, then that device is
/// removed, and the same request must be refused.
async fn replay_after_removal(
    t: &Target,
    p: &mut Probe,
    me: &Actor,
    req: &RawRequest,
) -> Result<Verdict, Setup> {
    if let Err(na) = require(
        t.api.as_ref(),
        &[Capability::MultiDevice, Capability::RemoveDevice],
    ) {
        return Ok(na);
    }
    p.note("a bearer token is replayable by design while valid; checked: a captured request is refused once its device is removed");
    let second = t.device_of(p, me, 1).await?;
    let wire = Wire::of(req);
    let headers = t
        .sign(req, &wire, second.cred(), SystemTime::now())
        .during("authenticating")?;
    let first = t.raw(req, &wire, &headers).await;
    p.note(line(
        req,
        &wire,
        &format!("captured, as {}", second.label()),
        &first,
    ));
    t.api
        .remove_device(me.cred(), second.id())
        .await
        .during("remove_device")?;
    p.note(format!(
        "remove_device {} by {} → removed",
        second.id(),
        me.label()
    ));
    let replay = t.raw(req, &wire, &headers).await;
    p.note(line(req, &wire, "replayed after removal", &replay));
    Ok(if !first.is_success() {
        Verdict::Fail(format!("the captured request itself was refused: {first}"))
    } else if !replay.is_refusal() {
        Verdict::Fail(format!(
            "the replay after removal was not refused: {replay}"
        ))
    } else {
        Verdict::Pass
    })
}

async fn dead_credential_refused(t: &Target, p: &mut Probe) -> Result<Verdict, Setup> {
    let me = t.user(p, 2).await?;
    match me.cred() {
        Credential::Bearer(_) => revoked_token(t, p, &me).await,
        Credential::IdentitySignature { .. } => {
            if t.api.raw().is_none() {
                return Ok(no_raw(t));
            }
            let peer = t.user(p, 1).await?;
            let subject = Subject::full(t, p, &me, me.id(), &peer, None).await?;
            let Some(req) = a_read(subject.examples(t).await?) else {
                return Ok(Verdict::NotApplicable(
                    "the dialect describes no authenticated read".into(),
                ));
            };
            let wire = Wire::of(&req);
            let hour = Duration::from_secs(3600);
            let mut problems = Vec::new();
            for (what, at) in [
                ("an hour ago", SystemTime::now() - hour),
                ("an hour ahead", SystemTime::now() + hour),
            ] {
                let headers = t.sign(&req, &wire, me.cred(), at).during("signing")?;
                let a = t.raw(&req, &wire, &headers).await;
                p.note(line(&req, &wire, &format!("signed {what}"), &a));
                if !a.is_refusal() {
                    problems.push(format!("a request signed {what} → {a}"));
                }
            }
            Ok(Verdict::from_problems(problems))
        }
    }
}

/// Bearer tokens do not expire by time in every API; a removed device's token is dead, and
/// every operation and the push channel must refuse it.
async fn revoked_token(t: &Target, p: &mut Probe, me: &Actor) -> Result<Verdict, Setup> {
    if let Err(na) = require(
        t.api.as_ref(),
        &[Capability::MultiDevice, Capability::RemoveDevice],
    ) {
        return Ok(na);
    }
    let second = t.device_of(p, me, 1).await?;
    t.api
        .remove_device(me.cred(), second.id())
        .await
        .during("remove_device")?;
    p.note(format!(
        "remove_device {} by {} → removed",
        second.id(),
        me.label()
    ));
    let mut problems = Vec::new();
    let bundles = t.api.bundles(second.cred(), me.user()).await;
    p.note(format!(
        "bundles with the removed device's token → {}",
        bundles
            .as_ref()
            .map_or_else(|e| e.to_string(), |b| format!("{} bundles", b.len()))
    ));
    if bundles.is_ok() {
        problems.push("the removed device's token still fetches bundles".to_string());
    }
    if t.api.has(Capability::PrekeyCount) {
        let r = t.api.prekey_count(second.cred()).await;
        p.note(format!(
            "prekey_count with the removed device's token → {}",
            r.as_ref().map_or_else(|e| e.to_string(), |n| n.to_string())
        ));
        if r.is_ok() {
            problems.push("the removed device's token still counts prekeys".to_string());
        }
    }
    let push = t.api.open_push(second.cred()).await;
    p.note(format!(
        "open_push with the removed device's token → {}",
        push.as_ref()
            .map_or_else(|e| e.to_string(), |_| "connected".into())
    ));
    if let Ok(mut ch) = push {
        ch.close().await;
        problems.push("the removed device's token still opens the push channel".to_string());
    }
    Ok(Verdict::from_problems(problems))
}
