//! A traveller signs in with a booking reference and last name, sees what they can bid on,
//! and bids, changes and withdraws; bids are sealed.

use sea_orm::EntityTrait;
use serde_json::json;

use crate::store_tests;
use crate::support::{HeldCancel, TestApp, timeline_kinds};

async fn signing_in_ignores_case_spaces_accents_and_apostrophes(app: TestApp) {
    let op = app.operator("aurora").await;
    let lot = app.open_lot(&op, json!({})).await;
    app.booking(&op, "AU7K2P", "Müller", 2, &[&lot]).await;
    app.booking(&op, "AU4QX9", "O'Neil", 1, &[&lot]).await;

    app.sign_in("au7k2p", "MULLER").await;
    app.sign_in(" AU 7K2P ", "müller").await;
    app.sign_in("AU4QX9", "ONEIL").await;
    app.sign_in("AU4QX9", "o neil").await;

    let reply = app
        .post("/v1/traveller/sessions")
        .json(&json!({"reference": "AU7K2P", "last_name": "Muller"}))
        .send()
        .await
        .expect(201);
    let cookie = reply
        .header("set-cookie")
        .expect("a session cookie for the pages");
    assert!(cookie.starts_with("surclass_session="));
    assert!(
        cookie.contains("HttpOnly") && cookie.contains("Secure"),
        "{cookie}"
    );
    assert_eq!(reply.body["booking"]["party_size"], 2);
}

/// A reference is unique within one company only: two may each have sold AU7K2P to a
/// Muller. The pair alone then opens neither booking; the traveller names their company (the
/// answer lists both), and one company's booking never opens the other's.
async fn a_reference_two_companies_sold_opens_only_the_booking_of_the_company_named(app: TestApp) {
    let aurora = app.operator("aurora").await;
    let borealis = app.operator("borealis").await;
    let flight = app.open_lot(&aurora, json!({})).await;
    let suite = app.open_lot(&borealis, json!({})).await;
    app.booking(&aurora, "AU7K2P", "Muller", 2, &[&flight])
        .await;
    app.booking(&borealis, "AU7K2P", "Muller", 1, &[&suite])
        .await;
    let sign_in = |body: serde_json::Value| app.post("/v1/traveller/sessions").json(&body).send();

    let which = sign_in(json!({"reference": "AU7K2P", "last_name": "Muller"}))
        .await
        .expect(409);
    assert_eq!(
        which.body["type"],
        "https://surclass.dev/problems/several-bookings"
    );
    assert_eq!(which.body["field"], "operator");
    assert_eq!(
        which.body["operators"],
        json!([
            {"slug": "aurora", "name": "aurora Ltd"},
            {"slug": "borealis", "name": "borealis Ltd"},
        ])
    );
    assert!(which.header("set-cookie").is_none(), "no session");

    for (company, lot, other) in [("aurora", &flight, &suite), ("borealis", &suite, &flight)] {
        let session =
            sign_in(json!({"reference": "au 7k2p", "last_name": "MULLER", "operator": company}))
                .await
                .expect(201);
        let token = session.body["token"].as_str().unwrap();
        let offers = app
            .read("/v1/traveller/offers")
            .key(token)
            .send()
            .await
            .expect(200);
        let lots: Vec<&str> = offers.body["offers"]
            .as_array()
            .unwrap()
            .iter()
            .map(|o| o["lot_id"].as_str().unwrap())
            .collect();
        assert_eq!(
            lots,
            [lot.as_str()],
            "{company} opens its own booking only, not {other}"
        );
    }

    let wrong_name =
        sign_in(json!({"reference": "AU7K2P", "last_name": "Smith", "operator": "aurora"}))
            .await
            .expect(401);
    assert_eq!(
        wrong_name.body["type"],
        "https://surclass.dev/problems/booking-not-found"
    );
    let nobody =
        sign_in(json!({"reference": "AU7K2P", "last_name": "Muller", "operator": "nobody"}))
            .await
            .expect(422);
    assert_eq!(nobody.body["field"], "operator");
}

async fn a_wrong_pair_gets_one_generic_answer_and_floods_are_throttled(app: TestApp) {
    let op = app.operator("aurora").await;
    app.booking(&op, "AU7K2P", "Muller", 1, &[]).await;

    let wrong_name = app
        .post("/v1/traveller/sessions")
        .json(&json!({"reference": "AU7K2P", "last_name": "Smith"}))
        .send()
        .await
        .expect(401);
    let unknown_reference = app
        .post("/v1/traveller/sessions")
        .json(&json!({"reference": "ZZZZZZ", "last_name": "Muller"}))
        .send()
        .await
        .expect(401);
    assert_eq!(
        wrong_name.body, unknown_reference.body,
        "no hint which half was wrong"
    );

    // The reference is locked after a few more failures, even for the right name.
    let mut throttled = None;
    for _ in 0..10 {
        let r = app
            .post("/v1/traveller/sessions")
            .json(&json!({"reference": "AU7K2P", "last_name": "Smith"}))
            .send()
            .await;
        if r.status == 429 {
            throttled = Some(r);
            break;
        }
    }
    let throttled = throttled.expect("repeated failures are throttled");
    assert!(throttled.header("retry-after").is_some());
    app.post("/v1/traveller/sessions")
        .json(&json!({"reference": "AU7K2P", "last_name": "Muller"}))
        .send()
        .await
        .expect(429);
}

async fn offers_show_min_max_per_person_and_for_the_party_before_any_card(app: TestApp) {
    let op = app.operator("aurora").await;
    let lot = app
        .open_lot(
            &op,
            json!({"reserve": "150.00", "maximum": "900.50", "taxes_included": true}),
        )
        .await;
    let draft = app.open_lot(&op, json!({"open": false})).await;
    let other = app.open_lot(&op, json!({})).await;
    app.booking(&op, "PNR001", "Martin", 3, &[&lot, &draft])
        .await;
    let token = app.sign_in("PNR001", "Martin").await;

    let offers = app
        .read("/v1/traveller/offers")
        .key(&token)
        .send()
        .await
        .expect(200);
    let list = offers.body["offers"].as_array().unwrap();
    assert_eq!(
        list.len(),
        1,
        "only open lots this booking is eligible for: {list:?}"
    );
    let offer = &list[0];
    assert_eq!(offer["lot_id"], lot.as_str());
    assert_eq!(offer["min_per_person"], "150.00");
    assert_eq!(offer["max_per_person"], "900.50");
    assert_eq!(offer["min_total"], "450.00");
    assert_eq!(offer["max_total"], "2701.50");
    assert_eq!(offer["party_size"], 3);
    assert_eq!(offer["taxes_included"], true);
    assert_eq!(offer["currency"], "EUR");
    assert_eq!(offer["time_zone"], "Europe/Paris");
    assert!(offer["my_bid"].is_null());
    let _ = other;
}

async fn a_traveller_bids_changes_withdraws_and_bids_again(app: TestApp) {
    let op = app.operator("aurora").await;
    let lot = app.open_lot(&op, json!({})).await;
    app.booking(&op, "PNR001", "Martin", 2, &[&lot]).await;
    let token = app.sign_in("PNR001", "Martin").await;

    let placed = app
        .post("/v1/traveller/bids")
        .key(&token)
        .json(&json!({"lot_id": lot, "amount": "250.00", "payment_method": "pm_card_visa"}))
        .send()
        .await
        .expect(201);
    let id = placed.body["id"].as_str().unwrap().to_owned();
    assert_eq!(placed.body["status"], "active");
    assert_eq!(
        placed.body["total"], "500.00",
        "the party of two pays twice the amount per person"
    );

    let again = app
        .post("/v1/traveller/bids")
        .key(&token)
        .json(&json!({"lot_id": lot, "amount": "260.00", "payment_method": "pm_card_visa"}))
        .send()
        .await
        .expect(409);
    assert_eq!(again.problem_type(), "bid-exists");

    let raised = app
        .patch(&format!("/v1/traveller/bids/{id}"))
        .key(&token)
        .json(&json!({"amount": "320.00"}))
        .send()
        .await
        .expect(200);
    assert_eq!(raised.body["amount"], "320.00");

    let out_of_range = app
        .patch(&format!("/v1/traveller/bids/{id}"))
        .key(&token)
        .json(&json!({"amount": "5000.00"}))
        .send()
        .await
        .expect(422);
    assert_eq!(out_of_range.body["field"], "amount");
    assert!(
        out_of_range.body["detail"]
            .as_str()
            .unwrap()
            .contains("1000.00"),
        "says the range"
    );

    let withdrawn = app
        .delete(&format!("/v1/traveller/bids/{id}"))
        .key(&token)
        .send()
        .await
        .expect(200);
    assert_eq!(withdrawn.body["status"], "withdrawn");
    app.patch(&format!("/v1/traveller/bids/{id}"))
        .key(&token)
        .json(&json!({"amount": "330.00"}))
        .send()
        .await
        .expect(409);

    let rebid = app
        .post("/v1/traveller/bids")
        .key(&token)
        .json(&json!({"lot_id": lot, "amount": "280.00", "payment_method": "pm_card_visa"}))
        .send()
        .await
        .expect(201);
    assert_eq!(
        rebid.body["id"],
        id.as_str(),
        "one bid per booking and lot, bid again"
    );

    let timeline = app
        .read(&format!("/v1/traveller/bids/{id}"))
        .key(&token)
        .send()
        .await
        .expect(200);
    let kinds = timeline_kinds(&timeline.body);
    assert_eq!(
        kinds,
        [
            "placed",
            "hold_placed",
            "raised",
            "hold_placed",
            "withdrawn",
            "placed",
            "hold_placed"
        ],
        "every change and every hold on the card is on the timeline"
    );
    assert_eq!(
        timeline.body["amount"], "280.00",
        "the out-of-range change changed nothing"
    );
    let offers = app
        .read("/v1/traveller/offers")
        .key(&token)
        .send()
        .await
        .expect(200);
    assert_eq!(offers.body["offers"][0]["my_bid"]["amount"], "280.00");
}

async fn bad_bids_get_clear_errors_and_change_nothing(app: TestApp) {
    let op = app.operator("aurora").await;
    let lot = app.open_lot(&op, json!({})).await;
    let not_mine = app.open_lot(&op, json!({})).await;
    app.booking(&op, "PNR001", "Martin", 1, &[&lot]).await;
    let token = app.sign_in("PNR001", "Martin").await;

    for (body, status, field) in [
        (
            json!({"lot_id": lot, "amount": "99.99", "payment_method": "pm_card_visa"}),
            422,
            "amount",
        ),
        (
            json!({"lot_id": lot, "amount": "120.001", "payment_method": "pm_card_visa"}),
            422,
            "amount",
        ),
        (
            json!({"lot_id": lot, "amount": 120.5, "payment_method": "pm_card_visa"}),
            422,
            "amount",
        ),
        (
            json!({"lot_id": lot, "amount": "-5", "payment_method": "pm_card_visa"}),
            422,
            "amount",
        ),
        (
            json!({"lot_id": lot, "amount": "150.00", "payment_method": ""}),
            422,
            "payment_method",
        ),
    ] {
        let reply = app
            .post("/v1/traveller/bids")
            .key(&token)
            .json(&body)
            .send()
            .await
            .expect(status);
        assert_eq!(reply.body["field"], field, "{body}");
    }
    app.post("/v1/traveller/bids")
        .key(&token)
        .json(&json!({"lot_id": not_mine, "amount": "150.00", "payment_method": "pm_card_visa"}))
        .send()
        .await
        .expect(404);
    app.read("/v1/traveller/offers").send().await.expect(401);
    app.read("/v1/traveller/offers")
        .key("v1.forged.token.x")
        .send()
        .await
        .expect(401);

    let bids = app
        .read(&format!("/v1/lots/{lot}/bids"))
        .key(&op.key)
        .send()
        .await
        .expect(200);
    assert!(
        bids.body["items"].as_array().unwrap().is_empty(),
        "nothing was written"
    );
}

async fn no_traveller_answer_reveals_another_bid(app: TestApp) {
    let op = app.operator("aurora").await;
    let lot = app.open_lot(&op, json!({})).await;
    app.booking(&op, "PNR001", "Martin", 1, &[&lot]).await;
    app.booking(&op, "PNR002", "Durand", 1, &[&lot]).await;
    let rival = app.sign_in("PNR001", "Martin").await;
    app.post("/v1/traveller/bids")
        .key(&rival)
        .json(&json!({"lot_id": lot, "amount": "777.77", "payment_method": "pm_card_visa"}))
        .send()
        .await
        .expect(201);

    let me = app.sign_in("PNR002", "Durand").await;
    let offers = app
        .read("/v1/traveller/offers")
        .key(&me)
        .send()
        .await
        .expect(200);
    let mine = app
        .post("/v1/traveller/bids")
        .key(&me)
        .json(&json!({"lot_id": lot, "amount": "150.00", "payment_method": "pm_card_visa"}))
        .send()
        .await
        .expect(201);
    for reply in [&offers, &mine] {
        assert!(
            !reply.text.contains("777.77"),
            "another bid's amount leaked: {}",
            reply.text
        );
        for word in ["bid_count", "active_bids", "rank", "best_offer", "position"] {
            assert!(
                !reply.text.contains(word),
                "`{word}` leaked: {}",
                reply.text
            );
        }
    }
    // The operator, who runs the auction, does see both.
    let bids = app
        .read(&format!("/v1/lots/{lot}/bids"))
        .key(&op.key)
        .send()
        .await
        .expect(200);
    assert_eq!(bids.body["items"].as_array().unwrap().len(), 2);
    assert!(bids.text.contains("777.77"));
}

async fn a_partner_acts_for_travellers_of_its_operator_only(app: TestApp) {
    let aurora = app.operator("aurora").await;
    let belvedere = app.operator("belvedere").await;
    let lot = app.open_lot(&aurora, json!({})).await;
    app.booking(&aurora, "PNR001", "Martin", 1, &[&lot]).await;
    app.booking(&belvedere, "HB0001", "Durand", 1, &[]).await;
    let partner = app
        .post("/v1/api-keys")
        .key(&aurora.key)
        .json(&json!({"name": "booking engine", "scope": "partner"}))
        .send()
        .await
        .expect(201);
    let partner_key = partner.body["secret"].as_str().unwrap().to_owned();

    let session = app
        .post("/v1/partner/sessions")
        .key(&partner_key)
        .json(&json!({"reference": "PNR001"}))
        .send()
        .await
        .expect(201);
    let token = session.body["token"].as_str().unwrap();
    app.post("/v1/traveller/bids")
        .key(token)
        .json(&json!({"lot_id": lot, "amount": "150.00", "payment_method": "pm_card_visa"}))
        .send()
        .await
        .expect(201);

    app.post("/v1/partner/sessions")
        .key(&partner_key)
        .json(&json!({"reference": "HB0001"}))
        .send()
        .await
        .expect(404);
    // A partner key is not an operator key.
    app.read("/v1/lots")
        .key(&partner_key)
        .send()
        .await
        .expect(403);
}

/// A deadline rush: bids placed at the same moment are checked, secured and committed
/// together, and each still gets the answer it would get alone. A double submit places one
/// bid and leaves no second hold on the card.
async fn bids_placed_at_the_same_moment_each_get_their_own_answer(app: TestApp) {
    let op = app.operator("aurora").await;
    let lot = app.open_lot(&op, json!({"capacity": 40})).await;
    let other = app.open_lot(&op, json!({"resource": "AU202"})).await;
    let mut tokens = Vec::new();
    for n in 0..24 {
        let reference = format!("PNR{n:03}");
        app.booking(&op, &reference, "Martin", 1 + n % 3, &[&lot])
            .await;
        tokens.push(app.sign_in(&reference, "Martin").await);
    }
    let bid = |token: &str, lot: &str, amount: &str| {
        let (token, lot, amount) = (token.to_owned(), lot.to_owned(), amount.to_owned());
        let app = &app;
        async move { app.bid(&token, &lot, &amount, "pm_card_visa").await }
    };
    let mut rush = Vec::new();
    for (n, token) in tokens.iter().enumerate().take(20) {
        rush.push(bid(token, &lot, &format!("{}.00", 200 + n)));
    }
    // The same bid sent twice at once, a bid out of range, and one on a lot not offered.
    rush.push(bid(&tokens[20], &lot, "300.00"));
    rush.push(bid(&tokens[20], &lot, "300.00"));
    rush.push(bid(&tokens[21], &lot, "5000.00"));
    rush.push(bid(&tokens[22], &other, "300.00"));
    let answers = futures_util::future::join_all(rush).await;

    for (n, answer) in answers.iter().take(20).enumerate() {
        assert_eq!(answer.status, 201, "bid {n}: {:?}", answer.body);
        assert_eq!(answer.body["amount"], format!("{}.00", 200 + n));
        let party = 1 + n as i64 % 3;
        assert_eq!(answer.body["units"], party);
        let kinds = timeline_kinds(&answer.body);
        assert_eq!(
            kinds,
            ["placed", "hold_placed"],
            "the answer carries the timeline"
        );
        // The answer is the bid as stored, to the microsecond: reading it back changes nothing.
        let id = answer.body["id"].as_str().unwrap();
        let read_back = app
            .read(&format!("/v1/traveller/bids/{id}"))
            .key(&tokens[n])
            .send()
            .await
            .expect(200)
            .body;
        assert_eq!(read_back, answer.body, "bid {n} read back");
    }
    let mut twice: Vec<u16> = answers[20..22].iter().map(|a| a.status).collect();
    twice.sort_unstable();
    assert_eq!(twice, [201, 409], "a double submit places one bid");
    let refused = answers[20..22].iter().find(|a| a.status == 409).unwrap();
    assert_eq!(refused.problem_type(), "bid-exists");
    assert_eq!(
        answers[22].status, 422,
        "out of range: {:?}",
        answers[22].body
    );
    assert_eq!(
        answers[23].status, 404,
        "not offered: {:?}",
        answers[23].body
    );

    // Each 201 is in the database, and the card of every refused bid is free again: the
    // gateway holds exactly one authorisation per active bid.
    let bids = app
        .read(&format!("/v1/lots/{lot}/bids?limit=100"))
        .key(&op.key)
        .send()
        .await
        .expect(200);
    let listed = bids.body["items"].as_array().unwrap().len();
    assert_eq!(listed, 21);
    let objects = surclass::store::entities::bid::Entity::find()
        .all(&app.db)
        .await
        .unwrap();
    let held: std::collections::HashSet<String> = objects
        .iter()
        .filter_map(|b| b.payment_ref.clone())
        .collect();
    assert_eq!(held.len(), 21, "one hold per bid");
    let authorised = app.gateway_holds_awaiting_capture().await;
    assert_eq!(
        authorised, held,
        "no hold left on a card whose bid was refused"
    );
}

/// However many bids a rush groups into one write (here seven, which the store writes as
/// statements of four, two and one rows), each is stored whole and answered with its own
/// bid: its hold record, its two timeline events, its email and that email's delivery job.
/// A bid refused in the middle of the group changes nothing and shifts no other answer.
async fn a_group_of_bids_of_any_size_is_stored_whole(app: TestApp) {
    use sea_orm::{ColumnTrait, PaginatorTrait, QueryFilter, QueryOrder};
    use surclass::services::bids::{Ask, place_together};
    use surclass::store::entities::{bid, bid_event, booking, job, outbox, payment};

    let op = app.operator("aurora").await;
    let lot = app.open_lot(&op, json!({"capacity": 40})).await;
    for n in 0..8 {
        app.booking(&op, &format!("GRP{n:03}"), "Martin", 1, &[&lot])
            .await;
    }
    let mut bookings = booking::Entity::find().all(&app.db).await.unwrap();
    bookings.sort_by(|a, b| a.id.cmp(&b.id));
    let amount = |n: usize| {
        if n == 3 {
            "5000.00".to_owned()
        } else {
            format!("{}.00", 200 + n)
        }
    };
    let asks = bookings
        .iter()
        .enumerate()
        .map(|(n, b)| Ask {
            booking_id: b.id.clone(),
            lot_id: lot.clone(),
            amount: amount(n),
            card: Some(surclass::payments::CardSource::PaymentMethod(
                "pm_card_visa".into(),
            )),
            partial_ok: false,
            preference: None,
            consent_to_charge: false,
        })
        .collect();

    let answers = place_together(&app.db, app.gateway.as_ref(), asks).await;

    assert_eq!(answers.len(), 8);
    assert!(answers[3].is_err(), "above the maximum: refused");
    let placed: Vec<_> = answers
        .iter()
        .enumerate()
        .filter(|(n, _)| *n != 3)
        .map(|(n, a)| (n, a.as_ref().expect("placed")))
        .collect();
    for (n, p) in &placed {
        assert_eq!(
            p.bid.booking_id, bookings[*n].id,
            "answer {n} is its own bid"
        );
        assert_eq!(p.bid.amount_minor, (200 + *n as i64) * 100);
        let timeline = p.timeline.as_ref().expect("a new bid's timeline");
        assert!(timeline.iter().all(|e| e.bid_id == p.bid.id));
        let kinds: Vec<&str> = timeline.iter().map(|e| e.kind.as_str()).collect();
        assert_eq!(kinds, ["placed", "hold_placed"]);
    }
    let ids: Vec<String> = placed.iter().map(|(_, p)| p.bid.id.clone()).collect();
    let count_bids = bid::Entity::find()
        .filter(bid::Column::LotId.eq(&lot))
        .count(&app.db);
    assert_eq!(count_bids.await.unwrap(), 7);
    let holds = payment::Entity::find()
        .filter(payment::Column::BidId.is_in(ids.clone()))
        .filter(payment::Column::Kind.eq("hold"))
        .count(&app.db);
    assert_eq!(holds.await.unwrap(), 7);
    let events = bid_event::Entity::find()
        .filter(bid_event::Column::BidId.is_in(ids.clone()))
        .order_by_asc(bid_event::Column::Id)
        .all(&app.db)
        .await
        .unwrap();
    assert_eq!(events.len(), 14);
    // Each answer's timeline is its events as stored: ids, kinds, amounts and times.
    for (_, p) in &placed {
        let stored: Vec<_> = events.iter().filter(|e| e.bid_id == p.bid.id).collect();
        let answered: Vec<_> = p.timeline.as_ref().unwrap().iter().collect();
        assert_eq!(answered, stored, "the timeline answered for {}", p.bid.id);
    }
    let emails = outbox::Entity::find()
        .filter(outbox::Column::Topic.eq("bid.placed"))
        .filter(outbox::Column::Channel.eq("email"))
        .all(&app.db)
        .await
        .unwrap();
    assert_eq!(emails.len(), 7);
    // Each email is named by one delivery job; emails written together share it.
    let mut named: Vec<i64> = Vec::new();
    for j in job::Entity::find()
        .filter(job::Column::Kind.is_in(["deliver", "deliver_many"]))
        .all(&app.db)
        .await
        .unwrap()
    {
        let payload: serde_json::Value = serde_json::from_str(&j.payload).unwrap();
        match payload["outbox_ids"].as_array() {
            Some(ids) => named.extend(ids.iter().map(|v| v.as_i64().unwrap())),
            None => named.push(payload["outbox_id"].as_i64().unwrap()),
        }
    }
    named.sort_unstable();
    let mut written: Vec<i64> = emails.iter().map(|e| e.id).collect();
    written.sort_unstable();
    assert_eq!(named, written, "every email has exactly one delivery job");
    let held: std::collections::HashSet<String> = placed
        .iter()
        .filter_map(|(_, p)| p.bid.payment_ref.clone())
        .collect();
    assert_eq!(held.len(), 7);
    assert_eq!(app.gateway_holds_awaiting_capture().await, held);
    // The emails go out and the queue empties.
    app.run_jobs().await;
}

/// A group is checked pair by pair, booking and lot together: a bid on one upgrade does not
/// block a bid on another, and an upgrade offered to one booking of the group is not thereby
/// offered to the others.
async fn a_group_checks_each_booking_against_its_own_upgrades(app: TestApp) {
    use sea_orm::{ColumnTrait, QueryFilter};
    use surclass::services::bids::{Ask, BidError, place_together};
    use surclass::store::entities::booking;

    let op = app.operator("aurora").await;
    let seat = app.open_lot(&op, json!({})).await;
    let lounge = app.open_lot(&op, json!({"resource": "AU202"})).await;
    app.booking(&op, "PNR001", "Martin", 1, &[&seat, &lounge])
        .await;
    app.booking(&op, "PNR002", "Dubois", 1, &[&seat]).await;
    let both = app.sign_in("PNR001", "Martin").await;
    let earlier = app.bid(&both, &seat, "200.00", "pm_card_visa").await;
    assert_eq!(earlier.status, 201, "{:?}", earlier.body);
    let id_of = |reference: &'static str| {
        booking::Entity::find()
            .filter(booking::Column::Reference.eq(reference))
            .one(&app.db)
    };
    let martin = id_of("PNR001").await.unwrap().expect("Martin's booking").id;
    let dubois = id_of("PNR002").await.unwrap().expect("Dubois's booking").id;
    let ask = |booking: &str, lot: &str| Ask {
        booking_id: booking.to_owned(),
        lot_id: lot.to_owned(),
        amount: "300.00".to_owned(),
        card: Some(surclass::payments::CardSource::PaymentMethod(
            "pm_card_visa".into(),
        )),
        partial_ok: false,
        preference: None,
        consent_to_charge: false,
    };

    let answers = place_together(
        &app.db,
        app.gateway.as_ref(),
        vec![
            ask(&martin, &lounge),
            ask(&martin, &seat),
            ask(&dubois, &lounge),
            ask(&dubois, &seat),
        ],
    )
    .await;

    let placed = answers[0].as_ref().expect("a bid on the other upgrade");
    assert_eq!(
        (&placed.bid.booking_id, &placed.bid.lot_id),
        (&martin, &lounge)
    );
    match &answers[1] {
        Err(BidError::AlreadyBid { bid_id }) => assert_eq!(bid_id, &earlier.body["id"]),
        other => panic!("the seat already has Martin's bid: {other:?}"),
    }
    assert!(
        matches!(answers[2], Err(BidError::NotFound)),
        "the lounge is not offered to Dubois: {:?}",
        answers[2]
    );
    let placed = answers[3].as_ref().expect("Dubois bids on the seat");
    assert_eq!(
        (&placed.bid.booking_id, &placed.bid.lot_id),
        (&dubois, &seat)
    );
}

store_tests!(
    a_group_checks_each_booking_against_its_own_upgrades,
    a_group_of_bids_of_any_size_is_stored_whole,
    signing_in_ignores_case_spaces_accents_and_apostrophes,
    a_reference_two_companies_sold_opens_only_the_booking_of_the_company_named,
    a_wrong_pair_gets_one_generic_answer_and_floods_are_throttled,
    offers_show_min_max_per_person_and_for_the_party_before_any_card,
    a_traveller_bids_changes_withdraws_and_bids_again,
    a_withdrawal_sent_twice_is_answered_twice_and_done_once,
    bad_bids_get_clear_errors_and_change_nothing,
    no_traveller_answer_reveals_another_bid,
    a_partner_acts_for_travellers_of_its_operator_only,
    bids_placed_at_the_same_moment_each_get_their_own_answer,
    a_bid_whose_lot_closes_while_its_card_is_held_is_refused_and_the_hold_released,
    a_bid_whose_booking_is_erased_while_its_card_is_held_is_refused_and_the_hold_released,
    a_bid_whose_party_is_resized_while_its_card_is_held_is_refused_and_the_hold_released,
    a_traveller_who_hangs_up_while_the_card_is_held_still_gets_the_bid,
    a_raise_whose_caller_hangs_up_after_the_new_hold_is_still_made,
    an_upgrade_now_whose_caller_hangs_up_after_the_hold_is_still_bought,
    upgrade_now_tapped_twice_at_once_buys_once_and_charges_once,
    upgrade_now_tapped_twice_at_once_over_an_earlier_bid_buys_once_and_charges_once,
    the_last_units_bought_now_by_two_travellers_at_once_go_to_one,
    an_upgrade_now_that_meets_a_bid_placed_meanwhile_is_refused_and_takes_nothing,
    raises_sent_at_the_same_moment_are_each_applied_and_the_card_held_once,
    the_same_raise_sent_twice_at_once_is_applied_once,
    the_same_raise_sent_twice_at_once_through_a_provider_that_says_in_progress_is_applied_once,
    upgrade_now_tapped_twice_at_once_through_a_provider_that_says_in_progress_buys_once,
    a_raise_that_keeps_losing_to_other_changes_is_refused_and_changes_nothing,
);

/// Stripe takes a payment method not attached to a customer for one payment only: a raise
/// above the hold of a bid placed with one asks for the card again (rather than sending the
/// used one, which Stripe would refuse), and changes nothing until it comes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_stripe_a_raise_above_the_hold_asks_for_the_card_again() {
    let Some(app) = crate::support::spawn_app_on_stripe().await else {
        return;
    };
    let op = app.operator("aurora").await;
    let lot = app.open_lot(&op, json!({})).await;
    app.booking(&op, "PNR001", "Martin", 2, &[&lot]).await;
    let token = app.sign_in("PNR001", "Martin").await;
    let placed = app
        .bid(&token, &lot, "250.00", "pm_card_visa")
        .await
        .expect(201);
    let id = placed.body["id"].as_str().unwrap().to_owned();
    let stored = || async {
        use surclass::store::entities::bid;
        bid::Entity::find_by_id(id.clone())
            .one(&app.db)
            .await
            .unwrap()
            .unwrap()
    };
    assert_eq!(stored().await.payment_method_ref, None, "not kept");
    let change = |body: serde_json::Value| {
        app.patch(&format!("/v1/traveller/bids/{id}"))
            .key(&token)
            .json(&body)
            .send()
    };

    let lowered = change(json!({"amount": "200.00"})).await.expect(200);
    assert_eq!(
        lowered.body["amount"], "200.00",
        "no card needed below the hold"
    );
    let before = stored().await;
    let refused = change(json!({"amount": "300.00"})).await.expect(422);
    let asks_for_the_card = |reply: &crate::support::Reply| {
        reply.body["field"] == "payment_method"
            && reply.body["detail"]
                .as_str()
                .unwrap()
                .contains("a higher offer needs your card again")
    };
    assert!(asks_for_the_card(&refused), "{}", refused.body);
    assert_eq!(stored().await, before, "nothing changed");
    // A bid placed before Surclass stopped keeping Stripe's payment method ids.
    {
        use sea_orm::{ActiveModelTrait, IntoActiveModel, Set};
        let mut kept = before.clone().into_active_model();
        kept.payment_method_ref = Set(Some("pm_card_visa".into()));
        kept.update(&app.db).await.unwrap();
    }
    let refused = change(json!({"amount": "300.00"})).await.expect(422);
    assert!(asks_for_the_card(&refused), "{}", refused.body);
    assert_eq!(stored().await.payment_ref, before.payment_ref);

    let raised = change(json!({"amount": "300.00", "payment_method": "pm_card_visa"}))
        .await
        .expect(200);
    assert_eq!(raised.body["amount"], "300.00");
    assert_eq!(raised.body["total"], "600.00");
    app.run_jobs().await;
    let rows = {
        use sea_orm::{ColumnTrait, QueryFilter};
        use surclass::store::entities::payment;
        payment::Entity::find()
            .filter(payment::Column::BidId.eq(&id))
            .all(&app.db)
            .await
            .unwrap()
    };
    let row = |kind: &str, amount: i64| {
        rows.iter()
            .filter(|p| p.kind == kind && p.amount_minor == amount && p.status == "succeeded")
            .map(|p| p.provider_ref.clone())
            .collect::<Vec<_>>()
    };
    let first = row("hold", 50000);
    assert_eq!(first.len(), 1, "{rows:?}");
    assert_eq!(
        row("hold", 60000).len(),
        1,
        "one new hold for the new total: {rows:?}"
    );
    assert_eq!(
        row("release", 0),
        first,
        "the first hold released: {rows:?}"
    );
    assert_eq!(rows.len(), 3, "{rows:?}");
}

/// A withdrawal sent while the operator cancels the lot waits for the cancel and is refused:
/// the upgrade is cancelled. It takes the lot before the bid, as the cancel does, so neither
/// fails (the other order deadlocks, and PostgreSQL aborts one of the two). PostgreSQL only:
/// the wait is seen in `pg_stat_activity`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_withdrawal_sent_while_the_operator_cancels_waits_and_is_refused() {
    let Some(app) = crate::support::spawn_app(crate::support::Store::Postgres).await else {
        return;
    };
    let (bid_id, _) = a_bid_of_two_at_200(&app).await;
    let token = app.sign_in("PNR001", "Martin").await;

    let cancel = cancel_begun(&app, &bid_id).await;
    let (reply, ()) = tokio::join!(
        app.delete(&format!("/v1/traveller/bids/{bid_id}"))
            .key(&token)
            .send(),
        cancel.ends(&app, &bid_id),
    );
    assert_eq!(reply.expect(409).problem_type(), "upgrade-unavailable");
    assert_eq!(app.stored_bid(&bid_id).await.status, "lost");
}

/// A raise whose new hold is granted as the operator cancels the lot: its write waits for the
/// cancel, is refused, and the new hold is released; neither fails. PostgreSQL only, as
/// above.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_raise_landing_while_the_operator_cancels_waits_is_refused_and_holds_nothing_more() {
    use surclass::services::bids::{self, BidError};

    let Some(app) = crate::support::spawn_app(crate::support::Store::Postgres).await else {
        return;
    };
    let (bid_id, booking) = a_bid_of_two_at_200(&app).await;
    let (gateway, granted, go_on) = during_hold::held_until_told(app.gateway.clone());
    let raising = tokio::spawn({
        let (db, bid_id) = (app.db.clone(), bid_id.clone());
        async move { bids::change(&db, &gateway, &booking, &bid_id, "300.00", None).await }
    });
    granted.await.expect("the raise's hold granted");

    let cancel = cancel_begun(&app, &bid_id).await;
    go_on.send(()).unwrap();
    cancel.ends(&app, &bid_id).await;
    let refused = raising.await.unwrap();
    assert!(
        matches!(refused, Err(BidError::Unavailable(_))),
        "{refused:?}"
    );
    let b = app.stored_bid(&bid_id).await;
    assert_eq!((b.status.as_str(), b.amount_minor), ("lost", 20_000));
    assert_eq!(
        app.gateway_holds_awaiting_capture().await.len(),
        1,
        "the raise's hold released; the bid's first one is the cancel's to release"
    );
}

/// An operator's cancel of the bid's lot, begun (see `TestApp::cancel_begins`).
async fn cancel_begun(app: &TestApp, bid_id: &str) -> HeldCancel {
    app.cancel_begins(&app.stored_bid(bid_id).await.lot_id)
        .await
}

pub(crate) mod during_hold {
    use std::sync::Arc;
    use surclass::payments::*;
    use surclass::store::entities::bid;

    /// What happens after the card gateway grants a hold and before it answers.
    pub enum AfterHold {
        /// The deadline passes: the bid passed every check before the card was asked, and
        /// finds its lot closed at the write.
        DeadlinePasses {
            db: surclass::store::Db,
            lot_id: String,
        },
        /// Another change of the bid lands (its version moves on) before the answer.
        BidChanges {
            db: surclass::store::Db,
            bid_id: String,
        },
        /// The gateway says the hold is granted, then is slow to answer: long enough for
        /// the caller to give up waiting.
        SlowAnswer {
            held: std::sync::Mutex<Option<tokio::sync::oneshot::Sender<()>>>,
        },
        /// The gateway says the hold is granted, then answers only once told to go on (the
        /// test does something in between).
        Gate {
            held: std::sync::Mutex<Option<tokio::sync::oneshot::Sender<()>>>,
            go: tokio::sync::Mutex<Option<tokio::sync::oneshot::Receiver<()>>>,
        },
        /// A bid for the booking is placed by another request (another phone) before the
        /// answer.
        BidPlaced {
            db: surclass::store::Db,
            lot_id: String,
            booking_id: String,
        },
        /// As Stripe does: a hold whose key another request is still using is answered
        /// "in progress"; each hold is answered 300 ms after it is granted.
        OneRequestPerKey {
            in_flight: std::sync::Mutex<std::collections::HashSet<String>>,
        },
        /// Nothing: the hold is answered as usual. Only the first capture's (or saved card's
        /// charge's) answer is lost (a timeout): the service cannot tell whether the bank
        /// took the money.
        FirstCaptureLost {
            lost: std::sync::atomic::AtomicBool,
            reached_bank: Reached,
            /// A capture on its way, done just before the next release reaches the bank.
            on_its_way: std::sync::Mutex<Option<(PaymentRef, i64, IdempotencyKey)>>,
        },
    }

    /// What became at the bank of a capture whose answer was lost.
    #[derive(Clone, Copy, PartialEq, Eq)]
    pub enum Reached {
        /// The bank never saw it.
        Never,
        /// The bank did it at once.
        AtOnce,
        /// It lands late: just before the next release of a hold reaches the bank.
        Late,
        /// The bank did it at once, and the process stopped before the answer came back (a
        /// crash): the call never returns, so nothing after it runs.
        AtOnceThenStopped,
    }

    /// A gateway whose first capture gets no answer: a job has to find out what came of it.
    pub fn first_capture_lost(
        inner: Arc<dyn PaymentGateway>,
        reached_bank: Reached,
    ) -> Arc<dyn PaymentGateway> {
        Arc::new(DuringHold {
            inner,
            then: AfterHold::FirstCaptureLost {
                lost: Default::default(),
                reached_bank,
                on_its_way: Default::default(),
            },
        })
    }

    /// A gateway that answers "in progress" to a hold whose key is in use, as Stripe does, and
    /// is slow enough (300 ms) that copies of one request sent at once overlap.
    pub fn one_request_per_key(inner: Arc<dyn PaymentGateway>) -> Arc<dyn PaymentGateway> {
        Arc::new(DuringHold {
            inner,
            then: AfterHold::OneRequestPerKey {
                in_flight: Default::default(),
            },
        })
    }

    /// A gateway that answers 300 ms after granting a hold, and the signal that it granted it.
    pub fn slow_to_answer(
        inner: Arc<dyn PaymentGateway>,
    ) -> (Arc<dyn PaymentGateway>, tokio::sync::oneshot::Receiver<()>) {
        let (held, granted) = tokio::sync::oneshot::channel();
        let gateway = Arc::new(DuringHold {
            inner,
            then: AfterHold::SlowAnswer {
                held: std::sync::Mutex::new(Some(held)),
            },
        });
        (gateway, granted)
    }

    /// A gateway that grants a hold, says so, and answers once told to go on: the signal that
    /// it granted it, and the sender that lets it answer.
    pub fn held_until_told(
        inner: Arc<dyn PaymentGateway>,
    ) -> (
        Arc<dyn PaymentGateway>,
        tokio::sync::oneshot::Receiver<()>,
        tokio::sync::oneshot::Sender<()>,
    ) {
        let (held, granted) = tokio::sync::oneshot::channel();
        let (go_on, go) = tokio::sync::oneshot::channel();
        let gateway = Arc::new(DuringHold {
            inner,
            then: AfterHold::Gate {
                held: std::sync::Mutex::new(Some(held)),
                go: tokio::sync::Mutex::new(Some(go)),
            },
        });
        (gateway, granted, go_on)
    }

    /// A bid of 300.00 a person by `booking_id` on `lot`, placed through the intake with its
    /// card's hold kept until told: the placement, word that the hold was granted, and the go.
    #[allow(clippy::type_complexity)]
    pub fn bid_held_until_told(
        app: &crate::support::TestApp,
        booking_id: &str,
        lot: &str,
    ) -> (
        tokio::task::JoinHandle<
            Result<surclass::services::bids::Placed, surclass::services::bids::BidError>,
        >,
        tokio::sync::oneshot::Receiver<()>,
        tokio::sync::oneshot::Sender<()>,
    ) {
        use surclass::services::bids::{Ask, Intake, NewBid};
        let (gateway, granted, go_on) = held_until_told(app.gateway.clone());
        let (db, booking_id, lot) = (app.db.clone(), booking_id.to_owned(), lot.to_owned());
        let placing = tokio::spawn(async move {
            let ask = Ask::new(
                &booking_id,
                NewBid {
                    lot_id: &lot,
                    amount: "300.00",
                    card: Some(surclass::payments::CardSource::PaymentMethod(
                        "pm_card_visa".into(),
                    )),
                    partial_ok: false,
                    preference: None,
                    consent_to_charge: false,
                },
            );
            Intake::start(&db, 4).place(&gateway, ask).await
        });
        (placing, granted, go_on)
    }

    /// Waits for `step` only until the gateway has granted its hold, as the HTTP server drops
    /// the request of a connection the client reset.
    pub async fn hang_up_once_held<T: std::fmt::Debug>(
        step: impl std::future::Future<Output = T>,
        granted: tokio::sync::oneshot::Receiver<()>,
    ) {
        tokio::select! {
            answered = step => panic!("the slow gateway answered first: {answered:?}"),
            _ = granted => {}
        }
    }

    /// The booking's one bid once `done` says the step went on to its end, looked at every
    /// 50 ms for 5 s; `None` if it never did.
    pub async fn bid_once(
        db: &surclass::store::Db,
        booking_id: &str,
        done: impl Fn(&bid::Model) -> bool,
    ) -> Option<bid::Model> {
        use sea_orm::{ColumnTrait, EntityTrait, QueryFilter};
        for _ in 0..100 {
            let found = bid::Entity::find()
                .filter(bid::Column::BookingId.eq(booking_id))
                .one(db)
                .await
                .unwrap();
            if let Some(b) = found.filter(|b| done(b)) {
                return Some(b);
            }
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
        None
    }

    /// A card gateway that does something between granting a hold and answering.
    pub struct DuringHold {
        pub inner: Arc<dyn PaymentGateway>,
        pub then: AfterHold,
    }

    #[async_trait::async_trait]
    impl PaymentGateway for DuringHold {
        fn provider(&self) -> &'static str {
            self.inner.provider()
        }
        fn reuses_payment_methods(&self) -> bool {
            self.inner.reuses_payment_methods()
        }
        async fn authorize_hold(&self, request: HoldRequest) -> Result<HoldOutcome, PaymentError> {
            let key = request.idempotency_key.as_str().to_owned();
            if let AfterHold::OneRequestPerKey { in_flight } = &self.then
                && !in_flight.lock().unwrap().insert(key.clone())
            {
                return Err(PaymentError::InProgress(format!("{key} is in use")));
            }
            let outcome = self.inner.authorize_hold(request).await;
            match &self.then {
                AfterHold::DeadlinePasses { db, lot_id } => {
                    use sea_orm::{ColumnTrait, EntityTrait, QueryFilter, sea_query::Expr};
                    use surclass::store::entities::lot;
                    lot::Entity::update_many()
                        .col_expr(
                            lot::Column::ClosesAt,
                            Expr::value(chrono::Utc::now() - chrono::Duration::seconds(1)),
                        )
                        .filter(lot::Column::Id.eq(lot_id))
                        .exec(db)
                        .await
                        .expect("deadline moved");
                }
                AfterHold::BidChanges { db, bid_id } => {
                    use sea_orm::{
                        ColumnTrait, EntityTrait, QueryFilter,
                        sea_query::{Expr, ExprTrait},
                    };
                    bid::Entity::update_many()
                        .col_expr(bid::Column::Version, Expr::col(bid::Column::Version).add(1))
                        .filter(bid::Column::Id.eq(bid_id))
                        .exec(db)
                        .await
                        .expect("bid changed");
                }
                AfterHold::SlowAnswer { held } => {
                    if let Some(held) = held.lock().unwrap().take() {
                        let _ = held.send(());
                    }
                    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
                }
                AfterHold::Gate { held, go } => {
                    if let Some(held) = held.lock().unwrap().take() {
                        let _ = held.send(());
                    }
                    if let Some(go) = go.lock().await.take() {
                        let _ = go.await;
                    }
                }
                AfterHold::BidPlaced {
                    db,
                    lot_id,
                    booking_id,
                } => {
                    use sea_orm::{ActiveModelTrait, IntoActiveModel};
                    let now = chrono::Utc::now();
                    bid::Model {
                        id: format!("bid_other_phone_{booking_id}"),
                        lot_id: lot_id.clone(),
                        booking_id: booking_id.clone(),
                        amount_minor: 30_000,
                        currency: "EUR".into(),
                        units: 2,
                        partial_ok: false,
                        tier: 0,
                        preference: None,
                        status: "active".into(),
                        payment_method_ref: None,
                        payment_ref: None,
                        saved_card: None,
                        award_units: None,
                        award_price_minor: None,
                        outcome_reason: None,
                        standby_rank: None,
                        submitted_at: now,
                        created_at: now,
                        updated_at: now,
                        version: 0,
                    }
                    .into_active_model()
                    .insert(db)
                    .await
                    .expect("bid placed");
                }
                AfterHold::OneRequestPerKey { in_flight } => {
                    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
                    in_flight.lock().unwrap().remove(&key);
                }
                AfterHold::FirstCaptureLost { .. } => {}
            }
            outcome
        }
        async fn capture(
            &self,
            reference: &PaymentRef,
            amount_minor: i64,
            key: &IdempotencyKey,
        ) -> Result<Capture, PaymentError> {
            if let AfterHold::FirstCaptureLost {
                lost,
                reached_bank,
                on_its_way,
            } = &self.then
                && !lost.swap(true, std::sync::atomic::Ordering::SeqCst)
            {
                match reached_bank {
                    Reached::Never => {}
                    Reached::AtOnce => {
                        let _ = self.inner.capture(reference, amount_minor, key).await;
                    }
                    Reached::AtOnceThenStopped => {
                        let _ = self.inner.capture(reference, amount_minor, key).await;
                        std::future::pending::<()>().await;
                    }
                    Reached::Late => {
                        let request = (reference.clone(), amount_minor, key.clone());
                        *on_its_way.lock().unwrap() = Some(request);
                    }
                }
                return Err(PaymentError::Transient("no answer in time".into()));
            }
            self.inner.capture(reference, amount_minor, key).await
        }
        async fn release(
            &self,
            reference: &PaymentRef,
            key: &IdempotencyKey,
        ) -> Result<(), PaymentError> {
            if let AfterHold::FirstCaptureLost { on_its_way, .. } = &self.then {
                let late = on_its_way.lock().unwrap().take();
                if let Some((hold, amount, capture_key)) = late {
                    let _ = self.inner.capture(&hold, amount, &capture_key).await;
                }
            }
            self.inner.release(reference, key).await
        }
        async fn save_card_for_later(
            &self,
            request: SetupRequest,
        ) -> Result<SetupOutcome, PaymentError> {
            self.inner.save_card_for_later(request).await
        }
        async fn charge_saved_card(
            &self,
            request: ChargeRequest,
        ) -> Result<ChargeOutcome, PaymentError> {
            // A saved card's charge is lost as a capture is (a late landing is not modelled).
            if let AfterHold::FirstCaptureLost {
                lost, reached_bank, ..
            } = &self.then
                && !lost.swap(true, std::sync::atomic::Ordering::SeqCst)
            {
                if *reached_bank != Reached::Never {
                    let _ = self.inner.charge_saved_card(request).await;
                }
                if *reached_bank == Reached::AtOnceThenStopped {
                    std::future::pending::<()>().await;
                }
                return Err(PaymentError::Transient("no answer in time".into()));
            }
            self.inner.charge_saved_card(request).await
        }
        async fn refund(
            &self,
            reference: &PaymentRef,
            amount_minor: i64,
            key: &IdempotencyKey,
        ) -> Result<Refund, PaymentError> {
            self.inner.refund(reference, amount_minor, key).await
        }
        async fn payment_status(
            &self,
            reference: &PaymentRef,
        ) -> Result<PaymentState, PaymentError> {
            self.inner.payment_status(reference).await
        }
        async fn open_holds(
            &self,
            since: chrono::DateTime<chrono::Utc>,
        ) -> Result<Vec<OpenHold>, PaymentError> {
            self.inner.open_holds(since).await
        }
        async fn setup_status(&self, reference: &SetupRef) -> Result<SetupOutcome, PaymentError> {
            self.inner.setup_status(reference).await
        }
        fn parse_webhook(
            &self,
            payload: &str,
            signature: &str,
        ) -> Result<PaymentEvent, WebhookError> {
            self.inner.parse_webhook(payload, signature)
        }
    }
}
use during_hold::{
    AfterHold, DuringHold, bid_once, hang_up_once_held, one_request_per_key, slow_to_answer,
};

async fn a_bid_whose_lot_closes_while_its_card_is_held_is_refused_and_the_hold_released(
    app: TestApp,
) {
    use sea_orm::{ColumnTrait, QueryFilter};
    use surclass::services::bids::{Ask, Intake, NewBid};
    use surclass::store::entities::{bid, payment};

    let op = app.operator("aurora").await;
    let fresh = app.open_lot(&op, json!({})).await;
    let again = app.open_lot(&op, json!({"resource": "AU202"})).await;
    app.booking(&op, "PNR001", "Martin", 2, &[&fresh, &again])
        .await;
    // On `again`, the traveller has bid and withdrawn: bidding again reuses the same bid.
    let token = app.sign_in("PNR001", "Martin").await;
    let first = app
        .bid(&token, &again, "200.00", "pm_card_visa")
        .await
        .expect(201);
    let again_bid = first.body["id"].as_str().unwrap().to_owned();
    app.delete(&format!("/v1/traveller/bids/{again_bid}"))
        .key(&token)
        .send()
        .await
        .expect(200);
    app.run_jobs().await; // the withdrawn bid's hold is released by a job
    assert!(app.gateway_holds_awaiting_capture().await.is_empty());
    let booking = app.stored_booking("PNR001").await;
    let intake = Intake::start(&app.db, 4);

    for lot_id in [&fresh, &again] {
        let gateway: std::sync::Arc<dyn surclass::payments::PaymentGateway> =
            std::sync::Arc::new(DuringHold {
                inner: app.gateway.clone(),
                then: AfterHold::DeadlinePasses {
                    db: app.db.clone(),
                    lot_id: lot_id.clone(),
                },
            });
        let ask = Ask::new(
            &booking.id,
            NewBid {
                lot_id,
                amount: "300.00",
                card: Some(surclass::payments::CardSource::PaymentMethod(
                    "pm_card_visa".into(),
                )),
                partial_ok: false,
                preference: None,
                consent_to_charge: false,
            },
        );
        let refused = intake.place(&gateway, ask).await;
        assert!(
            matches!(
                refused,
                Err(surclass::services::bids::BidError::Closed { .. })
            ),
            "the write finds the lot closed: {:?}",
            refused.map(|p| p.bid.id)
        );
    }

    assert!(
        app.gateway_holds_awaiting_capture().await.is_empty(),
        "no hold is left on the card of a bid that was not written"
    );
    let bids = bid::Entity::find().all(&app.db).await.unwrap();
    assert_eq!(bids.len(), 1, "no bid written on the lot that closed");
    assert_eq!(bids[0].id, again_bid);
    assert_eq!(
        bids[0].status, "withdrawn",
        "the withdrawn bid stays withdrawn"
    );
    // The hold taken for the refused re-bid is on the bid's record, as released.
    let records = payment::Entity::find()
        .filter(payment::Column::BidId.eq(&again_bid))
        .all(&app.db)
        .await
        .unwrap();
    let unwound: Vec<_> = records
        .iter()
        .filter(|p| p.idempotency_key.ends_with("/unwound"))
        .collect();
    assert_eq!(unwound.len(), 1, "{records:?}");
    assert_eq!(unwound[0].status, "released");
    assert_eq!(unwound[0].amount_minor, 60_000, "300.00 for a party of two");
}

/// The traveller erases their data from one phone while a bid (or an "upgrade now") from
/// another has its card held: nothing is written onto the erased booking, and no hold stays.
async fn a_bid_whose_booking_is_erased_while_its_card_is_held_is_refused_and_the_hold_released(
    app: TestApp,
) {
    use surclass::services::bids::{self, BidError};
    use surclass::services::data_rights::Asker::Traveller;
    use surclass::store::entities::bid;

    let op = app.operator("aurora").await;
    let lot = app.open_lot(&op, json!({"upgrade_now": "800.00"})).await;
    app.booking(&op, "PNR001", "Martin", 2, &[&lot]).await;
    app.booking(&op, "PNR002", "Dubois", 1, &[&lot]).await;
    let buyer = app.stored_booking("PNR002").await;
    let (gateway, granted, go_on) = during_hold::held_until_told(app.gateway.clone());
    let buying = tokio::spawn({
        let (db, lot) = (app.db.clone(), lot.clone());
        let card = Some(surclass::payments::CardSource::PaymentMethod(
            "pm_card_visa".into(),
        ));
        async move { bids::upgrade_now(&db, &gateway, &buyer, &lot, card).await }
    });
    granted.await.expect("the purchase's hold granted");
    let buyer = app.stored_booking("PNR002").await;
    surclass::services::data_rights::erase(&app.db, &buyer.id, Traveller)
        .await
        .expect("no bid in play yet");
    go_on.send(()).unwrap();
    let refused = buying.await.unwrap();
    assert!(
        matches!(refused, Err(BidError::SignedOut)),
        "the purchase finds the booking erased: {:?}",
        refused.map(|b| b.id)
    );
    app.run_jobs().await;
    assert!(
        app.gateway_holds_awaiting_capture().await.is_empty(),
        "no hold is left on the buyer's card"
    );

    let booking = app.stored_booking("PNR001").await;
    let (placing, granted, go_on) = during_hold::bid_held_until_told(&app, &booking.id, &lot);
    granted.await.expect("the hold granted");
    surclass::services::data_rights::erase(&app.db, &booking.id, Traveller)
        .await
        .expect("no bid in play yet");
    go_on.send(()).unwrap();
    let refused = placing.await.unwrap();
    assert!(
        matches!(refused, Err(BidError::SignedOut)),
        "the write finds the booking erased: {:?}",
        refused.map(|p| p.bid.id)
    );
    app.run_jobs().await;
    assert!(bid::Entity::find().all(&app.db).await.unwrap().is_empty());
    assert!(
        app.gateway_holds_awaiting_capture().await.is_empty(),
        "no hold is left on the card"
    );
}

/// An import changes the party's size while a bid's (or a purchase's) card is held for the
/// old one: nothing is written for the old party, and the hold is released. The import, which
/// found no offer in play, goes through.
async fn a_bid_whose_party_is_resized_while_its_card_is_held_is_refused_and_the_hold_released(
    app: TestApp,
) {
    use surclass::services::bids::{self, BidError};
    use surclass::store::entities::bid;

    let op = app.operator("aurora").await;
    let lot = app.open_lot(&op, json!({"upgrade_now": "800.00"})).await;
    app.booking(&op, "PNR001", "Martin", 2, &[&lot]).await;
    app.booking(&op, "PNR002", "Dubois", 1, &[&lot]).await;
    let resize = |reference: &str, last_name: &str, party: u32| {
        json!([{"reference": reference, "last_name": last_name, "party_size": party,
                "email": "traveller@example.com", "eligible_lots": [lot]}])
    };

    let buyer = app.stored_booking("PNR002").await;
    let (gateway, granted, go_on) = during_hold::held_until_told(app.gateway.clone());
    let buying = tokio::spawn({
        let (db, lot) = (app.db.clone(), lot.clone());
        let card = Some(surclass::payments::CardSource::PaymentMethod(
            "pm_card_visa".into(),
        ));
        async move { bids::upgrade_now(&db, &gateway, &buyer, &lot, card).await }
    });
    granted.await.expect("the purchase's hold granted");
    app.post("/v1/bookings/import")
        .key(&op.key)
        .json(&resize("PNR002", "Dubois", 2))
        .send()
        .await
        .expect(200);
    go_on.send(()).unwrap();
    let refused = buying.await.unwrap();
    assert!(
        matches!(refused, Err(BidError::Unavailable(_))),
        "the purchase finds the party resized: {:?}",
        refused.map(|b| b.id)
    );

    let booking = app.stored_booking("PNR001").await;
    let (placing, granted, go_on) = during_hold::bid_held_until_told(&app, &booking.id, &lot);
    granted.await.expect("the hold granted");
    app.post("/v1/bookings/import")
        .key(&op.key)
        .json(&resize("PNR001", "Martin", 3))
        .send()
        .await
        .expect(200);
    go_on.send(()).unwrap();
    let refused = placing.await.unwrap();
    assert!(
        matches!(refused, Err(BidError::Unavailable(_))),
        "the write finds the party resized: {:?}",
        refused.map(|p| p.bid.id)
    );
    app.run_jobs().await;
    assert!(bid::Entity::find().all(&app.db).await.unwrap().is_empty());
    assert!(
        app.gateway_holds_awaiting_capture().await.is_empty(),
        "no hold is left on either card"
    );
}

/// A connection that drops after the card was held but before the answer came (the HTTP
/// server then drops the request): the placement goes on without it, so the hold is never
/// left on a card with no bid to show for it. The traveller finds the bid when they come back.
async fn a_traveller_who_hangs_up_while_the_card_is_held_still_gets_the_bid(app: TestApp) {
    use surclass::services::bids::{Ask, Intake, NewBid};

    let op = app.operator("aurora").await;
    let lot = app.open_lot(&op, json!({})).await;
    app.booking(&op, "PNR001", "Martin", 2, &[&lot]).await;
    let booking = app.stored_booking("PNR001").await;
    let (gateway, hold_granted) = slow_to_answer(app.gateway.clone());
    let intake = Intake::start(&app.db, 4);
    let ask = Ask::new(
        &booking.id,
        NewBid {
            lot_id: &lot,
            amount: "300.00",
            card: Some(surclass::payments::CardSource::PaymentMethod(
                "pm_card_visa".into(),
            )),
            partial_ok: false,
            preference: None,
            consent_to_charge: false,
        },
    );

    hang_up_once_held(intake.place(&gateway, ask), hold_granted).await;

    let written = bid_once(&app.db, &booking.id, |_| true)
        .await
        .expect("the bid is written although nobody waited for it");
    assert_eq!(written.status, "active");
    let hold = written.payment_ref.clone().expect("the bid has its hold");
    assert_eq!(
        app.gateway_holds_awaiting_capture().await,
        std::collections::HashSet::from([hold]),
        "the only hold on the card is the bid's"
    );
    // The traveller coming back sees it.
    let token = app.sign_in("PNR001", "Martin").await;
    let mine = app
        .read(&format!("/v1/traveller/bids/{}", written.id))
        .key(&token)
        .send()
        .await
        .expect(200);
    assert_eq!(mine.body["status"], "active");
}

/// The same for a raise that needs a new hold: the raise is written and the old hold
/// released, never two holds on the card for one bid.
async fn a_raise_whose_caller_hangs_up_after_the_new_hold_is_still_made(app: TestApp) {
    use surclass::services::bids;

    let (bid_id, booking) = a_bid_of_two_at_200(&app).await;
    let old_hold = app
        .stored_bid(&bid_id)
        .await
        .payment_ref
        .expect("the bid has a hold");
    let (gateway, hold_granted) = slow_to_answer(app.gateway.clone());

    hang_up_once_held(
        bids::change(&app.db, &gateway, &booking, &bid_id, "300.00", visa()),
        hold_granted,
    )
    .await;

    let raised = bid_once(&app.db, &booking.id, |b| b.amount_minor == 30_000)
        .await
        .expect("the raise is written although nobody waited for it");
    let new_hold = raised
        .payment_ref
        .clone()
        .expect("the raised bid has its hold");
    assert_ne!(new_hold, old_hold);
    app.run_jobs().await;
    assert_eq!(
        app.gateway_holds_awaiting_capture().await,
        std::collections::HashSet::from([new_hold]),
        "the only hold on the card is the raised bid's"
    );
}

/// Raises of one bid sent at the same moment (a double tap, two devices), behind a card
/// gateway slow enough that each reads the bid before any is written: none is refused, each
/// is applied in turn, and in the end the card holds the bid's total once, every other hold
/// released.
async fn raises_sent_at_the_same_moment_are_each_applied_and_the_card_held_once(app: TestApp) {
    use sea_orm::{ColumnTrait, QueryFilter};
    use surclass::services::bids;
    use surclass::store::entities::{bid_event, payment};

    let (bid_id, booking) = a_bid_of_two_at_200(&app).await;
    let (gateway, _) = slow_to_answer(app.gateway.clone());
    let raises = ["300.00", "350.00", "400.00", "450.00"]
        .map(|amount| bids::change(&app.db, &gateway, &booking, &bid_id, amount, visa()));
    for answer in futures_util::future::join_all(raises).await {
        answer.expect("each raise is applied");
    }

    let changes = bid_event::Entity::find()
        .filter(bid_event::Column::BidId.eq(&bid_id))
        .filter(bid_event::Column::Kind.is_in(["raised", "lowered"]))
        .all(&app.db)
        .await
        .unwrap();
    assert_eq!(changes.len(), 4, "one change on the timeline per raise");
    let last = changes.iter().max_by_key(|e| e.id).unwrap();
    let now = app.stored_bid(&bid_id).await;
    assert_eq!(
        Some(now.amount_minor),
        last.amount_minor,
        "the bid is the last raise written"
    );
    let hold = now.payment_ref.clone().expect("the bid has a hold");
    let held = payment::Entity::find()
        .filter(payment::Column::ProviderRef.eq(&hold))
        .one(&app.db)
        .await
        .unwrap()
        .expect("the bid's hold is recorded");
    assert!(
        held.amount_minor >= now.amount_minor * 2,
        "the card holds {} for a bid of 2 x {}",
        held.amount_minor,
        now.amount_minor
    );
    app.run_jobs().await;
    assert_eq!(
        app.gateway_holds_awaiting_capture().await,
        std::collections::HashSet::from([hold]),
        "the only hold on the card is the bid's"
    );
    let recorded: std::collections::HashSet<String> = payment::Entity::find()
        .filter(payment::Column::BidId.eq(&bid_id))
        .filter(payment::Column::Kind.eq("hold"))
        .all(&app.db)
        .await
        .unwrap()
        .into_iter()
        .filter_map(|p| p.provider_ref)
        .collect();
    assert_eq!(
        recorded,
        app.gateway_payments_of(&bid_id).await,
        "every hold taken for the bid is recorded"
    );
}

/// The same raise sent twice at once: one change, one new hold, the old one released.
async fn the_same_raise_sent_twice_at_once_is_applied_once(app: TestApp) {
    let (gateway, _) = slow_to_answer(app.gateway.clone());
    same_raise_twice_at_once(&app, gateway).await;
}

/// The same through a provider that answers the second copy's hold "in progress" (Stripe
/// does): that copy waits for the first's hold, and is answered, not told to retry later.
async fn the_same_raise_sent_twice_at_once_through_a_provider_that_says_in_progress_is_applied_once(
    app: TestApp,
) {
    let gateway = one_request_per_key(app.gateway.clone());
    same_raise_twice_at_once(&app, gateway).await;
}

async fn same_raise_twice_at_once(
    app: &TestApp,
    gateway: std::sync::Arc<dyn surclass::payments::PaymentGateway>,
) {
    use sea_orm::{ColumnTrait, QueryFilter};
    use surclass::services::bids;
    use surclass::store::entities::bid_event;

    let (bid_id, booking) = a_bid_of_two_at_200(app).await;
    let twice = ["300.00", "300.00"]
        .map(|amount| bids::change(&app.db, &gateway, &booking, &bid_id, amount, visa()));
    for answer in futures_util::future::join_all(twice).await {
        assert_eq!(
            answer.expect("both copies are answered").amount_minor,
            30_000
        );
    }

    let raised = bid_event::Entity::find()
        .filter(bid_event::Column::BidId.eq(&bid_id))
        .filter(bid_event::Column::Kind.eq("raised"))
        .all(&app.db)
        .await
        .unwrap();
    assert_eq!(raised.len(), 1, "one raise on the timeline");
    let hold = app
        .stored_bid(&bid_id)
        .await
        .payment_ref
        .expect("the bid has a hold");
    app.run_jobs().await;
    assert_eq!(
        app.gateway_holds_awaiting_capture().await,
        std::collections::HashSet::from([hold]),
        "the card is held once, for the raise"
    );
}

/// A raise whose bid is changed by something else every time its card is held gives up after
/// a few tries: refused as changed meanwhile, the bid as it was, every hold it took released.
async fn a_raise_that_keeps_losing_to_other_changes_is_refused_and_changes_nothing(app: TestApp) {
    use std::sync::Arc;
    use surclass::services::bids::{self, BidError};

    let (bid_id, booking) = a_bid_of_two_at_200(&app).await;
    let before = app.stored_bid(&bid_id).await;
    let gateway: Arc<dyn surclass::payments::PaymentGateway> = Arc::new(DuringHold {
        inner: app.gateway.clone(),
        then: AfterHold::BidChanges {
            db: app.db.clone(),
            bid_id: bid_id.clone(),
        },
    });

    let refused = bids::change(&app.db, &gateway, &booking, &bid_id, "300.00", visa()).await;
    assert!(
        matches!(refused, Err(BidError::ChangedMeanwhile)),
        "{refused:?}"
    );
    let after = app.stored_bid(&bid_id).await;
    assert_eq!(
        (after.amount_minor, &after.payment_ref),
        (before.amount_minor, &before.payment_ref),
        "the bid is as it was"
    );
    app.run_jobs().await;
    assert_eq!(
        app.gateway_holds_awaiting_capture().await,
        std::collections::HashSet::from([before.payment_ref.expect("the bid has a hold")]),
        "every hold the raise took is released"
    );
}

/// A booking of two with a bid of 200.00 a person on a new lot: the bid's id and the booking.
async fn a_bid_of_two_at_200(app: &TestApp) -> (String, surclass::store::entities::booking::Model) {
    let op = app.operator("aurora").await;
    let lot = app.open_lot(&op, json!({})).await;
    app.booking(&op, "PNR001", "Martin", 2, &[&lot]).await;
    let token = app.sign_in("PNR001", "Martin").await;
    let placed = app
        .bid(&token, &lot, "200.00", "pm_card_visa")
        .await
        .expect(201);
    let bid_id = placed.body["id"].as_str().unwrap().to_owned();
    (bid_id, app.stored_booking("PNR001").await)
}

fn visa() -> Option<surclass::payments::CardSource> {
    Some(surclass::payments::CardSource::PaymentMethod(
        "pm_card_visa".into(),
    ))
}

/// And for "upgrade now": the card held, the purchase goes on to the unit and the charge,
/// rather than a hold on the card and nothing bought.
async fn an_upgrade_now_whose_caller_hangs_up_after_the_hold_is_still_bought(app: TestApp) {
    use surclass::services::bids;

    let op = app.operator("aurora").await;
    let lot = app
        .open_lot(&op, json!({"capacity": 3, "upgrade_now": "800.00"}))
        .await;
    app.booking(&op, "PNR001", "Martin", 2, &[&lot]).await;
    let booking = app.stored_booking("PNR001").await;
    let (gateway, hold_granted) = slow_to_answer(app.gateway.clone());

    let card = Some(surclass::payments::CardSource::PaymentMethod(
        "pm_card_visa".into(),
    ));
    hang_up_once_held(
        bids::upgrade_now(&app.db, &gateway, &booking, &lot, card),
        hold_granted,
    )
    .await;

    let bought = bid_once(&app.db, &booking.id, |b| b.status == "charged")
        .await
        .expect("the purchase is completed although nobody waited for it");
    assert_eq!(bought.award_units, Some(2));
    app.run_jobs().await;
    assert!(
        app.gateway_holds_awaiting_capture().await.is_empty(),
        "the hold was captured, none left waiting"
    );
}

/// "Upgrade now" tapped twice at once by a booking with no bid yet, behind a card gateway
/// slow enough that both copies are past their checks before either is written: both are
/// answered with the one purchase, the units are taken once and the card charged once.
async fn upgrade_now_tapped_twice_at_once_buys_once_and_charges_once(app: TestApp) {
    let op = app.operator("aurora").await;
    let lot = app
        .open_lot(&op, json!({"capacity": 4, "upgrade_now": "800.00"}))
        .await;
    app.booking(&op, "PNR001", "Martin", 2, &[&lot]).await;
    let (gateway, _) = slow_to_answer(app.gateway.clone());
    upgrade_now_twice_at_once(&app, &lot, gateway).await;
}

/// The same over an earlier bid, through a provider that answers the second copy's hold
/// "in progress" (Stripe does): that copy waits, and is answered with the purchase.
async fn upgrade_now_tapped_twice_at_once_through_a_provider_that_says_in_progress_buys_once(
    app: TestApp,
) {
    let op = app.operator("aurora").await;
    let lot = app
        .open_lot(&op, json!({"capacity": 4, "upgrade_now": "800.00"}))
        .await;
    app.booking(&op, "PNR001", "Martin", 2, &[&lot]).await;
    let token = app.sign_in("PNR001", "Martin").await;
    app.bid(&token, &lot, "300.00", "pm_card_visa")
        .await
        .expect(201);
    upgrade_now_twice_at_once(&app, &lot, one_request_per_key(app.gateway.clone())).await;
}

/// The same over an earlier bid: both copies ask for the same hold, and the one that finds
/// the upgrade bought leaves that hold to the purchase.
async fn upgrade_now_tapped_twice_at_once_over_an_earlier_bid_buys_once_and_charges_once(
    app: TestApp,
) {
    let op = app.operator("aurora").await;
    let lot = app
        .open_lot(&op, json!({"capacity": 4, "upgrade_now": "800.00"}))
        .await;
    app.booking(&op, "PNR001", "Martin", 2, &[&lot]).await;
    let token = app.sign_in("PNR001", "Martin").await;
    app.bid(&token, &lot, "300.00", "pm_card_visa")
        .await
        .expect(201);
    let (gateway, _) = slow_to_answer(app.gateway.clone());
    upgrade_now_twice_at_once(&app, &lot, gateway).await;
}

/// Sends two "upgrade now" of PNR001 (a party of two) at 800.00 at once and checks that
/// they come to one purchase of 1,600.00.
async fn upgrade_now_twice_at_once(
    app: &TestApp,
    lot: &str,
    gateway: std::sync::Arc<dyn surclass::payments::PaymentGateway>,
) {
    use sea_orm::{ColumnTrait, QueryFilter};
    use surclass::services::bids;
    use surclass::store::entities::{bid, lot as lots, payment};

    let booking = app.stored_booking("PNR001").await;
    let twice =
        [visa(), visa()].map(|card| bids::upgrade_now(&app.db, &gateway, &booking, lot, card));
    let answers: Vec<bid::Model> = futures_util::future::join_all(twice)
        .await
        .into_iter()
        .map(|answer| answer.expect("both copies are answered with the purchase"))
        .collect();
    assert_eq!(answers[0].id, answers[1].id, "one bid");
    for answer in &answers {
        assert_eq!(
            (answer.award_units, answer.award_price_minor),
            (Some(2), Some(80_000))
        );
    }

    app.run_jobs().await;
    let bought = app.stored_bid(&answers[0].id).await;
    assert_eq!(bought.status, "charged");
    let sold = lots::Entity::find_by_id(lot.to_owned())
        .one(&app.db)
        .await
        .unwrap()
        .unwrap()
        .units_sold_now;
    assert_eq!(sold, 2, "the party's two units are taken once");
    let charges: Vec<i64> = payment::Entity::find()
        .filter(payment::Column::Kind.eq("charge"))
        .filter(payment::Column::Status.eq("succeeded"))
        .all(&app.db)
        .await
        .unwrap()
        .iter()
        .map(|p| p.amount_minor)
        .collect();
    assert_eq!(charges, [160_000], "one charge recorded");
    assert_eq!(
        app.gateway_payments_captured().await.len(),
        1,
        "the card is charged once"
    );
    assert!(
        app.gateway_holds_awaiting_capture().await.is_empty(),
        "no hold is left on the card"
    );
}

/// Two travellers take the last units "now" at the same moment: one gets them and is charged,
/// the other is told they are gone and keeps no hold; the units are never sold twice.
async fn the_last_units_bought_now_by_two_travellers_at_once_go_to_one(app: TestApp) {
    use sea_orm::{ColumnTrait, PaginatorTrait, QueryFilter};
    use surclass::services::bids::{self, BidError};
    use surclass::store::entities::{lot as lots, payment};

    let op = app.operator("aurora").await;
    let lot = app
        .open_lot(&op, json!({"capacity": 3, "upgrade_now": "800.00"}))
        .await;
    app.booking(&op, "PNR001", "Martin", 2, &[&lot]).await;
    app.booking(&op, "PNR002", "Durand", 2, &[&lot]).await;
    let (martin, durand) = (
        app.stored_booking("PNR001").await,
        app.stored_booking("PNR002").await,
    );
    let (gateway, _) = slow_to_answer(app.gateway.clone());
    let (first, second) = tokio::join!(
        bids::upgrade_now(&app.db, &gateway, &martin, &lot, visa()),
        bids::upgrade_now(&app.db, &gateway, &durand, &lot, visa()),
    );
    let (bought, refused) = match (first, second) {
        (Ok(b), Err(e)) | (Err(e), Ok(b)) => (b, e),
        other => panic!("one purchase and one refusal, not {other:?}"),
    };
    assert!(matches!(refused, BidError::Unavailable(_)), "{refused:?}");
    assert_eq!(bought.award_units, Some(2));

    app.run_jobs().await;
    let sold = lots::Entity::find_by_id(lot.clone())
        .one(&app.db)
        .await
        .unwrap()
        .unwrap()
        .units_sold_now;
    assert_eq!(sold, 2);
    let charged = payment::Entity::find()
        .filter(payment::Column::Kind.eq("charge"))
        .filter(payment::Column::Status.eq("succeeded"))
        .count(&app.db)
        .await
        .unwrap();
    assert_eq!(charged, 1);
    assert!(
        app.gateway_holds_awaiting_capture().await.is_empty(),
        "the refused traveller's hold is released"
    );
}

/// A withdrawal sent twice (a double tap, a retry after a lost answer) is answered the same
/// both times, and is one withdrawal: one event, one message, one release of the hold.
async fn a_withdrawal_sent_twice_is_answered_twice_and_done_once(app: TestApp) {
    use sea_orm::{ColumnTrait, PaginatorTrait, QueryFilter};
    use surclass::store::entities::{bid_event, outbox};

    let (bid_id, booking) = a_bid_of_two_at_200(&app).await;
    let token = app.sign_in("PNR001", "Martin").await;
    for _ in 0..2 {
        let withdrawn = app
            .delete(&format!("/v1/traveller/bids/{bid_id}"))
            .key(&token)
            .send()
            .await
            .expect(200);
        assert_eq!(withdrawn.body["status"], "withdrawn");
    }
    app.run_jobs().await;
    let events = bid_event::Entity::find()
        .filter(bid_event::Column::BidId.eq(&bid_id))
        .filter(bid_event::Column::Kind.is_in(["withdrawn", "hold_released"]))
        .count(&app.db)
        .await
        .unwrap();
    assert_eq!(events, 2, "withdrawn once, the hold released once");
    let told = outbox::Entity::find()
        .filter(outbox::Column::BookingId.eq(&booking.id))
        .filter(outbox::Column::Channel.eq("email"))
        .filter(outbox::Column::Topic.eq("bid.withdrawn"))
        .count(&app.db)
        .await
        .unwrap();
    assert_eq!(told, 1, "told once");
    assert!(app.gateway_holds_awaiting_capture().await.is_empty());
}

/// "Upgrade now" from one phone while another places a bid for the same booking: the sale,
/// worked out for a booking without a bid, is refused as changed meanwhile; no unit is taken,
/// the placed bid stays as it is, and the sale's hold is released.
async fn an_upgrade_now_that_meets_a_bid_placed_meanwhile_is_refused_and_takes_nothing(
    app: TestApp,
) {
    use std::sync::Arc;
    use surclass::services::bids::{self, BidError};
    use surclass::store::entities::lot as lots;

    let op = app.operator("aurora").await;
    let lot = app
        .open_lot(&op, json!({"capacity": 4, "upgrade_now": "800.00"}))
        .await;
    app.booking(&op, "PNR001", "Martin", 2, &[&lot]).await;
    let booking = app.stored_booking("PNR001").await;
    let gateway: Arc<dyn surclass::payments::PaymentGateway> = Arc::new(DuringHold {
        inner: app.gateway.clone(),
        then: AfterHold::BidPlaced {
            db: app.db.clone(),
            lot_id: lot.clone(),
            booking_id: booking.id.clone(),
        },
    });

    let refused = bids::upgrade_now(&app.db, &gateway, &booking, &lot, visa()).await;
    assert!(
        matches!(refused, Err(BidError::ChangedMeanwhile)),
        "{refused:?}"
    );
    let placed = app
        .stored_bid(&format!("bid_other_phone_{}", booking.id))
        .await;
    assert_eq!(
        (placed.status.as_str(), placed.amount_minor),
        ("active", 30_000)
    );
    let sold = lots::Entity::find_by_id(lot.clone())
        .one(&app.db)
        .await
        .unwrap()
        .unwrap()
        .units_sold_now;
    assert_eq!(sold, 0, "no unit taken");
    app.run_jobs().await;
    assert!(
        app.gateway_holds_awaiting_capture().await.is_empty(),
        "the sale's hold is released"
    );
}
