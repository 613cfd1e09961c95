//! Bids that can no longer win before bidding closes. When the units left become fewer than
//! a party ("upgrade now" sales, a lower capacity, more entitlements), its bid is released at
//! once and the traveller told why, rather than kept on the card only to lose at the close.
//! Should units come back, the same traveller may bid again.

use serde_json::json;

use crate::store_tests;
use crate::support::{Operator, TestApp, timeline_kinds};

const GOOD: &str = "pm_card_visa";

/// Three seats. Martin (two) bids, Durand (one) bids, Petit (two) bids saying part of the
/// party may go; then Roy (two) buys two seats now. One is left: Martin's bid cannot win and
/// is released, hold and all, with an email saying why; the other two go on. Martin may bid
/// again once the operator adds seats, on the same bid, which then wins.
async fn a_bid_whose_party_the_units_left_cannot_take_is_released_at_once(app: TestApp) {
    let op = app.operator("aurora").await;
    let lot = app
        .open_lot(&op, json!({"capacity": 3, "upgrade_now": "800.00"}))
        .await;
    app.booking(&op, "PNR001", "Martin", 2, &[&lot]).await;
    app.booking(&op, "PNR002", "Durand", 1, &[&lot]).await;
    app.booking(&op, "PNR003", "Roy", 2, &[&lot]).await;
    app.booking(&op, "PNR004", "Petit", 2, &[&lot]).await;
    let martin = app.sign_in("PNR001", "Martin").await;
    let durand = app.sign_in("PNR002", "Durand").await;
    let petit = app.sign_in("PNR004", "Petit").await;
    let pair = id_of(
        app.bid(&martin, &lot, "300.00", GOOD)
            .await
            .expect(201)
            .body,
    );
    let hold = app.stored_bid(&pair).await.payment_ref.expect("held");
    let single = id_of(
        app.bid(&durand, &lot, "200.00", GOOD)
            .await
            .expect(201)
            .body,
    );
    let part = app
        .post("/v1/traveller/bids")
        .key(&petit)
        .json(
            &json!({"lot_id": lot, "amount": "250.00", "payment_method": GOOD, "partial_ok": true}),
        )
        .send()
        .await
        .expect(201);
    let part = id_of(part.body);

    let roy = app.sign_in("PNR003", "Roy").await;
    app.post(&format!("/v1/traveller/offers/{lot}/upgrade-now"))
        .key(&roy)
        .json(&json!({"payment_method": GOOD}))
        .send()
        .await
        .expect(201);
    app.run_jobs().await;

    let seen = app
        .read(&format!("/v1/traveller/bids/{pair}"))
        .key(&martin)
        .send()
        .await
        .expect(200);
    assert_eq!(seen.body["status"], "released", "{}", seen.text);
    assert!(
        timeline_kinds(&seen.body).contains(&"no_room_left".to_owned()),
        "{}",
        seen.text
    );
    assert!(
        !app.gateway_holds_awaiting_capture().await.contains(&hold),
        "no hold is kept for an upgrade that cannot be had"
    );
    let told = app.emails_of(&op.key, "bid.lost").await;
    assert_eq!(told.len(), 1, "Martin alone is told: {told:?}");
    let body = told[0]["body"].as_str().unwrap();
    assert!(
        body.contains("Not enough upgrades are left for your party of 2")
            && body.contains("you can bid again")
            && body.contains("The hold on your card is released"),
        "{body}"
    );
    for (token, id) in [(&durand, &single), (&petit, &part)] {
        let still = app
            .read(&format!("/v1/traveller/bids/{id}"))
            .key(token)
            .send()
            .await
            .expect(200);
        assert_eq!(still.body["status"], "active", "one seat is left: {id}");
    }

    // Nothing fits yet: bidding again is refused and changes nothing.
    let refused = app.bid(&martin, &lot, "400.00", GOOD).await.expect(409);
    assert_eq!(refused.problem_type(), "upgrade-unavailable");
    assert_eq!(app.stored_bid(&pair).await.status, "released");

    // Two more seats: Martin's bid is placed again and takes part in the award.
    capacity(&app, &op, &lot, 5).await;
    app.run_jobs().await;
    let again = app.bid(&martin, &lot, "400.00", GOOD).await.expect(201);
    assert_eq!(
        again.body["id"],
        pair.as_str(),
        "the same bid, in play again"
    );
    assert_eq!(again.body["status"], "active");
    assert_eq!(app.stored_bid(&pair).await.outcome_reason, None);
    app.close_now(&lot).await;
    app.run_jobs().await;
    let won = app
        .read(&format!("/v1/traveller/bids/{pair}"))
        .key(&martin)
        .send()
        .await
        .expect(200);
    assert_eq!(won.body["status"], "charged", "{}", won.text);
    assert_eq!(app.moved(&pair, "charge").await, 80000);
}

/// Fewer seats (a smaller aircraft), then a seat set aside for a status upgrade: each time the
/// parties that no longer fit are let go at once (several in one go, each told of its own
/// party), and the award leaves them as they are.
async fn a_lower_capacity_or_more_entitlements_release_the_parties_that_no_longer_fit(
    app: TestApp,
) {
    let op = app.operator("aurora").await;
    let lot = app.open_lot(&op, json!({"capacity": 6})).await;
    app.booking(&op, "PNR001", "Martin", 3, &[&lot]).await;
    app.booking(&op, "PNR002", "Durand", 2, &[&lot]).await;
    app.booking(&op, "PNR003", "Roy", 1, &[&lot]).await;
    let martin = app.sign_in("PNR001", "Martin").await;
    let durand = app.sign_in("PNR002", "Durand").await;
    let roy = app.sign_in("PNR003", "Roy").await;
    let trio = id_of(
        app.bid(&martin, &lot, "300.00", GOOD)
            .await
            .expect(201)
            .body,
    );
    let pair = id_of(
        app.bid(&durand, &lot, "250.00", GOOD)
            .await
            .expect(201)
            .body,
    );
    let single = id_of(app.bid(&roy, &lot, "200.00", GOOD).await.expect(201).body);

    capacity(&app, &op, &lot, 1).await;
    app.run_jobs().await;
    for id in [&trio, &pair] {
        let b = app.stored_bid(id).await;
        assert_eq!(b.status, "released", "{id}");
        assert_eq!(b.outcome_reason.as_deref(), Some("no_room_left"), "{id}");
    }
    assert_eq!(
        app.stored_bid(&single).await.status,
        "active",
        "one seat fits one"
    );

    app.patch(&format!("/v1/lots/{lot}"))
        .key(&op.key)
        .json(&json!({"entitlement_units": 1}))
        .send()
        .await
        .expect(200);
    app.run_jobs().await;
    assert_eq!(app.stored_bid(&single).await.status, "released");

    let told = app.emails_of(&op.key, "bid.lost").await;
    let bodies: Vec<&str> = told.iter().map(|m| m["body"].as_str().unwrap()).collect();
    assert_eq!(bodies.len(), 3, "{bodies:?}");
    for says in ["your party of 3", "your party of 2", "No upgrade is left"] {
        assert_eq!(
            bodies.iter().filter(|b| b.contains(says)).count(),
            1,
            "{says}: {bodies:?}"
        );
    }

    // The close weighs no released bid: nobody is told twice, nothing changes.
    app.close_now(&lot).await;
    app.run_jobs().await;
    for id in [&trio, &pair, &single] {
        let b = app.stored_bid(id).await;
        assert_eq!(b.status, "released", "{id}");
        assert_eq!(b.outcome_reason.as_deref(), Some("no_room_left"), "{id}");
    }
    assert_eq!(app.emails_of(&op.key, "bid.lost").await.len(), 3);
}

/// Placed again before its old hold was released and before the news went out: the bid stays
/// in play on its new hold, the old hold goes (the timeline says an earlier one), and the
/// email saying it could not win is not sent after the traveller bid again.
async fn a_bid_placed_again_before_its_release_ran_stays_in_play_on_its_new_hold(app: TestApp) {
    let op = app.operator("aurora").await;
    let lot = app.open_lot(&op, json!({"capacity": 2})).await;
    app.booking(&op, "PNR001", "Martin", 2, &[&lot]).await;
    let martin = app.sign_in("PNR001", "Martin").await;
    let pair = id_of(
        app.bid(&martin, &lot, "300.00", GOOD)
            .await
            .expect(201)
            .body,
    );
    let first_hold = app.stored_bid(&pair).await.payment_ref.expect("held");

    capacity(&app, &op, &lot, 1).await;
    let released = surclass::services::room::release_without_room(&app.db, &lot)
        .await
        .unwrap();
    assert_eq!(released, 1);
    capacity(&app, &op, &lot, 2).await;
    app.bid(&martin, &lot, "350.00", GOOD).await.expect(201);
    let second_hold = app.stored_bid(&pair).await.payment_ref.expect("held again");
    assert_ne!(second_hold, first_hold);
    app.run_jobs().await;

    let b = app.stored_bid(&pair).await;
    assert_eq!(b.status, "active");
    assert_eq!(b.payment_ref.as_deref(), Some(second_hold.as_str()));
    let held = app.gateway_holds_awaiting_capture().await;
    assert!(
        held.contains(&second_hold) && !held.contains(&first_hold),
        "{held:?}"
    );
    let seen = app
        .read(&format!("/v1/traveller/bids/{pair}"))
        .key(&martin)
        .send()
        .await
        .expect(200);
    assert!(
        seen.text
            .contains("An earlier hold on your card is released"),
        "{}",
        seen.text
    );
    let lost = app.emails_of(&op.key, "bid.lost").await;
    assert_eq!(lost.len(), 1, "{lost:?}");
    assert_eq!(lost[0]["status"], "suppressed", "{lost:?}");
}

/// Let go, placed again and let go again before either email went out: the traveller reads
/// the news once, the newer email, not the older one too.
async fn a_bid_let_go_twice_before_the_news_went_out_is_told_once(app: TestApp) {
    let op = app.operator("aurora").await;
    let lot = app.open_lot(&op, json!({"capacity": 2})).await;
    app.booking(&op, "PNR001", "Martin", 2, &[&lot]).await;
    let martin = app.sign_in("PNR001", "Martin").await;
    let pair = id_of(
        app.bid(&martin, &lot, "300.00", GOOD)
            .await
            .expect(201)
            .body,
    );
    let let_go = || async {
        capacity(&app, &op, &lot, 1).await;
        let released = surclass::services::room::release_without_room(&app.db, &lot)
            .await
            .unwrap();
        assert_eq!(released, 1);
    };

    let_go().await;
    capacity(&app, &op, &lot, 2).await;
    app.bid(&martin, &lot, "350.00", GOOD).await.expect(201);
    let_go().await;
    app.run_jobs().await;

    assert_eq!(app.stored_bid(&pair).await.status, "released");
    let mut statuses: Vec<String> = app
        .emails_of(&op.key, "bid.lost")
        .await
        .iter()
        .map(|m| m["status"].as_str().unwrap().to_owned())
        .collect();
    statuses.sort();
    assert_eq!(statuses, ["sent", "suppressed"]);
}

fn id_of(bid: serde_json::Value) -> String {
    bid["id"].as_str().expect("the bid's id").to_owned()
}

async fn capacity(app: &TestApp, op: &Operator, lot: &str, units: u32) {
    app.post(&format!("/v1/lots/{lot}/capacity"))
        .key(&op.key)
        .json(&json!({"capacity": units}))
        .send()
        .await
        .expect(200);
}

store_tests!(
    a_bid_whose_party_the_units_left_cannot_take_is_released_at_once,
    a_lower_capacity_or_more_entitlements_release_the_parties_that_no_longer_fit,
    a_bid_placed_again_before_its_release_ran_stays_in_play_on_its_new_hold,
    a_bid_let_go_twice_before_the_news_went_out_is_told_once,
);
