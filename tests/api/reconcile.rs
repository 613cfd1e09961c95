//! `reconcile` finds money the database and the provider disagree on, and repairs it.

use std::collections::BTreeMap;

use chrono::Utc;
use sea_orm::{ActiveModelTrait, ColumnTrait, EntityTrait, IntoActiveModel, QueryFilter, Set};
use serde_json::json;
use surclass::jobs::Job;
use surclass::money::Currency;
use surclass::payments::{
    BID_METADATA, CardSource, HoldOutcome, HoldRequest, IdempotencyKey, PaymentRef, PaymentStatus,
    PaymentStep,
};
use surclass::services::reconcile;
use surclass::store::entities::{bid, payment};

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

/// A hold the provider took for `bid_id` (in its metadata, as every money step sends it) that
/// no record names: what a crash between the card call and the write leaves behind.
async fn hold_nobody_wrote(app: &TestApp, metadata: BTreeMap<String, String>) -> PaymentRef {
    let key = format!("test:{}", uuid::Uuid::new_v4().simple());
    let outcome = app
        .gateway
        .authorize_hold(HoldRequest {
            idempotency_key: IdempotencyKey::parse(&key).unwrap(),
            amount_minor: 35000,
            currency: Currency::parse("EUR").unwrap(),
            card: CardSource::payment_method("pm_card_visa"),
            customer_ref: None,
            description: "lost in a crash".into(),
            metadata,
        })
        .await
        .unwrap();
    let HoldOutcome::Authorized(hold) = outcome else {
        panic!("hold authorised: {outcome:?}")
    };
    hold.reference
}

async fn status_of(app: &TestApp, hold: &PaymentRef) -> PaymentStatus {
    app.gateway.payment_status(hold).await.unwrap().status
}

async fn a_hold_for_a_bid_that_was_never_stored_is_found_and_released(app: TestApp) {
    let op = app.operator("aurora").await;
    let lot = app.open_lot(&op, json!({})).await;
    app.booking(&op, "PNR001", "Martin", 1, &[&lot]).await;
    let token = app.sign_in("PNR001", "Martin").await;
    let placed = app
        .bid(&token, &lot, "200.00", "pm_card_visa")
        .await
        .expect(201);
    let live = PaymentRef::new(
        bid::Entity::find_by_id(placed.body["id"].as_str().unwrap())
            .one(&app.db)
            .await
            .unwrap()
            .unwrap()
            .payment_ref
            .unwrap(),
    );
    let stray = hold_nobody_wrote(
        &app,
        BTreeMap::from([(BID_METADATA.to_owned(), "bid_never_stored".to_owned())]),
    )
    .await;
    // Another product's hold on the same provider account is none of ours.
    let foreign = hold_nobody_wrote(&app, BTreeMap::new()).await;

    // Just taken, it may be a money step still on its way to the write.
    assert!(
        reconcile::check(&app.db, app.gateway.as_ref())
            .await
            .unwrap()
            .is_empty()
    );
    let later = Utc::now() + reconcile::IN_FLIGHT + chrono::Duration::minutes(1);
    let findings = reconcile::check_as_of(&app.db, app.gateway.as_ref(), later)
        .await
        .unwrap();
    assert_eq!(findings.len(), 1, "{findings:?}");
    assert_eq!(findings[0].bid_id, "bid_never_stored");
    assert!(
        findings[0].problem.contains("350.00 EUR") && findings[0].problem.contains("never stored"),
        "{}",
        findings[0]
    );
    assert_eq!(
        findings[0].repair,
        Job::ReleaseUnrecorded {
            hold: stray.to_string()
        }
    );

    reconcile::repair(&app.db, &findings).await.unwrap();
    app.run_jobs().await;
    assert_eq!(status_of(&app, &stray).await, PaymentStatus::Canceled);
    assert!(
        reconcile::check_as_of(&app.db, app.gateway.as_ref(), later)
            .await
            .unwrap()
            .is_empty()
    );
    assert!(
        matches!(
            status_of(&app, &live).await,
            PaymentStatus::Authorized { .. }
        ),
        "the stored bid keeps its hold"
    );
    assert!(matches!(
        status_of(&app, &foreign).await,
        PaymentStatus::Authorized { .. }
    ));
}

async fn a_hold_of_a_stored_bid_that_its_write_never_recorded_is_released_on_its_timeline(
    app: TestApp,
) {
    let op = app.operator("aurora").await;
    let lot = app.open_lot(&op, json!({})).await;
    app.booking(&op, "PNR001", "Martin", 1, &[&lot]).await;
    let token = app.sign_in("PNR001", "Martin").await;
    let placed = app
        .bid(&token, &lot, "200.00", "pm_card_visa")
        .await
        .expect(201);
    let id = placed.body["id"].as_str().unwrap();
    // A raise whose new hold was taken and whose write was lost to a crash.
    let stray = hold_nobody_wrote(
        &app,
        BTreeMap::from([(BID_METADATA.to_owned(), id.to_owned())]),
    )
    .await;
    let later = Utc::now() + reconcile::IN_FLIGHT + chrono::Duration::minutes(1);
    let findings = reconcile::check_as_of(&app.db, app.gateway.as_ref(), later)
        .await
        .unwrap();
    assert_eq!(findings.len(), 1, "{findings:?}");
    assert!(
        findings[0].problem.contains("recorded nowhere"),
        "{}",
        findings[0]
    );
    reconcile::repair(&app.db, &findings).await.unwrap();
    app.run_jobs().await;

    assert_eq!(status_of(&app, &stray).await, PaymentStatus::Canceled);
    let release = payment::Entity::find()
        .filter(payment::Column::BidId.eq(id))
        .filter(payment::Column::Kind.eq("release"))
        .one(&app.db)
        .await
        .unwrap()
        .expect("the release is recorded on the bid");
    assert_eq!(release.status, "succeeded");
    assert_eq!(release.provider_ref.as_deref(), Some(stray.as_str()));
    let seen = app
        .read(&format!("/v1/traveller/bids/{id}"))
        .key(&token)
        .send()
        .await
        .expect(200);
    assert_eq!(
        seen.body["status"], "active",
        "the bid and its own hold stay"
    );
    let kinds: Vec<&str> = seen.body["timeline"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["kind"].as_str().unwrap())
        .collect();
    assert!(kinds.contains(&"hold_released"), "{kinds:?}");
    assert!(
        reconcile::check_as_of(&app.db, app.gateway.as_ref(), later)
            .await
            .unwrap()
            .is_empty()
    );
}

store_tests!(
    a_hold_left_on_a_losing_bid_is_found_and_released,
    a_replaced_hold_whose_release_never_ran_is_found,
    a_hold_for_a_bid_that_was_never_stored_is_found_and_released,
    a_hold_of_a_stored_bid_that_its_write_never_recorded_is_released_on_its_timeline
);
