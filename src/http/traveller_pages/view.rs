//! Pieces several pages show: the amount field with its slider and live total, a problem
//! message with what to do, a bid's status and timeline in plain words, icons.

use actix_web::http::StatusCode;
use chrono::{DateTime, Utc};
use chrono_tz::Tz;

use crate::domain::bid::{BidEventKind, BidStatus};
use crate::domain::lot::{LotSpec, ResourceKind};
use crate::domain::outcome::OutcomeReason;
use crate::money::{Currency, Money};
use crate::services::bids::BidError;
use crate::services::events::placed_on_saved_card;
use crate::services::settlement::EARLIER_HOLD_RELEASED;
use crate::store::entities::{bid, bid_event};
use crate::store::payments::Charged;

use super::PageError;
use super::i18n::Lang;

/// A problem with what was sent, shown on the same screen: what went wrong, what to do.
pub struct Alert {
    pub message: String,
    pub what_to_do: Option<String>,
    /// The form field it is about, to mark it invalid and point at the message.
    pub field: Option<&'static str>,
}

impl Alert {
    pub fn new(message: impl Into<String>) -> Self {
        Self {
            message: message.into(),
            what_to_do: None,
            field: None,
        }
    }

    pub fn on(mut self, field: &'static str) -> Self {
        self.field = Some(field);
        self
    }

    pub fn then(mut self, what_to_do: impl Into<String>) -> Self {
        self.what_to_do = Some(what_to_do.into());
        self
    }

    pub fn is_on(&self, field: &str) -> bool {
        self.field == Some(field)
    }
}

pub fn alert_is_on(alert: &Option<Alert>, field: &str) -> bool {
    alert.as_ref().is_some_and(|a| a.is_on(field))
}

/// The amount per person: number field, slider, and the party's total.
pub struct AmountField {
    pub min: String,
    pub max: String,
    pub step: String,
    pub value: String,
    pub slider_value: String,
    pub currency: String,
    pub exponent: u32,
    pub party: u32,
    /// The maximum per person in minor units (`max` is the slider's whole-unit bound).
    pub max_minor: i64,
    pub range_text: String,
    pub total_text: String,
    /// Changing a bid on a hold: up to what its card is authorised, without the card again.
    pub card_hint: Option<String>,
}

impl AmountField {
    pub fn new(lang: Lang, spec: &LotSpec, party: u32, value: &str) -> Self {
        let currency = spec.currency;
        let parsed = Money::parse(&normalize_amount(value, lang), currency).ok();
        let total_text = parsed
            .and_then(|m| m.times(party).ok())
            .map(|t| lang.money(t.minor(), currency))
            .unwrap_or_else(|| "—".to_owned());
        let slider_value = parsed
            .map(|m| m.to_decimal().round().to_string())
            .unwrap_or_else(|| spec.reserve.to_decimal().ceil().to_string());
        let (min, max) = (
            lang.money(spec.reserve.minor(), currency),
            lang.money(spec.maximum.minor(), currency),
        );
        let range_text = match lang {
            Lang::En => format!(
                "Between {min} and {max} per person, for {party} {}.",
                people(lang, party)
            ),
            Lang::Fr => format!(
                "Entre {min} et {max} par personne, pour {party} {}.",
                people(lang, party)
            ),
        };
        Self {
            min: spec.reserve.to_decimal().ceil().to_string(),
            max: spec.maximum.to_decimal().floor().to_string(),
            step: "1".into(),
            value: value.to_owned(),
            slider_value,
            currency: currency.code().to_owned(),
            exponent: currency.exponent(),
            party,
            max_minor: spec.maximum.minor(),
            range_text,
            total_text,
            card_hint: None,
        }
    }
}

pub fn people(lang: Lang, n: u32) -> &'static str {
    if n == 1 {
        lang.t().people_one
    } else {
        lang.t().people_many
    }
}

/// What a person types (`1 234,50`, `€1,234.50`, `250`) as the API's decimal string.
pub fn normalize_amount(input: &str, lang: Lang) -> String {
    let kept: String = input
        .chars()
        .filter(|c| c.is_ascii_digit() || *c == ',' || *c == '.' || *c == '-')
        .collect();
    match (kept.contains(','), kept.contains('.')) {
        (true, true) => kept.replace(',', ""),
        (true, false) => {
            let decimals = kept.rsplit(',').next().map_or(0, str::len);
            if kept.matches(',').count() == 1 && (lang == Lang::Fr || decimals <= 2) {
                kept.replace(',', ".")
            } else {
                kept.replace(',', "")
            }
        }
        _ => kept,
    }
}

/// The amount as the field shows it again (`420.00` → `420` or `420,50` in French).
pub fn amount_for_field(minor: i64, currency: Currency, lang: Lang) -> String {
    let text = Money::from_minor(minor, currency)
        .map(|m| m.to_decimal().normalize().to_string())
        .unwrap_or_default();
    match lang {
        Lang::Fr => text.replace('.', ","),
        Lang::En => text,
    }
}

/// A refusal from the bid service, as the traveller reads it; our own failures stay errors.
pub fn bid_alert(
    lang: Lang,
    error: BidError,
    spec: &LotSpec,
) -> Result<(StatusCode, Alert), PageError> {
    let fr = lang == Lang::Fr;
    let tz = spec.time_zone;
    let alert = match error {
        BidError::Db(e) => return Err(PageError::Db(e)),
        BidError::NotFound => return Err(PageError::NotFound(lang)),
        BidError::SignedOut => return Err(PageError::SignedOut { expired: true }),
        BidError::OutOfRange { .. } => {
            let (min, max) = (
                lang.money(spec.reserve.minor(), spec.currency),
                lang.money(spec.maximum.minor(), spec.currency),
            );
            let alert = if fr {
                Alert::new(format!("Le montant doit être compris entre {min} et {max} par personne. Rien n'a été modifié."))
                    .then("Choisissez un montant dans cette fourchette, puis validez de nouveau.")
            } else {
                Alert::new(format!(
                    "The amount must be between {min} and {max} per person. Nothing was changed."
                ))
                .then("Choose an amount in that range and send it again.")
            };
            (StatusCode::UNPROCESSABLE_ENTITY, alert.on("amount"))
        }
        BidError::Closed { closes_at } => {
            let when = lang.datetime(closes_at, tz);
            let alert = if fr {
                Alert::new(format!("Les enchères sont closes depuis le {when}. Rien n'a été modifié et rien n'a été débité."))
                    .then("Le résultat s'affichera sur la page de votre offre.")
            } else {
                Alert::new(format!(
                    "Bidding closed on {when}. Nothing was changed and nothing was charged."
                ))
                .then("The result will show on your bid's page.")
            };
            (StatusCode::CONFLICT, alert)
        }
        BidError::NotOpenYet { opens_at } => {
            let when = lang.datetime(opens_at, tz);
            let alert = Alert::new(lang.bidding_opens(&when)).then(if fr {
                "Revenez à ce moment-là."
            } else {
                "Come back then."
            });
            (StatusCode::CONFLICT, alert)
        }
        BidError::Unavailable(_) => {
            let alert = if fr {
                Alert::new("Ce surclassement n'est plus proposé. Rien n'a été débité.")
                    .then("Regardez vos autres offres.")
            } else {
                Alert::new("This upgrade is no longer available. Nothing was charged.")
                    .then("Look at your other offers.")
            };
            (StatusCode::CONFLICT, alert)
        }
        BidError::GraceOver { no_grace } => {
            let alert = match (fr, no_grace) {
                (true, true) => Alert::new(
                    "Ce surclassement ne laisse aucun délai pour donner une autre carte : il passe au voyageur suivant, s'il y en a un. Rien n'a été débité.",
                ),
                (true, false) => Alert::new(
                    "Le délai pour donner une autre carte est écoulé : le surclassement passe au voyageur suivant, s'il y en a un. Rien n'a été débité.",
                ),
                (false, true) => Alert::new(
                    "This upgrade leaves no time to give another card: it goes to the next traveller, if there is one. Nothing was charged.",
                ),
                (false, false) => Alert::new(
                    "The time to give another card has passed: the upgrade goes to the next traveller, if there is one. Nothing was charged.",
                ),
            };
            (StatusCode::CONFLICT, alert)
        }
        BidError::AlreadyBid { .. } => {
            let alert = if fr {
                Alert::new("Vous avez déjà une offre sur ce surclassement.")
                    .then("Modifiez-la sur sa page.")
            } else {
                Alert::new("You already have a bid on this upgrade.").then("Change it on its page.")
            };
            (StatusCode::CONFLICT, alert)
        }
        BidError::NotActive { status } => {
            // An ended bid's money is the page's status line to tell (held or only saved,
            // released or refunded); the alert only says it ended.
            let words = match (status, fr) {
                (BidStatus::Lost | BidStatus::Released, true) => "Non retenue",
                (BidStatus::Lost | BidStatus::Released, false) => "Not successful",
                _ => status_words(lang, status),
            };
            let alert = if fr {
                Alert::new(format!(
                    "Cette offre est « {words} » et ne peut plus être modifiée."
                ))
            } else {
                Alert::new(format!(
                    "This bid is “{words}” and can no longer be changed."
                ))
            };
            (StatusCode::CONFLICT, alert)
        }
        BidError::ChangedMeanwhile => {
            let alert = if fr {
                Alert::new("Votre offre a été modifiée au même moment depuis un autre écran. Cette demande n'a rien changé.")
                    .then("Regardez votre offre et réessayez.")
            } else {
                Alert::new("Your bid was changed at the same moment from another screen. This request changed nothing.")
                    .then("Look at your bid and try again.")
            };
            (StatusCode::CONFLICT, alert)
        }
        BidError::CardDeclined(message) => {
            let alert = if fr {
                Alert::new("Votre carte a été refusée (ou votre banque demande une confirmation que cette page ne sait pas encore faire). Rien n'a été débité.")
                    .then("Essayez une autre carte.")
            } else {
                Alert::new(format!("{message} Nothing was charged.")).then("Try another card.")
            };
            (StatusCode::PAYMENT_REQUIRED, alert.on("card_number"))
        }
        BidError::PaymentUnavailable(_) => {
            let alert = if fr {
                Alert::new("Le service de paiement ne répond pas pour le moment. Rien n'a été modifié ni débité.")
                    .then("Réessayez dans une minute.")
            } else {
                Alert::new("The payment service is not answering right now. Nothing was changed or charged.")
                    .then("Try again in a minute.")
            };
            (StatusCode::SERVICE_UNAVAILABLE, alert)
        }
        BidError::Invalid(errors) => {
            let field = errors.0.first().map(|e| e.field.as_str()).unwrap_or("");
            let alert = match (field, fr) {
                ("amount", false) => Alert::new("Enter the amount per person as a number, such as 250 or 250.50. Nothing was changed.").on("amount"),
                ("amount", true) => Alert::new("Saisissez le montant par personne en chiffres, par exemple 250 ou 250,50. Rien n'a été modifié.").on("amount"),
                ("payment_method", false) => Alert::new("A card is needed: enter your card number, expiry date and security code. Nothing was changed.").on("card_number"),
                ("payment_method", true) => Alert::new("Une carte est nécessaire : saisissez son numéro, sa date d'expiration et son cryptogramme. Rien n'a été modifié.").on("card_number"),
                ("consent_to_charge", false) => Alert::new("Tick the box to agree that your card is charged later if the upgrade is confirmed.").on("consent_to_charge"),
                ("consent_to_charge", true) => Alert::new("Cochez la case pour accepter que votre carte soit débitée plus tard si le surclassement est confirmé.").on("consent_to_charge"),
                (_, false) => Alert::new(format!("{errors}. Nothing was changed.")),
                (_, true) => Alert::new("Un champ n'est pas valide. Rien n'a été modifié."),
            };
            (StatusCode::UNPROCESSABLE_ENTITY, alert)
        }
    };
    Ok(alert)
}

/// A bid's status in plain words.
pub fn status_words(lang: Lang, status: BidStatus) -> &'static str {
    match (lang, status) {
        (Lang::En, BidStatus::Active) => "In the running, sealed until bidding closes",
        (Lang::En, BidStatus::Withdrawn) => "Withdrawn",
        (Lang::En, BidStatus::Won) => "Won: your card is being charged",
        (Lang::En, BidStatus::Charged) => "Won and charged",
        (Lang::En, BidStatus::Lost) => "Not successful: the hold on your card is being released",
        (Lang::En, BidStatus::Released) => "Not successful: hold released",
        (Lang::En, BidStatus::Standby) => "On the standby list",
        (Lang::En, BidStatus::PaymentFailed) => "Won, but the payment failed",
        (Lang::En, BidStatus::Refunded) => "Refunded",
        (Lang::Fr, BidStatus::Active) => "En lice, sous pli scellé jusqu'à la clôture",
        (Lang::Fr, BidStatus::Withdrawn) => "Retirée",
        (Lang::Fr, BidStatus::Won) => "Gagnée : votre carte est en cours de débit",
        (Lang::Fr, BidStatus::Charged) => "Gagnée et débitée",
        (Lang::Fr, BidStatus::Lost) => {
            "Non retenue : l'autorisation sur votre carte est en cours de levée"
        }
        (Lang::Fr, BidStatus::Released) => "Non retenue : autorisation levée",
        (Lang::Fr, BidStatus::Standby) => "En liste d'attente",
        (Lang::Fr, BidStatus::PaymentFailed) => "Gagnée, mais le paiement a échoué",
        (Lang::Fr, BidStatus::Refunded) => "Remboursée",
    }
}

/// A bid that no longer stands (lost or released), in plain words as its money stands: not
/// "being released" while its payment is unanswered or taken, nor once its hold is gone, and
/// no hold spoken of for a card that was only saved.
pub fn ended_words(lang: Lang, money: Charged) -> &'static str {
    match (money, lang) {
        (Charged::Releasing, _) => status_words(lang, BidStatus::Lost),
        (Charged::Nothing, _) => status_words(lang, BidStatus::Released),
        (Charged::Unanswered, Lang::En) => "Not successful: waiting for your bank's answer",
        (Charged::Unanswered, Lang::Fr) => "Non retenue : en attente de la réponse de votre banque",
        (Charged::Taken, Lang::En) => "Not successful: your payment is being refunded",
        (Charged::Taken, Lang::Fr) => "Non retenue : votre paiement est en cours de remboursement",
        (Charged::NeverHeld, Lang::En) => "Not successful: your card will not be charged",
        (Charged::NeverHeld, Lang::Fr) => "Non retenue : votre carte ne sera pas débitée",
    }
}

/// One line of a bid's timeline.
pub struct EventView {
    pub iso: String,
    pub when: String,
    pub title: &'static str,
    pub message: String,
}

/// The timeline in the page's language. English shows the service's own words (they carry
/// exact amounts and deadlines); French is written here from the event and its amounts.
pub fn timeline(
    lang: Lang,
    b: &bid::Model,
    events: Vec<bid_event::Model>,
    currency: Currency,
    tz: Tz,
    grace_seconds: u32,
) -> Vec<EventView> {
    let units = b.units.max(1) as u32;
    let won_units = b.award_units.map_or(units, |u| u.max(1) as u32);
    let saved = placed_on_saved_card(&events);
    // What a card or failure event answers, from the steps before it: a card given after a
    // winner's failed payment replaces it and is charged at once; a failure after "upgrade
    // now" is the purchase's, which waits for no card. A traveller's new step ends both.
    let (mut awaits_card, mut buying_now) = (false, false);
    events
        .into_iter()
        .map(|e| {
            use BidEventKind as K;
            let kind = BidEventKind::parse(&e.kind).ok();
            let replacement =
                awaits_card && matches!(kind, Some(K::HoldPlaced | K::CardSaved));
            let purchase_declined = buying_now && kind == Some(K::PaymentFailed);
            match kind {
                Some(K::UpgradeNow) => buying_now = true,
                Some(K::PaymentFailed) => (awaits_card, buying_now) = (!buying_now, false),
                Some(K::Placed | K::Raised | K::Lowered | K::Withdrawn) => {
                    (awaits_card, buying_now) = (false, false)
                }
                _ => {}
            }
            let per = e.amount_minor.map(|m| lang.money(m, currency)).unwrap_or_default();
            let total_of = |n: u32| {
                e.amount_minor
                    .map(|m| lang.money(m * i64::from(n), currency))
                    .unwrap_or_default()
            };
            let title = event_title(lang, kind);
            let message = match (lang, kind) {
                (Lang::En, _) if e.detail.is_some() => e.detail.clone().unwrap_or_default(),
                (Lang::En, Some(BidEventKind::Placed)) => {
                    format!("Offer of {per} per person, {} in all.", total_of(units))
                }
                (Lang::En, Some(BidEventKind::Raised | BidEventKind::Lowered)) => {
                    format!("Offer changed to {per} per person, {} in all.", total_of(units))
                }
                (Lang::En, Some(BidEventKind::Withdrawn)) if saved => "You withdrew your bid. Nothing will be charged; your saved card will not be used.".into(),
                (Lang::En, Some(BidEventKind::Withdrawn)) => "You withdrew your bid. Nothing will be charged; the hold on your card is released.".into(),
                (Lang::En, Some(BidEventKind::HoldReleased)) => "The hold on your card is released; nothing was charged.".into(),
                (Lang::En, Some(BidEventKind::LotClosed)) => "Bidding closed; the result follows shortly.".into(),
                (Lang::En, Some(BidEventKind::Lost)) => {
                    lang.reason(b.outcome_reason.as_deref().unwrap_or(OutcomeReason::Outbid.as_str()), b.units)
                }
                (Lang::En, Some(BidEventKind::HoldPlaced)) => format!(
                    "Your card is authorised for {}; it is charged only if the upgrade is confirmed.",
                    total_of(units)
                ),
                (Lang::En, Some(BidEventKind::CardSaved)) => "Your card is saved; it is charged only if the upgrade is confirmed.".into(),
                (Lang::En, Some(BidEventKind::Won)) => "Your upgrade is confirmed.".into(),
                (Lang::En, Some(BidEventKind::Charged)) => {
                    format!("Your card was charged {}.", total_of(won_units))
                }
                (Lang::En, Some(BidEventKind::Refunded)) => {
                    format!("{} refunded to your card.", total_of(won_units))
                }
                (Lang::En, _) => String::new(),
                (Lang::Fr, Some(BidEventKind::Placed)) => {
                    format!("Offre de {per} par personne, {} au total.", total_of(units))
                }
                (Lang::Fr, Some(BidEventKind::Raised | BidEventKind::Lowered)) => {
                    format!("Offre modifiée : {per} par personne, {} au total.", total_of(units))
                }
                (Lang::Fr, Some(BidEventKind::Withdrawn)) if saved => "Vous avez retiré votre offre. Rien ne sera débité ; votre carte enregistrée ne sera pas utilisée.".into(),
                (Lang::Fr, Some(BidEventKind::Withdrawn)) => "Vous avez retiré votre offre. Rien ne sera débité ; l'autorisation sur votre carte est levée.".into(),
                (Lang::Fr, Some(BidEventKind::HoldPlaced | BidEventKind::CardSaved)) if replacement => "Merci : la nouvelle carte est en cours de débit.".into(),
                (Lang::Fr, Some(BidEventKind::HoldPlaced)) => "Votre carte est autorisée ; elle n'est débitée que si le surclassement est confirmé.".into(),
                (Lang::Fr, Some(BidEventKind::CardSaved)) => "Votre carte est enregistrée ; elle n'est débitée que si le surclassement est confirmé.".into(),
                (Lang::Fr, Some(BidEventKind::HoldReleased)) if e.detail.as_deref() == Some(EARLIER_HOLD_RELEASED) => "Une autorisation antérieure sur votre carte est levée ; rien n'a été débité pour elle. Selon votre banque, elle peut rester visible quelques jours.".into(),
                (Lang::Fr, Some(BidEventKind::HoldReleased)) => "L'autorisation sur votre carte est levée ; rien n'a été débité. Selon votre banque, elle peut rester visible quelques jours.".into(),
                (Lang::Fr, Some(BidEventKind::LotClosed)) => "Les enchères sont closes ; le résultat suit.".into(),
                (Lang::Fr, Some(BidEventKind::Won)) => format!(
                    "Votre surclassement est confirmé pour {won_units} {} ; votre carte va être débitée de {}.",
                    super::view::people(lang, won_units),
                    total_of(won_units)
                ),
                (Lang::Fr, Some(BidEventKind::Charged)) => {
                    format!("Votre carte a été débitée de {}. Bon voyage !", total_of(won_units))
                }
                (Lang::Fr, Some(BidEventKind::PaymentFailed)) if purchase_declined => "Votre banque a refusé le paiement de l'achat immédiat ; rien n'a été débité, et l'autorisation prise pour cet achat est levée.".into(),
                (Lang::Fr, Some(BidEventKind::PaymentFailed)) => {
                    let until = e.at + chrono::Duration::seconds(i64::from(grace_seconds));
                    if grace_seconds > 0 {
                        format!("Le paiement a échoué. Votre surclassement vous est gardé jusqu'au {} : donnez une autre carte pour le conserver.", lang.datetime(until, tz))
                    } else {
                        "Le paiement a échoué ; le surclassement passe au voyageur suivant et rien n'a été débité.".into()
                    }
                }
                (Lang::Fr, Some(BidEventKind::Refunded)) => {
                    format!("{} remboursés sur votre carte.", total_of(won_units))
                }
                (Lang::Fr, Some(BidEventKind::Lost)) => {
                    lang.reason(b.outcome_reason.as_deref().unwrap_or(OutcomeReason::Outbid.as_str()), b.units)
                }
                (Lang::Fr, Some(BidEventKind::Standby)) if saved => "Votre offre est en liste d'attente : elle passe devant si un gagnant ne peut pas payer, et votre carte enregistrée n'est débitée qu'alors ; sinon, rien n'est débité.".into(),
                (Lang::Fr, Some(BidEventKind::Standby)) => "Votre offre est en liste d'attente : elle passe devant si un gagnant ne peut pas payer. L'autorisation sur votre carte est gardée jusque-là.".into(),
                (Lang::Fr, Some(BidEventKind::LotCancelled)) => OutcomeReason::LotCancelled.fr(b.units),
                // A withdrawal from sale or a cut after the award; the bid's reason tells which.
                (Lang::Fr, Some(BidEventKind::CapacityChanged)) => {
                    match b.outcome_reason.as_deref().map(OutcomeReason::parse) {
                        Some(Ok(OutcomeReason::CapacityWithdrawn)) => OutcomeReason::CapacityWithdrawn,
                        _ => OutcomeReason::CapacityReduced,
                    }
                    .fr(b.units)
                }
                // From the event's kind, not the bid's outcome (gone once it is placed again);
                // the party is the bid's as it stands.
                (Lang::Fr, Some(BidEventKind::NoRoomLeft)) if saved => format!(
                    "{} Votre carte enregistrée ne sera pas utilisée ; rien n'est débité.",
                    OutcomeReason::NoRoomLeft.fr(b.units)
                ),
                (Lang::Fr, Some(BidEventKind::NoRoomLeft)) => format!(
                    "{} L'autorisation sur votre carte est levée ; rien n'est débité.",
                    OutcomeReason::NoRoomLeft.fr(b.units)
                ),
                (Lang::Fr, Some(BidEventKind::UpgradeNow)) => "Surclassement immédiat au prix fixe de l'opérateur.".into(),
                (Lang::Fr, None) => String::new(),
            };
            EventView {
                iso: e.at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
                when: lang.datetime(e.at, tz),
                title,
                message,
            }
        })
        .collect()
}

fn event_title(lang: Lang, kind: Option<BidEventKind>) -> &'static str {
    use BidEventKind as K;
    let fr = lang == Lang::Fr;
    match kind {
        Some(K::Placed) => {
            if fr {
                "Offre reçue"
            } else {
                "Bid received"
            }
        }
        Some(K::Raised | K::Lowered) => {
            if fr {
                "Offre modifiée"
            } else {
                "Bid changed"
            }
        }
        Some(K::Withdrawn) => {
            if fr {
                "Offre retirée"
            } else {
                "Bid withdrawn"
            }
        }
        Some(K::HoldPlaced) => {
            if fr {
                "Carte autorisée"
            } else {
                "Card authorised"
            }
        }
        Some(K::CardSaved) => {
            if fr {
                "Carte enregistrée"
            } else {
                "Card saved"
            }
        }
        Some(K::HoldReleased) => {
            if fr {
                "Autorisation levée"
            } else {
                "Hold released"
            }
        }
        Some(K::LotClosed) => {
            if fr {
                "Enchères closes"
            } else {
                "Bidding closed"
            }
        }
        Some(K::CapacityChanged) => {
            if fr {
                "Capacité modifiée"
            } else {
                "Capacity changed"
            }
        }
        Some(K::NoRoomLeft) => {
            if fr {
                "Plus assez de surclassements"
            } else {
                "No upgrade left for your party"
            }
        }
        Some(K::LotCancelled) => {
            if fr {
                "Surclassement annulé"
            } else {
                "Upgrade cancelled"
            }
        }
        Some(K::Won) => {
            if fr {
                "Gagnée"
            } else {
                "Won"
            }
        }
        Some(K::Lost) => {
            if fr {
                "Non retenue"
            } else {
                "Not successful"
            }
        }
        Some(K::Standby) => {
            if fr {
                "Liste d'attente"
            } else {
                "Standby"
            }
        }
        Some(K::Charged) => {
            if fr {
                "Débitée"
            } else {
                "Charged"
            }
        }
        Some(K::PaymentFailed) => {
            if fr {
                "Paiement échoué"
            } else {
                "Payment failed"
            }
        }
        Some(K::Refunded) => {
            if fr {
                "Remboursée"
            } else {
                "Refunded"
            }
        }
        Some(K::UpgradeNow) => {
            if fr {
                "Surclassement immédiat"
            } else {
                "Upgraded now"
            }
        }
        None => {
            if fr {
                "Mise à jour"
            } else {
                "Update"
            }
        }
    }
}

/// A small picture of what is upgraded (inline, so nothing else is downloaded).
pub fn icon(kind: ResourceKind) -> &'static str {
    match kind {
        ResourceKind::Seat => {
            r#"<svg viewBox="0 0 24 24" width="40" height="40" aria-hidden="true" focusable="false"><path fill="currentColor" d="M21 16v-2l-8-5V3.5a1.5 1.5 0 0 0-3 0V9l-8 5v2l8-2.5V19l-2 1.5V22l3.5-1 3.5 1v-1.5L13 19v-5.5z"/></svg>"#
        }
        ResourceKind::Room => {
            r#"<svg viewBox="0 0 24 24" width="40" height="40" aria-hidden="true" focusable="false"><path fill="currentColor" d="M7 13a3 3 0 1 0 0-6 3 3 0 0 0 0 6zm12-6h-8v7H3V5H1v15h2v-3h18v3h2v-9a4 4 0 0 0-4-4z"/></svg>"#
        }
        ResourceKind::Car => {
            r#"<svg viewBox="0 0 24 24" width="40" height="40" aria-hidden="true" focusable="false"><path fill="currentColor" d="M18.9 6c-.2-.6-.8-1-1.4-1h-11c-.7 0-1.2.4-1.4 1L3 12v8a1 1 0 0 0 1 1h1a1 1 0 0 0 1-1v-1h12v1a1 1 0 0 0 1 1h1a1 1 0 0 0 1-1v-8zM6.5 16a1.5 1.5 0 1 1 0-3 1.5 1.5 0 0 1 0 3zm11 0a1.5 1.5 0 1 1 0-3 1.5 1.5 0 0 1 0 3zM5 11l1.5-4.5h11L19 11z"/></svg>"#
        }
    }
}

/// `closes_at` as a `<time datetime>` value.
pub fn iso(at: DateTime<Utc>) -> String {
    at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn amounts_are_read_as_typed_in_either_language() {
        assert_eq!(normalize_amount("1 234,50", Lang::Fr), "1234.50");
        assert_eq!(normalize_amount("€1,234.50", Lang::En), "1234.50");
        assert_eq!(normalize_amount("250", Lang::En), "250");
        assert_eq!(normalize_amount("250,5", Lang::En), "250.5");
        assert_eq!(normalize_amount("1,250", Lang::En), "1250");
        assert_eq!(normalize_amount("abc", Lang::En), "");
    }
}
