//! How a traveller is recognised without an account: booking reference + last name.
//!
//! Travellers type what is on their ticket, on a phone, often with a different keyboard than
//! the airline's system used: "Müller" must find "MULLER", "O'Neil" must find "ONEIL", and
//! "abc 123" must find "ABC123". Both sides are reduced to a key of ASCII letters and digits.

/// Key for a last name: transliterated to ASCII, letters and digits only, upper case.
pub fn last_name_key(name: &str) -> String {
    key(name)
}

/// Key for a booking reference (PNR, confirmation number): same reduction as names.
pub fn reference_key(reference: &str) -> String {
    key(reference)
}

fn key(text: &str) -> String {
    deunicode::deunicode(text)
        .chars()
        .filter(char::is_ascii_alphanumeric)
        .map(|c| c.to_ascii_uppercase())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_match_across_accents_case_spaces_and_apostrophes() {
        assert_eq!(last_name_key("Müller"), last_name_key("MULLER"));
        assert_eq!(last_name_key("O'Neil"), "ONEIL");
        assert_eq!(last_name_key("  de la Peña "), "DELAPENA");
        assert_eq!(last_name_key("Zoë-Ann"), "ZOEANN");
    }

    #[test]
    fn references_ignore_case_and_separators() {
        assert_eq!(reference_key("abc 123"), "ABC123");
        assert_eq!(reference_key("AB-C1-23"), "ABC123");
    }
}
