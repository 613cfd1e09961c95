//! The operator console: its users (argon2 password hashes, role, lock-out state), their
//! sessions (only a SHA-256 of the random cookie token is stored, with the session's CSRF
//! token) and the audit log of who changed what, for console and API changes alike.

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.create_table(
            Table::create()
                .table(OperatorUsers::Table)
                .col(string(OperatorUsers::Id).primary_key())
                .col(string(OperatorUsers::OperatorId))
                // Unique across operators: the email alone says which operator signs in.
                .col(string_uniq(OperatorUsers::Email))
                .col(string(OperatorUsers::PasswordHash))
                .col(string(OperatorUsers::Role))
                .col(integer(OperatorUsers::FailedAttempts).default(0))
                .col(timestamp_with_time_zone_null(OperatorUsers::LockedUntil))
                .col(timestamp_with_time_zone(OperatorUsers::CreatedAt))
                .col(timestamp_with_time_zone_null(OperatorUsers::LastSignInAt))
                .foreign_key(
                    ForeignKey::create()
                        .from(OperatorUsers::Table, OperatorUsers::OperatorId)
                        .to(Operators::Table, Operators::Id)
                        .on_delete(ForeignKeyAction::Restrict),
                )
                .to_owned(),
        )
        .await?;
        m.create_table(
            Table::create()
                .table(ConsoleSessions::Table)
                .col(string(ConsoleSessions::TokenHash).primary_key())
                .col(string(ConsoleSessions::UserId))
                .col(string(ConsoleSessions::CsrfToken))
                .col(timestamp_with_time_zone(ConsoleSessions::CreatedAt))
                .col(timestamp_with_time_zone(ConsoleSessions::ExpiresAt))
                .foreign_key(
                    ForeignKey::create()
                        .from(ConsoleSessions::Table, ConsoleSessions::UserId)
                        .to(OperatorUsers::Table, OperatorUsers::Id)
                        .on_delete(ForeignKeyAction::Cascade),
                )
                .to_owned(),
        )
        .await?;
        m.create_table(
            Table::create()
                .table(AuditLog::Table)
                .col(string(AuditLog::Id).primary_key())
                .col(string(AuditLog::OperatorId))
                .col(string(AuditLog::Actor))
                .col(string(AuditLog::Action))
                .col(string(AuditLog::Subject))
                .col(text_null(AuditLog::Before))
                .col(text_null(AuditLog::After))
                .col(timestamp_with_time_zone(AuditLog::At))
                .foreign_key(
                    ForeignKey::create()
                        .from(AuditLog::Table, AuditLog::OperatorId)
                        .to(Operators::Table, Operators::Id)
                        .on_delete(ForeignKeyAction::Restrict),
                )
                .to_owned(),
        )
        .await?;
        m.create_index(
            Index::create()
                .name("idx_audit_log_operator")
                .table(AuditLog::Table)
                .col(AuditLog::OperatorId)
                .col(AuditLog::At)
                .to_owned(),
        )
        .await
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        for table in [
            AuditLog::Table.into_iden(),
            ConsoleSessions::Table.into_iden(),
            OperatorUsers::Table.into_iden(),
        ] {
            m.drop_table(Table::drop().table(table).to_owned()).await?;
        }
        Ok(())
    }
}

#[derive(DeriveIden, Clone, Copy)]
enum Operators {
    Table,
    Id,
}

#[derive(DeriveIden, Clone, Copy)]
enum OperatorUsers {
    Table,
    Id,
    OperatorId,
    Email,
    PasswordHash,
    Role,
    FailedAttempts,
    LockedUntil,
    CreatedAt,
    LastSignInAt,
}

#[derive(DeriveIden, Clone, Copy)]
enum ConsoleSessions {
    Table,
    TokenHash,
    UserId,
    CsrfToken,
    CreatedAt,
    ExpiresAt,
}

#[derive(DeriveIden, Clone, Copy)]
enum AuditLog {
    Table,
    Id,
    OperatorId,
    Actor,
    Action,
    Subject,
    Before,
    After,
    At,
}
