use std::process::ExitCode;

use clap::{Parser, Subcommand};
use surclass::app::{Application, redact};
use surclass::config::Settings;
use surclass::demo::DemoSummary;
use surclass::{demo, store, telemetry};

// glibc's malloc and free took about a fifth of the instructions per bid in a deadline rush;
// mimalloc cuts the total by about a tenth (callgrind, README "Instructions per bid"). With
// the crate's `override` feature (Cargo.toml) SQLite's own allocations go through it as well.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Parser)]
#[command(name = "surclass", version, about = "Sealed-bid upgrade auctions")]
struct Cli {
    #[command(flatten)]
    settings: Settings,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// Serve the API and the pages (the default).
    Serve,
    /// Bring the database schema up to date and exit.
    Migrate,
    /// Load the demo operators, lots and bookings (again), and print how to use them.
    DemoData,
    /// Print the award plan for one lot and its bids, read from a JSON file ("-" for stdin).
    AwardFile { path: String },
    /// Print the OpenAPI document (the committed `openapi.yaml` is this output).
    Openapi,
    /// List what the database and the payment provider disagree on (holds left on finished
    /// bids, captures without a win, refunds not sent); with --repair, fix it. Exit status 1
    /// when something is left unrepaired.
    Reconcile {
        #[arg(long)]
        repair: bool,
    },
    /// Measure bid intake: start the server here on a free port, create lots and bookings,
    /// place bids over HTTP (flat out or at --rate) and print throughput and latency.
    Loadtest(surclass::loadtest::LoadOptions),
    /// Create a console user of an operator (by slug or id). The password is read from
    /// SURCLASS_OPERATOR_PASSWORD, or else from the first line of stdin.
    OperatorUser {
        #[arg(long)]
        operator: String,
        #[arg(long)]
        email: String,
        /// May add users and API keys from the console.
        #[arg(long)]
        admin: bool,
    },
}

fn main() -> ExitCode {
    // SAFETY: the first statement of main, so no other thread exists; SQLite takes this option
    // only before its first use, and only while no other thread could be using it.
    unsafe { store::sqlite_without_memory_statistics() };
    let cli = Cli::parse();
    match cli.command.unwrap_or(Command::Serve) {
        Command::AwardFile { path } => award_file(&path),
        Command::Openapi => {
            print!("{}", surclass::http::openapi::yaml());
            ExitCode::SUCCESS
        }
        command => {
            telemetry::init(cli.settings.log_format);
            let runtime = tokio::runtime::Runtime::new().expect("tokio runtime starts");
            let result = runtime.block_on(async move {
                match command {
                    Command::Serve => serve(cli.settings).await,
                    Command::Migrate => migrate(&cli.settings).await,
                    Command::DemoData => demo_data(&cli.settings).await,
                    Command::Reconcile { repair } => reconcile(cli.settings, repair).await,
                    Command::Loadtest(options) => {
                        surclass::loadtest::run(cli.settings, options).await
                    }
                    Command::OperatorUser {
                        operator,
                        email,
                        admin,
                    } => operator_user(&cli.settings, &operator, &email, admin).await,
                    Command::AwardFile { .. } | Command::Openapi => unreachable!("handled above"),
                }
            });
            match result {
                Ok(()) => ExitCode::SUCCESS,
                Err(message) => {
                    eprintln!("surclass: {message}");
                    ExitCode::FAILURE
                }
            }
        }
    }
}

async fn serve(settings: Settings) -> Result<(), String> {
    let app = Application::build(settings)
        .await
        .map_err(|e| e.to_string())?;
    let base = app.public_url().to_owned();
    tracing::info!(url = %base, "serving");
    println!("Surclass is up at {base}");
    println!("  API:           {base}/v1   (described at {base}/openapi.yaml)");
    println!("  Health:        {base}/healthz, {base}/readyz, {base}/metrics");
    if let Some(summary) = app.demo() {
        print_demo(&base, summary);
    }
    app.run_until_stopped().await.map_err(|e| e.to_string())
}

async fn reconcile(settings: Settings, repair: bool) -> Result<(), String> {
    use surclass::services::reconcile;
    let url = redact(&settings.database_url);
    let db = store::connect(&settings.database_url, 2)
        .await
        .map_err(|e| format!("database {url}: {e}"))?;
    store::migrate(&db)
        .await
        .map_err(|e| format!("database {url}: {e}"))?;
    let gateway = surclass::payments::from_settings(
        settings.payment_gateway,
        &settings.stripe,
        settings.simulated_gateway_store.as_deref(),
        &db,
    )
    .await
    .map_err(|e| e.to_string())?;
    let findings = reconcile::check(&db, gateway.as_ref())
        .await
        .map_err(|e| e.to_string())?;
    for f in &findings {
        println!("{f}");
    }
    if findings.is_empty() {
        println!("consistent: every hold, charge and refund matches the bids");
        return Ok(());
    }
    if !repair {
        return Err(format!(
            "{} inconsistencies; run again with --repair to fix them",
            findings.len()
        ));
    }
    reconcile::repair(&db, &findings)
        .await
        .map_err(|e| e.to_string())?;
    let worker = surclass::jobs::Worker::new(db.clone(), gateway.clone(), 1);
    worker.run_until_idle().await.map_err(|e| e.to_string())?;
    let left = reconcile::check(&db, gateway.as_ref())
        .await
        .map_err(|e| e.to_string())?;
    if left.is_empty() {
        println!("repaired {} inconsistencies", findings.len());
        Ok(())
    } else {
        Err(format!("{} inconsistencies left after repair", left.len()))
    }
}

async fn migrate(settings: &Settings) -> Result<(), String> {
    let url = redact(&settings.database_url);
    let db = store::connect(&settings.database_url, 1)
        .await
        .map_err(|e| format!("database {url}: {e}"))?;
    store::migrate(&db)
        .await
        .map_err(|e| format!("database {url}: {e}"))?;
    println!("{url}: schema up to date");
    Ok(())
}

async fn demo_data(settings: &Settings) -> Result<(), String> {
    let url = redact(&settings.database_url);
    let db = store::connect(&settings.database_url, 1)
        .await
        .map_err(|e| format!("database {url}: {e}"))?;
    store::migrate(&db)
        .await
        .map_err(|e| format!("database {url}: {e}"))?;
    let summary = demo::load(&db)
        .await
        .map_err(|e| format!("database {url}: {e}"))?;
    print_demo(&settings.public_url(settings.bind), &summary);
    Ok(())
}

fn print_demo(base: &str, summary: &DemoSummary) {
    println!("Demo data loaded.");
    println!(
        "  Travellers: open {base}/ on a phone and sign in with a booking reference and last name"
    );
    println!("              (or POST {base}/v1/traveller/sessions), for example:");
    for (reference, last_name) in &summary.bookings {
        println!("      {reference:<10} {last_name}");
    }
    println!("  Operator API keys (shown once; send as `Authorization: Bearer <key>`):");
    for (operator, key) in &summary.operator_keys {
        println!("      {operator:<24} {key}");
    }
    println!("  Operator console: {base}/console (admin sign-ins, passwords shown once):");
    for (operator, email, password) in &summary.console_users {
        println!("      {operator:<24} {email}  {password}");
    }
}

async fn operator_user(
    settings: &Settings,
    operator: &str,
    email: &str,
    admin: bool,
) -> Result<(), String> {
    use sea_orm::{ColumnTrait, Condition, EntityTrait, QueryFilter};
    use surclass::services::audit::Actor;
    use surclass::services::operator_users::{self, Role, UserError};
    use surclass::store::entities::operator as operator_entity;
    let password = match std::env::var("SURCLASS_OPERATOR_PASSWORD") {
        Ok(p) if !p.is_empty() => p,
        _ => {
            let mut line = String::new();
            std::io::stdin()
                .read_line(&mut line)
                .map_err(|e| format!("cannot read the password from stdin: {e}"))?;
            line.trim_end_matches(['\r', '\n']).to_owned()
        }
    };
    let url = redact(&settings.database_url);
    let db = store::connect(&settings.database_url, 1)
        .await
        .map_err(|e| format!("database {url}: {e}"))?;
    store::migrate(&db)
        .await
        .map_err(|e| format!("database {url}: {e}"))?;
    let op = operator_entity::Entity::find()
        .filter(
            Condition::any()
                .add(operator_entity::Column::Slug.eq(operator))
                .add(operator_entity::Column::Id.eq(operator)),
        )
        .one(&db)
        .await
        .map_err(|e| format!("database {url}: {e}"))?
        .ok_or_else(|| format!("no operator with slug or id '{operator}'"))?;
    let role = if admin { Role::Admin } else { Role::Member };
    let by = Actor::system(&op.id, "cli");
    match operator_users::create(&db, &by, email, &password, role).await {
        Ok(user) => {
            println!(
                "{} can now sign in to {} as {} at /console/sign-in",
                user.email,
                op.name,
                role.as_str()
            );
            Ok(())
        }
        Err(UserError::Invalid(errors)) => Err(errors.to_string()),
        Err(UserError::NoOperator) => Err(format!("no operator '{operator}'")),
        Err(UserError::Db(e)) => Err(format!("database {url}: {e}")),
    }
}

/// Exit status 2 for bad input, as command-line tools do for usage errors.
fn award_file(path: &str) -> ExitCode {
    let input = if path == "-" {
        std::io::read_to_string(std::io::stdin())
    } else {
        std::fs::read_to_string(path)
    };
    let input = match input {
        Ok(text) => text,
        Err(e) => {
            eprintln!("surclass: cannot read {path}: {e}");
            return ExitCode::from(2);
        }
    };
    match surclass::matching::file::award_json(&input) {
        Ok(plan) => {
            println!("{plan}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("surclass: {path}: {e}");
            ExitCode::from(2)
        }
    }
}
