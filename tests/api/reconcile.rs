//! `reconcile` finds money the database and the provider disagree on, and repairs it.

use std::collections::BTreeMap;

use chrono::{DateTime, Duration, Utc};
use sea_orm::sea_query::Expr;
use sea_orm::{ActiveModelTrait, ColumnTrait, EntityTrait, IntoActiveModel, QueryFilter, Set};
use serde_json::json;
use surclass::jobs::queue;
use surclass::jobs::{Job, UnrecordedBid};
use surclass::money::Currency;
use surclass::payments::{
    BID_METADATA, BOOKING_METADATA, CardSource, HoldOutcome, HoldRequest, IdempotencyKey,
    LOT_METADATA, PaymentRef, PaymentStatus, UNITS_METADATA,
};
use surclass::services::reconcile;
use surclass::store::entities::{bid, job, payment};

use crate::store_tests;
use crate::support::{TestApp, timeline_kinds};

/// What reconcile reports as of `at`: exactly one finding, whose problem names `problem`.
async fn the_one_finding(app: &TestApp, at: DateTime<Utc>, problem: &str) -> reconcile::Finding {
    let mut findings = reconcile::check_as_of(&app.db, app.gateway.as_ref(), at)
        .await
        .unwrap();
    assert_eq!(findings.len(), 1, "{findings:?}");
    let finding = findings.remove(0);
    assert!(finding.problem.contains(problem), "{finding}");
    finding
}

/// Nothing to report as of `at`.
async fn consistent_as_of(app: &TestApp, at: DateTime<Utc>) -> bool {
    reconcile::check_as_of(&app.db, app.gateway.as_ref(), at)
        .await
        .unwrap()
        .is_empty()
}

/// Queues the finding's repair, runs the jobs, and checks nothing is left to report.
async fn repair(app: &TestApp, finding: reconcile::Finding, at: DateTime<Utc>) {
    reconcile::repair(&app.db, &[finding]).await.unwrap();
    app.run_jobs().await;
    assert!(consistent_as_of(app, at).await, "repaired");
}

/// Late enough that no money step can still be on its way to writing a hold taken now.
fn after_in_flight() -> DateTime<Utc> {
    Utc::now() + reconcile::IN_FLIGHT + chrono::Duration::minutes(1)
}

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
    let later = after_in_flight();
    assert!(
        consistent_as_of(&app, later).await,
        "a clean lot is consistent"
    );

    // A hold the bookkeeping lost track of: on the card, but on a bid that lost.
    let loser_id = loser.body["id"].as_str().unwrap().to_owned();
    let stray = hold_nobody_wrote(
        &app,
        BTreeMap::from([(BID_METADATA.to_owned(), loser_id.clone())]),
    )
    .await;
    let row = bid::Entity::find_by_id(loser_id.clone())
        .one(&app.db)
        .await
        .unwrap()
        .unwrap();
    let mut am = row.into_active_model();
    am.payment_ref = Set(Some(stray.to_string()));
    am.update(&app.db).await.unwrap();

    let finding = the_one_finding(&app, later, "still on the card").await;
    repair(&app, finding, later).await;
    assert_eq!(status_of(&app, &stray).await, PaymentStatus::Canceled);
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
    let now = Utc::now();
    let finding = the_one_finding(&app, now, "replaced hold").await;
    repair(&app, finding, now).await;
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
    take_hold(
        app,
        HoldRequest {
            idempotency_key: IdempotencyKey::parse(&key).unwrap(),
            amount_minor: 35000,
            currency: Currency::parse("EUR").unwrap(),
            card: CardSource::payment_method("pm_card_visa"),
            customer_ref: None,
            description: "lost in a crash".into(),
            metadata,
        },
    )
    .await
}

/// Takes the hold at the provider, as a money step does, and writes nothing.
async fn take_hold(app: &TestApp, request: HoldRequest) -> PaymentRef {
    let outcome = app.gateway.authorize_hold(request).await.unwrap();
    let HoldOutcome::Authorized(hold) = outcome else {
        panic!("hold authorised: {outcome:?}")
    };
    hold.reference
}

async fn status_of(app: &TestApp, hold: &PaymentRef) -> PaymentStatus {
    app.gateway.payment_status(hold).await.unwrap().status
}

/// A lot open for bids, with one traveller's bid placed (`PNR001`, 200.00 a person), and the
/// metadata the provider has on that bid's hold.
async fn lot_with_a_placed_bid(
    app: &TestApp,
    op: &crate::support::Operator,
) -> (String, PaymentRef, BTreeMap<String, String>) {
    let lot = app.open_lot(op, json!({})).await;
    app.booking(op, "PNR001", "Martin", 1, &[&lot]).await;
    let token = app.sign_in("PNR001", "Martin").await;
    let placed = app
        .bid(&token, &lot, "200.00", "pm_card_visa")
        .await
        .expect(201);
    let live = PaymentRef::new(
        app.stored_bid(placed.body["id"].as_str().unwrap())
            .await
            .payment_ref
            .unwrap(),
    );
    let metadata = app.gateway.payment_status(&live).await.unwrap().metadata;
    (lot, live, metadata)
}

/// The metadata of a hold taken for a bid of `booking` that was never stored.
fn metadata_of_a_lost_offer(
    placed: &BTreeMap<String, String>,
    booking: &str,
    units: u32,
) -> BTreeMap<String, String> {
    let mut metadata = placed.clone();
    metadata.insert(BID_METADATA.to_owned(), "bid_never_stored".to_owned());
    metadata.insert(BOOKING_METADATA.to_owned(), booking.to_owned());
    metadata.insert(UNITS_METADATA.to_owned(), units.to_string());
    metadata
}

async fn a_hold_for_a_bid_that_was_never_stored_is_found_and_released(app: TestApp) {
    let op = app.operator("aurora").await;
    let (lot, live, placed) = lot_with_a_placed_bid(&app, &op).await;
    // Every hold names its bid, lot, booking and party size at the provider.
    let martin = app.stored_booking("PNR001").await;
    assert_eq!(placed.get(LOT_METADATA), Some(&lot));
    assert_eq!(placed.get(BOOKING_METADATA), Some(&martin.id));
    assert_eq!(placed.get(UNITS_METADATA).map(String::as_str), Some("1"));
    // Another traveller's offer: its hold was taken, its write lost to a crash.
    app.booking(&op, "PNR002", "Durand", 2, &[&lot]).await;
    let durand = app.stored_booking("PNR002").await;
    let stray = hold_nobody_wrote(&app, metadata_of_a_lost_offer(&placed, &durand.id, 2)).await;
    let offered_at = app
        .gateway
        .open_holds(Utc::now() - Duration::days(1))
        .await
        .unwrap()
        .into_iter()
        .find(|h| h.state.reference == stray)
        .unwrap()
        .created_at;
    // Another product's hold on the same provider account is none of ours.
    let foreign = hold_nobody_wrote(&app, BTreeMap::new()).await;

    // Just taken, it may be a money step still on its way to the write.
    assert!(consistent_as_of(&app, Utc::now()).await);
    let later = after_in_flight();
    let finding = the_one_finding(&app, later, "never stored").await;
    assert_eq!(finding.bid_id, "bid_never_stored");
    assert!(finding.problem.contains("350.00 EUR"), "{finding}");
    assert!(
        finding.problem.contains("the traveller is told"),
        "{finding}"
    );
    assert_eq!(
        finding.repair,
        Job::ReleaseUnrecorded {
            hold: stray.to_string(),
            tell: Some(UnrecordedBid {
                bid_id: "bid_never_stored".into(),
                lot_id: lot.clone(),
                booking_id: durand.id.clone(),
                units: 2,
                total_minor: 35000,
                currency: "EUR".into(),
                offered_at: Some(offered_at),
            }),
        }
    );

    repair(&app, finding.clone(), later).await;
    assert_eq!(status_of(&app, &stray).await, PaymentStatus::Canceled);
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

    // The traveller hears of it, once, even when the repair runs again.
    let told = lost_offer_emails(&app, &op.key).await;
    assert_eq!(told.len(), 1, "{told:#?}");
    let m = &told[0];
    assert_eq!(m["status"], "sent", "{m}");
    assert_eq!(m["booking_id"], durand.id.as_str());
    assert!(
        m["subject"]
            .as_str()
            .unwrap()
            .starts_with("Your offer was not recorded"),
        "{m}"
    );
    let body = m["body"].as_str().unwrap();
    // Which offer: when it was made, at the lot's time (Paris).
    let made = offered_at
        .with_timezone(&chrono_tz::Europe::Paris)
        .format("%a %-d %b %Y, %H:%M %Z");
    assert!(
        body.contains(&format!(
            "175.00 EUR per person (350.00 EUR for 2 traveller(s)) made on {made} for"
        )),
        "{body}"
    );
    assert!(
        body.contains("released the hold of 350.00 EUR on your card"),
        "{body}"
    );
    assert!(body.contains("you can make your offer again"), "{body}");
    assert!(body.contains(&format!("{}/s/", app.address)), "{body}");
    // Found again, the release is not queued twice.
    reconcile::repair(&app.db, std::slice::from_ref(&finding))
        .await
        .unwrap();
    assert_eq!(release_jobs(&app).await, vec![queue::DONE.to_owned()]);
    // Run again all the same (say the provider refused until it was parked, and the operator
    // repairs again): released again under the same key, and the traveller not told twice.
    job::Entity::update_many()
        .col_expr(job::Column::Status, Expr::value(queue::PARKED))
        .filter(job::Column::Kind.eq("release_unrecorded"))
        .exec(&app.db)
        .await
        .unwrap();
    reconcile::repair(&app.db, &[finding]).await.unwrap();
    assert_eq!(release_jobs(&app).await, vec![queue::PENDING.to_owned()]);
    app.run_jobs().await;
    assert_eq!(release_jobs(&app).await, vec![queue::DONE.to_owned()]);
    assert_eq!(lost_offer_emails(&app, &op.key).await.len(), 1);
}

/// The status of each job that releases a hold no bid records.
async fn release_jobs(app: &TestApp) -> Vec<String> {
    job::Entity::find()
        .filter(job::Column::Kind.eq("release_unrecorded"))
        .all(&app.db)
        .await
        .unwrap()
        .into_iter()
        .map(|j| j.status)
        .collect()
}

/// The email says what the traveller can do now: nothing when the offer they made since
/// stands, nothing either once the upgrade is cancelled.
async fn the_traveller_of_a_lost_offer_is_told_what_they_can_do_now(app: TestApp) {
    let op = app.operator("aurora").await;
    let (lot, _, placed) = lot_with_a_placed_bid(&app, &op).await;
    let martin = app.stored_booking("PNR001").await;
    // Martin's first try was lost; the bid he placed after it stands.
    let first_try = hold_nobody_wrote(&app, metadata_of_a_lost_offer(&placed, &martin.id, 1)).await;
    let later = after_in_flight();
    let finding = the_one_finding(&app, later, "never stored").await;
    repair(&app, finding, later).await;
    assert_eq!(status_of(&app, &first_try).await, PaymentStatus::Canceled);
    let told = lost_offer_emails(&app, &op.key).await;
    assert_eq!(told.len(), 1, "{told:#?}");
    let body = told[0]["body"].as_str().unwrap();
    assert!(
        body.contains("The offer you made since is recorded; this does not change it"),
        "{body}"
    );
    assert!(!body.contains("make your offer again"), "{body}");

    // Durand's offer on the same lot was lost, and the operator cancels the upgrade.
    app.booking(&op, "PNR002", "Durand", 1, &[&lot]).await;
    let durand = app.stored_booking("PNR002").await;
    let lost = hold_nobody_wrote(&app, metadata_of_a_lost_offer(&placed, &durand.id, 1)).await;
    app.post(&format!("/v1/lots/{lot}/cancel"))
        .key(&op.key)
        .json(&json!({"reason": "Aircraft change"}))
        .send()
        .await
        .expect(200);
    app.run_jobs().await;
    let finding = the_one_finding(&app, after_in_flight(), "never stored").await;
    repair(&app, finding, after_in_flight()).await;
    assert_eq!(status_of(&app, &lost).await, PaymentStatus::Canceled);
    let told = lost_offer_emails(&app, &op.key).await;
    let to_durand: Vec<_> = told
        .iter()
        .filter(|m| m["booking_id"] == durand.id.as_str())
        .collect();
    assert_eq!(to_durand.len(), 1, "{told:#?}");
    let body = to_durand[0]["body"].as_str().unwrap();
    assert!(body.contains("no longer open for offers"), "{body}");
    assert!(!body.contains("make your offer again"), "{body}");
}

/// Nobody runs `surclass reconcile`: the server's own worker finds the hold, releases it and
/// tells the traveller.
async fn the_server_releases_a_hold_nobody_recorded_by_itself(app: TestApp) {
    let op = app.operator("aurora").await;
    let (lot, _, placed) = lot_with_a_placed_bid(&app, &op).await;
    app.booking(&op, "PNR002", "Durand", 1, &[&lot]).await;
    let durand = app.stored_booking("PNR002").await;
    let stray = hold_nobody_wrote(&app, metadata_of_a_lost_offer(&placed, &durand.id, 1)).await;
    // Taken long enough ago that no money step can still be writing it.
    let taken = Utc::now() - reconcile::IN_FLIGHT - chrono::Duration::minutes(1);
    app.gateway_payment_made_at(stray.as_str(), taken).await;

    let (stop, stopped) = tokio::sync::watch::channel(false);
    let worker = tokio::spawn(app.worker.clone().run(stopped));
    // Not a timing target: long enough for any machine, short enough to fail a hang.
    let give_up = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while lost_offer_emails(&app, &op.key)
        .await
        .iter()
        .all(|m| m["status"] != "sent")
    {
        assert!(
            std::time::Instant::now() < give_up,
            "the worker did not release the hold by itself"
        );
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    stop.send(true).unwrap();
    worker.await.unwrap();
    assert_eq!(status_of(&app, &stray).await, PaymentStatus::Canceled);
    let told = lost_offer_emails(&app, &op.key).await;
    assert_eq!(told.len(), 1, "{told:#?}");
    assert_eq!(told[0]["booking_id"], durand.id.as_str());
}

/// A hold taken before holds named their lot and booking: released, and nobody to tell.
async fn a_hold_that_names_only_its_bid_is_released_without_a_message(app: TestApp) {
    let op = app.operator("aurora").await;
    let lot = app.open_lot(&op, json!({})).await;
    app.booking(&op, "PNR001", "Martin", 1, &[&lot]).await;
    let stray = hold_nobody_wrote(
        &app,
        BTreeMap::from([(BID_METADATA.to_owned(), "bid_never_stored".to_owned())]),
    )
    .await;
    let later = after_in_flight();
    let finding = the_one_finding(&app, later, "names no booking to tell").await;
    assert_eq!(
        finding.repair,
        Job::ReleaseUnrecorded {
            hold: stray.to_string(),
            tell: None,
        }
    );
    repair(&app, finding, later).await;
    assert_eq!(status_of(&app, &stray).await, PaymentStatus::Canceled);
    assert!(lost_offer_emails(&app, &op.key).await.is_empty());
}

/// The operator's copies of the emails that told a traveller their offer was lost.
async fn lost_offer_emails(app: &TestApp, key: &str) -> Vec<serde_json::Value> {
    app.emails_of(key, "bid.not_recorded").await
}

/// A raise's hold was taken and its write lost (a crash); reconcile released that hold on
/// the bid. The traveller raises again: the provider must not hand back the released hold
/// for the same key, or the bid would stand on no money at all.
async fn a_raise_after_its_lost_hold_was_released_gets_a_hold_of_its_own(app: TestApp) {
    let op = app.operator("aurora").await;
    let (lot, live, placed) = lot_with_a_placed_bid(&app, &op).await;
    let token = app.sign_in("PNR001", "Martin").await;
    let id = placed[BID_METADATA].clone();
    let l = surclass::store::entities::lot::Entity::find_by_id(lot)
        .one(&app.db)
        .await
        .unwrap()
        .unwrap();
    // The key the raise to 400.00 will be asked under: the placement's, one attempt on.
    let first = gateway_keys_of(&app, &format!("surclass:{id}:hold:1/")).await;
    assert_eq!(first.len(), 1, "{first:?}");
    let raise_key = first[0]
        .replacen(":hold:1/", ":hold:2/", 1)
        .replace("/20000", "/40000");
    let martin = app.stored_booking("PNR001").await;
    let lost = take_hold(
        &app,
        HoldRequest {
            idempotency_key: IdempotencyKey::parse(&raise_key).unwrap(),
            amount_minor: 40000,
            currency: Currency::parse("EUR").unwrap(),
            card: CardSource::payment_method("pm_card_visa"),
            customer_ref: Some(martin.id.clone()),
            // As the raise asks: the same parameters under the same key get its answer.
            description: format!(
                "Upgrade {} {} {} → {}",
                l.resource, l.service_date, l.from_class, l.to_class
            ),
            metadata: [BID_METADATA, LOT_METADATA, BOOKING_METADATA, UNITS_METADATA]
                .map(|k| (k.to_owned(), placed[k].clone()))
                .into(),
        },
    )
    .await;
    let later = after_in_flight();
    let finding = the_one_finding(&app, later, "recorded nowhere").await;
    repair(&app, finding, later).await;
    assert_eq!(status_of(&app, &lost).await, PaymentStatus::Canceled);

    app.patch(&format!("/v1/traveller/bids/{id}"))
        .key(&token)
        .json(&json!({"amount": "400.00"}))
        .send()
        .await
        .expect(200);
    let raised = PaymentRef::new(app.stored_bid(&id).await.payment_ref.unwrap());
    assert_ne!(raised, lost, "the released hold came back");
    assert_ne!(raised, live);
    assert!(
        matches!(
            status_of(&app, &raised).await,
            PaymentStatus::Authorized {
                amount_capturable: 40000
            }
        ),
        "{:?}",
        status_of(&app, &raised).await
    );
}

/// The losing copy of an "upgrade now" sent twice took a hold for a bid id it never stored,
/// and its release failed: the hold is recorded on the winning copy's bid. It is found once,
/// as that bid's, not also as a hold nobody recorded.
async fn a_hold_recorded_on_another_bid_than_it_names_is_found_once(app: TestApp) {
    let op = app.operator("aurora").await;
    let (lot, _, placed) = lot_with_a_placed_bid(&app, &op).await;
    // The winning copy's bid holds nothing now (here: withdrawn, its hold released).
    app.booking(&op, "PNR002", "Durand", 1, &[&lot]).await;
    let durand = app.sign_in("PNR002", "Durand").await;
    let winner = app
        .bid(&durand, &lot, "300.00", "pm_card_visa")
        .await
        .expect(201);
    let winner = winner.body["id"].as_str().unwrap().to_owned();
    app.delete(&format!("/v1/traveller/bids/{winner}"))
        .key(&durand)
        .send()
        .await
        .expect(200);
    app.run_jobs().await;
    let booking = app.stored_booking("PNR002").await;
    let stray = hold_nobody_wrote(&app, metadata_of_a_lost_offer(&placed, &booking.id, 1)).await;
    surclass::store::payments::insert(
        &app.db,
        surclass::store::payments::NewPayment {
            bid_id: &winner,
            kind: "hold",
            amount_minor: 35000,
            currency: "EUR",
            status: "succeeded",
            provider: "simulated",
            provider_ref: Some(stray.to_string()),
            idempotency_key: "test:the-losing-copy".into(),
            attempt: 2,
        },
    )
    .await
    .unwrap();
    let later = after_in_flight();
    let finding = the_one_finding(&app, later, "replaced hold").await;
    repair(&app, finding, later).await;
    assert_eq!(status_of(&app, &stray).await, PaymentStatus::Canceled);
    assert!(lost_offer_emails(&app, &op.key).await.is_empty());
}

/// The idempotency keys the simulated provider was asked under that start with `prefix`.
async fn gateway_keys_of(app: &TestApp, prefix: &str) -> Vec<String> {
    use sea_orm::ConnectionTrait;
    let gateway = surclass::payments::simulated::SimulatedGateway::beside(&app.db)
        .await
        .unwrap();
    let state = gateway.state();
    let rows = state
        .query_all_raw(sea_orm::Statement::from_string(
            state.get_database_backend(),
            "SELECT idempotency_key FROM simulated_gateway_requests",
        ))
        .await
        .unwrap();
    rows.iter()
        .filter_map(|r| r.try_get::<String>("", "idempotency_key").ok())
        .filter(|k| k.starts_with(prefix))
        .collect()
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
    let later = after_in_flight();
    let finding = the_one_finding(&app, later, "recorded nowhere").await;
    repair(&app, finding, later).await;

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
    let kinds = timeline_kinds(&seen.body);
    assert!(kinds.contains(&"hold_released".to_owned()), "{kinds:?}");
}

store_tests!(
    a_hold_left_on_a_losing_bid_is_found_and_released,
    a_replaced_hold_whose_release_never_ran_is_found,
    a_hold_for_a_bid_that_was_never_stored_is_found_and_released,
    a_hold_that_names_only_its_bid_is_released_without_a_message,
    the_traveller_of_a_lost_offer_is_told_what_they_can_do_now,
    the_server_releases_a_hold_nobody_recorded_by_itself,
    a_raise_after_its_lost_hold_was_released_gets_a_hold_of_its_own,
    a_hold_recorded_on_another_bid_than_it_names_is_found_once,
    a_hold_of_a_stored_bid_that_its_write_never_recorded_is_released_on_its_timeline,
    a_lost_offer_is_not_invited_again_where_the_party_no_longer_fits,
);

/// A lost offer is not answered "make your offer again" where the whole party no longer fits:
/// the offers page would not show that upgrade to them.
async fn a_lost_offer_is_not_invited_again_where_the_party_no_longer_fits(app: TestApp) {
    let op = app.operator("aurora").await;
    let (lot, _, placed) = lot_with_a_placed_bid(&app, &op).await;
    app.booking(&op, "PNR005", "Roy", 5, &[&lot]).await;
    let roy = app.stored_booking("PNR005").await;
    hold_nobody_wrote(&app, metadata_of_a_lost_offer(&placed, &roy.id, 5)).await;
    let finding = the_one_finding(&app, after_in_flight(), "never stored").await;
    repair(&app, finding, after_in_flight()).await;
    let told = lost_offer_emails(&app, &op.key).await;
    assert_eq!(told.len(), 1, "{told:#?}");
    let body = told[0]["body"].as_str().unwrap();
    assert!(!body.contains("make your offer again"), "{body}");
    assert!(body.contains("no longer open for offers"), "{body}");
}
