//! Start-up: connect and migrate the store, load the demo into an empty database, bind the
//! port, and serve until SIGTERM/SIGINT (actix-web drains in-flight requests on either).

use std::net::TcpListener;

use actix_web::dev::Server;
use actix_web::{App, HttpServer, middleware, web};
use tracing_actix_web::TracingLogger;

use crate::config::{Gateway, Settings};
use crate::demo::{self, DemoSummary};
use std::sync::Arc;

use tokio::sync::watch;

use std::time::Duration;

use crate::http::client_address::TrustedProxies;
use crate::http::json::MAX_BODY_BYTES;
use crate::http::limits::BodyLimits;
use crate::http::traveller_pages::PagesConfig;
use crate::http::{self, metrics::Metrics};
use crate::jobs::Worker;
use crate::notifications::dispatch::{Notifier, NotifySettings};
use crate::notifications::email::{EmailTransport, LocalMailbox, SmtpTransport};
use crate::notifications::webhook_targets::WebhookTargets;
use crate::payments::{self, PaymentGateway};
use crate::services::bids;
use crate::services::links::PublicUrl;
use crate::services::sessions::SessionSigner;
use crate::services::throttle::LoginThrottle;
use crate::store::{self, Db};

#[derive(Debug, thiserror::Error)]
pub enum StartupError {
    #[error("database {url}: {source}")]
    Database {
        url: String,
        #[source]
        source: sea_orm::DbErr,
    },
    #[error("payment gateway: {0}")]
    Payments(#[from] payments::PaymentError),
    #[error("email: {0}")]
    Email(String),
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        addr: std::net::SocketAddr,
        #[source]
        source: std::io::Error,
    },
}

pub struct Application {
    port: u16,
    public_url: String,
    db: Db,
    demo: Option<DemoSummary>,
    server: Server,
    worker: Worker,
    gateway: Arc<dyn PaymentGateway>,
    run_jobs: bool,
}

impl Application {
    pub async fn build(settings: Settings) -> Result<Self, StartupError> {
        let db_error = |source| StartupError::Database {
            url: redact(&settings.database_url),
            source,
        };
        let db = store::connect(&settings.database_url, settings.db_connections)
            .await
            .map_err(db_error)?;
        store::migrate(&db).await.map_err(db_error)?;
        let demo = if settings.no_demo {
            None
        } else {
            demo::load_if_empty(&db).await.map_err(db_error)?
        };

        let listener = listen(settings.bind).map_err(|source| StartupError::Bind {
            addr: settings.bind,
            source,
        })?;
        let bound = listener.local_addr().map_err(|source| StartupError::Bind {
            addr: settings.bind,
            source,
        })?;
        let public_url = settings.public_url(bound);
        let signer = SessionSigner::load_or_create(&db).await.map_err(db_error)?;
        let gateway = payments::from_settings(
            settings.payment_gateway,
            &settings.stripe,
            settings.simulated_gateway_store.as_deref(),
            &db,
        )
        .await?;
        let transport: Arc<dyn EmailTransport> = match &settings.notify.smtp_url {
            Some(url) => Arc::new(SmtpTransport::from_url(url).map_err(StartupError::Email)?),
            None => Arc::new(LocalMailbox),
        };
        let notifier = Notifier::new(
            db.clone(),
            transport,
            PublicUrl::new(public_url.clone()),
            signer.clone(),
            NotifySettings {
                from_address: settings.notify.from_address(&public_url),
                reminder_lead: chrono::Duration::hours(i64::from(settings.notify.reminder_hours)),
                email_max_attempts: settings.notify.email_max_attempts as i32,
                webhook_targets: WebhookTargets::new(settings.notify.webhooks_to_private_addresses),
            },
        );
        let worker = Worker::new(
            db.clone(),
            gateway.clone(),
            settings.job_concurrency as usize,
        )
        .with_delivery_slots(settings.delivery_concurrency as usize)
        .with_notifier(Arc::new(notifier));
        let pages = PagesConfig {
            stripe_publishable_key: (settings.payment_gateway == Gateway::Stripe)
                .then(|| settings.stripe.stripe_publishable_key.clone())
                .flatten()
                .filter(|k| !k.trim().is_empty()),
            secure_cookies: public_url.starts_with("https://"),
        };
        let server = serve(
            listener,
            db.clone(),
            signer,
            gateway.clone(),
            PublicUrl::new(public_url.clone()),
            pages,
            &settings,
        )
        .map_err(|source| StartupError::Bind {
            addr: settings.bind,
            source,
        })?;
        Ok(Self {
            port: bound.port(),
            public_url,
            db,
            demo,
            server,
            worker,
            gateway,
            run_jobs: !settings.no_jobs,
        })
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    pub fn public_url(&self) -> &str {
        &self.public_url
    }

    pub fn db(&self) -> &Db {
        &self.db
    }

    /// Demo data loaded by this start, if the database was empty.
    pub fn demo(&self) -> Option<&DemoSummary> {
        self.demo.as_ref()
    }

    pub fn gateway(&self) -> Arc<dyn PaymentGateway> {
        self.gateway.clone()
    }

    /// The job worker of this process (tests drive it with `run_until_idle`).
    pub fn worker(&self) -> &Worker {
        &self.worker
    }

    /// Serves, and runs jobs unless told not to, until SIGTERM/SIGINT; jobs in flight finish.
    pub async fn run_until_stopped(self) -> std::io::Result<()> {
        let (stop, stopped) = watch::channel(false);
        let jobs = self
            .run_jobs
            .then(|| tokio::spawn(self.worker.clone().run(stopped)));
        let served = self.server.await;
        let _ = stop.send(true);
        if let Some(jobs) = jobs {
            let _ = jobs.await;
        }
        served
    }
}

/// Connections the kernel holds for us until they are accepted. A deadline rush opens many at
/// once; one that finds the queue full is dropped and its client tries again a second later.
/// std's `TcpListener::bind` queues 128; this is actix-web's own default. The kernel caps it
/// at `net.core.somaxconn` (4096 on current Linux).
const PENDING_CONNECTIONS: i32 = 1024;

/// Binds the port, as std does but with a queue of [`PENDING_CONNECTIONS`].
pub fn listen(addr: std::net::SocketAddr) -> std::io::Result<TcpListener> {
    use socket2::{Domain, Protocol, Socket, Type};
    let socket = Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP))?;
    // As std does: a restarted server binds again at once, though the connections it closed
    // linger in TIME_WAIT.
    #[cfg(unix)]
    socket.set_reuse_address(true)?;
    socket.bind(&addr.into())?;
    socket.listen(PENDING_CONNECTIONS)?;
    Ok(socket.into())
}

fn serve(
    listener: TcpListener,
    db: Db,
    signer: SessionSigner,
    gateway: Arc<dyn PaymentGateway>,
    public_url: PublicUrl,
    pages: PagesConfig,
    settings: &Settings,
) -> std::io::Result<Server> {
    let limits = &settings.limits;
    let client_timeout = Duration::from_secs(limits.client_timeout);
    let body_limits = web::Data::new(BodyLimits {
        max_bytes: MAX_BODY_BYTES,
        deadline: client_timeout,
    });
    let public_url = web::Data::new(public_url);
    let pages = web::Data::new(pages);
    let gateway = web::Data::from(gateway);
    let db = web::Data::new(db);
    let metrics = web::Data::new(Metrics::new());
    let signer = web::Data::new(signer);
    let webhook_targets = web::Data::new(WebhookTargets::new(
        settings.notify.webhooks_to_private_addresses,
    ));
    // One bid intake per process: bids placed together share look-ups and a commit.
    let intake = web::Data::new(bids::Intake::start(db.get_ref(), settings.db_connections));
    // One throttle per process: a flood of wrong pairs is slowed wherever it lands.
    let throttle = web::Data::new(
        LoginThrottle::default().with_attempts_per_minute(limits.sign_ins_per_minute),
    );
    let proxies = web::Data::new(TrustedProxies::new(limits.trusted_proxies.clone()));
    let server = HttpServer::new(move || {
        App::new()
            .wrap(middleware::from_fn(http::idempotency::guard))
            .wrap(middleware::from_fn(
                http::traveller_pages::failures_in_their_language,
            ))
            .wrap(middleware::from_fn(http::limits::bodies))
            .wrap(middleware::from_fn(http::metrics::record))
            .wrap(TracingLogger::default())
            .app_data(web::PayloadConfig::new(MAX_BODY_BYTES))
            .app_data(http::malformed::query_config())
            .app_data(http::malformed::form_config())
            .app_data(db.clone())
            .app_data(metrics.clone())
            .app_data(signer.clone())
            .app_data(throttle.clone())
            .app_data(proxies.clone())
            .app_data(gateway.clone())
            .app_data(public_url.clone())
            .app_data(pages.clone())
            .app_data(body_limits.clone())
            .app_data(intake.clone())
            .app_data(webhook_targets.clone())
            .configure(http::routes)
    })
    .shutdown_timeout(20)
    // Headers that take longer get 408 and the connection is closed (bodies: http::limits).
    .client_request_timeout(client_timeout)
    .client_disconnect_timeout(Duration::from_secs(2))
    .listen(listener)?
    .run();
    Ok(server)
}

/// Hides a password in a database URL before it reaches a log line.
pub fn redact(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme_end), Some(at)) if at > scheme_end => {
            let credentials = &url[scheme_end + 3..at];
            match credentials.split_once(':') {
                Some((user, _)) => format!("{}{user}:***{}", &url[..scheme_end + 3], &url[at..]),
                None => url.to_owned(),
            }
        }
        _ => url.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use std::net::TcpStream;
    use std::time::Duration;

    /// A deadline rush opens many connections at once, every traveller's phone its own. Those
    /// the server has not accepted yet wait in the kernel's queue; a connection that finds the
    /// queue full is dropped, and the phone tries again only a second later.
    #[test]
    #[cfg(target_os = "linux")]
    fn a_burst_of_new_connections_waits_to_be_accepted_rather_than_dropped() {
        // More than std's 128; the kernel caps any queue at `somaxconn`.
        const BURST: usize = 200;
        let cap = std::fs::read_to_string("/proc/sys/net/core/somaxconn")
            .ok()
            .and_then(|s| s.trim().parse::<usize>().ok());
        if cap.is_some_and(|c| c < BURST) {
            eprintln!("skipped: net.core.somaxconn {cap:?} holds fewer than {BURST} connections");
            return;
        }
        let listener = super::listen("127.0.0.1:0".parse().unwrap()).unwrap();
        let addr = listener.local_addr().unwrap();
        // Nothing accepts here: each connection is held by the queue alone.
        let held: Vec<TcpStream> = (0..BURST)
            .map(|i| {
                TcpStream::connect_timeout(&addr, Duration::from_millis(500))
                    .unwrap_or_else(|e| panic!("connection {i} of the burst was dropped: {e}"))
            })
            .collect();
        assert_eq!(held.len(), BURST);
    }

    #[test]
    fn passwords_never_reach_the_logs() {
        assert_eq!(
            super::redact("postgres://app:s3cret@db:5432/surclass"),
            "postgres://app:***@db:5432/surclass"
        );
        assert_eq!(
            super::redact("sqlite://surclass.db"),
            "sqlite://surclass.db"
        );
    }
}
