//! `event-service`: EventService alone, for container deployments. Configuration comes from
//! the environment (`DATABASE_URL`, `AUTH_JWT_SECRET`, `LISTEN_ADDR`, ...) or flags.

fn main() -> std::process::ExitCode {
    pc_server::standalone::run(
        "event-service",
        "partnercenter.event.v1.EventService: the change feed",
        event_service::register,
    )
}
