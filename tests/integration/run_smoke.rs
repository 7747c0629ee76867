//! `scenarios/smoke.toml` (open model) and `scenarios/smoke-closed.toml` (closed model, goose)
//! against the real reference server on a real PostgreSQL, asserting counts and integrity,
//! never timings.

use crate::common::hlog;
use crate::common::run as common;

use e2ee_harness::client::Dialect;
use e2ee_harness::load::{self, RunContext};
use e2ee_harness::metrics::progress::Mode;
use e2ee_harness::report::model::Environment;
use e2ee_harness::scenario::Scenario;

fn environment(target: &str) -> Environment {
    Environment {
        db_provider: "local".into(),
        postgres_version: Some(disposable_pg::shared_for_tests().version().to_string()),
        durable: Some(false),
        target: target.into(),
        bundled_server: true,
        server_in_child: false,
        cpus: 0,
        harness_version: "test".into(),
        platform: "test".into(),
        hostname: None,
        machine: None,
    }
}

async fn run(file: &str) -> (e2ee_harness::report::Report, tempfile::TempDir) {
    let server = common::server().await;
    let scenario = Scenario::load(&common::scenario(file)).unwrap_or_else(|e| panic!("{e}"));
    let dir = tempfile::tempdir().unwrap();
    let api = Dialect::Reference
        .client(&server.base_url(), std::time::Duration::from_secs(30))
        .unwrap();
    let report = load::execute(
        &scenario,
        RunContext {
            api,
            environment: environment(&server.base_url()),
            progress: Mode::Quiet,
            report_dir: dir.path(),
            shard: None,
            start_at: None,
        },
    )
    .await
    .unwrap_or_else(|e| panic!("the run failed: {e}"));
    server.shutdown().await;
    let mut report = report;
    e2ee_harness::verdict::judge(&mut report);
    // The report survives a round trip through report.json.
    let path = e2ee_harness::report::json::write(dir.path(), &report).unwrap();
    assert_eq!(e2ee_harness::report::json::read(&path).unwrap(), report);
    (report, dir)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn smoke_open_model_measures_every_operation_and_loses_nothing() {
    let (report, _dir) = run("smoke.toml").await;
    common::assert_smoke_report(&report);
    let g = &report.generator;
    assert_eq!(g.model, "open");
    // Every flow the schedule intended in the window was started (late or not).
    assert_eq!(g.flows_started, g.flows_intended);
    assert_eq!(g.flows_cancelled, 0);
    assert!(g.memory_per_ws_device_bytes > 0 && g.ws_probe_devices > 0);
    // Every percentile in report.json is what HdrHistogram reads from latency.hlog.
    let files = e2ee_harness::report::write_report_dir(_dir.path(), &report).unwrap();
    hlog::assert_percentiles_match(&report, &std::fs::read(files.hlog).unwrap());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn smoke_closed_model_runs_on_goose_and_writes_its_report() {
    let (report, dir) = run("smoke-closed.toml").await;
    common::assert_smoke_report(&report);
    assert_eq!(report.generator.model, "closed");
    let goose = report
        .generator
        .goose_report
        .as_deref()
        .expect("goose report named");
    let html =
        std::fs::read_to_string(dir.path().join(goose)).expect("goose's report next to ours");
    // Goose's report lists our non-HTTP steps as custom request records.
    assert!(
        html.contains("ws_connect") && html.contains("message_insert"),
        "goose report lacks our steps"
    );
}
