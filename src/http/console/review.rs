//! The award review, for lots that wait for the operator before anything is charged: take
//! named winners out with a reason (they are told it, their holds are released, standby bids
//! move up), then approve (the winners are charged and told). The forms sit on the bids page,
//! beside the award they act on.

use actix_web::{HttpResponse, post, web};
use serde::Deserialize;

use super::bids::{ReviewForm, review_refused};
use super::{ConsoleUser, FormErrors, PageError, see_other};
use crate::services::lots::LotError;
use crate::services::review::{self, ReviewError};
use crate::store::Db;

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.service(approve).service(take_out);
}

impl From<ReviewError> for PageError {
    fn from(e: ReviewError) -> Self {
        match e {
            ReviewError::Lot(e) => e.into(),
            e @ ReviewError::NotInReview(_) => PageError::BadRequest(e.to_string()),
            ReviewError::Settle(e) => {
                tracing::error!(error = %e, "console: award review failed");
                PageError::Internal
            }
        }
    }
}

fn not_in_review(state: &str) -> ReviewForm {
    ReviewForm {
        error: Some(format!(
            "Nothing was done: this award is not waiting for review any more (it is {state})."
        )),
        ..ReviewForm::default()
    }
}

#[derive(Deserialize)]
struct CsrfForm {
    csrf: String,
}

#[post("/console/lots/{id}/award/approve")]
async fn approve(
    user: ConsoleUser,
    db: web::Data<Db>,
    id: web::Path<String>,
    form: web::Form<CsrfForm>,
) -> Result<HttpResponse, PageError> {
    user.check_csrf(&form.csrf)?;
    match review::approve(&db, &user.actor(), &id).await {
        Ok(_) => Ok(see_other(&format!("/console/lots/{id}/bids?done=approved"))),
        Err(ReviewError::NotInReview(state)) => {
            review_refused(&db, &user, &id, not_in_review(&state)).await
        }
        Err(e) => Err(e.into()),
    }
}

/// The form's fields as sent: `take` once per ticked winner, so not a map.
#[post("/console/lots/{id}/award/take-out")]
async fn take_out(
    user: ConsoleUser,
    db: web::Data<Db>,
    id: web::Path<String>,
    form: web::Form<Vec<(String, String)>>,
) -> Result<HttpResponse, PageError> {
    let field = |name: &str| {
        form.iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
            .unwrap_or_default()
    };
    user.check_csrf(field("csrf"))?;
    let ticked: Vec<String> = form
        .iter()
        .filter(|(k, _)| k == "take")
        .map(|(_, v)| v.clone())
        .collect();
    let reason = field("reason").trim().to_owned();
    match review::reject(&db, &user.actor(), &id, &ticked, &reason).await {
        Ok(_) => Ok(see_other(&format!(
            "/console/lots/{id}/bids?done=taken_out"
        ))),
        Err(ReviewError::Lot(LotError::Invalid(errors))) => {
            let errors = FormErrors::from_fields(&errors);
            // `bids[i]`: a ticked bid stopped being a winner since the page was drawn.
            let stale = errors.0.iter().any(|(f, _)| f.starts_with("bids["));
            let form = ReviewForm {
                bids_error: errors.for_field("bids").or_else(|| {
                    stale.then(|| {
                        "a ticked bid is no longer a winner (the page was out of date): tick again"
                            .to_owned()
                    })
                }),
                reason_error: errors.for_field("reason"),
                error: Some("Nothing was changed.".into()),
                ticked,
                reason,
            };
            review_refused(&db, &user, &id, form).await
        }
        Err(ReviewError::NotInReview(state)) => {
            review_refused(&db, &user, &id, not_in_review(&state)).await
        }
        Err(e) => Err(e.into()),
    }
}
