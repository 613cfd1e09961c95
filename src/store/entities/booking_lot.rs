use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "booking_lots")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub booking_id: String,
    #[sea_orm(primary_key, auto_increment = false)]
    pub lot_id: String,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
