//! The bid timeline: every change a traveller cares about is an event they can read.

use chrono::{DateTime, Utc};
use sea_orm::{ActiveModelTrait, ConnectionTrait, DbErr, EntityTrait, NotSet, Set};

use crate::domain::bid::BidEventKind;
use crate::store::entities::bid_event;

/// Whether the bid was placed on a saved card (charge on award), read from its timeline: its
/// withdrawal or standby never had a hold to release or keep, whatever the bid holds now (an
/// "upgrade now" takes a hold later).
pub fn placed_on_saved_card(events: &[bid_event::Model]) -> bool {
    events
        .iter()
        .any(|e| e.kind == BidEventKind::CardSaved.as_str())
}

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
///
/// Only the ids come back from the database: the rest of each row is what was sent. Both
/// stores number the rows of an insert in the order of its values, so the ids sorted are the
/// events in the order given.
pub async fn record_many(
    db: &impl ConnectionTrait,
    events: Vec<(String, BidEventKind, Option<i64>, Option<String>)>,
    at: DateTime<Utc>,
) -> Result<Vec<bid_event::Model>, DbErr> {
    if events.is_empty() {
        return Ok(Vec::new());
    }
    let rows: Vec<bid_event::ActiveModel> = events
        .iter()
        .map(
            |(bid_id, kind, amount_minor, detail)| bid_event::ActiveModel {
                id: NotSet,
                bid_id: Set(bid_id.clone()),
                kind: Set(kind.as_str().to_owned()),
                amount_minor: Set(*amount_minor),
                detail: Set(detail.clone()),
                at: Set(at),
            },
        )
        .collect();
    let mut ids: Vec<i64> = Vec::with_capacity(rows.len());
    for piece in crate::store::shape::pieces(rows) {
        ids.extend(
            bid_event::Entity::insert_many(piece)
                .exec_with_returning_keys(db)
                .await?,
        );
    }
    if ids.len() != events.len() {
        return Err(DbErr::Custom(format!(
            "{} events written but {} ids returned",
            events.len(),
            ids.len()
        )));
    }
    ids.sort_unstable();
    Ok(ids
        .into_iter()
        .zip(events)
        .map(
            |(id, (bid_id, kind, amount_minor, detail))| bid_event::Model {
                id,
                bid_id,
                kind: kind.as_str().to_owned(),
                amount_minor,
                detail,
                at,
            },
        )
        .collect())
}
