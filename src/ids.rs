//! Public identifiers: a short prefix that says what it is, then 20 base-32 characters: 9 of
//! the creation time in milliseconds, then 11 random (55 bits).
//!
//! Time first, so that ids sort in the order they were made: the rows a batch inserts land
//! side by side at the end of every index keyed by id (the bid's own, its payments', its
//! events', the gateway's stored answers), instead of each on a random page. With random
//! ids a bid dirtied about twenty index pages; every one is written to the WAL at commit and
//! read back by the next connection. The random part is what keeps an id unguessable and
//! unique; nothing in an id hints at how many bids a lot has.

use rand::Rng;

const ALPHABET: &[u8; 32] = b"0123456789abcdefghjkmnpqrstvwxyz";

/// Characters of time: 45 bits of milliseconds since 1970, enough for a thousand years.
const TIME_CHARS: usize = 9;
const RANDOM_CHARS: usize = 11;

pub fn new_id(prefix: &str) -> String {
    let millis = chrono::Utc::now().timestamp_millis().max(0) as u64;
    let mut s = String::with_capacity(prefix.len() + 1 + TIME_CHARS + RANDOM_CHARS);
    s.push_str(prefix);
    s.push('_');
    // Most significant first, so that the text sorts as the number does (the alphabet is in
    // ASCII order).
    for i in (0..TIME_CHARS).rev() {
        s.push(ALPHABET[((millis >> (5 * i)) & 31) as usize] as char);
    }
    push_random(&mut s, RANDOM_CHARS);
    s
}

/// `prefix_` followed by `len` random base-32 characters from the OS-seeded thread RNG.
pub fn random_token(prefix: &str, len: usize) -> String {
    let mut s = String::with_capacity(prefix.len() + 1 + len);
    s.push_str(prefix);
    s.push('_');
    push_random(&mut s, len);
    s
}

fn push_random(s: &mut String, len: usize) {
    let mut rng = rand::rng();
    for _ in 0..len {
        s.push(ALPHABET[rng.random_range(0..32)] as char);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_carry_their_kind_and_do_not_repeat() {
        let a = new_id("bid");
        let b = new_id("bid");
        assert!(a.starts_with("bid_") && a.len() == 24);
        assert_ne!(a, b);
    }

    #[test]
    fn ids_made_later_sort_later() {
        let first = new_id("bid");
        std::thread::sleep(std::time::Duration::from_millis(2));
        let second = new_id("bid");
        assert!(first < second, "{first} then {second}");
    }

    #[test]
    fn the_time_part_reads_back_as_the_millisecond_it_was_made() {
        let before = chrono::Utc::now().timestamp_millis() as u64;
        let id = new_id("lot");
        let after = chrono::Utc::now().timestamp_millis() as u64;
        let millis = id[4..4 + TIME_CHARS].bytes().fold(0u64, |n, c| {
            (n << 5) | ALPHABET.iter().position(|&a| a == c).unwrap() as u64
        });
        assert!((before..=after).contains(&millis));
    }
}
