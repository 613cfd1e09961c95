//! Abuse by a machine: schemathesis generates a few thousand requests from `openapi.yaml`
//! (fixed seed) against the real server with demo data, signed in as an operator, a partner
//! and a traveller in turn, and checks that no answer is a 5xx and every answer matches the
//! schema the document promises. Any failure fails this test and prints schemathesis' report.
//!
//! Needs the `schemathesis` program: `.ci/run` installs it and sets
//! `SURCLASS_TEST_SCHEMATHESIS` to its path. Without that variable the test says it skipped,
//! except under `CI=true`, where it fails.

use std::io::Write;
use std::process::Command;

use sea_orm::EntityTrait;
use surclass::app::Application;
use surclass::config::{Gateway, LogFormat, Settings};
use surclass::store::api_keys::{self, Scope};
use surclass::store::entities::operator;

const SEED: &str = "20261123";
/// Cases per operation and phase: about 5,300 requests over the three runs.
const MAX_EXAMPLES: &str = "100";

fn schemathesis() -> Option<String> {
    match std::env::var("SURCLASS_TEST_SCHEMATHESIS") {
        Ok(path) if !path.is_empty() => Some(path),
        _ if std::env::var("CI").is_ok_and(|v| v == "true") => panic!(
            "CI=true but SURCLASS_TEST_SCHEMATHESIS is not set: the schemathesis run is mandatory in CI"
        ),
        _ => {
            let _ = writeln!(
                std::io::stderr(),
                "skipped: schemathesis run (pip install schemathesis==4.32.5 as .ci/run does and set SURCLASS_TEST_SCHEMATHESIS to the program)"
            );
            None
        }
    }
}

/// One schemathesis run over the operations `filter` selects, with `token` as the caller.
fn run(program: &str, base: &str, token: &str, filter: &[&str]) -> (bool, String) {
    let spec = concat!(env!("CARGO_MANIFEST_DIR"), "/openapi.yaml");
    // schemathesis keeps a cache in its working directory: not in the clone.
    let scratch = tempfile::tempdir().expect("temp dir");
    let output = Command::new(program)
        .current_dir(scratch.path())
        .args(["run", spec, "--url", base])
        .args(["--header", &format!("Authorization: Bearer {token}")])
        .args(["--seed", SEED, "--max-examples", MAX_EXAMPLES])
        .args(["--checks", "not_a_server_error,response_schema_conformance"])
        // Stateful sequences are left out: they make the run's length depend on the data.
        .args(["--phases", "examples,coverage,fuzzing"])
        // One worker: hypothesis parses lambda sources with `ast`, whose recursion counter
        // CPython 3.11 keeps per interpreter, not per call (gh-106905). Two worker threads
        // parsing at once corrupt it and the tool stops with "AST constructor recursion
        // depth mismatch". CI at 4a3cc81 failed that way, run-again-once notwithstanding.
        .args(["--workers", "1", "--request-timeout", "30", "--no-color"])
        .args(filter)
        .output()
        .expect("schemathesis runs");
    let report = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    (output.status.success(), report)
}

/// The run stopped on a CPython 3.11 bug (`ast.parse` raising "AST constructor recursion
/// depth mismatch", gh-106905, inside hypothesis) without any request failing its checks.
/// A single worker thread should keep it away (see `run`); should it still come, the run is
/// repeated once. A failure of the API is never retried.
fn crashed_in_python(report: &str) -> bool {
    report.contains("AST constructor recursion depth mismatch") && !report.contains("FAILURES")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn generated_requests_get_no_server_error_and_answers_that_match_the_schema() {
    let Some(program) = schemathesis() else {
        return;
    };
    let dir = tempfile::tempdir().expect("temp dir");
    let settings = Settings {
        database_url: format!("sqlite://{}", dir.path().join("surclass.db").display()),
        bind: "127.0.0.1:0".parse().unwrap(),
        public_url: None,
        payment_gateway: Gateway::Simulated,
        simulated_gateway_store: None,
        log_format: LogFormat::Text,
        db_connections: 4,
        no_demo: false,
        job_concurrency: 4,
        delivery_concurrency: 4,
        no_jobs: false,
        stripe: Default::default(),
        limits: Default::default(),
        notify: Default::default(),
    };
    let app = Application::build(settings)
        .await
        .expect("the server starts");
    let base = format!("http://127.0.0.1:{}", app.port());
    let demo = app.demo().expect("demo data loaded").clone();
    let db = app.db().clone();
    tokio::spawn(app.run_until_stopped());

    let operator_key = demo.operator_keys[0].1.clone();
    let first_operator = operator::Entity::find()
        .one(&db)
        .await
        .unwrap()
        .expect("a demo operator");
    let (_, partner_key) = api_keys::issue(&db, &first_operator.id, Scope::Partner, "schemathesis")
        .await
        .unwrap();
    let (reference, last_name) = demo.bookings[0].clone();
    let session: serde_json::Value = reqwest::Client::new()
        .post(format!("{base}/v1/traveller/sessions"))
        .json(&serde_json::json!({"reference": reference, "last_name": last_name}))
        .send()
        .await
        .expect("signs in")
        .json()
        .await
        .unwrap();
    let traveller = session["token"]
        .as_str()
        .expect("a session token")
        .to_owned();

    let runs = [
        (
            "operator",
            operator_key,
            vec!["--exclude-tag", "traveller", "--exclude-tag", "partner"],
        ),
        ("partner", partner_key, vec!["--include-tag", "partner"]),
        ("traveller", traveller, vec!["--include-tag", "traveller"]),
    ];
    let mut failed = Vec::new();
    for (caller, token, filter) in runs {
        let (program, base) = (program.clone(), base.clone());
        let (ok, report) = tokio::task::spawn_blocking(move || {
            let (ok, report) = run(&program, &base, &token, &filter);
            if !ok && crashed_in_python(&report) {
                let _ = writeln!(
                    std::io::stderr(),
                    "schemathesis as {caller}: the tool itself crashed (CPython 3.11 bug gh-106905), found no failure; running again once"
                );
                return run(&program, &base, &token, &filter);
            }
            (ok, report)
        })
        .await
        .unwrap();
        let summary = report
            .lines()
            .filter(|l| l.contains(" generated, ") || l.starts_with("====="))
            .map(|l| l.trim().trim_matches('=').trim())
            .filter(|l| l.contains(" generated, ") || l.contains(" in "))
            .collect::<Vec<_>>()
            .join("; ");
        let _ = writeln!(std::io::stderr(), "schemathesis as {caller}: {summary}");
        if !ok {
            let _ = writeln!(std::io::stderr(), "{report}");
            failed.push(caller);
        }
    }
    assert!(
        failed.is_empty(),
        "schemathesis found failures as {failed:?} (reports above)"
    );
}

#[test]
fn only_the_tools_own_crash_is_run_again_never_a_failure_of_the_api() {
    let crash = "Runtime Error\nSystemError: AST constructor recursion depth mismatch (before=66, after=63)\n3302 generated, 3302 passed";
    assert!(crashed_in_python(crash));
    let failure = format!("{crash}\n=== FAILURES ===\n_ GET /v1/lots _\nServer error");
    assert!(!crashed_in_python(&failure));
    assert!(!crashed_in_python(
        "=== FAILURES ===\nResponse violates schema"
    ));
}
