//! The conformance engine against small schemas, each with one known defect, on a real
//! PostgreSQL from the provider. Each test asserts the engine reports that defect (and that a
//! correct schema yields no findings).

use e2ee_harness::conform::{self, outcome::ConformReport, outcome::Status};
use e2ee_harness::schema_pack::SchemaPack;
use e2ee_harness::Error;

/// Writes a pack into a temp dir: `files` are paths relative to the pack (e.g.
/// `migrations/001_init.sql`, `expect.toml`).
fn pack(files: &[(&str, &str)]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("temp dir");
    for (path, body) in files {
        let p = dir.path().join(path);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, body).unwrap();
    }
    dir
}

async fn run(files: &[(&str, &str)]) -> Result<ConformReport, Error> {
    let dir = pack(files);
    let pg = disposable_pg::shared_for_tests();
    let (pack, expect) = conform::load(SchemaPack::load(dir.path())?)?;
    conform::run(pg, &pack, &expect).await
}

fn listing(r: &ConformReport) -> String {
    conform::report::text(r, None)
}

/// A schema with nothing wrong: keys, checks, indexed FKs, timestamptz, a migrations table,
/// a clean rollback, a trigger with NOTIFY.
const GOOD_001: &str = r#"
CREATE TABLE schema_migrations (version text PRIMARY KEY);
INSERT INTO schema_migrations (version) VALUES ('001');
CREATE TABLE users (
  id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  email text NOT NULL UNIQUE,
  status text NOT NULL DEFAULT 'active' CHECK (status IN ('active', 'disabled')),
  created_at timestamptz NOT NULL DEFAULT now()
);
CREATE TABLE devices (
  user_id uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
  device_id integer NOT NULL CHECK (device_id BETWEEN 1 AND 127),
  identity_key bytea NOT NULL CHECK (octet_length(identity_key) = 32),
  label text CHECK (length(label) <= 64),
  PRIMARY KEY (user_id, device_id)
);
CREATE TABLE prekeys (
  user_id uuid NOT NULL,
  device_id integer NOT NULL,
  key_id integer NOT NULL CHECK (key_id >= 0),
  public_key bytea NOT NULL UNIQUE CHECK (octet_length(public_key) = 32),
  consumed_at timestamptz,
  PRIMARY KEY (user_id, device_id, key_id),
  FOREIGN KEY (user_id, device_id) REFERENCES devices (user_id, device_id) ON DELETE CASCADE
);
CREATE INDEX prekeys_available ON prekeys (user_id, device_id) WHERE consumed_at IS NULL;
CREATE TABLE messages (
  id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  sender uuid REFERENCES users (id) ON DELETE SET NULL,
  reply_to bigint REFERENCES messages (id) ON DELETE SET NULL,
  body bytea NOT NULL
);
CREATE INDEX messages_sender ON messages (sender);
CREATE INDEX messages_reply_to ON messages (reply_to DESC);
CREATE FUNCTION notify_message() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  PERFORM pg_notify('new_message', json_build_object('kind', 'message', 'bytes', octet_length(NEW.body))::text);
  RETURN NEW;
END $$;
CREATE TRIGGER messages_notify AFTER INSERT ON messages FOR EACH ROW EXECUTE FUNCTION notify_message();
"#;

const GOOD_001_DOWN: &str = r#"
DROP TABLE messages;
DROP FUNCTION notify_message();
DROP TABLE prekeys;
DROP TABLE devices;
DROP TABLE users;
DROP TABLE schema_migrations;
"#;

const GOOD_002: &str = r#"
ALTER TABLE users ADD COLUMN display_name text NOT NULL DEFAULT 'anonymous';
INSERT INTO schema_migrations (version) VALUES ('002');
"#;

const GOOD_002_DOWN: &str = r#"
ALTER TABLE users DROP COLUMN display_name;
DELETE FROM schema_migrations WHERE version = '002';
"#;

const GOOD_EXPECT: &str = r#"
[[table]]
name = "users"
exact_columns = true
columns = [
  { name = "id", type = "uuid", nullable = false, default = "gen_random_uuid()" },
  { name = "email", type = "text", nullable = false, no_default = true },
  { name = "status", type = "text", nullable = false, default = "'active'" },
  { name = "created_at", type = "timestamptz", nullable = false, default = "now()" },
  { name = "display_name", type = "text", default = "'anonymous'" },
]
primary_key = ["id"]
unique = [["email"]]
checks = [ { expr = "status IN ('active', 'disabled')" } ]

[[table]]
name = "devices"
columns = [ { name = "device_id", type = "int", nullable = false } ]
primary_key = ["user_id", "device_id"]
checks = [ { name = "devices_identity_key_check", expr = "octet_length(identity_key) = 32" } ]
foreign_keys = [ { columns = ["user_id"], references = "users", ref_columns = ["id"], on_delete = "cascade" } ]

[[table]]
name = "prekeys"
unique = [["public_key"]]
indexes = [ { name = "prekeys_available", columns = ["user_id", "device_id"], unique = false, where = "consumed_at is null" } ]
foreign_keys = [ { columns = ["user_id", "device_id"], references = "devices", on_delete = "cascade" } ]

[[table]]
name = "messages"
columns = [ { name = "id", type = "int8", identity = "always" } ]
foreign_keys = [ { columns = ["sender"], references = "users", on_delete = "set null" } ]
indexes = [ { name = "messages_reply_to", columns = ["reply_to DESC"], where = "" } ]
triggers = [ { name = "messages_notify", timing = "after", level = "row", events = ["insert"], function = "notify_message" } ]

[[function]]
name = "notify_message"
returns = "trigger"
language = "plpgsql"

[[seed]]
before = 2
sql = "INSERT INTO users (email) VALUES ('old@example.org')"
after = [ { sql = "SELECT display_name FROM users WHERE email = 'old@example.org'", rows = [["anonymous"]] } ]

[[succeeds]]
name = "a user with a device"
sql = """
INSERT INTO users (id, email) VALUES ('00000000-0000-0000-0000-000000000001', 'a@example.org');
INSERT INTO devices (user_id, device_id, identity_key)
  VALUES ('00000000-0000-0000-0000-000000000001', 1, decode(repeat('ab', 32), 'hex'));
"""

[[fails]]
name = "emails are unique"
sql = "INSERT INTO users (email) VALUES ('a@example.org')"
sqlstate = "23505"
constraint = "users_email_key"

[[fails]]
name = "identity keys are 32 bytes"
sql = "INSERT INTO devices (user_id, device_id, identity_key) VALUES ('00000000-0000-0000-0000-000000000001', 2, '\\x00')"
sqlstate = "23514"

[[query]]
sql = "SELECT email, status, display_name FROM users WHERE email = 'a@example.org'"
rows = [["a@example.org", "active", "anonymous"]]

[[notify]]
channel = "new_message"
sql = "INSERT INTO messages (sender, body) VALUES ('00000000-0000-0000-0000-000000000001', '\\x0102')"
payload_json = { kind = "message", bytes = 2 }

[[cascade]]
delete = "DELETE FROM users WHERE id = '00000000-0000-0000-0000-000000000001'"
count = "SELECT count(*) FROM devices WHERE user_id = '00000000-0000-0000-0000-000000000001'"
expect = 0
"#;

fn good_pack(expect: &str) -> Vec<(&'static str, &str)> {
    vec![
        ("migrations/001_init.sql", GOOD_001),
        ("migrations/001_init.down.sql", GOOD_001_DOWN),
        ("migrations/002_names.sql", GOOD_002),
        ("migrations/002_names_down.sql", GOOD_002_DOWN),
        ("expect.toml", expect),
    ]
}

#[tokio::test]
async fn a_correct_schema_yields_no_findings_and_every_assertion_holds() {
    let r = run(&good_pack(GOOD_EXPECT)).await.expect("run");
    let text = listing(&r);
    assert!(r.held(), "expected no failure or finding:\n{text}");
    assert_eq!(r.outcome().code(), 0);
    let s = r.summary();
    assert_eq!((s.failed, s.findings), (0, 0), "{text}");
    // The probes actually probed: PK, unique, FK, delete rules, NOT NULL and CHECKs all passed.
    for needle in [
        "probe.primary_key users.users_pkey",
        "probe.unique users.users_email_key",
        "probe.foreign_key devices.devices_user_id_fkey",
        "probe.delete_rule devices.devices_user_id_fkey",
        "probe.delete_rule messages.messages_sender_fkey",
        "probe.delete_rule messages.messages_reply_to_fkey",
        "probe.not_null devices.identity_key",
        "probe.check devices.devices_device_id_check",
        "probe.check devices.devices_identity_key_check",
        "probe.check users.users_status_check",
    ] {
        let c = r
            .checks
            .iter()
            .find(|c| c.name == needle)
            .unwrap_or_else(|| panic!("no check {needle}:\n{text}"));
        assert_eq!(c.status, Status::Pass, "{needle}: {}", c.detail);
    }
    // Migration checks ran: refused re-apply, exact rollbacks, preserved rows and defaults.
    for needle in [
        "apply again 001_init.sql",
        "rollback 001_init.down.sql",
        "rollback 002_names_down.sql",
        "rows survive 002_names.sql",
        "new column users.display_name filled in existing rows (= 'anonymous'::text)",
    ] {
        assert!(
            r.checks
                .iter()
                .any(|c| c.name == needle && c.status == Status::Pass),
            "{needle}:\n{text}"
        );
    }
    // Every behaviour assertion ran and passed.
    assert_eq!(
        r.checks
            .iter()
            .filter(|c| c.kind == conform::outcome::Kind::Behaviour)
            .count(),
        6,
        "{text}"
    );
}

#[tokio::test]
async fn a_missing_unique_is_reported() {
    let schema = "CREATE TABLE schema_migrations (version text PRIMARY KEY);\n\
                  INSERT INTO schema_migrations VALUES ('1');\n\
                  CREATE TABLE users (id bigint PRIMARY KEY, email text NOT NULL);";
    let expect = "[[table]]\nname = \"users\"\nunique = [[\"email\"]]\n\n\
                  [[succeeds]]\nsql = \"INSERT INTO users VALUES (1, 'a@x')\"\n\n\
                  [[fails]]\nsql = \"INSERT INTO users VALUES (2, 'a@x')\"\nsqlstate = \"23505\"\n";
    let r = run(&[("migrations/1_users.sql", schema), ("expect.toml", expect)])
        .await
        .expect("run");
    let text = listing(&r);
    let c = r
        .checks
        .iter()
        .find(|c| c.name == "table users unique (email)")
        .expect("the unique assertion");
    assert_eq!(c.status, Status::Fail, "{text}");
    assert!(c.detail.contains("duplicates are accepted"), "{}", c.detail);
    let dup = r
        .checks
        .iter()
        .find(|c| c.name.starts_with("fails "))
        .expect("the [[fails]] assertion");
    assert_eq!(dup.status, Status::Fail, "{text}");
    assert!(
        dup.detail.contains("succeeded; expected SQLSTATE 23505"),
        "{}",
        dup.detail
    );
    assert_eq!(r.outcome().code(), 1);
}

#[tokio::test]
async fn a_check_that_admits_a_bad_value_is_a_finding_with_its_text_and_value() {
    // The seed documents' mistake: NULL in an IN list makes every value pass.
    let schema = "CREATE TABLE schema_migrations (version text PRIMARY KEY);\n\
                  INSERT INTO schema_migrations VALUES ('1');\n\
                  CREATE TABLE verifications (id bigint PRIMARY KEY,\n\
                    method text CHECK (method IN ('manual', 'qr_code', NULL)),\n\
                    version integer NOT NULL CHECK (version IN (1, 2)));";
    let r = run(&[("migrations/001_v.sql", schema)]).await.expect("run");
    let text = listing(&r);
    let findings: Vec<_> = r.findings_of("probe.check").collect();
    assert_eq!(findings.len(), 1, "{text}");
    let f = findings[0];
    assert_eq!(
        f.object.as_deref(),
        Some("verifications.verifications_method_check")
    );
    assert!(
        f.detail
            .contains("CHECK (method = ANY (ARRAY['manual'::text, 'qr_code'::text, NULL::text]))"),
        "{}",
        f.detail
    );
    assert!(
        f.detail.contains("accepted method = 'zz_probe_"),
        "{}",
        f.detail
    );
    assert!(
        f.sql
            .as_deref()
            .unwrap_or_default()
            .contains("INSERT INTO \"public\".\"verifications\""),
        "{f:?}"
    );
    // The sound CHECK on the same table is proven, not flagged.
    let sound = r
        .checks
        .iter()
        .find(|c| c.name == "probe.check verifications.verifications_version_check")
        .unwrap();
    assert_eq!(sound.status, Status::Pass, "{text}");
    assert_eq!(r.outcome().code(), 1);
}

#[tokio::test]
async fn a_rollback_that_leaves_a_table_behind_fails() {
    let up = "CREATE TABLE schema_migrations (version text PRIMARY KEY);\n\
              INSERT INTO schema_migrations VALUES ('1');\n\
              CREATE TABLE a (id bigint PRIMARY KEY);";
    let up2 = "CREATE TABLE b (id bigint PRIMARY KEY);\nCREATE TABLE c (id bigint PRIMARY KEY);\n\
               INSERT INTO schema_migrations VALUES ('2');";
    let down2 = "DROP TABLE b;\nDELETE FROM schema_migrations WHERE version = '2';";
    let r = run(&[
        ("migrations/1_a.sql", up),
        ("migrations/2_bc.sql", up2),
        ("migrations/2_bc.down.sql", down2),
    ])
    .await
    .expect("run");
    let text = listing(&r);
    let c = r
        .checks
        .iter()
        .find(|c| c.name == "rollback 2_bc.down.sql")
        .expect("rollback check");
    assert_eq!(c.status, Status::Fail, "{text}");
    assert!(
        c.detail.contains("table public.c is left behind"),
        "{}",
        c.detail
    );
    assert!(
        !c.detail.contains("public.b"),
        "b was dropped: {}",
        c.detail
    );
    assert!(
        r.checks
            .iter()
            .any(|c| c.name == "rollback of 1_a.sql" && c.status == Status::Skip),
        "{text}"
    );
}

#[tokio::test]
async fn an_unindexed_foreign_key_is_a_hazard() {
    let schema = "CREATE TABLE schema_migrations (version text PRIMARY KEY);\n\
                  INSERT INTO schema_migrations VALUES ('1');\n\
                  CREATE TABLE users (id bigint PRIMARY KEY);\n\
                  CREATE TABLE devices (id bigint PRIMARY KEY, user_id bigint NOT NULL REFERENCES users ON DELETE CASCADE);\n\
                  CREATE TABLE sessions (id bigint PRIMARY KEY, user_id bigint NOT NULL REFERENCES users ON DELETE CASCADE);\n\
                  CREATE INDEX ON sessions (user_id);";
    let r = run(&[("migrations/001_fk.sql", schema)])
        .await
        .expect("run");
    let text = listing(&r);
    let found: Vec<_> = r.findings_of("hazard.fk_unindexed").collect();
    assert_eq!(found.len(), 1, "{text}");
    assert_eq!(
        found[0].object.as_deref(),
        Some("devices.devices_user_id_fkey")
    );
    assert!(found[0]
        .sql
        .as_deref()
        .unwrap()
        .contains("CREATE INDEX ON \"public\".\"devices\" (\"user_id\")"));
}

#[tokio::test]
async fn other_hazards_are_flagged_and_waivers_accept_them_with_a_reason() {
    let schema = "CREATE TABLE schema_migrations (version text PRIMARY KEY);\n\
                  INSERT INTO schema_migrations VALUES ('1');\n\
                  CREATE TABLE users (id bigint PRIMARY KEY);\n\
                  CREATE TABLE log (user_id integer REFERENCES users, at timestamp, code char(4), note varchar(10));\n\
                  CREATE INDEX log_user ON log (user_id);\n\
                  CREATE INDEX log_user_again ON log (user_id);\n\
                  CREATE INDEX log_user_at ON log (user_id, at);";
    let expect = "[[waive]]\nrule = \"hazard.char_n\"\nobject = \"log.code\"\nreason = \"fixed-width legacy code\"\n\n\
                  [[waive]]\nrule = \"hazard.money\"\nobject = \"log.nothing\"\nreason = \"stale\"\n";
    let r = run(&[("migrations/001_h.sql", schema), ("expect.toml", expect)])
        .await
        .expect("run");
    let text = listing(&r);
    for (rule, object) in [
        ("hazard.no_primary_key", "log"),
        ("hazard.fk_type_mismatch", "log.user_id"),
        ("hazard.timestamp_without_tz", "log.at"),
        ("hazard.duplicate_index", "log.log_user_again"),
        ("hazard.redundant_index", "log.log_user"),
    ] {
        assert!(
            r.findings_of(rule)
                .any(|c| c.object.as_deref() == Some(object)),
            "{rule} {object}:\n{text}"
        );
    }
    // varchar(n) is policy, not a hazard.
    assert!(!text.contains("log.note"), "{text}");
    let waived = r
        .checks
        .iter()
        .find(|c| c.rule.as_deref() == Some("hazard.char_n"))
        .unwrap();
    assert_eq!(waived.status, Status::Waived, "{text}");
    assert!(waived.detail.contains("fixed-width legacy code"));
    let stale = r
        .checks
        .iter()
        .find(|c| c.name == "waiver hazard.money log.nothing")
        .expect("stale waiver reported");
    assert_eq!(stale.status, Status::Fail);
}

#[tokio::test]
async fn catalog_assertions_fail_with_what_differs() {
    let expect = r#"
[[table]]
name = "users"
columns = [
  { name = "email", type = "varchar(64)" },
  { name = "status", default = "'disabled'" },
  { name = "created_at", nullable = true },
  { name = "nope" },
]
primary_key = ["email"]
checks = [ { expr = "status IN ('active')" } ]

[[table]]
name = "prekeys"
indexes = [ { name = "prekeys_available", where = "consumed_at IS NOT NULL" } ]

[[table]]
name = "messages"
foreign_keys = [ { columns = ["sender"], references = "users", on_delete = "cascade" } ]
triggers = [ { name = "messages_notify", timing = "before", events = ["insert", "update"] } ]

[[table]]
name = "missing_table"

[[view]]
name = "no_such_view"

[[function]]
name = "notify_message"
returns = "integer"
"#;
    let r = run(&good_pack(expect)).await.expect("run");
    let text = listing(&r);
    let detail = |name: &str| {
        let c = r
            .checks
            .iter()
            .find(|c| c.name == name)
            .unwrap_or_else(|| panic!("no check {name}:\n{text}"));
        assert_eq!(c.status, Status::Fail, "{name} should fail:\n{text}");
        c.detail.clone()
    };
    assert!(detail("column users.email").contains("type is text, expected character varying(64)"));
    assert!(detail("column users.status")
        .contains("default is 'active'::text, expected 'disabled'::text"));
    assert!(detail("column users.created_at").contains("is NOT NULL, expected nullable"));
    assert_eq!(detail("column users.nope"), "not found");
    assert!(detail("table users primary key (email)").contains("primary key is (id)"));
    assert!(detail("check users.status IN ('active')").contains("no such CHECK"));
    assert!(detail("index prekeys.prekeys_available").contains("predicate is consumed_at IS NULL"));
    assert!(detail("foreign key messages(sender) → users")
        .contains("ON DELETE is set null, expected cascade"));
    let trg = detail("trigger messages.messages_notify");
    assert!(
        trg.contains("fires after, expected before")
            && trg.contains("events are insert, expected insert/update"),
        "{trg}"
    );
    assert_eq!(detail("table missing_table exists"), "not found");
    assert_eq!(detail("view no_such_view exists"), "not found");
    assert!(detail("function notify_message").contains("returns trigger, expected integer"));
    // The assertions that match still pass beside them.
    assert!(r
        .checks
        .iter()
        .any(|c| c.name == "table users exists" && c.status == Status::Pass));
}

#[tokio::test]
async fn a_migration_that_fails_on_rows_or_repeats_itself_is_reported() {
    // No migrations table and a plain CREATE: applying again is neither idempotent nor refused.
    let up1 = "CREATE TABLE items (id bigint PRIMARY KEY, name text NOT NULL);";
    // Works on an empty table, fails once it holds rows.
    let up2 = "ALTER TABLE items ADD COLUMN owner text NOT NULL;";
    let r = run(&[
        ("migrations/1_items.sql", up1),
        ("migrations/2_owner.sql", up2),
    ])
    .await
    .expect("run");
    let text = listing(&r);
    let again = r
        .checks
        .iter()
        .find(|c| c.name == "apply again 1_items.sql")
        .unwrap();
    assert_eq!(again.status, Status::Fail, "{text}");
    assert!(
        again.detail.contains("relation \"items\" already exists"),
        "{}",
        again.detail
    );
    let rows = r
        .checks
        .iter()
        .find(|c| c.name == "2_owner.sql applies on tables holding rows")
        .unwrap();
    assert_eq!(rows.status, Status::Fail, "{text}");
    assert!(
        rows.detail.contains("contains null values"),
        "{}",
        rows.detail
    );
    assert!(rows.detail.contains("2_owner.sql:1:1"), "{}", rows.detail);
}

#[tokio::test]
async fn an_idempotent_migration_passes_apply_again() {
    let up = "CREATE TABLE IF NOT EXISTS items (id bigint PRIMARY KEY);\nCREATE INDEX IF NOT EXISTS items_id ON items (id);";
    let r = run(&[("migrations/1_items.sql", up)]).await.expect("run");
    let c = r
        .checks
        .iter()
        .find(|c| c.name == "apply again 1_items.sql")
        .unwrap();
    assert_eq!(c.status, Status::Pass, "{}", listing(&r));
    assert_eq!(c.detail, "idempotent");
}

#[tokio::test]
async fn a_syntax_error_is_a_bad_pack_naming_file_statement_and_position() {
    let up = "CREATE TABLE ok (id bigint PRIMARY KEY);\n\n-- the second statement is wrong\nCREATE TABEL broken (id bigint);\n";
    let err = run(&[
        ("migrations/001_ok.sql", "SELECT 1;"),
        ("migrations/002_broken.sql", up),
    ])
    .await
    .unwrap_err();
    assert_eq!(err.outcome().code(), 2);
    let msg = err.to_string();
    assert!(msg.contains("002_broken.sql:4:8"), "{msg}");
    assert!(msg.contains("statement 2 failed"), "{msg}");
    assert!(msg.contains("syntax error at or near \"TABEL\""), "{msg}");
    assert!(msg.contains("CREATE TABEL broken"), "{msg}");
}

#[tokio::test]
async fn bad_pack_layouts_are_refused_before_any_database() {
    let dir = pack(&[
        ("migrations/001_a.sql", "SELECT 1;"),
        ("migrations/a.sql", "SELECT 1;"),
    ]);
    let e = SchemaPack::load(dir.path()).unwrap_err();
    assert_eq!(e.outcome().code(), 2);
    assert!(
        e.to_string().contains("a.sql: not a migration file name"),
        "{e}"
    );

    let dir = pack(&[
        ("migrations/001_a.sql", "SELECT 1;"),
        ("migrations/002_b.down.sql", "SELECT 1;"),
    ]);
    assert!(SchemaPack::load(dir.path())
        .unwrap_err()
        .to_string()
        .contains("a rollback for migration 2, which does not exist"));

    let dir = pack(&[
        ("migrations/001_a.sql", "SELECT 1;"),
        (
            "expect.toml",
            "[[table]]\nname = \"t\"\nprimary_key = \"id\"\n",
        ),
    ]);
    let e = conform::load(SchemaPack::load(dir.path()).unwrap()).unwrap_err();
    assert!(e.to_string().contains("expect.toml:3:15"), "{e}");

    let dir = pack(&[
        ("migrations/001_a.sql", "SELECT 1;"),
        ("expect.toml", "[[seed]]\nbefore = 9\nsql = \"SELECT 1\"\n"),
    ]);
    let e = conform::load(SchemaPack::load(dir.path()).unwrap()).unwrap_err();
    assert!(
        e.to_string().contains("no up migration has that number"),
        "{e}"
    );

    let dir = pack(&[
        ("migrations/001_a.sql", "SELECT 1;"),
        (
            "expect.toml",
            "[[table]]\nname = \"t\"\nindexes = [ { columns = [\"at NULLS\"] } ]\n",
        ),
    ]);
    let e = conform::load(SchemaPack::load(dir.path()).unwrap()).unwrap_err();
    assert_eq!(e.outcome().code(), 2);
    let msg = e.to_string();
    assert!(
        msg.contains("expect.toml:1:1") && msg.contains("NULLS needs FIRST or LAST"),
        "{msg}"
    );
}

/// Prisma-style camelCase columns: SQL must quote them, `pg_get_indexdef` prints them quoted,
/// `expect.toml` and foreign keys name them as they are.
const CAMEL_001: &str = r#"
CREATE TABLE schema_migrations (version text PRIMARY KEY);
INSERT INTO schema_migrations VALUES ('001');
CREATE TABLE conversations (id text PRIMARY KEY);
CREATE TABLE users (id text PRIMARY KEY);
CREATE TABLE messages (
  id text PRIMARY KEY,
  "conversationId" text NOT NULL REFERENCES conversations (id) ON DELETE CASCADE,
  "senderId" text NOT NULL REFERENCES users (id) ON DELETE CASCADE,
  "replyToId" text REFERENCES messages (id) ON DELETE SET NULL,
  "clientMsgId" text NOT NULL,
  "createdAt" timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX messages_conversation_created ON messages ("conversationId", "createdAt" DESC);
CREATE INDEX "messages_conversationId_idx" ON messages ("conversationId");
CREATE INDEX "messages_senderId_idx" ON messages ("senderId");
CREATE INDEX messages_sender_created ON messages ("senderId" DESC, "createdAt" DESC);
CREATE INDEX messages_created ON messages ("createdAt");
CREATE UNIQUE INDEX messages_client ON messages ("clientMsgId" DESC);
CREATE INDEX messages_client_prefix ON messages ("clientMsgId" text_pattern_ops);
CREATE INDEX messages_lower_id ON messages (lower(id) DESC NULLS LAST);
"#;

#[tokio::test]
async fn camel_case_index_columns_compare_by_real_name_and_sort_order() {
    let expect = r#"
[[table]]
name = "messages"
unique = [ ["clientMsgId"] ]
foreign_keys = [ { columns = ["conversationId"], references = "conversations", on_delete = "cascade" } ]
indexes = [
  { name = "messages_conversation_created", columns = ["conversationId", "createdAt DESC"], where = "" },
  { name = "messages_senderId_idx", columns = ["\"senderId\""] },
  { columns = ["senderId DESC", "createdAt desc nulls first"] },
  { name = "messages_created", columns = ["createdAt ASC"] },
  { name = "messages_client", columns = ["clientMsgId DESC"], unique = true },
  { name = "messages_lower_id", columns = ["lower(id) DESC NULLS LAST"] },
]
"#;
    let r = run(&[
        ("migrations/001_camel.sql", CAMEL_001),
        ("expect.toml", expect),
    ])
    .await
    .expect("run");
    let text = listing(&r);
    let passes = |name: &str| {
        let c = r
            .checks
            .iter()
            .find(|c| c.name == name)
            .unwrap_or_else(|| panic!("no check {name}:\n{text}"));
        assert_eq!(c.status, Status::Pass, "{name}: {}\n{text}", c.detail);
    };
    for name in [
        "index messages.messages_conversation_created",
        "index messages.messages_senderId_idx",
        "index messages.on (senderId DESC, createdAt desc nulls first)",
        "index messages.messages_created",
        "index messages.messages_client",
        "index messages.messages_lower_id",
        "table messages unique (clientMsgId)",
        // A unique index on a DESC column is still probed as a plain column.
        "probe.unique messages.messages_client",
    ] {
        passes(name);
    }
    assert_eq!(r.summary().failed, 0, "{text}");

    // Indexed camelCase FKs are covered; only replyToId has no index, and the fix quotes it.
    let unindexed: Vec<_> = r.findings_of("hazard.fk_unindexed").collect();
    assert_eq!(unindexed.len(), 1, "{text}");
    assert_eq!(
        unindexed[0].object.as_deref(),
        Some("messages.messages_replyToId_fkey")
    );
    let fix = unindexed[0].sql.as_deref().unwrap();
    assert!(
        fix.contains(r#"CREATE INDEX ON "public"."messages" ("replyToId")"#),
        "{fix}"
    );

    // (conversationId) leads (conversationId, createdAt DESC); (senderId) is
    // (senderId DESC, createdAt DESC) scanned backwards; (createdAt) leads nothing; the
    // text_pattern_ops index serves LIKE prefixes the unique index cannot.
    let redundant: Vec<_> = r.findings_of("hazard.redundant_index").collect();
    let objects: Vec<_> = redundant
        .iter()
        .filter_map(|c| c.object.as_deref())
        .collect();
    assert_eq!(
        objects,
        [
            "messages.messages_conversationId_idx",
            "messages.messages_senderId_idx"
        ],
        "{text}"
    );
    assert!(
        redundant[0]
            .detail
            .contains("(conversationId) is a leading prefix of messages_conversation_created (conversationId, createdAt DESC)"),
        "{}",
        redundant[0].detail
    );
}

#[tokio::test]
async fn index_assertions_fail_on_the_wrong_sort_order_or_the_wrong_case() {
    let expect = r#"
[[table]]
name = "messages"
indexes = [
  { name = "messages_conversation_created", columns = ["conversationId", "createdAt"] },
  { name = "messages_senderId_idx", columns = ["senderId DESC"] },
  { name = "messages_created", columns = ["createdAt DESC"] },
  { columns = ["createdAt DESC"] },
  { columns = ["conversationid"] },
  { name = "messages_lower_id", columns = ["lower(id) DESC"] },
]
"#;
    let r = run(&[
        ("migrations/001_camel.sql", CAMEL_001),
        ("expect.toml", expect),
    ])
    .await
    .expect("run");
    let text = listing(&r);
    let fails = |name: &str| {
        let c = r
            .checks
            .iter()
            .find(|c| c.name == name)
            .unwrap_or_else(|| panic!("no check {name}:\n{text}"));
        assert_eq!(c.status, Status::Fail, "{name} should fail:\n{text}");
        c.detail.clone()
    };
    let d = fails("index messages.messages_conversation_created");
    assert!(
        d.contains(
            "columns are (conversationId, createdAt DESC), expected (conversationId, createdAt)"
        ),
        "{d}"
    );
    let d = fails("index messages.messages_senderId_idx");
    assert!(
        d.contains("columns are (senderId), expected (senderId DESC)"),
        "{d}"
    );
    let d = fails("index messages.messages_created");
    assert!(
        d.contains("columns are (createdAt), expected (createdAt DESC)"),
        "{d}"
    );
    // No index is exactly (createdAt DESC); a bare name matches the column's real spelling only.
    assert!(fails("index messages.on (createdAt DESC)").starts_with("not found"));
    assert!(fails("index messages.on (conversationid)").starts_with("not found"));
    // DESC on an expression defaults to NULLS FIRST; the index sorts NULLs last.
    let d = fails("index messages.messages_lower_id");
    assert!(
        d.contains("columns are (lower(id) DESC NULLS LAST), expected (lower(id) DESC)"),
        "{d}"
    );
}
