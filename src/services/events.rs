//! The bid timeline: every change a traveller cares about is an event they can read.

use chrono::{DateTime, Utc};
use sea_orm::{ActiveModelTrait, ConnectionTrait, DbErr, EntityTrait, NotSet, Set};

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

/// Several events in one insert, returned as stored (with their ids), in the given order.
pub async fn record_many(
    db: &impl ConnectionTrait,
    events: Vec<(String, BidEventKind, Option<i64>, Option<String>)>,
    at: DateTime<Utc>,
) -> Result<Vec<bid_event::Model>, DbErr> {
    if events.is_empty() {
        return Ok(Vec::new());
    }
    let rows: Vec<bid_event::ActiveModel> = events
        .into_iter()
        .map(
            |(bid_id, kind, amount_minor, detail)| bid_event::ActiveModel {
                id: NotSet,
                bid_id: Set(bid_id),
                kind: Set(kind.as_str().to_owned()),
                amount_minor: Set(amount_minor),
                detail: Set(detail),
                at: Set(at),
            },
        )
        .collect();
    let mut stored = Vec::with_capacity(rows.len());
    for piece in crate::store::shape::pieces(rows) {
        stored.extend(
            bid_event::Entity::insert_many(piece)
                .exec_with_returning(db)
                .await?,
        );
    }
    stored.sort_by_key(|e| e.id);
    Ok(stored)
}
