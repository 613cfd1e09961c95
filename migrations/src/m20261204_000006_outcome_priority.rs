//! Messages that tell a traveller the outcome (upgrade confirmed, not successful, payment
//! failed, cancelled, refunded) are claimed before the other messages: in a deadline rush the
//! outcomes are queued behind thousands of confirmations of bids placed in the last minutes.
//! The routine messages move from priority 1 to 2 and the outcomes take 1. Messages queued
//! before this cannot be told apart by their job row; they stay routine.

use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

/// Must match `jobs::Priority::Outcomes`, which routine messages had before.
const OUTCOMES: i16 = 1;
/// Must match `jobs::Priority::Messages`.
const MESSAGES: i16 = 2;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        renumber(m, OUTCOMES, MESSAGES).await
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        renumber(m, MESSAGES, OUTCOMES).await
    }
}

async fn renumber(m: &SchemaManager<'_>, from: i16, to: i16) -> Result<(), DbErr> {
    m.exec_stmt(
        Query::update()
            .table(Jobs::Table)
            .value(Jobs::Priority, to)
            .and_where(Expr::col(Jobs::Priority).eq(from))
            .to_owned(),
    )
    .await
}

#[derive(DeriveIden, Clone, Copy)]
enum Jobs {
    Table,
    Priority,
}
