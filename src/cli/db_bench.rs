//! `e2ee-harness db-bench`: a schema pack's database-level workload at several scales.
//! The pack and its workload are read and checked before any PostgreSQL is started, so bad
//! input costs nothing and changes nothing.

use crate::cli::DbBenchArgs;
use crate::dbbench::{self, report};
use crate::verdict::bench::BenchOutcome;
use crate::{Error, Outcome};

pub(crate) async fn run(args: DbBenchArgs, quiet: bool) -> Result<Outcome, Error> {
    let schema = args.schema.clone();
    let (pack, workload) = crate::cli::off_thread(move || dbbench::prepare(&schema)).await?;
    let options = dbbench::Options {
        scales: args.scale.clone(),
        duration: args.duration,
        verbose: !quiet,
        statement_timeout: args.statement_timeout,
    };
    if options.scales.is_empty() || options.scales.contains(&0) {
        return Err(Error::BadInput(
            "--scale: give one or more positive device counts, e.g. 1000,10000".into(),
        ));
    }
    check_bounds(&options)?;
    let dir = args
        .report_dir
        .clone()
        .unwrap_or_else(|| dbbench::default_report_dir(&pack.name));
    crate::report::outdir::check(&dir, "report.json", args.force)?;
    let pg = crate::cli::start_db(&args.db, true, quiet).await?;
    let report = dbbench::run(&pg, &pack, &workload, &options).await?;
    drop(pg);
    report::write(&report, &dir)?;
    print!("{}", report::summary(&report));
    for f in &report.failures {
        println!("FAIL  {f}");
    }
    for f in &report.findings {
        println!("FINDING  {f}");
    }
    println!(
        "db-bench {}: {}  → {}",
        report.pack,
        match (report.failures.len(), report.findings.len()) {
            (0, 0) => "every budget held, nothing found".to_string(),
            (f, n) => format!("{f} failure(s), {n} finding(s)"),
        },
        dir.display()
    );
    if report.interrupted {
        return Err(Error::Interrupted);
    }
    Ok(if report.outcome == BenchOutcome::Pass {
        Outcome::Pass
    } else {
        Outcome::Failed
    })
}

/// Devices one scale may load: the seed inserts them (and their keys and messages) at once.
const MAX_SCALE: u64 = 10_000_000;

/// Absurd values are refused before PostgreSQL starts (exit 2), naming the flag and bound.
fn check_bounds(options: &dbbench::Options) -> Result<(), Error> {
    if let Some(s) = options.scales.iter().find(|s| **s > MAX_SCALE) {
        return Err(Error::BadInput(format!(
            "--scale: {s} devices is above the bound of {MAX_SCALE}"
        )));
    }
    let max = crate::scenario::limits::MAX_DURATION;
    if options.duration > max || options.duration.is_zero() {
        return Err(Error::BadInput(format!(
            "--duration must be above 0 and at most {}, got {}",
            crate::scenario::limits::show(max),
            humantime::format_duration(options.duration)
        )));
    }
    Ok(())
}
