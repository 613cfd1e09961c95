//! Bookings: the list (100 a page, most recently changed first), and importing a CSV or JSON
//! file in two steps. The upload shows a preview with every row's errors and writes nothing;
//! the operator then imports, which is refused while any row is bad unless they chose to skip
//! the bad rows.

use actix_multipart::Multipart;
use actix_web::{HttpResponse, get, post, web};
use askama::Template;
use futures_util::StreamExt;
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter, QuerySelect};
use serde::{Deserialize, Serialize};

use super::form::FormFields;
use super::{
    BadLink, ConsoleUser, Nav, PageError, html, html_invalid, list_href, page_start, see_other,
};
use crate::domain::identity::reference_key;
use crate::domain::validation::FieldErrors;
use crate::http::pagination::{Page, page};
use crate::services::bookings::{self, BookingInput, ImportError, MAX_IMPORT};
use crate::store::Db;
use crate::store::entities::booking_lot;

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.service(list).service(upload).service(confirm);
}

/// Largest file accepted: 10,000 rows of a few hundred bytes.
const MAX_FILE_BYTES: usize = 4 * 1024 * 1024;

/// A row as read from the file, before any checking: every field a string so that a bad value
/// is shown as written rather than lost. This is also what the preview carries to the import.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct RawRow {
    #[serde(default)]
    pub reference: String,
    #[serde(default)]
    pub last_name: String,
    #[serde(default, deserialize_with = "any_text")]
    pub party_size: String,
    #[serde(default)]
    pub email: String,
    #[serde(default)]
    pub phone: String,
    #[serde(default)]
    pub language: String,
    #[serde(default, deserialize_with = "any_text")]
    pub loyalty_tier: String,
    /// In CSV: lot ids separated by spaces or `;`. In JSON: an array or such a string.
    #[serde(default, deserialize_with = "lot_list")]
    pub eligible_lots: String,
}

fn any_text<'de, D: serde::Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    let v = serde_json::Value::deserialize(d)?;
    Ok(match v {
        serde_json::Value::String(s) => s,
        serde_json::Value::Null => String::new(),
        other => other.to_string(),
    })
}

fn lot_list<'de, D: serde::Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    let v = serde_json::Value::deserialize(d)?;
    Ok(match v {
        serde_json::Value::Array(items) => items
            .iter()
            .map(|i| {
                i.as_str()
                    .map(str::to_owned)
                    .unwrap_or_else(|| i.to_string())
            })
            .collect::<Vec<_>>()
            .join(" "),
        serde_json::Value::String(s) => s,
        serde_json::Value::Null => String::new(),
        other => other.to_string(),
    })
}

/// Parses rows the way the API does (same defaults); a number that does not parse becomes an
/// impossible value the service then names (party 0, tier 99) with the text kept for display.
fn to_input(r: &RawRow, errors: &mut FieldErrors, i: usize) -> BookingInput {
    let number = |text: &str, field: &str, default: u32, errors: &mut FieldErrors| {
        let t = text.trim();
        if t.is_empty() {
            return Some(default);
        }
        let parsed = t.parse::<u32>().ok();
        if parsed.is_none() {
            errors.add(
                format!("bookings[{i}].{field}"),
                format!("'{t}' is not a whole number"),
            );
        }
        parsed
    };
    let party = number(&r.party_size, "party_size", 0, errors);
    let tier = number(&r.loyalty_tier, "loyalty_tier", 0, errors);
    let trimmed = |s: &str| Some(s.trim().to_owned()).filter(|s| !s.is_empty());
    BookingInput {
        reference: r.reference.clone(),
        last_name: r.last_name.clone(),
        // A bad number is reported above; keep the row checkable with a neutral value.
        party_size: party.unwrap_or(1),
        email: trimmed(&r.email),
        phone: trimmed(&r.phone).map(|p| p.replace([' ', '-', '.'], "")),
        language: trimmed(&r.language).unwrap_or_else(|| "en".into()),
        loyalty_tier: tier.unwrap_or(0),
        eligible_lots: r
            .eligible_lots
            .split([' ', ';', ','])
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
            .collect(),
    }
}

/// Reads a CSV (header row with the API's field names) or JSON (an array of objects) file.
pub fn parse_file(name: &str, bytes: &[u8]) -> Result<Vec<RawRow>, String> {
    let text = std::str::from_utf8(bytes).map_err(|_| "The file is not UTF-8 text.".to_owned())?;
    let text = text.trim_start_matches('\u{feff}');
    let looks_json = name.to_lowercase().ends_with(".json") || text.trim_start().starts_with('[');
    if looks_json {
        return serde_json::from_str::<Vec<RawRow>>(text)
            .map_err(|e| format!("The JSON file is not an array of bookings: {e}"));
    }
    let mut reader = csv::ReaderBuilder::new()
        .trim(csv::Trim::All)
        .flexible(false)
        .from_reader(text.as_bytes());
    let headers = reader
        .headers()
        .map_err(|e| format!("The CSV file has no header row: {e}"))?
        .clone();
    if !headers.iter().any(|h| h == "reference") || !headers.iter().any(|h| h == "last_name") {
        return Err("The CSV header must name at least reference and last_name (and may have party_size, email, phone, language, loyalty_tier, eligible_lots).".into());
    }
    let mut rows = Vec::new();
    for (i, record) in reader.deserialize::<RawRow>().enumerate() {
        rows.push(record.map_err(|e| format!("CSV line {}: {e}", i + 2))?);
    }
    Ok(rows)
}

pub struct PreviewRow {
    pub line: usize,
    pub raw: RawRow,
    pub errors: Vec<String>,
}

#[derive(Template)]
#[template(path = "console/bookings.html")]
struct BookingsPage {
    nav: Nav,
    bookings: Vec<BookingLine>,
    file_error: Option<String>,
    notice: Option<String>,
    /// The next page's address, when more bookings follow.
    next_page: Option<String>,
    /// The first page's address, when this is a later one.
    first_page: Option<String>,
    /// Why the page link was refused, when it was.
    link_error: Option<&'static str>,
    /// The search, as typed: the start of a reference or a last name.
    search: String,
    search_error: Option<&'static str>,
}

/// Bookings shown on one page of the list, most recently changed first.
const BOOKINGS_PER_PAGE: u64 = 100;

/// Which bookings the list shows: a search, and where the page starts (the cursor of the
/// previous page's last booking).
#[derive(Deserialize, Default)]
struct Paging {
    #[serde(default)]
    after: String,
    /// Only bookings whose reference or last name starts with this (`reference` in links
    /// made before the search took names too).
    #[serde(default, alias = "reference")]
    q: String,
}

pub struct BookingLine {
    pub reference: String,
    pub last_name: String,
    pub party_size: i32,
    pub loyalty_tier: i32,
    pub lots: usize,
}

#[derive(Template)]
#[template(path = "console/import_preview.html")]
struct PreviewPage {
    nav: Nav,
    rows: Vec<PreviewRow>,
    good: usize,
    bad: usize,
    payload: String,
    error: Option<String>,
}

/// What the last import did, carried as numbers (never as text a link could forge).
#[derive(Deserialize)]
struct Done {
    created: Option<usize>,
    updated: Option<usize>,
    unchanged: Option<usize>,
    skipped: Option<usize>,
}

async fn bookings_page(
    db: &Db,
    user: &ConsoleUser,
    paging: &Paging,
    file_error: Option<String>,
    notice: Option<String>,
) -> Result<BookingsPage, PageError> {
    let after = paging.after.as_str();
    let search = paging.q.trim().to_owned();
    let search_error = (!search.is_empty() && reference_key(&search).is_empty())
        .then_some("has no letter or digit: type the start of a booking reference or last name");
    let (fetched, link_error) = match page_start(after) {
        Ok(_) if search_error.is_some() => (Vec::new(), None),
        Ok(after) => (
            bookings::list(
                db,
                user.operator_id(),
                Some(search.as_str()).filter(|s| !s.is_empty()),
                after,
                BOOKINGS_PER_PAGE + 1,
            )
            .await?,
            None,
        ),
        Err(BadLink) => (
            Vec::new(),
            Some("is not one this list made: start again from the first page"),
        ),
    };
    let Page {
        items: rows,
        next_cursor,
    } = page(
        fetched,
        BOOKINGS_PER_PAGE,
        |b| (b.updated_at, b.id.clone()),
        |b| b,
    );
    let href = |cursor: Option<&str>| list_href("/console/bookings", &[("q", &search)], cursor);
    let next_page = next_cursor.map(|cursor| href(Some(&cursor)));
    let first_page = (!after.is_empty()).then(|| href(None));
    let ids: Vec<String> = rows.iter().map(|b| b.id.clone()).collect();
    let links: Vec<String> = booking_lot::Entity::find()
        .select_only()
        .column(booking_lot::Column::BookingId)
        .filter(booking_lot::Column::BookingId.is_in(ids))
        .into_tuple()
        .all(db)
        .await?;
    Ok(BookingsPage {
        nav: user.nav("bookings"),
        bookings: rows
            .into_iter()
            .map(|b| BookingLine {
                lots: links.iter().filter(|l| **l == b.id).count(),
                reference: b.reference,
                last_name: b.last_name,
                party_size: b.party_size,
                loyalty_tier: b.loyalty_tier,
            })
            .collect(),
        file_error,
        notice,
        next_page,
        first_page,
        link_error,
        search,
        search_error,
    })
}

#[get("/console/bookings")]
async fn list(
    user: ConsoleUser,
    db: web::Data<Db>,
    done: web::Query<Done>,
    paging: web::Query<Paging>,
) -> Result<HttpResponse, PageError> {
    let notice = match done.into_inner() {
        Done {
            created: Some(c),
            updated: Some(u),
            unchanged: Some(n),
            skipped,
        } => Some(format!(
            "Imported: {c} created, {u} updated, {n} unchanged{}.",
            match skipped {
                Some(k) if k > 0 => format!("; {k} bad rows skipped"),
                _ => String::new(),
            }
        )),
        _ => None,
    };
    html(bookings_page(&db, &user, &paging, None, notice).await?)
}

/// Checks every row: the file's own parse errors plus the service's checks, by row.
async fn preview_rows(
    db: &Db,
    user: &ConsoleUser,
    raw: Vec<RawRow>,
) -> Result<(Vec<PreviewRow>, Vec<BookingInput>, FieldErrors), PageError> {
    let mut errors = FieldErrors::new();
    let inputs: Vec<BookingInput> = raw
        .iter()
        .enumerate()
        .map(|(i, r)| to_input(r, &mut errors, i))
        .collect();
    let checked = bookings::check(db, user.operator_id(), &inputs).await?;
    errors.0.extend(checked.0);
    let rows = raw
        .into_iter()
        .enumerate()
        .map(|(i, raw)| {
            let prefix = format!("bookings[{i}].");
            PreviewRow {
                line: i + 1,
                errors: errors
                    .0
                    .iter()
                    .filter_map(|e| {
                        e.field
                            .strip_prefix(&prefix)
                            .map(|f| format!("{f}: {}", e.message))
                    })
                    .collect(),
                raw,
            }
        })
        .collect();
    Ok((rows, inputs, errors))
}

#[post("/console/bookings/import")]
async fn upload(
    user: ConsoleUser,
    db: web::Data<Db>,
    mut form: Multipart,
) -> Result<HttpResponse, PageError> {
    let mut csrf = String::new();
    let mut file: Option<(String, Vec<u8>)> = None;
    while let Some(field) = form.next().await {
        let mut field = field
            .map_err(|e| PageError::BadRequest(format!("The upload could not be read: {e}")))?;
        let name = field.name().unwrap_or_default().to_owned();
        let filename = field
            .content_disposition()
            .and_then(|d| d.get_filename().map(str::to_owned))
            .unwrap_or_default();
        let mut bytes = Vec::new();
        while let Some(chunk) = field.next().await {
            let chunk = chunk
                .map_err(|e| PageError::BadRequest(format!("The upload could not be read: {e}")))?;
            if bytes.len() + chunk.len() > MAX_FILE_BYTES {
                return Err(PageError::BadRequest(format!(
                    "The file is larger than {} MB.",
                    MAX_FILE_BYTES / 1024 / 1024
                )));
            }
            bytes.extend_from_slice(&chunk);
        }
        match name.as_str() {
            "csrf" => csrf = String::from_utf8_lossy(&bytes).into_owned(),
            "file" => file = Some((filename, bytes)),
            _ => {}
        }
    }
    user.check_csrf(&csrf)?;
    let raw = match file {
        Some((_, bytes)) if bytes.is_empty() => {
            Err("Choose a CSV or JSON file of bookings.".to_owned())
        }
        None => Err("Choose a CSV or JSON file of bookings.".to_owned()),
        Some((name, bytes)) => parse_file(&name, &bytes),
    };
    let raw = match raw {
        Ok(rows) if rows.is_empty() => Err("The file has no bookings.".to_owned()),
        Ok(rows) if rows.len() > MAX_IMPORT => Err(format!(
            "The file has {} bookings; import at most {MAX_IMPORT} at a time.",
            rows.len()
        )),
        other => other,
    };
    let raw = match raw {
        Ok(raw) => raw,
        Err(message) => {
            return html_invalid(
                bookings_page(&db, &user, &Paging::default(), Some(message), None).await?,
            );
        }
    };
    let payload = serde_json::to_string(&raw).map_err(|_| PageError::Internal)?;
    let (rows, _, errors) = preview_rows(&db, &user, raw).await?;
    let bad = bookings::bad_rows(&errors).len();
    html(PreviewPage {
        nav: user.nav("bookings"),
        good: rows.len() - bad,
        bad,
        rows,
        payload,
        error: None,
    })
}

#[post("/console/bookings/import/confirm")]
async fn confirm(
    user: ConsoleUser,
    db: web::Data<Db>,
    // Every previewed row comes back in `payload`: far over `web::Form`'s 16 KiB.
    form: FormFields,
) -> Result<HttpResponse, PageError> {
    user.check_csrf(form.get("csrf"))?;
    let payload = form.get("payload");
    let raw: Vec<RawRow> = serde_json::from_str(payload).map_err(|_| {
        PageError::BadRequest("The preview was damaged; upload the file again.".into())
    })?;
    if raw.is_empty() || raw.len() > MAX_IMPORT {
        return Err(PageError::BadRequest("Upload the file again.".into()));
    }
    let skip_bad = form.get("skip_bad") == "on";
    // Checked again: the lots or bookings may have changed since the preview.
    let (rows, inputs, errors) = preview_rows(&db, &user, raw.clone()).await?;
    let bad = bookings::bad_rows(&errors);
    let refuse = |message: String| {
        html_invalid(PreviewPage {
            nav: user.nav("bookings"),
            good: rows.len() - bad.len(),
            bad: bad.len(),
            rows,
            payload: payload.to_owned(),
            error: Some(message),
        })
    };
    if !errors.is_empty() && bad.is_empty() {
        return refuse(errors.to_string());
    }
    if !bad.is_empty() && !skip_bad {
        return refuse(format!(
            "Nothing was imported: {} rows have errors. Fix the file, or tick “skip the bad rows” to import only the good ones.",
            bad.len()
        ));
    }
    let good: Vec<BookingInput> = inputs
        .into_iter()
        .enumerate()
        .filter(|(i, _)| !bad.contains(i))
        .map(|(_, r)| r)
        .collect();
    if good.is_empty() {
        return refuse("Nothing was imported: no row is good.".into());
    }
    match bookings::import(&db, &user.actor(), good).await {
        Ok(s) => Ok(see_other(&format!(
            "/console/bookings?created={}&updated={}&unchanged={}&skipped={}",
            s.created,
            s.updated,
            s.unchanged,
            bad.len()
        ))),
        Err(ImportError::Invalid(e)) => refuse(format!("Nothing was imported: {e}")),
        Err(ImportError::Db(e)) => Err(e.into()),
    }
}
