//! The payment vocabulary shared by every gateway: requests, outcomes and references.
//! Amounts are integer minor units of a [`Currency`] (`12500` EUR is 125.00 EUR).

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Serialize};

use super::error::{Decline, PaymentError};
use crate::money::Currency;

macro_rules! reference {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        #[serde(transparent)]
        pub struct $name(String);

        impl $name {
            pub fn new(value: impl Into<String>) -> Self {
                Self(value.into())
            }
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }
    };
}

reference!(
    /// The provider's id of one payment, a hold or a charge (Stripe `pi_…`, simulated `simpi_…`).
    PaymentRef
);
reference!(
    /// The provider's id of a card-saving attempt (Stripe `seti_…`, simulated `simseti_…`).
    SetupRef
);
reference!(
    /// The provider's id of a refund (Stripe `re_…`, simulated `simre_…`).
    RefundRef
);

/// What an idempotency key is for; part of the derived key.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum PaymentStep {
    Hold,
    Reauthorize,
    Capture,
    Release,
    SaveCard,
    Charge,
    Refund,
}

const RELEASE_SUFFIX: &str = ":release";

impl PaymentStep {
    const ALL: [Self; 7] = [
        Self::Hold,
        Self::Reauthorize,
        Self::Capture,
        Self::Release,
        Self::SaveCard,
        Self::Charge,
        Self::Refund,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Hold => "hold",
            Self::Reauthorize => "reauthorize",
            Self::Capture => "capture",
            Self::Release => "release",
            Self::SaveCard => "save-card",
            Self::Charge => "charge",
            Self::Refund => "refund",
        }
    }
}

/// The key that makes a provider call happen at most once. The same key sent again returns the
/// first answer and has no second effect; a key reused with other parameters is refused.
///
/// Derive it from durable facts, never from the clock: [`IdempotencyKey::derive`] takes the
/// bid, the step and the attempt number. A retry after a crash or a time-out reuses the same
/// attempt (and so the same key); only a deliberate new try (the traveller gave another card,
/// an operator re-ran a refund) moves to the next attempt.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct IdempotencyKey(String);

impl IdempotencyKey {
    /// Room left under Stripe's 255 characters for the suffixes of multi-call operations.
    pub const MAX_LEN: usize = 200;

    /// `surclass:{bid_id}:{step}:{attempt}`, e.g. `surclass:bid_8f2k:capture:1`.
    pub fn derive(bid_id: &str, step: PaymentStep, attempt: u32) -> Self {
        let bid: String = bid_id
            .chars()
            .filter(|c| c.is_ascii_graphic())
            .take(Self::MAX_LEN - 40)
            .collect();
        Self(format!("surclass:{bid}:{}:{attempt}", step.as_str()))
    }

    /// `surclass:{hold}:release`: the one key of every release of `hold`, whoever asks (the
    /// award, a cancel, reconcile), so the bank releases it once and a release row names it
    /// before the bank has answered.
    pub fn release_of(hold: &str) -> Result<Self, PaymentError> {
        Self::parse(&format!("surclass:{hold}{RELEASE_SUFFIX}"))
    }

    /// The hold a [`release_of`](Self::release_of) key names.
    pub fn released_hold(key: &str) -> Option<&str> {
        key.strip_prefix("surclass:")?.strip_suffix(RELEASE_SUFFIX)
    }

    /// The step a [`derive`](Self::derive)d key was made for.
    pub fn step_of(key: &str) -> Option<PaymentStep> {
        let mut parts = key.rsplit(':');
        let (_attempt, step) = (parts.next()?, parts.next()?);
        PaymentStep::ALL.into_iter().find(|s| s.as_str() == step)
    }

    /// A key from elsewhere (stored earlier): printable ASCII, 1 to 200 characters.
    pub fn parse(value: &str) -> Result<Self, PaymentError> {
        if value.is_empty()
            || value.len() > Self::MAX_LEN
            || !value.chars().all(|c| c.is_ascii_graphic())
        {
            return Err(PaymentError::Invalid(format!(
                "idempotency key must be 1 to {} printable ASCII characters",
                Self::MAX_LEN
            )));
        }
        Ok(Self(value.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The key of one provider call inside an operation that makes several (`{key}/{part}`).
    /// Parts are short, so a part of a key of at most 200 characters stays within Stripe's 255.
    pub fn part(&self, part: &str) -> String {
        format!("{}/{part}", self.0)
    }

    /// [`part`](Self::part) as a key of its own, for a gateway call made on the caller's behalf.
    pub(crate) fn child(&self, part: &str) -> Self {
        Self(self.part(part))
    }
}

impl fmt::Display for IdempotencyKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl TryFrom<String> for IdempotencyKey {
    type Error = PaymentError;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        Self::parse(&value)
    }
}

impl From<IdempotencyKey> for String {
    fn from(key: IdempotencyKey) -> Self {
        key.0
    }
}

/// The card to use. Never logged: `Debug` shows the last four digits only.
#[derive(Clone, PartialEq, Eq)]
pub enum CardSource {
    /// Typed into the local card form. The simulated gateway reads the test-card number; the
    /// Stripe gateway creates a PaymentMethod from it (Stripe allows raw numbers in test mode,
    /// and in live mode only for accounts cleared for it: use `PaymentMethod` there).
    Card {
        number: String,
        exp_month: u32,
        exp_year: u32,
        cvc: String,
    },
    /// A payment method id from the browser (Stripe.js `pm_…`), a card token (`tok_…`), a
    /// Stripe test payment method (`pm_card_visa`, …) or a simulated saved card (`simpm_…`).
    PaymentMethod(String),
}

impl CardSource {
    /// A card from the form; spaces and dashes in the number are dropped.
    pub fn card(number: &str, exp_month: u32, exp_year: u32, cvc: &str) -> Self {
        Self::Card {
            number: number
                .chars()
                .filter(|c| !c.is_whitespace() && *c != '-')
                .collect(),
            exp_month,
            exp_year,
            cvc: cvc.trim().to_owned(),
        }
    }

    pub fn payment_method(id: &str) -> Self {
        Self::PaymentMethod(id.trim().to_owned())
    }

    /// A stable, non-secret description for fingerprints and logs.
    pub(crate) fn redacted(&self) -> String {
        match self {
            Self::Card {
                number,
                exp_month,
                exp_year,
                ..
            } => {
                let last4 = number.get(number.len().saturating_sub(4)..).unwrap_or("");
                let digest = crate::payments::fingerprint(number);
                format!("card:{last4}:{exp_month}/{exp_year}:{}", &digest[..12])
            }
            Self::PaymentMethod(id) => format!("pm:{id}"),
        }
    }
}

impl fmt::Debug for CardSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Card { number, .. } => {
                let last4 = number.get(number.len().saturating_sub(4)..).unwrap_or("");
                write!(f, "Card(**** {last4})")
            }
            Self::PaymentMethod(id) => write!(f, "PaymentMethod({id})"),
        }
    }
}

/// What the traveller sees of a card: enough to recognise it, nothing to reuse it.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CardSummary {
    pub brand: Option<String>,
    pub last4: Option<String>,
    pub exp_month: Option<u32>,
    pub exp_year: Option<u32>,
}

/// Authorise (hold) an amount on a card at bid time, to capture on a win or release otherwise.
#[derive(Clone, Debug)]
pub struct HoldRequest {
    pub idempotency_key: IdempotencyKey,
    pub amount_minor: i64,
    pub currency: Currency,
    pub card: CardSource,
    /// Our reference for the traveller (a booking id); sent to the provider as metadata
    /// `surclass_customer`, never as personal data.
    pub customer_ref: Option<String>,
    /// Shown on the provider's dashboard, e.g. "Upgrade LH123 2026-12-01 economy→business".
    pub description: String,
    /// Extra provider metadata (bid and lot ids); at most 40 keys of 40 characters.
    pub metadata: BTreeMap<String, String>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Authorization {
    pub reference: PaymentRef,
    pub amount_minor: i64,
    pub currency: Currency,
    pub card: CardSummary,
}

/// Where an unfinished payment or card setup waits for the traveller.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(tag = "kind", content = "id", rename_all = "snake_case")]
pub enum IntentRef {
    Payment(PaymentRef),
    Setup(SetupRef),
}

/// How the traveller finishes an action (3-D Secure).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum NextStep {
    /// In the browser: Stripe.js `handleNextAction({clientSecret})`.
    StripeSdk,
    /// Send the traveller to this address; the bank sends them back.
    Redirect { url: String },
    /// Simulated gateway: the demo's "bank" page calls
    /// [`SimulatedGateway::complete_action`](super::simulated::SimulatedGateway::complete_action).
    Simulated,
}

/// The payment or setup waits for the traveller. Keep the reference; when the traveller is
/// done, read [`PaymentGateway::payment_status`](super::PaymentGateway::payment_status) or
/// [`setup_status`](super::PaymentGateway::setup_status) (or wait for the webhook).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PendingAction {
    pub intent: IntentRef,
    /// Give this to the browser only (Stripe.js needs it); it is not a secret key but it lets
    /// its holder finish this one payment.
    pub client_secret: String,
    pub next_step: NextStep,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "outcome", rename_all = "snake_case")]
pub enum HoldOutcome {
    Authorized(Authorization),
    Declined(Decline),
    RequiresAction(PendingAction),
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Capture {
    pub reference: PaymentRef,
    pub amount_minor: i64,
    pub currency: Currency,
}

/// Save a card at bid time for a charge on award (`charge_on_award` lots). The caller has
/// recorded the traveller's consent to be charged later, off-session.
#[derive(Clone, Debug)]
pub struct SetupRequest {
    pub idempotency_key: IdempotencyKey,
    pub card: CardSource,
    /// Our reference for the traveller (a booking id), kept as provider metadata.
    pub customer_ref: String,
    /// A provider customer saved earlier for this traveller, to reuse instead of a new one.
    pub provider_customer: Option<String>,
    pub description: String,
    pub metadata: BTreeMap<String, String>,
}

/// A card saved for later, off-session use. Store all of it; it holds no card number.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SavedCard {
    pub setup: SetupRef,
    /// Provider customer (`cus_…`, `simcus_…`).
    pub customer: String,
    /// Provider payment method (`pm_…`, `simpm_…`).
    pub payment_method: String,
    pub card: CardSummary,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "outcome", rename_all = "snake_case")]
pub enum SetupOutcome {
    Saved(SavedCard),
    Declined(Decline),
    RequiresAction(PendingAction),
}

/// Charge a saved card without the traveller present (a win on a `charge_on_award` lot).
#[derive(Clone, Debug)]
pub struct ChargeRequest {
    pub idempotency_key: IdempotencyKey,
    pub amount_minor: i64,
    pub currency: Currency,
    pub card: SavedCard,
    pub description: String,
    pub metadata: BTreeMap<String, String>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Charge {
    pub reference: PaymentRef,
    pub amount_minor: i64,
    pub currency: Currency,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "outcome", rename_all = "snake_case")]
pub enum ChargeOutcome {
    Charged(Charge),
    Declined(Decline),
    /// The bank wants the traveller back (off-session authentication): send them the link.
    RequiresAction(PendingAction),
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Refund {
    pub reference: RefundRef,
    pub payment: PaymentRef,
    pub amount_minor: i64,
    pub currency: Currency,
}

/// Where a payment stands at the provider (for reconciliation and webhooks).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum PaymentStatus {
    /// Waiting for the traveller (3-D Secure).
    RequiresAction { client_secret: Option<String> },
    /// A hold: this much can still be captured.
    Authorized { amount_capturable: i64 },
    /// Money taken (a capture or a charge).
    Succeeded { amount_received: i64 },
    /// Released, or abandoned.
    Canceled,
    /// The last attempt failed; nothing is held.
    Failed { decline: Option<Decline> },
    /// Neither confirmed nor failed yet (asynchronous methods).
    Processing,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PaymentState {
    pub reference: PaymentRef,
    pub amount_minor: i64,
    pub currency: Currency,
    pub status: PaymentStatus,
    pub metadata: BTreeMap<String, String>,
}

/// A payment holding money on a card now (authorised, neither captured nor released), as
/// [`open_holds`](super::PaymentGateway::open_holds) lists it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OpenHold {
    pub state: PaymentState,
    /// When the provider created it: a hold younger than a money step may still be written.
    pub created_at: chrono::DateTime<chrono::Utc>,
}

/// A verified provider event about a payment (`payment_intent.*`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PaymentEvent {
    /// The provider's event id: apply each id once.
    pub id: String,
    /// `payment_intent.succeeded`, `payment_intent.payment_failed`, …
    pub event_type: String,
    /// Unix seconds.
    pub created: i64,
    /// The payment as the event saw it; `None` for events that are not about a payment
    /// (acknowledge and ignore them).
    pub payment: Option<PaymentState>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_release_key_names_its_hold_and_a_derived_key_its_step() {
        let key = IdempotencyKey::release_of("pi_3Nx").unwrap();
        assert_eq!(key.as_str(), "surclass:pi_3Nx:release");
        assert_eq!(IdempotencyKey::released_hold(key.as_str()), Some("pi_3Nx"));
        assert_eq!(
            IdempotencyKey::released_hold("surclass:bid_1:capture:1"),
            None
        );

        let capture = IdempotencyKey::derive("bid_8f2k", PaymentStep::Capture, 2);
        assert_eq!(
            IdempotencyKey::step_of(capture.as_str()),
            Some(PaymentStep::Capture)
        );
        let charge = IdempotencyKey::derive("bid_8f2k", PaymentStep::Charge, 1);
        assert_eq!(
            IdempotencyKey::step_of(charge.as_str()),
            Some(PaymentStep::Charge)
        );
        assert_eq!(IdempotencyKey::step_of("surclass:pi_3Nx:release"), None);
        assert!(
            IdempotencyKey::release_of("a b").is_err(),
            "printable ASCII only"
        );
    }
}
