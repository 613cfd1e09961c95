//! Who changed what: one row per change made from the console or with an operator API key,
//! written in the same transaction as the change itself, so the log never claims a change that
//! was rolled back nor misses one that was made.

use chrono::{DateTime, Utc};
use sea_orm::sea_query::LikeExpr;
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, DbErr, EntityTrait, QueryFilter, QueryOrder,
    QuerySelect, Set,
};

use crate::ids;
use crate::store::entities::audit_entry;
use crate::store::{Db, keyset};

/// The operator a change is made for, and who made it (a console user or an API key).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Actor {
    pub operator_id: String,
    pub label: String,
}

impl Actor {
    pub fn user(operator_id: &str, email: &str) -> Self {
        Self {
            operator_id: operator_id.to_owned(),
            label: format!("user:{email}"),
        }
    }

    pub fn api_key(operator_id: &str, key_id: &str, key_name: &str) -> Self {
        Self {
            operator_id: operator_id.to_owned(),
            label: format!("api_key:{key_name} ({key_id})"),
        }
    }

    /// The traveller of a booking, acting on it (erasing their data).
    pub fn traveller(operator_id: &str) -> Self {
        Self {
            operator_id: operator_id.to_owned(),
            label: "traveller".to_owned(),
        }
    }

    /// Changes made by the command line or by set-up code, not by a person signed in.
    pub fn system(operator_id: &str, what: &str) -> Self {
        Self {
            operator_id: operator_id.to_owned(),
            label: format!("system:{what}"),
        }
    }
}

/// Records one change; call it on the transaction that makes the change.
pub async fn record(
    conn: &impl ConnectionTrait,
    actor: &Actor,
    action: &str,
    subject: &str,
    before: Option<String>,
    after: Option<String>,
) -> Result<(), DbErr> {
    audit_entry::ActiveModel {
        id: Set(ids::new_id("aud")),
        operator_id: Set(actor.operator_id.clone()),
        actor: Set(actor.label.clone()),
        action: Set(action.to_owned()),
        subject: Set(subject.to_owned()),
        before: Set(before),
        after: Set(after),
        at: Set(Utc::now()),
    }
    .insert(conn)
    .await?;
    Ok(())
}

/// The operator's most recent changes first.
/// `after` is the `(at, id)` of the last entry already shown: the next ones are older.
pub async fn list(
    db: &Db,
    operator_id: &str,
    action_prefix: Option<&str>,
    after: Option<(DateTime<Utc>, String)>,
    limit: u64,
) -> Result<Vec<audit_entry::Model>, DbErr> {
    let mut query =
        audit_entry::Entity::find().filter(audit_entry::Column::OperatorId.eq(operator_id));
    if let Some(prefix) = action_prefix.filter(|p| !p.is_empty()) {
        // Actions are written in lower case, so lowering the prefix gives the same answer on
        // SQLite (whose LIKE ignores ASCII case) and PostgreSQL; `%` and `_` are escaped so
        // that they are matched as themselves.
        let escaped = prefix
            .to_lowercase()
            .replace('\\', "\\\\")
            .replace('%', "\\%")
            .replace('_', "\\_");
        query = query.filter(
            audit_entry::Column::Action.like(LikeExpr::new(format!("{escaped}%")).escape('\\')),
        );
    }
    if let Some((at, id)) = after {
        let columns = (audit_entry::Column::At, audit_entry::Column::Id);
        query = query.filter(keyset::before(columns, at, id));
    }
    query
        .order_by_desc(audit_entry::Column::At)
        .order_by_desc(audit_entry::Column::Id)
        .limit(limit)
        .all(db)
        .await
}
