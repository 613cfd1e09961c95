//! API keys are random, shown once, stored hashed and revocable.

use serde_json::json;

use crate::store_tests;
use crate::support::TestApp;

async fn a_key_is_shown_once_listed_without_its_secret_and_revocable(app: TestApp) {
    let op = app.operator("aurora").await;
    let created = app
        .post("/v1/api-keys")
        .key(&op.key)
        .json(&json!({"name": "revenue team", "scope": "operator"}))
        .send()
        .await
        .expect(201);
    let secret = created.body["secret"].as_str().unwrap().to_owned();
    let id = created.body["id"].as_str().unwrap().to_owned();
    assert!(secret.starts_with("sk_op_"));

    let list = app
        .read("/v1/api-keys")
        .key(&op.key)
        .send()
        .await
        .expect(200);
    assert!(
        !list.text.contains(&secret),
        "the secret is never shown again"
    );
    assert!(
        list.body["items"]
            .as_array()
            .unwrap()
            .iter()
            .any(|k| k["id"] == id.as_str())
    );

    app.read("/v1/lots").key(&secret).send().await.expect(200);
    app.delete(&format!("/v1/api-keys/{id}"))
        .key(&op.key)
        .send()
        .await
        .expect(200);
    app.read("/v1/lots").key(&secret).send().await.expect(401);

    let bad_scope = app
        .post("/v1/api-keys")
        .key(&op.key)
        .json(&json!({"name": "x", "scope": "root"}))
        .send()
        .await
        .expect(422);
    assert_eq!(bad_scope.body["field"], "scope");
}

async fn another_operators_key_cannot_be_revoked(app: TestApp) {
    let aurora = app.operator("aurora").await;
    let belvedere = app.operator("belvedere").await;
    let created = app
        .post("/v1/api-keys")
        .key(&aurora.key)
        .json(&json!({"name": "engine", "scope": "partner"}))
        .send()
        .await
        .expect(201);
    let id = created.body["id"].as_str().unwrap();
    app.delete(&format!("/v1/api-keys/{id}"))
        .key(&belvedere.key)
        .send()
        .await
        .expect(404);
    let secret = created.body["secret"].as_str().unwrap();
    app.post("/v1/partner/sessions")
        .key(secret)
        .json(&json!({"reference": "NOPE"}))
        .send()
        .await
        .expect(404);
}

store_tests!(
    a_key_is_shown_once_listed_without_its_secret_and_revocable,
    another_operators_key_cannot_be_revoked,
);
