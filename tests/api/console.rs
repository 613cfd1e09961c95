//! The operator console, through a browser-like client (cookies, forms, no JavaScript): sign-in
//! and lock-out, CSRF, lot forms with errors beside fields, cancel confirmation, bookings import
//! with a preview, bids CSV, policy preview, audit log, and tenant isolation.

use sea_orm::{ColumnTrait, EntityTrait, PaginatorTrait, QueryFilter};
use surclass::services::audit::Actor;
use surclass::services::operator_users::{self, Role};
use surclass::store::entities::{audit_entry, bid, booking, lot};

use crate::store_tests;
use crate::support::{Operator, TestApp, travel_day};

const GOOD_CARD: &str = "4242 4242 4242 4242";
const PASSWORD: &str = "correct horse battery staple";

/// A browser signed in to the console: it keeps cookies and reads CSRF tokens from forms.
struct Browser {
    client: reqwest::Client,
    base: String,
}

struct Page {
    status: u16,
    headers: reqwest::header::HeaderMap,
    body: String,
}

impl Page {
    fn location(&self) -> &str {
        self.headers
            .get("location")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
    }

    /// The value of the first hidden `csrf` field on the page.
    fn csrf(&self) -> String {
        let at = self
            .body
            .find("name=\"csrf\" value=\"")
            .expect("a form with a CSRF token")
            + 19;
        self.body[at..at + self.body[at..].find('"').unwrap()].to_owned()
    }

    /// The HTML of the table row that carries `marker` (such as `data-policy="priority"`).
    fn row(&self, marker: &str) -> &str {
        let start = self
            .body
            .find(marker)
            .unwrap_or_else(|| panic!("{marker} on the page"));
        let end = start + self.body[start..].find("</tr>").unwrap();
        &self.body[start..end]
    }
}

impl Browser {
    fn new(app: &TestApp) -> Self {
        Self {
            client: reqwest::Client::builder()
                .cookie_store(true)
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .unwrap(),
            base: app.address.clone(),
        }
    }

    async fn get(&self, path: &str) -> Page {
        let res = self
            .client
            .get(format!("{}{path}", self.base))
            .send()
            .await
            .unwrap();
        Page {
            status: res.status().as_u16(),
            headers: res.headers().clone(),
            body: res.text().await.unwrap(),
        }
    }

    async fn post(&self, path: &str, form: &[(&str, &str)]) -> Page {
        let res = self
            .client
            .post(format!("{}{path}", self.base))
            .form(form)
            .send()
            .await
            .unwrap();
        Page {
            status: res.status().as_u16(),
            headers: res.headers().clone(),
            body: res.text().await.unwrap(),
        }
    }

    /// Posts a form with the session's CSRF token, read from a console page as a browser would.
    async fn submit(&self, path: &str, form: &[(&str, &str)]) -> Page {
        let csrf = self.get("/console/users").await.csrf();
        let mut fields = form.to_vec();
        fields.push(("csrf", &csrf));
        self.post(path, &fields).await
    }

    async fn upload(&self, filename: &str, content: &str) -> Page {
        let csrf = self.get("/console/bookings").await.csrf();
        let boundary = "----surclass-test-boundary";
        let body = format!(
            "--{boundary}\r\nContent-Disposition: form-data; name=\"csrf\"\r\n\r\n{csrf}\r\n\
             --{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"{filename}\"\r\nContent-Type: text/plain\r\n\r\n{content}\r\n\
             --{boundary}--\r\n"
        );
        let res = self
            .client
            .post(format!("{}/console/bookings/import", self.base))
            .header(
                "content-type",
                format!("multipart/form-data; boundary={boundary}"),
            )
            .body(body)
            .send()
            .await
            .unwrap();
        Page {
            status: res.status().as_u16(),
            headers: res.headers().clone(),
            body: res.text().await.unwrap(),
        }
    }

    async fn sign_in(&self, email: &str, password: &str) -> Page {
        let form = self.get("/console/sign-in").await;
        assert_eq!(form.status, 200);
        self.post(
            "/console/sign-in",
            &[
                ("email", email),
                ("password", password),
                ("csrf", &form.csrf()),
            ],
        )
        .await
    }
}

async fn user(app: &TestApp, op: &Operator, email: &str, role: Role) {
    operator_users::create(
        &app.db,
        &Actor::system(&op.id, "tests"),
        email,
        PASSWORD,
        role,
    )
    .await
    .expect("user created");
}

/// An operator with an admin signed in to the console.
async fn signed_in(app: &TestApp, slug: &str) -> (Operator, Browser) {
    let op = app.operator(slug).await;
    let email = format!("admin@{slug}.example");
    user(app, &op, &email, Role::Admin).await;
    let browser = Browser::new(app);
    let page = browser.sign_in(&email, PASSWORD).await;
    assert_eq!(page.status, 303, "{}", page.body);
    (op, browser)
}

/// A UTC moment `days` ahead as the console's lot form takes it.
fn form_time_in_days(days: i64) -> String {
    (chrono::Utc::now() + chrono::Duration::days(days))
        .format("%Y-%m-%dT%H:%M")
        .to_string()
}

fn decode(html: &str) -> String {
    html.replace("&#38;", "&")
        .replace("&amp;", "&")
        .replace("&#34;", "\"")
        .replace("&quot;", "\"")
        .replace("&#39;", "'")
        .replace("&gt;", ">")
        .replace("&lt;", "<")
}

async fn an_operator_signs_in_with_the_right_password_only(app: TestApp) {
    let op = app.operator("aurora").await;
    user(&app, &op, "ops@aurora.example", Role::Member).await;
    let browser = Browser::new(&app);

    assert_eq!(
        browser.get("/console/lots").await.location(),
        "/console/sign-in"
    );
    let wrong = browser
        .sign_in("ops@aurora.example", "not the password")
        .await;
    assert_eq!(wrong.status, 401);
    assert!(
        wrong.body.contains("The email or password is not right"),
        "{}",
        wrong.body
    );
    let unknown = browser.sign_in("nobody@aurora.example", PASSWORD).await;
    assert_eq!(unknown.status, 401);

    let ok = browser.sign_in("OPS@aurora.example ", PASSWORD).await;
    assert_eq!(ok.status, 303);
    assert_eq!(ok.location(), "/console/lots");
    let cookie = ok
        .headers
        .get_all("set-cookie")
        .iter()
        .map(|v| v.to_str().unwrap().to_owned())
        .find(|c| c.starts_with("surclass_console="))
        .expect("a session cookie");
    assert!(cookie.contains("HttpOnly"), "{cookie}");
    assert!(cookie.contains("SameSite=Strict"), "{cookie}");
    assert!(cookie.contains("Path=/console"), "{cookie}");
    assert!(!cookie.contains("Secure"), "plain http here: {cookie}");
    let lots = browser.get("/console/lots").await;
    assert_eq!(lots.status, 200);
    assert!(lots.body.contains("ops@aurora.example"));

    let out = browser.submit("/console/sign-out", &[]).await;
    assert_eq!(out.location(), "/console/sign-in");
    assert_eq!(
        browser.get("/console/lots").await.location(),
        "/console/sign-in"
    );
}

async fn five_wrong_passwords_lock_the_account_for_fifteen_minutes(app: TestApp) {
    let op = app.operator("aurora").await;
    user(&app, &op, "ops@aurora.example", Role::Member).await;
    let browser = Browser::new(&app);
    for _ in 1..=4 {
        let page = browser.sign_in("ops@aurora.example", "guess").await;
        assert_eq!(page.status, 401);
        assert!(
            page.body
                .contains("After 5 wrong passwords in a row the account is locked for 15 minutes"),
            "{}",
            page.body
        );
    }
    // An unknown email reads exactly the same: the page does not tell which emails exist.
    let unknown = browser.sign_in("nobody@aurora.example", "guess").await;
    assert_eq!(unknown.status, 401);
    assert!(unknown.body.contains("After 5 wrong passwords in a row"));
    let fifth = browser.sign_in("ops@aurora.example", "guess").await;
    assert_eq!(fifth.status, 429);
    assert!(
        fifth.body.contains("is locked for up to 15 minutes"),
        "{}",
        fifth.body
    );
    // Locked: even the right password is refused, and no session is made.
    let right = browser.sign_in("ops@aurora.example", PASSWORD).await;
    assert_eq!(right.status, 429);
    assert!(right.body.contains("is locked for up to 15 minutes"));
    assert_eq!(
        browser.get("/console/lots").await.location(),
        "/console/sign-in"
    );
    let stored = surclass::store::entities::operator_user::Entity::find()
        .one(&app.db)
        .await
        .unwrap()
        .unwrap();
    let until = stored.locked_until.expect("locked");
    let minutes = (until - chrono::Utc::now()).num_minutes();
    assert!((14..=15).contains(&minutes), "locked for {minutes} minutes");
}

async fn forms_without_the_session_csrf_token_change_nothing(app: TestApp) {
    let (_op, browser) = signed_in(&app, "aurora").await;
    let (travel_day, closes) = (travel_day(), form_time_in_days(3));
    let lot_form = [
        ("resource_kind", "seat"),
        ("resource", "AU101"),
        ("service_date", travel_day.as_str()),
        ("from_class", "economy"),
        ("to_class", "business"),
        ("capacity", "4"),
        ("currency", "EUR"),
        ("reserve", "100.00"),
        ("maximum", "900.00"),
        ("closes_at", closes.as_str()),
        ("payment_mode", "charge_on_award"),
    ];
    let missing = browser.post("/console/lots", &lot_form).await;
    assert_eq!(missing.status, 403);
    let mut forged = lot_form.to_vec();
    forged.push(("csrf", "csrf_forged"));
    let forged = browser.post("/console/lots", &forged).await;
    assert_eq!(forged.status, 403);
    assert!(forged.body.contains("did not come from the console"));
    assert_eq!(lot::Entity::find().count(&app.db).await.unwrap(), 0);

    // The sign-in form too: a post without the form's own token is refused.
    let fresh = Browser::new(&app);
    let page = fresh
        .post(
            "/console/sign-in",
            &[
                ("email", "admin@aurora.example"),
                ("password", PASSWORD),
                ("csrf", "x"),
            ],
        )
        .await;
    assert_eq!(page.status, 403);
}

/// An email no account has is refused after five wrong passwords as an account's is, in the
/// same words; and a flood of console sign-ins from one address is slowed before any password
/// is hashed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_emails_lock_as_accounts_do_and_a_flood_of_sign_ins_is_slowed() {
    let app = crate::support::spawn_app_with(crate::support::Store::Sqlite, |s| {
        s.limits.sign_ins_per_minute = 12;
    })
    .await
    .unwrap();
    let op = app.operator("aurora").await;
    user(&app, &op, "ops@aurora.example", Role::Member).await;
    let browser = Browser::new(&app);
    for email in ["ops@aurora.example", "nobody@aurora.example"] {
        for _ in 1..=4 {
            assert_eq!(browser.sign_in(email, "guess").await.status, 401, "{email}");
        }
        let fifth = browser.sign_in(email, "guess").await;
        assert_eq!(fifth.status, 429, "{email}");
        assert!(
            fifth
                .body
                .contains("Too many wrong passwords: signing in with this email is locked for up to 15 minutes"),
            "{email}: {}",
            fifth.body
        );
        let again = browser.sign_in(email, PASSWORD).await;
        assert_eq!(again.status, 429, "{email}");
    }
    // Twelve sign-ins this minute from this address: the next is refused whatever it says.
    let flood = browser.sign_in("other@aurora.example", "guess").await;
    assert_eq!(flood.status, 429);
    assert!(
        flood
            .body
            .contains("Too many sign-in attempts from your address"),
        "{}",
        flood.body
    );
}

/// On an edit, a field emptied is not "unchanged": it is named, and nothing is saved.
async fn an_emptied_field_on_a_lot_edit_is_named_and_nothing_is_saved(app: TestApp) {
    let (op, browser) = signed_in(&app, "aurora").await;
    let lot = app
        .open_lot(
            &op,
            serde_json::json!({"open": false, "title": "Paris → New York"}),
        )
        .await;
    let form = browser.get(&format!("/console/lots/{lot}/edit")).await;
    assert_eq!(form.status, 200, "{}", form.body);
    let refused = browser
        .submit(
            &format!("/console/lots/{lot}/edit"),
            &[("title", ""), ("capacity", "6")],
        )
        .await;
    assert_eq!(refused.status, 422, "{}", refused.body);
    assert!(
        refused.body.contains("id=\"title-error\""),
        "{}",
        refused.body
    );
    let stored = app
        .read(&format!("/v1/lots/{lot}"))
        .key(&op.key)
        .send()
        .await
        .expect(200);
    assert_eq!(stored.body["title"], "Paris → New York");
    assert_eq!(stored.body["capacity"], 4, "nothing saved");
}

/// Someone leaves: an admin removes them, and they are signed out at once and cannot sign in
/// again. A member removes no one, another operator's admin finds no such user, and the only
/// admin stays (or no one could add users or keys again).
async fn an_admin_removes_a_user_who_is_signed_out_at_once_and_the_last_admin_stays(app: TestApp) {
    use surclass::store::entities::operator_user;
    let (op, admin) = signed_in(&app, "aurora").await;
    user(&app, &op, "leaver@aurora.example", Role::Member).await;
    let leaver = Browser::new(&app);
    assert_eq!(
        leaver
            .sign_in("leaver@aurora.example", PASSWORD)
            .await
            .status,
        303
    );
    assert_eq!(leaver.get("/console/lots").await.status, 200);
    let id_of = |email: &'static str| {
        let db = app.db.clone();
        async move {
            operator_user::Entity::find()
                .filter(operator_user::Column::Email.eq(email))
                .one(&db)
                .await
                .unwrap()
                .expect("user")
                .id
        }
    };
    let (admin_id, leaver_id) = (
        id_of("admin@aurora.example").await,
        id_of("leaver@aurora.example").await,
    );

    let by_member = leaver
        .submit(&format!("/console/users/{admin_id}/remove"), &[])
        .await;
    assert_eq!(by_member.status, 403);
    let (_, stranger) = signed_in(&app, "belvedere").await;
    let elsewhere = stranger
        .submit(&format!("/console/users/{leaver_id}/remove"), &[])
        .await;
    assert_eq!(elsewhere.status, 404);
    assert_eq!(leaver.get("/console/lots").await.status, 200, "still in");

    let removed = admin
        .submit(&format!("/console/users/{leaver_id}/remove"), &[])
        .await;
    assert_eq!(removed.location(), "/console/users?done=removed");
    assert_eq!(
        leaver.get("/console/lots").await.location(),
        "/console/sign-in",
        "signed out at once"
    );
    assert_eq!(
        leaver
            .sign_in("leaver@aurora.example", PASSWORD)
            .await
            .status,
        401
    );
    let users = admin.get("/console/users").await;
    assert!(!users.body.contains("leaver@aurora.example"));
    assert_eq!(
        audit_entry::Entity::find()
            .filter(audit_entry::Column::Action.eq("user.removed"))
            .count(&app.db)
            .await
            .unwrap(),
        1
    );

    let last = admin
        .submit(&format!("/console/users/{admin_id}/remove"), &[])
        .await;
    assert_eq!(last.status, 409);
    assert!(last.body.contains("only admin"), "{}", last.body);
    assert_eq!(admin.get("/console/lots").await.status, 200);
}

async fn a_lot_form_shows_each_error_beside_its_field_and_creates_nothing(app: TestApp) {
    let (op, browser) = signed_in(&app, "aurora").await;
    let (travel_day, closes) = (travel_day(), form_time_in_days(3));
    let form = |reserve: &'static str| {
        vec![
            ("resource_kind", "seat"),
            ("resource", "AU101"),
            ("service_date", travel_day.as_str()),
            ("from_class", "economy"),
            ("to_class", "business"),
            ("capacity", "4"),
            ("currency", "EUR"),
            ("reserve", reserve),
            ("maximum", "900.00"),
            ("closes_at", closes.as_str()),
            ("payment_mode", "charge_on_award"),
            ("time_zone", "Europe/Paris"),
            ("award_policy", "priority"),
        ]
    };
    let refused = browser.submit("/console/lots", &form("950.00")).await;
    assert_eq!(refused.status, 422);
    assert!(refused.body.contains("Nothing was saved"));
    let error = refused
        .body
        .find("id=\"reserve-error\"")
        .expect("an error beside reserve");
    assert!(
        decode(&refused.body[error..]).starts_with(
            "id=\"reserve-error\" data-field=\"reserve\">950.00 is above the maximum 900.00"
        ),
        "{}",
        &refused.body[error..error + 120]
    );
    assert!(refused.body.contains("aria-describedby=\"reserve-error"));
    // What was typed is kept.
    assert!(refused.body.contains("value=\"950.00\""));
    assert_eq!(lot::Entity::find().count(&app.db).await.unwrap(), 0);

    let created = browser.submit("/console/lots", &form("150.00")).await;
    assert_eq!(created.status, 303, "{}", created.body);
    let stored = lot::Entity::find()
        .one(&app.db)
        .await
        .unwrap()
        .expect("created");
    assert_eq!(stored.operator_id, op.id);
    assert_eq!(stored.status, "draft");
    assert_eq!(stored.reserve_minor, 15000);
    assert_eq!(
        created.location(),
        format!("/console/lots/{}?done=created", stored.id)
    );

    let opened = browser
        .submit(&format!("/console/lots/{}/open", stored.id), &[])
        .await;
    assert_eq!(opened.status, 303);
    let detail = browser.get(&format!("/console/lots/{}", stored.id)).await;
    assert!(detail.body.contains("id=\"lot-status\">open"));

    // Once open, fields that judge bids are fixed; the form says so beside the field.
    let mut edit = form("150.00");
    edit.retain(|(k, _)| *k != "reserve");
    edit.push(("reserve", "120.00"));
    let refused = browser
        .submit(&format!("/console/lots/{}/edit", stored.id), &edit)
        .await;
    assert_eq!(refused.status, 422);
    assert!(refused.body.contains("id=\"reserve-error\""));
    assert!(refused.body.contains("cannot change once the lot is open"));
    let capacity = browser
        .submit(
            &format!("/console/lots/{}/capacity", stored.id),
            &[("capacity", "2")],
        )
        .await;
    assert_eq!(capacity.status, 303);
    let actions: Vec<String> = audit_entry::Entity::find()
        .all(&app.db)
        .await
        .unwrap()
        .into_iter()
        .filter(|e| e.actor == "user:admin@aurora.example")
        .map(|e| e.action)
        .collect();
    assert!(actions.contains(&"lot.created".to_owned()));
    assert!(actions.contains(&"lot.opened".to_owned()));
    assert!(actions.contains(&"lot.capacity_changed".to_owned()));
    assert!(
        !actions.contains(&"lot.edited".to_owned()),
        "the refused edit changed nothing"
    );
}

async fn place_bids(app: &TestApp, op: &Operator, lot: &str, bids: &[(&str, u32, &str)]) {
    for (i, (reference, party, amount)) in bids.iter().enumerate() {
        let name = format!("Traveller{i}");
        app.booking(op, reference, &name, *party, &[lot]).await;
        let token = app.sign_in(reference, &name).await;
        app.bid(&token, lot, amount, GOOD_CARD).await.expect(201);
    }
}

/// A lot of one seat that needs review, bid on by `bids` and closed: its award waits.
async fn awarded_for_review(app: &TestApp, op: &Operator, bids: &[(&str, u32, &str)]) -> String {
    let lot_id = app
        .open_lot(
            op,
            serde_json::json!({"capacity": 1, "review_required": true}),
        )
        .await;
    place_bids(app, op, &lot_id, bids).await;
    app.close_now(&lot_id).await;
    app.run_jobs().await;
    lot_id
}

async fn cancelling_says_how_many_holds_are_released_before_it_happens(app: TestApp) {
    let (op, browser) = signed_in(&app, "aurora").await;
    let lot_id = app.open_lot(&op, serde_json::json!({"capacity": 2})).await;
    place_bids(
        &app,
        &op,
        &lot_id,
        &[("AB1234", 1, "300.00"), ("CD5678", 2, "250.00")],
    )
    .await;

    let confirm = browser.get(&format!("/console/lots/{lot_id}/cancel")).await;
    assert_eq!(confirm.status, 200);
    assert!(
        confirm.body.contains("Cancelling releases <strong>2</strong> card holds and refunds <strong>0</strong> charges"),
        "{}",
        confirm.body
    );
    let no_reason = browser
        .submit(
            &format!("/console/lots/{lot_id}/cancel"),
            &[("reason", " ")],
        )
        .await;
    assert_eq!(no_reason.status, 422);
    assert_eq!(
        lot::Entity::find_by_id(&lot_id)
            .one(&app.db)
            .await
            .unwrap()
            .unwrap()
            .status,
        "open"
    );

    let done = browser
        .submit(
            &format!("/console/lots/{lot_id}/cancel"),
            &[("reason", "Aircraft change")],
        )
        .await;
    assert_eq!(done.status, 303);
    assert_eq!(
        lot::Entity::find_by_id(&lot_id)
            .one(&app.db)
            .await
            .unwrap()
            .unwrap()
            .status,
        "cancelled"
    );
    let entry = audit_entry::Entity::find()
        .filter(audit_entry::Column::Action.eq("lot.cancelled"))
        .one(&app.db)
        .await
        .unwrap()
        .expect("audited");
    assert_eq!(entry.actor, "user:admin@aurora.example");
    assert!(
        entry
            .after
            .unwrap()
            .contains("holds_released=2 charges_refunded=0")
    );
}

async fn an_import_file_is_previewed_and_nothing_is_imported_while_a_row_is_bad(app: TestApp) {
    let (op, browser) = signed_in(&app, "aurora").await;
    let lot_id = app.open_lot(&op, serde_json::json!({})).await;
    let csv = format!(
        "reference,last_name,party_size,email,language,loyalty_tier,eligible_lots\n\
         AB1234,Muller,2,anna@example.com,en,1,{lot_id}\n\
         CD5678,,1,not-an-email,en,0,{lot_id}\n\
         EF9012,Rossi,1,,fr,0,lot_unknown\n\
         GH3456,Okafor,3,,en,0,{lot_id}\n"
    );
    let preview = browser.upload("bookings.csv", &csv).await;
    assert_eq!(preview.status, 200, "{}", preview.body);
    assert!(
        preview.body.contains("2 good rows, 2 with errors"),
        "{}",
        preview.body
    );
    let bad = decode(preview.row("data-row=\"2\""));
    assert!(bad.contains("last_name: must have a letter"), "{bad}");
    assert!(
        bad.contains("email: 'not-an-email' is not an email address"),
        "{bad}"
    );
    assert!(
        decode(preview.row("data-row=\"3\"")).contains("no lot 'lot_unknown' of this operator")
    );
    assert!(preview.row("data-row=\"1\"").contains("OK"));
    assert_eq!(
        booking::Entity::find().count(&app.db).await.unwrap(),
        0,
        "a preview writes nothing"
    );

    let payload = decode(&{
        let at = preview.body.find("name=\"payload\" value=\"").unwrap() + 22;
        preview.body[at..at + preview.body[at..].find('"').unwrap()].to_owned()
    });
    let refused = browser
        .submit("/console/bookings/import/confirm", &[("payload", &payload)])
        .await;
    assert_eq!(refused.status, 422);
    assert!(refused.body.contains("Nothing was imported"));
    assert_eq!(booking::Entity::find().count(&app.db).await.unwrap(), 0);

    let imported = browser
        .submit(
            "/console/bookings/import/confirm",
            &[("payload", &payload), ("skip_bad", "on")],
        )
        .await;
    assert_eq!(imported.status, 303, "{}", imported.body);
    let list = browser.get(imported.location()).await;
    assert!(
        list.body
            .contains("Imported: 2 created, 0 updated, 0 unchanged; 2 bad rows skipped."),
        "{}",
        list.body
    );
    let mut refs: Vec<String> = booking::Entity::find()
        .all(&app.db)
        .await
        .unwrap()
        .into_iter()
        .map(|b| b.reference)
        .collect();
    refs.sort();
    assert_eq!(refs, ["AB1234", "GH3456"]);
    assert!(
        audit_entry::Entity::find()
            .filter(audit_entry::Column::Action.eq("bookings.imported"))
            .one(&app.db)
            .await
            .unwrap()
            .is_some()
    );

    // JSON as sent to the API works the same way.
    let json = format!(
        r#"[{{"reference": "JK7890", "last_name": "Dubois", "party_size": 1, "eligible_lots": ["{lot_id}"]}}]"#
    );
    let preview = browser.upload("more.json", &json).await;
    assert!(
        preview.body.contains("1 good row, 0 with errors"),
        "{}",
        preview.body
    );
}

async fn bids_export_as_csv_and_each_policy_can_be_previewed(app: TestApp) {
    let (op, browser) = signed_in(&app, "aurora").await;
    let lot_id = app.open_lot(&op, serde_json::json!({"capacity": 2})).await;
    place_bids(
        &app,
        &op,
        &lot_id,
        &[
            ("AB1234", 2, "300.00"),
            ("CD5678", 1, "250.00"),
            ("EF9012", 1, "200.00"),
        ],
    )
    .await;

    let page = browser
        .get(&format!(
            "/console/lots/{lot_id}/bids?sort=submitted&dir=asc"
        ))
        .await;
    assert_eq!(page.status, 200);
    let (a, b, c) = (
        page.body.find("AB1234").unwrap(),
        page.body.find("CD5678").unwrap(),
        page.body.find("EF9012").unwrap(),
    );
    assert!(a < b && b < c, "oldest first");
    let page = browser
        .get(&format!("/console/lots/{lot_id}/bids?sort=amount&dir=asc"))
        .await;
    let (a, c) = (
        page.body.find("AB1234").unwrap(),
        page.body.find("EF9012").unwrap(),
    );
    assert!(c < a, "lowest offer first");

    let res = browser
        .client
        .get(format!("{}/console/lots/{lot_id}/bids.csv", browser.base))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    assert!(
        res.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/csv")
    );
    let csv = res.text().await.unwrap();
    let lines: Vec<&str> = csv.lines().collect();
    assert_eq!(lines.len(), 4);
    assert!(
        lines[0].starts_with("bid_id,booking_reference,last_name,amount_per_person,units,total")
    );
    assert!(
        lines[1].contains("\"AB1234\",\"Traveller0\",\"300.00\",\"2\",\"600.00\",\"EUR\""),
        "{}",
        lines[1]
    );

    // capacity 2: priority and max_revenue take the party of two at 300 (600); uniform price
    // charges them the best losing offer, 250 each (500).
    let policies = browser
        .get(&format!("/console/lots/{lot_id}/policies"))
        .await;
    assert_eq!(policies.status, 200);
    assert!(
        policies
            .row("data-policy=\"priority\"")
            .contains("600.00 EUR")
    );
    assert!(
        policies
            .row("data-policy=\"priority\"")
            .contains("(this lot's)")
    );
    assert!(
        policies
            .row("data-policy=\"max_revenue\"")
            .contains("600.00 EUR")
    );
    assert!(
        policies
            .row("data-policy=\"uniform_price\"")
            .contains("500.00 EUR"),
        "{}",
        policies.row("data-policy=\"uniform_price\"")
    );
    // Read-only: nothing was awarded.
    assert_eq!(
        lot::Entity::find_by_id(&lot_id)
            .one(&app.db)
            .await
            .unwrap()
            .unwrap()
            .status,
        "open"
    );

    // After the award the bids page shows winners, standby, reasons, payments and revenue.
    app.close_now(&lot_id).await;
    app.run_jobs().await;
    let page = browser.get(&format!("/console/lots/{lot_id}/bids")).await;
    assert!(
        page.body.contains("id=\"award-revenue\">600.00 EUR"),
        "{}",
        page.body
    );
    assert!(
        page.body.contains("charge 600.00 EUR succeeded"),
        "{}",
        page.body
    );
    assert!(decode(&page.body).contains("Other offers were higher"));
}

async fn changes_by_console_users_and_api_keys_are_in_the_audit_log(app: TestApp) {
    let (op, browser) = signed_in(&app, "aurora").await;
    let lot_id = app.open_lot(&op, serde_json::json!({})).await;
    let key = browser
        .submit(
            "/console/keys",
            &[("name", "Partner app"), ("scope", "partner")],
        )
        .await;
    assert_eq!(key.status, 200);
    let at = key
        .body
        .find("id=\"new-secret\">")
        .expect("the secret, shown once")
        + 16;
    let secret = &key.body[at..at + key.body[at..].find('<').unwrap()];
    assert!(secret.starts_with("sk_pt_"));
    assert!(
        !browser.get("/console/users").await.body.contains(secret),
        "shown once"
    );
    let added = browser
        .submit(
            "/console/users",
            &[
                ("email", "new@aurora.example"),
                ("password", "short"),
                ("role", "member"),
            ],
        )
        .await;
    assert_eq!(added.status, 422);
    assert!(
        added
            .body
            .contains("id=\"u-password-error\">must have at least 12 characters")
    );

    let log = browser.get("/console/audit").await;
    assert_eq!(log.status, 200);
    let created = decode(log.row("data-action=\"lot.created\""));
    assert!(created.contains("api_key:tests"), "{created}");
    assert!(created.contains(&lot_id));
    let key_row = decode(log.row("data-action=\"api_key.created\""));
    assert!(key_row.contains("user:admin@aurora.example"), "{key_row}");
    assert!(
        !log.body.contains("data-action=\"user.created\"")
            || log.body.contains("admin@aurora.example")
    );

    // An award review through the API is in the log too, with the key that did it.
    let reviewed = app
        .open_lot(
            &op,
            serde_json::json!({"capacity": 1, "review_required": true}),
        )
        .await;
    place_bids(&app, &op, &reviewed, &[("RV1234", 1, "300.00")]).await;
    app.close_now(&reviewed).await;
    app.run_jobs().await;
    app.post(&format!("/v1/lots/{reviewed}/award/approve"))
        .key(&op.key)
        .send()
        .await
        .expect(200);
    let log = browser.get("/console/audit?action=award.").await;
    let approved = decode(log.row("data-action=\"award.approved\""));
    assert!(
        approved.contains("api_key:tests") && approved.contains(&reviewed),
        "{approved}"
    );
    assert!(
        !log.body.contains("data-action=\"lot.created\""),
        "filtered by action"
    );
    // The filter is a plain prefix on both stores: `_` and `%` are characters, not wildcards,
    // and capitals find the same entries (actions are written in lower case).
    let log = browser.get("/console/audit?action=AWARD.").await;
    assert!(log.body.contains("data-action=\"award.approved\""));
    for pattern in ["lot_", "%created", "api%"] {
        let log = browser
            .get(&format!(
                "/console/audit?action={}",
                pattern.replace('%', "%25")
            ))
            .await;
        assert!(
            !log.body.contains("<tr data-action="),
            "{pattern} matches no action: {}",
            log.body
        );
    }

    // Members see but cannot add keys.
    user(&app, &op, "member@aurora.example", Role::Member).await;
    let member = Browser::new(&app);
    member.sign_in("member@aurora.example", PASSWORD).await;
    let refused = member
        .submit("/console/keys", &[("name", "x"), ("scope", "operator")])
        .await;
    assert_eq!(refused.status, 403);
}

async fn one_operators_users_never_see_anothers_lots_bids_or_bookings(app: TestApp) {
    let (a, browser_a) = signed_in(&app, "aurora").await;
    let (_b, browser_b) = signed_in(&app, "borealis").await;
    let lot_a = app
        .open_lot(&a, serde_json::json!({"title": "Aurora secret lot"}))
        .await;
    place_bids(&app, &a, &lot_a, &[("AB1234", 1, "300.00")]).await;
    browser_a
        .submit(
            &format!("/console/lots/{lot_a}/capacity"),
            &[("capacity", "3")],
        )
        .await;

    for path in [
        format!("/console/lots/{lot_a}"),
        format!("/console/lots/{lot_a}/edit"),
        format!("/console/lots/{lot_a}/bids"),
        format!("/console/lots/{lot_a}/bids.csv"),
        format!("/console/lots/{lot_a}/policies"),
        format!("/console/lots/{lot_a}/cancel"),
    ] {
        let page = browser_b.get(&path).await;
        assert_eq!(page.status, 404, "{path}");
        assert!(
            !page.body.contains("AB1234") && !page.body.contains("Aurora secret"),
            "{path}"
        );
    }
    for (path, form) in [
        (
            format!("/console/lots/{lot_a}/cancel"),
            vec![("reason", "mine now")],
        ),
        (
            format!("/console/lots/{lot_a}/capacity"),
            vec![("capacity", "0")],
        ),
        (
            format!("/console/lots/{lot_a}/edit"),
            vec![("title", "taken")],
        ),
    ] {
        assert_eq!(browser_b.submit(&path, &form).await.status, 404, "{path}");
    }
    let stored = lot::Entity::find_by_id(&lot_a)
        .one(&app.db)
        .await
        .unwrap()
        .unwrap();
    assert_eq!((stored.status.as_str(), stored.capacity), ("open", 3));

    let lists = [
        browser_b.get("/console/lots").await.body,
        browser_b.get("/console/bookings").await.body,
        browser_b.get("/console/audit").await.body,
        browser_b.get("/console/dashboard").await.body,
    ];
    for body in &lists {
        assert!(
            !body.contains(&lot_a) && !body.contains("AB1234") && !body.contains("Aurora secret")
        );
    }
    // Operator A sees its own.
    assert!(browser_a.get("/console/lots").await.body.contains(&lot_a));
    assert!(
        browser_a
            .get("/console/bookings")
            .await
            .body
            .contains("AB1234")
    );
    assert!(browser_a.get("/console/audit").await.body.contains(&lot_a));
}

async fn the_dashboard_draws_its_charts_as_svg(app: TestApp) {
    let (op, browser) = signed_in(&app, "aurora").await;
    let lot_id = app.open_lot(&op, serde_json::json!({"capacity": 1})).await;
    place_bids(
        &app,
        &op,
        &lot_id,
        &[("AB1234", 1, "300.00"), ("CD5678", 1, "1000.00")],
    )
    .await;
    app.close_now(&lot_id).await;
    app.run_jobs().await;
    let page = browser.get("/console/dashboard").await;
    assert_eq!(page.status, 200);
    assert!(
        page.body
            .contains("<svg class=\"chart\" id=\"revenue-eur\""),
        "{}",
        page.body
    );
    assert!(
        page.body
            .contains("<svg class=\"chart\" id=\"bids-per-lot\"")
    );
    assert!(
        page.body
            .contains("<svg class=\"chart\" id=\"bid-position\"")
    );
    assert!(
        page.body
            .contains("id=\"acceptance\">50 % (1 of 2 bids on awarded lots won)"),
        "{}",
        page.body
    );
    // 1000.00 is the maximum: the top bucket; 300.00 is 200 of 900 above the reserve.
    let position = page.row("<th scope=\"row\">90–100 %");
    assert!(position.contains("<td>1</td>"), "{position}");
    let revenue_table = &page.body[page.body.find("Upgrade revenue per day, EUR").unwrap()..];
    assert!(revenue_table.contains("1000.00 EUR"));
}

/// The dashboard's figures, exactly: withdrawn bids and other operators' lots count nowhere,
/// a refunded upgrade counts as accepted but not as revenue, positions run from the reserve
/// (first tenth) to the maximum (last tenth).
async fn the_dashboard_counts_every_bid_once_and_only_the_operators_own(app: TestApp) {
    let op = app.operator("aurora").await;
    let other = app.operator("borealis").await;
    // Reserve 100.00, maximum 1000.00 on every lot.
    let awarded = app
        .open_lot(&op, serde_json::json!({"title": "Awarded", "capacity": 1}))
        .await;
    let refunded = app
        .open_lot(
            &op,
            serde_json::json!({"title": "Refunded", "capacity": 1, "currency": "USD"}),
        )
        .await;
    let open = app
        .open_lot(&op, serde_json::json!({"title": "Open", "capacity": 1}))
        .await;
    let theirs = app
        .open_lot(&other, serde_json::json!({"title": "Theirs"}))
        .await;
    place_bids(
        &app,
        &op,
        &awarded,
        &[
            ("AW0001", 1, "100.00"),
            ("AW0002", 1, "300.00"),
            ("AW0003", 1, "1000.00"),
        ],
    )
    .await;
    app.booking(&op, "AW0004", "Gone", 1, &[&awarded]).await;
    let token = app.sign_in("AW0004", "Gone").await;
    let gone = app
        .bid(&token, &awarded, "550.00", GOOD_CARD)
        .await
        .expect(201);
    app.delete(&format!(
        "/v1/traveller/bids/{}",
        gone.body["id"].as_str().unwrap()
    ))
    .key(&token)
    .send()
    .await
    .expect(200);
    place_bids(&app, &op, &refunded, &[("RF0001", 1, "550.00")]).await;
    place_bids(&app, &op, &open, &[("OP0001", 1, "775.00")]).await;
    place_bids(&app, &other, &theirs, &[("TH0001", 1, "1000.00")]).await;
    app.close_now(&awarded).await;
    app.close_now(&refunded).await;
    app.run_jobs().await;
    app.post(&format!("/v1/lots/{refunded}/cancel"))
        .key(&op.key)
        .json(&serde_json::json!({"reason": "Aircraft swap"}))
        .send()
        .await
        .expect(200);
    app.run_jobs().await;

    let d = surclass::services::insights::dashboard(&app.db, &op.id)
        .await
        .unwrap();
    // 100.00 → first tenth, 300.00 → third, 550.00 → sixth, 775.00 → eighth, 1000.00 → last.
    assert_eq!(d.position, [1, 0, 1, 0, 0, 1, 0, 1, 0, 1]);
    assert_eq!(
        (d.accepted, d.decided),
        (1, 3),
        "one winner of three on the awarded lot"
    );
    let mut per_lot = d.bids_per_lot.clone();
    per_lot.sort();
    assert_eq!(
        per_lot,
        [
            ("Awarded".to_owned(), 3),
            ("Open".to_owned(), 1),
            ("Refunded".to_owned(), 1)
        ]
    );
    let total = |currency: &str| -> i64 {
        d.revenue_per_day[currency]
            .iter()
            .map(|(_, minor)| minor)
            .sum()
    };
    assert_eq!(total("EUR"), 100_000, "{:?}", d.revenue_per_day);
    assert_eq!(
        total("USD"),
        0,
        "charged then refunded: {:?}",
        d.revenue_per_day
    );

    let theirs = surclass::services::insights::dashboard(&app.db, &other.id)
        .await
        .unwrap();
    assert_eq!(theirs.position, [0, 0, 0, 0, 0, 0, 0, 0, 0, 1]);
    assert_eq!(theirs.bids_per_lot, [("Theirs".to_owned(), 1)]);
}

/// The ids of the lot rows on a list page, top to bottom.
fn listed_lots(body: &str) -> Vec<String> {
    body.split("data-lot=\"")
        .skip(1)
        .map(|rest| rest[..rest.find('"').unwrap()].to_owned())
        .collect()
}

/// The address of the link (`<a …>`) whose tag or text holds `marker`, if the page has one.
fn link(body: &str, marker: &str) -> Option<String> {
    let at = body.find(marker)?;
    let tag = body[..at].rfind("<a ")?;
    let tag = &body[tag..tag + body[tag..].find('>')?];
    let start = tag.find("href=\"")? + "href=\"".len();
    let end = start + tag[start..].find('"')?;
    Some(decode(&tag[start..end]))
}

async fn the_lot_list_pages_through_every_lot_fifty_at_a_time_keeping_its_filters(app: TestApp) {
    let (op, browser) = signed_in(&app, "aurora").await;
    let soon = chrono::Utc::now() + chrono::Duration::hours(1);
    let closing = |minutes| {
        (soon + chrono::Duration::minutes(minutes))
            .to_rfc3339_opts(chrono::SecondsFormat::Micros, true)
    };
    let mut au101 = Vec::new();
    for i in 0..52 {
        // The last four close at the same moment, across the page boundary: by id among them.
        let closes_at = closing(i.min(48));
        au101.push(
            app.open_lot(
                &op,
                serde_json::json!({"title": format!("Lot {i:02}"), "closes_at": closes_at}),
            )
            .await,
        );
    }
    au101[48..].sort();
    let au999 = app
        .open_lot(&op, serde_json::json!({"resource": "AU999"}))
        .await;

    let filtered = "/console/lots?resource=AU101&date_from=2026-12-01&status=open";
    let first = browser.get(filtered).await;
    assert_eq!(first.status, 200);
    assert_eq!(
        listed_lots(&first.body),
        &au101[..50],
        "by closing time, then id"
    );
    assert!(
        first.body.contains("50 lots on this page"),
        "{}",
        first.body
    );
    assert_eq!(link(&first.body, ">First page<"), None);
    let next = link(&first.body, "rel=\"next\"").expect("a next page link");
    assert!(
        next.starts_with(&format!("{filtered}&after=")),
        "the filters are kept: {next}"
    );

    let second = browser.get(&next).await;
    assert_eq!(second.status, 200);
    assert_eq!(
        listed_lots(&second.body),
        &au101[50..],
        "every other lot, once"
    );
    assert_eq!(link(&second.body, "rel=\"next\""), None, "the last page");
    assert_eq!(
        link(&second.body, ">First page<").as_deref(),
        Some(filtered)
    );

    // Unfiltered, the lot of the other resource (closing last) is on the second page too.
    let all = browser.get("/console/lots").await;
    assert_eq!(listed_lots(&all.body), &au101[..50]);
    let rest = browser
        .get(&link(&all.body, "rel=\"next\"").expect("a next page link"))
        .await;
    assert_eq!(
        listed_lots(&rest.body),
        [au101[50].clone(), au101[51].clone(), au999]
    );

    let forged = browser.get("/console/lots?after=not-a-cursor").await;
    assert!(
        forged.body.contains("is not one this list made"),
        "{}",
        forged.body
    );
    assert!(listed_lots(&forged.body).is_empty());
    assert!(!forged.body.contains("No lot matches"), "{}", forged.body);
    assert_eq!(
        link(&forged.body, ">First page<").as_deref(),
        Some("/console/lots")
    );
}

/// An operator opens the lot list to work: it shows the lots still in play, and says that
/// settled and cancelled ones are left out until "any" status is chosen.
async fn the_lot_list_shows_the_lots_in_play_unless_any_status_is_chosen(app: TestApp) {
    let (op, browser) = signed_in(&app, "aurora").await;
    let empty = browser.get("/console/lots?resource=AU101").await;
    assert!(
        empty.body.contains(
            "No lot matches. Settled and cancelled lots are left out: \
             <a href=\"/console/lots?resource=AU101&#38;status=any\">show every status</a>."
        ),
        "{}",
        empty.body
    );
    let open = app.open_lot(&op, serde_json::json!({})).await;
    let draft = app.open_lot(&op, serde_json::json!({"open": false})).await;
    let cancelled = app.open_lot(&op, serde_json::json!({})).await;
    app.post(&format!("/v1/lots/{cancelled}/cancel"))
        .key(&op.key)
        .json(&serde_json::json!({"reason": "Flight cancelled"}))
        .send()
        .await
        .expect(200);
    let settled = app.open_lot(&op, serde_json::json!({"capacity": 1})).await;
    place_bids(&app, &op, &settled, &[("IP1111", 1, "400.00")]).await;
    let waiting = awarded_for_review(&app, &op, &[("IP2222", 1, "300.00")]).await;
    app.close_now(&settled).await;
    app.run_jobs().await;
    let status_of = |lot: String| {
        let (app, key) = (&app, op.key.clone());
        async move {
            app.read(&format!("/v1/lots/{lot}"))
                .key(&key)
                .send()
                .await
                .expect(200)
                .body["status"]
                .clone()
        }
    };
    assert_eq!(status_of(settled.clone()).await, "settled");
    assert_eq!(status_of(waiting.clone()).await, "awarded");

    let default = browser.get("/console/lots").await;
    assert_eq!(default.status, 200);
    let mut shown = listed_lots(&default.body);
    shown.sort();
    let mut in_play = vec![open.clone(), draft.clone(), waiting.clone()];
    in_play.sort();
    assert_eq!(shown, in_play, "{}", default.body);
    assert!(
        default
            .body
            .contains("settled and cancelled lots are left out (status \"any\" shows them)")
            || default.body.contains(
                "settled and cancelled lots are left out (status &quot;any&quot; shows them)"
            ),
        "{}",
        default.body
    );

    let any = browser.get("/console/lots?status=any").await;
    let mut every = listed_lots(&any.body);
    every.sort();
    let mut expected = vec![open, draft, cancelled.clone(), settled.clone(), waiting];
    expected.sort();
    assert_eq!(every, expected);
    // The API lists every lot when no status is asked for, as before.
    let api = app.read("/v1/lots").key(&op.key).send().await.expect(200);
    let mut listed: Vec<String> = api.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["id"].as_str().unwrap().to_owned())
        .collect();
    listed.sort();
    assert_eq!(listed, expected);
    assert!(!any.body.contains("left out"));
    assert!(any.body.contains("<option value=\"any\" selected>"));

    for (status, lot) in [("cancelled", cancelled), ("settled", settled)] {
        let page = browser.get(&format!("/console/lots?status={status}")).await;
        assert_eq!(listed_lots(&page.body), [lot], "{status}");
    }
    let refused = browser.get("/console/lots?status=gone").await;
    assert!(
        refused
            .body
            .contains("id=\"f-status-error\">&#39;gone&#39; is not one of: draft, open")
            || refused
                .body
                .contains("id=\"f-status-error\">'gone' is not one of: draft, open"),
        "{}",
        refused.body
    );
    assert!(refused.body.contains("settled, cancelled, or any"));
    assert!(listed_lots(&refused.body).is_empty());
    // The refused status stays chosen: sending the form again asks the same, not "in play".
    assert!(
        refused
            .body
            .contains("<option value=\"gone\" selected>gone (not a status)</option>"),
        "{}",
        refused.body
    );
    assert_eq!(refused.body.matches(" selected>").count(), 1);
}

/// The lot list's first page, lots in play only, is read through the partial index that
/// holds just those lots in its order, not by walking the operator's settled history.
async fn the_lots_in_play_are_read_through_their_own_index(app: TestApp) {
    use sea_orm::{
        ConnectionTrait, DbBackend, QuerySelect, QueryTrait, Statement, TransactionTrait,
    };
    use surclass::services::lots::{LotFilter, StatusFilter, list_query};

    let filter = LotFilter {
        status: StatusFilter::InPlay,
        ..LotFilter::default()
    };
    let backend = app.db.get_database_backend();
    let query = list_query("op_1", &filter, None).limit(51).build(backend);
    let (explain, column) = match backend {
        DbBackend::Sqlite => ("EXPLAIN QUERY PLAN", "detail"),
        _ => ("EXPLAIN", "QUERY PLAN"),
    };
    let txn = app.db.begin().await.unwrap();
    if backend == DbBackend::Postgres {
        // A fresh, empty table is cheapest to scan whole: ask for the index path the planner
        // takes once the table is large.
        txn.execute_unprepared("SET LOCAL enable_seqscan = off")
            .await
            .unwrap();
    }
    let plan: Vec<String> = txn
        .query_all_raw(Statement::from_sql_and_values(
            backend,
            format!("{explain} {}", query.sql),
            query.values.map(|v| v.0).unwrap_or_default(),
        ))
        .await
        .unwrap()
        .iter()
        .map(|row| row.try_get::<String>("", column).unwrap())
        .collect();
    assert!(
        plan.iter().any(|line| line.contains("idx_lots_in_play")),
        "{plan:#?}"
    );
}

/// The texts of the table cells that start with `prefix`, top to bottom.
fn cells(body: &str, prefix: &str) -> Vec<String> {
    body.match_indices(&format!("<td>{prefix}"))
        .map(|(at, _)| {
            let text = &body[at + "<td>".len()..];
            text[..text.find("</td>").unwrap()].to_owned()
        })
        .collect()
}

async fn the_audit_log_pages_back_through_older_changes_a_hundred_at_a_time(app: TestApp) {
    let (op, browser) = signed_in(&app, "aurora").await;
    let actor = Actor::system(&op.id, "tests");
    // The oldest four at one moment, so that the page boundary splits them: by id among them.
    let moment = chrono::Utc::now() - chrono::Duration::hours(1);
    for tie in ["a", "b", "c", "d"] {
        use sea_orm::{ActiveModelTrait, Set};
        audit_entry::ActiveModel {
            id: Set(format!("aud_tie_{tie}")),
            operator_id: Set(op.id.clone()),
            actor: Set("system:tests".into()),
            action: Set("test.step".into()),
            subject: Set(format!("step tie {tie}")),
            before: Set(None),
            after: Set(None),
            at: Set(moment),
        }
        .insert(&app.db)
        .await
        .unwrap();
    }
    for i in 0..98 {
        surclass::services::audit::record(
            &app.db,
            &actor,
            "test.step",
            &format!("step {i:03}"),
            None,
            None,
        )
        .await
        .unwrap();
    }
    surclass::services::audit::record(&app.db, &actor, "other.step", "other", None, None)
        .await
        .unwrap();
    let steps = |body: &str| cells(body, "step ");

    let newest = browser.get("/console/audit?action=test.").await;
    assert_eq!(newest.status, 200);
    let shown = steps(&newest.body);
    assert_eq!(shown.len(), 100, "{}", newest.body);
    assert_eq!(shown[0], "step 097", "newest first");
    assert_eq!(shown[97..], ["step 000", "step tie d", "step tie c"]);
    assert!(!newest.body.contains("other.step"), "the filter applies");
    let older = link(&newest.body, "rel=\"next\"").expect("a link to older changes");
    assert!(
        older.starts_with("/console/audit?action=test.&after="),
        "{older}"
    );

    let oldest = browser.get(&older).await;
    assert_eq!(steps(&oldest.body), ["step tie b", "step tie a"]);
    assert_eq!(link(&oldest.body, "rel=\"next\""), None, "nothing older");
    assert_eq!(
        link(&oldest.body, ">Newest changes<").as_deref(),
        Some("/console/audit?action=test.")
    );

    let forged = browser.get("/console/audit?after=e30").await;
    assert!(
        forged.body.contains("is not one this log made"),
        "{}",
        forged.body
    );
    assert!(steps(&forged.body).is_empty());
}

async fn the_bookings_list_pages_through_every_booking_a_hundred_at_a_time(app: TestApp) {
    let (op, browser) = signed_in(&app, "aurora").await;
    let lot = app.open_lot(&op, serde_json::json!({})).await;
    // Three imports, oldest first; within one import every booking changed at the same moment,
    // and the page boundary splits the second import's two.
    for (prefix, count) in [("PA", 1), ("PB", 2), ("PC", 99)] {
        let rows: Vec<serde_json::Value> = (0..count)
            .map(|i| {
                serde_json::json!({"reference": format!("{prefix}{i:04}"), "last_name": "Lindqvist",
                    "party_size": 1, "email": "traveller@example.com", "eligible_lots": [lot]})
            })
            .collect();
        app.post("/v1/bookings/import")
            .key(&op.key)
            .json(&serde_json::Value::Array(rows))
            .send()
            .await
            .expect(200);
    }
    let imports = |body: &str| -> Vec<String> {
        cells(body, "P")
            .into_iter()
            .map(|reference| reference[..2].to_owned())
            .collect()
    };

    let first = browser.get("/console/bookings").await;
    assert_eq!(first.status, 200);
    let mut expected = vec!["PC".to_owned(); 99];
    expected.push("PB".into());
    assert_eq!(
        imports(&first.body),
        expected,
        "most recently changed first"
    );
    let next = link(&first.body, "rel=\"next\"").expect("a next page link");
    let second = browser.get(&next).await;
    assert_eq!(imports(&second.body), ["PB", "PA"]);
    let mut seen = cells(&first.body, "P");
    seen.extend(cells(&second.body, "P"));
    seen.sort();
    seen.dedup();
    assert_eq!(seen.len(), 102, "each booking once");
    assert_eq!(link(&second.body, "rel=\"next\""), None, "the last page");
    assert_eq!(
        link(&second.body, ">First page<").as_deref(),
        Some("/console/bookings")
    );

    let forged = browser.get("/console/bookings?after=bm90IGEga2V5").await;
    assert!(
        forged.body.contains("is not one this list made"),
        "{}",
        forged.body
    );
    assert!(cells(&forged.body, "P").is_empty());
}

/// The preview carries every row to the confirmation, so the confirmation form is as large as
/// the file: a file of thousands of bookings must not be refused for its size at that step.
async fn a_file_of_two_thousand_bookings_is_imported_in_one_confirmation(app: TestApp) {
    let (op, browser) = signed_in(&app, "aurora").await;
    let lot_id = app.open_lot(&op, serde_json::json!({})).await;
    let mut csv =
        "reference,last_name,party_size,email,language,loyalty_tier,eligible_lots\n".to_owned();
    for i in 0..2000 {
        csv += &format!("BK{i:04},Lindqvist,2,traveller{i}@example.com,en,1,{lot_id}\n");
    }
    let preview = browser.upload("bookings.csv", &csv).await;
    assert_eq!(preview.status, 200, "{}", preview.body);
    assert!(
        preview.body.contains("2000 good rows, 0 with errors"),
        "{}",
        preview.body
    );
    let payload = decode(&{
        let at = preview.body.find("name=\"payload\" value=\"").unwrap() + 22;
        preview.body[at..at + preview.body[at..].find('"').unwrap()].to_owned()
    });
    assert!(
        payload.len() > 100_000,
        "the form is far over actix-web's 16 KiB default"
    );

    let imported = browser
        .submit("/console/bookings/import/confirm", &[("payload", &payload)])
        .await;
    assert_eq!(imported.status, 303, "{}", imported.body);
    let list = browser.get(imported.location()).await;
    assert!(
        list.body
            .contains("Imported: 2000 created, 0 updated, 0 unchanged"),
        "{}",
        list.body
    );
    assert_eq!(booking::Entity::find().count(&app.db).await.unwrap(), 2000);
}

/// An address or form the console cannot read at all (a number that is not one, a field given
/// twice, a body that is not a form) is answered with the console's error page, not actix-web's
/// plain text, and changes nothing.
async fn an_unreadable_console_address_or_form_gets_an_error_page_and_changes_nothing(
    app: TestApp,
) {
    let (op, browser) = signed_in(&app, "aurora").await;
    let lot_id = app.open_lot(&op, serde_json::json!({})).await;
    for path in [
        "/console/bookings?created=abc".to_owned(),
        "/console/lots?after=a&after=b".to_owned(),
        "/console/audit?action=lot&action=bid".to_owned(),
    ] {
        let page = browser.get(&path).await;
        assert_eq!(page.status, 400, "{path}: {}", page.body);
        assert!(
            page.body.contains("<html") && page.body.contains("could not be read"),
            "{path}: {}",
            page.body
        );
    }
    let status = || async {
        lot::Entity::find_by_id(lot_id.clone())
            .one(&app.db)
            .await
            .unwrap()
            .unwrap()
            .status
    };
    let before = status().await;
    let csrf = browser.get("/console/users").await.csrf();
    let res = browser
        .client
        .post(format!("{}/console/lots/{lot_id}/cancel", browser.base))
        .header("content-type", "application/json")
        .body(serde_json::json!({"csrf": csrf, "reason": "weather"}).to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 400);
    let body = res.text().await.unwrap();
    assert!(
        body.contains("<html") && body.contains("This form could not be read"),
        "{body}"
    );
    // The import confirmation reads its own (large) form: the same answer for a body that is
    // not a form, and the session's token still required.
    let res = browser
        .client
        .post(format!("{}/console/bookings/import/confirm", browser.base))
        .header("content-type", "application/json")
        .body(serde_json::json!({"csrf": csrf, "payload": "[]"}).to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 400);
    assert!(
        res.text()
            .await
            .unwrap()
            .contains("This form could not be read")
    );
    let payload = serde_json::json!([{"reference": "CS1234", "last_name": "Muller",
        "eligible_lots": lot_id}])
    .to_string();
    for token in ["", "forged"] {
        let answer = browser
            .post(
                "/console/bookings/import/confirm",
                &[("csrf", token), ("payload", &payload)],
            )
            .await;
        assert_eq!(answer.status, 403, "token {token:?}: {}", answer.body);
    }
    // A form's type is read as browsers may send it: with a charset, in any case. (Read, so
    // the forged token is what refuses it.)
    for content_type in [
        "application/x-www-form-urlencoded; charset=UTF-8",
        "Application/X-WWW-Form-Urlencoded",
    ] {
        let res = browser
            .client
            .post(format!("{}/console/bookings/import/confirm", browser.base))
            .header("content-type", content_type)
            .body("csrf=forged&payload=%5B%5D")
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 403, "{content_type}");
    }
    assert_eq!(booking::Entity::find().count(&app.db).await.unwrap(), 0);
    assert_eq!(status().await, before, "the lot is not cancelled");
}

/// A lot whose award waits for review is reviewed in the console: a winner taken out with a
/// reason (refused, changing nothing, without one), the standby bid moving up, then approval,
/// after which the winners are charged and the forms are gone.
async fn an_award_waiting_for_review_is_trimmed_and_approved_in_the_console(app: TestApp) {
    let (op, browser) = signed_in(&app, "aurora").await;
    let lot_id = awarded_for_review(
        &app,
        &op,
        &[("RV1111", 1, "400.00"), ("RV2222", 1, "300.00")],
    )
    .await;
    let status_of = |reference: &'static str| {
        let app = &app;
        async move {
            let (b, _) = bid::Entity::find()
                .find_also_related(booking::Entity)
                .all(&app.db)
                .await
                .unwrap()
                .into_iter()
                .find(|(_, bk)| bk.as_ref().unwrap().reference == reference)
                .unwrap();
            (b.id, b.status)
        }
    };
    let (top, won) = status_of("RV1111").await;
    assert_eq!(won, "won");
    let (next, _) = status_of("RV2222").await;

    let detail = browser.get(&format!("/console/lots/{lot_id}")).await;
    assert!(
        detail.body.contains("The award is waiting for your review"),
        "{}",
        detail.body
    );
    let bids_path = format!("/console/lots/{lot_id}/bids");
    let page = browser.get(&bids_path).await;
    assert!(
        page.body.contains("Waiting for your review"),
        "{}",
        page.body
    );
    assert!(page.body.contains(&format!("id=\"take-{top}\"")));
    assert!(
        !page.body.contains(&format!("id=\"take-{next}\"")),
        "only winners can be taken out"
    );
    assert!(page.body.contains("Approve the award and charge 1 winner"));

    let take_out = format!("/console/lots/{lot_id}/award/take-out");
    let refused = browser
        .submit(&take_out, &[("take", &top), ("reason", " ")])
        .await;
    assert_eq!(refused.status, 422);
    assert!(
        refused.body.contains("id=\"reason-error\">is required"),
        "{}",
        refused.body
    );
    assert!(
        refused.body.contains(&format!("value=\"{top}\" checked")),
        "the tick is kept"
    );
    let refused = browser
        .submit(&take_out, &[("reason", "Travel document check failed")])
        .await;
    assert_eq!(refused.status, 422);
    assert!(
        refused
            .body
            .contains("id=\"take-error\">name at least one winning bid")
    );
    assert!(
        refused.body.contains("Travel document check failed"),
        "the reason is kept"
    );
    assert_eq!(status_of("RV1111").await.1, "won", "nothing changed");

    let done = browser
        .submit(
            &take_out,
            &[("take", &top), ("reason", "Travel document check failed")],
        )
        .await;
    assert_eq!(done.status, 303, "{}", done.body);
    let page = browser.get(done.location()).await;
    assert!(
        page.body.contains("Taken out of the award"),
        "{}",
        page.body
    );
    assert!(
        page.body.contains(&format!("id=\"take-{next}\"")),
        "standby moved up"
    );
    app.run_jobs().await;
    assert_eq!(status_of("RV1111").await.1, "released");
    assert_eq!(status_of("RV2222").await.1, "won");

    let approve = format!("/console/lots/{lot_id}/award/approve");
    // The winner named 600 times: a form over 16 KiB, as a lot with hundreds of winners sends.
    let done = browser
        .submit(&approve, &vec![("winner", next.as_str()); 600])
        .await;
    assert_eq!(done.status, 303, "{}", done.body);
    let page = browser.get(done.location()).await;
    assert!(page.body.contains("Award approved"), "{}", page.body);
    assert!(!page.body.contains("Waiting for your review"));
    let again = browser.submit(&approve, &[("winner", &next)]).await;
    assert_eq!(again.status, 422);
    assert!(
        again
            .body
            .contains("not waiting for review any more (it is approved)"),
        "{}",
        again.body
    );
    app.run_jobs().await;
    assert_eq!(status_of("RV2222").await.1, "charged");
    assert!(
        !browser
            .get(&format!("/console/lots/{lot_id}"))
            .await
            .body
            .contains("waiting for your review")
    );
    let log = browser.get("/console/audit?action=award.").await;
    let removed = decode(log.row("data-action=\"award.winners_removed\""));
    assert!(
        removed.contains("user:") && removed.contains(&top),
        "{removed}"
    );
    assert!(log.body.contains("data-action=\"award.approved\""));
}

/// A traveller on the phone gives their reference or their name: the operator finds the
/// booking by typing its start, however the traveller spells it, and pages through the matches
/// with the search kept.
async fn the_bookings_list_finds_bookings_by_the_start_of_their_reference_or_last_name(
    app: TestApp,
) {
    let (op, browser) = signed_in(&app, "aurora").await;
    let lot = app.open_lot(&op, serde_json::json!({})).await;
    let mut rows: Vec<serde_json::Value> = (0..150)
        .map(|i| {
            serde_json::json!({"reference": format!("SR{i:04}"), "last_name": "Lindqvist",
                "party_size": 1, "eligible_lots": [lot]})
        })
        .collect();
    rows.push(
        serde_json::json!({"reference": "AB1234", "last_name": "Muller",
        "party_size": 2, "eligible_lots": [lot]}),
    );
    app.post("/v1/bookings/import")
        .key(&op.key)
        .json(&serde_json::Value::Array(rows))
        .send()
        .await
        .expect(200);

    // A link made when the search took references only still works.
    let one = browser.get("/console/bookings?reference=ab-12%2034").await;
    assert_eq!(one.status, 200);
    assert_eq!(cells(&one.body, "AB"), ["AB1234"]);
    assert!(cells(&one.body, "SR").is_empty(), "{}", one.body);

    let fifty = browser.get("/console/bookings?q=sr01").await;
    let found = cells(&fifty.body, "SR");
    assert_eq!(found.len(), 50, "SR0100 to SR0149");
    assert!(found.iter().all(|r| r.starts_with("SR01")));

    let first = browser.get("/console/bookings?q=SR").await;
    assert_eq!(cells(&first.body, "SR").len(), 100);
    let next = link(&first.body, "rel=\"next\"").expect("a next page link");
    assert!(next.contains("q=SR"), "the search is kept: {next}");
    let second = browser.get(&next).await;
    let mut seen = cells(&first.body, "SR");
    seen.extend(cells(&second.body, "SR"));
    seen.sort();
    seen.dedup();
    assert_eq!(seen.len(), 150, "each match once");
    assert!(cells(&second.body, "AB").is_empty());

    // A last name, typed without its accent or with one it does not have.
    let by_name = browser.get("/console/bookings?q=M%C3%BCll").await;
    assert_eq!(cells(&by_name.body, "AB"), ["AB1234"]);
    assert!(cells(&by_name.body, "SR").is_empty());
    let by_name = browser.get("/console/bookings?q=lindq").await;
    assert_eq!(
        cells(&by_name.body, "SR").len(),
        100,
        "the first page of 150"
    );
    assert!(cells(&by_name.body, "AB").is_empty());

    let none = browser.get("/console/bookings?q=ZZ9").await;
    assert!(
        none.body
            .contains("No booking&#39;s reference or last name starts with ZZ9")
            || none
                .body
                .contains("No booking's reference or last name starts with ZZ9"),
        "{}",
        none.body
    );
    let nothing_to_match = browser.get("/console/bookings?q=--").await;
    assert_eq!(nothing_to_match.status, 200);
    assert!(
        nothing_to_match
            .body
            .contains("id=\"b-search-error\">has no letter or digit")
    );
    assert!(cells(&nothing_to_match.body, "SR").is_empty());
}

/// The winners a review page lists, as its approve form sends them back.
fn shown_winners(body: &str) -> Vec<String> {
    body.match_indices("name=\"winner\" value=\"")
        .map(|(at, m)| {
            let value = &body[at + m.len()..];
            value[..value.find('"').unwrap()].to_owned()
        })
        .collect()
}

/// The review acts only on what the operator saw, and only on their own live award: approving
/// from a page drawn before a winner was taken out charges nobody, taking out a winner already
/// gone changes nothing, a cancelled lot has nothing to review, another operator's user gets
/// "not found", and a reason is measured in characters, not bytes.
async fn an_award_review_from_a_stale_page_or_another_operator_changes_nothing(app: TestApp) {
    let (op, browser) = signed_in(&app, "aurora").await;
    let lot_id = awarded_for_review(
        &app,
        &op,
        &[("ST1111", 1, "400.00"), ("ST2222", 1, "300.00")],
    )
    .await;
    let award_status = || async {
        surclass::store::entities::award::Entity::find_by_id(lot_id.clone())
            .one(&app.db)
            .await
            .unwrap()
            .unwrap()
            .status
    };
    let bids_path = format!("/console/lots/{lot_id}/bids");
    let stale = browser.get(&bids_path).await;
    let shown = shown_winners(&stale.body);
    assert_eq!(shown.len(), 1);
    let top = shown[0].clone();

    // Someone else (here an API key) takes the shown winner out; the standby bid moves up.
    app.post(&format!("/v1/lots/{lot_id}/award/reject"))
        .key(&op.key)
        .json(&serde_json::json!({"bids": [top], "reason": "Travel document check failed"}))
        .send()
        .await
        .expect(200);
    let approve = format!("/console/lots/{lot_id}/award/approve");
    let refused = browser.submit(&approve, &[("winner", &top)]).await;
    assert_eq!(refused.status, 422);
    assert!(
        refused
            .body
            .contains("Nothing was charged: the winners changed since the page was drawn"),
        "{}",
        refused.body
    );
    assert_eq!(award_status().await, "pending_review", "not approved");
    let now_shown = shown_winners(&refused.body);
    assert_eq!(now_shown.len(), 1);
    assert_ne!(now_shown[0], top, "the page shows the winner as it is now");
    let refused = browser
        .submit(
            &format!("/console/lots/{lot_id}/award/take-out"),
            &[("take", &top), ("reason", "Seat unavailable")],
        )
        .await;
    assert_eq!(refused.status, 422);
    assert!(
        refused.body.contains("is no longer a winner"),
        "{}",
        refused.body
    );

    // A reason is counted in characters: 500 accented letters are more than 500 bytes.
    let long = "é".repeat(501);
    let refused = browser
        .submit(
            &format!("/console/lots/{lot_id}/award/take-out"),
            &[("take", &now_shown[0]), ("reason", &long)],
        )
        .await;
    assert_eq!(refused.status, 422);
    assert!(refused.body.contains("is 501 characters long; at most 500"));
    // Exactly 500 characters (1,000 bytes) is accepted; the winner named 600 times (a form
    // over 16 KiB, as a lot with hundreds of winners makes) is taken out once.
    let reason = "é".repeat(500);
    let mut fields = vec![("take", now_shown[0].as_str()); 600];
    fields.push(("reason", &reason));
    let done = browser
        .submit(&format!("/console/lots/{lot_id}/award/take-out"), &fields)
        .await;
    assert_eq!(done.status, 303, "{}", done.body);
    let removed = audit_entry::Entity::find()
        .filter(audit_entry::Column::Action.eq("award.winners_removed"))
        .all(&app.db)
        .await
        .unwrap();
    assert_eq!(removed.len(), 2, "the API's and this one");
    let named_once = format!("bids={} reason", now_shown[0]);
    assert!(
        removed.iter().any(|e| e
            .after
            .as_deref()
            .unwrap_or_default()
            .starts_with(&named_once)),
        "named once: {removed:?}"
    );

    // Another operator's user cannot see or act on this award.
    let (_, stranger) = signed_in(&app, "borealis").await;
    for (path, fields) in [
        (approve.clone(), vec![("winner", now_shown[0].as_str())]),
        (
            format!("/console/lots/{lot_id}/award/take-out"),
            vec![("take", now_shown[0].as_str()), ("reason", "no")],
        ),
    ] {
        let answer = stranger.submit(&path, &fields).await;
        assert_eq!(answer.status, 404, "{path}: {}", answer.body);
    }
    assert_eq!(award_status().await, "pending_review");

    // Cancelled after the award: nothing is left to review or approve.
    app.post(&format!("/v1/lots/{lot_id}/cancel"))
        .key(&op.key)
        .json(&serde_json::json!({"reason": "Flight cancelled"}))
        .send()
        .await
        .expect(200);
    let detail = browser.get(&format!("/console/lots/{lot_id}")).await;
    assert!(!detail.body.contains("waiting for your review"));
    let page = browser.get(&bids_path).await;
    assert!(
        !page.body.contains("Waiting for your review"),
        "{}",
        page.body
    );
    let refused = browser.submit(&approve, &[("winner", &now_shown[0])]).await;
    assert_eq!(refused.status, 422);
    assert!(
        refused
            .body
            .contains("not waiting for review any more (it is cancelled)"),
        "{}",
        refused.body
    );
    assert_eq!(award_status().await, "cancelled");
    assert!(page.body.contains("Award (priority, cancelled)"));
    assert!(
        !browser
            .get("/console/audit?action=award.approved")
            .await
            .body
            .contains("data-action=\"award.approved\""),
        "no approval is logged"
    );
}

store_tests!(
    an_emptied_field_on_a_lot_edit_is_named_and_nothing_is_saved,
    an_admin_removes_a_user_who_is_signed_out_at_once_and_the_last_admin_stays,
    an_operator_signs_in_with_the_right_password_only,
    five_wrong_passwords_lock_the_account_for_fifteen_minutes,
    forms_without_the_session_csrf_token_change_nothing,
    a_lot_form_shows_each_error_beside_its_field_and_creates_nothing,
    cancelling_says_how_many_holds_are_released_before_it_happens,
    an_import_file_is_previewed_and_nothing_is_imported_while_a_row_is_bad,
    bids_export_as_csv_and_each_policy_can_be_previewed,
    changes_by_console_users_and_api_keys_are_in_the_audit_log,
    one_operators_users_never_see_anothers_lots_bids_or_bookings,
    the_dashboard_draws_its_charts_as_svg,
    the_dashboard_counts_every_bid_once_and_only_the_operators_own,
    the_lot_list_pages_through_every_lot_fifty_at_a_time_keeping_its_filters,
    the_lot_list_shows_the_lots_in_play_unless_any_status_is_chosen,
    the_lots_in_play_are_read_through_their_own_index,
    the_audit_log_pages_back_through_older_changes_a_hundred_at_a_time,
    the_bookings_list_pages_through_every_booking_a_hundred_at_a_time,
    a_file_of_two_thousand_bookings_is_imported_in_one_confirmation,
    an_unreadable_console_address_or_form_gets_an_error_page_and_changes_nothing,
    an_award_waiting_for_review_is_trimmed_and_approved_in_the_console,
    the_bookings_list_finds_bookings_by_the_start_of_their_reference_or_last_name,
    an_award_review_from_a_stale_page_or_another_operator_changes_nothing,
);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_session_cookie_is_secure_when_the_service_is_reached_over_https() {
    let app = crate::support::spawn_app_with(crate::support::Store::Sqlite, |s| {
        s.public_url = Some("https://upgrade.example".into());
    })
    .await
    .unwrap();
    let op = app.operator("aurora").await;
    user(&app, &op, "ops@aurora.example", Role::Member).await;
    // A browser keeps Secure cookies off plain http, so carry the sign-in form's cookie by hand.
    let form = app.get("/console/sign-in").await;
    let pre = form
        .headers()
        .get("set-cookie")
        .unwrap()
        .to_str()
        .unwrap()
        .to_owned();
    assert!(pre.contains("Secure"), "{pre}");
    let pre = pre.split(';').next().unwrap().to_owned();
    let body = form.text().await.unwrap();
    let at = body.find("name=\"csrf\" value=\"").unwrap() + 19;
    let csrf = &body[at..at + body[at..].find('"').unwrap()];
    let res = app
        .client
        .post(format!("{}/console/sign-in", app.address))
        .header("cookie", pre)
        .form(&[
            ("email", "ops@aurora.example"),
            ("password", PASSWORD),
            ("csrf", csrf),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 303);
    let cookie = res
        .headers()
        .get_all("set-cookie")
        .iter()
        .map(|v| v.to_str().unwrap().to_owned())
        .find(|c| c.starts_with("surclass_console="))
        .unwrap();
    assert!(cookie.contains("Secure"), "{cookie}");
}
