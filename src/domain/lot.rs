//! A lot: one auction for an upgrade on one resource (a flight on a date, a property and
//! night, a rental branch and day), and the rules it runs by.

use chrono::{DateTime, Duration, NaiveDate, Utc};
use chrono_tz::Tz;

use super::validation::FieldErrors;
use crate::money::{Currency, Money};

macro_rules! string_enum {
    ($(#[$meta:meta])* $name:ident { $($variant:ident = $text:literal),+ $(,)? }) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum $name { $($variant),+ }

        impl $name {
            pub const ALL: &'static [$name] = &[$($name::$variant),+];

            pub fn as_str(self) -> &'static str {
                match self { $($name::$variant => $text),+ }
            }

            pub fn parse(text: &str) -> Result<Self, String> {
                match text {
                    $($text => Ok($name::$variant),)+
                    other => Err(format!(
                        "'{other}' is not one of: {}",
                        [$($text),+].join(", ")
                    )),
                }
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
}
pub(crate) use string_enum;

string_enum!(
    /// `draft → open → closed → awarded → settled`; `cancelled` from any state before `settled`.
    LotStatus { Draft = "draft", Open = "open", Closed = "closed", Awarded = "awarded", Settled = "settled", Cancelled = "cancelled" }
);
impl LotStatus {
    /// Still in play: not yet settled or cancelled.
    pub const IN_PLAY: [LotStatus; 4] = [
        LotStatus::Draft,
        LotStatus::Open,
        LotStatus::Closed,
        LotStatus::Awarded,
    ];
}

string_enum!(ResourceKind { Seat = "seat", Room = "room", Car = "car" });
string_enum!(AwardPolicy { Priority = "priority", MaxRevenue = "max_revenue", UniformPrice = "uniform_price" });
string_enum!(
    /// `hold`: the card is authorised at bid time and captured on a win. `charge_on_award`: the
    /// card is saved at bid time and charged off-session on a win (for closes far ahead, since
    /// authorisations expire after about a week).
    PaymentMode { Hold = "hold", ChargeOnAward = "charge_on_award" }
);

/// Upper bounds that keep a typo from creating an absurd lot.
pub const MAX_CAPACITY: u32 = 10_000;
pub const MAX_GRACE_SECONDS: u32 = 86_400;

/// A complete, valid lot definition.
#[derive(Debug, Clone, PartialEq)]
pub struct LotSpec {
    pub resource_kind: ResourceKind,
    pub resource: String,
    pub service_date: NaiveDate,
    pub title: String,
    pub from_class: String,
    pub to_class: String,
    /// Position of `to_class` on the resource's ladder (higher is better): orders lots of one
    /// resource for ladder awards.
    pub class_rank: u32,
    pub capacity: u32,
    /// Units already taken by status or points upgrades, which clear before any paid bid.
    pub entitlement_units: u32,
    pub currency: Currency,
    pub reserve: Money,
    pub maximum: Money,
    /// A fixed "upgrade now" price per person, taken instantly while units are free.
    pub upgrade_now: Option<Money>,
    pub taxes_included: bool,
    pub opens_at: DateTime<Utc>,
    pub closes_at: DateTime<Utc>,
    pub time_zone: Tz,
    pub award_policy: AwardPolicy,
    pub tier_weight_pct: u32,
    pub payment_mode: PaymentMode,
    pub payment_grace_seconds: u32,
    pub review_required: bool,
    pub chained_capacity: bool,
}

impl LotSpec {
    /// Rules that involve several fields. `now` is the server's clock.
    pub fn check(&self, now: DateTime<Utc>, errors: &mut FieldErrors) {
        self.check_but_service_day(now, errors);
        self.check_service_day(now, errors);
    }

    /// [`check`](Self::check) without the service-day rule: for an open lot whose close is
    /// not moving (one saved before the rule keeps taking edits).
    pub fn check_but_service_day(&self, now: DateTime<Utc>, errors: &mut FieldErrors) {
        if self.reserve.currency() != self.currency || self.maximum.currency() != self.currency {
            errors.add(
                "currency",
                "reserve and maximum must be in the lot's currency",
            );
        }
        // A price kept from before a change of currency would be read in the new one.
        if let Some(price) = self.upgrade_now
            && price.currency() != self.currency
        {
            errors.add(
                "upgrade_now",
                format!(
                    "is in {}, not the lot's currency {}: give it again in {}",
                    price.currency(),
                    self.currency,
                    self.currency
                ),
            );
        }
        if self.reserve.minor() > self.maximum.minor() {
            errors.add(
                "reserve",
                format!("{} is above the maximum {}", self.reserve, self.maximum),
            );
        }
        if self.maximum.minor() == 0 {
            errors.add("maximum", "must be above zero");
        }
        if let Some(price) = self.upgrade_now
            && price.minor() < self.reserve.minor()
        {
            errors.add(
                "upgrade_now",
                format!("{price} is below the reserve {}", self.reserve),
            );
        }
        if self.closes_at <= self.opens_at {
            errors.add("closes_at", "must be after opens_at");
        }
        if self.closes_at <= now {
            errors.add("closes_at", "must be in the future");
        }
        // A card authorisation lapses after about a week: a hold taken at bid time must still
        // be good when the award captures it.
        if self.payment_mode == PaymentMode::Hold && self.closes_at > now + hold_window() {
            errors.add(
                "payment_mode",
                "hold needs bidding to close within 6 days (card holds expire); use charge_on_award",
            );
        }
        if self.capacity > MAX_CAPACITY {
            errors.add("capacity", format!("must be at most {MAX_CAPACITY}"));
        }
        if self.entitlement_units > self.capacity {
            errors.add("entitlement_units", "cannot exceed the capacity");
        }
        if self.tier_weight_pct > 100 {
            errors.add("tier_weight_pct", "must be between 0 and 100");
        }
        if self.payment_grace_seconds > MAX_GRACE_SECONDS {
            errors.add(
                "payment_grace_seconds",
                format!("must be at most {MAX_GRACE_SECONDS}"),
            );
        }
        if self.from_class == self.to_class {
            errors.add("to_class", "must differ from from_class");
        }
        for (field, value, max) in [
            ("resource", &self.resource, 64),
            ("title", &self.title, 200),
            ("from_class", &self.from_class, 40),
            ("to_class", &self.to_class, 40),
        ] {
            if value.trim().is_empty() {
                errors.add(field, "must not be empty");
            } else if value.chars().count() > max {
                errors.add(field, format!("must be at most {max} characters"));
            }
        }
    }

    /// An upgrade for a trip already made, or decided after the day it is for, cannot be had:
    /// travellers would give a card for nothing. Days are the lot's own.
    pub fn check_service_day(&self, now: DateTime<Utc>, errors: &mut FieldErrors) {
        let today = now.with_timezone(&self.time_zone).date_naive();
        if self.service_date < today {
            errors.add(
                "service_date",
                format!("is already past: it is {today} in {}", self.time_zone),
            );
        } else if self.closes_at.with_timezone(&self.time_zone).date_naive() > self.service_date {
            errors.add(
                "closes_at",
                format!(
                    "is after the service date {}: bidding must close by the end of that day in {}",
                    self.service_date, self.time_zone
                ),
            );
        }
    }

    /// Names of the fields whose values differ from `other`'s.
    pub fn differing_fields(&self, other: &LotSpec) -> Vec<&'static str> {
        // The fields are named once: destructuring `self` by them fails to compile when a
        // new field is left out.
        macro_rules! differing {
            ($($field:ident),+ $(,)?) => {{
                let LotSpec { $($field),+ } = self;
                let mut differing = Vec::new();
                $(if *$field != other.$field {
                    differing.push(stringify!($field));
                })+
                differing
            }};
        }
        differing!(
            resource_kind,
            resource,
            service_date,
            title,
            from_class,
            to_class,
            class_rank,
            capacity,
            entitlement_units,
            currency,
            reserve,
            maximum,
            upgrade_now,
            taxes_included,
            opens_at,
            closes_at,
            time_zone,
            award_policy,
            tier_weight_pct,
            payment_mode,
            payment_grace_seconds,
            review_required,
            chained_capacity,
        )
    }

    /// Units bids can win: capacity less entitlements.
    pub fn biddable_units(&self) -> u32 {
        self.capacity.saturating_sub(self.entitlement_units)
    }
}

/// Card authorisations expire after about seven days; holds are only taken when the award
/// comes well inside that.
pub fn hold_window() -> Duration {
    Duration::days(6)
}

pub fn parse_time_zone(name: &str) -> Result<Tz, String> {
    name.parse::<Tz>()
        .map_err(|_| format!("'{name}' is not an IANA time zone such as Europe/Paris"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn lot(service_date: NaiveDate, closes_at: DateTime<Utc>, time_zone: Tz) -> LotSpec {
        let eur = Currency::parse("EUR").unwrap();
        LotSpec {
            resource_kind: ResourceKind::Seat,
            resource: "AU101".into(),
            service_date,
            title: "Paris → New York".into(),
            from_class: "economy".into(),
            to_class: "business".into(),
            class_rank: 1,
            capacity: 4,
            entitlement_units: 0,
            currency: eur,
            reserve: Money::parse("100.00", eur).unwrap(),
            maximum: Money::parse("900.00", eur).unwrap(),
            upgrade_now: None,
            taxes_included: true,
            opens_at: closes_at - Duration::days(2),
            closes_at,
            time_zone,
            award_policy: AwardPolicy::Priority,
            tier_weight_pct: 0,
            payment_mode: PaymentMode::ChargeOnAward,
            payment_grace_seconds: 600,
            review_required: false,
            chained_capacity: false,
        }
    }

    fn refused(spec: &LotSpec, now: DateTime<Utc>) -> Vec<String> {
        let mut errors = FieldErrors::new();
        spec.check(now, &mut errors);
        errors.0.into_iter().map(|e| e.field).collect()
    }

    #[test]
    fn bidding_closes_by_the_last_second_of_the_service_day_in_the_lots_zone() {
        let paris = chrono_tz::Europe::Paris;
        // 28 March 2027: clocks go forward in Paris, the day lasts 23 hours.
        let day = NaiveDate::from_ymd_opt(2027, 3, 28).unwrap();
        let now = Utc.with_ymd_and_hms(2027, 3, 20, 12, 0, 0).unwrap();
        let last_second = Utc.with_ymd_and_hms(2027, 3, 28, 21, 59, 59).unwrap();
        assert_eq!(
            refused(&lot(day, last_second, paris), now),
            Vec::<String>::new()
        );
        let midnight = last_second + Duration::seconds(1);
        assert_eq!(refused(&lot(day, midnight, paris), now), ["closes_at"]);
        // The same moment is still the 28th in New York.
        let new_york = chrono_tz::America::New_York;
        assert_eq!(
            refused(&lot(day, midnight, new_york), now),
            Vec::<String>::new()
        );
    }

    #[test]
    fn a_service_day_is_past_only_once_it_is_over_in_the_lots_zone() {
        let tokyo = chrono_tz::Asia::Tokyo;
        // 23:30 UTC on the 9th is already the 10th in Tokyo.
        let now = Utc.with_ymd_and_hms(2027, 1, 9, 23, 30, 0).unwrap();
        let closes = now + Duration::minutes(20);
        let the_9th = NaiveDate::from_ymd_opt(2027, 1, 9).unwrap();
        let the_10th = NaiveDate::from_ymd_opt(2027, 1, 10).unwrap();
        assert_eq!(refused(&lot(the_9th, closes, tokyo), now), ["service_date"]);
        assert_eq!(
            refused(&lot(the_10th, closes, tokyo), now),
            Vec::<String>::new()
        );
        // Still the 9th in UTC: today, not past.
        assert_eq!(
            refused(&lot(the_9th, closes, chrono_tz::UTC), now),
            Vec::<String>::new()
        );
    }
}
