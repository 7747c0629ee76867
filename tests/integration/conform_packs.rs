//! Every seed schema pack under `scenarios/schemas/` through the binary, as CI runs it:
//! `e2ee-harness conform --schema <pack> --db local --report-dir <tmp>`, and again with
//! `--db docker`, whose verdicts must be the same.
//!
//! The packs are *not* expected to pass: several seed documents are wrong on purpose, and the
//! harness exists to say so. What must hold is that the run completes and reports on
//! everything the pack declares: exit 0 or 1 (never 2, a bad pack, or 3, no PostgreSQL),
//! `junit.xml` and `conform.json` written and consistent, and every expectation of
//! `expect.toml` evaluated.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;

use serde_json::Value;

/// How many seed documents there are, so a pack that goes missing is noticed.
const SEED_PACKS: usize = 5;

/// Runs at a time: each run starts its own PostgreSQL on a 2-core machine.
const PARALLEL: usize = 2;

/// The behaviour assertion arrays of `expect.toml`; each check names its `file:line`.
const BEHAVIOUR: &[&str] = &["succeeds", "fails", "query", "notify", "cascade"];

fn packs() -> Vec<PathBuf> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("scenarios/schemas");
    let mut dirs: Vec<PathBuf> = std::fs::read_dir(&root)
        .unwrap_or_else(|e| panic!("{}: {e}", root.display()))
        .map(|e| e.unwrap().path())
        .filter(|p| p.join("migrations").is_dir())
        .collect();
    dirs.sort();
    dirs
}

struct Run {
    pack: PathBuf,
    out: Output,
    report: tempfile::TempDir,
}

fn conform(pack: &Path, db: &[&str]) -> Run {
    let report = tempfile::tempdir().expect("temp dir");
    let out = Command::new(env!("CARGO_BIN_EXE_e2ee-harness"))
        .args(["conform", "--quiet"])
        .args(db)
        .arg("--schema")
        .arg(pack)
        .arg("--report-dir")
        .arg(report.path())
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .env_remove("DATABASE_URL")
        .output()
        .expect("run the harness binary");
    Run {
        pack: pack.to_path_buf(),
        out,
        report,
    }
}

/// 1-based lines whose first token is `[[name]]`: where each array-of-tables entry starts,
/// which is the `file:line` the engine names.
fn header_lines(source: &str, name: &str) -> Vec<usize> {
    let header = format!("[[{name}]]");
    source
        .lines()
        .enumerate()
        .filter(|(_, l)| {
            l.trim_start()
                .strip_prefix(header.as_str())
                .map(str::trim_start)
                .is_some_and(|rest| rest.is_empty() || rest.starts_with('#'))
        })
        .map(|(i, _)| i + 1)
        .collect()
}

fn array<'a>(t: &'a toml::Table, key: &str) -> &'a [toml::Value] {
    t.get(key)
        .and_then(|v| v.as_array())
        .map(|a| a.as_slice())
        .unwrap_or(&[])
}

/// How reports name a relation: `name` in the public schema, else `schema.name`.
fn short(name: &str) -> &str {
    name.strip_prefix("public.").unwrap_or(name)
}

/// Catalog checks `expect.toml` declares. A relation that does not exist yields one failed
/// "exists" check and nothing for its parts, so its parts count only when it was found.
fn declared_catalog_checks(expect: &toml::Table, checks: &[Value]) -> usize {
    let passed = |name: &str| {
        checks
            .iter()
            .any(|c| c["name"] == name && c["kind"] == "catalog" && c["status"] == "pass")
    };
    let len = |t: &toml::Table, key: &str| array(t, key).len();
    let mut n = 0;
    for t in array(expect, "table") {
        let t = t.as_table().expect("[[table]] is a table");
        n += 1;
        let name = t["name"].as_str().expect("table name");
        if passed(&format!("table {} exists", short(name))) {
            n += usize::from(t.get("exact_columns").and_then(|v| v.as_bool()) == Some(true))
                + usize::from(t.contains_key("primary_key"))
                + [
                    "columns",
                    "unique",
                    "checks",
                    "foreign_keys",
                    "indexes",
                    "triggers",
                ]
                .iter()
                .map(|k| len(t, k))
                .sum::<usize>();
        }
    }
    for (key, label) in [("view", "view"), ("materialized_view", "materialized view")] {
        for v in array(expect, key) {
            let v = v.as_table().expect("a view is a table");
            n += 1;
            let name = v["name"].as_str().expect("view name");
            if passed(&format!("{label} {} exists", short(name))) {
                n += usize::from(v.contains_key("columns")) + len(v, "indexes");
            }
        }
    }
    n + array(expect, "function").len()
}

/// Everything wrong with one run's report; empty when it is complete.
fn problems(run: &Run) -> Vec<String> {
    let mut p = Vec::new();
    let code = run.out.status.code();
    if !matches!(code, Some(0 | 1)) {
        p.push(format!(
            "exit code {code:?}, expected 0 or 1; stderr:\n{}",
            String::from_utf8_lossy(&run.out.stderr)
        ));
        return p;
    }
    let dir = run.report.path();
    let json_path = dir.join("conform.json");
    let report: Value = match std::fs::read_to_string(&json_path)
        .map_err(|e| e.to_string())
        .and_then(|s| serde_json::from_str(&s).map_err(|e| e.to_string()))
    {
        Ok(v) => v,
        Err(e) => {
            p.push(format!("{}: {e}", json_path.display()));
            return p;
        }
    };
    let checks = report["checks"].as_array().cloned().unwrap_or_default();
    if checks.is_empty() {
        p.push("conform.json has no checks".into());
    }
    if report["exit_code"].as_i64() != code.map(i64::from) {
        p.push(format!(
            "conform.json exit_code {} but the process exited {code:?}",
            report["exit_code"]
        ));
    }
    // The summary counts the checks it comes with.
    for (key, status) in [
        ("passed", "pass"),
        ("failed", "fail"),
        ("findings", "finding"),
        ("waived", "waived"),
        ("skipped", "skip"),
    ] {
        let counted = checks.iter().filter(|c| c["status"] == status).count() as u64;
        if report["summary"][key].as_u64() != Some(counted) {
            p.push(format!(
                "summary.{key} is {}, but {counted} checks are {status}",
                report["summary"][key]
            ));
        }
    }
    let bad = checks
        .iter()
        .any(|c| c["status"] == "fail" || c["status"] == "finding");
    if (code == Some(1)) != bad {
        p.push(format!(
            "exit {code:?} does not follow the checks (a failure or finding: {bad})"
        ));
    }

    match std::fs::read_to_string(dir.join("junit.xml")) {
        Ok(xml) => {
            let cases = xml.matches("<testcase ").count();
            if !xml.contains("<testsuites") || cases != checks.len() {
                p.push(format!(
                    "junit.xml holds {cases} test cases for {} checks",
                    checks.len()
                ));
            }
        }
        Err(e) => p.push(format!("junit.xml: {e}")),
    }

    let expect_path = run.pack.join("expect.toml");
    let source = std::fs::read_to_string(&expect_path).unwrap_or_default();
    let expect: toml::Table = match source.parse() {
        Ok(t) => t,
        Err(e) => {
            p.push(format!("{}: {e}", expect_path.display()));
            return p;
        }
    };
    if expect.is_empty() {
        p.push(format!("{} declares nothing", expect_path.display()));
    }

    // Catalog: as many checks as the pack declares.
    let declared = declared_catalog_checks(&expect, &checks);
    let evaluated = checks.iter().filter(|c| c["kind"] == "catalog").count();
    if declared != evaluated {
        p.push(format!(
            "expect.toml declares {declared} catalog assertions, conform.json evaluated {evaluated}"
        ));
    }

    // Behaviour and seeds: each entry has its own check, named by its file:line.
    let named = |line: usize, kinds: &[&str]| {
        let at = format!("expect.toml:{line}");
        checks.iter().any(|c| {
            let name = c["name"].as_str().unwrap_or("");
            kinds.iter().any(|k| c["kind"] == *k)
                && (name.contains(&format!("{at})")) || name.contains(&format!("{at}:")))
        })
    };
    let mut behaviour = 0;
    for key in BEHAVIOUR.iter().chain(&["seed"]) {
        let lines = header_lines(&source, key);
        if lines.len() != array(&expect, key).len() {
            p.push(format!(
                "expect.toml has {} [[{key}]] entries but {} [[{key}]] header lines",
                array(&expect, key).len(),
                lines.len()
            ));
        }
        let kinds: &[&str] = if *key == "seed" {
            &["preservation", "migrations"]
        } else {
            behaviour += lines.len();
            &["behaviour"]
        };
        for line in lines {
            if !named(line, kinds) {
                p.push(format!("[[{key}]] at expect.toml:{line} has no check"));
            }
        }
    }
    let evaluated = checks.iter().filter(|c| c["kind"] == "behaviour").count();
    if behaviour != evaluated {
        p.push(format!(
            "expect.toml declares {behaviour} behaviour assertions, conform.json evaluated {evaluated}"
        ));
    }

    // Waivers: each one either waived a finding or is reported as matching none.
    for w in array(&expect, "waive") {
        let (rule, object) = (w["rule"].as_str(), w["object"].as_str());
        let waived = checks.iter().any(|c| {
            c["status"] == "waived" && c["rule"].as_str() == rule && c["object"].as_str() == object
        });
        let stale = format!(
            "waiver {} {}",
            rule.unwrap_or_default(),
            object.unwrap_or_default()
        );
        if !waived && !checks.iter().any(|c| c["name"] == stale.as_str()) {
            p.push(format!("[[waive]] {rule:?} {object:?} has no result"));
        }
    }
    p
}

/// Conforms every pack, `PARALLEL` at a time, on the PostgreSQL that `db` flags choose.
fn conform_all(packs: &[PathBuf], db: &[&str]) -> Vec<Run> {
    let next = AtomicUsize::new(0);
    let runs = Mutex::new(Vec::new());
    std::thread::scope(|s| {
        for _ in 0..PARALLEL {
            s.spawn(|| loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                let Some(pack) = packs.get(i) else { break };
                let run = conform(pack, db);
                runs.lock().unwrap().push(run);
            });
        }
    });
    let mut runs = runs.into_inner().unwrap();
    runs.sort_by(|a, b| a.pack.cmp(&b.pack));
    assert_eq!(runs.len(), packs.len());
    runs
}

/// Each check's name, kind and status: what must not depend on the provider.
fn verdicts(run: &Run) -> Vec<(String, String, String)> {
    let path = run.report.path().join("conform.json");
    let json: Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap_or_else(|e| {
        panic!(
            "{}: {e}\n{}",
            path.display(),
            String::from_utf8_lossy(&run.out.stderr)
        )
    }))
    .unwrap();
    let mut v: Vec<_> = json["checks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            let s = |k: &str| c[k].as_str().unwrap_or_default().to_string();
            (s("name"), s("kind"), s("status"))
        })
        .collect();
    v.sort();
    v
}

fn pg_image() -> String {
    disposable_pg::Options::image_for_tests()
}

#[test]
fn every_seed_pack_runs_to_a_complete_report_with_the_same_verdicts_on_docker() {
    let packs = packs();
    let names: Vec<_> = packs
        .iter()
        .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
        .collect();
    assert_eq!(
        packs.len(),
        SEED_PACKS,
        "expected one pack per seed document, found {names:?}"
    );

    let runs = conform_all(&packs, &["--db", "local"]);

    let mut report = String::new();
    for run in &runs {
        let p = problems(run);
        if !p.is_empty() {
            report.push_str(&format!("{}:\n  {}\n", run.pack.display(), p.join("\n  ")));
        }
    }
    assert!(
        report.is_empty(),
        "incomplete conformance reports:\n{report}"
    );

    // Conformance on a container equals conformance on local binaries: same checks, same
    // verdicts (the image is of the same PostgreSQL major as the local binaries in CI).
    let image = pg_image();
    let docker = conform_all(&packs, &["--db", "docker", "--pg-image", &image]);
    for (local, docker) in runs.iter().zip(&docker) {
        assert_eq!(
            docker.out.status.code(),
            local.out.status.code(),
            "{}: exit code differs on docker; stderr:\n{}",
            docker.pack.display(),
            String::from_utf8_lossy(&docker.out.stderr)
        );
        let (l, d) = (verdicts(local), verdicts(docker));
        let only_local: Vec<_> = l.iter().filter(|c| !d.contains(c)).collect();
        let only_docker: Vec<_> = d.iter().filter(|c| !l.contains(c)).collect();
        assert!(
            only_local.is_empty() && only_docker.is_empty(),
            "{}: verdicts differ between local and docker ({image})\nonly local: {only_local:#?}\nonly docker: {only_docker:#?}",
            local.pack.display()
        );
    }

    // The completeness check itself can fail: drop one catalog and one behaviour result from a
    // real report and it names both.
    let run = runs
        .iter()
        .find(|r| r.pack.ends_with("nchat"))
        .expect("the nchat run");
    let path = run.report.path().join("conform.json");
    let mut json: Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    let checks = json["checks"].as_array_mut().unwrap();
    for kind in ["catalog", "behaviour"] {
        let i = checks.iter().position(|c| c["kind"] == kind).unwrap();
        checks.remove(i);
    }
    std::fs::write(&path, json.to_string()).unwrap();
    let p = problems(run).join("\n");
    assert!(
        p.contains("catalog assertions, conform.json evaluated")
            && p.contains("has no check")
            && p.contains("behaviour assertions, conform.json evaluated"),
        "{p}"
    );
}

#[test]
fn header_lines_find_entries_and_skip_lookalikes() {
    let src = "[[query]]\nname = \"a\"\n  [[query]] # indented, commented\n# [[query]]\n[[query_x]]\nsql = \"[[query]]\"\n";
    assert_eq!(header_lines(src, "query"), [1, 3]);
}
