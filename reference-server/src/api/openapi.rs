//! The OpenAPI 3 document, generated from the handlers' annotations and types.

use axum::Json;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};

use super::{accounts, health, keys, messages, websocket};
use crate::error::ErrorBody;

#[derive(OpenApi)]
#[openapi(
    info(title = "e2ee-harness reference server", description = "Keys, prekey bundles and encrypted message envelopes. See docs/api.md."),
    paths(
        health::healthz, health::metrics, document,
        accounts::register_user, accounts::add_device, accounts::remove_device,
        keys::upload_one_time, keys::rotate_signed, keys::count, keys::user_bundles, keys::device_bundle,
        messages::send, messages::poll, messages::acknowledge,
        websocket::upgrade,
    ),
    components(schemas(ErrorBody, websocket::ServerFrame, websocket::ClientFrame)),
    modifiers(&BearerAuth),
)]
pub struct ApiDoc;

struct BearerAuth;

impl Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
        );
    }
}

/// This document.
#[utoipa::path(get, path = "/openapi.json", tag = "operations",
    responses((status = 200, description = "OpenAPI 3.1 document", content_type = "application/json")))]
pub async fn document() -> Json<utoipa::openapi::OpenApi> {
    Json(ApiDoc::openapi())
}
