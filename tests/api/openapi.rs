//! `openapi.yaml` in the repository is exactly what the server describes itself as.

use crate::support::{Store, spawn_app};

#[tokio::test]
async fn committed_openapi_yaml_matches_what_the_server_serves() {
    let app = spawn_app(Store::Sqlite).await.unwrap();
    let res = app.get("/openapi.yaml").await;
    assert_eq!(res.status(), 200);
    let served = res.text().await.unwrap();
    let committed = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/openapi.yaml"))
        .expect("openapi.yaml at the repository root");
    assert!(
        served == committed,
        "openapi.yaml is out of date: run `cargo run -- openapi > openapi.yaml`"
    );
}
