//! The card a form sends: the local card form's number, expiry and security code (simulated
//! gateway, or Stripe test mode), or a payment method id made by Stripe's Payment Element.

use std::collections::HashMap;

use crate::payments::CardSource;

use super::i18n::Lang;

/// What was wrong with the card fields, in the traveller's language.
#[derive(Debug)]
pub struct CardFieldError(pub &'static str);

/// `None` when the form carried no card at all (the service then says one is needed, or a
/// change does without).
pub fn from_form(
    form: &HashMap<String, String>,
    lang: Lang,
) -> Result<Option<CardSource>, CardFieldError> {
    let field = |name: &str| form.get(name).map(|v| v.trim()).filter(|v| !v.is_empty());
    if let Some(pm) = field("payment_method") {
        return Ok(Some(CardSource::payment_method(pm)));
    }
    let (number, expiry, cvc) = (
        field("card_number"),
        field("card_expiry"),
        field("card_cvc"),
    );
    if number.is_none() && expiry.is_none() && cvc.is_none() {
        return Ok(None);
    }
    let fr = lang == Lang::Fr;
    let number = number.ok_or(CardFieldError(if fr {
        "Saisissez le numéro de votre carte."
    } else {
        "Enter your card number."
    }))?;
    let digits = number.chars().filter(|c| !c.is_whitespace() && *c != '-');
    if digits.clone().count() < 12 || !digits.clone().all(|c| c.is_ascii_digit()) {
        return Err(CardFieldError(if fr {
            "Le numéro de carte doit comporter de 12 à 19 chiffres."
        } else {
            "The card number should be 12 to 19 digits."
        }));
    }
    let (month, year) = expiry.and_then(parse_expiry).ok_or(CardFieldError(if fr {
        "Saisissez la date d'expiration au format MM/AA, par exemple 12/30."
    } else {
        "Enter the expiry date as MM/YY, for example 12/30."
    }))?;
    let cvc = cvc
        .filter(|c| (3..=4).contains(&c.len()) && c.chars().all(|d| d.is_ascii_digit()))
        .ok_or(CardFieldError(if fr {
            "Saisissez les 3 ou 4 chiffres du cryptogramme au dos de la carte."
        } else {
            "Enter the 3 or 4 digit security code from the back of the card."
        }))?;
    Ok(Some(CardSource::card(number, month, year, cvc)))
}

/// `12/30`, `12 / 2030`, `1230` → (12, 2030).
fn parse_expiry(text: &str) -> Option<(u32, u32)> {
    let digits: String = text.chars().filter(char::is_ascii_digit).collect();
    let (m, y) = match (text.contains('/'), digits.len()) {
        (true, _) => {
            let (m, y) = text.split_once('/')?;
            (m.trim().parse().ok()?, y.trim().parse::<u32>().ok()?)
        }
        (false, 4) => (digits[..2].parse().ok()?, digits[2..].parse().ok()?),
        (false, 6) => (digits[..2].parse().ok()?, digits[2..].parse().ok()?),
        _ => return None,
    };
    let year = if y < 100 { 2000 + y } else { y };
    ((1..=12).contains(&m) && (2000..2100).contains(&year)).then_some((m, year))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expiry_dates_are_read_as_people_type_them() {
        assert_eq!(parse_expiry("12/30"), Some((12, 2030)));
        assert_eq!(parse_expiry(" 01 / 2031"), Some((1, 2031)));
        assert_eq!(parse_expiry("1230"), Some((12, 2030)));
        assert_eq!(parse_expiry("13/30"), None);
        assert_eq!(parse_expiry("soon"), None);
    }

    #[test]
    fn a_form_without_card_fields_has_no_card() {
        let form = HashMap::from([("amount".to_owned(), "10".to_owned())]);
        assert!(from_form(&form, Lang::En).unwrap().is_none());
        let half = HashMap::from([("card_number".to_owned(), "4242 4242 4242 4242".to_owned())]);
        assert!(from_form(&half, Lang::En).is_err());
    }
}
