//! Integration tests: the real server on a real port, on SQLite and on PostgreSQL.

mod support;

mod demo;
mod health;
mod openapi;
