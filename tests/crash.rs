//! Crash safety and several processes, with the real `surclass` program:
//! - the server is killed (SIGKILL) again and again while it closes, awards and charges a
//!   lot, and restarted; the lot still ends settled with exactly one charge per winner, no
//!   hold left on any card, and nobody both charged and told they lost;
//! - two servers share one PostgreSQL database and award the same due lots: each lot once.

#[path = "support/processes.rs"]
mod processes;

use std::io::Write;
use std::time::Duration;

use sea_orm::{ColumnTrait, ConnectionTrait, EntityTrait, PaginatorTrait, QueryFilter};
use surclass::payments::simulated::SimulatedGateway;
use surclass::services::reconcile;
use surclass::store::entities::{award, bid, payment};
use surclass::store::{self, Db};

use processes::{
    CARD_DECLINED_AT_CHARGE, GOOD_CARD, Server, create, free_port, import_bookings, operator_key,
    postgres_admin_url, seat_lot, settled, settled_and_idle, sign_in_and_bid,
};

/// Creates `lots` lots closing at `closes_at`, each with `bidders` bids (a few on a card that
/// fails when charged); returns the lot ids.
async fn auction(
    base: &str,
    key: &str,
    lots: usize,
    bidders: usize,
    closes_at: chrono::DateTime<chrono::Utc>,
) -> Vec<String> {
    let http = reqwest::Client::new();
    let mut ids = Vec::new();
    for n in 0..lots {
        let lot = create(
            &http,
            base,
            key,
            "/v1/lots",
            &seat_lot(&format!("AU{n}"), bidders / 3, closes_at),
        )
        .await;
        let bookings: Vec<_> = (0..bidders).map(|i| (format!("L{n}B{i}"), 1)).collect();
        import_bookings(&http, base, key, &lot, &bookings).await;
        for (i, (reference, _)) in bookings.iter().enumerate() {
            let card = if i % 7 == 3 {
                CARD_DECLINED_AT_CHARGE
            } else {
                GOOD_CARD
            };
            let amount = format!("{}.00", 100 + (i * 37) % 800);
            sign_in_and_bid(&http, base, reference, &lot, &amount, card).await;
        }
        ids.push(lot);
    }
    ids
}

/// Money invariants over everything in the database, checked against the simulated
/// provider's own records.
async fn assert_money_is_consistent(db: &Db, lots: &[String]) {
    assert_eq!(
        award::Entity::find().count(db).await.unwrap() as usize,
        lots.len(),
        "each lot awarded once"
    );
    let bids = bid::Entity::find().all(db).await.unwrap();
    for b in &bids {
        let charges = payment::Entity::find()
            .filter(payment::Column::BidId.eq(&b.id))
            .filter(payment::Column::Kind.eq("charge"))
            .filter(payment::Column::Status.eq("succeeded"))
            .count(db)
            .await
            .unwrap();
        match b.status.as_str() {
            "charged" => assert_eq!(charges, 1, "bid {} charged exactly once", b.id),
            "released" | "lost" | "withdrawn" => {
                assert_eq!(charges, 0, "bid {} was told it lost but was charged", b.id)
            }
            other => panic!("bid {} left in {other}", b.id),
        }
    }
    let gateway = SimulatedGateway::beside(db).await.unwrap();
    let findings = reconcile::check(db, &gateway).await.unwrap();
    assert!(
        findings.is_empty(),
        "holds or charges left behind: {findings:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killing_the_server_during_award_and_charging_loses_and_doubles_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("surclass.db").display());
    let port = free_port();
    let server = Server::start(&url, port);
    server.ready().await;
    let db = store::connect(&url, 2).await.unwrap();
    let key = operator_key(&db, "aurora").await;
    let closes_at = chrono::Utc::now() + chrono::Duration::seconds(6);
    let lots = auction(&server.base, &key, 3, 30, closes_at).await;
    let wait = (closes_at - chrono::Utc::now())
        .to_std()
        .unwrap_or_default();
    tokio::time::sleep(wait).await;

    // Kill it at different points of the award and charging, restart, and again.
    let mut server = Some(server);
    let mut kills = 0;
    for delay_ms in [30u64, 80, 150, 250, 400, 600, 900, 1300] {
        tokio::time::sleep(Duration::from_millis(delay_ms)).await;
        server.take().unwrap().kill();
        kills += 1;
        if settled(&db, &lots).await {
            break;
        }
        let restarted = Server::start(&url, port);
        restarted.ready().await;
        server = Some(restarted);
    }
    // Let the last process finish the work.
    let mut last = match server {
        Some(s) => s,
        None => {
            let s = Server::start(&url, port);
            s.ready().await;
            s
        }
    };
    // Releases run after settling: every due job has run before anything is checked.
    settled_and_idle(&db, &lots).await;
    last.kill();
    let _ = writeln!(std::io::stderr(), "crash test: {kills} kills");
    assert_money_is_consistent(&db, &lots).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_servers_on_one_postgresql_award_each_lot_once() {
    let Some(admin) = postgres_admin_url("two servers on PostgreSQL") else {
        return;
    };
    let name = format!("surclass_t_{}", uuid::Uuid::new_v4().simple());
    let conn = sea_orm::Database::connect(&admin).await.unwrap();
    conn.execute_unprepared(&format!("CREATE DATABASE {name}"))
        .await
        .unwrap();
    let url = format!("{}/{name}", admin.rsplit_once('/').unwrap().0);
    let (p1, p2) = (free_port(), free_port());
    let mut one = Server::start(&url, p1);
    one.ready().await;
    let mut two = Server::start(&url, p2);
    two.ready().await;
    let db = store::connect(&url, 2).await.unwrap();
    let key = operator_key(&db, "aurora").await;
    let closes_at = chrono::Utc::now() + chrono::Duration::seconds(8);
    // Bids spread over both servers: lots are created on one, bid on through either.
    let lots = auction(&two.base, &key, 4, 15, closes_at).await;
    settled_and_idle(&db, &lots).await;
    one.kill();
    two.kill();
    assert_money_is_consistent(&db, &lots).await;
    db.close().await.ok();
    conn.execute_unprepared(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
        .await
        .ok();
}
