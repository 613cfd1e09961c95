//! Where webhook deliveries may go, with the real `surclass` program and its real
//! environment: a proxy named by `HTTP_PROXY` would resolve the receiver's name itself, past
//! the check that keeps deliveries off the server's own network, so webhooks never use one.

#[path = "support/processes.rs"]
mod processes;

use std::net::TcpListener;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use surclass::store;

use processes::{Server, free_port, operator_key};

/// A listener on loopback that counts the connections made to it.
fn trap() -> (String, Arc<AtomicUsize>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let address = format!("http://{}", listener.local_addr().unwrap());
    let calls = Arc::new(AtomicUsize::new(0));
    let counted = calls.clone();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            counted.fetch_add(1, Ordering::SeqCst);
            drop(stream);
        }
    });
    (address, calls)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn webhooks_ignore_a_proxy_in_the_environment() {
    let (proxy, calls) = trap();
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("surclass.db").display());
    let env = [
        ("HTTP_PROXY", proxy.as_str()),
        ("http_proxy", proxy.as_str()),
        ("HTTPS_PROXY", proxy.as_str()),
        ("https_proxy", proxy.as_str()),
        ("ALL_PROXY", proxy.as_str()),
        ("all_proxy", proxy.as_str()),
        ("NO_PROXY", ""),
        ("no_proxy", ""),
    ];
    let server = Server::start_with_env(&url, free_port(), &env);
    server.ready().await;
    let db = store::connect(&url, 2).await.unwrap();
    let key = operator_key(&db, "aurora").await;
    let base = &server.base;
    let http = reqwest::Client::new();
    let post = |path: &str, body: Value| {
        http.post(format!("{base}{path}"))
            .bearer_auth(&key)
            .json(&body)
            .send()
    };

    // `.example` names never resolve: a delivery made directly fails at the name; one made
    // through the proxy would reach the trap.
    let endpoint: Value = post(
        "/v1/webhook-endpoints",
        json!({"url": "http://hooks.partner.example/surclass", "events": ["bid.placed"]}),
    )
    .await
    .unwrap()
    .json()
    .await
    .unwrap();
    let endpoint = endpoint["id"]
        .as_str()
        .expect("endpoint created")
        .to_owned();
    let closes_at = chrono::Utc::now() + chrono::Duration::hours(2);
    let lot: Value = post(
        "/v1/lots",
        json!({"resource_kind": "seat", "resource": "AU1", "service_date": "2026-12-24",
            "from_class": "economy", "to_class": "business", "capacity": 2, "currency": "EUR",
            "reserve": "100.00", "maximum": "900.00", "closes_at": closes_at.to_rfc3339(), "open": true}),
    )
    .await
    .unwrap()
    .json()
    .await
    .unwrap();
    let lot = lot["id"].as_str().expect("lot created").to_owned();
    let imported = post(
        "/v1/bookings/import",
        json!([{"reference": "PRX001", "last_name": "Martin", "party_size": 1, "eligible_lots": [lot]}]),
    )
    .await
    .unwrap();
    assert!(imported.status().is_success());
    let session: Value = http
        .post(format!("{base}/v1/traveller/sessions"))
        .json(&json!({"reference": "PRX001", "last_name": "Martin"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let placed = http
        .post(format!("{base}/v1/traveller/bids"))
        .bearer_auth(session["token"].as_str().unwrap())
        .json(&json!({"lot_id": lot, "amount": "150.00",
            "card": {"number": "4242424242424242", "exp_month": 12, "exp_year": 2030, "cvc": "123"}}))
        .send()
        .await
        .unwrap();
    assert_eq!(placed.status(), 201);

    // The delivery is attempted (and fails: the name does not resolve) ...
    let deadline = Instant::now() + Duration::from_secs(60);
    let attempt = loop {
        let deliveries: Value = http
            .get(format!("{base}/v1/webhook-endpoints/{endpoint}/deliveries"))
            .bearer_auth(&key)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        if let Some(first) = deliveries["items"][0]["attempts"][0].as_object() {
            break first.clone();
        }
        assert!(
            Instant::now() < deadline,
            "no delivery attempt: {deliveries}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert!(attempt["status_code"].is_null(), "{attempt:?}");
    // ... and never through the proxy.
    assert_eq!(calls.load(Ordering::SeqCst), 0, "the proxy was called");
}
