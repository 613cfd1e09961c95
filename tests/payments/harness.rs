//! The two gateways behind one test interface, and what each needs to play the traveller
//! (3-D Secure) and the provider (webhook delivery).
//!
//! Stripe runs against `localstripe` started by `tests/support/localstripe/launcher.py` (with
//! its compatibility layer, see README.md there) at `SURCLASS_TEST_STRIPE_URL`. Unset: the
//! Stripe variant says so and passes, except under `CI=true`, where it fails.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use surclass::payments::simulated::SimulatedGateway;
use surclass::payments::stripe::{StripeConfig, StripeGateway};
use surclass::payments::{IntentRef, PaymentGateway, PaymentRef, PendingAction};

pub const WEBHOOK_SECRET: &str = "whsec_surclass_tests";
/// The emulator accepts any `sk_…` secret key and any `pk_…` publishable key.
pub const SECRET_KEY: &str = "sk_test_surclass";
const PUBLISHABLE_KEY: &str = "pk_test_surclass";

#[async_trait]
pub trait Harness: Send + Sync {
    fn gateway(&self) -> &dyn PaymentGateway;

    /// The traveller finishes 3-D Secure (`approve`) or fails it.
    async fn complete_action(&self, action: &PendingAction, approve: bool);

    /// A `payment_intent.*` event about `reference` as a webhook delivery carries it:
    /// (raw body, `Stripe-Signature` header).
    async fn delivered_event(&self, reference: &PaymentRef, event_type: &str) -> (String, String);
}

pub struct Simulated {
    pub gateway: SimulatedGateway,
}

pub async fn simulated() -> Simulated {
    Simulated {
        gateway: SimulatedGateway::in_memory()
            .await
            .expect("in-memory simulated gateway")
            .with_webhook_secret(WEBHOOK_SECRET),
    }
}

#[async_trait]
impl Harness for Simulated {
    fn gateway(&self) -> &dyn PaymentGateway {
        &self.gateway
    }

    async fn complete_action(&self, action: &PendingAction, approve: bool) {
        self.gateway
            .complete_action(&action.client_secret, approve)
            .await
            .expect("simulated authentication");
    }

    async fn delivered_event(&self, reference: &PaymentRef, event_type: &str) -> (String, String) {
        self.gateway
            .signed_event(reference, event_type)
            .await
            .expect("simulated event")
    }
}

pub struct Stripe {
    pub gateway: StripeGateway,
    pub base: String,
    pub http: reqwest::Client,
}

/// The Stripe harness, or `None` (after saying so) when no emulator is configured.
pub async fn stripe() -> Option<Stripe> {
    let base = match std::env::var("SURCLASS_TEST_STRIPE_URL") {
        Ok(url) if !url.trim().is_empty() => {
            let url = url.trim().to_owned();
            if url.ends_with('/') {
                url
            } else {
                format!("{url}/")
            }
        }
        _ => {
            if std::env::var("CI").is_ok_and(|v| v == "true") {
                panic!(
                    "SURCLASS_TEST_STRIPE_URL is not set under CI=true: start the Stripe \
                     emulator (tests/support/localstripe/launcher.py), as .ci/run does"
                );
            }
            let mut err = std::io::stderr();
            let _ = writeln!(
                err,
                "skipped: Stripe gateway test (set SURCLASS_TEST_STRIPE_URL to a localstripe \
                 started by tests/support/localstripe/launcher.py)"
            );
            return None;
        }
    };
    let gateway = StripeGateway::new(StripeConfig {
        secret_key: SECRET_KEY.into(),
        api_base: Some(base.clone()),
        webhook_secret: Some(WEBHOOK_SECRET.into()),
        timeout: Duration::from_secs(15),
    })
    .expect("Stripe gateway");
    let http = reqwest::Client::new();
    // Every test process registers its receiver under the same id, replacing older ones.
    let receiver = webhook_receiver();
    let response = http
        .post(format!("{base}_config/webhooks/surclass-tests"))
        .form(&[("url", receiver.url.as_str()), ("secret", WEBHOOK_SECRET)])
        .send()
        .await
        .unwrap_or_else(|e| panic!("the Stripe emulator at {base} answers: {e}"));
    assert!(
        response.status().is_success(),
        "webhook registration: {response:?}"
    );
    Some(Stripe {
        gateway,
        base,
        http,
    })
}

#[async_trait]
impl Harness for Stripe {
    fn gateway(&self) -> &dyn PaymentGateway {
        &self.gateway
    }

    async fn complete_action(&self, action: &PendingAction, approve: bool) {
        // Emulator-only endpoints playing the browser (Stripe.js) and the bank.
        let success = if approve { "true" } else { "false" };
        let (url, form): (String, Vec<(&str, &str)>) = match &action.intent {
            IntentRef::Payment(reference) => (
                format!("{}v1/payment_intents/{reference}/_authenticate", self.base),
                vec![
                    ("key", PUBLISHABLE_KEY),
                    ("client_secret", &action.client_secret),
                    ("success", success),
                ],
            ),
            IntentRef::Setup(reference) => (
                // localstripe's Stripe.js confirms the SetupIntent again once 3-D Secure passed;
                // a failed authentication leaves it canceled.
                format!(
                    "{}v1/setup_intents/{reference}/{}",
                    self.base,
                    if approve { "confirm" } else { "cancel" }
                ),
                vec![
                    ("key", PUBLISHABLE_KEY),
                    ("client_secret", &action.client_secret),
                ],
            ),
        };
        let response = self
            .http
            .post(&url)
            .form(&form)
            .send()
            .await
            .expect("emulator");
        assert!(
            response.status().is_success(),
            "{url}: {}",
            response.text().await.unwrap_or_default()
        );
    }

    async fn delivered_event(&self, reference: &PaymentRef, event_type: &str) -> (String, String) {
        // localstripe posts events about a second after they happen.
        let receiver = webhook_receiver();
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Some(found) = receiver.find(reference.as_str(), event_type) {
                return found;
            }
            assert!(
                Instant::now() < deadline,
                "no {event_type} webhook about {reference} within 20 s"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

/// A plain HTTP listener on a thread of its own (test runtimes come and go) collecting the
/// emulator's webhook deliveries.
pub struct WebhookReceiver {
    pub url: String,
    deliveries: Arc<Mutex<Vec<(String, String)>>>,
}

impl WebhookReceiver {
    fn find(&self, reference: &str, event_type: &str) -> Option<(String, String)> {
        let deliveries = self.deliveries.lock().unwrap();
        deliveries
            .iter()
            .find(|(body, _)| {
                serde_json::from_str::<serde_json::Value>(body).is_ok_and(|event| {
                    event["type"] == event_type && event["data"]["object"]["id"] == reference
                })
            })
            .cloned()
    }
}

pub fn webhook_receiver() -> &'static WebhookReceiver {
    static RECEIVER: OnceLock<WebhookReceiver> = OnceLock::new();
    RECEIVER.get_or_init(|| {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind the webhook receiver");
        let url = format!("http://{}/webhooks/stripe", listener.local_addr().unwrap());
        let deliveries = Arc::new(Mutex::new(Vec::new()));
        let sink = deliveries.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let _ = stream.set_read_timeout(Some(Duration::from_secs(5)));
                let mut reader = BufReader::new(&stream);
                let mut signature = String::new();
                let mut length = 0usize;
                let mut line = String::new();
                loop {
                    line.clear();
                    if reader.read_line(&mut line).unwrap_or(0) == 0 {
                        break;
                    }
                    let header = line.trim_end();
                    if header.is_empty() {
                        break;
                    }
                    if let Some((name, value)) = header.split_once(':') {
                        match name.trim().to_ascii_lowercase().as_str() {
                            "stripe-signature" => signature = value.trim().to_owned(),
                            "content-length" => length = value.trim().parse().unwrap_or(0),
                            _ => {}
                        }
                    }
                }
                let mut body = vec![0; length];
                if reader.read_exact(&mut body).is_ok() {
                    sink.lock()
                        .unwrap()
                        .push((String::from_utf8_lossy(&body).into_owned(), signature));
                }
                let _ = (&stream).write_all(
                    b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\nconnection: close\r\n\r\n",
                );
            }
        });
        WebhookReceiver { url, deliveries }
    })
}
