//! Domain types shared by the services: parsed, valid values with names from the trade.

pub mod award;
pub mod bid;
pub mod identity;
pub mod lot;
pub mod outcome;
pub mod validation;
