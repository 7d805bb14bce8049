//! Query parameters: `?` / `$n` placeholders bound to typed values.

use std::sync::Arc;

use arrow::array::{ArrayRef, Date32Array, Float64Array, Int64Array, StringArray};
use arrow::util::pretty::pretty_format_batches;
use sluice::{Scalar, Session};

fn scalar(a: ArrayRef) -> Scalar {
    Scalar(a)
}

fn session() -> Session {
    let s = Session::new();
    s.sql("CREATE TABLE t (id BIGINT, name VARCHAR, score DOUBLE)")
        .expect("create");
    s.sql("INSERT INTO t VALUES (1, 'a', 1.5), (2, 'b', 2.5), (3, 'c', 3.5)")
        .expect("insert");
    s
}

fn run(s: &Session, sql: &str, params: &[Scalar]) -> String {
    let df = s.sql_with_params(sql, params).expect("plans");
    pretty_format_batches(&df.collect().expect("runs"))
        .expect("formats")
        .to_string()
}

#[test]
fn positional_parameters_bind_in_text_order() {
    let s = session();
    let out = run(
        &s,
        "SELECT ? AS tag, name FROM t WHERE id >= ? AND score < ? ORDER BY id",
        &[
            scalar(Arc::new(StringArray::from(vec!["x"]))),
            scalar(Arc::new(Int64Array::from(vec![2]))),
            scalar(Arc::new(Float64Array::from(vec![3.0]))),
        ],
    );
    assert_eq!(
        out,
        "+-----+------+\n| tag | name |\n+-----+------+\n| x   | b    |\n+-----+------+"
    );
}

#[test]
fn numbered_parameters_can_repeat_and_have_their_own_type() {
    let s = session();
    let out = run(
        &s,
        "SELECT $1 + id AS v, $2 AS d FROM t WHERE id = $1",
        &[
            scalar(Arc::new(Int64Array::from(vec![3]))),
            scalar(Arc::new(Date32Array::from(vec![19000]))),
        ],
    );
    assert_eq!(
        out,
        "+---+------------+\n| v | d          |\n+---+------------+\n| 6 | 2022-01-08 |\n+---+------------+"
    );
}

#[test]
fn parameters_work_in_insert_values() {
    let s = session();
    s.sql_with_params(
        "INSERT INTO t VALUES (?, ?, ?)",
        &[
            scalar(Arc::new(Int64Array::from(vec![9]))),
            scalar(Arc::new(StringArray::from(vec!["it's"]))),
            scalar(Arc::new(Float64Array::from(vec![0.5]))),
        ],
    )
    .expect("insert");
    let out = run(&s, "SELECT name FROM t WHERE id = 9", &[]);
    assert!(out.contains("it's"), "{out}");
}

#[test]
fn wrong_number_of_values_is_an_error() {
    let s = session();
    let err = s
        .sql_with_params("SELECT * FROM t WHERE id = ?", &[])
        .expect_err("unbound");
    assert!(
        err.to_string()
            .contains("has 1 parameter(s) but 0 value(s) were bound"),
        "{err}"
    );
    assert_eq!(
        Session::parameter_count("SELECT ? FROM t WHERE id = ?").expect("count"),
        2
    );
}
