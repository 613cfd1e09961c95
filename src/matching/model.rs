//! The core's inputs and outputs.

use std::fmt::{Debug, Display};
use std::hash::Hash;

/// The largest party a bid can carry (a booking's travellers, rooms or cars).
pub const MAX_PARTY: u8 = 9;

/// Upper bound on [`LotRules::tier_weight_percent`]: keeps the weighted ranking key exact in
/// 128-bit integers (and no operator needs a tier to count for more than 10×).
pub const MAX_TIER_WEIGHT_PERCENT: u32 = 1000;

/// How the winners of a lot are chosen and what they pay.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Policy {
    /// Walk the ranking; award each bid whose party fits the remaining units. Pay as bid.
    Priority,
    /// The allocation with the greatest revenue, exactly; ties go to the priority order.
    /// Pay as bid.
    MaxRevenue,
    /// Winners as in `Priority`; all pay one price per unit: the highest losing per-unit bid
    /// or the reserve, whichever is higher, never above their own bid.
    UniformPrice,
}

impl Policy {
    /// The snake_case name used in JSON and the database.
    pub fn as_str(self) -> &'static str {
        match self {
            Policy::Priority => "priority",
            Policy::MaxRevenue => "max_revenue",
            Policy::UniformPrice => "uniform_price",
        }
    }

    pub fn parse(name: &str) -> Option<Self> {
        [Policy::Priority, Policy::MaxRevenue, Policy::UniformPrice]
            .into_iter()
            .find(|p| p.as_str() == name)
    }
}

/// A lot's award rules, amounts in minor units of the lot's currency.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LotRules {
    /// Units (seats, rooms, cars) the lot upgrades into.
    pub capacity: u32,
    /// Units already taken by entitlements (status or points upgrades), which clear before
    /// any bid. More entitlements than capacity leaves nothing to bid for; it is not an error.
    pub entitled_units: u32,
    /// Lowest acceptable amount per unit.
    pub reserve_minor: i64,
    /// Highest acceptable amount per unit.
    pub maximum_minor: i64,
    pub policy: Policy,
    /// A bid ranks as if its amount were raised by `tier × tier_weight_percent` %. With 0 the
    /// tier only breaks ties. At most [`MAX_TIER_WEIGHT_PERCENT`].
    pub tier_weight_percent: u32,
}

impl LotRules {
    /// Units left for the auction once entitlements have cleared.
    pub fn available_units(&self) -> u32 {
        self.capacity.saturating_sub(self.entitled_units)
    }

    pub(crate) fn validate(&self) -> Result<(), AwardError> {
        if self.reserve_minor < 0 {
            return Err(AwardError::NegativeReserve);
        }
        if self.reserve_minor > self.maximum_minor {
            return Err(AwardError::ReserveAboveMaximum {
                reserve_minor: self.reserve_minor,
                maximum_minor: self.maximum_minor,
            });
        }
        if self.tier_weight_percent > MAX_TIER_WEIGHT_PERCENT {
            return Err(AwardError::TierWeightTooLarge(self.tier_weight_percent));
        }
        // Every revenue figure is at most available × maximum: checking it once here lets the
        // policies add and multiply without overflow checks.
        let ceiling = i128::from(self.available_units()) * i128::from(self.maximum_minor);
        if ceiling > i128::from(i64::MAX) {
            return Err(AwardError::RevenueOverflow);
        }
        Ok(())
    }
}

/// What identifies a bid or a booking: `String` in the service, any small key in tests and
/// benchmarks. `canonical_bytes` feeds the audit fingerprint.
pub trait BidKey: Clone + Ord + Hash + Debug + Display {
    /// Appends an unambiguous encoding of the key (the fingerprint length-prefixes it).
    fn canonical_bytes(&self, out: &mut Vec<u8>);
}

impl BidKey for String {
    fn canonical_bytes(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(self.as_bytes());
    }
}

impl BidKey for u64 {
    fn canonical_bytes(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.to_be_bytes());
    }
}

impl BidKey for u32 {
    fn canonical_bytes(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.to_be_bytes());
    }
}

/// One sealed bid as the core sees it.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct BidInput<K = String> {
    pub id: K,
    pub booking: K,
    /// Amount per unit, in minor units.
    pub amount_minor: i64,
    /// The party size, 1..=[`MAX_PARTY`]; upgraded whole unless `partial_ok`.
    pub units: u8,
    /// The traveller accepts that only part of the party is upgraded.
    pub partial_ok: bool,
    /// Submission time in Unix milliseconds; earlier ranks first among equal bids.
    pub submitted_at: i64,
    /// Loyalty tier, 0 = none.
    pub tier: u8,
    pub withdrawn: bool,
}

/// A bid that won units.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Winner<K = String> {
    pub id: K,
    pub booking: K,
    /// Units awarded: the whole party, or fewer for a `partial_ok` bid cut to fit.
    pub units: u8,
    /// The party the bid was for.
    pub party: u8,
    pub price_per_unit_minor: i64,
    pub total_minor: i64,
}

/// Why a bid did not win, in words a traveller can read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum LoseReason {
    /// The amount per unit is below the lot's reserve.
    BelowReserve,
    /// The amount per unit is above the lot's maximum.
    AboveMaximum,
    /// Higher bids took the units (no units were left at this bid's turn, or, under
    /// `max_revenue`, other bids together brought in more).
    Outbid,
    /// At this bid's turn some units were left, but fewer than its party.
    PartyDoesNotFit,
    /// The traveller withdrew the bid before the close.
    Withdrawn,
    /// The winner's payment failed; its units went to the standby list.
    PaymentFailed,
    /// The booking won another lot of the same resource (a higher class, or its preferred
    /// alternative), and a booking is upgraded once.
    UpgradedElsewhere,
}

impl LoseReason {
    /// Every reason, in declaration order (a test holds it to the enum).
    pub const ALL: [LoseReason; 7] = [
        LoseReason::BelowReserve,
        LoseReason::AboveMaximum,
        LoseReason::Outbid,
        LoseReason::PartyDoesNotFit,
        LoseReason::Withdrawn,
        LoseReason::PaymentFailed,
        LoseReason::UpgradedElsewhere,
    ];

    /// The reason named `name` (as [`as_str`](Self::as_str) writes it), if the core has it.
    pub fn parse(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|r| r.as_str() == name)
    }

    /// The snake_case name used in JSON and the database.
    pub fn as_str(self) -> &'static str {
        match self {
            LoseReason::BelowReserve => "below_reserve",
            LoseReason::AboveMaximum => "above_maximum",
            LoseReason::Outbid => "outbid",
            LoseReason::PartyDoesNotFit => "party_does_not_fit",
            LoseReason::Withdrawn => "withdrawn",
            LoseReason::PaymentFailed => "payment_failed",
            LoseReason::UpgradedElsewhere => "upgraded_elsewhere",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Loser<K = String> {
    pub id: K,
    pub reason: LoseReason,
}

/// The outcome of a lot. Every bid given to [`award`](super::award) appears exactly once:
/// as a winner, on standby, or as a loser.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AwardPlan<K = String> {
    pub algorithm_version: &'static str,
    pub policy: Policy,
    /// Units the auction could award (capacity less entitlements).
    pub available_units: u32,
    /// In award order: rank order, then any bids promoted by [`reassign`](super::reassign).
    pub winners: Vec<Winner<K>>,
    /// Bid ids in the order they take over freed units.
    pub standby: Vec<K>,
    /// Ordered by bid id (then reason, should ids repeat).
    pub losers: Vec<Loser<K>>,
    pub revenue_minor: i64,
    /// The one price per unit under `uniform_price` (before capping at a winner's own bid).
    pub clearing_price_minor: Option<i64>,
}

impl<K> AwardPlan<K> {
    pub fn units_awarded(&self) -> u32 {
        self.winners.iter().map(|w| u32::from(w.units)).sum()
    }
}

/// Inputs the core refuses, naming the offending rule or bid.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AwardError {
    #[error("reserve is negative")]
    NegativeReserve,
    #[error("reserve ({reserve_minor} minor units) is above the maximum ({maximum_minor})")]
    ReserveAboveMaximum {
        reserve_minor: i64,
        maximum_minor: i64,
    },
    #[error("tier weight {0}% is above the limit of {MAX_TIER_WEIGHT_PERCENT}%")]
    TierWeightTooLarge(u32),
    #[error("capacity × maximum does not fit in 64-bit minor units")]
    RevenueOverflow,
    #[error("bid {id}: units {units} is not a party size from 1 to {MAX_PARTY}")]
    InvalidUnits { id: String, units: u8 },
    #[error("bid {id}: amount is negative")]
    NegativeAmount { id: String },
    #[error("max_revenue cannot award {available} units exactly in bounded memory; use priority")]
    TooLargeForMaxRevenue { available: u32 },
    #[error("bid {0} is not a winner of this plan")]
    NotAWinner(String),
    #[error("standby bid {0} is missing from the bids")]
    MissingBid(String),
}

#[cfg(test)]
mod tests {
    use super::LoseReason;

    #[test]
    fn every_lose_reason_is_listed_once_and_reads_back_by_its_name() {
        // A new reason fails to compile here until it is given a place: the reminder to list
        // it in ALL, which this test then holds to that place (a stored plan's reason must
        // not read back as another).
        let place = |r: LoseReason| match r {
            LoseReason::BelowReserve => 0,
            LoseReason::AboveMaximum => 1,
            LoseReason::Outbid => 2,
            LoseReason::PartyDoesNotFit => 3,
            LoseReason::Withdrawn => 4,
            LoseReason::PaymentFailed => 5,
            LoseReason::UpgradedElsewhere => 6,
        };
        for (i, r) in LoseReason::ALL.into_iter().enumerate() {
            assert_eq!(place(r), i, "{r:?}");
            assert_eq!(LoseReason::parse(r.as_str()), Some(r));
        }
        assert_eq!(LoseReason::parse("rejected_by_operator"), None);
    }
}
