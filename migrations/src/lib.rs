//! Schema migrations, run on start (SQLite) or by `surclass migrate` (both engines).
pub use sea_orm_migration::prelude::*;

mod m20261123_000001_core_tables;
mod m20261123_000002_simulated_gateway;
mod m20261123_000003_notifications;
mod m20261123_000004_console;
mod m20261204_000005_job_priority;
mod m20261204_000006_outcome_priority;
mod m20261206_000007_bookings_by_change;
mod m20261206_000008_cancelled_awards;
mod m20261206_000009_lots_in_play;

pub struct Migrator;

#[async_trait::async_trait]
impl MigratorTrait for Migrator {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        vec![
            Box::new(m20261123_000001_core_tables::Migration),
            Box::new(m20261123_000002_simulated_gateway::Migration),
            Box::new(m20261123_000003_notifications::Migration),
            Box::new(m20261123_000004_console::Migration),
            Box::new(m20261204_000005_job_priority::Migration),
            Box::new(m20261204_000006_outcome_priority::Migration),
            Box::new(m20261206_000007_bookings_by_change::Migration),
            Box::new(m20261206_000008_cancelled_awards::Migration),
            Box::new(m20261206_000009_lots_in_play::Migration),
        ]
    }
}
