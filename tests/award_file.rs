//! `surclass award-file`: the operator's "what would this lot award now?", end to end through
//! the built binary.

use std::io::Write;
use std::process::{Command, Output, Stdio};

use serde_json::{Value, json};

fn run(input: &str) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_surclass"))
        .args(["award-file", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the surclass binary starts");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(input.as_bytes())
        .unwrap();
    child.wait_with_output().unwrap()
}

fn lot(bids: Value) -> Value {
    json!({"capacity": 4, "reserve": "50.00", "maximum": "500.00", "currency": "EUR",
           "policy": "priority", "bids": bids})
}

fn bid(id: &str, amount: &str, units: u8, minute: u8) -> Value {
    json!({"id": id, "booking": format!("PNR-{id}"), "amount": amount, "units": units,
           "submitted_at": format!("2026-11-20T10:{minute:02}:00Z"), "tier": 0})
}

fn award(input: &Value) -> Value {
    let out = run(&input.to_string());
    assert!(
        out.status.success(),
        "stderr: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("the plan is JSON")
}

fn refused(input: &str) -> String {
    let out = run(input);
    assert_eq!(out.status.code(), Some(2), "bad input exits with status 2");
    assert!(out.stdout.is_empty());
    String::from_utf8(out.stderr).unwrap()
}

#[test]
fn prints_the_plan_of_the_issue_example_as_json() {
    let input = json!({"capacity":4,"reserve":"50.00","maximum":"500.00","currency":"EUR",
        "policy":"priority","bids":[{"id":"b1","booking":"PNR1","amount":"120.00","units":2,
        "submitted_at":"2026-11-20T10:00:00Z","tier":1}]});
    let plan = award(&input);
    assert_eq!(
        plan["winners"],
        json!([{"id": "b1", "booking": "PNR1", "units": 2, "party": 2,
                "price_per_unit": "120.00", "total": "240.00"}])
    );
    assert_eq!(plan["standby"], json!([]));
    assert_eq!(plan["losers"], json!([]));
    assert_eq!(plan["revenue"], "240.00");
    assert_eq!(
        plan["algorithm_version"],
        surclass::matching::ALGORITHM_VERSION
    );
    assert_eq!(plan["fingerprint"].as_str().unwrap().len(), 64);
}

#[test]
fn losers_carry_snake_case_reasons_and_standby_is_ordered() {
    let plan = award(&lot(json!([
        bid("a", "300.00", 3, 0),
        bid("b", "250.00", 2, 1),
        bid("c", "200.00", 1, 2),
        bid("d", "199.99", 1, 3),
        bid("e", "10.00", 1, 4),
        bid("f", "900.00", 1, 5),
        bid("g", "400.00", 5, 6),
    ])));
    assert_eq!(plan["winners"].as_array().unwrap().len(), 2);
    // b (a pair) did not fit the 1 unit left, but would if a's payment failed.
    assert_eq!(plan["standby"], json!(["b", "d"]));
    assert_eq!(
        plan["losers"],
        json!([{"id": "e", "reason": "below_reserve"},
               {"id": "f", "reason": "above_maximum"},
               {"id": "g", "reason": "party_does_not_fit"}])
    );
    assert_eq!(plan["revenue"], "1100.00");
}

#[test]
fn uniform_price_shows_its_clearing_price_and_yen_have_no_decimals() {
    let mut input = lot(json!([
        bid("a", "30000", 1, 0),
        bid("b", "20000", 1, 1),
        bid("c", "12000", 1, 2)
    ]));
    input["capacity"] = json!(2);
    input["currency"] = json!("JPY");
    input["reserve"] = json!("5000");
    input["maximum"] = json!("90000");
    input["policy"] = json!("uniform_price");
    let plan = award(&input);
    assert_eq!(plan["clearing_price"], "12000");
    assert_eq!(plan["winners"][0]["price_per_unit"], "12000");
    assert_eq!(plan["revenue"], "24000");
}

#[test]
fn a_bad_amount_is_refused_naming_the_field() {
    let mut input = lot(json!([bid("a", "300.00", 1, 0), bid("b", "12.345", 1, 1)]));
    let err = refused(&input.to_string());
    assert!(err.contains("bids[1].amount"), "{err}");
    assert!(err.contains("more decimals than EUR allows"), "{err}");
    input["bids"][1]["amount"] = json!(12.5);
    let err = refused(&input.to_string());
    assert!(
        err.contains("bids[1].amount: must be a decimal string"),
        "{err}"
    );
}

#[test]
fn missing_unknown_and_out_of_range_fields_are_named() {
    let mut input = lot(json!([bid("a", "300.00", 1, 0)]));
    input.as_object_mut().unwrap().remove("currency");
    assert!(refused(&input.to_string()).contains("currency: is required"));

    let mut input = lot(json!([bid("a", "300.00", 10, 0)]));
    assert!(
        refused(&input.to_string()).contains("bids[0].units: must be a whole number from 1 to 9")
    );
    input["bids"][0]["units"] = json!(1);
    input["bids"][0]["amout"] = json!("1.00");
    assert!(refused(&input.to_string()).contains("bids[0].amout: unknown field"));

    let mut input = lot(json!([bid("a", "300.00", 1, 0)]));
    input["policy"] = json!("highest");
    assert!(refused(&input.to_string()).contains("policy: 'highest' is not one of"));
    input["policy"] = json!("priority");
    input["bids"][0]["submitted_at"] = json!("yesterday");
    assert!(refused(&input.to_string()).contains("bids[0].submitted_at"));
    let input = lot(json!([bid("a", "300.00", 1, 0), bid("a", "200.00", 1, 1)]));
    assert!(refused(&input.to_string()).contains("bids[1].id: 'a' is used by an earlier bid"));
}

#[test]
fn text_that_is_not_json_is_refused_with_its_position() {
    let err = refused("{\"capacity\": 4,");
    assert!(err.starts_with("surclass: -: not valid JSON"), "{err}");
    assert!(err.contains("line 1"), "{err}");
}
