//! "What would each policy earn now": the pure matching core run on a lot's current bids under
//! every award policy. Reads only; nothing is stored and no bidder learns anything.

use sea_orm::{ColumnTrait, EntityTrait, QueryFilter, QueryOrder};

use super::award::{self as award_service, PlanRecord};
use super::lots::{self, LotError};
use crate::domain::bid::BidStatus;
use crate::domain::lot::AwardPolicy;
use crate::matching;
use crate::store::entities::bid;
use crate::store::{Db, lots as store_lots};

/// One policy's plan on the bids as they stand.
#[derive(Debug, Clone)]
pub struct PolicyPreview {
    pub policy: AwardPolicy,
    /// The lot's own policy, the one the close will use.
    pub current: bool,
    /// The plan, or why the core cannot award these bids under this policy (for example
    /// `max_revenue` on a very large lot).
    pub plan: Result<PlanRecord, String>,
}

pub async fn policies(
    db: &Db,
    operator_id: &str,
    lot_id: &str,
) -> Result<Vec<PolicyPreview>, LotError> {
    let l = lots::get(db, operator_id, lot_id).await?;
    let spec = store_lots::spec(&l)
        .map_err(|e| sea_orm::DbErr::Custom(format!("stored lot unreadable: {e}")))?;
    // The same bids the close would read: live ones, and withdrawn ones to give their reason.
    let bids = bid::Entity::find()
        .filter(bid::Column::LotId.eq(&l.id))
        .filter(
            bid::Column::Status.is_in([BidStatus::Active.as_str(), BidStatus::Withdrawn.as_str()]),
        )
        .order_by_asc(bid::Column::Id)
        .all(db)
        .await?;
    let inputs = award_service::inputs(&bids);
    let mut out = Vec::new();
    for &policy in AwardPolicy::ALL {
        let mut with_policy = spec.clone();
        with_policy.award_policy = policy;
        let rules = award_service::rules(&l, &with_policy);
        let plan = matching::award(&rules, &inputs)
            .map(|plan| award_service::record(&plan, &with_policy))
            .map_err(|e| e.to_string());
        out.push(PolicyPreview {
            policy,
            current: policy == spec.award_policy,
            plan,
        });
    }
    Ok(out)
}
