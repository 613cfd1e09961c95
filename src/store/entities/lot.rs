use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "lots")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: String,
    pub operator_id: String,
    pub resource_kind: String,
    pub resource: String,
    pub service_date: Date,
    pub title: String,
    pub from_class: String,
    pub to_class: String,
    pub class_rank: i32,
    pub capacity: i32,
    pub entitlement_units: i32,
    pub currency: String,
    pub reserve_minor: i64,
    pub maximum_minor: i64,
    pub upgrade_now_minor: Option<i64>,
    pub units_sold_now: i32,
    pub taxes_included: bool,
    pub opens_at: DateTimeUtc,
    pub closes_at: DateTimeUtc,
    pub time_zone: String,
    pub award_policy: String,
    pub tier_weight_pct: i32,
    pub payment_mode: String,
    pub payment_grace_seconds: i32,
    pub review_required: bool,
    pub chained_capacity: bool,
    pub status: String,
    pub version: i32,
    pub created_at: DateTimeUtc,
    pub updated_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
