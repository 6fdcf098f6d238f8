//! `event-relay`: publishes the change feed to NATS JetStream. Configuration comes from the
//! environment (`DATABASE_URL`, `NATS_URL`, `NATS_STREAM`, ...) or flags; see `--help`.

fn main() -> std::process::ExitCode {
    event_relay::main()
}
