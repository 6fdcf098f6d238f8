//! The standalone binary refuses to run in a way nobody could call safely.

use std::process::Command;

fn run_with(env: &[(&str, &str)]) -> (bool, String) {
    let output = Command::new(env!("CARGO_BIN_EXE_partner-service"))
        .env_remove("AUTH_JWT_SECRET")
        .env_remove("DATABASE_URL")
        .envs(env.iter().copied())
        .env("LISTEN_ADDR", "127.0.0.1:0")
        .output()
        .map_err(|e| e.to_string());
    match output {
        Ok(output) => (output.status.success(), String::from_utf8_lossy(&output.stderr).into_owned()),
        Err(error) => (false, error),
    }
}

#[test]
fn it_refuses_to_start_without_a_token_secret() {
    let (started, stderr) = run_with(&[("DATABASE_URL", "sqlite::memory:")]);
    assert!(!started);
    assert!(stderr.contains("AUTH_JWT_SECRET is required"), "{stderr}");
}

#[test]
fn it_refuses_a_secret_too_short_to_be_safe() {
    let (started, stderr) = run_with(&[("DATABASE_URL", "sqlite::memory:"), ("AUTH_JWT_SECRET", "short")]);
    assert!(!started);
    assert!(stderr.contains("at least 32 bytes"), "{stderr}");
}

#[test]
fn it_refuses_to_start_without_a_database() {
    let (started, stderr) = run_with(&[("AUTH_JWT_SECRET", "a-secret-long-enough-to-sign-tokens-x")]);
    assert!(!started);
    assert!(stderr.contains("DATABASE_URL is required"), "{stderr}");
}
