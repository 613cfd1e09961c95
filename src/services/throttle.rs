//! Guessing booking references is throttled: failed sign-ins are counted per client address
//! and per reference, in a fixed window. Kept in memory: each server process throttles on its
//! own, which bounds guessing to (processes × limit) per window — documented in the README.
//! Every attempt, right or wrong, also counts against a per-client rate per minute, so a flood
//! of sign-ins (each one a database lookup) is answered with 429 before it reaches the store.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

pub struct LoginThrottle {
    window: Duration,
    per_client: u32,
    per_reference: u32,
    failures: Mutex<HashMap<String, (u32, Instant)>>,
    attempts_per_minute: u32,
    attempts: Mutex<HashMap<String, (u32, Instant)>>,
}

const MINUTE: Duration = Duration::from_secs(60);

impl LoginThrottle {
    pub fn new(window: Duration, per_client: u32, per_reference: u32) -> Self {
        Self {
            window,
            per_client,
            per_reference,
            failures: Mutex::new(HashMap::new()),
            attempts_per_minute: u32::MAX,
            attempts: Mutex::new(HashMap::new()),
        }
    }

    /// Also limits every client to `per_minute` attempts in any one-minute window.
    pub fn with_attempts_per_minute(mut self, per_minute: u32) -> Self {
        self.attempts_per_minute = per_minute.max(1);
        self
    }

    /// Counts one sign-in attempt by `client`; `Err(seconds to wait)` when it is one too many.
    pub fn admit(&self, client: &str) -> Result<(), u64> {
        self.admit_at(client, Instant::now())
    }

    fn admit_at(&self, client: &str, now: Instant) -> Result<(), u64> {
        let mut map = self.attempts.lock().expect("throttle lock");
        if map.len() > 100_000 {
            map.retain(|_, (_, since)| now.duration_since(*since) < MINUTE);
        }
        let entry = map.entry(client.to_owned()).or_insert((0, now));
        if now.duration_since(entry.1) >= MINUTE {
            *entry = (0, now);
        }
        if entry.0 >= self.attempts_per_minute {
            let wait = MINUTE.saturating_sub(now.duration_since(entry.1));
            return Err(wait.as_secs_f64().ceil().max(1.0) as u64);
        }
        entry.0 += 1;
        Ok(())
    }

    /// `Err(seconds to wait)` when this client or this reference has failed too often.
    pub fn check(&self, client: &str, reference: &str) -> Result<(), u64> {
        self.check_client(client)
            .and_then(|()| self.check_reference(reference))
    }

    /// `Err(seconds to wait)` when this client has failed too often, whatever it tried.
    pub fn check_client(&self, client: &str) -> Result<(), u64> {
        self.blocked(format!("c:{client}"), self.per_client)
    }

    /// `Err(seconds to wait)` when this reference has failed too often, from anywhere.
    pub fn check_reference(&self, reference: &str) -> Result<(), u64> {
        self.blocked(format!("r:{reference}"), self.per_reference)
    }

    fn blocked(&self, key: String, limit: u32) -> Result<(), u64> {
        let now = Instant::now();
        let map = self.failures.lock().expect("throttle lock");
        match map.get(&key) {
            Some(&(count, since)) if count >= limit && now.duration_since(since) < self.window => {
                Err((self.window - now.duration_since(since)).as_secs().max(1))
            }
            _ => Ok(()),
        }
    }

    pub fn record_failure(&self, client: &str, reference: &str) {
        let now = Instant::now();
        let mut map = self.failures.lock().expect("throttle lock");
        if map.len() > 100_000 {
            map.retain(|_, (_, since)| now.duration_since(*since) < self.window);
        }
        for key in [format!("c:{client}"), format!("r:{reference}")] {
            let entry = map.entry(key).or_insert((0, now));
            if now.duration_since(entry.1) >= self.window {
                *entry = (0, now);
            }
            entry.0 += 1;
        }
    }

    pub fn record_success(&self, reference: &str) {
        self.failures
            .lock()
            .expect("throttle lock")
            .remove(&format!("r:{reference}"));
    }
}

impl Default for LoginThrottle {
    fn default() -> Self {
        Self::new(Duration::from_secs(15 * 60), 20, 5)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_reference_is_locked_after_repeated_failures_from_anywhere() {
        let t = LoginThrottle::new(Duration::from_secs(60), 100, 3);
        for client in ["a", "b", "c"] {
            assert!(t.check(client, "REF").is_ok());
            t.record_failure(client, "REF");
        }
        assert!(t.check("d", "REF").is_err());
        assert!(t.check("d", "OTHER").is_ok());
    }

    #[test]
    fn a_client_is_locked_after_guessing_many_references() {
        let t = LoginThrottle::new(Duration::from_secs(60), 2, 100);
        t.record_failure("a", "R1");
        t.record_failure("a", "R2");
        assert!(t.check("a", "R3").is_err());
        assert!(t.check("b", "R3").is_ok());
    }

    #[test]
    fn a_client_flooding_sign_ins_waits_for_the_minute_to_end() {
        let t = LoginThrottle::default().with_attempts_per_minute(2);
        let start = Instant::now();
        assert!(t.admit_at("a", start).is_ok());
        assert!(t.admit_at("a", start + Duration::from_secs(1)).is_ok());
        assert_eq!(t.admit_at("a", start + Duration::from_secs(20)), Err(40));
        assert!(t.admit_at("b", start + Duration::from_secs(20)).is_ok());
        assert!(t.admit_at("a", start + MINUTE).is_ok());
    }
}
