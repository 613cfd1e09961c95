//! Operators import bookings in bulk: all or nothing, idempotent by reference.

use sea_orm::{EntityTrait, PaginatorTrait};
use serde_json::json;
use surclass::store::entities::booking;

use crate::store_tests;
use crate::support::TestApp;

async fn bookings_import_in_bulk_and_a_reimport_updates_in_place(app: TestApp) {
    let op = app.operator("aurora").await;
    let lot = app.open_lot(&op, json!({})).await;
    let rows: Vec<_> = (0..2000)
        .map(|i| json!({"reference": format!("PNR{i:05}"), "last_name": "Martin", "party_size": 1 + i % 4,
            "email": "t@example.com", "language": if i % 2 == 0 { "fr" } else { "en" }, "eligible_lots": [lot]}))
        .collect();
    let first = app
        .post("/v1/bookings/import")
        .key(&op.key)
        .json(&json!(rows))
        .send()
        .await
        .expect(200);
    assert_eq!(first.body["created"], 2000);

    let again = app
        .post("/v1/bookings/import")
        .key(&op.key)
        .json(&json!(rows))
        .send()
        .await
        .expect(200);
    assert_eq!(again.body["created"], 0);
    assert_eq!(again.body["unchanged"], 2000);

    let changed = app
        .post("/v1/bookings/import")
        .key(&op.key)
        .json(&json!([{"reference": "PNR00001", "last_name": "Martin", "party_size": 3, "eligible_lots": [lot]}]))
        .send()
        .await
        .expect(200);
    assert_eq!(changed.body["updated"], 1);
    assert_eq!(booking::Entity::find().count(&app.db).await.unwrap(), 2000);

    // The imported booking can sign in and sees its party size.
    app.sign_in("pnr00001", "MARTIN").await;
}

async fn one_bad_row_imports_nothing_and_names_the_row_and_field(app: TestApp) {
    let op = app.operator("aurora").await;
    let other = app.operator("belvedere").await;
    let foreign_lot = app.open_lot(&other, json!({})).await;
    let reply = app
        .post("/v1/bookings/import")
        .key(&op.key)
        .json(&json!([
            {"reference": "PNR1", "last_name": "Martin", "party_size": 1},
            {"reference": "PNR2", "last_name": "", "party_size": 1},
            {"reference": "PNR3", "last_name": "Roy", "party_size": 12},
            {"reference": "PNR4", "last_name": "Roy", "party_size": 1, "language": "xx"},
            {"reference": "PNR5", "last_name": "Roy", "party_size": 1, "eligible_lots": [foreign_lot]},
            {"reference": "PNR6", "last_name": "Roy", "party_size": 1, "email": "not-an-email"}
        ]))
        .send()
        .await
        .expect(422);
    let fields = reply.problem_fields();
    for f in [
        "[1].last_name",
        "[2].party_size",
        "[3].language",
        "[4].eligible_lots",
        "[5].email",
    ] {
        assert!(fields.iter().any(|x| x.contains(f)), "{f} in {fields:?}");
    }
    assert_eq!(
        booking::Entity::find().count(&app.db).await.unwrap(),
        0,
        "nothing imported"
    );
}

async fn an_import_over_ten_thousand_rows_is_refused(app: TestApp) {
    let op = app.operator("aurora").await;
    let rows: Vec<_> = (0..10_001)
        .map(|i| json!({"reference": format!("P{i}"), "last_name": "M", "party_size": 1}))
        .collect();
    let reply = app
        .post("/v1/bookings/import")
        .key(&op.key)
        .json(&json!(rows))
        .send()
        .await;
    assert!(
        reply.status == 422 || reply.status == 413,
        "{}",
        reply.status
    );
    assert!(
        reply.body["detail"]
            .as_str()
            .unwrap_or_default()
            .contains("10000")
            || reply.body["detail"]
                .as_str()
                .unwrap_or_default()
                .contains("10,000"),
        "{}",
        reply.text
    );
    assert_eq!(booking::Entity::find().count(&app.db).await.unwrap(), 0);
}

store_tests!(
    bookings_import_in_bulk_and_a_reimport_updates_in_place,
    one_bad_row_imports_nothing_and_names_the_row_and_field,
    an_import_over_ten_thousand_rows_is_refused,
    a_party_does_not_change_size_under_an_offer_in_play,
);

/// A bid holds the card for its party and the award upgrades that party whole: a re-import
/// that changes the party's size while the offer is in play is refused, naming the row and
/// the lot, and changes nothing; once the offer is withdrawn it goes through.
async fn a_party_does_not_change_size_under_an_offer_in_play(app: TestApp) {
    let op = app.operator("aurora").await;
    let lot = app.open_lot(&op, json!({})).await;
    app.booking(&op, "PNR001", "Martin", 2, &[&lot]).await;
    let traveller = app.sign_in("PNR001", "Martin").await;
    let bid = app
        .bid(&traveller, &lot, "300.00", "pm_card_visa")
        .await
        .expect(201);
    let resize = |party: u32| {
        json!([
            {"reference": "PNR002", "last_name": "Roy", "party_size": 1},
            {"reference": "PNR001", "last_name": "Martin", "party_size": party,
             "email": "new@example.com", "eligible_lots": [lot]}
        ])
    };
    let refused = app
        .post("/v1/bookings/import")
        .key(&op.key)
        .json(&resize(3))
        .send()
        .await
        .expect(422);
    assert_eq!(refused.problem_fields(), vec!["bookings[1].party_size"]);
    assert!(refused.text.contains(&lot), "{}", refused.text);
    assert_eq!(
        booking::Entity::find().count(&app.db).await.unwrap(),
        1,
        "nothing imported"
    );
    let mine = app
        .read("/v1/traveller/offers")
        .key(&traveller)
        .send()
        .await
        .expect(200);
    assert_eq!(mine.body["booking"]["party_size"], 2);

    app.delete(&format!(
        "/v1/traveller/bids/{}",
        bid.body["id"].as_str().unwrap()
    ))
    .key(&traveller)
    .send()
    .await
    .expect(200);
    let done = app
        .post("/v1/bookings/import")
        .key(&op.key)
        .json(&resize(3))
        .send()
        .await
        .expect(200);
    assert_eq!(done.body["updated"], 1);
    assert_eq!(done.body["created"], 1);
}
