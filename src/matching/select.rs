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
}

impl TopK {
    pub fn new(k: usize) -> Self {
        Self {
            k,
            buf: Vec::new(),
            threshold: None,
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
        self.buf.truncate(k);
        // After the selection, position k-1 holds the k-th best: the new bar to beat.
        self.threshold = Some(self.buf[k - 1]);
    }

    /// The best `k` keys (or all, if fewer were pushed), best first.
    pub fn into_sorted<K: Ord>(mut self, ranker: &Ranker<'_, K>) -> Vec<Key> {
        if self.buf.len() > self.k {
            self.cut(ranker);
        }
        self.buf.sort_unstable_by(|a, b| ranker.cmp(a, b));
        self.buf
    }
}
