//! `pc-bench report`: turns the measurements of `bench/run.sh` into ratios against the machine's
//! own limits, a markdown table for the README, `summary.json`, and an SVG chart of throughput
//! against concurrency (plotters' SVG backend).

use std::{collections::BTreeMap, path::Path};

use serde_json::{Value, json};

fn read_json(dir: &Path, name: &str) -> Option<Value> {
    let text = std::fs::read_to_string(dir.join(format!("{name}.json"))).ok()?;
    serde_json::from_str(&text).ok()
}

fn read_number(dir: &Path, file: &str) -> Option<f64> {
    std::fs::read_to_string(dir.join(file)).ok()?.trim().parse().ok()
}

fn field(value: &Option<Value>, key: &str) -> Option<f64> {
    value.as_ref()?.get(key)?.as_f64()
}

/// 1 / (1/a + 1/b): what the machine could do if a call cost one gRPC round trip plus its SQL.
fn composed(framework: Option<f64>, database: Option<f64>) -> Option<f64> {
    Some(1.0 / (1.0 / framework? + 1.0 / database?))
}

/// The targets of each `pc-bench burst` (`burst-{in_flight}.json`), in order of calls in flight.
/// A target: what is measured, its value, its goal, and whether the value must reach the goal
/// (`true`) or stay under it.
type Check = (String, Option<f64>, f64, bool);

fn burst_checks(dir: &Path) -> Result<Vec<Check>, String> {
    let mut bursts: Vec<(u64, Value)> = std::fs::read_dir(dir)
        .map_err(|e| e.to_string())?
        .filter_map(|entry| {
            let name = entry.ok()?.file_name().into_string().ok()?;
            let in_flight = name.strip_prefix("burst-")?.strip_suffix(".json")?.parse().ok()?;
            Some((in_flight, read_json(dir, &format!("burst-{in_flight}"))?))
        })
        .collect();
    bursts.sort_by_key(|(in_flight, _)| *in_flight);
    let mut checks = Vec::new();
    for (in_flight, burst) in bursts {
        let burst = Some(burst);
        let ratio = |a: Option<f64>, b: Option<f64>| Some(a? / b?);
        let admitted = field(&burst, "admitted_per_s");
        let baseline = field(&burst, "baseline_per_s");
        // "Throughout": the onset (every client at once) as well as the steady state.
        let slowest = |steady: &str, onset: &str| match (field(&burst, steady), field(&burst, onset)) {
            (Some(steady), Some(onset)) => Some(steady.max(onset)),
            (steady, onset) => steady.or(onset),
        };
        for (what, value, goal, at_least) in [
            (
                "admitted GetPartner/s / GetPartner/s of the same-run baseline (concurrency 64)",
                ratio(admitted, baseline),
                1.0,
                true,
            ),
            ("peak resident memory, MiB", field(&burst, "peak_memory_mib"), 128.0, false),
            ("p99 of admitted GetPartner, ms", field(&burst, "admitted_p99_ms"), 50.0, false),
            // The probes' shed GetPartners, not the workers': a worker's call also waits for a
            // stream slot in its own connection and for the load generator's busy core.
            (
                "slowest answer to a shed GetPartner probe (steady state), ms",
                field(&burst, "probe_shed_max_ms"),
                5.0,
                false,
            ),
            (
                "slowest health check during the burst (main port), ms",
                slowest("health_during_max_ms", "onset_health_max_ms"),
                50.0,
                false,
            ),
            (
                "slowest health check during the burst (HEALTH_LISTEN_ADDR), ms",
                slowest("health_apart_during_max_ms", "onset_health_apart_max_ms"),
                50.0,
                false,
            ),
        ] {
            checks.push((format!("{in_flight} in flight: {what}"), value, goal, at_least));
        }
    }
    Ok(checks)
}

pub fn report(dir: &Path, sweep: &[usize], chart: &Path) -> Result<bool, String> {
    let health = field(&read_json(dir, "pg-health"), "throughput");
    let get = field(&read_json(dir, "pg-get-partner"), "throughput");
    let create = field(&read_json(dir, "pg-create-partner"), "throughput");
    let read_tps = read_number(dir, "pg-read.tps");
    let write_tps = read_number(dir, "pg-write.tps");
    let (read_limit, write_limit) = (composed(health, read_tps), composed(health, write_tps));
    // A transfer is two calls (CreateTransfer, AcceptTransfer): two round trips per operation.
    let transfer = field(&read_json(dir, "pg-transfer"), "throughput");
    let transfer_tps = read_number(dir, "pg-transfer-sql.tps");
    let transfer_limit = composed(health.map(|h| h / 2.0), transfer_tps);
    let sqlite_health = field(&read_json(dir, "sqlite-health"), "throughput");
    let sqlite_get = field(&read_json(dir, "sqlite-get-partner"), "throughput");
    let mut lists: Vec<(u64, f64)> = std::fs::read_dir(dir)
        .map_err(|e| e.to_string())?
        .filter_map(|entry| {
            let name = entry.ok()?.file_name().into_string().ok()?;
            let rows = name.strip_prefix("pg-list-")?.strip_suffix(".json")?.parse().ok()?;
            Some((rows, field(&read_json(dir, &format!("pg-list-{rows}")), "p50_ms")?))
        })
        .collect();
    lists.sort_by_key(|(rows, _)| *rows);
    let peak_rss_mib = std::fs::read_dir(dir)
        .map_err(|e| e.to_string())?
        .filter_map(|entry| {
            let name = entry.ok()?.file_name().into_string().ok()?;
            // A burst's peak is its own target (burst_checks), beside the steady scenarios'.
            (name.ends_with(".rss_kib") && !name.starts_with("burst-")).then(|| read_number(dir, &name)).flatten()
        })
        .fold(0.0_f64, f64::max)
        / 1024.0;

    let ratio = |a: Option<f64>, b: Option<f64>| Some(a? / b?);
    let list_ratio = match (lists.first(), lists.last()) {
        (Some(small), Some(large)) if lists.len() > 1 => Some(large.1 / small.1),
        _ => None,
    };
    let mut checks: Vec<Check> = [
        ("GetPartner / composed read limit (PostgreSQL)", ratio(get, read_limit), 0.70, true),
        ("CreatePartner / composed write limit (PostgreSQL)", ratio(create, write_limit), 0.60, true),
        ("GetPartner / Health (SQLite)", ratio(sqlite_get, sqlite_health), 0.60, true),
        ("ListSubscriptions p50 large / small table", list_ratio, 1.2, false),
        ("peak resident memory, MiB", Some(peak_rss_mib), 128.0, false),
    ]
    .into_iter()
    .map(|(label, value, goal, at_least)| (label.to_owned(), value, goal, at_least))
    .collect();
    checks.extend(burst_checks(dir)?);
    let fmt = |v: Option<f64>| v.map_or("n/a".to_owned(), |v| format!("{v:.0}"));
    println!("\n| measurement | calls/s |\n| --- | --- |");
    for (label, value) in [
        ("Health/Check (framework limit)", health),
        ("pgbench: GetPartner's SQL", read_tps),
        ("pgbench: CreatePartner's SQL", write_tps),
        ("composed read limit", read_limit),
        ("composed write limit", write_limit),
        ("GetPartner", get),
        ("CreatePartner", create),
        ("SQLite Health/Check", sqlite_health),
        ("SQLite GetPartner", sqlite_get),
        ("pgbench: a 10-subscription transfer's SQL (create + accept)", transfer_tps),
        ("composed transfer limit (two round trips plus its SQL)", transfer_limit),
        ("Transfer (create + accept of 10 subscriptions)", transfer),
    ] {
        println!("| {label} | {} |", fmt(value));
    }
    if let Some(share) = ratio(transfer, transfer_limit) {
        println!("| Transfer / composed transfer limit | {share:.2} |");
    }
    for (rows, p50) in &lists {
        println!("| ListSubscriptions p50 at {rows} rows | {p50:.2} ms |");
    }
    println!("\n| target | measured | goal | met |\n| --- | --- | --- | --- |");
    let mut all_met = true;
    let mut summary = BTreeMap::new();
    for (label, value, goal, at_least) in checks {
        let met = value.map(|v| if at_least { v >= goal } else { v <= goal });
        all_met &= met.unwrap_or(false);
        let shown = value.map_or("n/a".to_owned(), |v| format!("{v:.2}"));
        let sign = if at_least { ">=" } else { "<=" };
        println!("| {label} | {shown} | {sign} {goal} | {} |", met.map_or("n/a", |m| if m { "yes" } else { "no" }));
        summary.insert(label.clone(), json!({ "value": value, "goal": goal, "at_least": at_least, "met": met }));
    }
    std::fs::write(dir.join("summary.json"), serde_json::to_string_pretty(&summary).map_err(|e| e.to_string())?)
        .map_err(|e| e.to_string())?;

    let series = |prefix: &str| -> Vec<(f64, f64)> {
        sweep
            .iter()
            .filter_map(|c| Some((*c as f64, field(&read_json(dir, &format!("{prefix}-{c}")), "throughput")?)))
            .collect()
    };
    let lines = [
        Line {
            name: "Health/Check (framework limit)",
            color: plotters::style::RGBColor(0x99, 0x99, 0x99),
            points: series("sweep-health"),
        },
        Line {
            name: "GetPartner",
            color: plotters::style::RGBColor(0x1f, 0x77, 0xb4),
            points: series("sweep-get-partner"),
        },
    ];
    std::fs::write(chart, svg(&lines, read_limit)?).map_err(|e| format!("write {}: {e}", chart.display()))?;
    println!("\nchart: {}", chart.display());
    Ok(all_met)
}

/// One series of the chart: (concurrency, calls per second) points.
struct Line<'a> {
    name: &'a str,
    color: plotters::style::RGBColor,
    points: Vec<(f64, f64)>,
}

/// A line chart of throughput against concurrency (log x axis), with the composed read limit,
/// drawn by plotters' SVG backend.
fn svg(lines: &[Line<'_>], limit: Option<f64>) -> Result<String, String> {
    use plotters::prelude::*;

    let max_y =
        lines.iter().flat_map(|line| line.points.iter().map(|(_, y)| *y)).chain(limit).fold(1.0, f64::max) * 1.1;
    let max_x = lines.iter().flat_map(|line| line.points.iter().map(|(x, _)| *x)).fold(2.0, f64::max);
    let mut out = String::new();
    {
        let root = SVGBackend::with_string(&mut out, (900, 420)).into_drawing_area();
        root.fill(&WHITE).map_err(|e| e.to_string())?;
        let mut chart = ChartBuilder::on(&root)
            .margin(20)
            .x_label_area_size(40)
            .y_label_area_size(70)
            .build_cartesian_2d((1.0..max_x).log_scale(), 0.0..max_y)
            .map_err(|e| e.to_string())?;
        chart
            .configure_mesh()
            .x_desc("concurrency")
            .y_desc("calls per second")
            .label_style(("sans-serif", 14))
            .x_label_formatter(&|c| format!("{c:.0}"))
            .y_label_formatter(&|v| format!("{v:.0}"))
            .draw()
            .map_err(|e| e.to_string())?;
        for Line { name, color, points } in lines {
            let color = *color;
            chart
                .draw_series(LineSeries::new(points.iter().copied(), color.stroke_width(2)))
                .map_err(|e| e.to_string())?
                .label(*name)
                .legend(move |(x, y)| PathElement::new([(x, y), (x + 20, y)], color));
            chart
                .draw_series(points.iter().map(|point| Circle::new(*point, 3, color.filled())))
                .map_err(|e| e.to_string())?;
        }
        if let Some(limit) = limit {
            let red = RGBColor(0xd6, 0x27, 0x28);
            chart
                .draw_series(DashedLineSeries::new([(1.0, limit), (max_x, limit)], 6, 4, red.into()))
                .map_err(|e| e.to_string())?
                .label("composed read limit (at the top concurrency)")
                .legend(move |(x, y)| PathElement::new([(x, y), (x + 20, y)], red));
        }
        chart
            .configure_series_labels()
            .background_style(WHITE.mix(0.8))
            .border_style(BLACK)
            .label_font(("sans-serif", 14))
            .position(SeriesLabelPosition::UpperLeft)
            .draw()
            .map_err(|e| e.to_string())?;
        root.present().map_err(|e| e.to_string())?;
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_chart_draws_every_series_and_the_limit() {
        let grey = plotters::style::RGBColor(0x99, 0x99, 0x99);
        let blue = plotters::style::RGBColor(0x1f, 0x77, 0xb4);
        let lines = [
            Line { name: "Health/Check (framework limit)", color: grey, points: vec![(1.0, 900.0), (64.0, 30_000.0)] },
            Line { name: "GetPartner", color: blue, points: vec![(1.0, 700.0), (64.0, 20_000.0)] },
        ];
        let chart = svg(&lines, Some(25_000.0)).unwrap_or_default();
        assert!(chart.starts_with("<svg"), "{chart}");
        for text in ["GetPartner", "Health/Check (framework limit)", "composed read limit", "concurrency"] {
            assert!(chart.contains(text), "{text} missing");
        }
        assert_eq!(chart.matches("<circle").count(), 4, "{chart}");
    }
}
