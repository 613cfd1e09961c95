//! The dashboard: upgrade revenue per day, bids per lot, acceptance rate, and where bids fall
//! between reserve and maximum, as server-side SVG charts with the figures beside them.

use actix_web::{HttpResponse, get, web};
use askama::Template;

use super::charts;
use super::{ConsoleUser, Nav, PageError, html, money};
use crate::services::insights;
use crate::store::Db;

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.service(dashboard);
}

pub struct Chart {
    pub svg: String,
    pub table: Vec<(String, String)>,
    pub caption: String,
}

#[derive(Template)]
#[template(path = "console/dashboard.html")]
struct DashboardPage {
    nav: Nav,
    revenue: Vec<Chart>,
    bids: Chart,
    acceptance: String,
    position: Chart,
}

#[get("/console/dashboard")]
async fn dashboard(user: ConsoleUser, db: web::Data<Db>) -> Result<HttpResponse, PageError> {
    let d = insights::dashboard(&db, user.operator_id()).await?;
    let mut revenue: Vec<Chart> = d
        .revenue_per_day
        .iter()
        .map(|(currency, days)| {
            let data: Vec<(String, i64)> = days
                .iter()
                .rev()
                .take(30)
                .rev()
                .map(|(day, minor)| (day.format("%m-%d").to_string(), *minor))
                .collect();
            let caption = format!("Upgrade revenue per day, {currency} (charged less refunded)");
            Chart {
                svg: charts::bars(
                    &format!("revenue-{}", currency.to_lowercase()),
                    &caption,
                    "One bar per day with payments, the last 30 such days.",
                    &data,
                    |m| money(m, currency),
                ),
                table: days
                    .iter()
                    .map(|(day, minor)| (day.to_string(), money(*minor, currency)))
                    .collect(),
                caption,
            }
        })
        .collect();
    if revenue.is_empty() {
        revenue.push(Chart {
            svg: charts::bars(
                "revenue",
                "Upgrade revenue per day",
                "No upgrade has been charged yet.",
                &[],
                |m| m.to_string(),
            ),
            table: vec![],
            caption: "Upgrade revenue per day".into(),
        });
    }
    let bids_caption = "Bids per lot (not withdrawn), latest lots".to_owned();
    let bids = Chart {
        svg: charts::bars(
            "bids-per-lot",
            &bids_caption,
            "One bar per lot, the twelve lots closing last.",
            &d.bids_per_lot,
            |v| v.to_string(),
        ),
        table: d
            .bids_per_lot
            .iter()
            .map(|(t, n)| (t.clone(), n.to_string()))
            .collect(),
        caption: bids_caption,
    };
    let position_data: Vec<(String, i64)> = d
        .position
        .iter()
        .enumerate()
        .map(|(i, n)| (format!("{}–{} %", i * 10, i * 10 + 10), *n))
        .collect();
    let position_caption = "Bids by position between reserve (0 %) and maximum (100 %)".to_owned();
    let position = Chart {
        svg: charts::bars(
            "bid-position",
            &position_caption,
            "Ten buckets of 10 % from the lot's reserve to its maximum.",
            &position_data,
            |v| v.to_string(),
        ),
        table: position_data
            .iter()
            .map(|(l, n)| (l.clone(), n.to_string()))
            .collect(),
        caption: position_caption,
    };
    let acceptance = if d.decided == 0 {
        "no awarded lot yet".to_owned()
    } else {
        format!(
            "{} % ({} of {} bids on awarded lots won)",
            d.accepted * 100 / d.decided,
            d.accepted,
            d.decided
        )
    };
    html(DashboardPage {
        nav: user.nav("dashboard"),
        revenue,
        bids,
        acceptance,
        position,
    })
}
