//! The OpenAPI document, generated from the handlers' annotations. The committed
//! `openapi.yaml` is this document; a test fails when the two differ.

use actix_web::{HttpResponse, get};
use utoipa::openapi::security::{ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};

use crate::http::api::{
    bookings, data_rights, keys, lot_bids, lots, messages, traveller, webhook_endpoints, webhooks,
};
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
        lots::change_capacity, lot_bids::list, lot_bids::award, lot_bids::approve, lot_bids::reject, bookings::import,
        keys::list, keys::create, keys::revoke,
        traveller::sign_in, traveller::partner_session, traveller::offers, traveller::place,
        traveller::get, traveller::change, traveller::withdraw, traveller::upgrade_now, traveller::replace_card,
        webhooks::payments,
        messages::list, messages::retry,
        webhook_endpoints::create, webhook_endpoints::list, webhook_endpoints::get,
        webhook_endpoints::update, webhook_endpoints::remove, webhook_endpoints::deliveries,
        data_rights::operator_export, data_rights::operator_erase, data_rights::get_retention,
        data_rights::set_retention, data_rights::traveller_export, data_rights::traveller_erase,
        data_rights::preferences, data_rights::set_preferences,
    ),
    components(schemas(problem::Problem, health::Health, pagination::Page<lots::LotView>)),
    modifiers(&Security),
    tags(
        (name = "health", description = "Probes and metrics for operations"),
        (name = "operator", description = "Operators: lots, bookings, bids, awards and API keys. \
            Every write accepts an `Idempotency-Key` header: a retry with the same key replays \
            the stored answer (with `Idempotent-Replayed: true`) and changes nothing; the same \
            key with a different request is 422. Answers are kept for 24 hours, and not replayed to \
            a key revoked since (401)."),
        (name = "partner", description = "Partners act for travellers of their operator: get a \
            traveller session for a booking, then use the traveller routes with it."),
        (name = "traveller", description = "Travellers: sign in with a booking reference and last \
            name, see offers, bid, change, withdraw. Bids are sealed: no answer reveals another \
            bid's amount, rank or count."),
        (name = "webhooks", description = WEBHOOKS_DOC),
    )
)]
pub struct ApiDoc;

/// How a receiver verifies a delivery, from this document alone.
const WEBHOOKS_DOC: &str = "Operators and partners register endpoints and choose events \
(`bid.placed`, `bid.changed`, `bid.withdrawn`, `bid.deadline_moved`, `bid.charged`, `bid.lost`, \
`bid.payment_failed`, `bid.cancelled`, `bid.refunded`). Each delivery is a `POST` with a JSON body \
`{\"id\": \"evt_…\", \"type\": \"bid.charged\", \"created\": 1767225600, \"data\": {\"bid_id\", \"lot_id\", \"booking_id\", \"bid_status\", \"closes_at\", \"detail\"}}` \
(`bid_status` is the bid's after the event: `bid.payment_failed` with `payment_failed` is a \
winner asked for another card; with another status it is an \"upgrade now\" the bank declined \
after a late answer, already undone; `closes_at` is the lot's close of bidding as of the \
event, the new one for `bid.deadline_moved`, whose `detail` says the old one too; `detail` \
is an English sentence, or null; fields may be added: ignore those you do not know) and \
these headers: `Surclass-Event` (the type), `Surclass-Delivery` (the event id, the same on \
every retry: use it to drop duplicates) and `Surclass-Signature: t=<unix seconds>,v1=<hex>`. \
To verify: take `t` and every `v1` from the header; compute HMAC-SHA256 with the endpoint's \
secret (the whole `whsec_…` string, UTF-8) as key over the bytes `<t>` + `.` + the raw request \
body; accept when it equals a `v1` (compare in constant time) and `t` is within 300 seconds of \
your clock. Example: secret `whsec_test`, t `1767225600`, body `{}` gives \
`v1=` + hex(HMAC-SHA256(\"whsec_test\", \"1767225600.{}\")). Answer any 2xx within 10 seconds; \
anything else (or no answer) is retried with backoff (30 s doubling to an hour, then hourly) \
for about a day (30 attempts), then parked: `GET /v1/webhook-endpoints/{id}/deliveries` lists \
every attempt, and `POST /v1/messages/{id}/retry` (operator key) sends a parked one again.";

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
    // A YAML mapping: clients that parse YAML (as schemathesis does) see an object.
    responses((status = 200, description = "The OpenAPI document", content_type = "application/yaml", body = Object,
        example = json!({"openapi": "3.1.0", "info": {"title": "Surclass API"}})))
)]
#[get("/openapi.yaml")]
pub async fn openapi_yaml() -> HttpResponse {
    HttpResponse::Ok()
        .content_type("application/yaml")
        .body(yaml())
}

#[cfg(test)]
mod tests {
    use serde_json::Value;

    use super::ApiDoc;
    use utoipa::OpenApi;

    fn resolve<'a>(doc: &'a Value, schema: &'a Value) -> &'a Value {
        match schema["$ref"].as_str() {
            Some(r) => {
                let name = r.rsplit('/').next().unwrap_or_default();
                &doc["components"]["schemas"][name]
            }
            None => schema,
        }
    }

    fn has_example(doc: &Value, schema: &Value) -> bool {
        let s = resolve(doc, schema);
        s.get("example").is_some()
            || s.get("examples").is_some()
            || (s["type"] == "array" && has_example(doc, &s["items"]))
            || ["allOf", "oneOf", "anyOf"].iter().any(|k| {
                s[*k]
                    .as_array()
                    .is_some_and(|v| v.iter().any(|x| has_example(doc, x)))
            })
    }

    fn media_has_example(doc: &Value, content: &Value) -> Vec<String> {
        let mut missing = Vec::new();
        for (media, m) in content.as_object().into_iter().flatten() {
            if m.get("example").is_none()
                && m.get("examples").is_none()
                && !has_example(doc, &m["schema"])
            {
                missing.push(media.clone());
            }
        }
        missing
    }

    /// A partner integrates from the document alone: every body in and out has an example.
    #[test]
    fn every_route_has_examples_of_what_goes_in_and_comes_out() {
        let doc = serde_json::to_value(ApiDoc::openapi()).unwrap();
        let mut missing = Vec::new();
        for (path, item) in doc["paths"].as_object().unwrap() {
            for (method, op) in item.as_object().unwrap() {
                if let Some(content) = op.get("requestBody").map(|b| &b["content"]) {
                    for media in media_has_example(&doc, content) {
                        missing.push(format!("{method} {path} request {media}"));
                    }
                }
                for (status, response) in op["responses"].as_object().unwrap() {
                    for media in media_has_example(&doc, &response["content"]) {
                        missing.push(format!("{method} {path} {status} {media}"));
                    }
                }
            }
        }
        assert!(
            missing.is_empty(),
            "no example for:\n{}",
            missing.join("\n")
        );
    }
}
