//! The simulated payment gateway's own state, so that holds, charges and refunds made on the
//! embedded gateway survive a restart (as they would at a real provider). Nothing else in the
//! application reads these tables: the `payments` table stays the application's record.
//! - `simulated_gateway_objects`: payments, card setups, saved cards, customers and refunds,
//!   one JSON document per object (never a card number: last four digits and behaviour only);
//! - `simulated_gateway_requests`: one row per idempotency key with the first answer, replayed
//!   when the key comes again.

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.create_table(
            Table::create()
                .table(SimulatedGatewayObjects::Table)
                .col(string(SimulatedGatewayObjects::Id).primary_key())
                .col(string(SimulatedGatewayObjects::Kind))
                .col(text(SimulatedGatewayObjects::Body))
                .col(timestamp_with_time_zone(SimulatedGatewayObjects::CreatedAt))
                .col(timestamp_with_time_zone(SimulatedGatewayObjects::UpdatedAt))
                .to_owned(),
        )
        .await?;
        m.create_table(
            Table::create()
                .table(SimulatedGatewayRequests::Table)
                .col(string(SimulatedGatewayRequests::IdempotencyKey).primary_key())
                .col(string(SimulatedGatewayRequests::Operation))
                .col(string(SimulatedGatewayRequests::Fingerprint))
                .col(text(SimulatedGatewayRequests::Response))
                .col(timestamp_with_time_zone(
                    SimulatedGatewayRequests::CreatedAt,
                ))
                .to_owned(),
        )
        .await
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.drop_table(
            Table::drop()
                .table(SimulatedGatewayRequests::Table)
                .to_owned(),
        )
        .await?;
        m.drop_table(
            Table::drop()
                .table(SimulatedGatewayObjects::Table)
                .to_owned(),
        )
        .await
    }
}

#[derive(DeriveIden, Clone, Copy)]
enum SimulatedGatewayObjects {
    Table,
    Id,
    Kind,
    Body,
    CreatedAt,
    UpdatedAt,
}

#[derive(DeriveIden, Clone, Copy)]
enum SimulatedGatewayRequests {
    Table,
    IdempotencyKey,
    Operation,
    Fingerprint,
    Response,
    CreatedAt,
}
