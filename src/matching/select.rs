//! Partial selection: the best `k` of a stream without sorting the stream.
//!
//! Why it is enough to look at a few bids: a bid of party size `s` can only win if it is among
//! the best `⌊A/s⌋` bids of its size (A = available units), because winners of one size form a
//! prefix of that size's ranking (see [`super::policy`] for the argument per policy). So the
//! core keeps the best few bids of each (size, partial_ok) class and never sorts the rest.
//!
//! [`TopK`] keeps a buffer of at most `2k` keys and a threshold (the `k`-th best seen so far):
//! a key that does not beat the threshold is dropped with one comparison, which is the fate of
//! almost every bid in a large lot. When the buffer fills, `select_nth_unstable_by` cuts it back
//! to `k`. Each cut costs O(k) and happens at most once per `k` accepted keys, so even input
//! sorted worst-first stays linear.

use std::cmp::Ordering;

use super::rank::{Key, Ranker};

pub(crate) struct TopK {
    k: usize,
    buf: Vec<Key>,
    threshold: Option<Key>,
    /// Whether any pushed key was left out: then the ones left out rank after the kept ones.
    dropped: bool,
}

/// What a [`TopK`] kept.
pub(crate) struct Kept {
    /// The best `k` keys (or all, if fewer were pushed), best first.
    pub best: Vec<Key>,
    /// Whether some pushed keys are not in `best` (all of them rank after its last key).
    pub dropped: bool,
}

impl TopK {
    pub fn new(k: usize) -> Self {
        Self {
            k,
            buf: Vec::new(),
            threshold: None,
            dropped: false,
        }
    }

    /// Whether `key` could still be among the best `k`; cheap, for filtering before `push`.
    #[inline]
    pub fn admits<K: Ord>(&self, ranker: &Ranker<'_, K>, key: &Key) -> bool {
        match &self.threshold {
            None => self.k > 0,
            // The primary key settles almost every comparison; the rest only on a tie.
            Some(t) => {
                key.primary() > t.primary()
                    || (key.primary() == t.primary() && ranker.cmp(key, t) == Ordering::Less)
            }
        }
    }

    #[inline]
    pub fn push<K: Ord>(&mut self, ranker: &Ranker<'_, K>, key: Key) {
        if !self.admits(ranker, &key) {
            self.dropped = true;
            return;
        }
        self.buf.push(key);
        if self.buf.len() >= 2 * self.k.max(8) {
            self.cut(ranker);
        }
    }

    fn cut<K: Ord>(&mut self, ranker: &Ranker<'_, K>) {
        let k = self.k;
        self.buf
            .select_nth_unstable_by(k - 1, |a, b| ranker.cmp(a, b));
        self.dropped = true;
        self.buf.truncate(k);
        // After the selection, position k-1 holds the k-th best: the new bar to beat.
        self.threshold = Some(self.buf[k - 1]);
    }

    pub fn finish<K: Ord>(mut self, ranker: &Ranker<'_, K>) -> Kept {
        if self.buf.len() > self.k {
            self.cut(ranker);
        }
        self.buf.sort_unstable_by(|a, b| ranker.cmp(a, b));
        Kept {
            best: self.buf,
            dropped: self.dropped,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::matching::model::BidInput;
    use crate::matching::rank::Order;

    fn bids(amounts: impl IntoIterator<Item = i64>) -> Vec<BidInput<u64>> {
        amounts
            .into_iter()
            .enumerate()
            .map(|(i, amount_minor)| BidInput {
                id: i as u64,
                booking: i as u64,
                amount_minor,
                units: 1,
                partial_ok: false,
                submitted_at: 0,
                tier: 0,
                withdrawn: false,
            })
            .collect()
    }

    fn best(bids: &[BidInput<u64>], k: usize) -> Vec<i64> {
        let ranker = Ranker::new(bids, 0, Order::Priority);
        let mut top = TopK::new(k);
        for idx in 0..bids.len() {
            top.push(&ranker, ranker.key(idx));
        }
        top.finish(&ranker)
            .best
            .iter()
            .map(|key| bids[key.idx as usize].amount_minor)
            .collect()
    }

    #[test]
    fn keeps_the_best_k_whatever_the_input_order() {
        let expected: Vec<i64> = (990..1000).rev().collect();
        assert_eq!(best(&bids(0..1000), 10), expected, "worst first");
        assert_eq!(best(&bids((0..1000).rev()), 10), expected, "best first");
        let shuffled = (0..1000).map(|i| (i * 7919) % 1000);
        assert_eq!(best(&bids(shuffled), 10), expected);
    }

    #[test]
    fn keeps_everything_when_there_are_fewer_than_k_and_nothing_when_k_is_zero() {
        assert_eq!(best(&bids([3, 1, 2]), 10), [3, 2, 1]);
        assert!(best(&bids([3, 1, 2]), 0).is_empty());
    }

    #[test]
    fn equal_keys_are_kept_in_id_order() {
        let all = bids([5; 40]);
        let ranker = Ranker::new(&all, 0, Order::Priority);
        let mut top = TopK::new(3);
        for idx in (0..all.len()).rev() {
            top.push(&ranker, ranker.key(idx));
        }
        let kept = top.finish(&ranker);
        assert!(kept.dropped);
        let ids: Vec<u32> = kept.best.iter().map(|k| k.idx).collect();
        assert_eq!(ids, [0, 1, 2]);
    }
}
