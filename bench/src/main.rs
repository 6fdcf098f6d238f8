//! `pc-bench`: drives one partner-center scenario at a fixed concurrency and reports throughput
//! and latency percentiles, like a real client would see them (its own connections, bearer
//! tokens, seed data made through the API). Any failed call fails the run.
//!
//! `bench/run.sh` runs it beside the framework and database limits of the same machine; see the
//! README's Performance section.

mod burst;
mod events;
mod report;
mod scenarios;
mod stats;

use std::{
    process::ExitCode,
    time::{Duration, Instant},
};

use clap::Parser;
use scenarios::{Scenario, Tokens};
use stats::{Report, Samples};
use tonic::transport::Channel;

#[derive(Debug, Parser)]
#[command(name = "pc-bench", version, about = "Load generator for partner-center")]
enum Cli {
    /// Seed, load and measure one scenario.
    Run(Args),
    /// Far more GetPartner calls in flight than the server admits: admitted, shed, health.
    Burst(burst::BurstArgs),
    /// The change feed: commit-to-WatchEvents delay, idle watchers' memory, the relay's rate.
    Events(events::EventsArgs),
    /// Summarise the measurements of bench/run.sh: ratios, targets, chart.
    Report {
        /// The directory bench/run.sh wrote.
        #[arg(long, default_value = "bench/results")]
        results: std::path::PathBuf,
        /// The concurrencies of the sweep, space-separated.
        #[arg(long, default_value = "1 4 16 64")]
        sweep: String,
        /// Where to draw the chart.
        #[arg(long, default_value = "bench/throughput.svg")]
        chart: std::path::PathBuf,
    },
}

#[derive(Debug, clap::Args)]
struct Args {
    /// What to measure.
    #[arg(long, value_enum)]
    scenario: Scenario,
    /// The server, e.g. http://127.0.0.1:50050.
    #[arg(long, default_value = "http://127.0.0.1:50050")]
    target: String,
    /// The server's AUTH_JWT_SECRET, to mint the tokens a client would be given.
    #[arg(long, env = "AUTH_JWT_SECRET", hide_env_values = true)]
    secret: String,
    /// Calls in flight at once.
    #[arg(long, default_value_t = 64)]
    concurrency: usize,
    /// HTTP/2 connections the calls share.
    #[arg(long, default_value_t = 4)]
    connections: usize,
    /// Measured seconds.
    #[arg(long, default_value_t = 10.0)]
    duration: f64,
    /// Seconds of load before measuring.
    #[arg(long, default_value_t = 2.0)]
    warmup: f64,
    /// Subscriptions to seed for list-subscriptions.
    #[arg(long, default_value_t = 10_000)]
    rows: u64,
    /// The server's database, to bulk-seed large tables (PostgreSQL only); otherwise the API seeds.
    #[arg(long, env = "BENCH_DATABASE_URL")]
    database_url: Option<String>,
    /// Also write the report as JSON to this file.
    #[arg(long)]
    json: Option<std::path::PathBuf>,
}

#[tokio::main]
async fn main() -> ExitCode {
    let outcome = match Cli::parse() {
        Cli::Run(args) => run(args).await,
        Cli::Burst(args) => burst::burst(args).await,
        Cli::Events(args) => events::events(args).await,
        Cli::Report { results, sweep, chart } => {
            let sweep: Vec<usize> = sweep.split_whitespace().filter_map(|c| c.parse().ok()).collect();
            // Targets missed are reported, not fatal: the run itself worked.
            report::report(&results, &sweep, &chart).map(|_| true)
        }
    };
    match outcome {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(error) => {
            eprintln!("pc-bench: {error}");
            ExitCode::FAILURE
        }
    }
}

async fn run(args: Args) -> Result<bool, String> {
    let mut channels = Vec::new();
    for _ in 0..args.connections.max(1) {
        channels.push(scenarios::connect(args.target.clone()).await?);
    }
    let tokens = Tokens::new(&args.secret);
    let fixture = scenarios::seed(
        args.scenario,
        &channels[0],
        &tokens,
        &args.secret,
        args.rows,
        args.concurrency,
        args.database_url.as_deref(),
    )
    .await?;
    let fixture = std::sync::Arc::new(fixture);

    let warmup = Duration::from_secs_f64(args.warmup);
    let window = Duration::from_secs_f64(args.duration);
    let start = Instant::now();
    let (measure_from, stop_at) = (start + warmup, start + warmup + window);
    let workers: Vec<_> = (0..args.concurrency.max(1))
        .map(|worker| {
            let channel: Channel = channels[worker % channels.len()].clone();
            let fixture = fixture.clone();
            let scenario = args.scenario;
            tokio::spawn(async move {
                let mut samples = Samples::default();
                let mut count = 0;
                loop {
                    let began = Instant::now();
                    if began >= stop_at {
                        return samples;
                    }
                    let outcome = scenarios::operate(scenario, &fixture, &channel, worker, count).await;
                    count += 1;
                    if began >= measure_from {
                        match outcome {
                            Ok(()) => samples.latencies_us.push(stats::micros(began)),
                            Err(error) => samples.errors.push(error),
                        }
                    } else if let Err(error) = outcome {
                        samples.errors.push(format!("during warm-up: {error}"));
                    }
                }
            })
        })
        .collect();
    let mut samples = Samples::default();
    for worker in workers {
        samples = samples.merge(worker.await.map_err(|e| e.to_string())?);
    }
    let name = format!("{:?}", args.scenario);
    let report = Report::new(&name, args.concurrency, args.connections, window, samples);
    report.print();
    if let Some(path) = &args.json {
        std::fs::write(path, report.json().to_string()).map_err(|e| format!("write {}: {e}", path.display()))?;
    }
    Ok(report.errors == 0 && report.calls > 0)
}
