//! Notifications and data rights (issue #8):
//! - `outbox` learns which booking a message concerns (for export and erasure), which webhook
//!   endpoint a delivery goes to, its stable `Message-ID`, and what was rendered (recipient,
//!   subject, body: the local mailbox of the embedded default, blanked on erasure);
//! - `unsubscribes`: one row per booking whose traveller clicked List-Unsubscribe (no more
//!   reminders); `privacy_settings`: an operator's retention period, after which personal
//!   data of settled lots is purged (tables of their own, so the core entities stay as they are);
//! - `webhook_endpoints` (partner and operator receivers, chosen events, signing secret) and
//!   `webhook_attempts` (every delivery attempt with its answer).
//!
//! Every column added to an existing table is nullable and added one per statement (SQLite).

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        for column in [
            string_null(Outbox::BookingId),
            string_null(Outbox::EndpointId),
            string_null(Outbox::MessageId),
            string_null(Outbox::Recipient),
            text_null(Outbox::Subject),
            text_null(Outbox::Body),
        ] {
            let mut column = column;
            m.alter_table(
                Table::alter()
                    .table(Outbox::Table)
                    .add_column(&mut column)
                    .to_owned(),
            )
            .await?;
        }
        m.create_index(
            Index::create()
                .name("idx_outbox_booking")
                .table(Outbox::Table)
                .col(Outbox::BookingId)
                .to_owned(),
        )
        .await?;
        m.create_table(
            Table::create()
                .table(Unsubscribes::Table)
                .col(string(Unsubscribes::BookingId).primary_key())
                .col(timestamp_with_time_zone(Unsubscribes::At))
                .to_owned(),
        )
        .await?;
        m.create_table(
            Table::create()
                .table(PrivacySettings::Table)
                .col(string(PrivacySettings::OperatorId).primary_key())
                .col(integer(PrivacySettings::RetentionDays))
                .col(timestamp_with_time_zone(PrivacySettings::UpdatedAt))
                .to_owned(),
        )
        .await?;

        m.create_table(
            Table::create()
                .table(WebhookEndpoints::Table)
                .col(string(WebhookEndpoints::Id).primary_key())
                .col(string(WebhookEndpoints::OperatorId))
                .col(string_null(WebhookEndpoints::OwnerKeyId))
                .col(text(WebhookEndpoints::Url))
                .col(text(WebhookEndpoints::Events))
                .col(string(WebhookEndpoints::Secret))
                .col(text_null(WebhookEndpoints::Description))
                .col(boolean(WebhookEndpoints::Active))
                .col(timestamp_with_time_zone(WebhookEndpoints::CreatedAt))
                .to_owned(),
        )
        .await?;
        m.create_index(
            Index::create()
                .name("idx_webhook_endpoints_operator")
                .table(WebhookEndpoints::Table)
                .col(WebhookEndpoints::OperatorId)
                .to_owned(),
        )
        .await?;
        m.create_table(
            Table::create()
                .table(WebhookAttempts::Table)
                .col(big_pk_auto(WebhookAttempts::Id))
                .col(big_integer(WebhookAttempts::OutboxId))
                .col(integer(WebhookAttempts::Attempt))
                .col(timestamp_with_time_zone(WebhookAttempts::At))
                .col(integer_null(WebhookAttempts::StatusCode))
                .col(text_null(WebhookAttempts::Error))
                .to_owned(),
        )
        .await?;
        m.create_index(
            Index::create()
                .name("idx_webhook_attempts_outbox")
                .table(WebhookAttempts::Table)
                .col(WebhookAttempts::OutboxId)
                .to_owned(),
        )
        .await
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.drop_table(Table::drop().table(WebhookAttempts::Table).to_owned())
            .await?;
        m.drop_table(Table::drop().table(WebhookEndpoints::Table).to_owned())
            .await?;
        m.drop_index(
            Index::drop()
                .name("idx_outbox_booking")
                .table(Outbox::Table)
                .to_owned(),
        )
        .await?;
        m.drop_table(Table::drop().table(PrivacySettings::Table).to_owned())
            .await?;
        m.drop_table(Table::drop().table(Unsubscribes::Table).to_owned())
            .await?;
        for column in [
            Outbox::Body,
            Outbox::Subject,
            Outbox::Recipient,
            Outbox::MessageId,
            Outbox::EndpointId,
            Outbox::BookingId,
        ] {
            m.alter_table(
                Table::alter()
                    .table(Outbox::Table)
                    .drop_column(column)
                    .to_owned(),
            )
            .await?;
        }
        Ok(())
    }
}

#[derive(DeriveIden, Clone, Copy)]
enum Outbox {
    Table,
    BookingId,
    EndpointId,
    MessageId,
    Recipient,
    Subject,
    Body,
}

#[derive(DeriveIden, Clone, Copy)]
enum Unsubscribes {
    Table,
    BookingId,
    At,
}

#[derive(DeriveIden, Clone, Copy)]
enum PrivacySettings {
    Table,
    OperatorId,
    RetentionDays,
    UpdatedAt,
}

#[derive(DeriveIden, Clone, Copy)]
enum WebhookEndpoints {
    Table,
    Id,
    OperatorId,
    OwnerKeyId,
    Url,
    Events,
    Secret,
    Description,
    Active,
    CreatedAt,
}

#[derive(DeriveIden, Clone, Copy)]
enum WebhookAttempts {
    Table,
    Id,
    OutboxId,
    Attempt,
    At,
    StatusCode,
    Error,
}
