//! Late reads under a filter: a Parquet scan right below a filter tests the filter's
//! columns first and reads the other columns only for the rows that pass, when few do.
//! Answers must equal brute force whether the scan reads late or not (selective and
//! unselective predicates, NULLs, strings, arithmetic, together with a join's dynamic
//! filter), and EXPLAIN ANALYZE shows which it did.

use std::sync::Arc;

use arrow::array::{Decimal128Array, Int64Array, RecordBatch, StringArray};
use arrow::datatypes::{DataType, Field, Schema};
use parquet::arrow::ArrowWriter;
use parquet::file::properties::WriterProperties;
use sluice::{Session, SessionConfig};

mod common;

const ROWS: i64 = 200_000;

/// `t(id, d, grp, price, note)`: `id = i`, `d = i * 7 % 10 000`, `grp = g<i % 10>` (NULL
/// every 7th row), `price = i % 1000` cents as DECIMAL(15, 2), `note = n<i % 97>`;
/// written in row groups of 50 000 rows. `k(id)`: every 50th id below 100 000.
fn session(dir: &std::path::Path) -> Session {
    let s = Session::with_config(SessionConfig {
        batch_size: 4096,
        target_partitions: 2,
        ..SessionConfig::default()
    });
    let schema = Arc::new(Schema::new(vec![
        Field::new("id", DataType::Int64, false),
        Field::new("d", DataType::Int64, false),
        Field::new("grp", DataType::Utf8, true),
        Field::new("price", DataType::Decimal128(15, 2), false),
        Field::new("note", DataType::Utf8, false),
    ]));
    let grp: StringArray = (0..ROWS)
        .map(|i| (i % 7 != 0).then(|| format!("g{}", i % 10)))
        .collect();
    let note: StringArray = (0..ROWS).map(|i| Some(format!("n{}", i % 97))).collect();
    let price = Decimal128Array::from_iter_values((0..ROWS).map(|i| (i % 1000) as i128))
        .with_precision_and_scale(15, 2)
        .expect("decimal");
    let batch = RecordBatch::try_new(
        schema.clone(),
        vec![
            Arc::new(Int64Array::from_iter_values(0..ROWS)),
            Arc::new(Int64Array::from_iter_values(
                (0..ROWS).map(|i| i * 7 % 10_000),
            )),
            Arc::new(grp),
            Arc::new(price),
            Arc::new(note),
        ],
    )
    .expect("batch");
    let path = dir.join("t.parquet");
    let props = WriterProperties::builder()
        .set_max_row_group_row_count(Some(50_000))
        .build();
    let file = std::fs::File::create(&path).expect("create");
    let mut w = ArrowWriter::try_new(file, schema, Some(props)).expect("writer");
    w.write(&batch).expect("write");
    w.close().expect("close");
    s.register_parquet("t", path.to_str().expect("utf-8 path"))
        .expect("register");
    let k_schema = Arc::new(Schema::new(vec![Field::new("id", DataType::Int64, false)]));
    let k = RecordBatch::try_new(
        k_schema.clone(),
        vec![Arc::new(Int64Array::from_iter_values(
            (0..100_000).step_by(50),
        ))],
    )
    .expect("k");
    s.register_batches("k", k_schema, vec![k]).expect("k");
    s
}

/// Which rows (by `i`) a predicate keeps.
type Keep = Box<dyn Fn(i64) -> bool>;

/// `count(*) | sum(id) | sum(price)` of the rows `keep` keeps, by brute force.
fn brute(keep: impl Fn(i64) -> bool) -> String {
    let rows: Vec<i64> = (0..ROWS).filter(|&i| keep(i)).collect();
    let price: i64 = rows.iter().map(|i| i % 1000).sum();
    format!(
        "{} | {} | {}.{:02}",
        rows.len(),
        rows.iter().sum::<i64>(),
        price / 100,
        price % 100
    )
}

/// The answer of `sql` (one row) and its scan's line in EXPLAIN ANALYZE.
fn run(s: &Session, sql: &str) -> (String, String) {
    let batches = s
        .sql(sql)
        .and_then(|d| d.collect())
        .unwrap_or_else(|e| panic!("{sql}: {e}"));
    let lines = common::lines(&batches);
    assert_eq!(lines.len(), 1, "{sql}: {lines:?}");
    let plan = s
        .sql(sql)
        .and_then(|d| d.explain_analyze())
        .expect("explain analyze");
    let scan = plan
        .lines()
        .find(|l| l.contains("ParquetExec"))
        .unwrap_or_else(|| panic!("no scan: {plan}"))
        .to_string();
    (lines[0].clone(), scan)
}

/// The `rows_read_late` of a scan line (0 when the scan does not read late).
fn read_late(scan: &str) -> u64 {
    scan.split("rows_read_late=")
        .nth(1)
        .and_then(|r| {
            r.split(|c: char| !c.is_ascii_digit())
                .next()
                .and_then(|n| n.parse().ok())
        })
        .unwrap_or(0)
}

#[test]
fn selective_predicates_read_late_and_keep_the_answer() {
    let dir = tempfile::tempdir().expect("dir");
    let s = session(dir.path());
    let sum = "SELECT count(*), sum(id), sum(price) FROM t WHERE";
    let cases: Vec<(String, Keep)> = vec![
        // A range of d: 2% of the rows.
        (
            format!("{sum} d >= 3000 AND d < 3200"),
            Box::new(|i| (3000..3200).contains(&(i * 7 % 10_000))),
        ),
        // Equality on a string column with NULLs, and a range.
        (
            format!("{sum} grp = 'g3' AND d < 5000"),
            Box::new(|i| i % 7 != 0 && i % 10 == 3 && i * 7 % 10_000 < 5000),
        ),
        // LIKE on a string, OR, arithmetic.
        (
            format!("{sum} (note LIKE 'n1_' OR d + 1 = 10) AND d % 3 = 0"),
            Box::new(|i| {
                let (d, n) = (i * 7 % 10_000, i % 97);
                ((10..20).contains(&n) || d + 1 == 10) && d % 3 == 0
            }),
        ),
    ];
    for (sql, keep) in cases {
        let (answer, scan) = run(&s, &sql);
        assert_eq!(answer, brute(keep), "{sql}");
        assert!(scan.contains("read first for the filter"), "{sql}: {scan}");
        assert!(read_late(&scan) > 0, "{sql}: {scan}");
    }
}

#[test]
fn unselective_predicates_read_plainly_and_keep_the_answer() {
    let dir = tempfile::tempdir().expect("dir");
    let s = session(dir.path());
    // Half the rows pass: the scan gives up reading late, the filter above does the work.
    let (answer, scan) = run(
        &s,
        "SELECT count(*), sum(id), sum(price) FROM t WHERE d < 5000",
    );
    assert_eq!(answer, brute(|i| i * 7 % 10_000 < 5000));
    assert_eq!(read_late(&scan), 0, "{scan}");
    // Every column is tested: nothing to read late, no early test.
    let (answer, scan) = run(
        &s,
        "SELECT count(*), sum(id), sum(price) FROM t WHERE id + d < price * 0",
    );
    assert_eq!(answer, "0 | NULL | NULL");
    assert!(!scan.contains("read first"), "{scan}");
}

#[test]
fn a_predicate_and_a_join_filter_test_together() {
    let dir = tempfile::tempdir().expect("dir");
    let s = session(dir.path());
    // k's ids filter t's scan (a join's dynamic filter), and so does t's own predicate.
    let (answer, scan) = run(
        &s,
        "SELECT count(*), sum(t.id), sum(t.price) FROM t JOIN k ON t.id = k.id
         WHERE t.d < 3000",
    );
    assert_eq!(
        answer,
        brute(|i| i < 100_000 && i % 50 == 0 && i * 7 % 10_000 < 3000)
    );
    assert!(
        scan.contains("read first for the filter and 1 join filter(s)"),
        "{scan}"
    );
    assert!(read_late(&scan) > 0, "{scan}");
}
