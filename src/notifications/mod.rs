//! Telling people: emails to travellers and signed webhooks to partners, through a
//! transactional outbox.
//!
//! A state change writes its messages with [`outbox::enqueue`] in its own transaction (so a
//! rolled-back change sends nothing) together with a `deliver` job; the job worker
//! ([`crate::jobs`]) claims that job with a lease and the [`dispatch::Notifier`] sends it,
//! retrying with exponential backoff, parking what keeps failing where the operator sees it.

pub mod dispatch;
pub mod email;
pub mod outbox;
pub mod reminders;
pub mod render;
pub mod unsubscribe;
pub mod webhook_targets;
pub mod webhooks;
pub mod why;

use serde::{Deserialize, Serialize};

/// What a message is about. The string is the webhook event name too.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Topic {
    #[serde(rename = "bid.placed")]
    BidPlaced,
    #[serde(rename = "bid.changed")]
    BidChanged,
    #[serde(rename = "bid.withdrawn")]
    BidWithdrawn,
    /// Bidding closes soon (email only).
    #[serde(rename = "bid.reminder")]
    Reminder,
    /// The operator moved the close of bidding while the bid was active.
    #[serde(rename = "bid.deadline_moved")]
    DeadlineMoved,
    #[serde(rename = "bid.charged")]
    UpgradeConfirmed,
    #[serde(rename = "bid.lost")]
    NotSuccessful,
    #[serde(rename = "bid.payment_failed")]
    PaymentFailed,
    /// The lot was cancelled (or withdrawn) before the traveller paid: hold released.
    #[serde(rename = "bid.cancelled")]
    Cancelled,
    #[serde(rename = "bid.refunded")]
    Refunded,
    /// A fault on our side lost the offer after its card hold was taken; the hold is
    /// released (email only: there is no bid for a partner to look up).
    #[serde(rename = "bid.not_recorded")]
    NotRecorded,
}

impl Topic {
    pub const ALL: [Topic; 11] = [
        Topic::BidPlaced,
        Topic::BidChanged,
        Topic::BidWithdrawn,
        Topic::Reminder,
        Topic::DeadlineMoved,
        Topic::UpgradeConfirmed,
        Topic::NotSuccessful,
        Topic::PaymentFailed,
        Topic::Cancelled,
        Topic::Refunded,
        Topic::NotRecorded,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Topic::BidPlaced => "bid.placed",
            Topic::BidChanged => "bid.changed",
            Topic::BidWithdrawn => "bid.withdrawn",
            Topic::Reminder => "bid.reminder",
            Topic::DeadlineMoved => "bid.deadline_moved",
            Topic::UpgradeConfirmed => "bid.charged",
            Topic::NotSuccessful => "bid.lost",
            Topic::PaymentFailed => "bid.payment_failed",
            Topic::Cancelled => "bid.cancelled",
            Topic::Refunded => "bid.refunded",
            Topic::NotRecorded => "bid.not_recorded",
        }
    }

    pub fn parse(s: &str) -> Option<Topic> {
        Topic::ALL.into_iter().find(|t| t.as_str() == s)
    }

    /// Non-essential messages carry List-Unsubscribe and stop after one click; messages about
    /// the traveller's money and their own actions are always sent.
    pub fn is_optional(self) -> bool {
        matches!(self, Topic::Reminder)
    }

    /// Partners can subscribe to every topic but the reminder (a traveller-facing nudge) and
    /// the lost offer (it names a bid that does not exist).
    pub fn is_webhook_event(self) -> bool {
        !matches!(self, Topic::Reminder | Topic::NotRecorded)
    }

    /// How soon its deliveries are claimed: the news of an outcome before the confirmations
    /// and reminders that a deadline rush queued ahead of it.
    pub fn priority(self) -> crate::jobs::Priority {
        use crate::jobs::Priority;
        match self {
            Topic::UpgradeConfirmed
            | Topic::NotSuccessful
            | Topic::PaymentFailed
            | Topic::Cancelled
            | Topic::Refunded
            | Topic::NotRecorded => Priority::Outcomes,
            Topic::BidPlaced
            | Topic::BidChanged
            | Topic::BidWithdrawn
            | Topic::Reminder
            | Topic::DeadlineMoved => Priority::Messages,
        }
    }
}
