//! The traveller's pages as a browser without JavaScript sees them: forms that POST and
//! redirect, a clear message on the same screen for bad input (and nothing changed), the
//! form token on every POST, the signed link from an email, French and English.

use reqwest::StatusCode;
use serde_json::json;

use crate::store_tests;
use crate::support::TestApp;

const GOOD_CARD: &str = "4242 4242 4242 4242";
const DECLINED_WHEN_CHARGED: &str = "4000 0000 0000 0341";

/// A cookie-keeping client that does not follow redirects, like a browser's history.
pub(crate) struct Browser {
    base: String,
    client: reqwest::Client,
}

pub(crate) struct Page {
    status: StatusCode,
    location: Option<String>,
    cookies: Vec<String>,
    pub(crate) body: String,
}

impl Page {
    /// The value of the first hidden input with this name.
    fn hidden(&self, name: &str) -> String {
        let marker = format!("name=\"{name}\" value=\"");
        let start = self
            .body
            .find(&marker)
            .unwrap_or_else(|| panic!("no {name} in {}", self.body))
            + marker.len();
        self.body[start..].split('"').next().unwrap().to_owned()
    }

    pub(crate) fn says(&self, text: &str) -> bool {
        self.body.replace("&#39;", "'").contains(text)
    }

    /// Where this answer sends the browser, without the query: a placed bid's own page.
    fn path(&self) -> String {
        let to = self.location.as_deref();
        let to = to.unwrap_or_else(|| panic!("no redirect ({}): {}", self.status, self.body));
        to.split('?').next().unwrap().to_owned()
    }
}

impl Browser {
    pub(crate) fn new(app: &TestApp) -> Self {
        Self::with_language(app, "en-GB,en;q=0.9")
    }

    pub(crate) fn with_language(app: &TestApp, accept_language: &str) -> Self {
        let mut headers = reqwest::header::HeaderMap::new();
        headers.insert("accept-language", accept_language.parse().unwrap());
        Self {
            base: app.address.clone(),
            client: reqwest::Client::builder()
                .cookie_store(true)
                .default_headers(headers)
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .unwrap(),
        }
    }

    async fn read(response: reqwest::Response) -> Page {
        let status = response.status();
        let location = response
            .headers()
            .get("location")
            .map(|v| v.to_str().unwrap().to_owned());
        let cookies = response
            .headers()
            .get_all("set-cookie")
            .iter()
            .map(|v| v.to_str().unwrap().to_owned())
            .collect();
        Page {
            status,
            location,
            cookies,
            body: response.text().await.unwrap(),
        }
    }

    pub(crate) async fn get(&self, path: &str) -> Page {
        Self::read(
            self.client
                .get(format!("{}{path}", self.base))
                .send()
                .await
                .unwrap(),
        )
        .await
    }

    async fn post(&self, path: &str, form: &[(&str, &str)]) -> Page {
        Self::read(
            self.client
                .post(format!("{}{path}", self.base))
                .form(form)
                .send()
                .await
                .unwrap(),
        )
        .await
    }

    pub(crate) async fn sign_in(&self, reference: &str, last_name: &str) -> Page {
        let form = self.get("/").await;
        let token = form.hidden("form_token");
        self.post(
            "/",
            &[
                ("reference", reference),
                ("last_name", last_name),
                ("form_token", &token),
            ],
        )
        .await
    }

    /// Places a bid from the bid screen with the given card; returns the answer.
    async fn bid(&self, lot: &str, amount: &str, card: &str) -> Page {
        self.bid_with(lot, amount, card, &[]).await
    }

    /// Places a bid on an upgrade charged at the award: the card is saved, with consent.
    async fn bid_saving_card(&self, lot: &str, amount: &str, card: &str) -> Page {
        self.bid_with(lot, amount, card, &[("consent_to_charge", "yes")])
            .await
    }

    async fn bid_with(&self, lot: &str, amount: &str, card: &str, more: &[(&str, &str)]) -> Page {
        let screen = self.get(&format!("/offers/{lot}")).await;
        assert_eq!(screen.status, StatusCode::OK, "{}", screen.body);
        let csrf = screen.hidden("csrf");
        let mut form = vec![
            ("csrf", csrf.as_str()),
            ("amount", amount),
            ("card_number", card),
            ("card_expiry", "12/30"),
            ("card_cvc", "123"),
        ];
        form.extend_from_slice(more);
        self.post(&format!("/offers/{lot}"), &form).await
    }

    /// Sends another card for a bid whose payment failed, with the form token of the page
    /// it was typed on.
    async fn give_card(&self, bid_path: &str, csrf: &str, card: &str) -> Page {
        let form = [
            ("csrf", csrf),
            ("card_number", card),
            ("card_expiry", "12/30"),
            ("card_cvc", "123"),
        ];
        self.post(&format!("{bid_path}/card"), &form).await
    }
}

/// A traveller signed in on the pages who won the one seat of a lot with ten minutes' grace,
/// and whose card was declined at the award: the browser and the bid's page.
async fn payment_failed_on_page(app: &TestApp) -> (Browser, String) {
    let op = app.operator("aurora").await;
    let lot = app
        .open_lot(&op, json!({"capacity": 1, "payment_grace_seconds": 600}))
        .await;
    app.booking(&op, "AU7K2P", "Muller", 1, &[&lot]).await;
    let browser = Browser::new(app);
    browser.sign_in("AU7K2P", "Muller").await;
    let bid_path = browser.bid(&lot, "400", DECLINED_WHEN_CHARGED).await.path();
    app.close_now(&lot).await;
    app.run_jobs().await;
    (browser, bid_path)
}

/// The booking's bids as the REST API sees them (the source of truth for "nothing changed").
async fn bids_of(app: &TestApp, reference: &str, last_name: &str) -> Vec<serde_json::Value> {
    let token = app.sign_in(reference, last_name).await;
    let offers = app
        .read("/v1/traveller/offers")
        .key(&token)
        .send()
        .await
        .expect(200);
    offers.body["offers"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|o| !o["my_bid"].is_null())
        .map(|o| o["my_bid"].clone())
        .collect()
}

/// Sends AU7K2P / Muller from the sign-in form on `page`, naming `operator` as the form's
/// choice (or hidden field) would.
async fn sign_in_naming(browser: &Browser, page: &Page, operator: Option<&str>) -> Page {
    let token = page.hidden("form_token");
    let mut form = vec![
        ("reference", "AU7K2P"),
        ("last_name", "Muller"),
        ("form_token", token.as_str()),
    ];
    form.extend(operator.map(|o| ("operator", o)));
    browser.post("/", &form).await
}

/// Two companies each sold AU7K2P to a Muller: the page asks which company, and opens that
/// company's booking only; an operator's own link (`/?operator=…`) asks nothing.
async fn a_reference_two_companies_sold_is_opened_after_asking_which_company(app: TestApp) {
    let aurora = app.operator("aurora").await;
    let borealis = app.operator("borealis").await;
    let flight = app.open_lot(&aurora, json!({"resource": "AU101"})).await;
    let other_flight = app.open_lot(&borealis, json!({"resource": "BO202"})).await;
    app.booking(&aurora, "AU7K2P", "Muller", 1, &[&flight])
        .await;
    app.booking(&borealis, "AU7K2P", "Muller", 1, &[&other_flight])
        .await;
    let browser = Browser::new(&app);
    let asked = browser.sign_in("AU7K2P", "Muller").await;
    assert_eq!(asked.status, StatusCode::OK, "{}", asked.body);
    assert!(
        asked.says("Which company did you book with?"),
        "{}",
        asked.body
    );
    assert!(
        asked.says(r#"name="operator" value="aurora" required> aurora Ltd"#)
            && asked.says(r#"name="operator" value="borealis" required> borealis Ltd"#),
        "{}",
        asked.body
    );
    assert!(asked.says(r#"value="AU7K2P""#), "what was typed stays");
    assert!(
        !asked
            .cookies
            .iter()
            .any(|c| c.starts_with("surclass_session="))
    );
    let chosen = sign_in_naming(&browser, &asked, Some("borealis")).await;
    assert_eq!(
        chosen.location.as_deref(),
        Some("/offers"),
        "{}",
        chosen.body
    );
    let offers = browser.get("/offers").await;
    assert!(
        offers.says("Booking AU7K2P (borealis Ltd)"),
        "{}",
        offers.body
    );
    assert!(
        offers.says("BO202") && !offers.says("AU101"),
        "{}",
        offers.body
    );

    // The airline's own link names it: the form carries it, and nothing is asked.
    let linked = Browser::new(&app);
    let front = linked.get("/?operator=aurora").await;
    assert!(
        front.says(r#"<input type="hidden" name="operator" value="aurora">"#),
        "{}",
        front.body
    );
    let signed_in = sign_in_naming(&linked, &front, Some("aurora")).await;
    assert_eq!(
        signed_in.location.as_deref(),
        Some("/offers"),
        "{}",
        signed_in.body
    );
    let offers = linked.get("/offers").await;
    assert!(
        offers.says("AU101") && !offers.says("BO202"),
        "{}",
        offers.body
    );

    let french = Browser::with_language(&app, "fr-FR,fr;q=0.9");
    let front = french.get("/?operator=nobody").await;
    let unknown = sign_in_naming(&french, &front, Some("nobody")).await;
    assert_eq!(unknown.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(
        unknown.says("Ce lien nomme une compagnie qui ne vend pas de surclassements ici"),
        "{}",
        unknown.body
    );
    assert!(
        !unknown.says(r#"name="operator""#),
        "the unknown company is dropped"
    );
    let asked = sign_in_naming(&french, &unknown, None).await;
    assert!(
        asked.says("Auprès de quelle compagnie avez-vous réservé ?"),
        "{}",
        asked.body
    );
}

async fn the_sign_in_page_is_the_front_door_and_a_wrong_pair_is_told_on_it(app: TestApp) {
    let op = app.operator("aurora").await;
    // A Thursday, far enough ahead for any close: the page names the weekday.
    let lot = app
        .open_lot(&op, json!({"service_date": "2037-12-24"}))
        .await;
    app.booking(&op, "AU7K2P", "Müller", 2, &[&lot]).await;
    let browser = Browser::new(&app);

    let front = browser.get("/").await;
    assert_eq!(front.status, StatusCode::OK);
    assert!(
        front.says("Booking reference") && front.says("Last name"),
        "{}",
        front.body
    );
    assert!(front.body.len() < 60_000);

    let wrong = browser.sign_in("AU7K2P", "Smith").await;
    assert_eq!(wrong.status, StatusCode::UNAUTHORIZED);
    assert!(
        wrong.says("No booking matches this reference and last name"),
        "{}",
        wrong.body
    );
    assert!(
        wrong.says("value=\"AU7K2P\""),
        "what was typed stays in the field"
    );
    assert!(
        !wrong
            .cookies
            .iter()
            .any(|c| c.starts_with("surclass_session="))
    );
    assert_eq!(browser.get("/offers").await.status, StatusCode::SEE_OTHER);

    let empty = browser.sign_in("", "Müller").await;
    assert_eq!(empty.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(empty.says("Enter both your booking reference and your last name"));

    // A sign-in posted from elsewhere (no form cookie or token) is refused.
    let forged = Browser::new(&app)
        .post("/", &[("reference", "AU7K2P"), ("last_name", "Muller")])
        .await;
    assert_eq!(forged.status, StatusCode::FORBIDDEN);
    assert!(
        !forged
            .cookies
            .iter()
            .any(|c| c.starts_with("surclass_session="))
    );

    let signed_in = browser.sign_in(" au 7k2p ", "MULLER").await;
    assert_eq!(signed_in.status, StatusCode::SEE_OTHER);
    assert_eq!(signed_in.location.as_deref(), Some("/offers"));
    let cookie = signed_in
        .cookies
        .iter()
        .find(|c| c.starts_with("surclass_session="))
        .unwrap();
    assert!(
        cookie.contains("HttpOnly") && cookie.contains("SameSite=Lax"),
        "{cookie}"
    );
    assert!(!cookie.contains("Secure"), "plain http here: {cookie}");
    let offers = browser.get("/offers").await;
    assert_eq!(offers.status, StatusCode::OK);
    assert!(
        offers.says("Business instead of Economy"),
        "{}",
        offers.body
    );
    assert!(offers.says("€100.00 – €1,000.00"), "{}", offers.body);
    // The travel day, with its weekday: no reader takes it for another.
    assert!(offers.says(" · Thu 24 Dec 2037"), "{}", offers.body);

    let signed_out = browser
        .post("/sign-out", &[("csrf", &offers.hidden("csrf"))])
        .await;
    assert_eq!(signed_out.location.as_deref(), Some("/?session=ended"));
    assert!(
        browser
            .get("/?session=ended")
            .await
            .says("You are signed out.")
    );
    assert_eq!(browser.get("/offers").await.status, StatusCode::SEE_OTHER);
}

async fn a_traveller_bids_changes_withdraws_and_bids_again_on_the_pages(app: TestApp) {
    let op = app.operator("aurora").await;
    let lot = app.open_lot(&op, json!({})).await;
    app.booking(&op, "AU7K2P", "Muller", 2, &[&lot]).await;
    let browser = Browser::new(&app);
    browser.sign_in("AU7K2P", "Muller").await;

    let placed = browser.bid(&lot, "420", GOOD_CARD).await;
    assert_eq!(placed.status, StatusCode::SEE_OTHER, "{}", placed.body);
    let status_url = placed.location.unwrap();
    assert!(status_url.ends_with("?done=placed"), "{status_url}");
    let confirmation = browser.get(&status_url).await;
    assert!(confirmation.says("Your bid is in"), "{}", confirmation.body);
    assert!(confirmation.says("Your card is authorised for €840.00 (€420.00 per person) but charged only if the upgrade is confirmed"));
    assert!(confirmation.says("you can change or withdraw your bid here"));
    assert!(
        confirmation.says("Nothing is charged and the hold on your card is released.")
            && confirmation.says(
                "Your card is authorised for €840.00 (€420.00 per person): to offer more per person, enter your card again below."
            ),
        "{}",
        confirmation.body
    );
    let bid_path = status_url.split('?').next().unwrap().to_owned();

    let csrf = confirmation.hidden("csrf");
    let changed = browser
        .post(
            &format!("{bid_path}/change"),
            &[("csrf", &csrf), ("amount", "380")],
        )
        .await;
    assert_eq!(changed.status, StatusCode::SEE_OTHER, "{}", changed.body);
    let page = browser.get(changed.location.as_deref().unwrap()).await;
    assert!(
        page.says("Your bid is changed") && page.says("€380.00"),
        "{}",
        page.body
    );
    assert!(page.says("Bid changed"), "the timeline shows the change");
    // The card still holds the first total: a raise up to it needs no card.
    assert!(
        page.says("Your card is authorised for €840.00 (€420.00 per person)"),
        "{}",
        page.body
    );
    let raised = browser
        .post(
            &format!("{bid_path}/change"),
            &[("csrf", &csrf), ("amount", "420")],
        )
        .await;
    assert_eq!(raised.status, StatusCode::SEE_OTHER, "{}", raised.body);
    let page = browser.get(raised.location.as_deref().unwrap()).await;
    assert!(
        page.says("New offer: €420.00 per person, €840.00 in all")
            && page.says("Your card is authorised for €840.00 (€420.00 per person)"),
        "{}",
        page.body
    );
    let french = Browser::with_language(&app, "fr-FR,fr;q=0.9");
    french.sign_in("AU7K2P", "Muller").await;
    let in_french = french.get(&bid_path).await;
    assert!(
        in_french.says("Votre carte est autorisée pour 840,00\u{a0}€ (420,00\u{a0}€ par personne) : pour offrir davantage par personne, saisissez-la de nouveau ci-dessous."),
        "{}",
        in_french.body
    );

    let withdrawn = browser
        .post(&format!("{bid_path}/withdraw"), &[("csrf", &csrf)])
        .await;
    assert_eq!(withdrawn.status, StatusCode::SEE_OTHER);
    let page = browser.get(withdrawn.location.as_deref().unwrap()).await;
    assert!(
        page.says("Your bid is withdrawn")
            && page.says("Nothing will be charged; the hold on your card is released."),
        "{}",
        page.body
    );
    assert!(page.says("Bid again"));
    assert_eq!(
        bids_of(&app, "AU7K2P", "Muller").await[0]["status"],
        "withdrawn"
    );

    let again = browser.bid(&lot, "450", GOOD_CARD).await;
    assert_eq!(again.status, StatusCode::SEE_OTHER, "{}", again.body);
    let bids = bids_of(&app, "AU7K2P", "Muller").await;
    assert_eq!(bids[0]["status"], "active");
    assert_eq!(bids[0]["amount"], "450.00");
}

async fn bad_input_is_explained_on_the_same_screen_and_changes_nothing(app: TestApp) {
    let op = app.operator("aurora").await;
    let lot = app.open_lot(&op, json!({})).await;
    app.booking(&op, "AU7K2P", "Muller", 2, &[&lot]).await;
    let browser = Browser::new(&app);
    browser.sign_in("AU7K2P", "Muller").await;

    let too_low = browser.bid(&lot, "50", GOOD_CARD).await;
    assert_eq!(too_low.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(
        too_low.says(
            "The amount must be between €100.00 and €1,000.00 per person. Nothing was changed."
        ),
        "{}",
        too_low.body
    );
    assert!(too_low.says("aria-invalid=\"true\""));
    assert!(too_low.says("value=\"50\""), "the amount typed is kept");
    let declined = browser.bid(&lot, "200", "4000 0000 0000 0002").await;
    assert_eq!(declined.status, StatusCode::PAYMENT_REQUIRED);
    assert!(
        declined.says("Nothing was charged") && declined.says("Try another card"),
        "{}",
        declined.body
    );
    let needs_code = browser.bid(&lot, "200", "4000 0025 0000 3155").await;
    assert_eq!(needs_code.status, StatusCode::PAYMENT_REQUIRED);
    assert!(
        needs_code.says("Please use another card. Nothing was charged."),
        "{}",
        needs_code.body
    );
    let no_card = browser.bid(&lot, "200", "").await;
    assert_eq!(no_card.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(no_card.says("Enter your card number."), "{}", no_card.body);
    assert!(
        bids_of(&app, "AU7K2P", "Muller").await.is_empty(),
        "no bid was written"
    );

    let placed = browser.bid(&lot, "200", GOOD_CARD).await;
    let bid_path = placed.path();
    let csrf = browser.get(&bid_path).await.hidden("csrf");
    let too_high = browser
        .post(
            &format!("{bid_path}/change"),
            &[("csrf", &csrf), ("amount", "5000")],
        )
        .await;
    assert_eq!(too_high.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(
        too_high.says("between €100.00 and €1,000.00"),
        "{}",
        too_high.body
    );
    let raise_without_card = browser
        .post(
            &format!("{bid_path}/change"),
            &[("csrf", &csrf), ("amount", "300")],
        )
        .await;
    assert_eq!(raise_without_card.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(
        raise_without_card.says("A higher offer needs your card again"),
        "{}",
        raise_without_card.body
    );
    assert_eq!(
        bids_of(&app, "AU7K2P", "Muller").await[0]["amount"],
        "200.00"
    );

    // The lot closes while the page is open: the change is refused, and says so.
    app.close_now(&lot).await;
    let late = browser
        .post(
            &format!("{bid_path}/change"),
            &[("csrf", &csrf), ("amount", "150")],
        )
        .await;
    assert_eq!(late.status, StatusCode::CONFLICT);
    assert!(
        late.says("Bidding closed on") && late.says("Nothing was changed"),
        "{}",
        late.body
    );
    let late_withdraw = browser
        .post(&format!("{bid_path}/withdraw"), &[("csrf", &csrf)])
        .await;
    assert_eq!(late_withdraw.status, StatusCode::CONFLICT);
    let bids = bids_of(&app, "AU7K2P", "Muller").await;
    assert_eq!(
        (bids[0]["amount"].as_str(), bids[0]["status"].as_str()),
        (Some("200.00"), Some("active"))
    );

    let unknown = browser.get("/bids/bid_nosuchbid").await;
    assert_eq!(unknown.status, StatusCode::NOT_FOUND);
}

async fn a_post_without_this_sessions_form_token_changes_nothing(app: TestApp) {
    let op = app.operator("aurora").await;
    let lot = app.open_lot(&op, json!({})).await;
    app.booking(&op, "AU7K2P", "Muller", 1, &[&lot]).await;
    app.booking(&op, "AU4QX9", "ONeil", 1, &[&lot]).await;
    let mallory = Browser::new(&app);
    mallory.sign_in("AU4QX9", "ONeil").await;
    let other_sessions_token = mallory.get(&format!("/offers/{lot}")).await.hidden("csrf");
    let browser = Browser::new(&app);
    browser.sign_in("AU7K2P", "Muller").await;

    for csrf in ["", "forged", other_sessions_token.as_str()] {
        let refused = browser
            .post(
                &format!("/offers/{lot}"),
                &[
                    ("csrf", csrf),
                    ("amount", "200"),
                    ("card_number", GOOD_CARD),
                    ("card_expiry", "12/30"),
                    ("card_cvc", "123"),
                ],
            )
            .await;
        assert_eq!(refused.status, StatusCode::FORBIDDEN, "token {csrf:?}");
        assert!(refused.says("This form had expired, so nothing was changed"));
    }
    assert!(bids_of(&app, "AU7K2P", "Muller").await.is_empty());

    let placed = browser.bid(&lot, "200", GOOD_CARD).await;
    let bid_path = placed.path();
    let refused = browser
        .post(&format!("{bid_path}/withdraw"), &[("csrf", "forged")])
        .await;
    assert_eq!(refused.status, StatusCode::FORBIDDEN);
    assert_eq!(
        bids_of(&app, "AU7K2P", "Muller").await[0]["status"],
        "active"
    );

    // Without a session, a POST goes to the sign-in page and changes nothing.
    let stranger = Browser::new(&app)
        .post(&format!("{bid_path}/withdraw"), &[("csrf", "x")])
        .await;
    assert_eq!(stranger.status, StatusCode::SEE_OTHER);
    assert_eq!(stranger.location.as_deref(), Some("/"));
    assert_eq!(
        bids_of(&app, "AU7K2P", "Muller").await[0]["status"],
        "active"
    );
}

async fn the_signed_link_opens_the_booking_and_a_forged_one_says_so(app: TestApp) {
    let op = app.operator("aurora").await;
    let lot = app.open_lot(&op, json!({})).await;
    app.booking(&op, "AU7K2P", "Muller", 1, &[&lot]).await;
    let token = app.sign_in("AU7K2P", "Muller").await;
    let booking_id = token.split('.').nth(1).unwrap().to_owned();
    let signer = surclass::services::sessions::SessionSigner::load_or_create(&app.db)
        .await
        .unwrap();
    let link = surclass::services::links::status_path(&signer, &booking_id, chrono::Utc::now());

    let browser = Browser::new(&app);
    let opened = browser.get(&link).await;
    assert_eq!(opened.status, StatusCode::SEE_OTHER);
    assert_eq!(opened.location.as_deref(), Some("/offers"));
    let cookie = opened
        .cookies
        .iter()
        .find(|c| c.starts_with("surclass_session="))
        .unwrap();
    assert!(
        cookie.contains("HttpOnly") && cookie.contains("SameSite=Lax"),
        "{cookie}"
    );
    assert!(browser.get("/offers").await.says("Booking AU7K2P"));

    let forged = Browser::new(&app)
        .get(&link.replace(&booking_id, "bkg_someoneelse"))
        .await;
    assert_eq!(forged.status, StatusCode::UNAUTHORIZED);
    assert!(
        forged.says("This link has expired or is not valid"),
        "{}",
        forged.body
    );
    assert!(
        forged.says("Booking reference"),
        "the sign-in form is right there"
    );
    assert!(
        !forged
            .cookies
            .iter()
            .any(|c| c.starts_with("surclass_session="))
    );
    let expired = signer.sign(
        &booking_id,
        chrono::Utc::now() - chrono::Duration::seconds(1),
    );
    let stale = Browser::new(&app).get(&format!("/s/{expired}")).await;
    assert_eq!(stale.status, StatusCode::UNAUTHORIZED);
}

/// When a page fails on our side (here the store loses a table), the traveller is told so,
/// and that nothing changed, in their own language.
async fn a_failure_on_our_side_is_told_in_the_travellers_language(app: TestApp) {
    use sea_orm::ConnectionTrait;

    let op = app.operator("aurora").await;
    let lot = app.open_lot(&op, json!({})).await;
    app.booking(&op, "AU7K2P", "Muller", 2, &[&lot]).await;
    let french = Browser::with_language(&app, "fr-FR,fr;q=0.9,en;q=0.5");
    french.sign_in("AU7K2P", "Muller").await;
    let english = Browser::with_language(&app, "en-GB,en;q=0.9");
    english.sign_in("AU7K2P", "Muller").await;
    app.db
        .execute_unprepared("ALTER TABLE lots RENAME TO lots_gone")
        .await
        .unwrap();

    let failed = french.get("/offers").await;
    assert_eq!(failed.status, StatusCode::INTERNAL_SERVER_ERROR);
    assert!(
        failed.says("Un problème est survenu") && failed.says("Rien n'a été modifié"),
        "{}",
        failed.body
    );
    let failed = english.get("/offers").await;
    assert_eq!(failed.status, StatusCode::INTERNAL_SERVER_ERROR);
    assert!(
        failed.says("Something went wrong") && failed.says("Nothing was changed"),
        "{}",
        failed.body
    );
}

async fn french_speakers_get_french_and_euros_written_their_way(app: TestApp) {
    let op = app.operator("aurora").await;
    let lot = app
        .open_lot(
            &op,
            json!({"reserve": "1000.00", "maximum": "2500.50", "service_date": "2037-12-24"}),
        )
        .await;
    app.booking(&op, "AU7K2P", "Muller", 2, &[&lot]).await;
    let browser = Browser::with_language(&app, "fr-FR,fr;q=0.9,en;q=0.5");
    assert!(browser.get("/").await.says("Référence de réservation"));
    browser.sign_in("AU7K2P", "Muller").await;
    let offers = browser.get("/offers").await;
    assert!(
        offers.says("Affaires au lieu de Économie"),
        "{}",
        offers.body
    );
    assert!(
        offers.says("1\u{202f}000,00\u{a0}€ – 2\u{202f}500,50\u{a0}€"),
        "{}",
        offers.body
    );
    assert!(offers.says(" · jeu. 24 déc. 2037"), "{}", offers.body);

    let placed = browser.bid(&lot, "1 200,50", GOOD_CARD).await;
    assert_eq!(placed.status, StatusCode::SEE_OTHER, "{}", placed.body);
    let page = browser.get(placed.location.as_deref().unwrap()).await;
    assert!(page.says("Votre offre est enregistrée"), "{}", page.body);
    assert!(page.says("2\u{202f}401,00\u{a0}€"), "{}", page.body);

    // The switch wins over the browser's language, and returns to the same page.
    let switched = browser.get("/lang/en?next=/offers").await;
    assert_eq!(switched.location.as_deref(), Some("/offers"));
    assert!(browser.get("/offers").await.says("€1,200.50"));
    let elsewhere = browser.get("/lang/fr?next=//evil.example").await;
    assert_eq!(elsewhere.location.as_deref(), Some("/"));
}

async fn a_failed_payment_can_be_fixed_with_another_card_on_the_status_page(app: TestApp) {
    let (browser, bid_path) = payment_failed_on_page(&app).await;

    // The link in the payment-failed notice goes straight to the bid that needs a card.
    let token = app.sign_in("AU7K2P", "Muller").await;
    let booking_id = token.split('.').nth(1).unwrap().to_owned();
    let signer = surclass::services::sessions::SessionSigner::load_or_create(&app.db)
        .await
        .unwrap();
    let link = surclass::services::links::status_path(&signer, &booking_id, chrono::Utc::now());
    assert_eq!(
        Browser::new(&app).get(&link).await.location.as_deref(),
        Some(bid_path.as_str())
    );

    let failed = browser.get(&bid_path).await;
    assert!(
        failed.says("Won, but the payment failed"),
        "{}",
        failed.body
    );
    assert!(
        failed.says("Give another card to keep your upgrade"),
        "{}",
        failed.body
    );
    let csrf = failed.hidden("csrf");
    let declined = browser
        .give_card(&bid_path, &csrf, "4000 0000 0000 0002")
        .await;
    assert_eq!(
        declined.status,
        StatusCode::PAYMENT_REQUIRED,
        "{}",
        declined.body
    );
    let fixed = browser.give_card(&bid_path, &csrf, GOOD_CARD).await;
    assert_eq!(fixed.status, StatusCode::SEE_OTHER, "{}", fixed.body);
    app.run_jobs().await;
    let charged = browser.get(&bid_path).await;
    assert!(
        charged.says("Upgrade confirmed for 1 person and charged €400.00"),
        "{}",
        charged.body
    );
}

/// The form sent from a page opened before the grace period ended: refused, saying why, in
/// the traveller's language, and the form is gone from the page.
async fn a_card_sent_after_the_grace_period_is_refused_on_the_page(app: TestApp) {
    use sea_orm::sea_query::Expr;
    use sea_orm::{ColumnTrait, EntityTrait, QueryFilter};
    use surclass::store::entities::bid_event;
    let (browser, bid_path) = payment_failed_on_page(&app).await;
    let open_form = browser.get(&bid_path).await;
    assert!(open_form.says("Give another card to keep your upgrade"));
    // The ten minutes pass while the page stays open.
    bid_event::Entity::update_many()
        .col_expr(
            bid_event::Column::At,
            Expr::value(chrono::Utc::now() - chrono::Duration::seconds(601)),
        )
        .filter(bid_event::Column::Kind.eq("payment_failed"))
        .exec(&app.db)
        .await
        .unwrap();
    let late = browser
        .give_card(&bid_path, &open_form.hidden("csrf"), GOOD_CARD)
        .await;
    assert_eq!(late.status, StatusCode::CONFLICT, "{}", late.body);
    assert!(
        late.says("The time to give another card has passed: the upgrade goes to the next traveller, if there is one. Nothing was charged."),
        "{}",
        late.body
    );
    assert!(
        !browser
            .get(&bid_path)
            .await
            .says("Give another card to keep your upgrade")
    );
    let french = Browser::with_language(&app, "fr-FR,fr;q=0.9");
    french.sign_in("AU7K2P", "Muller").await;
    let csrf = french.get(&bid_path).await.hidden("csrf");
    let late = french.give_card(&bid_path, &csrf, GOOD_CARD).await;
    assert!(
        late.status == StatusCode::CONFLICT
            && late.says("Le délai pour donner une autre carte est écoulé"),
        "{}",
        late.body
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flood_of_sign_ins_on_the_page_is_slowed_like_one_on_the_api() {
    let app = crate::support::spawn_app_with(crate::support::Store::Sqlite, |s| {
        s.limits.sign_ins_per_minute = 2;
    })
    .await
    .unwrap();
    let op = app.operator("aurora").await;
    app.booking(&op, "AU7K2P", "Muller", 1, &[]).await;
    // Right answers count as much as wrong ones: each costs a lookup.
    for _ in 0..2 {
        let page = Browser::new(&app).sign_in("AU7K2P", "Muller").await;
        assert_eq!(page.status, StatusCode::SEE_OTHER, "{}", page.body);
    }
    let page = Browser::new(&app).sign_in("AU7K2P", "Muller").await;
    assert_eq!(page.status, StatusCode::TOO_MANY_REQUESTS);
    assert!(
        page.says("Too many attempts. Wait a few minutes"),
        "{}",
        page.body
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_https_the_session_cookie_is_secure() {
    let app = crate::support::spawn_app_with(crate::support::Store::Sqlite, |s| {
        s.public_url = Some("https://upgrade.example".into())
    })
    .await
    .unwrap();
    let op = app.operator("aurora").await;
    app.booking(&op, "AU7K2P", "Muller", 1, &[]).await;
    let token = app.sign_in("AU7K2P", "Muller").await;
    let booking_id = token.split('.').nth(1).unwrap().to_owned();
    let signer = surclass::services::sessions::SessionSigner::load_or_create(&app.db)
        .await
        .unwrap();
    let link = surclass::services::links::status_path(&signer, &booking_id, chrono::Utc::now());
    let opened = Browser::new(&app).get(&link).await;
    let cookie = opened
        .cookies
        .iter()
        .find(|c| c.starts_with("surclass_session="))
        .unwrap();
    assert!(
        cookie.contains("Secure") && cookie.contains("HttpOnly"),
        "{cookie}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_a_configured_stripe_gateway_brings_an_outside_script() {
    let stripe = crate::support::spawn_app_with(crate::support::Store::Sqlite, |s| {
        s.payment_gateway = surclass::config::Gateway::Stripe;
        s.stripe.stripe_secret_key = Some("sk_test_pages".into());
        // Never called: rendering the bid screen does not talk to Stripe.
        s.stripe.stripe_api_base = Some("http://127.0.0.1:9/".into());
        s.stripe.stripe_publishable_key = Some("pk_test_pages".into());
    })
    .await
    .unwrap();
    let simulated = crate::support::spawn_app(crate::support::Store::Sqlite)
        .await
        .unwrap();
    for (app, stripe_expected) in [(&stripe, true), (&simulated, false)] {
        let op = app.operator("aurora").await;
        let lot = app.open_lot(&op, json!({})).await;
        app.booking(&op, "AU7K2P", "Muller", 1, &[&lot]).await;
        let browser = Browser::new(app);
        browser.sign_in("AU7K2P", "Muller").await;
        let screen = browser.get(&format!("/offers/{lot}")).await;
        assert_eq!(screen.status, StatusCode::OK);
        assert_eq!(screen.says("https://js.stripe.com/v3/"), stripe_expected);
        assert_eq!(
            screen.says("data-stripe-key=\"pk_test_pages\""),
            stripe_expected
        );
        assert_eq!(screen.says("name=\"card_number\""), !stripe_expected);
        for page in ["/", "/offers"] {
            let body = browser.get(page).await.body;
            assert!(
                !body.contains("https://"),
                "{page} loads nothing from outside"
            );
        }
    }
}

async fn the_status_page_hands_over_the_data_and_erases_it_on_request(app: TestApp) {
    let op = app.operator("aurora").await;
    let lot = app.open_lot(&op, json!({})).await;
    app.booking(&op, "AU7K2P", "Muller", 2, &[&lot]).await;
    let browser = Browser::new(&app);
    browser.sign_in("AU7K2P", "Muller").await;
    let placed = browser.bid(&lot, "420", GOOD_CARD).await;
    let bid_path = placed.path();
    let status = browser.get(&bid_path).await;
    assert!(status.says("Download my data"), "{}", status.body);
    let csrf = status.hidden("csrf");

    let data = browser.get("/my-data").await;
    assert_eq!(data.status, StatusCode::OK);
    assert!(data.body.contains("Muller"), "{}", data.body);

    let unconfirmed = browser.post("/my-data/erase", &[("csrf", &csrf)]).await;
    assert_eq!(unconfirmed.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(unconfirmed.says("Nothing was erased: tick the box"));
    let forged = browser
        .post("/my-data/erase", &[("csrf", "forged"), ("confirm", "yes")])
        .await;
    assert_eq!(forged.status, StatusCode::FORBIDDEN);
    let in_play = browser
        .post("/my-data/erase", &[("csrf", &csrf), ("confirm", "yes")])
        .await;
    assert_eq!(in_play.status, StatusCode::CONFLICT);
    assert!(in_play.says("an offer on this booking is still in play"));
    assert!(
        browser.get("/my-data").await.body.contains("Muller"),
        "refusals erase nothing"
    );

    browser
        .post(&format!("{bid_path}/withdraw"), &[("csrf", &csrf)])
        .await;
    app.run_jobs().await;
    let erased = browser
        .post("/my-data/erase", &[("csrf", &csrf), ("confirm", "yes")])
        .await;
    assert_eq!(erased.status, StatusCode::OK, "{}", erased.body);
    assert!(erased.says("Your data is erased"));
    assert!(
        erased
            .cookies
            .iter()
            .any(|c| c.starts_with("surclass_session=;")),
        "signed out: {:?}",
        erased.cookies
    );
    let later = Browser::new(&app);
    assert_eq!(
        later.sign_in("AU7K2P", "Muller").await.status,
        StatusCode::UNAUTHORIZED,
        "the old pair opens nothing"
    );
}

/// A paid upgrade still ahead may yet be cancelled and refunded: the page erases nothing and
/// says until when, in the traveller's language.
async fn erasure_waits_for_the_travel_day_of_a_paid_upgrade_on_the_page(app: TestApp) {
    let op = app.operator("aurora").await;
    let travel_day = (chrono::Utc::now() + chrono::Duration::days(30)).date_naive();
    let lot = app
        .open_lot(&op, json!({"service_date": travel_day.to_string()}))
        .await;
    app.booking(&op, "AU7K2P", "Muller", 1, &[&lot]).await;
    let browser = Browser::new(&app);
    browser.sign_in("AU7K2P", "Muller").await;
    let bid_path = browser.bid(&lot, "400", GOOD_CARD).await.path();
    app.close_now(&lot).await;
    app.run_jobs().await;
    assert!(browser.get(&bid_path).await.says("charged €400.00"));

    let csrf = browser.get(&bid_path).await.hidden("csrf");
    let refused = browser
        .post("/my-data/erase", &[("csrf", &csrf), ("confirm", "yes")])
        .await;
    assert_eq!(refused.status, StatusCode::CONFLICT, "{}", refused.body);
    let day = travel_day.format("%a %-d %b %Y").to_string();
    assert!(
        refused.says(&format!(
            "Nothing was erased: your upgrade on {day} is paid for"
        )),
        "{}",
        refused.body
    );
    assert!(browser.get("/my-data").await.body.contains("Muller"));

    let french = Browser::with_language(&app, "fr-FR,fr;q=0.9");
    french.sign_in("AU7K2P", "Muller").await;
    let csrf = french.get(&bid_path).await.hidden("csrf");
    let refused = french
        .post("/my-data/erase", &[("csrf", &csrf), ("confirm", "yes")])
        .await;
    assert!(
        refused.status == StatusCode::CONFLICT
            && refused.says("Rien n'a été effacé : votre surclassement du ")
            && refused.says(&travel_day.format(" %Y est payé").to_string()),
        "{}",
        refused.body
    );
}

/// The operator cancels the upgrade during bidding: there is no award, yet the bid's page
/// says what became of it and why (the cancel, the hold being released, then released,
/// nothing charged), in the traveller's language, and the list of offers says the same. A
/// card only saved for a charge on award was never held, and no hold is spoken of.
async fn a_bid_on_an_upgrade_cancelled_during_bidding_says_why_on_its_page(app: TestApp) {
    let op = app.operator("aurora").await;
    let lot = app.open_lot(&op, json!({})).await;
    let saved = app
        .open_lot(
            &op,
            json!({"resource": "AU202", "payment_mode": "charge_on_award"}),
        )
        .await;
    app.booking(&op, "AU7K2P", "Muller", 1, &[&lot, &saved])
        .await;
    let browser = Browser::new(&app);
    browser.sign_in("AU7K2P", "Muller").await;
    let placed = browser.bid(&lot, "400", GOOD_CARD).await;
    let bid_path = placed.path();
    let token = app.sign_in("AU7K2P", "Muller").await;
    let on_saved = app
        .post("/v1/traveller/bids")
        .key(&token)
        .json(&json!({"lot_id": saved, "amount": "300.00",
            "payment_method": "pm_card_visa", "consent_to_charge": true}))
        .send()
        .await
        .expect(201);
    app.cancel_lot(&op, &lot).await;
    app.cancel_lot(&op, &saved).await;

    let page = browser.get(&bid_path).await;
    assert!(
        page.says(
            "Not successful: the hold on your card is being released and nothing was charged."
        ) && page.says("The operator cancelled this upgrade."),
        "{}",
        page.body
    );
    app.run_jobs().await;
    let page = browser.get(&bid_path).await;
    assert!(
        page.says("Not successful: the hold on your card is released and nothing was charged.")
            && page.says("The operator cancelled this upgrade.")
            && !page.says("How winners were chosen"),
        "{}",
        page.body
    );
    let offers = browser.get("/offers").await;
    assert!(
        offers.says("Not successful: hold released")
            && offers.says("Not successful: your card will not be charged"),
        "{}",
        offers.body
    );
    let saved_page = browser
        .get(&format!("/bids/{}", on_saved.body["id"].as_str().unwrap()))
        .await;
    assert!(
        saved_page
            .says("Not successful: nothing was charged, and your saved card will not be used.")
            && saved_page.says("Not successful: your card will not be charged")
            && !saved_page.says("hold on your card"),
        "{}",
        saved_page.body
    );

    // Withdrawn from sale (capacity 0), then closed: the award weighed no bid of it, and its
    // rule is not shown as what decided.
    let withdrawn = app
        .open_lot(&op, json!({"resource": "AU303", "capacity": 2}))
        .await;
    app.booking(&op, "AU9ZZZ", "Muller", 1, &[&withdrawn]).await;
    let other = Browser::new(&app);
    other.sign_in("AU9ZZZ", "Muller").await;
    let placed = other.bid(&withdrawn, "400", GOOD_CARD).await;
    let withdrawn_bid = placed.path();
    app.post(&format!("/v1/lots/{withdrawn}/capacity"))
        .key(&op.key)
        .json(&json!({"capacity": 0}))
        .send()
        .await
        .expect(200);
    // A change sent from the page as it was: refused, the bid named as ended, its money left
    // to the status line.
    let csrf = other.get(&withdrawn_bid).await.hidden("csrf");
    let refused = other
        .post(
            &format!("{withdrawn_bid}/change"),
            &[("csrf", &csrf), ("amount", "450")],
        )
        .await;
    assert!(
        refused.says("This bid is “Not successful” and can no longer be changed."),
        "{}",
        refused.body
    );
    app.close_now(&withdrawn).await;
    app.run_jobs().await;
    let page = other.get(&withdrawn_bid).await;
    assert!(
        page.says("The operator withdrew this upgrade from sale.")
            && page
                .says("Not successful: the hold on your card is released and nothing was charged.")
            && !page.says("How winners were chosen"),
        "{}",
        page.body
    );

    // In French too, the timeline names a withdrawal from sale, not a smaller aircraft.
    let french = Browser::with_language(&app, "fr-FR,fr;q=0.9");
    french.sign_in("AU9ZZZ", "Muller").await;
    let page = french.get(&withdrawn_bid).await;
    assert!(
        page.says("L'opérateur a retiré ce surclassement de la vente.")
            && !page.says("moins de surclassements que prévu"),
        "{}",
        page.body
    );

    let french = Browser::with_language(&app, "fr-FR,fr;q=0.9");
    french.sign_in("AU7K2P", "Muller").await;
    let page = french.get(&bid_path).await;
    assert!(
        page.says("Non retenue : l'autorisation sur votre carte est levée, rien n'a été débité.")
            && page.says("L'opérateur a annulé ce surclassement."),
        "{}",
        page.body
    );
}

/// On an upgrade charged at the award the card is only saved: nothing is held on it, and no
/// page or email speaks of a hold, in English or French, from the bid to its end (withdrawn;
/// on the standby list; let go once the upgrade is paid for).
async fn a_card_only_saved_is_never_spoken_of_as_held(app: TestApp) {
    let op = app.operator("aurora").await;
    let lot = app
        .open_lot(
            &op,
            json!({"payment_mode": "charge_on_award", "capacity": 1,
                "payment_grace_seconds": 600}),
        )
        .await;
    app.booking(&op, "AU7K2P", "Muller", 1, &[&lot]).await;
    app.booking(&op, "AU8DUP", "Dupont", 1, &[&lot]).await;
    let english = Browser::new(&app);
    english.sign_in("AU7K2P", "Muller").await;
    let french = Browser::with_language(&app, "fr-FR,fr;q=0.9");
    french.sign_in("AU7K2P", "Muller").await;
    // Nor "Carte autorisée", "Autorisation levée", …
    let no_hold = |page: &Page| {
        let text = page.body.replace("&#39;", "'").to_lowercase();
        [
            "hold on your card",
            "card authorised",
            "card is authorised",
            "autoris",
        ]
        .iter()
        .all(|held| !text.contains(held))
    };

    let placed = english.bid_saving_card(&lot, "300", GOOD_CARD).await;
    assert_eq!(placed.status, StatusCode::SEE_OTHER, "{}", placed.body);
    let first = placed.path();
    let page = english.get(&first).await;
    assert!(
        page.says("Nothing is charged and your saved card will not be used.") && no_hold(&page),
        "{}",
        page.body
    );
    let in_french = french.get(&first).await;
    assert!(
        in_french.says("Rien n'est débité et votre carte enregistrée ne sera pas utilisée.")
            && no_hold(&in_french),
        "{}",
        in_french.body
    );
    // A raise needs no card: the saved one is charged the new amount, if it wins.
    let csrf = page.hidden("csrf");
    assert!(
        !page.says("card_number"),
        "no card asked on a change: {}",
        page.body
    );
    let raised = english
        .post(
            &format!("{first}/change"),
            &[("csrf", &csrf), ("amount", "320")],
        )
        .await;
    assert_eq!(raised.status, StatusCode::SEE_OTHER, "{}", raised.body);
    let withdrawn = english
        .post(&format!("{first}/withdraw"), &[("csrf", &csrf)])
        .await;
    let page = english.get(withdrawn.location.as_deref().unwrap()).await;
    assert!(
        page.says(
            "You withdrew your bid. Nothing will be charged; your saved card will not be used."
        ) && no_hold(&page),
        "{}",
        page.body
    );
    let page = french.get(&format!("{first}?done=withdrawn")).await;
    assert!(
        page.says("Votre offre est retirée")
            && page.says("Rien ne sera débité ; votre carte enregistrée ne sera pas utilisée.")
            && no_hold(&page),
        "{}",
        page.body
    );

    // Bid again, with a card the bank declines when charged; Dupont offers less.
    let winner = english
        .bid_saving_card(&lot, "500", DECLINED_WHEN_CHARGED)
        .await
        .path();
    let dupont = Browser::with_language(&app, "fr-FR,fr;q=0.9");
    dupont.sign_in("AU8DUP", "Dupont").await;
    let standby = dupont.bid_saving_card(&lot, "300", GOOD_CARD).await.path();
    app.close_now(&lot).await;
    app.run_jobs().await;
    let page = dupont.get(&standby).await;
    assert!(
        page.says("En liste d'attente")
            && page
                .says("votre carte enregistrée n'est débitée qu'alors ; sinon, rien n'est débité.")
            && no_hold(&page),
        "{}",
        page.body
    );

    // The winner gives another card and is charged: Dupont's place on the list ends.
    let token = app.sign_in("AU7K2P", "Muller").await;
    app.post(&format!("/v1/traveller{winner}/card"))
        .key(&token)
        .json(&json!({"payment_method": "pm_card_visa"}))
        .send()
        .await
        .expect(200);
    app.run_jobs().await;
    // The new card was saved and charged, never held.
    let page = french.get(&winner).await;
    assert!(
        page.says("Merci : la nouvelle carte est en cours de débit.")
            && page.says("Carte enregistrée")
            && no_hold(&page),
        "{}",
        page.body
    );
    let page = english.get(&winner).await;
    assert!(
        page.says("Thank you: the new card is being charged now.") && !page.says("Card authorised"),
        "{}",
        page.body
    );
    let page = dupont.get(&standby).await;
    assert!(
        page.says("Non retenue : votre carte ne sera pas débitée") && no_hold(&page),
        "{}",
        page.body
    );
    let mut emails = app.emails_of(&op.key, "bid.withdrawn").await;
    emails.extend(app.emails_of(&op.key, "bid.lost").await);
    assert_eq!(emails.len(), 2, "{emails:?}");
    for email in &emails {
        let body = email["body"].as_str().unwrap_or_default();
        assert!(
            body.contains("Your saved card will not be used; nothing is charged.")
                && !body.contains("hold on your card"),
            "{body}"
        );
    }
}

/// A traveller who offered the maximum has a hold that covers any offer the lot takes: the
/// change form asks for no card, and nothing says they could offer more.
async fn a_hold_for_the_maximum_asks_for_no_card_to_change(app: TestApp) {
    let op = app.operator("aurora").await;
    let lot = app.open_lot(&op, json!({"maximum": "1000.00"})).await;
    app.booking(&op, "AU8MAX", "Muller", 2, &[&lot]).await;
    let browser = Browser::new(&app);
    browser.sign_in("AU8MAX", "Muller").await;
    let placed = browser.bid(&lot, "1000", GOOD_CARD).await;
    let bid_path = placed.path();
    let page = browser.get(&bid_path).await;
    let asks_for_card = |page: &Page| page.says("id=\"card_number\"");
    assert!(page.says("Change your offer"), "{}", page.body);
    assert!(
        !asks_for_card(&page) && !page.says("to offer more per person"),
        "{}",
        page.body
    );
    let lowered = browser
        .post(
            &format!("{bid_path}/change"),
            &[("csrf", &page.hidden("csrf")), ("amount", "900")],
        )
        .await;
    assert_eq!(lowered.status, StatusCode::SEE_OTHER, "{}", lowered.body);
    // Still held for €2,000: back up to the maximum needs no card either.
    let page = browser.get(&bid_path).await;
    assert!(
        page.says("€900.00") && !asks_for_card(&page),
        "{}",
        page.body
    );
    let raised = browser
        .post(
            &format!("{bid_path}/change"),
            &[("csrf", &page.hidden("csrf")), ("amount", "1000")],
        )
        .await;
    assert_eq!(raised.status, StatusCode::SEE_OTHER, "{}", raised.body);
    assert_eq!(
        bids_of(&app, "AU8MAX", "Muller").await[0]["amount"],
        "1000.00"
    );
}

store_tests!(
    the_sign_in_page_is_the_front_door_and_a_wrong_pair_is_told_on_it,
    a_reference_two_companies_sold_is_opened_after_asking_which_company,
    a_hold_for_the_maximum_asks_for_no_card_to_change,
    a_traveller_bids_changes_withdraws_and_bids_again_on_the_pages,
    bad_input_is_explained_on_the_same_screen_and_changes_nothing,
    a_post_without_this_sessions_form_token_changes_nothing,
    the_signed_link_opens_the_booking_and_a_forged_one_says_so,
    french_speakers_get_french_and_euros_written_their_way,
    a_failure_on_our_side_is_told_in_the_travellers_language,
    a_failed_payment_can_be_fixed_with_another_card_on_the_status_page,
    a_card_sent_after_the_grace_period_is_refused_on_the_page,
    the_status_page_hands_over_the_data_and_erases_it_on_request,
    erasure_waits_for_the_travel_day_of_a_paid_upgrade_on_the_page,
    a_bid_on_an_upgrade_cancelled_during_bidding_says_why_on_its_page,
    a_card_only_saved_is_never_spoken_of_as_held,
    an_offer_that_cannot_take_the_partys_bid_now_shows_no_bid_form,
    a_bid_released_for_want_of_seats_says_why_and_may_be_placed_again_once_they_return,
);

/// The pages offer only what can be had: an upgrade with fewer free units than the party is
/// not listed (the pages ask no partial upgrade), one whose bidding has not begun says when it
/// will and has no form, and a withdrawn bid is not invited to bid again once the units left
/// are fewer than the party.
async fn an_offer_that_cannot_take_the_partys_bid_now_shows_no_bid_form(app: TestApp) {
    let op = app.operator("aurora").await;
    let too_small = app.open_lot(&op, json!({"capacity": 1})).await;
    let opens = chrono::Utc::now() + chrono::Duration::hours(1);
    let later = app
        .open_lot(&op, json!({"opens_at": opens.to_rfc3339()}))
        .await;
    let lot = app.open_lot(&op, json!({})).await;
    app.booking(&op, "AU7K2P", "Muller", 2, &[&too_small, &later, &lot])
        .await;
    let browser = Browser::new(&app);
    browser.sign_in("AU7K2P", "Muller").await;

    let offers = browser.get("/offers").await;
    assert_eq!(offers.status, StatusCode::OK);
    assert!(offers.says(&format!("/offers/{lot}")), "{}", offers.body);
    assert!(
        !offers.says(&format!("/offers/{too_small}")),
        "{}",
        offers.body
    );
    assert!(!offers.says(&format!("/offers/{later}")), "{}", offers.body);
    assert!(offers.says("Bidding opens on"), "{}", offers.body);

    for (path, says) in [
        (format!("/offers/{later}"), "Bidding opens on"),
        (
            format!("/offers/{too_small}"),
            "Fewer upgrades are left than the 2 people on your booking",
        ),
    ] {
        let screen = browser.get(&path).await;
        assert_eq!(screen.status, StatusCode::OK, "{path}");
        assert!(screen.says(says), "{path}: {}", screen.body);
        assert!(!screen.says("data-bid-form"), "no form on {path}");
    }

    // A bid, withdrawn; then the lot shrinks below the party: no "Bid again" anywhere.
    let placed = browser.bid(&lot, "420", GOOD_CARD).await;
    let bid_path = placed.path();
    let page = browser.get(&bid_path).await;
    browser
        .post(
            &format!("{bid_path}/withdraw"),
            &[("csrf", &page.hidden("csrf"))],
        )
        .await;
    assert!(browser.get(&bid_path).await.says("Bid again"));
    app.post(&format!("/v1/lots/{lot}/capacity"))
        .key(&op.key)
        .json(&json!({"capacity": 1}))
        .send()
        .await
        .expect(200);
    let page = browser.get(&bid_path).await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(!page.says("Bid again"), "{}", page.body);
    let offers = browser.get("/offers").await;
    assert!(!offers.says("Bid again"), "{}", offers.body);
    assert!(offers.says("See or change my bid"), "{}", offers.body);
}

/// A bid let go because the seats left became fewer than the party says so on its page, in
/// the traveller's language, and invites no new bid until seats come back; then it does, and
/// the bid placed again is the same bid, in play.
async fn a_bid_released_for_want_of_seats_says_why_and_may_be_placed_again_once_they_return(
    app: TestApp,
) {
    let op = app.operator("aurora").await;
    let lot = app.open_lot(&op, json!({})).await;
    app.booking(&op, "AU7K2P", "Muller", 2, &[&lot]).await;
    let browser = Browser::new(&app);
    browser.sign_in("AU7K2P", "Muller").await;
    let bid_path = browser.bid(&lot, "420", GOOD_CARD).await.path();
    let resize = |units: u32| {
        app.post(&format!("/v1/lots/{lot}/capacity"))
            .key(&op.key)
            .json(&json!({"capacity": units}))
            .send()
    };

    resize(1).await.expect(200);
    app.run_jobs().await;
    let page = browser.get(&bid_path).await;
    assert!(
        page.says("No upgrade left for your party")
            && page.says("Not enough upgrades are left for your party of 2")
            && page.says("Not successful: the hold on your card is released"),
        "{}",
        page.body
    );
    assert!(!page.says("Bid again"), "{}", page.body);
    let french = Browser::with_language(&app, "fr-FR,fr;q=0.9");
    french.sign_in("AU7K2P", "Muller").await;
    let en_francais = french.get(&bid_path).await;
    assert!(
        en_francais.says("Il ne reste plus assez de surclassements pour les 2 personnes"),
        "{}",
        en_francais.body
    );

    resize(4).await.expect(200);
    let page = browser.get(&bid_path).await;
    assert!(page.says("Bid again"), "{}", page.body);
    assert!(browser.get("/offers").await.says("Bid again"));
    let again = browser.bid(&lot, "450", GOOD_CARD).await;
    assert_eq!(again.path(), bid_path, "the same bid, placed again");
    assert_eq!(
        bids_of(&app, "AU7K2P", "Muller").await[0]["status"],
        "active"
    );
}
