//! The audit log: who changed what, newest first, 100 a page, for this operator only.

use actix_web::{HttpResponse, get, web};
use askama::Template;
use serde::Deserialize;

use super::{BadLink, ConsoleUser, Nav, PageError, html, list_href, page_start};
use crate::http::pagination::{Page, page};
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
    /// The next (older) page's address, when there is one.
    older: Option<String>,
    /// The first page's address, when this is a later one.
    newest: Option<String>,
    /// Why the page link was refused, when it was.
    link_error: Option<&'static str>,
}

#[derive(Deserialize)]
struct AuditQuery {
    #[serde(default)]
    action: String,
    /// The cursor of the previous page's last entry.
    #[serde(default)]
    after: String,
}

/// Changes shown on one page of the log, newest first.
const ENTRIES_PER_PAGE: u64 = 100;

#[get("/console/audit")]
async fn audit_page(
    user: ConsoleUser,
    db: web::Data<Db>,
    q: web::Query<AuditQuery>,
) -> Result<HttpResponse, PageError> {
    let q = q.into_inner();
    let action = q.action.trim().to_owned();
    let href = |cursor: Option<&str>| list_href("/console/audit", &[("action", &action)], cursor);
    let (fetched, link_error) = match page_start(&q.after) {
        Ok(after) => (
            audit::list(
                &db,
                user.operator_id(),
                Some(&action),
                after,
                ENTRIES_PER_PAGE + 1,
            )
            .await?,
            None,
        ),
        Err(BadLink) => (
            Vec::new(),
            Some("is not one this log made: start again from the newest changes"),
        ),
    };
    let Page {
        items: entries,
        next_cursor,
    } = page(fetched, ENTRIES_PER_PAGE, |e| (e.at, e.id.clone()), |e| e);
    let older = next_cursor.map(|cursor| href(Some(&cursor)));
    let newest = (!q.after.is_empty()).then(|| href(None));
    html(AuditPage {
        nav: user.nav("audit"),
        entries,
        action,
        older,
        newest,
        link_error,
    })
}
