use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "payments")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: String,
    pub bid_id: String,
    pub kind: String,
    pub amount_minor: i64,
    pub currency: String,
    pub status: String,
    pub provider: String,
    pub provider_ref: Option<String>,
    #[sea_orm(unique)]
    pub idempotency_key: String,
    pub attempt: i32,
    pub error: Option<String>,
    pub created_at: DateTimeUtc,
    pub updated_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
