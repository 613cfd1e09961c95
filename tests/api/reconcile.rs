//! `reconcile` finds money the database and the provider disagree on, and repairs it.

use std::collections::BTreeMap;

use sea_orm::{ActiveModelTrait, EntityTrait, IntoActiveModel, Set};
use serde_json::json;
use surclass::money::Currency;
use surclass::payments::{
    CardSource, HoldOutcome, HoldRequest, IdempotencyKey, PaymentRef, PaymentStatus, PaymentStep,
};
use surclass::services::reconcile;
use surclass::store::entities::bid;

use crate::store_tests;
use crate::support::TestApp;

async fn a_hold_left_on_a_losing_bid_is_found_and_released(app: TestApp) {
    let op = app.operator("aurora").await;
    let lot = app.open_lot(&op, json!({"capacity": 1})).await;
    app.booking(&op, "PNR001", "Martin", 1, &[&lot]).await;
    app.booking(&op, "PNR002", "Durand", 1, &[&lot]).await;
    let a = app.sign_in("PNR001", "Martin").await;
    let b = app.sign_in("PNR002", "Durand").await;
    app.bid(&a, &lot, "500.00", "pm_card_visa")
        .await
        .expect(201);
    let loser = app
        .bid(&b, &lot, "200.00", "pm_card_visa")
        .await
        .expect(201);
    app.close_now(&lot).await;
    app.run_jobs().await;
    assert!(
        reconcile::check(&app.db, app.gateway.as_ref())
            .await
            .unwrap()
            .is_empty(),
        "a clean lot is consistent"
    );

    // A hold the bookkeeping lost track of: on the card, but on a bid that lost.
    let loser_id = loser.body["id"].as_str().unwrap().to_owned();
    let stray = app
        .gateway
        .authorize_hold(HoldRequest {
            idempotency_key: IdempotencyKey::derive(&loser_id, PaymentStep::Hold, 99),
            amount_minor: 20000,
            currency: Currency::parse("EUR").unwrap(),
            card: CardSource::payment_method("pm_card_visa"),
            customer_ref: None,
            description: "stray".into(),
            metadata: BTreeMap::new(),
        })
        .await
        .unwrap();
    let HoldOutcome::Authorized(stray) = stray else {
        panic!("hold authorised")
    };
    let row = bid::Entity::find_by_id(loser_id.clone())
        .one(&app.db)
        .await
        .unwrap()
        .unwrap();
    let mut am = row.into_active_model();
    am.payment_ref = Set(Some(stray.reference.to_string()));
    am.update(&app.db).await.unwrap();

    let findings = reconcile::check(&app.db, app.gateway.as_ref())
        .await
        .unwrap();
    assert_eq!(findings.len(), 1, "{findings:?}");
    assert!(
        findings[0].problem.contains("still on the card"),
        "{}",
        findings[0]
    );
    reconcile::repair(&app.db, &findings).await.unwrap();
    app.run_jobs().await;
    assert!(
        reconcile::check(&app.db, app.gateway.as_ref())
            .await
            .unwrap()
            .is_empty()
    );
    let state = app
        .gateway
        .payment_status(&PaymentRef::new(stray.reference.to_string()))
        .await
        .unwrap();
    assert_eq!(state.status, PaymentStatus::Canceled);
}

async fn a_replaced_hold_whose_release_never_ran_is_found(app: TestApp) {
    let op = app.operator("aurora").await;
    let lot = app.open_lot(&op, json!({})).await;
    app.booking(&op, "PNR001", "Martin", 1, &[&lot]).await;
    let token = app.sign_in("PNR001", "Martin").await;
    let placed = app
        .bid(&token, &lot, "200.00", "pm_card_visa")
        .await
        .expect(201);
    let id = placed.body["id"].as_str().unwrap();
    app.patch(&format!("/v1/traveller/bids/{id}"))
        .key(&token)
        .json(&json!({"amount": "400.00"}))
        .send()
        .await
        .expect(200);
    // The release job of the replaced hold is lost (say it was parked): reconcile sees it.
    use sea_orm::{ColumnTrait, QueryFilter};
    surclass::store::entities::job::Entity::delete_many()
        .filter(surclass::store::entities::job::Column::Kind.eq("release"))
        .exec(&app.db)
        .await
        .unwrap();
    let findings = reconcile::check(&app.db, app.gateway.as_ref())
        .await
        .unwrap();
    assert_eq!(findings.len(), 1, "{findings:?}");
    assert!(
        findings[0].problem.contains("replaced hold"),
        "{}",
        findings[0]
    );
    reconcile::repair(&app.db, &findings).await.unwrap();
    app.run_jobs().await;
    assert!(
        reconcile::check(&app.db, app.gateway.as_ref())
            .await
            .unwrap()
            .is_empty()
    );
    let bid = app
        .read(&format!("/v1/traveller/bids/{id}"))
        .key(&token)
        .send()
        .await
        .expect(200);
    assert_eq!(
        bid.body["status"], "active",
        "the live hold and the bid are untouched"
    );
}

store_tests!(
    a_hold_left_on_a_losing_bid_is_found_and_released,
    a_replaced_hold_whose_release_never_ran_is_found
);
