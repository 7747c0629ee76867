//! The provider against real PostgreSQL: local start, root handling, cleanup on drop, template
//! cloning and bad input. The Docker provider has its own file, tests/docker.rs.

use std::path::{Path, PathBuf};
use std::sync::LazyLock;

use disposable_pg::{Choice, Durability, Options, Postgres, ProviderKind, TemplateCache};

fn local_fast() -> Options {
    Options {
        choice: Choice::Local,
        durability: Durability::Fast,
        ..Options::default()
    }
}

fn pid_alive(pid: u32) -> bool {
    // A zombie still answers kill(0); /proc tells the truth about its state.
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(s) => !s
            .split(") ")
            .nth(1)
            .is_some_and(|rest| rest.starts_with('Z')),
        Err(_) => false,
    }
}

/// Every process whose command line names `dir` (the postmaster and all its backends do).
fn processes_using(dir: &Path) -> Vec<u32> {
    let needle = dir.to_string_lossy().to_string();
    std::fs::read_dir("/proc")
        .unwrap()
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| {
            std::fs::read(format!("/proc/{pid}/cmdline"))
                .map(|c| String::from_utf8_lossy(&c).contains(&needle))
                .unwrap_or(false)
        })
        .filter(|pid| pid_alive(*pid))
        .collect()
}

fn uid_of(pid: u32) -> u32 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let line = status.lines().find(|l| l.starts_with("Uid:")).unwrap();
    line.split_whitespace().nth(1).unwrap().parse().unwrap()
}

#[tokio::test]
async fn local_server_accepts_queries_and_is_gone_after_drop() {
    let pg = Postgres::start(&local_fast())
        .await
        .expect("local PostgreSQL");
    assert_eq!(pg.kind(), ProviderKind::Local);
    assert!(!pg.durable(), "fast mode must read back fsync=off");
    let dir = pg.data_dir().unwrap().to_path_buf();
    let pid = pg.pid().unwrap();
    let client = disposable_pg::connect(pg.url()).await.unwrap();
    let n: i32 = client.query_one("SELECT 40 + 2", &[]).await.unwrap().get(0);
    assert_eq!(n, 42);
    assert!(pid_alive(pid));
    assert!(!processes_using(&dir).is_empty());
    drop(client);
    drop(pg);
    assert!(!pid_alive(pid), "postmaster {pid} still running after drop");
    assert!(processes_using(&dir).is_empty(), "backends left behind");
    assert!(!dir.exists(), "{} left behind", dir.display());
}

#[tokio::test]
async fn a_local_restart_keeps_the_data_and_the_address() {
    let pg = Postgres::start(&local_fast()).await.unwrap();
    let before = pg.pid().unwrap();
    let client = disposable_pg::connect(pg.url()).await.unwrap();
    client
        .batch_execute("CREATE TABLE kept (v int); INSERT INTO kept VALUES (7)")
        .await
        .unwrap();
    pg.restart().await.unwrap();
    // The old session ended with the old server; a new one on the same URL sees the data.
    assert!(client.simple_query("SELECT 1").await.is_err());
    let after = pg.pid().unwrap();
    assert_ne!(before, after, "a new postmaster");
    assert!(!pid_alive(before));
    let client = disposable_pg::connect(pg.url()).await.unwrap();
    let row = client.query_one("SELECT v FROM kept", &[]).await.unwrap();
    assert_eq!(row.get::<_, i32>(0), 7);
    let dir = pg.data_dir().unwrap().to_path_buf();
    drop(client);
    drop(pg);
    assert!(!pid_alive(after));
    assert!(!dir.exists());
}

#[tokio::test]
async fn durable_mode_reads_back_fsync_on() {
    let opts = Options {
        durability: Durability::Durable,
        ..local_fast()
    };
    let pg = Postgres::start(&opts).await.unwrap();
    assert!(pg.durable());
    let client = disposable_pg::connect(pg.url()).await.unwrap();
    let fsync: String = client.query_one("SHOW fsync", &[]).await.unwrap().get(0);
    assert_eq!(fsync, "on");
}

#[tokio::test]
async fn as_root_the_server_runs_unprivileged() {
    let pg = Postgres::start(&local_fast()).await.unwrap();
    let pid = pg.pid().unwrap();
    // SAFETY: no preconditions.
    let euid = unsafe { libc::geteuid() };
    let server_uid = uid_of(pid);
    if euid == 0 {
        assert_ne!(server_uid, 0, "PostgreSQL must not run as root");
    } else {
        assert_eq!(server_uid, euid, "not root: the server runs as the caller");
    }
    // The data directory belongs to the server's user, or initdb could not have written it.
    use std::os::unix::fs::MetadataExt;
    assert_eq!(
        std::fs::metadata(pg.data_dir().unwrap().join("data"))
            .unwrap()
            .uid(),
        server_uid
    );
}

#[tokio::test]
async fn template_clones_carry_the_migrated_schema_and_are_independent() {
    static TPL: LazyLock<TemplateCache> = LazyLock::new(|| TemplateCache::new("provider_test"));
    let pg = disposable_pg::shared_for_tests();
    let init_runs = std::sync::atomic::AtomicUsize::new(0);
    let mut urls = Vec::new();
    for _ in 0..3 {
        let url = TPL
            .database(pg, |url| {
                init_runs.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                async move {
                    let c = disposable_pg::connect(&url).await?;
                    c.batch_execute("CREATE TABLE t (id int PRIMARY KEY); INSERT INTO t VALUES (1)")
                        .await
                        .map_err(|e| disposable_pg::Error::Sql {
                            what: "init".into(),
                            source: e,
                        })
                }
            })
            .await
            .unwrap();
        urls.push(url);
    }
    assert_eq!(
        init_runs.load(std::sync::atomic::Ordering::SeqCst),
        1,
        "template built once"
    );
    assert_eq!(
        urls.iter().collect::<std::collections::HashSet<_>>().len(),
        3,
        "three distinct databases"
    );
    let a = disposable_pg::connect(&urls[0]).await.unwrap();
    a.batch_execute("INSERT INTO t VALUES (2)").await.unwrap();
    let b = disposable_pg::connect(&urls[1]).await.unwrap();
    let n: i64 = b
        .query_one("SELECT count(*) FROM t", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(n, 1, "clones do not share rows");
}

#[tokio::test]
async fn pg_bin_without_initdb_is_unavailable_and_says_so() {
    let empty = tempfile_dir();
    let opts = Options {
        pg_bin: Some(empty.clone()),
        ..local_fast()
    };
    let err = Postgres::start(&opts).await.unwrap_err();
    assert_eq!(err.exit_code(), 3);
    let msg = err.to_string();
    assert!(
        msg.contains("initdb") && msg.contains(&empty.display().to_string()),
        "{msg}"
    );
    std::fs::remove_dir_all(empty).unwrap();
}

#[tokio::test]
async fn a_url_that_refuses_names_host_port_and_reason() {
    // Bind then drop to get a port nobody listens on.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let opts = Options {
        choice: Choice::Url(format!("postgres://x@127.0.0.1:{port}/db")),
        ..Options::default()
    };
    let err = Postgres::start(&opts).await.unwrap_err();
    assert_eq!(err.exit_code(), 3);
    let msg = err.to_string();
    assert!(msg.contains(&format!("127.0.0.1:{port}")), "{msg}");
    assert!(
        msg.to_lowercase().contains("refused"),
        "driver's reason missing: {msg}"
    );
}

fn tempfile_dir() -> std::path::PathBuf {
    let p = std::env::temp_dir().join(format!(
        "dpg-empty-{}-{}",
        std::process::id(),
        rand_suffix()
    ));
    std::fs::create_dir_all(&p).unwrap();
    p
}

fn rand_suffix() -> u128 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos()
}

#[test]
fn a_panic_while_holding_the_server_still_cleans_up() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let (pid, dir) = rt.block_on(async {
        let pg = Postgres::start(&local_fast()).await.unwrap();
        (pg.pid().unwrap(), pg.data_dir().unwrap().to_path_buf())
    });
    // The handle above was dropped normally; now hold one across a panic.
    assert!(!pid_alive(pid) && !dir.exists());
    let result = std::panic::catch_unwind(|| {
        let rt = tokio::runtime::Runtime::new().unwrap();
        let pg = rt.block_on(Postgres::start(&local_fast())).unwrap();
        let info = (pg.pid().unwrap(), pg.data_dir().unwrap().to_path_buf());
        std::fs::write(
            std::env::temp_dir().join(format!("panic-probe-{}", std::process::id())),
            format!("{}\n{}", info.0, info.1.display()),
        )
        .unwrap();
        panic!("deliberate panic with a live server");
    });
    assert!(result.is_err());
    let probe = std::env::temp_dir().join(format!("panic-probe-{}", std::process::id()));
    let text = std::fs::read_to_string(&probe).unwrap();
    std::fs::remove_file(&probe).unwrap();
    let mut lines = text.lines();
    let pid: u32 = lines.next().unwrap().parse().unwrap();
    let dir = PathBuf::from(lines.next().unwrap());
    assert!(!pid_alive(pid), "postmaster survived the panic");
    assert!(processes_using(&dir).is_empty());
    assert!(!dir.exists());
}
