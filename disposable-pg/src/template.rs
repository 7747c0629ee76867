//! The fast path for tests: one server per test binary, one migrated template database, and a
//! cheap `CREATE DATABASE … TEMPLATE …` per test. Copying a template is a file copy inside the
//! server, far cheaper than starting a server or replaying migrations.

use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::OnceLock;
use std::time::Duration;

use tokio::sync::OnceCell;

use crate::{quote_ident, Error, Options, Postgres};

/// A server shared by every test in this test binary, started on first use. It is stopped at
/// process exit (statics are never dropped, so the provider's `atexit` hook does it).
///
/// Panics with the provider's full message when no PostgreSQL can be had: a missing database
/// is a test failure, never a silent skip.
pub fn shared_for_tests() -> &'static Postgres {
    static SHARED: OnceLock<Postgres> = OnceLock::new();
    SHARED.get_or_init(|| {
        // Started on a private runtime: each #[tokio::test] has its own, and a local server
        // outlives any of them (it is a plain child process).
        std::thread::spawn(|| {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("runtime");
            rt.block_on(Postgres::start(&Options::for_tests()))
        })
        .join()
        .expect("provider thread")
        .unwrap_or_else(|e| panic!("tests need PostgreSQL and none could be started:\n{e}"))
    })
}

/// A template database, migrated once by `init`, cloned for each test.
pub struct TemplateCache {
    name: String,
    ready: OnceCell<()>,
    counter: AtomicU64,
}

impl TemplateCache {
    /// Use from a `static LazyLock<TemplateCache>` so all tests of a binary share it.
    pub fn new(name: &str) -> TemplateCache {
        TemplateCache {
            name: format!("tpl_{name}"),
            ready: OnceCell::const_new(),
            counter: AtomicU64::new(0),
        }
    }

    /// A fresh database cloned from the template, which `init(url)` builds on first use.
    pub async fn database<F, Fut>(&self, pg: &Postgres, init: F) -> Result<String, Error>
    where
        F: FnOnce(String) -> Fut,
        Fut: Future<Output = Result<(), Error>>,
    {
        self.ready
            .get_or_try_init(|| async {
                pg.drop_database(&self.name).await?;
                let url = pg.create_database(&self.name, None).await?;
                init(url).await
            })
            .await?;
        let n = self.counter.fetch_add(1, Ordering::Relaxed);
        let db = format!(
            "{}_{}_{}",
            self.name.trim_start_matches("tpl_"),
            std::process::id(),
            n
        );
        clone_with_retry(pg, &db, &self.name).await
    }
}

/// `CREATE DATABASE … TEMPLATE` fails while anyone is connected to the template; a connection
/// that `init` just dropped may take a moment to close on the server side.
async fn clone_with_retry(pg: &Postgres, db: &str, template: &str) -> Result<String, Error> {
    let client = crate::connect(pg.url()).await?;
    let sql = format!(
        "CREATE DATABASE {} TEMPLATE {}",
        quote_ident(db),
        quote_ident(template)
    );
    let mut attempt = 0;
    loop {
        match client.batch_execute(&sql).await {
            Ok(()) => return Ok(pg.url_for(db)),
            Err(e) if attempt < 100 && e.code().map(|c| c.code()) == Some("55006") => {
                attempt += 1;
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            Err(e) => {
                return Err(Error::Sql {
                    what: format!("cloning {template} into {db}"),
                    source: e,
                })
            }
        }
    }
}
