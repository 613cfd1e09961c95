//! Probes for load balancers and orchestrators.

use actix_web::{HttpResponse, get, web};
use serde::Serialize;
use utoipa::ToSchema;

use crate::http::problem::Problem;
use crate::store::{self, Db};

#[derive(Serialize, ToSchema)]
pub struct Health {
    #[schema(example = "ok")]
    pub status: &'static str,
}

/// The process is alive (says nothing about the database).
#[utoipa::path(
    tag = "health",
    responses((status = 200, description = "Alive", body = Health, example = json!({"status": "ok"})))
)]
#[get("/healthz")]
pub async fn healthz() -> HttpResponse {
    HttpResponse::Ok().json(Health { status: "ok" })
}

/// The database answers and its schema is up to date: safe to send traffic here.
#[utoipa::path(
    tag = "health",
    responses(
        (status = 200, description = "Ready", body = Health, example = json!({"status": "ready"})),
        (status = 503, description = "Database unreachable or schema not migrated",
         body = Problem, content_type = "application/problem+json")
    )
)]
#[get("/readyz")]
pub async fn readyz(db: web::Data<Db>) -> Result<HttpResponse, Problem> {
    store::ping(&db).await.map_err(|e| {
        tracing::warn!(error = %e, "readiness: database unreachable");
        Problem::unavailable("The database does not answer.")
    })?;
    let pending = store::pending_migrations(&db)
        .await
        .map_err(|_| Problem::unavailable("The schema version cannot be read."))?;
    if pending > 0 {
        return Err(Problem::unavailable(format!(
            "{pending} database migration(s) pending: run `surclass migrate`."
        )));
    }
    Ok(HttpResponse::Ok().json(Health { status: "ready" }))
}
