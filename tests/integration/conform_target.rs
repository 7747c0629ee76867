//! `e2ee-harness conform --target URL` as CI runs it: the reference server (in-process, on a
//! fresh database of the test binary's disposable PostgreSQL) must pass every applicable
//! protocol check; bad input (an unknown `--api`, a target that speaks another API, one that
//! does not answer) is refused before any check runs, with the documented exit code.

use crate::common::run as common;

use std::path::Path;
use std::process::Output;

use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// Runs the harness binary off the async runtime (the server under test runs on it).
async fn harness(args: &[&str], cwd: &Path) -> Output {
    let args: Vec<String> = args.iter().map(|s| s.to_string()).collect();
    let cwd = cwd.to_path_buf();
    tokio::task::spawn_blocking(move || {
        std::process::Command::new(env!("CARGO_BIN_EXE_e2ee-harness"))
            .args(&args)
            .current_dir(cwd)
            .env_remove("DATABASE_URL")
            .output()
            .expect("run the harness binary")
    })
    .await
    .unwrap()
}

fn text(o: &Output) -> String {
    format!(
        "exit {:?}\nstdout:\n{}\nstderr:\n{}",
        o.status.code(),
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

/// Every check the suite has against a server with every capability.
const CHECKS: &[&str] = &[
    "prekeys.one_time_once",
    "prekeys.signed_bad_signature",
    "prekeys.register_bad_signature",
    "prekeys.malformed_keys",
    "auth.routes_need_credential",
    "auth.push_needs_credential",
    "auth.no_cross_read",
    "auth.no_cross_ack",
    "auth.no_cross_write",
    "auth.no_replay",
    "auth.dead_credential_refused",
    "delivery.fan_out_once",
    "delivery.omitted_device",
    "delivery.removed_device",
    "delivery.resend_once",
    "delivery.close_confirmed",
    "delivery.offline_backlog",
    "input.register_user",
    "input.add_device",
    "input.upload_one_time",
    "input.rotate_signed",
    "input.bundles",
    "input.device_bundle",
    "input.send",
    "input.acknowledge",
    "input.remove_device",
];

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_reference_server_passes_every_protocol_check() {
    let server = common::server().await;
    let dir = tempfile::tempdir().unwrap();
    let out = harness(
        &[
            "conform",
            "--target",
            &server.base_url(),
            "--report-dir",
            "out",
        ],
        dir.path(),
    )
    .await;
    let all = text(&out);
    assert_eq!(out.status.code(), Some(0), "{all}");
    let json: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.path().join("out/conform.json")).unwrap())
            .unwrap();
    assert_eq!(json["api"], "reference", "{json}");
    assert_eq!(json["target"], server.base_url().as_str());
    let checks = json["checks"].as_array().unwrap();
    let ids: Vec<&str> = checks.iter().map(|c| c["rule"].as_str().unwrap()).collect();
    for want in CHECKS {
        assert!(ids.contains(want), "{want} missing from {ids:?}");
    }
    for c in checks {
        // The reference API has every capability: nothing is not applicable.
        assert_eq!(c["status"], "pass", "{c:#}");
        assert!(
            c["statement"].as_str().is_some_and(|s| !s.is_empty()),
            "{c}"
        );
        assert!(
            c["evidence"].as_array().is_some_and(|e| !e.is_empty()),
            "a check without evidence: {c}"
        );
    }
    let stdout = String::from_utf8_lossy(&out.stdout);
    for group in ["prekeys", "auth", "delivery", "input"] {
        assert!(
            stdout.lines().any(|l| l == group),
            "no {group} group: {all}"
        );
    }
    let junit = std::fs::read_to_string(dir.path().join("out/junit.xml")).unwrap();
    assert!(junit.contains("failures=\"0\""), "{junit}");
    assert!(junit.contains("auth.no_replay"), "{junit}");
    server.shutdown().await;
}

/// Two properties broken on purpose in the reference server's database: a claimed one-time
/// prekey comes back (so the same prekey is handed out again), and every envelope is stored
/// twice (so every message is delivered twice).
const SABOTAGE: &str = "
CREATE FUNCTION keep_prekey() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF EXISTS (SELECT 1 FROM devices WHERE id = OLD.device) THEN
        INSERT INTO one_time_prekeys (device, key_id, public_key)
        VALUES (OLD.device, OLD.key_id, OLD.public_key);
    END IF;
    RETURN NULL;
END $$;
CREATE TRIGGER keep_prekey AFTER DELETE ON one_time_prekeys
    FOR EACH ROW EXECUTE FUNCTION keep_prekey();
ALTER TABLE envelopes DROP CONSTRAINT envelopes_message_device_key;
CREATE FUNCTION twice() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF pg_trigger_depth() = 1 THEN
        INSERT INTO envelopes (message, recipient_device, kind, header, ciphertext)
        VALUES (NEW.message, NEW.recipient_device, NEW.kind, NEW.header, NEW.ciphertext);
    END IF;
    RETURN NULL;
END $$;
CREATE TRIGGER twice AFTER INSERT ON envelopes FOR EACH ROW EXECUTE FUNCTION twice();
";

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_server_that_breaks_a_property_fails_the_check_that_states_it() {
    let url = common::database().await;
    let db = disposable_pg::connect(&url).await.unwrap();
    db.batch_execute(SABOTAGE).await.unwrap();
    drop(db);
    let server = reference_server::start(reference_server::ServerConfig::new(url))
        .await
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let out = harness(
        &[
            "conform",
            "--target",
            &server.base_url(),
            "--report-dir",
            "out",
        ],
        dir.path(),
    )
    .await;
    let all = text(&out);
    assert_eq!(out.status.code(), Some(1), "{all}");
    let json: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.path().join("out/conform.json")).unwrap())
            .unwrap();
    let status = |id: &str| {
        json["checks"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["rule"] == id)
            .map(|c| c["status"].as_str().unwrap().to_string())
            .unwrap_or_else(|| panic!("no check {id}"))
    };
    for broken in [
        "prekeys.one_time_once",
        "delivery.fan_out_once",
        "delivery.resend_once",
        "delivery.offline_backlog",
    ] {
        assert_eq!(status(broken), "fail", "{broken}: {all}");
    }
    for intact in [
        "auth.routes_need_credential",
        "prekeys.signed_bad_signature",
    ] {
        assert_eq!(status(intact), "pass", "{intact}: {all}");
    }
    assert!(all.contains("was handed out"), "{all}");
    assert!(all.contains("to look at, most severe first"), "{all}");
    server.shutdown().await;
}

/// A server that answers every request with `response` (a full HTTP/1.1 response).
async fn answering(response: &'static str) -> (String, tokio::task::JoinHandle<()>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let task = tokio::spawn(async move {
        while let Ok((mut socket, _)) = listener.accept().await {
            tokio::spawn(async move {
                let mut buf = vec![0u8; 64 * 1024];
                let _ = socket.read(&mut buf).await;
                let _ = socket.write_all(response.as_bytes()).await;
                let _ = socket.shutdown().await;
            });
        }
    });
    (url, task)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_target_speaking_another_api_exits_2_before_any_check() {
    let dir = tempfile::tempdir().unwrap();
    for response in [
        "HTTP/1.1 404 Not Found\r\ncontent-length: 9\r\nconnection: close\r\n\r\nnot found",
        "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: 17\r\nconnection: close\r\n\r\n{\"hello\":\"world\"}",
    ] {
        let (url, task) = answering(response).await;
        let out = harness(
            &["conform", "--target", &url, "--report-dir", "out"],
            dir.path(),
        )
        .await;
        let all = text(&out);
        assert_eq!(out.status.code(), Some(2), "{all}");
        assert!(
            all.contains("answers, but not as a reference server") && all.contains("--api"),
            "{all}"
        );
        assert!(!dir.path().join("out/conform.json").exists(), "{all}");
        task.abort();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreachable_target_exits_3() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    drop(listener);
    let dir = tempfile::tempdir().unwrap();
    let out = harness(&["conform", "--target", &url], dir.path()).await;
    let all = text(&out);
    assert_eq!(out.status.code(), Some(3), "{all}");
    assert!(all.contains("unreachable"), "{all}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_usage_exits_2_naming_the_flag() {
    let dir = tempfile::tempdir().unwrap();
    let cases: [(&[&str], &str); 4] = [
        (
            &["conform", "--target", "http://127.0.0.1:9", "--api", "nope"],
            "unknown API `nope`",
        ),
        (
            &[
                "conform",
                "--target",
                "http://127.0.0.1:9",
                "--schema",
                "reference",
            ],
            "--schema",
        ),
        (&["conform", "--api", "reference"], "--target"),
        (
            &["conform", "--target", "ftp://example.org"],
            "not http or https",
        ),
    ];
    for (args, says) in cases {
        let out = harness(args, dir.path()).await;
        let all = text(&out);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {all}");
        assert!(all.contains(says), "{args:?} should say {says:?}: {all}");
    }
}

/// `--api hushnet` against the reference server: both commands see a server that answers in
/// another API's shape in their first request and stop with exit 2 before any check or load
/// (no report is written).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_hushnet_dialect_against_the_reference_server_exits_2_before_any_load() {
    let server = common::server().await;
    let url = server.base_url();
    let dir = tempfile::tempdir().unwrap();
    let scenario = common::scenario("hushnet.toml");
    let runs: [(&[&str], &str); 3] = [
        (
            &[
                "conform",
                "--target",
                &url,
                "--api",
                "hushnet",
                "--report-dir",
                "c",
            ],
            "c/conform.json",
        ),
        // The scenario names `api = "hushnet"` itself.
        (
            &[
                "run",
                scenario.to_str().unwrap(),
                "--target",
                &url,
                "--report-dir",
                "r",
            ],
            "r/report.json",
        ),
        (
            &[
                "run",
                scenario.to_str().unwrap(),
                "--target",
                &url,
                "--api",
                "hushnet",
                "--report-dir",
                "r2",
            ],
            "r2/report.json",
        ),
    ];
    for (args, report) in runs {
        let out = harness(args, dir.path()).await;
        let all = text(&out);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {all}");
        assert!(
            all.contains("answers, but not as a hushnet server") && all.contains("--api"),
            "{args:?}: {all}"
        );
        assert!(!dir.path().join(report).exists(), "{args:?}: {all}");
    }
    server.shutdown().await;
}
