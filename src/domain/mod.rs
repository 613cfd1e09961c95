//! Domain types shared by the services: parsed, valid values with names from the trade.

pub mod identity;
