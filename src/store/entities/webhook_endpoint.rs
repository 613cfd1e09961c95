use sea_orm::entity::prelude::*;

/// A partner's or operator's receiver of signed event deliveries.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "webhook_endpoints")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: String,
    pub operator_id: String,
    /// The partner key that registered it (partners see only their own); `None`: the operator.
    pub owner_key_id: Option<String>,
    pub url: String,
    /// JSON array of event names.
    pub events: String,
    pub secret: String,
    pub description: Option<String>,
    pub active: bool,
    pub created_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
