use std::path::Path;
use std::time::Duration;

use super::*;

const GOOD: &str = r#"
name = "t"
model = "open"
seed = 7
duration = "20s"
warmup = "5s"

[population]
users = 10
devices_per_user = 2
one_time_prekeys = 20
replenish_threshold = 5

[open]
rate = 12.5

[mix]
initiate = 2
converse = 3

[budgets]
bundle_fetch = { p95 = "10ms", "p99.9" = "50ms" }
"#;

fn parse(text: &str) -> Result<Scenario, ScenarioError> {
    Scenario::parse(Path::new("s.toml"), text)
}

fn err(text: &str) -> String {
    parse(text).unwrap_err().to_string()
}

#[test]
fn a_good_file_parses() {
    let s = parse(GOOD).unwrap();
    assert_eq!(s.name, "t");
    assert_eq!(s.seed, 7);
    assert_eq!(s.duration, Duration::from_secs(20));
    assert_eq!(s.warmup, Duration::from_secs(5));
    assert_eq!(s.weight(FlowKind::Converse), 3);
    assert_eq!(s.weight(FlowKind::Register), 0);
    let Load::Open(plan) = &s.load else {
        panic!("open")
    };
    assert_eq!(plan.mean_rate(), 12.5);
    assert_eq!(s.budgets.len(), 2);
    assert!(s
        .budgets
        .iter()
        .any(|b| b.label == "p99.9" && b.limit_us == 50_000));
}

#[test]
fn unknown_key_names_line_and_column() {
    let text = GOOD.replace("seed = 7", "seed = 7\nsede = 8");
    let e = err(&text);
    assert!(e.starts_with("s.toml:5:1: "), "{e}");
    assert!(e.contains("unknown field `sede`"), "{e}");
}

#[test]
fn wrong_type_names_line_and_column() {
    let e = err(&GOOD.replace("users = 10", "users = \"ten\""));
    assert!(e.starts_with("s.toml:9:9: "), "{e}");
    assert!(
        e.contains("expected u32") || e.contains("invalid type"),
        "{e}"
    );
}

#[test]
fn negative_rate_is_refused_where_it_is() {
    let e = err(&GOOD.replace("rate = 12.5", "rate = -3.0"));
    assert!(e.starts_with("s.toml:15:8: "), "{e}");
    assert!(e.contains("must be above 0"), "{e}");
}

#[test]
fn unknown_budget_operation_is_refused_where_it_is() {
    let e = err(&GOOD.replace("bundle_fetch = {", "bundel_fetch = {"));
    assert!(e.starts_with("s.toml:22:1: "), "{e}");
    assert!(e.contains("unknown operation `bundel_fetch`"), "{e}");
}

#[test]
fn bad_percentile_and_limit_are_refused() {
    assert!(err(&GOOD.replace("p95 =", "q95 =")).contains("not a percentile"));
    assert!(err(&GOOD.replace("\"10ms\"", "\"fast\"")).contains("not a duration"));
}

#[test]
fn unknown_flow_in_mix_is_refused() {
    let e = err(&GOOD.replace("initiate = 2", "gossip = 2"));
    assert!(e.starts_with("s.toml:18:1: "), "{e}");
    assert!(e.contains("unknown field `gossip`"), "{e}");
}

#[test]
fn negative_weight_and_all_zero_weights_are_refused() {
    assert!(err(&GOOD.replace("initiate = 2", "initiate = -2")).starts_with("s.toml:18:12: "));
    let e = err(&GOOD
        .replace("initiate = 2", "initiate = 0")
        .replace("converse = 3", "converse = 0"));
    assert!(e.contains("at least one flow"), "{e}");
}

#[test]
fn warmup_longer_than_duration_is_refused() {
    assert!(err(&GOOD.replace("warmup = \"5s\"", "warmup = \"30s\""))
        .contains("shorter than the duration"));
}

#[test]
fn ramping_stages_sum_to_the_duration() {
    let text = GOOD.replace("duration = \"20s\"\n", "").replace(
        "rate = 12.5",
        "start_rate = 0.0\nstages = [{ duration = \"10s\", rate = 10.0 }, { duration = \"10s\", rate = 10.0 }]",
    );
    let s = parse(&text).unwrap();
    assert_eq!(s.duration, Duration::from_secs(20));
    let Load::Open(plan) = &s.load else {
        panic!("open")
    };
    assert_eq!(plan.mean_rate(), 7.5);
}

#[test]
fn closed_model_parses_and_checks_ramps() {
    let text = GOOD
        .replace("model = \"open\"", "model = \"closed\"")
        .replace(
            "[open]\nrate = 12.5",
            "[closed]\nusers = 4\nramp_up = \"2s\"\nramp_down = \"1s\"",
        );
    let s = parse(&text).unwrap();
    assert_eq!(
        s.load,
        Load::Closed(ClosedPlan {
            users: 4,
            ramp_up: Duration::from_secs(2),
            ramp_down: Duration::from_secs(1),
            think_time: Duration::ZERO
        })
    );
    assert!(err(&text.replace("ramp_up = \"2s\"", "ramp_up = \"25s\""))
        .contains("longer than closed.ramp_up"));
}

#[test]
fn budget_flags_override_the_file() {
    let mut s = parse(GOOD).unwrap();
    s.apply_budget_flags(&["bundle_fetch.p95=1us".into()])
        .unwrap();
    let b = s.budgets.iter().find(|b| b.label == "p95").unwrap();
    assert_eq!((b.limit_us, b.source), (1, BudgetSource::CommandLine));
    let e = s
        .apply_budget_flags(&["bundle_fetch.p95=".into()])
        .unwrap_err()
        .to_string();
    assert!(e.starts_with("--budget bundle_fetch.p95=: "), "{e}");
}

#[test]
fn shipped_scenarios_are_valid() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("scenarios");
    let mut n = 0;
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "toml") {
            Scenario::load(&path).unwrap_or_else(|e| panic!("{e}"));
            n += 1;
        }
    }
    assert!(
        n >= 2,
        "expected the shipped scenarios in {}",
        dir.display()
    );
}

#[test]
fn faults_parse_with_defaults_sorted_by_offset() {
    let text = format!(
        "{GOOD}\n[[faults]]\nat = \"9s\"\nkind = \"pause_db\"\n\n[[faults]]\nat = \"2s\"\nkind = \"kill_server\"\ndown = \"1s\"\n\n[[faults]]\nat = \"4s\"\nkind = \"restart_db\"\ncommand = \"true\"\n"
    );
    let s = parse(&text).unwrap();
    let kinds: Vec<FaultKind> = s.faults.iter().map(|f| f.kind).collect();
    assert_eq!(
        kinds,
        [
            FaultKind::KillServer,
            FaultKind::RestartDb,
            FaultKind::PauseDb
        ]
    );
    assert_eq!(s.faults[0].hold, Duration::from_secs(1));
    assert_eq!(s.faults[2].hold, fault::DEFAULT_PAUSE);
    assert_eq!(s.faults[1].command.as_deref(), Some("true"));
}

#[test]
fn bad_faults_name_file_line_and_column() {
    let unknown = format!("{GOOD}\n[[faults]]\nat = \"2s\"\nkind = \"unplug\"\n");
    let line = unknown.lines().count();
    let e = err(&unknown);
    assert!(
        e.starts_with(&format!("s.toml:{line}:8: unknown fault kind `unplug`")),
        "{e}"
    );
    // The window is 20s - 5s = 15s: a fault at 15s would never happen.
    let late = format!("{GOOD}\n[[faults]]\nat = \"15s\"\nkind = \"kill_server\"\n");
    let e = err(&late);
    assert!(e.contains("past the end of the measured window"), "{e}");
    let misplaced =
        format!("{GOOD}\n[[faults]]\nat = \"2s\"\nkind = \"restart_db\"\nfor = \"1s\"\n");
    assert!(err(&misplaced).contains("`for` only applies to pause_db"));
    let extra = format!("{GOOD}\n[[faults]]\nat = \"2s\"\nkind = \"restart_db\"\nwhen = 1\n");
    assert!(err(&extra).contains("unknown field `when`"));
}

#[test]
fn rate_zero_and_negative_follow_one_rule() {
    for bad in ["0.0", "-5.0"] {
        let e = err(&GOOD.replace("rate = 12.5", &format!("rate = {bad}")));
        assert!(
            e.contains("open.rate must be above 0 and at most 100000 flows per second, got"),
            "{bad}: {e}"
        );
        assert!(e.starts_with("s.toml:15:8:"), "{bad}: {e}");
    }
}

#[test]
fn absurd_values_name_the_field_and_the_bound() {
    let cases = [
        (
            "users = 10",
            "users = 1000000",
            "population.users (1000000) is above the bound of 100000",
        ),
        (
            "rate = 12.5",
            "rate = 1e12",
            "at most 100000 flows per second",
        ),
        (
            "duration = \"20s\"",
            "duration = \"999999h\"",
            "duration `999999h` is above the bound of 1day",
        ),
        (
            "devices_per_user = 2",
            "devices_per_user = 65",
            "population.devices_per_user (65) is above the bound of 64",
        ),
    ];
    for (from, to, message) in cases {
        let e = err(&GOOD.replace(from, to));
        assert!(e.contains(message), "{to}: {e}");
    }
    let e = err(&GOOD
        .replace("users = 10", "users = 50000")
        .replace("devices_per_user = 2", "devices_per_user = 5"));
    assert!(
        e.contains("(250000 devices) is above the bound of 200000"),
        "{e}"
    );
}

#[test]
fn a_budget_on_an_operation_no_flow_of_the_mix_records_is_refused_where_it_is() {
    let text = GOOD.replace(
        "bundle_fetch = { p95",
        "key_count = { p95 = \"5ms\" }\nbundle_fetch = { p95",
    );
    let e = err(&text);
    assert!(e.starts_with("s.toml:22:1:"), "{e}");
    assert!(
        e.contains(
            "budget on `key_count`, but no flow in [mix] records it (flows that do: replenish)"
        ),
        "{e}"
    );
    // A flow's own operation is recorded by that flow only.
    let e = err(&GOOD.replace("bundle_fetch = {", "flow_offline = {"));
    assert!(e.contains("(flows that do: offline)"), "{e}");
    // Recorded by a flow of the mix: accepted.
    let text = GOOD
        .replace("converse = 3", "converse = 3\nreplenish = 1")
        .replace(
            "bundle_fetch = { p95",
            "key_count = { p95 = \"5ms\" }\nbundle_fetch = { p95",
        );
    assert!(parse(&text).is_ok());
}
