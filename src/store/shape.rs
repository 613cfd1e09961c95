//! Batched statements in a few fixed shapes, so that each is compiled once per connection.
//!
//! A batch of `n` bids makes `IN (?, …)` lists and multi-row inserts of `n` entries, and each
//! `n` is different SQL text: the database compiles it again (SQLite) or parses and plans it
//! again (PostgreSQL), and the connection's statement cache fills with shapes seen once. A
//! profile of bid intake put 11% of all instructions in SQLite's compiler. Here an `IN` list
//! is padded to the next power of two (repeating a value changes no result), and the rows of
//! an insert are cut into power-of-two pieces: at most eight shapes per statement for batches
//! of up to 128, and one piece whenever the batch itself is a power of two up to
//! [`MAX_PIECE`] rows (larger batches take several pieces of that size).

/// The most rows in one multi-row insert.
pub const MAX_PIECE: usize = 1024;

/// `values` padded to a power-of-two length by repeating the last one, for an `IN (…)`
/// filter. Empty stays empty.
pub fn padded<T: Clone>(mut values: Vec<T>) -> Vec<T> {
    if let Some(last) = values.last().cloned() {
        values.resize(values.len().next_power_of_two(), last);
    }
    values
}

/// `rows` in pieces whose lengths are powers of two, largest first, in the original order:
/// one multi-row insert each. Distinct up to [`MAX_PIECE`] rows, which keeps a piece's bind
/// parameters within what SQLite (32,766) and PostgreSQL (65,535) take for any of our tables.
pub fn pieces<T>(rows: Vec<T>) -> Vec<Vec<T>> {
    let mut pieces = Vec::with_capacity(rows.len().count_ones() as usize);
    let mut rows = rows.into_iter();
    let mut left = rows.len();
    while left > 0 {
        let size = (1 << left.ilog2()).min(MAX_PIECE);
        pieces.push(rows.by_ref().take(size).collect::<Vec<T>>());
        left -= size;
    }
    debug_assert!(pieces.iter().all(|p| p.len().is_power_of_two()));
    pieces
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn in_lists_grow_to_the_next_power_of_two_with_the_last_value() {
        assert_eq!(padded(Vec::<u8>::new()), Vec::<u8>::new());
        assert_eq!(padded(vec![7]), vec![7]);
        assert_eq!(padded(vec![1, 2, 3]), vec![1, 2, 3, 3]);
        assert_eq!(padded(vec![1, 2, 3, 4]), vec![1, 2, 3, 4]);
        assert_eq!(padded((0..65).collect::<Vec<_>>()).len(), 128);
    }

    #[test]
    fn a_batch_of_a_power_of_two_up_to_the_largest_piece_is_one_piece() {
        assert_eq!(pieces(vec![1, 2, 3, 4]), vec![vec![1, 2, 3, 4]]);
        assert_eq!(
            pieces(vec![1, 2, 3, 4, 5, 6, 7]),
            vec![vec![1, 2, 3, 4], vec![5, 6], vec![7]]
        );
        assert!(pieces(Vec::<u8>::new()).is_empty());
        // However many rows, no piece takes more bind parameters than a database allows.
        let sizes: Vec<usize> = pieces((0..3000).collect::<Vec<_>>())
            .iter()
            .map(Vec::len)
            .collect();
        assert_eq!(sizes, [1024, 1024, 512, 256, 128, 32, 16, 8]);
    }

    proptest! {
        #[test]
        fn pieces_keep_every_row_in_order(n in 0usize..5000) {
            let rows: Vec<usize> = (0..n).collect();
            let cut = pieces(rows.clone());
            prop_assert!(cut.iter().all(|p| p.len().is_power_of_two() && p.len() <= MAX_PIECE));
            prop_assert_eq!(cut.len(), n / MAX_PIECE + (n % MAX_PIECE).count_ones() as usize);
            prop_assert_eq!(cut.concat(), rows);
        }

        #[test]
        fn padding_keeps_the_set_of_values(values in proptest::collection::vec(0u8..20, 0..200)) {
            let out = padded(values.clone());
            prop_assert!(out.is_empty() || out.len().is_power_of_two());
            prop_assert_eq!(&out[..values.len()], &values[..]);
            prop_assert!(out.iter().all(|v| values.contains(v)));
        }
    }
}
