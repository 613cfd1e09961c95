//! Bid intake at deadline-rush rates: placing a bid in three batched stages.
//!
//! 1. **Look** (read, batched): the bids asked for together are checked with one query per
//!    table — their bookings, eligibilities, lots and earlier bids — then each in memory, so
//!    a bad request is refused before the card is touched.
//! 2. **Secure** (one call per bid): the card is authorised for the party's total, or saved.
//!    Calls run side by side; the simulated gateway batches its own writes.
//! 3. **Write** (one transaction per batch): the lots are locked and the deadline, capacity
//!    and one-bid-per-booking rule checked again, then the bids, their payment records,
//!    events, messages and delivery jobs go in as one multi-row insert per table, and one
//!    commit makes them all durable before any caller is answered.
//!
//! A bid refused at the write (the lot closed in between, say) has its hold released, as a
//! lone placement would. Nothing waits for a batch to fill: an idle stage takes a lone
//! request at once.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use chrono::{DateTime, SubsecRound, Utc};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, DatabaseTransaction, DbBackend, DbErr, EntityTrait,
    IntoActiveModel, QueryFilter, QueryOrder, QuerySelect, Set, sea_query::LockType,
};

use super::{
    ATTEMPT_KINDS, BidError, CardFor, NewBid, PendingBid, Security, check_fits, check_window,
    corrupt, count_attempts, open_lot, parse_amount, secure, security_payment, unwind, whole,
};
use crate::domain::bid::{BidEventKind, BidStatus};
use crate::domain::lot::{LotSpec, PaymentMode};
use crate::domain::validation::FieldErrors;
use crate::ids;
use crate::money::Money;
use crate::notifications::{Topic, outbox};
use crate::payments::{CardSource, PaymentGateway};
use crate::store::batch::Batcher;
use crate::store::entities::{bid, bid_event, booking, booking_lot, lot, payment};
use crate::store::payments as store_payments;
use crate::store::shape::{padded, pieces};
use crate::store::{Db, lots as store_lots, write_txn};

/// Bids looked up or written together at most.
pub const MAX_BIDS_PER_BATCH: usize = 128;

/// A bid asked for by the traveller of `booking_id` (from a verified session).
#[derive(Clone)]
pub struct Ask {
    pub booking_id: String,
    pub lot_id: String,
    pub amount: String,
    pub card: Option<CardSource>,
    pub partial_ok: bool,
    pub preference: Option<u32>,
    pub consent_to_charge: bool,
}

impl Ask {
    pub fn new(booking_id: &str, new: NewBid<'_>) -> Self {
        Self {
            booking_id: booking_id.to_owned(),
            lot_id: new.lot_id.to_owned(),
            amount: new.amount.to_owned(),
            card: new.card,
            partial_ok: new.partial_ok,
            preference: new.preference,
            consent_to_charge: new.consent_to_charge,
        }
    }
}

/// A bid that passed every check that can be made before the bank is asked.
struct Looked {
    booking: booking::Model,
    spec: LotSpec,
    bid_id: String,
    attempt: u32,
    amount: Money,
    units: u32,
    card: CardSource,
}

/// A placed bid, as committed, with what its answer needs.
#[derive(Debug, Clone)]
pub struct Placed {
    pub bid: bid::Model,
    pub closes_at: DateTime<Utc>,
    /// The whole timeline when the bid is new; `None` when it was placed again after a
    /// withdrawal (its earlier events are not in hand).
    pub timeline: Option<Vec<bid_event::Model>>,
}

/// The process's bid intake: its look and write stages. Cheap to clone.
#[derive(Clone)]
pub struct Intake {
    db: Db,
    look: Batcher<Ask, Result<Looked, BidError>>,
    write: Batcher<PendingBid, Result<Placed, BidError>>,
}

impl Intake {
    /// Starts the stages on the current runtime. Reads run on two workers; writes on one on
    /// SQLite (one writer at a time), on one per two pooled connections on PostgreSQL.
    pub fn start(db: &Db, pool_size: u32) -> Self {
        let writers = match db.get_database_backend() {
            DbBackend::Sqlite => 1,
            _ => (pool_size as usize / 2).max(1),
        };
        let reader = db.clone();
        let look = Batcher::start("bid look", MAX_BIDS_PER_BATCH, 2, move |asks| {
            let db = reader.clone();
            async move { look(&db, asks).await }
        });
        let writer = db.clone();
        let write = Batcher::start("bid write", MAX_BIDS_PER_BATCH, writers, move |pending| {
            let db = writer.clone();
            async move { write(&db, pending).await }
        });
        Self {
            db: db.clone(),
            look,
            write,
        }
    }

    /// Places the bid: looked up with the bids asked for at the same moment, secured at the
    /// payment provider, written in the next shared commit. Answers after that commit.
    ///
    /// The placement runs [`whole`], on the caller's runtime (an HTTP worker's, where the
    /// request's own work stays).
    pub async fn place(
        &self,
        gateway: &Arc<dyn PaymentGateway>,
        ask: Ask,
    ) -> Result<Placed, BidError> {
        let (intake, gateway) = (self.clone(), gateway.clone());
        whole(async move { intake.place_here(gateway.as_ref(), ask).await }).await
    }

    async fn place_here(&self, gateway: &dyn PaymentGateway, ask: Ask) -> Result<Placed, BidError> {
        let stopped = |e: crate::store::batch::Stopped| BidError::Db(DbErr::Custom(e.to_string()));
        let looked = self
            .look
            .call(ask.clone(), "bid look")
            .await
            .map_err(stopped)??;
        let (pending, security) = secure_looked(gateway, &ask, looked).await?;
        let (bid_id, attempt) = (pending.bid_id.clone(), pending.attempt);
        match self
            .write
            .call(pending, "bid write")
            .await
            .map_err(stopped)?
        {
            Ok(placed) => Ok(placed),
            Err(e) => {
                unwind(&self.db, gateway, &bid_id, attempt, &security).await;
                Err(e)
            }
        }
    }
}

/// The same three stages for one bid, without a running server: for tools and tests.
pub async fn place_one(
    db: &Db,
    gateway: &dyn PaymentGateway,
    ask: Ask,
) -> Result<Placed, BidError> {
    let mut answers = place_together(db, gateway, vec![ask]).await;
    debug_assert_eq!(answers.len(), 1);
    answers.pop().expect("one answer for one request")
}

/// The three stages for these bids as one batch (one look, the cards side by side, one
/// write), without a running server: what a deadline rush makes of them, on demand. One
/// answer per ask, in order.
pub async fn place_together(
    db: &Db,
    gateway: &dyn PaymentGateway,
    asks: Vec<Ask>,
) -> Vec<Result<Placed, BidError>> {
    let looked = look(db, asks.clone()).await;
    let secured = futures_util::future::join_all(
        asks.iter()
            .zip(looked)
            .map(|(ask, looked)| async move { secure_looked(gateway, ask, looked?).await }),
    )
    .await;
    let mut answers: Vec<Option<Result<Placed, BidError>>> = Vec::with_capacity(asks.len());
    let mut pending = Vec::new();
    let mut securities = Vec::new();
    for secured in secured {
        match secured {
            Ok((p, security)) => {
                securities.push((p.bid_id.clone(), p.attempt, security));
                pending.push(p);
                answers.push(None);
            }
            Err(e) => answers.push(Some(Err(e))),
        }
    }
    let mut written = write(db, pending).await.into_iter().zip(securities);
    let mut out = Vec::with_capacity(answers.len());
    for answer in answers {
        out.push(match answer {
            Some(refused) => refused,
            None => {
                let (result, (bid_id, attempt, security)) =
                    written.next().expect("one write answer per pending bid");
                if result.is_err() {
                    unwind(db, gateway, &bid_id, attempt, &security).await;
                }
                result
            }
        });
    }
    out
}

async fn secure_looked(
    gateway: &dyn PaymentGateway,
    ask: &Ask,
    looked: Looked,
) -> Result<(PendingBid, Security), BidError> {
    let total = looked.amount.minor() * i64::from(looked.units);
    // A payment method id (never card details) is kept to re-authorise a raised bid, where
    // the provider lets it secure a second hold.
    let method = match &looked.card {
        CardSource::PaymentMethod(id) if gateway.reuses_payment_methods() => Some(id.clone()),
        _ => None,
    };
    let bid_for = CardFor {
        bid_id: &looked.bid_id,
        lot_id: &ask.lot_id,
        booking: &looked.booking,
        units: looked.units,
    };
    let security = secure(
        gateway,
        &looked.spec,
        bid_for,
        looked.attempt,
        total,
        looked.card,
    )
    .await?;
    let pending = PendingBid {
        booking: looked.booking,
        lot_id: ask.lot_id.clone(),
        partial_ok: ask.partial_ok,
        preference: ask.preference,
        bid_id: looked.bid_id,
        attempt: looked.attempt,
        amount: looked.amount,
        units: looked.units,
        security: security.clone(),
        method,
        provider: gateway.provider(),
    };
    Ok((pending, security))
}

fn distinct<'a>(values: impl Iterator<Item = &'a String>) -> Vec<String> {
    let set: HashSet<&String> = values.collect();
    set.into_iter().cloned().collect()
}

// ---------------------------------------------------------------------------------------
// Look

async fn look(db: &Db, asks: Vec<Ask>) -> Vec<Result<Looked, BidError>> {
    match look_all(db, &asks).await {
        Ok(answers) => answers,
        Err(e) => asks
            .iter()
            .map(|_| Err(BidError::Db(DbErr::Custom(format!("bid look-up: {e}")))))
            .collect(),
    }
}

async fn look_all(db: &Db, asks: &[Ask]) -> Result<Vec<Result<Looked, BidError>>, DbErr> {
    let booking_ids = distinct(asks.iter().map(|a| &a.booking_id));
    let lot_ids = distinct(asks.iter().map(|a| &a.lot_id));
    let bookings: HashMap<String, booking::Model> = booking::Entity::find()
        .filter(booking::Column::Id.is_in(padded(booking_ids.clone())))
        .all(db)
        .await?
        .into_iter()
        .map(|b| (b.id.clone(), b))
        .collect();
    let eligible = eligibility(db, &booking_ids, &lot_ids).await?;
    let lots = lots_by_id(db, &lot_ids, false).await?;
    let earlier = bids_by_pair(db, &booking_ids, &lot_ids, false).await?;
    // Attempts so far, for bids placed again after a withdrawal (a new bid has none).
    let mut attempts: HashMap<String, u32> = HashMap::new();
    if !earlier.is_empty() {
        let rows = payment::Entity::find()
            .filter(
                payment::Column::BidId
                    .is_in(padded(earlier.values().map(|b| b.id.clone()).collect())),
            )
            .filter(payment::Column::Kind.is_in(ATTEMPT_KINDS))
            .all(db)
            .await?;
        let mut of_bid: HashMap<&str, Vec<(&str, Option<&str>)>> = HashMap::new();
        for p in &rows {
            let row = (p.kind.as_str(), p.provider_ref.as_deref());
            of_bid.entry(p.bid_id.as_str()).or_default().push(row);
        }
        for (bid_id, rows) in of_bid {
            attempts.insert(bid_id.to_owned(), count_attempts(rows));
        }
    }
    let now = Utc::now();
    Ok(asks
        .iter()
        .map(|ask| {
            let booking = bookings
                .get(&ask.booking_id)
                .filter(|b| b.erased_at.is_none())
                .ok_or(BidError::SignedOut)?;
            check_fields(ask)?;
            if !eligible.contains(&(ask.booking_id.clone(), ask.lot_id.clone())) {
                return Err(BidError::NotFound);
            }
            let (lot, spec) = lots.get(&ask.lot_id).ok_or(BidError::NotFound)?;
            open_lot(lot, spec, booking)?;
            if spec.payment_mode == PaymentMode::ChargeOnAward && !ask.consent_to_charge {
                return Err(BidError::Invalid(FieldErrors::single(
                    "consent_to_charge",
                    "must be true: this upgrade charges your card after the close if you win, without you present",
                )));
            }
            check_window(spec, now)?;
            let units = booking.party_size.max(1) as u32;
            check_fits(lot, spec, units, ask.partial_ok)?;
            let amount = parse_amount(spec, &ask.amount)?;
            let existing = earlier.get(&(ask.lot_id.clone(), ask.booking_id.clone()));
            if let Some(b) = existing {
                match BidStatus::parse(&b.status) {
                    Ok(BidStatus::Active) => {
                        return Err(BidError::AlreadyBid {
                            bid_id: b.id.clone(),
                        });
                    }
                    Ok(_) if b.placeable_again() => {}
                    Ok(status) => return Err(BidError::NotActive { status }),
                    Err(e) => return Err(BidError::Db(DbErr::Custom(e))),
                }
            }
            let bid_id = existing.map_or_else(|| ids::new_id("bid"), |b| b.id.clone());
            let attempt = attempts.get(&bid_id).copied().unwrap_or(0) + 1;
            Ok(Looked {
                booking: booking.clone(),
                spec: spec.clone(),
                bid_id,
                attempt,
                amount,
                units,
                card: ask.card.clone().expect("checked by check_fields"),
            })
        })
        .collect())
}

/// The field errors of the request itself, all at once.
fn check_fields(ask: &Ask) -> Result<(), BidError> {
    let mut errors = FieldErrors::new();
    if ask.card.is_none() {
        errors.add(
            "payment_method",
            "is required: the card to authorise (a payment method id or card details)",
        );
    }
    if let Some(p) = ask.preference
        && !(1..=9).contains(&p)
    {
        errors.add("preference", "must be between 1 (first choice) and 9");
    }
    errors.into_result().map_err(BidError::Invalid)
}

/// Which of these bookings may bid on which of these lots. Looked up by booking alone and
/// filtered here: a booking is eligible for a few lots but a lot for thousands of bookings,
/// and given both lists PostgreSQL read the index entries of every booking of the lots to
/// keep the few asked for (`EXPLAIN ANALYZE`, README "Bid intake under load").
async fn eligibility(
    db: &impl sea_orm::ConnectionTrait,
    booking_ids: &[String],
    lot_ids: &[String],
) -> Result<HashSet<(String, String)>, DbErr> {
    let lots: HashSet<&String> = lot_ids.iter().collect();
    Ok(booking_lot::Entity::find()
        .filter(booking_lot::Column::BookingId.is_in(padded(booking_ids.to_vec())))
        .all(db)
        .await?
        .into_iter()
        .filter(|e| lots.contains(&e.lot_id))
        .map(|e| (e.booking_id, e.lot_id))
        .collect())
}

/// Lots by id with their specs; `lock` takes them `FOR SHARE` (the close takes them
/// `FOR UPDATE`, so it waits for this batch, and this batch for a close under way).
async fn lots_by_id(
    db: &impl sea_orm::ConnectionTrait,
    lot_ids: &[String],
    lock: bool,
) -> Result<HashMap<String, (lot::Model, LotSpec)>, DbErr> {
    let mut query = lot::Entity::find()
        .filter(lot::Column::Id.is_in(padded(lot_ids.to_vec())))
        .order_by_asc(lot::Column::Id);
    if lock {
        query = query.lock_shared();
    }
    query
        .all(db)
        .await?
        .into_iter()
        .map(|l| {
            let spec = store_lots::spec(&l).map_err(corrupt)?;
            Ok((l.id.clone(), (l, spec)))
        })
        .collect()
}

/// What became of these bookings while their cards were held: erased, or resized by an
/// import. Read `FOR KEY SHARE`, in id order: an erasure, and an import changing a party's
/// size, take the booking `FOR UPDATE` before they look for bids in play, so either they wait
/// for this batch and find its bids, or this batch waits for them and reads what they wrote.
/// The weakest lock that does so: an import updating the booking's other columns neither
/// waits for it nor holds it up.
pub(super) async fn bookings_now(
    txn: &DatabaseTransaction,
    booking_ids: &[String],
) -> Result<HashMap<String, BookingNow>, DbErr> {
    let rows: Vec<(String, Option<DateTime<Utc>>, i32)> = booking::Entity::find()
        .select_only()
        .column(booking::Column::Id)
        .column(booking::Column::ErasedAt)
        .column(booking::Column::PartySize)
        .filter(booking::Column::Id.is_in(padded(booking_ids.to_vec())))
        .order_by_asc(booking::Column::Id)
        .lock(LockType::KeyShare)
        .into_tuple()
        .all(txn)
        .await?;
    Ok(rows
        .into_iter()
        .map(|(id, erased_at, party_size)| {
            let now = BookingNow {
                erased: erased_at.is_some(),
                party_size,
            };
            (id, now)
        })
        .collect())
}

/// A booking as it stands under its lock, for the checks a bid's write makes again.
pub(super) struct BookingNow {
    pub erased: bool,
    pub party_size: i32,
}

impl BookingNow {
    /// Why a bid looked up for `booking` cannot be written now: erased (signed out), or its
    /// party resized since (the bid's units and hold are for the old party).
    pub(super) fn refusal(
        found: Option<&BookingNow>,
        booking: &booking::Model,
    ) -> Option<BidError> {
        match found {
            None => Some(BidError::SignedOut),
            Some(b) if b.erased => Some(BidError::SignedOut),
            Some(b) if b.party_size != booking.party_size => Some(BidError::Unavailable(format!(
                "Your booking changed meanwhile: it is now for {} people. Nothing was charged; look at the offer again and bid for your party.",
                b.party_size
            ))),
            Some(_) => None,
        }
    }
}

/// Bids of these bookings on these lots, by `(lot, booking)`; `lock` takes them
/// `FOR UPDATE`, in id order so that two batches never wait on each other in a circle.
///
/// Found by booking alone, like [`eligibility`], and then, to lock, read again by id: only
/// the bids of these pairs are locked, and each is read as committed after any wait.
async fn bids_by_pair(
    db: &impl sea_orm::ConnectionTrait,
    booking_ids: &[String],
    lot_ids: &[String],
    lock: bool,
) -> Result<HashMap<(String, String), bid::Model>, DbErr> {
    let lots: HashSet<&String> = lot_ids.iter().collect();
    let mut found: Vec<bid::Model> = bid::Entity::find()
        .filter(bid::Column::BookingId.is_in(padded(booking_ids.to_vec())))
        .all(db)
        .await?
        .into_iter()
        .filter(|b| lots.contains(&b.lot_id))
        .collect();
    if lock && !found.is_empty() {
        found = bid::Entity::find()
            .filter(bid::Column::Id.is_in(padded(found.into_iter().map(|b| b.id).collect())))
            .order_by_asc(bid::Column::Id)
            .lock_exclusive()
            .all(db)
            .await?;
    }
    Ok(found
        .into_iter()
        .map(|b| ((b.lot_id.clone(), b.booking_id.clone()), b))
        .collect())
}

// ---------------------------------------------------------------------------------------
// Write

async fn write(db: &Db, pending: Vec<PendingBid>) -> Vec<Result<Placed, BidError>> {
    if pending.is_empty() {
        return Vec::new();
    }
    let written = async {
        let _turn = crate::store::sqlite_write_turn(db).await;
        let txn = write_txn(db).await?;
        let answers = write_all(&txn, &pending).await?;
        txn.commit().await?;
        Ok::<_, DbErr>(answers)
    }
    .await;
    match written {
        Ok(answers) => answers,
        Err(e) => {
            tracing::error!(error = %e, bids = pending.len(), "bid write batch failed");
            pending
                .iter()
                .map(|_| {
                    Err(BidError::Db(DbErr::Custom(format!(
                        "shared bid write: {e}"
                    ))))
                })
                .collect()
        }
    }
}

/// What the write does with one pending bid, once checked.
enum Plan {
    /// A new row, as it will be written: what a later bid of this batch on the same booking
    /// and lot finds, and what the caller is answered once the insert returns its id.
    Insert(bid::Model),
    /// Placed again after a withdrawal or a release for want of units: the same row, active
    /// again.
    Reactivate(bid::Model),
}

async fn write_all(
    txn: &DatabaseTransaction,
    pending: &[PendingBid],
) -> Result<Vec<Result<Placed, BidError>>, DbErr> {
    let booking_ids = distinct(pending.iter().map(|p| &p.booking.id));
    let lot_ids = distinct(pending.iter().map(|p| &p.lot_id));
    let lots = lots_by_id(txn, &lot_ids, true).await?;
    let bookings = bookings_now(txn, &booking_ids).await?;
    let eligible = eligibility(txn, &booking_ids, &lot_ids).await?;
    let mut existing = bids_by_pair(txn, &booking_ids, &lot_ids, true).await?;
    // Once the locks are held, for the deadline check. Microseconds, as PostgreSQL keeps
    // them: the bids answered are the bids read back later.
    let now = Utc::now().trunc_subsecs(6);

    // Checked in memory, in arrival order: a second bid of the same booking on the same lot
    // in this batch finds the first one as existing.
    let mut plans: Vec<Result<Plan, BidError>> = Vec::with_capacity(pending.len());
    for p in pending {
        let pair = (p.lot_id.clone(), p.booking.id.clone());
        let plan = (|| {
            if let Some(refusal) = BookingNow::refusal(bookings.get(&p.booking.id), &p.booking) {
                return Err(refusal);
            }
            if !eligible.contains(&(p.booking.id.clone(), p.lot_id.clone())) {
                return Err(BidError::NotFound);
            }
            let (lot, spec) = lots.get(&p.lot_id).ok_or(BidError::NotFound)?;
            open_lot(lot, spec, &p.booking)?;
            check_window(spec, now)?;
            check_fits(lot, spec, p.units, p.partial_ok)?;
            match existing.get(&pair) {
                None => Ok(Plan::Insert(new_bid(p, spec, now))),
                Some(b) if b.id == p.bid_id && b.placeable_again() => {
                    Ok(Plan::Reactivate(b.clone()))
                }
                Some(b) if b.status == BidStatus::Active.as_str() || b.id != p.bid_id => {
                    Err(BidError::AlreadyBid {
                        bid_id: b.id.clone(),
                    })
                }
                Some(b) => Err(BidError::NotActive {
                    status: BidStatus::parse(&b.status).unwrap_or(BidStatus::Lost),
                }),
            }
        })();
        if let Ok(Plan::Insert(b)) = &plan {
            existing.insert(pair, b.clone());
        }
        plans.push(plan);
    }

    // New bids in one insert. A bid of the same booking and lot committed meanwhile by
    // another writer (another process) is skipped by the unique index, not an error.
    // `reset_all` marks every column Set: a model converts to Unchanged values.
    let new_rows: Vec<bid::ActiveModel> = plans
        .iter()
        .filter_map(|plan| match plan {
            Ok(Plan::Insert(b)) => Some(bid::ActiveModel::from(b.clone()).reset_all()),
            _ => None,
        })
        .collect();
    // Only the ids come back: the rows are what was sent, so decoding them again is waste.
    let mut inserted: HashSet<String> = HashSet::with_capacity(new_rows.len());
    for piece in pieces(new_rows) {
        let written = bid::Entity::insert_many(piece)
            .on_conflict_do_nothing_on([bid::Column::LotId, bid::Column::BookingId])
            .exec_with_returning_keys(txn)
            .await?;
        if let sea_orm::TryInsertResult::Inserted(ids) = written {
            inserted.extend(ids);
        }
    }
    let mut placed: Vec<Result<bid::Model, BidError>> = Vec::with_capacity(pending.len());
    for (p, plan) in pending.iter().zip(plans) {
        placed.push(match plan {
            Err(e) => Err(e),
            Ok(Plan::Insert(b)) if inserted.remove(&b.id) => Ok(b),
            Ok(Plan::Insert(_)) => Err(concurrent_bid(txn, p).await?),
            Ok(Plan::Reactivate(b)) => Ok(reactivate(txn, b, p, now).await?),
        });
    }
    if let Some(id) = inserted.into_iter().next() {
        return Err(DbErr::Custom(format!(
            "the insert returned {id}, a bid it was not sent"
        )));
    }

    // Their payment records, events, messages and delivery jobs: one insert each.
    let mut payments = Vec::new();
    let mut events = Vec::new();
    for (p, b) in pending.iter().zip(&placed) {
        let Ok(b) = b else { continue };
        let spec = &lots[&p.lot_id].1;
        payments.push(security_payment(
            &p.bid_id,
            spec.currency.code(),
            p.provider,
            p.attempt,
            &p.security,
        ));
        events.extend(placed_events(p, spec, b));
    }
    store_payments::insert_many(txn, payments).await?;
    let mut timelines: HashMap<String, Vec<bid_event::Model>> = HashMap::new();
    for e in super::events::record_many(txn, events, now).await? {
        timelines.entry(e.bid_id.clone()).or_default().push(e);
    }
    let messages: Vec<(&bid::Model, &lot::Model)> = pending
        .iter()
        .zip(&placed)
        .filter_map(|(p, b)| Some((b.as_ref().ok()?, &lots[&p.lot_id].0)))
        .collect();
    if !messages.is_empty() {
        let mut endpoints = Vec::new();
        for operator in distinct(messages.iter().map(|(_, l)| &l.operator_id)) {
            endpoints.extend(outbox::endpoints_of(txn, &operator).await?);
        }
        outbox::enqueue_many(txn, &messages, &endpoints, Topic::BidPlaced, None, now).await?;
    }

    Ok(pending
        .iter()
        .zip(placed)
        .map(|(p, b)| {
            let b = b?;
            let fresh = b.version == 0;
            let timeline = timelines.remove(&b.id);
            Ok(Placed {
                closes_at: lots[&p.lot_id].0.closes_at,
                timeline: timeline.filter(|_| fresh),
                bid: b,
            })
        })
        .collect())
}

fn new_bid(p: &PendingBid, spec: &LotSpec, now: DateTime<Utc>) -> bid::Model {
    let (payment_ref, saved_card) = secured_by(&p.security);
    bid::Model {
        id: p.bid_id.clone(),
        lot_id: p.lot_id.clone(),
        booking_id: p.booking.id.clone(),
        amount_minor: p.amount.minor(),
        currency: spec.currency.code().to_owned(),
        units: p.units as i32,
        partial_ok: p.partial_ok,
        tier: p.booking.loyalty_tier,
        preference: p.preference.map(|p| p as i32),
        status: BidStatus::Active.as_str().to_owned(),
        payment_method_ref: p.method.clone(),
        payment_ref,
        saved_card,
        award_units: None,
        award_price_minor: None,
        outcome_reason: None,
        standby_rank: None,
        submitted_at: now,
        created_at: now,
        updated_at: now,
        version: 0,
    }
}

/// The bid that another writer committed for the same booking and lot first.
async fn concurrent_bid(txn: &DatabaseTransaction, p: &PendingBid) -> Result<BidError, DbErr> {
    let other = bid::Entity::find()
        .filter(bid::Column::LotId.eq(&p.lot_id))
        .filter(bid::Column::BookingId.eq(&p.booking.id))
        .one(txn)
        .await?;
    Ok(match other {
        Some(b) => BidError::AlreadyBid { bid_id: b.id },
        None => BidError::Db(DbErr::Custom("a bid was neither inserted nor found".into())),
    })
}

async fn reactivate(
    txn: &DatabaseTransaction,
    b: bid::Model,
    p: &PendingBid,
    now: DateTime<Utc>,
) -> Result<bid::Model, DbErr> {
    let (payment_ref, saved_card) = secured_by(&p.security);
    let mut am = b.into_active_model();
    am.amount_minor = Set(p.amount.minor());
    am.units = Set(p.units as i32);
    am.partial_ok = Set(p.partial_ok);
    am.tier = Set(p.booking.loyalty_tier);
    am.preference = Set(p.preference.map(|p| p as i32));
    am.status = Set(BidStatus::Active.as_str().to_owned());
    // A bid released for want of units carries that outcome: in play again, it has none.
    am.outcome_reason = Set(None);
    am.award_units = Set(None);
    am.award_price_minor = Set(None);
    am.standby_rank = Set(None);
    am.payment_method_ref = Set(p.method.clone());
    am.payment_ref = Set(payment_ref);
    am.saved_card = Set(saved_card);
    am.submitted_at = Set(now);
    am.updated_at = Set(now);
    am.version = Set(am.version.as_ref() + 1);
    am.update(txn).await
}

/// `(payment_ref, saved_card)` of a bid secured this way.
fn secured_by(security: &Security) -> (Option<String>, Option<String>) {
    match security {
        Security::Hold { reference, .. } => (Some(reference.clone()), None),
        Security::SavedCard(card) => (
            None,
            Some(serde_json::to_string(card).expect("cards serialise")),
        ),
    }
}

/// The timeline entries of a placement: received, then how the card secures it.
fn placed_events(
    p: &PendingBid,
    spec: &LotSpec,
    b: &bid::Model,
) -> Vec<(String, BidEventKind, Option<i64>, Option<String>)> {
    let amount = Some(p.amount.minor());
    let mut events = vec![(b.id.clone(), BidEventKind::Placed, amount, None)];
    match &p.security {
        Security::Hold { .. } => {
            events.push((b.id.clone(), BidEventKind::HoldPlaced, amount, None));
        }
        Security::SavedCard(card) => {
            // The consent the card networks require for a merchant-initiated charge, on record.
            let detail = format!(
                "Card {} saved. You agreed that it is charged {} {} without you present if your upgrade is confirmed, and never otherwise.",
                card.card
                    .last4
                    .as_deref()
                    .map(|l| format!("ending {l}"))
                    .unwrap_or_default(),
                Money::from_minor(p.amount.minor() * i64::from(p.units), spec.currency)
                    .map(|m| m.to_string())
                    .unwrap_or_default(),
                spec.currency
            );
            events.push((b.id.clone(), BidEventKind::CardSaved, amount, Some(detail)));
        }
    }
    events
}
