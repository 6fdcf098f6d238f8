//! `pc-bench events`: the change feed's figures (README, Events). Three phases against one server:
//! the delay from a change's commit to a WatchEvents client receiving it while writers commit at a
//! steady rate; the server's memory while 100 watchers sit idle; and the event relay's publish
//! rate to NATS JetStream on a backlog (the relay runs in this process, on the server's database,
//! publishing to a stream of the run's own that is deleted afterwards).
//!
//! The delay is measured from the event's `create_time`, which the server stamps inside the
//! writing transaction, before its commit: an upper bound of the commit-to-receipt delay, on the
//! one clock of this machine.

use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use pc_api::event::v1::{WatchEventsRequest, event_service_client::EventServiceClient};
use pc_api::partner::v1::ProgramRole;
use sea_orm::ConnectionTrait;
use serde_json::json;
use tokio::sync::Semaphore;

use crate::burst::resident_mib;
use crate::scenarios::{self, Tokens};
use crate::stats::{percentile_ms, percentile_us};

#[derive(Debug, clap::Args)]
pub struct EventsArgs {
    /// The server, e.g. http://127.0.0.1:50050.
    #[arg(long, default_value = "http://127.0.0.1:50050")]
    target: String,
    /// The server's AUTH_JWT_SECRET, to mint the tokens a client would be given.
    #[arg(long, env = "AUTH_JWT_SECRET", hide_env_values = true)]
    secret: String,
    /// Changes committed per second while the delay is measured.
    #[arg(long, default_value_t = 1000.0)]
    rate: f64,
    /// Seconds the delay is measured.
    #[arg(long, default_value_t = 10.0)]
    duration: f64,
    /// Writes in flight at most (the rate is kept unless the server cannot keep up with it).
    #[arg(long, default_value_t = 64)]
    writers: usize,
    /// Watchers held open and idle while the server's memory is sampled.
    #[arg(long, default_value_t = 100)]
    idle_watchers: usize,
    /// Seconds they are held.
    #[arg(long, default_value_t = 30.0)]
    idle_secs: f64,
    /// The server's process, whose memory is sampled.
    #[arg(long)]
    server_pid: Option<u32>,
    /// The server's database: the relay phase reads its feed (skipped without it).
    #[arg(long, env = "BENCH_DATABASE_URL")]
    database_url: Option<String>,
    /// The NATS server (JetStream on) the relay publishes to.
    #[arg(long, default_value = "nats://127.0.0.1:4222")]
    nats_url: String,
    /// Events in the feed before the relay starts (writes are added when there are fewer).
    #[arg(long, default_value_t = 50_000)]
    backlog: u64,
    /// Also write the figures as JSON to this file.
    #[arg(long)]
    json: Option<std::path::PathBuf>,
}

pub async fn events(args: EventsArgs) -> Result<bool, String> {
    let tokens = Tokens::new(&args.secret);
    let delay = commit_to_watch_delay(&args, &tokens).await?;
    let idle = idle_watchers(&args, &tokens).await?;
    let relay = match &args.database_url {
        Some(url) => Some(relay_rate(&args, &tokens, url).await?),
        None => None,
    };
    let report = json!({ "watch_delay": delay, "idle_watchers": idle, "relay": relay });
    println!("{}", serde_json::to_string_pretty(&report).map_err(|e| e.to_string())?);
    if let Some(path) = &args.json {
        std::fs::write(path, report.to_string()).map_err(|e| format!("write {}: {e}", path.display()))?;
    }
    Ok(true)
}

/// Writers enrol partners at `args.rate` for `args.duration`; one operator's WatchEvents, opened
/// first, notes when each event arrives.
async fn commit_to_watch_delay(args: &EventsArgs, tokens: &Tokens) -> Result<serde_json::Value, String> {
    let operator = tokens.bearer("operator")?;
    let channel = scenarios::connect(args.target.clone()).await?;
    let mut watch = EventServiceClient::with_interceptor(channel.clone(), operator.clone())
        .watch_events(WatchEventsRequest::default())
        .await
        .map_err(|s| scenarios::status_text(&s))?
        .into_inner();
    let window = Duration::from_secs_f64(args.duration);
    let receiver = tokio::spawn(async move {
        let mut delays_us = Vec::new();
        while let Ok(Ok(Some(event))) = tokio::time::timeout(Duration::from_secs(2), watch.message()).await {
            let Some(created) = event.create_time else { continue };
            let created = SystemTime::UNIX_EPOCH
                + Duration::new(u64::try_from(created.seconds).unwrap_or(0), u32::try_from(created.nanos).unwrap_or(0));
            let delay = SystemTime::now().duration_since(created).unwrap_or_default();
            delays_us.push(u32::try_from(delay.as_micros()).unwrap_or(u32::MAX));
        }
        delays_us
    });

    let in_flight = Arc::new(Semaphore::new(args.writers.max(1)));
    let mut tick = tokio::time::interval(Duration::from_secs_f64(1.0 / args.rate.max(1.0)));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
    let start = Instant::now();
    let mut writes = Vec::new();
    while start.elapsed() < window {
        tick.tick().await;
        let permit = in_flight.clone().acquire_owned().await.map_err(|e| e.to_string())?;
        let (channel, operator) = (channel.clone(), operator.clone());
        writes.push(tokio::spawn(async move {
            let began = Instant::now();
            let written = scenarios::enrol(&channel, &operator, ProgramRole::DirectBillPartner).await;
            drop(permit);
            written.map(|_| crate::stats::micros(began))
        }));
    }
    let written = writes.len();
    // Each write's own latency, as its caller saw it: an event passes the feed's horizon only once
    // every write that began before it has ended, so the delay's tail follows the writes'.
    let mut write_us = Vec::with_capacity(written);
    for write in writes {
        write_us.push(write.await.map_err(|e| e.to_string())??);
    }
    write_us.sort_unstable();
    let elapsed = start.elapsed().as_secs_f64();
    let mut delays = receiver.await.map_err(|e| e.to_string())?;
    delays.sort_unstable();
    if delays.len() < written {
        return Err(format!("the watcher received {} of {written} events", delays.len()));
    }
    let figures = json!({
        "writes_per_second": written as f64 / elapsed,
        "events": delays.len(),
        "p50_ms": percentile_ms(&delays, 50.0),
        "p90_ms": percentile_ms(&delays, 90.0),
        "p99_ms": percentile_ms(&delays, 99.0),
        "max_ms": f64::from(percentile_us(&delays, 100.0)) / 1000.0,
        "write_p50_ms": percentile_ms(&write_us, 50.0),
        "write_p99_ms": percentile_ms(&write_us, 99.0),
    });
    Ok(figures)
}

/// The server's resident memory before, and over the time, `args.idle_watchers` WatchEvents
/// calls stay open with nothing to send (25 per connection: the server admits 32 streams on one).
async fn idle_watchers(args: &EventsArgs, tokens: &Tokens) -> Result<serde_json::Value, String> {
    let rss = || args.server_pid.and_then(|pid| resident_mib(pid, "VmRSS"));
    let before = rss();
    let operator = tokens.bearer("operator")?;
    let mut streams = Vec::with_capacity(args.idle_watchers);
    let mut channel = None;
    for watcher in 0..args.idle_watchers {
        if watcher % 25 == 0 {
            channel = Some(scenarios::connect(args.target.clone()).await?);
        }
        let Some(channel) = channel.clone() else { continue };
        let stream = EventServiceClient::with_interceptor(channel, operator.clone())
            .watch_events(WatchEventsRequest::default())
            .await
            .map_err(|s| scenarios::status_text(&s))?
            .into_inner();
        streams.push(stream);
    }
    let mut samples = Vec::new();
    let step = Duration::from_secs_f64(args.idle_secs / 5.0);
    for _ in 0..=5 {
        samples.push(rss());
        tokio::time::sleep(step).await;
    }
    drop(streams);
    Ok(
        json!({ "watchers": args.idle_watchers, "seconds": args.idle_secs, "rss_mib_before": before, "rss_mib_samples": samples }),
    )
}

/// Fills the feed up to `args.backlog` events, then times the relay publishing all of it.
async fn relay_rate(args: &EventsArgs, tokens: &Tokens, database_url: &str) -> Result<serde_json::Value, String> {
    let db = sea_orm::Database::connect(database_url).await.map_err(|e| e.to_string())?;
    let count = || async {
        let row = db
            .query_one_raw(sea_orm::Statement::from_string(
                db.get_database_backend(),
                "SELECT COUNT(*) AS n FROM audit_events",
            ))
            .await
            .map_err(|e| e.to_string())?
            .ok_or("no count")?;
        row.try_get::<i64>("", "n").map_err(|e| e.to_string())
    };
    let missing = args.backlog.saturating_sub(u64::try_from(count().await?).unwrap_or(0));
    let operator = tokens.bearer("operator")?;
    let channel = scenarios::connect(args.target.clone()).await?;
    let fillers: Vec<_> = (0..32u64)
        .map(|filler| {
            let (channel, operator) = (channel.clone(), operator.clone());
            let writes = missing / 32 + u64::from(filler < missing % 32);
            tokio::spawn(async move {
                for _ in 0..writes {
                    scenarios::enrol(&channel, &operator, ProgramRole::DirectBillPartner).await?;
                }
                Ok::<_, String>(())
            })
        })
        .collect();
    for filler in fillers {
        filler.await.map_err(|e| e.to_string())??;
    }
    let events = u64::try_from(count().await?).unwrap_or(0);

    let run = uuid::Uuid::new_v4().simple().to_string();
    let config = event_relay::Config {
        database_url: database_url.to_owned(),
        nats_url: args.nats_url.clone(),
        stream: format!("PCBENCH_{run}"),
        subject_prefix: format!("pcbench.{run}"),
        lease_secs: 10,
        relay_id: Some("pc-bench".into()),
        batch: 1000,
        retention_hours: 1,
        log_format: pc_server::LogFormat::Text,
    };
    let nats = async_nats::connect(args.nats_url.as_str()).await.map_err(|e| e.to_string())?;
    let jetstream = async_nats::jetstream::new(nats);
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let relay_config = config.clone();
    let start = Instant::now();
    let relay = tokio::spawn(async move {
        event_relay::relay::run(&relay_config, async { drop(stopped.await) }).await.map_err(|e| e.to_string())
    });
    let published = loop {
        let held = match jetstream.get_stream(&config.stream).await {
            Ok(mut stream) => stream.info().await.map_or(0, |info| info.state.messages),
            Err(_) => 0,
        };
        if held >= events {
            break held;
        }
        if start.elapsed() > Duration::from_secs(600) {
            return Err(format!("the relay published {held} of {events} events in 10 minutes"));
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    let elapsed = start.elapsed().as_secs_f64();
    stop.send(()).ok();
    relay.await.map_err(|e| e.to_string())??;
    jetstream.delete_stream(&config.stream).await.map_err(|e| e.to_string())?;
    Ok(
        json!({ "backlog": events, "published": published, "seconds": elapsed, "events_per_second": events as f64 / elapsed }),
    )
}
