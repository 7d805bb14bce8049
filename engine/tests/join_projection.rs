//! Joins produce only the columns above them use: keys and filter columns the join alone
//! reads are never gathered (the join's `projection=`). Every join type must still give
//! the rows computed by hand, NULL padding included.

use std::sync::Arc;

use arrow::array::{Int64Array, RecordBatch, StringArray};
use arrow::datatypes::{DataType, Field, Schema};
use sluice::Session;

mod common;

/// `a(k, x, s)`: 20 rows, `k = i % 7` (NULL when `i % 5 == 0`), `x = i`, `s = 'a<i>'`.
/// `b(k, y)`: keys 3..10, `y = 100 + k`.
fn session() -> Session {
    let s = Session::new();
    let a = Arc::new(Schema::new(vec![
        Field::new("k", DataType::Int64, true),
        Field::new("x", DataType::Int64, false),
        Field::new("s", DataType::Utf8, false),
    ]));
    let batch = RecordBatch::try_new(
        a.clone(),
        vec![
            Arc::new(Int64Array::from_iter(
                (0..20).map(|i| (i % 5 != 0).then_some(i % 7)),
            )),
            Arc::new(Int64Array::from_iter_values(0..20)),
            Arc::new(StringArray::from_iter_values(
                (0..20).map(|i| format!("a{i}")),
            )),
        ],
    )
    .expect("a");
    s.register_batches("a", a, vec![batch.slice(0, 9), batch.slice(9, 11)])
        .expect("a");
    let b = Arc::new(Schema::new(vec![
        Field::new("k", DataType::Int64, false),
        Field::new("y", DataType::Int64, false),
    ]));
    let batch = RecordBatch::try_new(
        b.clone(),
        vec![
            Arc::new(Int64Array::from_iter_values(3..10)),
            Arc::new(Int64Array::from_iter_values(103..110)),
        ],
    )
    .expect("b");
    s.register_batches("b", b, vec![batch]).expect("b");
    s
}

/// `a`'s rows as (k, x).
fn a_rows() -> Vec<(Option<i64>, i64)> {
    (0..20)
        .map(|i| ((i % 5 != 0).then_some(i % 7), i))
        .collect()
}

/// `b`'s rows as (k, y).
fn b_rows() -> Vec<(i64, i64)> {
    (3..10).map(|k| (k, 100 + k)).collect()
}

fn sorted(mut v: Vec<String>) -> Vec<String> {
    v.sort();
    v
}

fn query(s: &Session, sql: &str) -> Vec<String> {
    common::rows(&s.sql(sql).and_then(|d| d.collect()).expect(sql))
}

/// The lines of the plan's hash joins.
fn joins(s: &Session, sql: &str) -> Vec<String> {
    let plan = s.sql(sql).and_then(|d| d.explain()).expect("explain");
    plan.lines()
        .filter(|l| l.contains("HashJoinExec"))
        .map(str::to_string)
        .collect()
}

#[test]
fn every_join_type_gives_the_rows_by_hand_without_its_keys() {
    let s = session();
    let (a, b) = (a_rows(), b_rows());
    let matches = |k: Option<i64>| b.iter().filter(move |(bk, _)| Some(*bk) == k);
    let inner: Vec<String> = a
        .iter()
        .flat_map(|&(k, x)| matches(k).map(move |(_, y)| format!("{x} | {y}")))
        .collect();
    let unmatched_a: Vec<String> = a
        .iter()
        .filter(|(k, _)| matches(*k).next().is_none())
        .map(|(_, x)| format!("{x} | NULL"))
        .collect();
    let unmatched_b: Vec<String> = b
        .iter()
        .filter(|(k, _)| !a.iter().any(|(ak, _)| *ak == Some(*k)))
        .map(|(_, y)| format!("NULL | {y}"))
        .collect();
    assert!(!unmatched_a.is_empty() && !unmatched_b.is_empty());
    let cases = [
        ("JOIN", [&inner[..], &[], &[]].concat()),
        ("LEFT JOIN", [&inner[..], &unmatched_a, &[]].concat()),
        ("RIGHT JOIN", [&inner[..], &[], &unmatched_b].concat()),
        (
            "FULL JOIN",
            [&inner[..], &unmatched_a, &unmatched_b].concat(),
        ),
    ];
    for (join, expected) in cases {
        let sql = format!("SELECT a.x, b.y FROM a {join} b ON a.k = b.k");
        assert_eq!(query(&s, &sql), sorted(expected), "{sql}");
        // Both keys are dropped: the join outputs x and y only.
        let j = joins(&s, &sql);
        assert_eq!(j.len(), 1, "{sql}: {j:?}");
        assert!(j[0].contains("projection=[1, 3]"), "{sql}: {j:?}");
    }
}

#[test]
fn semi_anti_counts_filters_and_expressions_over_projected_joins() {
    let s = session();
    let (a, b) = (a_rows(), b_rows());
    let has = |k: Option<i64>| b.iter().any(|(bk, _)| Some(*bk) == k);
    let lines = |matched: bool| {
        sorted(
            a.iter()
                .filter(|(k, _)| has(*k) == matched)
                .map(|(_, x)| format!("a{x}"))
                .collect(),
        )
    };
    let semi = "SELECT a.s FROM a WHERE EXISTS (SELECT 1 FROM b WHERE b.k = a.k)";
    assert_eq!(query(&s, semi), lines(true));
    let anti = "SELECT a.s FROM a WHERE NOT EXISTS (SELECT 1 FROM b WHERE b.k = a.k)";
    assert_eq!(query(&s, anti), lines(false));
    for sql in [semi, anti] {
        // a is scanned as (k, s): the join keeps s alone.
        let j = joins(&s, sql);
        assert!(
            j.iter().all(|l| l.contains("projection=[1]")),
            "{sql}: {j:?}"
        );
    }

    // COUNT(*) reads no column, yet counts every pair.
    let pairs = a
        .iter()
        .map(|(k, _)| b.iter().filter(|(bk, _)| Some(*bk) == *k).count())
        .sum::<usize>();
    let count = "SELECT count(*) FROM a JOIN b ON a.k = b.k";
    assert_eq!(query(&s, count), vec![pairs.to_string()]);

    // A residual filter reads columns the output drops.
    let expected: Vec<String> = a
        .iter()
        .flat_map(|&(k, x)| {
            b.iter()
                .filter(move |&&(bk, y)| Some(bk) == k && x < y - 95)
                .map(move |_| format!("a{x}"))
        })
        .collect();
    let filtered = "SELECT a.s FROM a JOIN b ON a.k = b.k AND a.x < b.y - 95";
    assert_eq!(query(&s, filtered), sorted(expected));
    let j = joins(&s, filtered);
    assert!(j[0].contains("projection=[2]"), "{j:?}"); // of a(k, x, s) ++ b(k, y)

    // Expressions over the join read the kept columns by their new positions.
    let expected: Vec<String> = a
        .iter()
        .flat_map(|&(k, x)| {
            b.iter()
                .filter(move |(bk, _)| Some(*bk) == k)
                .map(move |(_, y)| format!("{} | a{x}", x * 1000 + y))
        })
        .collect();
    let exprs = "SELECT a.x * 1000 + b.y, a.s FROM a JOIN b ON a.k = b.k";
    assert_eq!(query(&s, exprs), sorted(expected));
}

#[test]
fn a_chain_of_joins_carries_only_what_later_joins_and_the_result_read() {
    let s = session();
    // c(k2, z): one row per y of b, so the second join keys on a column of the first.
    let c = Arc::new(Schema::new(vec![
        Field::new("k2", DataType::Int64, false),
        Field::new("z", DataType::Utf8, false),
    ]));
    let batch = RecordBatch::try_new(
        c.clone(),
        vec![
            Arc::new(Int64Array::from_iter_values(100..110)),
            Arc::new(StringArray::from_iter_values(
                (100..110).map(|y| format!("c{y}")),
            )),
        ],
    )
    .expect("c");
    s.register_batches("c", c, vec![batch]).expect("c");
    let (a, b) = (a_rows(), b_rows());
    let expected: Vec<String> = a
        .iter()
        .flat_map(|&(k, x)| {
            b.iter()
                .filter(move |(bk, _)| Some(*bk) == k)
                .map(move |(_, y)| format!("a{x} | c{y}"))
        })
        .collect();
    let sql = "SELECT a.s, c.z FROM a JOIN b ON a.k = b.k JOIN c ON b.y = c.k2";
    assert_eq!(query(&s, sql), sorted(expected));
    // The lower join keeps s and y of a(k, s) ++ b(k, y) (y for the upper join's key);
    // the upper one s and z of (s, y) ++ c(k2, z).
    let j = joins(&s, sql);
    assert_eq!(j.len(), 2, "{j:?}");
    assert!(j[0].contains("projection=[0, 3]"), "{j:?}");
    assert!(j[1].contains("projection=[1, 3]"), "{j:?}");
}
