//! Demo data: one airline, one hotel, one car-rental firm, open lots closing in the next
//! hours and bookings with known references, so a fresh `cargo run` has something to bid on.

use chrono::{DateTime, Duration, NaiveDate, Utc};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, DbErr, EntityTrait, PaginatorTrait, QueryFilter, Set,
};

use crate::domain::identity::{last_name_key, reference_key};
use crate::ids;
use crate::services::operator_users;
use crate::store::api_keys::{self, Scope};
use crate::store::entities::{booking, booking_lot, lot, operator};
use crate::store::{Db, write_txn};

/// What a newcomer needs to try the demo.
#[derive(Debug, Clone)]
pub struct DemoSummary {
    pub bookings: Vec<(String, String)>,
    pub operator_keys: Vec<(String, String)>,
    /// (operator, email, password) of each demo operator's console admin, fresh on each load.
    pub console_users: Vec<(String, String, String)>,
}

struct OperatorSpec {
    slug: &'static str,
    name: &'static str,
    kind: &'static str,
    support: &'static str,
    lots: &'static [LotSpec],
    bookings: &'static [(&'static str, &'static str, i32, i32)],
}

struct LotSpec {
    resource_kind: &'static str,
    resource: &'static str,
    title: &'static str,
    from: &'static str,
    to: &'static str,
    rank: i32,
    capacity: i32,
    currency: &'static str,
    reserve: i64,
    maximum: i64,
    closes_in_hours: i64,
    time_zone: &'static str,
}

const OPERATORS: &[OperatorSpec] = &[
    OperatorSpec {
        slug: "aurora-air",
        name: "Aurora Airways",
        kind: "airline",
        support: "upgrades@aurora-air.example",
        lots: &[
            LotSpec {
                resource_kind: "seat",
                resource: "AU101",
                title: "Paris CDG → New York JFK",
                from: "economy",
                to: "premium_economy",
                rank: 1,
                capacity: 6,
                currency: "EUR",
                reserve: 9000,
                maximum: 60000,
                closes_in_hours: 2,
                time_zone: "Europe/Paris",
            },
            LotSpec {
                resource_kind: "seat",
                resource: "AU101",
                title: "Paris CDG → New York JFK",
                from: "economy",
                to: "business",
                rank: 2,
                capacity: 4,
                currency: "EUR",
                reserve: 25000,
                maximum: 150000,
                closes_in_hours: 2,
                time_zone: "Europe/Paris",
            },
        ],
        bookings: &[
            ("AU7K2P", "Müller", 2, 1),
            ("AU4QX9", "O'Neil", 1, 2),
            ("AU3ZT5", "Dupont", 3, 0),
        ],
    },
    OperatorSpec {
        slug: "hotel-belvedere",
        name: "Hôtel Belvédère Lyon",
        kind: "hotel",
        support: "reception@belvedere.example",
        lots: &[LotSpec {
            resource_kind: "room",
            resource: "LYS-BELV",
            title: "One night, Saturday",
            from: "standard",
            to: "junior_suite",
            rank: 1,
            capacity: 2,
            currency: "EUR",
            reserve: 4000,
            maximum: 25000,
            closes_in_hours: 4,
            time_zone: "Europe/Paris",
        }],
        bookings: &[("HB-20417", "Martin", 2, 0), ("HB-20418", "García", 1, 1)],
    },
    OperatorSpec {
        slug: "cabrio-rent",
        name: "Cabrio Rent Nice",
        kind: "car_rental",
        support: "help@cabrio-rent.example",
        lots: &[LotSpec {
            resource_kind: "car",
            resource: "NCE-AIRPORT",
            title: "Nice airport, 3 days",
            from: "compact",
            to: "convertible",
            rank: 1,
            capacity: 3,
            currency: "EUR",
            reserve: 2000,
            maximum: 12000,
            closes_in_hours: 6,
            time_zone: "Europe/Paris",
        }],
        bookings: &[("CR9001", "Rossi", 1, 0)],
    },
];

/// Loads the demo when the database has no operator yet; returns `None` otherwise.
pub async fn load_if_empty(db: &Db) -> Result<Option<DemoSummary>, DbErr> {
    if operator::Entity::find().count(db).await? > 0 {
        return Ok(None);
    }
    load(db).await.map(Some)
}

/// Creates whatever of the demo is missing (by operator slug and booking reference) and a
/// fresh operator API key per demo operator. Safe to run again.
pub async fn load(db: &Db) -> Result<DemoSummary, DbErr> {
    let now = Utc::now();
    let txn = write_txn(db).await?;
    let mut summary = DemoSummary {
        bookings: vec![],
        operator_keys: vec![],
        console_users: vec![],
    };
    for spec in OPERATORS {
        let op = match operator::Entity::find()
            .filter(operator::Column::Slug.eq(spec.slug))
            .one(&txn)
            .await?
        {
            Some(op) => op,
            None => create_operator(&txn, spec, now).await?,
        };
        let (_, secret) = api_keys::issue(&txn, &op.id, Scope::Operator, "demo").await?;
        summary.operator_keys.push((spec.name.to_owned(), secret));
        let email = format!("admin@{}.example", spec.slug);
        let password = operator_users::reset_demo_admin(&txn, &op.id, &email).await?;
        summary
            .console_users
            .push((spec.name.to_owned(), email, password));
        for &(reference, last_name, _, _) in spec.bookings {
            summary
                .bookings
                .push((reference.to_owned(), last_name.to_owned()));
        }
    }
    txn.commit().await?;
    Ok(summary)
}

async fn create_operator(
    txn: &sea_orm::DatabaseTransaction,
    spec: &OperatorSpec,
    now: DateTime<Utc>,
) -> Result<operator::Model, DbErr> {
    let op = operator::ActiveModel {
        id: Set(ids::new_id("op")),
        slug: Set(spec.slug.to_owned()),
        name: Set(spec.name.to_owned()),
        kind: Set(spec.kind.to_owned()),
        support_email: Set(spec.support.to_owned()),
        created_at: Set(now),
    }
    .insert(txn)
    .await?;
    let service_date: NaiveDate = (now + Duration::days(1)).date_naive();
    let mut lot_ids = Vec::new();
    for l in spec.lots {
        let lot = lot::ActiveModel {
            id: Set(ids::new_id("lot")),
            operator_id: Set(op.id.clone()),
            resource_kind: Set(l.resource_kind.to_owned()),
            resource: Set(l.resource.to_owned()),
            service_date: Set(service_date),
            title: Set(l.title.to_owned()),
            from_class: Set(l.from.to_owned()),
            to_class: Set(l.to.to_owned()),
            class_rank: Set(l.rank),
            capacity: Set(l.capacity),
            entitlement_units: Set(0),
            currency: Set(l.currency.to_owned()),
            reserve_minor: Set(l.reserve),
            maximum_minor: Set(l.maximum),
            upgrade_now_minor: Set(None),
            units_sold_now: Set(0),
            taxes_included: Set(true),
            opens_at: Set(now),
            closes_at: Set(now + Duration::hours(l.closes_in_hours)),
            time_zone: Set(l.time_zone.to_owned()),
            award_policy: Set("priority".to_owned()),
            tier_weight_pct: Set(0),
            payment_mode: Set("hold".to_owned()),
            payment_grace_seconds: Set(600),
            review_required: Set(false),
            chained_capacity: Set(false),
            status: Set("open".to_owned()),
            version: Set(0),
            created_at: Set(now),
            updated_at: Set(now),
        }
        .insert(txn)
        .await?;
        lot_ids.push(lot.id);
    }
    for &(reference, last_name, party, tier) in spec.bookings {
        let booking = booking::ActiveModel {
            id: Set(ids::new_id("bkg")),
            operator_id: Set(op.id.clone()),
            reference: Set(reference.to_owned()),
            reference_key: Set(reference_key(reference)),
            last_name: Set(last_name.to_owned()),
            last_name_key: Set(last_name_key(last_name)),
            party_size: Set(party),
            email: Set(Some(format!(
                "{}@traveller.example",
                last_name_key(last_name).to_lowercase()
            ))),
            phone: Set(None),
            language: Set(if spec.kind == "airline" { "en" } else { "fr" }.to_owned()),
            loyalty_tier: Set(tier),
            created_at: Set(now),
            updated_at: Set(now),
            erased_at: Set(None),
        }
        .insert(txn)
        .await?;
        for lot_id in &lot_ids {
            booking_lot::ActiveModel {
                booking_id: Set(booking.id.clone()),
                lot_id: Set(lot_id.clone()),
            }
            .insert(txn)
            .await?;
        }
    }
    Ok(op)
}
