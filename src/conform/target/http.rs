//! Raw HTTP for the checks that send what the dialect's client never would: a dialect's
//! example request ([`RawRequest`]), possibly mutated, with or without a credential, and the
//! answer kept as evidence.

use std::time::SystemTime;

use crate::client::api::raw::{PathParam, RawRequest};
use crate::client::api::{ApiError, Credential};

use super::Target;

/// A request as sent: the example's method, a path, a body (already bytes: it may not be
/// JSON at all).
#[derive(Debug, Clone)]
pub(crate) struct Wire {
    pub(crate) path: String,
    pub(crate) body: Option<Vec<u8>>,
}

impl Wire {
    /// The example as the dialect gave it.
    pub(crate) fn of(req: &RawRequest) -> Wire {
        Wire {
            path: req.path(),
            body: req.body.as_ref().map(|b| b.to_string().into_bytes()),
        }
    }

    pub(crate) fn with_params(req: &RawRequest, params: &[PathParam]) -> Wire {
        Wire {
            path: req.path_with(params),
            body: req.body.as_ref().map(|b| b.to_string().into_bytes()),
        }
    }
}

/// The server's answer, or why there was none.
#[derive(Debug, Clone)]
pub(crate) enum Answer {
    Status { status: u16, body: String },
    NoAnswer(String),
}

impl Answer {
    pub(crate) fn status(&self) -> Option<u16> {
        match self {
            Answer::Status { status, .. } => Some(*status),
            Answer::NoAnswer(_) => None,
        }
    }

    pub(crate) fn is_success(&self) -> bool {
        self.status().is_some_and(|s| (200..300).contains(&s))
    }

    pub(crate) fn is_refusal(&self) -> bool {
        self.status().is_some_and(|s| (400..500).contains(&s))
    }

    pub(crate) fn is_server_error(&self) -> bool {
        self.status().is_some_and(|s| s >= 500)
    }
}

impl std::fmt::Display for Answer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Answer::Status { status, body } if body.is_empty() => write!(f, "{status}"),
            Answer::Status { status, body } => write!(f, "{status} {body}"),
            Answer::NoAnswer(why) => write!(f, "no answer ({why})"),
        }
    }
}

/// How much of a body evidence shows.
const SHOWN: usize = 160;

/// `s` cut to `max` characters, with the full length said when cut.
pub(crate) fn clip(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        return s.to_string();
    }
    let head: String = s.chars().take(max).collect();
    format!("{head}… ({} bytes)", s.len())
}

/// One evidence line: `METHOD path [label] body → answer`.
pub(crate) fn line(req: &RawRequest, wire: &Wire, label: &str, answer: &Answer) -> String {
    let body = match &wire.body {
        None => String::new(),
        Some(b) => format!(" {}", clip(&String::from_utf8_lossy(b), 100)),
    };
    let label = if label.is_empty() {
        String::new()
    } else {
        format!(" [{label}]")
    };
    format!(
        "{} {}{label}{body} → {answer}",
        req.method,
        clip(&wire.path, 100)
    )
}

impl Target {
    /// The headers that authenticate `wire` as `cred` at `at` (computed once, so sending
    /// them twice is a true replay even for schemes with nonces).
    pub(crate) fn sign(
        &self,
        req: &RawRequest,
        wire: &Wire,
        cred: &Credential,
        at: SystemTime,
    ) -> Result<Vec<(String, String)>, ApiError> {
        let Some(raw) = self.api.raw() else {
            return Ok(Vec::new());
        };
        let body = wire.body.as_deref().unwrap_or_default();
        raw.auth_headers(req, &wire.path, body, cred, at)
    }

    /// Sends `wire` with `req`'s method and `headers`, with a JSON content type when it has a
    /// body.
    pub(crate) async fn raw(
        &self,
        req: &RawRequest,
        wire: &Wire,
        headers: &[(String, String)],
    ) -> Answer {
        let url = format!("{}{}", self.api.base(), wire.path);
        let mut builder = self.http.request(req.method.clone(), url);
        for (k, v) in headers {
            builder = builder.header(k, v);
        }
        if let Some(body) = &wire.body {
            builder = builder
                .header("content-type", "application/json")
                .body(body.clone());
        }
        match builder.send().await {
            Err(e) => Answer::NoAnswer(error_chain(&e)),
            Ok(resp) => {
                let status = resp.status().as_u16();
                let body = resp.text().await.unwrap_or_default();
                Answer::Status {
                    status,
                    body: clip(body.trim(), SHOWN),
                }
            }
        }
    }

    /// Sends `wire` authenticated as `cred` now.
    pub(crate) async fn raw_as(&self, req: &RawRequest, wire: &Wire, cred: &Credential) -> Answer {
        match self.sign(req, wire, cred, SystemTime::now()) {
            Ok(headers) => self.raw(req, wire, &headers).await,
            Err(e) => Answer::NoAnswer(format!("cannot authenticate: {e}")),
        }
    }
}

/// An error with its causes (reqwest's own message is often just "error sending request").
pub(crate) fn error_chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut source = e.source();
    while let Some(cause) = source {
        s.push_str(": ");
        s.push_str(&cause.to_string());
        source = cause.source();
    }
    s
}
