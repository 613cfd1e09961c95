//! Errors on the wire: RFC 9457 `application/problem+json`, mapped once, here.
//!
//! Inside, each use case has its own `thiserror` enum; at the edge it becomes a [`Problem`]
//! with a stable `type` (a URI partners can switch on), a human `detail`, and, for bad input,
//! the offending `field`.

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, ResponseError};
use serde::Serialize;
use utoipa::ToSchema;

use crate::domain::validation::FieldErrors;

pub const CONTENT_TYPE: &str = "application/problem+json";

/// Where the problem types live; a problem's `type` is this followed by its kind.
pub const PROBLEM_TYPES: &str = "https://surclass.dev/problems/";

fn type_uri<S: serde::Serializer>(kind: &&'static str, s: S) -> Result<S::Ok, S::Error> {
    s.collect_str(&format_args!("{PROBLEM_TYPES}{kind}"))
}

#[derive(Debug, Clone, Serialize, ToSchema)]
#[schema(example = json!({
    "type": "https://surclass.dev/problems/invalid-field",
    "title": "A field is invalid",
    "status": 422,
    "detail": "amount: '12.345' has more decimals than EUR allows (2)",
    "field": "amount"
}))]
pub struct Problem {
    /// Stable identifier of the kind of problem, a URI under `https://surclass.dev/problems/`.
    // Kept as the last part only (a fixed text); serialised whole.
    #[serde(rename = "type", serialize_with = "type_uri")]
    #[schema(value_type = String)]
    pub kind: &'static str,
    /// Short summary, the same for every problem of the type.
    pub title: &'static str,
    pub status: u16,
    pub detail: String,
    /// The request field at fault, when there is one (JSON path such as `bids[2].amount`).
    // Boxed, as `operators`: an error kept small is cheap to return.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<String>)]
    pub field: Option<Box<str>>,
    /// Every invalid field, when there are several.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub errors: Vec<ProblemField>,
    /// Seconds to wait before retrying (with 429 and 503).
    #[serde(skip)]
    pub retry_after: Option<u32>,
    /// With `several-bookings`: the companies whose bookings match, one to send back as
    /// `operator`.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Vec<Company>>)]
    pub operators: Option<Box<Vec<Company>>>,
}

/// A company a traveller may have booked with.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[schema(example = json!({"slug": "aurora-air", "name": "Aurora Air"}))]
pub struct Company {
    /// What to send as `operator`.
    pub slug: String,
    pub name: String,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ProblemField {
    pub field: String,
    pub detail: String,
}

impl Problem {
    pub fn new(
        status: StatusCode,
        slug: &'static str,
        title: &'static str,
        detail: impl Into<String>,
    ) -> Self {
        Self {
            kind: slug,
            title,
            status: status.as_u16(),
            detail: detail.into(),
            field: None,
            errors: Vec::new(),
            retry_after: None,
            operators: None,
        }
    }

    /// 422 naming every invalid field; `field` is the first.
    pub fn invalid(errors: FieldErrors) -> Self {
        let mut problem = Self::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid-field",
            "A field is invalid",
            errors.to_string(),
        );
        problem.field = errors.0.first().map(|e| e.field.as_str().into());
        problem.errors = errors
            .0
            .into_iter()
            .map(|e| ProblemField {
                field: e.field,
                detail: e.message,
            })
            .collect();
        problem
    }

    pub fn conflict(slug: &'static str, title: &'static str, detail: impl Into<String>) -> Self {
        Self::new(StatusCode::CONFLICT, slug, title, detail)
    }

    pub fn unauthorized(detail: impl Into<String>) -> Self {
        Self::new(
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            "Not signed in",
            detail,
        )
    }

    pub fn forbidden(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::FORBIDDEN, "forbidden", "Not allowed", detail)
    }

    pub fn too_many(detail: impl Into<String>, retry_after: u64) -> Self {
        let mut p = Self::new(
            StatusCode::TOO_MANY_REQUESTS,
            "rate-limited",
            "Too many attempts",
            detail,
        );
        p.retry_after = Some(u32::try_from(retry_after).unwrap_or(u32::MAX));
        p
    }

    pub fn with_field(mut self, field: impl Into<String>) -> Self {
        self.field = Some(field.into().into_boxed_str());
        self
    }

    pub fn not_found(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, "not-found", "Not found", detail)
    }

    pub fn unavailable(detail: impl Into<String>) -> Self {
        Self::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "unavailable",
            "Service unavailable",
            detail,
        )
    }

    pub fn internal() -> Self {
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            "Internal error",
            "Something went wrong on our side; nothing was changed. Please retry.",
        )
    }
}

impl From<FieldErrors> for Problem {
    fn from(errors: FieldErrors) -> Self {
        Self::invalid(errors)
    }
}

impl From<sea_orm::DbErr> for Problem {
    fn from(e: sea_orm::DbErr) -> Self {
        tracing::error!(error = %e, "database error");
        Self::internal()
    }
}

impl std::fmt::Display for Problem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.title, self.detail)
    }
}

impl ResponseError for Problem {
    fn status_code(&self) -> StatusCode {
        StatusCode::from_u16(self.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
    }

    fn error_response(&self) -> HttpResponse {
        let mut res = HttpResponse::build(self.status_code());
        res.content_type(CONTENT_TYPE);
        if let Some(seconds) = self.retry_after {
            res.insert_header(("Retry-After", seconds.to_string()));
        }
        res.json(self)
    }
}
