//! The real `surclass` program in child processes, for the tests that kill it or change its
//! environment (`crash.rs`, `multinode.rs`, `webhook_egress.rs`): start, wait until ready,
//! kill with SIGKILL; the few API calls those tests make; and what they ask of the shared
//! database afterwards.
#![allow(dead_code)] // each test binary uses its own part

use std::io::Write;
use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use sea_orm::{ColumnTrait, EntityTrait, PaginatorTrait, QueryFilter};
use serde_json::{Value, json};
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

/// A card that is held and charged, and one that is held but declined when charged.
pub const GOOD_CARD: &str = "4242424242424242";
pub const CARD_DECLINED_AT_CHARGE: &str = "4000000000000341";

/// An open economy-to-business seat lot, EUR 100 to 900, charged at once on award.
pub fn seat_lot(
    resource: &str,
    capacity: usize,
    closes_at: chrono::DateTime<chrono::Utc>,
) -> Value {
    let travel_day = (chrono::Utc::now() + chrono::Duration::days(40)).date_naive();
    json!({"resource_kind": "seat", "resource": resource, "service_date": travel_day,
        "from_class": "economy", "to_class": "business", "capacity": capacity, "currency": "EUR",
        "reserve": "100.00", "maximum": "900.00", "closes_at": closes_at.to_rfc3339(), "open": true,
        "payment_grace_seconds": 0})
}

/// POSTs as the operator and returns the created object's id.
pub async fn create(
    http: &reqwest::Client,
    base: &str,
    key: &str,
    path: &str,
    body: &Value,
) -> String {
    let res = http
        .post(format!("{base}{path}"))
        .bearer_auth(key)
        .json(body)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 201, "POST {path}");
    let created: Value = res.json().await.unwrap();
    created["id"].as_str().expect("an id").to_owned()
}

/// One booking per `(reference, party_size)`, last name Martin, eligible for `lot`.
pub async fn import_bookings(
    http: &reqwest::Client,
    base: &str,
    key: &str,
    lot: &str,
    bookings: &[(String, usize)],
) {
    let rows: Vec<_> = bookings
        .iter()
        .map(|(reference, party)| json!({"reference": reference, "last_name": "Martin", "party_size": party, "eligible_lots": [lot]}))
        .collect();
    let res = http
        .post(format!("{base}/v1/bookings/import"))
        .bearer_auth(key)
        .json(&rows)
        .send()
        .await
        .unwrap();
    assert!(res.status().is_success(), "import: {}", res.status());
}

/// Signs in as booking `reference` (last name Martin) and places a bid; returns the bid's id.
pub async fn sign_in_and_bid(
    http: &reqwest::Client,
    base: &str,
    reference: &str,
    lot: &str,
    amount: &str,
    card: &str,
) -> String {
    let session: Value = http
        .post(format!("{base}/v1/traveller/sessions"))
        .json(&json!({"reference": reference, "last_name": "Martin"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let res = http
        .post(format!("{base}/v1/traveller/bids"))
        .bearer_auth(session["token"].as_str().expect("signed in"))
        .json(&json!({"lot_id": lot, "amount": amount,
            "card": {"number": card, "exp_month": 12, "exp_year": 2030, "cvc": "123"}}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 201, "bid placed through {base}");
    let placed: Value = res.json().await.unwrap();
    placed["id"].as_str().unwrap().to_owned()
}

pub async fn get_json(http: &reqwest::Client, url: &str, key: &str) -> Value {
    http.get(url)
        .bearer_auth(key)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
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
