//! The award policies, each on a short list of candidates already in priority order.
//!
//! Partial parties: a `partial_ok` bid whose whole party does not fit may be cut to the units
//! that are left, at least one. At most one party per lot is split, so that cutting parties
//! is the exception that fills the last seats and never a way to spread a lot thin. Under
//! `priority` this is the first `partial_ok` bid whose party does not fit the remaining
//! units (which ends the walk, as nothing is left after it); under `max_revenue` it is part of
//! the optimisation (one split party at most, any number of units from 1 to party − 1).
//!
//! Why the candidates suffice (see [`super::select`]): write A for the available units and
//! call a class the bids of one party size `s` and one `partial_ok` flag.
//! - `priority`: within a class, winners form a prefix of the ranking. An all-or-nothing bid
//!   skipped because its party did not fit leaves every later bid of its size unable to fit
//!   (remaining units only go down); a `partial_ok` bid is never skipped while units remain.
//!   So at most ⌊A/s⌋ whole winners per class, plus one split party: the best ⌊A/s⌋ + 1 of a
//!   `partial_ok` class and the best ⌊A/s⌋ of an all-or-nothing class contain every winner.
//! - `max_revenue`: take the optimal allocation (with its tie-break) and suppose it awards a
//!   bid b of class (s, p) that is not among the best ⌊A/s⌋ + p of the class in revenue order
//!   (real amount, then priority). The allocation awards at most ⌊A/s⌋ whole parties of size s
//!   and one split party, so some bid b' ranked above b in that class gets nothing. Give b's
//!   units to b' instead: b' is as flexible as b (same class), pays at least as much per unit,
//!   and if it pays the same it ranks earlier in the priority order, so the new allocation has
//!   at least the revenue and wins the tie-break. That contradicts optimality, so every bid the
//!   optimum awards is among the candidates, and the optimum over candidates is the optimum.
//! - `uniform_price` chooses winners as `priority` does.

pub(crate) mod max_revenue;
pub(crate) mod priority;
pub(crate) mod uniform_price;

/// Units awarded to the bid at `idx` of the input slice.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Award {
    pub idx: u32,
    pub units: u8,
}

/// How many bids of a class can win at most (see the module comment).
pub(crate) fn class_cap(available: u32, party: u8, partial_ok: bool) -> usize {
    if available == 0 {
        return 0;
    }
    (available / u32::from(party)) as usize + usize::from(partial_ok)
}
