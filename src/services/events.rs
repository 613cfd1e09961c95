//! The bid timeline: every change a traveller cares about is an event they can read.

use chrono::{DateTime, Utc};
use sea_orm::{ActiveModelTrait, ConnectionTrait, DbErr, NotSet, Set};

use crate::domain::bid::BidEventKind;
use crate::store::entities::bid_event;

pub async fn record(
    db: &impl ConnectionTrait,
    bid_id: &str,
    kind: BidEventKind,
    amount_minor: Option<i64>,
    detail: Option<String>,
    at: DateTime<Utc>,
) -> Result<(), DbErr> {
    bid_event::ActiveModel {
        id: NotSet,
        bid_id: Set(bid_id.to_owned()),
        kind: Set(kind.as_str().to_owned()),
        amount_minor: Set(amount_minor),
        detail: Set(detail),
        at: Set(at),
    }
    .insert(db)
    .await?;
    Ok(())
}
