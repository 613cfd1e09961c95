//! A fresh start on an empty database has a demo to play with; a restart does not duplicate it.

use sea_orm::{EntityTrait, PaginatorTrait};
use surclass::store::entities::{booking, lot, operator};

use crate::support::{Store, spawn_app_with};

async fn demo_start(store: Store) {
    let Some(app) = spawn_app_with(store, |s| s.no_demo = false).await else {
        return;
    };
    assert_eq!(operator::Entity::find().count(&app.db).await.unwrap(), 3);
    let lots = lot::Entity::find().all(&app.db).await.unwrap();
    assert!(lots.len() >= 3);
    let now = chrono::Utc::now();
    for l in &lots {
        assert_eq!(l.status, "open");
        assert!(
            l.closes_at > now && l.closes_at < now + chrono::Duration::hours(12),
            "closes within hours"
        );
        assert!(l.reserve_minor <= l.maximum_minor);
    }
    assert!(booking::Entity::find().count(&app.db).await.unwrap() >= 6);
    // Loading again only adds keys, never duplicate operators or bookings.
    let again = surclass::demo::load_if_empty(&app.db).await.unwrap();
    assert!(again.is_none());
    let summary = surclass::demo::load(&app.db).await.unwrap();
    assert_eq!(summary.operator_keys.len(), 3);
    assert_eq!(operator::Entity::find().count(&app.db).await.unwrap(), 3);
    // Each demo operator has a console admin whose password, printed in the banner, works;
    // loading again gives a fresh one and the old one stops working.
    assert_eq!(summary.console_users.len(), 3);
    let (_, email, password) = &summary.console_users[0];
    assert_eq!(email, "admin@aurora-air.example");
    let user = surclass::services::operator_users::sign_in(&app.db, email, password, now)
        .await
        .expect("the printed password signs in");
    assert_eq!(user.role, "admin");
    let fresh = surclass::demo::load(&app.db).await.unwrap();
    assert!(
        surclass::services::operator_users::sign_in(&app.db, email, password, now)
            .await
            .is_err()
    );
    assert!(
        surclass::services::operator_users::sign_in(&app.db, email, &fresh.console_users[0].2, now)
            .await
            .is_ok()
    );
}

#[tokio::test]
async fn an_empty_database_gets_the_demo_on_sqlite() {
    demo_start(Store::Sqlite).await;
}

#[tokio::test]
async fn an_empty_database_gets_the_demo_on_postgres() {
    demo_start(Store::Postgres).await;
}
