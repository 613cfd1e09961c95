//! `uniform_price`: winners as under `priority`, one price per unit for all.

/// The clearing price: the highest losing per-unit bid or the reserve, whichever is higher.
/// `highest_losing` is the highest amount among eligible bids that did not win.
pub(crate) fn clearing_price(reserve_minor: i64, highest_losing: Option<i64>) -> i64 {
    highest_losing.map_or(reserve_minor, |h| h.max(reserve_minor))
}

/// What a winner pays per unit: the clearing price, never above its own bid (a bid can win
/// below a higher losing bid when that bid's party did not fit).
pub(crate) fn price_for(clearing_minor: i64, own_amount_minor: i64) -> i64 {
    clearing_minor.min(own_amount_minor)
}
