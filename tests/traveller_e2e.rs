//! The traveller pages in a real browser: starts the server, sets up an operator, a lot and
//! two bookings, and runs `node --test tests/e2e/traveller.spec.mjs` (Debian's Chromium via
//! playwright-core) twice: the bidding journey, then, after this harness closes the lot and
//! runs the award, the outcome. Screenshots go to `tests/e2e/screenshots/traveller*/`.
//! Then the card steps with the Stripe gateway on the emulator (`tests/e2e/stripe.spec.mjs`,
//! Stripe.js replaced by a stand-in, since CI cannot reach js.stripe.com).
//!
//! Skipped with a notice unless SURCLASS_TEST_BROWSER is set (`.ci/run` sets it) or CI=true;
//! under CI a missing Chromium or `tests/e2e/node_modules` is a failure.

#[allow(dead_code, unused_macros)]
#[path = "api/support.rs"]
mod support;

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::json;
use support::{Store, TestApp, spawn_app, spawn_app_on_stripe_with};

fn browser_ready() -> Option<PathBuf> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let ci = std::env::var("CI").is_ok_and(|v| v == "true" || v == "1");
    let wanted = std::env::var("SURCLASS_TEST_BROWSER").ok();
    if wanted.is_none() && !ci {
        eprintln!(
            "skipped: browser test (set SURCLASS_TEST_BROWSER=/usr/bin/chromium and run `npm ci` in tests/e2e to run it)"
        );
        return None;
    }
    let chromium = wanted.unwrap_or_else(|| "/usr/bin/chromium".into());
    assert!(
        Path::new(&chromium).exists(),
        "Chromium not found at {chromium}: `apt-get install chromium` (.ci/run does)"
    );
    assert!(
        root.join("tests/e2e/node_modules/playwright-core").exists(),
        "tests/e2e/node_modules missing: run `npm ci` in tests/e2e (.ci/run does)"
    );
    Some(PathBuf::from(chromium))
}

struct Journey {
    lot: String,
}

async fn set_up(app: &TestApp) -> Journey {
    let op = app.operator("aurora").await;
    let lot = app
        .open_lot(
            &op,
            json!({"capacity": 2, "reserve": "100.00", "maximum": "1000.00",
                   "title": "Paris CDG → New York JFK"}),
        )
        .await;
    app.booking(&op, "AU7K2P", "Müller", 2, &[&lot]).await;
    app.booking(&op, "AU4QX9", "O'Neil", 1, &[&lot]).await;
    // The other traveller bids through the API (a partner app, say); the pages show them
    // their outcome after the award.
    let other = app.sign_in("AU4QX9", "O'Neil").await;
    app.bid(&other, &lot, "150.00", "4242424242424242")
        .await
        .expect(201);
    Journey { lot }
}

async fn run_node(app: &TestApp, chromium: &Path, journey: &Journey, phase: &str) {
    run_spec(
        app,
        chromium,
        journey,
        "tests/e2e/traveller.spec.mjs",
        phase,
    )
    .await;
}

async fn run_spec(app: &TestApp, chromium: &Path, journey: &Journey, spec: &str, phase: &str) {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let mut command = Command::new("node");
    command
        .current_dir(&root)
        .args(["--test", "--test-reporter=spec", spec])
        .env("SURCLASS_E2E_BASE_URL", &app.address)
        .env(
            "SURCLASS_E2E_SCREENSHOTS",
            root.join("tests/e2e/screenshots"),
        )
        .env("SURCLASS_E2E_PHASE", phase)
        .env("SURCLASS_E2E_LOT", &journey.lot)
        .env("SURCLASS_E2E_WINNER_REF", "AU7K2P")
        .env("SURCLASS_E2E_WINNER_NAME", "Müller")
        .env("SURCLASS_E2E_LOSER_REF", "AU4QX9")
        .env("SURCLASS_E2E_LOSER_NAME", "O'Neil")
        .env("CHROMIUM_PATH", chromium);
    // The server runs on this test's runtime: wait for node off it.
    let output = tokio::task::spawn_blocking(move || command.output())
        .await
        .unwrap()
        .expect("node runs (install Node.js)");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    println!("{text}");
    assert!(
        output.status.success(),
        "browser phase `{phase}` failed:\n{text}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_traveller_bids_on_a_phone_and_sees_the_outcome() {
    let Some(chromium) = browser_ready() else {
        return;
    };
    let app = spawn_app(Store::Sqlite).await.expect("SQLite always runs");
    let journey = set_up(&app).await;

    run_node(&app, &chromium, &journey, "bidding").await;

    // The deadline passes and the award runs: charge the winner, release the other hold.
    app.close_now(&journey.lot).await;
    app.run_jobs().await;

    run_node(&app, &chromium, &journey, "outcome").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_stripe_a_card_is_asked_for_only_above_what_it_holds() {
    let Some(chromium) = browser_ready() else {
        return;
    };
    let Some(app) = spawn_app_on_stripe_with(|s| {
        s.stripe.stripe_publishable_key = Some("pk_test_surclass".into());
    })
    .await
    else {
        return;
    };
    let op = app.operator("aurora").await;
    let lot = app
        .open_lot(
            &op,
            json!({"capacity": 2, "reserve": "100.00", "maximum": "1000.00"}),
        )
        .await;
    app.booking(&op, "AU7K2P", "Müller", 2, &[&lot]).await;
    let journey = Journey { lot };
    run_spec(
        &app,
        &chromium,
        &journey,
        "tests/e2e/stripe.spec.mjs",
        "stripe",
    )
    .await;
}
