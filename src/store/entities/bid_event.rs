use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "bid_events")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    pub bid_id: String,
    pub kind: String,
    pub amount_minor: Option<i64>,
    pub detail: Option<String>,
    pub at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
