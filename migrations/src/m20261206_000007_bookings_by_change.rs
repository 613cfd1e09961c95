//! The console's bookings list shows an operator's bookings most recently changed first, a
//! page at a time. Without this index every page sorts all of the operator's bookings; with
//! it a page reads its hundred rows, walking the index backwards.

use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

const NAME: &str = "idx_bookings_operator_updated";

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.create_index(
            Index::create()
                .name(NAME)
                .table(Bookings::Table)
                .col(Bookings::OperatorId)
                .col(Bookings::UpdatedAt)
                .col(Bookings::Id)
                .to_owned(),
        )
        .await
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.drop_index(Index::drop().name(NAME).table(Bookings::Table).to_owned())
            .await
    }
}

#[derive(DeriveIden, Clone, Copy)]
enum Bookings {
    Table,
    OperatorId,
    UpdatedAt,
    Id,
}
