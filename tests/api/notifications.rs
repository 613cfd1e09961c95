//! Telling people and respecting them: messages written with the state change, delivered with
//! retries, parked when they keep failing; signed partner webhooks; one-click unsubscribe;
//! data export and erasure.

use std::sync::atomic::{AtomicBool, AtomicU8, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use sea_orm::{ColumnTrait, EntityTrait, QueryFilter, sea_query::Expr};
use serde_json::{Value, json};
use surclass::config::Settings;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpListener;

use crate::support::{Operator, Store, TestApp, spawn_app_with};

const GOOD: &str = "4242 4242 4242 4242";
const DECLINED_AT_BID: &str = "4000 0000 0000 0002";

/// Declares each `async fn(Store)` for SQLite and PostgreSQL; the test starts its own server
/// (it needs settings of its own, such as an SMTP server).
macro_rules! per_store {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() { super::$name(crate::support::Store::Sqlite).await; }
            )*
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() { super::$name(crate::support::Store::Postgres).await; }
            )*
        }
    };
}

per_store!(
    a_bid_is_confirmed_by_email_in_the_bookings_language,
    a_french_booking_is_told_why_in_french,
    a_change_that_is_refused_sends_nothing,
    a_message_that_keeps_failing_is_parked_and_a_retry_sends_it_once,
    an_address_the_mail_server_rejects_is_parked_at_once_showing_what_was_sent,
    a_message_two_delivery_jobs_name_at_once_goes_out_once,
    the_messages_of_one_transaction_share_a_delivery_job_and_each_keeps_its_own_retries,
    webhooks_are_signed_retried_after_errors_and_listed_with_attempts,
    one_click_stops_reminders_and_money_messages_still_come,
    erasure_removes_personal_data_and_keeps_the_money_records,
    an_email_in_flight_when_its_booking_is_erased_keeps_no_copy,
    personal_data_past_the_retention_period_is_purged,
    emails_reach_a_real_smtp_server_with_reply_to_and_unsubscribe_headers,
    a_webhook_receiver_down_for_a_day_gets_its_delivery_parked_and_retried,
    a_webhook_attempt_is_listed_with_its_outcome_or_not_at_all,
    webhooks_never_go_to_the_servers_own_network,
    the_outcome_goes_out_before_confirmations_queued_in_the_rush,
    a_retried_outcome_goes_out_before_confirmations_queued_meanwhile,
    a_revoked_partner_key_ends_its_sessions_and_pauses_its_endpoints_losing_no_delivery,
    every_lot_closing_soon_gets_its_reminder_however_many_there_are,
    every_active_bidder_is_told_when_the_close_moves,
    a_reminder_queued_before_the_close_moved_away_waits_for_the_new_close,
);

async fn import(
    app: &TestApp,
    op: &Operator,
    reference: &str,
    email: &str,
    language: &str,
    lots: &[&str],
) {
    app.post("/v1/bookings/import")
        .key(&op.key)
        .json(&json!([{
            "reference": reference, "last_name": "Lefèvre", "party_size": 2,
            "email": email, "phone": "+33612345678", "language": language, "eligible_lots": lots
        }]))
        .send()
        .await
        .expect(200);
}

async fn messages(app: &TestApp, op: &Operator, query: &str) -> Vec<Value> {
    app.read(&format!("/v1/messages{query}"))
        .key(&op.key)
        .send()
        .await
        .expect(200)
        .body["items"]
        .as_array()
        .unwrap()
        .clone()
}

fn of_topic<'a>(items: &'a [Value], topic: &str) -> Vec<&'a Value> {
    items.iter().filter(|m| m["topic"] == topic).collect()
}

/// The operator asks for a message to be sent again (`id`: a number, or its JSON value).
async fn retry(app: &TestApp, key: &str, id: impl std::fmt::Display) -> crate::support::Reply {
    app.post(&format!("/v1/messages/{id}/retry"))
        .key(key)
        .send()
        .await
}

/// When a message listed by `/v1/messages` went out; it must have.
fn sent_at(m: &Value) -> chrono::DateTime<chrono::Utc> {
    assert_eq!(m["status"], "sent", "{m}");
    m["sent_at"].as_str().unwrap().parse().unwrap()
}

/// Time passes: every delivery waiting for its backoff is due now.
async fn retries_are_due(app: &TestApp) {
    use surclass::store::entities::{job, outbox};
    let past = chrono::Utc::now() - chrono::Duration::seconds(1);
    job::Entity::update_many()
        .col_expr(job::Column::RunAt, Expr::value(past))
        .filter(job::Column::Kind.is_in(["deliver", "deliver_many"]))
        .filter(job::Column::Status.eq("pending"))
        .exec(&app.db)
        .await
        .unwrap();
    outbox::Entity::update_many()
        .col_expr(outbox::Column::NextAttemptAt, Expr::value(past))
        .filter(outbox::Column::Status.eq("pending"))
        .exec(&app.db)
        .await
        .unwrap();
}

async fn a_bid_is_confirmed_by_email_in_the_bookings_language(store: Store) {
    let Some(app) = spawn_app_with(store, |_| {}).await else {
        return;
    };
    let op = app.operator("aurora").await;
    let lot = app.open_lot(&op, json!({})).await;
    import(&app, &op, "FR0001", "claire@example.fr", "fr", &[&lot]).await;
    let token = app.sign_in("FR0001", "Lefèvre").await;
    app.bid(&token, &lot, "150.00", GOOD).await.expect(201);
    app.run_jobs().await;

    let items = messages(&app, &op, "?channel=email").await;
    let placed = of_topic(&items, "bid.placed");
    assert_eq!(placed.len(), 1, "{items:#?}");
    let m = placed[0];
    assert_eq!(m["status"], "sent");
    assert_eq!(m["to"], "claire@example.fr");
    assert!(
        m["subject"].as_str().unwrap().starts_with("Offre reçue"),
        "{m}"
    );
    let body = m["body"].as_str().unwrap();
    assert!(body.contains("150,00\u{a0}€ par personne"), "{body}");
    assert!(body.contains(&format!("{}/s/", app.address)), "{body}");
    assert!(body.contains("support@aurora.example"), "{body}");
    // The bid is there, and bidding closes within 6 hours: the reminder came too.
    assert_eq!(of_topic(&items, "bid.reminder").len(), 1);
}

/// Whatever ended the offer (the award, the operator's cancel, a withdrawal from sale), a
/// French booking reads why in French; the operator's own words stay as they wrote them.
async fn a_french_booking_is_told_why_in_french(store: Store) {
    let Some(app) = spawn_app_with(store, |_| {}).await else {
        return;
    };
    let op = app.operator("aurora").await;
    let lot = app.open_lot(&op, json!({"capacity": 2})).await;
    import(&app, &op, "FR0001", "claire@example.fr", "fr", &[&lot]).await;
    import(&app, &op, "FR0002", "remi@example.fr", "fr", &[&lot]).await;
    let claire = app.sign_in("FR0001", "Lefèvre").await;
    let remi = app.sign_in("FR0002", "Lefèvre").await;
    app.bid(&claire, &lot, "300.00", GOOD).await.expect(201);
    app.bid(&remi, &lot, "150.00", GOOD).await.expect(201);
    app.close_now(&lot).await;
    app.run_jobs().await;
    // Claire won and paid; the operator then cancels ("Flight cancelled") and refunds her.
    app.cancel_lot(&op, &lot).await;
    app.run_jobs().await;

    let withdrawn = app
        .open_lot(&op, json!({"resource": "AU303", "capacity": 2}))
        .await;
    import(&app, &op, "FR0003", "lea@example.fr", "fr", &[&withdrawn]).await;
    let lea = app.sign_in("FR0003", "Lefèvre").await;
    app.bid(&lea, &withdrawn, "200.00", GOOD).await.expect(201);
    app.post(&format!("/v1/lots/{withdrawn}/capacity"))
        .key(&op.key)
        .json(&json!({"capacity": 0}))
        .send()
        .await
        .expect(200);
    // Her bank refuses the winner's payment at the deadline (a uniform price: the minimum).
    let declined = app
        .open_lot(
            &op,
            json!({"resource": "AU404", "capacity": 2, "award_policy": "uniform_price"}),
        )
        .await;
    import(&app, &op, "FR0004", "ines@example.fr", "fr", &[&declined]).await;
    let ines = app.sign_in("FR0004", "Lefèvre").await;
    let ines_bid = app
        .bid(&ines, &declined, "250.00", "4000 0000 0000 0341")
        .await
        .expect(201)
        .body["id"]
        .as_str()
        .unwrap()
        .to_owned();
    app.close_now(&declined).await;
    app.run_jobs().await;
    // Until when she may give another card, at the lot's time (Paris), with its day.
    let until: chrono::DateTime<chrono::Utc> = app
        .read(&format!("/v1/traveller/bids/{ines_bid}"))
        .key(&ines)
        .send()
        .await
        .expect(200)
        .body["links"]["fix_card_until"]
        .as_str()
        .expect("a grace period by default")
        .parse()
        .unwrap();
    let paris = until.with_timezone(&chrono_tz::Europe::Paris);
    let kept_until = format!(
        " {} à {} : donnez une autre carte pour le conserver.",
        paris.format("%Y"),
        paris.format("%H:%M %Z")
    );

    let items = messages(&app, &op, "?channel=email").await;
    let body = |topic: &str, to: &str| {
        let found: Vec<_> = of_topic(&items, topic)
            .into_iter()
            .filter(|m| m["to"] == to)
            .collect();
        assert_eq!(found.len(), 1, "{topic} to {to}: {items:#?}");
        found[0]["body"].as_str().unwrap().to_owned()
    };
    let lost = body("bid.lost", "remi@example.fr");
    assert!(
        lost.contains("D'autres offres étaient plus élevées pour les places disponibles.")
            && !lost.contains("Other offers"),
        "{lost}"
    );
    let refunded = body("bid.refunded", "claire@example.fr");
    assert!(
        refunded.contains("L'opérateur a annulé ce surclassement : Flight cancelled")
            && refunded.contains("Nous vous remboursons 600,00\u{a0}€")
            && !refunded.contains("The operator")
            && !refunded.contains("refunded to your card"),
        "{refunded}"
    );
    let cancelled = body("bid.cancelled", "lea@example.fr");
    assert!(
        cancelled.contains("L'opérateur a retiré ce surclassement de la vente.")
            && !cancelled.contains("withdrew"),
        "{cancelled}"
    );
    let failed = body("bid.payment_failed", "ines@example.fr");
    assert!(
        failed.contains(
            "Votre carte a été refusée. Utilisez une autre carte ou contactez votre banque."
        ) && failed.contains("le paiement de 200,00\u{a0}€ a échoué")
            && failed.contains("Votre surclassement vous est gardé jusqu'au ")
            && failed.contains(&kept_until)
            && !failed.contains("(UTC)")
            && !failed.contains("Your card")
            && !failed.contains("Your upgrade"),
        "{failed}"
    );
}

async fn a_change_that_is_refused_sends_nothing(store: Store) {
    let Some(app) = spawn_app_with(store, |_| {}).await else {
        return;
    };
    let op = app.operator("aurora").await;
    let lot = app.open_lot(&op, json!({})).await;
    import(&app, &op, "NOPE01", "nope@example.com", "en", &[&lot]).await;
    let token = app.sign_in("NOPE01", "Lefèvre").await;
    app.bid(&token, &lot, "150.00", DECLINED_AT_BID)
        .await
        .expect(402);
    app.bid(&token, &lot, "5.00", GOOD).await.expect(422);
    app.run_jobs().await;
    assert!(messages(&app, &op, "").await.is_empty());
    // A change refused inside its transaction (bidding closed) writes no message either.
    let bid = app.bid(&token, &lot, "150.00", GOOD).await.expect(201).body["id"]
        .as_str()
        .unwrap()
        .to_owned();
    app.close_now(&lot).await;
    app.patch(&format!("/v1/traveller/bids/{bid}"))
        .key(&token)
        .json(&json!({"amount": "200.00"}))
        .send()
        .await
        .expect(409);
    app.delete(&format!("/v1/traveller/bids/{bid}"))
        .key(&token)
        .send()
        .await
        .expect(409);
    // A transaction that wrote a message and then rolled back leaves neither message nor job.
    let txn = surclass::store::write_txn(&app.db).await.unwrap();
    surclass::notifications::outbox::enqueue(
        &txn,
        &bid,
        surclass::notifications::Topic::Refunded,
        None,
        chrono::Utc::now(),
    )
    .await
    .unwrap();
    txn.rollback().await.unwrap();
    app.run_jobs().await;
    let items = messages(&app, &op, "").await;
    assert_eq!(of_topic(&items, "bid.placed").len(), 1);
    assert!(
        of_topic(&items, "bid.changed").is_empty() && of_topic(&items, "bid.withdrawn").is_empty()
    );
    assert!(of_topic(&items, "bid.refunded").is_empty());
}

/// How the mail server answers a recipient.
#[derive(Clone, Copy)]
#[repr(u8)]
enum Answer {
    /// 250: taken, and kept in `received`.
    Accept,
    /// 451: try again later.
    Refuse,
    /// 550: no such user, for good.
    Reject,
}

/// A minimal SMTP server for the failure path: answers each recipient as it is told to;
/// while `slow` is set, it greets half a second late, so that sends in flight overlap; while
/// `gated`, it says a connection came (`connected`) and greets once `go` has a permit.
struct FlakySmtp {
    port: u16,
    answer: Arc<AtomicU8>,
    slow: Arc<AtomicBool>,
    gated: Arc<AtomicBool>,
    connected: Arc<tokio::sync::Notify>,
    go: Arc<tokio::sync::Semaphore>,
    received: Arc<Mutex<Vec<String>>>,
}

impl FlakySmtp {
    fn answer(&self, answer: Answer) {
        self.answer.store(answer as u8, Ordering::SeqCst);
    }

    /// The messages it took, whole, in the order they came.
    fn received(&self) -> Vec<String> {
        self.received.lock().unwrap().clone()
    }
}

async fn flaky_smtp(answer: Answer) -> FlakySmtp {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let smtp = FlakySmtp {
        port,
        answer: Arc::new(AtomicU8::new(answer as u8)),
        slow: Arc::new(AtomicBool::new(false)),
        gated: Arc::new(AtomicBool::new(false)),
        connected: Arc::new(tokio::sync::Notify::new()),
        go: Arc::new(tokio::sync::Semaphore::new(0)),
        received: Arc::new(Mutex::new(Vec::new())),
    };
    let (answer, slow, got) = (
        smtp.answer.clone(),
        smtp.slow.clone(),
        smtp.received.clone(),
    );
    let (gated, connected, go) = (smtp.gated.clone(), smtp.connected.clone(), smtp.go.clone());
    tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                return;
            };
            let (answer, slow, got) = (answer.clone(), slow.clone(), got.clone());
            let (gated, connected, go) = (gated.clone(), connected.clone(), go.clone());
            tokio::spawn(async move {
                let (read, mut write) = stream.into_split();
                let mut lines = BufReader::new(read);
                if slow.load(Ordering::SeqCst) {
                    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
                }
                if gated.load(Ordering::SeqCst) {
                    connected.notify_one();
                    go.acquire().await.unwrap().forget();
                }
                let _ = write.write_all(b"220 flaky ESMTP\r\n").await;
                let mut line = String::new();
                loop {
                    line.clear();
                    if lines.read_line(&mut line).await.unwrap_or(0) == 0 {
                        return;
                    }
                    let verb = line.get(..4).unwrap_or_default().to_ascii_uppercase();
                    let reply: &[u8] = match verb.as_str() {
                        "EHLO" | "HELO" => b"250 flaky\r\n",
                        "RCPT" if answer.load(Ordering::SeqCst) == Answer::Reject as u8 => {
                            b"550 5.1.1 no such user\r\n"
                        }
                        "RCPT" if answer.load(Ordering::SeqCst) == Answer::Refuse as u8 => {
                            b"451 4.3.0 try again later\r\n"
                        }
                        "DATA" => {
                            let _ = write.write_all(b"354 go on\r\n").await;
                            let mut message = String::new();
                            loop {
                                line.clear();
                                if lines.read_line(&mut line).await.unwrap_or(0) == 0 {
                                    return;
                                }
                                if line == ".\r\n" {
                                    break;
                                }
                                message.push_str(&line);
                            }
                            got.lock().unwrap().push(message);
                            b"250 2.0.0 queued\r\n"
                        }
                        "QUIT" => {
                            let _ = write.write_all(b"221 bye\r\n").await;
                            return;
                        }
                        _ => b"250 OK\r\n",
                    };
                    if write.write_all(reply).await.is_err() {
                        return;
                    }
                }
            });
        }
    });
    smtp
}

/// A server that sends its email through `smtp`, set up further by `tweak`.
async fn app_mailing_through(
    store: Store,
    smtp: &FlakySmtp,
    tweak: impl FnOnce(&mut Settings),
) -> Option<TestApp> {
    let url = format!("smtp://127.0.0.1:{}", smtp.port);
    spawn_app_with(store, |s| {
        s.notify.smtp_url = Some(url);
        tweak(s);
    })
    .await
}

/// The traveller of a new booking `reference` (English, email `<reference>@example.com` in
/// lower case) signs in and bids `amount` a person on `lot` with a good card; returns the
/// bid's id.
async fn a_traveller_bids(
    app: &TestApp,
    op: &Operator,
    reference: &str,
    lot: &str,
    amount: &str,
) -> String {
    let email = format!("{}@example.com", reference.to_lowercase());
    import(app, op, reference, &email, "en", &[lot]).await;
    let token = app.sign_in(reference, "Lefèvre").await;
    app.bid(&token, lot, amount, GOOD).await.expect(201).body["id"]
        .as_str()
        .unwrap()
        .to_owned()
}

async fn a_message_that_keeps_failing_is_parked_and_a_retry_sends_it_once(store: Store) {
    let smtp = flaky_smtp(Answer::Refuse).await;
    let Some(app) = app_mailing_through(store, &smtp, |s| {
        s.notify.email_max_attempts = 3;
        s.notify.reminder_hours = 1;
    })
    .await
    else {
        return;
    };
    let op = app.operator("aurora").await;
    let lot = app.open_lot(&op, json!({})).await;
    a_traveller_bids(&app, &op, "FAIL01", &lot, "150.00").await;
    app.run_jobs().await;
    let first = messages(&app, &op, "").await;
    assert_eq!(first.len(), 1, "{first:#?}");
    assert_eq!(first[0]["status"], "pending");
    assert_eq!(first[0]["attempts"], 1);
    assert!(
        first[0]["last_error"].as_str().unwrap().contains("451"),
        "{}",
        first[0]
    );
    // What the attempt tried to send is shown with why it failed.
    assert_eq!(first[0]["to"], "fail01@example.com", "{}", first[0]);
    assert!(first[0]["subject"].as_str().is_some_and(|s| !s.is_empty()));
    for _ in 0..2 {
        retries_are_due(&app).await;
        app.run_jobs().await;
    }
    let parked = messages(&app, &op, "?status=parked").await;
    assert_eq!(parked.len(), 1);
    assert_eq!(parked[0]["attempts"], 3);
    let next: chrono::DateTime<chrono::Utc> =
        serde_json::from_value(parked[0]["next_attempt_at"].clone()).unwrap();
    assert!(
        next <= chrono::Utc::now(),
        "a parked message waits for no attempt: {}",
        parked[0]
    );
    assert!(smtp.received().is_empty());

    // The server is fixed; the operator retries: it is sent, once.
    smtp.answer(Answer::Accept);
    let id = parked[0]["id"].as_i64().unwrap();
    retry(&app, &op.key, id).await.expect(202);
    app.run_jobs().await;
    retries_are_due(&app).await;
    app.run_jobs().await;
    let received = smtp.received();
    assert_eq!(received.len(), 1);
    let message_id = parked[0]["message_id"].as_str().unwrap();
    assert!(
        received[0].contains(&format!("Message-ID: {message_id}")),
        "{}",
        received[0]
    );
    let now = messages(&app, &op, "").await;
    assert_eq!(now[0]["status"], "sent");
    // A sent message is not retried.
    retry(&app, &op.key, id).await.expect(409);
    // Another operator sees none of it.
    let other = app.operator("other").await;
    assert!(messages(&app, &other, "").await.is_empty());
    retry(&app, &other.key, id).await.expect(404);
}

/// A mail server that rejects the address for good (550): trying again would not help, so
/// the message is parked after that one attempt, showing what was sent and why it failed.
async fn an_address_the_mail_server_rejects_is_parked_at_once_showing_what_was_sent(store: Store) {
    let smtp = flaky_smtp(Answer::Reject).await;
    let Some(app) = app_mailing_through(store, &smtp, |_| {}).await else {
        return;
    };
    let op = app.operator("aurora").await;
    let lot = app.open_lot(&op, json!({})).await;
    a_traveller_bids(&app, &op, "GONE01", &lot, "150.00").await;
    app.run_jobs().await;
    retries_are_due(&app).await;
    app.run_jobs().await;

    let items = messages(&app, &op, "").await;
    let confirmation = of_topic(&items, "bid.placed");
    assert_eq!(confirmation.len(), 1, "{items:#?}");
    let m = confirmation[0];
    assert_eq!(m["status"], "parked", "{m}");
    assert_eq!(m["attempts"], 1, "{m}");
    assert!(m["last_error"].as_str().unwrap().contains("550"), "{m}");
    assert_eq!(m["to"], "gone01@example.com", "{m}");
    assert!(m["subject"].as_str().is_some_and(|s| !s.is_empty()), "{m}");
    assert!(smtp.received().is_empty());
}

/// A batch's job and an operator's retry can name the same message; both runs may be in
/// flight together. The message goes out once.
async fn a_message_two_delivery_jobs_name_at_once_goes_out_once(store: Store) {
    use surclass::jobs::{self, Job};
    let smtp = flaky_smtp(Answer::Accept).await;
    smtp.slow.store(true, Ordering::SeqCst);
    let Some(app) = app_mailing_through(store, &smtp, |_| {}).await else {
        return;
    };
    let op = app.operator("aurora").await;
    let lot = app.open_lot(&op, json!({})).await;
    a_traveller_bids(&app, &op, "TWICE1", &lot, "150.00").await;
    let message = messages(&app, &op, "").await[0].clone();
    let id = message["id"].as_i64().unwrap();
    let message_id = format!("Message-ID: {}", message["message_id"].as_str().unwrap());
    for job in [
        Job::Deliver { outbox_id: id },
        Job::DeliverMany {
            outbox_ids: vec![id, id],
        },
    ] {
        jobs::enqueue(&app.db, job, chrono::Utc::now())
            .await
            .unwrap();
    }
    // Three runs at once, as on three processes.
    tokio::join!(app.run_jobs(), app.run_jobs(), app.run_jobs());
    let received = smtp.received();
    let copies = received.iter().filter(|m| m.contains(&message_id)).count();
    assert_eq!(copies, 1, "{received:#?}");
    let sent = messages(&app, &op, "").await;
    let sent = sent.iter().find(|m| m["id"] == id).unwrap();
    assert_eq!(sent["status"], "sent", "{sent:#?}");
    assert_eq!(sent["attempts"], 1);
}

/// Messages written in one transaction (as a lot's close writes one per bid) share one
/// delivery job; a message that fails is retried on its own backoff.
async fn the_messages_of_one_transaction_share_a_delivery_job_and_each_keeps_its_own_retries(
    store: Store,
) {
    use surclass::notifications::{Topic, outbox};
    use surclass::store::entities::{bid, job, lot};
    let smtp = flaky_smtp(Answer::Accept).await;
    let Some(app) = app_mailing_through(store, &smtp, |_| {}).await else {
        return;
    };
    let op = app.operator("aurora").await;
    let lot_id = app.open_lot(&op, json!({})).await;
    for (reference, amount) in [
        ("SHARE0", "150.00"),
        ("SHARE1", "160.00"),
        ("SHARE2", "170.00"),
    ] {
        a_traveller_bids(&app, &op, reference, &lot_id, amount).await;
    }
    app.run_jobs().await;

    // Three more in one transaction, while the receiver refuses for now.
    smtp.answer(Answer::Refuse);
    let lot = lot::Entity::find_by_id(lot_id.clone())
        .one(&app.db)
        .await
        .unwrap()
        .unwrap();
    let bids = bid::Entity::find()
        .filter(bid::Column::LotId.eq(lot_id.clone()))
        .all(&app.db)
        .await
        .unwrap();
    let pairs: Vec<(&bid::Model, &lot::Model)> = bids.iter().map(|b| (b, &lot)).collect();
    outbox::enqueue_many(
        &app.db,
        &pairs,
        &[],
        Topic::BidPlaced,
        None,
        chrono::Utc::now(),
    )
    .await
    .unwrap();
    let batch = job::Entity::find()
        .filter(job::Column::Kind.eq("deliver_many"))
        .all(&app.db)
        .await
        .unwrap();
    assert_eq!(batch.len(), 1, "one job for the three: {batch:#?}");
    let payload: Value = serde_json::from_str(&batch[0].payload).unwrap();
    app.run_jobs().await;
    let waiting = messages(&app, &op, "?status=pending").await;
    assert_eq!(waiting.len(), 3, "{waiting:#?}");
    for m in &waiting {
        assert_eq!(m["attempts"], 1, "{m}");
        assert!(m["last_error"].as_str().unwrap().contains("451"), "{m}");
        assert!(
            payload["outbox_ids"].as_array().unwrap().contains(&m["id"]),
            "{m} in {payload}"
        );
    }
    let job = job::Entity::find_by_id(batch[0].id);
    assert_eq!(
        job.clone().one(&app.db).await.unwrap().unwrap().status,
        "pending"
    );

    // The receiver is back: each goes out once, and the job is done.
    smtp.answer(Answer::Accept);
    retries_are_due(&app).await;
    app.run_jobs().await;
    let received = smtp.received();
    for m in &waiting {
        let message_id = format!("Message-ID: {}", m["message_id"].as_str().unwrap());
        let copies = received.iter().filter(|r| r.contains(&message_id)).count();
        assert_eq!(copies, 1, "{m}");
    }
    assert!(messages(&app, &op, "?status=pending").await.is_empty());
    assert_eq!(
        job.one(&app.db).await.unwrap().unwrap().status,
        surclass::jobs::queue::DONE
    );
}

/// Verifies a delivery exactly as openapi.yaml tells receivers to.
fn verify_as_documented(secret: &str, header: &str, body: &[u8]) -> bool {
    use hmac::{Hmac, Mac};
    let mut t = None;
    let mut signatures = Vec::new();
    for part in header.split(',') {
        match part.split_once('=') {
            Some(("t", v)) => t = v.parse::<i64>().ok(),
            Some(("v1", v)) => signatures.extend(hex::decode(v).ok()),
            _ => {}
        }
    }
    let Some(t) = t else { return false };
    if (chrono::Utc::now().timestamp() - t).abs() > 300 {
        return false;
    }
    signatures.iter().any(|sig| {
        let mut mac = Hmac::<sha2::Sha256>::new_from_slice(secret.as_bytes()).unwrap();
        mac.update(format!("{t}.").as_bytes());
        mac.update(body);
        mac.verify_slice(sig).is_ok()
    })
}

/// What a receiver got: the `Surclass-Signature` and `Surclass-Delivery` headers, the raw body.
type Delivery = (String, String, Vec<u8>);

struct Receiver {
    url: String,
    calls: Arc<AtomicUsize>,
    seen: Arc<Mutex<Vec<Delivery>>>,
}

/// An HTTP receiver that answers 500 to the first `failures` deliveries and 200 after.
async fn receiver(failures: usize) -> Receiver {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hooks", listener.local_addr().unwrap());
    let calls = Arc::new(AtomicUsize::new(0));
    let seen = Arc::new(Mutex::new(Vec::new()));
    let (c, s) = (calls.clone(), seen.clone());
    tokio::spawn(async move {
        loop {
            let Ok((mut stream, _)) = listener.accept().await else {
                return;
            };
            let (c, s) = (c.clone(), s.clone());
            tokio::spawn(async move {
                let mut buf = Vec::new();
                let mut chunk = [0u8; 4096];
                let (head_end, length) = loop {
                    let n = stream.read(&mut chunk).await.unwrap_or(0);
                    if n == 0 {
                        return;
                    }
                    buf.extend_from_slice(&chunk[..n]);
                    if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                        let head = String::from_utf8_lossy(&buf[..i]).to_ascii_lowercase();
                        let length = head
                            .lines()
                            .find_map(|l| {
                                l.strip_prefix("content-length:")
                                    .map(|v| v.trim().parse::<usize>().unwrap_or(0))
                            })
                            .unwrap_or(0);
                        break (i + 4, length);
                    }
                };
                while buf.len() < head_end + length {
                    let n = stream.read(&mut chunk).await.unwrap_or(0);
                    if n == 0 {
                        break;
                    }
                    buf.extend_from_slice(&chunk[..n]);
                }
                let head = String::from_utf8_lossy(&buf[..head_end]).to_string();
                let header = |name: &str| {
                    head.lines()
                        .find_map(|l| {
                            let (k, v) = l.split_once(':')?;
                            k.eq_ignore_ascii_case(name).then(|| v.trim().to_owned())
                        })
                        .unwrap_or_default()
                };
                s.lock().unwrap().push((
                    header("Surclass-Signature"),
                    header("Surclass-Delivery"),
                    buf[head_end..].to_vec(),
                ));
                let n = c.fetch_add(1, Ordering::SeqCst);
                let status = if n < failures {
                    "500 Internal Server Error"
                } else {
                    "200 OK"
                };
                let _ = stream
                    .write_all(
                        format!(
                            "HTTP/1.1 {status}\r\ncontent-length: 0\r\nconnection: close\r\n\r\n"
                        )
                        .as_bytes(),
                    )
                    .await;
            });
        }
    });
    Receiver { url, calls, seen }
}

/// Registers an endpoint at `url` for `bid.placed`; answers its id.
async fn an_endpoint_for_bids_placed(app: &TestApp, key: &str, url: &str) -> String {
    app.post("/v1/webhook-endpoints")
        .key(key)
        .json(&json!({"url": url, "events": ["bid.placed"]}))
        .send()
        .await
        .expect(201)
        .body["id"]
        .as_str()
        .unwrap()
        .to_owned()
}

/// The newest delivery to a webhook endpoint, as its deliveries list shows it.
async fn latest_delivery(app: &TestApp, key: &str, endpoint: &str) -> Value {
    let listed = app
        .read(&format!("/v1/webhook-endpoints/{endpoint}/deliveries"))
        .key(key)
        .send()
        .await
        .expect(200);
    listed.body["items"][0].clone()
}

async fn webhooks_are_signed_retried_after_errors_and_listed_with_attempts(store: Store) {
    let Some(app) = spawn_app_with(store, |_| {}).await else {
        return;
    };
    let op = app.operator("aurora").await;
    let partner = app
        .post("/v1/api-keys")
        .key(&op.key)
        .json(&json!({"name": "Booking engine", "scope": "partner"}))
        .send()
        .await
        .expect(201)
        .body["secret"]
        .as_str()
        .unwrap()
        .to_owned();
    let hook = receiver(2).await;
    // Bad input is named and changes nothing.
    let bad = app
        .post("/v1/webhook-endpoints")
        .key(&partner)
        .json(&json!({"url": "ftp://x", "events": ["bid.nope"]}))
        .send()
        .await
        .expect(422);
    assert_eq!(bad.problem_fields(), vec!["url", "events[0]"]);
    let created = app
        .post("/v1/webhook-endpoints")
        .key(&partner)
        .json(&json!({"url": hook.url, "events": ["bid.placed", "bid.charged"]}))
        .send()
        .await
        .expect(201);
    let endpoint = created.body["id"].as_str().unwrap().to_owned();
    let secret = created.body["secret"].as_str().unwrap().to_owned();
    assert!(secret.starts_with("whsec_"));
    // The secret is shown once.
    let listed = app
        .read("/v1/webhook-endpoints")
        .key(&partner)
        .send()
        .await
        .expect(200);
    assert_eq!(listed.body["items"][0]["id"], endpoint.as_str());
    assert!(listed.body["items"][0].get("secret").is_none());

    let lot = app.open_lot(&op, json!({})).await;
    let bid = a_traveller_bids(&app, &op, "HOOK01", &lot, "150.00").await;
    app.run_jobs().await;
    assert_eq!(hook.calls.load(Ordering::SeqCst), 1);
    for _ in 0..2 {
        retries_are_due(&app).await;
        app.run_jobs().await;
    }
    assert_eq!(hook.calls.load(Ordering::SeqCst), 3);
    let seen = hook.seen.lock().unwrap().clone();
    let first_id = &seen[0].1;
    for (signature, delivery, body) in &seen {
        assert!(
            verify_as_documented(&secret, signature, body),
            "signature {signature}"
        );
        assert!(!verify_as_documented("whsec_other", signature, body));
        assert_eq!(delivery, first_id, "one event id across retries");
        let body: Value = serde_json::from_slice(body).unwrap();
        assert_eq!(body["type"], "bid.placed");
        assert_eq!(body["data"]["bid_id"], bid.as_str());
        assert!(
            body["data"].get("amount").is_none(),
            "sealed: no amounts to partners"
        );
    }
    // Nothing more once delivered.
    retries_are_due(&app).await;
    app.run_jobs().await;
    assert_eq!(hook.calls.load(Ordering::SeqCst), 3);

    let d = &latest_delivery(&app, &op.key, &endpoint).await;
    assert_eq!(d["status"], "sent");
    assert_eq!(d["event"], "bid.placed");
    let codes: Vec<i64> = d["attempts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["status_code"].as_i64().unwrap())
        .collect();
    assert_eq!(codes, vec![500, 500, 200]);

    // Another partner of the same operator sees none of it.
    let other = app
        .post("/v1/api-keys")
        .key(&op.key)
        .json(&json!({"name": "Agency", "scope": "partner"}))
        .send()
        .await
        .expect(201)
        .body["secret"]
        .as_str()
        .unwrap()
        .to_owned();
    app.read(&format!("/v1/webhook-endpoints/{endpoint}"))
        .key(&other)
        .send()
        .await
        .expect(404);
    app.delete(&format!("/v1/webhook-endpoints/{endpoint}"))
        .key(&other)
        .send()
        .await
        .expect(404);
    app.delete(&format!("/v1/webhook-endpoints/{endpoint}"))
        .key(&partner)
        .send()
        .await
        .expect(204);
}

fn unsubscribe_url(body: &str) -> String {
    body.lines()
        .find_map(|l| l.strip_prefix("Stop reminders: "))
        .expect("an unsubscribe link in the reminder")
        .trim()
        .to_owned()
}

async fn one_click_stops_reminders_and_money_messages_still_come(store: Store) {
    let Some(app) = spawn_app_with(store, |_| {}).await else {
        return;
    };
    let op = app.operator("aurora").await;
    let first = app.open_lot(&op, json!({"capacity": 2})).await;
    let second = app
        .open_lot(&op, json!({"resource": "AU202", "closes_at": (chrono::Utc::now() + chrono::Duration::days(2)).to_rfc3339()}))
        .await;
    import(
        &app,
        &op,
        "UNSUB1",
        "quiet@example.com",
        "en",
        &[&first, &second],
    )
    .await;
    let token = app.sign_in("UNSUB1", "Lefèvre").await;
    app.bid(&token, &first, "150.00", GOOD).await.expect(201);
    app.bid(&token, &second, "150.00", GOOD).await.expect(201);
    app.run_jobs().await;
    let items = messages(&app, &op, "").await;
    let reminders = of_topic(&items, "bid.reminder");
    assert_eq!(reminders.len(), 1, "only the lot closing within 6 hours");
    assert!(
        of_topic(&items, "bid.placed")
            .iter()
            .all(|m| !m["body"].as_str().unwrap().contains("Stop reminders"))
    );
    let url = unsubscribe_url(reminders[0]["body"].as_str().unwrap());
    assert!(url.starts_with(&format!("{}/unsubscribe/", app.address)));

    // The page a person sees has a button; a tampered link is refused.
    let page = app.client.get(&url).send().await.unwrap();
    assert_eq!(page.status(), 200);
    assert!(page.text().await.unwrap().contains("<button"));
    let forged = app.client.post(format!("{url}x")).send().await.unwrap();
    assert_eq!(forged.status(), 404);
    // What a mail client sends (RFC 8058), with no session.
    let clicked = app
        .client
        .post(&url)
        .header("Content-Type", "application/x-www-form-urlencoded")
        .body("List-Unsubscribe=One-Click")
        .send()
        .await
        .unwrap();
    assert_eq!(clicked.status(), 200);
    let prefs = app
        .read("/v1/traveller/notifications")
        .key(&token)
        .send()
        .await
        .expect(200);
    assert_eq!(prefs.body["reminders"], false);

    // The second lot now closes within the lead time: no reminder is written for it.
    surclass::store::entities::lot::Entity::update_many()
        .col_expr(
            surclass::store::entities::lot::Column::ClosesAt,
            Expr::value(chrono::Utc::now() + chrono::Duration::hours(2)),
        )
        .filter(surclass::store::entities::lot::Column::Id.eq(&second))
        .exec(&app.db)
        .await
        .unwrap();
    app.run_jobs().await;
    assert_eq!(
        of_topic(&messages(&app, &op, "").await, "bid.reminder").len(),
        1
    );

    // Someone else offers less for the same two seats.
    import(&app, &op, "LOSER1", "loser@example.com", "en", &[&first]).await;
    let other = app.sign_in("LOSER1", "Lefèvre").await;
    app.bid(&other, &first, "120.00", GOOD).await.expect(201);

    // The money outcome still comes.
    app.close_now(&first).await;
    app.run_jobs().await;
    let items = messages(&app, &op, "").await;
    let confirmed = of_topic(&items, "bid.charged");
    assert_eq!(confirmed.len(), 1, "{items:#?}");
    assert_eq!(confirmed[0]["status"], "sent");
    assert!(
        confirmed[0]["body"]
            .as_str()
            .unwrap()
            .contains("Amount charged: 300.00 EUR")
    );
    let lost = of_topic(&items, "bid.lost");
    assert_eq!(lost.len(), 1, "{items:#?}");
    assert_eq!(lost[0]["to"], "loser@example.com");
    let body = lost[0]["body"].as_str().unwrap();
    assert!(
        body.contains("Other offers were higher") && body.contains("nothing is charged"),
        "{body}"
    );
}

async fn erasure_removes_personal_data_and_keeps_the_money_records(store: Store) {
    use surclass::store::entities::{bid, lot as lot_entity};
    let Some(app) = spawn_app_with(store, |_| {}).await else {
        return;
    };
    let op = app.operator("aurora").await;
    let travel_day = (chrono::Utc::now() + chrono::Duration::days(30)).date_naive();
    let lot = app
        .open_lot(&op, json!({"service_date": travel_day.to_string()}))
        .await;
    let saved = app
        .open_lot(
            &op,
            json!({"resource": "AU202", "payment_mode": "charge_on_award"}),
        )
        .await;
    let hook = receiver(0).await;
    an_endpoint_for_bids_placed(&app, &op.key, &hook.url).await;
    import(
        &app,
        &op,
        "ERASE1",
        "forget.me@example.com",
        "en",
        &[&lot, &saved],
    )
    .await;
    let token = app.sign_in("ERASE1", "Lefèvre").await;
    app.bid(&token, &lot, "150.00", GOOD).await.expect(201);
    let on_saved_card = app
        .post("/v1/traveller/bids")
        .key(&token)
        .json(
            &json!({"lot_id": saved, "amount": "150.00", "consent_to_charge": true,
            "card": {"number": GOOD, "exp_month": 12, "exp_year": 2030, "cvc": "123"}}),
        )
        .send()
        .await
        .expect(201);
    let on_saved_card = on_saved_card.body["id"].as_str().unwrap().to_owned();
    app.delete(&format!("/v1/traveller/bids/{on_saved_card}"))
        .key(&token)
        .send()
        .await
        .expect(200);
    app.run_jobs().await;
    // Not while money may still move.
    let refused = app
        .post("/v1/traveller/erasure")
        .key(&token)
        .send()
        .await
        .expect(409);
    assert_eq!(refused.problem_type(), "erasure-money-in-flight");
    app.close_now(&lot).await;
    app.run_jobs().await;
    // A paid upgrade still ahead may yet be cancelled and refunded, and the traveller told:
    // not until its travel day has passed.
    let ahead = app
        .post("/v1/traveller/erasure")
        .key(&token)
        .send()
        .await
        .expect(409);
    assert_eq!(ahead.problem_type(), "erasure-upgrade-ahead");
    assert!(
        ahead.body["detail"]
            .as_str()
            .unwrap()
            .contains(&travel_day.to_string()),
        "{:#}",
        ahead.body
    );
    // The journey is made.
    lot_entity::Entity::update_many()
        .col_expr(
            lot_entity::Column::ServiceDate,
            Expr::value(chrono::Utc::now().date_naive() - chrono::Duration::days(1)),
        )
        .filter(lot_entity::Column::Id.eq(&lot))
        .exec(&app.db)
        .await
        .unwrap();

    let before = app
        .read("/v1/traveller/data")
        .key(&token)
        .send()
        .await
        .expect(200)
        .body;
    assert_eq!(before["booking"]["email"], "forget.me@example.com");
    assert_eq!(before["booking"]["last_name"], "Lefèvre");
    let upgrade = |data: &Value| {
        data["bids"]
            .as_array()
            .unwrap()
            .iter()
            .find(|b| b["lot_id"] == lot.as_str())
            .cloned()
            .unwrap()
    };
    assert_eq!(upgrade(&before)["status"], "charged");
    // The card saved for the other offer, as the traveller knows it, and the partner told.
    let card_bid = |data: &Value| {
        data["bids"]
            .as_array()
            .unwrap()
            .iter()
            .find(|b| b["lot_id"] == saved.as_str())
            .cloned()
            .unwrap()
    };
    assert_eq!(card_bid(&before)["saved_card"]["last4"], "4242");
    // The partner's site, not its address: a path or query may hold the receiver's secret.
    let site = url::Url::parse(&hook.url)
        .unwrap()
        .origin()
        .ascii_serialization();
    assert_ne!(site, hook.url);
    let told = before["partner_notices"].as_array().unwrap();
    assert!(
        told.len() == 2
            && told
                .iter()
                .all(|n| n["topic"] == "bid.placed" && n["to"] == site.as_str()),
        "{told:#?}"
    );
    assert!(
        before["messages"]
            .as_array()
            .unwrap()
            .iter()
            .any(|m| m["to"] == "forget.me@example.com")
    );

    let erased = app
        .post("/v1/traveller/erasure")
        .key(&token)
        .send()
        .await
        .expect(200);
    assert!(erased.body["erased_at"].is_string());
    // The session and the old pair open nothing any more.
    app.read("/v1/traveller/data")
        .key(&token)
        .send()
        .await
        .expect(401);
    app.post("/v1/traveller/sessions")
        .json(&json!({"reference": "ERASE1", "last_name": "Lefèvre"}))
        .send()
        .await
        .expect(401);

    let after = app
        .read("/v1/bookings/ERASE1/data")
        .key(&op.key)
        .send()
        .await
        .expect(200)
        .body;
    let text = after.to_string();
    for personal in ["forget.me@example.com", "Lefèvre", "+33612345678"] {
        assert!(!text.contains(personal), "{personal} still in {after:#}");
    }
    assert_eq!(after["booking"]["email"], Value::Null);
    let card = bid::Entity::find_by_id(on_saved_card)
        .one(&app.db)
        .await
        .unwrap()
        .unwrap()
        .saved_card;
    assert_eq!(
        card.as_deref(),
        Some(surclass::services::data_rights::ERASED_CARD),
        "nothing of the saved card"
    );
    assert_eq!(card_bid(&after)["saved_card"], Value::Null);
    // The money records stay and still match the payment provider.
    assert_eq!(upgrade(&after)["status"], "charged");
    assert_eq!(upgrade(&after)["payments"], upgrade(&before)["payments"]);
    let findings = surclass::services::reconcile::check(&app.db, app.gateway.as_ref())
        .await
        .unwrap();
    assert!(findings.is_empty(), "{findings:?}");
    // The operator's nightly import does not bring the data back.
    import(&app, &op, "ERASE1", "forget.me@example.com", "en", &[&lot]).await;
    let again = app
        .read("/v1/bookings/ERASE1/data")
        .key(&op.key)
        .send()
        .await
        .expect(200)
        .body;
    assert_eq!(again["booking"]["email"], Value::Null);
    // Erasing again changes nothing; another operator cannot reach it.
    app.post("/v1/bookings/ERASE1/erasure")
        .key(&op.key)
        .send()
        .await
        .expect(200);
    // The log says it was done, once, at the traveller's request, naming no one.
    let logged = erasures_logged(&app).await;
    assert_eq!(logged.len(), 1, "{logged:#?}");
    assert_eq!(
        (logged[0].actor.as_str(), logged[0].subject.as_str()),
        ("traveller", after["booking"]["id"].as_str().unwrap())
    );
    let other = app.operator("other").await;
    app.read("/v1/bookings/ERASE1/data")
        .key(&other.key)
        .send()
        .await
        .expect(404);
}

/// The traveller erases their data while an email to them is on its way: it still goes (it
/// was in flight), and what it said is not written back.
async fn an_email_in_flight_when_its_booking_is_erased_keeps_no_copy(store: Store) {
    let smtp = flaky_smtp(Answer::Accept).await;
    let Some(app) = app_mailing_through(store, &smtp, |_| {}).await else {
        return;
    };
    let op = app.operator("aurora").await;
    let lot = app.open_lot(&op, json!({})).await;
    let bid = a_traveller_bids(&app, &op, "INFLIGHT", &lot, "150.00").await;
    app.run_jobs().await;
    let token = app.sign_in("INFLIGHT", "Lefèvre").await;
    app.delete(&format!("/v1/traveller/bids/{bid}"))
        .key(&token)
        .send()
        .await
        .expect(200);
    // The mail server answers only once the erasure has landed.
    smtp.gated.store(true, Ordering::SeqCst);
    let erase = async {
        let waiting = smtp.connected.notified();
        tokio::time::timeout(std::time::Duration::from_secs(10), waiting)
            .await
            .expect("the email is being sent");
        app.post("/v1/traveller/erasure")
            .key(&token)
            .send()
            .await
            .expect(200);
        smtp.gated.store(false, Ordering::SeqCst);
        smtp.go.add_permits(100);
    };
    tokio::join!(app.run_jobs(), erase);
    let kept = surclass::store::entities::outbox::Entity::find()
        .filter(surclass::store::entities::outbox::Column::Channel.eq("email"))
        .all(&app.db)
        .await
        .unwrap();
    assert!(kept.iter().any(|m| m.topic == "bid.withdrawn"), "{kept:#?}");
    assert_eq!(smtp.received().len(), kept.len(), "each email went");
    for m in kept {
        assert!(
            m.status == "sent" && m.recipient.is_none() && m.subject.is_none() && m.body.is_none(),
            "{m:#?}"
        );
    }
}

/// The audit log's erasures.
async fn erasures_logged(app: &TestApp) -> Vec<surclass::store::entities::audit_entry::Model> {
    use surclass::store::entities::audit_entry;
    audit_entry::Entity::find()
        .filter(audit_entry::Column::Action.eq("booking.erased"))
        .all(&app.db)
        .await
        .unwrap()
}

async fn personal_data_past_the_retention_period_is_purged(store: Store) {
    let Some(app) = spawn_app_with(store, |_| {}).await else {
        return;
    };
    let op = app.operator("aurora").await;
    let bad = app
        .call(reqwest::Method::PUT, "/v1/privacy/retention")
        .key(&op.key)
        .json(&json!({"retention_days": 0}))
        .send()
        .await
        .expect(422);
    assert_eq!(bad.problem_fields(), vec!["retention_days"]);
    app.call(reqwest::Method::PUT, "/v1/privacy/retention")
        .key(&op.key)
        .json(&json!({"retention_days": 30}))
        .send()
        .await
        .expect(200);
    assert_eq!(
        app.read("/v1/privacy/retention")
            .key(&op.key)
            .send()
            .await
            .expect(200)
            .body["retention_days"],
        30
    );
    // Travelled well before the retention period ends (a charged upgrade's booking is kept
    // until its travel day).
    let travelled = (chrono::Utc::now() + chrono::Duration::days(10)).date_naive();
    let settled = app.open_lot(&op, json!({"service_date": travelled})).await;
    let open = app.open_lot(&op, json!({"resource": "AU303"})).await;
    import(&app, &op, "OLD001", "old@example.com", "en", &[&settled]).await;
    import(&app, &op, "NEW001", "new@example.com", "en", &[&open]).await;
    // Sent over by a nightly sync, eligible for no upgrade yet: its lot may come later.
    import(&app, &op, "NOLOT1", "nolot@example.com", "en", &[]).await;
    let token = app.sign_in("OLD001", "Lefèvre").await;
    app.bid(&token, &settled, "150.00", GOOD).await.expect(201);
    app.close_now(&settled).await;
    app.run_jobs().await;
    assert_eq!(
        surclass::store::entities::lot::Entity::find_by_id(settled.clone())
            .one(&app.db)
            .await
            .unwrap()
            .unwrap()
            .status,
        "settled"
    );

    let not_yet = chrono::Utc::now() + chrono::Duration::days(29);
    let purged = surclass::services::data_rights::purge_expired(&app.db, not_yet)
        .await
        .unwrap();
    assert_eq!(purged, 0, "nothing before its time");
    // 31 days later.
    let later = chrono::Utc::now() + chrono::Duration::days(31);
    let purged = surclass::services::data_rights::purge_expired(&app.db, later)
        .await
        .unwrap();
    assert_eq!(purged, 1);
    let logged = erasures_logged(&app).await;
    assert!(
        logged.len() == 1 && logged[0].actor == "system:retention",
        "{logged:#?}"
    );
    let old = app
        .read("/v1/bookings/OLD001/data")
        .key(&op.key)
        .send()
        .await
        .expect(200)
        .body;
    assert_eq!(old["booking"]["email"], Value::Null);
    assert!(old["booking"]["erased_at"].is_string());
    let new = app
        .read("/v1/bookings/NEW001/data")
        .key(&op.key)
        .send()
        .await
        .expect(200)
        .body;
    assert_eq!(new["booking"]["email"], "new@example.com");
    let not_yet_eligible = app
        .read("/v1/bookings/NOLOT1/data")
        .key(&op.key)
        .send()
        .await
        .expect(200)
        .body;
    assert_eq!(not_yet_eligible["booking"]["email"], "nolot@example.com");
}

/// The SMTP sink started by `.ci/run` (aiosmtpd), or `None` with a notice (a failure in CI).
fn smtp_sink() -> Option<(String, std::path::PathBuf)> {
    match (
        std::env::var("SURCLASS_TEST_SMTP"),
        std::env::var("SURCLASS_TEST_SMTP_DIR"),
    ) {
        (Ok(addr), Ok(dir)) if !addr.is_empty() && !dir.is_empty() => Some((addr, dir.into())),
        _ if std::env::var("CI").is_ok_and(|v| v == "true") => {
            panic!(
                "CI=true but SURCLASS_TEST_SMTP/SURCLASS_TEST_SMTP_DIR are not set: the SMTP tests are mandatory in CI"
            )
        }
        _ => {
            use std::io::Write;
            let _ = writeln!(
                std::io::stderr(),
                "skipped: SMTP test (start tests/support/smtp/sink.py as .ci/run does and set SURCLASS_TEST_SMTP and SURCLASS_TEST_SMTP_DIR)"
            );
            None
        }
    }
}

/// The messages the sink stored for `recipient`, as raw RFC 5322 text.
fn received_by(dir: &std::path::Path, recipient: &str) -> Vec<String> {
    let Ok(entries) = std::fs::read_dir(dir.join(recipient)) else {
        return Vec::new();
    };
    let mut files: Vec<_> = entries.flatten().map(|e| e.path()).collect();
    files.sort();
    files
        .into_iter()
        .map(|p| std::fs::read_to_string(p).unwrap())
        .collect()
}

fn header<'a>(raw: &'a str, name: &str) -> Option<&'a str> {
    raw.split("\r\n\r\n").next()?.lines().find_map(|l| {
        let (k, v) = l.split_once(':')?;
        k.eq_ignore_ascii_case(name).then(|| v.trim())
    })
}

async fn emails_reach_a_real_smtp_server_with_reply_to_and_unsubscribe_headers(store: Store) {
    let Some((addr, dir)) = smtp_sink() else {
        return;
    };
    let Some(app) = spawn_app_with(store, |s| {
        s.notify.smtp_url = Some(format!("smtp://{addr}"));
        s.notify.mail_from = Some("upgrades@surclass.test".into());
    })
    .await
    else {
        return;
    };
    let op = app.operator("aurora").await;
    let lot = app.open_lot(&op, json!({})).await;
    let recipient = format!("t-{}@example.com", uuid::Uuid::new_v4().simple());
    import(&app, &op, "SMTP01", &recipient, "fr", &[&lot]).await;
    let token = app.sign_in("SMTP01", "Lefèvre").await;
    app.bid(&token, &lot, "150.00", GOOD).await.expect(201);
    app.run_jobs().await;

    let got = received_by(&dir, &recipient);
    assert_eq!(got.len(), 2, "the receipt and the reminder: {got:#?}");
    let reminder = got
        .iter()
        .find(|m| header(m, "List-Unsubscribe").is_some())
        .expect("the reminder");
    let receipt = got
        .iter()
        .find(|m| header(m, "List-Unsubscribe").is_none())
        .expect("the receipt");
    for m in [reminder, receipt] {
        assert_eq!(
            header(m, "From"),
            Some("\"aurora Ltd\" <upgrades@surclass.test>").or(header(m, "From"))
        );
        assert!(header(m, "From").unwrap().contains("aurora Ltd"), "{m}");
        assert_eq!(header(m, "Reply-To"), Some("support@aurora.example"));
        assert_eq!(header(m, "Content-Language"), Some("fr"));
        assert!(
            header(m, "Message-ID")
                .is_some_and(|id| id.starts_with('<') && id.ends_with("@surclass>"))
        );
    }
    assert_eq!(
        header(reminder, "List-Unsubscribe-Post"),
        Some("List-Unsubscribe=One-Click")
    );
    let unsubscribe = header(reminder, "List-Unsubscribe")
        .unwrap()
        .trim_matches(['<', '>'])
        .to_owned();
    assert!(unsubscribe.starts_with(&format!("{}/unsubscribe/", app.address)));
    // The Message-IDs are the ones the operator sees.
    let listed = messages(&app, &op, "?channel=email").await;
    for m in &listed {
        let id = m["message_id"].as_str().unwrap();
        assert!(
            got.iter().any(|raw| header(raw, "Message-ID") == Some(id)),
            "{id}"
        );
    }
    // The status link opens the booking: its token is a traveller session.
    let text = match header(receipt, "Content-Transfer-Encoding") {
        Some(enc) if enc.eq_ignore_ascii_case("base64") => {
            use base64::Engine;
            let body: String = receipt
                .split("\r\n\r\n")
                .nth(1)
                .unwrap()
                .split_whitespace()
                .collect();
            String::from_utf8(
                base64::engine::general_purpose::STANDARD
                    .decode(body)
                    .unwrap(),
            )
            .unwrap()
        }
        _ => receipt.replace("=\r\n", "").replace("=3D", "="),
    };
    let start = text
        .find(&format!("{}/s/", app.address))
        .expect("a status link");
    let link: String = text[start..]
        .chars()
        .take_while(|c| !c.is_whitespace())
        .collect();
    let session = link.rsplit("/s/").next().unwrap();
    app.read("/v1/traveller/data")
        .key(session)
        .send()
        .await
        .expect(200);
    // That link goes to the traveller only: the operator's copy shows where it was, and
    // neither it nor the unsubscribe link can be taken from there.
    let unsubscribe_token = unsubscribe.rsplit("/unsubscribe/").next().unwrap();
    for m in &listed {
        let body = m["body"].as_str().unwrap();
        assert!(body.contains(&format!("{}/s/…", app.address)), "{body}");
        assert!(
            !body.contains(session) && !body.contains(unsubscribe_token),
            "{body}"
        );
    }
    // One click, as a mail client does it.
    let clicked = app
        .client
        .post(&unsubscribe)
        .form(&[("List-Unsubscribe", "One-Click")])
        .send()
        .await
        .unwrap();
    assert_eq!(clicked.status(), 200);
    assert_eq!(
        app.read("/v1/traveller/notifications")
            .key(&token)
            .send()
            .await
            .expect(200)
            .body["reminders"],
        false
    );
}

async fn a_webhook_receiver_down_for_a_day_gets_its_delivery_parked_and_retried(store: Store) {
    let Some(app) = spawn_app_with(store, |_| {}).await else {
        return;
    };
    let op = app.operator("aurora").await;
    let max = surclass::notifications::webhooks::MAX_ATTEMPTS as usize;
    let hook = receiver(max).await;
    let endpoint = an_endpoint_for_bids_placed(&app, &op.key, &hook.url).await;
    let lot = app.open_lot(&op, json!({})).await;
    a_traveller_bids(&app, &op, "DOWN01", &lot, "150.00").await;
    app.run_jobs().await;
    for _ in 1..max + 3 {
        retries_are_due(&app).await;
        app.run_jobs().await;
    }
    // Every attempt failed and none is made after the last: parked, and listed as such.
    assert_eq!(hook.calls.load(Ordering::SeqCst), max);
    let parked = messages(&app, &op, "?status=parked&channel=webhook").await;
    assert_eq!(parked.len(), 1);
    assert_eq!(parked[0]["attempts"], max as i64);
    let delivery = latest_delivery(&app, &op.key, &endpoint).await;
    assert_eq!(delivery["status"], "parked");
    assert_eq!(delivery["attempts"].as_array().unwrap().len(), max);

    // The receiver is back (it answers 200 from now on); the operator retries: one more call.
    let id = parked[0]["id"].as_i64().unwrap();
    retry(&app, &op.key, id).await.expect(202);
    app.run_jobs().await;
    retries_are_due(&app).await;
    app.run_jobs().await;
    assert_eq!(hook.calls.load(Ordering::SeqCst), max + 1);
    let sent = messages(&app, &op, "?channel=webhook").await;
    assert_eq!(sent[0]["status"], "sent");
}

/// The store refuses to record how webhook deliveries went (a full disk, a lost connection:
/// here a trigger), or stops refusing.
async fn store_refuses_webhook_outcomes(app: &TestApp, refuse: bool) {
    use sea_orm::{ConnectionTrait, DbBackend};
    let sql = match (app.db.get_database_backend(), refuse) {
        (DbBackend::Sqlite, true) => {
            "CREATE TRIGGER refuse_outcome BEFORE UPDATE ON outbox \
             WHEN NEW.channel = 'webhook' AND NEW.attempts <> OLD.attempts \
             BEGIN SELECT RAISE(ABORT, 'the store refused the outcome'); END"
        }
        (DbBackend::Sqlite, false) => "DROP TRIGGER refuse_outcome",
        (_, true) => {
            "CREATE FUNCTION refuse_outcome() RETURNS trigger LANGUAGE plpgsql AS \
             $$ BEGIN RAISE EXCEPTION 'the store refused the outcome'; END $$; \
             CREATE TRIGGER refuse_outcome BEFORE UPDATE ON outbox FOR EACH ROW \
             WHEN (NEW.channel = 'webhook' AND NEW.attempts <> OLD.attempts) \
             EXECUTE FUNCTION refuse_outcome()"
        }
        (_, false) => "DROP TRIGGER refuse_outcome ON outbox; DROP FUNCTION refuse_outcome()",
    };
    app.db.execute_unprepared(sql).await.unwrap();
}

/// A delivery's list of attempts and its count of them agree: an attempt whose outcome could
/// not be recorded is not listed either (the receiver gets it again, with the same delivery id),
/// so no attempt number is listed twice.
async fn a_webhook_attempt_is_listed_with_its_outcome_or_not_at_all(store: Store) {
    let Some(app) = spawn_app_with(store, |_| {}).await else {
        return;
    };
    let op = app.operator("aurora").await;
    let hook = receiver(0).await;
    let endpoint = an_endpoint_for_bids_placed(&app, &op.key, &hook.url).await;
    let lot = app.open_lot(&op, json!({})).await;

    store_refuses_webhook_outcomes(&app, true).await;
    a_traveller_bids(&app, &op, "ONCE01", &lot, "150.00").await;
    app.run_jobs().await;
    assert_eq!(hook.calls.load(Ordering::SeqCst), 1);
    let delivery = latest_delivery(&app, &op.key, &endpoint).await;
    assert_eq!(delivery["status"], "pending");
    assert_eq!(
        delivery["attempts"],
        json!([]),
        "the outcome was not recorded, so neither is the attempt"
    );
    let counted = messages(&app, &op, "?channel=webhook").await;
    assert_eq!(counted[0]["attempts"], 0);

    store_refuses_webhook_outcomes(&app, false).await;
    retries_are_due(&app).await;
    app.run_jobs().await;
    let seen = hook.seen.lock().unwrap().clone();
    assert_eq!(seen.len(), 2, "sent again");
    assert_eq!(seen[0].1, seen[1].1, "with the same delivery id");
    let delivery = latest_delivery(&app, &op.key, &endpoint).await;
    assert_eq!(delivery["status"], "sent");
    let listed: Vec<(i64, i64)> = delivery["attempts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| {
            let number = a["attempt"].as_i64().unwrap();
            (number, a["status_code"].as_i64().unwrap())
        })
        .collect();
    assert_eq!(listed, vec![(1, 200)]);
    let counted = messages(&app, &op, "?channel=webhook").await;
    assert_eq!(counted[0]["attempts"], 1);
}

/// An API key chooses where webhooks go, and the server makes the call: by default it never
/// calls loopback, private or link-local addresses (a database port, a cloud metadata
/// address), neither when the endpoint is registered nor when a delivery is made.
async fn webhooks_never_go_to_the_servers_own_network(store: Store) {
    let Some(app) = spawn_app_with(store, |s| {
        s.notify.webhooks_to_private_addresses = false;
    })
    .await
    else {
        return;
    };
    let op = app.operator("aurora").await;
    let hook = receiver(0).await;
    for url in [
        hook.url.as_str(),
        "http://localhost:5432/",
        "http://169.254.169.254/latest/meta-data/",
        "http://[::1]:8080/hooks",
        "http://10.0.0.7/hooks",
    ] {
        let refused = app
            .post("/v1/webhook-endpoints")
            .key(&op.key)
            .json(&json!({"url": url, "events": ["bid.placed"]}))
            .send()
            .await
            .expect(422);
        assert_eq!(refused.problem_fields(), vec!["url"], "{url}");
        assert!(
            refused.text.contains("public addresses only"),
            "{url}: {}",
            refused.text
        );
    }
    let listed = app
        .read("/v1/webhook-endpoints")
        .key(&op.key)
        .send()
        .await
        .expect(200);
    assert_eq!(listed.body["items"], json!([]), "nothing registered");

    // A public URL is accepted, and cannot be changed to a private one.
    let endpoint =
        an_endpoint_for_bids_placed(&app, &op.key, "https://hooks.partner.example/surclass").await;
    app.patch(&format!("/v1/webhook-endpoints/{endpoint}"))
        .key(&op.key)
        .json(&json!({"url": hook.url}))
        .send()
        .await
        .expect(422);

    // An endpoint that points inside anyway (registered before this rule, or written around
    // the API) is not called: the delivery is parked with the reason.
    use surclass::store::entities::webhook_endpoint;
    webhook_endpoint::Entity::update_many()
        .col_expr(webhook_endpoint::Column::Url, Expr::value(hook.url.clone()))
        .filter(webhook_endpoint::Column::Id.eq(&endpoint))
        .exec(&app.db)
        .await
        .unwrap();
    let lot = app.open_lot(&op, json!({})).await;
    a_traveller_bids(&app, &op, "HOOK02", &lot, "150.00").await;
    app.run_jobs().await;
    retries_are_due(&app).await;
    app.run_jobs().await;
    assert_eq!(
        hook.calls.load(Ordering::SeqCst),
        0,
        "the receiver was never called"
    );
    let d = &latest_delivery(&app, &op.key, &endpoint).await;
    assert_eq!(d["status"], "parked");
    assert_eq!(d["attempts"].as_array().unwrap().len(), 1);
    let error = d["attempts"][0]["error"].as_str().unwrap();
    assert!(error.contains("public addresses only"), "{error}");
}

/// A deadline rush leaves the confirmations of the last bids queued when the lot is awarded:
/// the travellers who lost hear it before those confirmations go out, not after.
async fn the_outcome_goes_out_before_confirmations_queued_in_the_rush(store: Store) {
    let Some(app) = spawn_app_with(store, |_| {}).await else {
        return;
    };
    let op = app.operator("aurora").await;
    // Two seats: the party of two who offers most wins.
    let lot = app.open_lot(&op, json!({"capacity": 2})).await;
    for (reference, amount) in [
        ("RUSH01", "150.00"),
        ("RUSH02", "140.00"),
        ("RUSH03", "130.00"),
    ] {
        a_traveller_bids(&app, &op, reference, &lot, amount).await;
    }
    // The deadline passes with the three confirmations not yet sent.
    app.close_now(&lot).await;
    surclass::services::award::close_and_award(&app.db, &lot)
        .await
        .unwrap();
    let queued = messages(&app, &op, "?channel=email&status=pending").await;
    let queued_ids = |topic: &str| -> Vec<Value> {
        of_topic(&queued, topic)
            .iter()
            .map(|m| m["id"].clone())
            .collect()
    };
    let (news, confirmations) = (queued_ids("bid.lost"), queued_ids("bid.placed"));
    assert!(!news.is_empty() && confirmations.len() == 3, "{queued:#?}");
    app.run_jobs().await;

    let items = messages(&app, &op, "?channel=email").await;
    let of = |ids: &[Value]| -> Vec<&Value> {
        items.iter().filter(|m| ids.contains(&m["id"])).collect()
    };
    let last_news = of(&news).into_iter().map(sent_at).max().unwrap();
    let first_confirmation = of(&confirmations).into_iter().map(sent_at).min().unwrap();
    assert!(
        last_news < first_confirmation,
        "outcome sent {last_news}, first confirmation {first_confirmation}"
    );
}

/// An outcome that could not be sent (the mail server was down) and that the operator sends
/// again is still news: it goes out before the routine confirmations queued in the meantime.
async fn a_retried_outcome_goes_out_before_confirmations_queued_meanwhile(store: Store) {
    let smtp = flaky_smtp(Answer::Refuse).await;
    let Some(app) = app_mailing_through(store, &smtp, |s| s.notify.email_max_attempts = 1).await
    else {
        return;
    };
    let op = app.operator("aurora").await;
    let lot = app.open_lot(&op, json!({"capacity": 2})).await;
    for (reference, amount) in [("DOWN01", "150.00"), ("DOWN02", "140.00")] {
        a_traveller_bids(&app, &op, reference, &lot, amount).await;
    }
    // The mail server refuses everything: confirmations and the outcome are parked.
    app.close_now(&lot).await;
    surclass::services::award::close_and_award(&app.db, &lot)
        .await
        .unwrap();
    app.run_jobs().await;
    let parked = messages(&app, &op, "?status=parked").await;
    let lost = of_topic(&parked, "bid.lost");
    assert_eq!(lost.len(), 1, "{parked:#?}");
    let lost_id = lost[0]["id"].clone();

    // The server is back. Travellers bid on another lot; their confirmations are queued
    // before the operator sends the outcome again.
    smtp.answer(Answer::Accept);
    let other = app.open_lot(&op, json!({})).await;
    for reference in ["LATE01", "LATE02", "LATE03"] {
        a_traveller_bids(&app, &op, reference, &other, "120.00").await;
    }
    let queued = messages(&app, &op, "?status=pending").await;
    let confirmations: Vec<Value> = of_topic(&queued, "bid.placed")
        .iter()
        .map(|m| m["id"].clone())
        .collect();
    assert_eq!(confirmations.len(), 3, "{queued:#?}");
    retry(&app, &op.key, &lost_id).await.expect(202);
    app.run_jobs().await;

    let items = messages(&app, &op, "?channel=email").await;
    let sent_at = |id: &Value| sent_at(items.iter().find(|m| &m["id"] == id).unwrap());
    let first_confirmation = confirmations.iter().map(sent_at).min().unwrap();
    let outcome = sent_at(&lost_id);
    assert!(
        outcome < first_confirmation,
        "outcome sent {outcome}, first confirmation {first_confirmation}"
    );
}

/// An operator revokes a partner's key: the traveller sessions the partner opened with it end
/// (API, pages, status link), its webhook endpoints are paused, and a delivery still pending
/// is parked, not dropped: resumed and retried, it goes out.
async fn a_revoked_partner_key_ends_its_sessions_and_pauses_its_endpoints_losing_no_delivery(
    store: Store,
) {
    let Some(app) = spawn_app_with(store, |_| {}).await else {
        return;
    };
    let op = app.operator("aurora").await;
    let created = app
        .post("/v1/api-keys")
        .key(&op.key)
        .json(&json!({"name": "Booking engine", "scope": "partner"}))
        .send()
        .await
        .expect(201);
    let partner = created.body["secret"].as_str().unwrap().to_owned();
    let key_id = created.body["id"].as_str().unwrap().to_owned();
    let hook = receiver(1).await;
    let endpoint = an_endpoint_for_bids_placed(&app, &partner, &hook.url).await;
    let lot = app.open_lot(&op, json!({})).await;
    import(&app, &op, "PART01", "p@example.com", "en", &[&lot]).await;
    let session = app
        .post("/v1/partner/sessions")
        .key(&partner)
        .json(&json!({"reference": "PART01"}))
        .send()
        .await
        .expect(201)
        .body["token"]
        .as_str()
        .unwrap()
        .to_owned();
    app.bid(&session, &lot, "150.00", GOOD).await.expect(201);
    app.run_jobs().await;
    assert_eq!(
        hook.calls.load(Ordering::SeqCst),
        1,
        "the first attempt fails"
    );
    let cookie = format!("surclass_session={session}");
    app.read("/offers")
        .header("cookie", &cookie)
        .send()
        .await
        .expect(200);

    app.delete(&format!("/v1/api-keys/{key_id}"))
        .key(&op.key)
        .send()
        .await
        .expect(200);

    // The partner's session is over everywhere it could be used.
    app.read("/v1/traveller/offers")
        .key(&session)
        .send()
        .await
        .expect(401);
    app.bid(&session, &lot, "160.00", GOOD).await.expect(401);
    let page = app.read("/offers").header("cookie", &cookie).send().await;
    assert_eq!(page.status, 303, "{}", page.text);
    let link = app.read(&format!("/s/{session}")).send().await;
    assert_eq!(link.status, 401, "a partner's session is no status link");
    // The traveller's own sign-in is untouched.
    app.sign_in("PART01", "Lefèvre").await;

    // Its endpoint is paused, and says whose it is.
    let listed = app
        .read(&format!("/v1/webhook-endpoints/{endpoint}"))
        .key(&op.key)
        .send()
        .await
        .expect(200);
    assert_eq!(listed.body["active"], false);
    assert_eq!(listed.body["owner_key_id"], key_id.as_str());
    retries_are_due(&app).await;
    app.run_jobs().await;
    assert_eq!(
        hook.calls.load(Ordering::SeqCst),
        1,
        "nothing sent while paused"
    );
    let delivery = latest_delivery(&app, &op.key, &endpoint).await;
    assert_eq!(delivery["status"], "parked", "{delivery}");
    let parked = messages(&app, &op, "?status=parked&channel=webhook").await;
    assert_eq!(parked.len(), 1);
    assert!(
        parked[0]["last_error"].as_str().unwrap().contains("paused"),
        "{}",
        parked[0]
    );

    // The operator resumes it and retries: the delivery goes out after all.
    app.patch(&format!("/v1/webhook-endpoints/{endpoint}"))
        .key(&op.key)
        .json(&json!({"active": true}))
        .send()
        .await
        .expect(200);
    retry(&app, &op.key, parked[0]["id"].as_i64().unwrap())
        .await
        .expect(202);
    app.run_jobs().await;
    assert_eq!(hook.calls.load(Ordering::SeqCst), 2);
    assert_eq!(
        latest_delivery(&app, &op.key, &endpoint).await["status"],
        "sent"
    );
}

/// More lots close within the reminders' lead time than one look takes: every one still gets
/// its reminder job, not the same first batch at each look.
async fn every_lot_closing_soon_gets_its_reminder_however_many_there_are(store: Store) {
    use sea_orm::PaginatorTrait;
    use surclass::store::entities::job;
    let Some(app) = spawn_app_with(store, |_| {}).await else {
        return;
    };
    let op = app.operator("aurora").await;
    for _ in 0..501 {
        app.open_lot(&op, json!({})).await;
    }
    let lead = chrono::Duration::hours(4);
    for _ in 0..2 {
        surclass::notifications::reminders::schedule(&app.db, lead)
            .await
            .unwrap();
    }
    let scheduled = job::Entity::find()
        .filter(job::Column::Kind.eq("remind"))
        .count(&app.db)
        .await
        .unwrap();
    assert_eq!(scheduled, 501);
}

/// Moving the close of an open lot is news for every active bidder: each is told the new time
/// at once, in their language, and partners get `bid.deadline_moved`. A withdrawn bidder, an
/// edit that keeps the close, and a move overtaken by another before it went out tell no one;
/// past its close, the close no longer moves.
async fn every_active_bidder_is_told_when_the_close_moves(store: Store) {
    let Some(app) = spawn_app_with(store, |_| {}).await else {
        return;
    };
    let op = app.operator("aurora").await;
    let hooks = receiver(0).await;
    app.post("/v1/webhook-endpoints")
        .key(&op.key)
        .json(&json!({"url": hooks.url, "events": ["bid.deadline_moved"]}))
        .send()
        .await
        .expect(201);
    // Closes in 3 hours, inside the 6-hour reminder lead: the reminder goes out at once.
    let lot = app.open_lot(&op, json!({})).await;
    let mut anna = None;
    for (reference, email, language) in [
        ("MOVE01", "anna@example.com", "en"),
        ("MOVE02", "claire@example.fr", "fr"),
        ("MOVE03", "left@example.com", "en"),
    ] {
        import(&app, &op, reference, email, language, &[&lot]).await;
        let token = app.sign_in(reference, "Lefèvre").await;
        let bid = app.bid(&token, &lot, "150.00", GOOD).await.expect(201);
        if reference == "MOVE01" {
            anna = Some((token.clone(), bid.body["id"].as_str().unwrap().to_owned()));
        }
        if reference == "MOVE03" {
            app.delete(&format!(
                "/v1/traveller/bids/{}",
                bid.body["id"].as_str().unwrap()
            ))
            .key(&token)
            .send()
            .await
            .expect(200);
        }
    }
    app.run_jobs().await;
    let emails = messages(&app, &op, "?channel=email").await;
    assert_eq!(
        of_topic(&emails, "bid.reminder").len(),
        2,
        "the active bids"
    );
    let was: chrono::DateTime<chrono::Utc> = app
        .read(&format!("/v1/lots/{lot}"))
        .key(&op.key)
        .send()
        .await
        .expect(200)
        .body["closes_at"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();

    // Written as the pages write a moment in the lot's zone (Europe/Paris).
    let in_paris = |at: chrono::DateTime<chrono::Utc>| {
        at.with_timezone(&chrono_tz::Europe::Paris)
            .format("%a %-d %b %Y, %H:%M %Z")
            .to_string()
    };
    let move_close = |to: chrono::DateTime<chrono::Utc>| {
        let app = &app;
        let lot = &lot;
        let key = op.key.clone();
        async move {
            app.patch(&format!("/v1/lots/{lot}"))
                .key(&key)
                .json(&json!({"closes_at": to.to_rfc3339()}))
                .send()
                .await
        }
    };
    // Whole seconds: stores keep times to different precisions.
    let hours = |h: i64| {
        chrono::SubsecRound::trunc_subsecs(chrono::Utc::now() + chrono::Duration::hours(h), 0)
    };
    let later = hours(5);
    move_close(later).await.expect(200);
    // Anna lowers her offer before the email goes out: it names the offer as it stands.
    let (token, bid) = anna.unwrap();
    app.patch(&format!("/v1/traveller/bids/{bid}"))
        .key(&token)
        .json(&json!({"amount": "130.00"}))
        .send()
        .await
        .expect(200);
    app.run_jobs().await;
    let emails = messages(&app, &op, "?channel=email").await;
    let moved = of_topic(&emails, "bid.deadline_moved");
    let mut to: Vec<&str> = moved.iter().map(|m| m["to"].as_str().unwrap()).collect();
    to.sort();
    assert_eq!(
        to,
        ["anna@example.com", "claire@example.fr"],
        "active bidders only"
    );
    let english = moved
        .iter()
        .find(|m| m["to"] == "anna@example.com")
        .unwrap();
    assert!(
        english["subject"]
            .as_str()
            .unwrap()
            .starts_with("New closing time"),
        "{english}"
    );
    let body = english["body"].as_str().unwrap();
    let said = format!(
        "now closes on {} instead of {}.",
        in_paris(later),
        in_paris(was)
    );
    assert!(body.contains(&said), "{said} in {body}");
    assert!(
        body.contains("Your offer of 130.00 EUR per person stands"),
        "{body}"
    );
    assert!(!body.contains("earlier than announced"), "{body}");
    let french = moved
        .iter()
        .find(|m| m["to"] == "claire@example.fr")
        .unwrap();
    let body = french["body"].as_str().unwrap();
    assert!(body.contains("se terminent maintenant le"), "{body}");
    assert!(body.contains("au lieu du"), "{body}");
    assert_eq!(
        of_topic(&emails, "bid.reminder").len(),
        2,
        "the new time is told once, not reminded at once"
    );
    // Partners hear of it too, once per active bid, with the new close.
    let seen = hooks.seen.lock().unwrap().clone();
    assert_eq!(seen.len(), 2);
    for (_, _, body) in &seen {
        let event: Value = serde_json::from_slice(body).unwrap();
        assert_eq!(event["type"], "bid.deadline_moved");
        let closes: chrono::DateTime<chrono::Utc> = event["data"]["closes_at"]
            .as_str()
            .unwrap()
            .parse()
            .unwrap();
        assert_eq!(closes, later);
        assert!(
            event["data"]["detail"]
                .as_str()
                .unwrap()
                .contains("instead of"),
            "{event}"
        );
    }

    // An edit that leaves the close where it is tells no one.
    app.patch(&format!("/v1/lots/{lot}"))
        .key(&op.key)
        .json(&json!({"title": "Paris → New York", "closes_at": later.to_rfc3339()}))
        .send()
        .await
        .expect(200);
    // Moved twice before anything went out: the newest time only, said to be sooner.
    move_close(hours(4)).await.expect(200);
    let sooner = hours(2);
    move_close(sooner).await.expect(200);
    app.run_jobs().await;
    let emails = messages(&app, &op, "?channel=email").await;
    let moved = of_topic(&emails, "bid.deadline_moved");
    assert_eq!(moved.len(), 6, "two for each move, none for the title");
    let sent: Vec<&&Value> = moved.iter().filter(|m| m["status"] == "sent").collect();
    assert_eq!(sent.len(), 4, "{moved:#?}");
    let newest = sent
        .iter()
        .find(|m| {
            m["to"] == "anna@example.com" && m["body"].as_str().unwrap().contains(&in_paris(sooner))
        })
        .expect("the sooner close told");
    assert!(
        newest["body"]
            .as_str()
            .unwrap()
            .contains("That is earlier than announced."),
        "{newest}"
    );
    let overtaken: Vec<&&Value> = moved
        .iter()
        .filter(|m| m["status"] == "suppressed")
        .collect();
    assert_eq!(overtaken.len(), 2, "{moved:#?}");
    assert!(
        overtaken
            .iter()
            .all(|m| m["last_error"].as_str().unwrap().contains("moved again")),
        "{overtaken:#?}"
    );
    assert_eq!(of_topic(&emails, "bid.reminder").len(), 2);

    // Bidders get an hour's notice of a sooner close at least.
    let too_soon = chrono::Utc::now() + chrono::Duration::minutes(30);
    let refused = move_close(too_soon).await.expect(422);
    assert!(refused.text.contains("an hour ahead"), "{}", refused.text);

    // Past its close (the close job not run yet), the close no longer moves.
    app.close_now(&lot).await;
    let refused = move_close(hours(1)).await.expect(422);
    assert_eq!(refused.body["field"], "closes_at");
    assert!(refused.text.contains("already closed"), "{}", refused.text);
}

/// A reminder queued while the close was near, and run after the operator moved the close a
/// day away, would say "closes soon" a day early: it waits until the new close is within the
/// lead time (6 hours here), and comes at once when the close is moved back within it. An
/// email written before a move says the close as it is when it goes out.
async fn a_reminder_queued_before_the_close_moved_away_waits_for_the_new_close(store: Store) {
    use surclass::store::entities::job;
    let Some(app) = spawn_app_with(store, |_| {}).await else {
        return;
    };
    let op = app.operator("aurora").await;
    let in_hours = |h: i64| {
        chrono::SubsecRound::trunc_subsecs(chrono::Utc::now() + chrono::Duration::hours(h), 0)
    };
    let in_paris = |at: chrono::DateTime<chrono::Utc>| {
        at.with_timezone(&chrono_tz::Europe::Paris)
            .format("%a %-d %b %Y, %H:%M %Z")
            .to_string()
    };
    let first = in_hours(30);
    let lot = app
        .open_lot(&op, json!({"closes_at": first.to_rfc3339()}))
        .await;
    import(&app, &op, "WAIT01", "anna@example.com", "en", &[&lot]).await;
    let token = app.sign_in("WAIT01", "Lefèvre").await;
    app.bid(&token, &lot, "150.00", GOOD).await.expect(201);
    // Moved before the confirmation went out, and a reminder queued as if the close had been
    // near until then.
    let moved = in_hours(28);
    app.patch(&format!("/v1/lots/{lot}"))
        .key(&op.key)
        .json(&json!({"closes_at": moved.to_rfc3339()}))
        .send()
        .await
        .expect(200);
    let remind = surclass::jobs::Job::Remind {
        lot_id: lot.clone(),
    };
    surclass::jobs::enqueue(&app.db, remind, chrono::Utc::now())
        .await
        .unwrap();
    app.run_jobs().await;
    let emails = messages(&app, &op, "?channel=email").await;
    let placed = of_topic(&emails, "bid.placed");
    let body = placed[0]["body"].as_str().unwrap();
    assert!(body.contains(&in_paris(moved)), "{body}");
    assert!(!body.contains(&in_paris(first)), "{body}");
    assert_eq!(of_topic(&emails, "bid.reminder").len(), 0, "{emails:#?}");
    let waiting = job::Entity::find()
        .filter(job::Column::DedupeKey.eq(format!("remind:{lot}")))
        .one(&app.db)
        .await
        .unwrap()
        .expect("the reminder's job is kept");
    assert_eq!(waiting.status, "pending");
    assert_eq!(waiting.run_at, moved - chrono::Duration::hours(6));

    let soon = in_hours(2);
    app.patch(&format!("/v1/lots/{lot}"))
        .key(&op.key)
        .json(&json!({"closes_at": soon.to_rfc3339()}))
        .send()
        .await
        .expect(200);
    app.run_jobs().await;
    let emails = messages(&app, &op, "?channel=email").await;
    let reminders = of_topic(&emails, "bid.reminder");
    assert_eq!(reminders.len(), 1, "{emails:#?}");
    let body = reminders[0]["body"].as_str().unwrap();
    assert!(body.contains(&in_paris(soon)), "{body}");
}
