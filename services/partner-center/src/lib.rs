//! `partner-center`: the all-in-one dev server and operator CLI. The binary (`main.rs`) only
//! calls [`main`]; it is a library so that the end-to-end tests can build the same program as a
//! binary of their own package (tests/bin), which Cargo then keeps current for them.
//!
//! - `serve` (the default): every implemented service on one port (127.0.0.1:50050) over an
//!   embedded SQLite file it creates and migrates itself. Without `AUTH_JWT_SECRET` it makes one up
//!   and prints an operator token to paste into grpcurl (unless tokens come from an identity
//!   provider, which that secret could not sign for).
//! - `demo`: fills an empty database with the README's scenarios through the API and prints an
//!   `export` line with a token per principal (and the secret, when it made one up).
//! - `migrate`: applies migrations to `DATABASE_URL` (the one-shot job of a deployment).
//! - `token --sub NAME [--ttl 12h]`: mints a token with the configured secret.
//! - `health --addr HOST:PORT`: exits 0 when the server reports SERVING (container healthchecks).

mod demo;

use std::{process::ExitCode, time::Duration};

use clap::{Parser, Subcommand};
use pc_server::{ServerConfig, TokenIssuer, auth::random_secret, shutdown, telemetry};
use tonic_health::pb::{HealthCheckRequest, health_check_response::ServingStatus, health_client::HealthClient};

/// Every service the program serves: the one list `serve`, `demo` and the end-to-end tests register.
pub const SERVICES: [pc_server::Register; 4] =
    [partner_service::register, relationship_service::register, channel_service::register, event_service::register];

const DEFAULT_DATABASE_URL: &str = "sqlite://partner-center.db?mode=rwc";
const DEFAULT_LISTEN_ADDR: ([u8; 4], u16) = ([127, 0, 0, 1], 50050);

#[derive(Debug, Parser)]
#[command(name = "partner-center", version, about = "partner-center dev server and operator CLI")]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
    #[command(flatten)]
    server: ServerConfig,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Serve every implemented service on one port (the default).
    Serve,
    /// Fill an empty database with the README's scenarios and print a token per principal.
    Demo,
    /// Apply pending migrations to DATABASE_URL and exit.
    Migrate,
    /// Print a bearer token for a principal, signed with AUTH_JWT_SECRET.
    Token {
        /// `operator`, `partners/{id}` or `customers/{id}`.
        #[arg(long)]
        sub: String,
        /// Lifetime: seconds, or a number with s, m, h or d.
        #[arg(long, default_value = "12h", value_parser = parse_ttl)]
        ttl: Duration,
    },
    /// Check a server's health; exit 0 when SERVING.
    Health {
        /// Address of the server.
        #[arg(long, default_value = "127.0.0.1:50050")]
        addr: String,
        /// A service name to check; empty checks the server as a whole.
        #[arg(long, default_value = "")]
        service: String,
        /// Use TLS, trusting this PEM CA bundle.
        #[arg(long)]
        ca_file: Option<std::path::PathBuf>,
        /// Client certificate and key (PEM) for servers that require mTLS.
        #[arg(long, requires = "key_file")]
        cert_file: Option<std::path::PathBuf>,
        #[arg(long, requires = "cert_file")]
        key_file: Option<std::path::PathBuf>,
        /// Server name to verify, when it differs from the address's host.
        #[arg(long)]
        domain: Option<String>,
    },
}

/// Parses the command line and runs the command it names.
#[tokio::main]
pub async fn main() -> ExitCode {
    let cli = Cli::parse();
    let command = cli.command.unwrap_or(Command::Serve);
    let telemetry = match command {
        Command::Serve | Command::Migrate => telemetry::init("partner-center", cli.server.log_format),
        _ => telemetry::Telemetry::default(),
    };
    let result = match command {
        Command::Serve => serve(cli.server).await,
        Command::Demo => demo(&cli.server).await,
        Command::Migrate => migrate(&cli.server).await,
        Command::Token { sub, ttl } => token(&cli.server, &sub, ttl),
        Command::Health { addr, service, ca_file, cert_file, key_file, domain } => {
            let tls = HealthTls { ca_file, cert_file, key_file, domain };
            health(&addr, service, &tls).await
        }
    };
    // The spans still buffered go out before the process does.
    telemetry.shutdown();
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("partner-center: {error}");
            ExitCode::FAILURE
        }
    }
}

fn database_url(config: &ServerConfig) -> &str {
    config.database_url.as_deref().unwrap_or(DEFAULT_DATABASE_URL)
}

async fn serve(config: ServerConfig) -> Result<(), String> {
    let secret = match config.jwt_secret()? {
        Some(secret) => secret.to_owned(),
        None if config.jwks_source()?.is_some() => {
            // Tokens come from the identity provider: a token signed with this secret would be
            // refused. The secret only signs page tokens, which replicas then do not share.
            println!("Bearer tokens come from the identity provider (AUTH_JWKS_URL / AUTH_JWKS_FILE).");
            println!("AUTH_JWT_SECRET is not set: page tokens are signed with a secret generated for this run.");
            random_secret()
        }
        None => {
            let secret = random_secret();
            let token = TokenIssuer::new(&secret)
                .mint(pc_domain::Principal::OPERATOR, Duration::from_secs(12 * 3600))
                .map_err(|e| e.to_string())?;
            println!("AUTH_JWT_SECRET is not set: generated one for this run. Operator token (12h):");
            println!("export TOKEN={token}");
            secret
        }
    };
    let url = database_url(&config);
    let app = pc_server::App::build(&config, url, &secret, DEFAULT_LISTEN_ADDR.into(), &SERVICES).await?;
    pc_store::db::migrate(app.database()).await.map_err(|e| format!("migrating {url}: {e}"))?;
    // Addresses on stdout, so a supervisor (or a test) that asked for port 0 learns the ports.
    if let Some(metrics) = app.metrics_addr() {
        println!("partner-center metrics on {metrics}");
    }
    println!("partner-center listening on {}", app.local_addr()?);
    app.run(shutdown::signal()).await.map_err(|e| e.to_string())
}

async fn demo(config: &ServerConfig) -> Result<(), String> {
    let (secret, generated) = match config.jwt_secret()? {
        Some(secret) => (secret.to_owned(), false),
        None => (random_secret(), true),
    };
    demo::run(config, database_url(config), &secret, generated).await
}

async fn migrate(config: &ServerConfig) -> Result<(), String> {
    let url = database_url(config);
    let db = pc_store::connect(url, 1).await.map_err(|e| e.to_string())?;
    pc_store::db::migrate(&db).await.map_err(|e| format!("migrating: {e}"))?;
    tracing::info!("migrations applied");
    Ok(())
}

fn token(config: &ServerConfig, subject: &str, ttl: Duration) -> Result<(), String> {
    let secret = config.jwt_secret()?.ok_or("AUTH_JWT_SECRET is required to mint a token")?;
    pc_domain::Principal::parse(subject).map_err(|e| e.to_string())?;
    let token = TokenIssuer::new(secret).mint(subject, ttl).map_err(|e| e.to_string())?;
    println!("{token}");
    Ok(())
}

/// How `health` reaches a TLS server.
struct HealthTls {
    ca_file: Option<std::path::PathBuf>,
    cert_file: Option<std::path::PathBuf>,
    key_file: Option<std::path::PathBuf>,
    domain: Option<String>,
}

async fn health(addr: &str, service: String, tls: &HealthTls) -> Result<(), String> {
    use tonic::transport::{Certificate, ClientTlsConfig, Identity};
    let read =
        |path: &std::path::PathBuf| std::fs::read(path).map_err(|e| format!("cannot read {}: {e}", path.display()));
    let scheme = if tls.ca_file.is_some() { "https" } else { "http" };
    let endpoint = if addr.contains("://") { addr.to_owned() } else { format!("{scheme}://{addr}") };
    let mut endpoint = tonic::transport::Endpoint::from_shared(endpoint).map_err(|e| e.to_string())?;
    if let Some(ca) = &tls.ca_file {
        let mut config = ClientTlsConfig::new().ca_certificate(Certificate::from_pem(read(ca)?));
        if let (Some(cert), Some(key)) = (&tls.cert_file, &tls.key_file) {
            config = config.identity(Identity::from_pem(read(cert)?, read(key)?));
        }
        if let Some(domain) = &tls.domain {
            config = config.domain_name(domain);
        }
        endpoint = endpoint.tls_config(config).map_err(|e| e.to_string())?;
    }
    let channel = endpoint
        .connect_timeout(Duration::from_secs(3))
        .timeout(Duration::from_secs(3))
        .connect()
        .await
        .map_err(|e| format!("cannot connect to {addr}: {e}"))?;
    let response = HealthClient::new(channel)
        .check(HealthCheckRequest { service })
        .await
        .map_err(|status| format!("health check failed: {}", status.message()))?;
    match response.into_inner().status() {
        ServingStatus::Serving => {
            println!("SERVING");
            Ok(())
        }
        other => Err(format!("not serving: {}", other.as_str_name())),
    }
}

fn parse_ttl(value: &str) -> Result<Duration, String> {
    let (number, unit) = match value.find(|c: char| !c.is_ascii_digit()) {
        Some(index) => value.split_at(index),
        None => (value, "s"),
    };
    let number: u64 = number.parse().map_err(|_| format!("`{value}` is not a duration like 3600, 30m, 12h or 7d"))?;
    let seconds = match unit {
        "s" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86400,
        _ => return Err(format!("`{value}`: the unit must be s, m, h or d")),
    };
    number
        .checked_mul(seconds)
        .filter(|s| *s > 0)
        .map(Duration::from_secs)
        .ok_or_else(|| format!("`{value}` must be positive and not absurdly long"))
}
