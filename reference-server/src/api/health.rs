//! Liveness and metrics.

use std::fmt::Write;

use axum::extract::State;
use axum::http::header::CONTENT_TYPE;
use axum::response::IntoResponse;
use axum::Json;
use serde::Serialize;
use utoipa::ToSchema;

use super::AppState;
use crate::error::{ApiError, ErrorBody};

#[derive(Debug, Serialize, ToSchema)]
pub(super) struct Health {
    pub status: &'static str,
    pub database: &'static str,
    /// WebSocket sessions on this instance.
    pub sessions: usize,
    /// Whether the database commits durably (fsync on, synchronous_commit not off), as read
    /// from the database itself: load results mean little without it.
    pub durable: bool,
}

/// Liveness and database reachability.
#[utoipa::path(get, path = "/healthz", tag = "operations",
    responses((status = 200, body = Health), (status = 503, description = "database unreachable", body = ErrorBody)))]
pub(super) async fn healthz(State(app): State<AppState>) -> Result<Json<Health>, ApiError> {
    let durable = app.store.ping().await?;
    Ok(Json(Health {
        status: "ok",
        database: "ok",
        sessions: app.hub.sessions(),
        durable,
    }))
}

/// Prometheus text: request counts and latency histograms per route.
#[utoipa::path(get, path = "/metrics", tag = "operations",
    responses((status = 200, description = "Prometheus text exposition format 0.0.4", content_type = "text/plain")))]
pub(super) async fn metrics(State(app): State<AppState>) -> impl IntoResponse {
    let status = app.store.pool_status();
    let mut text = app.metrics.render();
    let in_use = status.size.saturating_sub(status.available);
    // idle and in_use add up to the open connections; a "total" beside them would double-count
    // under sum().
    let _ = write!(
        text,
        "# HELP db_pool_connections Open pooled database connections by state.\n\
         # TYPE db_pool_connections gauge\n\
         db_pool_connections{{state=\"idle\"}} {}\n\
         db_pool_connections{{state=\"in_use\"}} {in_use}\n\
         # HELP db_pool_max_connections Most database connections the pool may open.\n\
         # TYPE db_pool_max_connections gauge\n\
         db_pool_max_connections {}\n\
         # HELP websocket_sessions Open WebSocket delivery sessions on this instance.\n\
         # TYPE websocket_sessions gauge\n\
         websocket_sessions {}\n",
        status.available,
        status.max_size,
        app.hub.sessions()
    );
    (
        [(CONTENT_TYPE, "text/plain; version=0.0.4; charset=utf-8")],
        text,
    )
}
