//! The matching core on arbitrary small lots: it never panics on valid input, never awards
//! more than the free capacity, upgrades a party whole unless it said partial is fine (and
//! splits at most one), charges nobody more than they bid, accounts for every bid exactly
//! once, and gives the same plan whatever order the bids come in.
#![no_main]

use std::collections::BTreeMap;

use libfuzzer_sys::fuzz_target;
use surclass_core::matching::{AwardError, BidInput, LotRules, MAX_PARTY, MAX_TIER_WEIGHT_PERCENT, Policy, award};

fn rules(head: &[u8]) -> LotRules {
    let reserve = i64::from(head[2]) * 10;
    LotRules {
        capacity: u32::from(head[0] % 24),
        entitled_units: u32::from(head[1] % 4),
        reserve_minor: reserve,
        maximum_minor: reserve + i64::from(head[3]) * 10,
        policy: [Policy::Priority, Policy::MaxRevenue, Policy::UniformPrice][usize::from(head[4] % 3)],
        tier_weight_percent: u32::from(head[5]) % (MAX_TIER_WEIGHT_PERCENT + 1),
    }
}

fn bid(i: u32, b: &[u8]) -> BidInput<u32> {
    BidInput {
        id: i,
        booking: i,
        amount_minor: i64::from(u16::from_le_bytes([b[0], b[1]]) % 4_000),
        units: 1 + b[2] % MAX_PARTY,
        partial_ok: b[3] & 1 == 1,
        submitted_at: i64::from(b[4] % 8),
        tier: (b[3] >> 1) % 4,
        withdrawn: b[3] & 0x80 != 0,
    }
}

fuzz_target!(|data: &[u8]| {
    if data.len() < 6 {
        return;
    }
    let rules = rules(&data[..6]);
    let bids: Vec<BidInput<u32>> = data[6..]
        .chunks_exact(5)
        .take(200)
        .enumerate()
        .map(|(i, b)| bid(i as u32, b))
        .collect();
    let plan = match award(&rules, &bids) {
        Ok(plan) => plan,
        Err(AwardError::TooLargeForMaxRevenue { .. }) => return,
        Err(e) => panic!("valid input refused: {e}"),
    };

    // Deterministic, whatever the order of the bids.
    let mut reversed = bids.clone();
    reversed.reverse();
    assert_eq!(award(&rules, &reversed).unwrap(), plan, "order changed the plan");

    // Capacity never exceeded.
    assert!(plan.units_awarded() <= rules.available_units());

    // Every bid exactly once: winner, standby or loser.
    let mut seen: BTreeMap<u32, usize> = BTreeMap::new();
    for id in plan.winners.iter().map(|w| w.id).chain(plan.standby.iter().copied()).chain(plan.losers.iter().map(|l| l.id)) {
        *seen.entry(id).or_default() += 1;
    }
    assert_eq!(seen.len(), bids.len(), "a bid is missing from the plan");
    for (id, n) in &seen {
        assert_eq!(*n, 1, "bid {id} appears {n} times");
    }

    // Parties whole, at most one split, nobody pays more than they bid or outside the range.
    let mut split = 0;
    let mut revenue = 0;
    for w in &plan.winners {
        let b = &bids[w.id as usize];
        assert!(!b.withdrawn, "a withdrawn bid won");
        assert_eq!(w.party, b.units);
        assert!(w.units >= 1 && w.units <= b.units);
        if w.units < b.units {
            assert!(b.partial_ok, "party of bid {} split without consent", w.id);
            split += 1;
        }
        assert!(b.amount_minor >= rules.reserve_minor && b.amount_minor <= rules.maximum_minor);
        assert!(w.price_per_unit_minor <= b.amount_minor, "charged above the bid");
        assert!(w.price_per_unit_minor >= rules.reserve_minor, "priced below the reserve");
        assert_eq!(w.total_minor, w.price_per_unit_minor * i64::from(w.units));
        revenue += w.total_minor;
    }
    assert!(split <= 1, "{split} parties split");
    assert_eq!(revenue, plan.revenue_minor);
});
