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
    modifiers(&BearerAuth, &TransportErrors),
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

/// Answers every route can give whatever its handler does, added in one place: 413 (every
/// route has a body limit, 4 KiB where no body is expected) and, where a JSON body is taken,
/// 415 for another content type.
struct TransportErrors;

impl Modify for TransportErrors {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::{ContentBuilder, Ref, ResponseBuilder};
        let error = |description: &str| {
            ResponseBuilder::new()
                .description(description)
                .content(
                    "application/json",
                    ContentBuilder::new()
                        .schema(Some(Ref::from_schema_name("ErrorBody")))
                        .build(),
                )
                .build()
        };
        for item in openapi.paths.paths.values_mut() {
            for op in [
                &mut item.get,
                &mut item.put,
                &mut item.post,
                &mut item.delete,
                &mut item.patch,
            ]
            .into_iter()
            .flatten()
            {
                op.responses
                    .responses
                    .entry("413".into())
                    .or_insert_with(|| {
                        error("`payload_too_large`: the body is over this route's limit").into()
                    });
                if op.request_body.is_some() {
                    op.responses
                        .responses
                        .entry("415".into())
                        .or_insert_with(|| {
                            error("`unsupported_media_type`: the body is not application/json")
                                .into()
                        });
                }
            }
        }
    }
}

/// This document.
#[utoipa::path(get, path = "/openapi.json", tag = "operations",
    responses((status = 200, description = "OpenAPI 3.1 document", content_type = "application/json")))]
pub async fn document() -> Json<utoipa::openapi::OpenApi> {
    Json(ApiDoc::openapi())
}
