//! The OpenAPI document, generated from the handlers' annotations. The committed
//! `openapi.yaml` is this document; a test fails when the two differ.

use actix_web::{HttpResponse, get};
use utoipa::OpenApi;

use crate::http::{health, metrics, problem};

#[derive(OpenApi)]
#[openapi(
    info(
        title = "Surclass API",
        description = "Sealed-bid upgrade auctions for airlines, hotels and car-rental firms.",
        version = "1"
    ),
    paths(health::healthz, health::readyz, metrics::expose, openapi_yaml),
    components(schemas(problem::Problem, health::Health)),
    tags(
        (name = "health", description = "Probes and metrics for operations")
    )
)]
pub struct ApiDoc;

pub fn yaml() -> String {
    ApiDoc::openapi()
        .to_yaml()
        .expect("the OpenAPI document always serialises")
}

/// This document.
#[utoipa::path(
    tag = "health",
    responses((status = 200, description = "The OpenAPI document", content_type = "application/yaml", body = String))
)]
#[get("/openapi.yaml")]
pub async fn openapi_yaml() -> HttpResponse {
    HttpResponse::Ok()
        .content_type("application/yaml")
        .body(yaml())
}
