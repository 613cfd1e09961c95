//! The payments layer: one behaviour suite (`payments/suite.rs`) run on both gateways, then
//! what only one of them does.
//!
//! `cargo test --test payments`. The Stripe variants need `SURCLASS_TEST_STRIPE_URL` (a
//! localstripe started by `tests/support/localstripe/launcher.py`, as `.ci/run` does); without
//! it they print "skipped" and pass, except under `CI=true`.

#[path = "payments/harness.rs"]
mod harness;
#[path = "payments/suite.rs"]
mod suite;

use std::time::Duration;

use surclass::config::{Gateway, StripeSettings};
use surclass::payments::simulated::SimulatedGateway;
use surclass::payments::stripe::{StripeConfig, StripeGateway};
use surclass::payments::*;

use suite::*;

macro_rules! on_both_gateways {
    ($($case:ident),* $(,)?) => {
        mod simulated {
            $(
                #[tokio::test]
                async fn $case() {
                    let h = crate::harness::simulated().await;
                    crate::suite::$case(&h).await;
                }
            )*
        }
        mod stripe {
            $(
                #[tokio::test]
                async fn $case() {
                    let Some(h) = crate::harness::stripe().await else { return };
                    crate::suite::$case(&h).await;
                }
            )*
        }
    };
}

on_both_gateways!(
    hold_succeeds_and_captures_at_most_the_hold,
    amounts_are_minor_units_of_the_currency,
    a_declined_card_is_refused_at_bid_time,
    a_card_accepted_at_bid_time_can_be_declined_when_charged,
    a_hold_waiting_for_authentication_completes,
    a_card_saved_with_authentication_charges_off_session,
    a_released_hold_is_gone,
    open_holds_are_the_payments_still_holding_money,
    refunds_full_and_partial_up_to_what_was_taken,
    a_retried_call_has_one_effect,
    webhooks_are_verified_and_forgeries_refused,
    description_and_metadata_reach_the_provider,
);

// ---- simulated only -------------------------------------------------------------------

/// 0341 on a hold: accepted at bid time, declined at capture (Stripe declines it at
/// authorisation; the simulated gateway keeps this path reachable for the standby list).
#[tokio::test]
async fn simulated_hold_on_0341_is_declined_at_capture_every_time() {
    let h = harness::simulated().await;
    let bid = new_bid();
    let hold = authorized(&h, &bid, 5_000, "4000000000000341").await;
    let capture_key = key(&bid, PaymentStep::Capture);
    let first = h
        .gateway
        .capture(&hold.reference, 5_000, &capture_key)
        .await;
    let Err(PaymentError::Declined(decline)) = &first else {
        panic!("{first:?}")
    };
    assert_eq!(decline.reason, DeclineReason::Generic);
    assert_eq!(decline.reference.as_ref(), Some(&hold.reference));
    assert!(!first.as_ref().unwrap_err().is_retryable());
    let retry = h
        .gateway
        .capture(&hold.reference, 5_000, &capture_key)
        .await;
    assert_eq!(first, retry, "the decline is replayed, not re-attempted");
    assert!(matches!(
        h.gateway
            .payment_status(&hold.reference)
            .await
            .unwrap()
            .status,
        PaymentStatus::Failed { .. }
    ));
}

#[tokio::test]
async fn simulated_holds_survive_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("gateway.db").display());
    let bid = new_bid();
    let reference = {
        let db = surclass::store::connect(&url, 2).await.unwrap();
        surclass::store::migrate(&db).await.unwrap();
        let gateway = SimulatedGateway::new(db.clone());
        let outcome = gateway
            .authorize_hold(hold_request(&bid, 12_000, "4242424242424242"))
            .await
            .unwrap();
        db.close().await.unwrap();
        match outcome {
            HoldOutcome::Authorized(hold) => hold.reference,
            other => panic!("{other:?}"),
        }
    };
    let db = surclass::store::connect(&url, 2).await.unwrap();
    let gateway = SimulatedGateway::new(db);
    assert_eq!(
        gateway.payment_status(&reference).await.unwrap().status,
        PaymentStatus::Authorized {
            amount_capturable: 12_000
        }
    );
    // The key used before the restart still replays the first answer.
    let replay = gateway
        .authorize_hold(hold_request(&bid, 12_000, "4242424242424242"))
        .await
        .unwrap();
    assert!(matches!(replay, HoldOutcome::Authorized(h) if h.reference == reference));
    gateway
        .capture(&reference, 12_000, &key(&bid, PaymentStep::Capture))
        .await
        .unwrap();
}

#[tokio::test]
async fn simulated_cards_behave_like_stripe_test_cards() {
    let h = harness::simulated().await;
    let cases = [
        ("4000000000009995", DeclineReason::InsufficientFunds),
        ("4242424242424241", DeclineReason::IncorrectNumber),
    ];
    for (number, reason) in cases {
        let outcome = h
            .gateway
            .authorize_hold(hold_request(&new_bid(), 1_000, number))
            .await
            .unwrap();
        assert!(
            matches!(&outcome, HoldOutcome::Declined(d) if d.reason == reason),
            "{number}: {outcome:?}"
        );
    }
    let expired = h
        .gateway
        .authorize_hold(HoldRequest {
            card: CardSource::card("4242424242424242", 1, 2020, "123"),
            ..hold_request(&new_bid(), 1_000, "4242424242424242")
        })
        .await
        .unwrap();
    assert!(
        matches!(&expired, HoldOutcome::Declined(d) if d.reason == DeclineReason::ExpiredCard),
        "{expired:?}"
    );
    // Stripe's test payment methods and tokens.
    for (id, declined) in [("pm_card_visa", false), ("tok_chargeDeclined", true)] {
        let outcome = h
            .gateway
            .authorize_hold(HoldRequest {
                card: CardSource::payment_method(id),
                ..hold_request(&new_bid(), 1_000, "4242424242424242")
            })
            .await
            .unwrap();
        assert_eq!(
            matches!(outcome, HoldOutcome::Declined(_)),
            declined,
            "{id}"
        );
    }
    let unknown = h
        .gateway
        .authorize_hold(HoldRequest {
            card: CardSource::payment_method("pm_nope"),
            ..hold_request(&new_bid(), 1_000, "4242424242424242")
        })
        .await;
    assert!(
        matches!(unknown, Err(PaymentError::Invalid(_))),
        "{unknown:?}"
    );

    // 3184 asks for authentication again off-session: the traveller must come back.
    let bid = new_bid();
    let outcome = h
        .gateway
        .save_card_for_later(setup_request(&bid, "4000002760003184"))
        .await
        .unwrap();
    let SetupOutcome::RequiresAction(action) = outcome else {
        panic!("{outcome:?}")
    };
    h.gateway
        .complete_action(&action.client_secret, true)
        .await
        .unwrap();
    let IntentRef::Setup(setup) = action.intent else {
        panic!()
    };
    let SetupOutcome::Saved(card) = h.gateway.setup_status(&setup).await.unwrap() else {
        panic!()
    };
    let outcome = h
        .gateway
        .charge_saved_card(charge_request(&bid, 1_000, card))
        .await
        .unwrap();
    let ChargeOutcome::RequiresAction(action) = outcome else {
        panic!("{outcome:?}")
    };
    h.gateway
        .complete_action(&action.client_secret, true)
        .await
        .unwrap();
    let IntentRef::Payment(reference) = action.intent else {
        panic!()
    };
    assert_eq!(
        h.gateway.payment_status(&reference).await.unwrap().status,
        PaymentStatus::Succeeded {
            amount_received: 1_000
        }
    );
}

#[tokio::test]
async fn a_raised_bid_holds_the_new_amount_and_releases_the_old() {
    // The trait's default `reauthorize`, shared by both gateways; shown on the simulated one.
    let h = harness::simulated().await;
    let bid = new_bid();
    let old = authorized(&h, &bid, 10_000, "4242424242424242").await;
    let raised = HoldRequest {
        idempotency_key: IdempotencyKey::derive(&bid, PaymentStep::Reauthorize, 1),
        ..hold_request(&bid, 15_000, "4242424242424242")
    };
    let outcome = h
        .gateway
        .reauthorize(&old.reference, raised.clone())
        .await
        .unwrap();
    let HoldOutcome::Authorized(new) = &outcome else {
        panic!("{outcome:?}")
    };
    assert_eq!(new.amount_minor, 15_000);
    assert_eq!(
        h.gateway
            .payment_status(&old.reference)
            .await
            .unwrap()
            .status,
        PaymentStatus::Canceled
    );
    // Retried after a crash: same answer, nothing more.
    assert_eq!(
        h.gateway.reauthorize(&old.reference, raised).await.unwrap(),
        outcome
    );

    // A declined raise keeps the old hold.
    let bid = new_bid();
    let old = authorized(&h, &bid, 10_000, "4242424242424242").await;
    let outcome = h
        .gateway
        .reauthorize(
            &old.reference,
            HoldRequest {
                idempotency_key: IdempotencyKey::derive(&bid, PaymentStep::Reauthorize, 1),
                ..hold_request(&bid, 15_000, "4000000000000002")
            },
        )
        .await
        .unwrap();
    assert!(matches!(outcome, HoldOutcome::Declined(_)));
    assert!(matches!(
        h.gateway
            .payment_status(&old.reference)
            .await
            .unwrap()
            .status,
        PaymentStatus::Authorized { .. }
    ));
}

// ---- Stripe only ----------------------------------------------------------------------

#[tokio::test]
async fn stripe_sends_description_and_metadata_on_the_payment_intent() {
    // Read back raw from the emulator, past our own mapping.
    // (`description` kept by LAYER 4; `metadata` is localstripe's own.)
    let Some(h) = harness::stripe().await else {
        return;
    };
    let bid = new_bid();
    let mut request = hold_request(&bid, 2_000, "4242424242424242");
    request.description = "Upgrade LH 123: economy → business".into();
    let HoldOutcome::Authorized(hold) = h.gateway.authorize_hold(request).await.unwrap() else {
        panic!()
    };
    let intent: serde_json::Value = h
        .http
        .get(format!("{}v1/payment_intents/{}", h.base, hold.reference))
        .basic_auth(harness::SECRET_KEY, Some(""))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(intent["description"], "Upgrade LH 123: economy → business");
    assert_eq!(intent["metadata"]["bid_id"], bid.as_str());
    assert_eq!(intent["capture_method"], "manual");
}

#[tokio::test]
async fn stripe_errors_say_whether_to_retry() {
    let Some(h) = harness::stripe().await else {
        return;
    };
    // A key the provider refuses: configuration (the emulator wants `sk_…`).
    let bad_key = StripeGateway::new(StripeConfig {
        secret_key: "not_a_key".into(),
        api_base: Some(h.base.clone()),
        ..StripeConfig::default()
    })
    .unwrap();
    let error = bad_key
        .authorize_hold(hold_request(&new_bid(), 1_000, "4242424242424242"))
        .await
        .unwrap_err();
    assert_eq!(error.kind(), ErrorKind::Configuration, "{error}");

    // Nobody listening: transient, retry later with the same key.
    let nobody = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = nobody.local_addr().unwrap().port();
    drop(nobody);
    let unreachable = StripeGateway::new(StripeConfig {
        secret_key: harness::SECRET_KEY.into(),
        api_base: Some(format!("http://127.0.0.1:{port}/")),
        timeout: Duration::from_secs(2),
        ..StripeConfig::default()
    })
    .unwrap();
    let error = unreachable
        .payment_status(&PaymentRef::new("pi_123"))
        .await
        .unwrap_err();
    assert!(error.is_retryable(), "{error}");

    // An unknown payment: invalid, not retryable.
    let error = h
        .gateway
        .payment_status(&PaymentRef::new("pi_doesnotexist"))
        .await
        .unwrap_err();
    assert_eq!(error.kind(), ErrorKind::Invalid, "{error}");
}

// ---- configuration and keys -----------------------------------------------------------

#[test]
fn stripe_without_a_secret_key_is_a_one_line_start_up_error() {
    let settings = StripeSettings::default();
    assert!(settings.check(Gateway::Simulated).is_ok());
    let error = settings.check(Gateway::Stripe).unwrap_err();
    assert!(error.contains("STRIPE_SECRET_KEY"), "{error}");
    assert!(!error.contains('\n'));
    let settings = StripeSettings {
        stripe_secret_key: Some("sk_test_123".into()),
        ..StripeSettings::default()
    };
    assert!(settings.check(Gateway::Stripe).is_ok());
    assert!(StripeGateway::new(StripeConfig::default()).is_err());
}

#[test]
fn idempotency_keys_derive_from_bid_step_and_attempt() {
    let key = IdempotencyKey::derive("bid_8f2k", PaymentStep::Capture, 1);
    assert_eq!(key.as_str(), "surclass:bid_8f2k:capture:1");
    assert_eq!(
        key,
        IdempotencyKey::derive("bid_8f2k", PaymentStep::Capture, 1)
    );
    assert_ne!(
        key,
        IdempotencyKey::derive("bid_8f2k", PaymentStep::Capture, 2)
    );
    assert_ne!(
        key,
        IdempotencyKey::derive("bid_8f2k", PaymentStep::Refund, 1)
    );
    assert!(
        IdempotencyKey::derive(&"x".repeat(500), PaymentStep::Hold, 1)
            .as_str()
            .len()
            <= 200
    );
    assert!(IdempotencyKey::parse("").is_err());
    assert!(IdempotencyKey::parse("has space").is_err());
    assert_eq!(
        IdempotencyKey::parse(key.as_str()).unwrap(),
        key,
        "a stored key reads back"
    );
}

#[test]
fn card_numbers_never_show_in_debug_output() {
    let card = CardSource::card("4242 4242 4242 4242", 12, 2034, "123");
    let shown = format!("{:?}", hold_request("bid_x", 1, "4242424242424242"));
    assert!(!shown.contains("4242424242424242"), "{shown}");
    assert_eq!(format!("{card:?}"), "Card(**** 4242)");
}

// ---- Stripe webhooks offline ------------------------------------------------------------

/// A `payment_intent.succeeded` event as Stripe sends it (trimmed to the fields async-stripe
/// requires and those we read), verified by the Stripe gateway without any network.
#[test]
fn stripe_webhooks_are_verified_offline() {
    let secret = "whsec_offline";
    let gateway = StripeGateway::new(StripeConfig {
        secret_key: "sk_test_offline".into(),
        webhook_secret: Some(secret.into()),
        ..StripeConfig::default()
    })
    .unwrap();
    let body = include_str!("payments/fixtures/payment_intent_succeeded.json");
    let header = stripe_webhook::Webhook::generate_test_header(body, secret, None);
    let event = gateway.parse_webhook(body, &header).unwrap();
    assert_eq!(event.id, "evt_3QfixtureSucceeded");
    assert_eq!(event.event_type, "payment_intent.succeeded");
    let payment = event.payment.unwrap();
    assert_eq!(payment.reference, PaymentRef::new("pi_3QfixtureIntent"));
    assert_eq!((payment.amount_minor, payment.currency), (12_500, eur()));
    assert_eq!(
        payment.status,
        PaymentStatus::Succeeded {
            amount_received: 10_000
        }
    );
    assert_eq!(payment.metadata["bid_id"], "bid_fixture");

    // Our signer and Stripe's agree.
    let now = chrono::Utc::now().timestamp();
    assert_eq!(
        webhook::sign(body, secret, now),
        stripe_webhook::Webhook::generate_test_header(body, secret, Some(now))
    );

    let forged = body.replace("10000", "1");
    assert_eq!(
        gateway.parse_webhook(&forged, &header),
        Err(WebhookError::BadSignature)
    );
    let other_secret = stripe_webhook::Webhook::generate_test_header(body, "whsec_other", None);
    assert_eq!(
        gateway.parse_webhook(body, &other_secret),
        Err(WebhookError::BadSignature)
    );
    let replayed = stripe_webhook::Webhook::generate_test_header(body, secret, Some(now - 301));
    assert!(matches!(
        gateway.parse_webhook(body, &replayed),
        Err(WebhookError::Stale(_))
    ));
    let unconfigured = StripeGateway::new(StripeConfig {
        secret_key: "sk_test_offline".into(),
        ..StripeConfig::default()
    })
    .unwrap();
    assert_eq!(
        unconfigured.parse_webhook(body, &header),
        Err(WebhookError::NotConfigured)
    );
}

// ---- simulated gateway under concurrency, on both stores ---------------------------------

/// Payments of the simulated gateway kept in `db`'s own tables.
async fn gateway_payments_in(db: &surclass::store::Db) -> i64 {
    use sea_orm::{ConnectionTrait, Statement};
    db.query_one_raw(Statement::from_string(
        db.get_database_backend(),
        "SELECT COUNT(*) AS n FROM simulated_gateway_objects WHERE kind = 'payment'",
    ))
    .await
    .unwrap()
    .unwrap()
    .try_get::<i64>("", "n")
    .unwrap()
}

/// A migrated SQLite store, `surclass.db` in a directory of its own.
async fn sqlite_store() -> (tempfile::TempDir, surclass::store::Db) {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("surclass.db").display());
    let db = surclass::store::connect(&url, 2).await.unwrap();
    surclass::store::migrate(&db).await.unwrap();
    (dir, db)
}

fn held(outcome: HoldOutcome) -> PaymentRef {
    match outcome {
        HoldOutcome::Authorized(hold) => hold.reference,
        other => panic!("{other:?}"),
    }
}

/// A real provider's writes never wait for the store's write lock; the simulated one's must
/// not either: beside a SQLite store it keeps a file of its own, and keeps it across restarts.
#[tokio::test]
async fn beside_a_sqlite_store_the_simulated_gateway_keeps_a_file_of_its_own() {
    let (dir, db) = sqlite_store().await;
    let bid = new_bid();
    let gateway = SimulatedGateway::beside(&db).await.unwrap();
    let reference = held(
        gateway
            .authorize_hold(hold_request(&bid, 8_000, "4242424242424242"))
            .await
            .unwrap(),
    );
    assert!(dir.path().join("surclass-gateway.db").exists());
    assert_eq!(
        gateway_payments_in(&db).await,
        0,
        "nothing in the store's tables"
    );
    assert_eq!(gateway_payments_in(gateway.state()).await, 1);

    let again = SimulatedGateway::beside(&db).await.unwrap();
    assert_eq!(
        again.payment_status(&reference).await.unwrap().status,
        PaymentStatus::Authorized {
            amount_capturable: 8_000
        }
    );
}

/// A store from before the gateway's own file holds its holds in its own tables: they stay
/// there and can still be released.
#[tokio::test]
async fn a_store_already_keeping_gateway_state_keeps_it() {
    let (dir, db) = sqlite_store().await;
    let bid = new_bid();
    let reference = held(
        SimulatedGateway::new(db.clone())
            .authorize_hold(hold_request(&bid, 5_000, "4242424242424242"))
            .await
            .unwrap(),
    );
    let gateway = SimulatedGateway::beside(&db).await.unwrap();
    assert!(!dir.path().join("surclass-gateway.db").exists());
    gateway
        .release(
            &reference,
            &IdempotencyKey::derive(&bid, PaymentStep::Release, 1),
        )
        .await
        .unwrap();
    assert_eq!(
        gateway.payment_status(&reference).await.unwrap().status,
        PaymentStatus::Canceled
    );
}

/// Beside a store in memory there is no file to put one next to: the store's own tables.
#[tokio::test]
async fn beside_a_store_in_memory_the_gateway_uses_its_tables() {
    let db = surclass::store::connect("sqlite::memory:", 1)
        .await
        .unwrap();
    surclass::store::migrate(&db).await.unwrap();
    let gateway = SimulatedGateway::beside(&db).await.unwrap();
    gateway
        .authorize_hold(hold_request(&new_bid(), 3_000, "4242424242424242"))
        .await
        .unwrap();
    assert_eq!(gateway_payments_in(&db).await, 1);
}

/// Eight copies of one request at once (a retry storm after a time-out), then two captures
/// of one hold under different keys: one hold, one capture. Runs on SQLite (one writer at a
/// time) and, where `SURCLASS_TEST_DATABASE_URL` is set, on PostgreSQL (row locks and the
/// unique idempotency key do the work).
async fn concurrent_requests_have_one_effect(db: surclass::store::Db) {
    use sea_orm::{ConnectionTrait, Statement};

    surclass::store::migrate(&db).await.unwrap();
    let gateway = std::sync::Arc::new(SimulatedGateway::new(db.clone()));
    let bid = new_bid();
    let request = hold_request(&bid, 9_900, "4242424242424242");
    let tasks: Vec<_> = (0..8)
        .map(|_| {
            let gateway = gateway.clone();
            let request = request.clone();
            tokio::spawn(async move { gateway.authorize_hold(request).await })
        })
        .collect();
    let mut outcomes = Vec::new();
    for task in tasks {
        // Holds are batched: a copy that lands in another batch than the first is answered
        // with the first one's hold, not refused as "in progress".
        outcomes.push(task.await.unwrap().expect("every copy is answered"));
    }
    let settled = gateway.authorize_hold(request).await.unwrap();
    assert!(outcomes.iter().all(|o| *o == settled), "{outcomes:?}");
    let count = db
        .query_one_raw(Statement::from_string(
            db.get_database_backend(),
            format!(
                "SELECT COUNT(*) AS n FROM simulated_gateway_objects \
                 WHERE kind = 'payment' AND body LIKE '%{bid}%'"
            ),
        ))
        .await
        .unwrap()
        .unwrap()
        .try_get::<i64>("", "n")
        .unwrap();
    assert_eq!(count, 1, "one hold for eight identical requests");

    let HoldOutcome::Authorized(hold) = settled else {
        panic!("{settled:?}")
    };
    let captures: Vec<_> = (1..=2)
        .map(|attempt| {
            let gateway = gateway.clone();
            let reference = hold.reference.clone();
            let key = IdempotencyKey::derive(&bid, PaymentStep::Capture, attempt);
            tokio::spawn(async move { gateway.capture(&reference, 9_900, &key).await })
        })
        .collect();
    let mut captured = 0;
    for capture in captures {
        match capture.await.unwrap() {
            Ok(_) => captured += 1,
            Err(error) => assert!(
                matches!(error, PaymentError::Invalid(_) | PaymentError::Transient(_)),
                "{error}"
            ),
        }
    }
    assert_eq!(captured, 1, "one capture of one hold");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn simulated_concurrent_requests_have_one_effect_on_sqlite() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("gateway.db").display());
    concurrent_requests_have_one_effect(surclass::store::connect(&url, 4).await.unwrap()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn simulated_concurrent_requests_have_one_effect_on_postgres() {
    use sea_orm::ConnectionTrait;

    let admin = match std::env::var("SURCLASS_TEST_DATABASE_URL") {
        Ok(url) if !url.is_empty() => url,
        _ => {
            assert!(
                std::env::var("CI").map_or(true, |v| v != "true"),
                "SURCLASS_TEST_DATABASE_URL is not set under CI=true"
            );
            eprintln!("skipped: simulated gateway on PostgreSQL (set SURCLASS_TEST_DATABASE_URL)");
            return;
        }
    };
    let name = format!("surclass_pay_{}", uuid::Uuid::new_v4().simple());
    let server = sea_orm::Database::connect(&admin).await.unwrap();
    server
        .execute_unprepared(&format!("CREATE DATABASE {name}"))
        .await
        .unwrap();
    let (base, _) = admin
        .rsplit_once('/')
        .expect("a database URL ends with /NAME");
    let db = surclass::store::connect(&format!("{base}/{name}"), 8)
        .await
        .unwrap();
    concurrent_requests_have_one_effect(db.clone()).await;
    db.close().await.unwrap();
    server
        .execute_unprepared(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
        .await
        .unwrap();
}

/// In the server every HTTP worker has a runtime of its own, and a worker can stop (restarted
/// after a crash, or at shutdown) while the process goes on. Holds asked for from such a
/// worker must not take the gateway's hold batching down with it: the next traveller's hold,
/// asked for from anywhere else, is still granted.
#[tokio::test]
async fn holds_are_still_granted_after_the_runtime_of_the_first_one_has_stopped() {
    let (_dir, db) = sqlite_store().await;
    let gateway = std::sync::Arc::new(SimulatedGateway::beside(&db).await.unwrap());

    let worker = gateway.clone();
    let first = hold_request(&new_bid(), 9_900, "4242424242424242");
    let first = tokio::task::spawn_blocking(move || {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        // The runtime is dropped, with every task still on it, when this closure returns.
        runtime.block_on(async move { worker.authorize_hold(first).await })
    })
    .await
    .unwrap();
    held(first.unwrap());

    let next = gateway
        .authorize_hold(hold_request(&new_bid(), 9_900, "4242424242424242"))
        .await;
    assert!(
        matches!(next, Ok(HoldOutcome::Authorized(_))),
        "a later hold is refused: {next:?}"
    );
}
