//! Protocol conformance of a running server (`conform --target URL [--api NAME]`): a black-box
//! suite of properties every E2EE key and message server must hold, run through the server's
//! dialect ([`crate::client::api::ServerApi`]) with real keys and real encrypted messages.
//!
//! One module per property group: [`prekeys`], [`auth`], [`delivery`], [`input`] (with its
//! mutation [`corpus`]). Each check has an id, a one-line statement, a verdict (PASS, FAIL,
//! FINDING, or NOT APPLICABLE naming the missing capability) and the evidence: the requests
//! and answers that show it. The checks are general properties; none is written for one
//! server. Every check sets up users of its own, so one check's state never leaks into another.
//!
//! The report is the schema conformance report ([`super::outcome::ConformReport`]), so the text,
//! `junit.xml` and `conform.json` look the same; FINDING fails like FAIL (exit 1).

mod actor;
mod auth;
pub mod corpus;
mod delivery;
mod http;
mod input;
mod preflight;
mod prekeys;

use std::sync::Arc;
use std::time::Duration;

use crate::client::api::{ApiError, Capability, PushError, ServerApi};
use crate::conform::outcome::{Check, ConformReport, Kind, Status};
use crate::crypto::CryptoError;

pub use preflight::preflight;

/// How long one request may take before the check that sent it fails.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

/// Why a check could not be carried out: an operation it needs failed. The check then fails
/// (a server whose basic operations fail does not hold the property), saying so.
#[derive(Debug, thiserror::Error)]
pub(crate) enum Setup {
    #[error("{operation}: {source}")]
    Api {
        operation: &'static str,
        source: ApiError,
    },
    #[error("{operation}: {source}")]
    Push {
        operation: &'static str,
        source: PushError,
    },
    #[error("{operation}: {source}")]
    Crypto {
        operation: &'static str,
        source: CryptoError,
    },
    #[error("{0}")]
    Other(String),
}

pub(crate) trait Context<T> {
    /// Names the operation that failed.
    fn during(self, operation: &'static str) -> Result<T, Setup>;
}

impl<T> Context<T> for Result<T, ApiError> {
    fn during(self, operation: &'static str) -> Result<T, Setup> {
        self.map_err(|source| Setup::Api { operation, source })
    }
}

impl<T> Context<T> for Result<T, PushError> {
    fn during(self, operation: &'static str) -> Result<T, Setup> {
        self.map_err(|source| Setup::Push { operation, source })
    }
}

impl<T> Context<T> for Result<T, CryptoError> {
    fn during(self, operation: &'static str) -> Result<T, Setup> {
        self.map_err(|source| Setup::Crypto { operation, source })
    }
}

/// What a check concluded.
pub(crate) enum Verdict {
    Pass,
    Fail(String),
    /// The property as stated held, but the server did something a client cannot rely on.
    Finding(String),
    /// The property needs what the API does not offer.
    NotApplicable(String),
}

impl Verdict {
    /// Pass when `problems` is empty, else a failure listing them.
    pub(crate) fn from_problems(problems: Vec<String>) -> Verdict {
        if problems.is_empty() {
            Verdict::Pass
        } else {
            Verdict::Fail(problems.join("\n"))
        }
    }
}

/// One check while it runs: its id and statement, and the evidence gathered so far.
pub(crate) struct Probe {
    kind: Kind,
    id: String,
    statement: String,
    evidence: Vec<String>,
}

impl Probe {
    pub(crate) fn new(kind: Kind, id: impl Into<String>, statement: impl Into<String>) -> Probe {
        Probe {
            kind,
            id: id.into(),
            statement: statement.into(),
            evidence: Vec::new(),
        }
    }

    /// Records a request and its answer (or an observation) as evidence.
    pub(crate) fn note(&mut self, line: impl Into<String>) {
        self.evidence.push(line.into());
    }

    /// The check's line in the report.
    pub(crate) fn finish(self, result: Result<Verdict, Setup>) -> Check {
        let (status, detail) = match result {
            Ok(Verdict::Pass) => (Status::Pass, String::new()),
            Ok(Verdict::Fail(d)) => (Status::Fail, d),
            Ok(Verdict::Finding(d)) => (Status::Finding, d),
            Ok(Verdict::NotApplicable(d)) => (Status::NotApplicable, d),
            Err(e) => (Status::Fail, format!("could not be carried out: {e}")),
        };
        let mut check = Check::pass(self.kind, format!("{}: {}", self.id, self.statement));
        check.status = status;
        check.detail = detail;
        check.rule = Some(self.id);
        check.statement = Some(self.statement);
        check.evidence = self.evidence;
        check
    }
}

/// `Err(NotApplicable)` naming the first capability of `needs` that `api` lacks.
pub(crate) fn require(api: &dyn ServerApi, needs: &[Capability]) -> Result<(), Verdict> {
    match needs.iter().find(|c| !api.has(**c)) {
        None => Ok(()),
        Some(c) => Err(Verdict::NotApplicable(format!(
            "the {} API lacks the `{c}` capability",
            api.dialect()
        ))),
    }
}

/// The server the suite runs against.
pub(crate) struct Target {
    pub(crate) api: Arc<dyn ServerApi>,
    pub(crate) http: reqwest::Client,
}

/// Runs every check against the server behind `api` (which has passed [`preflight`]).
pub async fn run(api: Arc<dyn ServerApi>) -> Result<ConformReport, crate::Error> {
    // No pooled connections for raw requests: a server may refuse a huge body and close the
    // connection without reading it, and a pooled connection reused right after would fail
    // the next, unrelated request.
    let http = reqwest::Client::builder()
        .timeout(REQUEST_TIMEOUT)
        .pool_max_idle_per_host(0)
        .build()
        .map_err(|e| crate::Error::Unavailable(format!("cannot build an HTTP client: {e}")))?;
    let t = Target { api, http };
    let mut checks = Vec::new();
    checks.extend(prekeys::run(&t).await);
    checks.extend(auth::run(&t).await);
    checks.extend(delivery::run(&t).await);
    checks.extend(input::run(&t).await);
    checks.sort_by_key(|c| c.kind);
    Ok(ConformReport {
        pack: format!("target ({} API)", t.api.dialect()),
        source: t.api.base().to_string(),
        postgres: String::new(),
        checks,
    })
}

/// `conform.json` of a protocol run: the schema report's shape, with the target and API
/// instead of the pack and PostgreSQL.
pub fn json(report: &ConformReport, api: &dyn ServerApi) -> serde_json::Value {
    let mut v = super::report::json(report);
    if let Some(o) = v.as_object_mut() {
        o.remove("pack");
        o.remove("source");
        o.remove("postgres");
        o.insert("target".into(), api.base().into());
        o.insert("api".into(), api.dialect().name().into());
        let caps: Vec<_> = api.capabilities().iter().map(|c| c.name()).collect();
        o.insert("capabilities".into(), caps.into());
    }
    v
}
