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
