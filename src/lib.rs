//! Surclass: sealed-bid upgrade auctions.
//!
//! Layout, from the inside out: `money` and `matching` are pure (no IO); `store` is the
//! database; `http` serves travellers, operators and partners; `app` wires it all together.

pub mod matching;
pub mod money;
