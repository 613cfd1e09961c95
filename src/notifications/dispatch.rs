//! Delivering outbox rows: the body of the `deliver` and `deliver_many` jobs.
//!
//! "Never sent twice": a run claims the row first (a conditional update that only a pending,
//! due row passes, moving its next attempt past the longest send), so one run at a time
//! sends it whichever jobs name it; it is marked sent, with what the attempt leaves (the
//! email's copy, the webhook attempt), in one commit right after the SMTP server (or the
//! webhook receiver) accepted it. What remains is the
//! window between that acceptance and that commit: a crash there sends the message again on
//! the next run, with the same `Message-ID` (email) or `Surclass-Delivery` id (webhook), which
//! receivers use to drop the duplicate.

use std::sync::Arc;

use chrono::{DateTime, Duration, Utc};
use sea_orm::{ColumnTrait, DbErr, EntityTrait, QueryFilter, QuerySelect};

use super::email::{EmailTransport, OutgoingEmail, SendError};
use super::outbox::{self, Facts};
use super::render::{self, Context};
use super::webhook_targets::WebhookTargets;
use super::why::Why;
use super::{Topic, unsubscribe, webhooks};
use crate::domain::bid::BidStatus;
use crate::domain::outcome::OutcomeReason;
use crate::local_time;
use crate::services::links::{self, PublicUrl};
use crate::services::sessions::SessionSigner;
use crate::store::Db;
use crate::store::entities::{
    bid, booking, lot, operator, outbox as outbox_entity, webhook_endpoint,
};

/// What stands for a link's token in the operator's copy of an email.
const HIDDEN_TOKEN: &str = "…";

/// The text with the token of each of this service's status and unsubscribe links replaced
/// by `…`: where each link was shows, not what it opens.
pub fn hide_tokens(body: &str, public_url: &PublicUrl) -> String {
    let prefixes = [
        format!("{}/s/", public_url.as_str()),
        format!("{}/unsubscribe/", public_url.as_str()),
    ];
    let mut kept = String::with_capacity(body.len());
    let mut rest = body;
    while let Some((at, prefix)) = prefixes
        .iter()
        .filter_map(|p| rest.find(p.as_str()).map(|at| (at, p)))
        .min()
    {
        kept.push_str(&rest[..at + prefix.len()]);
        kept.push_str(HIDDEN_TOKEN);
        rest = &rest[at + prefix.len()..];
        rest = &rest[rest.find(char::is_whitespace).unwrap_or(rest.len())..];
    }
    kept.push_str(rest);
    kept
}

/// How messages go out, from the settings.
#[derive(Debug, Clone)]
pub struct NotifySettings {
    /// The sender address (the display name is the operator's).
    pub from_address: String,
    /// How long before bidding closes the reminder goes.
    pub reminder_lead: Duration,
    /// Email attempts before a message is parked (30 s doubling to an hour between them).
    pub email_max_attempts: i32,
    /// Which addresses webhook receivers may have.
    pub webhook_targets: WebhookTargets,
}

impl Default for NotifySettings {
    fn default() -> Self {
        Self {
            from_address: "upgrades@surclass.invalid".to_owned(),
            reminder_lead: Duration::hours(6),
            email_max_attempts: 10,
            webhook_targets: WebhookTargets::PUBLIC_ONLY,
        }
    }
}

/// How long a run has the messages it claimed to itself: longer than sending them all can
/// take (an SMTP server gets 20 s, a webhook receiver 10 s), short enough that a crash
/// mid-send is retried soon.
fn claim_for(messages: usize) -> Duration {
    Duration::seconds(60 + 30 * i64::try_from(messages.min(1_000)).unwrap_or(1_000))
}

pub struct Notifier {
    db: Db,
    transport: Arc<dyn EmailTransport>,
    http: reqwest::Client,
    public_url: PublicUrl,
    signer: SessionSigner,
    settings: NotifySettings,
}

impl Notifier {
    pub fn new(
        db: Db,
        transport: Arc<dyn EmailTransport>,
        public_url: PublicUrl,
        signer: SessionSigner,
        settings: NotifySettings,
    ) -> Self {
        let mut http = reqwest::Client::builder()
            .timeout(std::time::Duration::from_secs(10))
            // A receiver answers for itself: no following redirects elsewhere.
            .redirect(reqwest::redirect::Policy::none());
        if let Some(resolver) = settings.webhook_targets.resolver() {
            // A proxy (HTTP_PROXY and the like) would resolve the name itself, past the
            // public-address check: with the check on, webhooks go direct.
            http = http.dns_resolver(resolver).no_proxy();
        }
        let http = http.build().expect("HTTP client builds");
        Self {
            db,
            transport,
            http,
            public_url,
            signer,
            settings,
        }
    }

    pub fn settings(&self) -> &NotifySettings {
        &self.settings
    }

    /// Delivers the due messages among `ids`. `Ok(Some(t))`: some are still pending (failed
    /// for now, not due yet, or claimed by a run that died); run again at `t`.
    pub async fn deliver(&self, ids: &[i64]) -> Result<Option<DateTime<Utc>>, DbErr> {
        for row in self.claim(ids).await? {
            self.deliver_claimed(row).await?;
        }
        let waiting: Vec<DateTime<Utc>> = outbox_entity::Entity::find()
            .select_only()
            .column(outbox_entity::Column::NextAttemptAt)
            .filter(outbox_entity::Column::Id.is_in(ids.iter().copied()))
            .filter(outbox_entity::Column::Status.eq(outbox::PENDING))
            .into_tuple()
            .all(&self.db)
            .await?;
        Ok(waiting.into_iter().min())
    }

    /// Takes the due, pending messages among `ids` for this run: their next attempt moves past
    /// the longest send, in one conditional update, so a message is sent by one run at a time
    /// even when two jobs name it (a batch, and an operator's retry of a parked message).
    async fn claim(&self, ids: &[i64]) -> Result<Vec<outbox_entity::Model>, DbErr> {
        let _turn = crate::store::sqlite_write_turn(&self.db).await;
        let now = Utc::now();
        outbox_entity::Entity::update_many()
            .col_expr(
                outbox_entity::Column::NextAttemptAt,
                (now + claim_for(ids.len())).into(),
            )
            .filter(outbox_entity::Column::Id.is_in(ids.iter().copied()))
            .filter(outbox_entity::Column::Status.eq(outbox::PENDING))
            .filter(outbox_entity::Column::NextAttemptAt.lte(now))
            .exec_with_returning(&self.db)
            .await
    }

    /// Sends one claimed message and records how it went.
    async fn deliver_claimed(&self, row: outbox_entity::Model) -> Result<(), DbErr> {
        let (Some(topic), Ok(facts)) = (
            Topic::parse(&row.topic),
            serde_json::from_str::<Facts>(&row.payload),
        ) else {
            return self
                .finish(&row, outbox::PARKED, Some("unreadable message".into()))
                .await;
        };
        match row.channel.as_str() {
            outbox::EMAIL => self.email(row, topic, facts).await,
            outbox::WEBHOOK => self.webhook(row, topic, facts).await,
            other => {
                let why = format!("unknown channel {other}");
                self.finish(&row, outbox::PARKED, Some(why)).await
            }
        }
    }

    async fn email(
        &self,
        row: outbox_entity::Model,
        topic: Topic,
        facts: Facts,
    ) -> Result<(), DbErr> {
        let booking = booking::Entity::find_by_id(facts.booking_id.clone())
            .one(&self.db)
            .await?
            .filter(|b| b.erased_at.is_none());
        let Some((booking, to)) = booking.and_then(|b| {
            let to = b.email.clone().filter(|e| !e.trim().is_empty())?;
            Some((b, to))
        }) else {
            let why = "no email address for this booking (none given, or erased)";
            self.finish(&row, outbox::SUPPRESSED, Some(why.into()))
                .await?;
            return Ok(());
        };
        if topic.is_optional() {
            if unsubscribe::is_unsubscribed(&self.db, &booking.id).await? {
                let why = "the traveller unsubscribed";
                self.finish(&row, outbox::SUPPRESSED, Some(why.into()))
                    .await?;
                return Ok(());
            }
            // A reminder for a bid withdrawn (or a lot closed) meanwhile would only confuse.
            let still_active = bid::Entity::find_by_id(facts.bid_id.clone())
                .one(&self.db)
                .await?
                .is_some_and(|b| b.status == BidStatus::Active.as_str());
            if !still_active {
                let why = "the bid is no longer active";
                self.finish(&row, outbox::SUPPRESSED, Some(why.into()))
                    .await?;
                return Ok(());
            }
        }
        // A bid let go for want of units and placed again since is in play: the older news
        // that it could not win would contradict what the traveller did after it (placed
        // again, then let go again, it is the newer email that speaks).
        let no_room = matches!(&facts.why, Some(Why::Outcome { reason, .. }) if reason == OutcomeReason::NoRoomLeft.as_str());
        if topic == Topic::NotSuccessful && no_room {
            let still_let_go = bid::Entity::find_by_id(facts.bid_id.clone())
                .one(&self.db)
                .await?
                .is_some_and(|b| {
                    b.outcome_reason.as_deref() == Some(OutcomeReason::NoRoomLeft.as_str())
                        && b.submitted_at <= facts.at
                });
            if !still_let_go {
                let why = "the bid was placed again";
                self.finish(&row, outbox::SUPPRESSED, Some(why.into()))
                    .await?;
                return Ok(());
            }
        }
        // A new closing time told after the bid ended, or once the close moved again, would
        // mislead: only the newest move's email goes out, with the offer as it now stands.
        let mut facts = facts;
        if topic == Topic::DeadlineMoved {
            let Some(amount_minor) = self.offer_if_close_as_told(&facts).await? else {
                let why = "the bid is no longer active, or the close moved again";
                self.finish(&row, outbox::SUPPRESSED, Some(why.into()))
                    .await?;
                return Ok(());
            };
            facts.amount_minor = amount_minor;
        }
        let Some(op) = operator::Entity::find_by_id(booking.operator_id.clone())
            .one(&self.db)
            .await?
        else {
            self.finish(&row, outbox::PARKED, Some("operator missing".into()))
                .await?;
            return Ok(());
        };
        // An email that says until when bids can change says the close as it is now: the
        // operator may have moved it since the email was written.
        if matches!(
            topic,
            Topic::BidPlaced | Topic::BidChanged | Topic::Reminder | Topic::NotRecorded
        ) && let Some(l) = lot::Entity::find_by_id(facts.lot_id.clone())
            .one(&self.db)
            .await?
        {
            facts.closes_at = l.closes_at;
        }
        let now = Utc::now();
        let status_url = links::status_url(&self.public_url, &self.signer, &booking.id, now);
        let unsubscribe_url = topic.is_optional().then(|| {
            format!(
                "{}/unsubscribe/{}",
                self.public_url.as_str(),
                unsubscribe::token(&self.signer, &booking.id)
            )
        });
        let rendered = render::render(
            topic,
            &facts,
            &Context {
                language: &booking.language,
                last_name: &booking.last_name,
                operator_name: &op.name,
                support_email: &op.support_email,
                status_url: &status_url,
                unsubscribe_url: unsubscribe_url.as_deref(),
            },
        );
        let email = OutgoingEmail {
            from_name: op.name.clone(),
            from_address: self.settings.from_address.clone(),
            reply_to: op.support_email.clone(),
            to: to.clone(),
            subject: rendered.subject.clone(),
            body: rendered.body.clone(),
            message_id: row
                .message_id
                .clone()
                .unwrap_or_else(|| format!("<outbox-{}@surclass>", row.id)),
            language: rendered.language.to_owned(),
            unsubscribe_url,
        };
        // What went out (the operator's view, and the local mailbox) is written with how it
        // went, in the same commit: one write per attempt, not two.
        let copy = EmailCopy {
            recipient: to,
            subject: rendered.subject,
            body: self.operators_copy(&email),
        };
        let attempt = row.attempts + 1;
        match self.transport.send(&email).await {
            Ok(()) => self.sent(&row, attempt, Trace::Email(copy)).await,
            Err(SendError::Permanent(e)) => {
                self.failed(&row, attempt, attempt, e, Trace::Email(copy))
                    .await
            }
            Err(SendError::Transient(e)) => {
                let max = self.settings.email_max_attempts;
                self.failed(&row, attempt, max, e, Trace::Email(copy)).await
            }
        }
    }

    /// The offer per person of a bid still active whose lot still closes when `facts` said
    /// (to the minute, as the email writes it; stores keep times to different precisions).
    async fn offer_if_close_as_told(&self, facts: &Facts) -> Result<Option<i64>, DbErr> {
        let Some(b) = bid::Entity::find_by_id(facts.bid_id.clone())
            .one(&self.db)
            .await?
            .filter(|b| b.status == BidStatus::Active.as_str())
        else {
            return Ok(None);
        };
        let as_told = lot::Entity::find_by_id(facts.lot_id.clone())
            .one(&self.db)
            .await?
            .is_some_and(|l| local_time::same_minute(l.closes_at, facts.closes_at));
        Ok(as_told.then_some(b.amount_minor))
    }

    /// The text kept for the operator's view. The links in an email open the traveller's
    /// booking (a session) or stop their reminders, so once a real mail server carries the
    /// email they go to the traveller only. Without one, the kept copy is the local mailbox
    /// and must keep its links.
    fn operators_copy(&self, email: &OutgoingEmail) -> String {
        if self.transport.kind() == "local" {
            email.body.clone()
        } else {
            hide_tokens(&email.body, &self.public_url)
        }
    }

    async fn webhook(
        &self,
        row: outbox_entity::Model,
        topic: Topic,
        facts: Facts,
    ) -> Result<(), DbErr> {
        let endpoint = match &row.endpoint_id {
            Some(id) => {
                webhook_endpoint::Entity::find_by_id(id.clone())
                    .one(&self.db)
                    .await?
            }
            None => None,
        };
        let Some(endpoint) = endpoint else {
            let why = "the endpoint was deleted";
            self.finish(&row, outbox::SUPPRESSED, Some(why.into()))
                .await?;
            return Ok(());
        };
        // Paused (by its owner, or with the partner key that made it): kept where an operator
        // can send it once the endpoint is resumed, not dropped.
        if !endpoint.active {
            let why = "not sent: the endpoint is paused; retry it once the endpoint is active";
            self.finish(&row, outbox::PARKED, Some(why.into())).await?;
            return Ok(());
        }
        let now = Utc::now();
        let attempt = row.attempts + 1;
        // Registered before the rule, or written around the API: refused, never called.
        if let Some(why) = self.settings.webhook_targets.refusal(&endpoint.url) {
            let why = format!("not sent: the URL {why}");
            let trace = Trace::Webhook {
                at: now,
                status_code: None,
                error: Some(why.clone()),
            };
            // Trying again would not help: parked at once, where the operator sees why.
            return self.failed(&row, attempt, attempt, why, trace).await;
        }
        let body = webhooks::body(topic.as_str(), &facts);
        let signature = webhooks::sign(&endpoint.secret, now.timestamp(), &body);
        let answer = self
            .http
            .post(&endpoint.url)
            .header("Content-Type", "application/json")
            .header("User-Agent", "Surclass-Webhooks/1")
            .header(webhooks::SIGNATURE_HEADER, signature)
            .header(webhooks::EVENT_HEADER, topic.as_str())
            .header(
                webhooks::DELIVERY_HEADER,
                row.message_id
                    .clone()
                    .unwrap_or_else(|| facts.event_id.clone()),
            )
            .body(body)
            .send()
            .await;
        let (code, error) = match answer {
            Ok(res) if res.status().is_success() => (Some(res.status().as_u16() as i32), None),
            Ok(res) => (
                Some(res.status().as_u16() as i32),
                Some(format!("the receiver answered {}", res.status())),
            ),
            Err(e) => (None, Some(format!("not reached: {}", causes(&e)))),
        };
        let trace = Trace::Webhook {
            at: now,
            status_code: code,
            error: error.clone(),
        };
        match error {
            None => self.sent(&row, attempt, trace).await,
            Some(e) => {
                self.failed(&row, attempt, webhooks::MAX_ATTEMPTS, e, trace)
                    .await
            }
        }
    }

    /// Marked sent, with the attempt's trace, right after the receiver accepted it.
    async fn sent(
        &self,
        row: &outbox_entity::Model,
        attempts: i32,
        trace: Trace,
    ) -> Result<(), DbErr> {
        let update = outbox_entity::Entity::update_many()
            .col_expr(outbox_entity::Column::Status, outbox::SENT.into())
            .col_expr(outbox_entity::Column::Attempts, attempts.into())
            .col_expr(outbox_entity::Column::SentAt, Some(Utc::now()).into())
            // No next attempt: not the claim's horizon.
            .col_expr(outbox_entity::Column::NextAttemptAt, Utc::now().into())
            .col_expr(
                outbox_entity::Column::LastError,
                Option::<String>::None.into(),
            )
            .filter(outbox_entity::Column::Id.eq(row.id));
        self.write_outcome(row.id, attempts, update, trace).await
    }

    async fn failed(
        &self,
        row: &outbox_entity::Model,
        attempts: i32,
        max_attempts: i32,
        error: String,
        trace: Trace,
    ) -> Result<(), DbErr> {
        let update = if attempts >= max_attempts {
            tracing::warn!(message = row.id, attempts, error = %error, "message parked");
            outbox_entity::Entity::update_many()
                .col_expr(outbox_entity::Column::Status, outbox::PARKED.into())
                // No next attempt until an operator retries: not the claim's horizon.
                .col_expr(outbox_entity::Column::NextAttemptAt, Utc::now().into())
        } else {
            let next = Utc::now() + outbox::backoff(attempts);
            outbox_entity::Entity::update_many()
                .col_expr(outbox_entity::Column::NextAttemptAt, next.into())
        };
        let update = update
            .col_expr(outbox_entity::Column::Attempts, attempts.into())
            .col_expr(outbox_entity::Column::LastError, Some(error).into())
            .filter(outbox_entity::Column::Id.eq(row.id))
            .filter(outbox_entity::Column::Status.eq(outbox::PENDING));
        self.write_outcome(row.id, attempts, update, trace).await
    }

    /// The message's new state and the attempt's trace, in one commit. A webhook attempt is
    /// listed with its outcome or not at all: written apart, a failure between the two would
    /// list an attempt the message does not count, and its retry the same number again.
    async fn write_outcome(
        &self,
        message: i64,
        attempts: i32,
        update: sea_orm::UpdateMany<outbox_entity::Entity>,
        trace: Trace,
    ) -> Result<(), DbErr> {
        let _turn = crate::store::sqlite_write_turn(&self.db).await;
        match trace {
            Trace::Email(copy) => {
                // The copy goes only onto a message still pending: one whose booking was
                // erased while it was being sent keeps none of it, and says it went (as does
                // one another run already recorded, which keeps its own copy).
                let still_pending = update
                    .clone()
                    .filter(outbox_entity::Column::Status.eq(outbox::PENDING));
                if keep(still_pending, copy)
                    .exec(&self.db)
                    .await?
                    .rows_affected
                    == 0
                {
                    update.exec(&self.db).await?;
                }
            }
            Trace::Webhook {
                at,
                status_code,
                error,
            } => {
                let txn = crate::store::write_txn(&self.db).await?;
                webhooks::record_attempt(&txn, message, attempts, at, status_code, error).await?;
                update.exec(&txn).await?;
                txn.commit().await?;
            }
        }
        Ok(())
    }

    async fn finish(
        &self,
        row: &outbox_entity::Model,
        status: &str,
        error: Option<String>,
    ) -> Result<(), DbErr> {
        let _turn = crate::store::sqlite_write_turn(&self.db).await;
        outbox_entity::Entity::update_many()
            .col_expr(outbox_entity::Column::Status, status.into())
            // Ended: no next attempt, so not the claim's horizon either.
            .col_expr(outbox_entity::Column::NextAttemptAt, Utc::now().into())
            .col_expr(outbox_entity::Column::LastError, error.into())
            .filter(outbox_entity::Column::Id.eq(row.id))
            .filter(outbox_entity::Column::Status.eq(outbox::PENDING))
            .exec(&self.db)
            .await?;
        Ok(())
    }
}

/// What an attempt leaves besides the message's new state.
enum Trace {
    /// What the email sent, as the operator sees it.
    Email(EmailCopy),
    /// The webhook attempt, listed with its delivery: when, and what the receiver answered.
    Webhook {
        at: DateTime<Utc>,
        status_code: Option<i32>,
        error: Option<String>,
    },
}

/// What an email attempt sent, as the operator sees it.
struct EmailCopy {
    recipient: String,
    subject: String,
    body: String,
}

/// `update` also writing what the email sent.
fn keep(
    update: sea_orm::UpdateMany<outbox_entity::Entity>,
    copy: EmailCopy,
) -> sea_orm::UpdateMany<outbox_entity::Entity> {
    update
        .col_expr(
            outbox_entity::Column::Recipient,
            Some(copy.recipient).into(),
        )
        .col_expr(outbox_entity::Column::Subject, Some(copy.subject).into())
        .col_expr(outbox_entity::Column::Body, Some(copy.body).into())
}

/// An error and its causes, outermost first: reqwest's own message ("error sending request")
/// does not say why (refused, timed out, no public address).
fn causes(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_operators_copy_shows_where_each_link_was_and_none_of_their_tokens() {
        let base = PublicUrl::new("https://up.example/");
        let body = "Dear Roy,\n\nSee your offer: https://up.example/s/v1.abc.DEF-9\nStop reminders: https://up.example/unsubscribe/xyz\nOther: https://elsewhere.example/s/keep";
        assert_eq!(
            hide_tokens(body, &base),
            "Dear Roy,\n\nSee your offer: https://up.example/s/…\nStop reminders: https://up.example/unsubscribe/…\nOther: https://elsewhere.example/s/keep"
        );
        assert_eq!(hide_tokens("no link", &base), "no link");
        assert_eq!(
            hide_tokens("https://up.example/s/tok", &base),
            "https://up.example/s/…"
        );
    }
}
