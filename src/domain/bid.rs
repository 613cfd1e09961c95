//! A bid: a booking's sealed offer on a lot, per unit, for the whole party.

use super::lot::string_enum;

string_enum!(
    /// `active → withdrawn`; after award `won → charged | payment_failed`, `lost → released`,
    /// `standby → won | released`; `charged → refunded`.
    BidStatus {
        Active = "active",
        Withdrawn = "withdrawn",
        Won = "won",
        Lost = "lost",
        Standby = "standby",
        Charged = "charged",
        PaymentFailed = "payment_failed",
        Released = "released",
        Refunded = "refunded",
    }
);

impl BidStatus {
    /// Bids still in play or paid for: what a cancel or a withdrawal of the lot undoes, and
    /// what a change of the booking's party must wait for.
    pub const TAKING_PART: [BidStatus; 5] = [
        BidStatus::Active,
        BidStatus::Won,
        BidStatus::PaymentFailed,
        BidStatus::Standby,
        BidStatus::Charged,
    ];
}

string_enum!(
    /// What happened to a bid, as the traveller reads it on the bid's timeline.
    BidEventKind {
        Placed = "placed",
        Raised = "raised",
        Lowered = "lowered",
        Withdrawn = "withdrawn",
        HoldPlaced = "hold_placed",
        HoldReleased = "hold_released",
        LotClosed = "lot_closed",
        CapacityChanged = "capacity_changed",
        LotCancelled = "lot_cancelled",
        Won = "won",
        Lost = "lost",
        Standby = "standby",
        Charged = "charged",
        PaymentFailed = "payment_failed",
        Refunded = "refunded",
        UpgradeNow = "upgrade_now",
        CardSaved = "card_saved",
        // Too few units left for the party before the close: released, and may be placed
        // again should units come back.
        NoRoomLeft = "no_room_left",
    }
);

/// Parties are 1 to 9 people, as on an airline booking.
pub const MAX_PARTY: u32 = 9;
