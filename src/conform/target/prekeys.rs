//! One-time and signed prekeys: a one-time prekey goes to one initiator only; keys that do not
//! verify or do not have a key's shape are refused and leave nothing behind.

use std::collections::BTreeMap;

use futures::future::join_all;

use super::actor::{short, Actor};
use super::corpus::{self, Mutation};
use super::http::line;
use super::{require, Context, Probe, Setup, Target, Verdict};
use crate::client::api::{Bundle, Capability, SignedPrekeyBody};
use crate::conform::outcome::{Check, Kind};
use crate::crypto::identity::IdentityKeyPair;
use crate::crypto::prekeys::SignedPreKey;

/// One-time prekeys of the contested device, and concurrent fetches of its bundle.
const PREKEYS: usize = 5;
const FETCHES: usize = 16;

pub(super) async fn run(t: &Target) -> Vec<Check> {
    let mut out = Vec::new();
    let mut p = Probe::new(
        Kind::Prekeys,
        "prekeys.one_time_once",
        format!(
            "a one-time prekey is handed out at most once: {FETCHES} concurrent bundle fetches \
             of a device with {PREKEYS} yield exactly {PREKEYS} distinct ones and {} without",
            FETCHES - PREKEYS
        ),
    );
    let r = one_time_once(t, &mut p).await;
    out.push(p.finish(r));

    let mut p = Probe::new(
        Kind::Prekeys,
        "prekeys.signed_bad_signature",
        "a signed prekey whose signature does not verify under the identity key is refused, \
         and the bundle still carries the previous one",
    );
    let r = rotate_bad_signature(t, &mut p).await;
    out.push(p.finish(r));

    let mut p = Probe::new(
        Kind::Prekeys,
        "prekeys.register_bad_signature",
        "a device whose signed prekey signature does not verify is not registered",
    );
    let r = register_bad_signature(t, &mut p).await;
    out.push(p.finish(r));

    let mut p = Probe::new(
        Kind::Prekeys,
        "prekeys.malformed_keys",
        "keys and signatures of the wrong length or encoding are refused, and nothing is \
         stored (prekey count and bundle read back unchanged)",
    );
    let r = malformed_keys(t, &mut p).await;
    out.push(p.finish(r));
    out
}

/// The bundle of `owner`'s device as `reader` fetches it.
pub(super) async fn bundle_of(
    t: &Target,
    reader: &Actor,
    owner: &Actor,
) -> Result<Option<Bundle>, Setup> {
    let bundles = if t.api.has(Capability::DeviceBundle) {
        t.api
            .device_bundle(reader.cred(), owner.user(), owner.id())
            .await
            .during("device_bundle")?
    } else {
        t.api
            .bundles(reader.cred(), owner.user())
            .await
            .during("bundles")?
    };
    Ok(bundles.into_iter().find(|b| b.device_id == owner.id()))
}

async fn one_time_once(t: &Target, p: &mut Probe) -> Result<Verdict, Setup> {
    let owner = t.user(p, PREKEYS).await?;
    let mut readers = Vec::new();
    for _ in 0..4 {
        readers.push(t.user(p, 1).await?);
    }
    let fetches = (0..FETCHES).map(|i| bundle_of(t, &readers[i % readers.len()], &owner));
    let results = join_all(fetches).await;
    let mut handed: BTreeMap<(u32, [u8; 32]), usize> = BTreeMap::new();
    let (mut without, mut errors) = (0, Vec::new());
    for r in results {
        match r {
            Ok(Some(b)) => match b.one_time_prekey {
                Some(k) => *handed.entry((k.key_id, k.public_key)).or_default() += 1,
                None => without += 1,
            },
            Ok(None) => errors.push(format!("a bundle without device {}", owner.id())),
            Err(e) => errors.push(e.to_string()),
        }
    }
    let ids: Vec<u32> = handed.keys().map(|(id, _)| *id).collect();
    p.note(format!(
        "{FETCHES} concurrent bundle fetches of {} → one-time prekeys {ids:?} (with counts \
         {:?}), {without} without, {} failed",
        owner.label(),
        handed.values().collect::<Vec<_>>(),
        errors.len()
    ));
    let mut problems = Vec::new();
    for ((id, public), n) in &handed {
        if *n > 1 {
            problems.push(format!("one-time prekey {id} was handed out {n} times"));
        }
        if !owner.one_time_public.contains(public) {
            problems.push(format!(
                "one-time prekey {id} is not one the device uploaded"
            ));
        }
    }
    if handed.len() != PREKEYS {
        problems.push(format!(
            "{} distinct one-time prekeys handed out, expected {PREKEYS}",
            handed.len()
        ));
    }
    if without != FETCHES - PREKEYS && errors.is_empty() {
        problems.push(format!(
            "{without} bundles without a one-time prekey, expected {}",
            FETCHES - PREKEYS
        ));
    }
    problems.extend(errors.into_iter().map(|e| format!("a fetch failed: {e}")));
    if t.api.has(Capability::PrekeyCount) {
        let left = t
            .api
            .prekey_count(owner.cred())
            .await
            .during("prekey_count")?;
        p.note(format!("prekey_count of {} → {left}", owner.label()));
        if left != 0 {
            problems.push(format!("the server still counts {left} one-time prekeys"));
        }
    }
    Ok(Verdict::from_problems(problems))
}

/// Reads `owner`'s bundle back and says how its signed prekey differs from the registered one.
async fn signed_unchanged(
    t: &Target,
    p: &mut Probe,
    reader: &Actor,
    owner: &Actor,
) -> Result<Option<String>, Setup> {
    let Some(b) = bundle_of(t, reader, owner).await? else {
        return Ok(Some(format!(
            "device {} vanished from its bundles",
            owner.label()
        )));
    };
    p.note(format!(
        "bundle of {} read back → signed prekey {}",
        owner.label(),
        b.signed_prekey.key_id
    ));
    let same = b.signed_prekey.key_id == owner.signed_key_id
        && b.signed_prekey.public_key == owner.signed_public;
    Ok((!same).then(|| {
        format!(
            "the bundle now carries signed prekey {} instead of {}: the refused key was stored",
            b.signed_prekey.key_id, owner.signed_key_id
        )
    }))
}

async fn rotate_bad_signature(t: &Target, p: &mut Probe) -> Result<Verdict, Setup> {
    if let Err(na) = require(t.api.as_ref(), &[Capability::SignedPrekeyRotation]) {
        return Ok(na);
    }
    let owner = t.user(p, 0).await?;
    let reader = t.user(p, 0).await?;
    let mut rng = rand::thread_rng();
    let mut flipped = SignedPrekeyBody::from(&SignedPreKey::generate(
        &IdentityKeyPair::generate(&mut rng),
        owner.signed_key_id + 1,
        &mut rng,
    ));
    // A valid signature, but by another identity key.
    let foreign = flipped.clone();
    // The device's own key with one bit of its signature flipped.
    let own = owner.device.rotate_signed();
    flipped.public_key = own.public_key;
    flipped.key_id = own.key_id + 1;
    flipped.signature = own.signature;
    flipped.signature[5] ^= 0x20;
    let mut problems = Vec::new();
    for (what, spk) in [
        ("a flipped bit", &flipped),
        ("another identity key", &foreign),
    ] {
        let r = t.api.rotate_signed(owner.cred(), spk).await;
        p.note(format!(
            "rotate_signed by {} with signature by {what} → {}",
            owner.label(),
            r.as_ref()
                .map_or_else(|e| e.to_string(), |_| "accepted".into())
        ));
        if r.is_ok() {
            problems.push(format!(
                "a signed prekey with a signature by {what} was accepted"
            ));
        }
        if let Some(changed) = signed_unchanged(t, p, &reader, &owner).await? {
            problems.push(changed);
        }
    }
    Ok(Verdict::from_problems(problems))
}

async fn register_bad_signature(t: &Target, p: &mut Probe) -> Result<Verdict, Setup> {
    let mut keys = super::actor::keys(1);
    keys.signed.signature[9] ^= 0x01;
    let r = t.api.register_user(&mut keys).await;
    p.note(format!(
        "register_user with a flipped bit in the signed prekey signature → {}",
        match &r {
            Ok(reg) => format!(
                "registered user {} device {}",
                short(reg.user_id),
                reg.device_id
            ),
            Err(e) => e.to_string(),
        }
    ));
    Ok(match r {
        Ok(_) => Verdict::Fail("a device with a bad signed prekey signature was registered".into()),
        Err(e) if e.status().is_some_and(|s| (400..500).contains(&s)) => Verdict::Pass,
        Err(e) => Verdict::Fail(format!("refused, but not as a client error: {e}")),
    })
}

/// Key-shaped fields of the key operations' examples, each of the wrong length or encoding.
async fn malformed_keys(t: &Target, p: &mut Probe) -> Result<Verdict, Setup> {
    if t.api.raw().is_none() {
        return Ok(Verdict::NotApplicable(format!(
            "the {} dialect describes no raw requests",
            t.api.dialect()
        )));
    }
    let owner = t.user(p, 1).await?;
    let reader = t.user(p, 0).await?;
    let subject = super::input::Subject::simple(&owner, &reader);
    let count_before = count(t, &owner).await?;
    let mut problems = Vec::new();
    for req in subject.examples(t).await? {
        if !matches!(
            req.operation,
            "register_user" | "add_device" | "upload_one_time" | "rotate_signed"
        ) {
            continue;
        }
        for m in corpus::key_mutations(&req) {
            let Mutation { label, wire, .. } = m;
            let answer = t.raw_as(&req, &wire, owner.cred()).await;
            p.note(line(&req, &wire, &label, &answer));
            if !answer.is_refusal() {
                problems.push(format!("{} [{label}] → {answer}", req.operation));
            }
        }
    }
    if let Some(changed) = signed_unchanged(t, p, &reader, &owner).await? {
        problems.push(changed);
    }
    let count_after = count(t, &owner).await?;
    p.note(format!(
        "prekey_count of {} before → after: {count_before:?} → {count_after:?} (one claimed by \
         the bundle read-back)",
        owner.label()
    ));
    if let (Some(b), Some(a)) = (count_before, count_after) {
        if a != b.saturating_sub(1) {
            problems.push(format!(
                "one-time prekey count went from {b} to {a} (expected {}: the read-back \
                 claimed one): something was stored, or the claim did not consume the key",
                b.saturating_sub(1)
            ));
        }
    }
    Ok(Verdict::from_problems(problems))
}

async fn count(t: &Target, owner: &Actor) -> Result<Option<u64>, Setup> {
    if !t.api.has(Capability::PrekeyCount) {
        return Ok(None);
    }
    Ok(Some(
        t.api
            .prekey_count(owner.cred())
            .await
            .during("prekey_count")?,
    ))
}
