//! One-click unsubscribe (RFC 8058): a signed, non-expiring token per booking in every
//! optional message; one POST stops reminders at once, with no session. Messages about money
//! and the traveller's own actions are not affected.

use chrono::Utc;
use sea_orm::{ColumnTrait, ConnectionTrait, DbErr, EntityTrait, QueryFilter, Set};

use super::{Topic, outbox};
use crate::services::sessions::SessionSigner;
use crate::store::entities::{outbox as outbox_entity, unsubscribe};

const PURPOSE: &str = "unsubscribe";

/// `{booking id}.{tag}`: booking ids never contain a dot.
pub fn token(signer: &SessionSigner, booking_id: &str) -> String {
    format!("{booking_id}.{}", signer.tag(PURPOSE, booking_id))
}

/// The booking a genuine token names.
pub fn verify(signer: &SessionSigner, token: &str) -> Option<String> {
    let (booking_id, tag) = token.split_once('.')?;
    signer
        .check_tag(PURPOSE, booking_id, tag)
        .then(|| booking_id.to_owned())
}

pub async fn is_unsubscribed(db: &impl ConnectionTrait, booking_id: &str) -> Result<bool, DbErr> {
    Ok(unsubscribe::Entity::find_by_id(booking_id.to_owned())
        .one(db)
        .await?
        .is_some())
}

/// Stops optional messages for this booking, including those already queued. Idempotent.
pub async fn unsubscribe(db: &impl ConnectionTrait, booking_id: &str) -> Result<(), DbErr> {
    let now = Utc::now();
    unsubscribe::Entity::insert(unsubscribe::ActiveModel {
        booking_id: Set(booking_id.to_owned()),
        at: Set(now),
    })
    .on_conflict_do_nothing_on([unsubscribe::Column::BookingId])
    .exec(db)
    .await?;
    let optional: Vec<&str> = Topic::ALL
        .into_iter()
        .filter(|t| t.is_optional())
        .map(Topic::as_str)
        .collect();
    outbox_entity::Entity::update_many()
        .col_expr(outbox_entity::Column::Status, outbox::SUPPRESSED.into())
        .col_expr(
            outbox_entity::Column::LastError,
            Some("the traveller unsubscribed".to_owned()).into(),
        )
        .filter(outbox_entity::Column::BookingId.eq(booking_id))
        .filter(outbox_entity::Column::Channel.eq(outbox::EMAIL))
        .filter(outbox_entity::Column::Status.eq(outbox::PENDING))
        .filter(outbox_entity::Column::Topic.is_in(optional))
        .exec(db)
        .await?;
    Ok(())
}

/// Reminders again (from the traveller's own settings).
pub async fn resubscribe(db: &impl ConnectionTrait, booking_id: &str) -> Result<(), DbErr> {
    unsubscribe::Entity::delete_by_id(booking_id.to_owned())
        .exec(db)
        .await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_unsubscribe_token_names_its_booking_and_cannot_be_forged() {
        let signer = SessionSigner::from_key(b"k".to_vec());
        let t = token(&signer, "bkg_1");
        assert_eq!(verify(&signer, &t).as_deref(), Some("bkg_1"));
        let forged = t.replace("bkg_1", "bkg_2");
        assert_eq!(verify(&signer, &forged), None);
        // Not a session either.
        assert!(signer.verify(&t, Utc::now()).is_none());
    }
}
