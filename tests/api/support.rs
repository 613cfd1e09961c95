//! `spawn_app()`: every test gets the real server on a free port and a database of its own.
//!
//! SQLite: a fresh file in a temporary folder. PostgreSQL: a fresh database created on the
//! server named by `SURCLASS_TEST_DATABASE_URL` and dropped afterwards. When that variable is
//! unset the PostgreSQL variant says so on the terminal and passes, except under `CI=true`,
//! where a missing service is a failure.

use std::io::Write;

use surclass::app::Application;
use surclass::config::{Gateway, LogFormat, Settings};
use surclass::store::Db;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Store {
    Sqlite,
    Postgres,
}

pub struct TestApp {
    pub address: String,
    #[allow(dead_code)]
    pub port: u16,
    pub db: Db,
    pub client: reqwest::Client,
    pub worker: surclass::jobs::Worker,
    #[allow(dead_code)]
    pub gateway: std::sync::Arc<dyn surclass::payments::PaymentGateway>,
    /// `--simulated-gateway-store`, when the test named one.
    gateway_store: Option<String>,
    _database: TestDatabase,
}

impl TestApp {
    pub async fn get(&self, path: &str) -> reqwest::Response {
        self.client
            .get(format!("{}{}", self.address, path))
            .send()
            .await
            .expect("request reaches the server")
    }
}

/// A travel day well ahead of every close the tests set: a lot must close by the end of its
/// service date, and a fixed date would pass one day.
pub fn travel_day() -> String {
    (chrono::Utc::now() + chrono::Duration::days(40))
        .date_naive()
        .to_string()
}

/// The kinds of a bid's timeline, oldest first, from the bid as the API answers it.
pub fn timeline_kinds(bid: &serde_json::Value) -> Vec<String> {
    bid["timeline"]
        .as_array()
        .expect("the bid carries its timeline")
        .iter()
        .map(|e| {
            e["kind"]
                .as_str()
                .expect("every event has a kind")
                .to_owned()
        })
        .collect()
}

/// Starts the server on the given store, or `None` when that store is not configured here.
pub async fn spawn_app(store: Store) -> Option<TestApp> {
    spawn_app_with(store, |_| {}).await
}

pub async fn spawn_app_with(store: Store, tweak: impl FnOnce(&mut Settings)) -> Option<TestApp> {
    let database = TestDatabase::create(store).await?;
    let mut settings = Settings {
        database_url: database.url.clone(),
        bind: "127.0.0.1:0".parse().unwrap(),
        public_url: None,
        payment_gateway: Gateway::Simulated,
        simulated_gateway_store: None,
        log_format: LogFormat::Text,
        db_connections: 4,
        no_demo: true,
        job_concurrency: 4,
        delivery_concurrency: 4,
        // Tests drive the jobs themselves (`run_jobs`), so every step is deterministic.
        no_jobs: true,
        stripe: Default::default(),
        limits: Default::default(),
        // The tests' webhook receivers listen on 127.0.0.1.
        notify: surclass::config::NotifyArgs {
            webhooks_to_private_addresses: true,
            ..Default::default()
        },
    };
    tweak(&mut settings);
    let gateway_store = settings.simulated_gateway_store.clone();
    let app = Application::build(settings)
        .await
        .expect("the server starts");
    let port = app.port();
    let db = app.db().clone();
    let worker = app.worker().clone();
    let gateway = app.gateway();
    tokio::spawn(app.run_until_stopped());
    Some(TestApp {
        address: format!("http://127.0.0.1:{port}"),
        port,
        db,
        client: reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap(),
        worker,
        gateway,
        gateway_store,
        _database: database,
    })
}

struct TestDatabase {
    url: String,
    _dir: Option<tempfile::TempDir>,
    postgres: Option<(String, String)>,
}

impl TestDatabase {
    async fn create(store: Store) -> Option<Self> {
        match store {
            Store::Sqlite => {
                let dir = tempfile::tempdir().expect("temp dir");
                let url = format!("sqlite://{}", dir.path().join("surclass.db").display());
                Some(Self {
                    url,
                    _dir: Some(dir),
                    postgres: None,
                })
            }
            Store::Postgres => {
                let admin = postgres_admin_url()?;
                let name = format!("surclass_t_{}", uuid::Uuid::new_v4().simple());
                let conn = sea_orm::Database::connect(&admin)
                    .await
                    .expect("SURCLASS_TEST_DATABASE_URL accepts connections");
                use sea_orm::ConnectionTrait;
                conn.execute_unprepared(&format!("CREATE DATABASE {name}"))
                    .await
                    .expect("test database created");
                conn.close().await.ok();
                let url = replace_database(&admin, &name);
                Some(Self {
                    url,
                    _dir: None,
                    postgres: Some((admin, name)),
                })
            }
        }
    }
}

impl Drop for TestDatabase {
    fn drop(&mut self) {
        let Some((admin, name)) = self.postgres.take() else {
            return;
        };
        // Drop runs inside the test's runtime; do the async clean-up on a thread of its own.
        let _ = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(async {
                use sea_orm::ConnectionTrait;
                if let Ok(conn) = sea_orm::Database::connect(&admin).await {
                    let _ = conn
                        .execute_unprepared(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
                        .await;
                    conn.close().await.ok();
                }
            });
        })
        .join();
    }
}

fn postgres_admin_url() -> Option<String> {
    match std::env::var("SURCLASS_TEST_DATABASE_URL") {
        Ok(url) if !url.is_empty() => Some(url),
        _ if std::env::var("CI").is_ok_and(|v| v == "true") => {
            panic!(
                "CI=true but SURCLASS_TEST_DATABASE_URL is not set: PostgreSQL tests are mandatory in CI"
            )
        }
        _ => {
            // Written to the terminal directly: libtest captures print!, not the stderr handle.
            let _ = writeln!(
                std::io::stderr(),
                "skipped: PostgreSQL test (set SURCLASS_TEST_DATABASE_URL=postgres://postgres@127.0.0.1:5432/postgres to run it)"
            );
            None
        }
    }
}

fn replace_database(url: &str, database: &str) -> String {
    let (base, query) = match url.split_once('?') {
        Some((b, q)) => (b, Some(q)),
        None => (url, None),
    };
    let scheme_end = base.find("://").map_or(0, |i| i + 3);
    let host_end = base[scheme_end..]
        .find('/')
        .map_or(base.len(), |i| scheme_end + i);
    let mut out = format!("{}/{}", &base[..host_end], database);
    if let Some(q) = query {
        out.push('?');
        out.push_str(q);
    }
    out
}

/// Declares each listed `async fn(TestApp)` as two tests: `sqlite::name` and `postgres::name`.
#[macro_export]
macro_rules! store_tests {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    let app = $crate::support::spawn_app($crate::support::Store::Sqlite).await.unwrap();
                    super::$name(app).await;
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    if let Some(app) = $crate::support::spawn_app($crate::support::Store::Postgres).await {
                        super::$name(app).await;
                    }
                }
            )*
        }
    };
}

/// An operator with an API key of operator scope, as the tests' principal.
#[derive(Debug, Clone)]
pub struct Operator {
    #[allow(dead_code)]
    pub id: String,
    pub key: String,
}

/// A request helper that reads like what a caller does.
pub struct Call<'a> {
    app: &'a TestApp,
    builder: reqwest::RequestBuilder,
}

impl Call<'_> {
    pub fn key(mut self, key: &str) -> Self {
        self.builder = self.builder.bearer_auth(key);
        self
    }

    pub fn header(mut self, name: &str, value: &str) -> Self {
        self.builder = self.builder.header(name, value);
        self
    }

    pub fn idempotency_key(mut self, key: &str) -> Self {
        self.builder = self.builder.header("Idempotency-Key", key);
        self
    }

    pub fn json(mut self, body: &serde_json::Value) -> Self {
        self.builder = self.builder.json(body);
        self
    }

    /// A body sent as it is, with the media type given.
    pub fn raw(mut self, content_type: &str, body: &str) -> Self {
        self.builder = self
            .builder
            .header("content-type", content_type)
            .body(body.to_owned());
        self
    }

    pub async fn send(self) -> Reply {
        let _ = self.app;
        let res = self
            .builder
            .send()
            .await
            .expect("request reaches the server");
        let status = res.status().as_u16();
        let headers = res.headers().clone();
        let text = res.text().await.expect("body");
        let body = serde_json::from_str(&text).unwrap_or(serde_json::Value::Null);
        Reply {
            status,
            headers,
            text,
            body,
        }
    }
}

#[derive(Debug)]
pub struct Reply {
    pub status: u16,
    pub headers: reqwest::header::HeaderMap,
    pub text: String,
    pub body: serde_json::Value,
}

impl Reply {
    /// Asserts the status, showing the body when it differs.
    #[track_caller]
    pub fn expect(self, status: u16) -> Self {
        assert_eq!(
            self.status, status,
            "unexpected status; body: {}",
            self.text
        );
        self
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// The problem+json `type` slug, e.g. `invalid-field`.
    pub fn problem_type(&self) -> String {
        self.body["type"]
            .as_str()
            .unwrap_or_default()
            .rsplit('/')
            .next()
            .unwrap_or_default()
            .to_owned()
    }

    /// Every field named by a problem+json answer.
    pub fn problem_fields(&self) -> Vec<String> {
        self.body["errors"]
            .as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|e| e["field"].as_str().map(str::to_owned))
                    .collect()
            })
            .unwrap_or_default()
    }
}

impl TestApp {
    pub fn call(&self, method: reqwest::Method, path: &str) -> Call<'_> {
        Call {
            app: self,
            builder: self
                .client
                .request(method, format!("{}{}", self.address, path)),
        }
    }

    pub fn post(&self, path: &str) -> Call<'_> {
        self.call(reqwest::Method::POST, path)
    }

    pub fn patch(&self, path: &str) -> Call<'_> {
        self.call(reqwest::Method::PATCH, path)
    }

    pub fn delete(&self, path: &str) -> Call<'_> {
        self.call(reqwest::Method::DELETE, path)
    }

    pub fn read(&self, path: &str) -> Call<'_> {
        self.call(reqwest::Method::GET, path)
    }

    /// Runs every due job (closing, charging, releasing, settling) until none is left.
    pub async fn run_jobs(&self) -> usize {
        self.worker.run_until_idle().await.expect("jobs run")
    }

    /// Time passes: the lot's deadline is now behind us.
    pub async fn close_now(&self, lot_id: &str) {
        use sea_orm::{ColumnTrait, EntityTrait, QueryFilter, sea_query::Expr};
        surclass::store::entities::lot::Entity::update_many()
            .col_expr(
                surclass::store::entities::lot::Column::ClosesAt,
                Expr::value(chrono::Utc::now() - chrono::Duration::seconds(1)),
            )
            .filter(surclass::store::entities::lot::Column::Id.eq(lot_id))
            .exec(&self.db)
            .await
            .expect("close time moved");
    }

    /// Places a bid as the signed-in traveller, answering the reply.
    pub async fn bid(&self, token: &str, lot_id: &str, amount: &str, card: &str) -> Reply {
        let body = if card.starts_with("pm_") || card.starts_with("tok_") {
            serde_json::json!({"lot_id": lot_id, "amount": amount, "payment_method": card})
        } else {
            serde_json::json!({"lot_id": lot_id, "amount": amount,
                "card": {"number": card, "exp_month": 12, "exp_year": 2030, "cvc": "123"}})
        };
        self.post("/v1/traveller/bids")
            .key(token)
            .json(&body)
            .send()
            .await
    }

    /// A new operator and an operator-scope key for it.
    pub async fn operator(&self, slug: &str) -> Operator {
        use sea_orm::{ActiveModelTrait, Set};
        let id = format!("op_{slug}");
        surclass::store::entities::operator::ActiveModel {
            id: Set(id.clone()),
            slug: Set(slug.to_owned()),
            name: Set(format!("{slug} Ltd")),
            kind: Set("airline".into()),
            support_email: Set(format!("support@{slug}.example")),
            created_at: Set(chrono::Utc::now()),
        }
        .insert(&self.db)
        .await
        .expect("operator created");
        let (_, key) = surclass::store::api_keys::issue(
            &self.db,
            &id,
            surclass::store::api_keys::Scope::Operator,
            "tests",
        )
        .await
        .expect("key issued");
        Operator { id, key }
    }

    /// The operator cancels the lot ("Flight cancelled").
    pub async fn cancel_lot(&self, op: &Operator, lot: &str) {
        self.post(&format!("/v1/lots/{lot}/cancel"))
            .key(&op.key)
            .json(&serde_json::json!({"reason": "Flight cancelled"}))
            .send()
            .await
            .expect(200);
    }

    /// The operator's copies of the emails of `topic`, as `GET /v1/messages` lists them.
    pub async fn emails_of(&self, key: &str, topic: &str) -> Vec<serde_json::Value> {
        let reply = self
            .read("/v1/messages?channel=email")
            .key(key)
            .send()
            .await
            .expect(200);
        reply.body["items"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|m| m["topic"] == topic)
            .cloned()
            .collect()
    }

    /// Creates an open lot with sensible defaults overridden by `fields`; returns its id.
    pub async fn open_lot(&self, op: &Operator, fields: serde_json::Value) -> String {
        let mut body = serde_json::json!({
            "resource_kind": "seat", "resource": "AU101", "service_date": travel_day(),
            "from_class": "economy", "to_class": "business", "capacity": 4,
            "currency": "EUR", "reserve": "100.00", "maximum": "1000.00",
            "closes_at": (chrono::Utc::now() + chrono::Duration::hours(3)).to_rfc3339(),
            "time_zone": "Europe/Paris", "open": true
        });
        for (k, v) in fields.as_object().expect("fields are an object") {
            body[k] = v.clone();
        }
        let reply = self
            .post("/v1/lots")
            .key(&op.key)
            .json(&body)
            .send()
            .await
            .expect(201);
        reply.body["id"].as_str().expect("lot id").to_owned()
    }

    /// Imports one booking eligible for `lots`.
    pub async fn booking(
        &self,
        op: &Operator,
        reference: &str,
        last_name: &str,
        party: u32,
        lots: &[&str],
    ) {
        self.post("/v1/bookings/import")
            .key(&op.key)
            .json(&serde_json::json!([{
                "reference": reference, "last_name": last_name, "party_size": party,
                "email": "traveller@example.com", "eligible_lots": lots
            }]))
            .send()
            .await
            .expect(200);
    }

    /// The booking with this reference as stored (for calls to the services themselves).
    pub async fn stored_booking(
        &self,
        reference: &str,
    ) -> surclass::store::entities::booking::Model {
        use sea_orm::{ColumnTrait, EntityTrait, QueryFilter};
        use surclass::store::entities::booking;
        booking::Entity::find()
            .filter(booking::Column::Reference.eq(reference))
            .one(&self.db)
            .await
            .unwrap()
            .expect("booking imported")
    }

    /// A bid as stored.
    #[allow(dead_code)]
    pub async fn stored_bid(&self, id: &str) -> surclass::store::entities::bid::Model {
        use sea_orm::EntityTrait;
        surclass::store::entities::bid::Entity::find_by_id(id.to_owned())
            .one(&self.db)
            .await
            .unwrap()
            .expect("bid stored")
    }

    /// The succeeded payments of `kind` ("charge", "refund") of the bid, in minor units.
    #[allow(dead_code)]
    pub async fn moved(&self, bid_id: &str, kind: &str) -> i64 {
        use sea_orm::{ColumnTrait, EntityTrait, QueryFilter};
        use surclass::store::entities::payment;
        payment::Entity::find()
            .filter(payment::Column::BidId.eq(bid_id))
            .filter(payment::Column::Kind.eq(kind))
            .filter(payment::Column::Status.eq("succeeded"))
            .all(&self.db)
            .await
            .unwrap()
            .iter()
            .map(|p| p.amount_minor)
            .sum()
    }

    /// Charges of the bid still waiting for the bank's answer.
    #[allow(dead_code)]
    pub async fn pending_charges(&self, bid_id: &str) -> usize {
        use sea_orm::{ColumnTrait, EntityTrait, PaginatorTrait, QueryFilter};
        use surclass::store::entities::payment;
        payment::Entity::find()
            .filter(payment::Column::BidId.eq(bid_id))
            .filter(payment::Column::Kind.eq("charge"))
            .filter(payment::Column::Status.eq("pending"))
            .count(&self.db)
            .await
            .unwrap() as usize
    }

    /// The kinds of the jobs not done: waiting to be tried again, or parked.
    #[allow(dead_code)]
    pub async fn jobs_not_done(&self) -> Vec<String> {
        use sea_orm::{ColumnTrait, EntityTrait, QueryFilter};
        use surclass::store::entities::job;
        job::Entity::find()
            .filter(job::Column::Status.ne(surclass::jobs::queue::DONE))
            .all(&self.db)
            .await
            .unwrap()
            .into_iter()
            .map(|j| j.kind)
            .collect()
    }

    /// The gateway's payments still holding money on a card (authorised, neither captured
    /// nor released), by reference, as reconcile asks for them.
    pub async fn gateway_holds_awaiting_capture(&self) -> std::collections::HashSet<String> {
        self.gateway
            .open_holds(chrono::DateTime::UNIX_EPOCH)
            .await
            .expect("the gateway lists its holds")
            .into_iter()
            .map(|hold| hold.state.reference.to_string())
            .collect()
    }

    /// The simulated gateway's payments that took money from a card, by reference.
    #[allow(dead_code)]
    pub async fn gateway_payments_captured(&self) -> std::collections::HashSet<String> {
        self.gateway_payments(|body| body["amount_received"].as_i64().unwrap_or(0) > 0)
            .await
    }

    /// Every payment the simulated gateway made for the bid, whatever became of it.
    #[allow(dead_code)]
    pub async fn gateway_payments_of(&self, bid_id: &str) -> std::collections::HashSet<String> {
        self.gateway_payments(|body| body["metadata"]["surclass_bid"] == bid_id)
            .await
    }

    /// Time passes at the simulated provider: the payment `id` was made at `at`.
    #[allow(dead_code)]
    pub async fn gateway_payment_made_at(&self, id: &str, at: chrono::DateTime<chrono::Utc>) {
        use sea_orm::ConnectionTrait;
        use sea_orm::sea_query::{Alias, Expr, ExprTrait, Query};
        use surclass::payments::simulated::SimulatedGateway;
        let gateway = match &self.gateway_store {
            Some(url) => SimulatedGateway::at(url).await,
            None => SimulatedGateway::beside(&self.db).await,
        }
        .expect("the simulated gateway's state opens");
        let state = gateway.state();
        let update = Query::update()
            .table(Alias::new("simulated_gateway_objects"))
            .value(Alias::new("created_at"), at)
            .and_where(Expr::col(Alias::new("id")).eq(id))
            .to_owned();
        let done = state
            .execute(&update)
            .await
            .expect("gateway object updated");
        assert_eq!(done.rows_affected(), 1, "no payment {id} at the provider");
    }

    /// The simulated gateway's payments whose stored body passes `keep`, by reference.
    async fn gateway_payments(
        &self,
        keep: impl Fn(&serde_json::Value) -> bool,
    ) -> std::collections::HashSet<String> {
        use sea_orm::ConnectionTrait;
        use surclass::payments::simulated::SimulatedGateway;
        let gateway = match &self.gateway_store {
            Some(url) => SimulatedGateway::at(url).await,
            None => SimulatedGateway::beside(&self.db).await,
        }
        .expect("the simulated gateway's state opens");
        let state = gateway.state();
        let rows = state
            .query_all_raw(sea_orm::Statement::from_string(
                state.get_database_backend(),
                "SELECT id, body FROM simulated_gateway_objects WHERE kind = 'payment'",
            ))
            .await
            .expect("gateway objects readable");
        rows.iter()
            .filter_map(|row| {
                let id: String = row.try_get("", "id").ok()?;
                let body: String = row.try_get("", "body").ok()?;
                let body: serde_json::Value = serde_json::from_str(&body).ok()?;
                keep(&body).then_some(id)
            })
            .collect()
    }

    /// Whether a statement of this test's database waits for a lock, looked at every 25 ms
    /// for up to 5 s (PostgreSQL).
    pub async fn someone_waits_for_a_lock(&self) -> bool {
        use sea_orm::{ConnectionTrait, Statement};
        let waiting = Statement::from_string(
            self.db.get_database_backend(),
            "SELECT count(*) AS n FROM pg_stat_activity \
             WHERE wait_event_type = 'Lock' AND datname = current_database()",
        );
        for _ in 0..200 {
            let row = self
                .db
                .query_one_raw(waiting.clone())
                .await
                .unwrap()
                .unwrap();
            if row.try_get::<i64>("", "n").unwrap() > 0 {
                return true;
            }
            tokio::time::sleep(std::time::Duration::from_millis(25)).await;
        }
        false
    }

    /// An operator's cancel of `lot_id`, begun by hand and held open: the lot taken for
    /// update, as `lots::cancel` does first. A test starts a step against it, then
    /// [`HeldCancel::ends`] it.
    pub async fn cancel_begins(&self, lot_id: &str) -> HeldCancel {
        use sea_orm::{EntityTrait, QuerySelect, TransactionTrait};
        use surclass::store::entities::lot;

        let txn = self.db.begin().await.unwrap();
        lot::Entity::find_by_id(lot_id.to_owned())
            .lock_exclusive()
            .one(&txn)
            .await
            .unwrap()
            .expect("the lot");
        HeldCancel {
            txn,
            lot_id: lot_id.to_owned(),
        }
    }

    /// Signs a traveller in and returns the session token.
    pub async fn sign_in(&self, reference: &str, last_name: &str) -> String {
        let reply = self
            .post("/v1/traveller/sessions")
            .json(&serde_json::json!({"reference": reference, "last_name": last_name}))
            .send()
            .await
            .expect(201);
        reply.body["token"].as_str().expect("token").to_owned()
    }
}

/// The server on SQLite with the Stripe gateway pointed at the local emulator named by
/// `SURCLASS_TEST_STRIPE_URL` (started by `.ci/run`), or `None` when it is not configured.
pub async fn spawn_app_on_stripe() -> Option<TestApp> {
    spawn_app_on_stripe_with(|_| {}).await
}

/// [`spawn_app_on_stripe`] with more settings changed by `tweak`.
pub async fn spawn_app_on_stripe_with(tweak: impl FnOnce(&mut Settings)) -> Option<TestApp> {
    let url = match std::env::var("SURCLASS_TEST_STRIPE_URL") {
        Ok(url) if !url.is_empty() => url,
        _ if std::env::var("CI").is_ok_and(|v| v == "true") => {
            panic!(
                "CI=true but SURCLASS_TEST_STRIPE_URL is not set: the Stripe emulator tests are mandatory in CI"
            )
        }
        _ => {
            let _ = writeln!(
                std::io::stderr(),
                "skipped: Stripe gateway test (start the emulator as .ci/run does and set SURCLASS_TEST_STRIPE_URL)"
            );
            return None;
        }
    };
    spawn_app_with(Store::Sqlite, |s| {
        s.payment_gateway = Gateway::Stripe;
        s.stripe.stripe_secret_key = Some("sk_test_surclass".into());
        s.stripe.stripe_api_base = Some(url);
        tweak(s);
    })
    .await
}

/// Declares each listed `async fn(TestApp)` once more as `stripe::name`: the same lifecycle
/// through the real Stripe client against the emulator.
#[macro_export]
macro_rules! stripe_tests {
    ($($name:ident),* $(,)?) => {
        mod stripe {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    if let Some(app) = $crate::support::spawn_app_on_stripe().await {
                        super::$name(app).await;
                    }
                }
            )*
        }
    };
}

/// A cancel held open by [`TestApp::cancel_begins`].
pub struct HeldCancel {
    txn: sea_orm::DatabaseTransaction,
    lot_id: String,
}

impl HeldCancel {
    /// Once another step is seen waiting for a lock (PostgreSQL), writes the lot cancelled and
    /// `bid_id` lost, as the cancel does, and commits: none of it may fail.
    pub async fn ends(self, app: &TestApp, bid_id: &str) {
        use sea_orm::sea_query::Expr;
        use sea_orm::{ColumnTrait, EntityTrait, QueryFilter};
        use surclass::store::entities::{bid, lot};

        assert!(
            app.someone_waits_for_a_lock().await,
            "another step waits for the lot the cancel holds"
        );
        lot::Entity::update_many()
            .col_expr(lot::Column::Status, Expr::value("cancelled"))
            .filter(lot::Column::Id.eq(&self.lot_id))
            .exec(&self.txn)
            .await
            .expect("the cancel writes the lot");
        bid::Entity::update_many()
            .col_expr(bid::Column::Status, Expr::value("lost"))
            .filter(bid::Column::Id.eq(bid_id))
            .exec(&self.txn)
            .await
            .expect("the cancel writes the bid");
        self.txn.commit().await.expect("the cancel commits");
    }
}
