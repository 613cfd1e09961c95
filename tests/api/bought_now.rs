//! "Upgrade now" whose bank answers late: the capture got no clear answer, so the purchase is
//! reserved and a job asks again. Paid, it is an upgrade like any other and the earlier bid's
//! hold goes; declined, it is undone as a decline at the counter is: the units are free again,
//! nothing is charged, no hold is left behind, the earlier bid stands, and the traveller (who
//! left the page long ago) is told by email.

use std::collections::HashSet;

use sea_orm::sea_query::Expr;
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter, QueryOrder};
use serde_json::json;

use crate::store_tests;
use crate::support::{Operator, TestApp};
use crate::traveller::during_hold::{self, Reached, first_capture_lost};
use surclass::payments::CardSource;
use surclass::services::bids;
use surclass::store::entities::{bid, bid_event, job, lot};

/// Declined with a hold taken and the capture refused (Stripe's `pm_card_chargeCustomerFail`).
const DECLINED_AT_CAPTURE: &str = "pm_card_chargeCustomerFail";

/// The traveller had a bid of 300.00 a person; "upgrade now" at 800.00 is declined by the bank
/// after the late answer: the bid is back as it was, and it takes part in the auction.
async fn a_declined_upgrade_now_puts_the_earlier_bid_back_and_says_so(app: TestApp) {
    let (op, lot) = lot_with_upgrade_now(&app).await;
    let (bid_id, earlier_hold) = earlier_bid(&app, &lot).await;

    let reserved = buy_now_with_the_answer_lost(&app, &lot, DECLINED_AT_CAPTURE).await;
    assert_eq!(reserved.id, bid_id, "the purchase is the booking's bid");
    assert_eq!(
        units_sold_now(&app, &lot).await,
        2,
        "reserved while the bank is asked"
    );
    app.run_jobs().await;

    let b = app.stored_bid(&bid_id).await;
    assert_eq!(
        (b.status.as_str(), b.amount_minor, b.units),
        ("active", 30_000, 2),
        "the bid is as it was"
    );
    assert_eq!(b.payment_ref.as_ref(), Some(&earlier_hold));
    assert_eq!((b.award_units, b.award_price_minor), (None, None));
    assert_eq!(
        units_sold_now(&app, &lot).await,
        0,
        "the units are free again"
    );
    assert_eq!(
        app.gateway_holds_awaiting_capture().await,
        HashSet::from([earlier_hold]),
        "the purchase's hold is released; the bid's stays"
    );
    assert!(
        app.gateway_payments_captured().await.is_empty(),
        "nothing charged"
    );
    assert!(
        last_failure(&app, &bid_id)
            .await
            .ends_with("Nothing was charged. Your bid stays as it was."),
    );
    let told = app.emails_of(&op.key, "bid.payment_failed").await;
    assert_eq!(told.len(), 1, "told once: {told:?}");
    let subject = told[0]["subject"].as_str().unwrap_or_default();
    assert!(
        subject.starts_with("Payment declined: upgrade now"),
        "{subject}"
    );
    let body = told[0]["body"].as_str().unwrap_or_default();
    assert!(body.contains("Your bid stays as it was."), "{body}");
    assert!(
        !body.contains("grace period"),
        "no upgrade waits for a card: {body}"
    );
    // Raised afterwards, with a new hold. In French the timeline tells the purchase's decline
    // from a winner's failed payment, and the raise's hold from a card replacing a failed one.
    let token = app.sign_in("PNR001", "Martin").await;
    app.patch(&format!("/v1/traveller/bids/{bid_id}"))
        .key(&token)
        .json(&json!({"amount": "400.00"}))
        .send()
        .await
        .expect(200);
    let french = crate::pages::Browser::with_language(&app, "fr-FR,fr;q=0.9");
    french.sign_in("PNR001", "Martin").await;
    let page = french.get(&format!("/bids/{bid_id}")).await;
    assert!(
        page.says("Votre banque a refusé le paiement de l'achat immédiat")
            && page.says("Offre modifiée : 400,00")
            && !page.says("Votre surclassement vous est gardé")
            && !page.says("la nouvelle carte est en cours de débit"),
        "{}",
        page.body
    );

    app.close_now(&lot).await;
    app.run_jobs().await;
    assert_eq!(
        app.stored_bid(&bid_id).await.status,
        "charged",
        "the bid took part and won at its own price"
    );
    assert_eq!(app.gateway_payments_captured().await.len(), 1);
}

/// With no bid before, a declined purchase leaves none: nothing held, and bidding still open
/// to the traveller.
async fn a_declined_upgrade_now_with_no_earlier_bid_leaves_nothing_held(app: TestApp) {
    let (_, lot) = lot_with_upgrade_now(&app).await;
    let reserved = buy_now_with_the_answer_lost(&app, &lot, DECLINED_AT_CAPTURE).await;
    app.run_jobs().await;

    let b = app.stored_bid(&reserved.id).await;
    assert_eq!((b.status.as_str(), b.payment_ref), ("withdrawn", None));
    assert_eq!(units_sold_now(&app, &lot).await, 0);
    assert!(app.gateway_holds_awaiting_capture().await.is_empty());
    assert!(app.gateway_payments_captured().await.is_empty());
    assert!(
        last_failure(&app, &b.id)
            .await
            .ends_with("Nothing was charged. You can still bid until bidding closes.")
    );
    let token = app.sign_in("PNR001", "Martin").await;
    app.bid(&token, &lot, "300.00", "pm_card_visa")
        .await
        .expect(201);
}

/// Paid after the late answer: the upgrade is the traveller's, and the hold of the bid it
/// replaced is released rather than left on the card.
async fn an_upgrade_now_paid_after_a_late_answer_releases_the_earlier_hold(app: TestApp) {
    let (_, lot) = lot_with_upgrade_now(&app).await;
    let (bid_id, _) = earlier_bid(&app, &lot).await;
    buy_now_with_the_answer_lost(&app, &lot, "pm_card_visa").await;
    app.run_jobs().await;

    let b = app.stored_bid(&bid_id).await;
    assert_eq!(b.status, "charged");
    assert_eq!(units_sold_now(&app, &lot).await, 2);
    assert_eq!(app.gateway_payments_captured().await.len(), 1);
    assert!(
        app.gateway_holds_awaiting_capture().await.is_empty(),
        "no hold is left on the card"
    );
}

/// A purchase whose payment is still asked for may yet be declined and give its units back:
/// until it is paid, no bid is let go for want of the units it took.
async fn a_purchase_still_being_paid_for_lets_no_bid_go_until_it_is_paid(app: TestApp) {
    let (op, lot) = lot_with_upgrade_now(&app).await;
    app.booking(&op, "PNR002", "Durand", 3, &[&lot]).await;
    let durand = app.sign_in("PNR002", "Durand").await;
    let trio = app
        .bid(&durand, &lot, "300.00", "pm_card_visa")
        .await
        .expect(201);
    let trio = trio.body["id"].as_str().unwrap().to_owned();
    buy_now_with_the_answer_lost(&app, &lot, "pm_card_visa").await;

    // A look now (a lower capacity would queue one) takes only the units paid for as gone.
    let released = surclass::services::room::release_without_room(&app.db, &lot)
        .await
        .unwrap();
    assert_eq!(released, 0);
    assert_eq!(app.stored_bid(&trio).await.status, "active");

    app.run_jobs().await;
    let paid = bid::Entity::find()
        .filter(bid::Column::LotId.eq(&lot))
        .filter(bid::Column::Status.eq("charged"))
        .all(&app.db)
        .await
        .unwrap();
    assert_eq!(paid.len(), 1, "the purchase is paid");
    let trio = app.stored_bid(&trio).await;
    assert_eq!(
        trio.status, "released",
        "two seats are left for a party of three"
    );
    assert_eq!(trio.outcome_reason.as_deref(), Some("no_room_left"));
}

/// Bidding closed before the bank's late decline: the bid did not take part (the purchase
/// stood in its place), so it is lost, and both holds are released.
async fn an_upgrade_now_declined_after_bidding_closed_is_lost_and_releases_every_hold(
    app: TestApp,
) {
    let (op, lot) = lot_with_upgrade_now(&app).await;
    let (bid_id, _) = earlier_bid(&app, &lot).await;
    buy_now_with_the_answer_lost(&app, &lot, DECLINED_AT_CAPTURE).await;
    app.close_now(&lot).await;
    surclass::services::award::close_and_award(&app.db, &lot)
        .await
        .expect("closed before the job asks the bank again");
    app.run_jobs().await;

    let b = app.stored_bid(&bid_id).await;
    assert_eq!(b.status, "released", "lost, its hold released");
    assert_eq!(b.outcome_reason.as_deref(), Some("upgrade_now_declined"));
    assert_eq!(units_sold_now(&app, &lot).await, 0);
    assert!(app.gateway_holds_awaiting_capture().await.is_empty());
    assert!(app.gateway_payments_captured().await.is_empty());
    assert!(last_failure(&app, &bid_id).await.ends_with(
        "Nothing was charged. Bidding has closed meanwhile, so no bid of yours took part."
    ));
    let told = app.emails_of(&op.key, "bid.payment_failed").await;
    assert_eq!(told.len(), 1, "told once: {told:?}");
    let settled = lot::Entity::find_by_id(lot)
        .one(&app.db)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(settled.status, "settled", "no payment is left open");
    // Its page says why, and not which rule chose the winners: it did not take part.
    let browser = crate::pages::Browser::new(&app);
    browser.sign_in("PNR001", "Martin").await;
    let page = browser.get(&format!("/bids/{bid_id}")).await;
    assert!(
        page.says("Your bank declined the payment of the upgrade you bought now, and bidding had closed meanwhile.")
            && page.says("Not successful: the hold on your card is released and nothing was charged.")
            && !page.says("How winners were chosen"),
        "{}",
        page.body
    );
}

/// The pending capture finished by a charge that does not know what the bid was before (the
/// one `surclass reconcile --repair` queues for a capture pending too long): declined, the
/// earlier bid cannot be put back as it was, so it is withdrawn too, its hold released, and
/// the traveller told so.
async fn a_declined_upgrade_now_finished_by_reconcile_withdraws_the_earlier_bid_and_its_hold(
    app: TestApp,
) {
    let (op, lot) = lot_with_upgrade_now(&app).await;
    let (bid_id, _) = earlier_bid(&app, &lot).await;
    buy_now_with_the_answer_lost(&app, &lot, DECLINED_AT_CAPTURE).await;
    surclass::services::settlement::charge(&app.db, app.gateway.as_ref(), &bid_id, None)
        .await
        .expect("charged as reconcile's job does");
    app.run_jobs().await;

    let b = app.stored_bid(&bid_id).await;
    assert_eq!((b.status.as_str(), b.payment_ref), ("withdrawn", None));
    assert_eq!(units_sold_now(&app, &lot).await, 0);
    assert!(
        app.gateway_holds_awaiting_capture().await.is_empty(),
        "neither the purchase's hold nor the earlier bid's is left"
    );
    assert!(app.gateway_payments_captured().await.is_empty());
    let failure = last_failure(&app, &bid_id).await;
    assert!(
        failure.ends_with(
            "Your earlier bid is withdrawn too, and its hold released: you can bid again until bidding closes."
        ),
        "{failure}"
    );
    assert_eq!(app.emails_of(&op.key, "bid.payment_failed").await.len(), 1);
}

/// The lot is cancelled while the purchase's payment is pending, and the bank never saw the
/// capture: nothing is taken, and neither the purchase's hold nor the earlier bid's stays.
async fn an_upgrade_now_cancelled_while_its_payment_is_pending_takes_nothing(app: TestApp) {
    let (op, lot) = lot_with_upgrade_now(&app).await;
    let (bid_id, _) = earlier_bid(&app, &lot).await;
    buy_now_with_the_answer_lost(&app, &lot, "pm_card_visa").await;
    app.cancel_lot(&op, &lot).await;
    app.run_jobs().await;

    assert!(
        app.gateway_payments_captured().await.is_empty(),
        "nothing taken"
    );
    assert!(
        app.gateway_holds_awaiting_capture().await.is_empty(),
        "no hold is left on the card"
    );
    assert_eq!(
        app.pending_charges(&bid_id).await,
        0,
        "the purchase is finished"
    );
    assert_eq!(app.moved(&bid_id, "charge").await, 0);
}

/// The same, but the lost capture reached the bank: the money taken goes back.
async fn an_upgrade_now_cancelled_after_its_lost_capture_took_the_money_refunds_it(app: TestApp) {
    let (op, lot) = lot_with_upgrade_now(&app).await;
    let (bid_id, _) = earlier_bid(&app, &lot).await;
    let gateway = first_capture_lost(app.gateway.clone(), Reached::AtOnce);
    buy_now_with(&app, &lot, "pm_card_visa", gateway).await;
    assert_eq!(
        app.gateway_payments_captured().await.len(),
        1,
        "the bank took it"
    );
    app.cancel_lot(&op, &lot).await;
    app.run_jobs().await;

    assert_eq!(app.moved(&bid_id, "charge").await, 160_000);
    assert_eq!(app.moved(&bid_id, "refund").await, 160_000, "given back");
    assert_eq!(app.stored_bid(&bid_id).await.status, "refunded");
    assert!(app.gateway_holds_awaiting_capture().await.is_empty());
    assert_eq!(app.pending_charges(&bid_id).await, 0);
    assert!(
        !app.jobs_not_done().await.contains(&"release".to_owned()),
        "the cancel's release of a captured hold is not tried again and again"
    );
}

/// The purchase's job is gone (a crash): the release the cancel asked for finds the capture
/// still unanswered and finishes the purchase, giving back what the lost capture took.
async fn the_cancels_release_finishes_a_purchase_whose_job_is_gone(app: TestApp) {
    let (op, lot) = lot_with_upgrade_now(&app).await;
    let (bid_id, _) = earlier_bid(&app, &lot).await;
    let gateway = first_capture_lost(app.gateway.clone(), Reached::AtOnce);
    buy_now_with(&app, &lot, "pm_card_visa", gateway).await;
    app.cancel_lot(&op, &lot).await;
    job::Entity::delete_many()
        .filter(job::Column::Kind.eq("capture_bought_now"))
        .exec(&app.db)
        .await
        .unwrap();
    app.run_jobs().await;

    assert_eq!(app.pending_charges(&bid_id).await, 0);
    assert_eq!(app.moved(&bid_id, "refund").await, 160_000, "given back");
    assert!(app.gateway_holds_awaiting_capture().await.is_empty());
    assert!(!app.jobs_not_done().await.contains(&"release".to_owned()));
}

/// The lost capture lands at the bank just as the cancelled purchase's hold is being
/// released: the bank refuses the release (the money is taken), and the money goes back.
async fn a_lost_capture_landing_during_the_release_of_a_cancelled_purchase_is_refunded(
    app: TestApp,
) {
    let (op, lot) = lot_with_upgrade_now(&app).await;
    let (bid_id, _) = earlier_bid(&app, &lot).await;
    let gateway = first_capture_lost(app.gateway.clone(), Reached::Late);
    buy_now_with(&app, &lot, "pm_card_visa", gateway.clone()).await;
    app.cancel_lot(&op, &lot).await;
    // Finished through the gateway that still carries the late capture (the job would use
    // the server's, which has none).
    surclass::services::settlement::charge(&app.db, gateway.as_ref(), &bid_id, None)
        .await
        .expect("finished");
    assert_eq!(app.gateway_payments_captured().await.len(), 1, "it landed");
    app.run_jobs().await;

    assert_eq!(app.moved(&bid_id, "charge").await, 160_000);
    assert_eq!(app.moved(&bid_id, "refund").await, 160_000, "given back");
    assert_eq!(app.pending_charges(&bid_id).await, 0);
}

/// A release of the earlier bid's hold is on its way (asked for, not yet answered) when the
/// purchase is declined: the bid is not put back on that hold.
async fn a_declined_upgrade_now_puts_no_bid_back_on_a_hold_being_released(app: TestApp) {
    use surclass::payments::IdempotencyKey;
    use surclass::store::payments::{NewPayment, insert};

    let (_, lot) = lot_with_upgrade_now(&app).await;
    let (bid_id, earlier_hold) = earlier_bid(&app, &lot).await;
    buy_now_with_the_answer_lost(&app, &lot, DECLINED_AT_CAPTURE).await;
    insert(
        &app.db,
        NewPayment {
            bid_id: &bid_id,
            kind: "release",
            amount_minor: 0,
            currency: "EUR",
            status: "pending",
            provider: app.gateway.provider(),
            provider_ref: None,
            idempotency_key: IdempotencyKey::release_of(&earlier_hold)
                .unwrap()
                .as_str()
                .to_owned(),
            attempt: 1,
        },
    )
    .await
    .unwrap();
    app.run_jobs().await;

    let b = app.stored_bid(&bid_id).await;
    assert_eq!((b.status.as_str(), b.payment_ref), ("withdrawn", None));
}

/// The capture's answer was lost and so were its job and the cancel's release (a crash), and
/// the lot was cancelled since: `surclass reconcile` still finds the purchase's pending
/// charge, whatever became of the bid, and the money the lost capture took goes back.
async fn reconcile_finishes_a_cancelled_purchase_whose_job_was_lost(app: TestApp) {
    use surclass::services::reconcile;

    let (op, lot) = lot_with_upgrade_now(&app).await;
    let (bid_id, _) = earlier_bid(&app, &lot).await;
    let gateway = first_capture_lost(app.gateway.clone(), Reached::AtOnce);
    buy_now_with(&app, &lot, "pm_card_visa", gateway).await;
    app.cancel_lot(&op, &lot).await;
    job::Entity::delete_many()
        .filter(job::Column::Kind.is_in(["capture_bought_now", "release"]))
        .exec(&app.db)
        .await
        .unwrap();
    app.run_jobs().await;
    assert_eq!(
        app.pending_charges(&bid_id).await,
        1,
        "nothing knew of the money"
    );

    let later = chrono::Utc::now() + reconcile::IN_FLIGHT + chrono::Duration::minutes(1);
    let findings = reconcile::check_as_of(&app.db, app.gateway.as_ref(), later)
        .await
        .unwrap();
    let pending: Vec<_> = findings
        .into_iter()
        .filter(|f| f.bid_id == bid_id && f.problem.starts_with("charge pending"))
        .collect();
    assert_eq!(pending.len(), 1, "found");
    reconcile::repair(&app.db, &pending).await.unwrap();
    app.run_jobs().await;

    assert_eq!(app.pending_charges(&bid_id).await, 0);
    assert_eq!(app.moved(&bid_id, "refund").await, 160_000, "given back");
    assert!(app.gateway_holds_awaiting_capture().await.is_empty());
}

/// While the purchase's payment was pending, reconcile released the earlier bid's hold (the
/// purchase's was the bid's hold then). Declined, the bid is not put back on a hold that no
/// longer holds anything: it is withdrawn, and the traveller can bid again.
async fn a_declined_upgrade_now_puts_no_bid_back_on_a_released_hold(app: TestApp) {
    let (_, lot) = lot_with_upgrade_now(&app).await;
    let (bid_id, earlier_hold) = earlier_bid(&app, &lot).await;
    buy_now_with_the_answer_lost(&app, &lot, DECLINED_AT_CAPTURE).await;
    surclass::services::settlement::release(&app.db, app.gateway.as_ref(), &bid_id, &earlier_hold)
        .await
        .expect("released as reconcile's repair does");
    app.run_jobs().await;

    let b = app.stored_bid(&bid_id).await;
    assert_eq!((b.status.as_str(), b.payment_ref), ("withdrawn", None));
    assert!(app.gateway_holds_awaiting_capture().await.is_empty());
    let failure = last_failure(&app, &bid_id).await;
    assert!(
        failure.ends_with("you can bid again until bidding closes."),
        "{failure}"
    );
    let token = app.sign_in("PNR001", "Martin").await;
    app.bid(&token, &lot, "300.00", "pm_card_visa")
        .await
        .expect(201);
}

/// The bank's webhook says the purchase's payment succeeded before its job asked again: the
/// job still records it (the bid charged, the traveller told), as the webhook leaves a
/// charge's row to its job.
#[tokio::test]
async fn a_webhook_for_a_purchase_whose_answer_was_lost_leaves_it_to_its_job() {
    use crate::support::{Store, spawn_app_with};
    const SECRET: &str = "whsec_test_surclass";

    let app = spawn_app_with(Store::Sqlite, |s| {
        s.stripe.stripe_webhook_secret = Some(SECRET.into())
    })
    .await
    .unwrap();
    let (op, lot) = lot_with_upgrade_now(&app).await;
    let gateway = first_capture_lost(app.gateway.clone(), Reached::AtOnce);
    let bought = buy_now_with(&app, &lot, "pm_card_visa", gateway).await;
    let hold = bought.payment_ref.clone().expect("the purchase's hold");
    let now = chrono::Utc::now().timestamp();
    let event = json!({
        "id": "evt_lost_answer", "type": "payment_intent.succeeded", "created": now,
        "data": {"object": {"reference": hold, "amount_minor": 160_000, "currency": "EUR",
            "status": {"status": "succeeded", "amount_received": 160_000}, "metadata": {}}}
    })
    .to_string();
    let signature = surclass::payments::webhook::sign(&event, SECRET, now);
    let ack = app
        .post("/v1/webhooks/payments")
        .header("stripe-signature", &signature)
        .raw("application/json", &event)
        .send()
        .await
        .expect(200);
    assert_eq!(ack.body["applied"], true);
    app.run_jobs().await;

    assert_eq!(app.stored_bid(&bought.id).await.status, "charged");
    assert_eq!(app.moved(&bought.id, "charge").await, 160_000);
    assert_eq!(app.emails_of(&op.key, "bid.charged").await.len(), 1);
}

/// The operator cancels just as a purchase's payment is recorded (the "upgrade now" request
/// writes the bank's "paid", taking only the bid): the cancel waits for the bid being
/// written, finds it charged, and refunds it, rather than taking it for an unpaid winner and
/// releasing a hold already captured. PostgreSQL only: the wait is seen in
/// `pg_stat_activity`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cancel_meeting_a_purchase_being_recorded_as_paid_refunds_it() {
    use sea_orm::{QuerySelect, TransactionTrait};
    use surclass::store::entities::{audit_entry, payment};

    let Some(app) = crate::support::spawn_app(crate::support::Store::Postgres).await else {
        return;
    };
    let (op, lot) = lot_with_upgrade_now(&app).await;
    let gateway = first_capture_lost(app.gateway.clone(), Reached::AtOnce);
    let bought = buy_now_with(&app, &lot, "pm_card_visa", gateway).await;
    let hold = bought.payment_ref.clone().expect("the purchase's hold");

    // The purchase's record of the bank's answer, as its request writes it, begun.
    let paying = app.db.begin().await.unwrap();
    bid::Entity::find_by_id(bought.id.clone())
        .lock_exclusive()
        .one(&paying)
        .await
        .unwrap();
    payment::Entity::update_many()
        .col_expr(payment::Column::Status, Expr::value("succeeded"))
        .col_expr(payment::Column::ProviderRef, Expr::value(hold))
        .filter(payment::Column::BidId.eq(&bought.id))
        .filter(payment::Column::Kind.eq("charge"))
        .exec(&paying)
        .await
        .unwrap();
    bid::Entity::update_many()
        .col_expr(bid::Column::Status, Expr::value("charged"))
        .filter(bid::Column::Id.eq(&bought.id))
        .exec(&paying)
        .await
        .unwrap();
    let (cancelled, ()) = tokio::join!(
        app.post(&format!("/v1/lots/{lot}/cancel"))
            .key(&op.key)
            .json(&json!({"reason": "Flight cancelled"}))
            .send(),
        async {
            assert!(
                app.someone_waits_for_a_lock().await,
                "the cancel waits for the bid being written"
            );
            paying.commit().await.expect("the payment recorded");
        },
    );
    cancelled.expect(200);
    app.run_jobs().await;

    assert_eq!(app.moved(&bought.id, "charge").await, 160_000);
    assert_eq!(app.moved(&bought.id, "refund").await, 160_000, "given back");
    assert_eq!(app.stored_bid(&bought.id).await.status, "refunded");
    // The audit log counts what the cancel did: a charge refunded, no hold released.
    let audited = audit_entry::Entity::find()
        .filter(audit_entry::Column::Action.eq("lot.cancelled"))
        .one(&app.db)
        .await
        .unwrap()
        .and_then(|e| e.after)
        .unwrap_or_default();
    assert!(
        audited.contains("holds_released=0 charges_refunded=1"),
        "{audited}"
    );
}

/// A charge-on-award lot: the traveller's bid (the card saved) bought "upgrade now", the bank
/// declined after a late answer and the bid was put back; then it lost in the award. Its page
/// says that nothing was charged and the saved card will not be used, not that a hold is
/// being released (the purchase's hold went with the decline; none is left to release).
async fn a_saved_card_bid_lost_after_a_declined_purchase_speaks_of_no_hold(app: TestApp) {
    let op = app.operator("aurora").await;
    let lot = app
        .open_lot(
            &op,
            json!({"capacity": 2, "upgrade_now": "800.00", "payment_mode": "charge_on_award"}),
        )
        .await;
    let mut bids = Vec::new();
    for (reference, amount) in [("PNR001", "300.00"), ("PNR002", "500.00")] {
        app.booking(&op, reference, "Martin", 2, &[&lot]).await;
        let token = app.sign_in(reference, "Martin").await;
        let placed = app
            .post("/v1/traveller/bids")
            .key(&token)
            .json(&json!({"lot_id": lot, "amount": amount,
                "payment_method": "pm_card_visa", "consent_to_charge": true}))
            .send()
            .await
            .expect(201);
        bids.push(placed.body["id"].as_str().unwrap().to_owned());
        if reference == "PNR001" {
            buy_now_with_the_answer_lost(&app, &lot, DECLINED_AT_CAPTURE).await;
            app.run_jobs().await;
            assert_eq!(app.stored_bid(&bids[0]).await.status, "active", "put back");
        }
    }
    app.close_now(&lot).await;
    app.run_jobs().await;
    assert_eq!(app.stored_bid(&bids[0]).await.status, "lost");

    let browser = crate::pages::Browser::new(&app);
    browser.sign_in("PNR001", "Martin").await;
    let page = browser.get(&format!("/bids/{}", bids[0])).await;
    assert!(
        page.says("Not successful: nothing was charged, and your saved card will not be used.")
            && page.says("Not successful: your card will not be charged")
            && !page.says("being released"),
        "{}",
        page.body
    );
}

store_tests!(
    the_cancels_release_finishes_a_purchase_whose_job_is_gone,
    a_lost_capture_landing_during_the_release_of_a_cancelled_purchase_is_refunded,
    a_declined_upgrade_now_puts_no_bid_back_on_a_hold_being_released,
    reconcile_finishes_a_cancelled_purchase_whose_job_was_lost,
    a_declined_upgrade_now_puts_no_bid_back_on_a_released_hold,
    a_declined_upgrade_now_finished_by_reconcile_withdraws_the_earlier_bid_and_its_hold,
    an_upgrade_now_cancelled_while_its_payment_is_pending_takes_nothing,
    an_upgrade_now_cancelled_after_its_lost_capture_took_the_money_refunds_it,
    a_declined_upgrade_now_puts_the_earlier_bid_back_and_says_so,
    a_declined_upgrade_now_with_no_earlier_bid_leaves_nothing_held,
    an_upgrade_now_paid_after_a_late_answer_releases_the_earlier_hold,
    a_purchase_still_being_paid_for_lets_no_bid_go_until_it_is_paid,
    an_upgrade_now_declined_after_bidding_closed_is_lost_and_releases_every_hold,
    an_upgrade_now_whose_process_stops_while_the_bank_is_asked_is_finished_by_its_job,
    an_upgrade_now_answered_at_once_leaves_no_job_waiting,
    a_saved_card_bid_lost_after_a_declined_purchase_speaks_of_no_hold,
);

/// The process stops while the bank is asked (the bank took the money; its answer never came
/// back): the capture job queued with the purchase finishes it under the same key once its
/// request would long have had the answer. Charged once, the upgrade confirmed, and the
/// earlier bid's hold released; nothing waits for an operator's reconcile.
async fn an_upgrade_now_whose_process_stops_while_the_bank_is_asked_is_finished_by_its_job(
    app: TestApp,
) {
    let (op, lot) = lot_with_upgrade_now(&app).await;
    let (bid_id, _) = earlier_bid(&app, &lot).await;
    let gateway = first_capture_lost(app.gateway.clone(), Reached::AtOnceThenStopped);
    let booking = app.stored_booking("PNR001").await;
    let card = Some(CardSource::PaymentMethod("pm_card_visa".into()));
    let buying = bids::upgrade_now(&app.db, &gateway, &booking, &lot, card);
    let answered = tokio::time::timeout(std::time::Duration::from_millis(500), buying).await;
    assert!(answered.is_err(), "never answered: {answered:?}");
    let reserved = during_hold::bid_once(&app.db, &booking.id, |b| b.status == "won").await;
    assert!(reserved.is_some(), "the purchase was written");
    for _ in 0..100 {
        if !app.gateway_payments_captured().await.is_empty() {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert_eq!(
        app.gateway_payments_captured().await.len(),
        1,
        "the bank took the money; its answer was lost"
    );
    app.run_jobs().await;
    assert_eq!(
        app.stored_bid(&bid_id).await.status,
        "won",
        "its job waits for the request"
    );
    assert_eq!(app.pending_charges(&bid_id).await, 1);

    let waiting = job::Entity::update_many()
        .col_expr(job::Column::RunAt, Expr::value(chrono::Utc::now()))
        .filter(job::Column::Kind.eq("capture_bought_now"))
        .filter(job::Column::Status.eq("pending"))
        .exec(&app.db)
        .await
        .unwrap();
    assert_eq!(waiting.rows_affected, 1, "one job for the purchase");
    app.run_jobs().await;

    assert_eq!(app.stored_bid(&bid_id).await.status, "charged");
    assert_eq!(app.pending_charges(&bid_id).await, 0);
    assert_eq!(
        app.gateway_payments_captured().await.len(),
        1,
        "charged once"
    );
    assert!(
        app.gateway_holds_awaiting_capture().await.is_empty(),
        "the earlier bid's hold is released"
    );
    assert_eq!(app.emails_of(&op.key, "bid.charged").await.len(), 1);
}

/// A purchase the bank answers at once, paid or declined, leaves no capture job waiting.
async fn an_upgrade_now_answered_at_once_leaves_no_job_waiting(app: TestApp) {
    let (op, lot) = lot_with_upgrade_now(&app).await;
    app.booking(&op, "PNR002", "Dubois", 1, &[&lot]).await;
    let paid = app.stored_booking("PNR001").await;
    let card = Some(CardSource::PaymentMethod("pm_card_visa".into()));
    let bought = bids::upgrade_now(&app.db, &app.gateway, &paid, &lot, card)
        .await
        .expect("paid");
    assert_eq!(bought.status, "charged");
    let declined = app.stored_booking("PNR002").await;
    let card = Some(CardSource::PaymentMethod(DECLINED_AT_CAPTURE.into()));
    let refused = bids::upgrade_now(&app.db, &app.gateway, &declined, &lot, card).await;
    assert!(refused.is_err(), "declined: {refused:?}");

    let capture_jobs = job::Entity::find()
        .filter(job::Column::Kind.eq("capture_bought_now"))
        .all(&app.db)
        .await
        .unwrap();
    assert_eq!(capture_jobs.len(), 2, "one queued with each purchase");
    assert!(
        capture_jobs
            .iter()
            .all(|j| j.status == surclass::jobs::queue::DONE),
        "set aside once answered"
    );
}

/// A lot of four seats, "upgrade now" at 800.00 a person, and PNR001 (Martin, a party of two).
async fn lot_with_upgrade_now(app: &TestApp) -> (Operator, String) {
    let op = app.operator("aurora").await;
    let lot = app
        .open_lot(&op, json!({"capacity": 4, "upgrade_now": "800.00"}))
        .await;
    app.booking(&op, "PNR001", "Martin", 2, &[&lot]).await;
    (op, lot)
}

/// PNR001 bids 300.00 a person: the bid's id and its hold.
async fn earlier_bid(app: &TestApp, lot: &str) -> (String, String) {
    let token = app.sign_in("PNR001", "Martin").await;
    let placed = app
        .bid(&token, lot, "300.00", "pm_card_visa")
        .await
        .expect(201);
    let id = placed.body["id"].as_str().unwrap().to_owned();
    let hold = app.stored_bid(&id).await.payment_ref.expect("held");
    (id, hold)
}

/// PNR001 buys now with `card`; the capture's answer is lost, so the purchase is reserved and
/// its payment left to a job.
async fn buy_now_with_the_answer_lost(app: &TestApp, lot: &str, card: &str) -> bid::Model {
    buy_now_with(
        app,
        lot,
        card,
        first_capture_lost(app.gateway.clone(), Reached::Never),
    )
    .await
}

/// PNR001 buys now with `card` through `gateway`.
async fn buy_now_with(
    app: &TestApp,
    lot: &str,
    card: &str,
    gateway: std::sync::Arc<dyn surclass::payments::PaymentGateway>,
) -> bid::Model {
    let booking = app.stored_booking("PNR001").await;
    let card = Some(CardSource::PaymentMethod(card.into()));
    let reserved = bids::upgrade_now(&app.db, &gateway, &booking, lot, card)
        .await
        .expect("reserved while the bank is asked again");
    assert_eq!(reserved.status, "won");
    reserved
}

async fn units_sold_now(app: &TestApp, lot: &str) -> i32 {
    lot::Entity::find_by_id(lot.to_owned())
        .one(&app.db)
        .await
        .unwrap()
        .unwrap()
        .units_sold_now
}

/// What the bid's timeline says of its last failed payment.
async fn last_failure(app: &TestApp, bid_id: &str) -> String {
    bid_event::Entity::find()
        .filter(bid_event::Column::BidId.eq(bid_id))
        .filter(bid_event::Column::Kind.eq("payment_failed"))
        .order_by_desc(bid_event::Column::Id)
        .one(&app.db)
        .await
        .unwrap()
        .and_then(|e| e.detail)
        .expect("a failed payment on the timeline")
}
