//! Configuration: flags, each with an environment variable and a default that works on a
//! fresh machine. A bad value stops start-up with one line naming the flag (clap's error).

use std::net::{IpAddr, SocketAddr};

use clap::{Args, ValueEnum};
use ipnet::IpNet;

#[derive(Args, Clone, Debug)]
pub struct Settings {
    /// Database: `sqlite://FILE` (created and migrated on start) or `postgres://…`.
    #[arg(long, env = "DATABASE_URL", default_value = "sqlite://surclass.db", value_parser = parse_database_url)]
    pub database_url: String,

    /// Address to listen on.
    #[arg(long, env = "SURCLASS_BIND", default_value = "127.0.0.1:8080")]
    pub bind: SocketAddr,

    /// Base URL travellers and partners reach this service at (links in messages, the banner).
    /// Defaults to `http://` plus the bound address.
    #[arg(long, env = "SURCLASS_PUBLIC_URL", value_parser = parse_public_url)]
    pub public_url: Option<String>,

    /// Payment gateway: `simulated` needs nothing installed and behaves like Stripe test cards;
    /// `stripe` needs `STRIPE_SECRET_KEY` (see [`StripeSettings`]).
    #[arg(long, env = "SURCLASS_PAYMENT_GATEWAY", value_enum, default_value_t = Gateway::Simulated)]
    pub payment_gateway: Gateway,

    /// Where the simulated gateway keeps its holds and payments, as a provider keeps them
    /// apart from ours: `sqlite://FILE` or `postgres://…`, created and migrated on start.
    /// Unset: a file beside a SQLite store (`surclass-gateway.db`), the store itself on
    /// PostgreSQL. Every process of one deployment must name the same.
    #[arg(long, env = "SURCLASS_SIMULATED_GATEWAY_STORE", value_parser = parse_database_url)]
    pub simulated_gateway_store: Option<String>,

    /// Log format: human-readable `text`, or one `json` object per line for log shippers.
    #[arg(long, env = "SURCLASS_LOG_FORMAT", value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,

    /// Database connections in the pool.
    #[arg(long, env = "SURCLASS_DB_CONNECTIONS", default_value_t = 8, value_parser = clap::value_parser!(u32).range(1..=256))]
    pub db_connections: u32,

    /// Do not load demo data into an empty database on start.
    #[arg(long, env = "SURCLASS_NO_DEMO")]
    pub no_demo: bool,

    /// Jobs (closing lots, charging, releasing holds, refunds) run at once by this process.
    /// The default stays well inside Stripe's rate limit of 100 requests a second.
    #[arg(long, env = "SURCLASS_JOB_CONCURRENCY", default_value_t = 8, value_parser = clap::value_parser!(u32).range(1..=64))]
    pub job_concurrency: u32,

    /// Messages (emails, webhooks), reminders and the purge run at once by this process, in
    /// slots of their own: a slow mail server does not hold up the money, nor a slow payment
    /// provider the news.
    #[arg(long, env = "SURCLASS_DELIVERY_CONCURRENCY", default_value_t = 16, value_parser = clap::value_parser!(u32).range(1..=256))]
    pub delivery_concurrency: u32,

    /// Do not run jobs in this process (another process runs them, or a test drives them).
    #[arg(long, env = "SURCLASS_NO_JOBS")]
    pub no_jobs: bool,

    #[command(flatten)]
    pub stripe: StripeSettings,

    #[command(flatten)]
    pub limits: LimitSettings,

    #[command(flatten)]
    pub notify: NotifyArgs,
}

impl Settings {
    pub fn public_url(&self, bound: SocketAddr) -> String {
        match &self.public_url {
            Some(url) => url.trim_end_matches('/').to_owned(),
            None => format!("http://{bound}"),
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Gateway {
    Simulated,
    Stripe,
}

/// Stripe settings, read when `--payment-gateway stripe` (the webhook secret also signs the
/// simulated gateway's events when set). Kept out of [`Settings`] so that code building
/// `Settings` field by field keeps compiling; flatten it beside `Settings` to expose the flags.
#[derive(Args, Clone, Debug, Default)]
pub struct StripeSettings {
    /// Stripe secret API key (`sk_test_…`/`sk_live_…`, or a restricted `rk_…` key).
    #[arg(long, env = "STRIPE_SECRET_KEY", hide_env_values = true)]
    pub stripe_secret_key: Option<String>,

    /// Stripe API base URL; point it at a local emulator in tests (`http://127.0.0.1:8420/`).
    #[arg(long, env = "STRIPE_API_BASE", value_parser = parse_public_url)]
    pub stripe_api_base: Option<String>,

    /// Signing secret of the Stripe webhook endpoint (`whsec_…`).
    #[arg(long, env = "STRIPE_WEBHOOK_SECRET", hide_env_values = true)]
    pub stripe_webhook_secret: Option<String>,

    /// Stripe publishable key (`pk_test_…`/`pk_live_…`): with the Stripe gateway, the
    /// traveller pages take cards with Stripe's Payment Element (loaded from js.stripe.com).
    #[arg(long, env = "STRIPE_PUBLISHABLE_KEY")]
    pub stripe_publishable_key: Option<String>,
}

impl StripeSettings {
    /// The one-line start-up error when `gateway` needs settings that are missing.
    pub fn check(&self, gateway: Gateway) -> Result<(), String> {
        match gateway {
            Gateway::Simulated => Ok(()),
            Gateway::Stripe => self.stripe_config().map(|_| ()),
        }
    }

    pub fn stripe_config(&self) -> Result<crate::payments::stripe::StripeConfig, String> {
        let secret_key = self
            .stripe_secret_key
            .as_deref()
            .map(str::trim)
            .filter(|key| !key.is_empty())
            .ok_or("--payment-gateway stripe needs a secret key: set STRIPE_SECRET_KEY or --stripe-secret-key")?;
        Ok(crate::payments::stripe::StripeConfig {
            secret_key: secret_key.to_owned(),
            api_base: self.stripe_api_base.clone(),
            webhook_secret: self.stripe_webhook_secret.clone(),
            ..crate::payments::stripe::StripeConfig::default()
        })
    }
}

/// What one client may ask of a process: slow or flooding clients get a clear 408 or 429
/// instead of holding connections and guesses open. Separate from [`Settings`] (like
/// [`StripeSettings`]) so code building `Settings` field by field needs one `Default` line.
#[derive(Args, Clone, Debug)]
pub struct LimitSettings {
    /// Seconds a client has to send its request headers, and then its body, before it gets 408.
    #[arg(long, env = "SURCLASS_CLIENT_TIMEOUT", default_value_t = 10, value_parser = clap::value_parser!(u64).range(1..=600))]
    pub client_timeout: u64,

    /// Sign-in attempts (right or wrong) one client address may make per minute, before 429.
    #[arg(long, env = "SURCLASS_SIGN_INS_PER_MINUTE", default_value_t = 60, value_parser = clap::value_parser!(u32).range(1..=1_000_000))]
    pub sign_ins_per_minute: u32,

    /// Reverse proxies in front of this service (comma-separated addresses or networks, e.g.
    /// `10.0.0.0/8,192.0.2.1`): from them, the client address for per-address limits is read
    /// from `X-Forwarded-For`. Unset, the header is ignored and the TCP peer is the client.
    #[arg(long, env = "SURCLASS_TRUSTED_PROXIES", value_delimiter = ',', value_parser = parse_trusted_proxy)]
    pub trusted_proxies: Vec<IpNet>,
}

impl Default for LimitSettings {
    fn default() -> Self {
        Self {
            client_timeout: 10,
            sign_ins_per_minute: 60,
            trusted_proxies: Vec::new(),
        }
    }
}

/// Messages to travellers and partners (see `crate::notifications`).
#[derive(Args, Clone, Debug)]
pub struct NotifyArgs {
    /// SMTP server for email: `smtp://host:port` (plain, a local relay),
    /// `smtp://user:pass@host:587?tls=required` (STARTTLS) or `smtps://user:pass@host`.
    /// Unset: messages go to the local mailbox (kept in the outbox, listed by the API).
    #[arg(long, env = "SURCLASS_SMTP_URL", hide_env_values = true, value_parser = parse_smtp_url)]
    pub smtp_url: Option<String>,

    /// Sender address of emails (the display name is the operator's; replies go to the
    /// operator's support address). Defaults to `upgrades@` + the public host.
    #[arg(long, env = "SURCLASS_MAIL_FROM")]
    pub mail_from: Option<String>,

    /// Hours before bidding closes that travellers with an active bid get a reminder.
    #[arg(long, env = "SURCLASS_REMINDER_HOURS", default_value_t = 6, value_parser = clap::value_parser!(u32).range(1..=720))]
    pub reminder_hours: u32,

    /// Email attempts before a message is parked for the operator (30 s doubling to an hour
    /// between attempts).
    #[arg(long, env = "SURCLASS_EMAIL_MAX_ATTEMPTS", default_value_t = 10, value_parser = clap::value_parser!(u32).range(1..=50))]
    pub email_max_attempts: u32,

    /// Let webhook endpoints point at loopback, private and link-local addresses (a receiver
    /// on this machine or the local network, for development). Off, such URLs are refused at
    /// registration and at every delivery, so an API key cannot make the server call into
    /// its own network.
    #[arg(long, env = "SURCLASS_WEBHOOKS_TO_PRIVATE_ADDRESSES")]
    pub webhooks_to_private_addresses: bool,
}

impl Default for NotifyArgs {
    fn default() -> Self {
        Self {
            smtp_url: None,
            mail_from: None,
            reminder_hours: 6,
            email_max_attempts: 10,
            webhooks_to_private_addresses: false,
        }
    }
}

impl NotifyArgs {
    /// The sender address: the configured one, or `upgrades@<public host>`.
    pub fn from_address(&self, public_url: &str) -> String {
        if let Some(from) = &self.mail_from {
            return from.clone();
        }
        let host = public_url
            .split("://")
            .nth(1)
            .unwrap_or_default()
            .split(['/', ':'])
            .next()
            .unwrap_or_default();
        if host.chars().any(|c| c.is_ascii_alphabetic()) {
            format!("upgrades@{host}")
        } else {
            "upgrades@localhost".to_owned()
        }
    }
}

fn parse_smtp_url(value: &str) -> Result<String, String> {
    if value.starts_with("smtp://") || value.starts_with("smtps://") {
        Ok(value.to_owned())
    } else {
        Err("expected smtp://host:port or smtps://user:pass@host".to_owned())
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    Text,
    Json,
}

fn parse_database_url(value: &str) -> Result<String, String> {
    let known = ["sqlite:", "postgres://", "postgresql://"];
    if known.iter().any(|scheme| value.starts_with(scheme)) {
        Ok(value.to_owned())
    } else {
        Err("expected sqlite://FILE or postgres://USER@HOST:PORT/DB".to_owned())
    }
}

/// `--trusted-proxies` entries: a network (`10.0.0.0/8`) or one address.
pub(crate) fn parse_trusted_proxy(value: &str) -> Result<IpNet, String> {
    let value = value.trim();
    value
        .parse::<IpNet>()
        .or_else(|_| value.parse::<IpAddr>().map(IpNet::from))
        .map_err(|_| format!("'{value}' is not an address or network (e.g. 10.0.0.0/8, 192.0.2.1)"))
}

fn parse_public_url(value: &str) -> Result<String, String> {
    if (value.starts_with("http://") || value.starts_with("https://")) && value.len() > 8 {
        Ok(value.to_owned())
    } else {
        Err("expected an absolute http:// or https:// URL".to_owned())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_are_networks_or_single_addresses() {
        assert!(parse_trusted_proxy("10.0.0.0/8").is_ok());
        assert!(parse_trusted_proxy(" ::1 ").is_ok());
        let e = parse_trusted_proxy("proxy.local").unwrap_err();
        assert!(
            e.contains("'proxy.local' is not an address or network"),
            "{e}"
        );
    }
}
