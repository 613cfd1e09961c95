//! The award review, for lots that wait for the operator before anything is charged: take
//! named winners out with a reason (they are told it, their holds are released, standby bids
//! move up), then approve (the winners are charged and told). The forms sit on the bids page,
//! beside the award they act on.

use actix_web::{HttpResponse, post, web};

use super::bids::{ReviewForm, review_refused};
use super::form::FormFields;
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
            e @ (ReviewError::NotInReview(_) | ReviewError::WinnersChanged(_)) => {
                PageError::BadRequest(e.to_string())
            }
            ReviewError::Settle(e) => {
                tracing::error!(error = %e, "console: award review failed");
                PageError::Internal
            }
        }
    }
}

/// Why a review form did nothing, when the award itself is the reason (not a field).
fn refused_by_the_award(e: ReviewError) -> Result<ReviewForm, PageError> {
    let error = match e {
        ReviewError::NotInReview(state) => format!(
            "Nothing was done: this award is not waiting for review any more (it is {state})."
        ),
        ReviewError::WinnersChanged(_) => "Nothing was charged: the winners changed since the \
            page was drawn: check them and approve again."
            .to_owned(),
        e => return Err(e.into()),
    };
    Ok(ReviewForm {
        error: Some(error),
        ..ReviewForm::default()
    })
}

/// Approves exactly the winners the page showed (`winner`, one per bid): if they changed
/// meanwhile, nothing is charged and the page is shown again with the winners as they are.
#[post("/console/lots/{id}/award/approve")]
async fn approve(
    user: ConsoleUser,
    db: web::Data<Db>,
    id: web::Path<String>,
    form: FormFields,
) -> Result<HttpResponse, PageError> {
    user.check_csrf(form.get("csrf"))?;
    let shown = form.all("winner");
    match review::approve(&db, &user.actor(), &id, Some(&shown)).await {
        Ok(_) => Ok(see_other(&format!("/console/lots/{id}/bids?done=approved"))),
        Err(e @ (ReviewError::NotInReview(_) | ReviewError::WinnersChanged(_))) => {
            review_refused(&db, &user, &id, refused_by_the_award(e)?).await
        }
        Err(e) => Err(e.into()),
    }
}

#[post("/console/lots/{id}/award/take-out")]
async fn take_out(
    user: ConsoleUser,
    db: web::Data<Db>,
    id: web::Path<String>,
    form: FormFields,
) -> Result<HttpResponse, PageError> {
    user.check_csrf(form.get("csrf"))?;
    let ticked = form.all("take");
    let reason = form.get("reason").trim().to_owned();
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
        Err(e @ ReviewError::NotInReview(_)) => {
            review_refused(&db, &user, &id, refused_by_the_award(e)?).await
        }
        Err(e) => Err(e.into()),
    }
}
