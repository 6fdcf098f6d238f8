//! Plumbing every partner-center binary shares, so each service binary is only its handlers:
//! configuration ([`config`]), logging ([`telemetry`]), bearer-token authentication ([`auth`]),
//! proto conversions ([`convert`]), admission of calls under load ([`admission`]), the one
//! lifecycle of every resource with moves ([`lifecycle`]) and the engine that expires what waited
//! past its deadline ([`expiry`]), who may do what to which resource and why ([`access`], with the
//! rule-9 read of a customer a partner acts on in [`visible`]), and serving with health,
//! reflection and graceful shutdown ([`serve`], [`shutdown`]).

/// Every binary that serves (or tests, or benchmarks) partner-center allocates through mimalloc:
/// under load glibc's malloc, free and chunk consolidation took a tenth of the server's CPU.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

pub mod access;
pub mod admission;
pub mod app;
pub mod auth;
pub mod config;
pub mod connection_age;
pub mod convert;
pub mod create;
pub mod expiry;
pub mod grpc_service;
pub mod lifecycle;
pub mod metrics;
pub mod rate_limit;
pub mod serve;
pub mod shutdown;
pub mod standalone;
pub mod status;
pub mod telemetry;
pub mod visible;

pub use app::{App, Register, Shared};
pub use auth::{Authenticator, TokenIssuer};
pub use config::{LogFormat, ServerConfig};
pub use serve::{ServeOptions, ServiceRoutes, serve};
pub use status::{respond, status};

/// What [`grpc_service!`]'s expansion names, so a service crate needs no imports for it.
#[doc(hidden)]
pub mod macro_support {
    pub use pc_domain::PageKey;
    pub use pc_store::{Database, retry::with_retries};
    pub use tonic;
}
