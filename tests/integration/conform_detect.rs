//! The rules that find what nobody annotated (docs/conformance.md section 6), each on a small
//! schema with the defect (flagged, with evidence) and one without (not flagged), on a real
//! PostgreSQL from the provider.

use e2ee_harness::conform::{self, outcome::ConformReport};
use e2ee_harness::schema_pack::SchemaPack;

async fn run(files: &[(&str, &str)]) -> ConformReport {
    let dir = tempfile::tempdir().expect("temp dir");
    for (path, body) in files {
        let p = dir.path().join(path);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, body).unwrap();
    }
    let pg = disposable_pg::shared_for_tests();
    let (pack, expect) = conform::load(SchemaPack::load(dir.path()).unwrap()).unwrap();
    conform::run(pg, &pack, &expect).await.expect("run")
}

fn listing(r: &ConformReport) -> String {
    conform::report::text(r, None)
}

fn objects(r: &ConformReport, rule: &str) -> Vec<String> {
    r.findings_of(rule)
        .map(|c| c.object.clone().unwrap_or_default())
        .collect()
}

// ---- 1. one-time prekeys are claimed exactly once -------------------------------------

const OTPK_SCHEMA: &str = r#"
CREATE TABLE devices (id bigint PRIMARY KEY);
CREATE TABLE one_time_prekeys (
  device bigint NOT NULL REFERENCES devices (id) ON DELETE CASCADE,
  key_id bigint NOT NULL,
  public_key bytea NOT NULL CHECK (octet_length(public_key) = 32),
  used boolean NOT NULL DEFAULT false,
  PRIMARY KEY (device, key_id)
);
"#;

const OTPK_SEED: &str = r#"
[seed]
counts = { prekeys = 10 }
sql = [
  "INSERT INTO devices (id) SELECT d FROM generate_series(1, ${devices}) d",
  "INSERT INTO one_time_prekeys (device, key_id, public_key) SELECT d, k, sha256((d || '-' || k)::bytea) FROM generate_series(1, ${devices}) d, generate_series(1, ${prekeys}) k",
]

[load]
rate = 10
connections = 2
"#;

/// Find-then-mark: the sub-select is not re-evaluated after waiting for the first claimer.
const CLAIM_FIND_THEN_MARK: &str = r#"
[[operation]]
name = "claim"
sql = "UPDATE one_time_prekeys SET used = true WHERE (device, key_id) = (SELECT device, key_id FROM one_time_prekeys WHERE device = $1 AND NOT used ORDER BY key_id LIMIT 1) RETURNING key_id"
params = [{ pick = "devices" }]
claims = "key_id"
"#;

/// Delete-on-claim, skipping rows another claimer holds.
const CLAIM_DELETE_SKIP_LOCKED: &str = r#"
[[operation]]
name = "claim"
sql = "DELETE FROM one_time_prekeys WHERE (device, key_id) = (SELECT device, key_id FROM one_time_prekeys WHERE device = $1 ORDER BY key_id LIMIT 1 FOR UPDATE SKIP LOCKED) RETURNING key_id"
params = [{ pick = "devices" }]
claims = "key_id"
"#;

#[tokio::test]
async fn a_find_then_mark_claim_hands_one_key_to_two_fetchers() {
    let workload = format!("{OTPK_SEED}{CLAIM_FIND_THEN_MARK}");
    let r = run(&[
        ("migrations/001_init.sql", OTPK_SCHEMA),
        ("workload.toml", &workload),
    ])
    .await;
    let found: Vec<_> = r.findings_of("detect.otpk_claimed_once").collect();
    assert_eq!(found.len(), 1, "{}", listing(&r));
    let d = &found[0].detail;
    assert_eq!(found[0].object.as_deref(), Some("workload operation claim"));
    assert!(
        d.contains("key 1 went to fetcher 1") && d.contains("again to fetcher 2"),
        "{d}"
    );
}

#[tokio::test]
async fn a_locked_delete_claim_hands_out_distinct_keys() {
    let workload = format!("{OTPK_SEED}{CLAIM_DELETE_SKIP_LOCKED}");
    let r = run(&[
        ("migrations/001_init.sql", OTPK_SCHEMA),
        ("workload.toml", &workload),
    ])
    .await;
    assert!(
        objects(&r, "detect.otpk_claimed_once").is_empty(),
        "{}",
        listing(&r)
    );
    let probed = r
        .checks
        .iter()
        .find(|c| c.name == "detect.otpk_claimed_once workload operation claim")
        .expect("the claim was probed");
    assert!(
        probed.detail.contains("got 4 keys, all distinct"),
        "{}",
        probed.detail
    );
}

#[tokio::test]
async fn a_view_exposing_a_one_time_prekey_is_flagged() {
    let schema = format!(
        "{OTPK_SCHEMA}\nCREATE VIEW bundles AS SELECT d.id AS device, (SELECT o.key_id FROM one_time_prekeys o WHERE o.device = d.id AND NOT o.used ORDER BY o.key_id LIMIT 1) AS one_time_prekey_id, (SELECT count(*) FROM one_time_prekeys o WHERE o.device = d.id) AS one_time_prekey_count FROM devices d;"
    );
    let r = run(&[("migrations/001_init.sql", &schema)]).await;
    assert_eq!(
        objects(&r, "detect.otpk_claimed_once"),
        ["bundles.one_time_prekey_id"],
        "{}",
        listing(&r)
    );
}

// ---- 2. defaults that depend on the session ---------------------------------------------

#[tokio::test]
async fn a_default_that_depends_on_the_time_zone_is_flagged_with_both_values() {
    let r = run(&[(
        "migrations/001_init.sql",
        "CREATE TABLE events (id bigint PRIMARY KEY, at timestamptz NOT NULL DEFAULT (now() AT TIME ZONE 'UTC'), day text NOT NULL DEFAULT now()::date::text, ok timestamptz NOT NULL DEFAULT now(), n uuid NOT NULL DEFAULT gen_random_uuid());",
    )])
    .await;
    let mut found = objects(&r, "detect.session_default");
    found.sort();
    assert_eq!(found, ["events.at", "events.day"], "{}", listing(&r));
    let at = r
        .findings_of("detect.session_default")
        .find(|c| c.object.as_deref() == Some("events.at"))
        .unwrap();
    assert!(at.detail.contains("Pacific/Kiritimati"), "{}", at.detail);
    assert!(at.sql.as_deref().unwrap().contains("SET LOCAL TimeZone"));
}

// ---- 3. locks that serialize writers ----------------------------------------------------

const LOCK_BASE: &str = r#"
CREATE TABLE keys (device bigint NOT NULL, key_id bigint NOT NULL, PRIMARY KEY (device, key_id));
CREATE MATERIALIZED VIEW key_counts AS SELECT device, count(*) AS n FROM keys GROUP BY device;
"#;

#[tokio::test]
async fn a_trigger_refreshing_a_materialized_view_serializes_inserts() {
    let schema = format!(
        "{LOCK_BASE}
CREATE FUNCTION refresh_counts() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN REFRESH MATERIALIZED VIEW key_counts; RETURN NULL; END $$;
CREATE TRIGGER keys_refresh AFTER INSERT ON keys FOR EACH STATEMENT EXECUTE FUNCTION refresh_counts();"
    );
    let r = run(&[("migrations/001_init.sql", &schema)]).await;
    let found: Vec<_> = r.findings_of("detect.writer_lock").collect();
    assert_eq!(found.len(), 1, "{}", listing(&r));
    let d = &found[0].detail;
    assert!(
        d.contains("key_counts")
            && d.contains("held by the first insert's transaction")
            && d.contains("keys_refresh"),
        "{d}"
    );
}

#[tokio::test]
async fn a_notifying_trigger_lets_writers_proceed() {
    let schema = format!(
        "{LOCK_BASE}
CREATE FUNCTION notify_key() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN PERFORM pg_notify('keys', NEW.device::text); RETURN NULL; END $$;
CREATE TRIGGER keys_notify AFTER INSERT ON keys FOR EACH ROW EXECUTE FUNCTION notify_key();"
    );
    let r = run(&[("migrations/001_init.sql", &schema)]).await;
    assert!(
        objects(&r, "detect.writer_lock").is_empty(),
        "{}",
        listing(&r)
    );
    assert!(
        r.checks
            .iter()
            .any(|c| c.name == "detect.writer_lock keys" && c.detail.contains("proceeded")),
        "{}",
        listing(&r)
    );
}

// ---- 5. E2EE policy ---------------------------------------------------------------------

const POLICY_BAD: &str = r#"
CREATE TABLE devices (id bigint PRIMARY KEY);
CREATE TABLE identity_keys (
  device_id bigint PRIMARY KEY,
  public_key bytea NOT NULL,
  private_key_encrypted bytea NOT NULL
);
CREATE TABLE signed_prekeys (
  device bigint NOT NULL REFERENCES devices (id) ON DELETE SET NULL,
  key_id bigint NOT NULL,
  public_key bytea NOT NULL CHECK (octet_length(public_key) = 32),
  PRIMARY KEY (device, key_id)
);
CREATE INDEX ON signed_prekeys (device);
CREATE TABLE one_time_prekeys (
  id bigint PRIMARY KEY,
  device bigint NOT NULL REFERENCES devices (id) ON DELETE CASCADE,
  key_id bigint NOT NULL,
  public_key bytea NOT NULL CHECK (octet_length(public_key) = 32)
);
CREATE INDEX ON one_time_prekeys (device);
CREATE TABLE messages (
  id bigint PRIMARY KEY,
  sender_device bigint NOT NULL,
  ciphertext bytea NOT NULL,
  body text
);
"#;

const POLICY_GOOD: &str = r#"
CREATE TABLE devices (id bigint PRIMARY KEY, identity_key bytea NOT NULL CHECK (octet_length(identity_key) = 32));
CREATE TABLE signed_prekeys (
  device bigint NOT NULL REFERENCES devices (id) ON DELETE CASCADE,
  key_id bigint NOT NULL,
  public_key bytea NOT NULL CHECK (octet_length(public_key) = 32),
  signature bytea NOT NULL CHECK (octet_length(signature) = 64),
  PRIMARY KEY (device, key_id)
);
CREATE TABLE one_time_prekeys (
  device bigint NOT NULL REFERENCES devices (id) ON DELETE CASCADE,
  key_id bigint NOT NULL,
  public_key bytea NOT NULL CHECK (octet_length(public_key) = 32),
  PRIMARY KEY (device, key_id)
);
CREATE TABLE envelopes (
  id bigint PRIMARY KEY,
  sender_device bigint NOT NULL,
  recipient_device bigint NOT NULL REFERENCES devices (id) ON DELETE CASCADE,
  ciphertext bytea NOT NULL
);
CREATE INDEX ON envelopes (recipient_device);
"#;

#[tokio::test]
async fn policy_rules_name_the_rule_the_object_and_the_evidence() {
    let r = run(&[("migrations/001_init.sql", POLICY_BAD)]).await;
    let text = listing(&r);
    let expect: &[(&str, &[&str])] = &[
        (
            "policy.no_private_keys",
            &["identity_keys.private_key_encrypted"],
        ),
        ("policy.no_plaintext_beside_ciphertext", &["messages.body"]),
        ("policy.per_device_addressing", &["messages"]),
        ("policy.key_length", &["identity_keys.public_key"]),
        (
            "policy.keys_vanish_with_device",
            &[
                "identity_keys.device_id",
                "signed_prekeys.signed_prekeys_device_fkey",
            ],
        ),
        ("policy.one_time_prekey_unique", &["one_time_prekeys"]),
        (
            "policy.signed_prekey_signature",
            &["signed_prekeys.public_key"],
        ),
    ];
    for (rule, objs) in expect {
        let mut got = objects(&r, rule);
        got.sort();
        assert_eq!(got, *objs, "{rule}\n{text}");
        for c in r.findings_of(rule) {
            assert!(
                c.sql.as_deref().is_some_and(|s| s.contains("SELECT")),
                "{rule}: no evidence SQL"
            );
        }
    }
}

#[tokio::test]
async fn a_schema_that_follows_the_policy_has_no_policy_finding() {
    let r = run(&[("migrations/001_init.sql", POLICY_GOOD)]).await;
    let policy: Vec<_> = r
        .problems()
        .filter(|c| {
            c.rule
                .as_deref()
                .is_some_and(|x| x.starts_with("policy.") || x.starts_with("detect."))
        })
        .collect();
    assert!(policy.is_empty(), "{}", listing(&r));
}

// ---- 6. documented SQL is executed, not trusted ----------------------------------------

const VACUITY_SCHEMA: &str = r#"
CREATE TABLE accounts (id bigint PRIMARY KEY, email text NOT NULL, updated_at timestamptz);
CREATE UNIQUE INDEX accounts_email_idx ON accounts (email);
CREATE FUNCTION touch() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN NEW.updated_at := '2001-01-01 00:00:00+00'; RETURN NEW; END $$;
CREATE TRIGGER accounts_touch BEFORE UPDATE ON accounts FOR EACH ROW EXECUTE FUNCTION touch();
"#;

#[tokio::test]
async fn a_verification_that_survives_dropping_what_it_names_is_flagged() {
    let expect = r#"
[[succeeds]]
sql = "INSERT INTO accounts (id, email) VALUES (1, 'a@example.org'); UPDATE accounts SET email = 'b@example.org' WHERE id = 1"

[[query]]
name = "index accounts_email_idx is in place"
sql = "SELECT count(*) FROM accounts"
rows = [[1]]

[[query]]
name = "trigger accounts_touch sets updated_at"
sql = "SELECT updated_at = '2001-01-01 00:00:00+00' FROM accounts WHERE id = 1"
rows = [["t"]]
"#;
    let r = run(&[
        ("migrations/001_init.sql", VACUITY_SCHEMA),
        ("expect.toml", expect),
    ])
    .await;
    let found = objects(&r, "detect.vacuous_verification");
    assert_eq!(found.len(), 1, "{}", listing(&r));
    assert!(
        found[0].ends_with("index accounts_email_idx on accounts"),
        "{found:?}"
    );
    // The trigger's verification broke when the trigger was dropped: not vacuous.
    assert!(
        r.checks
            .iter()
            .any(|c| c.name.contains("trigger accounts_touch on accounts")
                && c.status == e2ee_harness::conform::outcome::Status::Pass),
        "{}",
        listing(&r)
    );
}

#[tokio::test]
async fn a_verification_that_reads_the_object_is_not_flagged() {
    let expect = r#"
[[query]]
name = "index accounts_email_idx is in place"
sql = "SELECT count(*) FROM pg_indexes WHERE indexname = 'accounts_email_idx'"
rows = [[1]]
"#;
    let r = run(&[
        ("migrations/001_init.sql", VACUITY_SCHEMA),
        ("expect.toml", expect),
    ])
    .await;
    assert!(
        objects(&r, "detect.vacuous_verification").is_empty(),
        "{}",
        listing(&r)
    );
    assert!(
        r.checks
            .iter()
            .any(|c| c.name.contains("index accounts_email_idx on accounts")
                && c.detail.contains("no longer holds")),
        "{}",
        listing(&r)
    );
}
