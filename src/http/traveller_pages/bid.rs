//! The bid screen: one upgrade, a slider and a number field between the minimum and maximum
//! per person, the party's total live, the card, one button. Then the bid's page confirms
//! what happens next.

use std::collections::HashMap;

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, get, post, web};
use askama::Template;
use chrono::Utc;

use super::card::{self, CardFieldError};
use super::i18n::Lang;
use super::view::{Alert, AmountField, alert_is_on, bid_alert, iso, normalize_amount};
use super::{Chrome, PageError, Traveller, check_csrf, config, render, see_other, traveller};
use crate::domain::lot::{LotStatus, PaymentMode};
use crate::payments::PaymentGateway;
use crate::services::bids::{self, BidError, NewBid, Offer};
use crate::store::Db;

/// The card part of a form: Stripe's Payment Element when Stripe is configured, else the
/// local card form.
pub struct CardForm {
    pub stripe_key: Option<String>,
    pub simulated: bool,
    /// Changing a bid: the total the card holds, in minor units. The fields are optional, and
    /// the Stripe script asks for a card only above it (the Payment Element refuses to be
    /// submitted empty).
    pub held_minor: Option<i64>,
}

impl CardForm {
    pub fn new(req: &HttpRequest, gateway: &dyn PaymentGateway) -> Self {
        Self {
            stripe_key: config(req).stripe_publishable_key,
            simulated: gateway.provider() == "simulated",
            held_minor: None,
        }
    }
}

#[derive(Template)]
#[template(path = "traveller/bid.html")]
struct BidPage {
    c: Chrome,
    lot_id: String,
    heading: String,
    title: String,
    closes_iso: String,
    closes_local: String,
    closes_in: String,
    /// Bidding still runs until its deadline: "closes", not "closed".
    before_deadline: bool,
    /// The form is shown: this party's bid can be placed now.
    open: bool,
    amount: AmountField,
    alert: Option<Alert>,
    card: CardForm,
    consent_needed: bool,
    consent_checked: bool,
    taxes: &'static str,
}

impl BidPage {
    fn invalid(&self, field: &str) -> bool {
        alert_is_on(&self.alert, field)
    }
}

async fn find_offer(db: &Db, who: &Traveller, lot_id: &str) -> Result<Offer, PageError> {
    bids::offers(db, &who.booking)
        .await?
        .into_iter()
        .find(|o| o.lot.id == lot_id)
        .ok_or(PageError::NotFound(who.lang))
}

/// A bid that is live or decided has its own page; the bid screen is for a new offer (or
/// one placed again: withdrawn, or released for want of units).
fn existing_bid_page(offer: &Offer) -> Option<String> {
    let b = offer.bid.as_ref()?;
    (!b.placeable_again()).then(|| format!("/bids/{}", b.id))
}

#[allow(clippy::too_many_arguments)]
fn bid_page(
    req: &HttpRequest,
    who: &Traveller,
    offer: &Offer,
    gateway: &dyn PaymentGateway,
    status: StatusCode,
    amount: &str,
    alert: Option<Alert>,
    consent_checked: bool,
) -> Result<HttpResponse, PageError> {
    let lang = who.lang;
    let t = lang.t();
    let s = &offer.spec;
    let party = who.booking.party_size.max(1) as u32;
    let now = Utc::now();
    let (from, to) = (lang.class(&s.from_class), lang.class(&s.to_class));
    let heading = match lang {
        Lang::En => format!("{to} instead of {from}"),
        Lang::Fr => format!("{to} au lieu de {from}"),
    };
    let mut c = Chrome::new(
        lang,
        format!("{} — {heading}", t.bid_title),
        format!("/offers/{}", offer.lot.id),
    )
    .signed_in(who);
    let card = CardForm::new(req, gateway);
    c.stripe_js = card.stripe_key.is_some();
    // No form for an offer that cannot take this party's bid now; the page says why.
    let biddable = offer.bidding_now(now) && offer.fits(party);
    let running = offer.status == LotStatus::Open && now < s.closes_at;
    let why_not = if let Some(opens_at) = offer.opens_later(now) {
        Some(bid_alert(lang, BidError::NotOpenYet { opens_at }, s)?.1)
    } else if running && offer.free_units > 0 && !offer.fits(party) {
        Some(Alert::new(lang.party_too_large(party)))
    } else if running && !biddable {
        Some(bid_alert(lang, BidError::Unavailable(String::new()), s)?.1)
    } else {
        None
    };
    let alert = alert.or(why_not);
    let view = BidPage {
        c,
        lot_id: offer.lot.id.clone(),
        heading,
        title: format!("{} · {}", s.title, lang.day(s.service_date)),
        closes_iso: iso(s.closes_at),
        closes_local: lang.datetime(s.closes_at, s.time_zone),
        closes_in: lang.remaining(s.closes_at, now),
        before_deadline: offer.status == LotStatus::Open && now < s.closes_at,
        open: biddable,
        amount: AmountField::new(lang, s, party, amount),
        alert,
        card,
        consent_needed: s.payment_mode == PaymentMode::ChargeOnAward,
        consent_checked,
        taxes: if s.taxes_included {
            t.taxes_included
        } else {
            t.taxes_not_included
        },
    };
    render(status, &view)
}

#[get("/offers/{lot_id}")]
pub async fn page(
    req: HttpRequest,
    db: web::Data<Db>,
    gateway: web::Data<dyn PaymentGateway>,
    lot_id: web::Path<String>,
) -> Result<HttpResponse, PageError> {
    let who = traveller(&req).await?;
    let offer = find_offer(&db, &who, &lot_id).await?;
    if let Some(there) = existing_bid_page(&offer) {
        return Ok(see_other(there));
    }
    let start =
        super::view::amount_for_field(offer.spec.reserve.minor(), offer.spec.currency, who.lang);
    bid_page(
        &req,
        &who,
        &offer,
        gateway.get_ref(),
        StatusCode::OK,
        &start,
        None,
        false,
    )
}

#[post("/offers/{lot_id}")]
pub async fn submit(
    req: HttpRequest,
    db: web::Data<Db>,
    gateway: web::Data<dyn PaymentGateway>,
    intake: web::Data<bids::Intake>,
    lot_id: web::Path<String>,
    form: web::Form<HashMap<String, String>>,
) -> Result<HttpResponse, PageError> {
    let who = traveller(&req).await?;
    check_csrf(&who, form.get("csrf").map(String::as_str))?;
    let offer = find_offer(&db, &who, &lot_id).await?;
    if let Some(there) = existing_bid_page(&offer) {
        return Ok(see_other(there));
    }
    let typed = form.get("amount").cloned().unwrap_or_default();
    let consent = form.get("consent_to_charge").is_some();
    let again = |status, alert: Alert| {
        bid_page(
            &req,
            &who,
            &offer,
            gateway.get_ref(),
            status,
            &typed,
            Some(alert),
            consent,
        )
    };
    let card = match card::from_form(&form, who.lang) {
        Ok(card) => card,
        Err(CardFieldError(message)) => {
            return again(
                StatusCode::UNPROCESSABLE_ENTITY,
                Alert::new(message).on("card_number"),
            );
        }
    };
    let amount = normalize_amount(&typed, who.lang);
    // Through the same batched intake as the API: one write path for every bid.
    let placed = intake
        .place(
            &gateway,
            bids::Ask::new(
                &who.booking.id,
                NewBid {
                    lot_id: &offer.lot.id,
                    amount: &amount,
                    card,
                    partial_ok: false,
                    preference: None,
                    consent_to_charge: consent,
                },
            ),
        )
        .await;
    match placed {
        Ok(placed) => Ok(see_other(format!("/bids/{}?done=placed", placed.bid.id))),
        Err(BidError::AlreadyBid { bid_id }) => Ok(see_other(format!("/bids/{bid_id}"))),
        Err(e) => {
            let (status, alert) = bid_alert(who.lang, e, &offer.spec)?;
            again(status, alert)
        }
    }
}
