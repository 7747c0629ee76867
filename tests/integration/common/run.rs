//! Shared by the run tests: a real PostgreSQL (one per test binary), a fresh migrated database
//! per test, the reference server on a free port, and the smoke scenarios.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::sync::LazyLock;

use disposable_pg::TemplateCache;
use e2ee_harness::metrics::Op;
use e2ee_harness::report::RunReport;
use reference_server::{RunningServer, ServerConfig};

static TEMPLATE: LazyLock<TemplateCache> = LazyLock::new(|| TemplateCache::new("harness_run"));

pub fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

pub fn scenario(name: &str) -> PathBuf {
    repo().join("scenarios").join(name)
}

/// A fresh, migrated database on the test binary's PostgreSQL.
pub async fn database() -> String {
    let pg = disposable_pg::shared_for_tests();
    TEMPLATE
        .database(pg, |url| async move {
            reference_server::migrate(&url)
                .await
                .unwrap_or_else(|e| panic!("migrating the template: {e}"));
            Ok(())
        })
        .await
        .unwrap_or_else(|e| panic!("cloning the template database: {e}"))
}

/// The reference server on a fresh database.
pub async fn server() -> RunningServer {
    let url = database().await;
    reference_server::start(ServerConfig::new(url))
        .await
        .unwrap_or_else(|e| panic!("starting the server: {e}"))
}

/// What every smoke run must show, whatever the model: every operation measured, every
/// message accounted for, nothing lost, duplicated or mangled.
pub fn assert_smoke_report(report: &RunReport) {
    for op in Op::ALL {
        let stats = report
            .operations
            .get(op.name())
            .unwrap_or_else(|| panic!("no samples of {}", op.name()));
        assert!(stats.count > 0, "{} has no samples: {stats:?}", op.name());
        assert!(
            !stats.intervals.is_empty(),
            "{} has no interval histograms",
            op.name()
        );
    }
    let i = &report.integrity;
    assert!(i.is_clean(), "integrity failures: {i:?}");
    assert!(i.messages_sent > 0, "nothing was sent: {i:?}");
    assert_eq!(i.messages_delivered, i.messages_sent, "{i:?}");
    assert_eq!(i.messages_decrypted, i.messages_sent, "{i:?}");
    assert!(report.generator.flows_started > 0);
    assert!(report.generator.peak_rss_bytes > 0);
}

pub fn read_report(dir: &Path) -> RunReport {
    e2ee_harness::report::json::read(dir)
        .unwrap_or_else(|e| panic!("reading the report in {}: {e}", dir.display()))
}

/// `e2ee-harness serve` in a process of its own, stopped with SIGTERM when dropped.
pub struct Serve {
    pub child: std::process::Child,
    pub url: String,
}

impl Serve {
    /// `serve` on a fast (fsync off) local PostgreSQL, as most tests want.
    pub fn start() -> Serve {
        Serve::start_with(&["--pg-fast"])
    }

    /// `serve --listen 127.0.0.1:0 --db local` plus `extra` flags.
    pub fn start_with(extra: &[&str]) -> Serve {
        use std::io::BufRead;
        let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_e2ee-harness"))
            .args(["serve", "--listen", "127.0.0.1:0", "--db", "local"])
            .args(extra)
            .env_remove("DATABASE_URL")
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("starting e2ee-harness serve");
        let mut line = String::new();
        std::io::BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .expect("serve prints its URL");
        let url = line.trim().to_string();
        assert!(
            url.starts_with("http://127.0.0.1:"),
            "serve printed {url:?}"
        );
        Serve { child, url }
    }
}

impl Drop for Serve {
    fn drop(&mut self) {
        // SIGTERM lets serve stop its PostgreSQL; then reap it.
        unsafe { libc::kill(self.child.id() as i32, libc::SIGTERM) };
        let _ = self.child.wait();
    }
}
