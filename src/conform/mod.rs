//! Schema conformance: apply a pack's migrations to a disposable PostgreSQL and prove what
//! the schema promises (docs/conformance.md).
//!
//! Flow: [`crate::schema_pack`] + [`expect`] (input) → [`migrations`] (database A: apply, apply again,
//! rollback; database B: preservation) → on database C with every migration applied:
//! [`catalog`] snapshot → [`assertions`], [`hazards`], [`probes`] (using [`rowgen`] and
//! [`checkexpr`]), then [`behaviour`] → [`outcome`] → [`report`].

pub(crate) mod assertions;
pub(crate) mod behaviour;
pub(crate) mod catalog;
pub(crate) mod checkexpr;
pub(crate) mod expect;
pub(crate) mod hazards;
pub(crate) mod index_key;
pub(crate) mod migrations;
pub mod outcome;
pub(crate) mod probes;
pub mod report;
pub(crate) mod rowgen;
pub(crate) mod rules;
pub(crate) mod target;
pub(crate) mod versions;

use std::time::Duration;

use disposable_pg::Postgres;

use crate::conform::catalog::Catalog;
use crate::conform::expect::Expect;
use crate::conform::outcome::{Check, ConformReport, Kind, Status};
use crate::schema_pack::SchemaPack;
use crate::Error;

/// Loads a pack and its expectations; every problem is a bad pack (exit 2), found before any
/// database is touched.
pub fn load(pack: SchemaPack) -> Result<(SchemaPack, Expect), Error> {
    let expect = Expect::load(&pack.expect_path)?;
    for s in &expect.seed {
        let before = s.get_ref().before;
        if !pack.migrations.iter().any(|m| m.number == before) {
            return Err(Error::BadPack(format!(
                "{}: [[seed]] before = {before}: no up migration has that number",
                expect.at(s.span())
            )));
        }
    }
    Ok((pack, expect))
}

/// How long one statement of a pack (a migration statement, a check's SQL) may run before
/// PostgreSQL cancels it. A normal pack's statements take milliseconds.
pub(crate) const DEFAULT_STATEMENT_TIMEOUT: Duration = Duration::from_secs(60);

/// A fresh database on `pg`, owned by a role of its own without other privileges (the pack is
/// untrusted code: docs/conformance.md, "Trust model"), dropped when the run ends.
pub(crate) struct Scratch {
    sandbox: disposable_pg::Sandbox,
}

impl Scratch {
    async fn create(pg: &Postgres, label: &str, timeout: Duration) -> Result<Scratch, Error> {
        let sandbox = pg
            .create_sandbox(&format!("conform_{label}"), timeout)
            .await?;
        Ok(Scratch { sandbox })
    }

    pub(crate) fn url(&self) -> &str {
        &self.sandbox.url
    }

    /// A copy of this database (which must have no open connection), for probes that must
    /// start clean or break objects; owned by the same sandbox role.
    pub(crate) async fn copy(&self) -> Result<Scratch, Error> {
        Ok(Scratch {
            sandbox: self.sandbox.copy().await?,
        })
    }

    async fn connect(&self) -> Result<tokio_postgres::Client, Error> {
        Ok(disposable_pg::connect(self.url()).await?)
    }

    async fn drop(self) {
        self.sandbox.drop().await;
    }
}

/// Runs every check of a loaded pack on `pg` with the default statement timeout.
pub async fn run(
    pg: &Postgres,
    pack: &SchemaPack,
    expect: &Expect,
) -> Result<ConformReport, Error> {
    run_with_timeout(pg, pack, expect, DEFAULT_STATEMENT_TIMEOUT).await
}

/// Runs every check of a loaded pack on `pg`. `Err` only for a bad pack (an up migration
/// that does not apply on a fresh database) or missing infrastructure. Every statement of
/// the pack is cut after `timeout`.
pub(crate) async fn run_with_timeout(
    pg: &Postgres,
    pack: &SchemaPack,
    expect: &Expect,
    timeout: Duration,
) -> Result<ConformReport, Error> {
    let mut checks = Vec::new();

    // A: the migration sequence. A bad pack stops everything here.
    let a = Scratch::create(pg, "a", timeout).await?;
    let result = async {
        let client = a.connect().await?;
        migrations::check_sequence(&client, pack, expect).await
    }
    .await;
    a.drop().await;
    checks.extend(result?);

    // B: data preservation.
    let b = Scratch::create(pg, "b", timeout).await?;
    let result = async {
        let client = b.connect().await?;
        Ok::<_, Error>(migrations::check_preservation(&client, pack, expect).await)
    }
    .await;
    b.drop().await;
    checks.extend(result?);

    // C: the final schema.
    let c = Scratch::create(pg, "c", timeout).await?;
    let result = async {
        let client = c.connect().await?;
        apply_all(&client, pack, expect).await?;
        let cat = Catalog::read(&client).await.map_err(Error::Unavailable)?;
        let mut out = assertions::run(&client, &cat, expect).await;
        out.extend(hazards::run(&cat));
        let exclude: Vec<_> = migrations::migrations_table(&cat, expect)
            .map(|(t, _)| t)
            .into_iter()
            .collect();
        out.extend(probes::run(&client, &cat, &exclude).await);
        let behaviour = behaviour::run(&client, c.url(), expect).await;
        // The rules run last: they read the final state and copy a fresh schema for probes
        // that must start clean or break objects.
        let ctx = rules::Context {
            pg,
            pack,
            expect,
            cat: &cat,
            client: &client,
            behaviour: &behaviour,
            timeout,
        };
        let found = rules::run(&ctx).await?;
        out.extend(behaviour);
        out.extend(found);
        Ok::<_, Error>(out)
    }
    .await;
    c.drop().await;
    checks.extend(result?);

    apply_waivers(&mut checks, expect);
    checks.sort_by_key(|c| c.kind);
    Ok(ConformReport {
        pack: pack.name.clone(),
        source: pack.dir.display().to_string(),
        postgres: format!("{} ({})", pg.version(), pg.kind()),
        checks,
    })
}

/// The final schema: the migrations table as the pack expects it, then every up migration
/// in order. A migration that does not apply on a fresh database makes the pack bad.
pub(crate) async fn apply_all(
    client: &tokio_postgres::Client,
    pack: &SchemaPack,
    expect: &Expect,
) -> Result<(), Error> {
    migrations::setup(client, expect).await?;
    for m in &pack.migrations {
        migrations::apply_migration(client, m, expect)
            .await
            .map_err(|f| crate::schema_pack::apply::not_applied(m, f))?;
    }
    Ok(())
}

/// Marks waived findings; a waiver that matches nothing fails (stale waivers hide regressions).
fn apply_waivers(checks: &mut Vec<Check>, expect: &Expect) {
    for w in &expect.waive {
        let wv = w.get_ref();
        let mut hit = false;
        for c in checks.iter_mut() {
            if c.status == Status::Finding
                && c.rule.as_deref() == Some(wv.rule.as_str())
                && c.object.as_deref() == Some(wv.object.as_str())
            {
                c.status = Status::Waived;
                c.detail = format!(
                    "{} — waived ({}): {}",
                    c.detail,
                    expect.at(w.span()),
                    wv.reason
                );
                hit = true;
            }
        }
        if !hit {
            let kind = if wv.rule.starts_with("probe.") {
                Kind::Probes
            } else if wv.rule.starts_with("detect.") {
                Kind::Detection
            } else if wv.rule.starts_with("policy.") {
                Kind::Policy
            } else {
                Kind::Hazards
            };
            checks.push(Check::fail(
                kind,
                format!("waiver {} {}", wv.rule, wv.object),
                format!(
                    "{}: the waiver matches no finding; remove it",
                    expect.at(w.span())
                ),
            ));
        }
    }
}
