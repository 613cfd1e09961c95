//! Why a bid did not win (or lost its upgrade), by the reason the award or a later step
//! recorded, in the words a traveller reads: English and French side by side, so that a
//! reason added in one language is seen missing in the other.

/// In English: the service's own words (timelines, API, partners' webhooks, emails).
pub fn reason_text(reason: &str, party: i32) -> String {
    match reason {
        "below_reserve" => "Your offer was below the minimum for this upgrade.".into(),
        "above_maximum" => "Your offer was above the maximum for this upgrade.".into(),
        "outbid" => "Other offers were higher for the upgrades available.".into(),
        "party_does_not_fit" => format!("The upgrades left were fewer than your party of {party}."),
        "withdrawn" => "You withdrew your offer before bidding closed.".into(),
        "payment_failed" => "Your payment could not be completed, so the upgrade went to the next traveller, if there was one.".into(),
        "upgraded_elsewhere" => "You were upgraded on another offer for the same trip.".into(),
        "capacity_reduced" => "The operator has fewer upgrades than planned (a schedule or equipment change).".into(),
        "capacity_withdrawn" => "The operator withdrew this upgrade from sale.".into(),
        "rejected_by_operator" => "The operator could not confirm your upgrade.".into(),
        "lot_cancelled" => "The operator cancelled this upgrade.".into(),
        "upgrade_now_declined" => "Your bank declined the payment of the upgrade you bought now, and bidding had closed meanwhile.".into(),
        other => other.replace('_', " "),
    }
}

/// In French, for bookings in French (pages and emails).
pub fn reason_text_fr(reason: &str, party: i32) -> String {
    match reason {
        "below_reserve" => "Votre offre était inférieure au minimum de ce surclassement.".into(),
        "above_maximum" => "Votre offre dépassait le maximum de ce surclassement.".into(),
        "outbid" => "D'autres offres étaient plus élevées pour les places disponibles.".into(),
        "party_does_not_fit" => format!(
            "Il restait moins de surclassements que les {party} personnes de votre réservation."
        ),
        "withdrawn" => "Vous avez retiré votre offre avant la clôture.".into(),
        "payment_failed" => "Le paiement n'a pas pu aboutir ; le surclassement est passé au voyageur suivant, s'il y en avait un.".into(),
        "upgraded_elsewhere" => "Vous avez été surclassé sur une autre offre pour le même voyage.".into(),
        "capacity_reduced" => "L'opérateur a moins de surclassements que prévu (changement d'horaire ou d'appareil).".into(),
        "capacity_withdrawn" => "L'opérateur a retiré ce surclassement de la vente.".into(),
        "rejected_by_operator" => "L'opérateur n'a pas pu confirmer votre surclassement.".into(),
        "lot_cancelled" => "L'opérateur a annulé ce surclassement.".into(),
        "upgrade_now_declined" => "Votre banque a refusé le paiement de l'achat immédiat, et les offres étaient closes entre-temps.".into(),
        other => other.replace('_', " "),
    }
}
