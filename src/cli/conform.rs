//! `e2ee-harness conform --schema <pack>`: schema conformance on a disposable PostgreSQL, or
//! on several PostgreSQL images at once (`--db docker --pg-image A --pg-image B`), one report
//! per version plus what differs between them. The pack is read and validated before any
//! database starts, so a bad pack exits 2 without side effects.

use std::path::{Path, PathBuf};

use crate::cli::ConformArgs;
use crate::conform::versions::{self, VersionRun};
use crate::conform::{self, expect::Expect, outcome::Report, pack::Pack, report};
use crate::report::outdir;
use crate::{Error, Outcome};

pub async fn run(args: ConformArgs) -> Result<Outcome, Error> {
    let root = std::env::current_dir().map_err(|e| Error::Io {
        path: PathBuf::from("."),
        source: e,
    })?;
    let schema = args.schema.clone();
    let (pack, expect) =
        crate::cli::off_thread(move || conform::load(Pack::resolve(&schema, &root)?)).await?;
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
    let path = dir.join("versions.json");
    let body =
        serde_json::to_string_pretty(&versions::json(&runs, outcome.code())).unwrap_or_default();
    std::fs::write(&path, body + "\n").map_err(|e| Error::Io { path, source: e })?;
    print!("{}", versions::text(&runs));
    Ok(outcome)
}

/// Starts the PostgreSQL `options` name, conforms the pack on it, and stops it.
async fn conform_on(
    options: &disposable_pg::Options,
    pack: &Pack,
    expect: &Expect,
    timeout: std::time::Duration,
) -> Result<Report, Error> {
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

fn write_and_print(report: &Report, dir: &Path) -> Result<Outcome, Error> {
    report::write(report, dir)?;
    print!("{}", report::text(report, Some(dir)));
    Ok(report.outcome())
}
