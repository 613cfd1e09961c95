//! End to end on the simulated gateway: 10,000 bids over 50 lots are all awarded, charged
//! or released, and the money reconciles to the cent.

use std::sync::Arc;

use sea_orm::{ColumnTrait, EntityTrait, QueryFilter};
use serde_json::json;
use surclass::payments::CardSource;
use surclass::services::bids::{self, NewBid};
use surclass::services::reconcile;
use surclass::store::entities::{award, bid, booking, lot, payment};

use crate::store_tests;
use crate::support::TestApp;

const LOTS: usize = 50;
const BIDS_PER_LOT: usize = 200;

async fn ten_thousand_bids_over_fifty_lots_settle_and_reconcile_to_the_cent(app: TestApp) {
    let op = app.operator("aurora").await;
    let mut lots = Vec::new();
    for n in 0..LOTS {
        let policy = ["priority", "max_revenue", "uniform_price"][n % 3];
        let id = app.open_lot(&op, json!({"capacity": 10 + n % 30, "award_policy": policy, "payment_grace_seconds": 0})).await;
        let rows: Vec<_> = (0..BIDS_PER_LOT)
            .map(|i| json!({"reference": format!("L{n}B{i}"), "last_name": "Martin", "party_size": 1 + i % 4,
                "loyalty_tier": i % 3, "eligible_lots": [id]}))
            .collect();
        app.post("/v1/bookings/import")
            .key(&op.key)
            .json(&json!(rows))
            .send()
            .await
            .expect(200);
        lots.push(id);
    }
    let bookings = Arc::new(booking::Entity::find().all(&app.db).await.unwrap());
    assert_eq!(bookings.len(), LOTS * BIDS_PER_LOT);

    // Bids through the service layer, eight at a time (the HTTP path is tested elsewhere).
    let mut tasks = tokio::task::JoinSet::new();
    let chunk = bookings.len().div_ceil(8);
    for part in 0..8 {
        let (db, gateway, bookings, lots) = (
            app.db.clone(),
            app.gateway.clone(),
            bookings.clone(),
            lots.clone(),
        );
        tasks.spawn(async move {
            for (i, b) in bookings.iter().enumerate().skip(part * chunk).take(chunk) {
                let lot_index: usize = b
                    .reference
                    .trim_start_matches('L')
                    .split('B')
                    .next()
                    .unwrap()
                    .parse()
                    .unwrap();
                let card = if i % 23 == 5 {
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
                        lot_id: &lots[lot_index],
                        amount: &amount,
                        card: Some(CardSource::card(card, 12, 2030, "123")),
                        partial_ok: i % 5 == 0,
                        preference: None,
                        consent_to_charge: false,
                    },
                )
                .await
                .expect("bid placed");
            }
        });
    }
    while let Some(done) = tasks.join_next().await {
        done.unwrap();
    }

    for id in &lots {
        app.close_now(id).await;
    }
    app.run_jobs().await;

    let settled = lot::Entity::find()
        .filter(lot::Column::Status.eq("settled"))
        .all(&app.db)
        .await
        .unwrap();
    assert_eq!(settled.len(), LOTS, "every lot settled");
    let revenue: i64 = award::Entity::find()
        .all(&app.db)
        .await
        .unwrap()
        .iter()
        .map(|a| a.revenue_minor)
        .sum();
    let charged: i64 = payment::Entity::find()
        .filter(payment::Column::Kind.eq("charge"))
        .filter(payment::Column::Status.eq("succeeded"))
        .all(&app.db)
        .await
        .unwrap()
        .iter()
        .map(|p| p.amount_minor)
        .sum();
    assert_eq!(
        charged, revenue,
        "what was charged is exactly what the awards say, to the cent"
    );
    let all = bid::Entity::find().all(&app.db).await.unwrap();
    assert_eq!(all.len(), LOTS * BIDS_PER_LOT);
    let charged_bids: i64 = all
        .iter()
        .filter(|b| b.status == "charged")
        .map(|b| b.award_price_minor.unwrap() * i64::from(b.award_units.unwrap()))
        .sum();
    assert_eq!(charged_bids, charged);
    for b in &all {
        assert!(
            ["charged", "released"].contains(&b.status.as_str()),
            "bid {} left {}",
            b.id,
            b.status
        );
        if b.status == "released" {
            assert!(b.payment_ref.is_none(), "bid {} still holds money", b.id);
        }
    }
    assert!(
        reconcile::check(&app.db, app.gateway.as_ref())
            .await
            .unwrap()
            .is_empty()
    );
}

store_tests!(ten_thousand_bids_over_fifty_lots_settle_and_reconcile_to_the_cent);
