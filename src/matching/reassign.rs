//! `reassign`: a winner's payment failed; its units go to the standby list.

use std::collections::HashMap;

use super::model::{AwardError, AwardPlan, BidInput, BidKey, LoseReason, Loser, LotRules, Winner};
use super::policy::uniform_price::price_for;
use super::rank::canonical_cmp;

/// Removes the winner `failed` (it becomes a loser, [`LoseReason::PaymentFailed`]) and walks the
/// standby list in order, promoting each bid whose party fits the free units (the failed
/// winner's plus any left over). A `partial_ok` bid may be cut to the free units if the plan
/// has no split party yet. Other winners keep their units and prices; promoted bids pay their
/// own amount (under `uniform_price`, the clearing price if lower, which it never is for a
/// bid that lost). Deterministic: the same plan and failure give the same result.
///
/// The standby list can refill the whole lot once; after more failures than that, award the
/// lot again without the failed bids.
pub fn reassign<K: BidKey>(
    rules: &LotRules,
    plan: &AwardPlan<K>,
    bids: &[BidInput<K>],
    failed: &K,
) -> Result<AwardPlan<K>, AwardError> {
    let position = plan
        .winners
        .iter()
        .position(|w| &w.id == failed)
        .ok_or_else(|| AwardError::NotAWinner(failed.to_string()))?;
    let mut next = plan.clone();
    next.winners.remove(position);
    let loser = Loser {
        id: failed.clone(),
        reason: LoseReason::PaymentFailed,
    };
    let at = next
        .losers
        .partition_point(|l| (&l.id, l.reason) <= (&loser.id, loser.reason));
    next.losers.insert(at, loser);

    let mut free = rules.available_units().saturating_sub(next.units_awarded());
    let mut split_used = next.winners.iter().any(|w| w.units < w.party);
    let standby_bids = lookup(bids, &plan.standby)?;
    let mut still_standby = Vec::with_capacity(plan.standby.len());
    for (id, bid) in plan.standby.iter().zip(standby_bids) {
        let party = u32::from(bid.units);
        let units = if free == 0 {
            0
        } else if party <= free {
            party
        } else if bid.partial_ok && !split_used {
            split_used = true;
            free
        } else {
            0
        };
        if units == 0 {
            still_standby.push(id.clone());
            continue;
        }
        free -= units;
        let price = plan
            .clearing_price_minor
            .map_or(bid.amount_minor, |c| price_for(c, bid.amount_minor));
        next.winners.push(Winner {
            id: bid.id.clone(),
            booking: bid.booking.clone(),
            units: units as u8,
            party: bid.units,
            price_per_unit_minor: price,
            total_minor: price * i64::from(units),
        });
    }
    next.standby = still_standby;
    next.revenue_minor = next.winners.iter().map(|w| w.total_minor).sum();
    Ok(next)
}

/// The standby bids, in standby order. Where ids repeat, the canonical first one is taken,
/// so the result never depends on the order of `bids`.
fn lookup<'b, K: BidKey>(
    bids: &'b [BidInput<K>],
    ids: &[K],
) -> Result<Vec<&'b BidInput<K>>, AwardError> {
    let mut found: HashMap<&K, Option<&BidInput<K>>> = ids.iter().map(|id| (id, None)).collect();
    for bid in bids {
        if let Some(slot) = found.get_mut(&bid.id) {
            match slot {
                Some(b) if canonical_cmp(bid, b).is_ge() => {}
                _ => *slot = Some(bid),
            }
        }
    }
    ids.iter()
        .map(|id| {
            found
                .get(id)
                .copied()
                .flatten()
                .ok_or_else(|| AwardError::MissingBid(id.to_string()))
        })
        .collect()
}
