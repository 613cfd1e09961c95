//! The database: connection, migrations, and the queries and mutations the services need.
//!
//! SQLite is the embedded default, PostgreSQL the production store. SQLite has one writer at
//! a time and ignores `FOR UPDATE`, so writes go through [`write_txn`], which starts SQLite
//! transactions with `BEGIN IMMEDIATE` (taking the write lock up front, waiting up to the
//! busy timeout) instead of failing half-way with "database is locked".

pub mod api_keys;
pub mod batch;
pub mod entities;
pub mod lots;
pub mod payments;

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, LazyLock};
use std::time::Duration;

use migration::{Migrator, MigratorTrait};
use sea_orm::sqlx::sqlite::{SqliteJournalMode, SqliteSynchronous};
use sea_orm::{
    ConnectOptions, Database, DatabaseConnection, DatabaseTransaction, DbBackend, DbErr,
    SqliteTransactionMode, TransactionOptions, TransactionTrait,
};

pub use sea_orm::DatabaseConnection as Db;

/// Connects and brings the schema up to date. SQLite files are created when missing.
pub async fn connect(url: &str, max_connections: u32) -> Result<DatabaseConnection, DbErr> {
    let mut options = ConnectOptions::new(url.to_owned());
    options
        .max_connections(max_connections)
        .min_connections(1)
        .connect_timeout(Duration::from_secs(10))
        .sqlx_logging(false)
        .map_sqlx_sqlite_opts(|o| {
            o.create_if_missing(true)
                .journal_mode(SqliteJournalMode::Wal)
                .synchronous(SqliteSynchronous::Normal)
                .busy_timeout(Duration::from_secs(10))
                .foreign_keys(true)
        });
    Database::connect(options).await
}

pub async fn migrate(db: &DatabaseConnection) -> Result<(), DbErr> {
    Migrator::up(db, None).await
}

/// Pending migrations, for `readyz` and for refusing to serve an out-of-date schema.
pub async fn pending_migrations(db: &DatabaseConnection) -> Result<usize, DbErr> {
    Ok(Migrator::get_pending_migrations(db).await?.len())
}

/// A transaction that will write: `BEGIN IMMEDIATE` on SQLite, a plain `BEGIN` on PostgreSQL
/// (where row locks taken inside do the serialising).
pub async fn write_txn(db: &DatabaseConnection) -> Result<DatabaseTransaction, DbErr> {
    let options = TransactionOptions {
        sqlite_transaction_mode: (db.get_database_backend() == DbBackend::Sqlite)
            .then_some(SqliteTransactionMode::Immediate),
        ..Default::default()
    };
    db.begin_with_options(options).await
}

/// The batch writers of this process (bids, simulated holds) queue here, in order, before
/// writing to SQLite. SQLite has one writer at a time and its busy handler waits for the
/// write lock by sleeping (up to 100 ms a try), which under load costs far more than the
/// writes; a FIFO queue in the process hands the lock over at once. One queue per database
/// file, as SQLite's lock is; PostgreSQL needs none.
pub async fn sqlite_write_turn(
    db: &DatabaseConnection,
) -> Option<tokio::sync::OwnedMutexGuard<()>> {
    type Turns = HashMap<PathBuf, Arc<tokio::sync::Mutex<()>>>;
    static TURNS: LazyLock<std::sync::Mutex<Turns>> = LazyLock::new(Default::default);
    if db.get_database_backend() != DbBackend::Sqlite {
        return None;
    }
    let file = db
        .get_sqlite_connection_pool()
        .connect_options()
        .get_filename()
        .to_path_buf();
    let turn = TURNS
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
        .entry(file)
        .or_default()
        .clone();
    Some(turn.lock_owned().await)
}

/// Cheap round trip for readiness checks.
pub async fn ping(db: &DatabaseConnection) -> Result<(), DbErr> {
    db.ping().await
}
