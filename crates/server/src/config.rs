//! Configuration shared by every binary: environment variables (twelve-factor), each overridable
//! by the flag of the same name.

use std::{net::SocketAddr, time::Duration};

use clap::{Args, ValueEnum};

/// Shortest accepted HS256 secret: 256 bits, as RFC 7518 requires for HS256 keys.
pub const MIN_SECRET_BYTES: usize = 32;

#[derive(Debug, Clone, Args)]
pub struct ServerConfig {
    /// Address to listen on for gRPC.
    #[arg(long, env = "LISTEN_ADDR")]
    pub listen_addr: Option<SocketAddr>,

    /// Database URL: `postgres://user@host/db` or `sqlite://path?mode=rwc`.
    #[arg(long, env = "DATABASE_URL")]
    pub database_url: Option<String>,

    /// HS256 secret that signs and verifies bearer tokens (at least 32 bytes).
    #[arg(long, env = "AUTH_JWT_SECRET", hide_env_values = true)]
    pub auth_jwt_secret: Option<String>,

    /// Largest PostgreSQL connection pool (SQLite always uses one connection).
    #[arg(long, env = "DB_MAX_CONNECTIONS", default_value_t = 16)]
    pub db_max_connections: u32,

    /// Seconds in-flight calls get to finish after SIGTERM before the process exits anyway.
    #[arg(long, env = "SHUTDOWN_TIMEOUT_SECS", default_value_t = 10)]
    pub shutdown_timeout_secs: u64,

    /// Log format.
    #[arg(long, env = "LOG_FORMAT", value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,
}

impl ServerConfig {
    pub fn shutdown_timeout(&self) -> Duration {
        Duration::from_secs(self.shutdown_timeout_secs)
    }

    /// The configured secret, refused when it is too short to be safe.
    pub fn jwt_secret(&self) -> Result<Option<&str>, String> {
        match self.auth_jwt_secret.as_deref() {
            Some(secret) if secret.len() < MIN_SECRET_BYTES => {
                Err(format!("AUTH_JWT_SECRET must be at least {MIN_SECRET_BYTES} bytes"))
            }
            other => Ok(other),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object per line, for log collectors.
    Json,
}
