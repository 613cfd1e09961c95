//! Payments: one trait, [`PaymentGateway`], and two implementations.
//!
//! - [`simulated::SimulatedGateway`], the embedded default: no network, state in the
//!   database (so holds survive restarts), behaves like Stripe's test cards.
//! - [`stripe::StripeGateway`]: the real Stripe API through `async-stripe`.
//!
//! Two payment modes per lot, in gateway calls:
//! - `hold`: [`authorize_hold`](PaymentGateway::authorize_hold) at bid time
//!   ([`reauthorize`](PaymentGateway::reauthorize) when the bid is raised), then
//!   [`capture`](PaymentGateway::capture) on a win or [`release`](PaymentGateway::release)
//!   on a loss or withdrawal;
//! - `charge_on_award`: [`save_card_for_later`](PaymentGateway::save_card_for_later) at bid
//!   time, then [`charge_saved_card`](PaymentGateway::charge_saved_card) on a win.
//!
//! Then [`refund`](PaymentGateway::refund) when an operator cancels after charging.
//!
//! Every call that changes anything takes an [`IdempotencyKey`]: the same key again returns
//! the first answer with no second effect, so a retry after a crash or a time-out is safe as
//! long as it reuses the key (see [`IdempotencyKey::derive`]).
//!
//! A decline at bid time or on award is an *outcome* (`HoldOutcome::Declined`, …), not an
//! error; a capture the bank refuses is `Err(PaymentError::Declined)`. Other errors say
//! whether to retry ([`PaymentError::is_retryable`]).

pub mod error;
pub mod simulated;
pub mod stripe;
pub mod types;
pub mod webhook;

use std::sync::Arc;

use async_trait::async_trait;
use sha2::{Digest, Sha256};

pub use error::{Decline, DeclineReason, ErrorKind, PaymentError, WebhookError};
pub use types::*;

use crate::config::{Gateway, StripeSettings};
use crate::store::Db;

/// The payment provider, as the services see it. Implementations are cheap to share
/// (`Arc<dyn PaymentGateway>`) and safe to call concurrently.
#[async_trait]
pub trait PaymentGateway: Send + Sync {
    /// `"simulated"` or `"stripe"`: the value of the `payments.provider` column.
    fn provider(&self) -> &'static str;

    /// Whether a payment method id that secured one hold can secure another (a raise without
    /// the card again). Stripe takes a PaymentMethod not attached to a Customer for one
    /// payment only.
    fn reuses_payment_methods(&self) -> bool;

    /// Hold `amount_minor` on the card (manual capture). `Authorized` holds the money;
    /// `Declined` says why the card was refused; `RequiresAction` waits for 3-D Secure.
    async fn authorize_hold(&self, request: HoldRequest) -> Result<HoldOutcome, PaymentError>;

    /// A raised bid: hold the new amount, then release `previous` (with the key part
    /// `{key}/release-previous`). If the new hold is declined or waits for the traveller,
    /// `previous` stays held: release it once the new hold is authorised.
    async fn reauthorize(
        &self,
        previous: &PaymentRef,
        request: HoldRequest,
    ) -> Result<HoldOutcome, PaymentError> {
        let key = request.idempotency_key.clone();
        let outcome = self.authorize_hold(request).await?;
        if let HoldOutcome::Authorized(_) = &outcome {
            self.release(previous, &key.child("release-previous"))
                .await?;
        }
        Ok(outcome)
    }

    /// Take up to the held amount. `Err(Invalid)` when `amount_minor` is above what is held
    /// or the hold is gone; `Err(Declined)` when the bank refuses at capture.
    async fn capture(
        &self,
        reference: &PaymentRef,
        amount_minor: i64,
        key: &IdempotencyKey,
    ) -> Result<Capture, PaymentError>;

    /// Drop a hold (or abandon a payment waiting for the traveller). Releasing a released
    /// hold is fine; releasing a captured payment is `Err(Invalid)` (refund it instead).
    async fn release(
        &self,
        reference: &PaymentRef,
        key: &IdempotencyKey,
    ) -> Result<(), PaymentError>;

    /// Save a card for an off-session charge on award.
    async fn save_card_for_later(
        &self,
        request: SetupRequest,
    ) -> Result<SetupOutcome, PaymentError>;

    /// Charge a saved card, traveller absent.
    async fn charge_saved_card(
        &self,
        request: ChargeRequest,
    ) -> Result<ChargeOutcome, PaymentError>;

    /// Give back `amount_minor` of a captured or charged payment (several partial refunds
    /// may follow each other up to the amount taken; more is `Err(Invalid)`).
    async fn refund(
        &self,
        reference: &PaymentRef,
        amount_minor: i64,
        key: &IdempotencyKey,
    ) -> Result<Refund, PaymentError>;

    /// Where a payment stands now (after 3-D Secure, for reconciliation).
    async fn payment_status(&self, reference: &PaymentRef) -> Result<PaymentState, PaymentError>;

    /// Every payment holding money on a card now, created at or after `since`, newest first.
    /// Reconcile compares them with the holds the database recorded: a crash between a card
    /// call and its write leaves a hold that no bid knows of.
    async fn open_holds(
        &self,
        since: chrono::DateTime<chrono::Utc>,
    ) -> Result<Vec<OpenHold>, PaymentError>;

    /// Where a card setup stands now (after 3-D Secure).
    async fn setup_status(&self, reference: &SetupRef) -> Result<SetupOutcome, PaymentError>;

    /// Verify a webhook's `Stripe-Signature` header against the raw body and read the event.
    /// Apply each event id once: providers deliver at least once.
    fn parse_webhook(&self, payload: &str, signature: &str) -> Result<PaymentEvent, WebhookError>;
}

/// The gateway chosen by the settings; the simulated one keeps its state in `simulated_store`
/// when named ([`simulated::SimulatedGateway::at`]), else beside the store `db`
/// ([`simulated::SimulatedGateway::beside`]).
pub async fn from_settings(
    gateway: Gateway,
    stripe: &StripeSettings,
    simulated_store: Option<&str>,
    db: &Db,
) -> Result<Arc<dyn PaymentGateway>, PaymentError> {
    match gateway {
        Gateway::Simulated => {
            let mut simulated = match simulated_store {
                Some(url) => simulated::SimulatedGateway::at(url).await?,
                None => simulated::SimulatedGateway::beside(db).await?,
            };
            if let Some(secret) = &stripe.stripe_webhook_secret {
                simulated = simulated.with_webhook_secret(secret);
            }
            Ok(Arc::new(simulated))
        }
        Gateway::Stripe => {
            let config = stripe
                .stripe_config()
                .map_err(PaymentError::Configuration)?;
            Ok(Arc::new(stripe::StripeGateway::new(config)?))
        }
    }
}

/// The metadata key naming our bid on every provider payment, so that a hold no record names
/// can be traced back (and told apart from payments of other products on the same account).
pub const BID_METADATA: &str = "surclass_bid";
/// The lot, booking and party size a hold was for, beside the bid: a hold whose bid was never
/// stored names no record, and these are what it takes to tell the traveller it was released.
pub const LOT_METADATA: &str = "surclass_lot";
pub const BOOKING_METADATA: &str = "surclass_booking";
pub const UNITS_METADATA: &str = "surclass_units";

/// Card authorisations expire after about seven days, so the `hold` payment mode is offered
/// only when bidding closes within this many days of the bid (the day left covers award,
/// review and the payment grace period).
pub const HOLD_MAX_DAYS: i64 = 6;

/// Whether a bid placed at `bid_at` may use the `hold` mode on a lot closing at `closes_at`.
pub fn hold_allowed(
    bid_at: chrono::DateTime<chrono::Utc>,
    closes_at: chrono::DateTime<chrono::Utc>,
) -> bool {
    closes_at - bid_at <= chrono::TimeDelta::days(HOLD_MAX_DAYS)
}

/// Hex SHA-256, for request fingerprints and card digests (never stored with the number).
pub(crate) fn fingerprint(value: &str) -> String {
    hex::encode(Sha256::digest(value.as_bytes()))
}

/// Checks an amount before it reaches a provider.
pub(crate) fn check_amount(amount_minor: i64) -> Result<(), PaymentError> {
    if amount_minor <= 0 {
        return Err(PaymentError::Invalid(format!(
            "amount must be a positive number of minor units, not {amount_minor}"
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use chrono::{TimeDelta, Utc};

    use super::*;

    #[test]
    fn holds_only_when_bidding_closes_within_six_days() {
        let now = Utc::now();
        assert!(hold_allowed(now, now + TimeDelta::days(6)));
        assert!(!hold_allowed(
            now,
            now + TimeDelta::days(6) + TimeDelta::seconds(1)
        ));
        assert!(hold_allowed(now, now));
    }
}
