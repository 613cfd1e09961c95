//! Winner determination speed: `cargo bench --bench matching`.
//!
//! Ids are `<policy>/<N bids>/<C units>`, plus `ladder3/<N per lot>/<C per lot>` (three lots of
//! one flight, top class first, chained capacity) and `sql_window/1000000/500`: the running-sum
//! window query a typical system runs, on SQLite over the same million bids, for comparison.
//! Bench data comes from a fixed seed: ids ascending (as the store returns them), amounts per
//! unit uniform over 40.00..=520.00 EUR against a 50.00..=500.00 lot (so a few are out of
//! range), parties 1..=6, 10 % partial_ok, 2 % withdrawn, tiers 0..=3.

use std::hint::black_box;
use std::time::Duration;

use criterion::{BenchmarkId, Criterion, criterion_group, criterion_main};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use surclass::matching::{BidInput, LadderLot, LotRules, Policy, award, award_ladder};

const SIZES: [usize; 3] = [1_000, 100_000, 1_000_000];
const CAPACITIES: [u32; 3] = [10, 100, 500];
const SEED: u64 = 0x5eed_2026;

fn bids(n: usize, seed: u64, booking_base: u64) -> Vec<BidInput<u64>> {
    let mut rng = StdRng::seed_from_u64(seed);
    (0..n as u64)
        .map(|i| BidInput {
            id: i,
            booking: booking_base + i,
            amount_minor: rng.random_range(4_000..=52_000),
            units: rng.random_range(1..=6),
            partial_ok: rng.random_bool(0.1),
            submitted_at: 1_795_000_000_000 + rng.random_range(0..7 * 86_400_000),
            tier: [0, 0, 0, 1, 1, 2, 3][rng.random_range(0..7)],
            withdrawn: rng.random_bool(0.02),
        })
        .collect()
}

fn rules(capacity: u32, policy: Policy) -> LotRules {
    LotRules {
        capacity,
        entitled_units: 0,
        reserve_minor: 5_000,
        maximum_minor: 50_000,
        policy,
        tier_weight_percent: 0,
    }
}

fn policies(c: &mut Criterion) {
    for policy in [Policy::Priority, Policy::MaxRevenue, Policy::UniformPrice] {
        let mut group = c.benchmark_group(policy.as_str());
        for n in SIZES {
            let bids = bids(n, SEED, 0);
            for capacity in CAPACITIES {
                let rules = rules(capacity, policy);
                group.bench_with_input(
                    BenchmarkId::from_parameter(format!("{n}/{capacity}")),
                    &bids,
                    |b, bids| b.iter(|| award(black_box(&rules), black_box(bids)).unwrap()),
                );
            }
        }
        group.finish();
    }
}

fn ladder(c: &mut Criterion) {
    let n = 100_000;
    // Business→first bidders hold business seats; economy bookings bid on economy→business
    // and, half of them, on economy→premium too (ranked alternatives).
    let to_first = bids(n, SEED + 1, 10_000_000);
    let to_business = bids(n, SEED + 2, 0);
    let mut to_premium = bids(n, SEED + 3, 0);
    for (i, bid) in to_premium.iter_mut().enumerate() {
        if i % 2 == 1 {
            bid.booking += 20_000_000;
        }
    }
    let mut group = c.benchmark_group("ladder3");
    for capacity in CAPACITIES {
        let lot = |lot: u64, from_class: u8, to_class: u8, bids| LadderLot {
            lot,
            from_class,
            to_class,
            chained_capacity: true,
            rules: rules(capacity, Policy::Priority),
            bids,
        };
        let lots = [
            lot(1, 0, 1, &to_premium[..]),
            lot(2, 0, 2, &to_business[..]),
            lot(3, 2, 3, &to_first[..]),
        ];
        group.bench_with_input(
            BenchmarkId::from_parameter(format!("{n}/{capacity}")),
            &lots,
            |b, lots| b.iter(|| award_ladder(black_box(lots)).unwrap()),
        );
    }
    group.finish();
}

/// The typical system: a running sum in SQL, stopping at the first party that does not fit
/// (less exact than `priority`, which goes on to award later parties that do). On SQLite, in
/// a file, with an index matching the window's order; bulk loading is outside the timing.
fn sql_window(c: &mut Criterion) {
    use sea_orm::sqlx::{self, sqlite::SqlitePoolOptions};

    let (n, capacity) = (1_000_000, 500);
    let bids = bids(n, SEED, 0);
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}?mode=rwc", dir.path().join("bids.db").display());
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let pool = runtime.block_on(async {
        let pool = SqlitePoolOptions::new()
            .max_connections(1)
            .connect(&url)
            .await
            .unwrap();
        sqlx::query(
            "CREATE TABLE bids (id INTEGER PRIMARY KEY, amount INTEGER NOT NULL, \
             units INTEGER NOT NULL, submitted_at INTEGER NOT NULL, withdrawn INTEGER NOT NULL)",
        )
        .execute(&pool)
        .await
        .unwrap();
        for chunk in bids.chunks(5_000) {
            // Integers we generated ourselves: literal values are safe (hence AssertSqlSafe)
            // and load fastest.
            let rows: Vec<String> = chunk
                .iter()
                .map(|b| {
                    format!(
                        "({},{},{},{},{})",
                        b.id,
                        b.amount_minor,
                        b.units,
                        b.submitted_at,
                        u8::from(b.withdrawn)
                    )
                })
                .collect();
            let insert = format!("INSERT INTO bids VALUES {}", rows.join(","));
            sqlx::query(sqlx::AssertSqlSafe(insert))
                .execute(&pool)
                .await
                .unwrap();
        }
        sqlx::query("CREATE INDEX bids_rank ON bids (amount DESC, submitted_at, id)")
            .execute(&pool)
            .await
            .unwrap();
        pool
    });
    let query = "SELECT id, units FROM (SELECT id, units, SUM(units) OVER \
                 (ORDER BY amount DESC, submitted_at, id) AS running FROM bids \
                 WHERE withdrawn = 0 AND amount BETWEEN ?1 AND ?2) WHERE running <= ?3";
    let mut group = c.benchmark_group("sql_window");
    group.sample_size(10);
    group.bench_function(
        BenchmarkId::from_parameter(format!("{n}/{capacity}")),
        |b| {
            b.iter(|| {
                runtime
                    .block_on(
                        sqlx::query(query)
                            .bind(5_000i64)
                            .bind(50_000i64)
                            .bind(i64::from(capacity))
                            .fetch_all(&pool),
                    )
                    .unwrap()
            })
        },
    );
    group.finish();
    runtime.block_on(pool.close());
}

fn config() -> Criterion {
    Criterion::default()
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3))
}

criterion_group! {
    name = benches;
    config = config();
    targets = policies, ladder, sql_window
}
criterion_main!(benches);
