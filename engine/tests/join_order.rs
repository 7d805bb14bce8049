//! Join order: an input that a small filtered input cuts down joins it first, even when
//! the query relates the two only through a third table (`a = b AND b = c`), and the
//! join above does not repeat the key that the equalities already imply. Answers are
//! checked against brute force.

use std::sync::Arc;

use arrow::array::{Int64Array, RecordBatch, StringArray};
use arrow::datatypes::{DataType, Field, Schema};
use sluice::{Session, SessionConfig};

mod common;

/// `sales(item, vendor, qty)`: 20 000 rows; `offers(item, vendor, cost)`: every
/// (item, vendor) pair of 1 000 items × 4 vendors; `items(item, name)`: `items_n` items
/// named `i<item>`.
fn session(items_n: i64) -> Session {
    let s = Session::with_config(SessionConfig {
        batch_size: 1024,
        ..SessionConfig::default()
    });
    let int = |n: &str| Field::new(n, DataType::Int64, false);
    let sales = Arc::new(Schema::new(vec![int("item"), int("vendor"), int("qty")]));
    let cols: Vec<Vec<i64>> = vec![
        (0..20_000).map(|i| (i * 7) % 1000).collect(),
        (0..20_000).map(|i| i % 4).collect(),
        (0..20_000).map(|i| i % 10 + 1).collect(),
    ];
    let b = RecordBatch::try_new(
        sales.clone(),
        cols.into_iter()
            .map(|c| Arc::new(Int64Array::from(c)) as _)
            .collect(),
    )
    .expect("sales");
    s.register_batches("sales", sales, vec![b]).expect("sales");
    let offers = Arc::new(Schema::new(vec![int("item"), int("vendor"), int("cost")]));
    let b = RecordBatch::try_new(
        offers.clone(),
        vec![
            Arc::new(Int64Array::from_iter_values((0..4000).map(|i| i / 4))),
            Arc::new(Int64Array::from_iter_values((0..4000).map(|i| i % 4))),
            Arc::new(Int64Array::from_iter_values((0..4000).map(|i| i % 13))),
        ],
    )
    .expect("offers");
    s.register_batches("offers", offers, vec![b])
        .expect("offers");
    let items = Arc::new(Schema::new(vec![
        int("item"),
        Field::new("name", DataType::Utf8, false),
    ]));
    let names: StringArray = (0..items_n).map(|i| Some(format!("i{i}"))).collect();
    let b = RecordBatch::try_new(
        items.clone(),
        vec![
            Arc::new(Int64Array::from_iter_values(0..items_n)),
            Arc::new(names),
        ],
    )
    .expect("items");
    s.register_batches("items", items, vec![b]).expect("items");
    s
}

/// The query relates `offers` and `items` only through `sales`.
const QUERY: &str = "SELECT count(*), sum(qty * cost) FROM sales, offers, items \
     WHERE sales.item = items.item AND offers.item = sales.item \
     AND offers.vendor = sales.vendor AND items.name LIKE '%7%'";

/// (count, sum of qty × cost) over sales rows whose item's name contains a 7.
fn brute_force() -> String {
    let (mut count, mut sum) = (0i64, 0i64);
    for i in 0..20_000i64 {
        let (item, vendor, qty) = ((i * 7) % 1000, i % 4, i % 10 + 1);
        if format!("i{item}").contains('7') {
            count += 1;
            sum += qty * ((item * 4 + vendor) % 13);
        }
    }
    format!("{count} | {sum}")
}

/// The optimized logical plan's join lines.
fn joins(s: &Session, sql: &str) -> Vec<String> {
    let batches = s
        .sql(&format!("EXPLAIN {sql}"))
        .and_then(|d| d.collect())
        .expect("explain");
    let text = common::lines(&batches).join("\n");
    let optimized = text
        .split("optimized_logical_plan")
        .nth(1)
        .and_then(|t| t.split("physical_plan").next())
        .expect("an optimized plan");
    optimized
        .lines()
        .filter(|l| l.contains("Join:"))
        .map(|l| l.trim().to_string())
        .collect()
}

fn run(s: &Session, sql: &str) -> String {
    let batches = s
        .sql(sql)
        .and_then(|d| d.collect())
        .unwrap_or_else(|e| panic!("{sql}: {e}"));
    common::lines(&batches).join("\n")
}

#[test]
fn a_filtered_input_reduces_the_table_it_meets_only_through_another() {
    let s = session(1000);
    let joins = joins(&s, QUERY);
    assert!(
        joins.iter().any(|j| j.contains("offers.item = items.item")),
        "offers should join the filtered items first: {joins:#?}"
    );
    // The join with sales applies (item, vendor) once: `sales.item = items.item` is
    // implied by `offers.item = items.item` and `offers.item = sales.item`.
    let top = joins
        .iter()
        .find(|j| j.contains("sales."))
        .expect("a join with sales");
    assert_eq!(top.matches(" = ").count(), 2, "{top}");
    assert_eq!(run(&s, QUERY), brute_force());
}

#[test]
fn an_input_that_would_keep_most_rows_is_not_joined_early() {
    // Without the name filter, items keeps every offer: no reducer. (2 000 items, so that
    // estimates without statistics, which take every key as distinct, agree.)
    let s = session(2000);
    let sql = "SELECT count(*) FROM sales, offers, items WHERE sales.item = items.item \
               AND offers.item = sales.item AND offers.vendor = sales.vendor";
    let joins = joins(&s, sql);
    assert!(
        joins.iter().all(|j| j.contains("sales.")),
        "every join should involve sales: {joins:#?}"
    );
    assert_eq!(run(&s, sql), "20000");
}

#[test]
fn answers_hold_when_the_reducer_matches_nothing() {
    // Only items 0..5 exist, and none of them is named with a 7.
    let s = session(5);
    assert_eq!(run(&s, QUERY), "0 | NULL");
}
