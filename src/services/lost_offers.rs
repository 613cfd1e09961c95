//! Offers lost on our side: the card hold was taken and the bid never stored (a crash came
//! in between). Once `reconcile` has the hold released, the traveller is told, with what
//! they can do now.

use chrono::{DateTime, Utc};
use sea_orm::{ColumnTrait, ConnectionTrait, DbErr, EntityTrait, QueryFilter, QuerySelect};

use crate::domain::bid::BidStatus;
use crate::domain::lot::LotStatus;
use crate::jobs::UnrecordedBid;
use crate::notifications::outbox::{self, AfterLostOffer};
use crate::store::entities::{bid, booking, booking_lot, lot};
use crate::store::{Db, lots as store_lots, write_txn};

/// Tells the traveller the hold of `offer` is released: one email, whatever the number of
/// runs of the release. Nothing when the booking is gone or erased, or the lot is gone or
/// another operator's.
pub async fn tell(
    db: &Db,
    hold: &str,
    offer: &UnrecordedBid,
    now: DateTime<Utc>,
) -> Result<(), DbErr> {
    let txn = write_txn(db).await?;
    // The booking's row locked first: two runs of the release at once tell once (on SQLite
    // the write transaction is already exclusive).
    let b = booking::Entity::find_by_id(offer.booking_id.clone())
        .lock_exclusive()
        .one(&txn)
        .await?
        .filter(|b| b.erased_at.is_none());
    let Some(b) = b else {
        tracing::warn!(hold, bid = %offer.bid_id, "hold released; its booking is gone or erased, nobody told");
        return Ok(());
    };
    let l = lot::Entity::find_by_id(offer.lot_id.clone())
        .one(&txn)
        .await?
        .filter(|l| l.operator_id == b.operator_id);
    let Some(l) = l else {
        tracing::warn!(hold, bid = %offer.bid_id, "hold released; its lot is gone, nobody told");
        return Ok(());
    };
    let message_id = outbox::lost_offer_message_id(hold);
    if outbox::written(&txn, &b.id, &message_id).await? {
        return Ok(());
    }
    let now_what = now_what(&txn, &b, &l, now).await?;
    outbox::enqueue_lost_offer(&txn, &l, offer, now_what, message_id, now).await?;
    txn.commit().await
}

/// An offer made since stands; else the upgrade is open to the booking or it is not.
async fn now_what(
    txn: &impl ConnectionTrait,
    b: &booking::Model,
    l: &lot::Model,
    now: DateTime<Utc>,
) -> Result<AfterLostOffer, DbErr> {
    let since: Option<String> = bid::Entity::find()
        .select_only()
        .column(bid::Column::Status)
        .filter(bid::Column::LotId.eq(&l.id))
        .filter(bid::Column::BookingId.eq(&b.id))
        .into_tuple()
        .one(txn)
        .await?;
    if since.is_some_and(|s| BidStatus::TAKING_PART.iter().any(|t| t.as_str() == s)) {
        return Ok(AfterLostOffer::LaterOfferStands);
    }
    let eligible = booking_lot::Entity::find()
        .filter(booking_lot::Column::BookingId.eq(&b.id))
        .filter(booking_lot::Column::LotId.eq(&l.id))
        .one(txn)
        .await?
        .is_some();
    let open = store_lots::status(l) == LotStatus::Open && now < l.closes_at;
    // Only where a new offer could be made for the whole party, as the offers page shows it.
    let spec =
        store_lots::spec(l).map_err(|e| DbErr::Custom(format!("stored lot unreadable: {e}")))?;
    let fits = store_lots::free_units(l, &spec) >= b.party_size.max(1) as u32;
    Ok(if eligible && open && fits {
        AfterLostOffer::BidAgain
    } else {
        AfterLostOffer::BiddingClosed
    })
}
