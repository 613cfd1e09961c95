//! An award: the plan a lot's close produced, and where it stands with the operator.

use super::lot::string_enum;

string_enum!(
    /// `pending_review → approved`, or `approved` at once when the lot needs no review;
    /// `cancelled` when the lot is cancelled afterwards: the plan no longer stands, nothing
    /// more is charged and any charge is refunded.
    AwardStatus { PendingReview = "pending_review", Approved = "approved", Cancelled = "cancelled" }
);
