//! The `main` of every single-service binary (`partner-service`, `relationship-service`, ...):
//! read configuration, connect, bind, serve until SIGTERM. Such binaries never migrate; the
//! deployment runs `partner-center migrate` once first, so replicas never race on migrations.

use std::process::ExitCode;

use clap::{CommandFactory, FromArgMatches, Parser};

use crate::{App, LogFormat, Register, ServerConfig, shutdown, telemetry};

/// Where a service listens unless `LISTEN_ADDR` says otherwise (what containers expect).
const DEFAULT_LISTEN_ADDR: ([u8; 4], u16) = ([0, 0, 0, 0], 50051);

#[derive(Debug, Parser)]
struct Args {
    #[command(flatten)]
    server: ServerConfig,
}

/// Runs the binary `name` serving what `register` adds; returns the process exit code.
pub fn run(name: &'static str, about: &'static str, register: Register) -> ExitCode {
    let matches = Args::command().name(name).bin_name(name).about(about).get_matches();
    let args = match Args::from_arg_matches(&matches) {
        Ok(args) => args,
        Err(error) => error.exit(),
    };
    let log_format = args.server.log_format;
    run_to_exit(name, log_format, serve(args.server, register))
}

/// The rest of every binary's `main` once its settings are read: logs and traces for `name`, a
/// multi-threaded runtime running `work` to its end, the spans flushed, and the exit code (an
/// error logged and printed as `name: error`).
pub fn run_to_exit<E: std::fmt::Display>(
    name: &'static str,
    log_format: LogFormat,
    work: impl Future<Output = Result<(), E>>,
) -> ExitCode {
    let telemetry = telemetry::init(name, log_format);
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("{name}: cannot start the runtime: {error}");
            return ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(work);
    telemetry.shutdown();
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            tracing::error!(%error, "{name} failed");
            eprintln!("{name}: {error}");
            ExitCode::FAILURE
        }
    }
}

async fn serve(config: ServerConfig, register: Register) -> Result<(), String> {
    let secret = config.jwt_secret()?.ok_or("AUTH_JWT_SECRET is required")?;
    let database_url = config.database_url.as_deref().ok_or("DATABASE_URL is required")?;
    let app = App::build(&config, database_url, secret, DEFAULT_LISTEN_ADDR.into(), &[register]).await?;
    app.run(shutdown::signal()).await.map_err(|e| e.to_string())
}
