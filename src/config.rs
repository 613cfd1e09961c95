//! Configuration: flags, each with an environment variable and a default that works on a
//! fresh machine. A bad value stops start-up with one line naming the flag (clap's error).

use std::net::SocketAddr;

use clap::{Args, ValueEnum};

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

    /// Payment gateway: `simulated` needs nothing installed and behaves like Stripe test cards.
    #[arg(long, env = "SURCLASS_PAYMENT_GATEWAY", value_enum, default_value_t = Gateway::Simulated)]
    pub payment_gateway: Gateway,

    /// Log format: human-readable `text`, or one `json` object per line for log shippers.
    #[arg(long, env = "SURCLASS_LOG_FORMAT", value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,

    /// Database connections in the pool.
    #[arg(long, env = "SURCLASS_DB_CONNECTIONS", default_value_t = 8, value_parser = clap::value_parser!(u32).range(1..=256))]
    pub db_connections: u32,

    /// Do not load demo data into an empty database on start.
    #[arg(long, env = "SURCLASS_NO_DEMO")]
    pub no_demo: bool,
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

fn parse_public_url(value: &str) -> Result<String, String> {
    if (value.starts_with("http://") || value.starts_with("https://")) && value.len() > 8 {
        Ok(value.to_owned())
    } else {
        Err("expected an absolute http:// or https:// URL".to_owned())
    }
}
