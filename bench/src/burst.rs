//! `pc-bench burst`: far more GetPartner calls in flight than the server admits (10 k, 50 k),
//! from many connections, and what that does to the server: calls admitted and shed per second,
//! the latency of each, the server's peak memory, and how fast a health check and one GetPartner
//! are answered during the burst and right after it.
//!
//! Every worker keeps one call in flight. A shed call (RESOURCE_EXHAUSTED) waits the `RetryInfo`
//! delay the server gave, jittered by ±50 %, as a well-behaved client does, then calls again.

use std::{
    sync::Arc,
    time::{Duration, Instant},
};

use rand::Rng;
use tonic::Code;
use tonic_types::StatusExt;

use crate::{
    scenarios::{self, Fixture, Scenario, Tokens, connect},
    stats::{self, micros, percentile_ms},
};

#[derive(Debug, clap::Args)]
pub struct BurstArgs {
    /// The server, e.g. http://127.0.0.1:50050.
    #[arg(long, default_value = "http://127.0.0.1:50050")]
    target: String,
    /// The server's AUTH_JWT_SECRET.
    #[arg(long, env = "AUTH_JWT_SECRET", hide_env_values = true)]
    secret: String,
    /// Calls in flight at once, spread over the connections.
    #[arg(long, default_value_t = 10_000)]
    in_flight: usize,
    /// HTTP/2 connections.
    #[arg(long, default_value_t = 100)]
    connections: usize,
    /// The server's health port apart (HEALTH_LISTEN_ADDR), probed beside the main one.
    #[arg(long)]
    health_target: Option<String>,
    /// Seconds of the burst measured as its steady state.
    #[arg(long, default_value_t = 10.0)]
    duration: f64,
    /// Seconds of the burst's onset before them, reported apart.
    #[arg(long, default_value_t = 2.0)]
    onset: f64,
    /// The server's process id, to read its peak resident memory (Linux).
    #[arg(long)]
    server_pid: Option<u32>,
    /// GetPartner calls/s at concurrency 64 in the same run, to compare admitted throughput with.
    #[arg(long)]
    baseline: Option<f64>,
    /// Also write the report as JSON to this file.
    #[arg(long)]
    json: Option<std::path::PathBuf>,
}

/// The calls of one phase of the burst.
#[derive(Debug, Default)]
struct Phase {
    admitted_us: Vec<u32>,
    shed_us: Vec<u32>,
    /// The retry delays shed calls were given, in milliseconds.
    delays_ms: Vec<u32>,
}

impl Phase {
    fn merge(&mut self, other: Phase) {
        self.admitted_us.extend(other.admitted_us);
        self.shed_us.extend(other.shed_us);
        self.delays_ms.extend(other.delays_ms);
    }

    fn sort(&mut self) {
        for samples in [&mut self.admitted_us, &mut self.shed_us, &mut self.delays_ms] {
            samples.sort_unstable();
        }
    }
}

/// What one worker saw: the onset (every client calling at once, before the retry delay has
/// adapted) apart from the steady state after it.
#[derive(Debug, Default)]
struct Seen {
    onset: Phase,
    steady: Phase,
    errors: Vec<String>,
}

/// What the probes saw in one phase of the burst, in microseconds.
#[derive(Debug, Default)]
struct ProbeSet {
    health: Vec<u32>,
    apart: Vec<u32>,
    get: Vec<u32>,
    /// The probe GetPartners that were shed.
    get_shed: Vec<u32>,
}

impl ProbeSet {
    fn sort(&mut self) {
        for samples in [&mut self.health, &mut self.apart, &mut self.get, &mut self.get_shed] {
            samples.sort_unstable();
        }
    }
}

/// What the probes saw during the burst: in its onset apart from its steady state, as the
/// workers' calls.
#[derive(Debug, Default)]
struct Probes {
    onset: ProbeSet,
    steady: ProbeSet,
    /// Whether the probes' thread ran ahead of the workers ([`run_before_the_workers`]).
    realtime: bool,
}

/// Asks Linux to run the calling thread before any ordinary one (`chrt --fifo 1` on its thread
/// id), so that a probe is sent and its answer read the moment they are due: the workers keep
/// the load generator's core busy, and without it a probe also measures its own thread's wait
/// for that core (a few milliseconds under CFS), which is not the server's. Needs root or
/// CAP_SYS_NICE; without them the probes run as before, and the report says so.
fn run_before_the_workers() -> bool {
    let Ok(thread) = std::fs::read_link("/proc/thread-self") else { return false };
    let Some(tid) = thread.file_name().and_then(|tid| tid.to_str()) else { return false };
    std::process::Command::new("chrt")
        .args(["--fifo", "--pid", "1", tid])
        .stderr(std::process::Stdio::null())
        .status()
        .is_ok_and(|status| status.success())
}

/// During the burst, every 100 ms: a health check on the main port (and on `health_target`, the
/// port health is served apart on) and a GetPartner, each on a connection of its own. From a
/// thread and a runtime of their own: on the load generator's runtime the probes would wait
/// behind its tens of thousands of workers, and measure the load generator.
fn probe_apart(
    target: String,
    health_target: Option<String>,
    fixture: Arc<Fixture>,
    steady_from: Instant,
    stop_at: Instant,
) -> std::thread::JoinHandle<Result<Probes, String>> {
    std::thread::spawn(move || {
        let realtime = run_before_the_workers();
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().map_err(|e| e.to_string())?;
        runtime.block_on(async move {
            let (health, get) = (connect(target.clone()).await?, connect(target).await?);
            let apart = match health_target {
                Some(target) => Some(connect(target).await?),
                None => None,
            };
            let mut probes = Probes { realtime, ..Probes::default() };
            tokio::time::sleep(Duration::from_millis(500)).await;
            let mut count = 0;
            while Instant::now() + Duration::from_millis(100) < stop_at {
                let phase = if Instant::now() < steady_from { &mut probes.onset } else { &mut probes.steady };
                let began = Instant::now();
                scenarios::health_check(&health).await.map_err(|s| format!("health during the burst: {s}"))?;
                phase.health.push(micros(began));
                if let Some(apart) = &apart {
                    let began = Instant::now();
                    scenarios::health_check(apart).await.map_err(|s| format!("health apart during the burst: {s}"))?;
                    phase.apart.push(micros(began));
                }
                let began = Instant::now();
                count += 1;
                match scenarios::get_partner(&fixture, &get, 0, count).await {
                    Ok(()) => phase.get.push(micros(began)),
                    // Shed like any other call: its answer time still counts, and shows how fast a
                    // refusal is without the load generator's own queue in it.
                    Err(status) if status.code() == Code::ResourceExhausted => {
                        let answered = micros(began);
                        phase.get.push(answered);
                        phase.get_shed.push(answered);
                    }
                    Err(status) => return Err(format!("GetPartner during the burst: {status}")),
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            Ok(probes)
        })
    })
}

pub async fn burst(args: BurstArgs) -> Result<bool, String> {
    let mut channels = Vec::new();
    for _ in 0..args.connections.max(1) {
        channels.push(connect(args.target.clone()).await?);
    }
    // For seeding, and for the first calls right after the burst (the probes during it have
    // connections of their own, on their own thread).
    let probe = connect(args.target.clone()).await?;
    let tokens = Tokens::new(&args.secret);
    let fixture = Arc::new(scenarios::seed(Scenario::GetPartner, &probe, &tokens, &args.secret, 0, 0, None).await?);

    let started = Instant::now();
    let steady_from = started + Duration::from_secs_f64(args.onset);
    let stop_at = started + Duration::from_secs_f64(args.onset + args.duration);
    let workers: Vec<_> = (0..args.in_flight.max(1))
        .map(|worker| {
            let channel = channels[worker % channels.len()].clone();
            let fixture = fixture.clone();
            tokio::spawn(async move {
                let mut seen = Seen::default();
                let mut count = 0;
                while Instant::now() < stop_at {
                    let began = Instant::now();
                    let outcome = scenarios::get_partner(&fixture, &channel, worker, count).await;
                    count += 1;
                    let phase = if began < steady_from { &mut seen.onset } else { &mut seen.steady };
                    match outcome {
                        Ok(()) => phase.admitted_us.push(micros(began)),
                        Err(status) if status.code() == Code::ResourceExhausted => {
                            phase.shed_us.push(micros(began));
                            let delay = status
                                .get_details_retry_info()
                                .and_then(|info| info.retry_delay)
                                .unwrap_or(Duration::from_millis(100));
                            phase.delays_ms.push(u32::try_from(delay.as_millis()).unwrap_or(u32::MAX));
                            let jitter = rand::rng().random_range(0.5..1.5);
                            // The burst ends on time: a long delay is cut short at its end.
                            let until = (Instant::now() + delay.mul_f64(jitter)).min(stop_at);
                            tokio::time::sleep_until(until.into()).await;
                        }
                        Err(status) => seen.errors.push(format!("{:?}: {}", status.code(), status.message())),
                    }
                }
                seen
            })
        })
        .collect();

    let probes = probe_apart(args.target.clone(), args.health_target.clone(), fixture.clone(), steady_from, stop_at);
    // How many cores the server, the load generator and the whole machine kept busy in the
    // steady state: whether a slow answer waited for a saturated server, or the machine was short
    // of CPU elsewhere (the load generator, PostgreSQL).
    let server_busy =
        args.server_pid.map(|pid| tokio::spawn(cores_busy(steady_from, stop_at, move || process_cpu_seconds(pid))));
    let generator = std::process::id();
    let generator_busy = tokio::spawn(cores_busy(steady_from, stop_at, move || process_cpu_seconds(generator)));
    let machine_busy = tokio::spawn(cores_busy(steady_from, stop_at, machine_cpu_seconds));

    let mut seen = Seen::default();
    let Probes { onset: mut onset_probes, steady: mut probes, realtime } =
        tokio::task::spawn_blocking(move || probes.join())
            .await
            .map_err(|e| e.to_string())?
            .map_err(|_| "the probe thread panicked".to_owned())??;
    for worker in workers {
        let one = worker.await.map_err(|e| e.to_string())?;
        seen.onset.merge(one.onset);
        seen.steady.merge(one.steady);
        seen.errors.extend(one.errors);
    }
    // Rates over the steady state; the calls still in flight at its end finish after it.
    let elapsed = args.duration;
    // Right after: the first calls once the burst is over.
    let began = Instant::now();
    scenarios::health_check(&probe).await.map_err(|s| format!("health after the burst: {s}"))?;
    let health_after = micros(began);
    let began = Instant::now();
    scenarios::get_partner(&fixture, &probe, 0, 0).await.map_err(|s| format!("GetPartner after the burst: {s}"))?;
    let get_after = micros(began);

    seen.onset.sort();
    seen.steady.sort();
    onset_probes.sort();
    probes.sort();
    let ProbeSet { health: health_during, apart: apart_during, get: get_during, get_shed: probe_shed } = probes;
    let Seen { onset, steady, errors } = seen;
    let peak_mib = args.server_pid.and_then(|pid| resident_mib(pid, "VmHWM"));
    let server_cpu = match server_busy {
        Some(busy) => busy.await.map_err(|e| e.to_string())?,
        None => None,
    };
    let generator_cpu = generator_busy.await.map_err(|e| e.to_string())?;
    let machine_cpu = machine_busy.await.map_err(|e| e.to_string())?;
    let admitted_per_s = steady.admitted_us.len() as f64 / elapsed;
    // Figures that exist only when there was something to measure: a health port apart to probe,
    // probe GetPartners that were shed.
    let apart_ms = |sorted: &[u32], p: f64| args.health_target.as_ref().map(|_| percentile_ms(sorted, p));
    let shed_probe_ms = |p: f64| (!probe_shed.is_empty()).then(|| percentile_ms(&probe_shed, p));
    let report = serde_json::json!({
        "in_flight": args.in_flight,
        "connections": args.connections,
        "seconds": elapsed,
        "admitted_per_s": admitted_per_s,
        "onset_seconds": args.onset,
        "shed_per_s": steady.shed_us.len() as f64 / elapsed,
        "admitted_p50_ms": percentile_ms(&steady.admitted_us, 50.0),
        "admitted_p99_ms": percentile_ms(&steady.admitted_us, 99.0),
        "shed_p50_ms": percentile_ms(&steady.shed_us, 50.0),
        "shed_p99_ms": percentile_ms(&steady.shed_us, 99.0),
        "retry_delay_p50_ms": stats::percentile_us(&steady.delays_ms, 50.0),
        "retry_delay_max_ms": stats::percentile_us(&steady.delays_ms, 100.0),
        "onset_admitted": onset.admitted_us.len(),
        "onset_shed": onset.shed_us.len(),
        "onset_admitted_p99_ms": percentile_ms(&onset.admitted_us, 99.0),
        "onset_shed_p99_ms": percentile_ms(&onset.shed_us, 99.0),
        "health_during_max_ms": percentile_ms(&health_during, 100.0),
        "health_during_p50_ms": percentile_ms(&health_during, 50.0),
        "health_during_p90_ms": percentile_ms(&health_during, 90.0),
        "health_apart_during_max_ms": apart_ms(&apart_during, 100.0),
        "health_apart_during_p90_ms": apart_ms(&apart_during, 90.0),
        "get_partner_during_max_ms": percentile_ms(&get_during, 100.0),
        "probe_shed": probe_shed.len(),
        "probe_shed_max_ms": shed_probe_ms(100.0),
        "probe_shed_p50_ms": shed_probe_ms(50.0),
        "probe_shed_p90_ms": shed_probe_ms(90.0),
        "probes_realtime": realtime,
        "onset_health_max_ms": percentile_ms(&onset_probes.health, 100.0),
        "onset_health_apart_max_ms": apart_ms(&onset_probes.apart, 100.0),
        "onset_get_partner_max_ms": percentile_ms(&onset_probes.get, 100.0),
        "health_after_ms": f64::from(health_after) / 1000.0,
        "get_partner_after_ms": f64::from(get_after) / 1000.0,
        "peak_memory_mib": peak_mib,
        "server_cpu_cores": server_cpu,
        "generator_cpu_cores": generator_cpu,
        "machine_cpu_cores": machine_cpu,
        "baseline_per_s": args.baseline,
        "errors": errors.len(),
    });
    println!(
        "onset ({:.0} s): admitted {}, shed {}, p99 {:.2} ms admitted, {:.2} ms shed",
        args.onset,
        onset.admitted_us.len(),
        onset.shed_us.len(),
        report["onset_admitted_p99_ms"].as_f64().unwrap_or_default(),
        report["onset_shed_p99_ms"].as_f64().unwrap_or_default(),
    );
    println!(
        "burst {} in flight over {} connections, steady {:.1} s: admitted {:.0}/s (p50 {:.2} ms, p99 {:.2} ms), shed {:.0}/s \
         (p50 {:.2} ms, p99 {:.2} ms, told to wait {} ms at the median, {} ms at most); health max {:.2} ms during (apart: {}), {:.2} ms after; GetPartner probe max {:.2} ms \
         during ({} of them shed, slowest {}), {:.2} ms after; peak memory {}; errors {}",
        args.in_flight,
        args.connections,
        elapsed,
        admitted_per_s,
        report["admitted_p50_ms"].as_f64().unwrap_or_default(),
        report["admitted_p99_ms"].as_f64().unwrap_or_default(),
        report["shed_per_s"].as_f64().unwrap_or_default(),
        report["shed_p50_ms"].as_f64().unwrap_or_default(),
        report["shed_p99_ms"].as_f64().unwrap_or_default(),
        report["retry_delay_p50_ms"],
        report["retry_delay_max_ms"],
        report["health_during_max_ms"].as_f64().unwrap_or_default(),
        report["health_apart_during_max_ms"].as_f64().map_or("not probed".to_owned(), |ms| format!("{ms:.2} ms")),
        report["health_after_ms"].as_f64().unwrap_or_default(),
        report["get_partner_during_max_ms"].as_f64().unwrap_or_default(),
        probe_shed.len(),
        report["probe_shed_max_ms"].as_f64().map_or("-".to_owned(), |ms| format!("{ms:.2} ms")),
        report["get_partner_after_ms"].as_f64().unwrap_or_default(),
        peak_mib.map_or("unknown".to_owned(), |mib| format!("{mib:.1} MiB")),
        errors.len(),
    );
    let ms = |key: &str| report[key].as_f64().map_or("-".to_owned(), |ms| format!("{ms:.2}"));
    println!(
        "probes ({}): steady: health p50/p90/max {}/{}/{} ms, apart p90/max {}/{} ms; shed GetPartner p50/p90/max {}/{}/{} ms; \
         onset: health max {} ms, apart {} ms, GetPartner {} ms; CPU cores busy: server {}, load generator {}, whole machine {}",
        if realtime { "real-time thread" } else { "ordinary thread" },
        ms("health_during_p50_ms"),
        ms("health_during_p90_ms"),
        ms("health_during_max_ms"),
        ms("health_apart_during_p90_ms"),
        ms("health_apart_during_max_ms"),
        ms("probe_shed_p50_ms"),
        ms("probe_shed_p90_ms"),
        ms("probe_shed_max_ms"),
        ms("onset_health_max_ms"),
        ms("onset_health_apart_max_ms"),
        ms("onset_get_partner_max_ms"),
        ms("server_cpu_cores"),
        ms("generator_cpu_cores"),
        ms("machine_cpu_cores"),
    );
    if let Some(error) = errors.first() {
        println!("  first error: {error}");
    }
    if let Some(path) = &args.json {
        std::fs::write(path, report.to_string()).map_err(|e| format!("write {}: {e}", path.display()))?;
    }
    Ok(errors.is_empty() && !steady.admitted_us.is_empty())
}

/// The cores that used `cpu_seconds` (a reading of CPU time used so far) between `from` and `to`.
async fn cores_busy(from: Instant, to: Instant, cpu_seconds: impl Fn() -> Option<f64>) -> Option<f64> {
    tokio::time::sleep_until(from.into()).await;
    let before = cpu_seconds()?;
    tokio::time::sleep_until(to.into()).await;
    Some((cpu_seconds()? - before) / to.duration_since(from).as_secs_f64())
}

/// Linux's unit of CPU time in /proc (USER_HZ): 100 per second on every Linux that matters here.
const TICKS_PER_SECOND: f64 = 100.0;

/// The CPU time process `pid` has used (user and system), in seconds (Linux).
fn process_cpu_seconds(pid: u32) -> Option<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // After the command name in parentheses: state is the 3rd field, utime the 14th, stime the 15th.
    let mut fields = stat.rsplit_once(')')?.1.split_whitespace().skip(11);
    let ticks: f64 = fields.next()?.parse::<f64>().ok()? + fields.next()?.parse::<f64>().ok()?;
    Some(ticks / TICKS_PER_SECOND)
}

/// The CPU time the whole machine has been busy, summed over its CPUs, in seconds (Linux:
/// `/proc/stat`, whatever this process is pinned to). Idle and iowait are not busy; guest time is
/// already in user time.
fn machine_cpu_seconds() -> Option<f64> {
    let stat = std::fs::read_to_string("/proc/stat").ok()?;
    let ticks: Vec<f64> =
        stat.lines().next()?.split_whitespace().skip(1).take(8).map(|n| n.parse().ok()).collect::<Option<_>>()?;
    let idle = ticks.get(3)? + ticks.get(4)?;
    Some((ticks.iter().sum::<f64>() - idle) / TICKS_PER_SECOND)
}

/// A resident-memory figure of process `pid` from /proc/<pid>/status, in MiB: `VmHWM` (the peak so
/// far) or `VmRSS` (now).
pub fn resident_mib(pid: u32, field: &str) -> Option<f64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|line| line.strip_prefix(field).is_some_and(|rest| rest.starts_with(':')))?;
    let kib: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib / 1024.0)
}
