//! Cursor pagination for every list: `?limit=` (default [`DEFAULT_LIMIT`],
//! at most [`MAX_LIMIT`]) and `?cursor=` (opaque, from the previous page's
//! `nextCursor`). Lists are ordered by a sort key and the row id, so the
//! order is stable even when sort keys tie, and a page never repeats or skips
//! rows inserted meanwhile.
//!
//! A page answers [`Page`]: the rows under the list's own key and
//! `nextCursor` (`null` on the last page); the query parameters are
//! [`PageParams`], listed in the OpenAPI document through `IntoParams`.

use base64::{Engine as _, engine::general_purpose::URL_SAFE_NO_PAD};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::error::Error;

pub const DEFAULT_LIMIT: i64 = 20;
pub const MAX_LIMIT: i64 = 100;

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct PageParams {
    // A string, parsed in `PageParams::limit`: query strings are untyped,
    // and serde's `flatten` (used to embed these params) loses number hints.
    // The document says integer.
    /// Page size, 1–100 (default 20).
    #[param(value_type = Option<i64>, minimum = 1, maximum = 100)]
    pub limit: Option<String>,
    /// The previous page's `nextCursor`.
    pub cursor: Option<String>,
}

/// One page of a list: the rows under the list's own key, and `nextCursor`.
// `T` is a struct of one field (e.g. `sessions: Vec<SessionSummary>`),
// flattened: each list keeps its own key.
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Page<T> {
    #[serde(flatten)]
    pub items: T,
    /// The next page's `cursor`; `null` on the last page.
    #[schema(required = true)]
    pub next_cursor: Option<String>,
}

impl<T> Page<T> {
    pub fn new(items: T, next_cursor: Option<String>) -> Self {
        Page { items, next_cursor }
    }
}

impl PageParams {
    /// The validated page size.
    pub fn limit(&self) -> Result<i64, Error> {
        match self.limit.as_deref().map(str::parse::<i64>) {
            None => Ok(DEFAULT_LIMIT),
            Some(Ok(n)) if (1..=MAX_LIMIT).contains(&n) => Ok(n),
            Some(_) => Err(Error::invalid_field(
                "limit",
                format!("must be between 1 and {MAX_LIMIT}"),
            )),
        }
    }

    /// The decoded cursor: the last row's sort key and id.
    pub fn cursor(&self) -> Result<Option<(String, Uuid)>, Error> {
        let Some(raw) = &self.cursor else {
            return Ok(None);
        };
        let invalid = || Error::invalid_field("cursor", "is not a cursor this API issued");
        let bytes = URL_SAFE_NO_PAD.decode(raw).map_err(|_| invalid())?;
        let text = String::from_utf8(bytes).map_err(|_| invalid())?;
        let (key, id) = text.rsplit_once('\n').ok_or_else(invalid)?;
        Ok(Some((key.to_owned(), id.parse().map_err(|_| invalid())?)))
    }

    /// The cursor of a list sorted by a timestamp.
    pub fn time_cursor(&self) -> Result<(Option<DateTime<Utc>>, Option<Uuid>), Error> {
        match self.cursor()? {
            None => Ok((None, None)),
            Some((key, id)) => {
                let at = DateTime::parse_from_rfc3339(&key).map_err(|_| {
                    Error::invalid_field("cursor", "is not a cursor this API issued")
                })?;
                Ok((Some(at.with_timezone(&Utc)), Some(id)))
            }
        }
    }
}

pub fn encode_cursor(key: &str, id: Uuid) -> String {
    URL_SAFE_NO_PAD.encode(format!("{key}\n{id}"))
}

pub fn time_key(at: DateTime<Utc>) -> String {
    at.to_rfc3339_opts(chrono::SecondsFormat::Micros, true)
}

/// Trims a `limit + 1` fetch to `limit` rows and returns the next cursor.
pub fn finish<T>(
    mut rows: Vec<T>,
    limit: i64,
    key: impl Fn(&T) -> (String, Uuid),
) -> (Vec<T>, Option<String>) {
    let limit = usize::try_from(limit).unwrap_or(0);
    if rows.len() <= limit {
        return (rows, None);
    }
    rows.truncate(limit);
    let next = rows.last().map(|last| {
        let (k, id) = key(last);
        encode_cursor(&k, id)
    });
    (rows, next)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_round_trip_and_garbage_is_refused() {
        let id = Uuid::new_v4();
        let params = PageParams {
            limit: None,
            cursor: Some(encode_cursor("2026-11-24T10:00:00.000001Z", id)),
        };
        let (at, got) = params.time_cursor().expect("valid");
        assert_eq!(got, Some(id));
        assert_eq!(
            at.map(time_key).as_deref(),
            Some("2026-11-24T10:00:00.000001Z")
        );
        let bad = PageParams {
            limit: Some("500".into()),
            cursor: Some("!!".into()),
        };
        assert!(bad.cursor().is_err());
        assert!(bad.limit().is_err());
    }

    #[test]
    fn finish_returns_a_cursor_only_when_more_rows_exist() {
        let ids: Vec<Uuid> = (0..3).map(|_| Uuid::new_v4()).collect();
        let (rows, next) = finish(ids.clone(), 3, |id| ("k".into(), *id));
        assert_eq!(rows.len(), 3);
        assert!(next.is_none());
        let (rows, next) = finish(ids.clone(), 2, |id| ("k".into(), *id));
        assert_eq!(rows, ids[..2]);
        assert_eq!(next, Some(encode_cursor("k", ids[1])));
    }
}
