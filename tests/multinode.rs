//! Several processes, one PostgreSQL: three `surclass serve` processes share a fresh database,
//! bids are spread over all three, and while the lots close, award and charge, processes are
//! killed (SIGKILL) and restarted at random. In the end every lot is awarded once, every bid
//! that was answered 201 is there with a final outcome, nobody is charged twice or charged
//! after losing, and `surclass reconcile` finds nothing to repair.
//!
//! PostgreSQL only (SQLite is one file on one machine); mandatory when CI=true.

#[path = "support/processes.rs"]
mod processes;

use std::io::Write;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use sea_orm::{ColumnTrait, ConnectionTrait, EntityTrait, PaginatorTrait, QueryFilter};
use surclass::payments::simulated::SimulatedGateway;
use surclass::services::reconcile;
use surclass::store;
use surclass::store::entities::{award, bid, payment};

use processes::{
    CARD_DECLINED_AT_CHARGE, GOOD_CARD, Server, create, free_port, idle, import_bookings,
    operator_key, postgres_admin_url, seat_lot, settled, sign_in_and_bid,
};

const NODES: usize = 3;
const LOTS: usize = 4;
const BIDDERS: usize = 24;

/// A small deterministic generator: the same kills at the same moments on every run.
struct Lcg(u64);

impl Lcg {
    fn below(&mut self, n: u64) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (self.0 >> 33) % n
    }
}

/// Lots closing at `closes_at`; every bidder signs in and bids through node `i % NODES`,
/// all at once. Returns the lot ids and the ids of the bids answered 201.
async fn auction(
    bases: &[String],
    key: &str,
    closes_at: chrono::DateTime<chrono::Utc>,
) -> (Vec<String>, Vec<String>) {
    let http = reqwest::Client::new();
    let mut lots = Vec::new();
    for n in 0..LOTS {
        let lot = create(
            &http,
            &bases[n % NODES],
            key,
            "/v1/lots",
            &seat_lot(&format!("MN{n}"), BIDDERS / 3, closes_at),
        )
        .await;
        let bookings: Vec<_> = (0..BIDDERS)
            .map(|i| (format!("M{n}B{i}"), 1 + i % 2))
            .collect();
        import_bookings(&http, &bases[(n + 1) % NODES], key, &lot, &bookings).await;
        lots.push(lot);
    }
    let mut tasks = tokio::task::JoinSet::new();
    for n in 0..LOTS {
        for i in 0..BIDDERS {
            let (http, base, lot) = (
                http.clone(),
                bases[(n * BIDDERS + i) % NODES].clone(),
                lots[n].clone(),
            );
            tasks.spawn(async move {
                // A few cards fail when charged: the standby list moves up.
                let card = if i % 7 == 3 {
                    CARD_DECLINED_AT_CHARGE
                } else {
                    GOOD_CARD
                };
                let amount = format!("{}.00", 100 + (i * 37) % 800);
                sign_in_and_bid(&http, &base, &format!("M{n}B{i}"), &lot, &amount, card).await
            });
        }
    }
    let mut bids = Vec::new();
    while let Some(id) = tasks.join_next().await {
        bids.push(id.unwrap());
    }
    (lots, bids)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_nodes_killed_at_random_during_the_close_award_each_lot_once_and_lose_no_bid() {
    let Some(admin) = postgres_admin_url("the multi-node test") else {
        return;
    };
    let name = format!("surclass_t_{}", uuid::Uuid::new_v4().simple());
    let conn = sea_orm::Database::connect(&admin).await.unwrap();
    conn.execute_unprepared(&format!("CREATE DATABASE {name}"))
        .await
        .unwrap();
    let url = format!("{}/{name}", admin.rsplit_once('/').unwrap().0);

    let ports: Vec<u16> = (0..NODES).map(|_| free_port()).collect();
    // The first node migrates; the others start on the migrated schema.
    let mut nodes: Vec<Server> = Vec::new();
    for &port in &ports {
        let node = Server::start(&url, port);
        node.ready().await;
        nodes.push(node);
    }
    let bases: Vec<String> = nodes.iter().map(|n| n.base.clone()).collect();
    let db = store::connect(&url, 2).await.unwrap();
    let key = operator_key(&db, "multi").await;
    let closes_at = chrono::Utc::now() + chrono::Duration::seconds(20);
    let (lots, placed) = auction(&bases, &key, closes_at).await;
    assert_eq!(placed.len(), LOTS * BIDDERS);
    assert!(
        chrono::Utc::now() < closes_at,
        "bidding took longer than the window; raise it"
    );
    tokio::time::sleep(
        (closes_at - chrono::Utc::now())
            .to_std()
            .unwrap_or_default(),
    )
    .await;

    // Kill a random node at a random moment, restart it a little later; again, while the
    // close, the award and the charges run.
    let mut rng = Lcg(20261123);
    let mut kills = 0;
    let deadline = Instant::now() + Duration::from_secs(120);
    while !(settled(&db, &lots).await && idle(&db).await) {
        assert!(Instant::now() < deadline, "not settled after {kills} kills");
        if kills < 10 {
            tokio::time::sleep(Duration::from_millis(50 + rng.below(600))).await;
            let victim = rng.below(NODES as u64) as usize;
            nodes[victim].kill();
            kills += 1;
            tokio::time::sleep(Duration::from_millis(rng.below(400))).await;
            nodes[victim] = Server::start(&url, ports[victim]);
            nodes[victim].ready().await;
        } else {
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
    for node in &mut nodes {
        node.kill();
    }
    let _ = writeln!(std::io::stderr(), "multinode: {kills} kills");

    // Every lot awarded once.
    let awards = award::Entity::find()
        .filter(award::Column::LotId.is_in(lots.clone()))
        .count(&db)
        .await
        .unwrap();
    assert_eq!(awards as usize, LOTS, "each lot awarded exactly once");
    // No bid lost: each one answered 201 is stored, with a final outcome.
    let stored = bid::Entity::find()
        .filter(bid::Column::Id.is_in(placed.clone()))
        .all(&db)
        .await
        .unwrap();
    assert_eq!(stored.len(), placed.len(), "a bid answered 201 is missing");
    let mut charged = 0;
    for b in &stored {
        let charges = payment::Entity::find()
            .filter(payment::Column::BidId.eq(&b.id))
            .filter(payment::Column::Kind.eq("charge"))
            .filter(payment::Column::Status.eq("succeeded"))
            .count(&db)
            .await
            .unwrap();
        match b.status.as_str() {
            "charged" => {
                assert_eq!(charges, 1, "bid {} charged exactly once", b.id);
                charged += 1;
            }
            "released" | "lost" | "payment_failed" => {
                assert_eq!(charges, 0, "bid {} charged without winning", b.id)
            }
            other => panic!("bid {} left in {other}", b.id),
        }
    }
    assert!(charged > 0, "somebody won");
    // The database and the payment provider agree, and the command says so too.
    let findings = reconcile::check(&db, &SimulatedGateway::beside(&db).await.unwrap())
        .await
        .unwrap();
    assert!(
        findings.is_empty(),
        "holds or charges left behind: {findings:?}"
    );
    let status = Command::new(env!("CARGO_BIN_EXE_surclass"))
        .args(["--database-url", &url, "reconcile"])
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .status()
        .unwrap();
    assert!(
        status.success(),
        "surclass reconcile found something to repair"
    );

    db.close().await.ok();
    conn.execute_unprepared(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
        .await
        .ok();
}
