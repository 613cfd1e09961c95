//! The pure matching core: a lot's rules and its bids in, an award plan out. No IO.
//!
//! Everything here is deterministic and works on exact integer minor units (`i64`); amounts
//! become `Decimal` only at the JSON boundary ([`mod@file`]). No floats, clock, database or async.
//!
//! - [`award`]: one lot, under its [`Policy`]; [`reassign`]: a winner's payment failed, move
//!   its units to the standby list; [`award_ladder`]: every lot of one resource (flight+date,
//!   property+night, …) at once, top class first; [`fingerprint`]: the audit hash.
//! - How it is fast: only the bids that can possibly win are ever ranked (see `select.rs`),
//!   so a lot with a million bids costs one linear pass plus work on a few thousand bids.
//!
//! Semantics in one place (each rule has a property or example test in `tests/matching.rs`):
//! - Eligible bids are those not withdrawn, with `reserve ≤ amount ≤ maximum` per unit.
//! - Ranking (`rank.rs`): amount per unit raised by `tier × tier_weight_percent` %, then tier,
//!   then earliest submission, then id. Prices paid are always the real amounts.
//! - A party wins whole, unless `partial_ok`: such a bid may be cut to the units that are
//!   left at the end; at most one party per lot is split (see `policy/mod.rs`).
//! - Standby: the best non-winning eligible bids in rank order, as many of each party size as
//!   could refill the whole lot once.
//! - Every other bid gets a [`LoseReason`]; losers are listed in bid id order.

mod award;
pub mod file;
mod fingerprint;
mod ladder;
mod model;
mod policy;
mod rank;
mod reassign;
mod select;

pub use award::award;
pub use fingerprint::fingerprint;
pub use ladder::{LadderLot, LadderPlan, LotAward, award_ladder};
pub use model::{
    AwardError, AwardPlan, BidInput, BidKey, LoseReason, Loser, LotRules, MAX_PARTY,
    MAX_TIER_WEIGHT_PERCENT, Policy, Winner,
};
pub use reassign::reassign;

/// Version of the award semantics, recorded with every plan and in its fingerprint.
/// Bump it whenever a change could award the same bids differently.
pub const ALGORITHM_VERSION: &str = "surclass-matching/1";
