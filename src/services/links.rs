//! Links that open a traveller's booking without a password: `{public url}/s/{token}`, where
//! the token is a session token ([`SessionSigner`]) that lasts long enough to come back after
//! the trip. Emails, the payment-failed notice and partner apps all hand out this one form;
//! the traveller pages (`GET /s/{token}`) turn it into a session and show the booking's status.

use chrono::{DateTime, Duration, Utc};

use crate::services::sessions::SessionSigner;

/// Where this service is reached from outside (`https://upgrade.example.com`, no trailing `/`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PublicUrl(String);

impl PublicUrl {
    pub fn new(url: impl Into<String>) -> Self {
        Self(url.into().trim_end_matches('/').to_owned())
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// How long a link in a message keeps working: past a typical trip and its refunds.
pub fn link_ttl() -> Duration {
    Duration::days(60)
}

/// The path part of a booking's status link.
pub fn status_path(signer: &SessionSigner, booking_id: &str, now: DateTime<Utc>) -> String {
    format!("/s/{}", signer.sign(booking_id, now + link_ttl()))
}

/// The absolute status link for a booking, as put in emails and webhook payloads.
pub fn status_url(
    base: &PublicUrl,
    signer: &SessionSigner,
    booking_id: &str,
    now: DateTime<Utc>,
) -> String {
    format!("{}{}", base.as_str(), status_path(signer, booking_id, now))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_status_link_opens_its_booking_and_no_other() {
        let signer = SessionSigner::from_key(b"k".to_vec());
        let now = Utc::now();
        let url = status_url(
            &PublicUrl::new("https://up.example/"),
            &signer,
            "bkg_1",
            now,
        );
        let token = url.strip_prefix("https://up.example/s/").unwrap();
        assert_eq!(signer.verify(token, now).unwrap().booking_id, "bkg_1");
        assert!(
            signer
                .verify(token, now + link_ttl() + Duration::seconds(1))
                .is_none()
        );
    }
}
