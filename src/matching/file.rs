//! `surclass award-file`: one lot and its bids as JSON in, the award plan as JSON out.
//!
//! Input (optional fields with their defaults in brackets):
//! `{"capacity": 4, "entitled_units": [0], "reserve": "50.00", "maximum": "500.00",
//!   "currency": "EUR", "policy": "priority" | "max_revenue" | "uniform_price",
//!   "tier_weight_percent": [0], "bids": [{"id": "b1", "booking": "PNR1", "amount": "120.00",
//!   "units": 2, "partial_ok": [false], "submitted_at": "2026-11-20T10:00:00Z", "tier": [0],
//!   "withdrawn": [false]}]}`
//!
//! Amounts are decimal strings (never JSON numbers, which would pass through floating point)
//! with at most the currency's decimals. Unknown fields are refused, so a typo is reported
//! rather than silently ignored. Every error names the field, e.g. `bids[2].amount: …`.

use std::collections::HashSet;

use chrono::DateTime;
use serde::Serialize;
use serde_json::{Map, Value};

use super::model::{AwardError, AwardPlan, BidInput, LotRules, MAX_PARTY, Policy};
use super::{award, fingerprint};
use crate::money::{Currency, Money};

/// Why an award file was refused.
#[derive(Debug, thiserror::Error)]
pub enum FileError {
    #[error("not valid JSON: {0}")]
    Syntax(#[from] serde_json::Error),
    #[error("{path}: {message}")]
    Field { path: String, message: String },
    #[error("{0}")]
    Award(#[from] AwardError),
}

/// Reads one lot (the format above), awards it, and returns the plan as pretty JSON.
pub fn award_json(input: &str) -> Result<String, FileError> {
    let value: Value = serde_json::from_str(input)?;
    let lot = parse_lot(&value)?;
    let plan = award(&lot.rules, &lot.bids)?;
    let output = PlanJson::new(&lot, &plan)?;
    Ok(serde_json::to_string_pretty(&output)?)
}

struct Lot {
    rules: LotRules,
    currency: Currency,
    bids: Vec<BidInput<String>>,
}

fn parse_lot(value: &Value) -> Result<Lot, FileError> {
    let lot = Obj::new(
        value,
        String::new(),
        &[
            "capacity",
            "entitled_units",
            "reserve",
            "maximum",
            "currency",
            "policy",
            "tier_weight_percent",
            "bids",
        ],
    )?;
    let currency_field = lot.required("currency")?;
    let currency = currency_field
        .as_str()
        .ok_or_else(|| lot.error("currency", "must be a string such as \"EUR\""))
        .and_then(|code| Currency::parse(code).map_err(|e| lot.error("currency", e)))?;
    let policy_name = lot.string("policy")?;
    let policy = Policy::parse(policy_name).ok_or_else(|| {
        lot.error(
            "policy",
            format!("'{policy_name}' is not one of priority, max_revenue, uniform_price"),
        )
    })?;
    let rules = LotRules {
        capacity: lot.integer("capacity", 0, u32::MAX.into())? as u32,
        entitled_units: lot.optional_integer("entitled_units", 0, u32::MAX.into())? as u32,
        reserve_minor: lot.money("reserve", currency)?,
        maximum_minor: lot.money("maximum", currency)?,
        policy,
        tier_weight_percent: lot.optional_integer(
            "tier_weight_percent",
            0,
            super::MAX_TIER_WEIGHT_PERCENT.into(),
        )? as u32,
    };
    if rules.reserve_minor > rules.maximum_minor {
        return Err(lot.error("maximum", "must not be below the reserve"));
    }

    let bids_value = lot.required("bids")?;
    let items = bids_value
        .as_array()
        .ok_or_else(|| lot.error("bids", "must be an array of bids"))?;
    let mut seen = HashSet::new();
    let mut bids = Vec::with_capacity(items.len());
    for (i, item) in items.iter().enumerate() {
        let bid = parse_bid(item, format!("bids[{i}]"), currency)?;
        if !seen.insert(bid.id.clone()) {
            return Err(FileError::Field {
                path: format!("bids[{i}].id"),
                message: format!("'{}' is used by an earlier bid; ids are unique", bid.id),
            });
        }
        bids.push(bid);
    }
    Ok(Lot {
        rules,
        currency,
        bids,
    })
}

fn parse_bid(value: &Value, path: String, currency: Currency) -> Result<BidInput, FileError> {
    let bid = Obj::new(
        value,
        path,
        &[
            "id",
            "booking",
            "amount",
            "units",
            "partial_ok",
            "submitted_at",
            "tier",
            "withdrawn",
        ],
    )?;
    let submitted = bid.string("submitted_at")?;
    let submitted_at = DateTime::parse_from_rfc3339(submitted)
        .map_err(|e| {
            bid.error(
                "submitted_at",
                format!("'{submitted}' is not an RFC 3339 time such as 2026-11-20T10:00:00Z ({e})"),
            )
        })?
        .timestamp_millis();
    Ok(BidInput {
        id: bid.non_empty_string("id")?,
        booking: bid.non_empty_string("booking")?,
        amount_minor: bid.money("amount", currency)?,
        units: bid.integer("units", 1, MAX_PARTY.into())? as u8,
        partial_ok: bid.optional_bool("partial_ok")?,
        submitted_at,
        tier: bid.optional_integer("tier", 0, u8::MAX.into())? as u8,
        withdrawn: bid.optional_bool("withdrawn")?,
    })
}

/// A JSON object being read, with its path for error messages.
struct Obj<'a> {
    path: String,
    map: &'a Map<String, Value>,
}

impl<'a> Obj<'a> {
    fn new(value: &'a Value, path: String, known: &[&str]) -> Result<Self, FileError> {
        let Some(map) = value.as_object() else {
            let path = if path.is_empty() {
                "(top level)".into()
            } else {
                path
            };
            return Err(FileError::Field {
                path,
                message: "must be a JSON object".into(),
            });
        };
        let obj = Self { path, map };
        if let Some(unknown) = map.keys().find(|k| !known.contains(&k.as_str())) {
            return Err(obj.error(
                unknown,
                format!("unknown field; expected one of {}", known.join(", ")),
            ));
        }
        Ok(obj)
    }

    fn error(&self, field: &str, message: impl ToString) -> FileError {
        let path = if self.path.is_empty() {
            field.to_owned()
        } else {
            format!("{}.{field}", self.path)
        };
        FileError::Field {
            path,
            message: message.to_string(),
        }
    }

    fn required(&self, field: &str) -> Result<&'a Value, FileError> {
        match self.map.get(field) {
            None | Some(Value::Null) => Err(self.error(field, "is required")),
            Some(v) => Ok(v),
        }
    }

    fn string(&self, field: &str) -> Result<&'a str, FileError> {
        self.required(field)?
            .as_str()
            .ok_or_else(|| self.error(field, "must be a string"))
    }

    fn non_empty_string(&self, field: &str) -> Result<String, FileError> {
        let s = self.string(field)?;
        if s.trim().is_empty() {
            return Err(self.error(field, "must not be empty"));
        }
        Ok(s.to_owned())
    }

    fn integer(&self, field: &str, min: u64, max: u64) -> Result<u64, FileError> {
        let value = self.required(field)?;
        value
            .as_u64()
            .filter(|n| (min..=max).contains(n))
            .ok_or_else(|| {
                self.error(
                    field,
                    format!("must be a whole number from {min} to {max}, not {value}"),
                )
            })
    }

    fn optional_integer(&self, field: &str, min: u64, max: u64) -> Result<u64, FileError> {
        match self.map.get(field) {
            None | Some(Value::Null) => Ok(min),
            Some(_) => self.integer(field, min, max),
        }
    }

    fn optional_bool(&self, field: &str) -> Result<bool, FileError> {
        match self.map.get(field) {
            None | Some(Value::Null) => Ok(false),
            Some(Value::Bool(b)) => Ok(*b),
            Some(other) => Err(self.error(field, format!("must be true or false, not {other}"))),
        }
    }

    fn money(&self, field: &str, currency: Currency) -> Result<i64, FileError> {
        let value = self.required(field)?;
        let text = value.as_str().ok_or_else(|| {
            self.error(
                field,
                format!("must be a decimal string such as \"120.00\", not {value}"),
            )
        })?;
        Money::parse(text, currency)
            .map(Money::minor)
            .map_err(|e| self.error(field, e))
    }
}

#[derive(Serialize)]
struct PlanJson<'p> {
    algorithm_version: &'static str,
    fingerprint: String,
    policy: &'static str,
    currency: &'static str,
    available_units: u32,
    winners: Vec<WinnerJson<'p>>,
    standby: &'p [String],
    losers: Vec<LoserJson<'p>>,
    revenue: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    clearing_price: Option<String>,
}

#[derive(Serialize)]
struct WinnerJson<'p> {
    id: &'p str,
    booking: &'p str,
    units: u8,
    party: u8,
    price_per_unit: String,
    total: String,
}

#[derive(Serialize)]
struct LoserJson<'p> {
    id: &'p str,
    reason: &'static str,
}

impl<'p> PlanJson<'p> {
    fn new(lot: &Lot, plan: &'p AwardPlan<String>) -> Result<Self, FileError> {
        // Amounts in a plan come from validated bids, so they are never negative.
        let money = |minor: i64| -> Result<String, FileError> {
            Money::from_minor(minor, lot.currency)
                .map(|m| m.to_string())
                .map_err(|e| FileError::Field {
                    path: "(plan)".into(),
                    message: e.to_string(),
                })
        };
        Ok(Self {
            algorithm_version: plan.algorithm_version,
            fingerprint: fingerprint(&lot.rules, &lot.bids, plan),
            policy: plan.policy.as_str(),
            currency: lot.currency.code(),
            available_units: plan.available_units,
            winners: plan
                .winners
                .iter()
                .map(|w| {
                    Ok(WinnerJson {
                        id: &w.id,
                        booking: &w.booking,
                        units: w.units,
                        party: w.party,
                        price_per_unit: money(w.price_per_unit_minor)?,
                        total: money(w.total_minor)?,
                    })
                })
                .collect::<Result<_, FileError>>()?,
            standby: &plan.standby,
            losers: plan
                .losers
                .iter()
                .map(|l| LoserJson {
                    id: &l.id,
                    reason: l.reason.as_str(),
                })
                .collect(),
            revenue: money(plan.revenue_minor)?,
            clearing_price: plan.clearing_price_minor.map(money).transpose()?,
        })
    }
}
