//! The pure parts of Surclass, compiled from the very same source files, without the web
//! server, database and payment crates the `surclass` library also builds: a fuzz build
//! (with sanitizer instrumentation) of those would take many minutes in CI for nothing.
//! `money` and `matching` depend on nothing else in the crate (they are the pure core).

#[path = "../../src/money.rs"]
pub mod money;

#[path = "../../src/matching/mod.rs"]
pub mod matching;
