//! Sending email: a transport trait with an SMTP implementation (lettre, rustls) and a local
//! mailbox for the embedded default, where the message stays in the outbox for the operator
//! API to list (nothing to install for the demo).

use async_trait::async_trait;
use lettre::message::header::{ContentType, HeaderName, HeaderValue};
use lettre::message::{Mailbox, Message};
use lettre::{AsyncSmtpTransport, AsyncTransport, Tokio1Executor};

/// One email, ready to go.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutgoingEmail {
    /// Display name: the operator's name.
    pub from_name: String,
    pub from_address: String,
    /// The operator's support address: replies reach people, never a no-reply box.
    pub reply_to: String,
    pub to: String,
    pub subject: String,
    pub body: String,
    /// Stable per outbox row, so a receiver can drop a duplicate after a crash and resend.
    pub message_id: String,
    pub language: String,
    /// One-click unsubscribe URL (RFC 8058), on optional messages only.
    pub unsubscribe_url: Option<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum SendError {
    /// Try again later (server down, 4xx).
    #[error("{0}")]
    Transient(String),
    /// Will never work as it is (bad address, 5xx): parked for the operator.
    #[error("{0}")]
    Permanent(String),
}

#[async_trait]
pub trait EmailTransport: Send + Sync {
    /// `"smtp"` or `"local"`.
    fn kind(&self) -> &'static str;
    async fn send(&self, email: &OutgoingEmail) -> Result<(), SendError>;
}

/// Builds the RFC 5322 message: From with the operator's name, Reply-To to its support,
/// Message-ID, Content-Language, and List-Unsubscribe + List-Unsubscribe-Post when optional.
pub fn build_message(email: &OutgoingEmail) -> Result<Message, SendError> {
    let bad = |what: &str, e: &dyn std::fmt::Display| SendError::Permanent(format!("{what}: {e}"));
    let from = Mailbox::new(
        Some(email.from_name.clone()),
        email
            .from_address
            .parse()
            .map_err(|e| bad("sender address", &e))?,
    );
    let reply_to: Mailbox = email
        .reply_to
        .parse()
        .map_err(|e| bad("support address", &e))?;
    let to: Mailbox = email.to.parse().map_err(|e| bad("recipient address", &e))?;
    let mut builder = Message::builder()
        .from(from)
        .reply_to(reply_to)
        .to(to)
        .subject(email.subject.clone())
        .message_id(Some(email.message_id.clone()))
        .header(ContentType::TEXT_PLAIN)
        .raw_header(HeaderValue::new(
            HeaderName::new_from_ascii_str("Content-Language"),
            email.language.clone(),
        ));
    if let Some(url) = &email.unsubscribe_url {
        builder = builder
            .raw_header(HeaderValue::new(
                HeaderName::new_from_ascii_str("List-Unsubscribe"),
                format!("<{url}>"),
            ))
            .raw_header(HeaderValue::new(
                HeaderName::new_from_ascii_str("List-Unsubscribe-Post"),
                "List-Unsubscribe=One-Click".to_owned(),
            ));
    }
    builder
        .body(email.body.clone())
        .map_err(|e| bad("message", &e))
}

/// SMTP through lettre: `smtp://host:port` (plain, for a local relay), `smtp://…?tls=required`
/// (STARTTLS) or `smtps://user:pass@host` (TLS).
pub struct SmtpTransport {
    mailer: AsyncSmtpTransport<Tokio1Executor>,
}

impl SmtpTransport {
    pub fn from_url(url: &str) -> Result<Self, String> {
        let mailer = AsyncSmtpTransport::<Tokio1Executor>::from_url(url)
            .map_err(|e| format!("SURCLASS_SMTP_URL: {e}"))?
            .timeout(Some(std::time::Duration::from_secs(20)))
            .build();
        Ok(Self { mailer })
    }
}

#[async_trait]
impl EmailTransport for SmtpTransport {
    fn kind(&self) -> &'static str {
        "smtp"
    }

    async fn send(&self, email: &OutgoingEmail) -> Result<(), SendError> {
        let message = build_message(email)?;
        match self.mailer.send(message).await {
            Ok(_) => Ok(()),
            Err(e) if e.is_permanent() => Err(SendError::Permanent(e.to_string())),
            Err(e) => Err(SendError::Transient(e.to_string())),
        }
    }
}

/// The embedded default: the message is checked and kept in the outbox (recipient, subject,
/// body), which the operator API lists as the local mailbox.
pub struct LocalMailbox;

#[async_trait]
impl EmailTransport for LocalMailbox {
    fn kind(&self) -> &'static str {
        "local"
    }

    async fn send(&self, email: &OutgoingEmail) -> Result<(), SendError> {
        build_message(email).map(|_| ())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_optional_message_carries_one_click_unsubscribe_headers() {
        let email = OutgoingEmail {
            from_name: "Aurora Air".into(),
            from_address: "upgrades@surclass.example".into(),
            reply_to: "help@aurora.example".into(),
            to: "t@example.com".into(),
            subject: "Bidding closes soon".into(),
            body: "Hello".into(),
            message_id: "<m1@surclass>".into(),
            language: "en".into(),
            unsubscribe_url: Some("https://up.example/unsubscribe/x".into()),
        };
        let raw = String::from_utf8(build_message(&email).unwrap().formatted()).unwrap();
        assert!(
            raw.contains("From: \"Aurora Air\" <upgrades@surclass.example>")
                || raw.contains("From: Aurora Air <upgrades@surclass.example>"),
            "{raw}"
        );
        assert!(raw.contains("Reply-To: help@aurora.example"), "{raw}");
        assert!(raw.contains("List-Unsubscribe: <https://up.example/unsubscribe/x>"));
        assert!(raw.contains("List-Unsubscribe-Post: List-Unsubscribe=One-Click"));
        assert!(raw.contains("Message-ID: <m1@surclass>"));
    }
}
