//! The `event-relay` program, built as a binary of the test package so that the relay tests
//! always start the current code (see tests/Cargo.toml).

fn main() -> std::process::ExitCode {
    event_relay::main()
}
