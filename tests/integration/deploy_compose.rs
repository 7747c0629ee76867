//! `deploy/compose.yaml` for real: PostgreSQL, the reference server, three harness workers
//! (shards 1/3..3/3) and the merge step, in containers on a private network, with the harness
//! image built from this very test's binary. The three workers together must have run exactly
//! the scenario: every intended flow, each kind as often as the unsharded schedule draws it,
//! every message delivered and decrypted, no id shared between workers (checked in the
//! server's own database), and a merged report whose histograms are the union of theirs.
//! Everything is torn down afterwards, also when an assertion fails.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use e2ee_harness::load::mix::Mix;
use e2ee_harness::load::schedule::ArrivalSchedule;
use e2ee_harness::load::shard::{ArrivalDraws, Shard};
use e2ee_harness::report::json;
use e2ee_harness::report::model::{decode_histogram, new_histogram, RunReport};
use e2ee_harness::scenario::{FlowKind, Load, Scenario};

const WORKERS: u32 = 3;
/// The test's own image tag: built from this test's binary, so it tests this code.
const IMAGE: &str = "e2ee-harness/harness:test";
/// Longest any one compose command may take before the test gives up (and tears down).
const STEP_TIMEOUT_S: &str = "300";

/// 90 arrivals (15/s for 6 s, no warm-up: every flow is measured), initiate and converse
/// only, one device per user: each initiate sends 1 envelope and each converse 2 × 2.
const SCENARIO: &str = r#"
name = "sharded-check"
model = "open"
seed = 14
duration = "6s"
warmup = "0s"
drain = "15s"
message_size = 64
memory_probe_devices = 0
# The machine is shared with builds: the test judges what ran, not the schedule's punctuality.
max_late_starts = 1.0

[population]
users = 12
devices_per_user = 1
one_time_prekeys = 20
replenish_threshold = 4

[open]
rate = 15.0

[mix]
initiate = 1
converse = 1

[converse]
messages = 2
"#;

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// `docker-compose` (v1, Debian's) if installed, else the `docker compose` plugin.
fn compose_tool() -> Vec<String> {
    let ok = |program: &str, args: &[&str]| {
        Command::new(program)
            .args(args)
            .output()
            .is_ok_and(|o| o.status.success())
    };
    if ok("docker-compose", &["version"]) {
        vec!["docker-compose".into()]
    } else if ok("docker", &["compose", "version"]) {
        vec!["docker".into(), "compose".into()]
    } else {
        panic!("neither docker-compose nor `docker compose` is installed (Debian: apt-get install docker-compose)");
    }
}

fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

/// One compose project; `down -v` when dropped, whatever happened.
struct Project {
    tool: Vec<String>,
    name: String,
    env: Vec<(&'static str, String)>,
}

impl Project {
    /// A compose command of this project, bounded by [`STEP_TIMEOUT_S`].
    fn run(&self, args: &[&str]) -> Output {
        let mut cmd = Command::new("timeout");
        cmd.args(["--kill-after=10", STEP_TIMEOUT_S])
            .args(&self.tool)
            .args(["-p", &self.name, "-f"])
            .arg(repo().join("deploy/compose.yaml"))
            .args(args);
        for (k, v) in &self.env {
            cmd.env(k, v);
        }
        cmd.output().expect("running the compose tool")
    }

    fn container(&self, service: &str) -> String {
        let o = self.run(&["ps", "-q", service]);
        let id = String::from_utf8_lossy(&o.stdout).trim().to_string();
        assert!(!id.is_empty(), "no container for {service}: {}", text(&o));
        id
    }

    fn psql(&self, sql: &str) -> String {
        let o = self.run(&[
            "exec", "-T", "postgres", "psql", "-U", "harness", "-d", "harness", "-At", "-c", sql,
        ]);
        assert!(o.status.success(), "psql {sql}: {}", text(&o));
        String::from_utf8_lossy(&o.stdout).trim().to_string()
    }
}

/// Everything of compose project `name` that Docker still holds.
fn leftovers(name: &str) -> String {
    let filter = format!("label=com.docker.compose.project={name}");
    let mut out = String::new();
    for what in [
        &["ps", "-a", "-q", "--filter"][..],
        &["network", "ls", "-q", "--filter"][..],
        &["volume", "ls", "-q", "--filter"][..],
    ] {
        let o = Command::new("docker")
            .args(what)
            .arg(&filter)
            .output()
            .expect("docker");
        out.push_str(String::from_utf8_lossy(&o.stdout).trim());
    }
    out
}

impl Drop for Project {
    fn drop(&mut self) {
        let o = self.run(&["down", "-v", "--remove-orphans", "-t", "5"]);
        if !o.status.success() {
            eprintln!("compose down failed: {}", text(&o));
        }
    }
}

/// The harness image from this test's own binary (cached by the binary's hash).
fn build_image(scratch: &Path) {
    let bin = scratch.join("bin");
    std::fs::create_dir_all(&bin).unwrap();
    std::fs::copy(env!("CARGO_BIN_EXE_e2ee-harness"), bin.join("e2ee-harness")).unwrap();
    let o = Command::new("bash")
        .arg(repo().join("docker/harness/build-image.sh"))
        .arg("--bin-dir")
        .arg(&bin)
        .env("E2EE_HARNESS_IMAGE", IMAGE)
        .output()
        .unwrap();
    assert!(o.status.success(), "building {IMAGE}: {}", text(&o));
}

/// How many flows of each kind the unsharded schedule starts.
fn intended_kinds(s: &Scenario) -> (u64, BTreeMap<FlowKind, u64>) {
    let Load::Open(plan) = &s.load else {
        unreachable!()
    };
    let total = ArrivalSchedule::new(plan).total_arrivals();
    let mut draws = ArrivalDraws::new(s.seed, Mix::new(s.weights), None);
    let mut kinds = BTreeMap::new();
    for _ in 0..total {
        *kinds.entry(draws.next_flow().0).or_default() += 1;
    }
    (total, kinds)
}

#[test]
fn three_compose_workers_run_exactly_the_scenario_and_merge_exactly() {
    let scratch = tempfile::tempdir().unwrap();
    build_image(scratch.path());
    let (scenarios, reports) = (
        scratch.path().join("scenarios"),
        scratch.path().join("reports"),
    );
    std::fs::create_dir_all(&scenarios).unwrap();
    std::fs::create_dir_all(&reports).unwrap();
    std::fs::write(scenarios.join("sharded.toml"), SCENARIO).unwrap();

    let project = Project {
        tool: compose_tool(),
        name: format!("e2eeshard{}", std::process::id()),
        env: vec![
            ("E2EE_HARNESS_IMAGE", IMAGE.into()),
            (
                "E2EE_HARNESS_PG_IMAGE",
                disposable_pg::Options::image_for_tests(),
            ),
            ("E2EE_SCENARIOS", scenarios.display().to_string()),
            ("E2EE_SCENARIO", "sharded.toml".into()),
            ("E2EE_REPORTS", reports.display().to_string()),
            ("E2EE_START_LEAD", "8".into()),
        ],
    };
    let up = project.run(&["up", "-d"]);
    if !up.status.success() {
        let logs = project.run(&["logs", "--no-color", "--tail", "60"]);
        panic!("compose up failed: {}\nlogs:\n{}", text(&up), text(&logs));
    }
    let merge = project.container("merge");
    let waited = Command::new("timeout")
        .args([STEP_TIMEOUT_S, "docker", "wait", &merge])
        .output()
        .unwrap();
    let code = String::from_utf8_lossy(&waited.stdout).trim().to_string();
    if code != "0" {
        let logs = project.run(&["logs", "--no-color", "--tail", "60"]);
        panic!(
            "merge exited {code:?}\nup: {}\nlogs:\n{}",
            text(&up),
            text(&logs)
        );
    }

    let scenario = Scenario::parse(Path::new("sharded.toml"), SCENARIO).unwrap();
    let workers: Vec<RunReport> = (1..=WORKERS)
        .map(|i| json::read(&reports.join(format!("worker-{i}"))).unwrap())
        .collect();
    let merged = json::read(&reports.join("merged")).unwrap();
    assert_workers_are_their_shards(&workers, &scenario);
    assert_totals_are_the_scenarios(&merged, &scenario);
    assert_histograms_are_the_union(&merged, &workers);
    assert_no_id_is_shared(&project, &merged, &workers);

    let name = project.name.clone();
    drop(project);
    let left = leftovers(&name);
    assert!(left.is_empty(), "left behind by compose down: {left}");
}

fn assert_workers_are_their_shards(workers: &[RunReport], scenario: &Scenario) {
    let Load::Open(plan) = &scenario.load else {
        unreachable!()
    };
    let total = ArrivalSchedule::new(plan).total_arrivals();
    for (i, w) in (1..=WORKERS).zip(workers) {
        let s = w
            .shard
            .as_ref()
            .expect("a worker's report says it is a shard");
        assert_eq!((s.index, s.count, s.users), (i, WORKERS, 4), "{s:?}");
        let shard = Shard::new(i, WORKERS).unwrap();
        let own = (0..total).filter(|k| shard.owns_arrival(*k)).count() as u64;
        assert_eq!(w.generator.flows_intended, own, "worker {i}");
        let start = w
            .start_at
            .as_ref()
            .expect("the workers waited for --start-at");
        assert_eq!(start.at, workers[0].start_at.as_ref().unwrap().at);
    }
}

fn assert_totals_are_the_scenarios(merged: &RunReport, scenario: &Scenario) {
    let (total, kinds) = intended_kinds(scenario);
    let info = merged.merged.as_ref().expect("merge info");
    assert_eq!((info.workers, info.shards), (WORKERS, Some(WORKERS)));
    assert!(info.missing_shards.is_empty());
    assert!(
        !info.warnings.iter().any(|w| w.contains("do not overlap")),
        "{:?}",
        info.warnings
    );
    let g = &merged.generator;
    assert_eq!(g.flows_intended, total);
    // Every intended flow started (late or not) and none was cut off.
    assert_eq!(g.flows_started, total, "{g:?}");
    assert_eq!(g.flows_cancelled, 0);
    let mut sent = 0;
    for (kind, n) in &kinds {
        let op = &merged.operations[&format!("flow_{}", kind.name())];
        assert_eq!((op.count, op.errors), (*n, 0), "flow_{}", kind.name());
        sent += n * match kind {
            FlowKind::Initiate => 1,
            FlowKind::Converse => 2 * u64::from(scenario.converse_messages),
            other => panic!("{other:?} is not in the mix"),
        };
    }
    let i = &merged.integrity;
    assert!(i.is_clean(), "{i:?}");
    assert_eq!(
        (i.messages_sent, i.messages_delivered, i.messages_decrypted),
        (sent, sent, sent)
    );
    assert!(merged.passed, "{:?}", merged.failures);
}

fn assert_histograms_are_the_union(merged: &RunReport, workers: &[RunReport]) {
    for (name, op) in &merged.operations {
        let mut union = new_histogram();
        let mut count = 0;
        for w in workers {
            if let Some(o) = w.operations.get(name) {
                union.add(decode_histogram(&o.histogram).unwrap()).unwrap();
                count += o.count;
            }
        }
        assert_eq!(op.count, count, "{name}: merged count is the workers' sum");
        assert_eq!(
            op.p95_us,
            union.value_at_quantile(0.95),
            "{name}: p95 of the union"
        );
        assert_eq!(
            op.p99_us,
            union.value_at_quantile(0.99),
            "{name}: p99 of the union"
        );
        let recorded = |h: &hdrhistogram::Histogram<u64>| -> Vec<(u64, u64)> {
            h.iter_recorded()
                .map(|v| (v.value_iterated_to(), v.count_at_value()))
                .collect()
        };
        let m = decode_histogram(&op.histogram).unwrap();
        assert_eq!(
            recorded(&m),
            recorded(&union),
            "{name}: the merged histogram is the union"
        );
    }
}

/// The server's own tables: every device has its own identity key, every message id is
/// stored once, and each carries the shard of the worker that sent it.
fn assert_no_id_is_shared(project: &Project, merged: &RunReport, workers: &[RunReport]) {
    let devices: u64 = workers.iter().map(|w| w.generator.devices).sum();
    assert_eq!(
        project.psql("SELECT count(*) || ' ' || count(DISTINCT identity_key) FROM devices"),
        format!("{devices} {devices}")
    );
    assert_eq!(project.psql("SELECT count(*) FROM users"), "12");
    let sent = merged.integrity.messages_sent;
    assert_eq!(
        project.psql("SELECT count(*) || ' ' || count(DISTINCT message_id) FROM messages"),
        format!("{sent} {sent}")
    );
    let by_shard = project.psql(
        "SELECT get_byte(uuid_send(message_id), 0) * 256 + get_byte(uuid_send(message_id), 1), \
         count(*) FROM messages GROUP BY 1 ORDER BY 1",
    );
    let expected: Vec<String> = (1..=WORKERS)
        .zip(workers)
        .map(|(i, w)| format!("{i}|{}", w.integrity.messages_sent))
        .collect();
    assert_eq!(by_shard.lines().collect::<Vec<_>>(), expected);
}
