//! The real Stripe API through `async-stripe` 1.0 (split crates, pinned in Cargo.toml).
//!
//! - hold: a PaymentIntent with `capture_method=manual`, created and confirmed in one call;
//!   capture with `amount_to_capture`; release is a cancel;
//! - charge on award: a Customer and a SetupIntent (`usage=off_session`) confirmed with the card
//!   at bid time, then a PaymentIntent confirmed `off_session` on a win;
//! - refunds against the PaymentIntent.
//!
//! Every request carries `Idempotency-Key` ([`RequestStrategy::Idempotent`]); operations that
//! make several calls derive one key per call from the caller's key (`{key}/payment-method`,
//! `{key}/intent`, …), so a retried operation replays each step. Every request has a timeout.
//! A 402 is a decline (`card_declined` and friends); 401/403 a configuration error; 409, 429
//! and 5xx, time-outs and connection failures are transient.
//!
//! Cards typed into the local form are turned into PaymentMethods from their raw number: Stripe
//! accepts that in test mode, and in live mode only for accounts cleared for raw card data;
//! live integrations send `CardSource::PaymentMethod` ids from Stripe.js instead.

use std::collections::HashMap;
use std::str::FromStr;
use std::time::Duration;

use async_trait::async_trait;
use stripe::{ApiErrors, Client, ClientBuilder, RequestStrategy, StripeError, StripeRequest};
use stripe_core::customer::CreateCustomer;
use stripe_core::payment_intent::{
    CancelPaymentIntent, CapturePaymentIntent, CreatePaymentIntent,
    CreatePaymentIntentAutomaticPaymentMethods,
    CreatePaymentIntentAutomaticPaymentMethodsAllowRedirects, CreatePaymentIntentOffSession,
    ListPaymentIntent, RetrievePaymentIntent,
};
use stripe_core::refund::CreateRefund;
use stripe_core::setup_intent::{
    ConfirmSetupIntent, CreateSetupIntent, CreateSetupIntentAutomaticPaymentMethods,
    CreateSetupIntentAutomaticPaymentMethodsAllowRedirects, CreateSetupIntentUsage,
    RetrieveSetupIntent,
};
use stripe_core::{
    PaymentIntent, PaymentIntentCaptureMethod, PaymentIntentStatus, SetupIntent, SetupIntentStatus,
};
use stripe_payment::payment_method::{
    CreatePaymentMethod, CreatePaymentMethodCard, CreatePaymentMethodCardDetailsParams,
    CreatePaymentMethodTokenParams, CreatePaymentMethodType, RetrievePaymentMethod,
};
use stripe_types::Expandable;

use super::error::{Decline, DeclineReason, PaymentError, WebhookError};
use super::types::*;
use super::{PaymentGateway, check_amount};
use crate::money::Currency;

#[derive(Clone, Debug)]
pub struct StripeConfig {
    pub secret_key: String,
    /// `None` for `https://api.stripe.com/`; an emulator such as `http://127.0.0.1:8420/`.
    pub api_base: Option<String>,
    /// Signing secret of the webhook endpoint (`whsec_…`); webhooks are refused without it.
    pub webhook_secret: Option<String>,
    /// Per request, connection included. async-stripe has none by default.
    pub timeout: Duration,
}

impl Default for StripeConfig {
    fn default() -> Self {
        Self {
            secret_key: String::new(),
            api_base: None,
            webhook_secret: None,
            timeout: Duration::from_secs(30),
        }
    }
}

pub struct StripeGateway {
    client: Client,
    webhook_secret: Option<String>,
}

impl std::fmt::Debug for StripeGateway {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StripeGateway").finish_non_exhaustive()
    }
}

impl StripeGateway {
    pub fn new(config: StripeConfig) -> Result<Self, PaymentError> {
        if config.secret_key.trim().is_empty() {
            return Err(PaymentError::Configuration(
                "the Stripe secret key is empty".into(),
            ));
        }
        let mut builder = ClientBuilder::new(config.secret_key.trim()).timeout(config.timeout);
        if let Some(base) = &config.api_base {
            // The client appends `v1/…` to the base: a path prefix needs its trailing slash.
            let base = if base.ends_with('/') {
                base.clone()
            } else {
                format!("{base}/")
            };
            builder = builder.url(base);
        }
        let client = builder
            .build()
            .map_err(|e| PaymentError::Configuration(e.to_string()))?;
        Ok(Self {
            client,
            webhook_secret: config.webhook_secret,
        })
    }

    /// The PaymentMethod to confirm with, or the decline of the card details themselves.
    async fn payment_method(
        &self,
        card: &CardSource,
        key: &IdempotencyKey,
    ) -> Result<Result<String, Decline>, PaymentError> {
        let create = match card {
            CardSource::PaymentMethod(id) if !id.starts_with("tok_") => {
                return Ok(Ok(id.clone()));
            }
            CardSource::PaymentMethod(token) => CreatePaymentMethod::new()
                .type_(CreatePaymentMethodType::Card)
                .card(CreatePaymentMethodCard::TokenParams(
                    CreatePaymentMethodTokenParams::new(token.clone()),
                )),
            CardSource::Card {
                number,
                exp_month,
                exp_year,
                cvc,
            } => {
                let mut details = CreatePaymentMethodCardDetailsParams::new(
                    *exp_month,
                    *exp_year,
                    number.clone(),
                );
                details.cvc = Some(cvc.clone());
                CreatePaymentMethod::new()
                    .type_(CreatePaymentMethodType::Card)
                    .card(CreatePaymentMethodCard::CardDetailsParams(details))
            }
        };
        match create
            .customize()
            .request_strategy(idempotent(&key.part("payment-method"))?)
            .send(&self.client)
            .await
        {
            Ok(method) => Ok(Ok(method.id.to_string())),
            Err(error) => match classify(error) {
                Failure::Declined(decline, _) => Ok(Err(decline)),
                Failure::Error(error) => Err(error),
            },
        }
    }

    async fn card_summary(&self, payment_method: &str) -> CardSummary {
        // Read-only and cosmetic: a failure leaves the summary empty rather than failing a save.
        match RetrievePaymentMethod::new(payment_method)
            .send(&self.client)
            .await
        {
            Ok(method) => method
                .card
                .map(|card| CardSummary {
                    brand: Some(card.brand),
                    last4: Some(card.last4),
                    exp_month: u32::try_from(card.exp_month).ok(),
                    exp_year: u32::try_from(card.exp_year).ok(),
                })
                .unwrap_or_default(),
            Err(_) => CardSummary::default(),
        }
    }
}

/// `Idempotency-Key` for one request.
fn idempotent(key: &str) -> Result<RequestStrategy, PaymentError> {
    stripe::IdempotencyKey::new(key)
        .map(RequestStrategy::Idempotent)
        .map_err(|e| PaymentError::Invalid(format!("idempotency key: {e}")))
}

fn metadata(extra: &std::collections::BTreeMap<String, String>) -> HashMap<String, String> {
    extra.iter().map(|(k, v)| (k.clone(), v.clone())).collect()
}

fn stripe_currency(currency: Currency) -> stripe_types::Currency {
    let Ok(c) = stripe_types::Currency::from_str(&currency.code().to_ascii_lowercase());
    c
}

fn our_currency(currency: &stripe_types::Currency) -> Result<Currency, PaymentError> {
    Currency::parse(&currency.to_string())
        .map_err(|e| PaymentError::Protocol(format!("currency from Stripe: {e}")))
}

/// A Stripe error, sorted: a decline (with the PaymentIntent the error carried, if any) or one
/// of our error kinds.
enum Failure {
    Declined(Decline, Option<Box<PaymentIntent>>),
    Error(PaymentError),
}

fn decline_of(error: &ApiErrors) -> Decline {
    let code = error
        .decline_code
        .clone()
        .or_else(|| error.code.as_ref().map(|c| c.as_str().to_owned()));
    let reason = code
        .as_deref()
        .map(DeclineReason::from_code)
        .unwrap_or(DeclineReason::Generic);
    let mut decline = Decline::new(reason, code);
    if let Some(intent) = &error.payment_intent {
        decline = decline.with_reference(PaymentRef::new(intent.id.as_str()));
    }
    decline
}

fn classify(error: StripeError) -> Failure {
    let error = match error {
        StripeError::Stripe(api, 402) => {
            let decline = decline_of(&api);
            return Failure::Declined(decline, api.payment_intent.map(Box::new));
        }
        StripeError::Stripe(api, status) => {
            let message = format!(
                "Stripe {status} {}: {}",
                api.code
                    .as_ref()
                    .map(|c| c.as_str())
                    .unwrap_or(api.type_.as_str()),
                api.message.as_deref().unwrap_or("no message")
            );
            let code = api.code.as_ref().map(|c| c.as_str());
            match status {
                409 if code == Some("idempotency_key_in_use") => PaymentError::InProgress(message),
                401 | 403 => PaymentError::Configuration(message),
                409 | 424 | 429 | 500..=599 => PaymentError::Transient(message),
                _ => PaymentError::Invalid(message),
            }
        }
        StripeError::ClientError(message) => PaymentError::Transient(message),
        StripeError::Timeout => PaymentError::Transient("Stripe did not answer in time".into()),
        StripeError::ConfigError(message) => PaymentError::Configuration(message),
        StripeError::JSONDeserialize(message) => PaymentError::Protocol(message),
    };
    Failure::Error(error)
}

fn fail(error: StripeError) -> PaymentError {
    match classify(error) {
        Failure::Declined(decline, _) => PaymentError::Declined(decline),
        Failure::Error(error) => error,
    }
}

fn pending(
    intent: IntentRef,
    client_secret: Option<&str>,
    redirect: Option<String>,
) -> PendingAction {
    PendingAction {
        intent,
        client_secret: client_secret.unwrap_or_default().to_owned(),
        next_step: match redirect {
            Some(url) => NextStep::Redirect { url },
            None => NextStep::StripeSdk,
        },
    }
}

fn redirect_of(intent: &PaymentIntent) -> Option<String> {
    intent
        .next_action
        .as_ref()
        .and_then(|next| next.redirect_to_url.as_ref())
        .and_then(|redirect| redirect.url.clone())
}

fn failed_decline(intent: &PaymentIntent) -> Decline {
    let decline = intent
        .last_payment_error
        .as_deref()
        .map(decline_of)
        .unwrap_or_else(|| Decline::new(DeclineReason::Generic, None));
    decline.with_reference(PaymentRef::new(intent.id.as_str()))
}

/// A PaymentIntent in our words.
pub fn payment_state(intent: &PaymentIntent) -> Result<PaymentState, PaymentError> {
    let status = match &intent.status {
        PaymentIntentStatus::RequiresAction => PaymentStatus::RequiresAction {
            client_secret: intent.client_secret.clone(),
        },
        PaymentIntentStatus::RequiresCapture => PaymentStatus::Authorized {
            amount_capturable: intent.amount_capturable,
        },
        PaymentIntentStatus::Succeeded => PaymentStatus::Succeeded {
            amount_received: intent.amount_received,
        },
        PaymentIntentStatus::Canceled => PaymentStatus::Canceled,
        PaymentIntentStatus::RequiresPaymentMethod => PaymentStatus::Failed {
            decline: intent
                .last_payment_error
                .as_ref()
                .map(|_| failed_decline(intent)),
        },
        _ => PaymentStatus::Processing,
    };
    Ok(PaymentState {
        reference: PaymentRef::new(intent.id.as_str()),
        amount_minor: intent.amount,
        currency: our_currency(&intent.currency)?,
        status,
        metadata: intent
            .metadata
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect(),
    })
}

fn hold_outcome(intent: &PaymentIntent) -> Result<HoldOutcome, PaymentError> {
    let reference = PaymentRef::new(intent.id.as_str());
    match &intent.status {
        PaymentIntentStatus::RequiresCapture => Ok(HoldOutcome::Authorized(Authorization {
            reference,
            amount_minor: if intent.amount_capturable > 0 {
                intent.amount_capturable
            } else {
                intent.amount
            },
            currency: our_currency(&intent.currency)?,
            card: CardSummary::default(),
        })),
        PaymentIntentStatus::RequiresAction => Ok(HoldOutcome::RequiresAction(pending(
            IntentRef::Payment(reference),
            intent.client_secret.as_deref(),
            redirect_of(intent),
        ))),
        PaymentIntentStatus::RequiresPaymentMethod => {
            Ok(HoldOutcome::Declined(failed_decline(intent)))
        }
        other => Err(PaymentError::Protocol(format!(
            "hold {reference} is {} after confirmation",
            other.as_str()
        ))),
    }
}

fn id_of<T: stripe_types::Object>(value: &Expandable<T>) -> String
where
    T::Id: ToString,
{
    value.id().to_string()
}

#[async_trait]
impl PaymentGateway for StripeGateway {
    fn provider(&self) -> &'static str {
        "stripe"
    }

    fn reuses_payment_methods(&self) -> bool {
        false
    }

    async fn authorize_hold(&self, request: HoldRequest) -> Result<HoldOutcome, PaymentError> {
        check_amount(request.amount_minor)?;
        let key = &request.idempotency_key;
        let payment_method = match self.payment_method(&request.card, key).await? {
            Ok(id) => id,
            Err(decline) => return Ok(HoldOutcome::Declined(decline)),
        };
        let mut meta = metadata(&request.metadata);
        if let Some(customer) = &request.customer_ref {
            meta.insert("surclass_customer".into(), customer.clone());
        }
        let mut create =
            CreatePaymentIntent::new(request.amount_minor, stripe_currency(request.currency))
                .capture_method(PaymentIntentCaptureMethod::Manual)
                .payment_method(payment_method)
                .confirm(true)
                .automatic_payment_methods(no_redirects())
                .metadata(meta);
        if !request.description.is_empty() {
            create = create.description(request.description.clone());
        }
        match create
            .customize()
            .request_strategy(idempotent(&key.part("intent"))?)
            .send(&self.client)
            .await
        {
            Ok(intent) => {
                let mut outcome = hold_outcome(&intent)?;
                if let HoldOutcome::Authorized(authorization) = &mut outcome
                    && let Some(method) = &intent.payment_method
                {
                    authorization.card = self.card_summary(&id_of(method)).await;
                }
                Ok(outcome)
            }
            Err(error) => match classify(error) {
                Failure::Declined(decline, _) => Ok(HoldOutcome::Declined(decline)),
                Failure::Error(error) => Err(error),
            },
        }
    }

    async fn capture(
        &self,
        reference: &PaymentRef,
        amount_minor: i64,
        key: &IdempotencyKey,
    ) -> Result<Capture, PaymentError> {
        check_amount(amount_minor)?;
        let capture = CapturePaymentIntent::new(reference.as_str()).amount_to_capture(amount_minor);
        let intent = capture
            .customize()
            .request_strategy(idempotent(key.as_str())?)
            .send(&self.client)
            .await
            .map_err(fail)?;
        match intent.status {
            PaymentIntentStatus::Succeeded => Ok(Capture {
                reference: reference.clone(),
                amount_minor: intent.amount_received,
                currency: our_currency(&intent.currency)?,
            }),
            PaymentIntentStatus::RequiresPaymentMethod => {
                Err(PaymentError::Declined(failed_decline(&intent)))
            }
            other => Err(PaymentError::Protocol(format!(
                "{reference} is {} after capture",
                other.as_str()
            ))),
        }
    }

    async fn release(
        &self,
        reference: &PaymentRef,
        key: &IdempotencyKey,
    ) -> Result<(), PaymentError> {
        match CancelPaymentIntent::new(reference.as_str())
            .customize()
            .request_strategy(idempotent(key.as_str())?)
            .send(&self.client)
            .await
        {
            Ok(_) => Ok(()),
            Err(StripeError::Stripe(api, 400)) => {
                // Already canceled (fine) or captured (refund instead): ask which.
                let intent = RetrievePaymentIntent::new(reference.as_str())
                    .send(&self.client)
                    .await
                    .map_err(fail)?;
                match intent.status {
                    PaymentIntentStatus::Canceled => Ok(()),
                    PaymentIntentStatus::Succeeded => Err(PaymentError::Invalid(format!(
                        "{reference} is captured: refund it instead of releasing"
                    ))),
                    _ => Err(fail(StripeError::Stripe(api, 400))),
                }
            }
            Err(error) => Err(fail(error)),
        }
    }

    async fn save_card_for_later(
        &self,
        request: SetupRequest,
    ) -> Result<SetupOutcome, PaymentError> {
        let key = &request.idempotency_key;
        let customer = match &request.provider_customer {
            Some(id) => id.clone(),
            None => {
                let mut meta = HashMap::new();
                meta.insert("surclass_customer".to_owned(), request.customer_ref.clone());
                let create = CreateCustomer::new().metadata(meta);
                let customer = create
                    .customize()
                    .request_strategy(idempotent(&key.part("customer"))?)
                    .send(&self.client)
                    .await
                    .map_err(fail)?;
                customer.id.to_string()
            }
        };
        let payment_method = match self.payment_method(&request.card, key).await? {
            Ok(id) => id,
            Err(decline) => return Ok(SetupOutcome::Declined(decline)),
        };
        let mut meta = metadata(&request.metadata);
        meta.insert("surclass_customer".into(), request.customer_ref.clone());
        let mut create = CreateSetupIntent::new()
            .customer(customer.clone())
            .usage(CreateSetupIntentUsage::OffSession)
            .automatic_payment_methods(CreateSetupIntentAutomaticPaymentMethods {
                allow_redirects: Some(
                    CreateSetupIntentAutomaticPaymentMethodsAllowRedirects::Never,
                ),
                enabled: true,
            })
            .metadata(meta);
        if !request.description.is_empty() {
            create = create.description(request.description.clone());
        }
        let setup = create
            .customize()
            .request_strategy(idempotent(&key.part("setup"))?)
            .send(&self.client)
            .await
            .map_err(fail)?;
        let confirm =
            ConfirmSetupIntent::new(setup.id.clone()).payment_method(payment_method.clone());
        match confirm
            .customize()
            .request_strategy(idempotent(&key.part("confirm"))?)
            .send(&self.client)
            .await
        {
            Ok(setup) => self.setup_outcome(&setup, Some(&payment_method)).await,
            Err(error) => match classify(error) {
                Failure::Declined(decline, _) => Ok(SetupOutcome::Declined(decline)),
                Failure::Error(error) => Err(error),
            },
        }
    }

    async fn charge_saved_card(
        &self,
        request: ChargeRequest,
    ) -> Result<ChargeOutcome, PaymentError> {
        check_amount(request.amount_minor)?;
        let mut create =
            CreatePaymentIntent::new(request.amount_minor, stripe_currency(request.currency))
                .customer(request.card.customer.clone())
                .payment_method(request.card.payment_method.clone())
                .confirm(true)
                .off_session(CreatePaymentIntentOffSession::Bool(true))
                .automatic_payment_methods(no_redirects())
                .metadata(metadata(&request.metadata));
        if !request.description.is_empty() {
            create = create.description(request.description.clone());
        }
        let intent = match create
            .customize()
            .request_strategy(idempotent(&request.idempotency_key.part("intent"))?)
            .send(&self.client)
            .await
        {
            Ok(intent) => intent,
            Err(error) => {
                return match classify(error) {
                    // Off-session 3-D Secure: Stripe answers 402 authentication_required with
                    // the PaymentIntent; the traveller must come back and confirm it.
                    Failure::Declined(decline, Some(intent))
                        if decline.provider_code.as_deref() == Some("authentication_required") =>
                    {
                        Ok(ChargeOutcome::RequiresAction(pending(
                            IntentRef::Payment(PaymentRef::new(intent.id.as_str())),
                            intent.client_secret.as_deref(),
                            None,
                        )))
                    }
                    Failure::Declined(decline, _) => Ok(ChargeOutcome::Declined(decline)),
                    Failure::Error(error) => Err(error),
                };
            }
        };
        let reference = PaymentRef::new(intent.id.as_str());
        match &intent.status {
            PaymentIntentStatus::Succeeded => Ok(ChargeOutcome::Charged(Charge {
                reference,
                amount_minor: intent.amount_received,
                currency: our_currency(&intent.currency)?,
            })),
            PaymentIntentStatus::RequiresAction => Ok(ChargeOutcome::RequiresAction(pending(
                IntentRef::Payment(reference),
                intent.client_secret.as_deref(),
                redirect_of(&intent),
            ))),
            PaymentIntentStatus::RequiresPaymentMethod => {
                Ok(ChargeOutcome::Declined(failed_decline(&intent)))
            }
            other => Err(PaymentError::Transient(format!(
                "{reference} is {}; read payment_status later",
                other.as_str()
            ))),
        }
    }

    async fn refund(
        &self,
        reference: &PaymentRef,
        amount_minor: i64,
        key: &IdempotencyKey,
    ) -> Result<Refund, PaymentError> {
        check_amount(amount_minor)?;
        let create = CreateRefund::new()
            .payment_intent(reference.as_str())
            .amount(amount_minor);
        let refund = create
            .customize()
            .request_strategy(idempotent(key.as_str())?)
            .send(&self.client)
            .await
            .map_err(fail)?;
        Ok(Refund {
            reference: RefundRef::new(refund.id.as_str()),
            payment: reference.clone(),
            amount_minor: refund.amount,
            currency: our_currency(&refund.currency)?,
        })
    }

    async fn payment_status(&self, reference: &PaymentRef) -> Result<PaymentState, PaymentError> {
        let intent = RetrievePaymentIntent::new(reference.as_str())
            .send(&self.client)
            .await
            .map_err(fail)?;
        payment_state(&intent)
    }

    async fn open_holds(
        &self,
        since: chrono::DateTime<chrono::Utc>,
    ) -> Result<Vec<OpenHold>, PaymentError> {
        // Stripe lists newest first and cannot filter by status: page until the intents are
        // older than `since`. (Not the `created` filter: localstripe refuses it.)
        let since = since.timestamp();
        let mut open = Vec::new();
        let mut after: Option<String> = None;
        loop {
            let mut list = ListPaymentIntent::new().limit(100);
            if let Some(id) = &after {
                list = list.starting_after(id.as_str());
            }
            let page = list.send(&self.client).await.map_err(fail)?;
            let older = page.data.iter().any(|intent| intent.created < since);
            for intent in page.data.iter().filter(|intent| intent.created >= since) {
                if intent.status == PaymentIntentStatus::RequiresCapture {
                    open.push(OpenHold {
                        state: payment_state(intent)?,
                        created_at: chrono::DateTime::from_timestamp(intent.created, 0)
                            .unwrap_or_default(),
                    });
                }
            }
            match page.data.last() {
                Some(last) if page.has_more && !older => after = Some(last.id.to_string()),
                _ => return Ok(open),
            }
        }
    }

    async fn setup_status(&self, reference: &SetupRef) -> Result<SetupOutcome, PaymentError> {
        let setup = RetrieveSetupIntent::new(reference.as_str())
            .send(&self.client)
            .await
            .map_err(fail)?;
        self.setup_outcome(&setup, None).await
    }

    fn parse_webhook(&self, payload: &str, signature: &str) -> Result<PaymentEvent, WebhookError> {
        let secret = self
            .webhook_secret
            .as_deref()
            .filter(|s| !s.is_empty())
            .ok_or(WebhookError::NotConfigured)?;
        let event =
            stripe_webhook::Webhook::construct_event(payload, signature, secret).map_err(|e| {
                match e {
                    stripe_webhook::WebhookError::BadSignature => WebhookError::BadSignature,
                    stripe_webhook::WebhookError::BadHeader(_) => WebhookError::BadHeader,
                    stripe_webhook::WebhookError::BadTimestamp(t) => WebhookError::Stale(t),
                    stripe_webhook::WebhookError::BadKey => WebhookError::NotConfigured,
                    stripe_webhook::WebhookError::BadParse(m) => WebhookError::Malformed(m),
                }
            })?;
        event_of(event)
    }
}

impl StripeGateway {
    async fn setup_outcome(
        &self,
        setup: &SetupIntent,
        payment_method: Option<&str>,
    ) -> Result<SetupOutcome, PaymentError> {
        let reference = SetupRef::new(setup.id.as_str());
        match &setup.status {
            SetupIntentStatus::Succeeded => {
                let customer = setup.customer.as_ref().map(id_of).ok_or_else(|| {
                    PaymentError::Protocol(format!("{reference} has no customer"))
                })?;
                let method = payment_method
                    .map(str::to_owned)
                    .or_else(|| setup.payment_method.as_ref().map(id_of))
                    .ok_or_else(|| {
                        PaymentError::Protocol(format!("{reference} has no payment method"))
                    })?;
                let card = self.card_summary(&method).await;
                Ok(SetupOutcome::Saved(SavedCard {
                    setup: reference,
                    customer,
                    payment_method: method,
                    card,
                }))
            }
            SetupIntentStatus::RequiresAction => Ok(SetupOutcome::RequiresAction(pending(
                IntentRef::Setup(reference),
                setup.client_secret.as_deref(),
                setup
                    .next_action
                    .as_ref()
                    .and_then(|next| next.redirect_to_url.as_ref())
                    .and_then(|redirect| redirect.url.clone()),
            ))),
            SetupIntentStatus::RequiresPaymentMethod | SetupIntentStatus::Canceled => {
                Ok(SetupOutcome::Declined(
                    setup
                        .last_setup_error
                        .as_deref()
                        .map(decline_of)
                        .unwrap_or_else(|| Decline::new(DeclineReason::Generic, None)),
                ))
            }
            other => Err(PaymentError::Protocol(format!(
                "{reference} is {} after confirmation",
                other.as_str()
            ))),
        }
    }
}

fn no_redirects() -> CreatePaymentIntentAutomaticPaymentMethods {
    // Cards only, no redirect-based methods: then confirming needs no `return_url`.
    let mut methods = CreatePaymentIntentAutomaticPaymentMethods::new(true);
    methods.allow_redirects = Some(CreatePaymentIntentAutomaticPaymentMethodsAllowRedirects::Never);
    methods
}

fn event_of(event: stripe_webhook::Event) -> Result<PaymentEvent, WebhookError> {
    use stripe_webhook::EventObject as O;
    let intent = match &event.data.object {
        O::PaymentIntentAmountCapturableUpdated(pi)
        | O::PaymentIntentCanceled(pi)
        | O::PaymentIntentCreated(pi)
        | O::PaymentIntentPartiallyFunded(pi)
        | O::PaymentIntentPaymentFailed(pi)
        | O::PaymentIntentProcessing(pi)
        | O::PaymentIntentRequiresAction(pi)
        | O::PaymentIntentSucceeded(pi) => Some(pi),
        _ => None,
    };
    let payment = intent
        .map(|pi| payment_state(pi))
        .transpose()
        .map_err(|e| WebhookError::Malformed(e.to_string()))?;
    Ok(PaymentEvent {
        id: event.id.to_string(),
        event_type: event.type_.as_str().to_owned(),
        created: event.created,
        payment,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use stripe::{ApiErrorsCode, ApiErrorsType};

    fn api_error(code: ApiErrorsCode) -> Box<ApiErrors> {
        Box::new(ApiErrors {
            advice_code: None,
            charge: None,
            code: Some(code),
            decline_code: None,
            doc_url: None,
            message: Some(
                "There is currently another in-progress request using this Stripe-Idempotency-Key"
                    .into(),
            ),
            network_advice_code: None,
            network_decline_code: None,
            param: None,
            payment_intent: None,
            payment_method: None,
            payment_method_type: None,
            request_log_url: None,
            setup_intent: None,
            source: None,
            type_: ApiErrorsType::IdempotencyError,
        })
    }

    #[test]
    fn a_key_still_in_use_is_told_apart_from_other_conflicts() {
        let in_use = fail(StripeError::Stripe(
            api_error(ApiErrorsCode::IdempotencyKeyInUse),
            409,
        ));
        assert!(matches!(in_use, PaymentError::InProgress(_)), "{in_use:?}");
        assert!(in_use.is_retryable());
        let other = fail(StripeError::Stripe(
            api_error(ApiErrorsCode::LockTimeout),
            409,
        ));
        assert!(matches!(other, PaymentError::Transient(_)), "{other:?}");
    }
}
