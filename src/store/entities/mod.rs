//! Tables as sea-orm entities, written by hand so they are the same on SQLite and PostgreSQL.
//! Enum-like columns are plain strings; the domain types parse them.

pub mod api_key;
pub mod audit_entry;
pub mod award;
pub mod bid;
pub mod bid_event;
pub mod booking;
pub mod booking_lot;
pub mod console_session;
pub mod idempotency_key;
pub mod job;
pub mod lot;
pub mod operator;
pub mod operator_user;
pub mod outbox;
pub mod payment;
pub mod privacy_setting;
pub mod setting;
pub mod unsubscribe;
pub mod webhook_attempt;
pub mod webhook_endpoint;
