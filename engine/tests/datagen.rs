//! The `datagen` connector: `CREATE TABLE ... WITH ('connector' = 'datagen', ...)` tables
//! generate their rows at scan time — sequences, bounded random values, NULL rates,
//! determinism across sessions and partitionings, throttling, and the option errors.

use std::sync::Arc;
use std::time::{Duration, Instant};

use arrow::array::{Array, AsArray, RecordBatch};
use arrow::compute::concat_batches;
use arrow::datatypes::{
    DataType, Date32Type, Decimal128Type, Field, Float64Type, Int32Type, Int64Type, Int8Type,
    Schema, TimestampMicrosecondType,
};
use sluice::catalog::datagen::{DatagenTable, BASE_DATE_DAYS, BASE_TIMESTAMP_MICROS};
use sluice::{Session, SessionConfig};

fn session(partitions: usize) -> Session {
    Session::with_config(SessionConfig::default().with_target_partitions(partitions))
}

/// Runs the statements of `sql` and returns the last result as one batch.
fn run(s: &Session, sql: &str) -> RecordBatch {
    let df = s.sql(sql).unwrap_or_else(|e| panic!("{sql}: {e}"));
    let schema = df.result_schema();
    let batches = df.collect().unwrap_or_else(|e| panic!("{sql}: {e}"));
    concat_batches(&schema, &batches).expect("concat")
}

fn err(s: &Session, sql: &str) -> String {
    match s.sql(sql).and_then(|df| df.collect()) {
        Ok(b) => panic!("expected an error for {sql}, got {} batches", b.len()),
        Err(e) => e.to_string(),
    }
}

fn i64s(b: &RecordBatch, col: usize) -> Vec<Option<i64>> {
    b.column(col).as_primitive::<Int64Type>().iter().collect()
}

#[test]
fn sequence_column_gives_exactly_start_to_end() {
    let s = session(4);
    run(
        &s,
        "CREATE TABLE seq (id BIGINT) WITH ('connector' = 'datagen', \
         'fields.id.kind' = 'sequence', 'fields.id.start' = '-5', 'fields.id.end' = '20000')",
    );
    let b = run(&s, "SELECT id FROM seq ORDER BY id");
    let got: Vec<i64> = i64s(&b, 0)
        .into_iter()
        .map(|v| v.expect("no nulls"))
        .collect();
    assert_eq!(got, (-5..=20000).collect::<Vec<i64>>());
    // number-of-rows below the sequence length cuts it short, in order from start
    run(
        &s,
        "CREATE TABLE seq2 (id INT) WITH ('connector' = 'datagen', 'number-of-rows' = '10', \
         'fields.id.kind' = 'sequence', 'fields.id.start' = '1', 'fields.id.end' = '100')",
    );
    let b = run(&s, "SELECT id FROM seq2 ORDER BY id");
    let got: Vec<i32> = b.column(0).as_primitive::<Int32Type>().values().to_vec();
    assert_eq!(got, (1..=10).collect::<Vec<i32>>());
}

#[test]
fn number_of_rows_is_the_row_count() {
    let s = session(3);
    run(
        &s,
        "CREATE TABLE t (a INT, b VARCHAR, c DOUBLE) WITH ('connector' = 'datagen', \
         'number-of-rows' = '12345')",
    );
    let b = run(&s, "SELECT count(*), count(a), count(b) FROM t");
    assert_eq!(i64s(&b, 0), vec![Some(12345)]);
    assert_eq!(i64s(&b, 1), vec![Some(12345)]);
    assert_eq!(i64s(&b, 2), vec![Some(12345)]);
    let b = run(&s, "SELECT * FROM t");
    assert_eq!(b.num_rows(), 12345);
    assert_eq!(b.num_columns(), 3);
    let table = s.catalog().get("t").expect("table");
    let sluice::catalog::CatalogEntry::Table(t) = table else {
        panic!("a table")
    };
    assert_eq!(t.row_count(), Some(12345));
    assert_eq!(t.describe(), "datagen(rows=12345, seed=0)");
}

#[test]
fn random_ints_stay_within_min_and_max() {
    let s = session(2);
    run(
        &s,
        "CREATE TABLE r (x BIGINT, y TINYINT) WITH ('connector' = 'datagen', \
         'number-of-rows' = '100000', 'fields.x.min' = '-3', 'fields.x.max' = '7', \
         'fields.y.min' = '100', 'fields.y.max' = '127')",
    );
    let b = run(&s, "SELECT x, y FROM r");
    assert_eq!(b.num_rows(), 100_000);
    let xs = b.column(0).as_primitive::<Int64Type>();
    assert_eq!(xs.null_count(), 0);
    assert!(xs.values().iter().all(|v| (-3..=7).contains(v)));
    let mut seen = [false; 11];
    for v in xs.values() {
        seen[(v + 3) as usize] = true;
    }
    assert!(seen.iter().all(|s| *s), "every value of [-3, 7] appears");
    let ys = b.column(1).as_primitive::<Int8Type>();
    assert!(ys.values().iter().all(|v| (100..=127).contains(v)));
    assert!(
        ys.values().iter().any(|v| *v != ys.value(0)),
        "not all equal"
    );
}

#[test]
fn random_floats_and_decimals_stay_within_bounds() {
    let s = session(2);
    run(
        &s,
        "CREATE TABLE f (d DOUBLE, m DECIMAL(7,2)) WITH ('connector' = 'datagen', \
         'number-of-rows' = '10000', 'fields.d.min' = '-1.5', 'fields.d.max' = '2.5', \
         'fields.m.min' = '-10.25', 'fields.m.max' = '99.99')",
    );
    let b = run(&s, "SELECT d, m FROM f");
    let d = b.column(0).as_primitive::<Float64Type>();
    assert!(d.values().iter().all(|v| (-1.5..=2.5).contains(v)));
    assert!(d.values().iter().any(|v| *v < 0.0) && d.values().iter().any(|v| *v > 2.0));
    assert_eq!(b.column(1).data_type(), &DataType::Decimal128(7, 2));
    let m = b.column(1).as_primitive::<Decimal128Type>();
    assert!(m.values().iter().all(|v| (-1025..=9999).contains(v)));
    assert!(
        m.values().iter().any(|v| v % 100 != 0),
        "cents are random too"
    );
}

#[test]
fn random_strings_have_the_given_length() {
    let s = session(2);
    run(
        &s,
        "CREATE TABLE st (a VARCHAR, b STRING, c CHAR(3)) WITH ('connector' = 'datagen', \
         'number-of-rows' = '1000', 'fields.a.length' = '7', 'fields.c.length' = '0')",
    );
    let b = run(&s, "SELECT a, b, c FROM st");
    let a = b.column(0).as_string::<i32>();
    assert!(a.iter().all(|v| v.is_some_and(|v| v.len() == 7)));
    let distinct: std::collections::HashSet<_> = a.iter().collect();
    assert!(distinct.len() > 990, "random strings rarely repeat");
    // the default length is 100, as in Flink
    let bcol = b.column(1).as_string::<i32>();
    assert!(bcol.iter().all(|v| v.is_some_and(|v| v.len() == 100)));
    let c = b.column(2).as_string::<i32>();
    assert!(c.iter().all(|v| v == Some("")));
    let b = run(&s, "SELECT min(length(a)), max(length(a)) FROM st");
    assert_eq!(i64s(&b, 0), vec![Some(7)], "{b:?}");
}

#[test]
fn null_rate_gives_that_share_of_nulls() {
    let s = session(4);
    run(
        &s,
        "CREATE TABLE n (x INT, s VARCHAR, b BOOLEAN) WITH ('connector' = 'datagen', \
         'number-of-rows' = '10000', 'fields.x.null-rate' = '0.5', \
         'fields.s.null-rate' = '0.5', 'fields.s.length' = '4', 'fields.b.null-rate' = '1')",
    );
    let b = run(
        &s,
        "SELECT count(*) - count(x), count(*) - count(s), count(b) FROM n",
    );
    for col in 0..2 {
        let nulls = i64s(&b, col)[0].expect("count");
        assert!(
            (4000..=6000).contains(&nulls),
            "column {col}: {nulls} NULLs"
        );
    }
    assert_eq!(i64s(&b, 2), vec![Some(0)], "null-rate 1 means all NULL");
    // the value and NULL streams are independent of each other
    let b = run(&s, "SELECT count(*) FROM n WHERE x IS NULL AND s IS NULL");
    let both = i64s(&b, 0)[0].expect("count");
    assert!((2000..=3000).contains(&both), "{both} rows NULL in both");
}

fn all_rows(s: &Session, table: &str) -> RecordBatch {
    run(s, &format!("SELECT * FROM {table} ORDER BY k"))
}

const DETERMINISTIC: &str = "CREATE TABLE d (k BIGINT, x INT, s VARCHAR, f DOUBLE, \
     m DECIMAL(10,3), b BOOLEAN, dt DATE, ts TIMESTAMP(3)) WITH ('connector' = 'datagen', \
     'number-of-rows' = '20000', 'seed' = 'SEED', 'fields.k.kind' = 'sequence', \
     'fields.k.start' = '0', 'fields.k.end' = '1000000', 'fields.s.length' = '12', \
     'fields.x.null-rate' = '0.2', 'fields.dt.max-past' = '365 d', \
     'fields.ts.max-past' = '3600000')";

#[test]
fn same_seed_gives_same_rows_across_sessions_and_partitionings() {
    let one = session(1);
    run(&one, &DETERMINISTIC.replace("SEED", "42"));
    let four = session(4);
    run(&four, &DETERMINISTIC.replace("SEED", "42"));
    let a = all_rows(&one, "d");
    assert_eq!(a.num_rows(), 20000);
    assert_eq!(a, all_rows(&four, "d"), "1 vs 4 partitions");
    assert_eq!(a, all_rows(&one, "d"), "a second run");
    // projection does not change a column's values
    let x_only = run(&four, "SELECT x FROM d ORDER BY k");
    assert_eq!(x_only.column(0), a.column(1));
    // a small batch size does not either
    let mut cfg = SessionConfig::default().with_target_partitions(3);
    cfg.batch_size = 100;
    let small = Session::with_config(cfg);
    run(&small, &DETERMINISTIC.replace("SEED", "42"));
    assert_eq!(a, all_rows(&small, "d"), "batch size 100");
}

#[test]
fn different_seed_gives_different_rows() {
    let s = session(2);
    run(&s, &DETERMINISTIC.replace("SEED", "1"));
    run(
        &s,
        &DETERMINISTIC
            .replace("SEED", "2")
            .replace("TABLE d", "TABLE d2"),
    );
    let a = all_rows(&s, "d");
    let b = all_rows(&s, "d2");
    assert_eq!(a.column(0), b.column(0), "the sequence is the same");
    for col in 1..a.num_columns() {
        assert_ne!(a.column(col), b.column(col), "column {col}");
    }
}

#[test]
fn default_seed_is_zero_and_columns_differ_from_each_other() {
    let s = session(2);
    run(
        &s,
        "CREATE TABLE a (x BIGINT, y BIGINT) WITH ('connector' = 'datagen', 'number-of-rows' = '100')",
    );
    run(
        &s,
        "CREATE TABLE b (x BIGINT, y BIGINT) WITH ('connector' = 'datagen', 'number-of-rows' = '100', 'seed' = '0')",
    );
    let ra = run(&s, "SELECT x, y FROM a");
    let rb = run(&s, "SELECT x, y FROM b");
    assert_eq!(ra, rb);
    assert_ne!(ra.column(0), ra.column(1));
}

#[test]
fn dates_and_timestamps_count_back_from_a_fixed_base() {
    let s = session(2);
    run(
        &s,
        "CREATE TABLE tm (d DATE, t TIMESTAMP(3), d0 DATE) WITH ('connector' = 'datagen', \
         'number-of-rows' = '5000', 'fields.d.max-past' = '30 d', 'fields.t.max-past' = '10 s')",
    );
    let b = run(&s, "SELECT d, t, d0 FROM tm");
    let d = b.column(0).as_primitive::<Date32Type>();
    assert!(d
        .values()
        .iter()
        .all(|v| (BASE_DATE_DAYS - 30..=BASE_DATE_DAYS).contains(v)));
    assert!(d.values().iter().any(|v| *v != d.value(0)));
    let t = b.column(1).as_primitive::<TimestampMicrosecondType>();
    assert!(t.values().iter().all(|v| {
        (BASE_TIMESTAMP_MICROS - 10_000_000..=BASE_TIMESTAMP_MICROS).contains(v) && v % 1000 == 0
    }));
    let d0 = b.column(2).as_primitive::<Date32Type>();
    assert!(
        d0.values().iter().all(|v| *v == BASE_DATE_DAYS),
        "max-past 0"
    );
    let b = run(&s, "SELECT max(d) FROM tm");
    assert_eq!(
        arrow::util::display::array_value_to_string(b.column(0), 0).expect("fmt"),
        "2026-01-01"
    );
}

#[test]
fn aggregates_over_datagen_work() {
    let s = session(4);
    run(
        &s,
        "CREATE TABLE g (x INT, k INT) WITH ('connector' = 'datagen', 'number-of-rows' = '50000', \
         'fields.x.min' = '10', 'fields.x.max' = '20', 'fields.k.min' = '0', 'fields.k.max' = '3')",
    );
    let b = run(&s, "SELECT count(*), min(x), max(x) FROM g");
    assert_eq!(i64s(&b, 0), vec![Some(50000)]);
    assert_eq!(b.column(1).as_primitive::<Int32Type>().value(0), 10);
    assert_eq!(b.column(2).as_primitive::<Int32Type>().value(0), 20);
    let b = run(&s, "SELECT k, count(*) AS c FROM g GROUP BY k ORDER BY k");
    assert_eq!(b.num_rows(), 4);
    let counts = b.column(1).as_primitive::<Int64Type>();
    assert_eq!(counts.values().iter().sum::<i64>(), 50000);
    assert!(counts.values().iter().all(|c| (11500..=13500).contains(c)));
    // a join of a datagen table with itself
    let b = run(
        &s,
        "SELECT count(*) FROM g a JOIN g b ON a.k = b.k WHERE a.x = 10 AND b.x = 20 AND a.k = 0",
    );
    assert!(i64s(&b, 0)[0].expect("count") > 0);
}

#[test]
fn rows_per_second_throttles_the_scan() {
    let s = session(2);
    run(
        &s,
        "CREATE TABLE slow (x INT) WITH ('connector' = 'datagen', 'number-of-rows' = '2000', \
         'rows-per-second' = '10000')",
    );
    let t0 = Instant::now();
    let b = run(&s, "SELECT count(*) FROM slow");
    let took = t0.elapsed();
    assert_eq!(i64s(&b, 0), vec![Some(2000)]);
    assert!(took >= Duration::from_millis(150), "took {took:?}");
    assert!(took < Duration::from_secs(5), "took {took:?}");
    // without a rate limit the same table is fast
    run(
        &s,
        "CREATE TABLE fast (x INT) WITH ('connector' = 'datagen', 'number-of-rows' = '2000', \
         'rows-per-second' = '0')",
    );
    let t0 = Instant::now();
    run(&s, "SELECT count(*) FROM fast");
    assert!(t0.elapsed() < Duration::from_millis(150));
}

#[test]
fn explain_shows_the_datagen_source() {
    let s = session(2);
    run(
        &s,
        "CREATE TABLE e (x INT) WITH ('connector' = 'datagen', 'number-of-rows' = '77', 'seed' = '9')",
    );
    let text = s
        .sql("SELECT x FROM e")
        .expect("plan")
        .explain()
        .expect("explain");
    assert!(text.contains("datagen(rows=77, seed=9)"), "{text}");
    run(&s, "CREATE TABLE u (x INT) WITH ('connector' = 'datagen')");
    let text = s
        .sql("SELECT x FROM u")
        .expect("plan")
        .explain()
        .expect("explain");
    assert!(text.contains("datagen(rows=unbounded, seed=0)"), "{text}");
    let b = run(&s, "EXPLAIN SELECT x FROM e");
    assert!(format!("{b:?}").contains("DatagenExec"));
}

#[test]
fn plain_create_table_still_makes_a_memory_table() {
    let s = session(2);
    run(&s, "CREATE TABLE m (a INT, b VARCHAR)");
    run(&s, "INSERT INTO m VALUES (1, 'x'), (2, 'y')");
    let b = run(&s, "SELECT count(*) FROM m");
    assert_eq!(i64s(&b, 0), vec![Some(2)]);
    run(&s, "CREATE TABLE m2 AS SELECT a FROM m");
    let b = run(&s, "SELECT sum(a) FROM m2");
    assert_eq!(i64s(&b, 0), vec![Some(3)]);
}

#[test]
fn collecting_an_unbounded_table_errors_instead_of_hanging() {
    let s = session(2);
    run(
        &s,
        "CREATE TABLE inf (x INT) WITH ('connector' = 'datagen', 'rows-per-second' = '5')",
    );
    for (sql, why) in [
        ("SELECT * FROM inf", "execute_stream"),
        ("SELECT count(*) FROM inf", "execute_stream"),
        ("SELECT x FROM inf LIMIT 3", "Limit"),
    ] {
        let e = err(&s, sql);
        assert!(e.contains(why), "{sql}: {e}");
    }
    run(&s, "SET 'execution.runtime-mode' = 'batch'");
    let e = err(&s, "SELECT * FROM inf");
    assert!(e.contains("unbounded") && e.contains("'batch'"), "{e}");
}

#[test]
fn insert_into_a_datagen_table_errors() {
    let s = session(2);
    run(
        &s,
        "CREATE TABLE src (x INT) WITH ('connector' = 'datagen', 'number-of-rows' = '3')",
    );
    let e = err(&s, "INSERT INTO src VALUES (1)");
    assert!(e.contains("cannot INSERT into table 'src'"), "{e}");
    assert!(e.contains("datagen"), "{e}");
}

/// Creates a one-statement table and returns the error text.
fn create_err(cols: &str, opts: &str) -> String {
    err(
        &session(1),
        &format!("CREATE TABLE bad ({cols}) WITH ('connector' = 'datagen'{opts})"),
    )
}

#[test]
fn option_errors_name_the_option() {
    let e = err(
        &session(1),
        "CREATE TABLE k (x INT) WITH ('connector' = 'kafka')",
    );
    assert!(
        e.contains("unknown connector 'kafka'") && e.contains("datagen"),
        "{e}"
    );
    let e = err(&session(1), "CREATE TABLE k (x INT) WITH ('seed' = '1')");
    assert!(e.contains("'connector'"), "{e}");

    let e = create_err("x INT", ", 'number-of-row' = '5'");
    assert!(e.contains("unknown datagen option 'number-of-row'"), "{e}");
    assert!(e.contains("did you mean number-of-rows"), "{e}");
    let e = create_err("x INT", ", 'fields.x.nul-rate' = '0.5'");
    assert!(e.contains("'fields.x.nul-rate'"), "{e}");
    assert!(e.contains("did you mean fields.x.null-rate"), "{e}");
    let e = create_err("x INT", ", 'bogus' = '5'");
    assert!(e.contains("unknown datagen option 'bogus'"), "{e}");

    let e = create_err("amount INT", ", 'fields.amuont.min' = '1'");
    assert!(e.contains("column 'amuont'"), "{e}");
    assert!(e.contains("did you mean amount"), "{e}");

    let e = create_err("x INT", ", 'number-of-rows' = 'many'");
    assert!(
        e.contains("'number-of-rows'") && e.contains("'many'"),
        "{e}"
    );
    let e = create_err("x INT", ", 'number-of-rows' = '-1'");
    assert!(
        e.contains("'number-of-rows' must be a non-negative integer"),
        "{e}"
    );
    let e = create_err("x INT", ", 'fields.x.min' = 'abc'");
    assert!(
        e.contains("'fields.x.min' must be an integer, got 'abc'"),
        "{e}"
    );
    let e = create_err("x INT", ", 'fields.x.null-rate' = '1.5'");
    assert!(
        e.contains("'fields.x.null-rate' must be between 0 and 1"),
        "{e}"
    );
    let e = create_err("x TINYINT", ", 'fields.x.max' = '300'");
    assert!(
        e.contains("'fields.x.max' (300) is out of range for TINYINT"),
        "{e}"
    );

    let e = create_err("x INT", ", 'fields.x.min' = '10', 'fields.x.max' = '5'");
    assert!(
        e.contains("'fields.x.min' must not exceed 'fields.x.max'"),
        "{e}"
    );
    let e = create_err(
        "x DOUBLE",
        ", 'fields.x.min' = '1.5', 'fields.x.max' = '-1'",
    );
    assert!(
        e.contains("'fields.x.min' must not exceed 'fields.x.max'"),
        "{e}"
    );

    let e = create_err(
        "x INT",
        ", 'fields.x.kind' = 'sequence', 'fields.x.start' = '1'",
    );
    assert!(
        e.contains("kind 'sequence'") && e.contains("'fields.x.end'"),
        "{e}"
    );
    let e = create_err("x INT", ", 'fields.x.kind' = 'sequence'");
    assert!(e.contains("'fields.x.start'"), "{e}");
    let e = create_err(
        "x INT",
        ", 'fields.x.kind' = 'sequence', 'fields.x.start' = '9', 'fields.x.end' = '1'",
    );
    assert!(
        e.contains("'fields.x.start' (9) must not exceed 'fields.x.end' (1)"),
        "{e}"
    );
    let e = create_err("x INT", ", 'fields.x.kind' = 'zigzag'");
    assert!(e.contains("'random' or 'sequence'"), "{e}");
    let e = create_err("x INT", ", 'fields.x.start' = '1'");
    assert!(
        e.contains("'fields.x.start' does not apply to a random INT column"),
        "{e}"
    );
    let e = create_err("x INT", ", 'fields.x.length' = '3'");
    assert!(e.contains("'fields.x.length' does not apply"), "{e}");
    let e = create_err(
        "b BOOLEAN",
        ", 'fields.b.kind' = 'sequence', 'fields.b.start' = '1', 'fields.b.end' = '2'",
    );
    assert!(e.contains("'sequence' for column b of type BOOLEAN"), "{e}");
    let e = create_err("x INT NOT NULL", ", 'fields.x.null-rate' = '0.1'");
    assert!(e.contains("NOT NULL column x"), "{e}");
    let e = create_err("t TIMESTAMP", ", 'fields.t.max-past' = 'yesterday'");
    assert!(
        e.contains("'fields.t.max-past' must be a non-negative duration"),
        "{e}"
    );

    let e = err(
        &session(1),
        "CREATE TABLE c WITH ('connector' = 'datagen') AS SELECT 1 AS x",
    );
    assert!(e.contains("not supported"), "{e}");
}

#[test]
fn unsupported_column_types_are_rejected() {
    let schema = Arc::new(Schema::new(vec![
        Field::new("ok", DataType::Int32, true),
        Field::new("raw", DataType::Binary, true),
    ]));
    let opts = vec![("connector".to_string(), "datagen".to_string())];
    let e = DatagenTable::try_new("t", schema, &opts)
        .expect_err("binary is unsupported")
        .to_string();
    assert!(
        e.contains("datagen cannot generate column raw of type Binary"),
        "{e}"
    );
    assert!(e.contains("supported: TINYINT"), "{e}");
}

#[test]
fn sequences_of_other_types_and_projection_of_no_columns() {
    let s = session(2);
    run(
        &s,
        "CREATE TABLE o (id BIGINT, name VARCHAR, price DECIMAL(6,2), w DOUBLE) WITH \
         ('connector' = 'datagen', 'fields.id.kind' = 'sequence', 'fields.id.start' = '1', \
         'fields.id.end' = '5', 'fields.name.kind' = 'sequence', 'fields.name.start' = '100', \
         'fields.name.end' = '200', 'fields.price.kind' = 'sequence', \
         'fields.price.start' = '3', 'fields.price.end' = '50', 'fields.w.kind' = 'sequence', \
         'fields.w.start' = '-1', 'fields.w.end' = '10')",
    );
    // the shortest sequence (id: 5 rows) bounds the table
    let b = run(
        &s,
        "SELECT id, name, CAST(price AS VARCHAR), w FROM o ORDER BY id",
    );
    assert_eq!(b.num_rows(), 5);
    let names: Vec<_> = b.column(1).as_string::<i32>().iter().flatten().collect();
    assert_eq!(names, vec!["100", "101", "102", "103", "104"]);
    let prices: Vec<_> = b.column(2).as_string::<i32>().iter().flatten().collect();
    assert_eq!(prices, vec!["3.00", "4.00", "5.00", "6.00", "7.00"]);
    let w: Vec<f64> = b.column(3).as_primitive::<Float64Type>().values().to_vec();
    assert_eq!(w, vec![-1.0, 0.0, 1.0, 2.0, 3.0]);
    let b = run(&s, "SELECT count(*) FROM o");
    assert_eq!(i64s(&b, 0), vec![Some(5)]);
}
