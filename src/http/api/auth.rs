//! Who is calling: an operator key, a partner key (both `Authorization: Bearer sk_…`), or a
//! traveller session (`Authorization: Bearer v1.…` or the `surclass_session` cookie).

use std::future::Future;
use std::pin::Pin;

use actix_web::dev::Payload;
use actix_web::{FromRequest, HttpRequest, web};
use chrono::Utc;
use sea_orm::{DbErr, EntityTrait};

use crate::http::problem::Problem;
use crate::services::keys;
use crate::services::sessions::{SessionClaims, SessionSigner};
use crate::store::Db;
use crate::store::entities::booking;

pub const SESSION_COOKIE: &str = "surclass_session";

/// A live API key with `operator` scope.
pub struct OperatorAuth {
    pub operator_id: String,
    key_id: String,
    key_name: String,
}

impl OperatorAuth {
    /// Who the audit log names for changes made with this key.
    pub fn actor(&self) -> crate::services::audit::Actor {
        crate::services::audit::Actor::api_key(&self.operator_id, &self.key_id, &self.key_name)
    }
}

/// A live API key with `partner` scope: acts for travellers of one operator.
pub struct PartnerAuth {
    pub operator_id: String,
    /// The key's id: sessions it opens end when it is revoked.
    pub key_id: String,
}

/// A traveller signed in to one booking.
pub struct TravellerAuth {
    pub booking: booking::Model,
}

fn bearer(req: &HttpRequest) -> Option<String> {
    let value = req.headers().get("authorization")?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then(|| token.trim().to_owned())
}

fn db(req: &HttpRequest) -> Db {
    req.app_data::<web::Data<Db>>()
        .expect("database configured")
        .get_ref()
        .clone()
}

async fn api_key(
    db: &Db,
    token: Option<String>,
    scope: &'static str,
) -> Result<crate::store::entities::api_key::Model, Problem> {
    let token = token
        .ok_or_else(|| Problem::unauthorized("Send an API key as `Authorization: Bearer sk_…`."))?;
    let key = keys::authenticate(db, &token)
        .await?
        .ok_or_else(|| Problem::unauthorized("This API key is unknown or revoked."))?;
    if key.scope != scope {
        return Err(Problem::forbidden(format!(
            "This route needs a key with {scope} scope; this key has {} scope.",
            key.scope
        )));
    }
    Ok(key)
}

impl FromRequest for OperatorAuth {
    type Error = Problem;
    type Future = Pin<Box<dyn Future<Output = Result<Self, Problem>>>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let (db, token) = (db(req), bearer(req));
        Box::pin(async move {
            let key = api_key(&db, token, "operator").await?;
            Ok(Self {
                operator_id: key.operator_id,
                key_id: key.id,
                key_name: key.name,
            })
        })
    }
}

impl FromRequest for PartnerAuth {
    type Error = Problem;
    type Future = Pin<Box<dyn Future<Output = Result<Self, Problem>>>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let (db, token) = (db(req), bearer(req));
        Box::pin(async move {
            let key = api_key(&db, token, "partner").await?;
            Ok(Self {
                operator_id: key.operator_id,
                key_id: key.id,
            })
        })
    }
}

/// A verified traveller session, the booking not yet read: for routes that read it in a
/// batch with others' (bid intake). Answers 401 as [`TravellerAuth`] does when the booking
/// turns out to be gone.
pub struct TravellerSession {
    pub booking_id: String,
}

fn signed_out() -> Problem {
    Problem::unauthorized("Sign in again with your booking reference and last name.")
}

fn session_claims(req: &HttpRequest) -> Result<SessionClaims, Problem> {
    let signer = req
        .app_data::<web::Data<SessionSigner>>()
        .expect("signer configured");
    bearer(req)
        .or_else(|| req.cookie(SESSION_COOKIE).map(|c| c.value().to_owned()))
        .and_then(|t| signer.verify(&t, Utc::now()))
        .ok_or_else(signed_out)
}

/// A session a partner opened lasts only while the partner's key does.
async fn key_still_live(db: &Db, claims: &SessionClaims) -> Result<bool, DbErr> {
    match &claims.key_id {
        Some(key_id) => keys::live(db, key_id).await,
        None => Ok(true),
    }
}

fn key_revoked() -> Problem {
    Problem::unauthorized(
        "The partner that opened this session can no longer act for travellers: sign in with your booking reference and last name.",
    )
}

/// Whether the request's credential was withdrawn since it was given: an API key revoked, or
/// a session (signed and unexpired) for a booking erased. No credential, or an unknown or
/// expired one, is not: a route that needs none (signing in) still takes the request, and
/// one that does answers for itself. The idempotency guard asks before it replays a stored
/// answer, which it does before any route's own check.
pub async fn withdrawn(req: &HttpRequest) -> Result<bool, DbErr> {
    let db = db(req);
    if let Ok(claims) = session_claims(req) {
        if !key_still_live(&db, &claims).await? {
            return Ok(true);
        }
        let booking = booking::Entity::find_by_id(claims.booking_id)
            .one(&db)
            .await?;
        return Ok(booking.is_none_or(|b| b.erased_at.is_some()));
    }
    match bearer(req) {
        Some(token) => keys::revoked(&db, &token).await,
        None => Ok(false),
    }
}

impl FromRequest for TravellerSession {
    type Error = Problem;
    type Future = Pin<Box<dyn Future<Output = Result<Self, Problem>>>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let claims = session_claims(req);
        let db = db(req);
        Box::pin(async move {
            let claims = claims?;
            // A traveller's own session needs no read here; a partner's, its key.
            if !key_still_live(&db, &claims).await? {
                return Err(key_revoked());
            }
            Ok(Self {
                booking_id: claims.booking_id,
            })
        })
    }
}

impl FromRequest for TravellerAuth {
    type Error = Problem;
    type Future = Pin<Box<dyn Future<Output = Result<Self, Problem>>>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let db = db(req);
        let claims = session_claims(req);
        Box::pin(async move {
            let claims = claims?;
            if !key_still_live(&db, &claims).await? {
                return Err(key_revoked());
            }
            let booking = booking::Entity::find_by_id(claims.booking_id)
                .one(&db)
                .await?
                .filter(|b| b.erased_at.is_none())
                .ok_or_else(signed_out)?;
            Ok(Self { booking })
        })
    }
}
