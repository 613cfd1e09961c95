//! API keys of an operator: list, create (secret shown once), revoke.

use chrono::Utc;
use sea_orm::sea_query::Expr;
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, DbErr, EntityTrait, IntoActiveModel,
    QueryFilter, QueryOrder, Set,
};

use super::audit::{self, Actor};
use crate::store::api_keys::{self, Scope};
use crate::store::entities::{api_key, webhook_endpoint};
use crate::store::{Db, write_txn};

pub async fn list(db: &Db, operator_id: &str) -> Result<Vec<api_key::Model>, DbErr> {
    api_key::Entity::find()
        .filter(api_key::Column::OperatorId.eq(operator_id))
        .order_by_asc(api_key::Column::CreatedAt)
        .order_by_asc(api_key::Column::Id)
        .all(db)
        .await
}

pub async fn create(
    db: &Db,
    by: &Actor,
    scope: Scope,
    name: &str,
) -> Result<(api_key::Model, String), DbErr> {
    let txn = write_txn(db).await?;
    let (key, secret) = api_keys::issue(&txn, &by.operator_id, scope, name).await?;
    audit::record(
        &txn,
        by,
        "api_key.created",
        &key.id,
        None,
        Some(format!(
            "name={name:?} scope={} prefix={}",
            scope.as_str(),
            key.prefix
        )),
    )
    .await?;
    txn.commit().await?;
    Ok((key, secret))
}

/// Revokes a key of this operator; `None` when there is no such key. Revoking twice is harmless.
pub async fn revoke(db: &Db, by: &Actor, key_id: &str) -> Result<Option<api_key::Model>, DbErr> {
    let Some(key) = api_key::Entity::find_by_id(key_id.to_owned())
        .filter(api_key::Column::OperatorId.eq(&by.operator_id))
        .one(db)
        .await?
    else {
        return Ok(None);
    };
    if key.revoked_at.is_some() {
        return Ok(Some(key));
    }
    let txn = write_txn(db).await?;
    let mut am = key.into_active_model();
    am.revoked_at = Set(Some(Utc::now()));
    let revoked = am.update(&txn).await?;
    // What the partner set up with the key stops with it: its webhook endpoints are paused
    // (an operator key may resume one), as its traveller sessions end (`live`).
    webhook_endpoint::Entity::update_many()
        .col_expr(webhook_endpoint::Column::Active, Expr::value(false))
        .filter(webhook_endpoint::Column::OwnerKeyId.eq(&revoked.id))
        .exec(&txn)
        .await?;
    audit::record(
        &txn,
        by,
        "api_key.revoked",
        &revoked.id,
        None,
        Some(format!("name={:?}", revoked.name)),
    )
    .await?;
    txn.commit().await?;
    Ok(Some(revoked))
}

/// The key with this secret, live or revoked, if any.
async fn with_secret(db: &Db, secret: &str) -> Result<Option<api_key::Model>, DbErr> {
    api_key::Entity::find()
        .filter(api_key::Column::SecretHash.eq(api_keys::hash_secret(secret)))
        .one(db)
        .await
}

/// The live key with this secret, if any.
pub async fn authenticate(db: &Db, secret: &str) -> Result<Option<api_key::Model>, DbErr> {
    Ok(with_secret(db, secret)
        .await?
        .filter(|k| k.revoked_at.is_none()))
}

/// Whether the key with this id exists and is not revoked: a partner's traveller sessions
/// last only as long as the key that opened them.
pub async fn live(db: &impl ConnectionTrait, key_id: &str) -> Result<bool, DbErr> {
    Ok(api_key::Entity::find_by_id(key_id.to_owned())
        .filter(api_key::Column::RevokedAt.is_null())
        .one(db)
        .await?
        .is_some())
}

/// Whether this secret is a key that was revoked (not merely unknown).
pub async fn revoked(db: &Db, secret: &str) -> Result<bool, DbErr> {
    Ok(with_secret(db, secret)
        .await?
        .is_some_and(|k| k.revoked_at.is_some()))
}
