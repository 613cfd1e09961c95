//! The real `surclass` program in child processes, for the tests that kill it
//! (`crash.rs`, `multinode.rs`): start, wait until ready, kill with SIGKILL; and what those
//! tests ask of the shared database afterwards.
#![allow(dead_code)] // each test binary uses its own part

use std::io::Write;
use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use sea_orm::{ColumnTrait, EntityTrait, PaginatorTrait, QueryFilter};
use surclass::store::Db;
use surclass::store::entities::{job, lot};

pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// One `surclass serve` process.
pub struct Server {
    child: Child,
    pub base: String,
}

impl Server {
    pub fn start(database_url: &str, port: u16) -> Self {
        Self::start_with_env(database_url, port, &[])
    }

    /// Started with these extra environment variables.
    pub fn start_with_env(database_url: &str, port: u16, env: &[(&str, &str)]) -> Self {
        let child = Command::new(env!("CARGO_BIN_EXE_surclass"))
            .args([
                "--no-demo",
                "--bind",
                &format!("127.0.0.1:{port}"),
                "--database-url",
                database_url,
                // Every bidder signs in from 127.0.0.1 within seconds.
                "--sign-ins-per-minute",
                "1000000",
            ])
            .env("RUST_LOG", "warn")
            .envs(env.iter().copied())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("surclass starts");
        Self {
            child,
            base: format!("http://127.0.0.1:{port}"),
        }
    }

    pub async fn ready(&self) {
        let deadline = Instant::now() + Duration::from_secs(60);
        while Instant::now() < deadline {
            if reqwest::get(format!("{}/readyz", self.base))
                .await
                .is_ok_and(|r| r.status().is_success())
            {
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("{} did not become ready", self.base);
    }

    /// SIGKILL: no graceful shutdown, jobs cut wherever they are.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.kill();
    }
}

/// An operator and an operator-scope API key for it.
pub async fn operator_key(db: &Db, slug: &str) -> String {
    use sea_orm::{ActiveModelTrait, Set};
    surclass::store::entities::operator::ActiveModel {
        id: Set(format!("op_{slug}")),
        slug: Set(slug.into()),
        name: Set(slug.into()),
        kind: Set("airline".into()),
        support_email: Set(format!("support@{slug}.example")),
        created_at: Set(chrono::Utc::now()),
    }
    .insert(db)
    .await
    .unwrap();
    let (_, key) = surclass::store::api_keys::issue(
        db,
        &format!("op_{slug}"),
        surclass::store::api_keys::Scope::Operator,
        "t",
    )
    .await
    .unwrap();
    key
}

pub async fn settled(db: &Db, lots: &[String]) -> bool {
    let n = lot::Entity::find()
        .filter(lot::Column::Id.is_in(lots.to_vec()))
        .filter(lot::Column::Status.eq("settled"))
        .count(db)
        .await
        .unwrap();
    n as usize == lots.len()
}

/// Every job that is due has run (holds released, failed charges moved to standby).
pub async fn idle(db: &Db) -> bool {
    job::Entity::find()
        .filter(job::Column::Status.is_in(["pending", "running"]))
        .filter(job::Column::RunAt.lte(chrono::Utc::now()))
        .count(db)
        .await
        .unwrap()
        == 0
}

/// Waits (up to 90 s) until the lots are settled and every due job has run.
pub async fn settled_and_idle(db: &Db, lots: &[String]) {
    let deadline = Instant::now() + Duration::from_secs(90);
    while !(settled(db, lots).await && idle(db).await) {
        assert!(
            Instant::now() < deadline,
            "lots not settled or jobs left after 90 s"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The PostgreSQL server the tests create databases on; `None` (the test is skipped) when
/// not configured, except under `CI=true`, where `what` is mandatory.
pub fn postgres_admin_url(what: &str) -> Option<String> {
    match std::env::var("SURCLASS_TEST_DATABASE_URL") {
        Ok(url) if !url.is_empty() => Some(url),
        _ if std::env::var("CI").is_ok_and(|v| v == "true") => {
            panic!("CI=true but SURCLASS_TEST_DATABASE_URL is not set: {what} is mandatory in CI")
        }
        _ => {
            let _ = writeln!(
                std::io::stderr(),
                "skipped: {what} (set SURCLASS_TEST_DATABASE_URL)"
            );
            None
        }
    }
}
