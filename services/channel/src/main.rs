//! `channel-service`: ChannelService alone, for container deployments. Configuration comes from
//! the environment (`DATABASE_URL`, `AUTH_JWT_SECRET`, `LISTEN_ADDR`, ...) or flags.

fn main() -> std::process::ExitCode {
    pc_server::standalone::run(
        "channel-service",
        "partnercenter.channel.v1.ChannelService: subscriptions and support assignments",
        channel_service::register,
    )
}
