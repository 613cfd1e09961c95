//! `max_revenue`: the allocation with the greatest revenue, exactly (a 0/1 knapsack).
//!
//! Items are the candidates in priority order; bid i weighs its party `s` and is worth
//! `s × amount`, or, for the one split party a lot may have, `u × amount` for `u` in
//! `1..s`. Ties: among optimal allocations, the one whose units per bid, read in priority
//! order, is greatest (earlier bids get as much as possible). A suffix DP gives exactly that:
//! `best[i][c][k]` = most revenue from bids `i..` in `c` units with `k` splits still allowed;
//! walking forward from bid 0 and taking, at each bid, the most units that still reach the
//! optimum picks the lexicographically greatest optimal allocation.
//!
//! Only two rows of values are kept; the choices (units, one byte) are kept for every cell so
//! the walk can replay them. Cost: candidates × (A + 1) × 2 cells.
//!
//! Before the DP, a bound removes candidates that cannot be in any optimal allocation: an
//! allocation giving bid i `u` units earns at most `u × amount_i + LP(A − u)`, where `LP(c)` is
//! the fractional optimum (the best `c` units by amount, parties cut at will). If that is below
//! the revenue of a feasible allocation (greedy by amount), every allocation awarding bid i
//! is strictly worse than one we already have, so dropping i changes neither the optimum nor
//! its tie-break. Parties are small against a lot's units, so the bound is tight and usually
//! leaves a few dozen bids of the thousands of candidates.

use super::Award;
use crate::matching::model::{AwardError, BidInput};
use crate::matching::rank::Key;

/// Refuse tables larger than this many bytes (thousands of units in one lot).
const MAX_TABLE_BYTES: usize = 1 << 28;

/// `ranked` is in priority order and contains every bid the optimum can award (see
/// [`super`]). Revenue fits in `i64`: `LotRules::validate` bounds `available × maximum`.
pub(crate) fn allocate<K>(
    bids: &[BidInput<K>],
    ranked: &[Key],
    available: u32,
) -> Result<Vec<Award>, AwardError> {
    let ranked = &prune(bids, ranked, available);
    let width = available as usize + 1;
    let cells = ranked.len().saturating_mul(2 * width);
    if cells > MAX_TABLE_BYTES {
        return Err(AwardError::TooLargeForMaxRevenue { available });
    }
    // Row layout: [k = 0 (no split left) | k = 1 (a split allowed)], each `width` long.
    let mut next = vec![0i64; 2 * width];
    let mut cur = vec![0i64; 2 * width];
    let mut choice = vec![0u8; cells];

    for (i, key) in ranked.iter().enumerate().rev() {
        let bid = &bids[key.idx as usize];
        let party = bid.units as usize;
        let amount = bid.amount_minor;
        // Only used when the party fits, where LotRules::validate bounds it; saturate otherwise.
        let whole = (party as i64).saturating_mul(amount);
        let choices = &mut choice[i * 2 * width..(i + 1) * 2 * width];
        for k in 0..2 {
            let row = k * width;
            for c in 0..width {
                // Options from most units to fewest; only a strictly better one replaces the
                // current pick, so ties keep the most units for this (earlier) bid.
                let (mut best, mut units) = (i64::MIN, 0usize);
                if party <= c {
                    best = whole + next[row + c - party];
                    units = party;
                }
                if k == 1 && bid.partial_ok {
                    for u in (1..party.min(c + 1)).rev() {
                        let v = u as i64 * amount + next[c - u];
                        if v > best {
                            best = v;
                            units = u;
                        }
                    }
                }
                let skip = next[row + c];
                if skip > best {
                    best = skip;
                    units = 0;
                }
                cur[row + c] = best;
                choices[row + c] = units as u8;
            }
        }
        std::mem::swap(&mut cur, &mut next);
    }

    let mut winners = Vec::new();
    let (mut c, mut k) = (available as usize, 1usize);
    for (i, key) in ranked.iter().enumerate() {
        let units = choice[i * 2 * width + k * width + c] as usize;
        if units == 0 {
            continue;
        }
        if units < bids[key.idx as usize].units as usize {
            k = 0;
        }
        c -= units;
        winners.push(Award {
            idx: key.idx,
            units: units as u8,
        });
    }
    Ok(winners)
}

/// The candidates that some allocation at least as good as the greedy one could award.
fn prune<K>(bids: &[BidInput<K>], ranked: &[Key], available: u32) -> Vec<Key> {
    let mut by_amount: Vec<(i64, u32, bool)> = ranked
        .iter()
        .map(|k| {
            let bid = &bids[k.idx as usize];
            (bid.amount_minor, u32::from(bid.units), bid.partial_ok)
        })
        .collect();
    by_amount.sort_unstable_by_key(|&(amount, _, _)| std::cmp::Reverse(amount));

    // A feasible allocation: whole parties by amount, the first partial_ok misfit split.
    let (mut left, mut split_used, mut greedy) = (available, false, 0i64);
    for &(amount, party, partial_ok) in &by_amount {
        let units = if party <= left {
            party
        } else if partial_ok && !split_used && left > 0 {
            split_used = true;
            left
        } else {
            0
        };
        left -= units;
        greedy += i64::from(units) * amount;
    }

    // The fractional optimum in c units.
    let lp = |c: u32| -> i64 {
        let (mut left, mut total) = (c, 0i64);
        for &(amount, party, _) in &by_amount {
            let units = party.min(left);
            total += i64::from(units) * amount;
            left -= units;
            if left == 0 {
                break;
            }
        }
        total
    };
    let max_party = u32::from(crate::matching::MAX_PARTY).min(available);
    let lp_without: Vec<i64> = (0..=max_party).map(|u| lp(available - u)).collect();

    ranked
        .iter()
        .copied()
        .filter(|k| {
            let bid = &bids[k.idx as usize];
            let party = u32::from(bid.units);
            let could_earn = |u: u32| i64::from(u) * bid.amount_minor + lp_without[u as usize];
            let whole = party <= available && could_earn(party) >= greedy;
            let split =
                bid.partial_ok && (1..party.min(available + 1)).any(|u| could_earn(u) >= greedy);
            whole || split
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::matching::rank::{Order, Ranker};

    fn bid(amount_minor: i64, units: u8, partial_ok: bool) -> BidInput<u32> {
        BidInput {
            id: 0,
            booking: 0,
            amount_minor,
            units,
            partial_ok,
            submitted_at: 0,
            tier: 0,
            withdrawn: false,
        }
    }

    fn solve(bids: &mut [BidInput<u32>], available: u32) -> Vec<(u32, u8)> {
        for (i, b) in bids.iter_mut().enumerate() {
            b.id = i as u32;
        }
        let ranker = Ranker::new(bids, 0, Order::Priority);
        let mut keys: Vec<Key> = (0..bids.len()).map(|i| ranker.key(i)).collect();
        keys.sort_by(|a, b| ranker.cmp(a, b));
        allocate(bids, &keys, available)
            .unwrap()
            .iter()
            .map(|a| (a.idx, a.units))
            .collect()
    }

    #[test]
    fn a_split_party_fills_the_units_whole_parties_cannot() {
        // 5 units: the trio whole (900) + two of the partial quartet (2 × 250) = 1400 beats
        // the quartet whole + nothing (1000) and the trio + the pair (900 + 400).
        let mut bids = [bid(300, 3, false), bid(250, 4, true), bid(200, 2, false)];
        assert_eq!(solve(&mut bids, 5), [(0, 3), (1, 2)]);
    }

    #[test]
    fn the_bound_keeps_bids_that_tie_with_the_greedy_allocation() {
        // Greedy by amount takes a (2 units, 200); b + c tie it and rank later: a stays.
        let mut bids = [bid(100, 2, false), bid(100, 1, false), bid(100, 1, false)];
        assert_eq!(solve(&mut bids, 2), [(0, 2)]);
    }

    #[test]
    fn huge_amounts_on_parties_that_cannot_fit_do_not_overflow() {
        let mut bids = [bid(i64::MAX / 2, 9, false), bid(i64::MAX / 2, 1, false)];
        assert_eq!(solve(&mut bids, 1), [(1, 1)]);
    }
}
