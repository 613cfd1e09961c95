//! `Idempotency-Key`: a retry gets the stored answer and changes nothing.

use serde_json::json;

use crate::store_tests;
use crate::support::{TestApp, timeline_kinds, travel_day};

async fn a_retried_create_replays_the_answer_and_creates_one_lot(app: TestApp) {
    let op = app.operator("aurora").await;
    let body = json!({
        "resource_kind": "seat", "resource": "AU101", "service_date": travel_day(),
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

/// A stored answer may carry what should not stay (here a new key's secret): it is kept a
/// day, then forgotten by the hourly purge, and the payment provider's event ids stay.
async fn a_stored_answer_is_forgotten_after_a_day(app: TestApp) {
    use sea_orm::EntityTrait;
    use surclass::store::entities::idempotency_key;
    use surclass::store::idempotency::{PAYMENT_EVENTS, forget_old};
    let op = app.operator("aurora").await;
    let created = app
        .post("/v1/api-keys")
        .key(&op.key)
        .idempotency_key("new-key")
        .json(&json!({"name": "booking engine", "scope": "partner"}))
        .send()
        .await
        .expect(201);
    let secret = created.body["secret"].as_str().unwrap().to_owned();
    let stored = |at: chrono::DateTime<chrono::Utc>, principal: &str, key: &str| {
        use sea_orm::ActiveModelTrait;
        idempotency_key::ActiveModel {
            principal: sea_orm::Set(principal.to_owned()),
            key: sea_orm::Set(key.to_owned()),
            request_hash: sea_orm::Set("payment_intent.succeeded".to_owned()),
            response_status: sea_orm::Set(200),
            response_content_type: sea_orm::Set(String::new()),
            response_body: sea_orm::Set(String::new()),
            created_at: sea_orm::Set(at),
        }
        .insert(&app.db)
    };
    let long_ago = chrono::Utc::now() - chrono::Duration::days(3);
    stored(long_ago, PAYMENT_EVENTS, "evt_old").await.unwrap();
    let now = chrono::Utc::now();

    assert_eq!(forget_old(&app.db, now).await.unwrap(), 0, "within the day");
    let replayed = app
        .post("/v1/api-keys")
        .key(&op.key)
        .idempotency_key("new-key")
        .json(&json!({"name": "booking engine", "scope": "partner"}))
        .send()
        .await
        .expect(201);
    assert_eq!(replayed.header("idempotent-replayed"), Some("true"));

    let day_later = now + chrono::Duration::hours(25);
    assert_eq!(forget_old(&app.db, day_later).await.unwrap(), 1);
    let rows = idempotency_key::Entity::find().all(&app.db).await.unwrap();
    assert!(
        rows.iter().all(|r| !r.response_body.contains(&secret)),
        "the secret is no longer stored: {rows:#?}"
    );
    assert_eq!(rows.len(), 1, "{rows:#?}");
    assert_eq!(rows[0].key, "evt_old", "the provider's event ids stay");
}

/// A stored answer does not go again to a credential withdrawn since: a key revoked, or a
/// traveller whose booking was erased, gets 401, not the answer.
async fn a_revoked_key_gets_no_stored_answer(app: TestApp) {
    let op = app.operator("aurora").await;
    let second = app
        .post("/v1/api-keys")
        .key(&op.key)
        .json(&json!({"name": "revenue team", "scope": "operator"}))
        .send()
        .await
        .expect(201);
    let (second_id, second_key) = (
        second.body["id"].as_str().unwrap().to_owned(),
        second.body["secret"].as_str().unwrap().to_owned(),
    );
    let create = || {
        app.post("/v1/api-keys")
            .key(&second_key)
            .idempotency_key("partner-key")
            .json(&json!({"name": "booking engine", "scope": "partner"}))
            .send()
    };
    create().await.expect(201);
    let replayed = create().await.expect(201);
    assert_eq!(replayed.header("idempotent-replayed"), Some("true"));
    app.delete(&format!("/v1/api-keys/{second_id}"))
        .key(&op.key)
        .send()
        .await
        .expect(200);
    let refused = create().await.expect(401);
    assert!(refused.body.get("secret").is_none(), "{:#}", refused.body);

    let lot = app.open_lot(&op, json!({})).await;
    app.booking(&op, "PNR001", "Martin", 1, &[&lot]).await;
    let token = app.sign_in("PNR001", "Martin").await;
    let erase = || {
        app.post("/v1/traveller/erasure")
            .key(&token)
            .idempotency_key("erase-me")
            .send()
    };
    erase().await.expect(200);
    erase().await.expect(401);

    // A credential merely unknown or expired is not withdrawn: a sign-in retried with an old
    // token still attached gets its answer again, as the route would take it.
    let sign_in = || {
        app.post("/v1/traveller/sessions")
            .key("v1.bkg_gone.1.c3RhbGU")
            .idempotency_key("sign-in")
            .json(&json!({"reference": "PNR002", "last_name": "Dubois"}))
            .send()
    };
    app.booking(&op, "PNR002", "Dubois", 1, &[&lot]).await;
    let first = sign_in().await.expect(201);
    let again = sign_in().await.expect(201);
    assert_eq!(again.header("idempotent-replayed"), Some("true"));
    assert_eq!(again.body, first.body);
}

store_tests!(
    a_revoked_key_gets_no_stored_answer,
    a_retried_create_replays_the_answer_and_creates_one_lot,
    a_retried_bid_change_is_applied_once,
    a_stored_answer_is_forgotten_after_a_day,
);
