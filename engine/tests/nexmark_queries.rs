//! The Nexmark queries (`engine/nexmark/q*.sql`, Flink nexmark's SQL) over the `nexmark`
//! connector: each one that has a streaming form must give, run as a stream, the batch
//! result of the same SQL over the same events; the others must be refused by name.

use sluice::{Session, SessionConfig};

mod common;
use common::{apply_changelog, lines, rows};

/// The text of `engine/nexmark/{name}.sql` without its comment lines.
fn sql(name: &str) -> String {
    let path = format!("{}/nexmark/{name}.sql", env!("CARGO_MANIFEST_DIR"));
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    text.lines()
        .filter(|l| !l.trim_start().starts_with("--"))
        .collect::<Vec<_>>()
        .join("\n")
}

/// A session with the three Nexmark tables over `events` events.
fn session(events: u64, partitions: usize) -> Session {
    let s = Session::with_config(SessionConfig::default().with_target_partitions(partitions));
    let ddl = sql("ddl")
        .replace("{events}", &events.to_string())
        .replace("{seed}", "7");
    for stmt in ddl.split(';').filter(|t| !t.trim().is_empty()) {
        s.sql(stmt).unwrap_or_else(|e| panic!("{stmt}: {e}"));
    }
    s
}

fn run(s: &Session, mode: &str, q: &str) -> Result<Vec<String>, String> {
    s.sql(&format!("SET 'execution.runtime-mode' = '{mode}'"))
        .expect("set");
    let df = s.sql(&sql(q)).map_err(|e| e.to_string())?;
    let batches = df.collect().map_err(|e| e.to_string())?;
    Ok(match df.is_updating() {
        true => apply_changelog(&lines(&batches)),
        false => rows(&batches),
    })
}

/// 200 000 events: 20 s of event time, so the 10 s windows of q5, q7 and q8 close twice.
const EVENTS: u64 = 200_000;

fn same_both_ways(q: &str, min_rows: usize) {
    for partitions in [1, 3] {
        let s = session(EVENTS, partitions);
        let batch = run(&s, "batch", q).unwrap_or_else(|e| panic!("{q} batch: {e}"));
        let stream = run(&s, "streaming", q).unwrap_or_else(|e| panic!("{q} stream: {e}"));
        assert!(
            batch.len() >= min_rows,
            "{q}: {} rows, expected at least {min_rows}",
            batch.len()
        );
        assert_eq!(batch.len(), stream.len(), "{q} at {partitions} partitions");
        assert_eq!(batch, stream, "{q} at {partitions} partitions");
    }
}

#[test]
fn q0_pass_through() {
    same_both_ways("q0", 184_000);
}

#[test]
fn q1_currency_conversion() {
    same_both_ways("q1", 184_000);
}

#[test]
fn q2_selection() {
    same_both_ways("q2", 10);
}

#[test]
fn q3_local_item_suggestion() {
    same_both_ways("q3", 100);
}

#[test]
fn q4_average_price_per_category() {
    same_both_ways("q4", 5);
}

#[test]
fn q5_hot_items() {
    same_both_ways("q5", 10);
}

#[test]
fn q7_highest_bid() {
    same_both_ways("q7", 2);
}

#[test]
fn q8_monitor_new_users() {
    same_both_ways("q8", 10);
    // A window join: its state goes as the watermark passes each window's end.
    let s = session(EVENTS, 2);
    s.sql("SET 'execution.runtime-mode' = 'streaming'")
        .expect("set");
    let plan = lines(
        &s.sql(&format!("EXPLAIN {}", sql("q8")))
            .and_then(|df| df.collect())
            .expect("explain"),
    )
    .join("\n");
    assert!(plan.contains("interval: 0µs <= "), "{plan}");
}

#[test]
fn q6_runs_in_batch_and_is_refused_in_streaming() {
    let s = session(20_000, 2);
    s.sql("SET 'execution.runtime-mode' = 'batch'")
        .expect("set");
    let q6 = run(&s, "batch", "q6").unwrap_or_else(|e| panic!("q6 batch: {e}"));
    // The closing prices q6 averages: its query between `FROM (` and `) AS Q`.
    let text = sql("q6");
    let inner = text
        .split_once("FROM (")
        .and_then(|(_, rest)| rest.rsplit_once(") AS Q"))
        .map(|(q, _)| q)
        .expect("q6's inner query");
    let per_seller = s
        .sql(&format!(
            "SELECT seller, MIN(final), MAX(final), AVG(final), COUNT(*) FROM ({inner}) q \
             GROUP BY seller"
        ))
        .and_then(|df| df.collect())
        .expect("per seller");
    let mut averages: std::collections::HashMap<String, Vec<f64>> = Default::default();
    for line in &q6 {
        let (seller, avg) = line.split_once(" | ").expect("two columns");
        averages
            .entry(seller.to_string())
            .or_default()
            .push(avg.parse().expect("an average"));
    }
    assert_eq!(averages.values().map(Vec::len).sum::<usize>(), q6.len());
    let mut checked_whole = 0;
    for line in rows(&per_seller) {
        let f: Vec<&str> = line.split(" | ").collect();
        let (min, max, avg): (f64, f64, f64) = (
            f[1].parse().expect("min"),
            f[2].parse().expect("max"),
            f[3].parse().expect("avg"),
        );
        let count: usize = f[4].parse().expect("count");
        let got = averages.get(f[0]).expect("every seller has q6 rows");
        // One row per closing price, each average within the seller's prices.
        assert_eq!(got.len(), count, "seller {}", f[0]);
        assert!(got.iter().all(|&a| a >= min - 1e-9 && a <= max + 1e-9));
        // With at most 11 prices, the last row's frame holds them all.
        if count <= 11 {
            assert!(
                got.iter().any(|&a| (a - avg).abs() < 1e-6),
                "seller {}",
                f[0]
            );
            checked_whole += 1;
        }
    }
    assert!(checked_whole > 0, "no seller with at most 11 prices");
    // Streaming mode runs no OVER windows (nor does Flink a ROWS frame over an updating
    // result).
    let e = run(&s, "streaming", "q6").expect_err("q6 streaming");
    assert!(e.contains("streaming"), "streaming: {e}");
}
