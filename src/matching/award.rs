//! `award`: one lot's bids in, its plan out, in two linear passes over the bids.
//!
//! Pass 1 checks each bid, gives the ineligible ones their reason, and offers the eligible
//! ones to a [`TopK`] per class (party size × `partial_ok`); only the few thousand bids kept
//! there are ever sorted. The policy runs on those. Pass 2 gives every remaining bid its
//! reason and lists the losers in bid id order.

use std::cmp::Ordering;

use super::ALGORITHM_VERSION;
use super::model::{
    AwardError, AwardPlan, BidInput, BidKey, LoseReason, Loser, LotRules, MAX_PARTY, Policy, Winner,
};
use super::policy::{self, Award, class_cap};
use super::rank::{Key, Order, Ranker, canonical_cmp};
use super::select::TopK;

const CLASSES: usize = 2 * MAX_PARTY as usize;

/// Where a bid stands during the award (one byte per bid).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Status {
    /// Competes; if it neither wins nor stands by it is outbid or does not fit.
    Eligible,
    Won,
    Standby,
    Lost(LoseReason),
}

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
    let prio = Ranker::new(bids, rules.tier_weight_percent, Order::Priority);
    // With a tier weight the revenue order differs from the priority order, and max_revenue
    // needs the best of each class by real amount (see policy::mod); without, they coincide.
    let revenue_order = rules.policy == Policy::MaxRevenue && rules.tier_weight_percent > 0;
    let rev = Ranker::new(bids, rules.tier_weight_percent, Order::Revenue);
    // Twice the cap in priority order: winners plus enough standby to refill the lot once.
    let mut prio_top: Vec<TopK> = caps.iter().map(|&cap| TopK::new(2 * cap)).collect();
    let mut rev_top: Vec<TopK> = caps
        .iter()
        .map(|&cap| TopK::new(if revenue_order { cap } else { 0 }))
        .collect();

    // Pass 1: validate, classify, select. (Indices are u32: four billion bids do not fit in
    // memory anyway.)
    let mut status = Vec::with_capacity(bids.len());
    // Whether the input is already in canonical (id) order, checked on the way: then the
    // losers come out listed by id without a sort.
    let mut by_id = true;
    let mut previous: Option<&BidInput<K>> = None;
    for (idx, bid) in bids.iter().enumerate() {
        if let Some(prev) = previous {
            by_id &= canonical_cmp(prev, bid) != Ordering::Greater;
        }
        previous = Some(bid);
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
        status.push(if bid.withdrawn {
            Status::Lost(LoseReason::Withdrawn)
        } else if upgraded_elsewhere(&bid.booking) {
            Status::Lost(LoseReason::UpgradedElsewhere)
        } else if bid.amount_minor < rules.reserve_minor {
            Status::Lost(LoseReason::BelowReserve)
        } else if bid.amount_minor > rules.maximum_minor {
            Status::Lost(LoseReason::AboveMaximum)
        } else {
            let class = class_of(bid);
            prio_top[class].push(&prio, prio.key(idx));
            if revenue_order {
                rev_top[class].push(&rev, rev.key(idx));
            }
            Status::Eligible
        });
    }

    let prio_lists: Vec<Vec<Key>> = prio_top.into_iter().map(|t| t.into_sorted(&prio)).collect();
    let mut ranked: Vec<Key> = prio_lists.iter().flatten().copied().collect();
    ranked.sort_unstable_by(|a, b| prio.cmp(a, b));

    let awards: Vec<Award> = match rules.policy {
        Policy::Priority | Policy::UniformPrice => {
            policy::priority::allocate(bids, &ranked, available)
        }
        Policy::MaxRevenue => {
            let mut candidates: Vec<Key> = if revenue_order {
                rev_top
                    .into_iter()
                    .flat_map(|t| t.into_sorted(&rev))
                    .map(|k| prio.key(k.idx as usize))
                    .collect()
            } else {
                prio_lists
                    .iter()
                    .zip(caps)
                    .flat_map(|(list, cap)| list.iter().take(cap).copied())
                    .collect()
            };
            candidates.sort_unstable_by(|a, b| prio.cmp(a, b));
            policy::max_revenue::allocate(bids, &candidates, available)?
        }
    };
    for a in &awards {
        status[a.idx as usize] = Status::Won;
    }

    // Standby: the best non-winners of each class, as many as could win in an empty lot.
    let mut standby = Vec::new();
    let mut standby_bookings = Vec::new();
    let mut per_class = [0usize; CLASSES];
    for key in &ranked {
        let idx = key.idx as usize;
        let class = class_of(&bids[idx]);
        if status[idx] == Status::Eligible && per_class[class] < caps[class] {
            per_class[class] += 1;
            status[idx] = Status::Standby;
            standby.push(bids[idx].id.clone());
            standby_bookings.push(bids[idx].booking.clone());
        }
    }

    // Pass 2: reasons for everyone else, and the highest losing amount for uniform_price.
    let turn = Turns::new(&prio, &awards, available);
    let mut highest_losing: Option<i64> = None;
    let mut losers: Vec<Loser<K>> = Vec::with_capacity(if by_id { bids.len() } else { 0 });
    let mut unsorted: Vec<(u32, LoseReason)> = Vec::new();
    for (idx, (bid, st)) in bids.iter().zip(&status).enumerate() {
        let reason = match *st {
            Status::Won => continue,
            Status::Standby => {
                highest_losing = highest_losing.max(Some(bid.amount_minor));
                continue;
            }
            Status::Lost(reason) => reason,
            Status::Eligible => {
                highest_losing = highest_losing.max(Some(bid.amount_minor));
                let remaining = turn.remaining_at(&prio.key(idx));
                let party = u32::from(bid.units);
                if !bid.partial_ok && remaining > 0 && remaining < party {
                    LoseReason::PartyDoesNotFit
                } else {
                    LoseReason::Outbid
                }
            }
        };
        if by_id {
            losers.push(Loser {
                id: bid.id.clone(),
                reason,
            });
        } else {
            unsorted.push((idx as u32, reason));
        }
    }
    if !by_id {
        unsorted.sort_unstable_by(|a, b| canonical_cmp(&bids[a.0 as usize], &bids[b.0 as usize]));
        losers = unsorted
            .into_iter()
            .map(|(idx, reason)| Loser {
                id: bids[idx as usize].id.clone(),
                reason,
            })
            .collect();
    }

    let clearing = (rules.policy == Policy::UniformPrice)
        .then(|| policy::uniform_price::clearing_price(rules.reserve_minor, highest_losing));
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
