//! `pc-bench report`: turns the measurements of `bench/run.sh` into ratios against the machine's
//! own limits, a markdown table for the README, `summary.json`, and an SVG chart of throughput
//! against concurrency (drawn by hand: a few lines of SVG need no plotting library).

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

pub fn report(dir: &Path, sweep: &[usize], chart: &Path) -> Result<bool, String> {
    let health = field(&read_json(dir, "pg-health"), "throughput");
    let get = field(&read_json(dir, "pg-get-partner"), "throughput");
    let create = field(&read_json(dir, "pg-create-partner"), "throughput");
    let read_tps = read_number(dir, "pg-read.tps");
    let write_tps = read_number(dir, "pg-write.tps");
    let (read_limit, write_limit) = (composed(health, read_tps), composed(health, write_tps));
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
            name.ends_with(".rss_kib").then(|| read_number(dir, &name)).flatten()
        })
        .fold(0.0_f64, f64::max)
        / 1024.0;

    let ratio = |a: Option<f64>, b: Option<f64>| Some(a? / b?);
    let list_ratio = match (lists.first(), lists.last()) {
        (Some(small), Some(large)) if lists.len() > 1 => Some(large.1 / small.1),
        _ => None,
    };
    let checks = [
        ("GetPartner / composed read limit (PostgreSQL)", ratio(get, read_limit), 0.70, true),
        ("CreatePartner / composed write limit (PostgreSQL)", ratio(create, write_limit), 0.60, true),
        ("GetPartner / Health (SQLite)", ratio(sqlite_get, sqlite_health), 0.60, true),
        ("ListSubscriptions p50 large / small table", list_ratio, 1.2, false),
        ("peak resident memory, MiB", Some(peak_rss_mib), 128.0, false),
    ];
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
    ] {
        println!("| {label} | {} |", fmt(value));
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
        summary.insert(label.to_owned(), json!({ "value": value, "goal": goal, "at_least": at_least, "met": met }));
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
        Line { name: "Health/Check (framework limit)", color: "#999999", points: series("sweep-health") },
        Line { name: "GetPartner", color: "#1f77b4", points: series("sweep-get-partner") },
    ];
    std::fs::write(chart, svg(&lines, read_limit)).map_err(|e| format!("write {}: {e}", chart.display()))?;
    println!("\nchart: {}", chart.display());
    Ok(all_met)
}

/// One series of the chart: (concurrency, calls per second) points.
struct Line<'a> {
    name: &'a str,
    color: &'a str,
    points: Vec<(f64, f64)>,
}

/// A line chart of throughput against concurrency (log2 x axis), with the composed read limit.
fn svg(lines: &[Line<'_>], limit: Option<f64>) -> String {
    let (width, height, left, bottom, top, right) = (900.0, 420.0, 80.0, 360.0, 30.0, 600.0);
    let max_y =
        lines.iter().flat_map(|line| line.points.iter().map(|(_, y)| *y)).chain(limit).fold(1.0, f64::max) * 1.1;
    let max_x = lines.iter().flat_map(|line| line.points.iter().map(|(x, _)| *x)).fold(1.0, f64::max).log2().max(1.0);
    let x = |c: f64| left + c.log2() / max_x * (right - left);
    let y = |v: f64| bottom - v / max_y * (bottom - top);
    let mut out = format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{width}\" height=\"{height}\" font-family=\"sans-serif\" font-size=\"12\">\n\
         <rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n\
         <line x1=\"{left}\" y1=\"{bottom}\" x2=\"{right}\" y2=\"{bottom}\" stroke=\"black\"/>\n\
         <line x1=\"{left}\" y1=\"{top}\" x2=\"{left}\" y2=\"{bottom}\" stroke=\"black\"/>\n\
         <text x=\"{}\" y=\"{}\" text-anchor=\"middle\">concurrency</text>\n\
         <text x=\"20\" y=\"{}\" transform=\"rotate(-90 20 {})\" text-anchor=\"middle\">calls per second</text>\n",
        (left + right) / 2.0,
        bottom + 40.0,
        (top + bottom) / 2.0,
        (top + bottom) / 2.0
    );
    for step in 0..=4 {
        let value = max_y * f64::from(step) / 4.0;
        out += &format!(
            "<text x=\"{}\" y=\"{}\" text-anchor=\"end\">{value:.0}</text>\n<line x1=\"{left}\" y1=\"{1}\" x2=\"{right}\" y2=\"{1}\" stroke=\"#eeeeee\"/>\n",
            left - 6.0,
            y(value)
        );
    }
    let mut legend_y = top + 10.0;
    for Line { name, color, points } in lines {
        let path: Vec<String> = points.iter().map(|(c, v)| format!("{:.1},{:.1}", x(*c), y(*v))).collect();
        out +=
            &format!("<polyline fill=\"none\" stroke=\"{color}\" stroke-width=\"2\" points=\"{}\"/>\n", path.join(" "));
        for (c, v) in points {
            out += &format!("<circle cx=\"{:.1}\" cy=\"{:.1}\" r=\"3\" fill=\"{color}\"/>\n", x(*c), y(*v));
            out += &format!("<text x=\"{:.1}\" y=\"{}\" text-anchor=\"middle\">{c}</text>\n", x(*c), bottom + 16.0);
        }
        out += &format!("<text x=\"{}\" y=\"{legend_y}\" fill=\"{color}\">{name}</text>\n", right + 10.0);
        legend_y += 18.0;
    }
    if let Some(limit) = limit {
        out += &format!(
            "<line x1=\"{left}\" y1=\"{0:.1}\" x2=\"{right}\" y2=\"{0:.1}\" stroke=\"#d62728\" stroke-dasharray=\"6 4\"/>\n<text x=\"{1}\" y=\"{legend_y}\" fill=\"#d62728\">composed read limit (at the top concurrency)</text>\n",
            y(limit),
            right + 10.0
        );
    }
    out + "</svg>\n"
}
