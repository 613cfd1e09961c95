use sea_orm::entity::prelude::*;

/// One message to deliver: an email to a traveller (`channel = "email"`) or a signed POST to
/// a partner's endpoint (`channel = "webhook"`), written in the transaction of the state
/// change that causes it.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "outbox")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    pub operator_id: Option<String>,
    pub channel: String,
    pub topic: String,
    pub payload: String,
    pub status: String,
    pub attempts: i32,
    pub next_attempt_at: DateTimeUtc,
    pub last_error: Option<String>,
    pub created_at: DateTimeUtc,
    pub sent_at: Option<DateTimeUtc>,
    pub booking_id: Option<String>,
    pub endpoint_id: Option<String>,
    pub message_id: Option<String>,
    pub recipient: Option<String>,
    pub subject: Option<String>,
    pub body: Option<String>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
