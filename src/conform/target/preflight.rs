//! Before any check: does the target answer, and does it speak the chosen API? A target that
//! does not answer is exit 3; one that answers in another API's shape (no such route, another
//! body, an unexpected status) is exit 2 — `--target` or `--api` is wrong — and no check runs.

use std::time::Duration;

use crate::client::api::{ApiError, ServerApi};
use crate::client::keys::KeyFactory;
use crate::Error;

/// How long the target gets to answer each preflight request.
const PREFLIGHT_TIMEOUT: Duration = Duration::from_secs(10);

/// Asks the target's health and registers one user, through `api`'s dialect.
pub async fn preflight(api: &dyn ServerApi) -> Result<(), Error> {
    let dialect = api.dialect();
    let target = api.base().to_string();
    let probe = dialect
        .client(&target, PREFLIGHT_TIMEOUT)
        .map_err(|e| Error::BadInput(format!("--target {target}: {e}")))?;
    probe
        .health()
        .await
        .map_err(|e| classify(&target, dialect.name(), "health check", e))?;
    let mut keys = KeyFactory::new(0, 1).take();
    probe
        .register_user(&mut keys)
        .await
        .map_err(|e| classify(&target, dialect.name(), "registering a user", e))?;
    Ok(())
}

/// No answer or a server error: unavailable (3). Any other answer that is not the dialect's:
/// another API (2).
fn classify(target: &str, dialect: &str, step: &str, e: ApiError) -> Error {
    let unavailable = match &e {
        ApiError::Transport(t) => !t.is_decode(),
        ApiError::Status { status, .. } => *status >= 500,
        _ => false,
    };
    if unavailable {
        Error::Unavailable(format!(
            "--target {target} is unreachable or unhealthy ({step}: {e})"
        ))
    } else {
        Error::BadInput(format!(
            "--target {target} answers, but not as a {dialect} server ({step}: {e}); \
             is --api right?"
        ))
    }
}
