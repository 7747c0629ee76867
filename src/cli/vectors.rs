//! `e2ee-harness vectors`: deterministic X3DH / Double Ratchet test vectors as JSON on stdout.

use std::io::Write;
use std::path::PathBuf;

use super::VectorsArgs;
use crate::crypto::vectors;
use crate::{Error, Outcome};

/// More would only make a huge file; a few DH steps already cover every code path.
const MAX_MESSAGES: usize = 10_000;

pub(crate) fn run(args: VectorsArgs) -> Result<Outcome, Error> {
    if args.messages > MAX_MESSAGES {
        return Err(Error::BadInput(format!(
            "--messages must be at most {MAX_MESSAGES}, got {}",
            args.messages
        )));
    }
    let v = vectors::generate(args.seed, args.messages);
    let mut json = serde_json::to_string_pretty(&v).expect("vectors always serialize");
    json.push('\n');
    let stdout = PathBuf::from("<stdout>");
    std::io::stdout()
        .lock()
        .write_all(json.as_bytes())
        .map_err(|source| Error::Io {
            path: stdout,
            source,
        })?;
    Ok(Outcome::Pass)
}
