use sea_orm::entity::prelude::*;

use crate::domain::bid::BidStatus;
use crate::domain::outcome::OutcomeReason;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "bids")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: String,
    pub lot_id: String,
    pub booking_id: String,
    pub amount_minor: i64,
    pub currency: String,
    pub units: i32,
    pub partial_ok: bool,
    pub tier: i32,
    pub preference: Option<i32>,
    pub status: String,
    pub payment_method_ref: Option<String>,
    pub payment_ref: Option<String>,
    pub saved_card: Option<String>,
    pub award_units: Option<i32>,
    pub award_price_minor: Option<i64>,
    pub outcome_reason: Option<String>,
    pub standby_rank: Option<i32>,
    pub submitted_at: DateTimeUtc,
    pub created_at: DateTimeUtc,
    pub updated_at: DateTimeUtc,
    pub version: i32,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {
    #[sea_orm(
        belongs_to = "super::booking::Entity",
        from = "Column::BookingId",
        to = "super::booking::Column::Id"
    )]
    Booking,
}

impl Related<super::booking::Entity> for Entity {
    fn to() -> RelationDef {
        Relation::Booking.def()
    }
}

impl ActiveModelBehavior for ActiveModel {}

impl Model {
    /// The card secures this bid by being saved (a charge on award), and nothing is held on
    /// it: what the traveller is told must speak of a saved card, not of a hold to release.
    pub fn card_only_saved(&self) -> bool {
        self.saved_card.is_some() && self.payment_ref.is_none()
    }

    /// The traveller may place this bid again while bidding runs: they withdrew it, or it
    /// was released when too few units were left for their party (units may come back).
    pub fn placeable_again(&self) -> bool {
        let status = BidStatus::parse(&self.status);
        status == Ok(BidStatus::Withdrawn)
            || (matches!(status, Ok(BidStatus::Lost | BidStatus::Released))
                && self.outcome_reason.as_deref() == Some(OutcomeReason::NoRoomLeft.as_str()))
    }
}
