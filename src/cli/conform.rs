//! `e2ee-harness conform --target URL`: protocol conformance of a running server
//! ([`conform::target`]).
//!
//! `e2ee-harness conform --schema <pack>`: schema conformance on a disposable PostgreSQL, or
//! on several PostgreSQL images at once (`--db docker --pg-image A --pg-image B`), one report
//! per version plus what differs between them. The pack is read and validated before any
//! database starts, so a bad pack exits 2 without side effects.

use std::path::Path;

use crate::cli::ConformArgs;
use crate::conform::versions::{self, VersionRun};
use crate::conform::{self, expect::Expect, outcome::ConformReport, report};
use crate::report::outdir;
use crate::schema_pack::SchemaPack;
use crate::{Error, Outcome};

pub(crate) async fn run(args: ConformArgs) -> Result<Outcome, Error> {
    match (&args.schema, &args.target) {
        (Some(schema), None) => {
            let schema = schema.clone();
            run_schema(args, schema).await
        }
        (None, Some(target)) => {
            let target = target.clone();
            run_target(args, &target).await
        }
        _ => Err(Error::BadInput(
            "conform takes exactly one of --schema PACK and --target URL".into(),
        )),
    }
}

/// `conform --target URL [--api NAME]`: the protocol suite against a running server. The
/// URL, the report directory and the server's API are checked before any check runs.
async fn run_target(args: ConformArgs, target: &str) -> Result<Outcome, Error> {
    crate::cli::run::check_target_url(target)?;
    let dialect = args.api.unwrap_or(crate::client::Dialect::Reference);
    let dir = args
        .report_dir
        .clone()
        .unwrap_or_else(|| outdir::default_dir("conform-target-", dialect.name()));
    outdir::check(&dir, "conform.json", args.force)?;
    let api = dialect
        .client(target, conform::target::REQUEST_TIMEOUT)
        .map_err(|e| Error::BadInput(format!("--target {target}: {e}")))?;
    conform::target::preflight(api.as_ref()).await?;
    eprintln!("conform --target {target}: the {dialect} API");
    let report = conform::target::run(api.clone()).await?;
    let json = conform::target::json(&report, api.as_ref());
    report::write_parts(&dir, &report::junit(&report), &json)?;
    print!("{}", report::text(&report, Some(&dir)));
    Ok(report.outcome())
}

async fn run_schema(args: ConformArgs, schema: String) -> Result<Outcome, Error> {
    let root = crate::schema_pack::working_root()?;
    let (pack, expect) =
        crate::cli::off_thread(move || conform::load(SchemaPack::resolve(&schema, &root)?)).await?;
    let per_image = args.db.options_per_image(false)?;
    let dir = args
        .report_dir
        .clone()
        .unwrap_or_else(|| outdir::default_dir("conform-", &pack.name));
    outdir::check(&dir, "conform.json", args.force)?;
    if let [options] = per_image.as_slice() {
        let report = conform_on(options, &pack, &expect, args.statement_timeout).await?;
        return write_and_print(&report, &dir);
    }
    let mut runs = Vec::new();
    let mut outcome = Outcome::Pass;
    for options in &per_image {
        let report = conform_on(options, &pack, &expect, args.statement_timeout).await?;
        let o = write_and_print(&report, &dir.join(versions::dir_name(&options.image)))?;
        if o != Outcome::Pass {
            outcome = o;
        }
        runs.push(VersionRun {
            image: options.image.clone(),
            report,
        });
    }
    outdir::write_json(
        &dir,
        "versions.json",
        &versions::json(&runs, outcome.code()),
    )?;
    print!("{}", versions::text(&runs));
    Ok(outcome)
}

/// Starts the PostgreSQL `options` name, conforms the pack on it, and stops it.
async fn conform_on(
    options: &disposable_pg::Options,
    pack: &SchemaPack,
    expect: &Expect,
    timeout: std::time::Duration,
) -> Result<ConformReport, Error> {
    let pg = crate::cli::start_database(options, false).await?;
    eprintln!(
        "conform {}: {} migrations",
        pack.name,
        pack.migrations.len()
    );
    let report = conform::run_with_timeout(&pg, pack, expect, timeout).await?;
    drop(pg);
    Ok(report)
}

fn write_and_print(report: &ConformReport, dir: &Path) -> Result<Outcome, Error> {
    report::write(report, dir)?;
    print!("{}", report::text(report, Some(dir)));
    Ok(report.outcome())
}
