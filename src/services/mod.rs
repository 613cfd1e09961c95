//! Use cases: each function is one thing a traveller, operator or partner does, run in one
//! transaction, with its own error enum. HTTP handlers call these and map the errors.

pub mod audit;
pub mod award;
pub mod bids;
pub mod bookings;
pub mod console_sessions;
pub mod data_rights;
pub mod events;
pub mod insights;
pub mod keys;
pub mod links;
pub mod lost_offers;
pub mod lots;
pub mod operator_users;
pub mod preview;
pub mod reconcile;
pub mod review;
pub mod room;
pub mod sessions;
pub mod settlement;
pub mod throttle;
