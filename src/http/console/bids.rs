//! A lot's bids (sortable, CSV export), its award once made (winners, standby, reasons,
//! payments, revenue, and the review forms while it waits for the operator), and the
//! read-only "what would each policy earn now" preview.

use std::collections::HashMap;

use actix_web::http::header;
use actix_web::{HttpResponse, get, web};
use askama::Template;
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter, QueryOrder};
use serde::Deserialize;

use super::lots::lot_view;
use super::{ConsoleUser, Nav, PageError, html, html_invalid, money};
use crate::domain::award::AwardStatus;
use crate::domain::outcome::reason_text;
use crate::http::api::lots::LotView;
use crate::services::award::PlanRecord;
use crate::services::preview;
use crate::store::entities::{award, bid, booking, payment};
use crate::store::{Db, payments as store_payments};

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.service(bids_csv).service(bids_page).service(policies);
}

pub struct BidRow {
    pub id: String,
    pub reference: String,
    pub last_name: String,
    pub amount: String,
    pub amount_minor: i64,
    pub units: i32,
    pub total: String,
    pub tier: i32,
    pub status: String,
    pub submitted_at: String,
    pub submitted_ts: i64,
    pub outcome: String,
}

#[derive(Debug, Deserialize)]
struct SortQuery {
    #[serde(default)]
    sort: String,
    #[serde(default)]
    dir: String,
    /// What the review forms just did, for the notice (never text a link could forge).
    #[serde(default)]
    done: String,
}

/// Rows drawn on the page; a lot with more bids is read in full through the CSV export.
const MAX_ROWS: usize = 1_000;

const SORTS: &[&str] = &["amount", "units", "total", "tier", "submitted", "status"];

async fn load_bids(db: &Db, lot: &LotView) -> Result<Vec<BidRow>, PageError> {
    let rows = bid::Entity::find()
        .filter(bid::Column::LotId.eq(&lot.id))
        .find_also_related(booking::Entity)
        .order_by_desc(bid::Column::AmountMinor)
        .order_by_asc(bid::Column::Id)
        .all(db)
        .await?;
    Ok(rows
        .into_iter()
        .map(|(b, bk)| {
            let (reference, last_name) = bk
                .map(|b| (b.reference, b.last_name))
                .unwrap_or_else(|| ("(erased)".into(), "(erased)".into()));
            BidRow {
                amount: money(b.amount_minor, &lot.currency),
                total: money(b.amount_minor * i64::from(b.units), &lot.currency),
                amount_minor: b.amount_minor,
                units: b.units,
                tier: b.tier,
                submitted_at: b.submitted_at.format("%Y-%m-%d %H:%M:%S").to_string(),
                submitted_ts: b.submitted_at.timestamp_millis(),
                outcome: b
                    .outcome_reason
                    .as_deref()
                    .map(|r| reason_text(r, b.units))
                    .unwrap_or_default(),
                status: b.status,
                id: b.id,
                reference,
                last_name,
            }
        })
        .collect())
}

fn sort_rows(rows: &mut [BidRow], sort: &str, descending: bool) {
    rows.sort_by(|a, b| {
        let o = match sort {
            "units" => a.units.cmp(&b.units),
            "total" => {
                (a.amount_minor * i64::from(a.units)).cmp(&(b.amount_minor * i64::from(b.units)))
            }
            "tier" => a.tier.cmp(&b.tier),
            "submitted" => a.submitted_ts.cmp(&b.submitted_ts),
            "status" => a.status.cmp(&b.status),
            _ => a.amount_minor.cmp(&b.amount_minor),
        };
        let o = if descending { o.reverse() } else { o };
        o.then_with(|| a.id.cmp(&b.id))
    });
}

pub struct Column {
    pub key: &'static str,
    pub label: &'static str,
    pub href: String,
    /// `ascending`, `descending` or `none`, for aria-sort.
    pub aria: &'static str,
}

pub struct WinnerRow {
    pub id: String,
    pub reference: String,
    pub units: u8,
    pub price: String,
    pub total: String,
    pub status: String,
    pub payment: String,
}

pub struct Outcome {
    pub policy: String,
    pub status: String,
    pub revenue: String,
    pub clearing_price: Option<String>,
    pub winners: Vec<WinnerRow>,
    pub standby: Vec<String>,
    pub losers: Vec<(String, String)>,
    pub fingerprint: String,
    pub charged: String,
    pub refunded: String,
}

#[derive(Template)]
#[template(path = "console/bids.html")]
struct BidsPage {
    nav: Nav,
    lot: LotView,
    rows: Vec<BidRow>,
    columns: Vec<Column>,
    sort: String,
    descending: bool,
    outcome: Option<Outcome>,
    /// The review forms, while the award waits for the operator.
    review: Option<Review>,
    notice: Option<&'static str>,
    /// Why a review form did nothing; shown even when the award no longer waits.
    error: Option<String>,
    /// All bids of the lot, when more than the rows shown.
    total: usize,
}

/// What the review forms were sent with, shown again beside their errors.
#[derive(Debug, Default)]
pub struct ReviewForm {
    pub ticked: Vec<String>,
    pub reason: String,
    /// Why nothing was done, at the top of the page.
    pub error: Option<String>,
    pub bids_error: Option<String>,
    pub reason_error: Option<String>,
}

/// An award waiting for review: the winners that can still be taken out, and the forms.
pub struct Review {
    pub candidates: Vec<Candidate>,
    pub form: ReviewForm,
}

pub struct Candidate {
    pub id: String,
    pub label: String,
    pub ticked: bool,
}

fn notice_text(done: &str) -> Option<&'static str> {
    match done {
        "approved" => Some("Award approved: the winners are being charged and told."),
        "taken_out" => Some(
            "Taken out of the award: those travellers are told your reason and their holds are released; the next bids on standby moved up where they fit. The award still waits for your approval.",
        ),
        _ => None,
    }
}

#[get("/console/lots/{id}/bids")]
async fn bids_page(
    user: ConsoleUser,
    db: web::Data<Db>,
    id: web::Path<String>,
    q: web::Query<SortQuery>,
) -> Result<HttpResponse, PageError> {
    let notice = notice_text(&q.done);
    html(
        page(
            &db,
            &user,
            &id,
            &q.sort,
            &q.dir,
            notice,
            ReviewForm::default(),
        )
        .await?,
    )
}

/// The bids page again, in its default order, with what the review forms were sent with and
/// why nothing was done: 422, as every refused console form.
pub async fn review_refused(
    db: &Db,
    user: &ConsoleUser,
    id: &str,
    form: ReviewForm,
) -> Result<HttpResponse, PageError> {
    html_invalid(page(db, user, id, "", "", None, form).await?)
}

async fn page(
    db: &Db,
    user: &ConsoleUser,
    id: &str,
    sort: &str,
    dir: &str,
    notice: Option<&'static str>,
    mut form: ReviewForm,
) -> Result<BidsPage, PageError> {
    let error = form.error.take();
    let lot = lot_view(db, user, id).await?;
    let sort = if SORTS.contains(&sort) {
        sort.to_owned()
    } else {
        "amount".into()
    };
    let descending = dir != "asc";
    let mut rows = load_bids(db, &lot).await?;
    sort_rows(&mut rows, &sort, descending);
    let columns = [
        ("amount", "Per person"),
        ("units", "Party"),
        ("total", "Total"),
        ("tier", "Tier"),
        ("submitted", "Placed (UTC)"),
        ("status", "Status"),
    ]
    .into_iter()
    .map(|(key, label)| {
        let here = key == sort;
        // Clicking the current column flips it; another column starts high to low.
        let next = if here && descending { "asc" } else { "desc" };
        Column {
            key,
            label,
            href: format!("/console/lots/{}/bids?sort={key}&dir={next}", lot.id),
            aria: match (here, descending) {
                (false, _) => "none",
                (true, true) => "descending",
                (true, false) => "ascending",
            },
        }
    })
    .collect();
    let outcome = outcome(db, &lot, &rows).await?;
    let review = outcome
        .as_ref()
        .filter(|o| o.status == AwardStatus::PendingReview.as_str())
        .map(|o| Review {
            candidates: o
                .winners
                .iter()
                .filter(|w| w.status == "won")
                .map(|w| Candidate {
                    label: format!("{}: {} × {} = {}", w.reference, w.units, w.price, w.total),
                    ticked: form.ticked.contains(&w.id),
                    id: w.id.clone(),
                })
                .collect(),
            form,
        });
    let total = rows.len();
    rows.truncate(MAX_ROWS);
    Ok(BidsPage {
        nav: user.nav("lots"),
        lot,
        rows,
        columns,
        sort,
        descending,
        outcome,
        review,
        notice,
        error,
        total,
    })
}

async fn outcome(db: &Db, lot: &LotView, rows: &[BidRow]) -> Result<Option<Outcome>, PageError> {
    let Some(stored) = award::Entity::find_by_id(lot.id.clone()).one(db).await? else {
        return Ok(None);
    };
    let plan: PlanRecord = serde_json::from_str(&stored.plan).map_err(|e| {
        tracing::error!(lot = %lot.id, error = %e, "stored plan unreadable");
        PageError::Internal
    })?;
    let by_id: HashMap<&str, &BidRow> = rows.iter().map(|r| (r.id.as_str(), r)).collect();
    // Only the winners' payments are listed; the totals are the award's (`of_award`).
    let ids: Vec<String> = plan.winners.iter().map(|w| w.id.clone()).collect();
    let mut payments: HashMap<String, Vec<payment::Model>> = HashMap::new();
    for chunk in ids.chunks(500) {
        for p in payment::Entity::find()
            .filter(payment::Column::BidId.is_in(chunk.iter().cloned()))
            .order_by_asc(payment::Column::CreatedAt)
            .all(db)
            .await?
        {
            payments.entry(p.bid_id.clone()).or_default().push(p);
        }
    }
    let moved = store_payments::of_award(db, &lot.id).await?;
    let reference = |id: &str| {
        by_id
            .get(id)
            .map(|r| r.reference.clone())
            .unwrap_or_else(|| id.to_owned())
    };
    let winners = plan
        .winners
        .iter()
        .map(|w| WinnerRow {
            id: w.id.clone(),
            reference: reference(&w.id),
            units: w.units,
            price: money(w.price_per_unit_minor, &lot.currency),
            total: money(w.total_minor, &lot.currency),
            status: by_id
                .get(w.id.as_str())
                .map(|r| r.status.clone())
                .unwrap_or_default(),
            payment: payments
                .get(&w.id)
                .map(|ps| {
                    ps.iter()
                        .map(|p| {
                            format!(
                                "{} {} {}",
                                p.kind,
                                money(p.amount_minor, &p.currency),
                                p.status
                            )
                        })
                        .collect::<Vec<_>>()
                        .join(", ")
                })
                .unwrap_or_else(|| "none yet".into()),
        })
        .collect();
    Ok(Some(Outcome {
        policy: plan.policy.clone(),
        status: stored.status,
        revenue: money(plan.revenue_minor, &lot.currency),
        clearing_price: plan.clearing_price_minor.map(|m| money(m, &lot.currency)),
        winners,
        standby: plan.standby.iter().map(|id| reference(id)).collect(),
        losers: plan
            .losers
            .iter()
            .map(|l| {
                let party = by_id.get(l.id.as_str()).map(|r| r.units).unwrap_or(1);
                (reference(&l.id), reason_text(&l.reason, party))
            })
            .collect(),
        fingerprint: stored.fingerprint,
        charged: money(moved.charged_minor, &lot.currency),
        refunded: money(moved.refunded_minor, &lot.currency),
    }))
}

/// One cell of a CSV file, quoted, and guarded against spreadsheet formula injection (a
/// traveller's name starting with `=` must not run as a formula in the operator's spreadsheet).
fn cell(value: &str) -> String {
    let guarded = if value.starts_with(['=', '+', '-', '@', '\t', '\r']) {
        format!("'{value}")
    } else {
        value.to_owned()
    };
    format!("\"{}\"", guarded.replace('"', "\"\""))
}

#[get("/console/lots/{id}/bids.csv")]
async fn bids_csv(
    user: ConsoleUser,
    db: web::Data<Db>,
    id: web::Path<String>,
) -> Result<HttpResponse, PageError> {
    let lot = lot_view(&db, &user, &id).await?;
    let rows = load_bids(&db, &lot).await?;
    let mut out = String::from(
        "bid_id,booking_reference,last_name,amount_per_person,units,total,currency,loyalty_tier,status,submitted_at,outcome\n",
    );
    let plain = |minor: i64| {
        crate::money::Currency::parse(&lot.currency)
            .ok()
            .and_then(|c| crate::money::Money::from_minor(minor, c).ok())
            .map(|m| m.to_string())
            .unwrap_or_default()
    };
    for r in &rows {
        let fields = [
            r.id.clone(),
            r.reference.clone(),
            r.last_name.clone(),
            plain(r.amount_minor),
            r.units.to_string(),
            plain(r.amount_minor * i64::from(r.units)),
            lot.currency.clone(),
            r.tier.to_string(),
            r.status.clone(),
            r.submitted_at.clone(),
            r.outcome.clone(),
        ];
        out.push_str(&fields.iter().map(|f| cell(f)).collect::<Vec<_>>().join(","));
        out.push('\n');
    }
    Ok(HttpResponse::Ok()
        .content_type("text/csv; charset=utf-8")
        .insert_header((
            header::CONTENT_DISPOSITION,
            format!("attachment; filename=\"bids-{}.csv\"", lot.id),
        ))
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .body(out))
}

pub struct PolicyRow {
    pub policy: String,
    pub current: bool,
    pub revenue: String,
    pub winners: usize,
    pub units: u32,
    pub clearing_price: String,
    pub error: Option<String>,
}

#[derive(Template)]
#[template(path = "console/policies.html")]
struct PoliciesPage {
    nav: Nav,
    lot: LotView,
    rows: Vec<PolicyRow>,
}

#[get("/console/lots/{id}/policies")]
async fn policies(
    user: ConsoleUser,
    db: web::Data<Db>,
    id: web::Path<String>,
) -> Result<HttpResponse, PageError> {
    let lot = lot_view(&db, &user, &id).await?;
    let previews = preview::policies(&db, user.operator_id(), &lot.id).await?;
    let rows = previews
        .into_iter()
        .map(|p| match p.plan {
            Ok(plan) => PolicyRow {
                policy: p.policy.as_str().into(),
                current: p.current,
                revenue: money(plan.revenue_minor, &lot.currency),
                winners: plan.winners.len(),
                units: plan.winners.iter().map(|w| u32::from(w.units)).sum(),
                clearing_price: plan
                    .clearing_price_minor
                    .map(|m| money(m, &lot.currency))
                    .unwrap_or_else(|| "each pays their offer".into()),
                error: None,
            },
            Err(e) => PolicyRow {
                policy: p.policy.as_str().into(),
                current: p.current,
                revenue: "—".into(),
                winners: 0,
                units: 0,
                clearing_price: "—".into(),
                error: Some(e),
            },
        })
        .collect();
    html(PoliciesPage {
        nav: user.nav("lots"),
        lot,
        rows,
    })
}
