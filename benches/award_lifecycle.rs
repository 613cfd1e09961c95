//! How long from the deadline to the last message on every bid's timeline (award, charges,
//! releases, settlement) for 100,000 bids, on SQLite and, when `SURCLASS_TEST_DATABASE_URL`
//! is set, PostgreSQL. A measurement printed for the README, not a timed test:
//!
//!     cargo bench --bench award_lifecycle
//!
//! `AWARD_BENCH_BIDS=10000` runs a smaller round (capacity scales with it) when looking for
//! where the time goes. `AWARD_BENCH_BACKLOG=1` leaves the confirmations queued at the
//! deadline, as when bids arrive until the last second: what is timed is then how long the
//! close and the money wait behind them. `AWARD_BENCH_CONCURRENCY=32` gives the worker more
//! slots than the server's default of 8. `AWARD_BENCH_DB_CONNECTIONS=8` gives the pool the
//! server's default size instead of 16.
//!
//! Bids are placed through the service layer with real (simulated) card holds and their
//! confirmations delivered (as a serving process does while bidding runs), then every lot's
//! deadline is moved into the past and the job worker runs with its default concurrency until
//! nothing is left to do.

use std::sync::Arc;
use std::time::Instant;

use chrono::{Duration, Utc};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, EntityTrait, PaginatorTrait, QueryFilter,
    QuerySelect, Set,
};
use surclass::domain::lot::{AwardPolicy, LotSpec, PaymentMode, ResourceKind};
use surclass::jobs::{Priority, Worker, queue};
use surclass::money::{Currency, Money};
use surclass::notifications::Topic;
use surclass::payments::{CardSource, PaymentGateway, simulated::SimulatedGateway};
use surclass::services::bids::{self, NewBid};
use surclass::services::bookings::{self, BookingInput};
use surclass::services::lots;
use surclass::store::entities::{bid_event, booking, job, lot, operator, outbox};
use surclass::store::{self, Db};

const LOTS: usize = 20;

/// A number from the environment, `default` when unset or unreadable.
fn env_or<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name)
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(default)
}

fn bids() -> usize {
    env_or("AWARD_BENCH_BIDS", 100_000)
}

/// The worker's slots: the server's default (8) unless `AWARD_BENCH_CONCURRENCY` says otherwise.
fn concurrency() -> usize {
    env_or("AWARD_BENCH_CONCURRENCY", 8)
}

/// The messages' slots: `AWARD_BENCH_DELIVERY`, else `--delivery-concurrency`'s default (16).
fn delivery_concurrency() -> usize {
    env_or("AWARD_BENCH_DELIVERY", 16)
}

/// The pool's connections: `AWARD_BENCH_DB_CONNECTIONS`, else 16.
fn db_connections() -> u32 {
    env_or("AWARD_BENCH_DB_CONNECTIONS", 16)
}

/// Whether the confirmations are still queued at the deadline.
fn backlog() -> bool {
    std::env::var("AWARD_BENCH_BACKLOG").is_ok_and(|v| v == "1")
}

/// When each stage of the close was first seen done, from the deadline.
#[derive(Default)]
struct Milestones {
    /// Every lot awarded (or settled): every outcome decided, charges and releases queued.
    awarded: Option<std::time::Duration>,
    /// Every lot settled: every winner charged, or replaced from standby and that one charged.
    settled: Option<std::time::Duration>,
    /// Every lot settled and every message telling a traveller the outcome handled.
    told: Option<std::time::Duration>,
    /// No job left: every message handled too.
    idle: std::time::Duration,
}

fn main() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let dir = tempfile::tempdir().unwrap();
        let sqlite = format!("sqlite://{}", dir.path().join("bench.db").display());
        run("sqlite", &sqlite).await;
        if let Ok(admin) = std::env::var("SURCLASS_TEST_DATABASE_URL") {
            let name = format!("surclass_bench_{}", uuid::Uuid::new_v4().simple());
            let conn = sea_orm::Database::connect(&admin).await.unwrap();
            conn.execute_unprepared(&format!("CREATE DATABASE {name}"))
                .await
                .unwrap();
            run(
                "postgresql",
                &format!("{}/{name}", admin.rsplit_once('/').unwrap().0),
            )
            .await;
            conn.execute_unprepared(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
                .await
                .ok();
        }
    });
}

async fn run(engine: &str, url: &str) {
    let db = store::connect(url, db_connections()).await.unwrap();
    store::migrate(&db).await.unwrap();
    let gateway: Arc<dyn PaymentGateway> = Arc::new(SimulatedGateway::new(db.clone()));
    let lot_ids = setup(&db).await;
    let placed = Instant::now();
    place_bids(&db, &gateway, &lot_ids).await;
    let placing = placed.elapsed();

    // Messages go to the local mailbox, as in the embedded default.
    let notifier = Arc::new(surclass::notifications::dispatch::Notifier::new(
        db.clone(),
        Arc::new(surclass::notifications::email::LocalMailbox),
        surclass::services::links::PublicUrl::new("http://127.0.0.1:8080"),
        surclass::services::sessions::SessionSigner::load_or_create(&db)
            .await
            .unwrap(),
        Default::default(),
    ));
    // A serving process delivers each bid's confirmation while bidding runs: deliver them
    // before the deadline, so that what is timed after it is the close alone; or, with
    // `AWARD_BENCH_BACKLOG=1`, leave them queued as a last-minute rush would.
    let confirming = if backlog() {
        std::time::Duration::ZERO
    } else {
        work_until(&db, &gateway, &notifier, 0).await.idle
    };
    lot::Entity::update_many()
        .col_expr(
            lot::Column::ClosesAt,
            (Utc::now() - Duration::seconds(1)).into(),
        )
        .exec(&db)
        .await
        .unwrap();
    let queued = queue::unfinished(&db).await.unwrap().len();
    let elapsed = work_until(&db, &gateway, &notifier, LOTS).await;
    let secs = |d: Option<std::time::Duration>| d.map_or(f64::NAN, |d| d.as_secs_f64());
    let events = bid_event::Entity::find().count(&db).await.unwrap();
    let jobs: Vec<(String, i64)> = job::Entity::find()
        .select_only()
        .column(job::Column::Kind)
        .column_as(job::Column::Id.count(), "n")
        .group_by(job::Column::Kind)
        .into_tuple()
        .all(&db)
        .await
        .unwrap();
    println!(
        "{engine}: {} bids over {LOTS} lots, {queued} jobs queued at the deadline: every lot \
         awarded {:.1} s, settled {:.1} s, every outcome told {:.1} s, last timeline event {:.1} s after it \
         ({events} events; placing the bids with card holds took {:.1} s, delivering their \
         confirmations and reminders before the deadline {:.1} s; jobs run: {jobs:?})",
        bids(),
        secs(elapsed.awarded),
        secs(elapsed.settled),
        secs(elapsed.told),
        elapsed.idle.as_secs_f64(),
        placing.as_secs_f64(),
        confirming.as_secs_f64()
    );
}

/// Runs the job worker with [`concurrency`] slots until `settled` lots are settled and no
/// job is left; answers when every lot was seen awarded, settled, and the queue empty (to
/// the 50 ms at which it looks).
async fn work_until(
    db: &Db,
    gateway: &Arc<dyn PaymentGateway>,
    notifier: &Arc<surclass::notifications::dispatch::Notifier>,
    settled: usize,
) -> Milestones {
    let mut seen = Milestones::default();
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let started = Instant::now();
    let worker = tokio::spawn(
        Worker::new(db.clone(), gateway.clone(), concurrency())
            .with_delivery_slots(delivery_concurrency())
            .with_notifier(notifier.clone())
            .run(stopped),
    );
    loop {
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        let count = |statuses: &'static [&'static str]| {
            lot::Entity::find()
                .filter(lot::Column::Status.is_in(statuses.iter().copied()))
                .count(db)
        };
        let awarded = count(&["awarded", "settled"]).await.unwrap() as usize;
        let done = count(&["settled"]).await.unwrap() as usize;
        if settled > 0 && awarded >= settled && seen.awarded.is_none() {
            seen.awarded = Some(started.elapsed());
        }
        if settled > 0 && done >= settled && seen.settled.is_none() {
            seen.settled = Some(started.elapsed());
        }
        if settled > 0 && done >= settled && seen.told.is_none() {
            let outcomes = Topic::ALL
                .into_iter()
                .filter(|t| t.priority() == Priority::Outcomes)
                .map(Topic::as_str);
            let untold = outbox::Entity::find()
                .filter(outbox::Column::Topic.is_in(outcomes))
                .filter(outbox::Column::Status.eq(surclass::notifications::outbox::PENDING))
                .count(db)
                .await
                .unwrap();
            if untold == 0 {
                seen.told = Some(started.elapsed());
            }
        }
        if done >= settled && queue::unfinished(db).await.unwrap().is_empty() {
            break;
        }
    }
    seen.idle = started.elapsed();
    stop.send(true).unwrap();
    worker.await.unwrap();
    seen
}

async fn setup(db: &Db) -> Vec<String> {
    operator::ActiveModel {
        id: Set("op_bench".into()),
        slug: Set("bench".into()),
        name: Set("Bench Air".into()),
        kind: Set("airline".into()),
        support_email: Set("ops@bench.example".into()),
        created_at: Set(Utc::now()),
    }
    .insert(db)
    .await
    .unwrap();
    let eur = Currency::parse("EUR").unwrap();
    let mut ids = Vec::new();
    for n in 0..LOTS {
        let spec = LotSpec {
            resource_kind: ResourceKind::Seat,
            resource: format!("BA{n}"),
            service_date: (Utc::now() + Duration::days(2)).date_naive(),
            title: format!("Flight BA{n}"),
            from_class: "economy".into(),
            to_class: "business".into(),
            class_rank: 1,
            capacity: (bids() / LOTS / 10).max(1) as u32,
            entitlement_units: 0,
            currency: eur,
            reserve: Money::parse("100.00", eur).unwrap(),
            maximum: Money::parse("900.00", eur).unwrap(),
            upgrade_now: None,
            taxes_included: true,
            opens_at: Utc::now(),
            closes_at: Utc::now() + Duration::hours(2),
            time_zone: chrono_tz::UTC,
            award_policy: [
                AwardPolicy::Priority,
                AwardPolicy::MaxRevenue,
                AwardPolicy::UniformPrice,
            ][n % 3],
            tier_weight_pct: 0,
            payment_mode: PaymentMode::Hold,
            payment_grace_seconds: 0,
            review_required: false,
            chained_capacity: false,
        };
        ids.push(
            lots::create(
                db,
                &surclass::services::audit::Actor::system("op_bench", "bench"),
                spec,
                true,
            )
            .await
            .unwrap()
            .id,
        );
    }
    for chunk in (0..bids()).collect::<Vec<_>>().chunks(10_000) {
        let rows = chunk
            .iter()
            .map(|&i| BookingInput {
                reference: format!("BK{i:06}"),
                last_name: "Martin".into(),
                party_size: 1 + (i % 4) as u32,
                // Every traveller has an address, so every message is rendered and written
                // to the mailbox as in production, not settled as having nowhere to go.
                email: Some(format!("traveller{i}@bench.example")),
                phone: None,
                language: "en".into(),
                loyalty_tier: (i % 3) as u32,
                eligible_lots: vec![ids[i % LOTS].clone()],
            })
            .collect();
        bookings::import(
            db,
            &surclass::services::audit::Actor::system("op_bench", "bench"),
            rows,
        )
        .await
        .unwrap();
    }
    ids
}

async fn place_bids(db: &Db, gateway: &Arc<dyn PaymentGateway>, lots: &[String]) {
    let all = Arc::new(booking::Entity::find().all(db).await.unwrap());
    let mut tasks = tokio::task::JoinSet::new();
    let parts = 8;
    let chunk = all.len().div_ceil(parts);
    for part in 0..parts {
        let (db, gateway, all, lots) = (db.clone(), gateway.clone(), all.clone(), lots.to_vec());
        tasks.spawn(async move {
            for (i, b) in all.iter().enumerate().skip(part * chunk).take(chunk) {
                let n: usize = b.reference[2..].parse().unwrap();
                let card = if i % 50 == 7 {
                    "4000000000000341"
                } else {
                    "4242424242424242"
                };
                let amount = format!("{}.{:02}", 100 + (i * 7919) % 800, i % 100);
                bids::place(
                    &db,
                    gateway.as_ref(),
                    b,
                    NewBid {
                        lot_id: &lots[n % lots.len()],
                        amount: &amount,
                        card: Some(CardSource::card(card, 12, 2030, "123")),
                        partial_ok: i % 5 == 0,
                        preference: None,
                        consent_to_charge: false,
                    },
                )
                .await
                .unwrap();
            }
        });
    }
    while let Some(r) = tasks.join_next().await {
        r.unwrap();
    }
}
