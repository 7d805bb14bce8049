//! End-to-end smoke tests of the SQL path over in-memory tables.

use std::sync::Arc;

use arrow::array::{Int64Array, RecordBatch, StringArray};
use arrow::datatypes::{DataType, Field, Schema};
use arrow::util::pretty::pretty_format_batches;
use sluice::{Session, SessionConfig};

fn session() -> Session {
    let s = Session::with_config(SessionConfig::default().with_target_partitions(2));
    let schema = Arc::new(Schema::new(vec![
        Field::new("id", DataType::Int64, false),
        Field::new("name", DataType::Utf8, true),
        Field::new("dept", DataType::Int64, true),
    ]));
    let b = RecordBatch::try_new(
        schema.clone(),
        vec![
            Arc::new(Int64Array::from(vec![1, 2, 3, 4])),
            Arc::new(StringArray::from(vec![
                Some("a"),
                Some("b"),
                None,
                Some("d"),
            ])),
            Arc::new(Int64Array::from(vec![Some(10), Some(10), Some(20), None])),
        ],
    )
    .expect("batch");
    s.register_batches("emp", schema, vec![b])
        .expect("register");
    let dschema = Arc::new(Schema::new(vec![
        Field::new("did", DataType::Int64, false),
        Field::new("dname", DataType::Utf8, false),
    ]));
    let d = RecordBatch::try_new(
        dschema.clone(),
        vec![
            Arc::new(Int64Array::from(vec![10, 20, 30])),
            Arc::new(StringArray::from(vec!["x", "y", "z"])),
        ],
    )
    .expect("batch");
    s.register_batches("dept", dschema, vec![d])
        .expect("register");
    s
}

fn run(s: &Session, sql: &str) -> String {
    let df = s.sql(sql).unwrap_or_else(|e| panic!("{sql}: {e}"));
    let b = df
        .collect()
        .unwrap_or_else(|e| panic!("{sql}: {e}\n{}", df.explain().unwrap_or_default()));
    pretty_format_batches(&b).expect("fmt").to_string()
}

#[test]
fn smoke_queries() {
    let s = session();
    for q in [
        "SELECT 1 + 1 AS two",
        "SELECT * FROM emp WHERE id > 1 ORDER BY id",
        "SELECT dept, count(*) AS c, sum(id) FROM emp GROUP BY dept ORDER BY dept NULLS FIRST",
        "SELECT name, dname FROM emp, dept WHERE dept = did ORDER BY name",
        "SELECT name, dname FROM emp LEFT JOIN dept ON dept = did ORDER BY id",
        "SELECT dname FROM dept WHERE NOT EXISTS (SELECT 1 FROM emp WHERE dept = did) ORDER BY 1",
        "SELECT dname FROM dept WHERE did IN (SELECT dept FROM emp) ORDER BY 1",
        "SELECT id FROM emp WHERE id > (SELECT avg(id) FROM emp) ORDER BY id",
        "SELECT id, row_number() OVER (PARTITION BY dept ORDER BY id DESC) AS rn FROM emp ORDER BY id",
        "SELECT count(*) FROM emp WHERE id < 0",
    ] {
        println!("{q}\n{}", run(&s, q));
    }
}

#[test]
fn cross_join_output_comes_in_bounded_chunks() {
    let s = Session::with_config(SessionConfig::default().with_target_partitions(2));
    s.sql("CREATE TABLE a AS SELECT * FROM (VALUES (1), (2), (3)) AS v(x)")
        .expect("a");
    // 3 × 2^7 = 384 rows; cross with itself: 147456 pairs, more than one chunk's 65536.
    for _ in 0..7 {
        s.sql("INSERT INTO a SELECT * FROM a").expect("double");
    }
    let df = s
        .sql("SELECT p.x, q.x AS y FROM a p CROSS JOIN a q")
        .expect("plans");
    let batches = df.collect().expect("runs");
    let rows: usize = batches.iter().map(|b| b.num_rows()).sum();
    assert_eq!(rows, 384 * 384);
    let largest = batches.iter().map(|b| b.num_rows()).max().unwrap_or(0);
    assert!(largest <= 1 << 16, "a chunk of {largest} rows");
    let total = run(
        &s,
        "SELECT count(*) AS c, sum(p.x * q.x) AS s FROM a p, a q",
    );
    assert!(total.contains("| 147456 | 589824 |"), "{total}");
}
