//! Stored answers to callers' `Idempotency-Key`s (`http::idempotency`), and the payment
//! provider's event ids, in one table.

use chrono::{DateTime, Utc};
use sea_orm::{ColumnTrait, DbErr, EntityTrait, QueryFilter};

use super::Db;
use super::entities::idempotency_key;

/// The principal under which the payments webhook records the provider's event ids, to apply
/// each once.
pub const PAYMENT_EVENTS: &str = "webhook:payments";

/// How long a caller's answer is replayed, as payment providers keep theirs: some answers
/// carry what should not stay (a new key's secret, a session token, a traveller's name), and a
/// day covers any retry of a lost answer.
pub const KEPT_FOR: chrono::Duration = chrono::Duration::hours(24);

/// Forgets callers' answers stored more than [`KEPT_FOR`] before `now` (the provider's event
/// ids stay); returns how many.
pub async fn forget_old(db: &Db, now: DateTime<Utc>) -> Result<u64, DbErr> {
    let forgotten = idempotency_key::Entity::delete_many()
        .filter(idempotency_key::Column::CreatedAt.lt(now - KEPT_FOR))
        .filter(idempotency_key::Column::Principal.ne(PAYMENT_EVENTS))
        .exec(db)
        .await?;
    Ok(forgotten.rows_affected)
}
