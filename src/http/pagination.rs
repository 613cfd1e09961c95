//! Cursor pagination: `?limit=50&cursor=…`; the response carries `next_cursor` (null on the
//! last page). A cursor is the opaque, URL-safe encoding of the last item's sort key, so
//! pages stay stable while rows are added.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::problem::Problem;
use crate::domain::validation::FieldErrors;

pub const DEFAULT_LIMIT: u64 = 50;
pub const MAX_LIMIT: u64 = 500;

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct PageQuery {
    /// Items per page, 1 to 500 (default 50).
    pub limit: Option<u64>,
    /// `next_cursor` of the previous page.
    pub cursor: Option<String>,
}

impl PageQuery {
    pub fn limit(&self) -> Result<u64, Problem> {
        match self.limit {
            None => Ok(DEFAULT_LIMIT),
            Some(n) if (1..=MAX_LIMIT).contains(&n) => Ok(n),
            Some(_) => Err(FieldErrors::single(
                "limit",
                format!("must be between 1 and {MAX_LIMIT}"),
            )
            .into()),
        }
    }

    /// The decoded sort key of the last item already seen.
    pub fn after<K: for<'de> Deserialize<'de>>(&self) -> Result<Option<K>, Problem> {
        let Some(cursor) = &self.cursor else {
            return Ok(None);
        };
        let invalid = || {
            Problem::invalid(FieldErrors::single(
                "cursor",
                "is not a cursor this API issued",
            ))
        };
        decode_cursor(cursor).map(Some).ok_or_else(invalid)
    }
}

/// The sort key a cursor of [`cursor_for`] carries; `None` when it is not one.
pub fn decode_cursor<K: for<'de> Deserialize<'de>>(cursor: &str) -> Option<K> {
    let bytes = URL_SAFE_NO_PAD.decode(cursor).ok()?;
    serde_json::from_slice(&bytes).ok()
}

pub fn cursor_for<K: Serialize>(key: &K) -> String {
    URL_SAFE_NO_PAD.encode(serde_json::to_vec(key).expect("sort keys serialise"))
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Page<T> {
    pub items: Vec<T>,
    /// Pass as `cursor` to get the next page; null on the last page.
    pub next_cursor: Option<String>,
}

/// Builds a page from `limit + 1` fetched rows: the extra row only says there is more.
pub fn page<T, R, K: Serialize>(
    mut rows: Vec<R>,
    limit: u64,
    key: impl Fn(&R) -> K,
    map: impl Fn(R) -> T,
) -> Page<T> {
    let more = rows.len() as u64 > limit;
    rows.truncate(limit as usize);
    let next_cursor = if more {
        rows.last().map(|r| cursor_for(&key(r)))
    } else {
        None
    };
    Page {
        items: rows.into_iter().map(map).collect(),
        next_cursor,
    }
}
