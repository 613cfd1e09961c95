//! API keys: random, shown once, stored as a SHA-256 hash, revocable.
//!
//! A fast hash (not argon2) is right here: the secret has 160 random bits, so there is
//! nothing to brute-force, and every API request looks its key up.

use chrono::Utc;
use sea_orm::{ActiveModelTrait, ConnectionTrait, DbErr, Set};
use sha2::{Digest, Sha256};

use super::entities::api_key;
use crate::ids;

/// What a key may do: `operator` keys manage the operator's lots; `partner` keys act for
/// travellers of that operator only.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    Operator,
    Partner,
}

impl Scope {
    pub fn as_str(self) -> &'static str {
        match self {
            Scope::Operator => "operator",
            Scope::Partner => "partner",
        }
    }
}

pub fn hash_secret(secret: &str) -> String {
    hex::encode(Sha256::digest(secret.as_bytes()))
}

/// Creates a key and returns it with its secret, the only time the secret exists in clear.
pub async fn issue(
    db: &impl ConnectionTrait,
    operator_id: &str,
    scope: Scope,
    name: &str,
) -> Result<(api_key::Model, String), DbErr> {
    let secret = ids::random_token(
        match scope {
            Scope::Operator => "sk_op",
            Scope::Partner => "sk_pt",
        },
        32,
    );
    let model = api_key::ActiveModel {
        id: Set(ids::new_id("key")),
        operator_id: Set(operator_id.to_owned()),
        scope: Set(scope.as_str().to_owned()),
        name: Set(name.to_owned()),
        prefix: Set(secret[..10].to_owned()),
        secret_hash: Set(hash_secret(&secret)),
        created_at: Set(Utc::now()),
        revoked_at: Set(None),
        last_used_at: Set(None),
    }
    .insert(db)
    .await?;
    Ok((model, secret))
}
