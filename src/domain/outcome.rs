//! Why a bid did not win (or lost its upgrade), by the reason the award or a later step
//! recorded, in the words a traveller reads: English and French side by side, so that a
//! reason added in one language is seen missing in the other.

use super::lot::string_enum;
use crate::matching::LoseReason;

string_enum!(
    /// The reason recorded on a bid that did not win or lost its upgrade (`outcome_reason`):
    /// the award's (the matching core's `LoseReason`) and those of the steps after it.
    OutcomeReason {
        BelowReserve = "below_reserve",
        AboveMaximum = "above_maximum",
        Outbid = "outbid",
        PartyDoesNotFit = "party_does_not_fit",
        Withdrawn = "withdrawn",
        PaymentFailed = "payment_failed",
        UpgradedElsewhere = "upgraded_elsewhere",
        CapacityReduced = "capacity_reduced",
        CapacityWithdrawn = "capacity_withdrawn",
        RejectedByOperator = "rejected_by_operator",
        LotCancelled = "lot_cancelled",
        UpgradeNowDeclined = "upgrade_now_declined",
        NoRoomLeft = "no_room_left",
    }
);

impl OutcomeReason {
    /// In English: the service's own words (timelines, API, partners' webhooks, emails).
    pub fn en(self, party: i32) -> String {
        match self {
            OutcomeReason::BelowReserve => "Your offer was below the minimum for this upgrade.".into(),
            OutcomeReason::AboveMaximum => "Your offer was above the maximum for this upgrade.".into(),
            OutcomeReason::Outbid => "Other offers were higher for the upgrades available.".into(),
            OutcomeReason::PartyDoesNotFit => format!("The upgrades left were fewer than your party of {party}."),
            OutcomeReason::Withdrawn => "You withdrew your offer before bidding closed.".into(),
            OutcomeReason::PaymentFailed => "Your payment could not be completed, so the upgrade went to the next traveller, if there was one.".into(),
            OutcomeReason::UpgradedElsewhere => "You were upgraded on another offer for the same trip.".into(),
            OutcomeReason::CapacityReduced => "The operator has fewer upgrades than planned (a schedule or equipment change).".into(),
            OutcomeReason::CapacityWithdrawn => "The operator withdrew this upgrade from sale.".into(),
            OutcomeReason::RejectedByOperator => "The operator could not confirm your upgrade.".into(),
            OutcomeReason::LotCancelled => "The operator cancelled this upgrade.".into(),
            OutcomeReason::UpgradeNowDeclined => "Your bank declined the payment of the upgrade you bought now, and bidding had closed meanwhile.".into(),
            OutcomeReason::NoRoomLeft if party <= 1 => "No upgrade is left (the last ones were bought outright, or the operator now has fewer), so your offer can no longer win. If more become available while bidding is open, you can bid again.".into(),
            OutcomeReason::NoRoomLeft => format!("Not enough upgrades are left for your party of {party} (some were bought outright, or the operator now has fewer), so your offer can no longer win. If more become available while bidding is open, you can bid again."),
        }
    }

    /// In French, for bookings in French (pages and emails).
    pub fn fr(self, party: i32) -> String {
        match self {
            OutcomeReason::BelowReserve => "Votre offre était inférieure au minimum de ce surclassement.".into(),
            OutcomeReason::AboveMaximum => "Votre offre dépassait le maximum de ce surclassement.".into(),
            OutcomeReason::Outbid => "D'autres offres étaient plus élevées pour les places disponibles.".into(),
            OutcomeReason::PartyDoesNotFit => format!(
                "Il restait moins de surclassements que les {party} personnes de votre réservation."
            ),
            OutcomeReason::Withdrawn => "Vous avez retiré votre offre avant la clôture.".into(),
            OutcomeReason::PaymentFailed => "Le paiement n'a pas pu aboutir ; le surclassement est passé au voyageur suivant, s'il y en avait un.".into(),
            OutcomeReason::UpgradedElsewhere => "Vous avez été surclassé sur une autre offre pour le même voyage.".into(),
            OutcomeReason::CapacityReduced => "L'opérateur a moins de surclassements que prévu (changement d'horaire ou d'appareil).".into(),
            OutcomeReason::CapacityWithdrawn => "L'opérateur a retiré ce surclassement de la vente.".into(),
            OutcomeReason::RejectedByOperator => "L'opérateur n'a pas pu confirmer votre surclassement.".into(),
            OutcomeReason::LotCancelled => "L'opérateur a annulé ce surclassement.".into(),
            OutcomeReason::UpgradeNowDeclined => "Votre banque a refusé le paiement de l'achat immédiat, et les offres étaient closes entre-temps.".into(),
            OutcomeReason::NoRoomLeft if party <= 1 => "Il ne reste plus de surclassement (les derniers ont été achetés directement, ou l'opérateur en a désormais moins) : votre offre ne peut plus gagner. Si d'autres se libèrent pendant que les offres sont ouvertes, vous pourrez refaire une offre.".into(),
            OutcomeReason::NoRoomLeft => format!("Il ne reste plus assez de surclassements pour les {party} personnes de votre réservation (certains ont été achetés directement, ou l'opérateur en a désormais moins) : votre offre ne peut plus gagner. Si d'autres se libèrent pendant que les offres sont ouvertes, vous pourrez refaire une offre."),
        }
    }
}

/// The award's reasons are outcomes under the same names (the compiler sees each one mapped).
impl From<LoseReason> for OutcomeReason {
    fn from(lost: LoseReason) -> Self {
        match lost {
            LoseReason::BelowReserve => OutcomeReason::BelowReserve,
            LoseReason::AboveMaximum => OutcomeReason::AboveMaximum,
            LoseReason::Outbid => OutcomeReason::Outbid,
            LoseReason::PartyDoesNotFit => OutcomeReason::PartyDoesNotFit,
            LoseReason::Withdrawn => OutcomeReason::Withdrawn,
            LoseReason::PaymentFailed => OutcomeReason::PaymentFailed,
            LoseReason::UpgradedElsewhere => OutcomeReason::UpgradedElsewhere,
        }
    }
}

/// A recorded reason in English; one this release does not know reads as its words.
pub fn reason_text(reason: &str, party: i32) -> String {
    OutcomeReason::parse(reason).map_or_else(|_| reason.replace('_', " "), |r| r.en(party))
}

/// A recorded reason in French; one this release does not know reads as its words.
pub fn reason_text_fr(reason: &str, party: i32) -> String {
    OutcomeReason::parse(reason).map_or_else(|_| reason.replace('_', " "), |r| r.fr(party))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reasons_keep_the_spellings_stored_on_bids() {
        let spelled: Vec<_> = OutcomeReason::ALL.iter().map(|r| r.as_str()).collect();
        assert_eq!(
            spelled,
            [
                "below_reserve",
                "above_maximum",
                "outbid",
                "party_does_not_fit",
                "withdrawn",
                "payment_failed",
                "upgraded_elsewhere",
                "capacity_reduced",
                "capacity_withdrawn",
                "rejected_by_operator",
                "lot_cancelled",
                "upgrade_now_declined",
                "no_room_left",
            ]
        );
    }

    #[test]
    fn the_awards_reasons_are_outcomes_of_the_same_name() {
        for lost in LoseReason::ALL {
            assert_eq!(OutcomeReason::from(lost).as_str(), lost.as_str());
        }
    }

    #[test]
    fn a_reason_this_release_does_not_know_reads_as_its_words() {
        assert_eq!(reason_text("meteor_strike", 1), "meteor strike");
        assert_eq!(reason_text_fr("meteor_strike", 1), "meteor strike");
        assert_eq!(
            reason_text("party_does_not_fit", 3),
            "The upgrades left were fewer than your party of 3."
        );
        assert!(reason_text_fr("party_does_not_fit", 3).contains("les 3 personnes"));
    }
}
