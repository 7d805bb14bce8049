//! Strategy agreement: the same queries give the same rows with 1, 2 or 4 partitions and
//! with pipelined (in-memory) or blocking (spilled Arrow IPC, mmap-read) exchanges.

use std::sync::Arc;

use arrow::array::{Int64Array, RecordBatch, StringArray};
use arrow::datatypes::{DataType, Field, Schema};
use arrow::util::display::{ArrayFormatter, FormatOptions};
use sluice::{ExchangeMode, Session, SessionConfig};

fn session(partitions: usize, mode: ExchangeMode) -> Session {
    let dir = std::env::temp_dir();
    let cfg = SessionConfig {
        batch_size: 97,
        spill_dir: dir,
        ..SessionConfig::default()
    }
    .with_target_partitions(partitions)
    .with_exchange_mode(mode);
    let s = Session::with_config(cfg);
    let n = 5000i64;
    let schema = Arc::new(Schema::new(vec![
        Field::new("k", DataType::Int64, true),
        Field::new("g", DataType::Utf8, true),
        Field::new("v", DataType::Int64, true),
    ]));
    let k: Int64Array = (0..n).map(|i| (i % 11 != 0).then_some(i % 617)).collect();
    let g: StringArray = (0..n)
        .map(|i| (i % 13 != 0).then(|| format!("g{}", i % 37)))
        .collect();
    let v: Int64Array = (0..n).map(|i| Some((i * 7919) % 1000 - 500)).collect();
    let b = RecordBatch::try_new(schema.clone(), vec![Arc::new(k), Arc::new(g), Arc::new(v)])
        .expect("batch");
    let batches: Vec<RecordBatch> = (0..10).map(|i| b.slice(i * 500, 500)).collect();
    s.register_batches("t", schema.clone(), batches.clone())
        .expect("t");
    s.register_batches("u", schema, batches[..3].to_vec())
        .expect("u");
    s
}

/// Rows as sorted strings (order-insensitive comparison).
fn rows(s: &Session, sql: &str) -> Vec<String> {
    let batches = s
        .sql(sql)
        .and_then(|d| d.collect())
        .unwrap_or_else(|e| panic!("{sql}: {e}"));
    let mut out = Vec::new();
    for b in &batches {
        let f: Vec<_> = b
            .columns()
            .iter()
            .map(|c| {
                ArrayFormatter::try_new(c.as_ref(), &FormatOptions::default().with_null("NULL"))
                    .expect("fmt")
            })
            .collect();
        for r in 0..b.num_rows() {
            out.push(
                f.iter()
                    .map(|x| x.value(r).to_string())
                    .collect::<Vec<_>>()
                    .join("|"),
            );
        }
    }
    out.sort();
    out
}

#[test]
fn partitions_and_exchange_modes_agree() {
    let queries = [
        "SELECT g, count(*), sum(v), min(k), max(k), avg(v), count(DISTINCT k) FROM t GROUP BY g",
        "SELECT t.k, count(*) FROM t JOIN u ON t.k = u.k GROUP BY t.k",
        "SELECT t.g, u.v FROM t LEFT JOIN u ON t.k = u.k AND u.v > 400 WHERE t.v < -490",
        "SELECT count(*) FROM t FULL JOIN u ON t.k = u.k AND t.v = u.v",
        "SELECT k FROM t WHERE k NOT IN (SELECT v FROM u WHERE v > 300) GROUP BY k",
        "SELECT g FROM t WHERE EXISTS (SELECT 1 FROM u WHERE u.g = t.g AND u.v > t.v + 900)",
        "SELECT k, v, rank() OVER (PARTITION BY g ORDER BY v) FROM t WHERE k < 20",
        "SELECT * FROM (SELECT k FROM t UNION SELECT v FROM u) x",
        "SELECT g, v FROM t ORDER BY v DESC, g LIMIT 17",
    ];
    let reference = session(1, ExchangeMode::Pipelined);
    for (p, mode) in [
        (2, ExchangeMode::Pipelined),
        (4, ExchangeMode::Pipelined),
        (2, ExchangeMode::Blocking),
        (3, ExchangeMode::Blocking),
    ] {
        let other = session(p, mode);
        for q in queries {
            let a = rows(&reference, q);
            assert!(
                !a.is_empty(),
                "{q} returned nothing; the test would prove nothing"
            );
            assert_eq!(
                a,
                rows(&other, q),
                "{q} differs with {p} partitions, {mode:?}"
            );
        }
    }
}

/// An aggregation takes over the filter below it (EXPLAIN shows the predicate in the
/// aggregation and no FilterExec). Whether most of a batch passes (the rows are selected
/// in place), few do (the batch is cut) or none, it gives what aggregating the filtered
/// rows gives; a LIMIT between the two keeps the reference's filter apart.
#[test]
fn aggregations_over_filters_agree_with_filtering_first() {
    let s = session(2, ExchangeMode::Pipelined);
    let aggs = "count(*), count(k), sum(k), sum(v), avg(v), min(k), max(g), \
                sum(CAST(v AS DECIMAL(12,2))), avg(CAST(k AS DECIMAL(10,1)))";
    let predicates = [
        "v > -450",
        "v > 0",
        "v % 3 = 0",
        "k IS NOT NULL AND v < 450",
        "g IS NULL OR v > -300",
        "v < -600",
    ];
    let plan = |sql: &str| rows(&s, &format!("EXPLAIN {sql}")).join("\n");
    for p in predicates {
        for group in ["g", "k % 5", ""] {
            let (select, by) = match group {
                "" => (aggs.to_string(), String::new()),
                g => (format!("{g}, {aggs}"), format!(" GROUP BY {g}")),
            };
            let fused = format!("SELECT {select} FROM t WHERE {p}{by}");
            let apart =
                format!("SELECT {select} FROM (SELECT * FROM t WHERE {p} LIMIT 1000000) f{by}");
            let (fused_plan, apart_plan) = (plan(&fused), plan(&apart));
            assert!(
                fused_plan.contains("filter=") && !fused_plan.contains("FilterExec"),
                "{fused}: {fused_plan}"
            );
            assert!(apart_plan.contains("FilterExec"), "{apart}: {apart_plan}");
            assert_eq!(rows(&s, &fused), rows(&s, &apart), "{fused}");
        }
    }
    // A DISTINCT aggregation runs in one phase; it takes the filter over only when its
    // input needs no exchange, and gives the same rows either way.
    let q = "SELECT g, count(DISTINCT k), sum(v) FROM t WHERE v > -450 GROUP BY g";
    let apart = "SELECT g, count(DISTINCT k), sum(v) \
                 FROM (SELECT * FROM t WHERE v > -450 LIMIT 1000000) f GROUP BY g";
    assert_eq!(rows(&s, q), rows(&s, apart));
    let one = session(1, ExchangeMode::Pipelined);
    assert_eq!(rows(&one, q), rows(&s, apart));
}
