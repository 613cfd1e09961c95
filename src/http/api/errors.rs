//! Each use case's error, mapped once to problem+json.

use crate::domain::validation::FieldErrors;
use crate::http::problem::Problem;
use crate::notifications::outbox::RetryError;
use crate::notifications::webhooks::EndpointError;
use crate::services::bids::BidError;
use crate::services::bookings::ImportError;
use crate::services::data_rights::DataRightsError;
use crate::services::lots::LotError;
use crate::services::review::{ReviewError, WinnersChanged};
use crate::services::settlement::SettleError;

impl From<LotError> for Problem {
    fn from(e: LotError) -> Self {
        match e {
            LotError::NotFound => Problem::not_found("No such lot."),
            LotError::Invalid(errors) => Problem::invalid(errors),
            e @ LotError::WrongState { .. } => {
                Problem::conflict("lot-state", "Not possible in this state", e.to_string())
            }
            LotError::Db(e) => e.into(),
        }
    }
}

impl From<ImportError> for Problem {
    fn from(e: ImportError) -> Self {
        match e {
            ImportError::Invalid(errors) => Problem::invalid(errors),
            ImportError::Db(e) => e.into(),
        }
    }
}

impl From<BidError> for Problem {
    fn from(e: BidError) -> Self {
        match e {
            BidError::SignedOut => {
                Problem::unauthorized("Sign in again with your booking reference and last name.")
            }
            BidError::NotFound => Problem::not_found("No such offer or bid for this booking."),
            BidError::Closed { closes_at } => Problem::conflict(
                "bidding-closed",
                "Bidding has closed",
                format!(
                    "Bidding closed at {}; nothing was changed.",
                    closes_at.to_rfc3339()
                ),
            ),
            BidError::NotOpenYet { opens_at } => Problem::conflict(
                "bidding-not-open",
                "Bidding has not opened yet",
                format!("Bidding opens at {}.", opens_at.to_rfc3339()),
            ),
            BidError::Unavailable(detail) => {
                Problem::conflict("upgrade-unavailable", "Upgrade not available", detail)
            }
            e @ BidError::GraceOver { .. } => Problem::conflict(
                "upgrade-unavailable",
                "Upgrade not available",
                e.to_string(),
            ),
            e @ BidError::OutOfRange { .. } => {
                let mut p = Problem::invalid(FieldErrors::single("amount", e.to_string()));
                p.kind = "amount-out-of-range";
                p.title = "Amount outside the range";
                p
            }
            BidError::Invalid(errors) => Problem::invalid(errors),
            e @ BidError::AlreadyBid { .. } => {
                let BidError::AlreadyBid { bid_id } = &e else {
                    unreachable!()
                };
                Problem::conflict(
                    "bid-exists",
                    "You already have a bid here",
                    format!("{e}: PATCH /v1/traveller/bids/{bid_id}"),
                )
            }
            e @ BidError::NotActive { .. } => Problem::conflict(
                "bid-not-active",
                "The bid can no longer change",
                e.to_string(),
            ),
            e @ BidError::ChangedMeanwhile => Problem::conflict(
                "bid-changed-meanwhile",
                "The bid was changed meanwhile",
                format!("{e}. Look at the bid again and retry."),
            ),
            BidError::CardDeclined(message) => Problem::new(
                actix_web::http::StatusCode::PAYMENT_REQUIRED,
                "card-declined",
                "Card declined",
                format!("{message} Nothing was changed."),
            )
            .with_field("payment_method"),
            BidError::PaymentUnavailable(_) => Problem::unavailable(
                "The payment service is not answering; nothing was changed. Please try again in a minute.",
            ),
            BidError::Db(e) => e.into(),
        }
    }
}

impl From<ReviewError> for Problem {
    fn from(e: ReviewError) -> Self {
        match e {
            ReviewError::Lot(e) => e.into(),
            e @ ReviewError::NotInReview(_) => {
                Problem::conflict("award-not-in-review", "Nothing to review", e.to_string())
            }
            ReviewError::WinnersChanged(changed) => Problem::conflict(
                "award-winners-changed",
                "The winners changed",
                format!(
                    "Nothing was charged: the winners now are not the ones sent ({}). Read the \
                     award again and approve the winners it names.",
                    winners_changed(&changed)
                ),
            ),
            ReviewError::Settle(SettleError::Db(e)) => e.into(),
            ReviewError::Settle(e) => {
                tracing::error!(error = %e, "review could not be applied");
                Problem::internal()
            }
        }
    }
}

impl From<RetryError> for Problem {
    fn from(e: RetryError) -> Self {
        match e {
            RetryError::NotFound => Problem::not_found("No such message."),
            e @ RetryError::NotParked(_) => Problem::conflict(
                "message-not-parked",
                "Only a parked message can be retried",
                e.to_string(),
            ),
            RetryError::Db(e) => e.into(),
        }
    }
}

impl From<EndpointError> for Problem {
    fn from(e: EndpointError) -> Self {
        match e {
            EndpointError::NotFound => Problem::not_found("No such webhook endpoint."),
            EndpointError::Invalid(errors) => Problem::invalid(errors),
            EndpointError::Db(e) => e.into(),
        }
    }
}

impl From<DataRightsError> for Problem {
    fn from(e: DataRightsError) -> Self {
        match e {
            DataRightsError::NotFound => Problem::not_found("No such booking."),
            e @ DataRightsError::MoneyInFlight(_) => {
                Problem::conflict("erasure-money-in-flight", "Not yet", e.to_string())
            }
            e @ DataRightsError::UpgradeAhead(_) => {
                Problem::conflict("erasure-upgrade-ahead", "Not yet", e.to_string())
            }
            e @ DataRightsError::BadRetention => {
                Problem::invalid(FieldErrors::single("retention_days", e.to_string()))
            }
            DataRightsError::Db(e) => e.into(),
        }
    }
}

/// "bid_a sent and not winning; bid_b winning and not sent", naming at most a few of each and
/// cutting what the client sent to a bid id's length and a little more.
fn winners_changed(changed: &WinnersChanged) -> String {
    const NAMED: usize = 5;
    const LONGEST: usize = 32;
    let name = |ids: &[String]| {
        let mut text = ids
            .iter()
            .take(NAMED)
            .map(|id| match id.char_indices().nth(LONGEST) {
                Some((cut, _)) => format!("{}…", &id[..cut]),
                None => id.clone(),
            })
            .collect::<Vec<_>>()
            .join(", ");
        if ids.len() > NAMED {
            text.push_str(&format!(" and {} more", ids.len() - NAMED));
        }
        text
    };
    let mut parts = Vec::new();
    if !changed.not_winning.is_empty() {
        parts.push(format!(
            "{} sent and not winning",
            name(&changed.not_winning)
        ));
    }
    if !changed.not_checked.is_empty() {
        parts.push(format!(
            "{} winning and not sent",
            name(&changed.not_checked)
        ));
    }
    parts.join("; ")
}

#[cfg(test)]
mod tests {
    use super::{WinnersChanged, winners_changed};

    #[test]
    fn a_changed_award_names_who_left_and_who_came_in_a_few_at_a_time() {
        let ids = |n: usize| (1..=n).map(|i| format!("bid_{i}")).collect::<Vec<_>>();
        let changed = WinnersChanged {
            not_winning: ids(1),
            not_checked: vec!["bid_9".into()],
        };
        assert_eq!(
            winners_changed(&changed),
            "bid_1 sent and not winning; bid_9 winning and not sent"
        );
        let many = WinnersChanged {
            not_winning: vec![],
            not_checked: ids(7),
        };
        assert_eq!(
            winners_changed(&many),
            "bid_1, bid_2, bid_3, bid_4, bid_5 and 2 more winning and not sent"
        );
        // What the client sent is echoed no longer than a bid id and a little more.
        let long = WinnersChanged {
            not_winning: vec!["é".repeat(1_000)],
            not_checked: vec![],
        };
        assert_eq!(
            winners_changed(&long),
            format!("{}… sent and not winning", "é".repeat(32))
        );
    }
}
