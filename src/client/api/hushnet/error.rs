//! Why a HushNet call failed: transport, a status the operation does not expect (with the
//! server's own message, which is plain text or `{"error": …}` depending on the route), or
//! an answer whose shape or key encoding is not HushNet's.

/// Errors of the HushNet dialect.
#[derive(Debug, thiserror::Error)]
pub enum HushnetError {
    #[error("HushNet {operation}: {source}")]
    Transport {
        operation: &'static str,
        #[source]
        source: reqwest::Error,
    },
    #[error("HushNet {operation}: HTTP {status}: {message}")]
    Status {
        operation: &'static str,
        status: u16,
        message: String,
    },
    #[error("HushNet {operation}: answer is not HushNet's shape: {detail}")]
    Shape {
        operation: &'static str,
        detail: String,
    },
    #[error("HushNet field `{field}`: {why}")]
    Encoding { field: &'static str, why: String },
    #[error("HushNet WebSocket: {0}")]
    WebSocket(String),
}

impl HushnetError {
    /// The HTTP status, when the server answered with one the operation does not expect.
    pub fn status(&self) -> Option<u16> {
        match self {
            HushnetError::Status { status, .. } => Some(*status),
            _ => None,
        }
    }

    pub(crate) fn encoding(field: &'static str, why: impl Into<String>) -> Self {
        HushnetError::Encoding {
            field,
            why: why.into(),
        }
    }
}

/// The server-API layer's view of a HushNet failure: a refusal keeps its status (and the
/// route as its code, since HushNet's error bodies carry no code), an answer that is not
/// HushNet's is a shape error, so `--api hushnet` against another server is told apart.
impl From<HushnetError> for super::super::ApiError {
    fn from(e: HushnetError) -> Self {
        use super::super::{ApiError, Dialect};
        match e {
            HushnetError::Transport { source, .. } => ApiError::Transport(source),
            HushnetError::Status {
                operation,
                status,
                message,
            } => ApiError::Status {
                status,
                code: operation.to_string(),
                message,
            },
            HushnetError::Shape { operation, detail } => ApiError::Shape {
                dialect: Dialect::Hushnet,
                operation,
                detail,
            },
            HushnetError::Encoding { field, why } => ApiError::Shape {
                dialect: Dialect::Hushnet,
                operation: "decoding an answer",
                detail: format!("field `{field}`: {why}"),
            },
            HushnetError::WebSocket(detail) => ApiError::Shape {
                dialect: Dialect::Hushnet,
                operation: "WebSocket",
                detail,
            },
        }
    }
}
