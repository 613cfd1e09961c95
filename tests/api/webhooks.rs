//! The payment provider's webhook: signed events are applied once; forged or stale ones are
//! refused and change nothing.

use serde_json::json;
use surclass::payments::webhook::sign;

use crate::support::{Store, spawn_app_with};

const SECRET: &str = "whsec_test_surclass";

#[tokio::test]
async fn signed_events_are_applied_once_and_forged_ones_are_refused() {
    let app = spawn_app_with(Store::Sqlite, |s| {
        s.stripe.stripe_webhook_secret = Some(SECRET.into())
    })
    .await
    .unwrap();
    let event = json!({
        "id": "evt_test_1", "type": "payment_intent.succeeded", "created": chrono::Utc::now().timestamp(),
        "data": {"object": {"reference": "simpi_unknown", "amount_minor": 1000, "currency": "EUR",
            "status": {"status": "succeeded", "amount_received": 1000}, "metadata": {}}}
    })
    .to_string();
    let now = chrono::Utc::now().timestamp();
    let send = |body: String, signature: String| {
        let client = app.client.clone();
        let url = format!("{}/v1/webhooks/payments", app.address);
        async move {
            let res = client
                .post(url)
                .header("content-type", "application/json")
                .header("stripe-signature", signature)
                .body(body)
                .send()
                .await
                .unwrap();
            (
                res.status().as_u16(),
                res.json::<serde_json::Value>().await.unwrap_or_default(),
            )
        }
    };
    let (status, ack) = send(event.clone(), sign(&event, SECRET, now)).await;
    assert_eq!(status, 200, "{ack}");
    assert_eq!(ack["applied"], true);
    let (status, again) = send(event.clone(), sign(&event, SECRET, now)).await;
    assert_eq!(status, 200);
    assert_eq!(
        again["applied"], false,
        "a redelivery is acknowledged, not applied twice"
    );

    let (status, forged) = send(event.clone(), sign(&event, "whsec_wrong", now)).await;
    assert_eq!(status, 400);
    assert_eq!(
        forged["type"],
        "https://surclass.dev/problems/webhook-rejected"
    );
    let (status, _) = send(event.clone(), sign(&event, SECRET, now - 3600)).await;
    assert_eq!(status, 400, "an old signature is a replay");
    let (status, _) = send(event.clone(), String::new()).await;
    assert_eq!(status, 400);
}
