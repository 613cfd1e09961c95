//! The core tables. Runs on SQLite and PostgreSQL alike, so:
//! - money is integer minor units (`*_minor`, BIGINT) beside an ISO 4217 `currency`;
//! - timestamps are UTC (`timestamp with time zone`);
//! - enums are short strings, foreign keys are declared in `CREATE TABLE` (SQLite cannot add
//!   them later), and every later change is one alteration per statement.
//!
//! Public ids are text ("lot_…", "bid_…"): the time they were made, then random characters
//! (`src/ids.rs`), never a sequence, which would leak bid counts.

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.create_table(
            Table::create()
                .table(Operators::Table)
                .col(string(Operators::Id).primary_key())
                .col(string_uniq(Operators::Slug))
                .col(text(Operators::Name))
                .col(string(Operators::Kind))
                .col(text(Operators::SupportEmail))
                .col(timestamp_with_time_zone(Operators::CreatedAt))
                .to_owned(),
        )
        .await?;

        m.create_table(
            Table::create()
                .table(ApiKeys::Table)
                .col(string(ApiKeys::Id).primary_key())
                .col(string(ApiKeys::OperatorId))
                .col(string(ApiKeys::Scope))
                .col(text(ApiKeys::Name))
                .col(string(ApiKeys::Prefix))
                .col(string_uniq(ApiKeys::SecretHash))
                .col(timestamp_with_time_zone(ApiKeys::CreatedAt))
                .col(timestamp_with_time_zone_null(ApiKeys::RevokedAt))
                .col(timestamp_with_time_zone_null(ApiKeys::LastUsedAt))
                .foreign_key(&mut fk(
                    ApiKeys::Table,
                    ApiKeys::OperatorId,
                    Operators::Table,
                    Operators::Id,
                ))
                .to_owned(),
        )
        .await?;

        m.create_table(
            Table::create()
                .table(Lots::Table)
                .col(string(Lots::Id).primary_key())
                .col(string(Lots::OperatorId))
                .col(string(Lots::ResourceKind))
                .col(string(Lots::Resource))
                .col(date(Lots::ServiceDate))
                .col(text(Lots::Title))
                .col(string(Lots::FromClass))
                .col(string(Lots::ToClass))
                .col(integer(Lots::ClassRank).default(0))
                .col(integer(Lots::Capacity))
                .col(integer(Lots::EntitlementUnits).default(0))
                .col(string_len(Lots::Currency, 3))
                .col(big_integer(Lots::ReserveMinor))
                .col(big_integer(Lots::MaximumMinor))
                .col(big_integer_null(Lots::UpgradeNowMinor))
                // Units sold at the "upgrade now" price; they clear before the auction.
                .col(integer(Lots::UnitsSoldNow).default(0))
                .col(boolean(Lots::TaxesIncluded).default(true))
                .col(timestamp_with_time_zone(Lots::OpensAt))
                .col(timestamp_with_time_zone(Lots::ClosesAt))
                .col(string(Lots::TimeZone))
                .col(string(Lots::AwardPolicy))
                .col(integer(Lots::TierWeightPct).default(0))
                .col(string(Lots::PaymentMode))
                .col(integer(Lots::PaymentGraceSeconds).default(600))
                .col(boolean(Lots::ReviewRequired).default(false))
                .col(boolean(Lots::ChainedCapacity).default(false))
                .col(string(Lots::Status))
                .col(integer(Lots::Version).default(0))
                .col(timestamp_with_time_zone(Lots::CreatedAt))
                .col(timestamp_with_time_zone(Lots::UpdatedAt))
                .foreign_key(&mut fk(
                    Lots::Table,
                    Lots::OperatorId,
                    Operators::Table,
                    Operators::Id,
                ))
                .to_owned(),
        )
        .await?;
        index(
            m,
            Lots::Table,
            "idx_lots_operator",
            &[Lots::OperatorId, Lots::ClosesAt],
        )
        .await?;
        index(
            m,
            Lots::Table,
            "idx_lots_due",
            &[Lots::Status, Lots::ClosesAt],
        )
        .await?;
        index(
            m,
            Lots::Table,
            "idx_lots_resource",
            &[Lots::OperatorId, Lots::Resource],
        )
        .await?;

        m.create_table(
            Table::create()
                .table(Bookings::Table)
                .col(string(Bookings::Id).primary_key())
                .col(string(Bookings::OperatorId))
                .col(string(Bookings::Reference))
                .col(string(Bookings::ReferenceKey))
                .col(text(Bookings::LastName))
                .col(string(Bookings::LastNameKey))
                .col(integer(Bookings::PartySize))
                .col(text_null(Bookings::Email))
                .col(text_null(Bookings::Phone))
                .col(string_len(Bookings::Language, 8).default("en"))
                .col(integer(Bookings::LoyaltyTier).default(0))
                .col(timestamp_with_time_zone(Bookings::CreatedAt))
                .col(timestamp_with_time_zone(Bookings::UpdatedAt))
                .col(timestamp_with_time_zone_null(Bookings::ErasedAt))
                .foreign_key(&mut fk(
                    Bookings::Table,
                    Bookings::OperatorId,
                    Operators::Table,
                    Operators::Id,
                ))
                .to_owned(),
        )
        .await?;
        unique(
            m,
            Bookings::Table,
            "uq_bookings_reference",
            &[Bookings::OperatorId, Bookings::ReferenceKey],
        )
        .await?;
        index(
            m,
            Bookings::Table,
            "idx_bookings_lookup",
            &[Bookings::ReferenceKey, Bookings::LastNameKey],
        )
        .await?;

        m.create_table(
            Table::create()
                .table(BookingLots::Table)
                .col(string(BookingLots::BookingId))
                .col(string(BookingLots::LotId))
                .primary_key(
                    Index::create()
                        .col(BookingLots::BookingId)
                        .col(BookingLots::LotId),
                )
                .foreign_key(&mut fk(
                    BookingLots::Table,
                    BookingLots::BookingId,
                    Bookings::Table,
                    Bookings::Id,
                ))
                .foreign_key(&mut fk(
                    BookingLots::Table,
                    BookingLots::LotId,
                    Lots::Table,
                    Lots::Id,
                ))
                .to_owned(),
        )
        .await?;
        index(
            m,
            BookingLots::Table,
            "idx_booking_lots_lot",
            &[BookingLots::LotId],
        )
        .await?;

        m.create_table(
            Table::create()
                .table(Bids::Table)
                .col(string(Bids::Id).primary_key())
                .col(string(Bids::LotId))
                .col(string(Bids::BookingId))
                .col(big_integer(Bids::AmountMinor))
                .col(string_len(Bids::Currency, 3))
                .col(integer(Bids::Units))
                .col(boolean(Bids::PartialOk).default(false))
                .col(integer(Bids::Tier).default(0))
                .col(integer_null(Bids::Preference))
                .col(string(Bids::Status))
                .col(text_null(Bids::PaymentMethodRef))
                .col(text_null(Bids::PaymentRef))
                // Charge-on-award lots: the saved card (provider customer and payment method).
                .col(text_null(Bids::SavedCard))
                // Filled by the award: what the bid won (units may be fewer for a partial
                // party) at what price per unit, or why it did not; its place on standby.
                .col(integer_null(Bids::AwardUnits))
                .col(big_integer_null(Bids::AwardPriceMinor))
                .col(string_null(Bids::OutcomeReason))
                .col(integer_null(Bids::StandbyRank))
                .col(timestamp_with_time_zone(Bids::SubmittedAt))
                .col(timestamp_with_time_zone(Bids::CreatedAt))
                .col(timestamp_with_time_zone(Bids::UpdatedAt))
                .col(integer(Bids::Version).default(0))
                .foreign_key(&mut fk(Bids::Table, Bids::LotId, Lots::Table, Lots::Id))
                .foreign_key(&mut fk(
                    Bids::Table,
                    Bids::BookingId,
                    Bookings::Table,
                    Bookings::Id,
                ))
                .to_owned(),
        )
        .await?;
        // One bid per booking per lot: a change is an update of that bid, with an event.
        unique(
            m,
            Bids::Table,
            "uq_bids_lot_booking",
            &[Bids::LotId, Bids::BookingId],
        )
        .await?;
        index(
            m,
            Bids::Table,
            "idx_bids_lot_status",
            &[Bids::LotId, Bids::Status],
        )
        .await?;
        index(m, Bids::Table, "idx_bids_booking", &[Bids::BookingId]).await?;

        m.create_table(
            Table::create()
                .table(BidEvents::Table)
                .col(big_pk_auto(BidEvents::Id))
                .col(string(BidEvents::BidId))
                .col(string(BidEvents::Kind))
                .col(big_integer_null(BidEvents::AmountMinor))
                .col(text_null(BidEvents::Detail))
                .col(timestamp_with_time_zone(BidEvents::At))
                .foreign_key(&mut fk(
                    BidEvents::Table,
                    BidEvents::BidId,
                    Bids::Table,
                    Bids::Id,
                ))
                .to_owned(),
        )
        .await?;
        index(
            m,
            BidEvents::Table,
            "idx_bid_events_bid",
            &[BidEvents::BidId, BidEvents::Id],
        )
        .await?;

        // Primary key on the lot: a lot can be awarded once, whatever races or crashes.
        m.create_table(
            Table::create()
                .table(Awards::Table)
                .col(string(Awards::LotId).primary_key())
                .col(string(Awards::AlgorithmVersion))
                .col(string(Awards::Fingerprint))
                .col(text(Awards::Plan))
                .col(big_integer(Awards::RevenueMinor))
                .col(string_len(Awards::Currency, 3))
                .col(string(Awards::Status))
                .col(timestamp_with_time_zone(Awards::CreatedAt))
                .col(timestamp_with_time_zone_null(Awards::ApprovedAt))
                .foreign_key(&mut fk(Awards::Table, Awards::LotId, Lots::Table, Lots::Id))
                .to_owned(),
        )
        .await?;

        m.create_table(
            Table::create()
                .table(Payments::Table)
                .col(string(Payments::Id).primary_key())
                .col(string(Payments::BidId))
                .col(string(Payments::Kind))
                .col(big_integer(Payments::AmountMinor))
                .col(string_len(Payments::Currency, 3))
                .col(string(Payments::Status))
                .col(string(Payments::Provider))
                .col(text_null(Payments::ProviderRef))
                .col(string_uniq(Payments::IdempotencyKey))
                .col(integer(Payments::Attempt).default(1))
                .col(text_null(Payments::Error))
                .col(timestamp_with_time_zone(Payments::CreatedAt))
                .col(timestamp_with_time_zone(Payments::UpdatedAt))
                .foreign_key(&mut fk(
                    Payments::Table,
                    Payments::BidId,
                    Bids::Table,
                    Bids::Id,
                ))
                .to_owned(),
        )
        .await?;
        index(m, Payments::Table, "idx_payments_bid", &[Payments::BidId]).await?;

        m.create_table(
            Table::create()
                .table(Outbox::Table)
                .col(big_pk_auto(Outbox::Id))
                .col(string_null(Outbox::OperatorId))
                .col(string(Outbox::Channel))
                .col(string(Outbox::Topic))
                .col(text(Outbox::Payload))
                .col(string(Outbox::Status))
                .col(integer(Outbox::Attempts).default(0))
                .col(timestamp_with_time_zone(Outbox::NextAttemptAt))
                .col(text_null(Outbox::LastError))
                .col(timestamp_with_time_zone(Outbox::CreatedAt))
                .col(timestamp_with_time_zone_null(Outbox::SentAt))
                .to_owned(),
        )
        .await?;
        index(
            m,
            Outbox::Table,
            "idx_outbox_due",
            &[Outbox::Status, Outbox::NextAttemptAt],
        )
        .await?;

        m.create_table(
            Table::create()
                .table(Jobs::Table)
                .col(big_pk_auto(Jobs::Id))
                .col(string(Jobs::Kind))
                .col(string_uniq(Jobs::DedupeKey))
                .col(text(Jobs::Payload))
                .col(string(Jobs::Status))
                .col(timestamp_with_time_zone(Jobs::RunAt))
                .col(integer(Jobs::Attempts).default(0))
                .col(string_null(Jobs::LockedBy))
                .col(timestamp_with_time_zone_null(Jobs::LockedUntil))
                .col(text_null(Jobs::LastError))
                .col(timestamp_with_time_zone(Jobs::CreatedAt))
                .col(timestamp_with_time_zone(Jobs::UpdatedAt))
                .to_owned(),
        )
        .await?;
        index(m, Jobs::Table, "idx_jobs_due", &[Jobs::Status, Jobs::RunAt]).await?;

        m.create_table(
            Table::create()
                .table(IdempotencyKeys::Table)
                .col(string(IdempotencyKeys::Principal))
                .col(string(IdempotencyKeys::Key))
                .col(string(IdempotencyKeys::RequestHash))
                .col(integer(IdempotencyKeys::ResponseStatus))
                .col(string(IdempotencyKeys::ResponseContentType))
                .col(text(IdempotencyKeys::ResponseBody))
                .col(timestamp_with_time_zone(IdempotencyKeys::CreatedAt))
                .primary_key(
                    Index::create()
                        .col(IdempotencyKeys::Principal)
                        .col(IdempotencyKeys::Key),
                )
                .to_owned(),
        )
        .await?;
        // Server-wide values every node must share, such as the session-signing secret.
        m.create_table(
            Table::create()
                .table(Settings::Table)
                .col(string(Settings::Name).primary_key())
                .col(text(Settings::Value))
                .to_owned(),
        )
        .await?;
        Ok(())
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        for table in [
            Settings::Table.into_iden(),
            IdempotencyKeys::Table.into_iden(),
            Jobs::Table.into_iden(),
            Outbox::Table.into_iden(),
            Payments::Table.into_iden(),
            Awards::Table.into_iden(),
            BidEvents::Table.into_iden(),
            Bids::Table.into_iden(),
            BookingLots::Table.into_iden(),
            Bookings::Table.into_iden(),
            Lots::Table.into_iden(),
            ApiKeys::Table.into_iden(),
            Operators::Table.into_iden(),
        ] {
            m.drop_table(Table::drop().table(table).to_owned()).await?;
        }
        Ok(())
    }
}

fn fk<T: IntoIden + Copy, C: IntoIden, RT: IntoIden, RC: IntoIden>(
    table: T,
    col: C,
    ref_table: RT,
    ref_col: RC,
) -> ForeignKeyCreateStatement {
    ForeignKey::create()
        .from(table, col)
        .to(ref_table, ref_col)
        .on_delete(ForeignKeyAction::Restrict)
        .to_owned()
}

async fn index<T: IntoIden + Copy + 'static, C: IntoIden + Copy + 'static>(
    m: &SchemaManager<'_>,
    table: T,
    name: &str,
    cols: &[C],
) -> Result<(), DbErr> {
    let mut stmt = Index::create();
    stmt.name(name).table(table);
    for &c in cols {
        stmt.col(c);
    }
    m.create_index(stmt).await
}

async fn unique<T: IntoIden + Copy + 'static, C: IntoIden + Copy + 'static>(
    m: &SchemaManager<'_>,
    table: T,
    name: &str,
    cols: &[C],
) -> Result<(), DbErr> {
    let mut stmt = Index::create();
    stmt.name(name).table(table).unique();
    for &c in cols {
        stmt.col(c);
    }
    m.create_index(stmt).await
}

#[derive(DeriveIden, Clone, Copy)]
enum Operators {
    Table,
    Id,
    Slug,
    Name,
    Kind,
    SupportEmail,
    CreatedAt,
}

#[derive(DeriveIden, Clone, Copy)]
enum ApiKeys {
    Table,
    Id,
    OperatorId,
    Scope,
    Name,
    Prefix,
    SecretHash,
    CreatedAt,
    RevokedAt,
    LastUsedAt,
}

#[derive(DeriveIden, Clone, Copy)]
enum Lots {
    Table,
    Id,
    OperatorId,
    ResourceKind,
    Resource,
    ServiceDate,
    Title,
    FromClass,
    ToClass,
    ClassRank,
    Capacity,
    EntitlementUnits,
    Currency,
    ReserveMinor,
    MaximumMinor,
    UpgradeNowMinor,
    UnitsSoldNow,
    TaxesIncluded,
    OpensAt,
    ClosesAt,
    TimeZone,
    AwardPolicy,
    TierWeightPct,
    PaymentMode,
    PaymentGraceSeconds,
    ReviewRequired,
    ChainedCapacity,
    Status,
    Version,
    CreatedAt,
    UpdatedAt,
}

#[derive(DeriveIden, Clone, Copy)]
enum Bookings {
    Table,
    Id,
    OperatorId,
    Reference,
    ReferenceKey,
    LastName,
    LastNameKey,
    PartySize,
    Email,
    Phone,
    Language,
    LoyaltyTier,
    CreatedAt,
    UpdatedAt,
    ErasedAt,
}

#[derive(DeriveIden, Clone, Copy)]
enum BookingLots {
    Table,
    BookingId,
    LotId,
}

#[derive(DeriveIden, Clone, Copy)]
enum Bids {
    Table,
    Id,
    LotId,
    BookingId,
    AmountMinor,
    Currency,
    Units,
    PartialOk,
    Tier,
    Preference,
    Status,
    PaymentMethodRef,
    PaymentRef,
    SavedCard,
    AwardUnits,
    AwardPriceMinor,
    OutcomeReason,
    StandbyRank,
    SubmittedAt,
    CreatedAt,
    UpdatedAt,
    Version,
}

#[derive(DeriveIden, Clone, Copy)]
enum BidEvents {
    Table,
    Id,
    BidId,
    Kind,
    AmountMinor,
    Detail,
    At,
}

#[derive(DeriveIden, Clone, Copy)]
enum Awards {
    Table,
    LotId,
    AlgorithmVersion,
    Fingerprint,
    Plan,
    RevenueMinor,
    Currency,
    Status,
    CreatedAt,
    ApprovedAt,
}

#[derive(DeriveIden, Clone, Copy)]
enum Payments {
    Table,
    Id,
    BidId,
    Kind,
    AmountMinor,
    Currency,
    Status,
    Provider,
    ProviderRef,
    IdempotencyKey,
    Attempt,
    Error,
    CreatedAt,
    UpdatedAt,
}

#[derive(DeriveIden, Clone, Copy)]
enum Outbox {
    Table,
    Id,
    OperatorId,
    Channel,
    Topic,
    Payload,
    Status,
    Attempts,
    NextAttemptAt,
    LastError,
    CreatedAt,
    SentAt,
}

#[derive(DeriveIden, Clone, Copy)]
enum Jobs {
    Table,
    Id,
    Kind,
    DedupeKey,
    Payload,
    Status,
    RunAt,
    Attempts,
    LockedBy,
    LockedUntil,
    LastError,
    CreatedAt,
    UpdatedAt,
}

#[derive(DeriveIden, Clone, Copy)]
enum IdempotencyKeys {
    Table,
    Principal,
    Key,
    RequestHash,
    ResponseStatus,
    ResponseContentType,
    ResponseBody,
    CreatedAt,
}

#[derive(DeriveIden, Clone, Copy)]
enum Settings {
    Table,
    Name,
    Value,
}
