//! Where webhook deliveries may go, with the real `surclass` program and its real
//! environment: a proxy named by `HTTP_PROXY` would resolve the receiver's name itself, past
//! the check that keeps deliveries off the server's own network, so webhooks never use one.

#[path = "support/processes.rs"]
mod processes;

use std::net::TcpListener;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use serde_json::json;
use surclass::store;

use processes::{
    GOOD_CARD, Server, create, free_port, get_json, import_bookings, operator_key, seat_lot,
    sign_in_and_bid,
};

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

    // `.example` names never resolve: a delivery made directly fails at the name; one made
    // through the proxy would reach the trap.
    let endpoint = create(
        &http,
        base,
        &key,
        "/v1/webhook-endpoints",
        &json!({"url": "http://hooks.partner.example/surclass", "events": ["bid.placed"]}),
    )
    .await;
    let closes_at = chrono::Utc::now() + chrono::Duration::hours(2);
    let lot = create(
        &http,
        base,
        &key,
        "/v1/lots",
        &seat_lot("AU1", 2, closes_at),
    )
    .await;
    import_bookings(&http, base, &key, &lot, &[("PRX001".to_owned(), 1)]).await;
    sign_in_and_bid(&http, base, "PRX001", &lot, "150.00", GOOD_CARD).await;

    // The delivery is attempted (and fails: the name does not resolve) ...
    let deliveries_url = format!("{base}/v1/webhook-endpoints/{endpoint}/deliveries");
    let deadline = Instant::now() + Duration::from_secs(60);
    let attempt = loop {
        let deliveries = get_json(&http, &deliveries_url, &key).await;
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
