//! The simulated gateway's two tables (migration `m20261123_000002_simulated_gateway`).

use chrono::{DateTime, Utc};
use sea_orm::{
    ActiveModelTrait, ActiveValue::Set, ColumnTrait, ConnectionTrait, DbErr, EntityTrait,
    QueryFilter, QueryOrder, QuerySelect,
};
use serde::{Serialize, de::DeserializeOwned};

use crate::payments::PaymentError;
use crate::store::shape::{padded, pieces};

pub mod object {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "simulated_gateway_objects")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub id: String,
        pub kind: String,
        pub body: String,
        pub created_at: DateTimeUtc,
        pub updated_at: DateTimeUtc,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

pub mod request {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "simulated_gateway_requests")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub idempotency_key: String,
        pub operation: String,
        pub fingerprint: String,
        pub response: String,
        pub created_at: DateTimeUtc,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

/// Whether `db` keeps any gateway state (a store from before the gateway's own file).
pub(super) async fn holds_any(db: &impl ConnectionTrait) -> Result<bool, PaymentError> {
    Ok(object::Entity::find()
        .select_only()
        .column(object::Column::Id)
        .into_tuple::<String>()
        .one(db)
        .await
        .map_err(db_error)?
        .is_some())
}

pub(super) fn db_error(error: DbErr) -> PaymentError {
    PaymentError::Transient(format!("simulated gateway store: {error}"))
}

fn corrupt(id: &str, error: serde_json::Error) -> PaymentError {
    PaymentError::Protocol(format!(
        "simulated gateway object {id} is unreadable: {error}"
    ))
}

/// Reads an object; `lock` takes the row lock on PostgreSQL (SQLite serialises writers).
pub(super) async fn load<T: DeserializeOwned>(
    c: &impl ConnectionTrait,
    id: &str,
    lock: bool,
) -> Result<Option<T>, PaymentError> {
    let mut query = object::Entity::find_by_id(id.to_owned());
    if lock {
        query = query.lock_exclusive();
    }
    match query.one(c).await.map_err(db_error)? {
        Some(row) => serde_json::from_str(&row.body)
            .map(Some)
            .map_err(|e| corrupt(id, e)),
        None => Ok(None),
    }
}

pub(super) async fn insert<T: Serialize>(
    c: &impl ConnectionTrait,
    id: &str,
    kind: &str,
    value: &T,
) -> Result<(), PaymentError> {
    let now = Utc::now();
    object::ActiveModel {
        id: Set(id.to_owned()),
        kind: Set(kind.to_owned()),
        body: Set(serde_json::to_string(value).expect("simulated objects serialise")),
        created_at: Set(now),
        updated_at: Set(now),
    }
    .insert(c)
    .await
    .map_err(db_error)?;
    Ok(())
}

/// Every object of `kind` created at or after `since`, newest first, with its creation time.
pub(super) async fn created_since<T: DeserializeOwned>(
    c: &impl ConnectionTrait,
    kind: &str,
    since: DateTime<Utc>,
) -> Result<Vec<(DateTime<Utc>, T)>, PaymentError> {
    object::Entity::find()
        .filter(object::Column::Kind.eq(kind))
        .filter(object::Column::CreatedAt.gte(since))
        .order_by_desc(object::Column::CreatedAt)
        .all(c)
        .await
        .map_err(db_error)?
        .into_iter()
        .map(|row| {
            serde_json::from_str(&row.body)
                .map(|value| (row.created_at, value))
                .map_err(|e| corrupt(&row.id, e))
        })
        .collect()
}

pub(super) async fn update<T: Serialize>(
    c: &impl ConnectionTrait,
    id: &str,
    value: &T,
) -> Result<(), PaymentError> {
    object::ActiveModel {
        id: Set(id.to_owned()),
        body: Set(serde_json::to_string(value).expect("simulated objects serialise")),
        updated_at: Set(Utc::now()),
        ..Default::default()
    }
    .update(c)
    .await
    .map_err(db_error)?;
    Ok(())
}

pub(super) async fn find_request(
    c: &impl ConnectionTrait,
    key: &str,
) -> Result<Option<request::Model>, PaymentError> {
    request::Entity::find_by_id(key.to_owned())
        .one(c)
        .await
        .map_err(db_error)
}

pub(super) async fn insert_request(
    c: &impl ConnectionTrait,
    key: &str,
    operation: &str,
    fingerprint: &str,
    response: String,
) -> Result<(), DbErr> {
    request::ActiveModel {
        idempotency_key: Set(key.to_owned()),
        operation: Set(operation.to_owned()),
        fingerprint: Set(fingerprint.to_owned()),
        response: Set(response),
        created_at: Set(Utc::now()),
    }
    .insert(c)
    .await
    .map(|_| ())
}

/// The stored answers to any of `keys`, by key.
pub(super) async fn find_requests(
    c: &impl ConnectionTrait,
    keys: Vec<String>,
) -> Result<Vec<request::Model>, PaymentError> {
    request::Entity::find()
        .filter(request::Column::IdempotencyKey.is_in(padded(keys)))
        .all(c)
        .await
        .map_err(db_error)
}

/// Inserts many new objects of one kind, a few statements of fixed shapes.
pub(super) async fn insert_many<T: Serialize>(
    c: &impl ConnectionTrait,
    kind: &str,
    values: &[(String, T)],
) -> Result<(), DbErr> {
    if values.is_empty() {
        return Ok(());
    }
    let now = Utc::now();
    let rows = values
        .iter()
        .map(|(id, value)| object::ActiveModel {
            id: Set(id.clone()),
            kind: Set(kind.to_owned()),
            body: Set(serde_json::to_string(value).expect("simulated objects serialise")),
            created_at: Set(now),
            updated_at: Set(now),
        })
        .collect();
    for piece in pieces(rows) {
        object::Entity::insert_many(piece).exec(c).await?;
    }
    Ok(())
}

/// Stores many answers (key, operation, fingerprint, response), a few statements of fixed
/// shapes.
pub(super) async fn insert_requests(
    c: &impl ConnectionTrait,
    rows: Vec<(String, &'static str, String, String)>,
) -> Result<(), DbErr> {
    if rows.is_empty() {
        return Ok(());
    }
    let now = Utc::now();
    let rows = rows
        .into_iter()
        .map(
            |(key, operation, fingerprint, response)| request::ActiveModel {
                idempotency_key: Set(key),
                operation: Set(operation.to_owned()),
                fingerprint: Set(fingerprint),
                response: Set(response),
                created_at: Set(now),
            },
        )
        .collect();
    for piece in pieces(rows) {
        request::Entity::insert_many(piece).exec(c).await?;
    }
    Ok(())
}
