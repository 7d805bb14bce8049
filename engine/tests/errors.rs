//! Errors, not panics: bad SQL, unknown names, type errors, arithmetic faults, missing and
//! corrupt files each give a clear error; garbled and random SQL never crash the engine.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::Arc;

use arrow::array::{Int64Array, RecordBatch, StringArray};
use arrow::datatypes::{DataType, Field, Schema};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use sluice::{Session, SessionConfig, SluiceError};

fn session() -> Session {
    let s = Session::with_config(SessionConfig::default().with_target_partitions(2));
    let schema = Arc::new(Schema::new(vec![
        Field::new("id", DataType::Int64, true),
        Field::new("name", DataType::Utf8, true),
    ]));
    let b = RecordBatch::try_new(
        schema.clone(),
        vec![
            Arc::new(Int64Array::from(vec![Some(1), Some(2), None, Some(4)])),
            Arc::new(StringArray::from(vec![
                Some("a"),
                None,
                Some("c"),
                Some("d"),
            ])),
        ],
    )
    .expect("batch");
    s.register_batches("people", schema.clone(), vec![b.clone()])
        .expect("register");
    s.register_batches("orders", schema, vec![b])
        .expect("register");
    s
}

fn err(s: &Session, sql: &str) -> String {
    match s.sql(sql).and_then(|df| df.collect()) {
        Ok(b) => panic!("expected an error for {sql}, got {} batches", b.len()),
        Err(e) => e.to_string(),
    }
}

#[test]
fn syntax_errors_give_line_and_column() {
    let e = err(&session(), "SELECT id\nFROM people\nWHERE id >");
    assert!(e.contains("Line: 3"), "{e}");
    assert!(e.contains("Column"), "{e}");
    let e = err(&session(), "SELECT id FROM people\nWHERE id > 1 GARBAGE");
    assert!(
        e.ends_with("expected end of statement, found: GARBAGE at Line: 2, Column: 14"),
        "{e}"
    );
}

#[test]
fn unknown_names_suggest_the_nearest() {
    let s = session();
    let e = err(&s, "SELECT * FROM peple");
    assert!(
        e.contains("peple") && e.contains("did you mean people"),
        "{e}"
    );
    let e = err(&s, "SELECT nme FROM people");
    assert!(e.contains("nme") && e.contains("people.name"), "{e}");
    let e = err(&s, "SELECT uper(name) FROM people");
    assert!(e.contains("upper"), "{e}");
}

#[test]
fn type_errors_name_expression_and_types() {
    let s = session();
    let e = err(&s, "SELECT name + 1 FROM people");
    assert!(
        e.contains("name") && e.contains("Utf8") && e.contains("Int64"),
        "{e}"
    );
    let e = err(&s, "SELECT * FROM people WHERE id");
    assert!(e.contains("boolean") && e.contains("Int64"), "{e}");
}

#[test]
fn arithmetic_faults_are_errors_not_wrong_numbers() {
    let s = session();
    let e = err(&s, "SELECT id / 0 FROM people");
    assert!(e.to_lowercase().contains("divide by zero"), "{e}");
    let e = err(&s, "SELECT 9223372036854775807 + id FROM people");
    assert!(e.to_lowercase().contains("overflow"), "{e}");
    let e = err(&s, "SELECT sum(9223372036854775807 + 0) FROM people");
    assert!(e.to_lowercase().contains("overflow"), "{e}");
}

#[test]
fn missing_and_corrupt_files_name_the_path() {
    let s = session();
    let e = s
        .register_parquet("t", "/nonexistent/x.parquet")
        .expect_err("missing");
    assert!(
        matches!(e, SluiceError::Io { .. }) && e.to_string().contains("/nonexistent/x.parquet"),
        "{e}"
    );
    let dir = tempfile::tempdir().expect("tempdir");
    let bad = dir.path().join("bad.parquet");
    std::fs::write(&bad, b"PAR1 this is not parquet at all PAR1").expect("write");
    let e = s.register_parquet("t", &bad).expect_err("corrupt");
    assert!(e.to_string().contains("bad.parquet"), "{e}");
    let e = err(
        &s,
        &format!(
            "CREATE EXTERNAL TABLE t2 STORED AS PARQUET LOCATION '{}'",
            bad.display()
        ),
    );
    assert!(e.contains("bad.parquet"), "{e}");
}

const WORDS: &[&str] = &[
    "SELECT",
    "FROM",
    "WHERE",
    "GROUP",
    "BY",
    "ORDER",
    "HAVING",
    "LIMIT",
    "JOIN",
    "LEFT",
    "ON",
    "AND",
    "OR",
    "NOT",
    "IN",
    "EXISTS",
    "UNION",
    "ALL",
    "AS",
    "CASE",
    "WHEN",
    "THEN",
    "ELSE",
    "END",
    "NULL",
    "IS",
    "BETWEEN",
    "LIKE",
    "people",
    "orders",
    "id",
    "name",
    "count(*)",
    "sum(id)",
    "avg(id)",
    "min(name)",
    "(",
    ")",
    ",",
    "*",
    "+",
    "-",
    "/",
    "=",
    "<",
    ">",
    "<>",
    "1",
    "0",
    "-1",
    "2.5",
    "'a'",
    "''",
    "DATE '1995-01-01'",
    "CAST(id AS VARCHAR)",
    "substring(name FROM 1 FOR 2)",
    "row_number() OVER (ORDER BY id)",
    "(SELECT max(id) FROM orders)",
    ";",
    ".",
    "DISTINCT",
    "OFFSET",
    "CROSS",
    "FULL",
    "OUTER",
    "INTERVAL '1' DAY",
    "EXTRACT(YEAR FROM DATE '2020-01-01')",
];

const VALID: &[&str] = &[
    "SELECT id, name FROM people WHERE id > 1 ORDER BY id",
    "SELECT name, count(*) FROM people GROUP BY name HAVING count(*) > 0",
    "SELECT p.id FROM people p JOIN orders o ON p.id = o.id WHERE o.name LIKE 'a%'",
    "SELECT id FROM people WHERE id IN (SELECT id FROM orders) AND NOT EXISTS (SELECT 1 FROM orders WHERE orders.id = people.id + 1)",
    "SELECT CASE WHEN id > 2 THEN 'big' ELSE 'small' END, sum(id) OVER (PARTITION BY name ORDER BY id) FROM people",
];

fn run_without_panic(s: &Session, sql: &str) -> bool {
    catch_unwind(AssertUnwindSafe(|| {
        let _ = s.sql(sql).and_then(|df| df.collect());
    }))
    .is_ok()
}

#[test]
fn garbled_and_random_sql_never_panics() {
    let s = session();
    let mut rng = StdRng::seed_from_u64(7);
    let mut panics = Vec::new();
    for _ in 0..1500 {
        let n = rng.random_range(1..14);
        let sql: Vec<&str> = (0..n)
            .map(|_| WORDS[rng.random_range(0..WORDS.len())])
            .collect();
        let sql = sql.join(" ");
        if !run_without_panic(&s, &sql) {
            panics.push(sql);
        }
    }
    for _ in 0..1500 {
        let mut q: Vec<char> = VALID[rng.random_range(0..VALID.len())].chars().collect();
        for _ in 0..rng.random_range(1..4) {
            let i = rng.random_range(0..q.len());
            match rng.random_range(0..3) {
                0 => {
                    q.remove(i);
                }
                1 => q.insert(
                    i,
                    ['(', ')', '\'', ',', ' ', '1', 'x', '*', ';', '"'][rng.random_range(0..10)],
                ),
                _ => {
                    let j = rng.random_range(0..q.len());
                    q.swap(i, j);
                }
            }
        }
        let sql: String = q.into_iter().collect();
        if !run_without_panic(&s, &sql) {
            panics.push(sql);
        }
    }
    assert!(
        panics.is_empty(),
        "{} inputs panicked, e.g. {:?}",
        panics.len(),
        &panics[..panics.len().min(5)]
    );
}
