//! The HTTP surface: one module per resource, thin handlers that validate, call the store and
//! shape the answer. The route table below is the single list the router is built from; the
//! OpenAPI document and docs/api.md are checked against it by the tests.

mod accounts;
mod encoding;
mod extract;
mod health;
mod keys;
mod messages;
pub mod openapi;
mod shape;
mod websocket;

use std::sync::Arc;

use axum::extract::{DefaultBodyLimit, Request};
use axum::http::Method;
use axum::response::{IntoResponse, Response};
use axum::routing::{on, MethodFilter, MethodRouter};
use axum::{middleware, Extension, Router};
use tokio::sync::watch;

use crate::delivery::Hub;
use crate::error::ApiError;
use crate::metrics::{Metrics, RouteName};
use crate::store::Store;
use extract::BodyLimit;

pub use encoding::{Blob, Fixed, Key32, Sig64};
pub use websocket::MAX_SESSIONS_PER_DEVICE;

/// Body size limits (bytes), documented in docs/api.md. Registration and key uploads carry at
/// most 100 prekeys (~7 KiB of JSON); 64 KiB leaves room without inviting abuse. A send carries
/// one ciphertext (≤ 64 KiB) per recipient device.
pub const KEYS_BODY_LIMIT: usize = 64 * 1024;
pub const MESSAGES_BODY_LIMIT: usize = 1024 * 1024;
/// Requests without a body still get a small limit rather than axum's 2 MB default.
pub const SMALL_BODY_LIMIT: usize = 4 * 1024;

/// At most this many one-time prekeys in one registration or upload.
pub const MAX_PREKEYS_PER_REQUEST: usize = 100;
/// At most this many envelopes per poll.
pub const POLL_BATCH: i64 = 100;
pub const MAX_HEADER_BYTES: usize = 1024;
pub const MAX_CIPHERTEXT_BYTES: usize = 64 * 1024;

/// What every handler can reach.
#[derive(Clone)]
pub struct AppState {
    pub store: Store,
    pub hub: Arc<Hub>,
    pub metrics: Arc<Metrics>,
    /// Flips to true when the server shuts down; WebSocket sessions close on it.
    pub shutdown: watch::Receiver<bool>,
    /// TEST ONLY: acknowledge sends before storing them (`ServerConfig::test_nondurable_ack`).
    pub test_nondurable_ack: bool,
}

struct Route {
    method: Method,
    /// As documented (docs/api.md, OpenAPI). Parameters are positional, so two routes whose
    /// templates differ only in parameter names share one router path.
    path: &'static str,
    body_limit: usize,
    handler: MethodRouter<AppState>,
}

fn route<H, T>(method: Method, path: &'static str, body_limit: usize, handler: H) -> Route
where
    H: axum::handler::Handler<T, AppState>,
    T: 'static,
{
    let filter = MethodFilter::try_from(method.clone()).expect("standard method");
    Route {
        method,
        path,
        body_limit,
        handler: on(filter, handler),
    }
}

fn routes() -> Vec<Route> {
    use Method as M;
    vec![
        route(M::GET, "/healthz", SMALL_BODY_LIMIT, health::healthz),
        route(M::GET, "/metrics", SMALL_BODY_LIMIT, health::metrics),
        route(M::GET, "/openapi.json", SMALL_BODY_LIMIT, openapi::document),
        route(
            M::POST,
            "/v1/users",
            KEYS_BODY_LIMIT,
            accounts::register_user,
        ),
        route(
            M::POST,
            "/v1/devices",
            KEYS_BODY_LIMIT,
            accounts::add_device,
        ),
        route(
            M::DELETE,
            "/v1/devices/{device_id}",
            SMALL_BODY_LIMIT,
            accounts::remove_device,
        ),
        route(
            M::POST,
            "/v1/keys/one-time",
            KEYS_BODY_LIMIT,
            keys::upload_one_time,
        ),
        route(
            M::PUT,
            "/v1/keys/signed",
            KEYS_BODY_LIMIT,
            keys::rotate_signed,
        ),
        route(M::GET, "/v1/keys/count", SMALL_BODY_LIMIT, keys::count),
        route(
            M::GET,
            "/v1/keys/{user_id}",
            SMALL_BODY_LIMIT,
            keys::user_bundles,
        ),
        route(
            M::GET,
            "/v1/keys/{user_id}/{device_id}",
            SMALL_BODY_LIMIT,
            keys::device_bundle,
        ),
        route(
            M::PUT,
            "/v1/messages/{id}",
            MESSAGES_BODY_LIMIT,
            messages::send,
        ),
        route(M::GET, "/v1/messages", SMALL_BODY_LIMIT, messages::poll),
        route(
            M::DELETE,
            "/v1/messages/{id}",
            SMALL_BODY_LIMIT,
            messages::acknowledge,
        ),
        route(
            M::GET,
            "/v1/websocket",
            SMALL_BODY_LIMIT,
            websocket::upgrade,
        ),
    ]
}

/// (method, documented path) of every route the router serves.
pub fn route_table() -> Vec<(Method, &'static str)> {
    routes().into_iter().map(|r| (r.method, r.path)).collect()
}

/// `/v1/keys/{user_id}` → `/v1/keys/{}`: what the router actually distinguishes.
pub fn path_shape(path: &str) -> String {
    let mut out = String::new();
    let mut in_param = false;
    for c in path.chars() {
        match c {
            '{' => {
                in_param = true;
                out.push_str("{}");
            }
            '}' => in_param = false,
            _ if in_param => {}
            _ => out.push(c),
        }
    }
    out
}

pub fn router(state: AppState) -> Router {
    let mut merged: Vec<(String, &'static str, MethodRouter<AppState>)> = Vec::new();
    for r in routes() {
        let name = RouteName(r.path);
        let handler = r
            .handler
            .route_layer(Extension(BodyLimit(r.body_limit)))
            .route_layer(DefaultBodyLimit::max(r.body_limit))
            .route_layer(middleware::from_fn(move |req, next| {
                extract::limit_body(r.body_limit, req, next)
            }))
            .route_layer(middleware::map_response(
                move |mut res: Response| async move {
                    res.extensions_mut().insert(name);
                    res
                },
            ));
        let shape = path_shape(r.path);
        match merged.iter_mut().find(|(s, _, _)| *s == shape) {
            Some(entry) => entry.2 = std::mem::take(&mut entry.2).merge(handler),
            None => merged.push((shape, r.path, handler)),
        }
    }
    let mut router = Router::new();
    for (_, path, handler) in merged {
        router = router.route(path, handler.fallback(method_not_allowed));
    }
    let metrics = state.metrics.clone();
    router
        .fallback(no_route)
        .with_state(state)
        .layer(middleware::from_fn_with_state(
            metrics,
            crate::metrics::track,
        ))
}

async fn no_route(req: Request) -> Response {
    ApiError::NoRoute(format!("{} {}", req.method(), req.uri().path())).into_response()
}

async fn method_not_allowed(req: Request) -> Response {
    ApiError::MethodNotAllowed(req.method().to_string()).into_response()
}
