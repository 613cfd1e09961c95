//! The pure matching core: a lot's rules and its bids in, an award plan out. No IO.

pub mod file;
