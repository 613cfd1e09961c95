//! Start-up: connect and migrate the store, load the demo into an empty database, bind the
//! port, and serve until SIGTERM/SIGINT (actix-web drains in-flight requests on either).

use std::net::TcpListener;

use actix_web::dev::Server;
use actix_web::{App, HttpServer, middleware, web};
use tracing_actix_web::TracingLogger;

use crate::config::Settings;
use crate::demo::{self, DemoSummary};
use crate::http::json::MAX_BODY_BYTES;
use crate::http::{self, metrics::Metrics};
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

        let listener = TcpListener::bind(settings.bind).map_err(|source| StartupError::Bind {
            addr: settings.bind,
            source,
        })?;
        let bound = listener.local_addr().map_err(|source| StartupError::Bind {
            addr: settings.bind,
            source,
        })?;
        let public_url = settings.public_url(bound);
        let signer = SessionSigner::load_or_create(&db).await.map_err(db_error)?;
        let server = serve(listener, db.clone(), signer).map_err(|source| StartupError::Bind {
            addr: settings.bind,
            source,
        })?;
        Ok(Self {
            port: bound.port(),
            public_url,
            db,
            demo,
            server,
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

    pub async fn run_until_stopped(self) -> std::io::Result<()> {
        self.server.await
    }
}

fn serve(listener: TcpListener, db: Db, signer: SessionSigner) -> std::io::Result<Server> {
    let db = web::Data::new(db);
    let metrics = web::Data::new(Metrics::new());
    let signer = web::Data::new(signer);
    // One throttle per process: a flood of wrong pairs is slowed wherever it lands.
    let throttle = web::Data::new(LoginThrottle::default());
    let server = HttpServer::new(move || {
        App::new()
            .wrap(middleware::from_fn(http::idempotency::guard))
            .wrap(middleware::from_fn(http::metrics::record))
            .wrap(TracingLogger::default())
            .app_data(web::PayloadConfig::new(MAX_BODY_BYTES))
            .app_data(db.clone())
            .app_data(metrics.clone())
            .app_data(signer.clone())
            .app_data(throttle.clone())
            .configure(http::routes)
    })
    .shutdown_timeout(20)
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
