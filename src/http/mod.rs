//! HTTP, by audience: probes and metrics here; the REST API, traveller pages and operator
//! console in their own modules. Handlers are thin: parse, authorise, call a service, map.

pub mod api;
pub mod client_address;
pub mod console;
pub mod health;
pub mod idempotency;
pub mod json;
pub mod limits;
pub mod malformed;
pub mod metrics;
pub mod openapi;
pub mod pagination;
pub mod problem;
pub mod traveller_pages;
pub mod unsubscribe;

use actix_web::{HttpRequest, HttpResponse, web};

use problem::Problem;

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.service(health::healthz)
        .service(health::readyz)
        .service(metrics::expose)
        .service(openapi::openapi_yaml)
        .service(unsubscribe::show)
        .service(unsubscribe::one_click)
        .configure(api::routes)
        .configure(traveller_pages::routes)
        .configure(console::routes)
        .default_service(web::to(not_found));
}

async fn not_found(req: HttpRequest) -> Result<HttpResponse, Problem> {
    Err(Problem::not_found(format!(
        "No such resource: {} {}",
        req.method(),
        req.path()
    )))
}
