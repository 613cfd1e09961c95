//! `award`: one lot's bids in, its plan out, in one linear pass over the bids.
//!
//! The pass checks each bid, writes its loser entry (ineligible bids get their reason, the
//! eligible ones a provisional "outbid"), and offers the eligible ones to a [`TopK`] per class
//! (party size × `partial_ok`); only the few thousand bids kept there are ever sorted. The
//! policy runs on those, and then only the kept bids need their entry corrected: every other
//! bid ranks after the kept bids of its class, which (checked below) rank after the last
//! winner, so at its turn the lot was full: outbid is right. Where that check fails, or units
//! were left over, a second pass gives every bid its exact reason (small or unusual lots).

use std::cmp::Ordering;
use std::collections::HashSet;

use super::ALGORITHM_VERSION;
use super::model::{
    AwardError, AwardPlan, BidInput, BidKey, LoseReason, Loser, LotRules, MAX_PARTY, Policy, Winner,
};
use super::policy::{self, Award, class_cap};
use super::rank::{Key, Order, Ranker};
use super::select::{Kept, TopK};

const CLASSES: usize = 2 * MAX_PARTY as usize;

fn class_of<K>(bid: &BidInput<K>) -> usize {
    (bid.units as usize - 1) * 2 + usize::from(bid.partial_ok)
}

fn class_caps(available: u32) -> [usize; CLASSES] {
    std::array::from_fn(|class| {
        let party = (class / 2 + 1) as u8;
        class_cap(available, party, class % 2 == 1)
    })
}

/// Awards one lot. Bids may come in any order and give the same plan; bids already sorted by
/// id (as the store returns them) save the sort that lists losers by id.
///
/// Errors only on inputs the service should never build: a party outside 1..=9, a negative
/// amount, inconsistent rules.
pub fn award<K: BidKey>(
    rules: &LotRules,
    bids: &[BidInput<K>],
) -> Result<AwardPlan<K>, AwardError> {
    award_excluding(rules, bids, |_| false).map(|(plan, _)| plan)
}

/// [`award`], where bids of bookings for which `upgraded_elsewhere` is true lose with
/// [`LoseReason::UpgradedElsewhere`] (used by the ladder). Also returns the booking of each
/// standby bid, in standby order.
pub(crate) fn award_excluding<K: BidKey>(
    rules: &LotRules,
    bids: &[BidInput<K>],
    upgraded_elsewhere: impl Fn(&K) -> bool,
) -> Result<(AwardPlan<K>, Vec<K>), AwardError> {
    rules.validate()?;
    let available = rules.available_units();
    let caps = class_caps(available);
    let weight = rules.tier_weight_percent;
    let prio = Ranker::new(bids, weight, Order::Priority);
    let rev = Ranker::new(bids, weight, Order::Revenue);
    // With a tier weight the revenue order differs from the priority order, and max_revenue
    // needs the best of each class by real amount (see policy::mod); without, they coincide.
    let revenue_order = rules.policy == Policy::MaxRevenue && weight > 0;
    // Twice the cap in priority order: winners plus enough standby to refill the lot once.
    let mut prio_top: Vec<TopK> = caps.iter().map(|&cap| TopK::new(2 * cap)).collect();
    let mut rev_top: Vec<TopK> = caps
        .iter()
        .map(|&cap| TopK::new(if revenue_order { cap } else { 0 }))
        .collect();
    // uniform_price needs the highest losing amount. Without a tier weight the priority order
    // is by amount, so each class's best non-winner is in its kept list (at most `cap` of the
    // class win) and only classes that keep nothing need their top amount noted. With a
    // weight, keep the best A + 1 amounts overall: at most A of them win.
    let uniform = rules.policy == Policy::UniformPrice;
    let mut top_amounts = TopK::new(if uniform && weight > 0 {
        available as usize + 1
    } else {
        0
    });
    let mut unkept_top_amount: Option<i64> = None;

    // The pass. (Indices are u32: four billion bids do not fit in memory anyway.)
    let mut losers: Vec<Loser<K>> = Vec::with_capacity(bids.len());
    // Ids strictly increasing: the losers come out listed by id without a sort.
    let mut by_id = true;
    for (idx, bid) in bids.iter().enumerate() {
        if bid.units == 0 || bid.units > MAX_PARTY {
            return Err(AwardError::InvalidUnits {
                id: bid.id.to_string(),
                units: bid.units,
            });
        }
        if bid.amount_minor < 0 {
            return Err(AwardError::NegativeAmount {
                id: bid.id.to_string(),
            });
        }
        if idx > 0 {
            by_id &= bids[idx - 1].id < bid.id;
        }
        let reason = if bid.withdrawn {
            LoseReason::Withdrawn
        } else if upgraded_elsewhere(&bid.booking) {
            LoseReason::UpgradedElsewhere
        } else if bid.amount_minor < rules.reserve_minor {
            LoseReason::BelowReserve
        } else if bid.amount_minor > rules.maximum_minor {
            LoseReason::AboveMaximum
        } else {
            let class = class_of(bid);
            prio_top[class].push(&prio, prio.key(idx));
            if revenue_order {
                rev_top[class].push(&rev, rev.key(idx));
            }
            if uniform {
                if weight > 0 {
                    top_amounts.push(&rev, rev.key(idx));
                } else if caps[class] == 0 {
                    unkept_top_amount = unkept_top_amount.max(Some(bid.amount_minor));
                }
            }
            // Provisional: only eligible bids carry it until the corrections below.
            LoseReason::Outbid
        };
        losers.push(Loser {
            id: bid.id.clone(),
            reason,
        });
    }

    let prio_kept: Vec<Kept> = prio_top.into_iter().map(|t| t.finish(&prio)).collect();
    let mut ranked: Vec<Key> = prio_kept.iter().flat_map(|k| &k.best).copied().collect();
    ranked.sort_unstable_by(|a, b| prio.cmp(a, b));

    let awards: Vec<Award> = match rules.policy {
        Policy::Priority | Policy::UniformPrice => {
            policy::priority::allocate(bids, &ranked, available)
        }
        Policy::MaxRevenue => {
            let mut candidates: Vec<Key> = if revenue_order {
                rev_top
                    .into_iter()
                    .flat_map(|t| t.finish(&rev).best)
                    .map(|k| prio.key(k.idx as usize))
                    .collect()
            } else {
                prio_kept
                    .iter()
                    .zip(caps)
                    .flat_map(|(kept, cap)| kept.best.iter().take(cap).copied())
                    .collect()
            };
            candidates.sort_unstable_by(|a, b| prio.cmp(a, b));
            policy::max_revenue::allocate(bids, &candidates, available)?
        }
    };
    let won: HashSet<u32> = awards.iter().map(|a| a.idx).collect();

    // Standby: the best non-winners of each class, as many as could win in an empty lot.
    let mut standby_idx = Vec::new();
    let mut per_class = [0usize; CLASSES];
    for key in &ranked {
        let class = class_of(&bids[key.idx as usize]);
        if !won.contains(&key.idx) && per_class[class] < caps[class] {
            per_class[class] += 1;
            standby_idx.push(key.idx);
        }
    }

    // Exact reasons where "outbid" may be wrong (see the module comment).
    let turn = Turns::new(&prio, &awards, available);
    let exact = |idx: usize| {
        let bid = &bids[idx];
        let remaining = turn.remaining_at(&prio.key(idx));
        if !bid.partial_ok && remaining > 0 && remaining < u32::from(bid.units) {
            LoseReason::PartyDoesNotFit
        } else {
            LoseReason::Outbid
        }
    };
    let unkept_may_precede_last_winner = prio_kept.iter().any(|kept| {
        kept.dropped
            && match (kept.best.last(), turn.last_winner()) {
                (Some(worst_kept), Some(last)) => prio.cmp(worst_kept, last).is_lt(),
                // Nothing kept (a party larger than the lot): it may rank anywhere.
                (None, _) => true,
                (Some(_), None) => true,
            }
    });
    if turn.left_over() > 0 || unkept_may_precede_last_winner {
        for (idx, loser) in losers.iter_mut().enumerate() {
            if loser.reason == LoseReason::Outbid {
                loser.reason = exact(idx);
            }
        }
    } else {
        for key in &ranked {
            losers[key.idx as usize].reason = exact(key.idx as usize);
        }
    }

    // uniform_price: the highest amount among eligible bids that did not win.
    let best_losing = |keys: &[Key]| {
        keys.iter()
            .find(|k| !won.contains(&k.idx))
            .map(|k| bids[k.idx as usize].amount_minor)
    };
    let highest_losing = if weight > 0 {
        best_losing(&top_amounts.finish(&rev).best)
    } else {
        prio_kept
            .iter()
            .map(|kept| best_losing(&kept.best))
            .fold(unkept_top_amount, Option::max)
    };

    // Winners and standby bids are not losers: drop their entries (one pass, in place).
    let mut taken: Vec<u32> = won
        .iter()
        .copied()
        .chain(standby_idx.iter().copied())
        .collect();
    taken.sort_unstable();
    if !taken.is_empty() {
        let (mut next, mut idx) = (0, 0u32);
        losers.retain(|_| {
            let keep = taken.get(next) != Some(&idx);
            if !keep {
                next += 1;
            }
            idx += 1;
            keep
        });
    }
    if !by_id {
        // (id, reason) is a total order on entries, so any input order gives the same list.
        losers.sort_unstable_by(|a, b| a.id.cmp(&b.id).then(a.reason.cmp(&b.reason)));
    }

    let clearing =
        uniform.then(|| policy::uniform_price::clearing_price(rules.reserve_minor, highest_losing));
    let winners: Vec<Winner<K>> = awards
        .iter()
        .map(|a| {
            let bid = &bids[a.idx as usize];
            let price = clearing.map_or(bid.amount_minor, |c| {
                policy::uniform_price::price_for(c, bid.amount_minor)
            });
            Winner {
                id: bid.id.clone(),
                booking: bid.booking.clone(),
                units: a.units,
                party: bid.units,
                price_per_unit_minor: price,
                total_minor: price * i64::from(a.units),
            }
        })
        .collect();
    let standby = standby_idx
        .iter()
        .map(|&idx| bids[idx as usize].id.clone())
        .collect();
    let standby_bookings = standby_idx
        .iter()
        .map(|&idx| bids[idx as usize].booking.clone())
        .collect();
    let plan = AwardPlan {
        algorithm_version: ALGORITHM_VERSION,
        policy: rules.policy,
        available_units: available,
        revenue_minor: winners.iter().map(|w| w.total_minor).sum(),
        winners,
        standby,
        losers,
        clearing_price_minor: clearing,
    };
    Ok((plan, standby_bookings))
}

/// Units still free when a bid's turn comes in the priority order: what a losing bid's
/// reason is based on ("outbid" when none were left, "party does not fit" when some were).
struct Turns<'r, 'a, K> {
    prio: &'r Ranker<'a, K>,
    /// Winners' keys in priority order and the units awarded before each.
    keys: Vec<Key>,
    before: Vec<u32>,
    available: u32,
}

impl<'r, 'a, K: Ord> Turns<'r, 'a, K> {
    fn new(prio: &'r Ranker<'a, K>, awards: &[Award], available: u32) -> Self {
        let mut keys: Vec<(Key, u8)> = awards
            .iter()
            .map(|a| (prio.key(a.idx as usize), a.units))
            .collect();
        keys.sort_unstable_by(|a, b| prio.cmp(&a.0, &b.0));
        let mut before = Vec::with_capacity(keys.len() + 1);
        let mut sum = 0;
        before.push(0);
        for (_, units) in &keys {
            sum += u32::from(*units);
            before.push(sum);
        }
        Self {
            prio,
            keys: keys.into_iter().map(|(k, _)| k).collect(),
            before,
            available,
        }
    }

    fn last_winner(&self) -> Option<&Key> {
        self.keys.last()
    }

    fn left_over(&self) -> u32 {
        self.available - self.before.last().copied().unwrap_or(0)
    }

    fn remaining_at(&self, key: &Key) -> u32 {
        // Most losers rank after the last winner: one comparison, no search.
        let taken = match self.keys.last() {
            None => 0,
            Some(last)
                if key.primary() < last.primary()
                    || self.prio.cmp(key, last) == Ordering::Greater =>
            {
                *self.before.last().unwrap_or(&0)
            }
            Some(_) => {
                let n = self
                    .keys
                    .partition_point(|w| self.prio.cmp(w, key) == Ordering::Less);
                self.before[n]
            }
        };
        self.available - taken
    }
}
