//! The embedded gateway: no network, behaves like Stripe's test cards, keeps its state in two
//! tables of its own so holds survive a restart: in a SQLite file beside a SQLite store, in
//! the store itself on PostgreSQL ([`SimulatedGateway::beside`]), or in a database named by
//! `--simulated-gateway-store` ([`SimulatedGateway::at`]).
//!
//! | card | at bid time (hold, save) | on capture / off-session charge |
//! |---|---|---|
//! | 4242 4242 4242 4242 (and any other valid number) | accepted | succeeds |
//! | 4000 0000 0000 0002 | declined (`card_declined`) | — |
//! | 4000 0000 0000 9995 | declined (`insufficient_funds`) | — |
//! | 4000 0000 0000 0069 / 0127 | declined (`expired_card` / `incorrect_cvc`) | — |
//! | 4000 0000 0000 0341 | accepted | declined (`card_declined`) |
//! | 4000 0025 0000 3155 | requires authentication | a saved card charges without it |
//! | 4000 0027 6000 3184 | requires authentication | requires authentication again |
//!
//! Stripe's test payment methods and tokens (`pm_card_visa`, `tok_chargeDeclined`,
//! `pm_card_chargeCustomerFail`, …) work too. A number failing the Luhn check is declined as
//! `incorrect_number`, a past expiry as `expired_card`.
//!
//! One deliberate difference from Stripe: a *hold* on 4000 0000 0000 0341 is accepted and its
//! *capture* declined (Stripe declines it at authorisation), so that the demo and the tests can
//! walk the "capture failed, standby moves up" path, which Stripe's test cards cannot reach.
//!
//! Authentication: the outcome carries a [`PendingAction`] with [`NextStep::Simulated`]; the
//! demo's "bank" page calls [`SimulatedGateway::complete_action`] with the client secret.
//!
//! Idempotency as at Stripe: the first answer to a key (success, decline or refusal) is stored
//! with a fingerprint of the request and replayed for the same key; the same key with other
//! parameters is refused. A transient failure stores nothing.

mod holds;
mod store;

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use chrono::{DateTime, Datelike, Utc};
use rand::Rng;
use rand::distr::Alphanumeric;
use sea_orm::{ConnectOptions, Database, DatabaseTransaction, SqlErr};
use serde::{Deserialize, Serialize, de::DeserializeOwned};

use super::error::{Decline, DeclineReason, PaymentError, WebhookError};
use super::types::*;
use super::{PaymentGateway, check_amount, fingerprint, webhook};
use crate::money::Currency;
use crate::store::Db;
use store::db_error;

/// Connections to the gateway's own file: one hold batch writes at a time; the others read
/// payment states for reconciliation and the demo's bank page.
const GATEWAY_CONNECTIONS: u32 = 4;

/// The gateway's own file beside a SQLite store's: `dir/name.db` → `dir/name-gateway.db`.
fn gateway_file(store: &std::path::Path) -> std::path::PathBuf {
    let stem = store
        .file_stem()
        .map_or_else(|| "surclass".into(), |s| s.to_string_lossy().into_owned());
    let name = match store.extension() {
        Some(ext) => format!("{stem}-gateway.{}", ext.to_string_lossy()),
        None => format!("{stem}-gateway"),
    };
    store.with_file_name(name)
}

/// Signs the simulated gateway's events when no webhook secret is configured.
pub const DEFAULT_WEBHOOK_SECRET: &str = "whsec_surclass_simulated";

#[derive(Clone, Debug)]
pub struct SimulatedGateway {
    db: Db,
    webhook_secret: String,
    holds: Holds,
}

/// The hold batcher, started by a hold on the runtime of its caller: in the server an HTTP
/// worker's (on the main runtime SQLite intake measured ~8% fewer bids/s, README). That
/// runtime can stop while the process goes on (a worker restarted), taking the batcher with
/// it: the next hold then starts another one on its own runtime.
#[derive(Clone, Default)]
struct Holds(Arc<Mutex<Option<holds::HoldBatcher>>>);

impl std::fmt::Debug for Holds {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Holds")
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
enum Behaviour {
    Approve,
    DeclineAtBid(DeclineReason),
    DeclineOnCharge,
    /// Authentication on session; a card saved with authentication charges without it.
    AuthenticateOnSession,
    AuthenticateAlways,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
struct SimCard {
    summary: CardSummary,
    behaviour: Behaviour,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
enum Status {
    RequiresAction,
    RequiresCapture,
    Succeeded,
    Canceled,
    Failed,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
struct SimPayment {
    id: String,
    amount: i64,
    currency: Currency,
    manual_capture: bool,
    card: SimCard,
    status: Status,
    client_secret: String,
    amount_capturable: i64,
    amount_received: i64,
    amount_refunded: i64,
    decline: Option<Decline>,
    description: String,
    metadata: BTreeMap<String, String>,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
struct SimSetup {
    id: String,
    customer: String,
    payment_method: String,
    status: Status,
    client_secret: String,
    card: SimCard,
    decline: Option<Decline>,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
struct SimPaymentMethod {
    id: String,
    customer: String,
    card: SimCard,
    /// Saved through a completed setup: off-session charges skip on-session authentication.
    set_up: bool,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
struct SimCustomer {
    id: String,
    customer_ref: String,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
struct SimRefund {
    id: String,
    payment: String,
    amount: i64,
    currency: Currency,
}

/// The stored answer to an idempotency key.
#[derive(Serialize, Deserialize)]
enum Stored<T> {
    Ok(T),
    Err(PaymentError),
}

impl SimulatedGateway {
    /// State in `db`, which must be migrated (the application's database).
    pub fn new(db: Db) -> Self {
        Self {
            db,
            webhook_secret: DEFAULT_WEBHOOK_SECRET.to_owned(),
            holds: Holds::default(),
        }
    }

    /// The simulated provider of the store `db`, with its state where a provider's would be:
    /// apart from the store. Next to a SQLite store it keeps a file of its own
    /// (`surclass.db` → `surclass-gateway.db`), so that its writes (a hold per bid) do not queue
    /// for the store's one write lock, which a real provider's never would; on PostgreSQL (row
    /// locks, many writers) and in memory it keeps its tables in `db`. A SQLite store that
    /// already holds gateway state in its own tables, from before the file of its own, keeps
    /// using them, so that its holds can still be captured and released.
    pub async fn beside(db: &Db) -> Result<Self, PaymentError> {
        let Some(file) = crate::store::sqlite_file(db).await.map_err(db_error)? else {
            return Ok(Self::new(db.clone()));
        };
        let own = gateway_file(&file);
        if !own.exists() && store::holds_any(db).await? {
            return Ok(Self::new(db.clone()));
        }
        Self::at(&format!("sqlite://{}", own.display())).await
    }

    /// The simulated provider with its state in a database of its own, `url`: created if a
    /// SQLite file, migrated either way.
    pub async fn at(url: &str) -> Result<Self, PaymentError> {
        let gateway_db = crate::store::connect(url, GATEWAY_CONNECTIONS)
            .await
            .map_err(db_error)?;
        // The whole schema, as for `in_memory`: one migration history to keep, a few empty
        // tables the gateway never touches.
        crate::store::migrate(&gateway_db).await.map_err(db_error)?;
        Ok(Self::new(gateway_db))
    }

    /// The database this gateway keeps its state in.
    pub fn state(&self) -> &Db {
        &self.db
    }

    /// A private in-memory SQLite database, migrated: for tests and one-off tools.
    pub async fn in_memory() -> Result<Self, PaymentError> {
        let mut options = ConnectOptions::new("sqlite::memory:".to_owned());
        // One connection: each in-memory SQLite connection is a database of its own.
        options
            .max_connections(1)
            .min_connections(1)
            .sqlx_logging(false);
        let db = Database::connect(options).await.map_err(db_error)?;
        crate::store::migrate(&db).await.map_err(db_error)?;
        Ok(Self::new(db))
    }

    pub fn with_webhook_secret(mut self, secret: &str) -> Self {
        self.webhook_secret = secret.to_owned();
        self
    }

    /// The traveller finishes (or fails) 3-D Secure for a payment or a card setup. Returns the
    /// new state through [`payment_status`](PaymentGateway::payment_status) /
    /// [`setup_status`](PaymentGateway::setup_status). Safe to repeat once finished.
    pub async fn complete_action(
        &self,
        client_secret: &str,
        approve: bool,
    ) -> Result<IntentRef, PaymentError> {
        let id = client_secret
            .split_once("_secret_")
            .map(|(id, _)| id)
            .ok_or_else(|| PaymentError::Invalid("not a client secret".into()))?;
        let txn = self.begin().await?;
        let intent = if id.starts_with("simpi_") {
            let mut payment: SimPayment = load_or_invalid(&txn, id).await?;
            check_secret(&payment.client_secret, client_secret)?;
            if payment.status == Status::RequiresAction {
                if !approve {
                    fail_payment(&mut payment, DeclineReason::AuthenticationFailed);
                } else if payment.manual_capture {
                    payment.status = Status::RequiresCapture;
                    payment.amount_capturable = payment.amount;
                } else if payment.card.behaviour == Behaviour::DeclineOnCharge {
                    fail_payment(&mut payment, DeclineReason::Generic);
                } else {
                    payment.status = Status::Succeeded;
                    payment.amount_received = payment.amount;
                }
                store::update(&txn, id, &payment).await?;
            }
            IntentRef::Payment(PaymentRef::new(id))
        } else {
            let mut setup: SimSetup = load_or_invalid(&txn, id).await?;
            check_secret(&setup.client_secret, client_secret)?;
            if setup.status == Status::RequiresAction {
                if approve {
                    setup.status = Status::Succeeded;
                    let mut method: SimPaymentMethod =
                        load_or_invalid(&txn, &setup.payment_method).await?;
                    method.set_up = true;
                    store::update(&txn, &method.id, &method).await?;
                } else {
                    setup.status = Status::Failed;
                    setup.decline = Some(Decline::new(
                        DeclineReason::AuthenticationFailed,
                        Some("setup_intent_authentication_failure".into()),
                    ));
                }
                store::update(&txn, id, &setup).await?;
            }
            IntentRef::Setup(SetupRef::new(id))
        };
        txn.commit().await.map_err(db_error)?;
        Ok(intent)
    }

    /// A signed `payment_intent.*` event about `reference` as it stands now, in Stripe's
    /// envelope: `(body, Stripe-Signature header)`. What a webhook delivery would carry.
    pub async fn signed_event(
        &self,
        reference: &PaymentRef,
        event_type: &str,
    ) -> Result<(String, String), PaymentError> {
        let state = self.payment_status(reference).await?;
        let now = Utc::now().timestamp();
        let body = serde_json::json!({
            "id": format!("evt_sim{}", random_id(20)),
            "object": "event",
            "type": event_type,
            "created": now,
            "data": { "object": state },
        })
        .to_string();
        let header = webhook::sign(&body, &self.webhook_secret, now);
        Ok((body, header))
    }

    async fn begin(&self) -> Result<DatabaseTransaction, PaymentError> {
        crate::store::write_txn(&self.db).await.map_err(db_error)
    }

    /// Opens the transaction of a keyed request, or returns the stored answer.
    async fn start<T: DeserializeOwned>(
        &self,
        key: &IdempotencyKey,
        operation: &str,
        request_fingerprint: &str,
    ) -> Result<Result<DatabaseTransaction, Result<T, PaymentError>>, PaymentError> {
        let txn = self.begin().await?;
        match store::find_request(&txn, key.as_str()).await? {
            None => Ok(Ok(txn)),
            Some(row) => Ok(Err(replay(
                key,
                (&row.operation, &row.fingerprint, &row.response),
                operation,
                request_fingerprint,
            ))),
        }
    }

    /// Stores the answer with its key and commits, or rolls back on a transient failure.
    async fn finish<T: Serialize>(
        &self,
        txn: DatabaseTransaction,
        key: &IdempotencyKey,
        operation: &str,
        request_fingerprint: &str,
        result: Result<T, PaymentError>,
    ) -> Result<T, PaymentError> {
        if matches!(&result, Err(e) if e.is_retryable()) {
            let _ = txn.rollback().await;
            return result;
        }
        let stored = match &result {
            Ok(value) => serde_json::to_string(&Stored::Ok(value)),
            Err(error) => serde_json::to_string(&Stored::<T>::Err(error.clone())),
        }
        .expect("answers serialise");
        if let Err(error) =
            store::insert_request(&txn, key.as_str(), operation, request_fingerprint, stored).await
        {
            let _ = txn.rollback().await;
            return Err(match error.sql_err() {
                Some(SqlErr::UniqueConstraintViolation(_)) => PaymentError::InProgress(format!(
                    "a concurrent request with idempotency key {key} is in progress"
                )),
                _ => db_error(error),
            });
        }
        txn.commit().await.map_err(db_error)?;
        result
    }

    async fn resolve_card(
        &self,
        txn: &DatabaseTransaction,
        source: &CardSource,
    ) -> Result<Result<SimCard, Decline>, PaymentError> {
        match source {
            CardSource::Card {
                number,
                exp_month,
                exp_year,
                cvc,
            } => Ok(card_from_number(number, *exp_month, *exp_year, cvc)),
            CardSource::PaymentMethod(id) if id.starts_with("simpm_") => {
                let method: SimPaymentMethod = load_or_invalid(txn, id).await?;
                Ok(Ok(method.card))
            }
            CardSource::PaymentMethod(id) => {
                let number = match id.as_str() {
                    "pm_card_visa" | "tok_visa" => "4242424242424242",
                    "pm_card_mastercard" | "tok_mastercard" => "5555555555554444",
                    "pm_card_visa_chargeDeclined"
                    | "pm_card_chargeDeclined"
                    | "tok_chargeDeclined" => "4000000000000002",
                    "pm_card_chargeDeclinedInsufficientFunds"
                    | "tok_chargeDeclinedInsufficientFunds" => "4000000000009995",
                    "pm_card_chargeCustomerFail" | "tok_chargeCustomerFail" => "4000000000000341",
                    "pm_card_authenticationRequiredOnSetup"
                    | "tok_authenticationRequiredOnSetup"
                    | "pm_card_threeDSecure2Required"
                    | "tok_threeDSecure2Required" => "4000002500003155",
                    "pm_card_authenticationRequired" | "tok_authenticationRequired" => {
                        "4000002760003184"
                    }
                    other => {
                        return Err(PaymentError::Invalid(format!(
                            "no such payment method: {other}"
                        )));
                    }
                };
                let year = Utc::now().year() as u32 + 3;
                Ok(card_from_number(number, 12, year, "123"))
            }
        }
    }

    /// The answer to a hold and the payment object it creates (none when the card is
    /// refused before a payment exists), not yet stored.
    async fn prepare_hold(
        &self,
        txn: &DatabaseTransaction,
        request: &HoldRequest,
    ) -> Result<(Option<SimPayment>, HoldOutcome), PaymentError> {
        check_amount(request.amount_minor)?;
        let card = match self.resolve_card(txn, &request.card).await? {
            Ok(card) => card,
            Err(decline) => return Ok((None, HoldOutcome::Declined(decline))),
        };
        let mut metadata = request.metadata.clone();
        if let Some(customer) = &request.customer_ref {
            metadata.insert("surclass_customer".into(), customer.clone());
        }
        let mut payment = new_payment(
            request.amount_minor,
            request.currency,
            true,
            card,
            &request.description,
            metadata,
        );
        let outcome = match payment.card.behaviour {
            Behaviour::Approve | Behaviour::DeclineOnCharge => {
                payment.status = Status::RequiresCapture;
                payment.amount_capturable = payment.amount;
                HoldOutcome::Authorized(Authorization {
                    reference: PaymentRef::new(&payment.id),
                    amount_minor: payment.amount,
                    currency: payment.currency,
                    card: payment.card.summary.clone(),
                })
            }
            Behaviour::DeclineAtBid(reason) => {
                fail_payment(&mut payment, reason);
                HoldOutcome::Declined(payment.decline.clone().expect("failed payments say why"))
            }
            Behaviour::AuthenticateOnSession | Behaviour::AuthenticateAlways => {
                payment.status = Status::RequiresAction;
                HoldOutcome::RequiresAction(pending_payment(&payment))
            }
        };
        Ok((Some(payment), outcome))
    }

    async fn do_capture(
        &self,
        txn: &DatabaseTransaction,
        reference: &PaymentRef,
        amount: i64,
    ) -> Result<Capture, PaymentError> {
        check_amount(amount)?;
        let mut payment: SimPayment = load_locked_or_invalid(txn, reference.as_str()).await?;
        match payment.status {
            Status::RequiresCapture => {}
            Status::Succeeded => {
                return Err(PaymentError::Invalid(format!(
                    "{reference} is already captured"
                )));
            }
            Status::Canceled => {
                return Err(PaymentError::Invalid(format!("{reference} was released")));
            }
            Status::RequiresAction => {
                return Err(PaymentError::Invalid(format!(
                    "{reference} still waits for the traveller's authentication"
                )));
            }
            Status::Failed => {
                return Err(PaymentError::Invalid(format!(
                    "{reference} holds nothing: its authorisation failed"
                )));
            }
        }
        if amount > payment.amount_capturable {
            return Err(PaymentError::Invalid(format!(
                "cannot capture {amount}: only {} is held on {reference}",
                payment.amount_capturable
            )));
        }
        if payment.card.behaviour == Behaviour::DeclineOnCharge {
            fail_payment(&mut payment, DeclineReason::Generic);
            store::update(txn, &payment.id, &payment).await?;
            // Stored with the key like a success: a retry gets the same decline.
            return Err(PaymentError::Declined(
                payment.decline.clone().expect("failed payments say why"),
            ));
        }
        payment.status = Status::Succeeded;
        payment.amount_capturable = 0;
        payment.amount_received = amount;
        store::update(txn, &payment.id, &payment).await?;
        Ok(Capture {
            reference: reference.clone(),
            amount_minor: amount,
            currency: payment.currency,
        })
    }

    async fn do_release(
        &self,
        txn: &DatabaseTransaction,
        reference: &PaymentRef,
    ) -> Result<(), PaymentError> {
        let mut payment: SimPayment = load_locked_or_invalid(txn, reference.as_str()).await?;
        match payment.status {
            Status::Canceled => Ok(()),
            Status::Succeeded => Err(PaymentError::Invalid(format!(
                "{reference} is captured: refund it instead of releasing"
            ))),
            Status::RequiresCapture | Status::RequiresAction | Status::Failed => {
                payment.status = Status::Canceled;
                payment.amount_capturable = 0;
                store::update(txn, &payment.id, &payment).await
            }
        }
    }

    async fn do_save(
        &self,
        txn: &DatabaseTransaction,
        request: &SetupRequest,
    ) -> Result<SetupOutcome, PaymentError> {
        let customer = match &request.provider_customer {
            Some(id) => load_or_invalid::<SimCustomer>(txn, id).await?,
            None => {
                let customer = SimCustomer {
                    id: crate::ids::new_id("simcus"),
                    customer_ref: request.customer_ref.clone(),
                };
                store::insert(txn, &customer.id, "customer", &customer).await?;
                customer
            }
        };
        let card = match self.resolve_card(txn, &request.card).await? {
            Ok(card) => card,
            Err(decline) => return Ok(SetupOutcome::Declined(decline)),
        };
        let method = SimPaymentMethod {
            id: crate::ids::new_id("simpm"),
            customer: customer.id.clone(),
            card: card.clone(),
            set_up: false,
        };
        let setup_id = crate::ids::new_id("simseti");
        let mut setup = SimSetup {
            client_secret: format!("{setup_id}_secret_{}", random_id(24)),
            id: setup_id,
            customer: customer.id.clone(),
            payment_method: method.id.clone(),
            status: Status::Succeeded,
            card,
            decline: None,
        };
        let mut method = method;
        match setup.card.behaviour {
            Behaviour::Approve | Behaviour::DeclineOnCharge => method.set_up = true,
            Behaviour::DeclineAtBid(reason) => {
                setup.status = Status::Failed;
                setup.decline = Some(Decline::new(reason, Some(provider_code(reason).into())));
            }
            Behaviour::AuthenticateOnSession | Behaviour::AuthenticateAlways => {
                setup.status = Status::RequiresAction;
            }
        }
        store::insert(txn, &method.id, "payment_method", &method).await?;
        store::insert(txn, &setup.id, "setup", &setup).await?;
        Ok(setup_outcome(&setup))
    }

    async fn do_charge(
        &self,
        txn: &DatabaseTransaction,
        request: &ChargeRequest,
    ) -> Result<ChargeOutcome, PaymentError> {
        check_amount(request.amount_minor)?;
        let method: SimPaymentMethod = load_or_invalid(txn, &request.card.payment_method).await?;
        if method.customer != request.card.customer {
            return Err(PaymentError::Invalid(format!(
                "{} does not belong to {}",
                method.id, request.card.customer
            )));
        }
        let mut payment = new_payment(
            request.amount_minor,
            request.currency,
            false,
            method.card.clone(),
            &request.description,
            request.metadata.clone(),
        );
        let needs_authentication = match method.card.behaviour {
            Behaviour::AuthenticateAlways => true,
            Behaviour::AuthenticateOnSession => !method.set_up,
            _ => false,
        };
        let outcome = match method.card.behaviour {
            Behaviour::DeclineAtBid(reason) => {
                fail_payment(&mut payment, reason);
                ChargeOutcome::Declined(payment.decline.clone().expect("failed payments say why"))
            }
            Behaviour::DeclineOnCharge => {
                fail_payment(&mut payment, DeclineReason::Generic);
                ChargeOutcome::Declined(payment.decline.clone().expect("failed payments say why"))
            }
            _ if needs_authentication => {
                payment.status = Status::RequiresAction;
                ChargeOutcome::RequiresAction(pending_payment(&payment))
            }
            _ => {
                payment.status = Status::Succeeded;
                payment.amount_received = payment.amount;
                ChargeOutcome::Charged(Charge {
                    reference: PaymentRef::new(&payment.id),
                    amount_minor: payment.amount,
                    currency: payment.currency,
                })
            }
        };
        store::insert(txn, &payment.id, "payment", &payment).await?;
        Ok(outcome)
    }

    async fn do_refund(
        &self,
        txn: &DatabaseTransaction,
        reference: &PaymentRef,
        amount: i64,
    ) -> Result<Refund, PaymentError> {
        check_amount(amount)?;
        let mut payment: SimPayment = load_locked_or_invalid(txn, reference.as_str()).await?;
        if payment.status != Status::Succeeded {
            return Err(PaymentError::Invalid(format!(
                "{reference} has taken no money to refund"
            )));
        }
        let refundable = payment.amount_received - payment.amount_refunded;
        if amount > refundable {
            return Err(PaymentError::Invalid(format!(
                "cannot refund {amount}: only {refundable} of {reference} is left to refund"
            )));
        }
        payment.amount_refunded += amount;
        store::update(txn, &payment.id, &payment).await?;
        let refund = SimRefund {
            id: crate::ids::new_id("simre"),
            payment: payment.id.clone(),
            amount,
            currency: payment.currency,
        };
        store::insert(txn, &refund.id, "refund", &refund).await?;
        Ok(Refund {
            reference: RefundRef::new(&refund.id),
            payment: reference.clone(),
            amount_minor: amount,
            currency: refund.currency,
        })
    }
}

/// The stored answer to a key, for a request with the same operation and parameters; a
/// refusal for a key reused with other ones.
fn replay<T: DeserializeOwned>(
    key: &IdempotencyKey,
    (operation, fingerprint, response): (&str, &str, &str),
    requested: &str,
    request_fingerprint: &str,
) -> Result<T, PaymentError> {
    if operation != requested || fingerprint != request_fingerprint {
        return Err(PaymentError::Invalid(format!(
            "idempotency key {key} was already used with other parameters"
        )));
    }
    let stored: Stored<T> = serde_json::from_str(response).map_err(|e| {
        PaymentError::Protocol(format!("stored answer for {key} is unreadable: {e}"))
    })?;
    match stored {
        Stored::Ok(value) => Ok(value),
        Stored::Err(error) => Err(error),
    }
}

/// Runs one keyed operation: replay, or act and store the answer, in one transaction.
macro_rules! keyed {
    ($self:ident, $key:expr, $operation:literal, $fingerprint:expr, |$txn:ident| $body:expr) => {{
        let request_fingerprint = fingerprint(&$fingerprint);
        match $self.start($key, $operation, &request_fingerprint).await? {
            Err(replayed) => replayed,
            Ok($txn) => {
                let result = $body;
                $self
                    .finish($txn, $key, $operation, &request_fingerprint, result)
                    .await
            }
        }
    }};
}

#[async_trait]
impl PaymentGateway for SimulatedGateway {
    fn provider(&self) -> &'static str {
        "simulated"
    }

    fn reuses_payment_methods(&self) -> bool {
        true
    }

    async fn authorize_hold(&self, request: HoldRequest) -> Result<HoldOutcome, PaymentError> {
        let batcher = {
            let mut running = self.holds.0.lock().expect("hold batcher lock");
            match running.as_ref() {
                Some(batcher) if !batcher.is_stopped() => batcher.clone(),
                _ => running
                    .insert(holds::start(Self {
                        holds: Holds::default(),
                        ..self.clone()
                    }))
                    .clone(),
            }
        };
        batcher
            .call(request, "simulated hold")
            .await
            .map_err(|e| PaymentError::Transient(e.to_string()))?
    }

    async fn capture(
        &self,
        reference: &PaymentRef,
        amount_minor: i64,
        key: &IdempotencyKey,
    ) -> Result<Capture, PaymentError> {
        keyed!(
            self,
            key,
            "capture",
            format!("{reference}|{amount_minor}"),
            |txn| self.do_capture(&txn, reference, amount_minor).await
        )
    }

    async fn release(
        &self,
        reference: &PaymentRef,
        key: &IdempotencyKey,
    ) -> Result<(), PaymentError> {
        keyed!(self, key, "release", reference.to_string(), |txn| self
            .do_release(&txn, reference)
            .await)
    }

    async fn save_card_for_later(
        &self,
        request: SetupRequest,
    ) -> Result<SetupOutcome, PaymentError> {
        let key = request.idempotency_key.clone();
        keyed!(
            self,
            &key,
            "save_card",
            format!(
                "{}|{}|{:?}|{}|{:?}",
                request.card.redacted(),
                request.customer_ref,
                request.provider_customer,
                request.description,
                request.metadata
            ),
            |txn| self.do_save(&txn, &request).await
        )
    }

    async fn charge_saved_card(
        &self,
        request: ChargeRequest,
    ) -> Result<ChargeOutcome, PaymentError> {
        let key = request.idempotency_key.clone();
        keyed!(
            self,
            &key,
            "charge_saved_card",
            format!(
                "{}|{}|{}|{}|{}|{:?}",
                request.amount_minor,
                request.currency,
                request.card.customer,
                request.card.payment_method,
                request.description,
                request.metadata
            ),
            |txn| self.do_charge(&txn, &request).await
        )
    }

    async fn refund(
        &self,
        reference: &PaymentRef,
        amount_minor: i64,
        key: &IdempotencyKey,
    ) -> Result<Refund, PaymentError> {
        keyed!(
            self,
            key,
            "refund",
            format!("{reference}|{amount_minor}"),
            |txn| self.do_refund(&txn, reference, amount_minor).await
        )
    }

    async fn payment_status(&self, reference: &PaymentRef) -> Result<PaymentState, PaymentError> {
        let payment: SimPayment = load_or_invalid(&self.db, reference.as_str()).await?;
        Ok(payment_state(&payment))
    }

    async fn open_holds(&self, since: DateTime<Utc>) -> Result<Vec<OpenHold>, PaymentError> {
        let payments = store::created_since::<SimPayment>(&self.db, "payment", since).await?;
        Ok(payments
            .into_iter()
            .filter(|(_, p)| p.status == Status::RequiresCapture)
            .map(|(created_at, p)| OpenHold {
                state: payment_state(&p),
                created_at,
            })
            .collect())
    }

    async fn setup_status(&self, reference: &SetupRef) -> Result<SetupOutcome, PaymentError> {
        let setup: SimSetup = load_or_invalid(&self.db, reference.as_str()).await?;
        Ok(setup_outcome(&setup))
    }

    fn parse_webhook(&self, payload: &str, signature: &str) -> Result<PaymentEvent, WebhookError> {
        webhook::verify(
            payload,
            signature,
            &self.webhook_secret,
            Utc::now().timestamp(),
        )?;
        #[derive(Deserialize)]
        struct Envelope {
            id: String,
            #[serde(rename = "type")]
            event_type: String,
            created: i64,
            data: serde_json::Value,
        }
        let envelope: Envelope =
            serde_json::from_str(payload).map_err(|e| WebhookError::Malformed(e.to_string()))?;
        let payment = if envelope.event_type.starts_with("payment_intent.") {
            let object = envelope
                .data
                .get("object")
                .cloned()
                .ok_or_else(|| WebhookError::Malformed("no data.object".into()))?;
            Some(
                serde_json::from_value(object)
                    .map_err(|e| WebhookError::Malformed(e.to_string()))?,
            )
        } else {
            None
        };
        Ok(PaymentEvent {
            id: envelope.id,
            event_type: envelope.event_type,
            created: envelope.created,
            payment,
        })
    }
}

async fn load_or_invalid<T: DeserializeOwned>(
    c: &impl sea_orm::ConnectionTrait,
    id: &str,
) -> Result<T, PaymentError> {
    store::load(c, id, false)
        .await?
        .ok_or_else(|| PaymentError::Invalid(format!("no such simulated object: {id}")))
}

async fn load_locked_or_invalid<T: DeserializeOwned>(
    c: &impl sea_orm::ConnectionTrait,
    id: &str,
) -> Result<T, PaymentError> {
    store::load(c, id, true)
        .await?
        .ok_or_else(|| PaymentError::Invalid(format!("no such simulated object: {id}")))
}

fn check_secret(expected: &str, given: &str) -> Result<(), PaymentError> {
    if expected == given {
        Ok(())
    } else {
        Err(PaymentError::Invalid("client secret does not match".into()))
    }
}

fn random_id(len: usize) -> String {
    rand::rng()
        .sample_iter(Alphanumeric)
        .take(len)
        .map(char::from)
        .collect()
}

fn new_payment(
    amount: i64,
    currency: Currency,
    manual_capture: bool,
    card: SimCard,
    description: &str,
    metadata: BTreeMap<String, String>,
) -> SimPayment {
    let id = crate::ids::new_id("simpi");
    SimPayment {
        client_secret: format!("{id}_secret_{}", random_id(24)),
        id,
        amount,
        currency,
        manual_capture,
        card,
        status: Status::Failed,
        amount_capturable: 0,
        amount_received: 0,
        amount_refunded: 0,
        decline: None,
        description: description.to_owned(),
        metadata,
    }
}

fn provider_code(reason: DeclineReason) -> &'static str {
    match reason {
        DeclineReason::Generic => "card_declined",
        DeclineReason::InsufficientFunds => "insufficient_funds",
        DeclineReason::ExpiredCard => "expired_card",
        DeclineReason::IncorrectCvc => "incorrect_cvc",
        DeclineReason::IncorrectNumber => "incorrect_number",
        DeclineReason::AuthenticationFailed => "payment_intent_authentication_failure",
    }
}

fn fail_payment(payment: &mut SimPayment, reason: DeclineReason) {
    payment.status = Status::Failed;
    payment.amount_capturable = 0;
    payment.decline = Some(
        Decline::new(reason, Some(provider_code(reason).into()))
            .with_reference(PaymentRef::new(&payment.id)),
    );
}

fn pending_payment(payment: &SimPayment) -> PendingAction {
    PendingAction {
        intent: IntentRef::Payment(PaymentRef::new(&payment.id)),
        client_secret: payment.client_secret.clone(),
        next_step: NextStep::Simulated,
    }
}

fn setup_outcome(setup: &SimSetup) -> SetupOutcome {
    match setup.status {
        Status::Succeeded => SetupOutcome::Saved(SavedCard {
            setup: SetupRef::new(&setup.id),
            customer: setup.customer.clone(),
            payment_method: setup.payment_method.clone(),
            card: setup.card.summary.clone(),
        }),
        Status::RequiresAction => SetupOutcome::RequiresAction(PendingAction {
            intent: IntentRef::Setup(SetupRef::new(&setup.id)),
            client_secret: setup.client_secret.clone(),
            next_step: NextStep::Simulated,
        }),
        _ => SetupOutcome::Declined(
            setup
                .decline
                .clone()
                .unwrap_or_else(|| Decline::new(DeclineReason::Generic, None)),
        ),
    }
}

fn payment_state(payment: &SimPayment) -> PaymentState {
    let status = match payment.status {
        Status::RequiresAction => PaymentStatus::RequiresAction {
            client_secret: Some(payment.client_secret.clone()),
        },
        Status::RequiresCapture => PaymentStatus::Authorized {
            amount_capturable: payment.amount_capturable,
        },
        Status::Succeeded => PaymentStatus::Succeeded {
            amount_received: payment.amount_received,
        },
        Status::Canceled => PaymentStatus::Canceled,
        Status::Failed => PaymentStatus::Failed {
            decline: payment.decline.clone(),
        },
    };
    PaymentState {
        reference: PaymentRef::new(&payment.id),
        amount_minor: payment.amount,
        currency: payment.currency,
        status,
        metadata: payment.metadata.clone(),
    }
}

/// The test-card table. A bad number, expiry or CVC is a decline, as at Stripe.
fn card_from_number(
    number: &str,
    exp_month: u32,
    exp_year: u32,
    cvc: &str,
) -> Result<SimCard, Decline> {
    let decline = |reason: DeclineReason| Decline::new(reason, Some(provider_code(reason).into()));
    let digits =
        number.len() >= 12 && number.len() <= 19 && number.bytes().all(|b| b.is_ascii_digit());
    if !digits || !luhn(number) {
        return Err(decline(DeclineReason::IncorrectNumber));
    }
    let exp_year = if exp_year < 100 {
        exp_year + 2000
    } else {
        exp_year
    };
    let today = Utc::now();
    if !(1..=12).contains(&exp_month)
        || (exp_year, exp_month) < (today.year() as u32, today.month())
    {
        return Err(decline(DeclineReason::ExpiredCard));
    }
    if !(3..=4).contains(&cvc.len()) || !cvc.bytes().all(|b| b.is_ascii_digit()) {
        return Err(decline(DeclineReason::IncorrectCvc));
    }
    let behaviour = match number {
        "4000000000000002" => Behaviour::DeclineAtBid(DeclineReason::Generic),
        "4000000000009995" => Behaviour::DeclineAtBid(DeclineReason::InsufficientFunds),
        "4000000000000069" => Behaviour::DeclineAtBid(DeclineReason::ExpiredCard),
        "4000000000000127" => Behaviour::DeclineAtBid(DeclineReason::IncorrectCvc),
        "4000000000000341" => Behaviour::DeclineOnCharge,
        "4000002500003155" => Behaviour::AuthenticateOnSession,
        "4000002760003184" => Behaviour::AuthenticateAlways,
        _ => Behaviour::Approve,
    };
    let brand = match number.as_bytes()[0] {
        b'4' => "visa",
        b'5' | b'2' => "mastercard",
        b'3' => "amex",
        _ => "unknown",
    };
    Ok(SimCard {
        summary: CardSummary {
            brand: Some(brand.to_owned()),
            last4: Some(number[number.len() - 4..].to_owned()),
            exp_month: Some(exp_month),
            exp_year: Some(exp_year),
        },
        behaviour,
    })
}

fn luhn(number: &str) -> bool {
    let sum: u32 = number
        .bytes()
        .rev()
        .enumerate()
        .map(|(i, b)| {
            let d = u32::from(b - b'0');
            if i % 2 == 1 {
                let doubled = d * 2;
                if doubled > 9 { doubled - 9 } else { doubled }
            } else {
                d
            }
        })
        .sum();
    sum.is_multiple_of(10)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_test_cards_pass_luhn_and_typos_do_not() {
        for number in [
            "4242424242424242",
            "4000000000000002",
            "4000000000000341",
            "4000002500003155",
            "4000002760003184",
            "5555555555554444",
        ] {
            assert!(luhn(number), "{number}");
        }
        assert!(!luhn("4242424242424241"));
    }

    #[test]
    fn card_table_reads_like_stripe_test_cards() {
        let card = |n| card_from_number(n, 12, 2099, "123");
        assert_eq!(
            card("4242424242424242").unwrap().behaviour,
            Behaviour::Approve
        );
        assert_eq!(
            card("4000000000000002").unwrap().behaviour,
            Behaviour::DeclineAtBid(DeclineReason::Generic)
        );
        assert_eq!(
            card("4000000000000341").unwrap().behaviour,
            Behaviour::DeclineOnCharge
        );
        assert_eq!(
            card("4000002500003155").unwrap().behaviour,
            Behaviour::AuthenticateOnSession
        );
        assert_eq!(
            card("4242424242424241").unwrap_err().reason,
            DeclineReason::IncorrectNumber
        );
        assert_eq!(
            card_from_number("4242424242424242", 1, 2001, "123")
                .unwrap_err()
                .reason,
            DeclineReason::ExpiredCard
        );
        assert_eq!(
            card_from_number("4242424242424242", 12, 2099, "12")
                .unwrap_err()
                .reason,
            DeclineReason::IncorrectCvc
        );
        let summary = card("4242424242424242").unwrap().summary;
        assert_eq!(summary.last4.as_deref(), Some("4242"));
        assert_eq!(summary.brand.as_deref(), Some("visa"));
    }
}
