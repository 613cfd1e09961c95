//! The outbox: messages written in the transaction of the state change that causes them,
//! delivered later by the `deliver` and `deliver_many` jobs; sent, suppressed or parked,
//! never deleted.

use std::collections::BTreeMap;

use chrono::{DateTime, Duration, Utc};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, DbErr, EntityTrait, NotSet, QueryFilter,
    QueryOrder, QuerySelect, Set,
};
use serde::{Deserialize, Serialize};

use super::Topic;
use super::why::Why;
use crate::jobs::{self, Job, UnrecordedBid};
use crate::local_time;
use crate::store::entities::{bid, lot, outbox, webhook_endpoint};

pub const EMAIL: &str = "email";
pub const WEBHOOK: &str = "webhook";

pub const PENDING: &str = "pending";
pub const SENT: &str = "sent";
/// Failed too often (or refused for good): kept for the operator to see and retry.
pub const PARKED: &str = "parked";
/// Not to be sent after all: the traveller unsubscribed from this kind, or was erased.
pub const SUPPRESSED: &str = "suppressed";

/// The facts of a message, fixed when the state changed (rendered at delivery time in the
/// booking's language). No personal data: names and addresses are read at delivery, so an
/// erasure in between leaves nothing to send.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Facts {
    pub event_id: String,
    pub bid_id: String,
    pub lot_id: String,
    pub booking_id: String,
    pub bid_status: String,
    pub amount_minor: i64,
    pub units: i32,
    /// The money a message is about: what the award asks of the bid (its price for its
    /// units), charged or failed to be taken; for a refund, what went back. None otherwise.
    pub total_minor: Option<i64>,
    pub currency: String,
    pub lot_title: String,
    pub from_class: String,
    pub to_class: String,
    pub resource: String,
    pub service_date: String,
    pub closes_at: DateTime<Utc>,
    pub time_zone: String,
    /// Why, in English: what partners' webhooks and English emails carry (except a refund's
    /// email, which gives the cause alone, `why`, when kept), and French emails written before
    /// `why` was kept.
    pub detail: Option<String>,
    /// Why, in parts, so that a French email says it in French.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "super::why::read_leniently"
    )]
    pub why: Option<Why>,
    /// Only for a lost offer (`bid.not_recorded`): what the traveller can do now, as it
    /// stood when the message was written.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub after_lost_offer: Option<AfterLostOffer>,
    /// Only for a lost offer: when it was made, so that the traveller knows which one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub offered_at: Option<DateTime<Utc>>,
    /// Only for a cancelled upgrade: its charge had been asked of the bank and not yet
    /// answered, so the money may have been taken (and is then refunded). Then the message
    /// cannot say that nothing is charged.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub charge_unanswered: bool,
    /// The bid's card was only saved, for a charge on award, and nothing is held on it: the
    /// message speaks of that card, not of a hold released.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub card_only_saved: bool,
    pub at: DateTime<Utc>,
}

/// The offer a message is about, as its facts state it.
struct Offer {
    bid_id: String,
    booking_id: String,
    bid_status: String,
    amount_minor: i64,
    units: i32,
    total_minor: Option<i64>,
    currency: String,
    card_only_saved: bool,
}

impl Facts {
    /// A new event's facts about `offer` on lot `l`; the optional facts are the caller's to
    /// add. Every field is named here, so that a new one is decided for every message.
    fn new(offer: Offer, l: &lot::Model, now: DateTime<Utc>) -> Facts {
        Facts {
            event_id: format!("evt_{}", uuid::Uuid::new_v4().simple()),
            bid_id: offer.bid_id,
            lot_id: l.id.clone(),
            booking_id: offer.booking_id,
            bid_status: offer.bid_status,
            amount_minor: offer.amount_minor,
            units: offer.units,
            total_minor: offer.total_minor,
            currency: offer.currency,
            lot_title: l.title.clone(),
            from_class: l.from_class.clone(),
            to_class: l.to_class.clone(),
            resource: l.resource.clone(),
            service_date: l.service_date.to_string(),
            closes_at: l.closes_at,
            time_zone: l.time_zone.clone(),
            detail: None,
            why: None,
            after_lost_offer: None,
            offered_at: None,
            charge_unanswered: false,
            card_only_saved: offer.card_only_saved,
            at: now,
        }
    }
}

/// What a traveller whose offer was lost on our side can do about it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AfterLostOffer {
    /// The upgrade is open to them: offer again.
    BidAgain,
    /// They offered again meanwhile, and that offer is recorded.
    LaterOfferStands,
    /// Bidding has closed (or the upgrade was cancelled, or is no longer theirs to bid on).
    BiddingClosed,
}

/// Writes the messages `topic` causes for this bid — an email to the traveller and one
/// delivery per partner endpoint that chose the event — with their delivery jobs, inside the
/// caller's transaction. One line per state change in the services.
pub async fn enqueue(
    txn: &impl ConnectionTrait,
    bid_id: &str,
    topic: Topic,
    why: Option<&Why>,
    now: DateTime<Utc>,
) -> Result<(), DbErr> {
    write(txn, bid_id, topic, why, |facts| facts, Told::Everyone, now).await
}

/// [`enqueue`] for partners' endpoints only: the traveller was already told of this change
/// in the email of the one before it (see [`told_upgrade_goes_on`]).
pub async fn enqueue_for_partners(
    txn: &impl ConnectionTrait,
    bid_id: &str,
    topic: Topic,
    why: Option<&Why>,
    now: DateTime<Utc>,
) -> Result<(), DbErr> {
    write(
        txn,
        bid_id,
        topic,
        why,
        |facts| facts,
        Told::PartnersOnly,
        now,
    )
    .await
}

/// Whether the traveller's last payment-failed email about bid `b` said that the upgrade goes
/// to the next traveller (its lot left no time for another card): that email tells them the
/// end as well. Read from what was written, not from the lot as it is now, so that an email
/// that asked for a card (or one written before causes were kept) is always followed by the
/// outcome. Written, not necessarily delivered: should that email be parked, the operator
/// sees it among the messages to retry, as any other.
pub async fn told_upgrade_goes_on(
    txn: &impl ConnectionTrait,
    b: &bid::Model,
) -> Result<bool, DbErr> {
    /// The two facts read here, so that a field added to [`Facts`] later cannot make an older
    /// email unreadable to this.
    #[derive(Deserialize)]
    struct Said {
        bid_id: String,
        #[serde(default, deserialize_with = "super::why::read_leniently")]
        why: Option<Why>,
    }
    let written = outbox::Entity::find()
        .filter(outbox::Column::BookingId.eq(&b.booking_id))
        .filter(outbox::Column::Topic.eq(Topic::PaymentFailed.as_str()))
        .filter(outbox::Column::Channel.eq(EMAIL))
        .order_by_desc(outbox::Column::Id)
        .all(txn)
        .await?;
    let last = written
        .iter()
        .filter_map(|m| serde_json::from_str::<Said>(&m.payload).ok())
        .find(|said| said.bid_id == b.id);
    Ok(matches!(
        last.and_then(|said| said.why),
        Some(Why::PaymentDeclined {
            kept_until: None,
            ..
        })
    ))
}

/// Writes the `bid.refunded` messages of a bid: `refunded_minor` is what went back,
/// `detail` the English sentence (the refund's reason and amount), `why` the reason alone,
/// when the refund was asked with one.
pub async fn enqueue_refunded(
    txn: &impl ConnectionTrait,
    bid_id: &str,
    refunded_minor: i64,
    detail: String,
    why: Option<&Why>,
    now: DateTime<Utc>,
) -> Result<(), DbErr> {
    let amend = |facts: Facts| Facts {
        total_minor: Some(refunded_minor),
        detail: Some(detail),
        ..facts
    };
    write(
        txn,
        bid_id,
        Topic::Refunded,
        why,
        amend,
        Told::Everyone,
        now,
    )
    .await
}

/// Writes the `bid.cancelled` messages of a bid whose upgrade no longer stands, saying
/// whether a charge of it was still unanswered (so that the money may have been taken).
pub async fn enqueue_cancelled(
    txn: &impl ConnectionTrait,
    bid_id: &str,
    why: &Why,
    charge_unanswered: bool,
    now: DateTime<Utc>,
) -> Result<(), DbErr> {
    let amend = |facts: Facts| Facts {
        charge_unanswered,
        ..facts
    };
    write(
        txn,
        bid_id,
        Topic::Cancelled,
        Some(why),
        amend,
        Told::Everyone,
        now,
    )
    .await
}

/// The messages of one change to `told`, with the facts as `amend` makes them: reads the bid
/// (as it now is), its lot and, for an event partners may receive, the operator's endpoints.
async fn write(
    txn: &impl ConnectionTrait,
    bid_id: &str,
    topic: Topic,
    why: Option<&Why>,
    amend: impl FnOnce(Facts) -> Facts,
    told: Told,
    now: DateTime<Utc>,
) -> Result<(), DbErr> {
    let Some((b, l, endpoints)) = loaded(txn, bid_id, topic).await? else {
        return Ok(());
    };
    let facts = amend(facts_of(&b, &l, topic, why, now));
    let messages = messages(&b, &l, &endpoints, topic, &facts, told, now);
    insert(txn, messages, topic, now).await
}

/// The bid (as it now is), its lot and, for an event partners may receive, the operator's
/// endpoints; `None` when the bid or its lot is gone.
async fn loaded(
    txn: &impl ConnectionTrait,
    bid_id: &str,
    topic: Topic,
) -> Result<Option<(bid::Model, lot::Model, Vec<webhook_endpoint::Model>)>, DbErr> {
    let Some(b) = bid::Entity::find_by_id(bid_id.to_owned()).one(txn).await? else {
        return Ok(None);
    };
    let Some(l) = lot::Entity::find_by_id(b.lot_id.clone()).one(txn).await? else {
        return Ok(None);
    };
    let endpoints = if topic.is_webhook_event() {
        endpoints_of(txn, &l.operator_id).await?
    } else {
        Vec::new()
    };
    Ok(Some((b, l, endpoints)))
}

/// The operator's active webhook endpoints, read once for a batch of [`enqueue_loaded`].
pub async fn endpoints_of(
    txn: &impl ConnectionTrait,
    operator_id: &str,
) -> Result<Vec<webhook_endpoint::Model>, DbErr> {
    webhook_endpoint::Entity::find()
        .filter(webhook_endpoint::Column::OperatorId.eq(operator_id))
        .filter(webhook_endpoint::Column::Active.eq(true))
        .all(txn)
        .await
}

/// [`enqueue`] with the bid (as it now is), its lot and the operator's endpoints already in
/// hand: for loops over many bids in one transaction, such as an award.
pub async fn enqueue_loaded(
    txn: &impl ConnectionTrait,
    b: &bid::Model,
    l: &lot::Model,
    endpoints: &[webhook_endpoint::Model],
    topic: Topic,
    why: Option<&Why>,
    now: DateTime<Utc>,
) -> Result<(), DbErr> {
    let facts = facts_of(b, l, topic, why, now);
    insert(
        txn,
        messages(b, l, endpoints, topic, &facts, Told::Everyone, now),
        topic,
        now,
    )
    .await
}

/// [`enqueue`] for many bids at once (placed together, or told one thing together): one
/// insert of their messages, one of their delivery jobs. `endpoints` are the active ones of
/// every operator among the bids'; each bid's webhooks go to its own operator's only.
pub async fn enqueue_many(
    txn: &impl ConnectionTrait,
    bids: &[(&bid::Model, &lot::Model)],
    endpoints: &[webhook_endpoint::Model],
    topic: Topic,
    why: Option<&Why>,
    now: DateTime<Utc>,
) -> Result<(), DbErr> {
    let rows = bids
        .iter()
        .flat_map(|(b, l)| {
            let theirs: Vec<_> = endpoints
                .iter()
                .filter(|e| e.operator_id == l.operator_id)
                .cloned()
                .collect();
            let facts = facts_of(b, l, topic, why, now);
            messages(b, l, &theirs, topic, &facts, Told::Everyone, now)
        })
        .collect();
    insert(txn, rows, topic, now).await
}

/// The facts of `topic` about bid `b` (as it now is) on lot `l`, and why, when it says.
fn facts_of(
    b: &bid::Model,
    l: &lot::Model,
    topic: Topic,
    why: Option<&Why>,
    now: DateTime<Utc>,
) -> Facts {
    // What the award asks of a winner (its price for its units, not the offer): charged,
    // refunded, or failed to be taken.
    let total_minor = match topic {
        Topic::UpgradeConfirmed | Topic::Refunded | Topic::PaymentFailed => b
            .award_price_minor
            .zip(b.award_units)
            .map(|(price, units)| price * i64::from(units)),
        _ => None,
    };
    let offer = Offer {
        bid_id: b.id.clone(),
        booking_id: b.booking_id.clone(),
        bid_status: b.status.clone(),
        amount_minor: b.amount_minor,
        units: b.units,
        total_minor,
        currency: b.currency.clone(),
        card_only_saved: b.card_only_saved(),
    };
    Facts {
        detail: why.map(|why| why.en_in(local_time::zone(&l.time_zone))),
        why: why.cloned(),
        ..Facts::new(offer, l, now)
    }
}

/// The messages a state change causes: an email to the traveller (when `told` includes
/// them) and one delivery per partner endpoint that chose the event.
fn messages(
    b: &bid::Model,
    l: &lot::Model,
    endpoints: &[webhook_endpoint::Model],
    topic: Topic,
    facts: &Facts,
    told: Told,
    now: DateTime<Utc>,
) -> Vec<outbox::ActiveModel> {
    let payload = serde_json::to_string(facts).expect("facts serialise");
    let mut to = Vec::new();
    if told == Told::Everyone {
        to.push(Recipient::email(format!(
            "<{}@surclass>",
            uuid::Uuid::new_v4()
        )));
    }
    if topic.is_webhook_event() {
        for endpoint in endpoints {
            if super::webhooks::subscribed(endpoint, topic) {
                to.push(Recipient {
                    channel: WEBHOOK,
                    endpoint_id: Some(endpoint.id.clone()),
                    message_id: facts.event_id.clone(),
                });
            }
        }
    }
    to.into_iter()
        .map(|to| row(&l.operator_id, &b.booking_id, topic, &payload, to, now))
        .collect()
}

/// Who hears of a state change: the traveller by email and the partners' endpoints that
/// chose the event, or those endpoints only (the traveller was told in an earlier email).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Told {
    Everyone,
    PartnersOnly,
}

/// Where one message of a state change goes.
struct Recipient {
    channel: &'static str,
    endpoint_id: Option<String>,
    /// The email's Message-ID, or the webhook's event id.
    message_id: String,
}

impl Recipient {
    fn email(message_id: String) -> Self {
        Recipient {
            channel: EMAIL,
            endpoint_id: None,
            message_id,
        }
    }
}

/// A pending message of `topic` (its facts as `payload`), for one recipient.
fn row(
    operator_id: &str,
    booking_id: &str,
    topic: Topic,
    payload: &str,
    to: Recipient,
    now: DateTime<Utc>,
) -> outbox::ActiveModel {
    outbox::ActiveModel {
        id: NotSet,
        operator_id: Set(Some(operator_id.to_owned())),
        channel: Set(to.channel.to_owned()),
        topic: Set(topic.as_str().to_owned()),
        payload: Set(payload.to_owned()),
        status: Set(PENDING.to_owned()),
        attempts: Set(0),
        next_attempt_at: Set(now),
        last_error: Set(None),
        created_at: Set(now),
        sent_at: Set(None),
        booking_id: Set(Some(booking_id.to_owned())),
        endpoint_id: Set(to.endpoint_id),
        message_id: Set(Some(to.message_id)),
        recipient: Set(None),
        subject: Set(None),
        body: Set(None),
    }
}

/// The Message-ID of the email telling a traveller the hold of their lost offer was released:
/// fixed by the hold, so that a second run of the release finds the first one's message (and
/// a mail client would fold two copies into one).
pub fn lost_offer_message_id(hold: &str) -> String {
    format!("<released-{hold}@surclass>")
}

/// Whether a message with this Message-ID was written for the booking.
pub async fn written(
    txn: &impl ConnectionTrait,
    booking_id: &str,
    message_id: &str,
) -> Result<bool, DbErr> {
    Ok(outbox::Entity::find()
        .filter(outbox::Column::BookingId.eq(booking_id))
        .filter(outbox::Column::MessageId.eq(message_id))
        .one(txn)
        .await?
        .is_some())
}

/// Writes the email (`bid.not_recorded`, never a webhook: the bid does not exist) that tells
/// a traveller their offer on `l` was lost on our side and its hold released, and what they
/// can do now.
pub async fn enqueue_lost_offer(
    txn: &impl ConnectionTrait,
    l: &lot::Model,
    offer: &UnrecordedBid,
    now_what: AfterLostOffer,
    message_id: String,
    now: DateTime<Utc>,
) -> Result<(), DbErr> {
    let units = i32::try_from(offer.units.max(1)).unwrap_or(1);
    let lost = Offer {
        bid_id: offer.bid_id.clone(),
        booking_id: offer.booking_id.clone(),
        // Not a bid status: there is no bid. Says what the message is about.
        bid_status: "not_recorded".to_owned(),
        amount_minor: offer.total_minor / i64::from(units),
        units,
        total_minor: Some(offer.total_minor),
        currency: offer.currency.clone(),
        // A lost offer's hold is what was released.
        card_only_saved: false,
    };
    let facts = Facts {
        after_lost_offer: Some(now_what),
        offered_at: offer.offered_at,
        ..Facts::new(lost, l, now)
    };
    let email = row(
        &l.operator_id,
        &offer.booking_id,
        Topic::NotRecorded,
        &serde_json::to_string(&facts).expect("facts serialise"),
        Recipient::email(message_id),
        now,
    );
    insert(txn, vec![email], Topic::NotRecorded, now).await
}

/// Writes messages of `topic` and the jobs that deliver them.
async fn insert(
    txn: &impl ConnectionTrait,
    rows: Vec<outbox::ActiveModel>,
    topic: Topic,
    now: DateTime<Utc>,
) -> Result<(), DbErr> {
    if rows.is_empty() {
        return Ok(());
    }
    // One delivery job for the messages written together, not one each: a job row per message
    // cost about 15% of SQLite's bid intake. The emails apart from each endpoint's webhooks, and
    // at most DELIVERY_BATCH a job, so that a slow receiver holds up only its own messages.
    let mut groups: BTreeMap<Option<String>, Vec<outbox::ActiveModel>> = BTreeMap::new();
    for row in rows {
        groups
            .entry(row.endpoint_id.as_ref().clone())
            .or_default()
            .push(row);
    }
    let mut deliveries = Vec::new();
    for group in groups.into_values() {
        let mut written = Vec::with_capacity(group.len());
        for piece in crate::store::shape::pieces(group) {
            written.extend(
                outbox::Entity::insert_many(piece)
                    .exec_with_returning_keys(txn)
                    .await?,
            );
        }
        deliveries.extend(written.chunks(DELIVERY_BATCH).map(|ids| match ids {
            [outbox_id] => Job::Deliver {
                outbox_id: *outbox_id,
            },
            _ => Job::DeliverMany {
                outbox_ids: ids.to_vec(),
            },
        }));
    }
    jobs::enqueue_many_at(txn, deliveries, topic.priority(), now).await
}

/// At most this many messages per delivery job.
const DELIVERY_BATCH: usize = 16;

/// The delay before attempt `attempts + 1`: 30 s doubling each time, at most an hour.
pub fn backoff(attempts: i32) -> Duration {
    let exp = attempts.clamp(1, 12) - 1;
    Duration::seconds((30i64 << exp).min(3600))
}

/// Messages of an operator, newest first, optionally of one status and channel.
pub async fn list(
    db: &impl ConnectionTrait,
    operator_id: &str,
    status: Option<&str>,
    channel: Option<&str>,
    limit: u64,
) -> Result<Vec<outbox::Model>, DbErr> {
    let mut q = outbox::Entity::find().filter(outbox::Column::OperatorId.eq(operator_id));
    if let Some(status) = status {
        q = q.filter(outbox::Column::Status.eq(status));
    }
    if let Some(channel) = channel {
        q = q.filter(outbox::Column::Channel.eq(channel));
    }
    q.order_by_desc(outbox::Column::Id)
        .limit(limit)
        .all(db)
        .await
}

pub async fn get(
    db: &impl ConnectionTrait,
    operator_id: &str,
    id: i64,
) -> Result<Option<outbox::Model>, DbErr> {
    outbox::Entity::find_by_id(id)
        .filter(outbox::Column::OperatorId.eq(operator_id))
        .one(db)
        .await
}

#[derive(Debug, thiserror::Error)]
pub enum RetryError {
    #[error("no such message")]
    NotFound,
    #[error("only a parked message can be retried; this one is {0}")]
    NotParked(String),
    #[error(transparent)]
    Db(#[from] DbErr),
}

/// Puts a parked message back in the queue, with fresh attempts: the operator fixed the
/// cause (a wrong address, a receiver that was down).
pub async fn retry(
    db: &crate::store::Db,
    operator_id: &str,
    id: i64,
) -> Result<outbox::Model, RetryError> {
    let txn = crate::store::write_txn(db).await?;
    let row = get(&txn, operator_id, id)
        .await?
        .ok_or(RetryError::NotFound)?;
    if row.status != PARKED {
        return Err(RetryError::NotParked(row.status));
    }
    let now = Utc::now();
    let mut am: outbox::ActiveModel = row.into();
    am.status = Set(PENDING.to_owned());
    am.attempts = Set(0);
    am.next_attempt_at = Set(now);
    am.last_error = Set(None);
    let row = am.update(&txn).await?;
    // Claimed as soon as it was when first written: a retried outcome is still news.
    let priority = Topic::parse(&row.topic).map_or(jobs::Priority::Messages, Topic::priority);
    jobs::enqueue_many_at(&txn, [Job::Deliver { outbox_id: row.id }], priority, now).await?;
    txn.commit().await?;
    Ok(row)
}
