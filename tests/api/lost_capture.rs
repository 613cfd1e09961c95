//! A winner's payment whose answer was lost (a timeout), and an upgrade that no longer stands
//! by the time anyone asks again: the operator cancelled the lot, or has fewer seats than
//! planned. The bank is asked what became of the hold, never to capture it now. Nothing
//! taken, the hold is released; taken, the money goes back with the reason. Nobody pays for
//! an upgrade they do not get, and no job is left retrying a release the bank refuses.

use serde_json::json;

use crate::pages::{Browser, Page};
use crate::store_tests;
use crate::support::{Operator, TestApp};
use crate::traveller::during_hold::{Reached, first_capture_lost};
use std::sync::Arc;
use surclass::payments::PaymentGateway;
use surclass::services::settlement;

/// The bank never saw the capture: nothing is taken, and the hold is released.
async fn a_cancelled_upgrade_whose_lost_capture_never_reached_the_bank_takes_nothing(app: TestApp) {
    let (op, lot, bids) = approved(&app, 1, &["400.00"], json!({})).await;
    let winner = &bids[0];
    capture_with_the_answer_lost(&app, winner, Reached::Never).await;
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
        app.pending_charges(winner).await,
        0,
        "the charge is finished"
    );
    assert_eq!(app.moved(winner, "charge").await, 0);
    let b = app.stored_bid(winner).await;
    assert_eq!((b.status.as_str(), b.payment_ref), ("released", None));
    assert!(app.emails_of(&op.key, "bid.refunded").await.is_empty());
    assert!(!app.jobs_not_done().await.contains(&"release".to_owned()));
}

/// The bank took the money before its answer was lost: it goes back, and the traveller reads
/// why. The release the cancel asked for is not tried again and again.
async fn a_cancelled_upgrade_whose_lost_capture_took_the_money_refunds_it(app: TestApp) {
    let (op, lot, bids) = approved(&app, 1, &["400.00"], json!({})).await;
    let winner = &bids[0];
    capture_with_the_answer_lost(&app, winner, Reached::AtOnce).await;
    assert_eq!(
        app.gateway_payments_captured().await.len(),
        1,
        "the bank took it"
    );
    app.cancel_lot(&op, &lot).await;
    app.run_jobs().await;

    assert_eq!(app.moved(winner, "charge").await, 40_000);
    assert_eq!(app.moved(winner, "refund").await, 40_000, "given back");
    assert_eq!(app.pending_charges(winner).await, 0);
    let refunded = refund_message(&app, winner).await;
    assert!(
        refunded.starts_with("The operator cancelled this upgrade.")
            && refunded.contains("400.00 EUR is refunded"),
        "{refunded}"
    );
    assert_eq!(app.emails_of(&op.key, "bid.refunded").await.len(), 1);
    assert!(!app.jobs_not_done().await.contains(&"release".to_owned()));
}

/// The charge's job is gone (a crash): the release the cancel asked for finds the capture
/// still unanswered and asks what became of it, instead of being refused by the bank.
async fn the_cancels_release_finishes_a_lost_capture_whose_job_is_gone(app: TestApp) {
    use sea_orm::{ColumnTrait, EntityTrait, QueryFilter};
    use surclass::store::entities::job;

    let (op, lot, bids) = approved(&app, 1, &["400.00"], json!({})).await;
    let winner = &bids[0];
    capture_with_the_answer_lost(&app, winner, Reached::AtOnce).await;
    app.cancel_lot(&op, &lot).await;
    job::Entity::delete_many()
        .filter(job::Column::Kind.eq("charge"))
        .exec(&app.db)
        .await
        .unwrap();
    app.run_jobs().await;

    assert_eq!(app.pending_charges(winner).await, 0);
    assert_eq!(app.moved(winner, "refund").await, 40_000, "given back");
    assert!(!app.jobs_not_done().await.contains(&"release".to_owned()));
}

/// The lost capture lands at the bank just as the charge, finding the upgrade cancelled,
/// releases its hold: the bank refuses the release (the money is taken), and it goes back.
async fn a_lost_capture_landing_during_the_release_of_a_cancelled_upgrade_is_refunded(
    app: TestApp,
) {
    let (op, lot, bids) = approved(&app, 1, &["400.00"], json!({})).await;
    let winner = &bids[0];
    let gateway = capture_with_the_answer_lost(&app, winner, Reached::Late).await;
    app.cancel_lot(&op, &lot).await;
    // Finished through the gateway that still carries the late capture (the jobs use the
    // server's, which has none).
    settlement::charge(&app.db, gateway.as_ref(), winner, None)
        .await
        .expect("finished");
    assert_eq!(app.gateway_payments_captured().await.len(), 1, "it landed");
    app.run_jobs().await;

    assert_eq!(app.moved(winner, "charge").await, 40_000);
    assert_eq!(app.moved(winner, "refund").await, 40_000, "given back");
    assert_eq!(app.pending_charges(winner).await, 0);
    assert!(!app.jobs_not_done().await.contains(&"release".to_owned()));
}

/// A release the bank refuses because the hold was captured, with no record of that capture
/// anywhere (money taken that nothing here knows of): the release keeps failing, so that its
/// parked job makes someone look, rather than being filed as done.
async fn a_release_refused_for_a_capture_recorded_nowhere_keeps_failing(app: TestApp) {
    use sea_orm::{ColumnTrait, EntityTrait, QueryFilter};
    use surclass::payments::{IdempotencyKey, PaymentRef};
    use surclass::store::entities::{job, payment};

    let (op, lot, bids) = approved(&app, 1, &["400.00"], json!({})).await;
    let winner = &bids[0];
    let hold = app.stored_bid(winner).await.payment_ref.expect("held");
    let elsewhere = IdempotencyKey::parse("captured-by-hand").unwrap();
    app.gateway
        .capture(&PaymentRef::new(hold), 40_000, &elsewhere)
        .await
        .expect("captured outside the service");
    app.cancel_lot(&op, &lot).await;
    app.run_jobs().await;

    let release = job::Entity::find()
        .filter(job::Column::Kind.eq("release"))
        .one(&app.db)
        .await
        .unwrap()
        .expect("the cancel's release");
    assert_ne!(release.status, surclass::jobs::queue::DONE);
    let error = release.last_error.unwrap_or_default();
    assert!(error.contains("is captured"), "{error}");
    let rows = payment::Entity::find()
        .filter(payment::Column::BidId.eq(winner))
        .filter(payment::Column::Kind.eq("release"))
        .all(&app.db)
        .await
        .unwrap();
    assert!(
        !rows.is_empty() && rows.iter().all(|r| r.status == "pending"),
        "asked for, not filed"
    );
    assert!(app.stored_bid(winner).await.payment_ref.is_some());
}

/// Fewer seats than planned: the last-ranked winner, whose capture's answer was lost after
/// the bank took the money, is refunded with that reason; the other winner is charged.
async fn a_winner_cut_after_a_lost_capture_is_refunded_with_the_reason(app: TestApp) {
    let (op, lot, bids) = approved(&app, 2, &["400.00", "300.00"], json!({})).await;
    let (top, last) = (&bids[0], &bids[1]);
    capture_with_the_answer_lost(&app, last, Reached::AtOnce).await;
    app.post(&format!("/v1/lots/{lot}/capacity"))
        .key(&op.key)
        .json(&json!({"capacity": 1}))
        .send()
        .await
        .expect(200);
    app.run_jobs().await;

    assert_eq!(app.stored_bid(top).await.status, "charged");
    assert_eq!(app.moved(last, "refund").await, 30_000, "given back");
    assert_eq!(app.stored_bid(last).await.status, "refunded");
    let refunded = refund_message(&app, last).await;
    assert!(
        refunded.starts_with("The operator has fewer upgrades than planned"),
        "{refunded}"
    );
    assert!(app.gateway_holds_awaiting_capture().await.is_empty());
    assert!(!app.jobs_not_done().await.contains(&"release".to_owned()));
    let told = app.emails_of(&op.key, "bid.cancelled").await;
    assert_eq!(told.len(), 1, "the cut winner is told");
    let body = told[0]["body"].as_str().unwrap_or_default();
    assert!(
        body.contains("If it was taken, it is refunded in full"),
        "{body}"
    );
}

/// Cancelled while the bank had not answered a winner's payment: neither the email, the
/// status page nor the list of offers says that nothing was charged (or that the hold is
/// being released) before that is known, and once the bank's answer is in (taken), both pages
/// say the money is on its way back. The other winner, whose payment was never asked for, is
/// told plainly that nothing is charged.
async fn a_winner_whose_payment_is_unanswered_at_the_cancel_is_not_told_nothing_was_charged(
    app: TestApp,
) {
    let (op, lot, bids) = approved(&app, 2, &["400.00", "300.00"], json!({})).await;
    let (unanswered, unasked) = (&bids[0], &bids[1]);
    let gateway = capture_with_the_answer_lost(&app, unanswered, Reached::Late).await;
    app.cancel_lot(&op, &lot).await;
    let page = status_page(&app, "PNR001", unanswered).await;
    assert!(
        page.says("which has not answered yet")
            && page.says("Not successful: waiting for your bank's answer")
            && !page.says("nothing was charged")
            && !page.says("being released"),
        "{}",
        page.body
    );
    let offers = offers_page(&app, "PNR001").await;
    assert!(
        offers.says("Not successful: waiting for your bank's answer")
            && !offers.says("being released"),
        "{}",
        offers.body
    );

    // The charge is asked about again, and the bank took the money: it is on its way back.
    settlement::charge(&app.db, gateway.as_ref(), unanswered, None)
        .await
        .expect("finished");
    let page = status_page(&app, "PNR001", unanswered).await;
    assert!(
        page.says("the payment taken is being refunded to you in full")
            && page.says("Not successful: your payment is being refunded")
            && !page.says("being released"),
        "{}",
        page.body
    );
    let offers = offers_page(&app, "PNR001").await;
    assert!(
        offers.says("Not successful: your payment is being refunded")
            && !offers.says("being released"),
        "{}",
        offers.body
    );
    app.run_jobs().await;
    assert_eq!(app.moved(unanswered, "refund").await, 40_000, "given back");

    let told: Vec<String> = app
        .emails_of(&op.key, "bid.cancelled")
        .await
        .iter()
        .map(|m| m["body"].as_str().unwrap_or_default().to_owned())
        .collect();
    assert_eq!(told.len(), 2, "{told:?}");
    let (in_doubt, plain): (Vec<_>, Vec<_>) = told
        .iter()
        .partition(|b| b.contains("had not answered yet"));
    assert_eq!((in_doubt.len(), plain.len()), (1, 1), "{told:?}");
    assert!(
        in_doubt[0].contains("If it was taken, it is refunded in full")
            && !in_doubt[0].contains("The hold on your card is released; nothing is charged."),
        "{}",
        in_doubt[0]
    );
    assert!(
        plain[0].contains("The hold on your card is released; nothing is charged."),
        "{}",
        plain[0]
    );
    let page = status_page(&app, "PNR002", unasked).await;
    assert!(
        page.says("the hold on your card is released and nothing was charged"),
        "{}",
        page.body
    );
    let offers = offers_page(&app, "PNR002").await;
    assert!(
        offers.says("Not successful: the hold on your card is being released")
            || offers.says("Not successful: hold released"),
        "{}",
        offers.body
    );
}

/// The charge's job and the cancel's release were both lost (a crash, a wiped queue):
/// `surclass reconcile` finds the charge still pending on a bid that no longer won, and its
/// repair gives the money back.
async fn reconcile_finishes_a_lost_capture_whose_upgrade_was_cancelled(app: TestApp) {
    use sea_orm::{ColumnTrait, EntityTrait, QueryFilter};
    use surclass::services::reconcile;
    use surclass::store::entities::job;

    let (op, lot, bids) = approved(&app, 1, &["400.00"], json!({})).await;
    let winner = &bids[0];
    capture_with_the_answer_lost(&app, winner, Reached::AtOnce).await;
    app.cancel_lot(&op, &lot).await;
    job::Entity::delete_many()
        .filter(job::Column::Kind.is_in(["charge", "release"]))
        .exec(&app.db)
        .await
        .unwrap();
    app.run_jobs().await;
    assert_eq!(
        app.pending_charges(winner).await,
        1,
        "nothing knew of the money"
    );

    let later = chrono::Utc::now() + reconcile::IN_FLIGHT + chrono::Duration::minutes(1);
    let findings = reconcile::check_as_of(&app.db, app.gateway.as_ref(), later)
        .await
        .unwrap();
    let pending: Vec<_> = findings
        .into_iter()
        .filter(|f| &f.bid_id == winner && f.problem.starts_with("charge pending"))
        .collect();
    assert_eq!(pending.len(), 1, "found");
    reconcile::repair(&app.db, &pending).await.unwrap();
    app.run_jobs().await;

    assert_eq!(app.pending_charges(winner).await, 0);
    assert_eq!(app.moved(winner, "refund").await, 40_000, "given back");
    assert!(app.gateway_holds_awaiting_capture().await.is_empty());
}

/// A saved card charged on award (no hold to ask about), at a uniform price below the offer:
/// the charge is asked again under its own key for what was first asked, which replays the
/// bank's first answer, and what it took goes back. One payment at the bank, not two.
async fn a_cancelled_upgrade_whose_lost_card_charge_took_the_money_refunds_it(app: TestApp) {
    let (op, lot, bids) = approved(&app, 1, &["400.00", "300.00"], saved_card_lot()).await;
    let winner = &bids[0];
    capture_with_the_answer_lost(&app, winner, Reached::AtOnce).await;
    app.cancel_lot(&op, &lot).await;
    // Told that the bank may have taken it; a card only saved is not spoken of as held.
    let page = status_page(&app, "PNR001", winner).await;
    assert!(
        page.says("If it was taken, it is refunded to you in full; if not, nothing is charged.")
            && !page.says("hold on your card"),
        "{}",
        page.body
    );
    app.run_jobs().await;
    let told = app.emails_of(&op.key, "bid.cancelled").await;
    let body = told[0]["body"].as_str().unwrap_or_default();
    assert!(
        body.contains("if not, nothing is charged.") && !body.contains("hold on your card"),
        "{body}"
    );

    assert_eq!(
        app.moved(winner, "charge").await,
        30_000,
        "the clearing price"
    );
    assert_eq!(taken_at_the_bank(&app, winner).await, 30_000);
    assert_eq!(app.moved(winner, "refund").await, 30_000, "given back");
    assert_eq!(app.pending_charges(winner).await, 0);
    assert_eq!(
        app.gateway_payments_of(winner).await.len(),
        1,
        "charged once at the bank"
    );
    assert_eq!(app.stored_bid(winner).await.status, "refunded");
    assert!(
        app.jobs_not_done()
            .await
            .iter()
            .all(|k| k != "charge" && k != "refund")
    );
}

/// The same, but the bank never saw the lost charge: with no hold to ask about, the only way
/// to know is to send it again, which charges the card now, and the refund follows at once.
/// (A charge lookup by the bid would spare the traveller that; see the README.)
async fn a_cancelled_upgrade_whose_lost_card_charge_never_reached_the_bank_is_refunded_at_once(
    app: TestApp,
) {
    let (op, lot, bids) = approved(&app, 1, &["400.00", "300.00"], saved_card_lot()).await;
    let winner = &bids[0];
    capture_with_the_answer_lost(&app, winner, Reached::Never).await;
    assert!(app.gateway_payments_of(winner).await.is_empty(), "not seen");
    app.cancel_lot(&op, &lot).await;
    app.run_jobs().await;

    assert_eq!(app.moved(winner, "charge").await, 30_000);
    assert_eq!(
        taken_at_the_bank(&app, winner).await,
        30_000,
        "what was first asked"
    );
    assert_eq!(app.moved(winner, "refund").await, 30_000, "given back");
    assert_eq!(app.pending_charges(winner).await, 0);
    assert_eq!(app.stored_bid(winner).await.status, "refunded");
}

store_tests!(
    a_cancelled_upgrade_whose_lost_capture_never_reached_the_bank_takes_nothing,
    a_cancelled_upgrade_whose_lost_capture_took_the_money_refunds_it,
    the_cancels_release_finishes_a_lost_capture_whose_job_is_gone,
    a_lost_capture_landing_during_the_release_of_a_cancelled_upgrade_is_refunded,
    a_release_refused_for_a_capture_recorded_nowhere_keeps_failing,
    a_winner_cut_after_a_lost_capture_is_refunded_with_the_reason,
    a_winner_whose_payment_is_unanswered_at_the_cancel_is_not_told_nothing_was_charged,
    reconcile_finishes_a_lost_capture_whose_upgrade_was_cancelled,
    a_cancelled_upgrade_whose_lost_card_charge_took_the_money_refunds_it,
    a_cancelled_upgrade_whose_lost_card_charge_never_reached_the_bank_is_refunded_at_once,
);

/// The operator cancels just as a winner's charge starts: the charge has read the bid as
/// won, and the cancel holds the lot. The charge's record waits for the lot, finds the
/// upgrade gone once the cancel commits, and asks the bank nothing, so the cancel's "nothing
/// is charged" stays true. PostgreSQL only: the wait is seen in `pg_stat_activity`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_charge_that_meets_a_cancel_in_progress_asks_the_bank_nothing() {
    let Some(app) = crate::support::spawn_app(crate::support::Store::Postgres).await else {
        return;
    };
    let (_, lot, bids) = approved(&app, 1, &["400.00"], json!({})).await;
    let winner = &bids[0];

    let step = charge_during_a_cancel(&app, &lot, winner).await;
    assert_eq!(
        step.expect("the charge ends"),
        settlement::Step::NothingToDo
    );
    assert_eq!(app.pending_charges(winner).await, 0, "no charge recorded");
    assert!(
        app.gateway_payments_captured().await.is_empty(),
        "the bank was asked nothing"
    );
}

/// The capture lands while the operator cancels: the charge, holding the bank's answer,
/// waits for the lot the cancel holds (lot, then bid, as the cancel takes them), and once
/// the cancel commits gives the money back. Neither fails. PostgreSQL only, as above.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_capture_that_lands_while_the_operator_cancels_is_refunded_and_neither_fails() {
    let Some(app) = crate::support::spawn_app(crate::support::Store::Postgres).await else {
        return;
    };
    let (_, lot, bids) = approved(&app, 1, &["400.00"], json!({})).await;
    let winner = &bids[0];
    // Its record written and the bank not reached: the next run captures.
    capture_with_the_answer_lost(&app, winner, Reached::Never).await;

    let step = charge_during_a_cancel(&app, &lot, winner).await;
    assert_eq!(step.expect("the charge ends"), settlement::Step::Done);
    assert_eq!(app.gateway_payments_captured().await.len(), 1, "it landed");
    app.run_jobs().await;
    assert_eq!(app.moved(winner, "charge").await, 40_000);
    assert_eq!(app.moved(winner, "refund").await, 40_000, "given back");
}

/// The winner's charge run while a cancel of its lot is in progress (PostgreSQL): the cancel
/// takes the lot for update, as `lots::cancel` does first; the charge is seen waiting for a
/// lock; the cancel writes the lot, then its winner, and commits. What the charge came to.
async fn charge_during_a_cancel(
    app: &TestApp,
    lot_id: &str,
    winner: &str,
) -> Result<settlement::Step, settlement::SettleError> {
    let cancel = app.cancel_begins(lot_id).await;
    let charging = tokio::spawn({
        let (db, gateway, winner) = (app.db.clone(), app.gateway.clone(), winner.to_owned());
        async move { settlement::charge(&db, gateway.as_ref(), &winner, None).await }
    });
    cancel.ends(app, winner).await;
    charging.await.unwrap()
}

/// A lot charged on award to a saved card, at the highest offer that did not win.
fn saved_card_lot() -> serde_json::Value {
    let closes = (chrono::Utc::now() + chrono::Duration::days(20)).to_rfc3339();
    json!({"payment_mode": "charge_on_award", "closes_at": closes,
        "award_policy": "uniform_price"})
}

/// A lot of `seats` under review, and single travellers offering `offers` (best first); the
/// operator approves the winners, which queues their charges. Returns the bids in the order
/// of `offers`.
async fn approved(
    app: &TestApp,
    seats: u32,
    offers: &[&str],
    fields: serde_json::Value,
) -> (Operator, String, Vec<String>) {
    let op = app.operator("aurora").await;
    let mut lot_fields = json!({"capacity": seats, "review_required": true});
    lot_fields
        .as_object_mut()
        .unwrap()
        .extend(fields.as_object().unwrap().clone());
    let lot = app.open_lot(&op, lot_fields.clone()).await;
    let mut bids = Vec::new();
    for (n, amount) in offers.iter().enumerate() {
        let reference = format!("PNR00{}", n + 1);
        app.booking(&op, &reference, "Martin", 1, &[&lot]).await;
        let token = app.sign_in(&reference, "Martin").await;
        let mut body = json!({"lot_id": lot, "amount": amount, "payment_method": "pm_card_visa"});
        if lot_fields["payment_mode"] == "charge_on_award" {
            body["consent_to_charge"] = json!(true);
        }
        let placed = app
            .post("/v1/traveller/bids")
            .key(&token)
            .json(&body)
            .send()
            .await
            .expect(201);
        bids.push(placed.body["id"].as_str().unwrap().to_owned());
    }
    app.close_now(&lot).await;
    app.run_jobs().await;
    let mut winners = Vec::new();
    for id in &bids {
        if app.stored_bid(id).await.status == "won" {
            winners.push(id.clone());
        }
    }
    assert_eq!(winners.len(), seats as usize);
    app.post(&format!("/v1/lots/{lot}/award/approve"))
        .key(&op.key)
        .json(&json!({"winners": winners}))
        .send()
        .await
        .expect(200);
    (op, lot, bids)
}

/// The charge's first try, before its job runs: the bank's answer is lost. Returns the
/// gateway that lost it (a late capture is still on its way there).
async fn capture_with_the_answer_lost(
    app: &TestApp,
    bid_id: &str,
    reached: Reached,
) -> Arc<dyn PaymentGateway> {
    let gateway = first_capture_lost(app.gateway.clone(), reached);
    let lost = settlement::charge(&app.db, gateway.as_ref(), bid_id, None).await;
    assert!(lost.is_err(), "no answer: {lost:?}");
    assert_eq!(app.pending_charges(bid_id).await, 1);
    gateway
}

/// The bid's status page, as its traveller (booking `reference`, from `approved`) sees it.
async fn status_page(app: &TestApp, reference: &str, bid_id: &str) -> Page {
    let browser = Browser::new(app);
    browser.sign_in(reference, "Martin").await;
    browser.get(&format!("/bids/{bid_id}")).await
}

/// The traveller's list of offers, each with what became of its bid.
async fn offers_page(app: &TestApp, reference: &str) -> Page {
    let browser = Browser::new(app);
    browser.sign_in(reference, "Martin").await;
    browser.get("/offers").await
}

/// What the bid's timeline says of its refund.
async fn refund_message(app: &TestApp, bid_id: &str) -> String {
    use sea_orm::{ColumnTrait, EntityTrait, QueryFilter};
    use surclass::store::entities::bid_event;
    let events = bid_event::Entity::find()
        .filter(bid_event::Column::BidId.eq(bid_id))
        .filter(bid_event::Column::Kind.eq("refunded"))
        .all(&app.db)
        .await
        .unwrap();
    events
        .into_iter()
        .next_back()
        .and_then(|e| e.detail)
        .expect("a refund on the timeline")
}

/// What the bank took from the bid's card, whatever the service recorded.
async fn taken_at_the_bank(app: &TestApp, bid_id: &str) -> i64 {
    use surclass::payments::{PaymentRef, PaymentStatus};
    let mut taken = 0;
    for reference in app.gateway_payments_of(bid_id).await {
        let state = app
            .gateway
            .payment_status(&PaymentRef::new(reference))
            .await
            .unwrap();
        if let PaymentStatus::Succeeded { amount_received } = state.status {
            taken += amount_received;
        }
    }
    taken
}
