//! Operators: lots.

use actix_web::{HttpResponse, get, patch, post, web};
use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::auth::OperatorAuth;
use crate::domain::lot::{
    AwardPolicy, LotSpec, LotStatus, PaymentMode, ResourceKind, parse_time_zone,
};
use crate::domain::validation::FieldErrors;
use crate::http::json::JsonBody;
use crate::http::pagination::{Page, PageQuery, page};
use crate::http::problem::Problem;
use crate::money::{Currency, Money};
use crate::services::lots::{self, LotFilter, StatusFilter};
use crate::store::entities::lot;
use crate::store::{Db, lots as store_lots};

/// A member sent, even as null (`Some(None)`), apart from one left out (`None`): on an edit,
/// null clears where absence keeps.
fn given<'de, D, T>(d: D) -> Result<Option<Option<T>>, D::Error>
where
    D: serde::Deserializer<'de>,
    T: Deserialize<'de>,
{
    Option::<T>::deserialize(d).map(Some)
}

/// A lot as sent by an operator: every field on create (some have defaults), any subset on edit.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({
    "resource_kind": "seat", "resource": "AU101", "service_date": "2027-06-01",
    "title": "Paris CDG → New York JFK", "from_class": "economy", "to_class": "business",
    "class_rank": 2, "capacity": 4, "currency": "EUR", "reserve": "250.00", "maximum": "1500.00",
    "closes_at": "2027-05-29T18:00:00Z", "time_zone": "Europe/Paris", "award_policy": "priority",
    "payment_mode": "charge_on_award", "open": true
}))]
pub struct LotInput {
    /// `seat`, `room` or `car`.
    pub resource_kind: Option<String>,
    /// What is upgraded: a flight number, a property code, a rental branch.
    pub resource: Option<String>,
    /// The flight date, the night, the rental day, in `time_zone`: not past, and bidding
    /// closes by its end.
    pub service_date: Option<NaiveDate>,
    /// Shown to travellers; defaults to `resource: from_class → to_class`.
    pub title: Option<String>,
    pub from_class: Option<String>,
    pub to_class: Option<String>,
    /// Position of `to_class` on the resource's ladder, higher is better (default 1).
    pub class_rank: Option<u32>,
    /// Units for sale.
    pub capacity: Option<u32>,
    /// Units already given to status or points upgrades (default 0).
    pub entitlement_units: Option<u32>,
    /// ISO 4217 code.
    pub currency: Option<String>,
    /// Minimum per person, a decimal string in the currency.
    #[schema(example = "250.00")]
    pub reserve: Option<String>,
    /// Maximum per person.
    #[schema(example = "1500.00")]
    pub maximum: Option<String>,
    /// Fixed "upgrade now" price per person, taken instantly while units are free; null (or
    /// "") for none, on an edit too.
    #[serde(default, deserialize_with = "given")]
    #[schema(value_type = Option<String>)]
    pub upgrade_now: Option<Option<String>>,
    /// Whether prices include taxes (default true), shown before any card is asked for.
    pub taxes_included: Option<bool>,
    /// Bidding opens (default: now).
    pub opens_at: Option<DateTime<Utc>>,
    /// Bidding closes: the server's deadline, no later than the end of `service_date` in
    /// `time_zone`.
    pub closes_at: Option<DateTime<Utc>>,
    /// IANA time zone (default `UTC`): the lot's days, and how times are written to travellers.
    pub time_zone: Option<String>,
    /// `priority` (default), `max_revenue` or `uniform_price`.
    pub award_policy: Option<String>,
    /// Ranking boost per loyalty tier, in percent (default 0: tiers only break ties).
    pub tier_weight_pct: Option<u32>,
    /// `hold` (default) or `charge_on_award`.
    pub payment_mode: Option<String>,
    /// Time a winner has to fix a failed payment, in seconds (default 600; 0 allowed).
    pub payment_grace_seconds: Option<u32>,
    /// Review the award plan before anything is charged (default false).
    pub review_required: Option<bool>,
    /// A winner of a higher class on the same resource frees a seat for this lot (default false).
    pub chained_capacity: Option<bool>,
    /// On create: open for bidding at once (default false: a draft).
    pub open: Option<bool>,
}

impl LotInput {
    /// Builds the complete lot from this input over `base` (the lot being edited) or, on
    /// create, over the defaults.
    pub fn into_spec(self, base: Option<&LotSpec>) -> Result<LotSpec, FieldErrors> {
        let mut e = FieldErrors::new();
        macro_rules! field {
            ($name:ident, $parse:expr, $default:expr) => {{
                match self.$name {
                    Some(v) => e.check(stringify!($name), ($parse)(v)),
                    None => match base {
                        Some(b) => Some(b.$name.clone()),
                        None => {
                            let default: Option<_> = $default;
                            if default.is_none() {
                                e.add(stringify!($name), "is required");
                            }
                            default
                        }
                    },
                }
            }};
        }
        fn ok<T>(v: T) -> Result<T, String> {
            Ok(v)
        }
        let now = Utc::now();
        let resource_kind = field!(resource_kind, |v: String| ResourceKind::parse(&v), None);
        let resource = field!(resource, ok, None);
        let service_date = field!(service_date, ok, None);
        let from_class = field!(from_class, ok, None);
        let to_class = field!(to_class, ok, None);
        let class_rank = field!(class_rank, ok, Some(1));
        let capacity = field!(capacity, ok, None);
        let entitlement_units = field!(entitlement_units, ok, Some(0));
        let currency = field!(currency, |v: String| Currency::parse(&v), None);
        // Amounts are read in the lot's currency, known only once `currency` is.
        let amount = |v: String| match currency {
            Some(c) => Money::parse(&v, c).map_err(|e| e.to_string()),
            None => Err("cannot be read without a valid currency".to_owned()),
        };
        let reserve = field!(reserve, amount, None);
        let maximum = field!(maximum, amount, None);
        let upgrade_now = match self.upgrade_now {
            Some(None) => Some(None),
            Some(Some(v)) if v.is_empty() => Some(None),
            Some(Some(v)) => e.check("upgrade_now", amount(v)).map(Some),
            None => Some(base.and_then(|b| b.upgrade_now)),
        };
        let taxes_included = field!(taxes_included, ok, Some(true));
        let opens_at = field!(opens_at, ok, Some(now));
        let closes_at = field!(closes_at, ok, None);
        let time_zone = field!(
            time_zone,
            |v: String| parse_time_zone(&v),
            Some(chrono_tz::UTC)
        );
        let award_policy = field!(
            award_policy,
            |v: String| AwardPolicy::parse(&v),
            Some(AwardPolicy::Priority)
        );
        let tier_weight_pct = field!(tier_weight_pct, ok, Some(0));
        let payment_mode = field!(
            payment_mode,
            |v: String| PaymentMode::parse(&v),
            Some(PaymentMode::Hold)
        );
        let payment_grace_seconds = field!(payment_grace_seconds, ok, Some(600));
        let review_required = field!(review_required, ok, Some(false));
        let chained_capacity = field!(chained_capacity, ok, Some(false));
        let title =
            Some(
                self.title
                    .unwrap_or_else(|| match (base, &resource, &from_class, &to_class) {
                        (Some(b), ..) => b.title.clone(),
                        (None, Some(r), Some(f), Some(t)) => format!("{r}: {f} → {t}"),
                        _ => String::new(),
                    }),
            );
        let (
            Some(resource_kind),
            Some(resource),
            Some(service_date),
            Some(title),
            Some(from_class),
            Some(to_class),
            Some(class_rank),
            Some(capacity),
            Some(entitlement_units),
            Some(currency),
            Some(reserve),
            Some(maximum),
            Some(upgrade_now),
            Some(taxes_included),
            Some(opens_at),
            Some(closes_at),
            Some(time_zone),
            Some(award_policy),
            Some(tier_weight_pct),
            Some(payment_mode),
            Some(payment_grace_seconds),
            Some(review_required),
            Some(chained_capacity),
        ) = (
            resource_kind,
            resource,
            service_date,
            title,
            from_class,
            to_class,
            class_rank,
            capacity,
            entitlement_units,
            currency,
            reserve,
            maximum,
            upgrade_now,
            taxes_included,
            opens_at,
            closes_at,
            time_zone,
            award_policy,
            tier_weight_pct,
            payment_mode,
            payment_grace_seconds,
            review_required,
            chained_capacity,
        )
        else {
            return Err(e);
        };
        e.into_result()?;
        Ok(LotSpec {
            resource_kind,
            resource,
            service_date,
            title,
            from_class,
            to_class,
            class_rank,
            capacity,
            entitlement_units,
            currency,
            reserve,
            maximum,
            upgrade_now,
            taxes_included,
            opens_at,
            closes_at,
            time_zone,
            award_policy,
            tier_weight_pct,
            payment_mode,
            payment_grace_seconds,
            review_required,
            chained_capacity,
        })
    }
}

/// A lot as the operator sees it, with its bidding so far.
#[derive(Debug, Serialize, ToSchema)]
#[schema(example = json!({"id": "lot_7gx2k9m4q8r1t5v3w6y0", "status": "open", "resource_kind": "seat", "resource": "AU101",
    "service_date": "2026-12-01", "title": "Paris CDG → New York JFK", "from_class": "economy",
    "to_class": "business", "class_rank": 2, "capacity": 4, "entitlement_units": 0, "currency": "EUR",
    "reserve": "250.00", "maximum": "1500.00", "upgrade_now": null, "taxes_included": true,
    "opens_at": "2026-11-23T09:00:00Z", "closes_at": "2026-11-29T18:00:00Z", "time_zone": "Europe/Paris",
    "award_policy": "priority", "tier_weight_pct": 0, "payment_mode": "hold", "payment_grace_seconds": 600,
    "review_required": false, "chained_capacity": false, "active_bids": 7, "best_offer": "610.00",
    "created_at": "2026-11-23T09:00:00Z", "updated_at": "2026-11-23T09:00:00Z"}))]
pub struct LotView {
    #[schema(example = "lot_7gx2k9m4q8r1t5v3w6y0")]
    pub id: String,
    /// `draft`, `open`, `closed`, `awarded`, `settled` or `cancelled`.
    pub status: String,
    pub resource_kind: String,
    pub resource: String,
    pub service_date: NaiveDate,
    pub title: String,
    pub from_class: String,
    pub to_class: String,
    pub class_rank: u32,
    pub capacity: u32,
    pub entitlement_units: u32,
    pub currency: String,
    #[schema(example = "250.00")]
    pub reserve: String,
    #[schema(example = "1500.00")]
    pub maximum: String,
    pub upgrade_now: Option<String>,
    pub taxes_included: bool,
    pub opens_at: DateTime<Utc>,
    pub closes_at: DateTime<Utc>,
    pub time_zone: String,
    pub award_policy: String,
    pub tier_weight_pct: u32,
    pub payment_mode: String,
    pub payment_grace_seconds: u32,
    pub review_required: bool,
    pub chained_capacity: bool,
    /// Active bids now (operators only: never shown to travellers or partners).
    pub active_bids: i64,
    /// Best active offer per unit, if any.
    pub best_offer: Option<String>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

pub fn view(m: lot::Model, stats: Option<(i64, Option<i64>)>) -> Result<LotView, Problem> {
    let spec = store_lots::spec(&m).map_err(|e| {
        tracing::error!(lot = %m.id, error = %e, "stored lot unreadable");
        Problem::internal()
    })?;
    let (active_bids, best) = stats.unwrap_or((0, None));
    let money = |minor: i64| {
        Money::from_minor(minor, spec.currency)
            .map(|m| m.to_string())
            .unwrap_or_default()
    };
    Ok(LotView {
        id: m.id,
        status: m.status,
        resource_kind: spec.resource_kind.as_str().into(),
        resource: spec.resource,
        service_date: spec.service_date,
        title: spec.title,
        from_class: spec.from_class,
        to_class: spec.to_class,
        class_rank: spec.class_rank,
        capacity: spec.capacity,
        entitlement_units: spec.entitlement_units,
        currency: spec.currency.code().into(),
        reserve: spec.reserve.to_string(),
        maximum: spec.maximum.to_string(),
        upgrade_now: spec.upgrade_now.map(|m| m.to_string()),
        taxes_included: spec.taxes_included,
        opens_at: spec.opens_at,
        closes_at: spec.closes_at,
        time_zone: spec.time_zone.name().into(),
        award_policy: spec.award_policy.as_str().into(),
        tier_weight_pct: spec.tier_weight_pct,
        payment_mode: spec.payment_mode.as_str().into(),
        payment_grace_seconds: spec.payment_grace_seconds,
        review_required: spec.review_required,
        chained_capacity: spec.chained_capacity,
        active_bids,
        best_offer: best.map(money),
        created_at: m.created_at,
        updated_at: m.updated_at,
    })
}

async fn view_one(db: &Db, m: lot::Model) -> Result<LotView, Problem> {
    let stats = lots::bid_stats(db, std::slice::from_ref(&m.id)).await?;
    let s = stats.into_iter().next().map(|(_, n, best)| (n, best));
    view(m, s)
}

/// Create a lot (a draft, or open at once with `"open": true`).
#[utoipa::path(
    tag = "operator", security(("api_key" = [])), request_body = LotInput,
    params(("Idempotency-Key" = Option<String>, Header, description = "Makes a retry safe")),
    responses(
        (status = 201, description = "Created", body = LotView),
        (status = 422, description = "A field is invalid", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "No or bad API key", body = Problem, content_type = "application/problem+json"),
    )
)]
#[post("/v1/lots")]
pub async fn create(
    auth: OperatorAuth,
    db: web::Data<Db>,
    JsonBody(input): JsonBody<LotInput>,
) -> Result<HttpResponse, Problem> {
    let open_now = input.open.unwrap_or(false);
    let spec = input.into_spec(None)?;
    let created = lots::create(&db, &auth.actor(), spec, open_now).await?;
    Ok(HttpResponse::Created()
        .insert_header(("Location", format!("/v1/lots/{}", created.id)))
        .json(view(created, None)?))
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct LotListQuery {
    /// Only lots in this status.
    pub status: Option<String>,
    /// Only lots on this resource (e.g. a flight number).
    pub resource: Option<String>,
    /// Only lots whose service date is on or after this date.
    pub date_from: Option<NaiveDate>,
    /// Only lots whose service date is on or before this date.
    pub date_to: Option<NaiveDate>,
}

/// List the operator's lots, soonest to close first.
#[utoipa::path(
    tag = "operator", security(("api_key" = [])), params(LotListQuery, PageQuery),
    responses(
        (status = 200, description = "A page of lots", body = Page<LotView>,
            example = json!({"items": [{"id": "lot_7gx2k9m4q8r1t5v3w6y0", "status": "open", "resource_kind": "seat", "resource": "AU101",     "service_date": "2026-12-01", "title": "Paris CDG → New York JFK", "from_class": "economy",     "to_class": "business", "class_rank": 2, "capacity": 4, "entitlement_units": 0, "currency": "EUR",     "reserve": "250.00", "maximum": "1500.00", "upgrade_now": null, "taxes_included": true,     "opens_at": "2026-11-23T09:00:00Z", "closes_at": "2026-11-29T18:00:00Z", "time_zone": "Europe/Paris",     "award_policy": "priority", "tier_weight_pct": 0, "payment_mode": "hold", "payment_grace_seconds": 600,     "review_required": false, "chained_capacity": false, "active_bids": 7, "best_offer": "610.00",     "created_at": "2026-11-23T09:00:00Z", "updated_at": "2026-11-23T09:00:00Z"}], "next_cursor": "WyIyMDI2LTExLTI5VDE4OjAwOjAwWiIsImxvdF83Z3gyIl0"})),
        (status = 400, description = "The query string could not be read", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "A filter is invalid", body = Problem, content_type = "application/problem+json"),
    )
)]
#[get("/v1/lots")]
pub async fn list(
    auth: OperatorAuth,
    db: web::Data<Db>,
    filter: web::Query<LotListQuery>,
    paging: web::Query<PageQuery>,
) -> Result<HttpResponse, Problem> {
    let limit = paging.limit()?;
    let after: Option<(DateTime<Utc>, String)> = paging.after()?;
    let status = match &filter.status {
        Some(s) => {
            StatusFilter::One(LotStatus::parse(s).map_err(|e| FieldErrors::single("status", e))?)
        }
        None => StatusFilter::Any,
    };
    let f = LotFilter {
        status,
        resource: filter.resource.clone(),
        service_date_from: filter.date_from,
        service_date_to: filter.date_to,
    };
    let rows = lots::list(&db, &auth.operator_id, &f, after, limit + 1).await?;
    let ids: Vec<String> = rows.iter().map(|l| l.id.clone()).collect();
    let stats = lots::bid_stats(&db, &ids).await?;
    let mut views = Vec::new();
    let page = page(rows, limit, |l| (l.closes_at, l.id.clone()), |l| l);
    for l in page.items {
        let s = stats
            .iter()
            .find(|(id, ..)| *id == l.id)
            .map(|(_, n, b)| (*n, *b));
        views.push(view(l, s)?);
    }
    Ok(HttpResponse::Ok().json(Page {
        items: views,
        next_cursor: page.next_cursor,
    }))
}

/// One lot.
#[utoipa::path(
    tag = "operator", security(("api_key" = [])), params(("id" = String, Path, description = "Lot id")),
    responses(
        (status = 200, description = "The lot", body = LotView),
        (status = 404, description = "No such lot of this operator", body = Problem, content_type = "application/problem+json"),
    )
)]
#[get("/v1/lots/{id}")]
pub async fn get(
    auth: OperatorAuth,
    db: web::Data<Db>,
    id: web::Path<String>,
) -> Result<HttpResponse, Problem> {
    let l = lots::get(db.get_ref(), &auth.operator_id, &id).await?;
    Ok(HttpResponse::Ok().json(view_one(&db, l).await?))
}

/// Edit a lot: any field while draft. Once open, what bids were placed on is fixed (the
/// resource, service date, time zone, classes and class rank, currency, reserve, maximum,
/// taxes, award policy, tier weight, payment mode, opens_at, chained capacity); the rest
/// (title, closes_at, upgrade_now, entitlements, review, grace period) can change. Moving
/// closes_at tells every active bidder; with active bids a sooner close stays an hour ahead at
/// least, and once the close has passed it no longer moves. A field sent with its current
/// value is no change.
#[utoipa::path(
    tag = "operator", security(("api_key" = [])), request_body = LotInput,
    params(("id" = String, Path, description = "Lot id"), ("Idempotency-Key" = Option<String>, Header, description = "Makes a retry safe")),
    responses(
        (status = 200, description = "Updated", body = LotView),
        (status = 404, description = "No such lot", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "Not editable in this state", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "A field is invalid or fixed once open", body = Problem, content_type = "application/problem+json"),
    )
)]
#[patch("/v1/lots/{id}")]
pub async fn update(
    auth: OperatorAuth,
    db: web::Data<Db>,
    id: web::Path<String>,
    JsonBody(input): JsonBody<LotInput>,
) -> Result<HttpResponse, Problem> {
    if input.open.is_some() {
        return Err(FieldErrors::single("open", "use POST /v1/lots/{id}/open").into());
    }
    let updated = lots::update(&db, &auth.actor(), &id, |base| input.into_spec(Some(base))).await?;
    Ok(HttpResponse::Ok().json(view_one(&db, updated).await?))
}

/// Open a draft lot for bidding.
#[utoipa::path(
    tag = "operator", security(("api_key" = [])),
    params(("id" = String, Path, description = "Lot id"), ("Idempotency-Key" = Option<String>, Header, description = "Makes a retry safe")),
    responses(
        (status = 200, description = "Open", body = LotView),
        (status = 409, description = "Not a draft", body = Problem, content_type = "application/problem+json"),
    )
)]
#[post("/v1/lots/{id}/open")]
pub async fn open(
    auth: OperatorAuth,
    db: web::Data<Db>,
    id: web::Path<String>,
) -> Result<HttpResponse, Problem> {
    let l = lots::open(&db, &auth.actor(), &id).await?;
    Ok(HttpResponse::Ok().json(view_one(&db, l).await?))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"reason": "Aircraft change: no business cabin"}))]
pub struct CancelInput {
    /// Told to every bidder.
    pub reason: String,
}

/// Cancel a lot: every hold is released and every bidder told why.
#[utoipa::path(
    tag = "operator", security(("api_key" = [])), request_body = CancelInput,
    params(("id" = String, Path, description = "Lot id"), ("Idempotency-Key" = Option<String>, Header, description = "Makes a retry safe")),
    responses(
        (status = 200, description = "Cancelled", body = LotView),
        (status = 409, description = "Already settled or cancelled", body = Problem, content_type = "application/problem+json"),
    )
)]
#[post("/v1/lots/{id}/cancel")]
pub async fn cancel(
    auth: OperatorAuth,
    db: web::Data<Db>,
    id: web::Path<String>,
    JsonBody(input): JsonBody<CancelInput>,
) -> Result<HttpResponse, Problem> {
    let reason = input.reason.trim();
    if reason.is_empty() || reason.chars().count() > 500 {
        return Err(
            FieldErrors::single("reason", "must be 1 to 500 characters: bidders read it").into(),
        );
    }
    let l = lots::cancel(&db, &auth.actor(), &id, reason).await?;
    Ok(HttpResponse::Ok().json(view_one(&db, l).await?))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"capacity": 2}))]
pub struct CapacityInput {
    pub capacity: u32,
}

/// Change capacity. Draft or open: never below the units entitlements took; zero withdraws
/// the upgrade (every bidder is told at once, holds are released, "upgrade now" purchases
/// refunded), any other value may not be below what entitlements and "upgrade now" took.
/// Awarded or settled: never below what entitlements and "upgrade now" took; winners beyond
/// the new capacity lose their upgrade, last-ranked first, and are refunded. Closed (the
/// award running) or cancelled: 409.
#[utoipa::path(
    tag = "operator", security(("api_key" = [])), request_body = CapacityInput,
    params(("id" = String, Path, description = "Lot id"), ("Idempotency-Key" = Option<String>, Header, description = "Makes a retry safe")),
    responses(
        (status = 200, description = "Changed", body = LotView),
        (status = 409, description = "Closed or cancelled", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Invalid capacity", body = Problem, content_type = "application/problem+json"),
    )
)]
#[post("/v1/lots/{id}/capacity")]
pub async fn change_capacity(
    auth: OperatorAuth,
    db: web::Data<Db>,
    id: web::Path<String>,
    JsonBody(input): JsonBody<CapacityInput>,
) -> Result<HttpResponse, Problem> {
    let l = lots::set_capacity(&db, &auth.actor(), &id, input.capacity).await?;
    Ok(HttpResponse::Ok().json(view_one(&db, l).await?))
}
