//! The audit fingerprint: SHA-256 of a lot's canonical inputs and its plan.
//!
//! Anyone holding the stored rules and bids can re-run [`award`](super::award) and compare
//! fingerprints to prove the plan came out the same. The encoding is fixed (changing it is a
//! change of [`ALGORITHM_VERSION`], which it includes):
//! - integers big-endian at their Rust width, booleans one byte (0/1);
//! - keys and names as a `u32` byte length then the bytes ([`BidKey::canonical_bytes`]);
//! - lists as a `u64` count then the items;
//! - bids in canonical order (by id, then contents), so input order does not matter;
//! - rules, then bids, then the plan in its own order (winners, standby, losers, revenue,
//!   clearing price as a 0/1 flag and the amount).

use sha2::{Digest, Sha256};

use super::ALGORITHM_VERSION;
use super::model::{AwardPlan, BidInput, BidKey, LotRules};
use super::rank::canonical_cmp;

/// Lower-case hex SHA-256 of the canonical encoding of `rules`, `bids` and `plan`.
pub fn fingerprint<K: BidKey>(
    rules: &LotRules,
    bids: &[BidInput<K>],
    plan: &AwardPlan<K>,
) -> String {
    let mut w = Canonical::default();
    w.bytes(b"surclass-award-fingerprint");
    w.bytes(ALGORITHM_VERSION.as_bytes());
    w.bytes(plan.algorithm_version.as_bytes());

    w.u32(rules.capacity);
    w.u32(rules.entitled_units);
    w.i64(rules.reserve_minor);
    w.i64(rules.maximum_minor);
    w.bytes(rules.policy.as_str().as_bytes());
    w.u32(rules.tier_weight_percent);

    let mut sorted: Vec<&BidInput<K>> = bids.iter().collect();
    sorted.sort_by(|a, b| canonical_cmp(a, b));
    w.len(sorted.len());
    for bid in sorted {
        w.key(&bid.id);
        w.key(&bid.booking);
        w.i64(bid.amount_minor);
        w.u8(bid.units);
        w.u8(u8::from(bid.partial_ok));
        w.i64(bid.submitted_at);
        w.u8(bid.tier);
        w.u8(u8::from(bid.withdrawn));
    }

    w.bytes(plan.policy.as_str().as_bytes());
    w.u32(plan.available_units);
    w.len(plan.winners.len());
    for winner in &plan.winners {
        w.key(&winner.id);
        w.key(&winner.booking);
        w.u8(winner.units);
        w.u8(winner.party);
        w.i64(winner.price_per_unit_minor);
        w.i64(winner.total_minor);
    }
    w.len(plan.standby.len());
    for id in &plan.standby {
        w.key(id);
    }
    w.len(plan.losers.len());
    for loser in &plan.losers {
        w.key(&loser.id);
        w.bytes(loser.reason.as_str().as_bytes());
    }
    w.i64(plan.revenue_minor);
    match plan.clearing_price_minor {
        None => w.u8(0),
        Some(price) => {
            w.u8(1);
            w.i64(price);
        }
    }
    hex::encode(w.hasher.finalize())
}

#[derive(Default)]
struct Canonical {
    hasher: Sha256,
    scratch: Vec<u8>,
}

impl Canonical {
    fn u8(&mut self, n: u8) {
        self.hasher.update([n]);
    }
    fn u32(&mut self, n: u32) {
        self.hasher.update(n.to_be_bytes());
    }
    fn i64(&mut self, n: i64) {
        self.hasher.update(n.to_be_bytes());
    }
    fn len(&mut self, n: usize) {
        self.hasher.update((n as u64).to_be_bytes());
    }
    fn bytes(&mut self, b: &[u8]) {
        self.u32(b.len() as u32);
        self.hasher.update(b);
    }
    fn key<K: BidKey>(&mut self, key: &K) {
        self.scratch.clear();
        key.canonical_bytes(&mut self.scratch);
        let scratch = std::mem::take(&mut self.scratch);
        self.bytes(&scratch);
        self.scratch = scratch;
    }
}
