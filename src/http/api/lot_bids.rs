//! Operators: a lot's bids (with amounts: the operator runs the auction) and its award.

use actix_web::{HttpResponse, get, post, web};
use chrono::{DateTime, Utc};
use sea_orm::{ColumnTrait, Condition, EntityTrait, QueryFilter, QueryOrder, QuerySelect};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::auth::OperatorAuth;
use crate::http::json::{JsonBody, OptionalJsonBody};
use crate::http::pagination::{Page, PageQuery, page};
use crate::http::problem::Problem;
use crate::money::{Currency, Money};
use crate::services::{lots, review};
use crate::store::entities::{award as award_row, bid, booking};
use crate::store::{Db, payments};

#[derive(Debug, Serialize, ToSchema)]
#[schema(example = json!({"id": "bid_0k2m4p6r8t1v3x5z7b9d", "booking_reference": "AU7K2P", "last_name": "Muller",
        "amount": "420.00", "units": 2, "total": "840.00", "currency": "EUR", "partial_ok": false,
        "loyalty_tier": 1, "status": "active", "submitted_at": "2026-11-23T10:15:00Z"}))]
pub struct OperatorBidView {
    pub id: String,
    pub booking_reference: String,
    pub last_name: String,
    /// Per person.
    #[schema(example = "420.00")]
    pub amount: String,
    pub units: u32,
    /// amount × units.
    #[schema(example = "840.00")]
    pub total: String,
    pub currency: String,
    pub partial_ok: bool,
    pub loyalty_tier: u32,
    pub status: String,
    pub submitted_at: DateTime<Utc>,
}

/// A lot's bids, highest offer first.
#[utoipa::path(
    tag = "operator", security(("api_key" = [])),
    params(("id" = String, Path, description = "Lot id"), PageQuery),
    responses(
        (status = 200, description = "A page of bids", body = Page<OperatorBidView>,
            example = json!({"items": [{"id": "bid_0k2m4p6r8t1v3x5z7b9d", "booking_reference": "AU7K2P", "last_name": "Muller",         "amount": "420.00", "units": 2, "total": "840.00", "currency": "EUR", "partial_ok": false,         "loyalty_tier": 1, "status": "active", "submitted_at": "2026-11-23T10:15:00Z"}], "next_cursor": null})),
        (status = 400, description = "The query string could not be read", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such lot", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "`limit` or `cursor` is invalid", body = Problem, content_type = "application/problem+json"),
    )
)]
#[get("/v1/lots/{id}/bids")]
pub async fn list(
    auth: OperatorAuth,
    db: web::Data<Db>,
    id: web::Path<String>,
    paging: web::Query<PageQuery>,
) -> Result<HttpResponse, Problem> {
    let l = lots::get(db.get_ref(), &auth.operator_id, &id).await?;
    let currency = Currency::parse(&l.currency).map_err(|_| Problem::internal())?;
    let limit = paging.limit()?;
    let mut query = bid::Entity::find().filter(bid::Column::LotId.eq(&l.id));
    if let Some((amount, after_id)) = paging.after::<(i64, String)>()? {
        query = query.filter(
            Condition::any()
                .add(bid::Column::AmountMinor.lt(amount))
                .add(
                    Condition::all()
                        .add(bid::Column::AmountMinor.eq(amount))
                        .add(bid::Column::Id.gt(after_id)),
                ),
        );
    }
    let rows = query
        .find_also_related(booking::Entity)
        .order_by_desc(bid::Column::AmountMinor)
        .order_by_asc(bid::Column::Id)
        .limit(limit + 1)
        .all(db.get_ref())
        .await?;
    let money = |minor: i64| {
        Money::from_minor(minor, currency)
            .map(|m| m.to_string())
            .unwrap_or_default()
    };
    let page: Page<OperatorBidView> = page(
        rows,
        limit,
        |(b, _)| (b.amount_minor, b.id.clone()),
        |(b, bk)| {
            let bk = bk.unwrap_or_default_booking();
            OperatorBidView {
                total: money(b.amount_minor * i64::from(b.units)),
                amount: money(b.amount_minor),
                id: b.id,
                booking_reference: bk.0,
                last_name: bk.1,
                units: b.units.max(0) as u32,
                currency: b.currency,
                partial_ok: b.partial_ok,
                loyalty_tier: b.tier.max(0) as u32,
                status: b.status,
                submitted_at: b.submitted_at,
            }
        },
    );
    Ok(HttpResponse::Ok().json(page))
}

trait BookingNames {
    fn unwrap_or_default_booking(self) -> (String, String);
}

impl BookingNames for Option<booking::Model> {
    /// An erased booking keeps its bids (financial records) but not its name.
    fn unwrap_or_default_booking(self) -> (String, String) {
        self.map(|b| (b.reference, b.last_name))
            .unwrap_or_else(|| ("(erased)".into(), "(erased)".into()))
    }
}

#[derive(Debug, Serialize, ToSchema)]
#[schema(example = json!({"lot_id": "lot_7gx2k9m4q8r1t5v3w6y0", "status": "approved", "algorithm_version": "1",
    "fingerprint": "9f2c4e…", "revenue": "2940.00", "charged": "2940.00", "refunded": "0.00", "currency": "EUR",
    "plan": {"winners": [{"id": "bid_0k2m4p6r8t1v3x5z7b9d", "price_per_unit": "420.00", "total": "840.00"}],
        "standby": ["bid_3x5z7b9d0k2m4p6r8t1v"], "losers": [{"id": "bid_9d0k2m4p6r8t1v3x5z7b", "reason": "below_reserve"}],
        "revenue": "2940.00"},
    "created_at": "2026-11-29T18:00:02Z"}))]
pub struct AwardView {
    pub lot_id: String,
    /// `pending_review` (the operator reviews it before anything is charged), `approved`
    /// (winners are charged) or `cancelled` (the lot was cancelled after its award).
    pub status: String,
    /// Version of the matching algorithm that produced the plan.
    pub algorithm_version: String,
    /// SHA-256 of the canonical inputs and result: re-running the award must reproduce it.
    pub fingerprint: String,
    /// What the plan's winners pay in all: the award's revenue as planned.
    #[schema(example = "2940.00")]
    pub revenue: String,
    /// What the winners' cards have been charged so far: nothing while the award waits
    /// for review, less than the revenue while charges run or a failed payment's grace
    /// period lasts. "Upgrade now" sales are not counted: they are paid at purchase, outside
    /// the auction.
    #[schema(example = "2940.00")]
    pub charged: String,
    /// What has been refunded of it (a cancelled lot, a smaller aircraft after the award):
    /// charged less refunded is what was kept. After a smaller aircraft the revenue is the
    /// new plan's, so charged can exceed it; the refunds make up the difference.
    #[schema(example = "0.00")]
    pub refunded: String,
    pub currency: String,
    /// The award plan: winners, standby order, and a reason for every other bid.
    #[schema(value_type = Object)]
    pub plan: serde_json::Value,
    pub created_at: DateTime<Utc>,
}

/// A lot's award and revenue, once bidding has closed and the award has run.
#[utoipa::path(
    tag = "operator", security(("api_key" = [])),
    params(("id" = String, Path, description = "Lot id")),
    responses(
        (status = 200, description = "The award", body = AwardView),
        (status = 404, description = "No such lot, or not awarded yet", body = Problem, content_type = "application/problem+json"),
    )
)]
#[get("/v1/lots/{id}/award")]
pub async fn award(
    auth: OperatorAuth,
    db: web::Data<Db>,
    id: web::Path<String>,
) -> Result<HttpResponse, Problem> {
    award_response(&db, &auth.operator_id, &id).await
}

async fn award_response(db: &Db, operator_id: &str, lot_id: &str) -> Result<HttpResponse, Problem> {
    let l = lots::get(db, operator_id, lot_id).await?;
    let a = award_row::Entity::find_by_id(l.id.clone())
        .one(db)
        .await?
        .ok_or_else(|| {
            Problem::not_found(format!(
                "Lot {} has not been awarded yet (it is {}).",
                l.id, l.status
            ))
        })?;
    let currency = Currency::parse(&a.currency).map_err(|_| Problem::internal())?;
    let money = |minor| {
        Money::from_minor(minor, currency)
            .map(|m| m.to_string())
            .unwrap_or_default()
    };
    let moved = payments::of_award(db, &l.id).await?;
    Ok(HttpResponse::Ok().json(AwardView {
        lot_id: a.lot_id,
        status: a.status,
        algorithm_version: a.algorithm_version,
        fingerprint: a.fingerprint,
        revenue: money(a.revenue_minor),
        charged: money(moved.charged_minor),
        refunded: money(moved.refunded_minor),
        currency: a.currency,
        plan: serde_json::from_str(&a.plan).unwrap_or(serde_json::Value::Null),
        created_at: a.created_at,
    }))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"winners": ["bid_0k2m4p6r8t1v3x5z7b9d"]}))]
pub struct ApproveInput {
    /// The winning bids the reviewer checked: exactly the `plan.winners` of the award they
    /// read. The approval is refused with 409 unless they are the winners now, so nobody is
    /// charged whom the reviewer did not see. Left out, the winners are not checked.
    #[serde(default)]
    pub winners: Option<Vec<String>>,
}

/// Approve an award waiting for review: every winner is charged now.
///
/// Send the winners you checked to be sure no one else is charged; with no body (or `{}`),
/// whoever wins now is charged.
#[utoipa::path(
    tag = "operator", security(("api_key" = [])), request_body = Option<ApproveInput>,
    params(("id" = String, Path, description = "Lot id"), ("Idempotency-Key" = Option<String>, Header, description = "Makes a retry safe")),
    responses(
        (status = 200, description = "Approved; charging starts", body = AwardView),
        (status = 404, description = "No such lot", body = Problem, content_type = "application/problem+json"),
        (status = 400, description = "The body is not valid JSON", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "The award is not waiting for review, or its winners are not the ones sent", body = Problem, content_type = "application/problem+json"),
        (status = 415, description = "A body that is not JSON", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "A field that is not `winners`, or `winners` not a list of bid ids", body = Problem, content_type = "application/problem+json"),
    )
)]
#[post("/v1/lots/{id}/award/approve")]
pub async fn approve(
    auth: OperatorAuth,
    db: web::Data<Db>,
    id: web::Path<String>,
    OptionalJsonBody(checked): OptionalJsonBody<Option<ApproveInput>>,
) -> Result<HttpResponse, Problem> {
    // An empty body, `null` and `{}` all approve without checking the winners.
    let winners = checked.flatten().and_then(|c| c.winners);
    review::approve(&db, &auth.actor(), &id, winners.as_deref()).await?;
    award_response(&db, &auth.operator_id, &id).await
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"bids": ["bid_0k2m4p6r8t1v3x5z7b9d"], "reason": "Travel document check failed"}))]
pub struct RejectInput {
    /// Winning bids to take out of the award.
    pub bids: Vec<String>,
    /// Told to those travellers.
    pub reason: String,
}

/// Take named winners out of an award waiting for review; their upgrades go to the standby
/// list. The award stays in review until approved.
#[utoipa::path(
    tag = "operator", security(("api_key" = [])), request_body = RejectInput,
    params(("id" = String, Path, description = "Lot id"), ("Idempotency-Key" = Option<String>, Header, description = "Makes a retry safe")),
    responses(
        (status = 200, description = "Winners taken out", body = AwardView),
        (status = 404, description = "No such lot", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "The award is not waiting for review", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "A named bid is not a winner", body = Problem, content_type = "application/problem+json"),
    )
)]
#[post("/v1/lots/{id}/award/reject")]
pub async fn reject(
    auth: OperatorAuth,
    db: web::Data<Db>,
    id: web::Path<String>,
    JsonBody(input): JsonBody<RejectInput>,
) -> Result<HttpResponse, Problem> {
    review::reject(&db, &auth.actor(), &id, &input.bids, &input.reason).await?;
    award_response(&db, &auth.operator_id, &id).await
}
