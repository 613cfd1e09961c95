use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "awards")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub lot_id: String,
    pub algorithm_version: String,
    pub fingerprint: String,
    pub plan: String,
    pub revenue_minor: i64,
    pub currency: String,
    pub status: String,
    pub created_at: DateTimeUtc,
    pub approved_at: Option<DateTimeUtc>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
