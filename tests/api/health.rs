//! Operations can tell whether the service is alive, ready, and how it is doing.

use migration::{Migrator, MigratorTrait};
use sea_orm::{ConnectionTrait, DbBackend, Statement, TransactionTrait};

use crate::store_tests;
use crate::support::TestApp;

async fn liveness_answers_without_touching_the_database(app: TestApp) {
    let res = app.get("/healthz").await;
    assert_eq!(res.status(), 200);
    assert_eq!(
        res.json::<serde_json::Value>().await.unwrap()["status"],
        "ok"
    );
}

async fn readiness_checks_the_database_and_its_schema(app: TestApp) {
    let res = app.get("/readyz").await;
    assert_eq!(res.status(), 200);
    assert_eq!(
        res.json::<serde_json::Value>().await.unwrap()["status"],
        "ready"
    );
}

async fn readiness_fails_with_a_problem_when_the_database_is_gone(app: TestApp) {
    app.db.clone().close().await.unwrap();
    let res = app.get("/readyz").await;
    assert_eq!(res.status(), 503);
    assert_eq!(res.headers()["content-type"], "application/problem+json");
    let body: serde_json::Value = res.json().await.unwrap();
    assert_eq!(body["type"], "https://surclass.dev/problems/unavailable");
}

async fn unknown_routes_get_a_problem_not_an_empty_page(app: TestApp) {
    let res = app.get("/no/such/thing").await;
    assert_eq!(res.status(), 404);
    assert_eq!(res.headers()["content-type"], "application/problem+json");
    let body: serde_json::Value = res.json().await.unwrap();
    assert_eq!(body["status"], 404);
    assert!(body["detail"].as_str().unwrap().contains("/no/such/thing"));
}

async fn metrics_count_requests_per_route_in_prometheus_format(app: TestApp) {
    app.get("/healthz").await;
    app.get("/healthz").await;
    let res = app.get("/metrics").await;
    assert_eq!(res.status(), 200);
    assert!(
        res.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/plain")
    );
    let text = res.text().await.unwrap();
    assert!(
        text.contains(
            r#"surclass_http_requests_total{method="GET",route="/healthz",status="200"} 2"#
        ),
        "{text}"
    );
    assert!(text.contains("surclass_http_request_duration_seconds_bucket"));
}

/// A release rolled back takes its schema changes with it, all the way down, and applying the
/// migrations again gives the same schema as a fresh install; readiness says which is which.
async fn every_migration_rolls_back_and_forward_again_to_the_same_schema(app: TestApp) {
    let fresh = schema(&app).await;
    assert!(
        fresh.iter().any(|line| line.contains("bids")),
        "the schema is read: {fresh:?}"
    );

    // On one connection (see `store::migrate`).
    let one = app.db.begin().await.unwrap();
    Migrator::reset(&one)
        .await
        .expect("every migration rolls back");
    one.commit().await.unwrap();
    assert_eq!(
        schema(&app).await,
        Vec::<String>::new(),
        "nothing is left behind"
    );
    let res = app.get("/readyz").await;
    assert_eq!(res.status(), 503);
    let body: serde_json::Value = res.json().await.unwrap();
    assert!(
        body["detail"].as_str().unwrap().contains("pending"),
        "{body}"
    );

    surclass::store::migrate(&app.db)
        .await
        .expect("every migration applies again");
    assert_eq!(schema(&app).await, fresh);
    assert_eq!(app.get("/readyz").await.status(), 200);
}

/// The application's tables, columns, indexes and constraints, one line each, in a stable
/// order (the migrations' own bookkeeping table left out).
async fn schema(app: &TestApp) -> Vec<String> {
    let backend = app.db.get_database_backend();
    let queries: &[&str] = match backend {
        DbBackend::Sqlite => &[
            "SELECT type || ' ' || name || ': ' || coalesce(sql, '') AS line FROM sqlite_master \
             WHERE name NOT LIKE 'sqlite_%' AND tbl_name <> 'seaql_migrations' ORDER BY type, name",
        ],
        _ => &[
            "SELECT table_name || '.' || column_name || ' ' || data_type || ' ' || is_nullable \
             || ' ' || coalesce(column_default, '') AS line FROM information_schema.columns \
             WHERE table_schema = 'public' AND table_name <> 'seaql_migrations' \
             ORDER BY table_name, column_name",
            "SELECT indexname || ': ' || indexdef AS line FROM pg_indexes \
             WHERE schemaname = 'public' AND tablename <> 'seaql_migrations' ORDER BY indexname",
            "SELECT conrelid::regclass::text || ' ' || conname || ': ' || pg_get_constraintdef(oid) \
             AS line FROM pg_constraint WHERE connamespace = 'public'::regnamespace \
             AND conrelid::regclass::text <> 'seaql_migrations' ORDER BY 1",
        ],
    };
    let mut lines = Vec::new();
    for query in queries {
        for row in app
            .db
            .query_all_raw(Statement::from_string(backend, *query))
            .await
            .expect("the catalogue is readable")
        {
            lines.push(row.try_get::<String>("", "line").unwrap());
        }
    }
    lines
}

store_tests!(
    liveness_answers_without_touching_the_database,
    readiness_checks_the_database_and_its_schema,
    readiness_fails_with_a_problem_when_the_database_is_gone,
    unknown_routes_get_a_problem_not_an_empty_page,
    metrics_count_requests_per_route_in_prometheus_format,
    every_migration_rolls_back_and_forward_again_to_the_same_schema,
);
