//! What can go wrong with a payment, typed so that callers can tell the traveller's problem
//! ("use another card") from ours ("retry later", "fix the configuration").

use serde::{Deserialize, Serialize};

use super::types::PaymentRef;

/// Why a card was refused, in the few categories a traveller can act on.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DeclineReason {
    /// The bank said no without a reason it lets us share (also fraud suspicions, on purpose).
    Generic,
    InsufficientFunds,
    ExpiredCard,
    IncorrectCvc,
    IncorrectNumber,
    /// 3-D Secure was required and failed or was abandoned.
    AuthenticationFailed,
}

impl DeclineReason {
    /// From a provider's decline or error code (`card_declined`, `insufficient_funds`, …).
    pub fn from_code(code: &str) -> Self {
        match code {
            "insufficient_funds" => Self::InsufficientFunds,
            "expired_card" => Self::ExpiredCard,
            "incorrect_cvc" | "invalid_cvc" => Self::IncorrectCvc,
            "incorrect_number" | "invalid_number" => Self::IncorrectNumber,
            "authentication_required"
            | "payment_intent_authentication_failure"
            | "setup_intent_authentication_failure" => Self::AuthenticationFailed,
            _ => Self::Generic,
        }
    }

    /// One sentence a traveller can read and act on. Never reveals a fraud signal.
    pub fn traveller_message(self) -> &'static str {
        match self {
            Self::Generic => {
                "Your card was declined. Please use another card or contact your bank."
            }
            Self::InsufficientFunds => {
                "Your card has insufficient funds for this offer. Please use another card."
            }
            Self::ExpiredCard => "Your card has expired. Please use another card.",
            Self::IncorrectCvc => "The card's security code is incorrect. Please check it.",
            Self::IncorrectNumber => "The card number is incorrect. Please check it.",
            Self::AuthenticationFailed => {
                "Your bank could not confirm this payment. Please try again or use another card."
            }
        }
    }

    /// What the bank said, without asking for anything: for when nothing can be done any more
    /// (the upgrade has gone on).
    pub fn stated(self) -> &'static str {
        match self {
            Self::Generic => "Your card was declined.",
            Self::InsufficientFunds => "Your card had insufficient funds.",
            Self::ExpiredCard => "Your card has expired.",
            Self::IncorrectCvc => "The card's security code was refused.",
            Self::IncorrectNumber => "The card number was refused.",
            Self::AuthenticationFailed => "Your bank could not confirm this payment.",
        }
    }

    /// [`Self::stated`] in French.
    pub fn stated_fr(self) -> &'static str {
        match self {
            Self::Generic => "Votre carte a été refusée.",
            Self::InsufficientFunds => {
                "Les fonds disponibles sur votre carte étaient insuffisants."
            }
            Self::ExpiredCard => "Votre carte a expiré.",
            Self::IncorrectCvc => "Le cryptogramme de la carte a été refusé.",
            Self::IncorrectNumber => "Le numéro de la carte a été refusé.",
            Self::AuthenticationFailed => "Votre banque n'a pas pu confirmer ce paiement.",
        }
    }

    /// [`Self::traveller_message`] in French, for bookings in French.
    pub fn traveller_message_fr(self) -> &'static str {
        match self {
            Self::Generic => {
                "Votre carte a été refusée. Utilisez une autre carte ou contactez votre banque."
            }
            Self::InsufficientFunds => {
                "Les fonds disponibles sur votre carte sont insuffisants pour cette offre. Utilisez une autre carte."
            }
            Self::ExpiredCard => "Votre carte a expiré. Utilisez une autre carte.",
            Self::IncorrectCvc => "Le cryptogramme de la carte est incorrect. Vérifiez-le.",
            Self::IncorrectNumber => "Le numéro de la carte est incorrect. Vérifiez-le.",
            Self::AuthenticationFailed => {
                "Votre banque n'a pas pu confirmer ce paiement. Réessayez ou utilisez une autre carte."
            }
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Generic => "generic",
            Self::InsufficientFunds => "insufficient_funds",
            Self::ExpiredCard => "expired_card",
            Self::IncorrectCvc => "incorrect_cvc",
            Self::IncorrectNumber => "incorrect_number",
            Self::AuthenticationFailed => "authentication_failed",
        }
    }
}

/// A refusal by the card's bank: tell the traveller (`message`) and ask for another card.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Decline {
    pub reason: DeclineReason,
    /// Traveller-readable sentence (see [`DeclineReason::traveller_message`]).
    pub message: String,
    /// The provider's own code (`card_declined`, `insufficient_funds`, …) for logs and support.
    pub provider_code: Option<String>,
    /// The provider object that recorded the attempt, when there is one.
    pub reference: Option<PaymentRef>,
}

impl Decline {
    pub fn new(reason: DeclineReason, provider_code: Option<String>) -> Self {
        Self {
            reason,
            message: reason.traveller_message().to_owned(),
            provider_code,
            reference: None,
        }
    }

    pub fn with_reference(mut self, reference: PaymentRef) -> Self {
        self.reference = Some(reference);
        self
    }
}

impl std::fmt::Display for Decline {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "card declined ({}): {}",
            self.reason.as_str(),
            self.message
        )
    }
}

/// Errors of gateway calls. Match on the variant, or ask [`PaymentError::kind`]:
/// - `Declined`: the traveller must fix the card (show `decline.message`);
/// - `Transient`: nothing is known to have happened; retry later **with the same
///   idempotency key** (the provider then replays instead of acting twice);
/// - `Invalid`: this request cannot succeed as it is (amount above the hold, a released
///   hold, a key reused for other parameters): a bug or a state to reconcile, not a retry;
/// - `Configuration`: the operator must fix the gateway settings (bad key, bad URL);
/// - `Protocol`: the provider answered something we cannot read (API version drift).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
#[serde(tag = "kind", content = "detail", rename_all = "snake_case")]
pub enum PaymentError {
    #[error("{0}")]
    Declined(Decline),
    #[error("payment provider unavailable, retry later with the same idempotency key: {0}")]
    Transient(String),
    /// Another request with the same idempotency key (a double tap's other copy) is still
    /// being processed; once it is done, the same key replays its answer.
    #[error("a request with the same idempotency key is still in progress: {0}")]
    InProgress(String),
    #[error("payment request refused: {0}")]
    Invalid(String),
    #[error("payment gateway misconfigured: {0}")]
    Configuration(String),
    #[error("unexpected answer from the payment provider: {0}")]
    Protocol(String),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ErrorKind {
    Declined,
    Transient,
    Invalid,
    Configuration,
    Protocol,
}

impl PaymentError {
    pub fn kind(&self) -> ErrorKind {
        match self {
            Self::Declined(_) => ErrorKind::Declined,
            Self::Transient(_) | Self::InProgress(_) => ErrorKind::Transient,
            Self::Invalid(_) => ErrorKind::Invalid,
            Self::Configuration(_) => ErrorKind::Configuration,
            Self::Protocol(_) => ErrorKind::Protocol,
        }
    }

    /// True when the same call, with the same idempotency key, may succeed later.
    pub fn is_retryable(&self) -> bool {
        matches!(self, Self::Transient(_) | Self::InProgress(_))
    }

    /// The decline to show the traveller, when the card is the problem.
    pub fn decline(&self) -> Option<&Decline> {
        match self {
            Self::Declined(d) => Some(d),
            _ => None,
        }
    }
}

/// Why an incoming webhook was refused. Answer 400 for all of them: the provider retries.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WebhookError {
    #[error("webhook signature header missing or malformed")]
    BadHeader,
    #[error("webhook signature does not match the payload")]
    BadSignature,
    #[error("webhook signed at {0}, outside the 300 s tolerance")]
    Stale(i64),
    #[error("webhook payload is not a readable event: {0}")]
    Malformed(String),
    #[error("no webhook signing secret is configured")]
    NotConfigured,
}
