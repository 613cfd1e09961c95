//! Money: `Decimal` amounts with an ISO 4217 currency at the edges, integer minor units inside.
//!
//! Parse, don't validate: a `Money` can only be built from an amount that fits its currency
//! (no more decimals than the currency has, not negative, within `i64` minor units), so code
//! holding one never re-checks it. The database and the payment provider see `minor()`.

use std::fmt;
use std::str::FromStr;

use rust_decimal::Decimal;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MoneyError {
    #[error("'{0}' is not an ISO 4217 currency code usable for payments")]
    UnknownCurrency(String),
    #[error("'{0}' is not a decimal amount such as \"125.00\"")]
    NotANumber(String),
    #[error("'{amount}' has more decimals than {currency} allows ({exponent})")]
    TooManyDecimals {
        amount: String,
        currency: &'static str,
        exponent: u32,
    },
    #[error("'{0}' is negative; amounts are zero or more")]
    Negative(String),
    #[error("'{0}' is too large")]
    TooLarge(String),
}

/// An ISO 4217 currency that has a minor unit (so not XAU, XDR, …).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Currency(iso_currency::Currency);

impl Currency {
    pub fn parse(code: &str) -> Result<Self, MoneyError> {
        let unknown = || MoneyError::UnknownCurrency(code.to_owned());
        // Codes are upper case by the standard; accept "eur" too rather than fail a partner.
        let upper = code.trim().to_ascii_uppercase();
        let currency = iso_currency::Currency::from_code(&upper).ok_or_else(unknown)?;
        currency.exponent().ok_or_else(unknown)?;
        Ok(Self(currency))
    }

    pub fn code(self) -> &'static str {
        self.0.code()
    }

    /// Number of decimals of the minor unit: 2 for EUR, 0 for JPY, 3 for KWD.
    pub fn exponent(self) -> u32 {
        // `parse` only admits currencies that have an exponent.
        u32::from(self.0.exponent().unwrap_or(0))
    }
}

impl fmt::Display for Currency {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.code())
    }
}

impl FromStr for Currency {
    type Err = MoneyError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

impl Serialize for Currency {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.code())
    }
}

impl<'de> Deserialize<'de> for Currency {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let code = String::deserialize(d)?;
        Self::parse(&code).map_err(serde::de::Error::custom)
    }
}

/// A non-negative amount in a currency, held as integer minor units.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Money {
    minor: i64,
    currency: Currency,
}

impl Money {
    /// Builds from minor units read back from our own store or the provider.
    pub fn from_minor(minor: i64, currency: Currency) -> Result<Self, MoneyError> {
        if minor < 0 {
            return Err(MoneyError::Negative(minor.to_string()));
        }
        Ok(Self { minor, currency })
    }

    /// Parses a decimal string such as `"125.00"` or `"125"`; never through a float.
    pub fn parse(amount: &str, currency: Currency) -> Result<Self, MoneyError> {
        let trimmed = amount.trim();
        // Decimal::from_str accepts forms we do not want in an API ("1e3", "_"); keep to digits.
        let well_formed = !trimmed.is_empty()
            && trimmed
                .strip_prefix('-')
                .unwrap_or(trimmed)
                .chars()
                .all(|c| c.is_ascii_digit() || c == '.')
            && trimmed.matches('.').count() <= 1
            && !trimmed.ends_with('.')
            && !trimmed.starts_with('.');
        if !well_formed {
            return Err(MoneyError::NotANumber(amount.to_owned()));
        }
        let value =
            Decimal::from_str(trimmed).map_err(|_| MoneyError::TooLarge(amount.to_owned()))?;
        Self::from_decimal(value, currency).map_err(|e| match e {
            MoneyError::TooManyDecimals {
                currency, exponent, ..
            } => MoneyError::TooManyDecimals {
                amount: amount.to_owned(),
                currency,
                exponent,
            },
            other => other,
        })
    }

    pub fn from_decimal(value: Decimal, currency: Currency) -> Result<Self, MoneyError> {
        let exponent = currency.exponent();
        if value.is_sign_negative() && !value.is_zero() {
            return Err(MoneyError::Negative(value.to_string()));
        }
        let normalized = value.normalize();
        if normalized.scale() > exponent {
            return Err(MoneyError::TooManyDecimals {
                amount: value.to_string(),
                currency: currency.code(),
                exponent,
            });
        }
        let scaled = normalized
            .checked_mul(Decimal::from(10i64.pow(exponent)))
            .ok_or_else(|| MoneyError::TooLarge(value.to_string()))?;
        let minor = i64::try_from(scaled).map_err(|_| MoneyError::TooLarge(value.to_string()))?;
        Ok(Self { minor, currency })
    }

    pub fn zero(currency: Currency) -> Self {
        Self { minor: 0, currency }
    }

    pub fn minor(self) -> i64 {
        self.minor
    }

    pub fn currency(self) -> Currency {
        self.currency
    }

    /// The amount with exactly the currency's number of decimals ("125.00", "9000" for JPY).
    pub fn to_decimal(self) -> Decimal {
        Decimal::new(self.minor, self.currency.exponent())
    }

    /// `self × n`, e.g. a per-person bid times the party size.
    pub fn times(self, n: u32) -> Result<Self, MoneyError> {
        let minor = self
            .minor
            .checked_mul(i64::from(n))
            .ok_or_else(|| MoneyError::TooLarge(format!("{self} × {n}")))?;
        Ok(Self { minor, ..self })
    }
}

/// How a language writes an amount or a date for a reader (pages and emails).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Writing {
    /// `€1,234.50`
    English,
    /// `1 234,50 €`, a narrow no-break space between thousands, a no-break space before the sign.
    French,
}

impl Money {
    /// The amount as `writing` writes it, with the currency's sign where it has a common one
    /// and its code otherwise.
    pub fn written(self, writing: Writing) -> String {
        let digits = self.to_decimal().to_string();
        let (int, frac) = digits.split_once('.').unwrap_or((&digits, ""));
        let (sep, point) = match writing {
            Writing::English => (",", "."),
            Writing::French => ("\u{202f}", ","),
        };
        let mut grouped = String::new();
        for (i, c) in int.chars().enumerate() {
            if i > 0 && (int.len() - i) % 3 == 0 {
                grouped.push_str(sep);
            }
            grouped.push(c);
        }
        let number = if frac.is_empty() {
            grouped
        } else {
            format!("{grouped}{point}{frac}")
        };
        let code = self.currency.code();
        match (writing, symbol(code)) {
            (Writing::English, Some(s)) => format!("{s}{number}"),
            (Writing::French, Some(s)) if code == "USD" => format!("{number}\u{a0}{s}US"),
            (Writing::French, Some(s)) => format!("{number}\u{a0}{s}"),
            (_, None) => format!("{number}\u{a0}{code}"),
        }
    }
}

fn symbol(code: &str) -> Option<&'static str> {
    match code {
        "EUR" => Some("€"),
        "GBP" => Some("£"),
        "USD" => Some("$"),
        "JPY" => Some("¥"),
        _ => None,
    }
}

impl fmt::Display for Money {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.to_decimal())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn eur() -> Currency {
        Currency::parse("EUR").unwrap()
    }

    #[test]
    fn amounts_round_trip_through_minor_units_without_floats() {
        let m = Money::parse("125.00", eur()).unwrap();
        assert_eq!(m.minor(), 12500);
        assert_eq!(m.to_string(), "125.00");
        assert_eq!(Money::parse("125", eur()).unwrap().to_string(), "125.00");
        assert_eq!(Money::parse("0.1", eur()).unwrap().minor(), 10);
    }

    #[test]
    fn currencies_carry_their_own_exponent() {
        let jpy = Currency::parse("jpy").unwrap();
        assert_eq!(jpy.exponent(), 0);
        assert_eq!(Money::parse("9000", jpy).unwrap().to_string(), "9000");
        assert!(matches!(
            Money::parse("9000.5", jpy),
            Err(MoneyError::TooManyDecimals { .. })
        ));
        let kwd = Currency::parse("KWD").unwrap();
        assert_eq!(Money::parse("1.234", kwd).unwrap().minor(), 1234);
    }

    #[test]
    fn bad_amounts_are_refused_with_a_reason() {
        assert!(matches!(
            Money::parse("12.345", eur()),
            Err(MoneyError::TooManyDecimals { .. })
        ));
        assert!(matches!(
            Money::parse("-1.00", eur()),
            Err(MoneyError::Negative(_))
        ));
        for bad in ["", "abc", "1e3", "1.2.3", ".5", "5.", "1,00", " "] {
            assert!(
                matches!(Money::parse(bad, eur()), Err(MoneyError::NotANumber(_))),
                "{bad}"
            );
        }
        assert!(matches!(
            Money::parse("99999999999999999999", eur()),
            Err(MoneyError::TooLarge(_))
        ));
        assert!(Currency::parse("XXX").is_err());
        assert!(Currency::parse("EURO").is_err());
    }

    #[test]
    fn trailing_zeros_beyond_the_exponent_are_harmless() {
        assert_eq!(Money::parse("10.500", eur()).unwrap().minor(), 1050);
    }
}
