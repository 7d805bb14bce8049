//! Dynamic filters: a hash join's build keys filter its probe-side scan. They must drop
//! rows where that cannot change the answer (inner and semi joins, through aggregates and
//! projections) and never where it could (a preserved probe side, anti joins, NOT IN);
//! where Parquet statistics show a whole build table holds every probe key, none is planned.

use std::sync::Arc;

use arrow::array::{ArrayRef, Int64Array, RecordBatch, StringArray};
use arrow::datatypes::{DataType, Field, Schema};
use sluice::{Session, SessionConfig};

mod common;

/// `facts(k, v)`: 10 000 rows, `k = i % 1000` (NULL every 97th row), `v = i`;
/// `dims(k, name)`: keys 0..1000 named `n<k % 100>`.
fn session() -> Session {
    let s = Session::with_config(SessionConfig {
        batch_size: 512,
        ..SessionConfig::default()
    });
    let facts = Arc::new(Schema::new(vec![
        Field::new("k", DataType::Int64, true),
        Field::new("v", DataType::Int64, false),
    ]));
    let k: Int64Array = (0..10_000i64)
        .map(|i| (i % 97 != 0).then_some(i % 1000))
        .collect();
    let v = Int64Array::from_iter_values(0..10_000);
    let b = RecordBatch::try_new(facts.clone(), vec![Arc::new(k), Arc::new(v)]).expect("facts");
    let batches = (0..10).map(|i| b.slice(i * 1000, 1000)).collect();
    s.register_batches("facts", facts, batches).expect("facts");
    let dims = Arc::new(Schema::new(vec![
        Field::new("k", DataType::Int64, false),
        Field::new("name", DataType::Utf8, false),
    ]));
    let k = Int64Array::from_iter_values(0..1000);
    let name: StringArray = (0..1000).map(|i| Some(format!("n{}", i % 100))).collect();
    let b = RecordBatch::try_new(dims.clone(), vec![Arc::new(k), Arc::new(name)]).expect("dims");
    s.register_batches("dims", dims, vec![b]).expect("dims");
    s
}

/// The single row of `sql`'s result, as `v1 | v2 | ...`.
fn one_row(s: &Session, sql: &str) -> String {
    let batches = s
        .sql(sql)
        .and_then(|d| d.collect())
        .unwrap_or_else(|e| panic!("{sql}: {e}"));
    let rows = common::lines(&batches);
    assert_eq!(rows.len(), 1, "{sql}: {rows:?}");
    rows[0].clone()
}

/// The facts rows with a non-NULL key whose `k % 100 == 7`, by brute force: (count, sum of v).
fn sevens() -> (i64, i64) {
    let rows: Vec<i64> = (0..10_000i64)
        .filter(|i| i % 97 != 0 && (i % 1000) % 100 == 7)
        .collect();
    (rows.len() as i64, rows.iter().sum())
}

#[test]
fn inner_and_semi_joins_filter_the_probe_scan_and_keep_the_answer() {
    let s = session();
    let (n, sum) = sevens();
    let expected = format!("{n} | {sum}");
    let inner = "SELECT count(*), sum(f.v) FROM facts f JOIN dims d ON f.k = d.k
                 WHERE d.name = 'n7'";
    assert_eq!(one_row(&s, inner), expected);
    // Through an aggregate and a projection on the probe side.
    let through_agg = "SELECT sum(a.c), sum(a.s) FROM dims d
                       JOIN (SELECT k AS key, count(*) AS c, sum(v) AS s FROM facts GROUP BY k) a
                         ON a.key = d.k
                       WHERE d.name = 'n7'";
    assert_eq!(one_row(&s, through_agg), expected);
    let semi = "SELECT count(*), sum(v) FROM facts
                WHERE k IN (SELECT k FROM dims WHERE name = 'n7')";
    assert_eq!(one_row(&s, semi), expected);
    // The filter ran and dropped rows before the join.
    let plan = s
        .sql(inner)
        .and_then(|d| d.explain_analyze())
        .expect("explain analyze");
    let line = plan
        .lines()
        .find(|l| l.contains("DynamicFilterExec"))
        .unwrap_or_else(|| panic!("no dynamic filter: {plan}"));
    assert!(line.contains("rows_in=10000"), "{line}");
    assert!(!line.contains("rows_out=10000"), "{line}");
}

#[test]
fn no_filter_where_unmatched_probe_rows_count() {
    let s = session();
    let (n, _) = sevens();
    let nulls = (0..10_000).filter(|i| i % 97 == 0).count() as i64;
    // The probe side (facts) is preserved: every row stays.
    let left = "SELECT count(*) FROM facts f LEFT JOIN dims d ON f.k = d.k AND d.name = 'n7'";
    assert_eq!(one_row(&s, left), "10000");
    let anti = "SELECT count(*) FROM facts f
                WHERE NOT EXISTS (SELECT 1 FROM dims d WHERE d.k = f.k AND d.name = 'n7')";
    assert_eq!(one_row(&s, anti), (10_000 - n).to_string());
    // NOT IN over keys without NULLs keeps the NULL-keyed facts out, the rest in.
    let not_in = "SELECT count(*) FROM facts
                  WHERE k NOT IN (SELECT k FROM dims WHERE name = 'n7')";
    assert_eq!(one_row(&s, not_in), (10_000 - n - nulls).to_string());
    for sql in [left, anti, not_in] {
        let plan = s
            .sql(sql)
            .and_then(|d| d.explain_analyze())
            .expect("explain analyze");
        assert!(!plan.contains("DynamicFilterExec"), "{sql}: {plan}");
    }
}

#[test]
fn every_key_and_every_join_filters_the_scan() {
    let s = session();
    // picks(a, b): a covers every key of facts (filtering by it keeps all rows), b = 10a + 7
    // picks a thousand values of v.
    let picks = Arc::new(Schema::new(vec![
        Field::new("a", DataType::Int64, false),
        Field::new("b", DataType::Int64, false),
    ]));
    let a = Int64Array::from_iter_values(0..1000);
    let b = Int64Array::from_iter_values((0..1000).map(|a| 10 * a + 7));
    let batch = RecordBatch::try_new(picks.clone(), vec![Arc::new(a), Arc::new(b)]).expect("b");
    s.register_batches("picks", picks, vec![batch])
        .expect("picks");
    let facts = || {
        (0..10_000i64)
            .map(|v| (v % 97 != 0).then_some(v % 1000))
            .zip(0..10_000i64)
    };

    // Two keys: the first keeps everything, the second is what filters.
    let (n, sum) = facts()
        .filter(|&(k, v)| k.is_some_and(|k| v == 10 * k + 7))
        .fold((0, 0), |(n, s), (_, v)| (n + 1, s + v));
    let two_keys = "SELECT count(*), sum(f.v) FROM facts f JOIN picks p ON f.k = p.a AND f.v = p.b";
    assert_eq!(one_row(&s, two_keys), format!("{n} | {sum}"));
    // Two joins on the same scan: each puts its filter over it. (Three conjuncts on picks
    // make it the smaller side by estimate, so both joins build on the dimension.)
    let (n, sum) = facts()
        .filter(|&(k, v)| k.is_some_and(|k| k % 100 == 7) && v % 10 == 7 && v < 200)
        .fold((0, 0), |(n, s), (_, v)| (n + 1, s + v));
    let two_joins = "SELECT count(*), sum(f.v) FROM facts f
                     JOIN dims d ON f.k = d.k
                     JOIN picks p ON f.v = p.b
                     WHERE d.name = 'n7' AND p.a < 20 AND p.b < 200 AND p.a >= 0";
    assert_eq!(one_row(&s, two_joins), format!("{n} | {sum}"));

    for sql in [two_keys, two_joins] {
        let plan = s
            .sql(sql)
            .and_then(|d| d.explain_analyze())
            .expect("explain analyze");
        let filters: Vec<&str> = plan
            .lines()
            .filter(|l| l.contains("DynamicFilterExec"))
            .collect();
        assert_eq!(filters.len(), 2, "{sql}: {plan}");
        // The filter by `v` keeps at most a tenth of the rows.
        let v_rows_out = filters
            .iter()
            .find(|l| l.contains(" v in"))
            .and_then(|l| l.split("rows_out=").nth(1))
            .and_then(|r| {
                r.trim_end_matches(|c: char| !c.is_ascii_digit())
                    .parse::<u64>()
                    .ok()
            })
            .unwrap_or_else(|| panic!("no filter by v: {plan}"));
        assert!(v_rows_out <= 1000, "{sql}: {plan}");
    }
}

/// Writes `batch` as the Parquet file `name` in `dir` and registers it as table `name`.
fn parquet_table(s: &Session, dir: &std::path::Path, name: &str, batch: RecordBatch) {
    let path = dir.join(format!("{name}.parquet"));
    let file = std::fs::File::create(&path).expect("create");
    let mut w = parquet::arrow::ArrowWriter::try_new(file, batch.schema(), None).expect("writer");
    w.write(&batch).expect("write");
    w.close().expect("close");
    s.register_parquet(name, path.to_str().expect("utf-8 path"))
        .expect("register");
}

#[test]
fn no_filter_where_statistics_show_the_build_side_holds_every_probe_key() {
    let s = Session::new();
    let dir = tempfile::tempdir().expect("dir");
    let int_table = |cols: &[(&str, Vec<i64>)]| {
        let schema = Arc::new(Schema::new(
            cols.iter()
                .map(|(n, _)| Field::new(*n, DataType::Int64, false))
                .collect::<Vec<_>>(),
        ));
        let arrays = cols
            .iter()
            .map(|(_, v)| Arc::new(Int64Array::from(v.clone())) as ArrayRef)
            .collect();
        RecordBatch::try_new(schema, arrays).expect("batch")
    };
    // dim(id 0..100, g = id % 10); fact(id = i % 100, v = i) and wide(id = i % 200, v = i).
    let dim = int_table(&[
        ("id", (0..100).collect()),
        ("g", (0..100).map(|i| i % 10).collect()),
    ]);
    parquet_table(&s, dir.path(), "dim", dim);
    for (name, m) in [("fact", 100), ("wide", 200)] {
        let t = int_table(&[
            ("id", (0..5000).map(|i| i % m).collect()),
            ("v", (0..5000).collect()),
        ]);
        parquet_table(&s, dir.path(), name, t);
    }
    let filters = |sql: &str| -> Vec<String> {
        let plan = s.sql(sql).and_then(|d| d.explain()).expect("explain");
        plan.lines()
            .filter(|l| l.contains("DynamicFilterExec"))
            .map(str::to_string)
            .collect()
    };
    // The whole of dim, and fact's keys within its range: a filter would keep every row.
    let whole = "SELECT sum(f.v) FROM fact f JOIN dim d ON f.id = d.id";
    assert_eq!(one_row(&s, whole), (0..5000).sum::<i64>().to_string());
    assert!(filters(whole).is_empty(), "{:?}", filters(whole));
    // Probe keys outside the build's range: the filter stays (and drops half of them).
    let outside = "SELECT sum(w.v) FROM wide w JOIN dim d ON w.id = d.id";
    let expected: i64 = (0..5000).filter(|i| i % 200 < 100).sum();
    assert_eq!(one_row(&s, outside), expected.to_string());
    assert_eq!(filters(outside).len(), 1);
    // A filtered build side: the filter stays.
    let some = "SELECT sum(f.v) FROM fact f JOIN dim d ON f.id = d.id WHERE d.g = 3";
    let expected: i64 = (0..5000).filter(|i| i % 10 == 3).sum();
    assert_eq!(one_row(&s, some), expected.to_string());
    assert_eq!(filters(some).len(), 1);
    // The whole of dim, but filtered at run time by an enclosing join's keys (sel's g):
    // both filters stay.
    parquet_table(&s, dir.path(), "sel", int_table(&[("g", vec![3])]));
    let chained = "SELECT sum(f.v) FROM fact f JOIN dim d ON f.id = d.id JOIN sel ON d.g = sel.g";
    assert_eq!(one_row(&s, chained), expected.to_string());
    assert_eq!(filters(chained).len(), 2, "{:?}", filters(chained));
}
