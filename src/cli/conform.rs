//! `e2ee-harness conform --schema <pack>`: schema conformance on a disposable PostgreSQL.
//! The pack is read and validated before any database starts, so a bad pack exits 2 without
//! side effects.

use std::path::PathBuf;

use crate::cli::ConformArgs;
use crate::conform::{self, pack::Pack, report};
use crate::{Error, Outcome};

pub async fn run(args: ConformArgs) -> Result<Outcome, Error> {
    let root = std::env::current_dir().map_err(|e| Error::Io {
        path: PathBuf::from("."),
        source: e,
    })?;
    let (pack, expect) = conform::load(Pack::resolve(&args.schema, &root)?)?;
    let options = args.db.options(false)?;
    let pg = crate::cli::start_database(&options, false).await?;
    eprintln!(
        "conform {}: {} migrations",
        pack.name,
        pack.migrations.len()
    );
    let report = conform::run(&pg, &pack, &expect).await?;
    drop(pg);
    let dir = args.report_dir.unwrap_or_else(|| {
        PathBuf::from("reports").join(format!(
            "conform-{}-{}",
            pack.name,
            chrono::Utc::now().format("%Y%m%dT%H%M%SZ")
        ))
    });
    report::write(&report, &dir)?;
    print!("{}", report::text(&report, Some(&dir)));
    Ok(report.outcome())
}
