//! `e2ee-harness db`: a disposable PostgreSQL until Ctrl-C. The URL is the only line on
//! stdout, so `URL=$(e2ee-harness db &)`-style scripting works; everything else goes to stderr.

use std::io::Write;

use crate::cli::DbCmdArgs;
use crate::{Error, Outcome};

pub(crate) async fn run(args: DbCmdArgs) -> Result<Outcome, Error> {
    let pg = crate::cli::start_db(&args.db, false, false).await?;
    if let Some(dir) = pg.data_dir() {
        eprintln!("data directory: {} (removed on exit)", dir.display());
    }
    if let Some(id) = pg.container_id() {
        eprintln!("container: {id} (removed on exit)");
    }
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{}", pg.url());
    let _ = out.flush();
    drop(out);
    eprintln!("serving until Ctrl-C");
    // Returns only via the CLI's signal branch, which drops `pg` and stops the server.
    std::future::pending::<()>().await;
    drop(pg);
    Ok(Outcome::Pass)
}
