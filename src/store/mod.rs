//! The database: connection, migrations, and the queries and mutations the services need.
//!
//! SQLite is the embedded default, PostgreSQL the production store. SQLite has one writer at
//! a time and ignores `FOR UPDATE`, so writes go through [`write_txn`], which starts SQLite
//! transactions with `BEGIN IMMEDIATE` (taking the write lock up front, waiting up to the
//! busy timeout) instead of failing half-way with "database is locked".

pub mod api_keys;
pub mod batch;
pub mod entities;
pub mod idempotency;
pub mod keyset;
pub mod lots;
pub mod payments;
pub mod shape;

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

/// Compiled statements kept per connection. Batched statements come in a few fixed shapes
/// ([`shape`]) but several hundred in all (each `IN` list and insert of 1, 2, 4 … 1,024 rows);
/// sqlx's default of 100 would evict them before they are used again.
const STATEMENT_CACHE: usize = 1024;

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
                .statement_cache_capacity(STATEMENT_CACHE)
        })
        .map_sqlx_postgres_opts(|o| o.statement_cache_capacity(STATEMENT_CACHE))
        .map_sqlx_sqlite_pool_opts(|pool| {
            pool.after_connect(|conn, _| {
                Box::pin(async move {
                    stable_plans(conn).await?;
                    retry_soon_when_busy(conn).await
                })
            })
        });
    Database::connect(options).await
}

/// Turns off SQLite's memory statistics for the process. With them on (the bundled build's
/// default) every heap allocation and free in SQLite takes a process-wide mutex to count
/// itself, for figures nothing here reads. (It also disables SQLite's soft and hard heap
/// limits, which nothing here sets.) Later than SQLite's first use SQLite refuses
/// (`SQLITE_MISUSE`) and keeps counting: harmless in release builds; debug builds panic, so
/// that a call moved too late is noticed.
///
/// # Safety
/// No other thread may be using SQLite: its configuration is not thread-safe. Call it first
/// thing in `main`.
pub unsafe fn sqlite_without_memory_statistics() {
    use libsqlite3_sys::{SQLITE_CONFIG_MEMSTATUS, SQLITE_OK, sqlite3_config};
    // SAFETY: MEMSTATUS takes one int; the caller guarantees no other thread uses SQLite.
    let rc = unsafe { sqlite3_config(SQLITE_CONFIG_MEMSTATUS, 0 as std::ffi::c_int) };
    debug_assert_eq!(rc, SQLITE_OK, "SQLite was already in use");
}

/// Turns on SQLite's query planner stability guarantee for one connection. Without it SQLite
/// marks every statement with a bound `LIMIT ?` (each sea-orm `.one()`) as depending on its
/// parameters and compiles it again on every execution; profiles of bid intake showed ~10% of
/// the time spent re-preparing. With it, a cached statement keeps its plan.
async fn stable_plans(
    conn: &mut sea_orm::sqlx::SqliteConnection,
) -> Result<(), sea_orm::sqlx::Error> {
    use libsqlite3_sys::{SQLITE_DBCONFIG_ENABLE_QPSG, SQLITE_OK, sqlite3_db_config};
    let mut handle = conn.lock_handle().await?;
    let db = handle.as_raw_handle().as_ptr();
    // SAFETY: `db` is this connection's open handle, held locked for the call; the option takes
    // an int (1 = on) and an optional out-pointer, passed as null.
    let rc = unsafe {
        sqlite3_db_config(
            db,
            SQLITE_DBCONFIG_ENABLE_QPSG,
            1 as std::ffi::c_int,
            std::ptr::null_mut::<std::ffi::c_int>(),
        )
    };
    if rc != SQLITE_OK {
        return Err(sea_orm::sqlx::Error::Protocol(format!(
            "sqlite3_db_config(ENABLE_QPSG) returned {rc}"
        )));
    }
    Ok(())
}

/// How long a connection waits for SQLite's write lock before giving up with "database is
/// locked" (the same as `busy_timeout` above, which this handler replaces).
const BUSY_WAIT: Duration = Duration::from_secs(10);

/// Replaces SQLite's busy handler on one connection. SQLite's own sleeps 1, 2, 5, 10 … up to
/// 100 ms between tries for the write lock, so with many short writers (the job worker's
/// message deliveries) a waiting connection mostly sleeps after the lock came free. This one
/// tries again after 0.1 ms, doubling to at most 1.6 ms, for the same total wait.
async fn retry_soon_when_busy(
    conn: &mut sea_orm::sqlx::SqliteConnection,
) -> Result<(), sea_orm::sqlx::Error> {
    use libsqlite3_sys::{SQLITE_OK, sqlite3_busy_handler};
    let mut handle = conn.lock_handle().await?;
    let db = handle.as_raw_handle().as_ptr();
    // SAFETY: `db` is this connection's open handle, held locked for the call; the handler is
    // a plain function that uses no state (a null argument).
    let rc = unsafe { sqlite3_busy_handler(db, Some(busy_pause), std::ptr::null_mut()) };
    if rc != SQLITE_OK {
        return Err(sea_orm::sqlx::Error::Protocol(format!(
            "sqlite3_busy_handler returned {rc}"
        )));
    }
    Ok(())
}

/// Called by SQLite on the connection's own thread (sqlx gives each connection one) with the
/// number of tries so far: sleep and try again (1), or give up (0).
unsafe extern "C" fn busy_pause(
    _: *mut std::ffi::c_void,
    tries: std::ffi::c_int,
) -> std::ffi::c_int {
    const LONGEST: Duration = Duration::from_micros(1_600);
    let pause = Duration::from_micros(100 << tries.clamp(0, 4));
    // Waited so far: at most the doubling start plus LONGEST per later try.
    let waited = LONGEST * (tries.max(0) as u32);
    if waited >= BUSY_WAIT {
        return 0;
    }
    std::thread::sleep(pause);
    1
}

/// Applies the pending migrations. On SQLite all of them run on one connection, in one write
/// transaction: sea-orm's migrator wraps a migration in a transaction only on PostgreSQL
/// (unless the migration asks otherwise, and none here does) and otherwise sends each
/// statement to whichever pooled connection is free, and an SQLite connection that sat idle
/// while another changed the schema compiles the next `CREATE` against the schema it had
/// cached ("index … already exists"). Taking the write lock first makes a second process
/// migrating at the same time wait for this one (up to the busy timeout, and then find
/// nothing to do) rather than fail; and on SQLite nothing is left half-applied.
pub async fn migrate(db: &DatabaseConnection) -> Result<(), DbErr> {
    if db.get_database_backend() != DbBackend::Sqlite {
        return Migrator::up(db, None).await;
    }
    // Nothing to do (a command run beside a live server): no write lock to wait for.
    if pending_migrations(db).await? == 0 {
        return Ok(());
    }
    let txn = write_txn(db).await?;
    Migrator::up(&txn, None).await?;
    txn.commit().await
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

/// The busiest writers of this process (bid and hold batches, the job queue's claims and
/// outcomes, message deliveries) queue here, in order, before writing to SQLite. SQLite has one
/// writer at a time and a connection that finds the lock taken polls for it; a FIFO queue in
/// the process hands the lock over at once. One queue per database file, as SQLite's lock is;
/// PostgreSQL needs none.
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

/// The file of a SQLite store, as SQLite names it; `None` for PostgreSQL and for a database
/// in memory (which SQLite lists with no file).
pub async fn sqlite_file(db: &DatabaseConnection) -> Result<Option<PathBuf>, DbErr> {
    use sea_orm::{ConnectionTrait, Statement};
    if db.get_database_backend() != DbBackend::Sqlite {
        return Ok(None);
    }
    let row = db
        .query_one_raw(Statement::from_string(
            DbBackend::Sqlite,
            "SELECT file FROM pragma_database_list WHERE name = 'main'",
        ))
        .await?;
    let file: Option<String> = row.map(|r| r.try_get("", "file")).transpose()?;
    Ok(file.filter(|f| !f.is_empty()).map(PathBuf::from))
}

/// Cheap round trip for readiness checks.
pub async fn ping(db: &DatabaseConnection) -> Result<(), DbErr> {
    db.ping().await
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Reads the QPSG option back from every connection the pool holds.
    async fn qpsg_of(conn: &mut sea_orm::sqlx::SqliteConnection) -> std::ffi::c_int {
        use libsqlite3_sys::{SQLITE_DBCONFIG_ENABLE_QPSG, sqlite3_db_config};
        let mut handle = conn.lock_handle().await.expect("lock handle");
        let mut on: std::ffi::c_int = -1;
        // SAFETY: open, locked handle; -1 leaves the option as it is and reports it in `on`.
        unsafe {
            sqlite3_db_config(
                handle.as_raw_handle().as_ptr(),
                SQLITE_DBCONFIG_ENABLE_QPSG,
                -1 as std::ffi::c_int,
                &mut on as *mut std::ffi::c_int,
            )
        };
        on
    }

    #[test]
    fn a_connection_waiting_for_the_write_lock_tries_again_soon_and_gives_up_after_the_timeout() {
        let tries_in_timeout = (BUSY_WAIT.as_micros() / 1_600) as std::ffi::c_int;
        // SAFETY: the handler reads neither argument's pointer.
        let again = |tries| unsafe { busy_pause(std::ptr::null_mut(), tries) };
        assert_eq!(again(0), 1);
        assert_eq!(again(tries_in_timeout - 1), 1);
        assert_eq!(again(tries_in_timeout), 0);
    }

    /// Two processes started at once on a new SQLite file (a server and `surclass migrate`,
    /// say) both come up: the second waits for the first's migrations and finds none left.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn two_starts_on_one_new_sqlite_file_both_migrate() {
        let dir = std::env::temp_dir().join(format!("surclass-twice-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(&dir).unwrap();
        let url = format!("sqlite://{}", dir.join("twice.db").display());
        let (one, other) = (
            connect(&url, 4).await.unwrap(),
            connect(&url, 4).await.unwrap(),
        );
        let (first, second) = tokio::join!(migrate(&one), migrate(&other));
        first.expect("the first start migrates");
        second.expect("the second start waits and finds nothing to do");
        assert_eq!(pending_migrations(&one).await.unwrap(), 0);
        one.close().await.unwrap();
        other.close().await.unwrap();
        std::fs::remove_dir_all(&dir).ok();
    }

    #[tokio::test]
    async fn every_sqlite_connection_keeps_its_query_plans() {
        let dir = std::env::temp_dir().join(format!("surclass-qpsg-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(&dir).unwrap();
        let url = format!("sqlite://{}", dir.join("plans.db").display());
        let db = connect(&url, 3).await.expect("connect");
        let pool = db.get_sqlite_connection_pool();
        let mut held = Vec::new();
        for _ in 0..3 {
            let mut conn = pool.acquire().await.expect("acquire");
            assert_eq!(
                qpsg_of(&mut conn).await,
                1,
                "a pooled connection without QPSG"
            );
            held.push(conn);
        }
        drop(held);
        db.close().await.unwrap();
        std::fs::remove_dir_all(&dir).ok();
    }
}
