use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "bookings")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: String,
    pub operator_id: String,
    pub reference: String,
    pub reference_key: String,
    pub last_name: String,
    pub last_name_key: String,
    pub party_size: i32,
    pub email: Option<String>,
    pub phone: Option<String>,
    pub language: String,
    pub loyalty_tier: i32,
    pub created_at: DateTimeUtc,
    pub updated_at: DateTimeUtc,
    pub erased_at: Option<DateTimeUtc>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
