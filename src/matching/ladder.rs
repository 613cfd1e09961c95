//! Resource ladders: every lot of one resource (a flight on a date, a property on a night, a
//! branch on a day) awarded in one call, top class first.
//!
//! - A booking wins at most one lot. Lots are awarded from the highest target class down
//!   (then the highest origin class, then lot id), and a booking that has won leaves the
//!   later lots ([`LoseReason::UpgradedElsewhere`]). Bidding on several lots is how a traveller
//!   ranks alternatives ("business, or else premium economy"): the best class available wins.
//!   Rankings against class order are not supported: a lower class is never preferred.
//! - It also leaves the standby lists of the lots it did not win, so that a failed payment
//!   elsewhere can never give one booking two upgrades.
//! - Chained capacity: each unit won in a lot frees a seat of its origin class; the first later
//!   lot that upgrades into that class and has `chained_capacity` gets those units on top of its
//!   capacity (business→first winners free business seats for economy→business). If such a
//!   winner's payment fails and `reassign` promotes a smaller party, the chained lot holds more
//!   units than were freed: settle the upper lot's payments before charging the chained one.

use std::collections::HashSet;
use std::hash::{BuildHasherDefault, Hasher};

use super::award::award_excluding;
use super::model::{AwardError, AwardPlan, BidInput, BidKey, LoseReason, Loser, LotRules};

/// One lot of the resource and its bids.
#[derive(Debug, Clone)]
pub struct LadderLot<'a, K> {
    pub lot: K,
    /// The class bidders hold and the class they bid for; a higher number is a better class.
    pub from_class: u8,
    pub to_class: u8,
    /// Receives the units freed in `to_class` by winners of lots that upgrade out of it.
    pub chained_capacity: bool,
    pub rules: LotRules,
    pub bids: &'a [BidInput<K>],
}

/// One lot's outcome within a ladder.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LotAward<K> {
    pub lot: K,
    /// Units added to the lot's capacity by chaining.
    pub chained_units: u32,
    pub plan: AwardPlan<K>,
}

/// The ladder's outcome: lots in the order they were awarded (top class first).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LadderPlan<K> {
    pub lots: Vec<LotAward<K>>,
}

/// Awards every lot of one resource; see the module comment for the rules.
pub fn award_ladder<K: BidKey>(lots: &[LadderLot<'_, K>]) -> Result<LadderPlan<K>, AwardError> {
    let mut order: Vec<usize> = (0..lots.len()).collect();
    order.sort_by(|&a, &b| {
        let (a, b) = (&lots[a], &lots[b]);
        b.to_class
            .cmp(&a.to_class)
            .then(b.from_class.cmp(&a.from_class))
            .then_with(|| a.lot.cmp(&b.lot))
    });

    // Bookings that have won: few (at most the units of the lots), checked for every bid.
    let mut won: HashSet<K, BuildHasherDefault<Fx>> = HashSet::default();
    let mut chained = vec![0u32; lots.len()];
    let mut awarded = Vec::with_capacity(lots.len());
    for (step, &i) in order.iter().enumerate() {
        let lot = &lots[i];
        let rules = LotRules {
            capacity: lot.rules.capacity.saturating_add(chained[i]),
            ..lot.rules.clone()
        };
        let (plan, standby_bookings) = award_excluding(&rules, lot.bids, |booking| {
            !won.is_empty() && won.contains(booking)
        })?;
        won.extend(plan.winners.iter().map(|w| w.booking.clone()));
        let freed = plan.units_awarded();
        let receiver = order[step + 1..]
            .iter()
            .copied()
            .find(|&j| lots[j].chained_capacity && lots[j].to_class == lot.from_class);
        if let Some(j) = receiver {
            chained[j] = chained[j].saturating_add(freed);
        }
        awarded.push((i, plan, standby_bookings));
    }

    let lots = awarded
        .into_iter()
        .map(|(i, mut plan, standby_bookings)| {
            drop_upgraded_from_standby(&mut plan, &standby_bookings, &won);
            LotAward {
                lot: lots[i].lot.clone(),
                chained_units: chained[i],
                plan,
            }
        })
        .collect();
    Ok(LadderPlan { lots })
}

/// Standby bids whose booking won some lot become losers (`UpgradedElsewhere`). A lot's own
/// winners are never on its standby, so any match won elsewhere.
fn drop_upgraded_from_standby<K: BidKey>(
    plan: &mut AwardPlan<K>,
    standby_bookings: &[K],
    won: &HashSet<K, BuildHasherDefault<Fx>>,
) {
    let mut keep = Vec::with_capacity(plan.standby.len());
    for (id, booking) in plan.standby.drain(..).zip(standby_bookings) {
        if won.contains(booking) {
            let reason = LoseReason::UpgradedElsewhere;
            let at = plan
                .losers
                .partition_point(|l| (&l.id, l.reason) <= (&id, reason));
            plan.losers.insert(at, Loser { id, reason });
        } else {
            keep.push(id);
        }
    }
    plan.standby = keep;
}

/// A small multiplicative hasher (the one rustc uses): the keys are our own ids, so there is
/// no untrusted input to defend against, and SipHash would dominate the lookup per bid.
#[derive(Default, Clone, Copy)]
struct Fx(u64);

impl Hasher for Fx {
    fn write(&mut self, bytes: &[u8]) {
        for chunk in bytes.chunks(8) {
            let mut word = [0u8; 8];
            word[..chunk.len()].copy_from_slice(chunk);
            self.write_u64(u64::from_le_bytes(word));
        }
    }

    fn write_u64(&mut self, n: u64) {
        self.0 = (self.0.rotate_left(5) ^ n).wrapping_mul(0x51_7c_c1_b7_27_22_0a_95);
    }

    fn write_u8(&mut self, n: u8) {
        self.write_u64(u64::from(n));
    }

    fn write_usize(&mut self, n: usize) {
        self.write_u64(n as u64);
    }

    fn finish(&self) -> u64 {
        self.0
    }
}
