//! The two error types of the server: [`Error`] for the embedding API (start, migrate) and
//! [`ApiError`] for requests, turned into a status and a JSON body in exactly one place.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use tokio_postgres::error::SqlState;
use utoipa::ToSchema;

/// Why the server could not start, migrate or run.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("cannot reach PostgreSQL at {target}: {source}")]
    Connect {
        target: String,
        source: tokio_postgres::Error,
    },
    #[error("bad database URL: {0}")]
    BadUrl(String),
    #[error("migration {name} failed: {source}")]
    Migration {
        name: String,
        source: tokio_postgres::Error,
    },
    #[error(
        "migration {name} was edited after it was applied to this database (checksum differs)"
    )]
    MigrationChanged { name: String },
    #[error("database error while {what}: {source}")]
    Sql {
        what: String,
        source: tokio_postgres::Error,
    },
    #[error("connection pool: {0}")]
    Pool(String),
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        addr: std::net::SocketAddr,
        source: std::io::Error,
    },
    #[error("server task failed: {0}")]
    Task(String),
}

/// A request that failed. Client mistakes are 4xx and name the field or parameter at fault;
/// 5xx is reserved for server bugs and an unavailable database.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("{0}")]
    InvalidJson(String),
    #[error("{0}")]
    UnknownField(String),
    #[error("{field}: {reason}")]
    InvalidField { field: String, reason: String },
    #[error("{0}")]
    InvalidPath(String),
    #[error("{field}: {count} one-time prekeys in one request; at most {max} are allowed")]
    TooManyPrekeys {
        field: &'static str,
        count: usize,
        max: usize,
    },
    #[error("request body is larger than this route's limit of {limit} bytes")]
    PayloadTooLarge { limit: usize },
    #[error("{0}")]
    UnsupportedMediaType(String),
    #[error("{0}")]
    Unauthorized(&'static str),
    #[error("{0}")]
    Forbidden(String),
    #[error("{0}")]
    NotFound(String),
    #[error("no route for {0}")]
    NoRoute(String),
    #[error("method {0} is not allowed on this route")]
    MethodNotAllowed(String),
    #[error("{0}")]
    DuplicateKeyId(String),
    #[error("the envelopes must cover exactly the recipient's current devices: missing {missing:?}, extra {extra:?}")]
    MismatchedDevices { missing: Vec<u32>, extra: Vec<u32> },
    #[error("{0}")]
    InvalidSignature(String),
    #[error("{0}")]
    NotWebSocket(String),
    #[error("{0}")]
    TooManySessions(String),
    #[error("database unavailable: {0}")]
    DatabaseUnavailable(String),
    #[error("internal error: {0}")]
    Internal(String),
}

/// The JSON body of every error response.
#[derive(Debug, Serialize, ToSchema)]
pub struct ErrorBody {
    /// Stable machine-readable code, e.g. `invalid_field`.
    pub error: &'static str,
    /// What went wrong, naming the field or parameter.
    pub message: String,
    /// Only for `mismatched_devices`: recipient devices the request left out.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub missing_devices: Option<Vec<u32>>,
    /// Only for `mismatched_devices`: devices in the request the recipient does not have.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub extra_devices: Option<Vec<u32>>,
}

impl ApiError {
    pub fn invalid(field: impl Into<String>, reason: impl Into<String>) -> ApiError {
        ApiError::InvalidField {
            field: field.into(),
            reason: reason.into(),
        }
    }

    pub fn status(&self) -> StatusCode {
        use ApiError::*;
        match self {
            InvalidJson(_)
            | UnknownField(_)
            | InvalidField { .. }
            | InvalidPath(_)
            | TooManyPrekeys { .. } => StatusCode::BAD_REQUEST,
            NotWebSocket(_) => StatusCode::BAD_REQUEST,
            PayloadTooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            UnsupportedMediaType(_) => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            Unauthorized(_) => StatusCode::UNAUTHORIZED,
            Forbidden(_) => StatusCode::FORBIDDEN,
            NotFound(_) | NoRoute(_) => StatusCode::NOT_FOUND,
            MethodNotAllowed(_) => StatusCode::METHOD_NOT_ALLOWED,
            DuplicateKeyId(_) | MismatchedDevices { .. } => StatusCode::CONFLICT,
            InvalidSignature(_) => StatusCode::UNPROCESSABLE_ENTITY,
            TooManySessions(_) => StatusCode::TOO_MANY_REQUESTS,
            DatabaseUnavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    pub fn code(&self) -> &'static str {
        use ApiError::*;
        match self {
            InvalidJson(_) => "invalid_json",
            UnknownField(_) => "unknown_field",
            InvalidField { .. } => "invalid_field",
            InvalidPath(_) => "invalid_path",
            TooManyPrekeys { .. } => "too_many_prekeys",
            PayloadTooLarge { .. } => "payload_too_large",
            UnsupportedMediaType(_) => "unsupported_media_type",
            Unauthorized(_) => "unauthorized",
            Forbidden(_) => "forbidden",
            NotFound(_) => "not_found",
            NoRoute(_) => "no_route",
            MethodNotAllowed(_) => "method_not_allowed",
            DuplicateKeyId(_) => "duplicate_key_id",
            MismatchedDevices { .. } => "mismatched_devices",
            InvalidSignature(_) => "invalid_signature",
            NotWebSocket(_) => "not_websocket",
            TooManySessions(_) => "too_many_sessions",
            DatabaseUnavailable(_) => "database_unavailable",
            Internal(_) => "internal",
        }
    }

    pub fn body(&self) -> ErrorBody {
        let (missing_devices, extra_devices) = match self {
            ApiError::MismatchedDevices { missing, extra } => {
                (Some(missing.clone()), Some(extra.clone()))
            }
            _ => (None, None),
        };
        ErrorBody {
            error: self.code(),
            message: self.to_string(),
            missing_devices,
            extra_devices,
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = self.status();
        if status.is_server_error() {
            tracing::error!(error = %self, "request failed");
        }
        (status, axum::Json(self.body())).into_response()
    }
}

impl From<tokio_postgres::Error> for ApiError {
    /// The schema's constraints are the last line of defence: whatever slips past request
    /// validation and violates one is still the client's fault (4xx), never a 500.
    fn from(e: tokio_postgres::Error) -> ApiError {
        let Some(db) = e.as_db_error() else {
            // No server error: either the connection is gone or the driver refused (a bug).
            return if e.is_closed()
                || std::error::Error::source(&e).is_some_and(|s| s.is::<std::io::Error>())
            {
                ApiError::DatabaseUnavailable(e.to_string())
            } else {
                ApiError::Internal(e.to_string())
            };
        };
        let constraint = db.constraint().unwrap_or("?").to_string();
        match *db.code() {
            SqlState::UNIQUE_VIOLATION if constraint.ends_with("prekeys_pkey") => {
                ApiError::DuplicateKeyId(format!(
                    "key_id: already used for this device ({})",
                    db.detail().unwrap_or("")
                ))
            }
            SqlState::CHECK_VIOLATION
            | SqlState::NOT_NULL_VIOLATION
            | SqlState::STRING_DATA_RIGHT_TRUNCATION => {
                ApiError::invalid(constraint, db.message().to_string())
            }
            SqlState::FOREIGN_KEY_VIOLATION => {
                ApiError::NotFound(format!("a referenced row is gone ({constraint})"))
            }
            ref c
                if c.code().starts_with("08")
                    || c.code().starts_with("57")
                    || c.code().starts_with("53") =>
            {
                ApiError::DatabaseUnavailable(db.message().to_string())
            }
            _ => ApiError::Internal(format!("{}: {}", db.code().code(), db.message())),
        }
    }
}

impl From<deadpool_postgres::PoolError> for ApiError {
    fn from(e: deadpool_postgres::PoolError) -> ApiError {
        ApiError::DatabaseUnavailable(e.to_string())
    }
}
