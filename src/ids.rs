//! Public identifiers: a short prefix that says what it is, then 20 random base-32 characters
//! (100 bits). Random, not sequential, so an id never hints at how many bids a lot has.

use rand::Rng;

const ALPHABET: &[u8; 32] = b"0123456789abcdefghjkmnpqrstvwxyz";

pub fn new_id(prefix: &str) -> String {
    random_token(prefix, 20)
}

/// `prefix_` followed by `len` random base-32 characters from the OS-seeded thread RNG.
pub fn random_token(prefix: &str, len: usize) -> String {
    let mut rng = rand::rng();
    let mut s = String::with_capacity(prefix.len() + 1 + len);
    s.push_str(prefix);
    s.push('_');
    for _ in 0..len {
        s.push(ALPHABET[rng.random_range(0..32)] as char);
    }
    s
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
}
