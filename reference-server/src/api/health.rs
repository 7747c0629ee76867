//! Liveness and metrics.

use axum::extract::State;
use axum::http::header::CONTENT_TYPE;
use axum::response::IntoResponse;
use axum::Json;
use serde::Serialize;
use utoipa::ToSchema;

use super::AppState;
use crate::error::{ApiError, ErrorBody};

#[derive(Debug, Serialize, ToSchema)]
pub struct Health {
    pub status: &'static str,
    pub database: &'static str,
    /// WebSocket sessions on this instance.
    pub sessions: usize,
}

/// Liveness and database reachability.
#[utoipa::path(get, path = "/healthz", tag = "operations",
    responses((status = 200, body = Health), (status = 503, description = "database unreachable", body = ErrorBody)))]
pub async fn healthz(State(app): State<AppState>) -> Result<Json<Health>, ApiError> {
    app.store.ping().await?;
    Ok(Json(Health {
        status: "ok",
        database: "ok",
        sessions: app.hub.sessions(),
    }))
}

/// Prometheus text: request counts and latency histograms per route.
#[utoipa::path(get, path = "/metrics", tag = "operations",
    responses((status = 200, description = "Prometheus text exposition format 0.0.4", content_type = "text/plain")))]
pub async fn metrics(State(app): State<AppState>) -> impl IntoResponse {
    let status = app.store.pool_status();
    let mut text = app.metrics.render();
    text.push_str("# HELP db_pool_connections Pooled database connections by state.\n# TYPE db_pool_connections gauge\n");
    text.push_str(&format!(
        "db_pool_connections{{state=\"idle\"}} {}\n",
        status.available
    ));
    text.push_str(&format!(
        "db_pool_connections{{state=\"total\"}} {}\n",
        status.size
    ));
    text.push_str(&format!("db_pool_max_connections {}\n", status.max_size));
    text.push_str(&format!("websocket_sessions {}\n", app.hub.sessions()));
    (
        [(CONTENT_TYPE, "text/plain; version=0.0.4; charset=utf-8")],
        text,
    )
}
