//! Lots: the list (status, capacity, bids, best offer, fill rate, time to close; filters by
//! resource, date and status, the lots in play unless a status is chosen; 50 a page), the
//! create/edit form (the API's validation, each error beside its field), and open, cancel
//! (with a confirmation that counts what it undoes) and capacity.

use std::collections::HashMap;

use actix_web::{HttpResponse, get, post, web};
use askama::Template;
use chrono::{DateTime, NaiveDate, NaiveDateTime, Utc};
use serde::Deserialize;

use super::{
    BadLink, ConsoleUser, CsrfForm, FormErrors, Nav, PageError, html, html_invalid, list_href,
    page_start, see_other,
};
use crate::domain::lot::LotStatus;
use crate::domain::validation::FieldErrors;
use crate::http::api::lots::{LotInput, LotView, view};
use crate::http::pagination::{Page, page};
use crate::services::lots::{self, LotError, LotFilter, StatusFilter};
use crate::services::review;
use crate::services::{insights, lots as lot_service};
use crate::store::Db;

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.service(list)
        .service(new_form)
        .service(create)
        .service(detail)
        .service(edit_form)
        .service(edit)
        .service(open)
        .service(cancel_confirm)
        .service(cancel)
        .service(change_capacity);
}

// ---------------------------------------------------------------- list

#[derive(Debug, Default, Clone, Deserialize)]
pub struct ListQuery {
    #[serde(default)]
    status: String,
    #[serde(default)]
    resource: String,
    #[serde(default)]
    date_from: String,
    #[serde(default)]
    date_to: String,
    /// Where this page starts: the cursor of the previous page's last lot.
    #[serde(default)]
    after: String,
}

impl ListQuery {
    /// This list's address with the same filters, starting after `cursor` (from the start
    /// when `None`).
    fn href(&self, cursor: Option<&str>) -> String {
        let filters = [
            ("resource", self.resource.as_str()),
            ("date_from", &self.date_from),
            ("date_to", &self.date_to),
            ("status", &self.status),
        ];
        list_href("/console/lots", &filters, cursor)
    }
}

/// Lots shown on one page of the list, by closing time, earliest first.
const LOTS_PER_PAGE: u64 = 50;

/// The status filter's value for every lot. Without one the list shows the lots still in
/// play: that is an operator's work, and a year of settled lots would otherwise fill the
/// first pages.
const ANY_STATUS: &str = "any";

pub struct LotRow {
    pub id: String,
    pub title: String,
    pub resource: String,
    pub service_date: String,
    pub status: String,
    pub capacity: u32,
    pub bids: i64,
    pub best_offer: String,
    pub fill_rate: String,
    pub time_to_close: String,
}

#[derive(Template)]
#[template(path = "console/lots.html")]
struct ListPage {
    nav: Nav,
    rows: Vec<LotRow>,
    /// The next page's address, when more lots match.
    next_page: Option<String>,
    /// The first page's address, when this is a later one.
    first_page: Option<String>,
    query: ListQuery,
    statuses: Vec<&'static str>,
    errors: FormErrors,
    notice: Option<String>,
}

impl ListPage {
    fn status_selected(&self, status: &str) -> bool {
        self.query.status == status
    }

    /// A status the list refused, kept selected so that the form sent again asks the same
    /// (and is refused the same) rather than quietly showing the lots in play.
    fn refused_status(&self) -> Option<&str> {
        self.errors
            .for_field("status")
            .map(|_| self.query.status.as_str())
    }

    /// Settled and cancelled lots are left out: the default filter.
    fn in_play_only(&self) -> bool {
        self.query.status.is_empty()
    }

    /// This list with the same filters and every status.
    fn any_status_href(&self) -> String {
        ListQuery {
            status: ANY_STATUS.to_owned(),
            after: String::new(),
            ..self.query.clone()
        }
        .href(None)
    }
}

/// "2 d 4 h", "35 min", or "closed".
pub fn time_to_close(closes_at: DateTime<Utc>, now: DateTime<Utc>) -> String {
    let left = closes_at - now;
    if left.num_seconds() <= 0 {
        return "closed".into();
    }
    let (d, h, m) = (
        left.num_days(),
        left.num_hours() % 24,
        left.num_minutes() % 60,
    );
    if d > 0 {
        format!("{d} d {h} h")
    } else if h > 0 {
        format!("{h} h {m} min")
    } else {
        format!("{} min", m.max(1))
    }
}

#[derive(Deserialize)]
struct Notice {
    #[serde(default)]
    done: String,
}

#[get("/console/lots")]
async fn list(
    user: ConsoleUser,
    db: web::Data<Db>,
    query: web::Query<ListQuery>,
    notice: web::Query<Notice>,
) -> Result<HttpResponse, PageError> {
    let query = query.into_inner();
    let mut errors = FieldErrors::new();
    let status = match query.status.as_str() {
        "" => StatusFilter::InPlay,
        ANY_STATUS => StatusFilter::Any,
        s => errors
            .check(
                "status",
                LotStatus::parse(s).map_err(|e| format!("{e}, or {ANY_STATUS}")),
            )
            .map_or(StatusFilter::Any, StatusFilter::One),
    };
    let date = |field: &str, text: &str, errors: &mut FieldErrors| match text {
        "" => None,
        t => errors.check(
            field,
            NaiveDate::parse_from_str(t, "%Y-%m-%d").map_err(|_| "must be a date like 2026-12-24"),
        ),
    };
    let filter = LotFilter {
        status,
        resource: Some(query.resource.trim().to_owned()).filter(|r| !r.is_empty()),
        service_date_from: date("date_from", &query.date_from, &mut errors),
        service_date_to: date("date_to", &query.date_to, &mut errors),
    };
    let after = errors
        .check(
            "after",
            page_start(&query.after)
                .map_err(|BadLink| "is not one this list made: start again from the first page"),
        )
        .flatten();
    let fetched = if errors.is_empty() {
        lots::list(&db, user.operator_id(), &filter, after, LOTS_PER_PAGE + 1).await?
    } else {
        vec![]
    };
    let Page {
        items: models,
        next_cursor,
    } = page(
        fetched,
        LOTS_PER_PAGE,
        |l| (l.closes_at, l.id.clone()),
        |l| l,
    );
    let next_page = next_cursor.map(|cursor| query.href(Some(&cursor)));
    let first_page = (!query.after.is_empty()).then(|| query.href(None));
    let ids: Vec<String> = models.iter().map(|l| l.id.clone()).collect();
    let stats = lots::bid_stats(&db, &ids).await?;
    let fill = insights::fill(&db, &ids).await?;
    let now = Utc::now();
    let mut rows = Vec::new();
    for m in models {
        let s = stats
            .iter()
            .find(|(id, ..)| *id == m.id)
            .map(|(_, n, b)| (*n, *b));
        let f = fill.get(&m.id).copied().unwrap_or_default();
        let awarded = matches!(m.status.as_str(), "awarded" | "settled");
        let v = view(m, s).map_err(|_| PageError::Internal)?;
        let biddable = i64::from(v.capacity.saturating_sub(v.entitlement_units)).max(1);
        let units = if awarded { f.units_won } else { f.units_bid };
        rows.push(LotRow {
            fill_rate: format!("{} %", (units * 100 / biddable).min(999)),
            time_to_close: time_to_close(v.closes_at, now),
            best_offer: v
                .best_offer
                .map(|b| format!("{b} {}", v.currency))
                .unwrap_or_else(|| "—".into()),
            bids: v.active_bids,
            capacity: v.capacity,
            status: v.status,
            service_date: v.service_date.to_string(),
            resource: v.resource,
            title: v.title,
            id: v.id,
        });
    }
    html(ListPage {
        nav: user.nav("lots"),
        rows,
        next_page,
        first_page,
        query,
        statuses: LotStatus::ALL.iter().map(|s| s.as_str()).collect(),
        errors: FormErrors::from_fields(&errors),
        notice: notice_text(&notice.done),
    })
}

// ---------------------------------------------------------------- form

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Text,
    Number,
    Date,
    DateTime,
    Select(&'static [&'static str]),
    Check,
}

/// The lot form's fields, in the order shown, with the API's field names.
const FIELDS: &[(&str, &str, Kind, &str)] = &[
    (
        "title",
        "Title",
        Kind::Text,
        "Shown to travellers. Left empty on creation: resource: from → to.",
    ),
    (
        "resource_kind",
        "Kind",
        Kind::Select(&["seat", "room", "car"]),
        "",
    ),
    (
        "resource",
        "Resource",
        Kind::Text,
        "A flight number, a property code, a rental branch.",
    ),
    (
        "service_date",
        "Service date",
        Kind::Date,
        "The flight date, the night, the rental day. Bidding closes by its end.",
    ),
    ("from_class", "From class", Kind::Text, ""),
    ("to_class", "To class", Kind::Text, ""),
    (
        "class_rank",
        "Class rank",
        Kind::Number,
        "Position of the class on the resource's ladder, higher is better.",
    ),
    ("capacity", "Capacity (units)", Kind::Number, ""),
    (
        "entitlement_units",
        "Units taken by entitlements",
        Kind::Number,
        "Status or points upgrades, cleared before paid bids.",
    ),
    (
        "currency",
        "Currency",
        Kind::Text,
        "ISO 4217 code, such as EUR.",
    ),
    (
        "reserve",
        "Reserve per person",
        Kind::Text,
        "The minimum offer, such as 150.00.",
    ),
    ("maximum", "Maximum per person", Kind::Text, ""),
    (
        "upgrade_now",
        "Upgrade-now price per person",
        Kind::Text,
        "Optional fixed price taken at once while units are free.",
    ),
    ("taxes_included", "Prices include taxes", Kind::Check, ""),
    (
        "opens_at",
        "Bidding opens (UTC)",
        Kind::DateTime,
        "Empty: now.",
    ),
    (
        "closes_at",
        "Bidding closes (UTC)",
        Kind::DateTime,
        "The server's deadline, by the end of the service date in the lot's time zone. Moving it tells every active bidder.",
    ),
    (
        "time_zone",
        "Time zone",
        Kind::Text,
        "IANA name, such as Europe/Paris: the lot's days and the times travellers read.",
    ),
    (
        "award_policy",
        "Award policy",
        Kind::Select(&["priority", "max_revenue", "uniform_price"]),
        "",
    ),
    (
        "tier_weight_pct",
        "Loyalty tier weight (%)",
        Kind::Number,
        "0: tiers only break ties.",
    ),
    (
        "payment_mode",
        "Payment",
        Kind::Select(&["hold", "charge_on_award"]),
        "hold: card authorised at bid (closes within 6 days).",
    ),
    (
        "payment_grace_seconds",
        "Grace to fix a failed payment (s)",
        Kind::Number,
        "",
    ),
    (
        "review_required",
        "Review the award before charging",
        Kind::Check,
        "",
    ),
    (
        "chained_capacity",
        "Chained capacity (a higher-class winner frees a unit here)",
        Kind::Check,
        "",
    ),
];

pub struct Field {
    pub name: &'static str,
    pub label: &'static str,
    pub hint: &'static str,
    pub input_type: &'static str,
    pub options: Vec<&'static str>,
    pub value: String,
    pub checked: bool,
    pub error: Option<String>,
}

impl Field {
    pub fn selected(&self, option: &str) -> bool {
        self.value == option
    }

    pub fn is_select(&self) -> bool {
        !self.options.is_empty()
    }
    pub fn is_check(&self) -> bool {
        self.input_type == "checkbox"
    }
}

fn fields(values: &HashMap<String, String>, errors: &FormErrors) -> Vec<Field> {
    FIELDS
        .iter()
        .map(|&(name, label, kind, hint)| {
            let value = values.get(name).cloned().unwrap_or_default();
            Field {
                name,
                label,
                hint,
                input_type: match kind {
                    Kind::Text | Kind::Select(_) => "text",
                    Kind::Number => "number",
                    Kind::Date => "date",
                    Kind::DateTime => "datetime-local",
                    Kind::Check => "checkbox",
                },
                options: match kind {
                    Kind::Select(o) => o.to_vec(),
                    _ => vec![],
                },
                checked: kind == Kind::Check && (value == "on" || value == "true"),
                value,
                error: errors.for_field(name),
            }
        })
        .collect()
}

fn local(t: DateTime<Utc>) -> String {
    t.format("%Y-%m-%dT%H:%M").to_string()
}

/// The form's values for an existing lot.
fn values_of(v: &LotView) -> HashMap<String, String> {
    let b = |x: bool| if x { "on" } else { "" }.to_owned();
    [
        ("title", v.title.clone()),
        ("resource_kind", v.resource_kind.clone()),
        ("resource", v.resource.clone()),
        ("service_date", v.service_date.to_string()),
        ("from_class", v.from_class.clone()),
        ("to_class", v.to_class.clone()),
        ("class_rank", v.class_rank.to_string()),
        ("capacity", v.capacity.to_string()),
        ("entitlement_units", v.entitlement_units.to_string()),
        ("currency", v.currency.clone()),
        ("reserve", v.reserve.clone()),
        ("maximum", v.maximum.clone()),
        ("upgrade_now", v.upgrade_now.clone().unwrap_or_default()),
        ("taxes_included", b(v.taxes_included)),
        ("opens_at", local(v.opens_at)),
        ("closes_at", local(v.closes_at)),
        ("time_zone", v.time_zone.clone()),
        ("award_policy", v.award_policy.clone()),
        ("tier_weight_pct", v.tier_weight_pct.to_string()),
        ("payment_mode", v.payment_mode.clone()),
        ("payment_grace_seconds", v.payment_grace_seconds.to_string()),
        ("review_required", b(v.review_required)),
        ("chained_capacity", b(v.chained_capacity)),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    .collect()
}

fn defaults() -> HashMap<String, String> {
    [
        ("resource_kind", "seat"),
        ("class_rank", "1"),
        ("entitlement_units", "0"),
        ("taxes_included", "on"),
        ("time_zone", "UTC"),
        ("award_policy", "priority"),
        ("tier_weight_pct", "0"),
        ("payment_mode", "hold"),
        ("payment_grace_seconds", "600"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v.to_owned()))
    .collect()
}

/// Reads the form into the API's input. `only_changed`: on edit, a field equal to the lot's
/// current value is left out, as a PATCH would leave it out.
fn input_from_form(
    form: &HashMap<String, String>,
    current: Option<&HashMap<String, String>>,
) -> Result<LotInput, FieldErrors> {
    let mut errors = FieldErrors::new();
    let get = |name: &str| -> Option<String> {
        let kind = FIELDS.iter().find(|f| f.0 == name).map(|f| f.2);
        let value = match kind {
            Some(Kind::Check) => {
                if form.get(name).is_some_and(|v| v == "on" || v == "true") {
                    "on".to_owned()
                } else {
                    String::new()
                }
            }
            _ => form
                .get(name)
                .map(|v| v.trim().to_owned())
                .unwrap_or_default(),
        };
        if let Some(cur) = current
            && cur.get(name).map(String::as_str).unwrap_or("") == value
        {
            return None;
        }
        Some(value)
    };
    let text = |name: &str| get(name).filter(|v| !v.is_empty());
    let number = |name: &str, errors: &mut FieldErrors| -> Option<u32> {
        let v = text(name)?;
        errors.check(
            name,
            v.parse::<u32>()
                .map_err(|_| "must be a whole number, 0 or more"),
        )
    };
    let capacity = number("capacity", &mut errors);
    let class_rank = number("class_rank", &mut errors);
    let entitlement_units = number("entitlement_units", &mut errors);
    let tier_weight_pct = number("tier_weight_pct", &mut errors);
    let payment_grace_seconds = number("payment_grace_seconds", &mut errors);
    let date = text("service_date").and_then(|v| {
        errors.check(
            "service_date",
            NaiveDate::parse_from_str(&v, "%Y-%m-%d").map_err(|_| "must be a date like 2026-12-24"),
        )
    });
    let mut when = |name: &str| {
        text(name).and_then(|v| {
            errors.check(
                name,
                NaiveDateTime::parse_from_str(&v, "%Y-%m-%dT%H:%M")
                    .or_else(|_| NaiveDateTime::parse_from_str(&v, "%Y-%m-%dT%H:%M:%S"))
                    .map(|t| t.and_utc())
                    .map_err(|_| "must be a date and time like 2026-12-24T18:00 (UTC)"),
            )
        })
    };
    let opens_at = when("opens_at");
    let closes_at = when("closes_at");
    // On an edit an emptied field is not "unchanged": kept silently, the operator would read
    // "Changes saved" over a value they meant to remove.
    if current.is_some() {
        let must_keep_a_value =
            |f: &&(&str, &str, Kind, &str)| !matches!(f.2, Kind::Check) && f.0 != "upgrade_now";
        for (name, ..) in FIELDS.iter().filter(must_keep_a_value) {
            // Sent empty, over a value: a field left out of the form stays as it is.
            if form.contains_key(*name) && get(name).is_some_and(|v| v.is_empty()) {
                errors.add(*name, "cannot be emptied: give a value");
            }
        }
    }
    let check = |name: &str| get(name).map(|v| v == "on");
    let input = LotInput {
        resource_kind: text("resource_kind"),
        resource: text("resource"),
        service_date: date,
        title: text("title"),
        from_class: text("from_class"),
        to_class: text("to_class"),
        class_rank,
        capacity,
        entitlement_units,
        currency: text("currency").map(|c| c.to_uppercase()),
        reserve: text("reserve"),
        maximum: text("maximum"),
        // Emptied on edit: no upgrade-now price any more.
        upgrade_now: get("upgrade_now")
            .filter(|v| !v.is_empty() || current.is_some())
            .map(Some),
        taxes_included: check("taxes_included"),
        opens_at,
        closes_at,
        time_zone: text("time_zone"),
        award_policy: text("award_policy"),
        tier_weight_pct,
        payment_mode: text("payment_mode"),
        payment_grace_seconds,
        review_required: check("review_required"),
        chained_capacity: check("chained_capacity"),
        open: None,
    };
    errors.into_result().map(|()| input)
}

#[derive(Template)]
#[template(path = "console/lot_form.html")]
struct FormPage {
    nav: Nav,
    heading: String,
    action: String,
    lot_id: Option<String>,
    fields: Vec<Field>,
    errors: FormErrors,
    creating: bool,
    open_now: bool,
    general_error: Option<String>,
}

#[get("/console/lots/new")]
async fn new_form(user: ConsoleUser) -> Result<HttpResponse, PageError> {
    html(FormPage {
        nav: user.nav("lots"),
        heading: "New lot".into(),
        action: "/console/lots".into(),
        lot_id: None,
        fields: fields(&defaults(), &FormErrors::default()),
        errors: FormErrors::default(),
        creating: true,
        open_now: false,
        general_error: None,
    })
}

#[post("/console/lots")]
async fn create(
    user: ConsoleUser,
    db: web::Data<Db>,
    form: web::Form<HashMap<String, String>>,
) -> Result<HttpResponse, PageError> {
    let form = form.into_inner();
    user.check_csrf(form.get("csrf").map(String::as_str).unwrap_or(""))?;
    let open_now = form.get("open").is_some_and(|v| v == "on");
    let result = match input_from_form(&form, None) {
        Ok(input) => match input.into_spec(None) {
            Ok(spec) => lots::create(&db, &user.actor(), spec, open_now).await,
            Err(e) => Err(LotError::Invalid(e)),
        },
        Err(e) => Err(LotError::Invalid(e)),
    };
    match result {
        Ok(created) => Ok(see_other(&format!(
            "/console/lots/{}?done=created",
            created.id
        ))),
        Err(LotError::Invalid(errors)) => {
            let errors = FormErrors::from_fields(&errors);
            html_invalid(FormPage {
                nav: user.nav("lots"),
                heading: "New lot".into(),
                action: "/console/lots".into(),
                lot_id: None,
                fields: fields(&form, &errors),
                errors,
                creating: true,
                open_now,
                general_error: None,
            })
        }
        Err(e) => Err(e.into()),
    }
}

#[get("/console/lots/{id}/edit")]
async fn edit_form(
    user: ConsoleUser,
    db: web::Data<Db>,
    id: web::Path<String>,
) -> Result<HttpResponse, PageError> {
    let v = lot_view(&db, &user, &id).await?;
    html(FormPage {
        nav: user.nav("lots"),
        heading: format!("Edit {}", v.title),
        action: format!("/console/lots/{}/edit", v.id),
        lot_id: Some(v.id.clone()),
        fields: fields(&values_of(&v), &FormErrors::default()),
        errors: FormErrors::default(),
        creating: false,
        open_now: false,
        general_error: None,
    })
}

#[post("/console/lots/{id}/edit")]
async fn edit(
    user: ConsoleUser,
    db: web::Data<Db>,
    id: web::Path<String>,
    form: web::Form<HashMap<String, String>>,
) -> Result<HttpResponse, PageError> {
    let form = form.into_inner();
    user.check_csrf(form.get("csrf").map(String::as_str).unwrap_or(""))?;
    let v = lot_view(&db, &user, &id).await?;
    let current = values_of(&v);
    let result = match input_from_form(&form, Some(&current)) {
        Ok(input) => {
            lots::update(&db, &user.actor(), &v.id, |base| {
                input.into_spec(Some(base))
            })
            .await
        }
        Err(e) => Err(LotError::Invalid(e)),
    };
    let (errors, general_error) = match result {
        Ok(updated) => {
            return Ok(see_other(&format!(
                "/console/lots/{}?done=saved",
                updated.id
            )));
        }
        Err(LotError::Invalid(errors)) => (FormErrors::from_fields(&errors), None),
        Err(e @ LotError::WrongState { .. }) => (FormErrors::default(), Some(e.to_string())),
        Err(e) => return Err(e.into()),
    };
    html_invalid(FormPage {
        nav: user.nav("lots"),
        heading: format!("Edit {}", v.title),
        action: format!("/console/lots/{}/edit", v.id),
        lot_id: Some(v.id.clone()),
        fields: fields(&form, &errors),
        errors,
        creating: false,
        open_now: false,
        general_error,
    })
}

// ---------------------------------------------------------------- one lot

pub async fn lot_view(db: &Db, user: &ConsoleUser, id: &str) -> Result<LotView, PageError> {
    let m = lot_service::get(db, user.operator_id(), id).await?;
    let stats = lots::bid_stats(db, std::slice::from_ref(&m.id)).await?;
    let s = stats.into_iter().next().map(|(_, n, b)| (n, b));
    view(m, s).map_err(|_| PageError::Internal)
}

#[derive(Template)]
#[template(path = "console/lot.html")]
struct DetailPage {
    nav: Nav,
    lot: LotView,
    time_to_close: String,
    notice: Option<String>,
    error: Option<String>,
    capacity_error: Option<String>,
    can_edit: bool,
    can_open: bool,
    can_cancel: bool,
    can_resize: bool,
    /// The award waits for the operator before anything is charged.
    awaiting_review: bool,
}

fn notice_text(done: &str) -> Option<String> {
    Some(
        match done {
            "created" => "Lot created.",
            "saved" => "Changes saved.",
            "opened" => "The lot is open for bidding.",
            "cancelled" => "The lot is cancelled: holds are being released and charges refunded.",
            "capacity" => "Capacity changed.",
            _ => return None,
        }
        .to_owned(),
    )
}

async fn detail_page(
    db: &Db,
    user: &ConsoleUser,
    id: &str,
    notice: Option<String>,
    error: Option<String>,
    capacity_error: Option<String>,
) -> Result<DetailPage, PageError> {
    let lot = lot_view(db, user, id).await?;
    let status = LotStatus::parse(&lot.status).map_err(|_| PageError::Internal)?;
    let awaiting_review = review::is_waiting(db, &lot.id).await?;
    Ok(DetailPage {
        awaiting_review,
        nav: user.nav("lots"),
        time_to_close: time_to_close(lot.closes_at, Utc::now()),
        can_edit: matches!(status, LotStatus::Draft | LotStatus::Open),
        can_open: status == LotStatus::Draft,
        can_cancel: status != LotStatus::Cancelled && status != LotStatus::Settled,
        can_resize: !matches!(status, LotStatus::Cancelled | LotStatus::Closed),
        lot,
        notice,
        error,
        capacity_error,
    })
}

#[get("/console/lots/{id}")]
async fn detail(
    user: ConsoleUser,
    db: web::Data<Db>,
    id: web::Path<String>,
    notice: web::Query<Notice>,
) -> Result<HttpResponse, PageError> {
    let notice = notice_text(&notice.done);
    html(detail_page(&db, &user, &id, notice, None, None).await?)
}

#[post("/console/lots/{id}/open")]
async fn open(
    user: ConsoleUser,
    db: web::Data<Db>,
    id: web::Path<String>,
    form: web::Form<CsrfForm>,
) -> Result<HttpResponse, PageError> {
    user.check_csrf(&form.csrf)?;
    match lots::open(&db, &user.actor(), &id).await {
        Ok(l) => Ok(see_other(&format!("/console/lots/{}?done=opened", l.id))),
        Err(e @ (LotError::Invalid(_) | LotError::WrongState { .. })) => {
            let page = detail_page(&db, &user, &id, None, Some(e.to_string()), None).await?;
            html_invalid(page)
        }
        Err(e) => Err(e.into()),
    }
}

#[derive(Template)]
#[template(path = "console/cancel.html")]
struct CancelPage {
    nav: Nav,
    lot: LotView,
    holds: u64,
    charges: u64,
    reason: String,
    error: Option<String>,
}

#[get("/console/lots/{id}/cancel")]
async fn cancel_confirm(
    user: ConsoleUser,
    db: web::Data<Db>,
    id: web::Path<String>,
) -> Result<HttpResponse, PageError> {
    let lot = lot_view(&db, &user, &id).await?;
    let impact = lot_service::cancel_impact(&db, user.operator_id(), &lot.id).await?;
    html(CancelPage {
        nav: user.nav("lots"),
        lot,
        holds: impact.holds,
        charges: impact.charges,
        reason: String::new(),
        error: None,
    })
}

#[derive(Deserialize)]
struct CancelForm {
    csrf: String,
    #[serde(default)]
    reason: String,
}

#[post("/console/lots/{id}/cancel")]
async fn cancel(
    user: ConsoleUser,
    db: web::Data<Db>,
    id: web::Path<String>,
    form: web::Form<CancelForm>,
) -> Result<HttpResponse, PageError> {
    user.check_csrf(&form.csrf)?;
    let reason = form.reason.trim();
    let error = if reason.is_empty() || reason.chars().count() > 500 {
        Some("Give a reason of 1 to 500 characters: every bidder reads it.".to_owned())
    } else {
        match lots::cancel(&db, &user.actor(), &id, reason).await {
            Ok(l) => return Ok(see_other(&format!("/console/lots/{}?done=cancelled", l.id))),
            Err(e @ LotError::WrongState { .. }) => Some(e.to_string()),
            Err(e) => return Err(e.into()),
        }
    };
    let lot = lot_view(&db, &user, &id).await?;
    let impact = lot_service::cancel_impact(&db, user.operator_id(), &lot.id).await?;
    html_invalid(CancelPage {
        nav: user.nav("lots"),
        lot,
        holds: impact.holds,
        charges: impact.charges,
        reason: reason.to_owned(),
        error,
    })
}

#[derive(Deserialize)]
struct CapacityForm {
    csrf: String,
    capacity: String,
}

#[post("/console/lots/{id}/capacity")]
async fn change_capacity(
    user: ConsoleUser,
    db: web::Data<Db>,
    id: web::Path<String>,
    form: web::Form<CapacityForm>,
) -> Result<HttpResponse, PageError> {
    user.check_csrf(&form.csrf)?;
    let error = match form.capacity.trim().parse::<u32>() {
        Err(_) => "must be a whole number, 0 or more".to_owned(),
        Ok(c) => match lots::set_capacity(&db, &user.actor(), &id, c).await {
            Ok(l) => return Ok(see_other(&format!("/console/lots/{}?done=capacity", l.id))),
            Err(LotError::Invalid(e)) => {
                e.0.iter()
                    .map(|e| e.message.clone())
                    .collect::<Vec<_>>()
                    .join("; ")
            }
            Err(e @ LotError::WrongState { .. }) => e.to_string(),
            Err(e) => return Err(e.into()),
        },
    };
    html_invalid(detail_page(&db, &user, &id, None, None, Some(error)).await?)
}
