//! The OpenAPI document, generated from the handlers' annotations. The committed
//! `openapi.yaml` is this document; a test fails when the two differ.

use actix_web::{HttpResponse, get};
use utoipa::openapi::security::{ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};

use crate::http::api::{bookings, keys, lot_bids, lots, traveller};
use crate::http::{health, metrics, pagination, problem};

#[derive(OpenApi)]
#[openapi(
    info(
        title = "Surclass API",
        description = "Sealed-bid upgrade auctions for airlines, hotels and car-rental firms.",
        version = "1"
    ),
    paths(
        health::healthz, health::readyz, metrics::expose, openapi_yaml,
        lots::create, lots::list, lots::get, lots::update, lots::open, lots::cancel,
        lots::change_capacity, lot_bids::list, lot_bids::award, bookings::import,
        keys::list, keys::create, keys::revoke,
        traveller::sign_in, traveller::partner_session, traveller::offers, traveller::place,
        traveller::get, traveller::change, traveller::withdraw,
    ),
    components(schemas(problem::Problem, health::Health, pagination::Page<lots::LotView>)),
    modifiers(&Security),
    tags(
        (name = "health", description = "Probes and metrics for operations"),
        (name = "operator", description = "Operators: lots, bookings, bids, awards and API keys. \
            Every write accepts an `Idempotency-Key` header: a retry with the same key replays \
            the stored answer (with `Idempotent-Replayed: true`) and changes nothing; the same \
            key with a different request is 422."),
        (name = "partner", description = "Partners act for travellers of their operator: get a \
            traveller session for a booking, then use the traveller routes with it."),
        (name = "traveller", description = "Travellers: sign in with a booking reference and last \
            name, see offers, bid, change, withdraw. Bids are sealed: no answer reveals another \
            bid's amount, rank or count."),
    )
)]
pub struct ApiDoc;

/// Operators and partners send an API key; travellers a session token (or its cookie).
struct Security;

impl Modify for Security {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "api_key",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .bearer_format("sk_op_… (operator scope) or sk_pt_… (partner scope)")
                    .build(),
            ),
        );
        components.add_security_scheme(
            "session",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .bearer_format("traveller session token from POST /v1/traveller/sessions")
                    .build(),
            ),
        );
        components.add_security_scheme(
            "session_cookie",
            SecurityScheme::ApiKey(ApiKey::Cookie(ApiKeyValue::new("surclass_session"))),
        );
    }
}

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
