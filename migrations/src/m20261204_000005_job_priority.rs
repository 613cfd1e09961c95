//! Jobs get a priority: the deadline's work (closing a lot, charging, releasing holds) is
//! claimed before messages, so a close never waits behind a deadline rush's confirmations.
//! The claim walks `(status, priority, run_at)`, which replaces `(status, run_at)`: with
//! both, SQLite (without statistics) takes the older one for `run_at <= now` and sorts every
//! due job on each claim.

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

/// What `jobs::Priority::Messages` was until migration 6 moved messages to 2.
const MESSAGES: i16 = 1;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.alter_table(
            Table::alter()
                .table(Jobs::Table)
                .add_column(small_integer(Jobs::Priority).default(0))
                .to_owned(),
        )
        .await?;
        // Messages already queued wait behind the deadline's work, as new ones will.
        m.exec_stmt(
            Query::update()
                .table(Jobs::Table)
                .value(Jobs::Priority, MESSAGES)
                .and_where(Expr::col(Jobs::Kind).is_in([
                    "deliver",
                    "deliver_many",
                    "remind",
                    "purge_expired",
                ]))
                .to_owned(),
        )
        .await?;
        m.create_index(
            Index::create()
                .name("idx_jobs_claim")
                .table(Jobs::Table)
                .col(Jobs::Status)
                .col(Jobs::Priority)
                .col(Jobs::RunAt)
                .to_owned(),
        )
        .await?;
        m.drop_index(
            Index::drop()
                .name("idx_jobs_due")
                .table(Jobs::Table)
                .to_owned(),
        )
        .await
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.create_index(
            Index::create()
                .name("idx_jobs_due")
                .table(Jobs::Table)
                .col(Jobs::Status)
                .col(Jobs::RunAt)
                .to_owned(),
        )
        .await?;
        m.drop_index(
            Index::drop()
                .name("idx_jobs_claim")
                .table(Jobs::Table)
                .to_owned(),
        )
        .await?;
        m.alter_table(
            Table::alter()
                .table(Jobs::Table)
                .drop_column(Jobs::Priority)
                .to_owned(),
        )
        .await
    }
}

#[derive(DeriveIden, Clone, Copy)]
enum Jobs {
    Table,
    Kind,
    Priority,
    Status,
    RunAt,
}
