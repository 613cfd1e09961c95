//! `Idempotency-Key`: a retry gets the stored answer and changes nothing.

use serde_json::json;

use crate::store_tests;
use crate::support::{TestApp, timeline_kinds};

async fn a_retried_create_replays_the_answer_and_creates_one_lot(app: TestApp) {
    let op = app.operator("aurora").await;
    let body = json!({
        "resource_kind": "seat", "resource": "AU101", "service_date": "2026-12-24",
        "from_class": "economy", "to_class": "business", "capacity": 4, "currency": "EUR",
        "reserve": "100.00", "maximum": "900.00",
        "closes_at": (chrono::Utc::now() + chrono::Duration::hours(2)).to_rfc3339()
    });
    let first = app
        .post("/v1/lots")
        .key(&op.key)
        .idempotency_key("create-au101")
        .json(&body)
        .send()
        .await
        .expect(201);
    let retry = app
        .post("/v1/lots")
        .key(&op.key)
        .idempotency_key("create-au101")
        .json(&body)
        .send()
        .await
        .expect(201);
    assert_eq!(first.body, retry.body);
    assert_eq!(retry.header("idempotent-replayed"), Some("true"));
    let list = app.read("/v1/lots").key(&op.key).send().await.expect(200);
    assert_eq!(list.body["items"].as_array().unwrap().len(), 1);

    let mut other = body.clone();
    other["capacity"] = json!(9);
    let reused = app
        .post("/v1/lots")
        .key(&op.key)
        .idempotency_key("create-au101")
        .json(&other)
        .send()
        .await
        .expect(422);
    assert_eq!(reused.problem_type(), "idempotency-key-reused");
    assert_eq!(reused.body["field"], "Idempotency-Key");
}

async fn a_retried_bid_change_is_applied_once(app: TestApp) {
    let op = app.operator("aurora").await;
    let lot = app.open_lot(&op, json!({})).await;
    app.booking(&op, "PNR001", "Martin", 1, &[&lot]).await;
    let token = app.sign_in("PNR001", "Martin").await;
    let bid = app
        .post("/v1/traveller/bids")
        .key(&token)
        .idempotency_key("bid-1")
        .json(&json!({"lot_id": lot, "amount": "150.00", "payment_method": "pm_card_visa"}))
        .send()
        .await
        .expect(201);
    // The network dropped the answer; the phone retries the same request.
    let retry = app
        .post("/v1/traveller/bids")
        .key(&token)
        .idempotency_key("bid-1")
        .json(&json!({"lot_id": lot, "amount": "150.00", "payment_method": "pm_card_visa"}))
        .send()
        .await
        .expect(201);
    assert_eq!(bid.body["id"], retry.body["id"]);
    let id = bid.body["id"].as_str().unwrap();
    for _ in 0..2 {
        app.patch(&format!("/v1/traveller/bids/{id}"))
            .key(&token)
            .idempotency_key("raise-1")
            .json(&json!({"amount": "200.00"}))
            .send()
            .await
            .expect(200);
    }
    let seen = app
        .read(&format!("/v1/traveller/bids/{id}"))
        .key(&token)
        .send()
        .await
        .expect(200);
    let kinds = timeline_kinds(&seen.body);
    assert_eq!(
        kinds,
        ["placed", "hold_placed", "raised", "hold_placed"],
        "each change recorded once"
    );

    // Errors are replayed too: a refused request stays refused and still changes nothing.
    for _ in 0..2 {
        app.patch(&format!("/v1/traveller/bids/{id}"))
            .key(&token)
            .idempotency_key("raise-too-high")
            .json(&json!({"amount": "99999.00"}))
            .send()
            .await
            .expect(422);
    }
}

store_tests!(
    a_retried_create_replays_the_answer_and_creates_one_lot,
    a_retried_bid_change_is_applied_once
);
