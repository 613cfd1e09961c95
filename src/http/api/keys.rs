//! Operators: API keys for themselves and their partners.

use actix_web::{HttpResponse, delete, get, post, web};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::auth::OperatorAuth;
use crate::domain::validation::FieldErrors;
use crate::http::json::JsonBody;
use crate::http::problem::Problem;
use crate::services::keys;
use crate::store::Db;
use crate::store::api_keys::Scope;
use crate::store::entities::api_key;

#[derive(Debug, Serialize, ToSchema)]
#[schema(example = json!({"id": "key_2b4d6f8h0k2m4p6r8t1v", "name": "Booking engine", "scope": "partner", "prefix": "sk_pt_4k9w",
    "created_at": "2026-11-23T09:00:00Z", "revoked_at": null}))]
pub struct KeyView {
    #[schema(example = "key_3m8q1t5v7x9z2b4d6f8h")]
    pub id: String,
    pub name: String,
    /// `operator` or `partner`.
    pub scope: String,
    /// The first characters of the secret, to recognise it.
    #[schema(example = "sk_pt_4k9w")]
    pub prefix: String,
    pub created_at: DateTime<Utc>,
    pub revoked_at: Option<DateTime<Utc>>,
}

#[derive(Debug, Serialize, ToSchema)]
#[schema(example = json!({"id": "key_2b4d6f8h0k2m4p6r8t1v", "name": "Booking engine", "scope": "partner", "prefix": "sk_pt_4k9w",
    "created_at": "2026-11-23T09:00:00Z", "revoked_at": null, "secret": "sk_pt_4k9wz0c2e4g6j8m1p3r5t7v9x1z3b5d7"}))]
pub struct NewKeyView {
    #[serde(flatten)]
    pub key: KeyView,
    /// The secret, shown this once: store it now.
    #[schema(example = "sk_pt_4k9wz0c2e4g6j8m1p3r5t7v9x1z3b5d7")]
    pub secret: String,
}

#[derive(Debug, Serialize, ToSchema)]
#[schema(example = json!({"items": [{"id": "key_2b4d6f8h0k2m4p6r8t1v", "name": "Booking engine", "scope": "partner", "prefix": "sk_pt_4k9w",
    "created_at": "2026-11-23T09:00:00Z", "revoked_at": null}]}))]
pub struct KeyList {
    pub items: Vec<KeyView>,
}

fn view(k: api_key::Model) -> KeyView {
    KeyView {
        id: k.id,
        name: k.name,
        scope: k.scope,
        prefix: k.prefix,
        created_at: k.created_at,
        revoked_at: k.revoked_at,
    }
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"name": "Booking engine", "scope": "partner"}))]
pub struct NewKey {
    pub name: String,
    /// `operator` (manage lots) or `partner` (act for this operator's travellers).
    pub scope: String,
}

/// List API keys (secrets are never shown again).
#[utoipa::path(tag = "operator", security(("api_key" = [])), responses((status = 200, description = "Keys", body = KeyList)))]
#[get("/v1/api-keys")]
pub async fn list(auth: OperatorAuth, db: web::Data<Db>) -> Result<HttpResponse, Problem> {
    let items = keys::list(&db, &auth.operator_id)
        .await?
        .into_iter()
        .map(view)
        .collect();
    Ok(HttpResponse::Ok().json(KeyList { items }))
}

/// Create an API key; its secret is in this response only.
#[utoipa::path(
    tag = "operator", security(("api_key" = [])), request_body = NewKey,
    params(("Idempotency-Key" = Option<String>, Header, description = "Makes a retry safe")),
    responses(
        (status = 201, description = "Created", body = NewKeyView),
        (status = 422, description = "Invalid", body = Problem, content_type = "application/problem+json"),
    )
)]
#[post("/v1/api-keys")]
pub async fn create(
    auth: OperatorAuth,
    db: web::Data<Db>,
    JsonBody(input): JsonBody<NewKey>,
) -> Result<HttpResponse, Problem> {
    let mut e = FieldErrors::new();
    let scope = match input.scope.as_str() {
        "operator" => Some(Scope::Operator),
        "partner" => Some(Scope::Partner),
        other => {
            e.add(
                "scope",
                format!("'{other}' is not one of: operator, partner"),
            );
            None
        }
    };
    let name = input.name.trim();
    if name.is_empty() || name.chars().count() > 100 {
        e.add("name", "must be 1 to 100 characters");
    }
    let (Some(scope), true) = (scope, e.is_empty()) else {
        return Err(e.into());
    };
    let (key, secret) = keys::create(&db, &auth.actor(), scope, name).await?;
    Ok(HttpResponse::Created().json(NewKeyView {
        key: view(key),
        secret,
    }))
}

/// Revoke an API key: it stops working at once. Revoking twice is harmless.
#[utoipa::path(
    tag = "operator", security(("api_key" = [])),
    params(("id" = String, Path, description = "Key id"), ("Idempotency-Key" = Option<String>, Header, description = "Makes a retry safe")),
    responses(
        (status = 200, description = "Revoked", body = KeyView),
        (status = 404, description = "No such key", body = Problem, content_type = "application/problem+json"),
    )
)]
#[delete("/v1/api-keys/{id}")]
pub async fn revoke(
    auth: OperatorAuth,
    db: web::Data<Db>,
    id: web::Path<String>,
) -> Result<HttpResponse, Problem> {
    let key = keys::revoke(&db, &auth.actor(), &id)
        .await?
        .ok_or_else(|| Problem::not_found("No such API key."))?;
    Ok(HttpResponse::Ok().json(view(key)))
}
