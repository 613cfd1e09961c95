//! `/offers`: one card per upgrade the booking can bid on, and what became of its bids.

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, get, web};
use askama::Template;
use chrono::Utc;
use sea_orm::EntityTrait;

use super::view::{ended_words, icon, iso, people, status_words};
use super::{Chrome, PageError, render, traveller};
use crate::domain::bid::BidStatus;
use crate::domain::lot::LotStatus;
use crate::services::bids;
use crate::store::Db;
use crate::store::entities::operator;
use crate::store::payments as store_payments;

pub struct OfferCard {
    pub icon: &'static str,
    pub title: String,
    pub what: String,
    pub from: String,
    pub to: String,
    pub per_person: String,
    pub party_range: String,
    pub taxes: &'static str,
    pub closes_iso: String,
    pub closes_local: String,
    pub closes_in: String,
    /// Before the deadline: the card says when bidding closes, not when it closed.
    pub open: bool,
    /// When bidding will open, for an offer not open yet.
    pub opens: Option<String>,
    pub my_bid: Option<String>,
    /// Where the button leads and what it says; none while nothing can be done yet.
    pub button: Option<(String, &'static str)>,
}

#[derive(Template)]
#[template(path = "traveller/offers.html")]
struct OffersPage {
    c: Chrome,
    booking_line: String,
    offers: Vec<OfferCard>,
}

#[get("/offers")]
pub async fn page(req: HttpRequest, db: web::Data<Db>) -> Result<HttpResponse, PageError> {
    let who = traveller(&req).await?;
    let lang = who.lang;
    let t = lang.t();
    let party = who.booking.party_size.max(1) as u32;
    let now = Utc::now();
    let offers = bids::offers(&db, &who.booking).await?;
    // A bid that no longer stands is worded as its money stands (a payment unanswered or
    // taken is not "being released"), as on the bid's own page.
    let ended: Vec<&crate::store::entities::bid::Model> = offers
        .iter()
        .filter_map(|o| o.bid.as_ref())
        .filter(|b| {
            matches!(
                BidStatus::parse(&b.status),
                Ok(BidStatus::Lost | BidStatus::Released)
            )
        })
        .collect();
    let money = store_payments::charged_of(db.get_ref(), &ended).await?;
    let cards = offers
        .into_iter()
        // The pages ask for no partial upgrade: an offer the whole party cannot take is not
        // one this traveller can have here (the API's `partial_ok` can).
        .filter(|o| o.bid.is_some() || o.fits(party))
        .map(|o| {
            let s = &o.spec;
            let c = s.currency;
            let (from, to) = (lang.class(&s.from_class), lang.class(&s.to_class));
            let open = o.status == LotStatus::Open && now < s.closes_at;
            let biddable = o.bidding_now(now) && o.fits(party);
            let status = o
                .bid
                .as_ref()
                .and_then(|b| BidStatus::parse(&b.status).ok());
            let button = match (&o.bid, status) {
                (Some(b), _) if biddable && b.placeable_again() => {
                    Some((format!("/offers/{}", o.lot.id), t.bid_again))
                }
                (Some(b), _) => Some((format!("/bids/{}", b.id), t.see_bid)),
                (None, _) if biddable => Some((format!("/offers/{}", o.lot.id), t.bid_now)),
                (None, _) => None,
            };
            let opens = o
                .opens_later(now)
                .map(|at| lang.bidding_opens(&lang.datetime(at, s.time_zone)));
            let my_bid = o.bid.as_ref().zip(status).map(|(b, st)| {
                let amount = lang.money(b.amount_minor, c);
                let said = money
                    .get(&b.id)
                    .map_or(status_words(lang, st), |&m| ended_words(lang, m));
                match lang {
                    super::i18n::Lang::En => format!("Your bid: {amount} per person — {said}."),
                    super::i18n::Lang::Fr => {
                        format!("Votre offre : {amount} par personne — {said}.")
                    }
                }
            });
            OfferCard {
                icon: icon(s.resource_kind),
                // Two offers on one booking may differ by their day only (an outward and a
                // return flight on the same route).
                title: format!("{} · {}", s.title, lang.day(s.service_date)),
                what: match lang {
                    super::i18n::Lang::En => format!("{to} instead of {from}"),
                    super::i18n::Lang::Fr => format!("{to} au lieu de {from}"),
                },
                per_person: format!(
                    "{} – {}",
                    lang.money(s.reserve.minor(), c),
                    lang.money(s.maximum.minor(), c)
                ),
                party_range: format!(
                    "{} – {} ({party} {})",
                    lang.money(s.reserve.minor() * i64::from(party), c),
                    lang.money(s.maximum.minor() * i64::from(party), c),
                    people(lang, party)
                ),
                taxes: if s.taxes_included {
                    t.taxes_included
                } else {
                    t.taxes_not_included
                },
                from,
                to,
                closes_iso: iso(s.closes_at),
                closes_local: lang.datetime(s.closes_at, s.time_zone),
                closes_in: lang.remaining(s.closes_at, now),
                open,
                opens,
                my_bid,
                button,
            }
        })
        .collect();
    // The company too: a reference is unique within one company only.
    let company = operator::Entity::find_by_id(who.booking.operator_id.clone())
        .one(db.get_ref())
        .await?
        .map(|o| format!(" ({})", o.name))
        .unwrap_or_default();
    let booking_line = format!(
        "{} {}{company} · {} · {party} {}",
        t.booking,
        who.booking.reference,
        who.booking.last_name,
        people(lang, party)
    );
    let view = OffersPage {
        c: Chrome::new(lang, t.offers_title, "/offers").signed_in(&who),
        booking_line,
        offers: cards,
    };
    render(StatusCode::OK, &view)
}
