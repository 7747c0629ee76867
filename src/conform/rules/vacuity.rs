//! `detect.vacuous_verification`: a pack's verification or smoke-test query that names a
//! trigger, index or constraint is re-run on a copy of the schema where that object is
//! dropped, after replaying every behaviour assertion before it in file order. A query that
//! still passes does not verify the object it names.

use crate::conform::behaviour;
use crate::conform::catalog::{quote_ident, Catalog, QualName};
use crate::conform::expect::Behaviour;
use crate::conform::outcome::{Check, Kind, Status};
use crate::conform::rules::{Context, Template};
use crate::Error;

const K: Kind = Kind::Detection;
pub(crate) const RULE: &str = "detect.vacuous_verification";

/// Bounds the copies made per pack (each replays the behaviour assertions).
const MAX_CANDIDATES: usize = 24;

/// An object a query names, and how to break it.
#[derive(Debug, Clone)]
struct Target {
    label: String,
    drop_sql: String,
}

pub(crate) async fn run(ctx: &Context<'_>, template: &Template) -> Result<Vec<Check>, Error> {
    let mut out = Vec::new();
    let mut budget = MAX_CANDIDATES;
    for (i, (at, b)) in ctx.expect.behaviours().into_iter().enumerate() {
        let Behaviour::Query(q) = b else { continue };
        // `expect.toml:LINE:COLUMN`, so a waiver's object does not depend on where the pack is.
        let at = at.rsplit('/').next().unwrap_or(&at).to_string();
        // Only a query that holds on the intact schema can be vacuous.
        if ctx.behaviour.get(i).map(|c| c.status) != Some(Status::Pass) {
            continue;
        }
        let text = format!("{} {}", q.name.clone().unwrap_or_default(), q.sql);
        for target in named_objects(ctx.cat, &text) {
            if budget == 0 {
                out.push(Check::skip(
                    K,
                    format!("{RULE} {at}: {}", target.label),
                    format!("more than {MAX_CANDIDATES} named objects; the rest were not broken"),
                ));
                continue;
            }
            budget -= 1;
            out.push(break_and_rerun(ctx, template, i, &at, &target).await?);
        }
    }
    Ok(out)
}

/// Triggers, indexes and constraints whose names occur in `text` as whole identifiers.
fn named_objects(cat: &Catalog, text: &str) -> Vec<Target> {
    let words: std::collections::BTreeSet<String> = text
        .split(|c: char| !(c.is_alphanumeric() || c == '_'))
        .filter(|w| !w.is_empty())
        .map(str::to_lowercase)
        .collect();
    let named = |n: &str| words.contains(&n.to_lowercase());
    let mut out = Vec::new();
    for rel in cat.relations.values() {
        let t = rel.name.sql();
        for tr in rel.triggers.iter().filter(|tr| named(&tr.name)) {
            out.push(Target {
                label: format!("trigger {} on {}", tr.name, rel.name.short()),
                drop_sql: format!("DROP TRIGGER {} ON {t}", quote_ident(&tr.name)),
            });
        }
        for con in rel.constraints.iter().filter(|c| named(&c.name)) {
            out.push(Target {
                label: format!("constraint {} on {}", con.name, rel.name.short()),
                drop_sql: format!(
                    "ALTER TABLE {t} DROP CONSTRAINT {} CASCADE",
                    quote_ident(&con.name)
                ),
            });
        }
        for idx in rel.indexes.iter().filter(|i| named(&i.name)) {
            if rel.constraints.iter().any(|c| c.name == idx.name) {
                continue; // broken through its constraint
            }
            let q = QualName::new(&rel.name.schema, &idx.name);
            out.push(Target {
                label: format!("index {} on {}", idx.name, rel.name.short()),
                drop_sql: format!("DROP INDEX {} CASCADE", q.sql()),
            });
        }
    }
    out
}

async fn break_and_rerun(
    ctx: &Context<'_>,
    template: &Template,
    index: usize,
    at: &str,
    target: &Target,
) -> Result<Check, Error> {
    let name = format!("{RULE} {at}: {}", target.label);
    let copy = template.clone_db("v").await?;
    let verdict = async {
        let client = copy.connect().await?;
        if let Err(e) = client.batch_execute(&target.drop_sql).await {
            return Ok::<_, Error>(Err(format!("{}: {e}", target.drop_sql)));
        }
        let checks = behaviour::run_until(&client, copy.url(), ctx.expect, index).await;
        Ok(Ok(checks.get(index).cloned()))
    }
    .await;
    copy.drop().await;
    Ok(match verdict? {
        Err(e) => Check::skip(K, name, format!("the object could not be dropped: {e}")),
        Ok(Some(c)) if c.status == Status::Pass => Check::finding(
            K,
            RULE,
            format!("{at}: {}", target.label),
            format!(
                "{} still passes with {} dropped (every assertion before it replayed on a fresh copy): it does not verify what it names",
                c.name, target.label
            ),
            format!("{};\n-- then the behaviour assertions up to {at}, in file order", target.drop_sql),
        ),
        Ok(Some(c)) => Check::pass(K, name).with_detail(format!(
            "with {} dropped it no longer holds: {}",
            target.label, c.detail
        )),
        Ok(None) => Check::skip(K, name, "the query was not re-run"),
    })
}
