//! Operations can tell whether the service is alive, ready, and how it is doing.

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

store_tests!(
    liveness_answers_without_touching_the_database,
    readiness_checks_the_database_and_its_schema,
    readiness_fails_with_a_problem_when_the_database_is_gone,
    unknown_routes_get_a_problem_not_an_empty_page,
    metrics_count_requests_per_route_in_prometheus_format,
);
