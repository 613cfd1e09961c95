//! The audit log: who changed what, newest first, for this operator only.

use actix_web::{HttpResponse, get, web};
use askama::Template;
use serde::Deserialize;

use super::{ConsoleUser, Nav, PageError, html};
use crate::services::audit;
use crate::store::Db;
use crate::store::entities::audit_entry;

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.service(audit_page);
}

#[derive(Template)]
#[template(path = "console/audit.html")]
struct AuditPage {
    nav: Nav,
    entries: Vec<audit_entry::Model>,
    action: String,
}

#[derive(Deserialize)]
struct AuditQuery {
    #[serde(default)]
    action: String,
}

#[get("/console/audit")]
async fn audit_page(
    user: ConsoleUser,
    db: web::Data<Db>,
    q: web::Query<AuditQuery>,
) -> Result<HttpResponse, PageError> {
    let action = q.into_inner().action.trim().to_owned();
    let entries = audit::list(&db, user.operator_id(), Some(&action), 500).await?;
    html(AuditPage {
        nav: user.nav("audit"),
        entries,
        action,
    })
}
