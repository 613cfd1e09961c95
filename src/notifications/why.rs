//! Why a message's news happened, kept as parts rather than as one English sentence, so that
//! an email is written wholly in the booking's language. The English sentence is kept on the
//! message too (`Facts.detail`, for a refund with its amount): partners' webhooks carry it,
//! the timeline records it, and English emails say it too, except a refund's, which gives the
//! cause alone since the email states the amount.
//!
//! Each text is written here once per language, side by side: a new cause is seen missing
//! in French as soon as it is added in English.

use chrono::{DateTime, Utc};
use chrono_tz::Tz;
use serde::{Deserialize, Serialize};

use crate::domain::outcome::{OutcomeReason, reason_text, reason_text_fr};
use crate::local_time;
use crate::money::Writing;
use crate::payments::DeclineReason;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Why {
    /// An outcome by the reason the award or a later step recorded (`outbid`,
    /// `payment_failed`, `capacity_withdrawn`, …); `party` is the booking's party size.
    Outcome { reason: String, party: i32 },
    /// A standby place ended because every upgrade is paid for; `reason` why it had not won.
    StandbyEnded { reason: String, party: i32 },
    /// The operator cancelled the upgrade, in their own words (not translated).
    OperatorCancelled { words: String },
    /// The operator withdrew the upgrade from sale (capacity set to nothing before the award).
    WithdrawnFromSale,
    /// The operator has fewer upgrades than planned, so an upgrade already won is cancelled.
    CapacityCut,
    /// The operator could not confirm the upgrade in review, in their own words.
    OperatorRejected { words: String },
    /// An award winner's payment was refused; the upgrade is kept for another card until
    /// `kept_until`, or (`None`, a lot without grace period) goes to the next traveller, and
    /// the message asks for nothing.
    PaymentDeclined {
        refusal: Refusal,
        kept_until: Option<DateTime<Utc>>,
    },
    /// An "upgrade now" the bank refused, undone; `then` says what became of the bids.
    PurchaseDeclined {
        refusal: Refusal,
        then: AfterPurchase,
    },
    /// A charge found by reconcile that no upgrade stands behind.
    ChargedInError,
    /// The operator moved the close of bidding from `was` to `closes`.
    DeadlineMoved {
        was: DateTime<Utc>,
        closes: DateTime<Utc>,
    },
}

/// Why the bank did not take the money.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Refusal {
    /// The bank declined, for a reason a traveller can act on.
    Declined { reason: DeclineReason },
    /// The provider refused to use the hold; `words` are its own.
    Unusable { words: String },
    /// The bank asks the traveller to confirm the payment (3-D Secure).
    ConfirmationAsked,
}

/// What became of a traveller's bids once their "upgrade now" was undone.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AfterPurchase {
    /// The bid the purchase replaced is back, as it was.
    BidStands,
    /// There was no standing bid to put back; bidding is still open.
    BidAgain,
    /// Whatever bid came before (not known which) is withdrawn; bidding is still open.
    AnyEarlierWithdrawn,
    /// The earlier bid is withdrawn and its hold released; bidding is still open.
    EarlierWithdrawn,
    /// Bidding closed meanwhile: no bid of theirs took part.
    BiddingClosed,
}

/// Reads a stored cause, or none when it cannot be read (one that a later release added, read
/// after a rollback): the email then says why in English, and a refund job still runs.
pub fn read_leniently<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<Why>, D::Error> {
    let stored = Option::<serde_json::Value>::deserialize(d)?;
    Ok(stored.and_then(|v| match Why::deserialize(&v) {
        Ok(why) => Some(why),
        Err(_) => {
            // Not an error for the message or the job; worth seeing in the logs all the same.
            // Its kind and field names only: a cause may hold an operator's own words.
            let kind = v.get("kind").and_then(serde_json::Value::as_str);
            let fields: Vec<&String> = v
                .as_object()
                .map(|o| o.keys().collect())
                .unwrap_or_default();
            tracing::warn!(
                kind = kind.unwrap_or("?"),
                ?fields,
                "a stored cause this release cannot read"
            );
            None
        }
    }))
}

/// Someone's own words as a sentence: a full stop added when they end without one (closing
/// quotes and brackets looked through), so that what follows reads apart.
pub fn closed(words: &str) -> String {
    let words = words.trim_end();
    let core = words.trim_end_matches(['"', '\'', '»', '”', '’', ')', ']']);
    if core.ends_with(['.', '!', '?', '…', '。', '！', '？']) {
        return words.to_owned();
    }
    let open = core.trim_end_matches([':', ';', ',']);
    if open.len() == core.len() {
        format!("{words}.")
    } else {
        format!("{open}.")
    }
}

impl Why {
    /// An outcome by the reason recorded on the bid; `party` is the booking's party size.
    pub fn outcome(reason: OutcomeReason, party: i32) -> Why {
        Why::Outcome {
            reason: reason.as_str().to_owned(),
            party,
        }
    }

    /// In English, for a cause that holds no deadline (one would be written in UTC); a failed
    /// payment's cause, which may, is written with [`en_in`](Self::en_in) and the lot's zone.
    pub fn en(&self) -> String {
        self.en_in(chrono_tz::UTC)
    }

    /// In English, a deadline in the lot's time zone `tz`: the sentence partners and timelines
    /// receive too.
    pub fn en_in(&self, tz: Tz) -> String {
        match self {
            Why::Outcome { reason, party } => reason_text(reason, *party),
            Why::StandbyEnded { reason, party } => format!(
                "{} Every upgrade is now paid for, so your place on the standby list has ended.",
                reason_text(reason, *party)
            ),
            Why::OperatorCancelled { words } => {
                format!("The operator cancelled this upgrade: {}", closed(words))
            }
            Why::WithdrawnFromSale => OutcomeReason::CapacityWithdrawn.en(0),
            Why::CapacityCut => "The operator has fewer upgrades than planned (a schedule or equipment change), so your upgrade is cancelled.".into(),
            Why::OperatorRejected { words } => format!(
                "The operator could not confirm your upgrade: {} Nothing is charged.",
                closed(words)
            ),
            Why::PaymentDeclined {
                refusal,
                kept_until: Some(until),
            } => format!(
                "{} Your upgrade is kept for you until {}: give another card to keep it.",
                refusal.en(),
                local_time::written(*until, tz, Writing::English)
            ),
            Why::PaymentDeclined {
                refusal,
                kept_until: None,
            } => format!(
                "{} This upgrade leaves no time to give another card, so it goes to the next traveller, if there is one; nothing was charged.",
                refusal.stated_en()
            ),
            Why::PurchaseDeclined { refusal, then } => {
                let then = match then {
                    AfterPurchase::BidStands => " Your bid stays as it was.",
                    AfterPurchase::BidAgain => " You can still bid until bidding closes.",
                    AfterPurchase::AnyEarlierWithdrawn => " Any earlier bid of yours on it is withdrawn too: you can bid again until bidding closes.",
                    AfterPurchase::EarlierWithdrawn => " Your earlier bid is withdrawn too, and its hold released: you can bid again until bidding closes.",
                    AfterPurchase::BiddingClosed => " Bidding has closed meanwhile, so no bid of yours took part.",
                };
                format!("{} Nothing was charged.{then}", refusal.en())
            }
            Why::ChargedInError => "This charge was made in error.".into(),
            Why::DeadlineMoved { was, closes } => format!(
                "Bidding for this upgrade now closes on {} instead of {}.{}",
                local_time::written(*closes, tz, Writing::English),
                local_time::written(*was, tz, Writing::English),
                if closes < was {
                    " That is earlier than announced."
                } else {
                    ""
                }
            ),
        }
    }

    /// In French, for bookings in French, a deadline in the lot's time zone `tz`. The
    /// operator's own words stay as they wrote them.
    pub fn fr_in(&self, tz: Tz) -> String {
        match self {
            Why::Outcome { reason, party } => reason_text_fr(reason, *party),
            Why::StandbyEnded { reason, party } => format!(
                "{} Tous les surclassements sont désormais payés : votre place sur la liste d'attente prend fin.",
                reason_text_fr(reason, *party)
            ),
            Why::OperatorCancelled { words } => {
                format!("L'opérateur a annulé ce surclassement : {}", closed(words))
            }
            Why::WithdrawnFromSale => OutcomeReason::CapacityWithdrawn.fr(0),
            Why::CapacityCut => "L'opérateur a moins de surclassements que prévu (changement d'horaire ou d'appareil) ; votre surclassement est donc annulé.".into(),
            Why::OperatorRejected { words } => format!(
                "L'opérateur n'a pas pu confirmer votre surclassement : {} Rien n'est débité.",
                closed(words)
            ),
            Why::PaymentDeclined {
                refusal,
                kept_until: Some(until),
            } => format!(
                "{} Votre surclassement vous est gardé jusqu'au {} : donnez une autre carte pour le conserver.",
                refusal.fr(),
                local_time::written(*until, tz, Writing::French)
            ),
            Why::PaymentDeclined {
                refusal,
                kept_until: None,
            } => format!(
                "{} Ce surclassement ne laisse aucun délai pour donner une autre carte : il passe au voyageur suivant, s'il y en a un ; rien n'a été débité.",
                refusal.stated_fr()
            ),
            Why::PurchaseDeclined { refusal, then } => {
                let then = match then {
                    AfterPurchase::BidStands => " Votre offre reste telle qu'elle était.",
                    AfterPurchase::BidAgain => " Vous pouvez encore faire une offre jusqu'à la clôture.",
                    AfterPurchase::AnyEarlierWithdrawn => " Toute offre que vous aviez faite auparavant est retirée elle aussi : vous pouvez refaire une offre jusqu'à la clôture.",
                    AfterPurchase::EarlierWithdrawn => " Votre offre précédente est retirée elle aussi, et son autorisation levée : vous pouvez refaire une offre jusqu'à la clôture.",
                    AfterPurchase::BiddingClosed => " Les offres ont été closes entre-temps : aucune offre de votre part n'y a participé.",
                };
                format!("{} Rien n'a été débité.{then}", refusal.fr())
            }
            Why::ChargedInError => "Ce montant a été débité par erreur.".into(),
            Why::DeadlineMoved { was, closes } => format!(
                "Les offres pour ce surclassement se terminent maintenant le {} au lieu du {}.{}",
                local_time::written(*closes, tz, Writing::French),
                local_time::written(*was, tz, Writing::French),
                if closes < was {
                    " C'est plus tôt que prévu."
                } else {
                    ""
                }
            ),
        }
    }
}

impl Refusal {
    /// What the bank or provider answered, without asking for anything (nothing can be done).
    fn stated_en(&self) -> String {
        match self {
            Refusal::Declined { reason } => reason.stated().into(),
            Refusal::ConfirmationAsked => "Your bank asked to confirm this payment.".into(),
            Refusal::Unusable { .. } => self.en(),
        }
    }

    fn stated_fr(&self) -> String {
        match self {
            Refusal::Declined { reason } => reason.stated_fr().into(),
            Refusal::ConfirmationAsked => {
                "Votre banque demandait une confirmation de ce paiement.".into()
            }
            Refusal::Unusable { .. } => self.fr(),
        }
    }

    pub fn en(&self) -> String {
        match self {
            Refusal::Declined { reason } => reason.traveller_message().into(),
            Refusal::Unusable { words } => {
                format!("The hold on your card could not be used ({words}).")
            }
            Refusal::ConfirmationAsked => "Your bank asks you to confirm this payment.".into(),
        }
    }

    pub fn fr(&self) -> String {
        match self {
            Refusal::Declined { reason } => reason.traveller_message_fr().into(),
            Refusal::Unusable { words } => {
                format!("L'autorisation sur votre carte n'a pas pu être utilisée ({words}).")
            }
            Refusal::ConfirmationAsked => {
                "Votre banque vous demande de confirmer ce paiement.".into()
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn someones_words_end_as_a_sentence_once() {
        for (words, read) in [
            ("Flight cancelled", "Flight cancelled."),
            ("Flight cancelled.  ", "Flight cancelled."),
            ("Storm!", "Storm!"),
            ("Vol annulé…", "Vol annulé…"),
            ("Annulé !»", "Annulé !»"),
            ("He said \"cancelled.\"", "He said \"cancelled.\""),
            ("(see notice.)", "(see notice.)"),
            ("Weather (no crew)", "Weather (no crew)."),
            ("Because:", "Because."),
            ("欠航。", "欠航。"),
        ] {
            assert_eq!(closed(words), read, "{words}");
        }
        let rejected = Why::OperatorRejected {
            words: "Name mismatch.".into(),
        };
        assert_eq!(
            rejected.en(),
            "The operator could not confirm your upgrade: Name mismatch. Nothing is charged."
        );
        assert!(
            rejected
                .fr_in(chrono_tz::UTC)
                .contains(": Name mismatch. Rien"),
            "{}",
            rejected.fr_in(chrono_tz::UTC)
        );
    }

    /// One of each cause, so that every text is checked in both languages.
    fn every_cause() -> Vec<Why> {
        let declined = Refusal::Declined {
            reason: DeclineReason::InsufficientFunds,
        };
        let until = Utc.with_ymd_and_hms(2026, 3, 1, 14, 5, 0).unwrap();
        let mut all = vec![
            Why::StandbyEnded {
                reason: "outbid".into(),
                party: 2,
            },
            Why::OperatorCancelled {
                words: "storm".into(),
            },
            Why::WithdrawnFromSale,
            Why::CapacityCut,
            Why::OperatorRejected {
                words: "crew seat".into(),
            },
            Why::PaymentDeclined {
                refusal: declined.clone(),
                kept_until: Some(until),
            },
            Why::PaymentDeclined {
                refusal: Refusal::ConfirmationAsked,
                kept_until: None,
            },
            Why::ChargedInError,
        ];
        for &reason in OutcomeReason::ALL {
            all.push(Why::outcome(reason, 2));
        }
        for reason in [
            DeclineReason::Generic,
            DeclineReason::InsufficientFunds,
            DeclineReason::ExpiredCard,
            DeclineReason::IncorrectCvc,
            DeclineReason::IncorrectNumber,
            DeclineReason::AuthenticationFailed,
        ] {
            all.push(Why::PaymentDeclined {
                refusal: Refusal::Declined { reason },
                kept_until: None,
            });
        }
        for then in [
            AfterPurchase::BidStands,
            AfterPurchase::BidAgain,
            AfterPurchase::AnyEarlierWithdrawn,
            AfterPurchase::EarlierWithdrawn,
            AfterPurchase::BiddingClosed,
        ] {
            all.push(Why::PurchaseDeclined {
                refusal: Refusal::Unusable {
                    words: "expired".into(),
                },
                then,
            });
        }
        all
    }

    #[test]
    fn every_cause_reads_in_french_without_english_words() {
        for why in every_cause() {
            let fr = why.fr_in(chrono_tz::UTC);
            for english in [
                "Your ", "your ", "The ", " the ", "upgrade", "card", "Nothing", "charged", "bid",
                "hold", "offer", "operator", "bank",
            ] {
                assert!(!fr.contains(english), "{why:?} in French: {fr}");
            }
            // A reason with no French text would read as its code in both languages.
            assert_ne!(fr, why.en());
        }
    }

    #[test]
    fn a_cause_survives_being_stored() {
        for why in every_cause() {
            let stored = serde_json::to_string(&why).unwrap();
            assert_eq!(serde_json::from_str::<Why>(&stored).unwrap(), why);
        }
    }

    #[test]
    fn the_operators_words_and_the_deadline_are_kept_in_both_languages() {
        let cancelled = Why::OperatorCancelled {
            words: "storm".into(),
        };
        assert_eq!(
            cancelled.en(),
            "The operator cancelled this upgrade: storm."
        );
        assert_eq!(
            cancelled.fr_in(chrono_tz::UTC),
            "L'opérateur a annulé ce surclassement : storm."
        );
        let kept = Why::PaymentDeclined {
            refusal: Refusal::Declined {
                reason: DeclineReason::Generic,
            },
            kept_until: Some(Utc.with_ymd_and_hms(2026, 3, 1, 14, 5, 0).unwrap()),
        };
        // The deadline as the lot's pages write it: its day, its zone.
        assert!(
            kept.en().contains("until Sun 1 Mar 2026, 14:05 UTC: give"),
            "{}",
            kept.en()
        );
        let paris = local_time::zone("Europe/Paris");
        assert!(
            kept.en_in(paris)
                .contains("until Sun 1 Mar 2026, 15:05 CET: give"),
            "{}",
            kept.en_in(paris)
        );
        assert!(
            kept.fr_in(paris)
                .contains("gardé jusqu'au dim. 1er mars 2026 à 15:05 CET : donnez"),
            "{}",
            kept.fr_in(paris)
        );
        assert!(
            kept.fr_in(chrono_tz::UTC)
                .starts_with("Votre carte a été refusée."),
            "{}",
            kept.fr_in(chrono_tz::UTC)
        );
    }
}
