//! The console's lot list shows an operator's lots still in play (draft, open, closed,
//! awarded) by closing time. `idx_lots_operator` keeps that order but not the status, so the
//! first page read every settled and cancelled lot that closed earlier. This partial index
//! holds only the lots in play, in the list's order: a page reads its fifty rows, however long
//! the operator's history.
//!
//! Both engines use a partial index only for a query whose condition is the index's own, so
//! the list writes this predicate as it is here (`store::lots::IN_PLAY`, same text).

use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

const NAME: &str = "idx_lots_in_play";
const IN_PLAY: &str = "status IN ('draft', 'open', 'closed', 'awarded')";

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.create_index(
            Index::create()
                .name(NAME)
                .table(Lots::Table)
                .col(Lots::OperatorId)
                .col(Lots::ClosesAt)
                .col(Lots::Id)
                .and_where(Expr::cust(IN_PLAY))
                .to_owned(),
        )
        .await
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.drop_index(Index::drop().name(NAME).table(Lots::Table).to_owned())
            .await
    }
}

#[derive(DeriveIden, Clone, Copy)]
enum Lots {
    Table,
    OperatorId,
    ClosesAt,
    Id,
}
