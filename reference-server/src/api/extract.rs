//! Extractors that turn every malformed request into an [`ApiError`] (JSON, 4xx, naming the
//! field) instead of axum's plain-text rejections.

use axum::body::{Body, Bytes};
use axum::extract::rejection::{BytesRejection, PathRejection};
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::header::CONTENT_TYPE;
use axum::http::request::Parts;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use serde::de::DeserializeOwned;

use crate::error::ApiError;

/// A JSON body: `application/json`, within the route's size limit, no unknown fields.
pub(super) struct ApiJson<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for ApiJson<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, ApiError> {
        let content_type = req
            .headers()
            .get(CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("");
        let mime = content_type.split(';').next().unwrap_or("").trim();
        if !mime.eq_ignore_ascii_case("application/json") {
            return Err(ApiError::UnsupportedMediaType(format!(
                "Content-Type must be application/json, got {:?}",
                content_type
            )));
        }
        let limit = req
            .extensions()
            .get::<BodyLimit>()
            .map(|l| l.0)
            .unwrap_or(0);
        let bytes = Bytes::from_request(req, state)
            .await
            .map_err(|e| body_error(e, limit))?;
        parse(&bytes).map(ApiJson)
    }
}

/// Middleware: reads every body up to the route's limit before the handler runs. axum's
/// `DefaultBodyLimit` only binds handlers that read the body, so a `GET` would otherwise accept
/// (and ignore) 10 MB. Handlers that read the body get it back from memory.
pub(crate) async fn limit_body(limit: usize, req: Request, next: Next) -> Response {
    let (parts, body) = req.into_parts();
    match axum::body::to_bytes(body, limit).await {
        Ok(bytes) => {
            next.run(Request::from_parts(parts, Body::from(bytes)))
                .await
        }
        Err(e) if is_length_limit(&e) => ApiError::PayloadTooLarge { limit }.into_response(),
        Err(e) => {
            ApiError::InvalidJson(format!("cannot read the request body: {e}")).into_response()
        }
    }
}

fn is_length_limit(e: &axum::Error) -> bool {
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(s) = source {
        if s.is::<http_body_util::LengthLimitError>() {
            return true;
        }
        source = s.source();
    }
    false
}

/// The limit of the route, recorded so a 413 can say what it is.
#[derive(Clone, Copy)]
pub(super) struct BodyLimit(pub usize);

fn body_error(e: BytesRejection, limit: usize) -> ApiError {
    if e.status() == axum::http::StatusCode::PAYLOAD_TOO_LARGE {
        ApiError::PayloadTooLarge { limit }
    } else {
        ApiError::InvalidJson(format!("cannot read the request body: {}", e.body_text()))
    }
}

/// Deserializes with the path of the failing field in the message.
pub(super) fn parse<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    let mut de = serde_json::Deserializer::from_slice(bytes);
    let value: T = serde_path_to_error::deserialize(&mut de).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner();
        let reason = strip_position(&inner.to_string());
        let located = if path == "." {
            reason.clone()
        } else {
            format!("{path}: {reason}")
        };
        if reason.starts_with("unknown field") {
            ApiError::UnknownField(located)
        } else if inner.is_data() && path != "." {
            ApiError::InvalidField {
                field: path,
                reason,
            }
        } else {
            ApiError::InvalidJson(located)
        }
    })?;
    de.end()
        .map_err(|e| ApiError::InvalidJson(format!("trailing data after the JSON body: {e}")))?;
    super::shape::objects_only(bytes)?;
    Ok(value)
}

/// serde_json appends " at line 1 column 57"; the field path says more.
pub(super) fn strip_position(s: &str) -> String {
    match s.rfind(" at line ") {
        Some(i) => s[..i].to_string(),
        None => s.to_string(),
    }
}

/// Path parameters, with JSON errors.
pub(super) struct ApiPath<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned + Send> FromRequestParts<S> for ApiPath<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        axum::extract::Path::<T>::from_request_parts(parts, state)
            .await
            .map(|p| ApiPath(p.0))
            .map_err(|e: PathRejection| ApiError::InvalidPath(e.body_text()))
    }
}
