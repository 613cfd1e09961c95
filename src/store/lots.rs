//! Lots between the domain's `LotSpec` and the `lots` table.

use chrono::{DateTime, Utc};
use sea_orm::Set;

use super::entities::lot;
use crate::domain::lot::{
    AwardPolicy, LotSpec, LotStatus, PaymentMode, ResourceKind, parse_time_zone,
};
use crate::money::{Currency, Money};

/// The lots still in play, as SQL: written as a literal, word for word the condition of the
/// partial index `idx_lots_in_play` (migration 9), since both engines use such an index only
/// for a query that states its condition (bound parameters would not do).
pub const IN_PLAY: &str = "status IN ('draft', 'open', 'closed', 'awarded')";

/// Reads a stored lot back into the domain. Rows are written only from valid specs, so a
/// failure here is corruption and is reported as such.
pub fn spec(m: &lot::Model) -> Result<LotSpec, String> {
    let currency = Currency::parse(&m.currency).map_err(|e| e.to_string())?;
    let money = |minor: i64| Money::from_minor(minor, currency).map_err(|e| e.to_string());
    Ok(LotSpec {
        resource_kind: ResourceKind::parse(&m.resource_kind)?,
        resource: m.resource.clone(),
        service_date: m.service_date,
        title: m.title.clone(),
        from_class: m.from_class.clone(),
        to_class: m.to_class.clone(),
        class_rank: m.class_rank.max(0) as u32,
        capacity: m.capacity.max(0) as u32,
        entitlement_units: m.entitlement_units.max(0) as u32,
        currency,
        reserve: money(m.reserve_minor)?,
        maximum: money(m.maximum_minor)?,
        upgrade_now: m.upgrade_now_minor.map(money).transpose()?,
        taxes_included: m.taxes_included,
        opens_at: m.opens_at,
        closes_at: m.closes_at,
        time_zone: parse_time_zone(&m.time_zone)?,
        award_policy: AwardPolicy::parse(&m.award_policy)?,
        tier_weight_pct: m.tier_weight_pct.max(0) as u32,
        payment_mode: PaymentMode::parse(&m.payment_mode)?,
        payment_grace_seconds: m.payment_grace_seconds.max(0) as u32,
        review_required: m.review_required,
        chained_capacity: m.chained_capacity,
    })
}

/// Units the auction can still award: capacity less entitlements and "upgrade now" sales.
pub fn free_units(m: &lot::Model, spec: &LotSpec) -> u32 {
    spec.biddable_units()
        .saturating_sub(m.units_sold_now.max(0) as u32)
}

pub fn status(m: &lot::Model) -> LotStatus {
    LotStatus::parse(&m.status).unwrap_or(LotStatus::Cancelled)
}

/// Writes every spec field onto an active model (id, operator, status left to the caller).
pub fn apply(am: &mut lot::ActiveModel, s: &LotSpec, now: DateTime<Utc>) {
    am.resource_kind = Set(s.resource_kind.as_str().to_owned());
    am.resource = Set(s.resource.trim().to_owned());
    am.service_date = Set(s.service_date);
    am.title = Set(s.title.trim().to_owned());
    am.from_class = Set(s.from_class.trim().to_owned());
    am.to_class = Set(s.to_class.trim().to_owned());
    am.class_rank = Set(s.class_rank as i32);
    am.capacity = Set(s.capacity as i32);
    am.entitlement_units = Set(s.entitlement_units as i32);
    am.currency = Set(s.currency.code().to_owned());
    am.reserve_minor = Set(s.reserve.minor());
    am.maximum_minor = Set(s.maximum.minor());
    am.upgrade_now_minor = Set(s.upgrade_now.map(Money::minor));
    am.taxes_included = Set(s.taxes_included);
    am.opens_at = Set(s.opens_at);
    am.closes_at = Set(s.closes_at);
    am.time_zone = Set(s.time_zone.name().to_owned());
    am.award_policy = Set(s.award_policy.as_str().to_owned());
    am.tier_weight_pct = Set(s.tier_weight_pct as i32);
    am.payment_mode = Set(s.payment_mode.as_str().to_owned());
    am.payment_grace_seconds = Set(s.payment_grace_seconds as i32);
    am.review_required = Set(s.review_required);
    am.chained_capacity = Set(s.chained_capacity);
    am.updated_at = Set(now);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_in_play_condition_names_the_statuses_in_play() {
        let listed: Vec<String> = LotStatus::IN_PLAY
            .iter()
            .map(|s| format!("'{s}'"))
            .collect();
        assert_eq!(IN_PLAY, format!("status IN ({})", listed.join(", ")));
    }
}
