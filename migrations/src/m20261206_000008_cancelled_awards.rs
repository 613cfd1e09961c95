//! A lot cancelled after its award used to keep the award as it was, `pending_review` or
//! `approved`, so the API and the console still offered it for review. Cancelling now marks
//! the award `cancelled`; this brings the awards of lots cancelled before that into line.

use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        let cancelled_lots = Query::select()
            .column(Lots::Id)
            .from(Lots::Table)
            .and_where(Expr::col(Lots::Status).eq("cancelled"))
            .to_owned();
        m.exec_stmt(
            Query::update()
                .table(Awards::Table)
                .value(Awards::Status, "cancelled")
                .and_where(Expr::col(Awards::LotId).in_subquery(cancelled_lots))
                .to_owned(),
        )
        .await
    }

    /// The status each award had before its lot was cancelled is not kept: going back leaves
    /// them `cancelled`, which an older release shows as it is and never offers for review.
    async fn down(&self, _: &SchemaManager) -> Result<(), DbErr> {
        Ok(())
    }
}

#[derive(DeriveIden, Clone, Copy)]
enum Lots {
    Table,
    Id,
    Status,
}

#[derive(DeriveIden, Clone, Copy)]
enum Awards {
    Table,
    LotId,
    Status,
}
