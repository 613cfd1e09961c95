//! Operators: bookings.

use actix_web::{HttpResponse, post, web};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::auth::OperatorAuth;
use crate::http::json::JsonBody;
use crate::http::problem::Problem;
use crate::services::bookings::{self, BookingInput};
use crate::store::Db;

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({
    "reference": "AU7K2P", "last_name": "Müller", "party_size": 2, "email": "anna.muller@example.com",
    "phone": "+4915112345678", "language": "en", "loyalty_tier": 1,
    "eligible_lots": ["lot_7gx2k9m4q8r1t5v3w6y0"]
}))]
pub struct BookingRow {
    /// Booking reference as printed on the ticket (PNR, confirmation number).
    pub reference: String,
    /// Traveller's last name as booked; matched ignoring case, spaces and accents.
    pub last_name: String,
    /// People on the booking (1 to 9): a bid upgrades all of them or none.
    pub party_size: u32,
    pub email: Option<String>,
    /// International format, e.g. +33612345678.
    pub phone: Option<String>,
    /// `en` (default) or `fr`.
    pub language: Option<String>,
    /// 0 for none; higher tiers rank first among equal offers.
    pub loyalty_tier: Option<u32>,
    /// Lots this booking may bid on (ids of this operator's lots).
    #[serde(default)]
    pub eligible_lots: Vec<String>,
}

#[derive(Debug, Serialize, ToSchema)]
#[schema(example = json!({"created": 2, "updated": 1, "unchanged": 0}))]
pub struct ImportResult {
    pub created: usize,
    pub updated: usize,
    pub unchanged: usize,
}

/// Import bookings in bulk: a JSON array of up to 10,000, idempotent by reference (a row with
/// a known reference updates it). Nothing is imported when any row is invalid; every bad
/// field is named in `errors`.
#[utoipa::path(
    tag = "operator", security(("api_key" = [])), request_body = Vec<BookingRow>,
    params(("Idempotency-Key" = Option<String>, Header, description = "Makes a retry safe")),
    responses(
        (status = 200, description = "Imported", body = ImportResult),
        (status = 422, description = "Rows are invalid; nothing imported", body = Problem, content_type = "application/problem+json"),
    )
)]
#[post("/v1/bookings/import")]
pub async fn import(
    auth: OperatorAuth,
    db: web::Data<Db>,
    JsonBody(rows): JsonBody<Vec<BookingRow>>,
) -> Result<HttpResponse, Problem> {
    let rows = rows
        .into_iter()
        .map(|r| BookingInput {
            reference: r.reference,
            last_name: r.last_name,
            party_size: r.party_size,
            email: r
                .email
                .filter(|e| !e.trim().is_empty())
                .map(|e| e.trim().to_owned()),
            phone: r
                .phone
                .filter(|p| !p.trim().is_empty())
                .map(|p| p.replace([' ', '-', '.'], "")),
            language: r.language.unwrap_or_else(|| "en".into()),
            loyalty_tier: r.loyalty_tier.unwrap_or(0),
            eligible_lots: r.eligible_lots,
        })
        .collect();
    let s = bookings::import(&db, &auth.actor(), rows).await?;
    Ok(HttpResponse::Ok().json(ImportResult {
        created: s.created,
        updated: s.updated,
        unchanged: s.unchanged,
    }))
}
