//! Travellers (and partners acting for them): sign in with a booking, see offers, bid.
//! Sealed: nothing here ever tells one traveller about another's bid, not even how many.

use actix_web::cookie::{Cookie, SameSite, time};
use actix_web::{HttpResponse, delete, get, patch, post, web};
use chrono::{DateTime, NaiveDate, Utc};
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::auth::{PartnerAuth, SESSION_COOKIE, TravellerAuth, TravellerSession};
use crate::domain::bid::{BidEventKind, BidStatus};
use crate::domain::identity::reference_key;
use crate::domain::lot::LotStatus;
use crate::domain::outcome::reason_text;
use crate::domain::validation::FieldErrors;
use crate::http::client_address::ClientAddress;
use crate::http::json::JsonBody;
use crate::http::problem::{Company, Problem};
use crate::money::{Currency, Money};
use crate::payments::{CardSource, PaymentGateway};
use crate::services::award::{PlanRecord, rule_text};
use crate::services::bids::{self, BidError, NewBid, Offer};
use crate::services::bookings::{self, TravellerMatch};
use crate::services::events::placed_on_saved_card;
use crate::services::sessions::{SessionSigner, session_ttl};
use crate::services::throttle::LoginThrottle;
use crate::store::entities::{award as award_row, bid, bid_event, booking, lot, operator};
use crate::store::{Db, lots as store_lots};

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"reference": "AU7K2P", "last_name": "Muller"}))]
pub struct SignIn {
    /// Booking reference as on the ticket; case, spaces and dashes do not matter.
    pub reference: String,
    /// Last name as booked; case, accents, spaces and apostrophes do not matter.
    pub last_name: String,
    /// The company booked with (its `slug`, as in its links). Needed only when the reference
    /// and last name match bookings of several companies (`409 several-bookings` lists them).
    #[serde(default)]
    #[schema(example = "aurora-air")]
    pub operator: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
#[schema(example = json!({"reference": "AU7K2P", "last_name": "Muller", "party_size": 2, "language": "en"}))]
pub struct BookingSummary {
    pub reference: String,
    pub last_name: String,
    pub party_size: u32,
    pub language: String,
}

#[derive(Debug, Serialize, ToSchema)]
#[schema(example = json!({"token": "v1.bkg_3m8q1t5v7x9z2b4d6f8h.1767225600.Zm9v", "expires_at": "2026-11-24T10:00:00Z", "booking": {"reference": "AU7K2P", "last_name": "Muller", "party_size": 2, "language": "en"}}))]
pub struct Session {
    /// Send as `Authorization: Bearer <token>` (pages use the `surclass_session` cookie).
    #[schema(example = "v1.bkg_3m8q1t5v7x9z2b4d6f8h.1767225600.Zm9v")]
    pub token: String,
    pub expires_at: DateTime<Utc>,
    pub booking: BookingSummary,
}

fn summary(b: &booking::Model) -> BookingSummary {
    BookingSummary {
        reference: b.reference.clone(),
        last_name: b.last_name.clone(),
        party_size: b.party_size.max(1) as u32,
        language: b.language.clone(),
    }
}

/// A session for the booking: the traveller's own, or one a partner's key opened (`key_id`),
/// which ends when the key is revoked.
fn session_response(
    signer: &SessionSigner,
    b: &booking::Model,
    key_id: Option<&str>,
) -> HttpResponse {
    let expires_at = Utc::now() + session_ttl();
    let token = match key_id {
        Some(key_id) => signer.sign_for_key(&b.id, expires_at, key_id),
        None => signer.sign(&b.id, expires_at),
    };
    let cookie = Cookie::build(SESSION_COOKIE, token.clone())
        .path("/")
        .http_only(true)
        .secure(true)
        .same_site(SameSite::Lax)
        .max_age(time::Duration::seconds(session_ttl().num_seconds()))
        .finish();
    HttpResponse::Created().cookie(cookie).json(Session {
        token,
        expires_at,
        booking: summary(b),
    })
}

fn not_found_generic() -> Problem {
    Problem::new(
        actix_web::http::StatusCode::UNAUTHORIZED,
        "booking-not-found",
        "Booking not found",
        "No booking matches this reference and last name. Check both as printed on your ticket or confirmation.",
    )
}

/// Sign in with a booking reference and last name. Wrong pairs all get the same answer,
/// and repeated failures are throttled per client and per reference (429 with Retry-After).
#[utoipa::path(
    tag = "traveller", request_body = SignIn,
    responses(
        (status = 201, description = "Signed in; also sets the `surclass_session` cookie", body = Session),
        (status = 401, description = "No booking matches", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "Bookings of several companies match: `operators` lists them, send one as `operator`", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "`operator` names no known company", body = Problem, content_type = "application/problem+json"),
        (status = 429, description = "Too many attempts from this address, or too many failed ones", headers(("Retry-After" = u64, description = "Seconds to wait")), body = Problem, content_type = "application/problem+json"),
    )
)]
#[post("/v1/traveller/sessions")]
pub async fn sign_in(
    db: web::Data<Db>,
    signer: web::Data<SessionSigner>,
    throttle: web::Data<LoginThrottle>,
    ClientAddress(client): ClientAddress,
    JsonBody(input): JsonBody<SignIn>,
) -> Result<HttpResponse, Problem> {
    if let Err(wait) = throttle.admit(&client) {
        return Err(Problem::too_many(
            format!("Too many sign-in attempts from this address. Try again in {wait} seconds."),
            wait,
        ));
    }
    let reference = reference_key(&input.reference);
    if let Err(wait) = throttle.check(&client, &reference) {
        return Err(Problem::too_many(
            format!(
                "Too many attempts. Try again in {} minutes, or use the link in your email.",
                wait.div_ceil(60)
            ),
            wait,
        ));
    }
    let operator = input.operator.as_deref().filter(|o| !o.trim().is_empty());
    let found =
        bookings::find_for_traveller(db.get_ref(), &input.reference, &input.last_name, operator)
            .await?;
    match found {
        TravellerMatch::One(b) => {
            throttle.record_success(&reference);
            Ok(session_response(&signer, &b, None))
        }
        // Only the right pair gets this far: it opens either booking, so naming the
        // companies tells nothing the pair does not.
        TravellerMatch::Several(companies) => {
            throttle.record_success(&reference);
            Err(several_bookings(companies))
        }
        TravellerMatch::UnknownOperator => Err(Problem::invalid(FieldErrors::single(
            "operator",
            "is not a company known here; leave it out, or use the one in your link",
        ))),
        TravellerMatch::None => {
            throttle.record_failure(&client, &reference);
            Err(not_found_generic())
        }
    }
}

fn several_bookings(companies: Vec<operator::Model>) -> Problem {
    let named: Vec<String> = companies
        .iter()
        .map(|c| format!("{} ({})", c.slug, c.name))
        .collect();
    let mut problem = Problem::conflict(
        "several-bookings",
        "Bookings with several companies",
        format!(
            "This reference and last name match bookings with more than one company; send `operator` with the one you booked with: {}.",
            named.join(", ")
        ),
    )
    .with_field("operator");
    problem.operators = Some(Box::new(
        companies
            .into_iter()
            .map(|c| Company {
                slug: c.slug,
                name: c.name,
            })
            .collect(),
    ));
    problem
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"reference": "AU7K2P"}))]
pub struct PartnerSessionInput {
    /// A booking reference of the partner's operator.
    pub reference: String,
}

/// Partners: act for a traveller. Returns a traveller session for a booking of this
/// partner's operator; use it on every traveller route.
#[utoipa::path(
    tag = "partner", security(("api_key" = [])), request_body = PartnerSessionInput,
    responses(
        (status = 201, description = "A traveller session for that booking", body = Session),
        (status = 404, description = "No such booking of this operator", body = Problem, content_type = "application/problem+json"),
    )
)]
#[post("/v1/partner/sessions")]
pub async fn partner_session(
    auth: PartnerAuth,
    db: web::Data<Db>,
    signer: web::Data<SessionSigner>,
    JsonBody(input): JsonBody<PartnerSessionInput>,
) -> Result<HttpResponse, Problem> {
    let b = booking::Entity::find()
        .filter(booking::Column::OperatorId.eq(&auth.operator_id))
        .filter(booking::Column::ReferenceKey.eq(reference_key(&input.reference)))
        .filter(booking::Column::ErasedAt.is_null())
        .one(db.get_ref())
        .await?
        .ok_or_else(|| Problem::not_found("No booking with this reference for this operator."))?;
    Ok(session_response(&signer, &b, Some(&auth.key_id)))
}

#[derive(Debug, Serialize, ToSchema)]
#[schema(example = json!({"kind": "placed", "at": "2026-11-23T10:15:00Z", "amount": "420.00", "message": "Bid received: 420.00 EUR per person, 840.00 EUR in all."}))]
pub struct TimelineEvent {
    /// placed, raised, lowered, withdrawn, hold_placed (the card authorised), card_saved (the
    /// card saved for a charge on award; nothing held), hold_released, lot_closed,
    /// capacity_changed, lot_cancelled, won, lost, standby, charged, payment_failed, refunded,
    /// upgrade_now, no_room_left (before the close, too few upgrades left for the party: the
    /// bid is released and may be placed again should more become available).
    pub kind: String,
    pub at: DateTime<Utc>,
    /// Amount per person the event is about, if any.
    pub amount: Option<String>,
    /// What happened, in plain words.
    pub message: String,
}

#[derive(Debug, Serialize, ToSchema)]
#[schema(example = json!({"id": "bid_0k2m4p6r8t1v3x5z7b9d", "lot_id": "lot_7gx2k9m4q8r1t5v3w6y0", "amount": "420.00", "units": 2,
    "total": "840.00", "currency": "EUR", "status": "active", "partial_ok": false, "preference": null,
    "submitted_at": "2026-11-23T10:15:00Z", "closes_at": "2026-11-29T18:00:00Z", "timeline": [{"kind": "placed", "at": "2026-11-23T10:15:00Z", "amount": "420.00",
        "message": "Bid received: 420.00 EUR per person, 840.00 EUR in all."}]}))]
pub struct TravellerBidView {
    #[schema(example = "bid_0k2m4p6r8t1v3x5z7b9d")]
    pub id: String,
    pub lot_id: String,
    /// Per person.
    #[schema(example = "420.00")]
    pub amount: String,
    /// People upgraded (the whole party).
    pub units: u32,
    /// What the card is charged if the upgrade is confirmed: amount × units.
    #[schema(example = "840.00")]
    pub total: String,
    pub currency: String,
    /// active, withdrawn, won, lost, charged, payment_failed, released, refunded.
    pub status: String,
    pub partial_ok: bool,
    pub preference: Option<u32>,
    pub submitted_at: DateTime<Utc>,
    /// The server's deadline: no change after this instant.
    pub closes_at: DateTime<Utc>,
    /// After the award: what this bid got and why, in plain words.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub outcome: Option<BidOutcome>,
    /// What the traveller can do now, as links: `fix_card` while a failed payment can still
    /// be fixed with another card (`POST` a `payment_method` or `card` to it), until
    /// `fix_card_until`. Absent past the grace period, and on a lot that leaves none.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub links: Option<BidLinks>,
    /// Every change, oldest first (on single-bid reads).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub timeline: Option<Vec<TimelineEvent>>,
}

#[derive(Debug, Serialize, ToSchema)]
#[schema(example = json!({"fix_card": "/v1/traveller/bids/bid_0k2m4p6r8t1v3x5z7b9d/card", "fix_card_until": "2026-11-30T18:00:00Z"}))]
pub struct BidLinks {
    pub fix_card: String,
    /// The end of the grace period: a card given after it is refused, and the upgrade goes
    /// to the next traveller.
    pub fix_card_until: DateTime<Utc>,
}

/// The result of the award for one bid, visible to every bidder once the lot is awarded.
#[derive(Debug, Serialize, ToSchema)]
#[schema(example = json!({"reason": "outbid", "message": "Other offers were higher for the upgrades available.",
    "rule": "The highest offers per person won, whole parties only, in order (loyalty tier, then the earlier offer, broke ties); each winner pays their own offer.",
    "units_upgraded": null, "price_per_person": null, "charged_total": null, "clearing_price": null}))]
pub struct BidOutcome {
    /// Why the bid did not win (`below_reserve`, `outbid`, `party_does_not_fit`, …), if it did not.
    pub reason: Option<String>,
    pub message: Option<String>,
    /// How the winners were chosen.
    pub rule: String,
    /// Winners: people upgraded (fewer than the party only if a partial upgrade was accepted).
    pub units_upgraded: Option<u32>,
    /// Winners: the price per person paid (under `uniform_price`, the clearing price).
    pub price_per_person: Option<String>,
    /// Winners: the exact total charged.
    pub charged_total: Option<String>,
    /// Under `uniform_price`: the one price per person every winner pays.
    pub clearing_price: Option<String>,
}

/// The lot's award, as a bidder may see it (rule and clearing price, never others' bids).
pub struct AwardSummary {
    pub policy: String,
    pub clearing_price_minor: Option<i64>,
}

async fn award_summary(db: &Db, lot_id: &str) -> Result<Option<AwardSummary>, Problem> {
    let Some(a) = award_row::Entity::find_by_id(lot_id.to_owned())
        .one(db)
        .await?
    else {
        return Ok(None);
    };
    let plan: PlanRecord = serde_json::from_str(&a.plan).map_err(|_| Problem::internal())?;
    Ok(Some(AwardSummary {
        policy: plan.policy,
        clearing_price_minor: plan.clearing_price_minor,
    }))
}

fn money_str(minor: i64, currency: Currency) -> String {
    Money::from_minor(minor, currency)
        .map(|m| m.to_string())
        .unwrap_or_default()
}

/// Until when bid `b` on lot `l`, its payment failed, may still be given another card.
fn card_replaceable_until(
    b: &bid::Model,
    l: &lot::Model,
    events: &[bid_event::Model],
) -> Result<Option<DateTime<Utc>>, Problem> {
    if b.status != BidStatus::PaymentFailed.as_str() {
        return Ok(None);
    }
    let spec = store_lots::spec(l).map_err(|_| Problem::internal())?;
    Ok(bids::card_replaceable(b, &spec, events, Utc::now()))
}

fn bid_view(
    b: &bid::Model,
    closes_at: DateTime<Utc>,
    events: Option<Vec<bid_event::Model>>,
    award: Option<&AwardSummary>,
    card_replaceable_until: Option<DateTime<Utc>>,
) -> TravellerBidView {
    let currency =
        Currency::parse(&b.currency).unwrap_or_else(|_| Currency::parse("EUR").expect("EUR"));
    let units = b.units.max(0) as u32;
    TravellerBidView {
        id: b.id.clone(),
        lot_id: b.lot_id.clone(),
        amount: money_str(b.amount_minor, currency),
        units,
        total: money_str(b.amount_minor * i64::from(units), currency),
        currency: b.currency.clone(),
        status: b.status.clone(),
        partial_ok: b.partial_ok,
        preference: b.preference.map(|p| p.max(0) as u32),
        submitted_at: b.submitted_at,
        closes_at,
        links: card_replaceable_until.map(|until| BidLinks {
            fix_card: format!("/v1/traveller/bids/{}/card", b.id),
            fix_card_until: until,
        }),
        outcome: award.map(|a| {
            let won = b.award_units.is_some();
            BidOutcome {
                reason: b.outcome_reason.clone().filter(|_| !won),
                message: b
                    .outcome_reason
                    .as_deref()
                    .filter(|_| !won)
                    .map(|r| reason_text(r, b.units)),
                rule: rule_text(&a.policy).to_owned(),
                units_upgraded: b.award_units.map(|u| u.max(0) as u32),
                price_per_person: b.award_price_minor.map(|p| money_str(p, currency)),
                charged_total: b
                    .award_price_minor
                    .zip(b.award_units)
                    .filter(|_| b.status == "charged" || b.status == "refunded")
                    .map(|(p, u)| money_str(p * i64::from(u), currency)),
                clearing_price: a.clearing_price_minor.map(|p| money_str(p, currency)),
            }
        }),
        timeline: events.map(|evs| {
            let saved = placed_on_saved_card(&evs);
            evs.into_iter()
                .map(|e| timeline_event(e, currency, units, saved))
                .collect()
        }),
    }
}

/// One line of the timeline; `saved`: the bid was placed on a saved card.
fn timeline_event(
    e: bid_event::Model,
    currency: Currency,
    units: u32,
    saved: bool,
) -> TimelineEvent {
    let amount = e.amount_minor.map(|m| money_str(m, currency));
    let total = e
        .amount_minor
        .map(|m| money_str(m * i64::from(units), currency))
        .unwrap_or_default();
    let per = amount.clone().unwrap_or_default();
    let c = currency.code();
    let message = match BidEventKind::parse(&e.kind) {
        Ok(BidEventKind::Placed) => {
            format!("Bid received: {per} {c} per person, {total} {c} in all.")
        }
        Ok(BidEventKind::Raised | BidEventKind::Lowered) => {
            format!("Bid changed to {per} {c} per person, {total} {c} in all.")
        }
        Ok(BidEventKind::Withdrawn) if saved => {
            "You withdrew your bid. Nothing will be charged; your saved card will not be used."
                .into()
        }
        Ok(BidEventKind::Withdrawn) => {
            "You withdrew your bid. Nothing will be charged; the hold on your card is released."
                .into()
        }
        Ok(BidEventKind::HoldPlaced) => format!(
            "Your card is authorised for {total} {c}; it is charged only if the upgrade is confirmed."
        ),
        Ok(BidEventKind::HoldReleased) => "The hold on your card is released.".into(),
        Ok(BidEventKind::LotClosed) => "Bidding closed; the result follows shortly.".into(),
        Ok(BidEventKind::Won) => "Your upgrade is confirmed.".into(),
        Ok(BidEventKind::Charged) => format!("Your card was charged {total} {c}."),
        Ok(BidEventKind::Refunded) => format!("{total} {c} refunded to your card."),
        _ => String::new(),
    };
    // The service writes the exact words (with the real amounts charged) where it knows
    // more than the event kind says.
    let message = match e.detail {
        Some(detail) => detail,
        None if message.is_empty() => e.kind.replace('_', " "),
        None => message,
    };
    TimelineEvent {
        kind: e.kind,
        at: e.at,
        amount,
        message,
    }
}

#[derive(Debug, Serialize, ToSchema)]
#[schema(example = json!({"lot_id": "lot_7gx2k9m4q8r1t5v3w6y0", "title": "Paris CDG → New York JFK", "resource_kind": "seat",
        "resource": "AU101", "service_date": "2026-12-01", "from_class": "economy", "to_class": "business",
        "currency": "EUR", "min_per_person": "250.00", "max_per_person": "1500.00", "party_size": 2,
        "min_total": "500.00", "max_total": "3000.00", "taxes_included": true, "upgrade_now_per_person": null,
        "opens_at": "2026-11-23T09:00:00Z", "closes_at": "2026-11-29T18:00:00Z", "time_zone": "Europe/Paris",
        "status": "open", "my_bid": null}))]
pub struct OfferView {
    pub lot_id: String,
    pub title: String,
    pub resource_kind: String,
    pub resource: String,
    pub service_date: NaiveDate,
    pub from_class: String,
    pub to_class: String,
    pub currency: String,
    /// Lowest offer per person.
    #[schema(example = "250.00")]
    pub min_per_person: String,
    /// Highest offer per person.
    #[schema(example = "1500.00")]
    pub max_per_person: String,
    pub party_size: u32,
    /// min_per_person × party_size.
    #[schema(example = "500.00")]
    pub min_total: String,
    /// max_per_person × party_size.
    #[schema(example = "3000.00")]
    pub max_total: String,
    pub taxes_included: bool,
    /// Fixed price per person to upgrade at once, when the operator offers it.
    pub upgrade_now_per_person: Option<String>,
    pub opens_at: DateTime<Utc>,
    /// The server's deadline.
    pub closes_at: DateTime<Utc>,
    /// IANA time zone to show times in.
    pub time_zone: String,
    /// open, closed, awarded, settled or cancelled.
    pub status: String,
    /// Your bid on this upgrade, if any.
    pub my_bid: Option<TravellerBidView>,
}

#[derive(Debug, Serialize, ToSchema)]
#[schema(example = json!({"booking": {"reference": "AU7K2P", "last_name": "Muller", "party_size": 2, "language": "en"}, "offers": [{"lot_id": "lot_7gx2k9m4q8r1t5v3w6y0", "title": "Paris CDG → New York JFK", "resource_kind": "seat",
        "resource": "AU101", "service_date": "2026-12-01", "from_class": "economy", "to_class": "business",
        "currency": "EUR", "min_per_person": "250.00", "max_per_person": "1500.00", "party_size": 2,
        "min_total": "500.00", "max_total": "3000.00", "taxes_included": true, "upgrade_now_per_person": null,
        "opens_at": "2026-11-23T09:00:00Z", "closes_at": "2026-11-29T18:00:00Z", "time_zone": "Europe/Paris",
        "status": "open", "my_bid": null}]}))]
pub struct OfferList {
    pub booking: BookingSummary,
    pub offers: Vec<OfferView>,
}

fn offer_view(o: Offer, party: u32) -> OfferView {
    let s = &o.spec;
    let times = |m: Money| m.times(party).map(|t| t.to_string()).unwrap_or_default();
    OfferView {
        lot_id: o.lot.id.clone(),
        title: s.title.clone(),
        resource_kind: s.resource_kind.as_str().into(),
        resource: s.resource.clone(),
        service_date: s.service_date,
        from_class: s.from_class.clone(),
        to_class: s.to_class.clone(),
        currency: s.currency.code().into(),
        min_per_person: s.reserve.to_string(),
        max_per_person: s.maximum.to_string(),
        party_size: party,
        min_total: times(s.reserve),
        max_total: times(s.maximum),
        taxes_included: s.taxes_included,
        upgrade_now_per_person: s
            .upgrade_now
            .filter(|_| o.status == LotStatus::Open)
            .map(|m| m.to_string()),
        opens_at: s.opens_at,
        closes_at: s.closes_at,
        time_zone: s.time_zone.name().into(),
        status: o.status.as_str().into(),
        my_bid: o
            .bid
            .as_ref()
            .map(|b| bid_view(b, s.closes_at, None, None, o.card_replaceable_until)),
    }
}

/// The upgrades this booking can bid on, with min and max per person and for the party,
/// and the booking's own bid on each.
#[utoipa::path(
    tag = "traveller", security(("session" = []), ("session_cookie" = [])),
    responses(
        (status = 200, description = "Offers", body = OfferList),
        (status = 401, description = "Not signed in", body = Problem, content_type = "application/problem+json"),
    )
)]
#[get("/v1/traveller/offers")]
pub async fn offers(auth: TravellerAuth, db: web::Data<Db>) -> Result<HttpResponse, Problem> {
    let party = auth.booking.party_size.max(1) as u32;
    let offers = bids::offers(&db, &auth.booking).await?;
    Ok(HttpResponse::Ok().json(OfferList {
        booking: summary(&auth.booking),
        offers: offers.into_iter().map(|o| offer_view(o, party)).collect(),
    }))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"lot_id": "lot_7gx2k9m4q8r1t5v3w6y0", "amount": "420.00", "payment_method": "pm_card_visa"}))]
pub struct PlaceBid {
    pub lot_id: String,
    /// Per person, a decimal string in the lot's currency, between its min and max.
    pub amount: String,
    /// The card as a payment method id from the gateway's card form (Stripe.js `pm_…`;
    /// Stripe test ids such as `pm_card_visa` work on the simulated gateway). Or send `card`.
    pub payment_method: Option<String>,
    /// The card's details, for the simulated gateway's own card form.
    pub card: Option<CardInput>,
    /// Accept an upgrade of only part of the party (default false: all or nothing).
    #[serde(default)]
    pub partial_ok: bool,
    /// Rank among this booking's bids on one resource: 1 = first choice.
    pub preference: Option<u32>,
    /// On `charge_on_award` lots, required and true: the traveller agrees that the card is
    /// charged later, without them present, if the upgrade is confirmed.
    #[serde(default)]
    pub consent_to_charge: bool,
}

/// Place a bid (or bid again after withdrawing).
#[utoipa::path(
    tag = "traveller", security(("session" = []), ("session_cookie" = [])), request_body = PlaceBid,
    params(("Idempotency-Key" = Option<String>, Header, description = "Makes a retry safe")),
    responses(
        (status = 201, description = "Bid placed", body = TravellerBidView),
        (status = 401, description = "Not signed in, or the booking is gone", body = Problem, content_type = "application/problem+json"),
        (status = 402, description = "Card declined; nothing changed", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such offer for this booking", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "Bidding closed, not open yet, upgrade unavailable, or a bid exists", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Amount outside the range, or a field invalid", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "The payment service is not answering; nothing changed", body = Problem, content_type = "application/problem+json"),
    )
)]
#[post("/v1/traveller/bids")]
pub async fn place(
    session: TravellerSession,
    db: web::Data<Db>,
    intake: web::Data<bids::Intake>,
    gateway: web::Data<dyn PaymentGateway>,
    JsonBody(input): JsonBody<PlaceBid>,
) -> Result<HttpResponse, Problem> {
    let new = NewBid {
        lot_id: &input.lot_id,
        amount: &input.amount,
        card: card_source(input.payment_method.as_deref(), input.card.as_ref()),
        partial_ok: input.partial_ok,
        preference: input.preference,
        consent_to_charge: input.consent_to_charge,
    };
    // The booking is read with the other bids' in the intake's look-up, not one by one.
    let placed = intake
        .place(&gateway, bids::Ask::new(&session.booking_id, new))
        .await?;
    // A new bid's timeline is what was just written; a bid placed again after a withdrawal
    // has earlier events, read back. Either way the lot was open: no award to show yet.
    let (b, events) = match placed.timeline {
        Some(events) => (placed.bid, events),
        None => {
            let booking = booking_of(&db, &session.booking_id).await?;
            let (b, _, events) = bids::timeline(&db, &booking, &placed.bid.id).await?;
            (b, events)
        }
    };
    Ok(HttpResponse::Created()
        .insert_header(("Location", format!("/v1/traveller/bids/{}", b.id)))
        .json(bid_view(&b, placed.closes_at, Some(events), None, None)))
}

async fn booking_of(db: &Db, booking_id: &str) -> Result<booking::Model, Problem> {
    booking::Entity::find_by_id(booking_id.to_owned())
        .one(db)
        .await?
        .filter(|b| b.erased_at.is_none())
        .ok_or_else(|| Problem::from(BidError::SignedOut))
}

/// A bid with its timeline.
#[utoipa::path(
    tag = "traveller", security(("session" = []), ("session_cookie" = [])), params(("id" = String, Path, description = "Bid id")),
    responses(
        (status = 200, description = "The bid", body = TravellerBidView),
        (status = 404, description = "No such bid for this booking", body = Problem, content_type = "application/problem+json"),
    )
)]
#[get("/v1/traveller/bids/{id}")]
pub async fn get(
    auth: TravellerAuth,
    db: web::Data<Db>,
    id: web::Path<String>,
) -> Result<HttpResponse, Problem> {
    let (b, lot, events) = bids::timeline(&db, &auth.booking, &id).await?;
    let fix_until = card_replaceable_until(&b, &lot, &events)?;
    Ok(HttpResponse::Ok().json(bid_view(
        &b,
        lot.closes_at,
        Some(events),
        award_summary(&db, &lot.id).await?.as_ref(),
        fix_until,
    )))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"amount": "480.00"}))]
pub struct ChangeBid {
    /// New amount per person.
    pub amount: String,
    /// A raise above what the card holds authorises the new total on this card (or `card`);
    /// without either, on the payment method id given at bid time where the gateway lets one be used again
    /// (not on Stripe, which takes a payment method not attached to a customer once: there
    /// a raise above the hold needs the card again).
    pub payment_method: Option<String>,
    pub card: Option<CardInput>,
}

/// Card details typed into the simulated gateway's form (test cards: 4242 4242 4242 4242
/// succeeds, 4000 0000 0000 0002 is declined, 4000 0000 0000 0341 fails when charged).
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"number": "4242 4242 4242 4242", "exp_month": 12, "exp_year": 2030, "cvc": "123"}))]
pub struct CardInput {
    pub number: String,
    pub exp_month: u32,
    pub exp_year: u32,
    pub cvc: String,
}

fn card_source(payment_method: Option<&str>, card: Option<&CardInput>) -> Option<CardSource> {
    match (
        payment_method.map(str::trim).filter(|p| !p.is_empty()),
        card,
    ) {
        (_, Some(c)) => Some(CardSource::card(&c.number, c.exp_month, c.exp_year, &c.cvc)),
        (Some(pm), None) => Some(CardSource::payment_method(pm)),
        (None, None) => None,
    }
}

/// Change a bid's amount until bidding closes.
#[utoipa::path(
    tag = "traveller", security(("session" = []), ("session_cookie" = [])), request_body = ChangeBid,
    params(("id" = String, Path, description = "Bid id"), ("Idempotency-Key" = Option<String>, Header, description = "Makes a retry safe")),
    responses(
        (status = 200, description = "Changed", body = TravellerBidView),
        (status = 404, description = "No such bid", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "Bidding closed, bid not active, or changed meanwhile by another request", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Amount outside the range, or a raise above the hold without the card it needs (`payment_method`)", body = Problem, content_type = "application/problem+json"),
    )
)]
#[patch("/v1/traveller/bids/{id}")]
pub async fn change(
    auth: TravellerAuth,
    db: web::Data<Db>,
    gateway: web::Data<dyn PaymentGateway>,
    id: web::Path<String>,
    JsonBody(input): JsonBody<ChangeBid>,
) -> Result<HttpResponse, Problem> {
    let card = card_source(input.payment_method.as_deref(), input.card.as_ref());
    bids::change(&db, &gateway, &auth.booking, &id, &input.amount, card).await?;
    let (b, lot, events) = bids::timeline(&db, &auth.booking, &id).await?;
    let fix_until = card_replaceable_until(&b, &lot, &events)?;
    Ok(HttpResponse::Ok().json(bid_view(
        &b,
        lot.closes_at,
        Some(events),
        award_summary(&db, &lot.id).await?.as_ref(),
        fix_until,
    )))
}

/// Withdraw a bid until bidding closes; nothing is charged.
#[utoipa::path(
    tag = "traveller", security(("session" = []), ("session_cookie" = [])),
    params(("id" = String, Path, description = "Bid id"), ("Idempotency-Key" = Option<String>, Header, description = "Makes a retry safe")),
    responses(
        (status = 200, description = "Withdrawn (sent again, the same answer: withdrawn once)", body = TravellerBidView),
        (status = 404, description = "No such bid", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "Bidding closed or bid not active", body = Problem, content_type = "application/problem+json"),
    )
)]
#[delete("/v1/traveller/bids/{id}")]
pub async fn withdraw(
    auth: TravellerAuth,
    db: web::Data<Db>,
    id: web::Path<String>,
) -> Result<HttpResponse, Problem> {
    bids::withdraw(&db, &auth.booking, &id).await?;
    let (b, lot, events) = bids::timeline(&db, &auth.booking, &id).await?;
    let fix_until = card_replaceable_until(&b, &lot, &events)?;
    Ok(HttpResponse::Ok().json(bid_view(
        &b,
        lot.closes_at,
        Some(events),
        award_summary(&db, &lot.id).await?.as_ref(),
        fix_until,
    )))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"payment_method": "pm_card_visa"}))]
pub struct UpgradeNowInput {
    /// The card to charge at once: a payment method id, or `card` details.
    pub payment_method: Option<String>,
    pub card: Option<CardInput>,
}

/// Take the upgrade at once at the operator's fixed price, for the whole party, while units
/// are free: confirmed and charged on the spot.
#[utoipa::path(
    tag = "traveller", security(("session" = []), ("session_cookie" = [])), request_body = UpgradeNowInput,
    params(("id" = String, Path, description = "Lot id"), ("Idempotency-Key" = Option<String>, Header, description = "Makes a retry safe")),
    responses(
        (status = 201, description = "Upgraded and charged; sent again, the same purchase, nothing more charged", body = TravellerBidView),
        (status = 402, description = "Card declined; nothing charged", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such offer for this booking", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "No fixed price, sold out, bidding closed, or a bid of this booking placed by another request meanwhile (bid-changed-meanwhile); nothing charged", body = Problem, content_type = "application/problem+json"),
    )
)]
#[post("/v1/traveller/offers/{id}/upgrade-now")]
pub async fn upgrade_now(
    auth: TravellerAuth,
    db: web::Data<Db>,
    gateway: web::Data<dyn PaymentGateway>,
    id: web::Path<String>,
    JsonBody(input): JsonBody<UpgradeNowInput>,
) -> Result<HttpResponse, Problem> {
    let card = card_source(input.payment_method.as_deref(), input.card.as_ref());
    let b = bids::upgrade_now(&db, &gateway, &auth.booking, &id, card).await?;
    let (b, lot, events) = bids::timeline(&db, &auth.booking, &b.id).await?;
    Ok(HttpResponse::Created()
        .insert_header(("Location", format!("/v1/traveller/bids/{}", b.id)))
        .json(bid_view(&b, lot.closes_at, Some(events), None, None)))
}

/// After a failed payment, give another card before the grace period ends to keep the
/// upgrade: it is charged at once.
#[utoipa::path(
    tag = "traveller", security(("session" = []), ("session_cookie" = [])), request_body = UpgradeNowInput,
    params(("id" = String, Path, description = "Bid id"), ("Idempotency-Key" = Option<String>, Header, description = "Makes a retry safe")),
    responses(
        (status = 200, description = "New card accepted; charging now", body = TravellerBidView),
        (status = 402, description = "This card was declined too", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such bid", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "The payment has not failed, or the grace period is over", body = Problem, content_type = "application/problem+json"),
    )
)]
#[post("/v1/traveller/bids/{id}/card")]
pub async fn replace_card(
    auth: TravellerAuth,
    db: web::Data<Db>,
    gateway: web::Data<dyn PaymentGateway>,
    id: web::Path<String>,
    JsonBody(input): JsonBody<UpgradeNowInput>,
) -> Result<HttpResponse, Problem> {
    let card = card_source(input.payment_method.as_deref(), input.card.as_ref());
    bids::replace_card(&db, &gateway, &auth.booking, &id, card).await?;
    let (b, lot, events) = bids::timeline(&db, &auth.booking, &id).await?;
    let fix_until = card_replaceable_until(&b, &lot, &events)?;
    Ok(HttpResponse::Ok().json(bid_view(&b, lot.closes_at, Some(events), None, fix_until)))
}
