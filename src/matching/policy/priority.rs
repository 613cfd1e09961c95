//! `priority`: walk the ranking, award each party that fits the remaining units.

use super::Award;
use crate::matching::model::BidInput;
use crate::matching::rank::Key;

/// `ranked` is in priority order and contains every bid that can win (see [`super`]).
pub(crate) fn allocate<K>(bids: &[BidInput<K>], ranked: &[Key], available: u32) -> Vec<Award> {
    let mut remaining = available;
    let mut winners = Vec::new();
    for key in ranked {
        if remaining == 0 {
            break;
        }
        let bid = &bids[key.idx as usize];
        let party = u32::from(bid.units);
        let units = if party <= remaining {
            party
        } else if bid.partial_ok {
            // The one split party of the lot: it takes what is left, and the walk ends.
            remaining
        } else {
            continue;
        };
        remaining -= units;
        winners.push(Award {
            idx: key.idx,
            units: units as u8,
        });
    }
    winners
}
