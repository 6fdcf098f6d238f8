//! PostgreSQL servers of a test's own, made with the server's tools (`initdb`, `pg_ctl`,
//! `pg_basebackup`) in a temporary directory on a spare port, for tests that stop, start or
//! replicate a database server: an outage, a streaming replica.

use std::{
    path::PathBuf,
    process::{Command, Stdio},
};

/// A PostgreSQL server of the test's own, on a spare port, that the test stops and starts.
pub struct TempPostgres {
    dir: PathBuf,
    port: u16,
    as_postgres: bool,
}

impl TempPostgres {
    /// Initialises and starts a new server (a primary; initdb's defaults allow streaming
    /// replication from 127.0.0.1).
    pub fn start() -> Self {
        let postgres = Self::place();
        let data = postgres.data();
        postgres.run("initdb", &["-D", &data, "-U", "postgres", "--auth=trust", "-E", "UTF8", "--no-sync"]);
        postgres.up();
        postgres
    }

    /// Starts a streaming replica of `primary`: a base backup with `-R` (which writes the standby
    /// settings: `standby.signal` and `primary_conninfo`), started on a port of its own.
    pub fn replica_of(primary: &TempPostgres) -> Self {
        let replica = Self::place();
        let (data, port) = (replica.data(), primary.port.to_string());
        replica.run(
            "pg_basebackup",
            &["-h", "127.0.0.1", "-p", &port, "-U", "postgres", "-D", &data, "-R", "-X", "stream", "--no-sync"],
        );
        replica.up();
        replica
    }

    /// A new directory and a spare port for a server.
    fn place() -> Self {
        let dir = std::env::temp_dir().join(format!("pc-pg-{}", uuid::Uuid::new_v4().simple()));
        std::fs::create_dir_all(&dir).unwrap();
        // initdb refuses to run as root; CI runs as root, so run PostgreSQL as its own user.
        let as_postgres = Command::new("id").arg("-u").output().map(|o| o.stdout.starts_with(b"0")).unwrap_or(false);
        if as_postgres {
            assert!(Command::new("chown").args(["-R", "postgres:postgres"]).arg(&dir).status().unwrap().success());
        }
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        Self { dir, port, as_postgres }
    }

    fn data(&self) -> String {
        self.dir.join("data").display().to_string()
    }

    fn run(&self, tool: &str, args: &[&str]) {
        let mut command = if self.as_postgres {
            let mut command = Command::new("runuser");
            command.args(["-u", "postgres", "--", tool]);
            command
        } else {
            Command::new(tool)
        };
        let status = command.args(args).stdout(Stdio::null()).status().unwrap_or_else(|e| panic!("{tool}: {e}"));
        assert!(status.success(), "{tool} {args:?} failed");
    }

    pub fn up(&self) {
        let options = format!("-p {} -h 127.0.0.1 -k {}", self.port, self.dir.display());
        let log = self.dir.join("postgres.log").display().to_string();
        self.run("pg_ctl", &["-D", &self.data(), "-o", &options, "-l", &log, "-w", "-t", "60", "start"]);
    }

    pub fn down(&self) {
        self.run("pg_ctl", &["-D", &self.data(), "-m", "fast", "-w", "-t", "60", "stop"]);
    }

    /// Freezes the server (SIGSTOP to the postmaster and every backend), as a hung host or a
    /// partition that drops packets looks to its clients: connections stay open, nothing answers.
    pub fn freeze(&self) {
        self.signal_all("-STOP");
    }

    /// Lets a frozen server run again (SIGCONT).
    pub fn thaw(&self) {
        self.signal_all("-CONT");
    }

    fn signal_all(&self, signal: &str) {
        let pid_file = self.dir.join("data").join("postmaster.pid");
        let pids = std::fs::read_to_string(&pid_file).unwrap_or_default();
        let Some(postmaster) = pids.lines().next().map(str::trim).filter(|pid| !pid.is_empty()) else { return };
        // The backends first, so that none is left running behind a stopped postmaster.
        let _ = Command::new("pkill").args([signal, "-P", postmaster]).status();
        let _ = Command::new("kill").args([signal, postmaster]).status();
    }

    pub fn url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}/postgres", self.port)
    }
}

impl Drop for TempPostgres {
    fn drop(&mut self) {
        // A frozen server would not hear pg_ctl's stop.
        self.thaw();
        let _ = Command::new(if self.as_postgres { "runuser" } else { "pg_ctl" })
            .args(if self.as_postgres { vec!["-u", "postgres", "--", "pg_ctl"] } else { vec![] })
            .args(["-D", &self.data(), "-m", "immediate", "stop"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
