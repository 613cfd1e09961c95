//! Message texts, per kind and language (French or English; anything else reads English).
//! Plain text: it reads well on every phone and mail client, and nothing is hidden in markup.

use super::Topic;
use super::outbox::{AfterLostOffer, Facts};
use super::why::Why;
use crate::domain::bid::BidStatus;
use crate::domain::outcome::OutcomeReason;
use crate::local_time;
use crate::money::{Currency, Money, Writing};
use chrono::NaiveDate;

/// What to put in one email.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rendered {
    pub language: &'static str,
    pub subject: String,
    pub body: String,
}

/// Everything a message needs beyond its facts, read at delivery time.
pub struct Context<'a> {
    pub language: &'a str,
    pub last_name: &'a str,
    pub operator_name: &'a str,
    pub support_email: &'a str,
    pub status_url: &'a str,
    /// Only for optional messages.
    pub unsubscribe_url: Option<&'a str>,
}

/// An amount as the email's language writes it: in French as the French pages do
/// (`600,00 €`); in English with the code (`600.00 EUR`), as the English reasons say it.
fn money(minor: i64, currency: &str, fr: bool) -> String {
    match Currency::parse(currency).and_then(|c| Money::from_minor(minor, c)) {
        Ok(m) if fr => m.written(Writing::French),
        Ok(m) => format!("{m} {currency}"),
        Err(_) => format!("{minor} (minor units) {currency}"),
    }
}

pub fn render(topic: Topic, facts: &Facts, cx: &Context<'_>) -> Rendered {
    let fr = cx.language.eq_ignore_ascii_case("fr");
    let writing = if fr {
        Writing::French
    } else {
        Writing::English
    };
    let per = money(facts.amount_minor, &facts.currency, fr);
    let total = money(
        facts
            .total_minor
            .unwrap_or(facts.amount_minor * i64::from(facts.units)),
        &facts.currency,
        fr,
    );
    // The travel day as the pages write it, with its weekday.
    let on = NaiveDate::parse_from_str(&facts.service_date, "%Y-%m-%d").map_or_else(
        |_| facts.service_date.clone(),
        |d| local_time::day(d, writing),
    );
    // Generated titles already name the classes ("AU101: economy → business"); operators'
    // own titles ("Paris CDG → New York JFK") may not.
    let upgrade = if facts.lot_title.contains(&facts.to_class) {
        format!("{} ({on})", facts.lot_title)
    } else {
        format!(
            "{}, {} → {} ({on})",
            facts.lot_title, facts.from_class, facts.to_class
        )
    };
    // Moments in the lot's time zone, as the traveller's pages write them.
    let tz = local_time::zone(&facts.time_zone);
    let closes = local_time::written(facts.closes_at, tz, writing);
    // Which offer a lost-offer email is about, when the hold's time is known.
    let (made, fait) = match facts.offered_at {
        Some(at) => (
            format!(" made on {}", local_time::written(at, tz, Writing::English)),
            format!(" faite le {}", local_time::written(at, tz, Writing::French)),
        ),
        None => (String::new(), String::new()),
    };
    // Why, in the booking's language; in English for messages written before `why` was kept.
    let detail = match (&facts.why, fr) {
        (Some(why), true) => why.fr_in(tz),
        // A refund's English sentence (timeline, webhooks) names the amount too, which the
        // email's own lead says: the cause alone here.
        // (A refund message without its amount apart keeps the sentence, which names it.)
        (Some(why), false) if matches!(topic, Topic::Refunded) && facts.total_minor.is_some() => {
            why.en_in(tz)
        }
        _ => facts.detail.clone().unwrap_or_default(),
    };
    // A winner's failed payment waits for another card; an "upgrade now" the bank refused
    // is undone at once, and there is nothing to do.
    let awaits_card = facts.bid_status == BidStatus::PaymentFailed.as_str();
    // A lot with no grace period gives the upgrade to the next traveller at once: nothing to
    // do, and no card asked for (messages written before `why` was kept cannot tell).
    let passed_on = matches!(
        facts.why,
        Some(Why::PaymentDeclined {
            kept_until: None,
            ..
        })
    );
    // What becomes of the card of an offer that no longer stands: a hold is released; a card
    // only saved (a charge on award) was never held, and is simply not used.
    let (any_hold, toute_autorisation) = if facts.card_only_saved {
        ("", "")
    } else {
        (
            " and any hold on your card is released",
            " et toute autorisation sur votre carte est levée",
        )
    };
    // A saved card the bank refused when the upgrade was charged has been tried: it is not
    // "not used", it is not used again.
    let tried = matches!(&facts.why, Some(Why::Outcome { reason, .. }) if reason == OutcomeReason::PaymentFailed.as_str());
    let (freed, libere) = if facts.card_only_saved && tried {
        (
            "Nothing was charged to your saved card, and it will not be used again.",
            "Rien n'a été débité sur votre carte enregistrée, et elle ne sera plus utilisée.",
        )
    } else if facts.card_only_saved {
        (
            "Your saved card will not be used; nothing is charged.",
            "Votre carte enregistrée ne sera pas utilisée ; rien n'est débité.",
        )
    } else {
        (
            "The hold on your card is released; nothing is charged.",
            "L'autorisation sur votre carte est levée ; rien n'est débité.",
        )
    };
    // The one email of a failure on a lot without grace: what becomes of the card too.
    let (not_again, plus_utilisee) = if facts.card_only_saved {
        (
            "Your saved card will not be used again.",
            "Votre carte enregistrée ne sera plus utilisée.",
        )
    } else {
        (
            "The hold on your card is being released.",
            "L'autorisation sur votre carte est en cours de levée.",
        )
    };
    let (subject, lead) = if fr {
        match topic {
            Topic::BidPlaced => (
                format!("Offre reçue : {upgrade}"),
                format!("Nous avons bien reçu votre offre de {per} par personne ({total} pour {} personne(s)) pour le surclassement {upgrade}. Vous pouvez la modifier ou la retirer jusqu'à la clôture, le {closes}.", facts.units),
            ),
            Topic::BidChanged => (
                format!("Offre modifiée : {upgrade}"),
                format!("Votre offre est maintenant de {per} par personne ({total} au total). Vous pouvez encore la modifier jusqu'au {closes}."),
            ),
            Topic::BidWithdrawn => (
                format!("Offre retirée : {upgrade}"),
                format!("Votre offre est retirée. {libere}"),
            ),
            Topic::DeadlineMoved => (
                format!("Nouvelle heure de clôture : {upgrade}"),
                format!("{detail}\nVotre offre de {per} par personne est maintenue : vous pouvez la modifier ou la retirer jusqu'au {closes}."),
            ),
            Topic::Reminder => (
                format!("Les offres se terminent bientôt : {upgrade}"),
                format!("Les offres pour {upgrade} se terminent le {closes}. Votre offre actuelle : {per} par personne. Vous pouvez encore la modifier."),
            ),
            Topic::UpgradeConfirmed => (
                format!("Surclassement confirmé : {upgrade}"),
                format!("Bonne nouvelle : votre surclassement {upgrade} est confirmé.\n\nReçu\n  Montant débité : {total}\n  Personnes : {}\n  Référence de l'offre : {}", facts.units, facts.bid_id),
            ),
            Topic::NotSuccessful => (
                format!("Offre non retenue : {upgrade}"),
                format!("Votre offre pour {upgrade} n'a pas été retenue. {detail}\n{libere}"),
            ),
            Topic::PaymentFailed if !awaits_card => (
                format!("Paiement refusé : achat immédiat de {upgrade}"),
                format!("Votre banque a refusé le paiement de l'achat immédiat du surclassement {upgrade}. {detail}\nL'autorisation prise pour cet achat est en cours de levée."),
            ),
            Topic::PaymentFailed if passed_on => (
                format!("Paiement refusé : {upgrade}"),
                format!("Votre surclassement {upgrade} vous avait été attribué, mais le paiement de {total} a échoué. {detail}\n{plus_utilisee}"),
            ),
            Topic::PaymentFailed => (
                format!("Action requise : paiement refusé pour {upgrade}"),
                format!("Votre surclassement {upgrade} vous a été attribué, mais le paiement de {total} a échoué. {detail}\nQue faire : ouvrez le lien ci-dessous et donnez une autre carte avant la fin du délai, sinon le surclassement passera au voyageur suivant."),
            ),
            Topic::Cancelled if facts.charge_unanswered => (
                format!("Surclassement annulé : {upgrade}"),
                format!("{detail}\nLe paiement de ce surclassement avait déjà été demandé à votre banque, qui n'avait pas encore répondu. Si la somme a été débitée, elle vous est remboursée en totalité et nous vous écrirons dès que le remboursement sera parti ; sinon, rien n'est débité{toute_autorisation}."),
            ),
            Topic::Cancelled => (
                format!("Surclassement annulé : {upgrade}"),
                format!("{detail}\n{libere}"),
            ),
            Topic::Refunded => (
                format!("Remboursement : {upgrade}"),
                format!("{detail}\nNous vous remboursons {total} sur la carte utilisée. Selon votre banque, le remboursement apparaît sous quelques jours."),
            ),
            Topic::NotRecorded => (
                format!("Votre offre n'a pas été enregistrée : {upgrade}"),
                format!(
                    "À cause d'une panne de notre côté, votre offre de {per} par personne ({total} pour {} personne(s)){fait} pour le surclassement {upgrade} n'a pas été enregistrée. Nous avons levé l'autorisation de {total} sur votre carte ; rien n'est débité pour cette offre. Veuillez nous excuser.\n{}",
                    facts.units,
                    match facts.after_lost_offer {
                        Some(AfterLostOffer::BidAgain) => format!("Les offres restent ouvertes jusqu'au {closes} : vous pouvez refaire votre offre avec le lien ci-dessous."),
                        Some(AfterLostOffer::LaterOfferStands) => "L'offre que vous avez faite depuis est bien enregistrée ; ceci ne la change pas.".to_owned(),
                        Some(AfterLostOffer::BiddingClosed) | None => "Ce surclassement n'est plus ouvert aux offres ; cette offre n'a donc pas pu participer.".to_owned(),
                    }
                ),
            ),
        }
    } else {
        match topic {
            Topic::BidPlaced => (
                format!("Offer received: {upgrade}"),
                format!("We have your offer of {per} per person ({total} for {} traveller(s)) for the upgrade {upgrade}. You can change or withdraw it until bidding closes on {closes}.", facts.units),
            ),
            Topic::BidChanged => (
                format!("Offer changed: {upgrade}"),
                format!("Your offer is now {per} per person ({total} in total). You can still change it until {closes}."),
            ),
            Topic::BidWithdrawn => (
                format!("Offer withdrawn: {upgrade}"),
                format!("Your offer is withdrawn. {freed}"),
            ),
            Topic::DeadlineMoved => (
                format!("New closing time: {upgrade}"),
                format!("{detail}\nYour offer of {per} per person stands: you can change or withdraw it until {closes}."),
            ),
            Topic::Reminder => (
                format!("Bidding closes soon: {upgrade}"),
                format!("Bidding for {upgrade} closes on {closes}. Your current offer: {per} per person. You can still change it."),
            ),
            Topic::UpgradeConfirmed => (
                format!("Upgrade confirmed: {upgrade}"),
                format!("Good news: your upgrade {upgrade} is confirmed.\n\nReceipt\n  Amount charged: {total}\n  Travellers: {}\n  Offer reference: {}", facts.units, facts.bid_id),
            ),
            Topic::NotSuccessful => (
                format!("Offer not successful: {upgrade}"),
                format!("Your offer for {upgrade} was not successful. {detail}\n{freed}"),
            ),
            Topic::PaymentFailed if !awaits_card => (
                format!("Payment declined: upgrade now for {upgrade}"),
                format!("Your bank declined the payment for buying the upgrade {upgrade} now. {detail}\nThe hold taken for this purchase is being released."),
            ),
            Topic::PaymentFailed if passed_on => (
                format!("Payment failed: {upgrade}"),
                format!("Your upgrade {upgrade} was awarded to you, but the payment of {total} failed. {detail}\n{not_again}"),
            ),
            Topic::PaymentFailed => (
                format!("Action needed: payment failed for {upgrade}"),
                format!("Your upgrade {upgrade} was awarded to you, but the payment of {total} failed. {detail}\nWhat to do: open the link below and give another card before the grace period ends, or the upgrade goes to the next traveller."),
            ),
            Topic::Cancelled if facts.charge_unanswered => (
                format!("Upgrade cancelled: {upgrade}"),
                format!("{detail}\nThe payment for this upgrade had already been requested from your bank, which had not answered yet. If it was taken, it is refunded in full and we will write to you when the refund is on its way; if not, nothing is charged{any_hold}."),
            ),
            Topic::Cancelled => (
                format!("Upgrade cancelled: {upgrade}"),
                format!("{detail}\n{freed}"),
            ),
            Topic::Refunded => (
                format!("Refund: {upgrade}"),
                format!("{detail}\nWe are refunding {total} to the card you used. Depending on your bank it shows within a few days."),
            ),
            Topic::NotRecorded => (
                format!("Your offer was not recorded: {upgrade}"),
                format!(
                    "Because of a fault on our side, your offer of {per} per person ({total} for {} traveller(s)){made} for the upgrade {upgrade} was not recorded. We have released the hold of {total} on your card; nothing is charged for this offer. We are sorry.\n{}",
                    facts.units,
                    match facts.after_lost_offer {
                        Some(AfterLostOffer::BidAgain) => format!("Bidding is open until {closes}: you can make your offer again from the link below."),
                        Some(AfterLostOffer::LaterOfferStands) => "The offer you made since is recorded; this does not change it.".to_owned(),
                        Some(AfterLostOffer::BiddingClosed) | None => "This upgrade is no longer open for offers, so this offer could not take part.".to_owned(),
                    }
                ),
            ),
        }
    };
    let mut body = String::new();
    body.push_str(&if fr {
        format!("Bonjour {},\n\n", cx.last_name)
    } else {
        format!("Dear {},\n\n", cx.last_name)
    });
    body.push_str(lead.trim());
    body.push_str("\n\n");
    // A lost offer has nothing to follow: the link leads to the upgrades on offer.
    body.push_str(&match (fr, topic) {
        (true, Topic::NotRecorded) => format!("Vos surclassements : {}\n", cx.status_url),
        (false, Topic::NotRecorded) => format!("Your upgrades: {}\n", cx.status_url),
        (true, _) => format!("Suivre votre offre : {}\n", cx.status_url),
        (false, _) => format!("See your offer: {}\n", cx.status_url),
    });
    body.push_str(&if fr {
        format!(
            "Une question ? Répondez à ce message ou écrivez à {} ({}).\n",
            cx.support_email, cx.operator_name
        )
    } else {
        format!(
            "Questions? Reply to this message or write to {} ({}).\n",
            cx.support_email, cx.operator_name
        )
    });
    if let Some(url) = cx.unsubscribe_url {
        body.push_str(&if fr {
            format!("\nNe plus recevoir de rappels : {url}\n")
        } else {
            format!("\nStop reminders: {url}\n")
        });
    }
    Rendered {
        language: if fr { "fr" } else { "en" },
        subject,
        body,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::{TimeZone, Utc};

    fn facts() -> Facts {
        Facts {
            event_id: "evt_1".into(),
            bid_id: "bid_1".into(),
            lot_id: "lot_1".into(),
            booking_id: "bkg_1".into(),
            bid_status: "charged".into(),
            amount_minor: 12500,
            units: 2,
            total_minor: Some(25000),
            currency: "EUR".into(),
            lot_title: "AU101: economy → business".into(),
            from_class: "economy".into(),
            to_class: "business".into(),
            resource: "AU101".into(),
            service_date: "2026-12-24".into(),
            closes_at: Utc::now(),
            time_zone: "Europe/Paris".into(),
            detail: None,
            why: None,
            after_lost_offer: None,
            offered_at: None,
            charge_unanswered: false,
            card_only_saved: false,
            at: Utc::now(),
        }
    }

    #[test]
    fn a_card_only_saved_is_never_spoken_of_as_held() {
        let saved = Facts {
            bid_status: "lost".into(),
            detail: Some("Other travellers offered more.".into()),
            card_only_saved: true,
            ..facts()
        };
        let in_doubt = Facts {
            charge_unanswered: true,
            ..saved.clone()
        };
        let en = render(Topic::Cancelled, &in_doubt, &cx("en")).body;
        assert!(
            en.contains("if not, nothing is charged.") && !en.contains("hold"),
            "{en}"
        );
        let fr = render(Topic::Cancelled, &in_doubt, &cx("fr")).body;
        assert!(
            fr.contains("sinon, rien n'est débité.") && !fr.contains("autorisation"),
            "{fr}"
        );
        for topic in [Topic::BidWithdrawn, Topic::NotSuccessful, Topic::Cancelled] {
            let en = render(topic, &saved, &cx("en")).body;
            assert!(
                en.contains("Your saved card will not be used; nothing is charged.")
                    && !en.contains("hold"),
                "{topic:?}: {en}"
            );
            let fr = render(topic, &saved, &cx("fr")).body;
            assert!(
                fr.contains("Votre carte enregistrée ne sera pas utilisée ; rien n'est débité.")
                    && !fr.contains("autorisation"),
                "{topic:?}: {fr}"
            );
            let held = render(
                topic,
                &Facts {
                    card_only_saved: false,
                    ..saved.clone()
                },
                &cx("en"),
            );
            assert!(
                held.body.contains("The hold on your card is released"),
                "{topic:?}: {}",
                held.body
            );
        }
    }

    #[test]
    fn a_cancel_while_the_bank_has_not_answered_does_not_say_nothing_is_charged() {
        let plain = Facts {
            detail: Some("The operator cancelled this upgrade: storm.".into()),
            ..facts()
        };
        let in_doubt = Facts {
            charge_unanswered: true,
            ..plain.clone()
        };
        let en = render(Topic::Cancelled, &plain, &cx("en")).body;
        assert!(
            en.contains("The hold on your card is released; nothing is charged."),
            "{en}"
        );
        let en = render(Topic::Cancelled, &in_doubt, &cx("en")).body;
        assert!(
            en.contains("If it was taken, it is refunded in full"),
            "{en}"
        );
        assert!(!en.contains("released; nothing is charged"), "{en}");
        let fr = render(Topic::Cancelled, &in_doubt, &cx("fr")).body;
        assert!(fr.contains("elle vous est remboursée en totalité"), "{fr}");
        assert!(!fr.contains("levée ; rien n'est débité"), "{fr}");
    }

    fn cx(language: &str) -> Context<'_> {
        Context {
            language,
            last_name: "Müller",
            operator_name: "Aurora Air",
            support_email: "help@aurora.example",
            status_url: "https://up.example/s/tok",
            unsubscribe_url: None,
        }
    }

    #[test]
    fn a_receipt_says_what_was_charged_in_the_bookings_language() {
        let fr = render(Topic::UpgradeConfirmed, &facts(), &cx("fr"));
        assert_eq!(fr.language, "fr");
        assert!(fr.subject.starts_with("Surclassement confirmé"));
        assert!(fr.body.contains("250,00\u{a0}€"), "{}", fr.body);
        assert!(fr.body.contains("https://up.example/s/tok"));
        let en = render(Topic::UpgradeConfirmed, &facts(), &cx("de"));
        assert_eq!(en.language, "en");
        assert!(
            en.body.contains("Amount charged: 250.00 EUR"),
            "{}",
            en.body
        );
    }

    #[test]
    fn a_lost_offer_says_the_hold_is_released_and_what_to_do_now() {
        let mut lost = facts();
        lost.total_minor = Some(35000);
        lost.amount_minor = 17500;
        lost.after_lost_offer = Some(AfterLostOffer::BidAgain);
        lost.offered_at = Some(Utc.with_ymd_and_hms(2026, 12, 6, 11, 40, 0).unwrap());
        let open = render(Topic::NotRecorded, &lost, &cx("en"));
        assert_eq!(
            open.subject,
            "Your offer was not recorded: AU101: economy → business (Thu 24 Dec 2026)"
        );
        let body = &open.body;
        assert!(
            body.contains(
                "offer of 175.00 EUR per person (350.00 EUR for 2 traveller(s)) made on \
                 Sun 6 Dec 2026, 12:40 CET for the upgrade"
            ),
            "which offer, at the lot's time: {body}"
        );
        assert!(
            body.contains("released the hold of 350.00 EUR on your card"),
            "{body}"
        );
        assert!(body.contains("make your offer again"), "{body}");
        assert!(
            body.contains("Your upgrades: https://up.example/s/tok"),
            "{body}"
        );

        lost.after_lost_offer = Some(AfterLostOffer::LaterOfferStands);
        let stands = render(Topic::NotRecorded, &lost, &cx("en")).body;
        assert!(
            stands.contains("The offer you made since is recorded; this does not change it"),
            "{stands}"
        );
        assert!(!stands.contains("make your offer again"), "{stands}");

        lost.after_lost_offer = Some(AfterLostOffer::BiddingClosed);
        let closed = render(Topic::NotRecorded, &lost, &cx("fr"));
        assert!(
            closed
                .subject
                .starts_with("Votre offre n'a pas été enregistrée")
        );
        let body = &closed.body;
        assert!(
            body.contains("levé l'autorisation de 350,00\u{a0}€"),
            "{body}"
        );
        assert!(body.contains("n'est plus ouvert aux offres"), "{body}");
        assert!(
            body.contains(
                "(350,00\u{a0}€ pour 2 personne(s)) faite le dim. 6 déc. 2026 à 12:40 CET pour"
            ),
            "{body}"
        );
        assert!(!body.contains("refaire votre offre"), "{body}");
        // A job queued before the time was kept: the text reads without it.
        lost.offered_at = None;
        let untimed = render(Topic::NotRecorded, &lost, &cx("en")).body;
        assert!(
            untimed.contains("(350.00 EUR for 2 traveller(s)) for the upgrade"),
            "{untimed}"
        );
    }

    #[test]
    fn a_failed_payment_asks_for_another_card_only_when_the_upgrade_waits_for_one() {
        let mut winner = facts();
        winner.bid_status = "payment_failed".into();
        winner.detail = Some("Your card was declined.".into());
        let awarded = render(Topic::PaymentFailed, &winner, &cx("en"));
        assert!(
            awarded.body.contains("give another card"),
            "{}",
            awarded.body
        );

        let mut bought = facts();
        bought.bid_status = "active".into();
        bought.detail =
            Some("Your card was declined. Nothing was charged. Your bid stays as it was.".into());
        let undone = render(Topic::PaymentFailed, &bought, &cx("en"));
        assert_eq!(
            undone.subject,
            "Payment declined: upgrade now for AU101: economy → business (Thu 24 Dec 2026)"
        );
        assert!(
            undone.body.contains("Your bid stays as it was."),
            "{}",
            undone.body
        );
        assert!(!undone.body.contains("grace period"), "{}", undone.body);
        let fr = render(Topic::PaymentFailed, &bought, &cx("fr"));
        assert!(
            fr.subject.starts_with("Paiement refusé : achat immédiat"),
            "{}",
            fr.subject
        );
        assert!(!fr.body.contains("avant la fin du délai"), "{}", fr.body);
    }

    #[test]
    fn a_french_booking_is_told_why_in_french() {
        use crate::notifications::why::{AfterPurchase, Refusal, Why};
        use crate::payments::DeclineReason;
        let declined = Refusal::Declined {
            reason: DeclineReason::InsufficientFunds,
        };
        let cases = [
            (
                Topic::NotSuccessful,
                "lost",
                Why::Outcome {
                    reason: "outbid".into(),
                    party: 2,
                },
            ),
            (
                Topic::Cancelled,
                "lost",
                Why::OperatorCancelled {
                    words: "tempête".into(),
                },
            ),
            (Topic::Cancelled, "lost", Why::CapacityCut),
            (
                Topic::Refunded,
                "refunded",
                Why::Outcome {
                    reason: "lot_cancelled".into(),
                    party: 2,
                },
            ),
            (
                Topic::PaymentFailed,
                "payment_failed",
                Why::PaymentDeclined {
                    refusal: declined.clone(),
                    kept_until: None,
                },
            ),
            (
                Topic::PaymentFailed,
                "active",
                Why::PurchaseDeclined {
                    refusal: declined,
                    then: AfterPurchase::BidStands,
                },
            ),
        ];
        for (topic, status, why) in cases {
            let told = Facts {
                bid_status: status.into(),
                detail: Some(why.en()),
                why: Some(why.clone()),
                ..facts()
            };
            let fr = render(topic, &told, &cx("fr")).body;
            assert!(
                fr.contains(&why.fr_in(chrono_tz::Europe::Paris)),
                "{topic:?} {why:?}: {fr}"
            );
            assert!(!fr.contains(&why.en()), "{topic:?} {why:?}: {fr}");
            // Said once, not by the opening sentence and again by the cause.
            assert!(fr.matches("débité").count() <= 1, "{topic:?} {why:?}: {fr}");
            // Written before the parts were kept: the English sentence, rather than nothing.
            let before = Facts { why: None, ..told };
            let fr = render(topic, &before, &cx("fr")).body;
            assert!(fr.contains(&why.en()), "{topic:?} {why:?}: {fr}");
        }
    }

    #[test]
    fn a_saved_card_the_bank_refused_is_not_said_to_be_unused() {
        let why = Why::Outcome {
            reason: "payment_failed".into(),
            party: 2,
        };
        let lapsed = Facts {
            bid_status: "lost".into(),
            detail: Some(why.en()),
            why: Some(why),
            card_only_saved: true,
            ..facts()
        };
        let en = render(Topic::NotSuccessful, &lapsed, &cx("en")).body;
        assert!(
            en.contains("Nothing was charged to your saved card, and it will not be used again.")
                && !en.contains("will not be used;"),
            "{en}"
        );
        let fr = render(Topic::NotSuccessful, &lapsed, &cx("fr")).body;
        assert!(
            fr.contains(
                "Rien n'a été débité sur votre carte enregistrée, et elle ne sera plus utilisée."
            ) && !fr.contains("ne sera pas utilisée"),
            "{fr}"
        );
        // Outbid, it was never tried.
        let outbid = Facts {
            why: Some(Why::Outcome {
                reason: "outbid".into(),
                party: 2,
            }),
            ..lapsed
        };
        let en = render(Topic::NotSuccessful, &outbid, &cx("en")).body;
        assert!(
            en.contains("Your saved card will not be used; nothing is charged."),
            "{en}"
        );
    }

    #[test]
    fn a_message_written_by_another_release_still_reads() {
        let mut stored = serde_json::to_value(facts()).unwrap();
        assert!(stored.get("why").is_none(), "{stored}");
        let read: Facts = serde_json::from_value(stored.clone()).unwrap();
        assert_eq!(read.why, None);
        // A cause a later release added, read after a rollback: the English sentence is said.
        stored["why"] = serde_json::json!({"kind": "meteor"});
        stored["detail"] = "A meteor.".into();
        let read: Facts = serde_json::from_value(stored).unwrap();
        assert_eq!(read.why, None);
        assert!(
            render(Topic::Cancelled, &read, &cx("fr"))
                .body
                .contains("A meteor.")
        );
    }

    #[test]
    fn a_payment_failed_on_a_lot_without_grace_asks_for_nothing() {
        use crate::notifications::why::{Refusal, Why};
        use crate::payments::DeclineReason as R;
        let refusals = [
            R::Generic,
            R::InsufficientFunds,
            R::ExpiredCard,
            R::IncorrectCvc,
            R::IncorrectNumber,
            R::AuthenticationFailed,
        ]
        .map(|reason| Refusal::Declined { reason })
        .into_iter()
        .chain([Refusal::ConfirmationAsked]);
        for refusal in refusals {
            let why = Why::PaymentDeclined {
                refusal: refusal.clone(),
                kept_until: None,
            };
            let failed = Facts {
                bid_status: "payment_failed".into(),
                detail: Some(why.en()),
                why: Some(why),
                ..facts()
            };
            let en = render(Topic::PaymentFailed, &failed, &cx("en"));
            assert!(en.subject.starts_with("Payment failed: "), "{}", en.subject);
            assert!(
                en.body
                    .contains("so it goes to the next traveller, if there is one")
                    && !en.body.contains("Please")
                    && !en.body.contains("What to do"),
                "{}",
                en.body
            );
            let fr = render(Topic::PaymentFailed, &failed, &cx("fr"));
            assert!(
                fr.subject.starts_with("Paiement refusé : "),
                "{}",
                fr.subject
            );
            assert!(
                fr.body
                    .contains("il passe au voyageur suivant, s'il y en a un")
                    && !fr.body.contains("Utilisez")
                    && !fr.body.contains("Vérifiez")
                    && !fr.body.contains("Réessayez")
                    && !fr.body.contains("Que faire"),
                "{}",
                fr.body
            );
            // With a grace period, the traveller is asked for another card.
            let kept = Facts {
                why: Some(Why::PaymentDeclined {
                    refusal,
                    kept_until: Some(Utc::now()),
                }),
                ..failed
            };
            let en = render(Topic::PaymentFailed, &kept, &cx("en")).body;
            assert!(
                en.contains("give another card before the grace period ends"),
                "{en}"
            );
        }
    }

    #[test]
    fn a_payment_failed_on_a_lot_without_grace_says_what_becomes_of_the_card() {
        let why = Why::PaymentDeclined {
            refusal: crate::notifications::why::Refusal::ConfirmationAsked,
            kept_until: None,
        };
        let held = Facts {
            bid_status: "payment_failed".into(),
            detail: Some(why.en()),
            why: Some(why),
            ..facts()
        };
        let en = render(Topic::PaymentFailed, &held, &cx("en")).body;
        assert!(
            en.contains("The hold on your card is being released."),
            "{en}"
        );
        let fr = render(Topic::PaymentFailed, &held, &cx("fr")).body;
        assert!(
            fr.contains("L'autorisation sur votre carte est en cours de levée."),
            "{fr}"
        );
        let saved = Facts {
            card_only_saved: true,
            ..held
        };
        let en = render(Topic::PaymentFailed, &saved, &cx("en")).body;
        assert!(
            en.contains("Your saved card will not be used again.") && !en.contains("hold"),
            "{en}"
        );
        let fr = render(Topic::PaymentFailed, &saved, &cx("fr")).body;
        assert!(
            fr.contains("Votre carte enregistrée ne sera plus utilisée.")
                && !fr.contains("autorisation"),
            "{fr}"
        );
    }

    #[test]
    fn a_refund_email_names_its_amount_once() {
        let why = Why::Outcome {
            reason: "lot_cancelled".into(),
            party: 2,
        };
        let refunded = Facts {
            bid_status: "refunded".into(),
            total_minor: Some(60000),
            detail: Some(format!("{} 600.00 EUR is refunded to your card.", why.en())),
            why: Some(why),
            ..facts()
        };
        let en = render(Topic::Refunded, &refunded, &cx("en")).body;
        assert_eq!(en.matches("600.00 EUR").count(), 1, "{en}");
        assert!(
            en.contains("The operator cancelled this upgrade.\nWe are refunding 600.00 EUR"),
            "{en}"
        );
        // An operator's cancel, in their words: the cause, then the amount on its own line.
        let cancelled = Facts {
            why: Some(Why::OperatorCancelled {
                words: "Flight cancelled".into(),
            }),
            ..refunded.clone()
        };
        let en = render(Topic::Refunded, &cancelled, &cx("en")).body;
        assert!(
            en.contains(
                "The operator cancelled this upgrade: Flight cancelled.\nWe are refunding 600.00 EUR"
            ),
            "{en}"
        );
        // Written before the cause was kept: the sentence as it was.
        let old = Facts {
            why: None,
            ..refunded
        };
        let en = render(Topic::Refunded, &old, &cx("en")).body;
        assert!(en.contains("600.00 EUR is refunded to your card."), "{en}");
    }

    #[test]
    fn only_optional_messages_offer_to_stop_them() {
        let mut c = cx("en");
        c.unsubscribe_url = Some("https://up.example/unsubscribe/t");
        let reminder = render(Topic::Reminder, &facts(), &c);
        assert!(
            reminder
                .body
                .contains("Stop reminders: https://up.example/unsubscribe/t")
        );
        let receipt = render(Topic::UpgradeConfirmed, &facts(), &cx("en"));
        assert!(!receipt.body.contains("unsubscribe"));
    }
}
