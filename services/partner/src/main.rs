//! `partner-service`: PartnerService alone, for container deployments. Configuration comes from
//! the environment (`DATABASE_URL`, `AUTH_JWT_SECRET`, `LISTEN_ADDR`, ...) or the same-named flags.
//! It does not migrate: run `partner-center migrate` once per deployment first.

use std::process::ExitCode;

use clap::Parser;
use pc_server::{Authenticator, ServerConfig, ServiceRoutes, shutdown, telemetry};

#[derive(Debug, Parser)]
#[command(name = "partner-service", version, about = "partnercenter.partner.v1.PartnerService")]
struct Args {
    #[command(flatten)]
    server: ServerConfig,
}

#[tokio::main]
async fn main() -> ExitCode {
    let args = Args::parse();
    telemetry::init(args.server.log_format);
    match run(args.server).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            tracing::error!(%error, "partner-service failed");
            ExitCode::FAILURE
        }
    }
}

async fn run(config: ServerConfig) -> Result<(), String> {
    let secret = config.jwt_secret()?.ok_or("AUTH_JWT_SECRET is required")?;
    let database_url = config.database_url.as_deref().ok_or("DATABASE_URL is required")?;
    let listen_addr = config.listen_addr.unwrap_or(([0, 0, 0, 0], 50051).into());

    let db = pc_store::connect(database_url, config.db_max_connections).await.map_err(|e| e.to_string())?;
    let listener =
        tokio::net::TcpListener::bind(listen_addr).await.map_err(|e| format!("cannot bind {listen_addr}: {e}"))?;

    let mut services = ServiceRoutes::default();
    partner_service::register(&mut services, db.clone(), Authenticator::new(secret));
    pc_server::serve(listener, services, db, shutdown::signal(), config.shutdown_timeout())
        .await
        .map_err(|e| e.to_string())
}
