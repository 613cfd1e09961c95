//! From deadline to money on the simulated gateway: the lot closes, the best offers that fit
//! win and are charged exactly their total, every other hold is released, and everyone can
//! read what happened and why.

use sea_orm::{ColumnTrait, EntityTrait, PaginatorTrait, QueryFilter};
use serde_json::{Value, json};
use surclass::store::entities::{audit_entry, award, payment};

use crate::store_tests;
use crate::support::{Operator, Reply, TestApp, timeline_kinds, travel_day};

const GOOD: &str = "4242 4242 4242 4242";
const DECLINED_AT_BID: &str = "4000 0000 0000 0002";
const DECLINED_WHEN_CHARGED: &str = "4000 0000 0000 0341";

struct Bidder {
    token: String,
    bid: String,
}

async fn bidder(
    app: &TestApp,
    op: &Operator,
    lot: &str,
    reference: &str,
    party: u32,
    amount: &str,
    card: &str,
) -> Bidder {
    app.booking(op, reference, "Martin", party, &[lot]).await;
    let token = app.sign_in(reference, "Martin").await;
    let placed = app.bid(&token, lot, amount, card).await.expect(201);
    Bidder {
        token,
        bid: placed.body["id"].as_str().unwrap().to_owned(),
    }
}

async fn seen(app: &TestApp, b: &Bidder) -> Value {
    app.read(&format!("/v1/traveller/bids/{}", b.bid))
        .key(&b.token)
        .send()
        .await
        .expect(200)
        .body
}

/// A lot of one upgrade that keeps it ten minutes for another card, closed: the winner's card
/// (400.00) is declined when charged, and a standby traveller (300.00) waits. Gives the lot,
/// the winner and the standby traveller.
async fn winner_whose_payment_failed(app: &TestApp, op: &Operator) -> (String, Bidder, Bidder) {
    let lot = app
        .open_lot(op, json!({"capacity": 1, "payment_grace_seconds": 600}))
        .await;
    let winner = bidder(app, op, &lot, "PNR001", 1, "400.00", DECLINED_WHEN_CHARGED).await;
    let standby = bidder(app, op, &lot, "PNR002", 1, "300.00", GOOD).await;
    app.close_now(&lot).await;
    app.run_jobs().await;
    assert_eq!(seen(app, &winner).await["status"], "payment_failed");
    (lot, winner, standby)
}

/// `winner` gives another card, a good one, for its failed payment.
async fn another_card(app: &TestApp, winner: &Bidder) -> Reply {
    app.post(&format!("/v1/traveller/bids/{}/card", winner.bid))
        .key(&winner.token)
        .json(&json!({"payment_method": "pm_card_visa"}))
        .send()
        .await
}

async fn payments_of(app: &TestApp, bid: &str, kind: &str, status: &str) -> u64 {
    payment::Entity::find()
        .filter(payment::Column::BidId.eq(bid))
        .filter(payment::Column::Kind.eq(kind))
        .filter(payment::Column::Status.eq(status))
        .count(&app.db)
        .await
        .unwrap()
}

/// The lot's award as the operator reads it over the API.
/// The operator cancels the lot ("Flight cancelled").
async fn award_of(app: &TestApp, op: &Operator, lot: &str) -> Value {
    app.read(&format!("/v1/lots/{lot}/award"))
        .key(&op.key)
        .send()
        .await
        .expect(200)
        .body
}

async fn the_best_offers_that_fit_win_are_charged_and_every_other_hold_is_released(app: TestApp) {
    let op = app.operator("aurora").await;
    let lot = app.open_lot(&op, json!({"capacity": 3})).await;
    let first = bidder(&app, &op, &lot, "PNR001", 2, "300.00", GOOD).await;
    let second = bidder(&app, &op, &lot, "PNR002", 2, "280.00", GOOD).await;
    let third = bidder(&app, &op, &lot, "PNR003", 1, "250.00", GOOD).await;
    let low = bidder(&app, &op, &lot, "PNR004", 1, "120.00", GOOD).await;
    let gone = bidder(&app, &op, &lot, "PNR005", 1, "900.00", GOOD).await;
    app.delete(&format!("/v1/traveller/bids/{}", gone.bid))
        .key(&gone.token)
        .send()
        .await
        .expect(200);

    app.close_now(&lot).await;
    app.run_jobs().await;

    // Party of 2 at 300 and the single at 250 fill 3 seats; the party of 2 at 280 does not fit.
    let first = seen(&app, &first).await;
    assert_eq!(first["status"], "charged");
    assert_eq!(first["outcome"]["charged_total"], "600.00");
    assert!(
        timeline_kinds(&first).ends_with(&["lot_closed".into(), "won".into(), "charged".into()]),
        "{:?}",
        timeline_kinds(&first)
    );
    let third_seen = seen(&app, &third).await;
    assert_eq!(third_seen["status"], "charged");
    assert_eq!(third_seen["outcome"]["charged_total"], "250.00");

    let second = seen(&app, &second).await;
    assert_ne!(second["status"], "charged");
    assert!(
        second["outcome"]["message"]
            .as_str()
            .unwrap()
            .contains("fewer than your party"),
        "{}",
        second["outcome"]
    );
    assert!(
        timeline_kinds(&second).contains(&"hold_released".to_owned()),
        "{:?}",
        timeline_kinds(&second)
    );
    let low = seen(&app, &low).await;
    assert_eq!(low["status"], "released");
    assert!(timeline_kinds(&low).contains(&"hold_released".to_owned()));
    assert!(
        low["outcome"]["rule"]
            .as_str()
            .unwrap()
            .contains("highest offers")
    );
    let gone = seen(&app, &gone).await;
    assert_eq!(gone["status"], "withdrawn");
    assert!(timeline_kinds(&gone).contains(&"hold_released".to_owned()));

    // The operator sees the award, its revenue and the money taken; the lot is settled.
    let award = award_of(&app, &op, &lot).await;
    assert_eq!(award["revenue"], "850.00");
    assert_eq!(award["charged"], "850.00");
    assert_eq!(award["refunded"], "0.00");
    let lot_view = app
        .read(&format!("/v1/lots/{lot}"))
        .key(&op.key)
        .send()
        .await
        .expect(200);
    assert_eq!(lot_view.body["status"], "settled");
    // Exactly one capture per winner; no hold left anywhere.
    assert_eq!(
        payments_of(&app, first["id"].as_str().unwrap(), "charge", "succeeded").await,
        1
    );
    let captured: i64 = payment::Entity::find()
        .filter(payment::Column::Kind.eq("charge"))
        .filter(payment::Column::Status.eq("succeeded"))
        .all(&app.db)
        .await
        .unwrap()
        .iter()
        .map(|p| p.amount_minor)
        .sum();
    assert_eq!(
        captured, 85000,
        "charged totals reconcile to the cent with the award"
    );
    assert_eq!(app.run_jobs().await, 0, "nothing left to do");
}

async fn a_card_declined_at_bid_time_changes_nothing(app: TestApp) {
    let op = app.operator("aurora").await;
    let lot = app.open_lot(&op, json!({})).await;
    app.booking(&op, "PNR001", "Martin", 1, &[&lot]).await;
    let token = app.sign_in("PNR001", "Martin").await;
    let refused = app
        .bid(&token, &lot, "200.00", DECLINED_AT_BID)
        .await
        .expect(402);
    assert_eq!(refused.problem_type(), "card-declined");
    assert!(
        refused.body["detail"]
            .as_str()
            .unwrap()
            .contains("declined")
    );
    let bids = app
        .read(&format!("/v1/lots/{lot}/bids"))
        .key(&op.key)
        .send()
        .await
        .expect(200);
    assert!(bids.body["items"].as_array().unwrap().is_empty());
    // The same traveller can bid at once with another card.
    app.bid(&token, &lot, "200.00", GOOD).await.expect(201);
}

async fn raising_a_bid_authorises_the_new_total_and_releases_the_old_hold(app: TestApp) {
    let op = app.operator("aurora").await;
    let lot = app.open_lot(&op, json!({})).await;
    let b = bidder(&app, &op, &lot, "PNR001", 2, "200.00", "pm_card_visa").await;
    app.patch(&format!("/v1/traveller/bids/{}", b.bid))
        .key(&b.token)
        .json(&json!({"amount": "350.00"}))
        .send()
        .await
        .expect(200);
    let holds = payment::Entity::find()
        .filter(payment::Column::BidId.eq(&b.bid))
        .filter(payment::Column::Kind.eq("hold"))
        .all(&app.db)
        .await
        .unwrap();
    let amounts: Vec<i64> = holds.iter().map(|p| p.amount_minor).collect();
    assert_eq!(amounts, [40000, 70000], "the whole party's total is held");
    let current = surclass::store::entities::bid::Entity::find_by_id(b.bid.clone())
        .one(&app.db)
        .await
        .unwrap()
        .unwrap();
    let old = holds[0].provider_ref.clone().unwrap();
    app.run_jobs().await;
    assert_ne!(current.payment_ref.as_deref(), Some(old.as_str()));
    let status = app
        .gateway
        .payment_status(&surclass::payments::PaymentRef::new(old))
        .await
        .unwrap();
    assert_eq!(
        status.status,
        surclass::payments::PaymentStatus::Canceled,
        "the old hold is released"
    );

    // A lower offer keeps the hold and charges only the lower total.
    app.patch(&format!("/v1/traveller/bids/{}", b.bid))
        .key(&b.token)
        .json(&json!({"amount": "310.00"}))
        .send()
        .await
        .expect(200);
    app.close_now(&lot).await;
    app.run_jobs().await;
    let after = seen(&app, &b).await;
    assert_eq!(after["status"], "charged");
    assert_eq!(after["outcome"]["charged_total"], "620.00");
}

async fn a_failed_charge_moves_the_standby_list_up_after_the_grace_period(app: TestApp) {
    let op = app.operator("aurora").await;
    // A partner follows lost bids (nobody listens at the address: the delivery waits).
    app.post("/v1/webhook-endpoints")
        .key(&op.key)
        .json(&json!({"url": "http://127.0.0.1:9/hooks", "events": ["bid.lost"]}))
        .send()
        .await
        .expect(201);
    let lot = app
        .open_lot(&op, json!({"capacity": 1, "payment_grace_seconds": 0}))
        .await;
    let failing = bidder(
        &app,
        &op,
        &lot,
        "PNR001",
        1,
        "400.00",
        DECLINED_WHEN_CHARGED,
    )
    .await;
    let next = bidder(&app, &op, &lot, "PNR002", 1, "300.00", GOOD).await;
    let third = bidder(&app, &op, &lot, "PNR003", 1, "200.00", GOOD).await;

    app.close_now(&lot).await;
    app.run_jobs().await;

    let failing = seen(&app, &failing).await;
    assert_eq!(
        failing["outcome"]["reason"], "payment_failed",
        "{}",
        failing
    );
    let k = timeline_kinds(&failing);
    assert!(
        k.contains(&"payment_failed".to_owned()) && k.contains(&"hold_released".to_owned()),
        "{k:?}"
    );
    assert!(failing["charged_total"].is_null());
    // No grace period: the email says the upgrade has gone on, and asks for no other card.
    let emails = app.emails_of(&op.key, "bid.payment_failed").await;
    assert_eq!(emails.len(), 1, "{emails:?}");
    let body = emails[0]["body"].as_str().unwrap();
    assert!(
        body.contains("Your card was declined. This upgrade leaves no time to give another card")
            && !body.contains("Please use another card")
            && !body.contains("What to do")
            && body.contains("The hold on your card is being released.")
            && emails[0]["subject"]
                .as_str()
                .unwrap()
                .starts_with("Payment failed: "),
        "{}",
        emails[0]
    );
    // That email is the traveller's one word of it; the partner still hears `bid.lost`.
    let booking = &emails[0]["booking_id"];
    let lost_emails = app.emails_of(&op.key, "bid.lost").await;
    assert!(
        !lost_emails.is_empty() && lost_emails.iter().all(|m| &m["booking_id"] != booking),
        "only the third traveller's: {lost_emails:?}"
    );
    let hooks = app
        .read("/v1/messages?channel=webhook")
        .key(&op.key)
        .send()
        .await
        .expect(200);
    assert!(
        hooks.body["items"]
            .as_array()
            .unwrap()
            .iter()
            .any(|m| m["topic"] == "bid.lost" && &m["booking_id"] == booking),
        "{}",
        hooks.body
    );

    let next = seen(&app, &next).await;
    assert_eq!(next["status"], "charged", "{}", next);
    assert!(timeline_kinds(&next).contains(&"standby".to_owned()));
    assert_eq!(next["outcome"]["charged_total"], "300.00");

    let third = seen(&app, &third).await;
    assert_eq!(third["status"], "released");
    assert_eq!(third["outcome"]["reason"], "outbid");
    let lot_view = app
        .read(&format!("/v1/lots/{lot}"))
        .key(&op.key)
        .send()
        .await
        .expect(200);
    assert_eq!(lot_view.body["status"], "settled");
    let award = award::Entity::find_by_id(lot.clone())
        .one(&app.db)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(award.revenue_minor, 30000);
}

/// A winner at a uniform price whose payment fails is told of the amount asked (the price
/// won for the party), not of their higher offer.
async fn a_failed_payment_names_the_price_won_not_the_offer(app: TestApp) {
    let op = app.operator("aurora").await;
    let lot = app
        .open_lot(
            &op,
            json!({"capacity": 2, "award_policy": "uniform_price", "payment_grace_seconds": 600}),
        )
        .await;
    bidder(
        &app,
        &op,
        &lot,
        "PNR001",
        2,
        "500.00",
        DECLINED_WHEN_CHARGED,
    )
    .await;
    app.close_now(&lot).await;
    app.run_jobs().await;
    let emails = app.emails_of(&op.key, "bid.payment_failed").await;
    assert_eq!(emails.len(), 1, "{emails:?}");
    let body = emails[0]["body"].as_str().unwrap();
    assert!(
        body.contains("the payment of 200.00 EUR failed"),
        "the minimum (100.00) for 2, not the offer: {body}"
    );

    // A party of three upgraded in part (two seats): the price of the two seats.
    let partial = app
        .open_lot(
            &op,
            json!({"resource": "AU202", "capacity": 2, "payment_grace_seconds": 600}),
        )
        .await;
    app.booking(&op, "PNR002", "Martin", 3, &[&partial]).await;
    let token = app.sign_in("PNR002", "Martin").await;
    app.post("/v1/traveller/bids")
        .key(&token)
        .json(&json!({"lot_id": partial, "amount": "450.00", "partial_ok": true,
            "card": {"number": DECLINED_WHEN_CHARGED, "exp_month": 12, "exp_year": 2030, "cvc": "123"}}))
        .send()
        .await
        .expect(201);
    app.close_now(&partial).await;
    app.run_jobs().await;
    let emails = app.emails_of(&op.key, "bid.payment_failed").await;
    assert_eq!(emails.len(), 2, "{emails:?}");
    assert!(
        emails.iter().any(|m| m["body"]
            .as_str()
            .unwrap()
            .contains("the payment of 900.00 EUR failed")),
        "two seats at 450.00, not 1350.00 for three: {emails:?}"
    );
}

async fn uniform_price_winners_all_pay_the_clearing_price(app: TestApp) {
    let op = app.operator("aurora").await;
    let lot = app
        .open_lot(&op, json!({"capacity": 2, "award_policy": "uniform_price"}))
        .await;
    let a = bidder(&app, &op, &lot, "PNR001", 1, "500.00", GOOD).await;
    let b = bidder(&app, &op, &lot, "PNR002", 1, "400.00", GOOD).await;
    let c = bidder(&app, &op, &lot, "PNR003", 1, "260.00", GOOD).await;
    app.close_now(&lot).await;
    app.run_jobs().await;
    for winner in [&a, &b] {
        let v = seen(&app, winner).await;
        assert_eq!(v["status"], "charged");
        assert_eq!(
            v["outcome"]["charged_total"], "260.00",
            "the highest losing offer sets the price"
        );
    }
    let loser = seen(&app, &c).await;
    assert_eq!(
        loser["outcome"]["clearing_price"], "260.00",
        "losers see the clearing price"
    );
}

async fn charge_on_award_saves_the_card_and_charges_it_when_won(app: TestApp) {
    let op = app.operator("aurora").await;
    let closes = (chrono::Utc::now() + chrono::Duration::days(20)).to_rfc3339();
    let lot = app
        .open_lot(
            &op,
            json!({"payment_mode": "charge_on_award", "closes_at": closes}),
        )
        .await;
    let hold_too_far = app
        .post("/v1/lots")
        .key(&op.key)
        .json(
            &json!({"resource_kind": "seat", "resource": "AU1", "service_date": travel_day(),
            "from_class": "y", "to_class": "j", "capacity": 1, "currency": "EUR", "reserve": "1",
            "maximum": "2", "closes_at": closes, "payment_mode": "hold"}),
        )
        .send()
        .await
        .expect(422);
    assert_eq!(
        hold_too_far.body["field"], "payment_mode",
        "holds expire: no hold for a close weeks away"
    );

    app.booking(&op, "PNR001", "Martin", 1, &[&lot]).await;
    let token = app.sign_in("PNR001", "Martin").await;
    let card = json!({"number": GOOD, "exp_month": 12, "exp_year": 2030, "cvc": "123"});
    let no_consent = app
        .post("/v1/traveller/bids")
        .key(&token)
        .json(&json!({"lot_id": lot, "amount": "300.00", "card": card}))
        .send()
        .await
        .expect(422);
    assert_eq!(
        no_consent.body["field"], "consent_to_charge",
        "a later charge needs the traveller's consent"
    );
    let placed = app
        .post("/v1/traveller/bids")
        .key(&token)
        .json(&json!({"lot_id": lot, "amount": "300.00", "card": card, "consent_to_charge": true}))
        .send()
        .await
        .expect(201);
    let winner = Bidder {
        token,
        bid: placed.body["id"].as_str().unwrap().to_owned(),
    };
    let v = seen(&app, &winner).await;
    assert!(
        !timeline_kinds(&v).contains(&"hold_placed".to_owned()),
        "nothing is held on the card"
    );
    assert!(
        timeline_kinds(&v).contains(&"card_saved".to_owned()),
        "the consent is on the timeline"
    );
    app.close_now(&lot).await;
    app.run_jobs().await;
    let v = seen(&app, &winner).await;
    assert_eq!(v["status"], "charged");
    assert_eq!(v["outcome"]["charged_total"], "300.00");
}

async fn cancelling_after_the_award_refunds_every_charge(app: TestApp) {
    let op = app.operator("aurora").await;
    let lot = app.open_lot(&op, json!({"capacity": 2})).await;
    let a = bidder(&app, &op, &lot, "PNR001", 1, "300.00", GOOD).await;
    app.close_now(&lot).await;
    app.run_jobs().await;
    assert_eq!(seen(&app, &a).await["status"], "charged");

    app.cancel_lot(&op, &lot).await;
    app.run_jobs().await;
    let v = seen(&app, &a).await;
    assert_eq!(v["status"], "refunded");
    let refunded = v["timeline"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["kind"] == "refunded")
        .unwrap();
    assert!(
        refunded["message"].as_str().unwrap().contains(
            "The operator cancelled this upgrade: Flight cancelled. 300.00 EUR is refunded"
        ),
        "{refunded}"
    );
    assert_eq!(payments_of(&app, &a.bid, "refund", "succeeded").await, 1);
    let award = award_of(&app, &op, &lot).await;
    assert_eq!(award["status"], "cancelled", "the award no longer stands");
    // The plan's revenue stays as it was; the money says what happened to it.
    assert_eq!(award["revenue"], "300.00");
    assert_eq!(award["charged"], "300.00");
    assert_eq!(award["refunded"], "300.00");
}

/// An award waiting for review whose lot is cancelled is cancelled with it: the API says so
/// and refuses to approve it or take winners out, so nobody is charged for a cancelled
/// upgrade. Awards of lots cancelled before this was so are brought into line on upgrade.
async fn an_award_waiting_for_review_is_cancelled_with_its_lot(app: TestApp) {
    use migration::{Migrator, MigratorTrait};
    use sea_orm::{ActiveModelTrait, IntoActiveModel, Set, TransactionTrait};

    let op = app.operator("aurora").await;
    let review = json!({"capacity": 1, "review_required": true});
    let lot = app.open_lot(&op, review.clone()).await;
    let winner = bidder(&app, &op, &lot, "PNR001", 1, "400.00", GOOD).await;
    let other_lot = app.open_lot(&op, review).await;
    bidder(&app, &op, &other_lot, "PNR002", 1, "300.00", GOOD).await;
    app.close_now(&lot).await;
    app.close_now(&other_lot).await;
    app.run_jobs().await;

    app.cancel_lot(&op, &lot).await;
    app.run_jobs().await;
    assert_eq!(award_of(&app, &op, &lot).await["status"], "cancelled");
    let refused = app
        .post(&format!("/v1/lots/{lot}/award/approve"))
        .key(&op.key)
        .send()
        .await
        .expect(409);
    assert!(
        refused.body["detail"]
            .as_str()
            .unwrap()
            .contains("(it is cancelled)"),
        "{}",
        refused.body
    );
    app.post(&format!("/v1/lots/{lot}/award/reject"))
        .key(&op.key)
        .json(&json!({"bids": [winner.bid], "reason": "Seat unavailable"}))
        .send()
        .await
        .expect(409);
    app.run_jobs().await;
    assert_eq!(seen(&app, &winner).await["status"], "released");
    assert_eq!(
        payments_of(&app, &winner.bid, "charge", "succeeded").await,
        0
    );
    let logged = audit_entry::Entity::find()
        .filter(audit_entry::Column::Action.eq("lot.cancelled"))
        .one(&app.db)
        .await
        .unwrap()
        .unwrap();
    assert!(
        logged
            .after
            .as_deref()
            .unwrap()
            .ends_with(" award=cancelled"),
        "{logged:?}"
    );

    // A lot cancelled under an earlier release kept its award at `pending_review`.
    let mut stale = award::Entity::find_by_id(lot.clone())
        .one(&app.db)
        .await
        .unwrap()
        .unwrap()
        .into_active_model();
    stale.status = Set("pending_review".to_owned());
    stale.update(&app.db).await.unwrap();
    // Back to before migration 8, and up again.
    let since_8 = Migrator::migrations()
        .iter()
        .rev()
        .position(|m| m.name() == "m20261206_000008_cancelled_awards")
        .expect("migration 8 is listed")
        + 1;
    // On one connection, as `store::migrate` does on SQLite: a pooled connection idle since
    // another dropped the index would still see it. (On PostgreSQL this adds an outer
    // transaction around the migrator's own, harmlessly.)
    let one = app.db.begin().await.unwrap();
    Migrator::down(&one, Some(since_8 as u32)).await.unwrap();
    Migrator::up(&one, None).await.unwrap();
    one.commit().await.unwrap();
    assert_eq!(award_of(&app, &op, &lot).await["status"], "cancelled");
    assert_eq!(
        award_of(&app, &op, &other_lot).await["status"],
        "pending_review",
        "a lot still awarded keeps its award waiting"
    );
}

async fn a_smaller_aircraft_after_the_award_refunds_the_last_ranked_first(app: TestApp) {
    let op = app.operator("aurora").await;
    let lot = app.open_lot(&op, json!({"capacity": 2})).await;
    let top = bidder(&app, &op, &lot, "PNR001", 1, "500.00", GOOD).await;
    let last = bidder(&app, &op, &lot, "PNR002", 1, "300.00", GOOD).await;
    app.close_now(&lot).await;
    app.run_jobs().await;

    app.post(&format!("/v1/lots/{lot}/capacity"))
        .key(&op.key)
        .json(&json!({"capacity": 1}))
        .send()
        .await
        .expect(200);
    app.run_jobs().await;
    assert_eq!(seen(&app, &top).await["status"], "charged");
    let cut = seen(&app, &last).await;
    assert_eq!(cut["status"], "refunded");
    assert!(timeline_kinds(&cut).contains(&"capacity_changed".to_owned()));
    let award = award_of(&app, &op, &lot).await;
    assert_eq!(award["revenue"], "500.00");
}

async fn closing_twice_awards_once_and_charges_once(app: TestApp) {
    let op = app.operator("aurora").await;
    let lot = app.open_lot(&op, json!({"capacity": 1})).await;
    let a = bidder(&app, &op, &lot, "PNR001", 1, "300.00", GOOD).await;
    app.close_now(&lot).await;
    // Two workers race for the same due lot.
    let other = surclass::jobs::Worker::new(app.db.clone(), app.gateway.clone(), 1);
    let (x, y) = tokio::join!(app.worker.run_until_idle(), other.run_until_idle());
    x.unwrap();
    y.unwrap();
    let closed = surclass::services::award::close_and_award(&app.db, &lot)
        .await
        .unwrap();
    assert_eq!(closed, surclass::services::award::CloseOutcome::AlreadyDone);
    let charge =
        surclass::services::settlement::charge(&app.db, app.gateway.as_ref(), &a.bid, None)
            .await
            .unwrap();
    assert_eq!(charge, surclass::services::settlement::Step::NothingToDo);
    assert_eq!(payments_of(&app, &a.bid, "charge", "succeeded").await, 1);
    assert_eq!(award::Entity::find().count(&app.db).await.unwrap(), 1);
}

async fn upgrade_now_confirms_and_charges_at_once_while_units_are_free(app: TestApp) {
    let op = app.operator("aurora").await;
    let lot = app
        .open_lot(&op, json!({"capacity": 3, "upgrade_now": "800.00"}))
        .await;
    app.booking(&op, "PNR001", "Martin", 2, &[&lot]).await;
    app.booking(&op, "PNR002", "Durand", 2, &[&lot]).await;
    app.booking(&op, "PNR003", "Roy", 1, &[&lot]).await;
    let first = app.sign_in("PNR001", "Martin").await;
    let offers = app
        .read("/v1/traveller/offers")
        .key(&first)
        .send()
        .await
        .expect(200);
    assert_eq!(offers.body["offers"][0]["upgrade_now_per_person"], "800.00");

    let bought = app
        .post(&format!("/v1/traveller/offers/{lot}/upgrade-now"))
        .key(&first)
        .json(&json!({"payment_method": "pm_card_visa"}))
        .send()
        .await
        .expect(201);
    assert_eq!(bought.body["status"], "charged");
    assert_eq!(bought.body["total"], "1600.00");

    // One unit is left: a party of two cannot take it now, and a declined card takes nothing.
    let second = app.sign_in("PNR002", "Durand").await;
    let sold_out = app
        .post(&format!("/v1/traveller/offers/{lot}/upgrade-now"))
        .key(&second)
        .json(&json!({"payment_method": "pm_card_visa"}))
        .send()
        .await
        .expect(409);
    assert_eq!(sold_out.problem_type(), "upgrade-unavailable");
    let third = app.sign_in("PNR003", "Roy").await;
    app.post(&format!("/v1/traveller/offers/{lot}/upgrade-now"))
        .key(&third)
        .json(&json!({"card": {"number": DECLINED_WHEN_CHARGED, "exp_month": 12, "exp_year": 2030, "cvc": "123"}}))
        .send()
        .await
        .expect(402);
    app.run_jobs().await;

    // The auction awards only what is left: one unit.
    let single = app.bid(&third, &lot, "300.00", GOOD).await.expect(201);
    app.close_now(&lot).await;
    app.run_jobs().await;
    let award = award_of(&app, &op, &lot).await;
    assert_eq!(award["plan"]["available_units"], 1);
    assert_eq!(award["revenue"], "300.00");
    assert_eq!(
        award["charged"], "300.00",
        "the award's money, not the sale made before it"
    );
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
        charged,
        160000 + 30000,
        "the instant sale and the auction, nothing for the declined card"
    );
    let _ = single;

    // Cancelled, both are refunded; the award's money is still the auction's alone.
    app.cancel_lot(&op, &lot).await;
    app.run_jobs().await;
    let award = award_of(&app, &op, &lot).await;
    assert_eq!(award["charged"], "300.00");
    assert_eq!(award["refunded"], "300.00", "{award}");
}

/// A traveller who taps "upgrade now" again (a retry after a lost answer, a second tap) is
/// shown the upgrade they bought, not told that the units are gone: they took them.
async fn upgrade_now_sent_again_shows_the_purchase_and_charges_nothing_more(app: TestApp) {
    let op = app.operator("aurora").await;
    let lot = app
        .open_lot(&op, json!({"capacity": 3, "upgrade_now": "800.00"}))
        .await;
    app.booking(&op, "PNR001", "Martin", 2, &[&lot]).await;
    let token = app.sign_in("PNR001", "Martin").await;
    let buy = || {
        app.post(&format!("/v1/traveller/offers/{lot}/upgrade-now"))
            .key(&token)
            .json(&json!({"payment_method": "pm_card_visa"}))
            .send()
    };
    let bought = buy().await.expect(201);
    let again = buy().await.expect(201);
    assert_eq!(again.body["id"], bought.body["id"]);
    assert_eq!(again.body["status"], "charged");
    assert_eq!(again.body["total"], "1600.00");

    app.run_jobs().await;
    let bid = bought.body["id"].as_str().unwrap();
    assert_eq!(payments_of(&app, bid, "charge", "succeeded").await, 1);
    assert_eq!(
        payment::Entity::find()
            .filter(payment::Column::Kind.eq("hold"))
            .count(&app.db)
            .await
            .unwrap(),
        1,
        "one hold, captured"
    );
}

async fn an_operator_reviews_the_award_before_anything_is_charged(app: TestApp) {
    let op = app.operator("aurora").await;
    let lot = app
        .open_lot(&op, json!({"capacity": 1, "review_required": true}))
        .await;
    let top = bidder(&app, &op, &lot, "PNR001", 1, "400.00", GOOD).await;
    let next = bidder(&app, &op, &lot, "PNR002", 1, "300.00", GOOD).await;
    app.close_now(&lot).await;
    app.run_jobs().await;
    let award = award_of(&app, &op, &lot).await;
    assert_eq!(award["status"], "pending_review");
    assert_eq!(award["revenue"], "400.00");
    assert_eq!(award["charged"], "0.00", "{award}");
    assert_eq!(seen(&app, &top).await["status"], "won");
    assert_eq!(
        payments_of(&app, &top.bid, "charge", "succeeded").await,
        0,
        "nothing charged before approval"
    );

    let bad = app
        .post(&format!("/v1/lots/{lot}/award/reject"))
        .key(&op.key)
        .json(&json!({"bids": [next.bid], "reason": "no"}))
        .send()
        .await
        .expect(422);
    assert_eq!(
        bad.body["field"], "bids[0]",
        "only winners can be taken out"
    );
    app.post(&format!("/v1/lots/{lot}/award/reject"))
        .key(&op.key)
        .json(&json!({"bids": [top.bid], "reason": "Travel document check failed"}))
        .send()
        .await
        .expect(200);
    app.run_jobs().await;
    let rejected = seen(&app, &top).await;
    assert_eq!(rejected["status"], "released");
    let told = rejected["timeline"].as_array().unwrap().iter().any(|e| {
        e["message"]
            .as_str()
            .unwrap_or_default()
            .contains("Travel document check failed")
    });
    assert!(told, "the traveller reads the operator's reason");
    assert_eq!(
        seen(&app, &next).await["status"],
        "won",
        "the standby list moved up"
    );

    // Approving names the winners the reviewer checked: a list read before the take-out,
    // or a body that cannot be read, charges nobody.
    let approve = || {
        app.post(&format!("/v1/lots/{lot}/award/approve"))
            .key(&op.key)
    };
    let stale = approve()
        .json(&json!({"winners": [top.bid]}))
        .send()
        .await
        .expect(409);
    assert_eq!(stale.problem_type(), "award-winners-changed");
    let says = format!(
        "({} sent and not winning; {} winning and not sent)",
        top.bid, next.bid
    );
    assert!(
        stale.body["detail"].as_str().unwrap().contains(&says),
        "names who changed: {}",
        stale.body["detail"]
    );
    for (content_type, body, status) in [
        ("text/plain", "winners", 415),
        ("application/json", "{\"winners\": [", 400),
        ("application/json", "{\"winner\": []}", 422),
        ("application/json", "{\"winners\": \"all\"}", 422),
    ] {
        approve()
            .raw(content_type, body)
            .send()
            .await
            .expect(status);
    }
    app.run_jobs().await;
    assert_eq!(
        payments_of(&app, &next.bid, "charge", "succeeded").await,
        0,
        "nothing charged while refused"
    );
    let approved = approve()
        .json(&json!({"winners": [next.bid]}))
        .send()
        .await
        .expect(200);
    assert_eq!(approved.body["status"], "approved");
    // Sent again, with no body, `{}` or `null` (none checks the winners): there is nothing
    // left to approve.
    for again in [
        approve().send().await,
        approve().json(&json!({})).send().await,
        approve().json(&Value::Null).send().await,
    ] {
        assert_eq!(again.expect(409).problem_type(), "award-not-in-review");
    }
    app.run_jobs().await;
    let next = seen(&app, &next).await;
    assert_eq!(next["status"], "charged");
    assert_eq!(next["outcome"]["charged_total"], "300.00");
    let lot_view = app
        .read(&format!("/v1/lots/{lot}"))
        .key(&op.key)
        .send()
        .await
        .expect(200);
    assert_eq!(lot_view.body["status"], "settled");
}

async fn a_traveller_whose_payment_failed_keeps_the_upgrade_with_another_card(app: TestApp) {
    let op = app.operator("aurora").await;
    let (_, winner, standby) = winner_whose_payment_failed(&app, &op).await;
    let failed = seen(&app, &winner).await;
    let told = failed["timeline"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["kind"] == "payment_failed")
        .unwrap();
    assert!(
        told["message"]
            .as_str()
            .unwrap()
            .contains("give another card"),
        "{told}"
    );
    let fix = failed["links"]["fix_card"]
        .as_str()
        .expect("a link to fix the card");
    assert_eq!(fix, format!("/v1/traveller/bids/{}/card", winner.bid));
    // Until when: ten minutes from the failure, as the timeline dates it.
    let until = failed["links"]["fix_card_until"]
        .as_str()
        .expect("the end of the grace period");
    let until = chrono::DateTime::parse_from_rfc3339(until).unwrap();
    let failed_at = chrono::DateTime::parse_from_rfc3339(told["at"].as_str().unwrap()).unwrap();
    assert_eq!(
        (until - failed_at).num_seconds(),
        600,
        "{until} {failed_at}"
    );
    // The timeline and the email write that deadline as the lot's pages do: its day, at the
    // lot's time (Paris).
    let local_until = until
        .with_timezone(&chrono_tz::Europe::Paris)
        .format("%a %-d %b %Y, %H:%M %Z")
        .to_string();
    let kept_until = format!("kept for you until {local_until}: give another card");
    assert!(
        told["message"].as_str().unwrap().contains(&kept_until),
        "{kept_until}: {told}"
    );
    let emails = app.emails_of(&op.key, "bid.payment_failed").await;
    assert_eq!(emails.len(), 1, "{emails:?}");
    let body = emails[0]["body"].as_str().unwrap();
    assert!(body.contains(&kept_until), "{kept_until}: {body}");
    // The offers list says the same of the booking's bid.
    let offers = app
        .read("/v1/traveller/offers")
        .key(&winner.token)
        .send()
        .await
        .expect(200);
    assert_eq!(offers.body["offers"][0]["my_bid"]["links"], failed["links"]);

    let declined_again = app
        .post(&format!("/v1/traveller/bids/{}/card", winner.bid))
        .key(&winner.token)
        .json(&json!({"card": {"number": DECLINED_AT_BID, "exp_month": 12, "exp_year": 2030, "cvc": "123"}}))
        .send()
        .await
        .expect(402);
    assert_eq!(declined_again.body["field"], "payment_method");
    another_card(&app, &winner).await.expect(200);
    app.run_jobs().await;
    let kept = seen(&app, &winner).await;
    assert_eq!(kept["status"], "charged");
    assert_eq!(kept["outcome"]["charged_total"], "400.00");
    assert_eq!(
        seen(&app, &standby).await["status"],
        "released",
        "the standby hold ends once all is paid"
    );
    // Once charged, there is no card to replace.
    another_card(&app, &winner).await.expect(409);
}

/// Once the grace period has passed the upgrade is the next traveller's, even while the job
/// that hands it on has not run yet: a card given then is refused, and nothing is held on it.
async fn a_card_given_after_the_grace_period_is_refused_and_the_upgrade_goes_on(app: TestApp) {
    use sea_orm::sea_query::Expr;
    use surclass::store::entities::{bid_event, job};
    let op = app.operator("aurora").await;
    let (_, winner, standby) = winner_whose_payment_failed(&app, &op).await;
    // Ten minutes and a second pass; the hand-on job has not run yet.
    let past = chrono::Utc::now() - chrono::Duration::seconds(601);
    bid_event::Entity::update_many()
        .col_expr(bid_event::Column::At, Expr::value(past))
        .filter(bid_event::Column::BidId.eq(&winner.bid))
        .filter(bid_event::Column::Kind.eq("payment_failed"))
        .exec(&app.db)
        .await
        .unwrap();
    let before = app.gateway_payments_of(&winner.bid).await;
    let late = another_card(&app, &winner).await.expect(409);
    assert_eq!(late.problem_type(), "upgrade-unavailable", "{}", late.body);
    assert!(
        late.body["detail"]
            .as_str()
            .unwrap()
            .contains("The time to give another card has passed"),
        "{}",
        late.body
    );
    assert_eq!(
        app.gateway_payments_of(&winner.bid).await,
        before,
        "the card provider was asked for nothing"
    );
    let waiting = seen(&app, &winner).await;
    assert_eq!(waiting["status"], "payment_failed");
    // Nor is a card asked for: no link to give one, in the bid or in the offers list.
    assert!(waiting.get("links").is_none(), "{waiting}");
    let offers = app
        .read("/v1/traveller/offers")
        .key(&winner.token)
        .send()
        .await
        .expect(200);
    assert!(
        offers.body["offers"][0]["my_bid"].get("links").is_none(),
        "{}",
        offers.body
    );

    // The job's turn comes: the standby traveller is upgraded and charged.
    job::Entity::update_many()
        .col_expr(job::Column::RunAt, Expr::value(past))
        .filter(job::Column::Kind.eq("reassign"))
        .exec(&app.db)
        .await
        .unwrap();
    app.run_jobs().await;
    let lost = seen(&app, &winner).await;
    assert!(
        matches!(lost["status"].as_str(), Some("lost" | "released")),
        "{lost}"
    );
    assert_eq!(lost["outcome"]["reason"], "payment_failed");
    assert_eq!(seen(&app, &standby).await["status"], "charged");
    // A card sent now is told the same: the time has passed, not only that the bid is lost.
    let later = another_card(&app, &winner).await.expect(409);
    assert!(
        later.body["detail"]
            .as_str()
            .unwrap()
            .contains("The time to give another card has passed"),
        "{}",
        later.body
    );
}

/// A lot that leaves no grace period hands the upgrade on at once: no card link is shown
/// and a card sent is refused with that reason. (The job that hands it on follows the failure
/// within milliseconds, so the test takes the lot's grace away after the failure instead.)
/// The traveller, asked by email for another card, is then told the upgrade went on.
async fn a_lot_without_grace_takes_no_other_card(app: TestApp) {
    use sea_orm::sea_query::Expr;
    use surclass::store::entities::{job, lot as lot_row};
    let op = app.operator("aurora").await;
    let (lot, winner, _) = winner_whose_payment_failed(&app, &op).await;
    // The lot as one that leaves no grace would stand while its hand-on job is still queued.
    lot_row::Entity::update_many()
        .col_expr(lot_row::Column::PaymentGraceSeconds, Expr::value(0))
        .filter(lot_row::Column::Id.eq(&lot))
        .exec(&app.db)
        .await
        .unwrap();
    let waiting = seen(&app, &winner).await;
    assert_eq!(waiting["status"], "payment_failed");
    assert!(waiting.get("links").is_none(), "{waiting}");
    let before = app.gateway_payments_of(&winner.bid).await;
    let refused = another_card(&app, &winner).await.expect(409);
    assert!(
        refused.body["detail"]
            .as_str()
            .unwrap()
            .contains("This upgrade leaves no time to give another card"),
        "{}",
        refused.body
    );
    assert_eq!(
        app.gateway_payments_of(&winner.bid).await,
        before,
        "the card provider was asked for nothing"
    );

    job::Entity::update_many()
        .col_expr(job::Column::RunAt, Expr::value(chrono::Utc::now()))
        .filter(job::Column::Kind.eq("reassign"))
        .exec(&app.db)
        .await
        .unwrap();
    app.run_jobs().await;
    assert_eq!(
        seen(&app, &winner).await["outcome"]["reason"],
        "payment_failed"
    );
    let asked = app.emails_of(&op.key, "bid.payment_failed").await;
    assert!(
        asked.len() == 1
            && asked[0]["subject"]
                .as_str()
                .unwrap()
                .starts_with("Action needed"),
        "{asked:?}"
    );
    let booking = &asked[0]["booking_id"];
    let told = app.emails_of(&op.key, "bid.lost").await;
    assert!(
        told.iter().any(|m| &m["booking_id"] == booking
            && m["body"]
                .as_str()
                .unwrap()
                .contains("Your payment could not be completed")),
        "{told:?}"
    );
}

async fn after_a_review_rejection_a_failed_payment_still_moves_the_standby_list_up(app: TestApp) {
    let op = app.operator("aurora").await;
    let lot = app
        .open_lot(
            &op,
            json!({"capacity": 2, "review_required": true, "payment_grace_seconds": 0}),
        )
        .await;
    let rejected = bidder(&app, &op, &lot, "PNR001", 1, "500.00", GOOD).await;
    let failing = bidder(
        &app,
        &op,
        &lot,
        "PNR002",
        1,
        "400.00",
        DECLINED_WHEN_CHARGED,
    )
    .await;
    let first_standby = bidder(&app, &op, &lot, "PNR003", 1, "300.00", GOOD).await;
    let second_standby = bidder(&app, &op, &lot, "PNR004", 1, "200.00", GOOD).await;
    app.close_now(&lot).await;
    app.run_jobs().await;
    app.post(&format!("/v1/lots/{lot}/award/reject"))
        .key(&op.key)
        .json(&json!({"bids": [rejected.bid], "reason": "Name mismatch"}))
        .send()
        .await
        .expect(200);
    app.post(&format!("/v1/lots/{lot}/award/approve"))
        .key(&op.key)
        .send()
        .await
        .expect(200);
    app.run_jobs().await;
    assert_eq!(seen(&app, &first_standby).await["status"], "charged");
    assert_eq!(
        seen(&app, &failing).await["outcome"]["reason"],
        "payment_failed"
    );
    assert_eq!(
        seen(&app, &second_standby).await["status"],
        "charged",
        "promoted after the failed payment"
    );
    assert_eq!(
        seen(&app, &rejected).await["outcome"]["reason"],
        "rejected_by_operator"
    );
    let lot_view = app
        .read(&format!("/v1/lots/{lot}"))
        .key(&op.key)
        .send()
        .await
        .expect(200);
    assert_eq!(lot_view.body["status"], "settled");
}

async fn a_declined_upgrade_now_leaves_the_earlier_bid_and_its_hold_as_they_were(app: TestApp) {
    let op = app.operator("aurora").await;
    let lot = app
        .open_lot(&op, json!({"capacity": 2, "upgrade_now": "700.00"}))
        .await;
    let b = bidder(&app, &op, &lot, "PNR001", 1, "300.00", GOOD).await;
    let before = surclass::store::entities::bid::Entity::find_by_id(b.bid.clone())
        .one(&app.db)
        .await
        .unwrap()
        .unwrap();
    app.post(&format!("/v1/traveller/offers/{lot}/upgrade-now"))
        .key(&b.token)
        .json(&json!({"card": {"number": DECLINED_WHEN_CHARGED, "exp_month": 12, "exp_year": 2030, "cvc": "123"}}))
        .send()
        .await
        .expect(402);
    app.run_jobs().await;
    let after = seen(&app, &b).await;
    assert_eq!(after["status"], "active");
    assert_eq!(after["amount"], "300.00");
    let hold = before.payment_ref.unwrap();
    let current = surclass::store::entities::bid::Entity::find_by_id(b.bid.clone())
        .one(&app.db)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        current.payment_ref.as_deref(),
        Some(hold.as_str()),
        "the bid keeps its hold"
    );
    let state = app
        .gateway
        .payment_status(&surclass::payments::PaymentRef::new(hold))
        .await
        .unwrap();
    assert!(
        matches!(
            state.status,
            surclass::payments::PaymentStatus::Authorized { .. }
        ),
        "{:?}",
        state.status
    );
    let offers = app
        .read("/v1/traveller/offers")
        .key(&b.token)
        .send()
        .await
        .expect(200);
    assert_eq!(
        offers.body["offers"][0]["upgrade_now_per_person"], "700.00",
        "the units are back on sale"
    );
    assert!(reconcile_is_clean(&app).await);
}

async fn reconcile_is_clean(app: &TestApp) -> bool {
    surclass::services::reconcile::check(&app.db, app.gateway.as_ref())
        .await
        .unwrap()
        .is_empty()
}

store_tests!(
    the_best_offers_that_fit_win_are_charged_and_every_other_hold_is_released,
    a_card_declined_at_bid_time_changes_nothing,
    raising_a_bid_authorises_the_new_total_and_releases_the_old_hold,
    a_failed_charge_moves_the_standby_list_up_after_the_grace_period,
    uniform_price_winners_all_pay_the_clearing_price,
    a_failed_payment_names_the_price_won_not_the_offer,
    charge_on_award_saves_the_card_and_charges_it_when_won,
    cancelling_after_the_award_refunds_every_charge,
    a_smaller_aircraft_after_the_award_refunds_the_last_ranked_first,
    closing_twice_awards_once_and_charges_once,
    upgrade_now_confirms_and_charges_at_once_while_units_are_free,
    upgrade_now_sent_again_shows_the_purchase_and_charges_nothing_more,
    an_operator_reviews_the_award_before_anything_is_charged,
    an_award_waiting_for_review_is_cancelled_with_its_lot,
    a_traveller_whose_payment_failed_keeps_the_upgrade_with_another_card,
    a_card_given_after_the_grace_period_is_refused_and_the_upgrade_goes_on,
    a_lot_without_grace_takes_no_other_card,
    a_booking_that_bid_on_two_classes_of_one_flight_wins_only_the_higher,
    after_a_review_rejection_a_failed_payment_still_moves_the_standby_list_up,
    a_declined_upgrade_now_leaves_the_earlier_bid_and_its_hold_as_they_were,
    a_replacement_card_whose_caller_hangs_up_after_the_hold_is_still_charged,
    a_replacement_card_sent_twice_at_once_is_charged_once_and_both_are_answered,
);

// The same lifecycle through async-stripe against the emulator (cards typed in; the
// emulator has no `pm_card_*` test ids, and declines 0341 already at authorisation).
crate::stripe_tests!(
    the_best_offers_that_fit_win_are_charged_and_every_other_hold_is_released,
    a_card_declined_at_bid_time_changes_nothing,
    uniform_price_winners_all_pay_the_clearing_price,
    charge_on_award_saves_the_card_and_charges_it_when_won,
    cancelling_after_the_award_refunds_every_charge,
    a_smaller_aircraft_after_the_award_refunds_the_last_ranked_first,
);

async fn a_booking_that_bid_on_two_classes_of_one_flight_wins_only_the_higher(app: TestApp) {
    let op = app.operator("aurora").await;
    let closes = (chrono::Utc::now() + chrono::Duration::hours(2)).to_rfc3339();
    let premium = app
        .open_lot(&op, json!({"to_class": "premium_economy", "class_rank": 1, "capacity": 2, "closes_at": closes}))
        .await;
    let business = app
        .open_lot(
            &op,
            json!({"to_class": "business", "class_rank": 2, "capacity": 1, "closes_at": closes}),
        )
        .await;
    app.booking(&op, "PNR001", "Martin", 1, &[&premium, &business])
        .await;
    app.booking(&op, "PNR002", "Durand", 1, &[&premium]).await;
    let both = app.sign_in("PNR001", "Martin").await;
    let in_business = app.bid(&both, &business, "600.00", GOOD).await.expect(201);
    let in_premium = app.bid(&both, &premium, "300.00", GOOD).await.expect(201);
    let other = app.sign_in("PNR002", "Durand").await;
    app.bid(&other, &premium, "150.00", GOOD).await.expect(201);

    app.close_now(&premium).await;
    app.close_now(&business).await;
    app.run_jobs().await;
    let business_bid = app
        .read(&format!(
            "/v1/traveller/bids/{}",
            in_business.body["id"].as_str().unwrap()
        ))
        .key(&both)
        .send()
        .await
        .expect(200);
    assert_eq!(
        business_bid.body["status"], "charged",
        "the higher class wins"
    );
    let premium_bid = app
        .read(&format!(
            "/v1/traveller/bids/{}",
            in_premium.body["id"].as_str().unwrap()
        ))
        .key(&both)
        .send()
        .await
        .expect(200);
    assert_eq!(
        premium_bid.body["status"], "released",
        "one upgrade per booking"
    );
    assert_eq!(premium_bid.body["outcome"]["reason"], "upgraded_elsewhere");
    let premium_award = award_of(&app, &op, &premium).await;
    assert_eq!(
        premium_award["revenue"], "150.00",
        "the premium seat went to the other traveller"
    );
}

/// A winner whose payment failed gives another card, and the connection drops once it is
/// held: the replacement is still written and charged, never a second hold left on a card
/// with the upgrade lost for want of payment.
async fn a_replacement_card_whose_caller_hangs_up_after_the_hold_is_still_charged(app: TestApp) {
    use crate::traveller::during_hold::{bid_once, hang_up_once_held, slow_to_answer};
    use surclass::services::bids;

    let op = app.operator("aurora").await;
    let (_, winner, _) = winner_whose_payment_failed(&app, &op).await;
    let booking = app.stored_booking("PNR001").await;
    let (gateway, hold_granted) = slow_to_answer(app.gateway.clone());

    let card = Some(surclass::payments::CardSource::PaymentMethod(
        "pm_card_visa".into(),
    ));
    hang_up_once_held(
        bids::replace_card(&app.db, &gateway, &booking, &winner.bid, card),
        hold_granted,
    )
    .await;

    bid_once(&app.db, &booking.id, |b| b.status != "payment_failed")
        .await
        .expect("the new card is written although nobody waited for it");
    app.run_jobs().await;
    let kept = seen(&app, &winner).await;
    assert_eq!(kept["status"], "charged");
    assert_eq!(kept["outcome"]["charged_total"], "400.00");
    assert!(
        app.gateway_holds_awaiting_capture().await.is_empty(),
        "the new hold was captured, the old one and the standby's released"
    );
}

/// The replacement card sent twice at once (a double tap on "pay with this card"): both
/// copies are answered with the upgrade kept, and the card is charged once.
async fn a_replacement_card_sent_twice_at_once_is_charged_once_and_both_are_answered(app: TestApp) {
    use crate::traveller::during_hold::slow_to_answer;
    use surclass::services::bids;

    let op = app.operator("aurora").await;
    let (_, winner, _) = winner_whose_payment_failed(&app, &op).await;
    let booking = app.stored_booking("PNR001").await;
    let (gateway, _) = slow_to_answer(app.gateway.clone());
    let visa = || {
        Some(surclass::payments::CardSource::PaymentMethod(
            "pm_card_visa".into(),
        ))
    };

    let (first, second) = tokio::join!(
        bids::replace_card(&app.db, &gateway, &booking, &winner.bid, visa()),
        bids::replace_card(&app.db, &gateway, &booking, &winner.bid, visa()),
    );
    for answer in [first, second] {
        let kept = answer.expect("both copies are answered");
        assert_eq!(
            kept.status, "won",
            "the upgrade is kept, the charge under way"
        );
    }
    app.run_jobs().await;
    let kept = seen(&app, &winner).await;
    assert_eq!(kept["status"], "charged");
    assert_eq!(
        payments_of(&app, &winner.bid, "charge", "succeeded").await,
        1
    );
    assert!(
        app.gateway_holds_awaiting_capture().await.is_empty(),
        "the new hold was captured, the old one and the standby's released"
    );
}

mod own_gateway_store {
    use crate::support::Store;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn sqlite() {
        super::the_simulated_gateway_keeps_its_state_in_the_store_it_is_named(Store::Sqlite).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn postgres() {
        super::the_simulated_gateway_keeps_its_state_in_the_store_it_is_named(Store::Postgres)
            .await;
    }
}

/// `--simulated-gateway-store`: the simulated provider keeps its holds and payments where it
/// is told, as a real one keeps them apart from ours; nothing of it lands in the store or
/// beside it, and the close still charges the winner and releases the loser.
async fn the_simulated_gateway_keeps_its_state_in_the_store_it_is_named(
    store: crate::support::Store,
) {
    use sea_orm::{ConnectionTrait, Statement};
    use surclass::payments::{PaymentGateway, simulated::SimulatedGateway};

    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("provider.db").display());
    let named = url.clone();
    let Some(app) = crate::support::spawn_app_with(store, |s| {
        s.simulated_gateway_store = Some(named);
    })
    .await
    else {
        return;
    };
    let op = app.operator("aurora").await;
    let lot = app.open_lot(&op, json!({"capacity": 2})).await;
    let winner = bidder(&app, &op, &lot, "PNR001", 2, "300.00", GOOD).await;
    let loser = bidder(&app, &op, &lot, "PNR002", 2, "280.00", GOOD).await;

    let provider = SimulatedGateway::at(&url).await.unwrap();
    let held = provider
        .open_holds(chrono::DateTime::UNIX_EPOCH)
        .await
        .unwrap();
    assert_eq!(held.len(), 2, "both holds are in the named store");
    let in_store = app
        .db
        .query_one_raw(Statement::from_string(
            app.db.get_database_backend(),
            "SELECT COUNT(*) AS n FROM simulated_gateway_objects",
        ))
        .await
        .unwrap()
        .unwrap()
        .try_get::<i64>("", "n")
        .unwrap();
    assert_eq!(in_store, 0, "nothing of the provider's in our store");
    if let Some(file) = surclass::store::sqlite_file(&app.db).await.unwrap() {
        let stem = file.file_stem().unwrap().to_string_lossy();
        let beside = file.with_file_name(format!("{stem}-gateway.db"));
        assert!(!beside.exists(), "no gateway file beside the store");
    }

    app.close_now(&lot).await;
    app.run_jobs().await;
    assert_eq!(seen(&app, &winner).await["status"], "charged");
    assert_eq!(seen(&app, &loser).await["status"], "released");
    assert_eq!(app.gateway_payments_captured().await.len(), 1);
    assert!(
        provider
            .open_holds(chrono::DateTime::UNIX_EPOCH)
            .await
            .unwrap()
            .is_empty(),
        "the winner's hold captured, the loser's released"
    );
}
