//! Abuse gets a clear answer instead of tying the service up: bodies over the limit get 413,
//! clients that send too slowly get 408, and a flood of sign-ins from one address gets 429
//! with Retry-After (the address read from `X-Forwarded-For` only behind a trusted proxy); every answer the application writes is problem+json.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use crate::support::{Store, TestApp, spawn_app_with};

/// The server with a one-second client timeout and two sign-ins per minute per address.
async fn strict(store: Store) -> Option<TestApp> {
    spawn_app_with(store, |s| {
        s.limits.client_timeout = 1;
        s.limits.sign_ins_per_minute = 2;
    })
    .await
}

/// Writes `parts` to a raw connection, pausing `pause` before each after the first, and returns
/// everything the server answers until it closes the connection.
fn raw_exchange(port: u16, parts: Vec<Vec<u8>>, pause: Duration) -> String {
    let mut conn = TcpStream::connect(("127.0.0.1", port)).expect("connects");
    conn.set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    for (i, part) in parts.iter().enumerate() {
        if i > 0 {
            std::thread::sleep(pause);
        }
        // The server may already have answered and closed: what it said is what matters.
        if conn.write_all(part).is_err() {
            break;
        }
    }
    let mut answer = Vec::new();
    let _ = conn.read_to_end(&mut answer);
    String::from_utf8_lossy(&answer).into_owned()
}

fn status_line(answer: &str) -> &str {
    answer.lines().next().unwrap_or_default()
}

fn body_of(answer: &str) -> serde_json::Value {
    let body = answer
        .split_once("\r\n\r\n")
        .map(|(_, b)| b)
        .unwrap_or_default();
    serde_json::from_str(body).unwrap_or(serde_json::Value::Null)
}

async fn on_a_thread<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
    tokio::task::spawn_blocking(f).await.expect("client thread")
}

async fn a_body_declared_over_the_limit_is_refused_before_it_is_sent(store: Store) {
    let Some(app) = strict(store).await else {
        return;
    };
    let port = app.port;
    let answer = on_a_thread(move || {
        let head = "POST /v1/traveller/sessions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 9000000\r\n\r\n";
        raw_exchange(port, vec![head.as_bytes().to_vec()], Duration::ZERO)
    })
    .await;
    assert!(status_line(&answer).contains(" 413 "), "{answer}");
    assert!(answer.contains("application/problem+json"), "{answer}");
    assert_eq!(
        body_of(&answer)["type"],
        "https://surclass.dev/problems/payload-too-large"
    );
}

async fn a_streamed_body_is_cut_off_at_the_limit_on_any_route_and_content_type(store: Store) {
    let Some(app) = strict(store).await else {
        return;
    };
    let port = app.port;
    // Chunked, so no length is declared: the server counts, whatever the route expects.
    let answer = on_a_thread(move || {
        let head = b"POST /v1/webhooks/payments HTTP/1.1\r\nHost: x\r\nContent-Type: text/plain\r\nTransfer-Encoding: chunked\r\n\r\n".to_vec();
        let chunk = {
            let data = vec![b'a'; 1 << 20];
            let mut c = format!("{:x}\r\n", data.len()).into_bytes();
            c.extend_from_slice(&data);
            c.extend_from_slice(b"\r\n");
            c
        };
        let mut parts = vec![head];
        parts.extend(std::iter::repeat_n(chunk, 10));
        parts.push(b"0\r\n\r\n".to_vec());
        raw_exchange(port, parts, Duration::ZERO)
    })
    .await;
    assert!(
        status_line(&answer).contains(" 413 "),
        "{}",
        status_line(&answer)
    );
    assert_eq!(
        body_of(&answer)["type"],
        "https://surclass.dev/problems/payload-too-large"
    );
}

async fn a_body_within_the_limit_still_reaches_the_route(store: Store) {
    let Some(app) = strict(store).await else {
        return;
    };
    // A JSON body read by the limit layer is handed on whole: the route answers it.
    let reply = app
        .post("/v1/traveller/sessions")
        .json(&serde_json::json!({"reference": "NOSUCH", "last_name": "Nobody"}))
        .send()
        .await
        .expect(401);
    assert_eq!(reply.problem_type(), "booking-not-found");
}

async fn a_client_sending_its_body_too_slowly_gets_408(store: Store) {
    let Some(app) = strict(store).await else {
        return;
    };
    let port = app.port;
    let answer = on_a_thread(move || {
        let head = b"POST /v1/traveller/sessions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 60\r\n\r\n{\"reference\":".to_vec();
        // The rest comes after the timeout (1 s here), too late.
        raw_exchange(port, vec![head, b"\"AU7K2P\"".to_vec()], Duration::from_secs(3))
    })
    .await;
    assert!(status_line(&answer).contains(" 408 "), "{answer}");
    assert_eq!(
        body_of(&answer)["type"],
        "https://surclass.dev/problems/request-timeout"
    );
}

async fn a_client_sending_its_headers_too_slowly_gets_408(store: Store) {
    let Some(app) = strict(store).await else {
        return;
    };
    let port = app.port;
    let answer = on_a_thread(move || {
        let parts = vec![
            b"GET /healthz HTTP/1.1\r\n".to_vec(),
            b"Host: x\r\n\r\n".to_vec(),
        ];
        raw_exchange(port, parts, Duration::from_secs(3))
    })
    .await;
    assert!(status_line(&answer).contains(" 408 "), "{answer}");
}

/// An operator `slug` with an open lot and the booking FLD001 / Moreau on it: what the
/// sign-in floods below aim at.
async fn flood_target(app: &TestApp, slug: &str) {
    let op = app.operator(slug).await;
    let lot = app.open_lot(&op, serde_json::json!({})).await;
    app.booking(&op, "FLD001", "Moreau", 1, &[&lot]).await;
}

async fn a_flood_of_sign_ins_from_one_address_gets_429_with_retry_after(store: Store) {
    let Some(app) = strict(store).await else {
        return;
    };
    flood_target(&app, "flood").await;
    // Right answers count as much as wrong ones: each costs a lookup.
    app.sign_in("FLD001", "Moreau").await;
    app.sign_in("FLD001", "Moreau").await;
    let reply = app
        .post("/v1/traveller/sessions")
        .json(&serde_json::json!({"reference": "FLD001", "last_name": "Moreau"}))
        .send()
        .await
        .expect(429);
    assert_eq!(
        reply.header("content-type"),
        Some("application/problem+json")
    );
    assert_eq!(reply.problem_type(), "rate-limited");
    let wait: u64 = reply
        .header("retry-after")
        .expect("Retry-After")
        .parse()
        .unwrap();
    assert!((1..=60).contains(&wait), "{wait}");
}

/// Signs in as FLD001 / Moreau with `X-Forwarded-For: from`; answers the status.
async fn sign_in_forwarded_for(app: &TestApp, from: &str) -> u16 {
    app.post("/v1/traveller/sessions")
        .header("X-Forwarded-For", from)
        .json(&serde_json::json!({"reference": "FLD001", "last_name": "Moreau"}))
        .send()
        .await
        .status
}

async fn behind_a_trusted_proxy_each_traveller_has_their_own_sign_in_allowance(store: Store) {
    let Some(app) = spawn_app_with(store, |s| {
        s.limits.sign_ins_per_minute = 2;
        s.limits.trusted_proxies = vec!["127.0.0.0/8".parse().unwrap()];
    })
    .await
    else {
        return;
    };
    flood_target(&app, "proxied").await;
    // Every request comes from the proxy on 127.0.0.1; the header says who sent it.
    assert_eq!(sign_in_forwarded_for(&app, "203.0.113.7").await, 201);
    assert_eq!(sign_in_forwarded_for(&app, "203.0.113.7").await, 201);
    assert_eq!(sign_in_forwarded_for(&app, "203.0.113.7").await, 429);
    // Another traveller behind the same proxy is not held up by the first one's flood.
    assert_eq!(sign_in_forwarded_for(&app, "203.0.113.8").await, 201);
}

async fn a_client_cannot_dodge_the_sign_in_limit_with_x_forwarded_for(store: Store) {
    let Some(app) = strict(store).await else {
        return;
    };
    flood_target(&app, "dodger").await;
    // No proxy is trusted: the header is the client's own claim and changes nothing.
    assert_eq!(sign_in_forwarded_for(&app, "203.0.113.1").await, 201);
    assert_eq!(sign_in_forwarded_for(&app, "203.0.113.2").await, 201);
    assert_eq!(sign_in_forwarded_for(&app, "203.0.113.3").await, 429);
}

macro_rules! both_stores {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::$name(crate::support::Store::Sqlite).await;
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::$name(crate::support::Store::Postgres).await;
                }
            )*
        }
    };
}

both_stores!(
    a_body_declared_over_the_limit_is_refused_before_it_is_sent,
    a_streamed_body_is_cut_off_at_the_limit_on_any_route_and_content_type,
    a_body_within_the_limit_still_reaches_the_route,
    a_client_sending_its_body_too_slowly_gets_408,
    a_client_sending_its_headers_too_slowly_gets_408,
    a_flood_of_sign_ins_from_one_address_gets_429_with_retry_after,
    behind_a_trusted_proxy_each_traveller_has_their_own_sign_in_allowance,
    a_client_cannot_dodge_the_sign_in_limit_with_x_forwarded_for,
);
