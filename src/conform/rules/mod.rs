//! Rules that find what a schema gets wrong without being told (docs/conformance.md section
//! 6): behaviour detections that run the schema (a session-dependent default, a one-time
//! prekey handed out twice, a trigger that serializes writers, a verification that cannot
//! fail) and E2EE policy rules read from the catalog. [`RULES`] is the documented list; a
//! test keeps docs/conformance.md in step with it.

mod interleave;
mod names;
mod otpk;
mod policy;
mod session_default;
mod vacuity;
mod writer_locks;

use std::time::Duration;

use disposable_pg::Postgres;
use tokio_postgres::Client;

use crate::conform::catalog::Catalog;
use crate::conform::expect::Expect;
use crate::conform::outcome::{Check, Kind, Status};
use crate::conform::Scratch;
use crate::schema_pack::SchemaPack;
use crate::Error;

/// One documented rule.
pub(crate) struct Rule {
    pub(crate) id: &'static str,
    pub(crate) kind: Kind,
    /// What it proves, in one line (the full text is in docs/conformance.md).
    #[cfg_attr(not(test), allow(dead_code))] // the rule list's own documentation
    pub(crate) doc: &'static str,
}

pub(crate) const RULES: &[Rule] = &[
    Rule {
        id: otpk::RULE,
        kind: Kind::Detection,
        doc: "a one-time prekey reaches two concurrent fetchers of the same device",
    },
    Rule {
        id: session_default::RULE,
        kind: Kind::Detection,
        doc: "a column default stores a different value under another TimeZone or DateStyle",
    },
    Rule {
        id: writer_locks::RULE,
        kind: Kind::Detection,
        doc: "a second concurrent insert into a table with triggers waits for the first",
    },
    Rule {
        id: vacuity::RULE,
        kind: Kind::Detection,
        doc: "a verification query keeps its verdict when the object it names is dropped",
    },
    Rule {
        id: "policy.no_private_keys",
        kind: Kind::Policy,
        doc: "the server holds private or ratchet key material",
    },
    Rule {
        id: "policy.no_plaintext_beside_ciphertext",
        kind: Kind::Policy,
        doc: "a ciphertext table also accepts the plaintext",
    },
    Rule {
        id: "policy.per_device_addressing",
        kind: Kind::Policy,
        doc: "message ciphertext without a recipient device",
    },
    Rule {
        id: "policy.key_length",
        kind: Kind::Policy,
        doc: "public key material or a signature without a length CHECK",
    },
    Rule {
        id: "policy.keys_vanish_with_device",
        kind: Kind::Policy,
        doc: "key material that survives its device's removal",
    },
    Rule {
        id: "policy.one_time_prekey_unique",
        kind: Kind::Policy,
        doc: "one-time prekeys not unique per device and key id",
    },
    Rule {
        id: "policy.signed_prekey_signature",
        kind: Kind::Policy,
        doc: "a signed prekey stored without a required signature",
    },
];

/// Everything a rule needs: the final schema on database C (after the behaviour
/// assertions), and a template database with the migrations only, to clone for probes that
/// must start clean or break things.
pub(crate) struct Context<'a> {
    pub(crate) pg: &'a Postgres,
    pub(crate) pack: &'a SchemaPack,
    pub(crate) expect: &'a Expect,
    pub(crate) cat: &'a Catalog,
    pub(crate) client: &'a Client,
    /// Behaviour checks of database C, in file order.
    pub(crate) behaviour: &'a [Check],
    /// Every statement of the pack is cut after this (see `conform::DEFAULT_STATEMENT_TIMEOUT`).
    pub(crate) timeout: Duration,
}

/// Runs every rule; a rule with no finding prints one PASS line.
pub(crate) async fn run(ctx: &Context<'_>) -> Result<Vec<Check>, Error> {
    let mut found = session_default::run(ctx.client, ctx.cat).await;
    found.extend(policy::run(ctx.cat));
    found.extend(otpk::static_views(ctx.cat));
    let template = Template::create(ctx.pg, ctx.pack, ctx.expect, ctx.timeout).await?;
    let result = async {
        let mut out = otpk::claims(ctx, &template).await?;
        out.extend(writer_locks::run(ctx, &template).await?);
        out.extend(vacuity::run(ctx, &template).await?);
        Ok::<_, Error>(out)
    }
    .await;
    template.drop().await;
    found.extend(result?);
    Ok(summarise(found))
}

/// One PASS line per rule without findings; findings and skips as they are.
fn summarise(found: Vec<Check>) -> Vec<Check> {
    let mut out = Vec::new();
    for rule in RULES {
        let mine: Vec<Check> = found
            .iter()
            .filter(|c| {
                c.rule.as_deref() == Some(rule.id)
                    || (c.rule.is_none() && c.name.starts_with(rule.id))
            })
            .cloned()
            .collect();
        if !mine.iter().any(|c| c.status == Status::Finding) {
            out.push(Check::pass(rule.kind, format!("{}: none", rule.id)));
        }
        out.extend(mine);
    }
    out
}

/// A database with the pack's migrations applied and no connection left open, so that
/// `CREATE DATABASE … TEMPLATE` can copy it in one step per probe. Copies belong to the same
/// sandbox role as the template (the pack's code runs in them too).
pub(crate) struct Template {
    scratch: Scratch,
}

impl Template {
    async fn create(
        pg: &Postgres,
        pack: &SchemaPack,
        expect: &Expect,
        timeout: Duration,
    ) -> Result<Template, Error> {
        let scratch = Scratch::create(pg, "t", timeout).await?;
        let applied = async {
            let client = scratch.connect().await?;
            crate::conform::apply_all(&client, pack, expect).await
        }
        .await;
        if let Err(e) = applied {
            scratch.drop().await;
            return Err(e);
        }
        Ok(Template { scratch })
    }

    /// A fresh copy. The template's last connection may still be closing on the server, so
    /// a "being accessed by other users" refusal is retried a few times.
    pub(crate) async fn clone_db(&self, _label: &str) -> Result<Scratch, Error> {
        let mut last = None;
        for _ in 0..50 {
            match self.scratch.copy().await {
                Ok(s) => return Ok(s),
                Err(e) => last = Some(e),
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        Err(last.unwrap_or_else(|| Error::Unavailable("cannot copy the template".into())))
    }

    async fn drop(self) {
        self.scratch.drop().await;
    }
}

#[cfg(test)]
mod tests {
    use super::RULES;

    #[test]
    fn every_rule_is_documented_once() {
        let doc = include_str!("../../../docs/conformance.md");
        for r in RULES {
            assert!(
                doc.contains(&format!("`{}`", r.id)),
                "{} is not in docs/conformance.md",
                r.id
            );
            assert!(
                !r.doc.is_empty() && !r.doc.contains('\n'),
                "{}: its doc is one line",
                r.id
            );
        }
        let mut ids: Vec<_> = RULES.iter().map(|r| r.id).collect();
        ids.sort();
        ids.dedup();
        assert_eq!(ids.len(), RULES.len(), "duplicate rule ids");
        assert!(RULES.iter().filter(|r| r.id.starts_with("policy.")).count() >= 6);
        // And the reverse: every rule the docs' tables list is one of RULES.
        for row in doc.lines() {
            let Some(id) = row
                .strip_prefix("| `")
                .and_then(|r| r.split('`').next())
                .filter(|id| id.starts_with("detect.") || id.starts_with("policy."))
            else {
                continue;
            };
            assert!(
                RULES.iter().any(|r| r.id == id),
                "{id} is documented but not in RULES"
            );
        }
    }
}
