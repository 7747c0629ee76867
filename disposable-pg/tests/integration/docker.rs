//! The Docker provider against a real engine: start, readiness, settings read back, removal on
//! drop, and the reasons it gives when it cannot serve.
//!
//! These tests need a Docker engine and a PostgreSQL image in it: `E2EE_HARNESS_PG_IMAGE`, or
//! `e2ee-harness/postgres:15` as `docker/postgres/build-image.sh 15` builds it from Debian's
//! packages (`.ci/run` does). Without them they fail and say so: never a silent skip.

use disposable_pg::{Choice, Durability, Error, Options, Postgres, ProviderKind};

fn image() -> String {
    disposable_pg::Options::image_for_tests()
}

fn docker(durability: Durability) -> Options {
    Options {
        choice: Choice::Docker,
        image: image(),
        durability,
        ..Options::default()
    }
}

async fn start(options: &Options) -> Postgres {
    match Postgres::start(options).await {
        Ok(pg) => pg,
        Err(e) => panic!(
            "the Docker provider failed with image {}: {e}\n\
             these tests need a Docker engine and that image: build it with \
             `docker/postgres/build-image.sh 15` (as root), or set E2EE_HARNESS_PG_IMAGE",
            options.image
        ),
    }
}

/// Whether the engine still knows the container (running or not).
fn container_exists(id: &str) -> bool {
    std::process::Command::new("docker")
        .args([
            "ps",
            "-a",
            "-q",
            "--no-trunc",
            "--filter",
            &format!("id={id}"),
        ])
        .output()
        .map(|o| !String::from_utf8_lossy(&o.stdout).trim().is_empty())
        .unwrap_or(false)
}

#[tokio::test]
async fn serves_queries_reads_durable_settings_back_and_is_removed_on_drop() {
    let pg = start(&docker(Durability::Durable)).await;
    assert_eq!(pg.kind(), ProviderKind::Docker);
    assert!(
        pg.durable(),
        "durable settings not read back: {}",
        pg.describe()
    );
    let id = pg.container_id().expect("a Docker server has a container");
    assert!(container_exists(&id));
    let c = disposable_pg::connect(pg.url()).await.unwrap();
    let row = c
        .query_one(
            "SELECT current_setting('fsync'), current_setting('synchronous_commit'), \
             current_setting('max_connections')::int",
            &[],
        )
        .await
        .unwrap();
    assert_eq!(row.get::<_, String>(0), "on");
    assert_eq!(row.get::<_, String>(1), "on");
    assert_eq!(row.get::<_, i32>(2), 300);
    // Databases can be made and dropped as on any provider.
    let url = pg.create_database("scratch_docker", None).await.unwrap();
    let s = disposable_pg::connect(&url).await.unwrap();
    s.batch_execute("CREATE TABLE t (x int PRIMARY KEY); INSERT INTO t VALUES (1)")
        .await
        .unwrap();
    drop(s);
    pg.drop_database("scratch_docker").await.unwrap();
    drop(c);
    drop(pg);
    assert!(!container_exists(&id), "container {id} left behind");
}

#[tokio::test]
async fn fast_mode_is_read_back_as_fast() {
    let pg = start(&docker(Durability::Fast)).await;
    assert!(!pg.durable(), "{}", pg.describe());
    assert!(pg.describe().contains("docker"), "{}", pg.describe());
}

#[tokio::test]
async fn a_missing_image_is_unavailable_with_the_engines_reason_and_a_way_out() {
    let options = Options {
        image: "e2ee-harness-test/absent:none".into(),
        pull_timeout: std::time::Duration::from_secs(60),
        ..docker(Durability::Fast)
    };
    let err = Postgres::start(&options).await.unwrap_err();
    assert!(matches!(err, Error::DockerImage { .. }), "{err:?}");
    assert_eq!(err.exit_code(), 3);
    let msg = err.to_string();
    assert!(
        msg.contains("e2ee-harness-test/absent:none") && msg.contains("build-image.sh"),
        "{msg}"
    );
    // The engine's own words follow the colon: not empty.
    let Error::DockerImage { reason, .. } = err else {
        unreachable!()
    };
    assert!(!reason.trim().is_empty());
}

#[test]
fn a_panic_while_holding_a_container_still_removes_it() {
    let probe = std::env::temp_dir().join(format!("docker-panic-probe-{}", std::process::id()));
    let p = probe.clone();
    let result = std::panic::catch_unwind(move || {
        let rt = tokio::runtime::Runtime::new().unwrap();
        let pg = rt.block_on(start(&docker(Durability::Fast)));
        std::fs::write(&p, pg.container_id().unwrap()).unwrap();
        panic!("deliberate panic with a live container");
    });
    assert!(result.is_err());
    let id = std::fs::read_to_string(&probe).unwrap();
    std::fs::remove_file(&probe).unwrap();
    assert!(!container_exists(&id), "container {id} survived the panic");
}
