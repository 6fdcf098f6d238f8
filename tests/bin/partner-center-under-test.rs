//! The `partner-center` program, built as a binary of the test package so that
//! `TestApp::spread_over_processes` always starts the current code (see tests/Cargo.toml).

fn main() -> std::process::ExitCode {
    partner_center::main()
}
