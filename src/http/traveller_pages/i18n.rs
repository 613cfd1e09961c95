//! French and English for the traveller pages: the words, money and dates per language.
//! Money is formatted from integer minor units through `Decimal`'s digits, never a float.

use chrono::{DateTime, NaiveDate, Utc};
use chrono_tz::Tz;

use crate::local_time;
use crate::money::{Currency, Money, Writing};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lang {
    En,
    Fr,
}

impl Lang {
    pub fn code(self) -> &'static str {
        match self {
            Lang::En => "en",
            Lang::Fr => "fr",
        }
    }

    /// `fr`, `fr-CA`, `EN-gb`… to a language we speak.
    pub fn from_tag(tag: &str) -> Option<Self> {
        let primary = tag.trim().split(['-', '_']).next()?.to_ascii_lowercase();
        match primary.as_str() {
            "fr" => Some(Lang::Fr),
            "en" => Some(Lang::En),
            _ => None,
        }
    }

    /// The preferred language we speak in an `Accept-Language` header, by weight.
    pub fn from_accept_language(header: &str) -> Option<Self> {
        let mut tags: Vec<(u32, usize, &str)> = header
            .split(',')
            .enumerate()
            .filter_map(|(i, part)| {
                let mut bits = part.split(';');
                let tag = bits.next()?.trim();
                let q = bits
                    .find_map(|b| b.trim().strip_prefix("q="))
                    .map_or(1000, |q| {
                        (q.trim().parse::<f32>().unwrap_or(0.0) * 1000.0) as u32
                    });
                (q > 0).then_some((q, i, tag))
            })
            .collect();
        tags.sort_by(|a, b| b.0.cmp(&a.0).then(a.1.cmp(&b.1)));
        tags.into_iter().find_map(|(_, _, tag)| Self::from_tag(tag))
    }

    pub fn t(self) -> &'static Strings {
        match self {
            Lang::En => &EN,
            Lang::Fr => &FR,
        }
    }

    /// How this language writes amounts and dates.
    pub fn writing(self) -> Writing {
        match self {
            Lang::En => Writing::English,
            Lang::Fr => Writing::French,
        }
    }

    /// `€1,234.50` in English, `1 234,50 €` in French (narrow no-break space between thousands).
    pub fn money(self, minor: i64, currency: Currency) -> String {
        Money::from_minor(minor.max(0), currency)
            .map(|m| m.written(self.writing()))
            .unwrap_or_default()
    }

    /// A date and time in the lot's time zone: `Mon 23 Nov 2026, 19:45 CET`, as emails write it.
    pub fn datetime(self, at: DateTime<Utc>, tz: Tz) -> String {
        local_time::written(at, tz, self.writing())
    }

    /// A travel day with its weekday: `Thu 24 Dec 2026`, as emails write it.
    pub fn day(self, date: NaiveDate) -> String {
        local_time::day(date, self.writing())
    }

    /// When bidding on an offer begins, `when` written by [`Lang::datetime`].
    pub fn bidding_opens(self, when: &str) -> String {
        match self {
            Lang::En => format!("Bidding opens on {when}."),
            Lang::Fr => format!("Les enchères ouvrent le {when}."),
        }
    }

    /// Why an offer with a unit or two left takes no bid from this party on the pages.
    pub fn party_too_large(self, party: u32) -> String {
        match self {
            Lang::En => format!(
                "Fewer upgrades are left than the {party} people on your booking: this offer cannot be taken for all of you."
            ),
            Lang::Fr => format!(
                "Il reste moins de surclassements que les {party} personnes de votre réservation : cette offre ne peut pas être prise pour vous tous."
            ),
        }
    }

    /// Why erasure waits for a paid upgrade's travel day.
    pub fn erase_upgrade_ahead(self, day: NaiveDate) -> String {
        let day = self.day(day);
        match self {
            Lang::En => format!(
                "Nothing was erased: your upgrade on {day} is paid for, and until that day we keep your contact details to tell you if anything changes (if it were cancelled, you would be refunded). Ask again after your journey."
            ),
            Lang::Fr => format!(
                "Rien n'a été effacé : votre surclassement du {day} est payé, et jusqu'à ce jour nous gardons vos coordonnées pour vous prévenir s'il change (s'il était annulé, vous seriez remboursé). Demandez de nouveau après votre voyage."
            ),
        }
    }

    /// How long until `at`: `in 2 h 5 min`, `in 3 days`; `closed` once past.
    pub fn remaining(self, at: DateTime<Utc>, now: DateTime<Utc>) -> String {
        let left = at - now;
        if left.num_seconds() <= 0 {
            return self.t().closed_now.to_owned();
        }
        let (days, hours, minutes) = (
            left.num_days(),
            left.num_hours() % 24,
            (left.num_minutes() % 60).max(if left.num_hours() == 0 { 1 } else { 0 }),
        );
        let span = if days >= 2 {
            match self {
                Lang::En => format!("{days} days"),
                Lang::Fr => format!("{days} jours"),
            }
        } else if days == 1 {
            match self {
                Lang::En => format!("1 day {hours} h"),
                Lang::Fr => format!("1 jour {hours} h"),
            }
        } else if hours > 0 {
            format!("{hours} h {minutes} min")
        } else {
            format!("{minutes} min")
        };
        match self {
            Lang::En => format!("in {span}"),
            Lang::Fr => format!("dans {span}"),
        }
    }

    /// A class of service in words: `premium_economy` → `Premium economy`.
    pub fn class(self, class: &str) -> String {
        let known = match (self, class) {
            (Lang::En, "economy") => "Economy",
            (Lang::En, "premium_economy") => "Premium economy",
            (Lang::En, "business") => "Business",
            (Lang::En, "first") => "First",
            (Lang::En, "standard") => "Standard room",
            (Lang::En, "junior_suite") => "Junior suite",
            (Lang::En, "suite") => "Suite",
            (Lang::En, "compact") => "Compact car",
            (Lang::En, "convertible") => "Convertible",
            (Lang::Fr, "economy") => "Économie",
            (Lang::Fr, "premium_economy") => "Premium économie",
            (Lang::Fr, "business") => "Affaires",
            (Lang::Fr, "first") => "Première",
            (Lang::Fr, "standard") => "Chambre standard",
            (Lang::Fr, "junior_suite") => "Suite junior",
            (Lang::Fr, "suite") => "Suite",
            (Lang::Fr, "compact") => "Voiture compacte",
            (Lang::Fr, "convertible") => "Cabriolet",
            _ => "",
        };
        if !known.is_empty() {
            return known.to_owned();
        }
        let words = class.replace('_', " ");
        let mut chars = words.chars();
        chars
            .next()
            .map(|c| c.to_uppercase().collect::<String>() + chars.as_str())
            .unwrap_or_default()
    }

    /// Under the amount of a bid whose raise needs the card again above what it holds.
    pub fn card_holds_hint(self, total: &str, per_person: &str) -> String {
        match self {
            Lang::En => format!(
                "Your card is authorised for {total} ({per_person} per person): to offer more per person, enter your card again below."
            ),
            Lang::Fr => format!(
                "Votre carte est autorisée pour {total} ({per_person} par personne) : pour offrir davantage par personne, saisissez-la de nouveau ci-dessous."
            ),
        }
    }

    /// Why a bid did not win, in plain words.
    pub fn reason(self, reason: &str, party: i32) -> String {
        match self {
            Lang::En => crate::domain::outcome::reason_text(reason, party),
            Lang::Fr => crate::domain::outcome::reason_text_fr(reason, party),
        }
    }

    /// How winners were chosen.
    pub fn rule(self, policy: &str) -> &'static str {
        match (self, policy) {
            (Lang::En, p) => crate::services::award::rule_text(p),
            (Lang::Fr, "max_revenue") => {
                "La combinaison d'offres rapportant le plus au total l'a emporté ; chaque gagnant paie sa propre offre."
            }
            (Lang::Fr, "uniform_price") => {
                "Les offres par personne les plus élevées l'ont emporté ; chaque gagnant paie le même prix par personne, la plus haute offre non retenue (ou le minimum), jamais plus que sa propre offre."
            }
            (Lang::Fr, _) => {
                "Les offres par personne les plus élevées l'ont emporté, par réservation entière, dans l'ordre (niveau de fidélité puis offre la plus ancienne en cas d'égalité) ; chaque gagnant paie sa propre offre."
            }
        }
    }
}

/// Every fixed text of the pages, once per language (the compiler checks both are complete).
pub struct Strings {
    pub skip_to_content: &'static str,
    pub language: &'static str,
    pub sign_out: &'static str,
    pub sign_in_title: &'static str,
    pub sign_in_intro: &'static str,
    pub reference: &'static str,
    pub reference_hint: &'static str,
    pub last_name: &'static str,
    pub last_name_hint: &'static str,
    pub sign_in_button: &'static str,
    pub sign_in_missing: &'static str,
    pub sign_in_wrong: &'static str,
    pub sign_in_throttled: &'static str,
    pub which_company: &'static str,
    pub which_company_hint: &'static str,
    pub unknown_company: &'static str,
    pub link_expired: &'static str,
    pub signed_out: &'static str,
    pub session_expired: &'static str,
    pub form_expired: &'static str,
    pub problem: &'static str,
    pub offers_title: &'static str,
    pub booking: &'static str,
    pub people_one: &'static str,
    pub people_many: &'static str,
    pub no_offers: &'static str,
    pub from_class: &'static str,
    pub to_class: &'static str,
    pub per_person: &'static str,
    pub for_party: &'static str,
    pub bidding_closes: &'static str,
    pub bidding_closed: &'static str,
    pub closed_now: &'static str,
    pub taxes_included: &'static str,
    pub taxes_not_included: &'static str,
    pub bid_now: &'static str,
    pub bid_again: &'static str,
    pub see_bid: &'static str,
    pub back_to_offers: &'static str,
    pub your_offer: &'static str,
    pub amount_label: &'static str,
    pub slider_label: &'static str,
    pub total_label: &'static str,
    pub card_legend: &'static str,
    pub card_number: &'static str,
    pub card_expiry: &'static str,
    pub card_expiry_hint: &'static str,
    pub card_cvc: &'static str,
    pub card_simulated: &'static str,
    pub card_stripe_needs_js: &'static str,
    pub consent_charge: &'static str,
    pub place_bid: &'static str,
    pub charged_only_if: &'static str,
    pub bid_title: &'static str,
    pub status_title: &'static str,
    pub your_bid: &'static str,
    pub status: &'static str,
    pub deadline: &'static str,
    pub deadline_hint: &'static str,
    pub change_heading: &'static str,
    pub change_button: &'static str,
    pub withdraw_heading: &'static str,
    pub withdraw_hint: &'static str,
    pub withdraw_hint_saved: &'static str,
    pub data_heading: &'static str,
    pub data_hint: &'static str,
    pub data_download: &'static str,
    pub erase_heading: &'static str,
    pub erase_confirm: &'static str,
    pub erase_button: &'static str,
    pub erase_unconfirmed: &'static str,
    pub erase_in_play: &'static str,
    pub erased_heading: &'static str,
    pub erased_text: &'static str,
    pub withdraw_button: &'static str,
    pub fix_card_heading: &'static str,
    pub fix_card_button: &'static str,
    pub timeline: &'static str,
    pub outcome: &'static str,
    pub how_chosen: &'static str,
    pub reload_hint: &'static str,
    pub not_found_title: &'static str,
    pub not_found: &'static str,
    pub error_title: &'static str,
    pub error_text: &'static str,
}

pub static EN: Strings = Strings {
    skip_to_content: "Skip to content",
    language: "Language",
    sign_out: "Sign out",
    sign_in_title: "Bid for an upgrade",
    sign_in_intro: "Enter your booking reference and last name as on your ticket or confirmation. No account or password is needed.",
    reference: "Booking reference",
    reference_hint: "For example AU7K2P. Spaces and capitals do not matter.",
    last_name: "Last name",
    last_name_hint: "As booked. Accents and apostrophes do not matter.",
    sign_in_button: "See my upgrade offers",
    sign_in_missing: "Enter both your booking reference and your last name.",
    sign_in_wrong: "No booking matches this reference and last name. Check both as printed on your ticket or confirmation, or use the link in your email.",
    sign_in_throttled: "Too many attempts. Wait a few minutes and try again, or use the link in your email.",
    which_company: "Which company did you book with?",
    which_company_hint: "This reference and last name match bookings with more than one company.",
    unknown_company: "This link names a company that does not sell upgrades here. Sign in with your booking reference and last name alone, or use the link in your email.",
    link_expired: "This link has expired or is not valid. Sign in with your booking reference and last name instead.",
    signed_out: "You are signed out.",
    session_expired: "Your session has ended. Sign in again with your booking reference and last name.",
    form_expired: "This form had expired, so nothing was changed. Please try again.",
    problem: "There is a problem",
    offers_title: "Your upgrade offers",
    booking: "Booking",
    people_one: "person",
    people_many: "people",
    no_offers: "There is no upgrade to bid on for this booking right now.",
    from_class: "From",
    to_class: "To",
    per_person: "Per person",
    for_party: "For your party",
    bidding_closes: "Bidding closes",
    bidding_closed: "Bidding closed",
    closed_now: "closed",
    taxes_included: "Taxes included.",
    taxes_not_included: "Taxes not included.",
    bid_now: "Make an offer",
    bid_again: "Bid again",
    see_bid: "See or change my bid",
    back_to_offers: "All my offers",
    your_offer: "Your offer per person",
    amount_label: "Amount per person",
    slider_label: "Choose with the slider",
    total_label: "Total for your party",
    card_legend: "Your card",
    card_number: "Card number",
    card_expiry: "Expiry date",
    card_expiry_hint: "MM/YY, for example 12/30.",
    card_cvc: "Security code",
    card_simulated: "Test payments: no real card is charged. Use 4242 4242 4242 4242, any future date and any 3 digits.",
    card_stripe_needs_js: "The secure card form needs JavaScript. Please turn it on to bid.",
    consent_charge: "I agree that my card is charged later, without me present, only if the upgrade is confirmed.",
    place_bid: "Place my bid",
    charged_only_if: "Your card is charged only if the upgrade is confirmed. You can change or withdraw your bid until bidding closes.",
    bid_title: "Your offer",
    status_title: "Your bid",
    your_bid: "Your bid",
    status: "Status",
    deadline: "Change or withdraw until",
    deadline_hint: "The server's clock decides: no change is accepted after this time.",
    change_heading: "Change your offer",
    change_button: "Change my bid",
    withdraw_heading: "Withdraw",
    withdraw_hint: "Nothing is charged and the hold on your card is released. You can bid again until bidding closes.",
    withdraw_hint_saved: "Nothing is charged and your saved card will not be used. You can bid again until bidding closes.",
    data_heading: "Your data",
    data_hint: "Download everything we hold about this booking, or ask us to erase your name and contact details. Payment records stay, without your name, as the law requires.",
    data_download: "Download my data (JSON)",
    erase_heading: "Erase my data",
    erase_confirm: "I understand that this booking will no longer open with its reference and name.",
    erase_button: "Erase my personal data",
    erase_unconfirmed: "Nothing was erased: tick the box to confirm, then press the button again.",
    erase_in_play: "Nothing was erased: an offer on this booking is still in play. Withdraw it, or wait for the outcome, then ask again.",
    erased_heading: "Your data is erased",
    erased_text: "Your name and contact details are erased from this booking and you are signed out. Payment records are kept without your name, as the law requires.",
    withdraw_button: "Withdraw my bid",
    fix_card_heading: "Give another card to keep your upgrade",
    fix_card_button: "Pay with this card",
    timeline: "What happened",
    outcome: "Result",
    how_chosen: "How winners were chosen",
    reload_hint: "Reload this page at any time to see the latest.",
    not_found_title: "Not found",
    not_found: "There is no such page for your booking.",
    error_title: "Something went wrong",
    error_text: "Nothing was changed. Please try again in a moment.",
};

pub static FR: Strings = Strings {
    skip_to_content: "Aller au contenu",
    language: "Langue",
    sign_out: "Se déconnecter",
    sign_in_title: "Enchérir pour un surclassement",
    sign_in_intro: "Saisissez votre référence de réservation et votre nom comme sur votre billet ou votre confirmation. Aucun compte ni mot de passe n'est nécessaire.",
    reference: "Référence de réservation",
    reference_hint: "Par exemple AU7K2P. Espaces et majuscules sans importance.",
    last_name: "Nom",
    last_name_hint: "Comme à la réservation. Accents et apostrophes sans importance.",
    sign_in_button: "Voir mes offres de surclassement",
    sign_in_missing: "Saisissez votre référence de réservation et votre nom.",
    sign_in_wrong: "Aucune réservation ne correspond à cette référence et ce nom. Vérifiez-les sur votre billet ou votre confirmation, ou utilisez le lien reçu par e-mail.",
    sign_in_throttled: "Trop de tentatives. Patientez quelques minutes puis réessayez, ou utilisez le lien reçu par e-mail.",
    which_company: "Auprès de quelle compagnie avez-vous réservé ?",
    which_company_hint: "Cette référence et ce nom correspondent à des réservations auprès de plusieurs compagnies.",
    unknown_company: "Ce lien nomme une compagnie qui ne vend pas de surclassements ici. Connectez-vous avec votre seule référence de réservation et votre nom, ou utilisez le lien reçu par e-mail.",
    link_expired: "Ce lien a expiré ou n'est pas valide. Connectez-vous avec votre référence de réservation et votre nom.",
    signed_out: "Vous êtes déconnecté.",
    session_expired: "Votre session a pris fin. Reconnectez-vous avec votre référence de réservation et votre nom.",
    form_expired: "Ce formulaire avait expiré : rien n'a été modifié. Veuillez réessayer.",
    problem: "Il y a un problème",
    offers_title: "Vos offres de surclassement",
    booking: "Réservation",
    people_one: "personne",
    people_many: "personnes",
    no_offers: "Aucun surclassement n'est ouvert aux enchères pour cette réservation pour le moment.",
    from_class: "De",
    to_class: "À",
    per_person: "Par personne",
    for_party: "Pour votre groupe",
    bidding_closes: "Clôture des enchères",
    bidding_closed: "Enchères closes",
    closed_now: "clos",
    taxes_included: "Taxes comprises.",
    taxes_not_included: "Taxes non comprises.",
    bid_now: "Faire une offre",
    bid_again: "Enchérir de nouveau",
    see_bid: "Voir ou modifier mon offre",
    back_to_offers: "Toutes mes offres",
    your_offer: "Votre offre par personne",
    amount_label: "Montant par personne",
    slider_label: "Choisir avec le curseur",
    total_label: "Total pour votre groupe",
    card_legend: "Votre carte",
    card_number: "Numéro de carte",
    card_expiry: "Date d'expiration",
    card_expiry_hint: "MM/AA, par exemple 12/30.",
    card_cvc: "Cryptogramme",
    card_simulated: "Paiements de test : aucune vraie carte n'est débitée. Utilisez 4242 4242 4242 4242, une date future et 3 chiffres.",
    card_stripe_needs_js: "Le formulaire de carte sécurisé nécessite JavaScript. Activez-le pour enchérir.",
    consent_charge: "J'accepte que ma carte soit débitée plus tard, en mon absence, uniquement si le surclassement est confirmé.",
    place_bid: "Enchérir",
    charged_only_if: "Votre carte n'est débitée que si le surclassement est confirmé. Vous pouvez modifier ou retirer votre offre jusqu'à la clôture.",
    bid_title: "Votre offre",
    status_title: "Votre offre",
    your_bid: "Votre offre",
    status: "État",
    deadline: "Modifiable ou retirable jusqu'au",
    deadline_hint: "L'horloge du serveur fait foi : aucune modification n'est acceptée après cette heure.",
    change_heading: "Modifier votre offre",
    change_button: "Modifier mon offre",
    withdraw_heading: "Retirer",
    withdraw_hint: "Rien n'est débité et l'autorisation sur votre carte est levée. Vous pouvez enchérir de nouveau jusqu'à la clôture.",
    withdraw_hint_saved: "Rien n'est débité et votre carte enregistrée ne sera pas utilisée. Vous pouvez enchérir de nouveau jusqu'à la clôture.",
    data_heading: "Vos données",
    data_hint: "Téléchargez tout ce que nous détenons sur cette réservation, ou demandez l'effacement de votre nom et de vos coordonnées. Les traces de paiement restent, sans votre nom, comme la loi l'exige.",
    data_download: "Télécharger mes données (JSON)",
    erase_heading: "Effacer mes données",
    erase_confirm: "Je comprends que cette réservation ne s'ouvrira plus avec sa référence et mon nom.",
    erase_button: "Effacer mes données personnelles",
    erase_unconfirmed: "Rien n'a été effacé : cochez la case pour confirmer, puis appuyez de nouveau sur le bouton.",
    erase_in_play: "Rien n'a été effacé : une offre sur cette réservation est encore en jeu. Retirez-la ou attendez le résultat, puis demandez de nouveau.",
    erased_heading: "Vos données sont effacées",
    erased_text: "Votre nom et vos coordonnées sont effacés de cette réservation et vous êtes déconnecté. Les traces de paiement sont gardées sans votre nom, comme la loi l'exige.",
    withdraw_button: "Retirer mon offre",
    fix_card_heading: "Donnez une autre carte pour garder votre surclassement",
    fix_card_button: "Payer avec cette carte",
    timeline: "Historique",
    outcome: "Résultat",
    how_chosen: "Comment les gagnants ont été choisis",
    reload_hint: "Rechargez cette page à tout moment pour voir les dernières nouvelles.",
    not_found_title: "Introuvable",
    not_found: "Cette page n'existe pas pour votre réservation.",
    error_title: "Un problème est survenu",
    error_text: "Rien n'a été modifié. Veuillez réessayer dans un instant.",
};

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn eur() -> Currency {
        Currency::parse("EUR").unwrap()
    }

    #[test]
    fn money_reads_as_each_language_writes_it() {
        assert_eq!(Lang::En.money(123450, eur()), "€1,234.50");
        assert_eq!(Lang::Fr.money(123450, eur()), "1\u{202f}234,50\u{a0}€");
        assert_eq!(Lang::En.money(5, eur()), "€0.05");
        assert_eq!(
            Lang::Fr.money(100_000_000, eur()),
            "1\u{202f}000\u{202f}000,00\u{a0}€"
        );
        let jpy = Currency::parse("JPY").unwrap();
        assert_eq!(Lang::En.money(9000, jpy), "¥9,000");
        let chf = Currency::parse("CHF").unwrap();
        assert_eq!(Lang::Fr.money(25000, chf), "250,00\u{a0}CHF");
    }

    #[test]
    fn times_are_shown_in_the_lots_time_zone() {
        let at = Utc.with_ymd_and_hms(2026, 11, 23, 18, 45, 0).unwrap();
        let paris: Tz = "Europe/Paris".parse().unwrap();
        assert_eq!(Lang::En.datetime(at, paris), "Mon 23 Nov 2026, 19:45 CET");
        assert_eq!(
            Lang::Fr.datetime(at, paris),
            "lun. 23 nov. 2026 à 19:45 CET"
        );
        let now = at - chrono::Duration::minutes(135);
        assert_eq!(Lang::En.remaining(at, now), "in 2 h 15 min");
        assert_eq!(Lang::Fr.remaining(at, now), "dans 2 h 15 min");
    }

    #[test]
    fn the_browsers_preferred_language_wins_by_weight() {
        assert_eq!(
            Lang::from_accept_language("fr-FR,fr;q=0.9,en;q=0.8"),
            Some(Lang::Fr)
        );
        assert_eq!(
            Lang::from_accept_language("de-DE,en;q=0.5,fr;q=0.7"),
            Some(Lang::Fr)
        );
        assert_eq!(Lang::from_accept_language("en-GB,en;q=0.9"), Some(Lang::En));
        assert_eq!(Lang::from_accept_language("de, it"), None);
    }
}
