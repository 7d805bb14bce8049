//! Nexmark benchmark runner: runs the Nexmark queries (`engine/nexmark/q*.sql`) as
//! streaming jobs over the `nexmark` connector and prints events per second; with
//! `--latency`, runs q1 with the source throttled to a wall-clock rate and prints the
//! latency from each event's scheduled generation to its arrival at the sink.
//!
//! ```sh
//! cargo run --release -p sluice --example nexmark -- [--events N] [--parallelism P] [q1 q5 ...]
//! cargo run --release -p sluice --example nexmark -- --latency [--rate EVENTS_PER_S] [--events N]
//! ```
//!
//! The sink is the runner itself: it drains every result batch (as a `blackhole` sink
//! would), counting rows. Events per second count the whole event sequence (persons,
//! auctions and bids), as Nexmark does, over the job's wall time.

use std::time::Instant;

use arrow::array::AsArray;
use arrow::datatypes::{DataType, TimeUnit, TimestampMicrosecondType};
use sluice::catalog::datagen::BASE_TIMESTAMP_MICROS;
use sluice::catalog::nexmark_gen::DEFAULT_EVENT_TIME_RATE;
use sluice::{Session, SessionConfig, SluiceError};

const QUERIES: [&str; 9] = ["q0", "q1", "q2", "q3", "q4", "q5", "q6", "q7", "q8"];

/// Event time advances by this many microseconds per event (the connector's default
/// event-time rate).
const MICROS_PER_EVENT: i64 = 1_000_000 / DEFAULT_EVENT_TIME_RATE as i64;

struct Args {
    events: u64,
    parallelism: usize,
    queries: Vec<String>,
    latency: bool,
    rate: u64,
}

fn parse_args() -> sluice::Result<Args> {
    let mut a = Args {
        events: 10_000_000,
        parallelism: 2,
        queries: Vec::new(),
        latency: false,
        rate: 1_000_000,
    };
    let mut it = std::env::args().skip(1);
    let number = |flag: &str, v: Option<String>| -> sluice::Result<u64> {
        v.and_then(|v| v.parse().ok())
            .ok_or_else(|| SluiceError::plan(format!("{flag} needs a number")))
    };
    while let Some(arg) = it.next() {
        match arg.as_str() {
            "--events" => a.events = number("--events", it.next())?,
            "--parallelism" => a.parallelism = number("--parallelism", it.next())? as usize,
            "--rate" => a.rate = number("--rate", it.next())?,
            "--latency" => a.latency = true,
            q if QUERIES.contains(&q) => a.queries.push(q.to_string()),
            other => {
                return Err(SluiceError::plan(format!(
                    "unknown argument '{other}' (queries: {})",
                    QUERIES.join(" ")
                )))
            }
        }
    }
    if a.queries.is_empty() {
        a.queries = QUERIES.iter().map(|q| q.to_string()).collect();
    }
    Ok(a)
}

/// The text of `engine/nexmark/{name}.sql` without its comment lines.
fn sql(name: &str) -> sluice::Result<String> {
    let path = format!("{}/nexmark/{name}.sql", env!("CARGO_MANIFEST_DIR"));
    let text = std::fs::read_to_string(&path)
        .map_err(|e| SluiceError::plan(format!("cannot read {path}: {e}")))?;
    Ok(text
        .lines()
        .filter(|l| !l.trim_start().starts_with("--"))
        .collect::<Vec<_>>()
        .join("\n"))
}

/// A streaming session with the Nexmark tables over `events` events (and `rate` events/s
/// of wall clock when not 0).
fn session(events: u64, parallelism: usize, rate: u64) -> sluice::Result<Session> {
    let s = Session::with_config(SessionConfig::default().with_target_partitions(parallelism));
    s.sql("SET 'execution.runtime-mode' = 'streaming'")?;
    let mut ddl = sql("ddl")?
        .replace("{events}", &events.to_string())
        .replace("{seed}", "0");
    if rate > 0 {
        ddl = ddl.replace("'events' =", &format!("'rate' = '{rate}', 'events' ="));
    }
    for stmt in ddl.split(';').filter(|t| !t.trim().is_empty()) {
        s.sql(stmt)?;
    }
    Ok(s)
}

fn throughput(a: &Args) -> sluice::Result<()> {
    println!(
        "Nexmark, {} events, parallelism {} (streaming mode, results drained)",
        a.events, a.parallelism
    );
    println!(
        "{:<6}{:>12}{:>10}{:>16}",
        "query", "rows out", "seconds", "M events/s"
    );
    for q in &a.queries {
        let s = session(a.events, a.parallelism, 0)?;
        let started = Instant::now();
        let run = || -> sluice::Result<usize> {
            let mut rows = 0;
            for b in s.sql(&sql(q)?)?.execute_iter()? {
                rows += b?.num_rows();
            }
            Ok(rows)
        };
        match run() {
            Ok(rows) => {
                let secs = started.elapsed().as_secs_f64();
                println!(
                    "{q:<6}{rows:>12}{secs:>10.2}{:>16.2}",
                    a.events as f64 / secs / 1e6
                );
            }
            Err(e) => println!("{q:<6}  not run: {e}"),
        }
    }
    Ok(())
}

fn latency(a: &Args) -> sluice::Result<()> {
    let s = session(a.events, a.parallelism, a.rate)?;
    let df = s.sql(&sql("q1")?)?;
    let started = Instant::now();
    let mut latencies_ms: Vec<f64> = Vec::new();
    for b in df.execute_iter()? {
        let b = b?;
        let arrived = started.elapsed().as_secs_f64();
        let at = b
            .schema()
            .fields()
            .iter()
            .position(|f| f.name().eq_ignore_ascii_case("datetime"))
            .ok_or_else(|| SluiceError::exec("q1 has no dateTime column"))?;
        let col = b.column(at);
        let micros = DataType::Timestamp(TimeUnit::Microsecond, None);
        let col = arrow::compute::cast(col, &micros)?;
        let times = col.as_primitive::<TimestampMicrosecondType>();
        for i in 0..times.len() {
            // The event's number, from its event time; its scheduled wall-clock time.
            let n = (times.value(i) - BASE_TIMESTAMP_MICROS) / MICROS_PER_EVENT;
            let due = n as f64 / a.rate as f64;
            latencies_ms.push((arrived - due) * 1e3);
        }
    }
    latencies_ms.sort_by(f64::total_cmp);
    let at = |p: f64| {
        let i = ((latencies_ms.len() as f64 - 1.0) * p).round() as usize;
        latencies_ms.get(i).copied().unwrap_or(f64::NAN)
    };
    println!(
        "q1 at {} events/s, {} events, parallelism {}: {} rows; latency from scheduled \
         generation to the sink: p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms",
        a.rate,
        a.events,
        a.parallelism,
        latencies_ms.len(),
        at(0.5),
        at(0.99),
        at(1.0)
    );
    Ok(())
}

fn main() -> sluice::Result<()> {
    let a = parse_args()?;
    if a.latency {
        latency(&a)
    } else {
        throughput(&a)
    }
}
