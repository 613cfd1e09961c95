//! The operator console in headless Chromium: starts the real server (SQLite), seeds an
//! operator with an admin, an open lot with bids placed through the traveller API, then runs
//! `node --test tests/e2e/console.spec.mjs` against it and fails when that fails.
//!
//! Needs Debian's Chromium and `npm ci` in tests/e2e (`.ci/run` does both and sets
//! SURCLASS_TEST_BROWSER). Without SURCLASS_TEST_BROWSER and CI it prints `skipped: …` and
//! passes; with CI=true a missing browser or node_modules is a failure.

#[path = "api/support.rs"]
#[allow(dead_code)]
mod support;

use std::io::Write;
use std::path::{Path, PathBuf};

use surclass::services::audit::Actor;
use surclass::services::operator_users::{self, Role};

const EMAIL: &str = "admin@aurora.example";
const PASSWORD: &str = "correct horse battery staple";

/// Chromium's path, or `None` (with a notice) when browser tests are not wanted here.
fn browser() -> Option<PathBuf> {
    let ci = std::env::var("CI").is_ok_and(|v| v == "true");
    let chromium = std::env::var("SURCLASS_TEST_BROWSER")
        .ok()
        .filter(|v| !v.is_empty());
    let e2e = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/e2e");
    match chromium {
        None if !ci => {
            let _ = writeln!(
                std::io::stderr(),
                "skipped: console browser test (set SURCLASS_TEST_BROWSER=/usr/bin/chromium and run `npm ci` in tests/e2e)"
            );
            None
        }
        chromium => {
            let path = PathBuf::from(chromium.unwrap_or_else(|| "/usr/bin/chromium".into()));
            assert!(
                path.exists(),
                "CI=true or SURCLASS_TEST_BROWSER set, but no Chromium at {}",
                path.display()
            );
            assert!(
                e2e.join("node_modules/playwright-core").exists(),
                "browser tests need `npm ci` in {}",
                e2e.display()
            );
            Some(path)
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_console_works_in_a_browser() {
    let Some(chromium) = browser() else { return };
    let app = support::spawn_app(support::Store::Sqlite).await.unwrap();
    let op = app.operator("aurora").await;
    operator_users::create(
        &app.db,
        &Actor::system(&op.id, "e2e"),
        EMAIL,
        PASSWORD,
        Role::Admin,
    )
    .await
    .expect("admin created");
    // A lot with bids placed by travellers through the traveller API.
    let lot = app
        .open_lot(
            &op,
            serde_json::json!({"title": "Paris CDG → New York JFK", "capacity": 2}),
        )
        .await;
    for (reference, name, party, amount) in [
        ("AB1234", "Muller", 2, "300.00"),
        ("CD5678", "Rossi", 1, "250.00"),
        ("EF9012", "Okafor", 1, "200.00"),
    ] {
        app.booking(&op, reference, name, party, &[&lot]).await;
        let token = app.sign_in(reference, name).await;
        app.bid(&token, &lot, amount, "4242 4242 4242 4242")
            .await
            .expect(201);
    }

    // A closed lot whose award waits for the operator's review.
    let review_lot = app
        .open_lot(
            &op,
            serde_json::json!({"title": "Lyon → Oslo", "capacity": 1, "review_required": true}),
        )
        .await;
    for (reference, name, amount) in [
        ("LM2468", "Lindqvist", "400.00"),
        ("NP1357", "Haddad", "300.00"),
    ] {
        app.booking(&op, reference, name, 1, &[&review_lot]).await;
        let token = app.sign_in(reference, name).await;
        app.bid(&token, &review_lot, amount, "4242 4242 4242 4242")
            .await
            .expect(201);
    }
    app.close_now(&review_lot).await;
    app.run_jobs().await;

    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let mut command = std::process::Command::new("node");
    command
        .current_dir(&root)
        .args(["--test", "tests/e2e/console.spec.mjs"])
        .env("SURCLASS_E2E_BASE_URL", &app.address)
        .env(
            "SURCLASS_E2E_SCREENSHOTS",
            root.join("tests/e2e/screenshots"),
        )
        .env("SURCLASS_E2E_EMAIL", EMAIL)
        .env("SURCLASS_E2E_PASSWORD", PASSWORD)
        .env("SURCLASS_E2E_LOT_ID", &lot)
        .env("SURCLASS_E2E_REVIEW_LOT_ID", &review_lot)
        .env("CHROMIUM_PATH", &chromium);
    // The server runs on this runtime's other threads while node drives the browser.
    let output = tokio::task::spawn_blocking(move || command.output())
        .await
        .unwrap()
        .expect("node runs (is Node.js installed?)");
    let _ = std::io::stderr().write_all(&output.stdout);
    let _ = std::io::stderr().write_all(&output.stderr);
    assert!(
        output.status.success(),
        "console.spec.mjs failed (its output is above)"
    );
}
