//! The behaviour every gateway must have, run on the simulated gateway and on Stripe.
//!
//! On Stripe (localstripe), a few checks hold only thanks to the compatibility layer in
//! `tests/support/localstripe/launcher.py`; each says so with `LAYER n` (its README lists
//! them). Everything else is the emulator's own behaviour seen through async-stripe.

use std::collections::BTreeMap;

use surclass::money::Currency;
use surclass::payments::*;

use crate::harness::Harness;

pub fn eur() -> Currency {
    Currency::parse("EUR").unwrap()
}

/// A bid id of its own per test: the emulator may outlive a test run, and keys must not clash.
pub fn new_bid() -> String {
    format!("bid_{}", uuid::Uuid::new_v4().simple())
}

pub fn key(bid: &str, step: PaymentStep) -> IdempotencyKey {
    IdempotencyKey::derive(bid, step, 1)
}

pub fn card(number: &str) -> CardSource {
    CardSource::card(number, 12, 2034, "123")
}

pub fn hold_request(bid: &str, amount_minor: i64, number: &str) -> HoldRequest {
    HoldRequest {
        idempotency_key: key(bid, PaymentStep::Hold),
        amount_minor,
        currency: eur(),
        card: card(number),
        customer_ref: Some("bkg_test".into()),
        description: format!("Surclass upgrade, bid {bid}"),
        metadata: BTreeMap::from([("bid_id".to_owned(), bid.to_owned())]),
    }
}

pub fn setup_request(bid: &str, number: &str) -> SetupRequest {
    SetupRequest {
        idempotency_key: key(bid, PaymentStep::SaveCard),
        card: card(number),
        customer_ref: "bkg_test".into(),
        provider_customer: None,
        description: format!("Card saved for an upgrade charged on award, bid {bid}"),
        metadata: BTreeMap::from([("bid_id".to_owned(), bid.to_owned())]),
    }
}

pub fn charge_request(bid: &str, amount_minor: i64, card: SavedCard) -> ChargeRequest {
    ChargeRequest {
        idempotency_key: key(bid, PaymentStep::Charge),
        amount_minor,
        currency: eur(),
        card,
        description: format!("Surclass upgrade won, bid {bid}"),
        metadata: BTreeMap::from([("bid_id".to_owned(), bid.to_owned())]),
    }
}

pub async fn authorized(h: &dyn Harness, bid: &str, amount: i64, number: &str) -> Authorization {
    match h
        .gateway()
        .authorize_hold(hold_request(bid, amount, number))
        .await
    {
        Ok(HoldOutcome::Authorized(a)) => a,
        other => panic!("expected a hold on {number}, got {other:?}"),
    }
}

pub async fn saved(h: &dyn Harness, bid: &str, number: &str) -> SavedCard {
    match h
        .gateway()
        .save_card_for_later(setup_request(bid, number))
        .await
    {
        Ok(SetupOutcome::Saved(card)) => card,
        other => panic!("expected {number} saved, got {other:?}"),
    }
}

pub async fn charged(h: &dyn Harness, bid: &str, amount: i64, number: &str) -> Charge {
    let card = saved(h, bid, number).await;
    match h
        .gateway()
        .charge_saved_card(charge_request(bid, amount, card))
        .await
    {
        Ok(ChargeOutcome::Charged(charge)) => charge,
        other => panic!("expected a charge on {number}, got {other:?}"),
    }
}

async fn status(h: &dyn Harness, reference: &PaymentRef) -> PaymentStatus {
    h.gateway().payment_status(reference).await.unwrap().status
}

pub async fn hold_succeeds_and_captures_at_most_the_hold(h: &dyn Harness) {
    let bid = new_bid();
    let hold = authorized(h, &bid, 12_500, "4242 4242 4242 4242").await;
    assert_eq!((hold.amount_minor, hold.currency), (12_500, eur()));
    assert_eq!(hold.card.last4.as_deref(), Some("4242"));
    assert_eq!(
        status(h, &hold.reference).await,
        PaymentStatus::Authorized {
            amount_capturable: 12_500
        }
    );

    let too_much = h
        .gateway()
        .capture(&hold.reference, 12_501, &key(&bid, PaymentStep::Capture))
        .await;
    assert!(
        matches!(too_much, Err(PaymentError::Invalid(_))),
        "{too_much:?}"
    );

    // A capture below the hold takes exactly that and releases the rest
    // (on Stripe: LAYER 5; localstripe would refund the difference instead).
    let capture = h
        .gateway()
        .capture(
            &hold.reference,
            10_000,
            &IdempotencyKey::derive(&bid, PaymentStep::Capture, 2),
        )
        .await
        .unwrap();
    assert_eq!(capture.amount_minor, 10_000);
    assert_eq!(
        status(h, &hold.reference).await,
        PaymentStatus::Succeeded {
            amount_received: 10_000
        }
    );
    let again = h
        .gateway()
        .capture(
            &hold.reference,
            10_000,
            &IdempotencyKey::derive(&bid, PaymentStep::Capture, 3),
        )
        .await;
    assert!(matches!(again, Err(PaymentError::Invalid(_))), "{again:?}");
}

pub async fn amounts_are_minor_units_of_the_currency(h: &dyn Harness) {
    let bid = new_bid();
    let jpy = Currency::parse("JPY").unwrap();
    let outcome = h
        .gateway()
        .authorize_hold(HoldRequest {
            currency: jpy,
            ..hold_request(&bid, 9_000, "4242424242424242")
        })
        .await
        .unwrap();
    let HoldOutcome::Authorized(hold) = outcome else {
        panic!("{outcome:?}")
    };
    assert_eq!((hold.amount_minor, hold.currency), (9_000, jpy));
    let state = h.gateway().payment_status(&hold.reference).await.unwrap();
    assert_eq!((state.amount_minor, state.currency), (9_000, jpy));

    let zero = h
        .gateway()
        .authorize_hold(hold_request(&new_bid(), 0, "4242424242424242"))
        .await;
    assert!(matches!(zero, Err(PaymentError::Invalid(_))), "{zero:?}");
}

pub async fn a_declined_card_is_refused_at_bid_time(h: &dyn Harness) {
    // On Stripe: 4000 0000 0000 0002 declined on a hold is LAYER 2 (localstripe declines it only
    // when attached to a customer), and the decline's shape (card_error, decline_code) LAYER 1.
    let outcome = h
        .gateway()
        .authorize_hold(hold_request(&new_bid(), 5_000, "4000000000000002"))
        .await
        .unwrap();
    let HoldOutcome::Declined(decline) = outcome else {
        panic!("{outcome:?}")
    };
    assert_eq!(decline.reason, DeclineReason::Generic);
    assert_eq!(decline.message, DeclineReason::Generic.traveller_message());
    assert!(decline.provider_code.is_some());

    // Saving the card for a charge on award is refused too (localstripe's own behaviour).
    let outcome = h
        .gateway()
        .save_card_for_later(setup_request(&new_bid(), "4000000000000002"))
        .await
        .unwrap();
    assert!(
        matches!(&outcome, SetupOutcome::Declined(d) if d.reason == DeclineReason::Generic),
        "{outcome:?}"
    );
}

pub async fn a_card_accepted_at_bid_time_can_be_declined_when_charged(h: &dyn Harness) {
    // On Stripe: saving 0341 and declining its charge is localstripe's own behaviour; the
    // decline's shape is LAYER 1.
    let bid = new_bid();
    let card = saved(h, &bid, "4000000000000341").await;
    assert_eq!(card.card.last4.as_deref(), Some("0341"));
    let outcome = h
        .gateway()
        .charge_saved_card(charge_request(&bid, 7_000, card))
        .await
        .unwrap();
    let ChargeOutcome::Declined(decline) = outcome else {
        panic!("{outcome:?}")
    };
    assert_eq!(decline.reason, DeclineReason::Generic);
    assert!(!decline.message.is_empty());
}

pub async fn a_hold_waiting_for_authentication_completes(h: &dyn Harness) {
    let bid = new_bid();
    let outcome = h
        .gateway()
        .authorize_hold(hold_request(&bid, 20_000, "4000002500003155"))
        .await
        .unwrap();
    let HoldOutcome::RequiresAction(action) = outcome else {
        panic!("{outcome:?}")
    };
    let IntentRef::Payment(reference) = action.intent.clone() else {
        panic!("{action:?}")
    };
    assert!(!action.client_secret.is_empty());
    assert!(matches!(
        status(h, &reference).await,
        PaymentStatus::RequiresAction { .. }
    ));
    // A capture before the traveller authenticated is refused (on Stripe: LAYER 5; localstripe
    // fails with a 500 there).
    let early = h
        .gateway()
        .capture(&reference, 20_000, &key(&bid, PaymentStep::Capture))
        .await;
    assert!(matches!(early, Err(PaymentError::Invalid(_))), "{early:?}");

    h.complete_action(&action, true).await;
    assert_eq!(
        status(h, &reference).await,
        PaymentStatus::Authorized {
            amount_capturable: 20_000
        }
    );
    let capture = h
        .gateway()
        .capture(
            &reference,
            20_000,
            &IdempotencyKey::derive(&bid, PaymentStep::Capture, 2),
        )
        .await
        .unwrap();
    assert_eq!(capture.amount_minor, 20_000);

    // A failed authentication holds nothing; the payment can be released.
    let bid = new_bid();
    let outcome = h
        .gateway()
        .authorize_hold(hold_request(&bid, 20_000, "4000002500003155"))
        .await
        .unwrap();
    let HoldOutcome::RequiresAction(action) = outcome else {
        panic!("{outcome:?}")
    };
    let IntentRef::Payment(reference) = action.intent.clone() else {
        panic!("{action:?}")
    };
    h.complete_action(&action, false).await;
    assert!(
        matches!(status(h, &reference).await, PaymentStatus::Failed { .. }),
        "{:?}",
        status(h, &reference).await
    );
    h.gateway()
        .release(&reference, &key(&bid, PaymentStep::Release))
        .await
        .unwrap();
}

pub async fn a_card_saved_with_authentication_charges_off_session(h: &dyn Harness) {
    // On Stripe: charging the saved 3155 card without a new authentication is LAYER 6.
    let bid = new_bid();
    let outcome = h
        .gateway()
        .save_card_for_later(setup_request(&bid, "4000002500003155"))
        .await
        .unwrap();
    let SetupOutcome::RequiresAction(action) = outcome else {
        panic!("{outcome:?}")
    };
    let IntentRef::Setup(setup) = action.intent.clone() else {
        panic!("{action:?}")
    };
    h.complete_action(&action, true).await;
    let SetupOutcome::Saved(card) = h.gateway().setup_status(&setup).await.unwrap() else {
        panic!("not saved after authentication")
    };
    assert_eq!(card.setup, setup);
    let outcome = h
        .gateway()
        .charge_saved_card(charge_request(&bid, 15_000, card))
        .await
        .unwrap();
    let ChargeOutcome::Charged(charge) = outcome else {
        panic!("{outcome:?}")
    };
    assert_eq!(charge.amount_minor, 15_000);
    assert_eq!(
        status(h, &charge.reference).await,
        PaymentStatus::Succeeded {
            amount_received: 15_000
        }
    );
}

pub async fn a_released_hold_is_gone(h: &dyn Harness) {
    let bid = new_bid();
    let hold = authorized(h, &bid, 8_000, "4242424242424242").await;
    h.gateway()
        .release(&hold.reference, &key(&bid, PaymentStep::Release))
        .await
        .unwrap();
    assert_eq!(status(h, &hold.reference).await, PaymentStatus::Canceled);
    // Releasing again, even under a new key, is fine.
    h.gateway()
        .release(
            &hold.reference,
            &IdempotencyKey::derive(&bid, PaymentStep::Release, 2),
        )
        .await
        .unwrap();
    // Capturing it is not (on Stripe: LAYER 5; localstripe would capture a canceled intent).
    let capture = h
        .gateway()
        .capture(&hold.reference, 8_000, &key(&bid, PaymentStep::Capture))
        .await;
    assert!(
        matches!(capture, Err(PaymentError::Invalid(_))),
        "{capture:?}"
    );

    // A captured payment is refunded, not released.
    let bid = new_bid();
    let hold = authorized(h, &bid, 8_000, "4242424242424242").await;
    h.gateway()
        .capture(&hold.reference, 8_000, &key(&bid, PaymentStep::Capture))
        .await
        .unwrap();
    let release = h
        .gateway()
        .release(&hold.reference, &key(&bid, PaymentStep::Release))
        .await;
    assert!(
        matches!(release, Err(PaymentError::Invalid(_))),
        "{release:?}"
    );
}

/// Reconcile finds holds no record names by asking the provider what it holds now.
pub async fn open_holds_are_the_payments_still_holding_money(h: &dyn Harness) {
    let since = chrono::Utc::now() - chrono::Duration::minutes(1);
    let (held, captured, released) = (new_bid(), new_bid(), new_bid());
    let hold = authorized(h, &held, 6_500, "4242424242424242").await;
    let taken = authorized(h, &captured, 7_000, "4242424242424242").await;
    h.gateway()
        .capture(
            &taken.reference,
            7_000,
            &key(&captured, PaymentStep::Capture),
        )
        .await
        .unwrap();
    let gone = authorized(h, &released, 7_500, "4242424242424242").await;
    h.gateway()
        .release(&gone.reference, &key(&released, PaymentStep::Release))
        .await
        .unwrap();

    let open = h.gateway().open_holds(since).await.unwrap();
    let listed = |reference: &PaymentRef| open.iter().find(|o| &o.state.reference == reference);
    let mine = listed(&hold.reference).expect("a hold is listed");
    assert_eq!(mine.state.amount_minor, 6_500);
    assert_eq!(
        mine.state.status,
        PaymentStatus::Authorized {
            amount_capturable: 6_500
        }
    );
    assert_eq!(mine.state.metadata.get("bid_id"), Some(&held));
    assert!(mine.created_at >= since - chrono::Duration::seconds(1));
    assert!(listed(&taken.reference).is_none(), "captured: nothing held");
    assert!(listed(&gone.reference).is_none(), "released: nothing held");
    assert!(
        open.windows(2).all(|w| w[0].created_at >= w[1].created_at),
        "newest first (on Stripe: LAYER 8)"
    );

    // Holds taken before `since` are not asked for.
    let later = h
        .gateway()
        .open_holds(chrono::Utc::now() + chrono::Duration::minutes(1))
        .await
        .unwrap();
    assert!(later.iter().all(|o| o.state.reference != hold.reference));
}

pub async fn refunds_full_and_partial_up_to_what_was_taken(h: &dyn Harness) {
    // Partial refunds of an off-session charge.
    let bid = new_bid();
    let charge = charged(h, &bid, 10_000, "4242424242424242").await;
    let first = h
        .gateway()
        .refund(&charge.reference, 2_500, &key(&bid, PaymentStep::Refund))
        .await
        .unwrap();
    assert_eq!(
        (first.amount_minor, &first.payment),
        (2_500, &charge.reference)
    );
    let second = h
        .gateway()
        .refund(
            &charge.reference,
            7_500,
            &IdempotencyKey::derive(&bid, PaymentStep::Refund, 2),
        )
        .await
        .unwrap();
    assert_eq!(second.amount_minor, 7_500);
    assert_ne!(first.reference, second.reference);
    // Nothing left (on Stripe: LAYER 5; localstripe refunds without limit).
    let over = h
        .gateway()
        .refund(
            &charge.reference,
            1,
            &IdempotencyKey::derive(&bid, PaymentStep::Refund, 3),
        )
        .await;
    assert!(matches!(over, Err(PaymentError::Invalid(_))), "{over:?}");

    // A full refund of a captured hold: the amount captured, not the amount held.
    let bid = new_bid();
    let hold = authorized(h, &bid, 9_000, "4242424242424242").await;
    h.gateway()
        .capture(&hold.reference, 8_000, &key(&bid, PaymentStep::Capture))
        .await
        .unwrap();
    let over = h
        .gateway()
        .refund(&hold.reference, 9_000, &key(&bid, PaymentStep::Refund))
        .await;
    assert!(matches!(over, Err(PaymentError::Invalid(_))), "{over:?}");
    let full = h
        .gateway()
        .refund(
            &hold.reference,
            8_000,
            &IdempotencyKey::derive(&bid, PaymentStep::Refund, 2),
        )
        .await
        .unwrap();
    assert_eq!(full.amount_minor, 8_000);

    // A hold that was never captured has nothing to refund.
    let bid = new_bid();
    let hold = authorized(h, &bid, 9_000, "4242424242424242").await;
    let refund = h
        .gateway()
        .refund(&hold.reference, 9_000, &key(&bid, PaymentStep::Refund))
        .await;
    assert!(
        matches!(refund, Err(PaymentError::Invalid(_))),
        "{refund:?}"
    );
}

pub async fn a_retried_call_has_one_effect(h: &dyn Harness) {
    // On Stripe every replay below is LAYER 7: localstripe itself ignores Idempotency-Key.
    let bid = new_bid();
    let request = hold_request(&bid, 6_000, "4242424242424242");
    let first = h.gateway().authorize_hold(request.clone()).await.unwrap();
    let second = h.gateway().authorize_hold(request.clone()).await.unwrap();
    assert_eq!(first, second, "the same key gives the same hold");
    let HoldOutcome::Authorized(hold) = first else {
        panic!("{first:?}")
    };

    // The same key with other parameters is refused, not acted on.
    let changed = h
        .gateway()
        .authorize_hold(HoldRequest {
            amount_minor: 6_500,
            ..request
        })
        .await;
    assert!(
        matches!(changed, Err(PaymentError::Invalid(_))),
        "{changed:?}"
    );

    // A retried capture captures once.
    let capture_key = key(&bid, PaymentStep::Capture);
    let once = h
        .gateway()
        .capture(&hold.reference, 6_000, &capture_key)
        .await
        .unwrap();
    let twice = h
        .gateway()
        .capture(&hold.reference, 6_000, &capture_key)
        .await
        .unwrap();
    assert_eq!(once, twice);

    // A retried refund refunds once: the rest can still be refunded afterwards.
    let refund_key = key(&bid, PaymentStep::Refund);
    let once = h
        .gateway()
        .refund(&hold.reference, 4_000, &refund_key)
        .await
        .unwrap();
    let twice = h
        .gateway()
        .refund(&hold.reference, 4_000, &refund_key)
        .await
        .unwrap();
    assert_eq!(once, twice);
    h.gateway()
        .refund(
            &hold.reference,
            2_000,
            &IdempotencyKey::derive(&bid, PaymentStep::Refund, 2),
        )
        .await
        .expect("2,000 of 6,000 left after one refund of 4,000");

    // A retried off-session charge charges once, and a replayed decline stays a decline.
    let bid = new_bid();
    let card = saved(h, &bid, "4242424242424242").await;
    let request = charge_request(&bid, 3_000, card);
    let once = h
        .gateway()
        .charge_saved_card(request.clone())
        .await
        .unwrap();
    let twice = h.gateway().charge_saved_card(request).await.unwrap();
    assert_eq!(once, twice);

    let request = hold_request(&new_bid(), 3_000, "4000000000000002");
    let once = h.gateway().authorize_hold(request.clone()).await.unwrap();
    let twice = h.gateway().authorize_hold(request).await.unwrap();
    assert!(matches!(once, HoldOutcome::Declined(_)), "{once:?}");
    assert_eq!(once, twice);
}

pub async fn webhooks_are_verified_and_forgeries_refused(h: &dyn Harness) {
    // On Stripe: localstripe delivers the event to our receiver with a real signature; that
    // async-stripe can read it at all is LAYER 3 (events lack `pending_webhooks`).
    let bid = new_bid();
    let charge = charged(h, &bid, 4_200, "4242424242424242").await;
    let (body, header) = h
        .delivered_event(&charge.reference, "payment_intent.succeeded")
        .await;
    let event = h.gateway().parse_webhook(&body, &header).unwrap();
    assert_eq!(event.event_type, "payment_intent.succeeded");
    assert!(!event.id.is_empty());
    let payment = event
        .payment
        .expect("a payment_intent event carries the payment");
    assert_eq!(payment.reference, charge.reference);
    assert_eq!(
        payment.status,
        PaymentStatus::Succeeded {
            amount_received: 4_200
        }
    );
    assert_eq!(payment.metadata.get("bid_id"), Some(&bid));

    let forged = body.replacen("4200", "1", 1);
    assert_ne!(forged, body);
    assert_eq!(
        h.gateway().parse_webhook(&forged, &header),
        Err(WebhookError::BadSignature)
    );
    let resigned =
        surclass::payments::webhook::sign(&body, "whsec_not_ours", chrono::Utc::now().timestamp());
    assert_eq!(
        h.gateway().parse_webhook(&body, &resigned),
        Err(WebhookError::BadSignature)
    );
    let stale = surclass::payments::webhook::sign(
        &body,
        crate::harness::WEBHOOK_SECRET,
        chrono::Utc::now().timestamp() - 3_600,
    );
    assert!(matches!(
        h.gateway().parse_webhook(&body, &stale),
        Err(WebhookError::Stale(_))
    ));
    assert!(h.gateway().parse_webhook(&body, "").is_err());
}

pub async fn description_and_metadata_reach_the_provider(h: &dyn Harness) {
    // The path of async-stripe issue 876 (PaymentIntent creation with description/metadata).
    // On Stripe, localstripe refuses `description`; accepting and keeping it is LAYER 4.
    let bid = new_bid();
    let mut request = hold_request(&bid, 2_000, "4242424242424242");
    request.description = "Upgrade LH 123 FRA→JFK 2026-12-01: economy → business".into();
    request.metadata.insert("lot_id".into(), "lot_42".into());
    let outcome = h.gateway().authorize_hold(request).await.unwrap();
    let HoldOutcome::Authorized(hold) = outcome else {
        panic!("{outcome:?}")
    };
    let state = h.gateway().payment_status(&hold.reference).await.unwrap();
    assert_eq!(state.metadata.get("bid_id"), Some(&bid));
    assert_eq!(
        state.metadata.get("lot_id").map(String::as_str),
        Some("lot_42")
    );
    assert_eq!(
        state.metadata.get("surclass_customer").map(String::as_str),
        Some("bkg_test")
    );
}
