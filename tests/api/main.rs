//! Integration tests: the real server on a real port, on SQLite and on PostgreSQL.

mod support;

mod award;
mod bookings;
mod bought_now;
mod console;
mod deadline;
mod demo;
mod health;
mod idempotency;
mod keys;
mod limits;
mod lost_capture;
mod lots;
mod notifications;
mod openapi;
mod pages;
mod reconcile;
mod room;
mod scale;
mod traveller;
mod webhooks;
