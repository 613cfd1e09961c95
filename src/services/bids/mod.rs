//! What a traveller does with a bid: see offers, place, change, withdraw, read the timeline.
//!
//! The deadline is the server's and is checked inside the write transaction, after the lot
//! row is locked (SQLite: `BEGIN IMMEDIATE`; PostgreSQL: `FOR SHARE` on the lot, which the
//! close takes `FOR UPDATE`), so a change either commits before the close counts bids or
//! is refused; no request racing the close slips in after it.

use chrono::{DateTime, Utc};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, DbErr, EntityTrait, IntoActiveModel,
    QueryFilter, QueryOrder, QuerySelect, Set, sea_query::LockType,
};

use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;

use sha2::Digest;

use super::events;

pub(crate) mod bought_now;
mod intake;
use crate::domain::bid::{BidEventKind, BidStatus};
use crate::domain::lot::{LotSpec, LotStatus, PaymentMode};
use crate::domain::outcome::OutcomeReason;
use crate::domain::validation::FieldErrors;
use crate::ids;
use crate::jobs::{self, BidBefore, Job, Purchase};
use crate::money::Money;
use crate::notifications::why::{Refusal, Why};
use crate::notifications::{Topic, outbox};
use crate::payments::{
    BID_METADATA, BOOKING_METADATA, CardSource, Decline, HoldOutcome, HoldRequest, IdempotencyKey,
    LOT_METADATA, PaymentError, PaymentGateway, PaymentRef, PaymentStep, SavedCard, SetupOutcome,
    SetupRequest, UNITS_METADATA,
};
use crate::store::entities::{bid, bid_event, booking, booking_lot, lot, payment};
use crate::store::payments::{self as store_payments, NewPayment};
use crate::store::{Db, lots as store_lots, write_txn};
pub use intake::{Ask, Intake, Placed, place_together};

#[derive(Debug, thiserror::Error)]
pub enum BidError {
    /// The session's booking is gone (erased): the traveller must sign in again.
    #[error("the booking of this session no longer exists")]
    SignedOut,
    #[error("no such offer or bid for this booking")]
    NotFound,
    #[error("bidding closed at {closes_at}")]
    Closed { closes_at: DateTime<Utc> },
    #[error("bidding opens at {opens_at}")]
    NotOpenYet { opens_at: DateTime<Utc> },
    #[error("{0}")]
    Unavailable(String),
    #[error("the amount per person must be between {min} and {max} {currency}")]
    OutOfRange {
        min: String,
        max: String,
        currency: String,
    },
    #[error("{0}")]
    Invalid(FieldErrors),
    #[error("this booking already has an active bid on the lot: change it instead")]
    AlreadyBid { bid_id: String },
    #[error("the bid is {status} and can no longer be changed")]
    NotActive { status: BidStatus },
    /// A replacement card came after the grace period (or on a lot that gives none): the
    /// upgrade is the next traveller's.
    #[error("{}", if *.no_grace {
        "This upgrade leaves no time to give another card, so it goes to the next traveller, if there is one; nothing was charged."
    } else {
        "The time to give another card has passed, so the upgrade goes to the next traveller, if there is one; nothing was charged."
    })]
    GraceOver { no_grace: bool },
    /// Other changes of the bid kept landing first; this one changed nothing.
    #[error("the bid was changed meanwhile by another request; this one changed nothing")]
    ChangedMeanwhile,
    /// The card was refused; nothing was written.
    #[error("{0}")]
    CardDeclined(String),
    /// The payment provider could not be reached; nothing was written.
    #[error("payment provider unavailable: {0}")]
    PaymentUnavailable(String),
    #[error(transparent)]
    Db(#[from] DbErr),
}

fn corrupt(e: String) -> DbErr {
    DbErr::Custom(format!("stored lot unreadable: {e}"))
}

/// One upgrade on offer to a booking, with the booking's own bid if it has one.
#[derive(Debug, Clone)]
pub struct Offer {
    pub lot: lot::Model,
    pub spec: LotSpec,
    pub status: LotStatus,
    pub bid: Option<bid::Model>,
    /// Until when the bid, its payment failed, may still be given another card.
    pub card_replaceable_until: Option<DateTime<Utc>>,
    /// Units neither entitled nor sold by "upgrade now".
    pub free_units: u32,
}

impl Offer {
    /// Bidding runs now and a unit is free: a bid may be placed, partial if need be.
    pub fn bidding_now(&self, now: DateTime<Utc>) -> bool {
        self.status == LotStatus::Open
            && self.spec.opens_at <= now
            && now < self.spec.closes_at
            && self.free_units > 0
    }

    /// Bidding has not begun yet: when it will.
    pub fn opens_later(&self, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
        (self.status == LotStatus::Open && now < self.spec.opens_at).then_some(self.spec.opens_at)
    }

    /// The whole party can be upgraded, should its bid win.
    pub fn fits(&self, party: u32) -> bool {
        self.free_units >= party
    }
}

/// The upgrades this booking may bid on. An upgrade that cannot be had (capacity withdrawn or
/// sold) is not shown, unless the traveller already bid on it and needs to see what became
/// of the bid. One larger than the party's free units is: a partial upgrade may be asked for.
pub async fn offers(db: &Db, booking: &booking::Model) -> Result<Vec<Offer>, DbErr> {
    let lot_ids: Vec<String> = booking_lot::Entity::find()
        .filter(booking_lot::Column::BookingId.eq(&booking.id))
        .all(db)
        .await?
        .into_iter()
        .map(|l| l.lot_id)
        .collect();
    let lots = lot::Entity::find()
        .filter(lot::Column::Id.is_in(lot_ids))
        .filter(lot::Column::OperatorId.eq(&booking.operator_id))
        .filter(lot::Column::Status.ne(LotStatus::Draft.as_str()))
        .order_by_asc(lot::Column::ClosesAt)
        .order_by_asc(lot::Column::Id)
        .all(db)
        .await?;
    let bids = bid::Entity::find()
        .filter(bid::Column::BookingId.eq(&booking.id))
        .all(db)
        .await?;
    let mut offers = Vec::new();
    for l in lots {
        let spec = store_lots::spec(&l).map_err(corrupt)?;
        let status = store_lots::status(&l);
        let my_bid = bids.iter().find(|b| b.lot_id == l.id).cloned();
        let free_units = store_lots::free_units(&l, &spec);
        let can_be_had = status == LotStatus::Open && free_units > 0;
        if can_be_had || my_bid.is_some() {
            // Rare (a winner's failed payment): one more read for such a bid only.
            let card_replaceable_until = match &my_bid {
                Some(b) if b.status == BidStatus::PaymentFailed.as_str() => {
                    let failed_at = last_payment_failure(db, &b.id).await?;
                    card_replaceable_until(&spec, failed_at, Utc::now())
                }
                _ => None,
            };
            offers.push(Offer {
                lot: l,
                spec,
                status,
                bid: my_bid,
                card_replaceable_until,
                free_units,
            });
        }
    }
    Ok(offers)
}

pub struct NewBid<'a> {
    pub lot_id: &'a str,
    pub amount: &'a str,
    pub card: Option<CardSource>,
    pub partial_ok: bool,
    pub preference: Option<u32>,
    /// The traveller agreed to a later, off-session charge (`charge_on_award` lots).
    pub consent_to_charge: bool,
}

/// What secures a bid at the payment provider: a hold for its total, or a saved card.
#[derive(Clone)]
enum Security {
    Hold {
        reference: String,
        amount_minor: i64,
    },
    SavedCard(SavedCard),
}

fn declined(d: Decline) -> BidError {
    BidError::CardDeclined(d.message)
}

fn unavailable(e: PaymentError) -> BidError {
    match e {
        PaymentError::Declined(d) => declined(d),
        // The provider refused the request itself (an unknown payment method, say): the
        // traveller's input is at fault, not the service.
        PaymentError::Invalid(message) => BidError::Invalid(FieldErrors::single(
            "payment_method",
            format!("was refused by the payment provider: {message}"),
        )),
        other => BidError::PaymentUnavailable(other.to_string()),
    }
}

/// The bid a card call is for, as the provider's metadata names it: should the bid's write
/// be lost, reconcile still knows whose hold to release and whom to tell.
struct CardFor<'a> {
    bid_id: &'a str,
    lot_id: &'a str,
    booking: &'a booking::Model,
    units: u32,
}

impl CardFor<'_> {
    fn metadata(&self) -> BTreeMap<String, String> {
        BTreeMap::from([
            (BID_METADATA.to_owned(), self.bid_id.to_owned()),
            (LOT_METADATA.to_owned(), self.lot_id.to_owned()),
            (BOOKING_METADATA.to_owned(), self.booking.id.clone()),
            (UNITS_METADATA.to_owned(), self.units.to_string()),
        ])
    }
}

/// Authorises the bid's total (hold lots) or saves the card (charge-on-award lots), before
/// anything is written: a refused card changes nothing.
async fn secure(
    gateway: &dyn PaymentGateway,
    spec: &LotSpec,
    bid: CardFor<'_>,
    attempt: u32,
    total_minor: i64,
    card: CardSource,
) -> Result<Security, BidError> {
    let description = format!(
        "Upgrade {} {} {} → {}",
        spec.resource, spec.service_date, spec.from_class, spec.to_class
    );
    let metadata = bid.metadata();
    let needs_action = || {
        BidError::CardDeclined(
            "Your bank asks to confirm this card with a code, which this page cannot do yet. Please use another card.".into(),
        )
    };
    match spec.payment_mode {
        PaymentMode::Hold => {
            let request = HoldRequest {
                // The total is part of the key: two raises of one bid sent at once read the
                // same attempt number, and each must get a hold of its own amount rather
                // than the provider refusing the second as a key reused for other parameters.
                idempotency_key: card_key(bid.bid_id, PaymentStep::Hold, attempt, &card)?
                    .child(&total_minor.to_string()),
                amount_minor: total_minor,
                currency: spec.currency,
                card,
                customer_ref: Some(bid.booking.id.clone()),
                description,
                metadata,
            };
            match patiently(|| gateway.authorize_hold(request.clone()))
                .await
                .map_err(unavailable)?
            {
                HoldOutcome::Authorized(a) => Ok(Security::Hold {
                    reference: a.reference.to_string(),
                    amount_minor: a.amount_minor,
                }),
                HoldOutcome::Declined(d) => Err(declined(d)),
                HoldOutcome::RequiresAction(_) => Err(needs_action()),
            }
        }
        PaymentMode::ChargeOnAward => {
            let request = SetupRequest {
                idempotency_key: card_key(bid.bid_id, PaymentStep::SaveCard, attempt, &card)?,
                card,
                customer_ref: bid.booking.id.clone(),
                provider_customer: None,
                description,
                metadata,
            };
            match patiently(|| gateway.save_card_for_later(request.clone()))
                .await
                .map_err(unavailable)?
            {
                SetupOutcome::Saved(card) => Ok(Security::SavedCard(card)),
                SetupOutcome::Declined(d) => Err(declined(d)),
                SetupOutcome::RequiresAction(_) => Err(needs_action()),
            }
        }
    }
}

/// Calls the provider again while it says that another request with the same key is in
/// progress: a double tap's two copies ask for the same hold at once, and Stripe answers the
/// second "in progress" until the first is done, then replays the first's answer. About two
/// seconds in all, then the copy is told the provider is not answering.
async fn patiently<T, F: Future<Output = Result<T, PaymentError>>>(
    mut call: impl FnMut() -> F,
) -> Result<T, PaymentError> {
    let mut wait = std::time::Duration::from_millis(25);
    for _ in 0..IN_PROGRESS_TRIES {
        match call().await {
            Err(PaymentError::InProgress(_)) => tokio::time::sleep(wait).await,
            answer => return answer,
        }
        wait = (wait * 2).min(std::time::Duration::from_millis(400));
    }
    call().await
}

/// How often a call is tried again while its key is in use by another copy.
const IN_PROGRESS_TRIES: u32 = 8;

/// The key of securing one card for one attempt: a retry of the same request sends the
/// same key (one effect), while another card after a decline is a new try, not a replay of
/// the decline.
fn card_key(
    bid_id: &str,
    step: PaymentStep,
    attempt: u32,
    card: &CardSource,
) -> Result<IdempotencyKey, BidError> {
    let card_digest = hex::encode(sha2::Sha256::digest(card.redacted().as_bytes()));
    let base = IdempotencyKey::derive(bid_id, step, attempt);
    // The provider compares a key's parameters, metadata included: a step retried across
    // the release that added the lot, booking and units to it gets a key of its own (and its
    // first hold, if any, is found by reconcile) instead of a refusal.
    let part = format!("{}.m2", &card_digest[..16]);
    IdempotencyKey::parse(&base.part(&part)).map_err(unavailable)
}

/// Undoes a hold whose bid could not be written (the lot closed meanwhile, say). Never the
/// hold the bid holds now: a double-submitted request gets the same hold back from the
/// provider (same key), and releasing it would strip the live bid of its hold. The attempt
/// is recorded, so the next try asks for a new hold rather than a replay of this one.
async fn unwind(
    db: &Db,
    gateway: &dyn PaymentGateway,
    bid_id: &str,
    attempt: u32,
    security: &Security,
) {
    let Security::Hold {
        reference,
        amount_minor,
    } = security
    else {
        return;
    };
    let live = bid::Entity::find_by_id(bid_id.to_owned())
        .one(db)
        .await
        .ok()
        .flatten();
    if live.as_ref().is_some_and(|b| secures(b, security)) {
        return;
    }
    let released = match IdempotencyKey::release_of(reference) {
        Ok(key) => match gateway
            .release(&PaymentRef::new(reference.clone()), &key)
            .await
        {
            Ok(()) => true,
            Err(e) => {
                tracing::error!(hold = %reference, error = %e, "hold of an unwritten bid not released; reconcile will");
                false
            }
        },
        Err(_) => false,
    };
    if let Some(b) = live {
        let _ = store_payments::insert(
            db,
            NewPayment {
                bid_id: &b.id,
                kind: "hold",
                amount_minor: *amount_minor,
                currency: &b.currency,
                // "succeeded" means still held: reconcile finds it and releases it.
                status: if released { "released" } else { "succeeded" },
                provider: gateway.provider(),
                provider_ref: Some(reference.clone()),
                // The reference is part of the key: changes of one bid sent at once can
                // each unwind a hold of the same attempt, and each must be recorded.
                idempotency_key: format!(
                    "{}/{reference}/unwound",
                    IdempotencyKey::derive(&b.id, PaymentStep::Hold, attempt)
                ),
                attempt,
            },
        )
        .await;
    }
}

/// The payment rows [`count_attempts`] reads.
const ATTEMPT_KINDS: [&str; 3] = ["hold", "save_card", "release"];

/// How many card steps (holds, card savings) a bid has taken, from its payment rows as
/// `(kind, provider_ref)`: each step's key names its attempt, the next one this plus one.
/// A hold that reconcile released though no `hold` row recorded it (its write was lost)
/// counts too: its attempt's key is spent, and the provider would hand the released hold
/// back to a retry under it. Other releases do not count: jobs write them at their own
/// time, and two copies of one request must read the same number.
fn count_attempts<'a>(rows: impl IntoIterator<Item = (&'a str, Option<&'a str>)>) -> u32 {
    let rows: Vec<_> = rows.into_iter().collect();
    let held: HashSet<&str> = rows
        .iter()
        .filter(|(kind, _)| *kind == "hold")
        .filter_map(|(_, reference)| *reference)
        .collect();
    rows.iter()
        .filter(|(kind, reference)| match *kind {
            "hold" | "save_card" => true,
            "release" => reference.is_some_and(|r| !held.contains(r)),
            _ => false,
        })
        .count() as u32
}

async fn attempts(db: &impl ConnectionTrait, bid_id: &str) -> Result<u32, DbErr> {
    let rows = payment::Entity::find()
        .filter(payment::Column::BidId.eq(bid_id))
        .filter(payment::Column::Kind.is_in(ATTEMPT_KINDS))
        .all(db)
        .await?;
    Ok(count_attempts(
        rows.iter()
            .map(|p| (p.kind.as_str(), p.provider_ref.as_deref())),
    ))
}

async fn record_security(
    db: &impl ConnectionTrait,
    bid_id: &str,
    currency: &str,
    provider: &str,
    attempt: u32,
    security: &Security,
) -> Result<(), DbErr> {
    store_payments::insert(
        db,
        security_payment(bid_id, currency, provider, attempt, security),
    )
    .await?;
    Ok(())
}

/// The payment record of what secures a bid: its hold, or the card saved for a later charge.
fn security_payment<'a>(
    bid_id: &'a str,
    currency: &'a str,
    provider: &'a str,
    attempt: u32,
    security: &Security,
) -> NewPayment<'a> {
    let (kind, amount, reference, step) = match security {
        Security::Hold {
            reference,
            amount_minor,
        } => ("hold", *amount_minor, reference.clone(), PaymentStep::Hold),
        Security::SavedCard(card) => (
            "save_card",
            0,
            card.setup.to_string(),
            PaymentStep::SaveCard,
        ),
    };
    NewPayment {
        bid_id,
        kind,
        amount_minor: amount,
        currency,
        status: "succeeded",
        provider,
        provider_ref: Some(reference),
        idempotency_key: IdempotencyKey::derive(bid_id, step, attempt).to_string(),
        attempt,
    }
}

/// Places the booking's bid on a lot (or bids again after withdrawing), on its own: the
/// card is authorised for the party's total first; the bid is written only if that
/// succeeds, and the deadline is checked again inside the write transaction. The server
/// places bids through [`Intake`], which does the same for many bids at once.
pub async fn place(
    db: &Db,
    gateway: &dyn PaymentGateway,
    booking: &booking::Model,
    new: NewBid<'_>,
) -> Result<bid::Model, BidError> {
    Ok(intake::place_one(db, gateway, Ask::new(&booking.id, new))
        .await?
        .bid)
}

/// A bid whose card is secured, with everything its write needs, owned so that the write
/// can run in a batch on the intake's writer.
struct PendingBid {
    booking: booking::Model,
    lot_id: String,
    partial_ok: bool,
    preference: Option<u32>,
    bid_id: String,
    attempt: u32,
    amount: Money,
    units: u32,
    security: Security,
    method: Option<String>,
    provider: &'static str,
}

fn check_fits(
    lot: &lot::Model,
    spec: &LotSpec,
    units: u32,
    partial_ok: bool,
) -> Result<(), BidError> {
    let free = store_lots::free_units(lot, spec);
    if free == 0 {
        return Err(BidError::Unavailable(
            "No upgrade is available on this lot any more.".into(),
        ));
    }
    if units > free && !partial_ok {
        return Err(BidError::Unavailable(format!(
            "Your party of {units} is larger than the {free} upgrades on offer; tick \"a partial upgrade is fine\" to bid anyway."
        )));
    }
    Ok(())
}

/// Runs a traveller's step that moves money as a task of its own, to the end: the caller
/// that stops waiting (the HTTP server drops the request of a connection reset by the client)
/// cannot stop it between the card call and the write that records it, which would leave a
/// hold or a charge with no bid to show for it.
async fn whole<T: Send + 'static>(
    step: impl Future<Output = Result<T, BidError>> + Send + 'static,
) -> Result<T, BidError> {
    tokio::spawn(step).await.unwrap_or_else(|e| {
        Err(BidError::Db(DbErr::Custom(format!(
            "the step stopped before its end: {e}"
        ))))
    })
}

/// Changes the amount per person of an active bid. The ranking time becomes now: a changed
/// offer queues behind equal offers made earlier. A raise above what the card holds takes a
/// new hold first, and the old one is released once the change is written.
pub async fn change(
    db: &Db,
    gateway: &Arc<dyn PaymentGateway>,
    booking: &booking::Model,
    bid_id: &str,
    amount: &str,
    card: Option<CardSource>,
) -> Result<bid::Model, BidError> {
    let (db, gateway, booking) = (db.clone(), gateway.clone(), booking.clone());
    let (bid_id, amount) = (bid_id.to_owned(), amount.to_owned());
    whole(async move { change_here(&db, gateway.as_ref(), &booking, &bid_id, &amount, card).await })
        .await
}

/// How often a change starts over because another change of the same bid landed first: with
/// n changes of one bid at once, each lands within n tries.
const CHANGE_TRIES: usize = 5;

/// When the capture job queued with an "upgrade now" purchase runs if its request never
/// finished it (the process stopped while the bank was asked): well after the request
/// would have had its answer (a call to Stripe times out after 30 s).
pub const UNFINISHED_PURCHASE_AFTER: chrono::Duration = chrono::Duration::minutes(2);

/// A change is worked out (and its hold taken) against the bid as read, and written only onto
/// that same version of the bid; if another change landed in between (a double tap, two
/// devices), it starts over from the bid as it is now. Mixing the two could leave the bid's
/// amount above what its card holds, or two holds recorded under one attempt.
async fn change_here(
    db: &Db,
    gateway: &dyn PaymentGateway,
    booking: &booking::Model,
    bid_id: &str,
    amount: &str,
    card: Option<CardSource>,
) -> Result<bid::Model, BidError> {
    for _ in 0..CHANGE_TRIES {
        match change_once(db, gateway, booking, bid_id, amount, card.clone()).await {
            Err(BidError::ChangedMeanwhile) => continue,
            done => return done,
        }
    }
    Err(BidError::ChangedMeanwhile)
}

async fn change_once(
    db: &Db,
    gateway: &dyn PaymentGateway,
    booking: &booking::Model,
    bid_id: &str,
    amount: &str,
    card: Option<CardSource>,
) -> Result<bid::Model, BidError> {
    let current = own_bid(db, booking, bid_id).await?;
    let (_, spec) = lock_open_lot(db, booking, &current.lot_id).await?;
    check_window(&spec, Utc::now())?;
    ensure_active(&current)?;
    let amount = parse_amount(&spec, amount)?;
    let total = amount.minor() * i64::from(current.units.max(1));
    let new_hold = match card_holds(db, &spec, &current).await? {
        Some(held) if total > held => {
            let attempt = attempts(db, &current.id).await? + 1;
            // Card details are never kept: a raise uses the card sent with the change, else the
            // payment method id given at bid time where the gateway could use it again.
            let card = card
                .or_else(|| {
                    current
                        .payment_method_ref
                        .as_deref()
                        .filter(|_| gateway.reuses_payment_methods())
                        .map(CardSource::payment_method)
                })
                .ok_or_else(|| {
                    BidError::Invalid(FieldErrors::single(
                        "payment_method",
                        "a higher offer needs your card again, to authorise the new total",
                    ))
                })?;
            Some((
                attempt,
                secure(
                    gateway,
                    &spec,
                    CardFor {
                        bid_id: &current.id,
                        lot_id: &current.lot_id,
                        booking,
                        units: current.units.max(1) as u32,
                    },
                    attempt,
                    total,
                    card,
                )
                .await?,
            ))
        }
        _ => None,
    };
    let seen = current.version;
    let written = write_change(
        db,
        gateway,
        booking,
        bid_id,
        seen,
        amount,
        new_hold.as_ref(),
    )
    .await;
    match (written, new_hold) {
        (Ok(updated), _) => Ok(updated),
        (Err(e), Some((attempt, security))) => {
            unwind(db, gateway, bid_id, attempt, &security).await;
            Err(e)
        }
        (Err(e), None) => Err(e),
    }
}

async fn write_change(
    db: &Db,
    gateway: &dyn PaymentGateway,
    booking: &booking::Model,
    bid_id: &str,
    seen: i32,
    amount: Money,
    new_hold: Option<&(u32, Security)>,
) -> Result<bid::Model, BidError> {
    let txn = write_txn(db).await?;
    let (current, spec) = lock_lot_then_bid(&txn, booking, bid_id).await?;
    let now = Utc::now();
    check_window(&spec, now)?;
    ensure_active(&current)?;
    if let Some((_, security)) = new_hold
        && secures(&current, security)
    {
        // The same raise, sent twice at once, was written by the other copy (the provider
        // gave both the one hold).
        return Ok(current);
    }
    if current.version != seen {
        return Err(BidError::ChangedMeanwhile);
    }
    let kind = if amount.minor() >= current.amount_minor {
        BidEventKind::Raised
    } else {
        BidEventKind::Lowered
    };
    let previous_hold = current.payment_ref.clone();
    let mut am = current.into_active_model();
    am.amount_minor = Set(amount.minor());
    am.submitted_at = Set(now);
    am.updated_at = Set(now);
    am.version = Set(am.version.as_ref() + 1);
    let mut released = None;
    if let Some((attempt, security @ Security::Hold { reference, .. })) = new_hold {
        am.payment_ref = Set(Some(reference.clone()));
        record_security(
            &txn,
            bid_id,
            spec.currency.code(),
            gateway.provider(),
            *attempt,
            security,
        )
        .await?;
        released = previous_hold;
    }
    let updated = am.update(&txn).await?;
    events::record(&txn, &updated.id, kind, Some(amount.minor()), None, now).await?;
    outbox::enqueue(&txn, &updated.id, Topic::BidChanged, None, now).await?;
    if let Some(previous) = released {
        events::record(
            &txn,
            &updated.id,
            BidEventKind::HoldPlaced,
            Some(amount.minor()),
            None,
            now,
        )
        .await?;
        // The replaced hold is released by a job that starts at once and is recorded.
        jobs::enqueue(
            &txn,
            Job::Release {
                bid_id: updated.id.clone(),
                hold: previous,
            },
            now,
        )
        .await?;
    }
    txn.commit().await?;
    Ok(updated)
}

/// What the bid's hold covers, where raising the bid above it takes a new hold (with the card
/// sent, else the payment method id given at bid time where the gateway can use it again:
/// card details are never kept, and Stripe takes a payment method not attached to a customer
/// once). `None` where no change takes a hold: a saved card is charged on award whatever the
/// offer, and a bid with no hold has none to grow. A change up to it goes without a card.
pub async fn card_holds(
    db: &impl ConnectionTrait,
    spec: &LotSpec,
    b: &bid::Model,
) -> Result<Option<i64>, DbErr> {
    let Some(reference) = b
        .payment_ref
        .as_deref()
        .filter(|_| spec.payment_mode == PaymentMode::Hold)
    else {
        return Ok(None);
    };
    Ok(Some(
        payment::Entity::find()
            .filter(payment::Column::BidId.eq(&b.id))
            .filter(payment::Column::Kind.eq("hold"))
            .filter(payment::Column::ProviderRef.eq(reference))
            .one(db)
            .await?
            .map_or(0, |p| p.amount_minor),
    ))
}

pub async fn withdraw(
    db: &Db,
    booking: &booking::Model,
    bid_id: &str,
) -> Result<bid::Model, BidError> {
    let txn = write_txn(db).await?;
    let (current, spec) = lock_lot_then_bid(&txn, booking, bid_id).await?;
    let now = Utc::now();
    check_window(&spec, now)?;
    if current.status == BidStatus::Withdrawn.as_str() {
        // Sent twice (a double tap, a retry after a lost answer): already done, said once.
        return Ok(current);
    }
    ensure_active(&current)?;
    let mut am = current.into_active_model();
    am.status = Set(BidStatus::Withdrawn.as_str().to_owned());
    am.updated_at = Set(now);
    am.version = Set(am.version.as_ref() + 1);
    let updated = am.update(&txn).await?;
    events::record(&txn, &updated.id, BidEventKind::Withdrawn, None, None, now).await?;
    outbox::enqueue(&txn, &updated.id, Topic::BidWithdrawn, None, now).await?;
    if updated.payment_ref.is_some() {
        jobs::enqueue(
            &txn,
            Job::Release {
                bid_id: updated.id.clone(),
                hold: updated.payment_ref.clone().unwrap_or_default(),
            },
            now,
        )
        .await?;
    }
    txn.commit().await?;
    Ok(updated)
}

/// The bid, its lot and every event on its timeline, oldest first.
pub async fn timeline(
    db: &Db,
    booking: &booking::Model,
    bid_id: &str,
) -> Result<(bid::Model, lot::Model, Vec<bid_event::Model>), BidError> {
    let b = bid::Entity::find_by_id(bid_id.to_owned())
        .filter(bid::Column::BookingId.eq(&booking.id))
        .one(db)
        .await?
        .ok_or(BidError::NotFound)?;
    let l = lot::Entity::find_by_id(b.lot_id.clone())
        .one(db)
        .await?
        .ok_or(BidError::NotFound)?;
    let events = bid_event::Entity::find()
        .filter(bid_event::Column::BidId.eq(&b.id))
        .order_by_asc(bid_event::Column::Id)
        .all(db)
        .await?;
    Ok((b, l, events))
}

fn check_window(spec: &LotSpec, now: DateTime<Utc>) -> Result<(), BidError> {
    if now >= spec.closes_at {
        return Err(BidError::Closed {
            closes_at: spec.closes_at,
        });
    }
    if now < spec.opens_at {
        return Err(BidError::NotOpenYet {
            opens_at: spec.opens_at,
        });
    }
    Ok(())
}

fn ensure_active(b: &bid::Model) -> Result<(), BidError> {
    match BidStatus::parse(&b.status) {
        Ok(BidStatus::Active) => Ok(()),
        Ok(status) => Err(BidError::NotActive { status }),
        Err(e) => Err(BidError::Db(DbErr::Custom(e))),
    }
}

fn parse_amount(spec: &LotSpec, amount: &str) -> Result<Money, BidError> {
    let money = Money::parse(amount, spec.currency)
        .map_err(|e| BidError::Invalid(FieldErrors::single("amount", e.to_string())))?;
    if money.minor() < spec.reserve.minor() || money.minor() > spec.maximum.minor() {
        return Err(BidError::OutOfRange {
            min: spec.reserve.to_string(),
            max: spec.maximum.to_string(),
            currency: spec.currency.code().to_owned(),
        });
    }
    Ok(money)
}

/// The lot, if this booking may bid on it and it is open; row-locked for the transaction.
async fn lock_open_lot(
    txn: &impl ConnectionTrait,
    booking: &booking::Model,
    lot_id: &str,
) -> Result<(lot::Model, LotSpec), BidError> {
    lock_open_lot_as(txn, booking, lot_id, LockType::Share).await
}

/// As [`lock_open_lot`], with the lock given: a sale that counts the lot's units in the same
/// transaction takes it for update, since two such sales holding it shared would each wait
/// for the other to let go before writing (PostgreSQL then aborts one as a deadlock).
async fn lock_open_lot_as(
    txn: &impl ConnectionTrait,
    booking: &booking::Model,
    lot_id: &str,
    lock: LockType,
) -> Result<(lot::Model, LotSpec), BidError> {
    let eligible = booking_lot::Entity::find_by_id((booking.id.clone(), lot_id.to_owned()))
        .one(txn)
        .await?
        .is_some();
    if !eligible {
        return Err(BidError::NotFound);
    }
    let lot = lot::Entity::find_by_id(lot_id.to_owned())
        .lock(lock)
        .one(txn)
        .await?
        .ok_or(BidError::NotFound)?;
    let spec = store_lots::spec(&lot).map_err(corrupt)?;
    open_lot(&lot, &spec, booking)?;
    Ok((lot, spec))
}

/// Whether this booking may bid on the lot now: the operator's, published and open.
fn open_lot(lot: &lot::Model, spec: &LotSpec, booking: &booking::Model) -> Result<(), BidError> {
    if lot.operator_id != booking.operator_id {
        return Err(BidError::NotFound);
    }
    match store_lots::status(lot) {
        LotStatus::Open => Ok(()),
        LotStatus::Draft => Err(BidError::NotFound),
        LotStatus::Cancelled => Err(BidError::Unavailable(
            "The operator cancelled this upgrade.".into(),
        )),
        _ => Err(BidError::Closed {
            closes_at: spec.closes_at,
        }),
    }
}

async fn own_bid(
    db: &impl ConnectionTrait,
    booking: &booking::Model,
    bid_id: &str,
) -> Result<bid::Model, BidError> {
    bid::Entity::find_by_id(bid_id.to_owned())
        .filter(bid::Column::BookingId.eq(&booking.id))
        .one(db)
        .await?
        .ok_or(BidError::NotFound)
}

/// The bid's open lot locked for share, then the bid for update: the order in which the
/// close, the award, a cancel and a sale take them (lot, then bid), so that a change meeting
/// one of them waits for it instead of deadlocking with it (PostgreSQL; SQLite's write
/// transactions run one at a time).
async fn lock_lot_then_bid(
    txn: &impl ConnectionTrait,
    booking: &booking::Model,
    bid_id: &str,
) -> Result<(bid::Model, LotSpec), BidError> {
    // A bid never moves to another lot, so its lot read unlocked is the one to lock.
    let lot_id = own_bid(txn, booking, bid_id).await?.lot_id;
    let (_, spec) = lock_open_lot(txn, booking, &lot_id).await?;
    let current = lock_own_bid(txn, booking, bid_id).await?;
    Ok((current, spec))
}

async fn lock_own_bid(
    txn: &impl ConnectionTrait,
    booking: &booking::Model,
    bid_id: &str,
) -> Result<bid::Model, BidError> {
    bid::Entity::find_by_id(bid_id.to_owned())
        .filter(bid::Column::BookingId.eq(&booking.id))
        .lock_exclusive()
        .one(txn)
        .await?
        .ok_or(BidError::NotFound)
}

/// "Upgrade now": the operator's fixed price, taken at once while units are free. The card
/// is authorised, the units are reserved under the lot's lock, then the money is captured;
/// a failure at any step undoes the earlier ones, so nobody pays for a unit they do not get.
pub async fn upgrade_now(
    db: &Db,
    gateway: &Arc<dyn PaymentGateway>,
    booking: &booking::Model,
    lot_id: &str,
    card: Option<CardSource>,
) -> Result<bid::Model, BidError> {
    let (db, gateway, booking, lot_id) = (
        db.clone(),
        gateway.clone(),
        booking.clone(),
        lot_id.to_owned(),
    );
    whole(async move { upgrade_now_here(&db, gateway.as_ref(), &booking, &lot_id, card).await })
        .await
}

async fn upgrade_now_here(
    db: &Db,
    gateway: &dyn PaymentGateway,
    booking: &booking::Model,
    lot_id: &str,
    card: Option<CardSource>,
) -> Result<bid::Model, BidError> {
    let card = card.ok_or_else(|| {
        BidError::Invalid(FieldErrors::single(
            "payment_method",
            "is required: the card to charge",
        ))
    })?;
    let (lot, spec) = lock_open_lot(db, booking, lot_id).await?;
    check_window(&spec, Utc::now())?;
    let price = spec.upgrade_now.ok_or_else(|| {
        BidError::Unavailable(
            "This upgrade has no \"upgrade now\" price; place a bid instead.".into(),
        )
    })?;
    let units = booking.party_size.max(1) as u32;
    let existing = bid::Entity::find()
        .filter(bid::Column::LotId.eq(&lot.id))
        .filter(bid::Column::BookingId.eq(&booking.id))
        .one(db)
        .await?;
    // Tapped again: the traveller sees the upgrade they bought, not "sold out" (they took
    // the units themselves), and nothing more is held or charged.
    if let Some(b) = existing.as_ref().filter(|b| bought_now(b, price, units)) {
        return Ok(b.clone());
    }
    if store_lots::free_units(&lot, &spec) < units {
        return Err(BidError::Unavailable(
            "Not enough upgrades are left to take one now; you can still bid.".into(),
        ));
    }
    if let Some(b) = &existing
        && b.status != BidStatus::Active.as_str()
        && !b.placeable_again()
    {
        let status = BidStatus::parse(&b.status).unwrap_or(BidStatus::Lost);
        return Err(BidError::NotActive { status });
    }
    let bid_id = existing
        .as_ref()
        .map_or_else(|| ids::new_id("bid"), |b| b.id.clone());
    let attempt = attempts(db, &bid_id).await? + 1;
    let total = price.minor() * i64::from(units);
    // Held, not yet taken: nothing is charged unless the units are really ours.
    let hold_spec = LotSpec {
        payment_mode: PaymentMode::Hold,
        ..spec.clone()
    };
    let bid_for = CardFor {
        bid_id: &bid_id,
        lot_id: &lot.id,
        booking,
        units,
    };
    let security = secure(gateway, &hold_spec, bid_for, attempt, total, card).await?;
    let Security::Hold { reference, .. } = &security else {
        unreachable!("a hold was asked for")
    };

    let reserved = reserve_now(
        db, gateway, booking, lot_id, &bid_id, attempt, price, units, &security,
    )
    .await;
    let (purchase, key) = match reserved {
        Ok(Reserved::Now(purchase, key)) => (purchase, key),
        Ok(Reserved::Already(bought)) => {
            // Another copy of this request bought it first. With the same hold (one bid,
            // same key) `unwind` leaves it to that copy's capture; a copy that began
            // without a bid made a hold of its own, released here.
            unwind(db, gateway, &bought.id, attempt, &security).await;
            return Ok(*bought);
        }
        Err(e) => {
            unwind(db, gateway, &bid_id, attempt, &security).await;
            return Err(e);
        }
    };
    // Queued with the purchase: set aside once the bank has answered, brought forward if not.
    let capture_job = Job::CaptureBoughtNow {
        bid_id: bid_id.clone(),
        purchase: purchase.clone(),
    };
    let now = Utc::now();
    match gateway
        .capture(&PaymentRef::new(reference.clone()), total, &key)
        .await
    {
        Ok(capture) => {
            let txn = write_txn(db).await?;
            let current = lock_own_bid(&txn, booking, &bid_id).await?;
            settle_payment_row(
                &txn,
                key.as_str(),
                "succeeded",
                Some(capture.reference.to_string()),
                None,
            )
            .await?;
            jobs::set_aside(&txn, &capture_job).await?;
            if current.status == BidStatus::Charged.as_str() {
                // A job finished this purchase first (same key, same capture).
            } else if current.status == BidStatus::Won.as_str() {
                let mut am = current.into_active_model();
                am.status = Set(BidStatus::Charged.as_str().to_owned());
                am.update(&txn).await?;
                let detail = format!(
                    "Upgrade confirmed at once for your party of {units}: your card was charged {} {}.",
                    Money::from_minor(total, spec.currency)
                        .map(|m| m.to_string())
                        .unwrap_or_default(),
                    spec.currency
                );
                events::record(
                    &txn,
                    &bid_id,
                    BidEventKind::Charged,
                    Some(price.minor()),
                    Some(detail),
                    now,
                )
                .await?;
                outbox::enqueue(&txn, &bid_id, Topic::UpgradeConfirmed, None, now).await?;
                // Paid: bids whose party the units left cannot take are let go.
                let room = Job::ReleaseWithoutRoom {
                    lot_id: lot_id.to_owned(),
                };
                jobs::enqueue(&txn, room, now).await?;
            } else {
                // Cancelled while the bank answered: the money goes straight back.
                let why = Why::outcome(OutcomeReason::LotCancelled, units as i32);
                jobs::enqueue(&txn, Job::refund(&bid_id, why), now).await?;
            }
            if let Some(hold) = purchase.before.as_ref().and_then(|p| p.payment_ref.clone()) {
                jobs::enqueue(
                    &txn,
                    Job::Release {
                        bid_id: bid_id.clone(),
                        hold,
                    },
                    now,
                )
                .await?;
            }
            jobs::enqueue(
                &txn,
                Job::Settle {
                    lot_id: lot_id.to_owned(),
                },
                now,
            )
            .await?;
            txn.commit().await?;
        }
        Err(PaymentError::Declined(d)) => {
            // Lot, bid, then the payment row: the order every undo takes them in.
            let txn = write_txn(db).await?;
            let refusal = Refusal::Declined { reason: d.reason };
            let undone = bought_now::undo(&txn, &bid_id, Some(&purchase), refusal, now).await?;
            if undone.is_none() {
                // Cancelled meanwhile: the cancel released the purchase's hold, not the
                // earlier bid's.
                let current = own_bid(&txn, booking, &bid_id).await?;
                bought_now::release_earlier(&txn, &current, Some(&purchase), now).await?;
            }
            settle_payment_row(&txn, key.as_str(), "failed", None, Some(d.message.clone())).await?;
            jobs::set_aside(&txn, &capture_job).await?;
            txn.commit().await?;
            return Err(declined(d));
        }
        Err(e) => {
            // Unknown whether the bank took the money: the charge is retried under the same
            // key by a job, which finds out, and the traveller sees the result on the timeline.
            tracing::warn!(bid = %bid_id, error = %e, "upgrade-now capture unconfirmed; a job retries it");
            let txn = write_txn(db).await?;
            let detail = "Your upgrade is reserved; we are confirming the payment with your bank and will show the result here.".to_owned();
            events::record(
                &txn,
                &bid_id,
                BidEventKind::UpgradeNow,
                Some(price.minor()),
                Some(detail),
                now,
            )
            .await?;
            // Its job, queued with the purchase, runs now. It carries what the bid was, to
            // put back if the bank declines after all.
            jobs::bring_forward(&txn, &capture_job, now).await?;
            txn.commit().await?;
        }
    }
    let b = bid::Entity::find_by_id(bid_id.clone())
        .one(db)
        .await?
        .ok_or(BidError::NotFound)?;
    Ok(b)
}

async fn settle_payment_row(
    txn: &impl ConnectionTrait,
    key: &str,
    status: &str,
    provider_ref: Option<String>,
    error: Option<String>,
) -> Result<(), DbErr> {
    if let Some(row) = payment::Entity::find()
        .filter(payment::Column::IdempotencyKey.eq(key))
        .one(txn)
        .await?
    {
        store_payments::finish(txn, row, status, provider_ref, error).await?;
    }
    Ok(())
}

/// Whether the bid is the upgrade bought now: won or charged, for these units at this price.
fn bought_now(b: &bid::Model, price: Money, units: u32) -> bool {
    [BidStatus::Won.as_str(), BidStatus::Charged.as_str()].contains(&b.status.as_str())
        && b.award_price_minor == Some(price.minor())
        && b.award_units == Some(units as i32)
}

/// What reserving an "upgrade now" came to.
enum Reserved {
    /// The purchase is written (a bid at the fixed price, its capture's job queued for
    /// later): the purchase, with what the bid was before, and the capture's key.
    Now(Purchase, IdempotencyKey),
    /// Another copy of the same request (a double tap) bought it first: its purchase.
    Already(Box<bid::Model>),
}

/// Reserves the units for an "upgrade now" purchase; returns the purchase (a bid at the
/// fixed price) and any earlier hold of the booking's bid on the lot, to release.
#[allow(clippy::too_many_arguments)]
async fn reserve_now(
    db: &Db,
    gateway: &dyn PaymentGateway,
    booking: &booking::Model,
    lot_id: &str,
    bid_id: &str,
    attempt: u32,
    price: Money,
    units: u32,
    security: &Security,
) -> Result<Reserved, BidError> {
    let txn = write_txn(db).await?;
    let (lot, spec) = lock_open_lot_as(&txn, booking, lot_id, LockType::Update).await?;
    // Erased or resized while the card was held (see `intake::bookings_now`): no purchase
    // is written for it.
    let now_stands = intake::bookings_now(&txn, std::slice::from_ref(&booking.id)).await?;
    if let Some(refusal) = intake::BookingNow::refusal(now_stands.get(&booking.id), booking) {
        return Err(refusal);
    }
    let now = Utc::now();
    check_window(&spec, now)?;
    let Security::Hold { reference, .. } = security else {
        unreachable!("a hold was asked for")
    };
    // Found by booking, not by id: copies of a request that began without a bid each
    // picked an id of their own, and only the first may write one.
    let existing = bid::Entity::find()
        .filter(bid::Column::LotId.eq(lot_id))
        .filter(bid::Column::BookingId.eq(&booking.id))
        .lock_exclusive()
        .one(&txn)
        .await?;
    // Checked again under the lock: a double-tap must not sell the units twice.
    if let Some(b) = existing.as_ref().filter(|b| bought_now(b, price, units)) {
        return Ok(Reserved::Already(Box::new(b.clone())));
    }
    if existing.as_ref().is_some_and(|b| b.id != bid_id) {
        // Another request placed a bid for this booking meanwhile; this one changed nothing.
        return Err(BidError::ChangedMeanwhile);
    }
    if store_lots::free_units(&lot, &spec) < units {
        return Err(BidError::Unavailable(
            "The last upgrades were just taken; you can still bid.".into(),
        ));
    }
    if let Some(b) = &existing
        && b.status != BidStatus::Active.as_str()
        && !b.placeable_again()
    {
        let status = BidStatus::parse(&b.status).unwrap_or(BidStatus::Lost);
        return Err(BidError::NotActive { status });
    }
    // The capture's key and record exist before the bank is asked: a crash or an unclear
    // answer is finished later under the same key, never charged twice.
    let key = IdempotencyKey::parse(&store_payments::upgrade_now_key(bid_id, attempt))
        .map_err(unavailable)?;
    let previous = existing.as_ref().map(|b| BidBefore {
        status: b.status.clone(),
        amount_minor: b.amount_minor,
        units: b.units,
        payment_ref: b.payment_ref.clone(),
        submitted_at: b.submitted_at,
    });
    match existing {
        Some(b) => {
            let mut am = b.into_active_model();
            am.amount_minor = Set(price.minor());
            am.units = Set(units as i32);
            am.status = Set(BidStatus::Won.as_str().to_owned());
            am.payment_ref = Set(Some(reference.clone()));
            am.award_units = Set(Some(units as i32));
            am.award_price_minor = Set(Some(price.minor()));
            // A bid released for want of units had an outcome: bought now, it has none.
            am.outcome_reason = Set(None);
            am.standby_rank = Set(None);
            am.submitted_at = Set(now);
            am.updated_at = Set(now);
            am.version = Set(am.version.as_ref() + 1);
            am.update(&txn).await?;
        }
        None => {
            bid::ActiveModel {
                id: Set(bid_id.to_owned()),
                lot_id: Set(lot.id.clone()),
                booking_id: Set(booking.id.clone()),
                amount_minor: Set(price.minor()),
                currency: Set(spec.currency.code().to_owned()),
                units: Set(units as i32),
                partial_ok: Set(false),
                tier: Set(booking.loyalty_tier),
                preference: Set(None),
                status: Set(BidStatus::Won.as_str().to_owned()),
                payment_method_ref: Set(None),
                payment_ref: Set(Some(reference.clone())),
                saved_card: Set(None),
                award_units: Set(Some(units as i32)),
                award_price_minor: Set(Some(price.minor())),
                outcome_reason: Set(None),
                standby_rank: Set(None),
                submitted_at: Set(now),
                created_at: Set(now),
                updated_at: Set(now),
                version: Set(0),
            }
            .insert(&txn)
            .await?;
        }
    }
    let sold = lot.units_sold_now;
    let mut am = lot.into_active_model();
    am.units_sold_now = Set(sold + units as i32);
    am.updated_at = Set(now);
    am.update(&txn).await?;
    record_security(
        &txn,
        bid_id,
        spec.currency.code(),
        gateway.provider(),
        attempt,
        security,
    )
    .await?;
    events::record(
        &txn,
        bid_id,
        BidEventKind::UpgradeNow,
        Some(price.minor()),
        None,
        now,
    )
    .await?;
    store_payments::insert(
        &txn,
        NewPayment {
            bid_id,
            kind: "charge",
            amount_minor: price.minor() * i64::from(units),
            currency: spec.currency.code(),
            status: "pending",
            provider: gateway.provider(),
            provider_ref: Some(reference.clone()),
            idempotency_key: key.to_string(),
            attempt,
        },
    )
    .await?;
    // If the process stops while the bank is asked, this job finishes the purchase under the
    // same key once its request would long have had the answer.
    let purchase = Purchase {
        key: key.to_string(),
        before: previous,
    };
    let capture = Job::CaptureBoughtNow {
        bid_id: bid_id.to_owned(),
        purchase: purchase.clone(),
    };
    jobs::enqueue(&txn, capture, now + UNFINISHED_PURCHASE_AFTER).await?;
    txn.commit().await?;
    Ok(Reserved::Now(purchase, key))
}

/// Whether the bid is already secured by this hold or saved card.
fn secures(b: &bid::Model, security: &Security) -> bool {
    match security {
        Security::Hold { reference, .. } => b.payment_ref.as_deref() == Some(reference.as_str()),
        Security::SavedCard(card) => {
            b.saved_card.as_deref() == serde_json::to_string(card).ok().as_deref()
        }
    }
}

/// A winner whose payment failed gives another card during the grace period: it is
/// secured for the award's total and the charge runs again at once.
pub async fn replace_card(
    db: &Db,
    gateway: &Arc<dyn PaymentGateway>,
    booking: &booking::Model,
    bid_id: &str,
    card: Option<CardSource>,
) -> Result<bid::Model, BidError> {
    let (db, gateway, booking, bid_id) = (
        db.clone(),
        gateway.clone(),
        booking.clone(),
        bid_id.to_owned(),
    );
    whole(async move { replace_card_here(&db, gateway.as_ref(), &booking, &bid_id, card).await })
        .await
}

/// Until when a winner whose payment failed (last at `failed_at`) may give another card: the
/// lot's grace period from the failure. `None` when the lot gives none, or it has passed.
pub fn card_replaceable_until(
    spec: &LotSpec,
    failed_at: Option<DateTime<Utc>>,
    now: DateTime<Utc>,
) -> Option<DateTime<Utc>> {
    if spec.payment_grace_seconds == 0 {
        return None;
    }
    let until = failed_at? + chrono::Duration::seconds(i64::from(spec.payment_grace_seconds));
    (until > now).then_some(until)
}

/// [`card_replaceable_until`] for bid `b` with its `events` in hand: `None` unless its payment
/// failed and the grace period from the last failure is still running.
pub fn card_replaceable(
    b: &bid::Model,
    spec: &LotSpec,
    events: &[bid_event::Model],
    now: DateTime<Utc>,
) -> Option<DateTime<Utc>> {
    if b.status != BidStatus::PaymentFailed.as_str() {
        return None;
    }
    let failed_at = events
        .iter()
        .filter(|e| e.kind == BidEventKind::PaymentFailed.as_str())
        .map(|e| e.at)
        .max();
    card_replaceable_until(spec, failed_at, now)
}

/// When the bid's payment last failed, if it did.
async fn last_payment_failure(
    db: &impl ConnectionTrait,
    bid_id: &str,
) -> Result<Option<DateTime<Utc>>, DbErr> {
    Ok(bid_event::Entity::find()
        .filter(bid_event::Column::BidId.eq(bid_id))
        .filter(bid_event::Column::Kind.eq(BidEventKind::PaymentFailed.as_str()))
        .order_by_desc(bid_event::Column::At)
        .one(db)
        .await?
        .map(|e| e.at))
}

/// Why bid `b`, no longer waiting for a card, takes none: a winner whose upgrade went on
/// after a failed payment is told the time has passed, not only that the bid is lost.
fn no_card_now(b: &bid::Model, spec: &LotSpec) -> BidError {
    let status = BidStatus::parse(&b.status).unwrap_or(BidStatus::Lost);
    if matches!(status, BidStatus::Lost | BidStatus::Released)
        && b.outcome_reason.as_deref() == Some(OutcomeReason::PaymentFailed.as_str())
    {
        return BidError::GraceOver {
            no_grace: spec.payment_grace_seconds == 0,
        };
    }
    BidError::NotActive { status }
}

async fn replace_card_here(
    db: &Db,
    gateway: &dyn PaymentGateway,
    booking: &booking::Model,
    bid_id: &str,
    card: Option<CardSource>,
) -> Result<bid::Model, BidError> {
    let card = card.ok_or_else(|| {
        BidError::Invalid(FieldErrors::single(
            "payment_method",
            "is required: the card to charge instead",
        ))
    })?;
    let current = own_bid(db, booking, bid_id).await?;
    let l = lot::Entity::find_by_id(current.lot_id.clone())
        .one(db)
        .await?
        .ok_or(BidError::NotFound)?;
    let spec = store_lots::spec(&l).map_err(corrupt)?;
    if current.status != BidStatus::PaymentFailed.as_str() {
        return Err(no_card_now(&current, &spec));
    }
    // Past the grace period the upgrade is the next traveller's, even before the job that
    // hands it on has run: a card given then is not asked for anything.
    let failed_at = last_payment_failure(db, &current.id).await?;
    if card_replaceable_until(&spec, failed_at, Utc::now()).is_none() {
        return Err(BidError::GraceOver {
            no_grace: spec.payment_grace_seconds == 0,
        });
    }
    let total = current.award_price_minor.unwrap_or(current.amount_minor)
        * i64::from(current.award_units.unwrap_or(current.units));
    let attempt = attempts(db, &current.id).await? + 1;
    let bid_for = CardFor {
        bid_id: &current.id,
        lot_id: &current.lot_id,
        booking,
        units: current.award_units.unwrap_or(current.units).max(1) as u32,
    };
    let security = secure(gateway, &spec, bid_for, attempt, total, card).await?;

    let txn = write_txn(db).await?;
    let locked = lock_own_bid(&txn, booking, bid_id).await?;
    if locked.status != BidStatus::PaymentFailed.as_str() {
        if secures(&locked, &security) {
            // The same card sent twice at once (the provider gave both copies one answer):
            // the other copy wrote it, and this one is answered as it was.
            return Ok(locked);
        }
        // The grace period ran out meanwhile: the upgrade went to the next traveller.
        drop(txn);
        unwind(db, gateway, bid_id, attempt, &security).await;
        return Err(no_card_now(&locked, &spec));
    }
    let now = Utc::now();
    let previous = locked.payment_ref.clone();
    let mut am = locked.into_active_model();
    am.status = Set(BidStatus::Won.as_str().to_owned());
    match &security {
        Security::Hold { reference, .. } => am.payment_ref = Set(Some(reference.clone())),
        Security::SavedCard(card) => {
            am.saved_card = Set(Some(serde_json::to_string(card).expect("cards serialise")))
        }
    }
    am.updated_at = Set(now);
    let updated = am.update(&txn).await?;
    record_security(
        &txn,
        bid_id,
        spec.currency.code(),
        gateway.provider(),
        attempt,
        &security,
    )
    .await?;
    let detail = "Thank you: the new card is being charged now.".to_owned();
    // A card saved for a charge on award is not held: the timeline says which it was.
    let secured = match &security {
        Security::Hold { .. } => BidEventKind::HoldPlaced,
        Security::SavedCard(_) => BidEventKind::CardSaved,
    };
    events::record(&txn, bid_id, secured, None, Some(detail), now).await?;
    if let (Some(old), Security::Hold { .. }) = (previous, &security) {
        jobs::enqueue(
            &txn,
            Job::Release {
                bid_id: bid_id.to_owned(),
                hold: old,
            },
            now,
        )
        .await?;
    }
    jobs::enqueue(
        &txn,
        Job::Charge {
            bid_id: bid_id.to_owned(),
        },
        now,
    )
    .await?;
    txn.commit().await?;
    Ok(updated)
}

#[cfg(test)]
mod tests {
    use super::count_attempts;

    #[test]
    fn a_release_counts_as_an_attempt_only_for_a_hold_no_row_records() {
        // Placed (hold H1), raised (hold H2), H1 then released by its job: two attempts,
        // whenever the release lands.
        let raised = [
            ("hold", Some("H1")),
            ("hold", Some("H2")),
            ("release", Some("H1")),
        ];
        assert_eq!(count_attempts(raised), 2);
        // A raise's hold H2 whose write was lost, released by reconcile: its key is spent.
        let lost = [("hold", Some("H1")), ("release", Some("H2"))];
        assert_eq!(count_attempts(lost), 2);
        assert_eq!(count_attempts([("save_card", Some("seti_1"))]), 1);
        assert_eq!(count_attempts([]), 0);
    }
}
