//! Surclass: sealed-bid upgrade auctions.
//!
//! From the inside out: `money`, `matching`, `domain` and `local_time` are pure (no IO);
//! `store` is the database; `http` serves travellers, operators and partners; `app` wires it
//! together.

pub mod app;
pub mod config;
pub mod demo;
pub mod domain;
pub mod http;
pub mod ids;
pub mod jobs;
pub mod loadtest;
pub mod local_time;
pub mod matching;
pub mod money;
pub mod notifications;
pub mod payments;
pub mod services;
pub mod store;
pub mod telemetry;
