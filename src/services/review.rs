//! Operators who review the award before anything is charged: approve it, or take named
//! winners out with a reason (their upgrade goes to the standby list), then approve.

use std::collections::BTreeSet;

use chrono::Utc;
use sea_orm::{
    ActiveModelTrait, ColumnTrait, EntityTrait, IntoActiveModel, QueryFilter, QuerySelect, Set,
};

use super::audit::{self, Actor};
use super::events;
use super::lots::LotError;
use super::settlement::{SettleError, drop_winner};
use crate::domain::award::AwardStatus;
use crate::domain::bid::{BidEventKind, BidStatus};
use crate::domain::lot::LotStatus;
use crate::domain::outcome::OutcomeReason;
use crate::domain::validation::FieldErrors;
use crate::jobs::{self, Job};
use crate::notifications::why::Why;
use crate::store::entities::{award, bid, lot};
use crate::store::{Db, write_txn};

/// The longest reason a traveller is given, in characters.
pub const MAX_REASON_CHARS: usize = 500;

#[derive(Debug, thiserror::Error)]
pub enum ReviewError {
    #[error(transparent)]
    Lot(#[from] LotError),
    #[error("this lot's award is not waiting for review (it is {0})")]
    NotInReview(String),
    /// The winners the operator checked are not the winners now (another user or an API
    /// key took one out meanwhile): approving would charge someone they did not review.
    #[error("the winners changed since they were read")]
    WinnersChanged(WinnersChanged),
    #[error(transparent)]
    Settle(#[from] SettleError),
}

/// How the winners now differ from the ones the operator checked, by bid id, sorted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WinnersChanged {
    /// Sent, but not winning now (taken out, moved off by a resize, or never a winner).
    pub not_winning: Vec<String>,
    /// Winning now, but not checked (moved up from standby).
    pub not_checked: Vec<String>,
}

impl From<sea_orm::DbErr> for ReviewError {
    fn from(e: sea_orm::DbErr) -> Self {
        ReviewError::Lot(LotError::Db(e))
    }
}

/// The lot's award, if it waits for review. The lot is locked first, so that a cancel, a
/// resize or another review of the same lot waits for this one.
async fn pending_award(
    txn: &impl sea_orm::ConnectionTrait,
    operator_id: &str,
    lot_id: &str,
) -> Result<award::Model, ReviewError> {
    let l = lot::Entity::find_by_id(lot_id.to_owned())
        .filter(lot::Column::OperatorId.eq(operator_id))
        .lock_exclusive()
        .one(txn)
        .await?
        .ok_or(LotError::NotFound)?;
    // A cancel marks the award cancelled; a node of an earlier release during a rolling
    // upgrade did not, so the lot's own status is the last word.
    if l.status == LotStatus::Cancelled.as_str() {
        return Err(ReviewError::NotInReview(LotStatus::Cancelled.to_string()));
    }
    let a = award::Entity::find_by_id(lot_id.to_owned())
        .one(txn)
        .await?
        .ok_or_else(|| ReviewError::NotInReview("not awarded yet".into()))?;
    if a.status != AwardStatus::PendingReview.as_str() {
        return Err(ReviewError::NotInReview(a.status));
    }
    Ok(a)
}

/// Whether the lot's award waits for the operator's review: awarded, nothing charged yet.
pub async fn is_waiting(db: &Db, lot_id: &str) -> Result<bool, sea_orm::DbErr> {
    Ok(award::Entity::find_by_id(lot_id.to_owned())
        .one(db)
        .await?
        .is_some_and(|a| a.status == AwardStatus::PendingReview.as_str()))
}

/// Approves the award: every winner is charged now. With `shown`, the winners the operator
/// was shown, it is refused unless they are exactly the winners now.
pub async fn approve(
    db: &Db,
    by: &Actor,
    lot_id: &str,
    shown: Option<&[String]>,
) -> Result<award::Model, ReviewError> {
    let txn = write_txn(db).await?;
    let a = pending_award(&txn, &by.operator_id, lot_id).await?;
    let now = Utc::now();
    let winners = bid::Entity::find()
        .filter(bid::Column::LotId.eq(lot_id))
        .filter(bid::Column::Status.eq(BidStatus::Won.as_str()))
        .all(&txn)
        .await?;
    if let Some(shown) = shown {
        let shown: BTreeSet<&str> = shown.iter().map(String::as_str).collect();
        let now_winning: BTreeSet<&str> = winners.iter().map(|w| w.id.as_str()).collect();
        if shown != now_winning {
            let ids = |set: std::collections::btree_set::Difference<'_, &str>| {
                set.map(|id| (*id).to_owned()).collect()
            };
            return Err(ReviewError::WinnersChanged(WinnersChanged {
                not_winning: ids(shown.difference(&now_winning)),
                not_checked: ids(now_winning.difference(&shown)),
            }));
        }
    }
    for w in &winners {
        let detail = "The operator confirmed your upgrade; your card is now charged.".to_owned();
        events::record(
            &txn,
            &w.id,
            BidEventKind::Won,
            w.award_price_minor,
            Some(detail),
            now,
        )
        .await?;
        jobs::enqueue(
            &txn,
            Job::Charge {
                bid_id: w.id.clone(),
            },
            now,
        )
        .await?;
    }
    let mut am = a.into_active_model();
    am.status = Set(AwardStatus::Approved.as_str().to_owned());
    am.approved_at = Set(Some(now));
    let approved = am.update(&txn).await?;
    jobs::enqueue(
        &txn,
        Job::Settle {
            lot_id: lot_id.to_owned(),
        },
        now,
    )
    .await?;
    audit::record(
        &txn,
        by,
        "award.approved",
        lot_id,
        Some(format!("status={}", AwardStatus::PendingReview)),
        Some(format!("status=approved winners_charged={}", winners.len())),
    )
    .await?;
    txn.commit().await?;
    Ok(approved)
}

/// Takes the named winners out of the award with the operator's reason; the standby list
/// moves up. The award stays in review until approved.
pub async fn reject(
    db: &Db,
    by: &Actor,
    lot_id: &str,
    bid_ids: &[String],
    reason: &str,
) -> Result<award::Model, ReviewError> {
    let mut errors = FieldErrors::new();
    if bid_ids.is_empty() {
        errors.add("bids", "name at least one winning bid to take out");
    }
    match reason.trim().chars().count() {
        0 => errors.add("reason", "is required: the traveller reads it"),
        n if n > MAX_REASON_CHARS => errors.add(
            "reason",
            format!("is {n} characters long; at most {MAX_REASON_CHARS}"),
        ),
        _ => {}
    }
    errors
        .into_result()
        .map_err(|e| ReviewError::Lot(LotError::Invalid(e)))?;
    let txn = write_txn(db).await?;
    pending_award(&txn, &by.operator_id, lot_id).await?;
    // The same bid named twice (a double submit) is taken out once; errors name the position
    // as sent.
    let mut taken: Vec<&str> = Vec::new();
    for (i, id) in bid_ids.iter().enumerate() {
        if taken.contains(&id.as_str()) {
            continue;
        }
        taken.push(id);
        let b = bid::Entity::find_by_id(id.clone())
            .filter(bid::Column::LotId.eq(lot_id))
            .one(&txn)
            .await?
            .filter(|b| b.status == BidStatus::Won.as_str())
            .ok_or_else(|| {
                ReviewError::Lot(LotError::Invalid(FieldErrors::single(
                    format!("bids[{i}]"),
                    "is not a winner of this lot",
                )))
            })?;
        let why = Why::OperatorRejected {
            words: reason.trim().to_owned(),
        };
        drop_winner(&txn, &b, OutcomeReason::RejectedByOperator, &why, false).await?;
    }
    let a = award::Entity::find_by_id(lot_id.to_owned())
        .one(&txn)
        .await?
        .ok_or(LotError::NotFound)?;
    audit::record(
        &txn,
        by,
        "award.winners_removed",
        lot_id,
        None,
        Some(format!(
            "bids={} reason={:?}",
            taken.join(" "),
            reason.trim()
        )),
    )
    .await?;
    txn.commit().await?;
    Ok(a)
}
