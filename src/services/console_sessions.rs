//! Console sessions: a random token in an HttpOnly cookie; the database keeps only its SHA-256
//! and the session's CSRF token, which every console form carries and every POST checks.

use chrono::{DateTime, Duration, Utc};
use sea_orm::{ActiveModelTrait, ColumnTrait, DbErr, EntityTrait, QueryFilter, Set};
use sha2::{Digest, Sha256};

use crate::ids;
use crate::store::Db;
use crate::store::entities::{console_session, operator_user};

/// A working day: long enough not to sign in twice a shift, short enough to end on its own.
pub fn session_ttl() -> Duration {
    Duration::hours(12)
}

fn hash(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

/// Starts a session; returns the cookie token (never stored) and the session's CSRF token.
pub async fn start(
    db: &Db,
    user: &operator_user::Model,
    now: DateTime<Utc>,
) -> Result<(String, String), DbErr> {
    // Sessions that ran out are of no use to anyone: sweep them as new ones start.
    console_session::Entity::delete_many()
        .filter(console_session::Column::ExpiresAt.lte(now))
        .exec(db)
        .await?;
    let token = ids::random_token("cs", 40);
    let csrf = ids::random_token("csrf", 32);
    console_session::ActiveModel {
        token_hash: Set(hash(&token)),
        user_id: Set(user.id.clone()),
        csrf_token: Set(csrf.clone()),
        created_at: Set(now),
        expires_at: Set(now + session_ttl()),
    }
    .insert(db)
    .await?;
    Ok((token, csrf))
}

/// The live session of this token and its user.
pub async fn find(
    db: &Db,
    token: &str,
    now: DateTime<Utc>,
) -> Result<Option<(console_session::Model, operator_user::Model)>, DbErr> {
    let Some(session) = console_session::Entity::find_by_id(hash(token))
        .filter(console_session::Column::ExpiresAt.gt(now))
        .one(db)
        .await?
    else {
        return Ok(None);
    };
    let user = operator_user::Entity::find_by_id(session.user_id.clone())
        .one(db)
        .await?;
    Ok(user.map(|u| (session, u)))
}

/// Ends the session (sign out); unknown tokens are ignored.
pub async fn end(db: &Db, token: &str) -> Result<(), DbErr> {
    console_session::Entity::delete_by_id(hash(token))
        .exec(db)
        .await?;
    Ok(())
}

/// Constant-time comparison of a submitted CSRF token with the session's.
pub fn csrf_matches(expected: &str, given: &str) -> bool {
    let (a, b) = (expected.as_bytes(), given.as_bytes());
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}
