//! The ranking: who comes first, on exact integer keys.
//!
//! Priority order: amount per unit raised by `tier × weight` % (compared as
//! `amount × (100 + tier × weight)`, so no division and no rounding), then tier, then the
//! earliest submission, then id. Revenue order (used to prune `max_revenue` candidates):
//! the real amount first, then the priority order.
//!
//! Beyond the id the comparison looks at every remaining field, so the order is total on bid
//! contents and never depends on where a bid sits in the input (duplicate ids included).

use std::cmp::Ordering;

use super::model::BidInput;

/// Which order a [`Key`] encodes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Order {
    Priority,
    Revenue,
}

/// A bid's position in an order, packed so that most comparisons are one integer compare.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Key {
    primary: u128,
    secondary: u128,
    submitted_at: i64,
    /// Index of the bid in the input slice.
    pub idx: u32,
}

impl Key {
    /// The leading part of the key: a greater primary always ranks first.
    #[inline]
    pub fn primary(&self) -> u128 {
        self.primary
    }
}

/// Builds and compares keys for one slice of bids.
pub(crate) struct Ranker<'a, K> {
    bids: &'a [BidInput<K>],
    weight: u128,
    order: Order,
}

impl<'a, K: Ord> Ranker<'a, K> {
    pub fn new(bids: &'a [BidInput<K>], tier_weight_percent: u32, order: Order) -> Self {
        Self {
            bids,
            weight: u128::from(tier_weight_percent),
            order,
        }
    }

    /// `amount × (100 + tier × weight)` then the tier, in one integer. Amounts are validated
    /// non-negative; the weight is at most 1000 % and the tier a `u8`, so the product is below
    /// 2^81 and the shifted key below 2^89.
    fn score(&self, bid: &BidInput<K>) -> u128 {
        let amount = bid.amount_minor as u128;
        let factor = 100 + u128::from(bid.tier) * self.weight;
        ((amount * factor) << 8) | u128::from(bid.tier)
    }

    #[inline]
    pub fn key(&self, idx: usize) -> Key {
        let bid = &self.bids[idx];
        let score = self.score(bid);
        let (primary, secondary) = match self.order {
            Order::Priority => (score, 0),
            Order::Revenue => (bid.amount_minor as u128, score),
        };
        Key {
            primary,
            secondary,
            submitted_at: bid.submitted_at,
            idx: idx as u32,
        }
    }

    /// `Less` when `a` ranks before `b`.
    #[inline]
    pub fn cmp(&self, a: &Key, b: &Key) -> Ordering {
        b.primary
            .cmp(&a.primary)
            .then(b.secondary.cmp(&a.secondary))
            .then(a.submitted_at.cmp(&b.submitted_at))
            .then_with(|| contents(&self.bids[a.idx as usize], &self.bids[b.idx as usize]))
    }
}

/// The last tie-breakers: id, then every other field, so equal keys mean equal bids.
fn contents<K: Ord>(a: &BidInput<K>, b: &BidInput<K>) -> Ordering {
    a.id.cmp(&b.id)
        .then_with(|| a.booking.cmp(&b.booking))
        .then(b.amount_minor.cmp(&a.amount_minor))
        .then(b.units.cmp(&a.units))
        .then(b.partial_ok.cmp(&a.partial_ok))
        .then(a.withdrawn.cmp(&b.withdrawn))
}

/// The canonical order of bids for listing losers and fingerprinting: by id, then contents.
pub(crate) fn canonical_cmp<K: Ord>(a: &BidInput<K>, b: &BidInput<K>) -> Ordering {
    contents(a, b)
        .then(a.submitted_at.cmp(&b.submitted_at))
        .then(a.tier.cmp(&b.tier))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bid(id: &str, amount_minor: i64, tier: u8) -> BidInput<String> {
        BidInput {
            id: id.into(),
            booking: id.into(),
            amount_minor,
            units: 1,
            partial_ok: false,
            submitted_at: 0,
            tier,
            withdrawn: false,
        }
    }

    fn order(bids: &[BidInput<String>], weight: u32, kind: Order) -> Vec<&str> {
        let ranker = Ranker::new(bids, weight, kind);
        let mut keys: Vec<Key> = (0..bids.len()).map(|i| ranker.key(i)).collect();
        keys.sort_by(|a, b| ranker.cmp(a, b));
        keys.iter()
            .map(|k| bids[k.idx as usize].id.as_str())
            .collect()
    }

    #[test]
    fn a_tier_weight_is_compared_exactly_without_rounding() {
        // 100.00 at tier 1 with 1 % weight is worth exactly 101.00: a tie, which the tier breaks.
        let bids = [bid("cash", 10_100, 0), bid("gold", 10_000, 1)];
        assert_eq!(order(&bids, 1, Order::Priority), ["gold", "cash"]);
        // One minor unit more and the cash bid is ahead.
        let bids = [bid("cash", 10_101, 0), bid("gold", 10_000, 1)];
        assert_eq!(order(&bids, 1, Order::Priority), ["cash", "gold"]);
    }

    #[test]
    fn revenue_order_puts_the_real_amount_first() {
        let bids = [bid("cash", 10_050, 0), bid("gold", 10_000, 3)];
        assert_eq!(order(&bids, 10, Order::Priority), ["gold", "cash"]);
        assert_eq!(order(&bids, 10, Order::Revenue), ["cash", "gold"]);
    }

    #[test]
    fn the_order_is_total_even_for_bids_sharing_an_id() {
        let mut twin = bid("same", 10_000, 0);
        twin.units = 2;
        let bids = [bid("same", 10_000, 0), twin];
        let ranker = Ranker::new(&bids, 0, Order::Priority);
        assert_ne!(ranker.cmp(&ranker.key(0), &ranker.key(1)), Ordering::Equal);
        assert_eq!(
            ranker.cmp(&ranker.key(0), &ranker.key(1)),
            ranker.cmp(&ranker.key(1), &ranker.key(0)).reverse()
        );
    }
}
