//! `surclass loadtest`: how fast bid intake is, end to end, on this machine.
//!
//! Starts the real server in this process on a free loopback port (the store named by
//! `--database-url`), creates an operator, lots and bookings through the services, takes a
//! traveller session per booking over HTTP (partner sessions: sign-ins are rate limited per
//! address), then places one bid per booking with `POST /v1/traveller/bids` over `--connections`
//! keep-alive connections, flat out or at `--rate` bids a second. Prints throughput and latency
//! percentiles, then counts the bids in the database: every 201 must be there.
//!
//! At a fixed rate, latency is measured from when each bid was due, not when it was sent, so a
//! server that falls behind shows it (no coordinated omission).

mod client;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use chrono::Utc;
use clap::Args;
use sea_orm::{ActiveModelTrait, ColumnTrait, EntityTrait, PaginatorTrait, QueryFilter, Set};

use crate::app::{Application, redact};
use crate::config::Settings;
use crate::domain::lot::{AwardPolicy, LotSpec, PaymentMode, ResourceKind};
use crate::money::{Currency, Money};
use crate::services::audit::Actor;
use crate::services::bookings::{self, BookingInput};
use crate::services::lots;
use crate::store::api_keys::{self, Scope};
use crate::store::entities::{bid, booking, operator};
use crate::{ids, store};

use client::Connection;

#[derive(Args, Clone, Debug)]
pub struct LoadOptions {
    /// Bids to place, one per booking.
    #[arg(long, default_value_t = 20_000)]
    pub bids: usize,
    /// Lots the bookings are spread over.
    #[arg(long, default_value_t = 20)]
    pub lots: usize,
    /// Concurrent keep-alive connections.
    #[arg(long, default_value_t = 64, value_parser = clap::value_parser!(u64).range(1..=4096))]
    pub connections: u64,
    /// Bids per second to offer; 0 sends as fast as the server answers.
    #[arg(long, default_value_t = 0)]
    pub rate: u64,
}

/// Runs the load test; the report goes to standard output.
pub async fn run(mut settings: Settings, options: LoadOptions) -> Result<(), String> {
    settings.bind = "127.0.0.1:0".parse().expect("a loopback address");
    settings.no_demo = true;
    settings.no_jobs = true;
    settings.public_url = None;
    let url = redact(&settings.database_url);
    let app = Application::build(settings)
        .await
        .map_err(|e| e.to_string())?;
    let address = format!("127.0.0.1:{}", app.port());
    let db = app.db().clone();
    tokio::spawn(app.run_until_stopped());

    let mode = match options.rate {
        0 => "flat out".to_owned(),
        r => format!("{r} bids/s offered"),
    };
    println!(
        "surclass loadtest: {} bids on {} lots, {} connections, {mode}, {url}",
        options.bids, options.lots, options.connections
    );
    let started = Instant::now();
    let (operator_id, partner_key, lot_ids) =
        seed(&db, &options).await.map_err(|e| e.to_string())?;
    let bookings = booking::Entity::find()
        .filter(booking::Column::OperatorId.eq(&operator_id))
        .all(&db)
        .await
        .map_err(|e| e.to_string())?;
    println!(
        "set-up: operator, {} lots and {} bookings in {:.1} s",
        lot_ids.len(),
        bookings.len(),
        started.elapsed().as_secs_f64()
    );

    // Sessions, over HTTP, as a partner app would take them.
    let session_bodies: Vec<Vec<u8>> = bookings
        .iter()
        .map(|b| {
            serde_json::json!({"reference": b.reference})
                .to_string()
                .into_bytes()
        })
        .collect();
    let key = Arc::new(vec![partner_key; session_bodies.len()]);
    let sessions = drive(
        &address,
        "/v1/partner/sessions",
        key,
        Arc::new(session_bodies),
        options.connections as usize,
        0,
    )
    .await;
    sessions.print("sessions");
    let tokens: Vec<String> = sessions
        .answers
        .iter()
        .map(|a| {
            serde_json::from_slice::<serde_json::Value>(a)
                .ok()
                .and_then(|v| v["token"].as_str().map(str::to_owned))
                .unwrap_or_default()
        })
        .collect();

    let bid_bodies: Vec<Vec<u8>> = bookings
        .iter()
        .enumerate()
        .map(|(i, b)| {
            let lot = &lot_ids[i % lot_ids.len()];
            let _ = b;
            serde_json::json!({
                "lot_id": lot,
                "amount": format!("{}.{:02}", 100 + (i * 7919) % 800, i % 100),
                "payment_method": "pm_card_visa",
            })
            .to_string()
            .into_bytes()
        })
        .collect();
    let placed = drive(
        &address,
        "/v1/traveller/bids",
        Arc::new(tokens),
        Arc::new(bid_bodies),
        options.connections as usize,
        options.rate,
    )
    .await;
    placed.print("bids");

    let created = placed.statuses.get(&201).copied().unwrap_or(0);
    let stored = bid::Entity::find()
        .filter(bid::Column::LotId.is_in(lot_ids.clone()))
        .count(&db)
        .await
        .map_err(|e| e.to_string())? as usize;
    println!("durable: {stored} bids in the database for {created} answers 201");
    if stored != created {
        return Err(format!(
            "{created} bids were answered 201 but {stored} are stored"
        ));
    }
    Ok(())
}

/// An operator with a partner key, `lots` open lots and one booking per bid, each eligible
/// for one lot (round robin), created through the services as an import would.
async fn seed(
    db: &store::Db,
    options: &LoadOptions,
) -> Result<(String, String, Vec<String>), Box<dyn std::error::Error>> {
    let run = ids::random_token("lt", 6);
    let operator_id = format!("op_{run}");
    operator::ActiveModel {
        id: Set(operator_id.clone()),
        slug: Set(run.clone()),
        name: Set("Load Test Air".into()),
        kind: Set("airline".into()),
        support_email: Set("ops@loadtest.example".into()),
        created_at: Set(Utc::now()),
    }
    .insert(db)
    .await?;
    let (_, partner_key) = api_keys::issue(db, &operator_id, Scope::Partner, "loadtest").await?;
    let eur = Currency::parse("EUR").map_err(|e| e.to_string())?;
    let mut lot_ids = Vec::new();
    for n in 0..options.lots.max(1) {
        let spec = LotSpec {
            resource_kind: ResourceKind::Seat,
            resource: format!("LT{n}"),
            service_date: (Utc::now() + chrono::Duration::days(2)).date_naive(),
            title: format!("Load test flight LT{n}"),
            from_class: "economy".into(),
            to_class: "business".into(),
            class_rank: 1,
            capacity: 1_000,
            entitlement_units: 0,
            currency: eur,
            reserve: Money::parse("100.00", eur).map_err(|e| e.to_string())?,
            maximum: Money::parse("900.00", eur).map_err(|e| e.to_string())?,
            upgrade_now: None,
            taxes_included: true,
            opens_at: Utc::now(),
            closes_at: Utc::now() + chrono::Duration::hours(6),
            time_zone: chrono_tz::UTC,
            award_policy: AwardPolicy::Priority,
            tier_weight_pct: 0,
            payment_mode: PaymentMode::Hold,
            payment_grace_seconds: 0,
            review_required: false,
            chained_capacity: false,
        };
        lot_ids.push(
            lots::create(db, &Actor::system(&operator_id, "loadtest"), spec, true)
                .await
                .map_err(|e| e.to_string())?
                .id,
        );
    }
    let all: Vec<usize> = (0..options.bids).collect();
    for chunk in all.chunks(5_000) {
        let rows = chunk
            .iter()
            .map(|&i| BookingInput {
                reference: format!("LT{i:07}"),
                last_name: "Martin".into(),
                party_size: 1 + (i % 4) as u32,
                email: None,
                phone: None,
                language: "en".into(),
                loyalty_tier: (i % 3) as u32,
                eligible_lots: vec![lot_ids[i % lot_ids.len()].clone()],
            })
            .collect();
        bookings::import(db, &Actor::system(&operator_id, "loadtest"), rows)
            .await
            .map_err(|e| e.to_string())?;
    }
    Ok((operator_id, partner_key, lot_ids))
}

struct Outcome {
    elapsed: Duration,
    latencies: Vec<Duration>,
    statuses: BTreeMap<u16, usize>,
    errors: usize,
    /// Answer bodies, by request.
    answers: Vec<Vec<u8>>,
}

impl Outcome {
    fn print(&self, what: &str) {
        let sent = self.latencies.len();
        let per_second = sent as f64 / self.elapsed.as_secs_f64().max(1e-9);
        let statuses: Vec<String> = self
            .statuses
            .iter()
            .map(|(s, n)| format!("{s}: {n}"))
            .collect();
        println!(
            "{what}: {sent} in {:.2} s = {per_second:.0}/s; answers {}; connection errors {}",
            self.elapsed.as_secs_f64(),
            statuses.join(", "),
            self.errors
        );
        let mut sorted = self.latencies.clone();
        sorted.sort_unstable();
        let at = |p: f64| {
            sorted
                .get(((sorted.len() as f64 * p).ceil() as usize).saturating_sub(1))
                .map_or(0.0, |d| d.as_secs_f64() * 1000.0)
        };
        println!(
            "{what} latency ms: p50 {:.1}  p90 {:.1}  p99 {:.1}  max {:.1}",
            at(0.50),
            at(0.90),
            at(0.99),
            at(1.0)
        );
    }
}

/// Sends `bodies[i]` with `tokens[i]` to `path`, each once, over `connections` connections.
async fn drive(
    address: &str,
    path: &'static str,
    tokens: Arc<Vec<String>>,
    bodies: Arc<Vec<Vec<u8>>>,
    connections: usize,
    rate: u64,
) -> Outcome {
    let next = Arc::new(AtomicUsize::new(0));
    let start = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..connections {
        let (next, tokens, bodies, address) = (
            next.clone(),
            tokens.clone(),
            bodies.clone(),
            address.to_owned(),
        );
        tasks.spawn(async move {
            let mut connection = Connection::new(address);
            let mut done = Vec::new();
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= bodies.len() {
                    break;
                }
                let due = if rate == 0 {
                    Instant::now()
                } else {
                    let due = start + Duration::from_secs_f64(i as f64 / rate as f64);
                    tokio::time::sleep_until(due.into()).await;
                    due
                };
                let answer = connection.post(path, &tokens[i], &bodies[i]).await;
                done.push((i, due.elapsed(), answer.ok()));
            }
            done
        });
    }
    let mut outcome = Outcome {
        elapsed: Duration::ZERO,
        latencies: Vec::with_capacity(bodies.len()),
        statuses: BTreeMap::new(),
        errors: 0,
        answers: vec![Vec::new(); bodies.len()],
    };
    while let Some(done) = tasks.join_next().await {
        for (i, latency, answer) in done.expect("a load task") {
            outcome.latencies.push(latency);
            match answer {
                Some((status, body)) => {
                    *outcome.statuses.entry(status).or_default() += 1;
                    outcome.answers[i] = body;
                }
                None => outcome.errors += 1,
            }
        }
    }
    outcome.elapsed = start.elapsed();
    outcome
}
