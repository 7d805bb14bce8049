//! Helpers shared by the integration tests: result batches as text lines, so results can
//! be compared as sorted multisets (batch against stream) or read in order (changelogs),
//! and a changelog applied; the `bids` stream and the stream-against-batch harness of the
//! streaming tests; and the EXPLAIN ANALYZE check that a subplan was computed once.

// Each test crate uses a part of these.
#![allow(dead_code)]

use arrow::array::RecordBatch;
use arrow::util::display::{ArrayFormatter, FormatOptions};
use sluice::{Session, SessionConfig};

/// Rows as text lines (`v1 | v2 | ...`, NULL as `NULL`), in order.
pub fn lines(batches: &[RecordBatch]) -> Vec<String> {
    let opts = FormatOptions::default().with_null("NULL");
    let mut out = Vec::new();
    for b in batches {
        let fmts: Vec<_> = b
            .columns()
            .iter()
            .map(|c| ArrayFormatter::try_new(c.as_ref(), &opts).expect("fmt"))
            .collect();
        for r in 0..b.num_rows() {
            let v: Vec<String> = fmts.iter().map(|f| f.value(r).to_string()).collect();
            out.push(v.join(" | "));
        }
    }
    out
}

/// The sum of the last column of text lines (counts), which must be integers.
pub fn last_column_sum(lines: &[String]) -> i64 {
    lines
        .iter()
        .map(|l| {
            l.rsplit(" | ")
                .next()
                .and_then(|n| n.parse::<i64>().ok())
                .unwrap_or_else(|| panic!("no count at the end of {l}"))
        })
        .sum()
}

/// Rows as sorted text lines (an order-insensitive comparison).
pub fn rows(batches: &[RecordBatch]) -> Vec<String> {
    let mut out = lines(batches);
    out.sort();
    out
}

/// The rows a changelog leaves (`op` first: `+I`/`+U` add a row, `-U`/`-D` remove an
/// equal one, which must be there), sorted.
pub fn apply_changelog(changelog: &[String]) -> Vec<String> {
    let mut table: Vec<String> = Vec::new();
    for line in changelog {
        let (op, row) = line.split_once(" | ").unwrap_or((line, ""));
        match op {
            "+I" | "+U" => table.push(row.to_string()),
            "-U" | "-D" => {
                let at = table
                    .iter()
                    .position(|r| r == row)
                    .unwrap_or_else(|| panic!("{op} of a row not in the result: {row}"));
                table.swap_remove(at);
            }
            other => panic!("unknown op {other} in {line}"),
        }
    }
    table.sort();
    table
}

/// Bids with out-of-order event time: row `id` happens at `id * 7` ms minus up to 1.5 s of
/// jitter; the watermark allows `delay` of disorder.
pub fn session(rows: u64, delay: &str, partitions: usize) -> Session {
    let cfg = SessionConfig {
        batch_size: 1000,
        ..SessionConfig::default()
    }
    .with_target_partitions(partitions);
    let s = Session::with_config(cfg);
    s.sql(&format!(
        "CREATE TABLE bids (
            id BIGINT, auction BIGINT, price BIGINT, jitter BIGINT,
            ts AS TO_TIMESTAMP_LTZ(id * 7 - jitter, 3),
            WATERMARK FOR ts AS ts - INTERVAL '{delay}' SECOND
         ) WITH (
            'connector' = 'datagen', 'number-of-rows' = '{rows}', 'seed' = '42',
            'fields.id.kind' = 'sequence', 'fields.id.start' = '0',
            'fields.id.end' = '{}',
            'fields.auction.min' = '1', 'fields.auction.max' = '40',
            'fields.price.min' = '1', 'fields.price.max' = '1000',
            'fields.jitter.min' = '0', 'fields.jitter.max' = '1500'
         )",
        rows - 1
    ))
    .expect("create bids");
    s
}

/// The result of `sql` in `mode`, as sorted text lines; an updating streaming result's
/// changelog is applied first.
pub fn run(s: &Session, mode: &str, sql: &str) -> Vec<String> {
    s.sql(&format!("SET 'execution.runtime-mode' = '{mode}'"))
        .expect("set");
    let df = s.sql(sql).expect("plan");
    assert_eq!(df.is_streaming(), mode == "streaming", "{sql}");
    let batches = df
        .collect()
        .unwrap_or_else(|e| panic!("{mode} run of {sql}: {e}"));
    if !df.is_updating() {
        return rows(&batches);
    }
    assert_eq!(df.result_schema().field(0).name(), "op");
    // In the order emitted: each key's changes are in order within its partition.
    apply_changelog(&lines(&batches))
}

/// Runs `sql` both ways at 1 and 3 partitions and asserts equal, non-empty results.
pub fn same_both_ways(sql: &str) {
    for partitions in [1, 3] {
        let s = session(20_000, "2", partitions);
        let batch = run(&s, "batch", sql);
        let stream = run(&s, "streaming", sql);
        assert!(!batch.is_empty(), "{sql}: empty batch result");
        assert_eq!(
            batch.len(),
            stream.len(),
            "{sql} at {partitions} partitions: row counts differ"
        );
        assert_eq!(batch, stream, "{sql} at {partitions} partitions");
    }
}

/// The shared node shows twice in `sql`'s EXPLAIN ANALYZE (under both parents), computed
/// and kept once, never recomputed.
pub fn assert_shared_once(s: &Session, sql: &str) {
    let plan = explain_analyze(s, sql);
    let shared: Vec<&str> = plan.lines().filter(|l| l.contains("SharedExec")).collect();
    assert_eq!(shared.len(), 2, "{plan}");
    assert!(
        shared
            .iter()
            .all(|l| l.contains("kept=1, recomputed_partitions=0")),
        "{plan}"
    );
}

/// `sql`'s EXPLAIN ANALYZE text.
pub fn explain_analyze(s: &Session, sql: &str) -> String {
    s.sql(sql)
        .and_then(|d| d.explain_analyze())
        .expect("explain analyze")
}
