//! `relationship-service`: RelationshipService alone, for container deployments. Configuration
//! comes from the environment (`DATABASE_URL`, `AUTH_JWT_SECRET`, `LISTEN_ADDR`, ...) or flags.

fn main() -> std::process::ExitCode {
    pc_server::standalone::run(
        "relationship-service",
        "partnercenter.relationship.v1.RelationshipService: reseller links and customer relationships",
        relationship_service::register,
    )
}
