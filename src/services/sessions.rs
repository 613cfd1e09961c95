//! Traveller sessions: no account, no password. Booking reference + last name (or a partner
//! naming one of its bookings) gets a signed, expiring token for that one booking.
//!
//! The token is `v1.<booking id>.<expiry unix seconds>[.<api key id>].<HMAC-SHA256>`, the key
//! id naming the partner key that opened the session (it ends when that key is revoked); the
//! HMAC key lives in the `settings` table so every server process signs and verifies alike.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::{DateTime, Duration, TimeZone, Utc};
use hmac::{Hmac, Mac};
use rand::RngCore;
use sea_orm::{ActiveModelTrait, ConnectionTrait, DbErr, EntityTrait, Set};
use sha2::Sha256;

use crate::store::entities::setting;

const SECRET_SETTING: &str = "session_secret";

/// How long a session lasts: long enough to come back to the status page during a trip.
pub fn session_ttl() -> Duration {
    Duration::days(14)
}

#[derive(Clone)]
pub struct SessionSigner {
    key: Vec<u8>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionClaims {
    pub booking_id: String,
    pub expires_at: DateTime<Utc>,
    /// The partner's API key that opened this session, if a partner did.
    pub key_id: Option<String>,
}

impl SessionSigner {
    /// Reads the shared key, creating it on first start. Two processes racing here both
    /// end up with the one that was inserted first.
    pub async fn load_or_create(db: &impl ConnectionTrait) -> Result<Self, DbErr> {
        if let Some(row) = setting::Entity::find_by_id(SECRET_SETTING).one(db).await? {
            return Ok(Self::from_hex(&row.value));
        }
        let mut key = [0u8; 32];
        rand::rng().fill_bytes(&mut key);
        let inserted = setting::ActiveModel {
            name: Set(SECRET_SETTING.to_owned()),
            value: Set(hex::encode(key)),
        }
        .insert(db)
        .await;
        match inserted {
            Ok(row) => Ok(Self::from_hex(&row.value)),
            Err(_) => {
                let row = setting::Entity::find_by_id(SECRET_SETTING)
                    .one(db)
                    .await?
                    .ok_or_else(|| DbErr::RecordNotFound(SECRET_SETTING.into()))?;
                Ok(Self::from_hex(&row.value))
            }
        }
    }

    /// A signer with a given key (tests, tools); servers use [`Self::load_or_create`].
    pub fn from_key(key: Vec<u8>) -> Self {
        Self { key }
    }

    fn from_hex(value: &str) -> Self {
        Self {
            key: hex::decode(value).unwrap_or_else(|_| value.as_bytes().to_vec()),
        }
    }

    pub fn sign(&self, booking_id: &str, expires_at: DateTime<Utc>) -> String {
        self.signed(format!("v1.{booking_id}.{}", expires_at.timestamp()))
    }

    /// A session a partner opened with one of its keys: valid only while that key is.
    pub fn sign_for_key(
        &self,
        booking_id: &str,
        expires_at: DateTime<Utc>,
        key_id: &str,
    ) -> String {
        self.signed(format!(
            "v1.{booking_id}.{}.{key_id}",
            expires_at.timestamp()
        ))
    }

    fn signed(&self, body: String) -> String {
        format!("{body}.{}", URL_SAFE_NO_PAD.encode(self.mac(&body)))
    }

    /// The claims of a genuine, unexpired token; `None` for anything else.
    pub fn verify(&self, token: &str, now: DateTime<Utc>) -> Option<SessionClaims> {
        let (body, signature) = token.rsplit_once('.')?;
        let signature = URL_SAFE_NO_PAD.decode(signature).ok()?;
        let mut mac = Hmac::<Sha256>::new_from_slice(&self.key).expect("HMAC takes any key");
        mac.update(body.as_bytes());
        mac.verify_slice(&signature).ok()?;
        let mut parts = body.split('.');
        let (Some("v1"), Some(booking_id), Some(expiry), key_id, None) = (
            parts.next(),
            parts.next(),
            parts.next(),
            parts.next(),
            parts.next(),
        ) else {
            return None;
        };
        let expires_at = Utc.timestamp_opt(expiry.parse().ok()?, 0).single()?;
        (expires_at > now).then(|| SessionClaims {
            booking_id: booking_id.to_owned(),
            expires_at,
            key_id: key_id.map(str::to_owned),
        })
    }

    /// The anti-forgery token the pages put in their forms for one session: derived from
    /// the session token, so it needs no storage and dies with the session.
    pub fn form_token(&self, session_token: &str) -> String {
        URL_SAFE_NO_PAD.encode(self.mac(&format!("form.{session_token}")))
    }

    /// A signature of `value` for one `purpose` (an unsubscribe link, say): never valid as a
    /// session token, and a tag for one purpose is useless for another.
    pub fn tag(&self, purpose: &str, value: &str) -> String {
        URL_SAFE_NO_PAD.encode(self.mac(&format!("{purpose}:{value}")))
    }

    /// Whether `tag` is [`Self::tag`] of this purpose and value (constant-time comparison).
    pub fn check_tag(&self, purpose: &str, value: &str, tag: &str) -> bool {
        let Ok(tag) = URL_SAFE_NO_PAD.decode(tag) else {
            return false;
        };
        let mut mac = Hmac::<Sha256>::new_from_slice(&self.key).expect("HMAC takes any key");
        mac.update(format!("{purpose}:{value}").as_bytes());
        mac.verify_slice(&tag).is_ok()
    }

    fn mac(&self, body: &str) -> Vec<u8> {
        let mut mac = Hmac::<Sha256>::new_from_slice(&self.key).expect("HMAC takes any key");
        mac.update(body.as_bytes());
        mac.finalize().into_bytes().to_vec()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn signer() -> SessionSigner {
        SessionSigner {
            key: b"test key".to_vec(),
        }
    }

    #[test]
    fn a_token_opens_its_booking_until_it_expires() {
        let now = Utc::now();
        let token = signer().sign("bkg_1", now + Duration::hours(1));
        let claims = signer().verify(&token, now).unwrap();
        assert_eq!(claims.booking_id, "bkg_1");
        assert!(signer().verify(&token, now + Duration::hours(2)).is_none());
    }

    #[test]
    fn a_partner_session_names_its_key_and_cannot_be_rid_of_it() {
        let now = Utc::now();
        let token = signer().sign_for_key("bkg_1", now + Duration::hours(1), "key_9");
        let claims = signer().verify(&token, now).unwrap();
        assert_eq!(claims.booking_id, "bkg_1");
        assert_eq!(claims.key_id.as_deref(), Some("key_9"));
        assert_eq!(
            signer()
                .verify(&signer().sign("bkg_1", now + Duration::hours(1)), now)
                .unwrap()
                .key_id,
            None
        );
        // Dropping the key from the token breaks its signature.
        let (body, mac) = token.rsplit_once('.').unwrap();
        let without = format!("{}.{mac}", body.trim_end_matches(".key_9"));
        assert!(signer().verify(&without, now).is_none());
    }

    #[test]
    fn a_tampered_token_opens_nothing() {
        let now = Utc::now();
        let token = signer().sign("bkg_1", now + Duration::hours(1));
        let forged = token.replace("bkg_1", "bkg_2");
        assert!(signer().verify(&forged, now).is_none());
        let other = SessionSigner {
            key: b"other".to_vec(),
        };
        assert!(other.verify(&token, now).is_none());
        assert!(signer().verify("garbage", now).is_none());
    }
}
