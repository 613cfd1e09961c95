//! Data rights over the API: operators export or erase a booking's data for requests they
//! receive and set their retention period; travellers do the same for their own booking and
//! choose whether they get reminders.

use actix_web::{HttpResponse, get, post, put, web};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::auth::{OperatorAuth, TravellerAuth};
use crate::http::json::JsonBody;
use crate::http::problem::Problem;
use crate::notifications::unsubscribe;
use crate::services::data_rights;
use crate::store::Db;

/// Everything held about one booking.
#[derive(Debug, Serialize, ToSchema)]
#[schema(value_type = Object)]
pub struct DataExport(serde_json::Value);

/// The export as JSON that a browser saves as a file.
fn download(booking_id: &str, data: serde_json::Value) -> HttpResponse {
    HttpResponse::Ok()
        .insert_header((
            "Content-Disposition",
            format!("attachment; filename=\"surclass-{booking_id}.json\""),
        ))
        .insert_header(("Cache-Control", "no-store"))
        .json(DataExport(data))
}

fn export_example() -> serde_json::Value {
    serde_json::json!({
        "booking": {"id": "bkg_0k2m4p6r8t1v3x5z7b9d", "reference": "AU7K2P", "last_name": "Müller",
            "email": "anna.muller@example.com", "phone": "+4915112345678", "language": "en", "party_size": 2,
            "loyalty_tier": 1, "created_at": "2026-11-20T09:00:00Z", "erased_at": null},
        "eligible_lots": ["lot_7gx2k9m4q8r1t5v3w6y0"],
        "bids": [{"id": "bid_0k2m4p6r8t1v3x5z7b9d", "lot_id": "lot_7gx2k9m4q8r1t5v3w6y0", "status": "charged",
            "amount_per_person": "420.00", "currency": "EUR", "units": 2, "partial_ok": false,
            "preference": null, "submitted_at": "2026-11-21T10:00:00Z", "saved_card": null,
            "events": [{"kind": "placed", "at": "2026-11-21T10:00:00Z", "amount": "420.00", "detail": null}],
            "payments": [{"id": "pay_1", "kind": "capture", "amount": "840.00", "currency": "EUR", "status": "succeeded",
                "provider": "simulated", "created_at": "2026-11-23T09:00:00Z"}]}],
        "messages": [{"topic": "bid.charged", "status": "sent", "to": "anna.muller@example.com",
            "subject": "Upgrade confirmed: …", "body": "Dear Müller, …", "created_at": "2026-11-23T09:00:00Z",
            "sent_at": "2026-11-23T09:00:01Z"}],
        "partner_notices": [{"topic": "bid.charged", "status": "sent", "to": "https://partner.example/hooks",
            "created_at": "2026-11-23T09:00:00Z", "sent_at": "2026-11-23T09:00:01Z"}],
        "reminders": {"unsubscribed_at": null},
        "ip_addresses": "none stored",
        "exported_at": "2026-11-23T10:00:00Z"
    })
}

#[derive(Debug, Serialize, ToSchema)]
#[schema(example = json!({"booking_id": "bkg_0k2m4p6r8t1v3x5z7b9d", "erased_at": "2026-11-23T10:00:00Z",
    "kept": "bids, payments and awards under pseudonymous ids, as the law requires"}))]
pub struct Erasure {
    pub booking_id: String,
    pub erased_at: Option<DateTime<Utc>>,
    /// What stays, and why.
    pub kept: String,
}

fn erasure(b: crate::store::entities::booking::Model) -> Erasure {
    Erasure {
        booking_id: b.id,
        erased_at: b.erased_at,
        kept: "bids, payments and awards under pseudonymous ids, as the law requires".into(),
    }
}

/// Export everything held about a booking (by id or reference), for a request the operator received.
#[utoipa::path(
    tag = "operator", security(("api_key" = [])),
    params(("booking" = String, Path, description = "Booking id (`bkg_…`) or reference")),
    responses(
        (status = 200, description = "The booking's data", body = DataExport, example = export_example),
        (status = 404, description = "No such booking", body = Problem, content_type = "application/problem+json"),
    )
)]
#[get("/v1/bookings/{booking}/data")]
pub async fn operator_export(
    auth: OperatorAuth,
    db: web::Data<Db>,
    booking: web::Path<String>,
) -> Result<HttpResponse, Problem> {
    let b = data_rights::find_booking(db.get_ref(), &auth.operator_id, &booking).await?;
    let data = data_rights::export(db.get_ref(), &b.id).await?;
    Ok(download(&b.id, data))
}

/// Erase a booking's personal data (name, contact, what was sent to it); financial records
/// stay under pseudonymous ids. Refused while an offer is still in play, and until the travel
/// day of a paid upgrade has passed (it may yet be cancelled and refunded).
#[utoipa::path(
    tag = "operator", security(("api_key" = [])),
    params(("booking" = String, Path, description = "Booking id (`bkg_…`) or reference"),
        ("Idempotency-Key" = Option<String>, Header, description = "Makes a retry safe")),
    responses(
        (status = 200, description = "Erased (again: nothing changes)", body = Erasure),
        (status = 404, description = "No such booking", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "An offer is still in play (`erasure-money-in-flight`), or a paid upgrade's travel day is still ahead (`erasure-upgrade-ahead`)", body = Problem, content_type = "application/problem+json"),
    )
)]
#[post("/v1/bookings/{booking}/erasure")]
pub async fn operator_erase(
    auth: OperatorAuth,
    db: web::Data<Db>,
    booking: web::Path<String>,
) -> Result<HttpResponse, Problem> {
    let b = data_rights::find_booking(db.get_ref(), &auth.operator_id, &booking).await?;
    let by = data_rights::Asker::Operator(auth.actor());
    Ok(HttpResponse::Ok().json(erasure(data_rights::erase(&db, &b.id, by).await?)))
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"retention_days": 365}))]
pub struct Retention {
    /// Days after a lot is settled (or cancelled) before its bookings' personal data is
    /// erased by the hourly purge; `null`: kept until erased on request.
    pub retention_days: Option<i32>,
}

/// The retention period for personal data of settled lots.
#[utoipa::path(tag = "operator", security(("api_key" = [])), responses((status = 200, description = "Retention", body = Retention)))]
#[get("/v1/privacy/retention")]
pub async fn get_retention(auth: OperatorAuth, db: web::Data<Db>) -> Result<HttpResponse, Problem> {
    let retention_days = data_rights::retention(db.get_ref(), &auth.operator_id).await?;
    Ok(HttpResponse::Ok().json(Retention { retention_days }))
}

/// Set the retention period (1 to 3650 days, or `null` for none).
#[utoipa::path(
    tag = "operator", security(("api_key" = [])), request_body = Retention,
    params(("Idempotency-Key" = Option<String>, Header, description = "Makes a retry safe")),
    responses(
        (status = 200, description = "Set", body = Retention),
        (status = 422, description = "Invalid", body = Problem, content_type = "application/problem+json"),
    )
)]
#[put("/v1/privacy/retention")]
pub async fn set_retention(
    auth: OperatorAuth,
    db: web::Data<Db>,
    JsonBody(input): JsonBody<Retention>,
) -> Result<HttpResponse, Problem> {
    let retention_days =
        data_rights::set_retention(&db, &auth.operator_id, input.retention_days).await?;
    Ok(HttpResponse::Ok().json(Retention { retention_days }))
}

/// Everything held about the signed-in traveller's booking.
#[utoipa::path(
    tag = "traveller", security(("session" = []), ("session_cookie" = [])),
    responses((status = 200, description = "Your data", body = DataExport, example = export_example),
        (status = 401, description = "Not signed in", body = Problem, content_type = "application/problem+json"))
)]
#[get("/v1/traveller/data")]
pub async fn traveller_export(
    auth: TravellerAuth,
    db: web::Data<Db>,
) -> Result<HttpResponse, Problem> {
    let data = data_rights::export(db.get_ref(), &auth.booking.id).await?;
    Ok(download(&auth.booking.id, data))
}

/// Erase the signed-in traveller's personal data; the session (and the reference + name
/// sign-in) stop working. Refused while an offer is still in play, and until the travel day
/// of a paid upgrade has passed (it may yet be cancelled and refunded).
#[utoipa::path(
    tag = "traveller", security(("session" = []), ("session_cookie" = [])),
    responses((status = 200, description = "Erased", body = Erasure),
        (status = 401, description = "Not signed in", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "An offer is still in play (`erasure-money-in-flight`), or a paid upgrade's travel day is still ahead (`erasure-upgrade-ahead`)", body = Problem, content_type = "application/problem+json"))
)]
#[post("/v1/traveller/erasure")]
pub async fn traveller_erase(
    auth: TravellerAuth,
    db: web::Data<Db>,
) -> Result<HttpResponse, Problem> {
    let by = data_rights::Asker::Traveller;
    Ok(HttpResponse::Ok().json(erasure(
        data_rights::erase(&db, &auth.booking.id, by).await?,
    )))
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"reminders": false}))]
pub struct Preferences {
    /// Reminders before bidding closes. Messages about your offers and money always come.
    pub reminders: bool,
}

/// Whether the traveller gets reminders.
#[utoipa::path(
    tag = "traveller", security(("session" = []), ("session_cookie" = [])),
    responses((status = 200, description = "Preferences", body = Preferences),
        (status = 401, description = "Not signed in", body = Problem, content_type = "application/problem+json"))
)]
#[get("/v1/traveller/notifications")]
pub async fn preferences(auth: TravellerAuth, db: web::Data<Db>) -> Result<HttpResponse, Problem> {
    let off = unsubscribe::is_unsubscribed(db.get_ref(), &auth.booking.id).await?;
    Ok(HttpResponse::Ok().json(Preferences { reminders: !off }))
}

/// Turn reminders on or off.
#[utoipa::path(
    tag = "traveller", security(("session" = []), ("session_cookie" = [])), request_body = Preferences,
    responses((status = 200, description = "Saved", body = Preferences),
        (status = 401, description = "Not signed in", body = Problem, content_type = "application/problem+json"))
)]
#[put("/v1/traveller/notifications")]
pub async fn set_preferences(
    auth: TravellerAuth,
    db: web::Data<Db>,
    JsonBody(input): JsonBody<Preferences>,
) -> Result<HttpResponse, Problem> {
    if input.reminders {
        unsubscribe::resubscribe(db.get_ref(), &auth.booking.id).await?;
    } else {
        unsubscribe::unsubscribe(db.get_ref(), &auth.booking.id).await?;
    }
    Ok(HttpResponse::Ok().json(input))
}
