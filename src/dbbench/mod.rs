//! `db-bench`: the database-level workload of a schema pack at several table sizes.
//!
//! For each scale (number of devices) it creates a fresh database, applies the pack's
//! migrations, loads the seed the pack's `workload.toml` describes, then runs the pack's
//! operations in the open model ([`runner`]) and reports percentiles per operation against the
//! budgets the seed document states ([`report`], [`chart`]). Format: `docs/workload.md`.

pub(crate) mod chart;
pub(crate) mod claims;
pub(crate) mod explain;
pub(crate) mod growth;
pub(crate) mod locks;
pub(crate) mod params;
pub mod report;
pub(crate) mod runner;
pub(crate) mod seed;
pub(crate) mod workload;

use std::path::PathBuf;
use std::time::Duration;

use crate::schema_pack::{self, SchemaPack};
use crate::Error;
pub use report::BenchReport;
pub(crate) use workload::Workload;

/// How to run a db-bench.
#[derive(Debug, Clone)]
pub struct Options {
    pub scales: Vec<u64>,
    pub duration: Duration,
    /// Progress lines on stderr.
    pub verbose: bool,
    /// Longest a migration, seed or workload statement may run (0: no limit).
    pub statement_timeout: Duration,
}

/// A pack and its workload, both read and validated before anything is started.
pub fn prepare(schema: &str) -> Result<(SchemaPack, Workload), Error> {
    let pack = SchemaPack::resolve(schema, &schema_pack::working_root()?)?;
    let path = pack.workload_path();
    if !path.is_file() {
        return Err(Error::BadPack(format!(
            "{}: the pack has no workload.toml, so there is nothing to bench",
            pack.dir.display()
        )));
    }
    let workload = workload::load(&path)?;
    Ok((pack, workload))
}

/// Runs every scale on `pg` and returns the report (not yet written).
pub async fn run(
    pg: &disposable_pg::Postgres,
    pack: &SchemaPack,
    workload: &Workload,
    options: &Options,
) -> Result<BenchReport, Error> {
    check_options(options)?;
    let mut scales = Vec::new();
    // From here a Ctrl-C finishes the current step and reports the scales measured so far.
    let measuring = crate::load::interrupt::Measuring::start();
    for &devices in &options.scales {
        if measuring.was_requested() {
            break;
        }
        scales.push(run_scale(pg, pack, workload, options, devices).await?);
    }
    let mut report = BenchReport {
        pack: pack.name.clone(),
        source: pack.dir.display().to_string(),
        workload: workload.path.display().to_string(),
        postgres: format!("{} ({})", pg.version(), pg.kind()),
        durable: pg.durable(),
        rate_per_second: workload.load.rate,
        connections: workload.load.connections,
        warmup_seconds: workload.load.warmup.as_secs_f64(),
        duration_seconds: options.duration.as_secs_f64(),
        growth: growth::analyse(&scales),
        scales,
        findings: Vec::new(),
        failures: Vec::new(),
        outcome: Default::default(),
        interrupted: measuring.was_requested(),
    };
    drop(measuring);
    crate::verdict::bench::judge(
        &mut report,
        workload.load.max_error_rate,
        options.scales.len(),
    );
    Ok(report)
}

/// Scales and duration that could not measure anything are refused before a database is made.
fn check_options(options: &Options) -> Result<(), Error> {
    if options.scales.is_empty() || options.scales.contains(&0) {
        return Err(Error::BadInput(
            "--scale: give one or more positive device counts, e.g. 1000,10000".into(),
        ));
    }
    if options.duration.is_zero() {
        return Err(Error::BadInput("--duration must be positive".into()));
    }
    Ok(())
}

/// One scale on a scratch database of its own, dropped afterwards whatever happened.
async fn run_scale(
    pg: &disposable_pg::Postgres,
    pack: &SchemaPack,
    workload: &Workload,
    options: &Options,
    devices: u64,
) -> Result<report::ScaleReport, Error> {
    let counts =
        workload::resolve_counts(&workload.seed.counts, devices).map_err(Error::BadInput)?;
    // The pack is untrusted code: it runs as the owner of a scratch database, nothing more.
    let sandbox = pg
        .create_sandbox(
            &format!("dbbench_{}_{devices}", sanitize(&pack.name)),
            options.statement_timeout,
        )
        .await?;
    let scale = Scale {
        pack,
        workload,
        options,
        devices,
    };
    let result = scale.measure(&sandbox.url, counts).await;
    // The database goes whatever happened; its error does not hide the run's.
    sandbox.drop().await;
    result
}

/// One scale of one pack's bench, for its phases and progress lines.
struct Scale<'a> {
    pack: &'a SchemaPack,
    workload: &'a Workload,
    options: &'a Options,
    devices: u64,
}

impl Scale<'_> {
    /// A progress line on stderr, when verbose.
    fn say(&self, what: std::fmt::Arguments) {
        if self.options.verbose {
            eprintln!(
                "db-bench {}: {} devices: {what}",
                self.pack.name, self.devices
            );
        }
    }

    /// Migrations, seed, each operation explained alone, then the workload run with the lock
    /// sampler watching, on the database at `url`.
    async fn measure(
        &self,
        url: &str,
        counts: std::collections::BTreeMap<String, u64>,
    ) -> Result<report::ScaleReport, Error> {
        let (workload, options) = (self.workload, self.options);
        let admin = disposable_pg::connect(url).await?;
        self.say(format_args!("applying migrations"));
        schema_pack::apply::apply_ups(&admin, self.pack).await?;
        self.say(format_args!("seeding {counts:?}"));
        let loaded = seed::load(&admin, workload, &counts).await?;
        self.say(format_args!(
            "seeded in {:.1} s; running {:?} + {:?} warm-up at {}/s",
            loaded.seconds, options.duration, workload.load.warmup, workload.load.rate
        ));
        self.say(format_args!("explaining each operation alone"));
        let costs = explain::measure(&admin, workload, &counts, workload.load.rng_seed).await?;
        let clients = workload_clients(url, workload.load.connections).await?;
        let sampler = locks::start(url, operation_sql(workload, &counts)).await?;
        let stats = runner::run(workload, clients, counts.clone(), options.duration).await;
        // The sampler stops whatever the run did; the run's error comes first.
        let locks = sampler.stop().await;
        let (stats, locks) = (stats?, locks?);
        let mut scale = report::ScaleReport::new(workload, self.devices, counts, loaded, &stats);
        (scale.costs, scale.locks) = (costs, locks);
        Ok(scale)
    }
}

/// One connection per worker, each named `<locks::APP_PREFIX><n>` so the lock sampler knows
/// the workload's backends from any other.
async fn workload_clients(url: &str, n: usize) -> Result<Vec<tokio_postgres::Client>, Error> {
    let mut clients = Vec::new();
    for i in 1..=n {
        let client = disposable_pg::connect(url).await?;
        client
            .batch_execute(&format!(
                "SET application_name = '{}{i}'",
                locks::APP_PREFIX
            ))
            .await
            .map_err(|e| Error::Unavailable(format!("setting application_name: {e}")))?;
        clients.push(client);
    }
    Ok(clients)
}

/// (name, SQL as the workers send it) of every operation at this scale.
fn operation_sql(
    workload: &Workload,
    counts: &std::collections::BTreeMap<String, u64>,
) -> Vec<(String, String)> {
    workload
        .operations
        .iter()
        .map(|o| (o.name.clone(), workload::substitute(&o.sql, counts)))
        .collect()
}

/// The default report directory: `reports/db-bench-<pack>-<UTC time>/`.
pub(crate) fn default_report_dir(pack: &str) -> PathBuf {
    crate::report::outdir::default_dir("db-bench-", &sanitize(pack))
}

fn sanitize(s: &str) -> String {
    s.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_lowercase()
            } else {
                '_'
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `--schema` means the same pack to db-bench as to conform.
    #[test]
    fn schema_resolves_as_conform_resolves_it() {
        let root = schema_pack::working_root().unwrap();
        for name in ["nchat", "scenarios/schemas/batch3"] {
            let (bench, _) = prepare(name).unwrap();
            let conform = SchemaPack::resolve(name, &root).unwrap();
            assert_eq!((bench.name, bench.dir), (conform.name, conform.dir));
        }
        let e = prepare("reference").unwrap_err();
        assert!(e.to_string().contains("no workload.toml"), "{e}");
    }
}
