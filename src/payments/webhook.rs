//! Stripe's webhook signature scheme, for the simulated gateway's events and for tests.
//! (The Stripe gateway verifies through `stripe_webhook::Webhook::construct_event`.)
//!
//! Header: `Stripe-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256(secret, "<t>.<body>")>`;
//! several `v1` entries may appear (secret rotation); any one matching is enough. Events
//! signed more than [`TOLERANCE_SECONDS`] away from now are refused (replays).

use sha2::{Digest, Sha256};

use super::error::WebhookError;

pub const TOLERANCE_SECONDS: i64 = 300;

/// The header value signing `payload` at `timestamp` with `secret`.
pub fn sign(payload: &str, secret: &str, timestamp: i64) -> String {
    let mac = hmac_sha256(
        secret.as_bytes(),
        format!("{timestamp}.{payload}").as_bytes(),
    );
    format!("t={timestamp},v1={}", hex::encode(mac))
}

/// Checks `header` against `payload`; returns the signed timestamp.
pub fn verify(payload: &str, header: &str, secret: &str, now: i64) -> Result<i64, WebhookError> {
    if secret.is_empty() {
        return Err(WebhookError::NotConfigured);
    }
    let mut timestamp = None;
    let mut candidates = Vec::new();
    for pair in header.split(',') {
        let (key, value) = pair.trim().split_once('=').ok_or(WebhookError::BadHeader)?;
        match key {
            "t" => timestamp = Some(value.parse::<i64>().map_err(|_| WebhookError::BadHeader)?),
            "v1" => candidates.push(value),
            _ => {}
        }
    }
    let timestamp = timestamp.ok_or(WebhookError::BadHeader)?;
    if candidates.is_empty() {
        return Err(WebhookError::BadHeader);
    }
    let expected = hmac_sha256(
        secret.as_bytes(),
        format!("{timestamp}.{payload}").as_bytes(),
    );
    let matches = candidates.iter().any(|candidate| {
        hex::decode(candidate).is_ok_and(|given| constant_time_eq(&given, &expected))
    });
    if !matches {
        return Err(WebhookError::BadSignature);
    }
    if (now - timestamp).abs() > TOLERANCE_SECONDS {
        return Err(WebhookError::Stale(timestamp));
    }
    Ok(timestamp)
}

fn hmac_sha256(key: &[u8], message: &[u8]) -> [u8; 32] {
    const BLOCK: usize = 64;
    let mut block = [0u8; BLOCK];
    if key.len() > BLOCK {
        block[..32].copy_from_slice(&Sha256::digest(key));
    } else {
        block[..key.len()].copy_from_slice(key);
    }
    let mut inner = Sha256::new();
    inner.update(block.map(|b| b ^ 0x36));
    inner.update(message);
    let mut outer = Sha256::new();
    outer.update(block.map(|b| b ^ 0x5c));
    outer.update(inner.finalize());
    outer.finalize().into()
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hmac_matches_the_rfc_4231_vector() {
        // RFC 4231 test case 2.
        let mac = hmac_sha256(b"Jefe", b"what do ya want for nothing?");
        assert_eq!(
            hex::encode(mac),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }

    #[test]
    fn a_signed_payload_verifies_and_a_changed_one_does_not() {
        let header = sign("{\"id\":\"evt_1\"}", "whsec_test", 1_700_000_000);
        assert_eq!(
            verify("{\"id\":\"evt_1\"}", &header, "whsec_test", 1_700_000_010),
            Ok(1_700_000_000)
        );
        assert_eq!(
            verify("{\"id\":\"evt_2\"}", &header, "whsec_test", 1_700_000_010),
            Err(WebhookError::BadSignature)
        );
        assert_eq!(
            verify("{\"id\":\"evt_1\"}", &header, "whsec_other", 1_700_000_010),
            Err(WebhookError::BadSignature)
        );
    }

    #[test]
    fn old_signatures_and_bad_headers_are_refused() {
        let header = sign("{}", "whsec_test", 1_700_000_000);
        assert_eq!(
            verify("{}", &header, "whsec_test", 1_700_000_000 + 301),
            Err(WebhookError::Stale(1_700_000_000))
        );
        assert_eq!(
            verify("{}", "garbage", "whsec_test", 0),
            Err(WebhookError::BadHeader)
        );
        assert_eq!(
            verify("{}", "t=1", "whsec_test", 0),
            Err(WebhookError::BadHeader)
        );
        // Rotation: any matching v1 is enough.
        let rotated = format!("{header},v1=00ff");
        assert!(verify("{}", &rotated, "whsec_test", 1_700_000_000).is_ok());
    }
}
