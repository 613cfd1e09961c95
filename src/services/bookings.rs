//! Operators import what they sold: bookings, and which lots each may bid on.
//! Idempotent by booking reference: importing the same file twice changes nothing.

use std::collections::{BTreeSet, HashMap, HashSet};

use chrono::{DateTime, Utc};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, Condition, ConnectionTrait, DbErr, EntityTrait, IntoActiveModel,
    QueryFilter, QueryOrder, QuerySelect, Set, sea_query::LockType,
};

use super::audit::{self, Actor};
use crate::domain::bid::{BidStatus, MAX_PARTY};
use crate::domain::identity::{last_name_key, reference_key};
use crate::domain::validation::FieldErrors;
use crate::ids;
use crate::store::entities::{bid, booking, booking_lot, lot, operator};
use crate::store::{Db, keyset, write_txn};

pub const MAX_IMPORT: usize = 10_000;

/// An operator's bookings, most recently changed first (ties by id, newest id first), after
/// the `(updated_at, id)` of the last one already shown; erased bookings are left out. With
/// `search`, only those whose reference or last name starts with it as the traveller would
/// type it (case, spaces, dashes and accents do not matter). Served by
/// `idx_bookings_operator_updated`, read backwards.
pub async fn list(
    db: &Db,
    operator_id: &str,
    search: Option<&str>,
    after: Option<(DateTime<Utc>, String)>,
    limit: u64,
) -> Result<Vec<booking::Model>, DbErr> {
    let mut query = booking::Entity::find()
        .filter(booking::Column::OperatorId.eq(operator_id))
        .filter(booking::Column::ErasedAt.is_null());
    if let Some(search) = search {
        // Keys hold only A-Z and 0-9, so nothing in the pattern is a wildcard. Both keys are
        // reduced alike, so one key serves both columns.
        let key = reference_key(search);
        debug_assert_eq!(key, last_name_key(search));
        query = query.filter(
            Condition::any()
                .add(booking::Column::ReferenceKey.starts_with(&key))
                .add(booking::Column::LastNameKey.starts_with(&key)),
        );
    }
    if let Some((updated_at, id)) = after {
        let columns = (booking::Column::UpdatedAt, booking::Column::Id);
        query = query.filter(keyset::before(columns, updated_at, id));
    }
    query
        .order_by_desc(booking::Column::UpdatedAt)
        .order_by_desc(booking::Column::Id)
        .limit(limit)
        .all(db)
        .await
}

/// Whose booking a reference and last name open. A reference is unique within one operator
/// only, so two companies may each have sold `AU7K2P` to a Muller: then the traveller says
/// which company they booked with, and nothing of one opens the other's.
#[derive(Debug)]
pub enum TravellerMatch {
    /// Nothing matches (or not with the company named).
    None,
    One(Box<booking::Model>),
    /// Bookings of several companies match and none was named: the companies, by name.
    Several(Vec<operator::Model>),
    /// The company named is not known here.
    UnknownOperator,
}

/// The most bookings one pair of reference and last name is looked for in (one per company).
const MOST_COMPANIES: u64 = 20;

/// The booking a traveller means by its reference and last name, as typed on a phone (case,
/// spaces, dashes, accents and apostrophes do not matter), with the company's short name
/// (`slug`) when the link or the traveller gave it.
pub async fn find_for_traveller(
    db: &Db,
    reference: &str,
    last_name: &str,
    operator_slug: Option<&str>,
) -> Result<TravellerMatch, DbErr> {
    let reference = reference_key(reference);
    if reference.is_empty() {
        return Ok(TravellerMatch::None);
    }
    let mut query = booking::Entity::find()
        .filter(booking::Column::ReferenceKey.eq(reference))
        .filter(booking::Column::LastNameKey.eq(last_name_key(last_name)))
        .filter(booking::Column::ErasedAt.is_null());
    if let Some(slug) = operator_slug {
        let Some(company) = operator::Entity::find()
            .filter(operator::Column::Slug.eq(slug.trim().to_lowercase()))
            .one(db)
            .await?
        else {
            return Ok(TravellerMatch::UnknownOperator);
        };
        query = query.filter(booking::Column::OperatorId.eq(company.id));
    }
    let mut found = query
        .order_by_asc(booking::Column::OperatorId)
        .limit(MOST_COMPANIES)
        .all(db)
        .await?;
    if found.len() <= 1 {
        return Ok(found
            .pop()
            .map_or(TravellerMatch::None, |b| TravellerMatch::One(Box::new(b))));
    }
    let mut companies = operator::Entity::find()
        .filter(operator::Column::Id.is_in(found.iter().map(|b| b.operator_id.clone())))
        .all(db)
        .await?;
    companies.sort_by_key(|c| c.name.to_lowercase());
    Ok(TravellerMatch::Several(companies))
}

#[derive(Debug, Clone)]
pub struct BookingInput {
    pub reference: String,
    pub last_name: String,
    pub party_size: u32,
    pub email: Option<String>,
    pub phone: Option<String>,
    pub language: String,
    pub loyalty_tier: u32,
    pub eligible_lots: Vec<String>,
}

#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct ImportSummary {
    pub created: usize,
    pub updated: usize,
    pub unchanged: usize,
}

#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    #[error("{0}")]
    Invalid(FieldErrors),
    #[error(transparent)]
    Db(#[from] DbErr),
}

pub const LANGUAGES: &[&str] = &["en", "fr"];

/// Checks every row first; imports nothing when any row is invalid, naming each bad field.
pub async fn import(
    db: &Db,
    by: &Actor,
    rows: Vec<BookingInput>,
) -> Result<ImportSummary, ImportError> {
    let operator_id = by.operator_id.as_str();
    let errors = check(db, operator_id, &rows).await?;
    if !errors.is_empty() {
        return Err(ImportError::Invalid(errors));
    }
    let summary = write(db, by, rows).await?;
    Ok(summary)
}

/// Rows named by errors from [`check`] (`bookings[3].last_name` names row 3).
pub fn bad_rows(errors: &FieldErrors) -> BTreeSet<usize> {
    errors
        .0
        .iter()
        .filter_map(|e| {
            let rest = e.field.strip_prefix("bookings[")?;
            rest[..rest.find(']')?].parse().ok()
        })
        .collect()
}

/// Every problem with these rows, each under `bookings[i].field`; empty when all are good.
/// Reads only: the preview of an import file shows these before anything is written.
pub async fn check(
    db: &Db,
    operator_id: &str,
    rows: &[BookingInput],
) -> Result<FieldErrors, DbErr> {
    let mut errors = FieldErrors::new();
    if rows.is_empty() || rows.len() > MAX_IMPORT {
        errors.add(
            "bookings",
            format!("send between 1 and {MAX_IMPORT} bookings per call"),
        );
        return Ok(errors);
    }
    let lot_ids: HashSet<String> = rows
        .iter()
        .flat_map(|r| r.eligible_lots.iter().cloned())
        .collect();
    let known_lots: HashSet<String> = lot::Entity::find()
        .filter(lot::Column::OperatorId.eq(operator_id))
        .filter(lot::Column::Id.is_in(lot_ids))
        .all(db)
        .await?
        .into_iter()
        .map(|l| l.id)
        .collect();
    let mut seen = HashMap::new();
    for (i, row) in rows.iter().enumerate() {
        let at = |field: &str| format!("bookings[{i}].{field}");
        let key = reference_key(&row.reference);
        if key.is_empty() || row.reference.chars().count() > 32 {
            errors.add(at("reference"), "must have 1 to 32 letters or digits");
        } else if let Some(first) = seen.insert(key, i) {
            errors.add(
                at("reference"),
                format!("repeats bookings[{first}].reference"),
            );
        }
        if last_name_key(&row.last_name).is_empty() || row.last_name.chars().count() > 100 {
            errors.add(
                at("last_name"),
                "must have a letter and at most 100 characters",
            );
        }
        if !(1..=MAX_PARTY).contains(&row.party_size) {
            errors.add(
                at("party_size"),
                format!("must be between 1 and {MAX_PARTY}"),
            );
        }
        if let Some(email) = &row.email
            && !plausible_email(email)
        {
            errors.add(at("email"), format!("'{email}' is not an email address"));
        }
        if let Some(phone) = &row.phone
            && !plausible_phone(phone)
        {
            errors.add(
                at("phone"),
                format!("'{phone}' is not an international phone number such as +33612345678"),
            );
        }
        if !LANGUAGES.contains(&row.language.as_str()) {
            errors.add(
                at("language"),
                format!("must be one of: {}", LANGUAGES.join(", ")),
            );
        }
        if row.loyalty_tier > 9 {
            errors.add(at("loyalty_tier"), "must be between 0 and 9");
        }
        for (j, lot_id) in row.eligible_lots.iter().enumerate() {
            if !known_lots.contains(lot_id) {
                errors.add(
                    at(&format!("eligible_lots[{j}]")),
                    format!("no lot '{lot_id}' of this operator"),
                );
            }
        }
    }
    // A party that changes size under an offer in play: the hold, the award and the charge
    // are for the party it was made for.
    let resized: HashMap<String, (usize, i32)> = {
        let keys: Vec<String> = rows.iter().map(|r| reference_key(&r.reference)).collect();
        let mut found = HashMap::new();
        for chunk in keys.chunks(500) {
            for b in booking::Entity::find()
                .filter(booking::Column::OperatorId.eq(operator_id))
                .filter(booking::Column::ReferenceKey.is_in(chunk.iter().cloned()))
                .filter(booking::Column::ErasedAt.is_null())
                .all(db)
                .await?
            {
                if let Some(&i) = seen.get(&b.reference_key)
                    && (1..=MAX_PARTY).contains(&rows[i].party_size)
                    && rows[i].party_size as i32 != b.party_size
                {
                    found.insert(b.id, (i, b.party_size));
                }
            }
        }
        found
    };
    for b in offers_in_play(db, resized.keys().cloned().collect()).await? {
        let (i, was) = resized[&b.booking_id];
        errors.add(
            format!("bookings[{i}].party_size"),
            resize_refusal(was, rows[i].party_size, &b.lot_id),
        );
    }
    Ok(errors)
}

/// Bids still in play or paid for: a change of party size would leave them for another party.
async fn offers_in_play(
    db: &impl ConnectionTrait,
    booking_ids: Vec<String>,
) -> Result<Vec<bid::Model>, DbErr> {
    if booking_ids.is_empty() {
        return Ok(Vec::new());
    }
    bid::Entity::find()
        .filter(bid::Column::BookingId.is_in(booking_ids))
        .filter(bid::Column::Status.is_in(BidStatus::TAKING_PART.map(BidStatus::as_str)))
        .order_by_asc(bid::Column::Id)
        .all(db)
        .await
}

fn resize_refusal(was: i32, now: u32, lot_id: &str) -> String {
    format!(
        "cannot change from {was} to {now} while this booking's upgrade offer on lot {lot_id} is in play or paid for (it was made for {was}); cancel the offer first"
    )
}

async fn write(db: &Db, by: &Actor, rows: Vec<BookingInput>) -> Result<ImportSummary, ImportError> {
    let operator_id = by.operator_id.as_str();
    let total = rows.len();
    let now = Utc::now();
    let txn = write_txn(db).await?;
    // The lots first, as every bid and purchase takes them before bookings: a resized
    // booking is locked below, and the eligibility rows inserted after it check their lot.
    let named: BTreeSet<&String> = rows.iter().flat_map(|r| r.eligible_lots.iter()).collect();
    lot::Entity::find()
        .select_only()
        .column(lot::Column::Id)
        .filter(lot::Column::Id.is_in(named.into_iter().cloned()))
        .order_by_asc(lot::Column::Id)
        .lock(LockType::KeyShare)
        .into_tuple::<String>()
        .all(&txn)
        .await?;
    let mut summary = ImportSummary::default();
    let keys: Vec<String> = rows.iter().map(|r| reference_key(&r.reference)).collect();
    let mut existing: HashMap<String, booking::Model> = HashMap::new();
    for chunk in keys.chunks(500) {
        for b in booking::Entity::find()
            .filter(booking::Column::OperatorId.eq(operator_id))
            .filter(booking::Column::ReferenceKey.is_in(chunk.iter().cloned()))
            .all(&txn)
            .await?
        {
            existing.insert(b.reference_key.clone(), b);
        }
    }
    let mut links = Vec::new();
    for (i, (row, key)) in rows.into_iter().zip(keys).enumerate() {
        let booking_id = match existing.remove(&key) {
            // Erased on request: a later import (a nightly sync) must not bring the data back.
            Some(current) if current.erased_at.is_some() => {
                summary.unchanged += 1;
                current.id
            }
            Some(current) => {
                let id = current.id.clone();
                if current.party_size != row.party_size as i32 {
                    // Checked again under the booking's lock, which a bid's write (reading
                    // it FOR KEY SHARE, `intake::bookings_now`) waits for, and then refuses a
                    // bid looked up for the old party.
                    booking::Entity::find_by_id(id.clone())
                        .lock_exclusive()
                        .one(&txn)
                        .await?;
                    if let Some(b) = offers_in_play(&txn, vec![id.clone()]).await?.first() {
                        return Err(ImportError::Invalid(FieldErrors::single(
                            format!("bookings[{i}].party_size"),
                            resize_refusal(current.party_size, row.party_size, &b.lot_id),
                        )));
                    }
                }
                let changed = current.reference != row.reference.trim()
                    || current.last_name != row.last_name.trim()
                    || current.party_size != row.party_size as i32
                    || current.email != row.email
                    || current.phone != row.phone
                    || current.language != row.language
                    || current.loyalty_tier != row.loyalty_tier as i32;
                if changed {
                    let mut am = current.into_active_model();
                    am.reference = Set(row.reference.trim().to_owned());
                    am.last_name = Set(row.last_name.trim().to_owned());
                    am.last_name_key = Set(last_name_key(&row.last_name));
                    am.party_size = Set(row.party_size as i32);
                    am.email = Set(row.email.clone());
                    am.phone = Set(row.phone.clone());
                    am.language = Set(row.language.clone());
                    am.loyalty_tier = Set(row.loyalty_tier as i32);
                    am.updated_at = Set(now);
                    // Read without a lock: an erasure committed since then is not undone.
                    let written = booking::Entity::update_many()
                        .set(am)
                        .filter(booking::Column::Id.eq(&id))
                        .filter(booking::Column::ErasedAt.is_null())
                        .exec(&txn)
                        .await?;
                    if written.rows_affected == 1 {
                        summary.updated += 1;
                    } else {
                        summary.unchanged += 1;
                    }
                } else {
                    summary.unchanged += 1;
                }
                id
            }
            None => {
                let created = booking::ActiveModel {
                    id: Set(ids::new_id("bkg")),
                    operator_id: Set(operator_id.to_owned()),
                    reference: Set(row.reference.trim().to_owned()),
                    reference_key: Set(key),
                    last_name: Set(row.last_name.trim().to_owned()),
                    last_name_key: Set(last_name_key(&row.last_name)),
                    party_size: Set(row.party_size as i32),
                    email: Set(row.email.clone()),
                    phone: Set(row.phone.clone()),
                    language: Set(row.language.clone()),
                    loyalty_tier: Set(row.loyalty_tier as i32),
                    created_at: Set(now),
                    updated_at: Set(now),
                    erased_at: Set(None),
                }
                .insert(&txn)
                .await?;
                summary.created += 1;
                created.id
            }
        };
        for lot_id in row.eligible_lots {
            links.push((booking_id.clone(), lot_id));
        }
    }
    // Eligibility only grows on import: taking a lot away from a booking that may have bid on
    // it is a cancellation, not a data fix.
    for (booking_id, lot_id) in links {
        let exists = booking_lot::Entity::find_by_id((booking_id.clone(), lot_id.clone()))
            .one(&txn)
            .await?
            .is_some();
        if !exists {
            booking_lot::ActiveModel {
                booking_id: Set(booking_id),
                lot_id: Set(lot_id),
            }
            .insert(&txn)
            .await?;
        }
    }
    audit::record(
        &txn,
        by,
        "bookings.imported",
        &format!("{total} rows"),
        None,
        Some(format!(
            "created={} updated={} unchanged={}",
            summary.created, summary.updated, summary.unchanged
        )),
    )
    .await?;
    txn.commit().await?;
    Ok(summary)
}

fn plausible_email(email: &str) -> bool {
    let Some((local, domain)) = email.rsplit_once('@') else {
        return false;
    };
    !local.is_empty()
        && domain.contains('.')
        && !domain.starts_with('.')
        && !domain.ends_with('.')
        && email.len() <= 254
        && !email.chars().any(char::is_whitespace)
}

fn plausible_phone(phone: &str) -> bool {
    let digits = phone.strip_prefix('+').unwrap_or("");
    (8..=15).contains(&digits.len()) && digits.chars().all(|c| c.is_ascii_digit())
}
