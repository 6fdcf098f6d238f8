//! `partner-service`: PartnerService alone, for container deployments. Configuration comes from
//! the environment (`DATABASE_URL`, `AUTH_JWT_SECRET`, `LISTEN_ADDR`, ...) or the same-named flags.

fn main() -> std::process::ExitCode {
    pc_server::standalone::run(
        "partner-service",
        "partnercenter.partner.v1.PartnerService: partners and customers",
        partner_service::register,
    )
}
