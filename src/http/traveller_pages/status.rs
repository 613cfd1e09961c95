//! `/bids/{id}`: a bid's status and timeline, reloadable at any time; change or withdraw
//! until the server's deadline; after a failed payment, give another card.

use std::collections::HashMap;

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, get, post, web};
use askama::Template;
use chrono::{DateTime, Utc};
use sea_orm::EntityTrait;

use super::bid::CardForm;
use super::card::{self, CardFieldError};
use super::i18n::Lang;
use super::view::{
    Alert, AmountField, EventView, alert_is_on, amount_for_field, bid_alert, ended_words, iso,
    normalize_amount, people, status_words, timeline,
};
use super::{Chrome, PageError, Traveller, check_csrf, render, see_other, traveller};
use crate::domain::bid::BidStatus;
use crate::domain::lot::{LotSpec, LotStatus, PaymentMode};
use crate::domain::outcome::OutcomeReason;
use crate::payments::PaymentGateway;
use crate::services::award::PlanRecord;
use crate::services::bids::{self, BidError};
use crate::store::Db;
use crate::store::entities::{award, bid, bid_event, lot};
use crate::store::lots as store_lots;
use crate::store::payments::{self as store_payments, Charged};

/// What was just done, and exactly what happens next.
pub struct Notice {
    pub title: String,
    pub lines: Vec<String>,
}

pub struct OutcomeView {
    pub headline: String,
    pub reason: Option<String>,
    /// How winners were chosen; `None` for a bid the award did not weigh (its lot cancelled
    /// or withdrawn from sale, a purchase undone after the close).
    pub rule: Option<&'static str>,
}

#[derive(Template)]
#[template(path = "traveller/status.html")]
struct StatusPage {
    c: Chrome,
    bid_id: String,
    heading: String,
    title: String,
    notice: Option<Notice>,
    alert: Option<Alert>,
    status_text: &'static str,
    amount_text: String,
    total_text: String,
    closes_iso: String,
    closes_local: String,
    closes_in: String,
    can_change: bool,
    /// A raise may need the card again (a hold to grow); a card only saved never does.
    card_on_change: bool,
    withdraw_hint: &'static str,
    open: bool,
    bid_again: Option<String>,
    fix_until: Option<String>,
    amount: AmountField,
    card: CardForm,
    events: Vec<EventView>,
    outcome: Option<OutcomeView>,
}

impl StatusPage {
    fn invalid(&self, field: &str) -> bool {
        alert_is_on(&self.alert, field)
    }
}

struct Loaded {
    bid: bid::Model,
    lot: lot::Model,
    spec: LotSpec,
    events: Vec<bid_event::Model>,
}

async fn load(db: &Db, who: &Traveller, bid_id: &str) -> Result<Loaded, PageError> {
    let (bid, lot, events) = match bids::timeline(db, &who.booking, bid_id).await {
        Ok(found) => found,
        Err(BidError::Db(e)) => return Err(e.into()),
        Err(_) => return Err(PageError::NotFound(who.lang)),
    };
    let spec = store_lots::spec(&lot).map_err(PageError::Render)?;
    Ok(Loaded {
        bid,
        lot,
        spec,
        events,
    })
}

fn notice(lang: Lang, done: &str, l: &Loaded) -> Option<Notice> {
    let s = &l.spec;
    let c = s.currency;
    let total = lang.money(l.bid.amount_minor * i64::from(l.bid.units.max(1) as u32), c);
    let per = lang.money(l.bid.amount_minor, c);
    let closes = lang.datetime(s.closes_at, s.time_zone);
    let hold = s.payment_mode == PaymentMode::Hold;
    let saved = l.bid.card_only_saved();
    let fr = lang == Lang::Fr;
    let (title, lines) = match done {
        "placed" if fr => (
            "Votre offre est enregistrée",
            vec![
                format!(
                    "Les enchères ferment le {closes} ({}). Le résultat est décidé à ce moment-là et s'affiche sur cette page.",
                    lang.remaining(s.closes_at, Utc::now())
                ),
                if hold {
                    format!(
                        "Votre carte est autorisée pour {total} ({per} par personne) mais n'est débitée que si le surclassement est confirmé. Sinon, l'autorisation est levée."
                    )
                } else {
                    format!(
                        "Votre carte est enregistrée et ne sera débitée de {total} ({per} par personne) que si le surclassement est confirmé."
                    )
                },
                format!(
                    "Jusqu'au {closes}, vous pouvez modifier ou retirer votre offre ici, sans frais."
                ),
            ],
        ),
        "placed" => (
            "Your bid is in",
            vec![
                format!(
                    "Bidding closes on {closes} ({}). The result is decided then and shown on this page.",
                    lang.remaining(s.closes_at, Utc::now())
                ),
                if hold {
                    format!(
                        "Your card is authorised for {total} ({per} per person) but charged only if the upgrade is confirmed. If not, the hold is released."
                    )
                } else {
                    format!(
                        "Your card is saved and charged {total} ({per} per person) only if the upgrade is confirmed."
                    )
                },
                format!("Until {closes} you can change or withdraw your bid here, at no cost."),
            ],
        ),
        "changed" if fr => (
            "Votre offre est modifiée",
            vec![
                format!("Nouvelle offre : {per} par personne, {total} au total."),
                format!("Elle reste modifiable ou retirable jusqu'au {closes}."),
            ],
        ),
        "changed" => (
            "Your bid is changed",
            vec![
                format!("New offer: {per} per person, {total} in all."),
                format!("You can still change or withdraw it until {closes}."),
            ],
        ),
        "withdrawn" if fr => (
            "Votre offre est retirée",
            vec![
                if saved {
                    "Rien ne sera débité ; votre carte enregistrée ne sera pas utilisée."
                } else {
                    "Rien ne sera débité ; l'autorisation sur votre carte est levée."
                }
                .to_owned(),
                format!("Vous pouvez enchérir de nouveau jusqu'au {closes}."),
            ],
        ),
        "withdrawn" => (
            "Your bid is withdrawn",
            vec![
                if saved {
                    "Nothing will be charged; your saved card will not be used."
                } else {
                    "Nothing will be charged; the hold on your card is released."
                }
                .to_owned(),
                format!("You can bid again until {closes}."),
            ],
        ),
        "card" if fr => (
            "Merci",
            vec![
                "Votre nouvelle carte est en cours de débit ; le résultat s'affiche ci-dessous."
                    .to_owned(),
            ],
        ),
        "card" => (
            "Thank you",
            vec!["Your new card is being charged now; the result shows below.".to_owned()],
        ),
        _ => return None,
    };
    Some(Notice {
        title: title.to_owned(),
        lines,
    })
}

async fn outcome(
    db: &Db,
    lang: Lang,
    l: &Loaded,
    money: Option<Charged>,
) -> Result<Option<OutcomeView>, PageError> {
    let b = &l.bid;
    let status = BidStatus::parse(&b.status).map_err(PageError::Render)?;
    let row = award::Entity::find_by_id(l.lot.id.clone()).one(db).await?;
    // A bid the award did not weigh (the lot cancelled or withdrawn from sale, a purchase
    // undone after the close, too few units left for the party) still has an outcome, award or none: what happened and why,
    // without the rule that chose the winners.
    let outside_award = matches!(status, BidStatus::Lost | BidStatus::Released)
        && matches!(
            b.outcome_reason.as_deref().map(OutcomeReason::parse),
            Some(Ok(OutcomeReason::LotCancelled
                | OutcomeReason::CapacityWithdrawn
                | OutcomeReason::UpgradeNowDeclined
                | OutcomeReason::NoRoomLeft))
        );
    if row.is_none() && !outside_award {
        return Ok(None);
    }
    let rule = row.filter(|_| !outside_award).map(|row| {
        let policy = serde_json::from_str::<PlanRecord>(&row.plan)
            .map(|p| p.policy)
            .unwrap_or_default();
        lang.rule(&policy)
    });
    let c = l.spec.currency;
    let fr = lang == Lang::Fr;
    // Read for every lost or released bid (the page's caller does).
    let ended = money.unwrap_or(Charged::Nothing);
    let saved = b.card_only_saved();
    let headline = match (status, b.award_units.zip(b.award_price_minor)) {
        (BidStatus::Charged, Some((u, p))) => {
            let total = lang.money(p * i64::from(u), c);
            let per = lang.money(p, c);
            let n = people(lang, u.max(0) as u32);
            if fr {
                format!(
                    "Surclassement confirmé pour {u} {n} et débité de {total} ({per} par personne)."
                )
            } else {
                format!("Upgrade confirmed for {u} {n} and charged {total} ({per} per person).")
            }
        }
        (BidStatus::Won | BidStatus::PaymentFailed, Some((u, p))) => {
            let total = lang.money(p * i64::from(u), c);
            if fr {
                format!(
                    "Surclassement gagné pour {u} {} ; montant à débiter : {total}.",
                    people(lang, u.max(0) as u32)
                )
            } else {
                format!(
                    "Upgrade won for {u} {}; amount to charge: {total}.",
                    people(lang, u.max(0) as u32)
                )
            }
        }
        (BidStatus::Lost | BidStatus::Released, _) => match (ended, fr) {
            // A `charge_on_award` lot: the card was saved, never held.
            (Charged::NeverHeld, true) => {
                "Non retenue : rien n'a été débité, et votre carte enregistrée ne sera pas utilisée."
                    .to_owned()
            }
            (Charged::NeverHeld, false) => {
                "Not successful: nothing was charged, and your saved card will not be used."
                    .to_owned()
            }
            // A cancel or a cut while the bank was being asked: never "nothing was charged"
            // before that is known.
            (Charged::Taken, true) => {
                "Non retenue : la somme débitée vous est remboursée en totalité.".to_owned()
            }
            (Charged::Taken, false) => {
                "Not successful: the payment taken is being refunded to you in full.".to_owned()
            }
            (Charged::Unanswered, true) => format!(
                "Non retenue : le paiement avait déjà été demandé à votre banque, qui n'a pas \
                 encore répondu. Si la somme a été débitée, elle vous est remboursée en \
                 totalité ; sinon, rien n'est débité{}.",
                if saved {
                    ""
                } else {
                    " et toute autorisation sur votre carte est levée"
                }
            ),
            (Charged::Unanswered, false) => format!(
                "Not successful: the payment had already been requested from your bank, which \
                 has not answered yet. If it was taken, it is refunded to you in full; if not, \
                 nothing is charged{}.",
                if saved {
                    ""
                } else {
                    " and any hold on your card is released"
                }
            ),
            (Charged::Releasing, true) => concat!(
                "Non retenue : l'autorisation sur votre carte est en cours de levée, rien n'a ",
                "été débité."
            )
            .to_owned(),
            (Charged::Releasing, false) => {
                "Not successful: the hold on your card is being released and nothing was charged."
                    .to_owned()
            }
            (Charged::Nothing, true) => {
                "Non retenue : l'autorisation sur votre carte est levée, rien n'a été débité."
                    .to_owned()
            }
            (Charged::Nothing, false) => {
                "Not successful: the hold on your card is released and nothing was charged."
                    .to_owned()
            }
        },
        _ => status_words(lang, status).to_owned(),
    };
    let reason = b
        .outcome_reason
        .as_deref()
        .filter(|_| b.award_units.is_none())
        .map(|r| lang.reason(r, b.units));
    Ok(Some(OutcomeView {
        headline,
        reason,
        rule,
    }))
}

/// Until when another card keeps a failed payment's upgrade.
fn fix_card_until(l: &Loaded) -> Option<DateTime<Utc>> {
    bids::card_replaceable(&l.bid, &l.spec, &l.events, Utc::now())
}

#[allow(clippy::too_many_arguments)]
async fn status_page(
    req: &HttpRequest,
    db: &Db,
    gateway: &dyn PaymentGateway,
    who: &Traveller,
    l: Loaded,
    status: StatusCode,
    typed: Option<String>,
    notice_of: Option<&str>,
    alert: Option<Alert>,
) -> Result<HttpResponse, PageError> {
    let lang = who.lang;
    let t = lang.t();
    let s = &l.spec;
    let c = s.currency;
    let now = Utc::now();
    let bid_status = BidStatus::parse(&l.bid.status).map_err(PageError::Render)?;
    let open = store_lots::status(&l.lot) == LotStatus::Open && now < s.closes_at;
    let units = l.bid.units.max(1) as u32;
    let (from, to) = (lang.class(&s.from_class), lang.class(&s.to_class));
    let heading = match lang {
        Lang::En => format!("{to} instead of {from}"),
        Lang::Fr => format!("{to} au lieu de {from}"),
    };
    // One card form serves the page: the fix-card form (a failed payment) and the change form
    // (an active bid) are never shown together.
    let mut card = CardForm::new(req, gateway);
    let fix_until = fix_card_until(&l).map(|u| lang.datetime(u, s.time_zone));
    let can_change = open && bid_status == BidStatus::Active;
    // As the raise decides (`bids::change`): only a hold is grown, with the card again.
    let held = if can_change {
        bids::card_holds(db, s, &l.bid).await?
    } else {
        None
    };
    card.held_minor = held;
    // A hold for the maximum, for the whole party, covers every offer the lot takes: the
    // change form asks for no card, and no hint speaks of offering more.
    let covers_maximum = held.is_some_and(|h| h >= s.maximum.minor() * i64::from(units));
    let card_on_change = held.is_some() && !covers_maximum;
    let mut c_frame = Chrome::new(
        lang,
        format!("{} — {heading}", t.status_title),
        format!("/bids/{}", l.bid.id),
    )
    .signed_in(who);
    c_frame.stripe_js = card.stripe_key.is_some() && (card_on_change || fix_until.is_some());
    let typed = typed.unwrap_or_else(|| amount_for_field(l.bid.amount_minor, c, lang));
    // Read only for a bid that no longer stands: its hold is released unless a payment was
    // asked for meanwhile.
    let money = match bid_status {
        BidStatus::Lost | BidStatus::Released => Some(store_payments::charged(db, &l.bid).await?),
        _ => None,
    };
    let outcome = outcome(db, lang, &l, money).await?;
    let view = StatusPage {
        bid_id: l.bid.id.clone(),
        heading,
        title: format!("{} · {}", s.title, lang.day(s.service_date)),
        notice: notice_of.and_then(|d| notice(lang, d, &l)),
        alert,
        status_text: money.map_or(status_words(lang, bid_status), |m| ended_words(lang, m)),
        amount_text: lang.money(l.bid.amount_minor, c),
        total_text: format!(
            "{} ({units} {})",
            lang.money(l.bid.amount_minor * i64::from(units), c),
            people(lang, units)
        ),
        closes_iso: iso(s.closes_at),
        closes_local: lang.datetime(s.closes_at, s.time_zone),
        closes_in: lang.remaining(s.closes_at, now),
        can_change,
        card_on_change,
        withdraw_hint: if l.bid.card_only_saved() {
            t.withdraw_hint_saved
        } else {
            t.withdraw_hint
        },
        open,
        // Only where a new bid for the whole party could be placed (the bid screen asks no
        // partial upgrade): not once the units are gone.
        bid_again: (open
            && l.bid.placeable_again()
            && store_lots::free_units(&l.lot, s) >= who.booking.party_size.max(1) as u32)
            .then(|| format!("/offers/{}", l.lot.id)),
        fix_until,
        amount: AmountField {
            card_hint: held.filter(|_| card_on_change).map(|held| {
                let per_person = held / i64::from(units);
                lang.card_holds_hint(&lang.money(held, c), &lang.money(per_person, c))
            }),
            ..AmountField::new(lang, s, units, &typed)
        },
        card,
        events: timeline(
            lang,
            &l.bid,
            l.events,
            c,
            s.time_zone,
            s.payment_grace_seconds,
        ),
        outcome,
        c: c_frame,
    };
    render(status, &view)
}

#[get("/bids/{id}")]
pub async fn page(
    req: HttpRequest,
    db: web::Data<Db>,
    gateway: web::Data<dyn PaymentGateway>,
    id: web::Path<String>,
) -> Result<HttpResponse, PageError> {
    let who = traveller(&req).await?;
    let loaded = load(&db, &who, &id).await?;
    let query = web::Query::<HashMap<String, String>>::from_query(req.query_string())
        .map(|q| q.into_inner())
        .unwrap_or_default();
    let done = query.get("done").map(String::as_str);
    status_page(
        &req,
        &db,
        gateway.get_ref(),
        &who,
        loaded,
        StatusCode::OK,
        None,
        done,
        None,
    )
    .await
}

/// Re-shows the bid's page with what went wrong; nothing was changed.
#[allow(clippy::too_many_arguments)]
async fn refused(
    req: &HttpRequest,
    db: &Db,
    gateway: &dyn PaymentGateway,
    who: &Traveller,
    id: &str,
    typed: Option<String>,
    status: StatusCode,
    alert: Alert,
) -> Result<HttpResponse, PageError> {
    let loaded = load(db, who, id).await?;
    status_page(
        req,
        db,
        gateway,
        who,
        loaded,
        status,
        typed,
        None,
        Some(alert),
    )
    .await
}

#[post("/bids/{id}/change")]
pub async fn change(
    req: HttpRequest,
    db: web::Data<Db>,
    gateway: web::Data<dyn PaymentGateway>,
    id: web::Path<String>,
    form: web::Form<HashMap<String, String>>,
) -> Result<HttpResponse, PageError> {
    let who = traveller(&req).await?;
    check_csrf(&who, form.get("csrf").map(String::as_str))?;
    let loaded = load(&db, &who, &id).await?;
    let typed = form.get("amount").cloned().unwrap_or_default();
    let card = match card::from_form(&form, who.lang) {
        Ok(card) => card,
        Err(CardFieldError(message)) => {
            let alert = Alert::new(message).on("card_number");
            return status_page(
                &req,
                &db,
                gateway.get_ref(),
                &who,
                loaded,
                StatusCode::UNPROCESSABLE_ENTITY,
                Some(typed),
                None,
                Some(alert),
            )
            .await;
        }
    };
    let amount = normalize_amount(&typed, who.lang);
    match bids::change(&db, &gateway, &who.booking, &id, &amount, card).await {
        Ok(_) => Ok(see_other(format!("/bids/{id}?done=changed"))),
        Err(BidError::Invalid(errors)) if errors.0.iter().any(|e| e.field == "payment_method") => {
            let alert = match who.lang {
                Lang::En => Alert::new("A higher offer needs your card again, to authorise the new total. Nothing was changed.")
                    .then("Enter your card below and send the change again."),
                Lang::Fr => Alert::new("Une offre plus élevée nécessite de saisir de nouveau votre carte, pour autoriser le nouveau total. Rien n'a été modifié.")
                    .then("Saisissez votre carte ci-dessous et validez de nouveau."),
            };
            refused(
                &req,
                &db,
                gateway.get_ref(),
                &who,
                &id,
                Some(typed),
                StatusCode::UNPROCESSABLE_ENTITY,
                alert.on("card_number"),
            )
            .await
        }
        Err(e) => {
            let (status, alert) = bid_alert(who.lang, e, &loaded.spec)?;
            refused(
                &req,
                &db,
                gateway.get_ref(),
                &who,
                &id,
                Some(typed),
                status,
                alert,
            )
            .await
        }
    }
}

#[post("/bids/{id}/withdraw")]
pub async fn withdraw(
    req: HttpRequest,
    db: web::Data<Db>,
    gateway: web::Data<dyn PaymentGateway>,
    id: web::Path<String>,
    form: web::Form<HashMap<String, String>>,
) -> Result<HttpResponse, PageError> {
    let who = traveller(&req).await?;
    check_csrf(&who, form.get("csrf").map(String::as_str))?;
    let loaded = load(&db, &who, &id).await?;
    match bids::withdraw(&db, &who.booking, &id).await {
        Ok(_) => Ok(see_other(format!("/bids/{id}?done=withdrawn"))),
        Err(e) => {
            let (status, alert) = bid_alert(who.lang, e, &loaded.spec)?;
            refused(&req, &db, gateway.get_ref(), &who, &id, None, status, alert).await
        }
    }
}

#[post("/bids/{id}/card")]
pub async fn replace_card(
    req: HttpRequest,
    db: web::Data<Db>,
    gateway: web::Data<dyn PaymentGateway>,
    id: web::Path<String>,
    form: web::Form<HashMap<String, String>>,
) -> Result<HttpResponse, PageError> {
    let who = traveller(&req).await?;
    check_csrf(&who, form.get("csrf").map(String::as_str))?;
    let loaded = load(&db, &who, &id).await?;
    let card = match card::from_form(&form, who.lang) {
        Ok(card) => card,
        Err(CardFieldError(message)) => {
            let alert = Alert::new(message).on("card_number");
            return status_page(
                &req,
                &db,
                gateway.get_ref(),
                &who,
                loaded,
                StatusCode::UNPROCESSABLE_ENTITY,
                None,
                None,
                Some(alert),
            )
            .await;
        }
    };
    match bids::replace_card(&db, &gateway, &who.booking, &id, card).await {
        Ok(_) => Ok(see_other(format!("/bids/{id}?done=card"))),
        Err(e) => {
            let (status, alert) = bid_alert(who.lang, e, &loaded.spec)?;
            refused(&req, &db, gateway.get_ref(), &who, &id, None, status, alert).await
        }
    }
}
