//! A CTE used twice is computed once (TPC-H q15's shape), and so is a join written both in
//! a query and in its subquery (q11's shape): the answer must equal the one computed by
//! hand, and EXPLAIN ANALYZE shows one shared, kept computation.

use std::sync::Arc;

use arrow::array::{Int64Array, RecordBatch, StringArray};
use arrow::datatypes::{DataType, Field, Schema};
use common::{assert_shared_once, explain_analyze};
use sluice::Session;

mod common;

/// `sales(k, v)`: 5 000 rows, `k = i % 50`, `v = i`; `dims(k, tag)`: 50 rows, tag `a`
/// for the multiples of 5, else `b`.
fn session() -> Session {
    let s = Session::new();
    let schema = Arc::new(Schema::new(vec![
        Field::new("k", DataType::Int64, false),
        Field::new("v", DataType::Int64, false),
    ]));
    let k = Int64Array::from_iter_values((0..5000).map(|i| i % 50));
    let v = Int64Array::from_iter_values(0..5000);
    let b = RecordBatch::try_new(schema.clone(), vec![Arc::new(k), Arc::new(v)]).expect("sales");
    let batches = (0..5).map(|i| b.slice(i * 1000, 1000)).collect();
    s.register_batches("sales", schema, batches).expect("sales");
    let schema = Arc::new(Schema::new(vec![
        Field::new("k", DataType::Int64, false),
        Field::new("tag", DataType::Utf8, false),
    ]));
    let k = Int64Array::from_iter_values(0..50);
    let tag = StringArray::from_iter_values((0..50).map(|i| if i % 5 == 0 { "a" } else { "b" }));
    let b = RecordBatch::try_new(schema.clone(), vec![Arc::new(k), Arc::new(tag)]).expect("dims");
    s.register_batches("dims", schema, vec![b]).expect("dims");
    s
}

const TOP: &str = "WITH totals AS (SELECT k, sum(v) AS total FROM sales WHERE v >= 100 GROUP BY k)
    SELECT t.k, t.total FROM totals t
    WHERE t.total = (SELECT max(total) FROM totals)";

#[test]
fn cte_used_twice_is_computed_once() {
    let s = session();
    // By hand: key 49 has the largest sum of v >= 100.
    let best: i64 = (100..5000).filter(|i| i % 50 == 49).sum();
    let batches = s.sql(TOP).and_then(|d| d.collect()).expect("query");
    assert_eq!(common::lines(&batches), vec![format!("49 | {best}")]);
    assert_shared_once(&s, TOP);
}

/// The query's join outputs `s.k` and `s.v`, the subquery's only `s.v`: pruned to their
/// union, the two joins are one computation.
#[test]
fn join_in_query_and_subquery_is_computed_once() {
    let s = session();
    let sql = "SELECT s.k, sum(s.v) AS total FROM sales s, dims d
               WHERE s.k = d.k AND d.tag = 'a' GROUP BY s.k
               HAVING sum(s.v) > (SELECT sum(s.v) / 10 FROM sales s, dims d
                                  WHERE s.k = d.k AND d.tag = 'a')
               ORDER BY s.k";
    let sum_of = |k: i64| -> i64 { (0..5000).filter(|i| i % 50 == k).sum() };
    let tagged: Vec<i64> = (0..50).filter(|k| k % 5 == 0).collect();
    let all: i64 = tagged.iter().map(|&k| sum_of(k)).sum();
    let expected: Vec<String> = tagged
        .iter()
        .filter(|&&k| sum_of(k) > all / 10)
        .map(|&k| format!("{k} | {}", sum_of(k)))
        .collect();
    assert_eq!(expected.len(), 5, "the by-hand answer keeps 25..=45");
    let batches = s.sql(sql).and_then(|d| d.collect()).expect("query");
    assert_eq!(common::lines(&batches), expected);
    assert_shared_once(&s, sql);
}

#[test]
fn different_subtrees_are_not_shared() {
    let s = session();
    let sql = "SELECT a.k FROM (SELECT k, sum(v) AS t FROM sales GROUP BY k) a
               JOIN (SELECT k, sum(v) AS t FROM sales WHERE v > 10 GROUP BY k) b
                 ON a.k = b.k AND a.t = b.t";
    let batches = s.sql(sql).and_then(|d| d.collect()).expect("query");
    // v in 1..=10 is left out of keys 1..=10's second sum (key 0 only loses v = 0).
    assert_eq!(common::lines(&batches).len(), 40);
    let plan = explain_analyze(&s, sql);
    assert!(!plan.contains("SharedExec"), "{plan}");
}
