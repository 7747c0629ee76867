//! Acceptance: `e2ee-harness conform --schema reference` passes, with the reference schema's
//! expectations (reference-server/expect.toml) written out in full.

use e2ee_harness::conform::{self, outcome::Kind, outcome::Status};
use e2ee_harness::schema_pack::SchemaPack;

#[tokio::test]
async fn the_reference_schema_conforms_to_its_expectations() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let (pack, expect) =
        conform::load(SchemaPack::resolve("reference", root).expect("reference pack"))
            .expect("expect.toml");
    let pg = disposable_pg::shared_for_tests();
    let report = conform::run(pg, &pack, &expect).await.expect("run");
    let text = conform::report::text(&report, None);
    assert!(report.held(), "{text}");
    // Written out in full: every table is asserted, and behaviour is exercised.
    for kind in [
        Kind::Migrations,
        Kind::Catalog,
        Kind::Probes,
        Kind::Hazards,
        Kind::Behaviour,
    ] {
        assert!(
            report
                .checks
                .iter()
                .any(|c| c.kind == kind && c.status == Status::Pass),
            "{kind:?}:\n{text}"
        );
    }
    let tables: Vec<String> = report
        .checks
        .iter()
        .filter_map(|c| {
            c.name
                .strip_prefix("table ")
                .and_then(|n| n.strip_suffix(" has no other columns"))
                .map(str::to_string)
        })
        .collect();
    let catalog_tables = [
        "devices",
        "envelopes",
        "key_events",
        "messages",
        "one_time_prekeys",
        "signed_prekeys",
        "users",
    ];
    for t in catalog_tables {
        assert!(
            tables.iter().any(|x| x == t),
            "{t} has no exact column list:\n{text}"
        );
    }
}
