//! Latency and throughput of one measured run: every call's latency is kept (a run is at most a
//! few hundred thousand calls), so percentiles are exact rather than estimated.

use std::time::Duration;

/// What one worker saw during the measured window.
#[derive(Debug, Default)]
pub struct Samples {
    pub latencies_us: Vec<u32>,
    pub errors: Vec<String>,
}

impl Samples {
    pub fn merge(mut self, other: Samples) -> Samples {
        self.latencies_us.extend(other.latencies_us);
        self.errors.extend(other.errors);
        self
    }
}

/// Microseconds since `since`, as the samples keep them.
pub fn micros(since: std::time::Instant) -> u32 {
    u32::try_from(since.elapsed().as_micros()).unwrap_or(u32::MAX)
}

/// [`percentile_us`] in milliseconds.
pub fn percentile_ms(sorted: &[u32], p: f64) -> f64 {
    f64::from(percentile_us(sorted, p)) / 1000.0
}

/// The `p`th percentile (nearest rank) of `sorted` microseconds; 0 when there are none.
pub fn percentile_us(sorted: &[u32], p: f64) -> u32 {
    if sorted.is_empty() {
        return 0;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

#[derive(Debug)]
pub struct Report {
    pub scenario: String,
    pub concurrency: usize,
    pub connections: usize,
    pub seconds: f64,
    pub calls: usize,
    pub errors: usize,
    pub first_error: Option<String>,
    pub throughput: f64,
    pub p50_ms: f64,
    pub p90_ms: f64,
    pub p99_ms: f64,
    pub max_ms: f64,
}

impl Report {
    pub fn new(scenario: &str, concurrency: usize, connections: usize, window: Duration, mut samples: Samples) -> Self {
        samples.latencies_us.sort_unstable();
        let percentile = |p: f64| percentile_ms(&samples.latencies_us, p);
        let seconds = window.as_secs_f64();
        Report {
            scenario: scenario.to_owned(),
            concurrency,
            connections,
            seconds,
            calls: samples.latencies_us.len(),
            errors: samples.errors.len(),
            first_error: samples.errors.first().cloned(),
            throughput: samples.latencies_us.len() as f64 / seconds,
            p50_ms: percentile(50.0),
            p90_ms: percentile(90.0),
            p99_ms: percentile(99.0),
            max_ms: samples.latencies_us.last().map_or(0.0, |us| f64::from(*us) / 1000.0),
        }
    }

    pub fn print(&self) {
        println!(
            "{:<20} conc {:>4}  {:>9.0} calls/s  p50 {:>7.2} ms  p90 {:>7.2} ms  p99 {:>7.2} ms  max {:>7.2} ms  errors {}",
            self.scenario,
            self.concurrency,
            self.throughput,
            self.p50_ms,
            self.p90_ms,
            self.p99_ms,
            self.max_ms,
            self.errors
        );
        if let Some(error) = &self.first_error {
            println!("  first error: {error}");
        }
    }

    pub fn json(&self) -> serde_json::Value {
        serde_json::json!({
            "scenario": self.scenario,
            "concurrency": self.concurrency,
            "connections": self.connections,
            "seconds": self.seconds,
            "calls": self.calls,
            "errors": self.errors,
            "throughput": self.throughput,
            "p50_ms": self.p50_ms,
            "p90_ms": self.p90_ms,
            "p99_ms": self.p99_ms,
            "max_ms": self.max_ms,
        })
    }
}
