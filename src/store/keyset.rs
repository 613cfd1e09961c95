//! Keyset pages: the rows after the last one shown, by two ordered columns (a time or amount,
//! then an id to split ties). Each condition carries a plain bound on the first column too:
//! it is implied, but it lets both engines start the index walk at the page boundary instead
//! of filtering every row before it.

use sea_orm::{ColumnTrait, Condition, Value};

/// Rows after `(first, second)` when both columns ascend.
pub fn after<C: ColumnTrait>(
    (first_col, second_col): (C, C),
    first: impl Into<Value> + Clone,
    second: impl Into<Value>,
) -> Condition {
    Condition::all().add(first_col.gte(first.clone())).add(
        Condition::any().add(first_col.gt(first.clone())).add(
            Condition::all()
                .add(first_col.eq(first))
                .add(second_col.gt(second)),
        ),
    )
}

/// Rows after `(first, second)` when both columns descend (newest first).
pub fn before<C: ColumnTrait>(
    (first_col, second_col): (C, C),
    first: impl Into<Value> + Clone,
    second: impl Into<Value>,
) -> Condition {
    Condition::all().add(first_col.lte(first.clone())).add(
        Condition::any().add(first_col.lt(first.clone())).add(
            Condition::all()
                .add(first_col.eq(first))
                .add(second_col.lt(second)),
        ),
    )
}
