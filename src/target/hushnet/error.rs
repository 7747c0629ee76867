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
