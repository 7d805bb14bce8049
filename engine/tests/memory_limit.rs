//! The memory limit: operators that buffer (sort, aggregate, hash-join build) reserve what
//! they hold; past the limit the query fails with an error naming the operator and the
//! limit, and the same query runs under a large enough limit.

use std::sync::Arc;

use arrow::array::{Int64Array, RecordBatch};
use arrow::datatypes::{DataType, Field, Schema};
use sluice::{Session, SessionConfig, SluiceError};

fn session(limit: usize) -> Session {
    let s = Session::with_config(
        SessionConfig::default()
            .with_target_partitions(2)
            .with_memory_limit(limit),
    );
    let schema = Arc::new(Schema::new(vec![
        Field::new("k", DataType::Int64, false),
        Field::new("v", DataType::Int64, false),
    ]));
    let batches = (0..20)
        .map(|b| {
            let k: Int64Array = (0..10_000).map(|i| b * 10_000 + i).collect();
            let v: Int64Array = (0..10_000).map(|i| (i * 7) % 1000).collect();
            RecordBatch::try_new(schema.clone(), vec![Arc::new(k), Arc::new(v)]).expect("batch")
        })
        .collect();
    s.register_batches("t", schema, batches).expect("register");
    s
}

fn run(s: &Session, sql: &str) -> Result<usize, SluiceError> {
    Ok(s.sql(sql)?
        .collect()?
        .iter()
        .map(RecordBatch::num_rows)
        .sum())
}

#[test]
fn over_the_limit_fails_naming_operator_and_limit() {
    let small = session(200_000);
    for (sql, operator) in [
        ("SELECT k FROM t ORDER BY v, k", "SortExec"),
        ("SELECT k, count(*) FROM t GROUP BY k", "AggregateExec"),
        ("SELECT a.k FROM t a JOIN t b ON a.k = b.k", "HashJoinExec"),
    ] {
        let e = run(&small, sql).expect_err("must not fit in 200 kB");
        // Across an exchange it arrives as the producer's failure; the cause stays in the text.
        let msg = e.to_string();
        assert!(msg.contains("resources exhausted"), "{sql}: {msg}");
        assert!(
            msg.contains(operator) && msg.contains("200000"),
            "{sql}: {msg}"
        );
    }
    let large = session(1 << 30);
    assert_eq!(
        run(&large, "SELECT k FROM t ORDER BY v, k").expect("fits"),
        200_000
    );
    assert_eq!(
        run(&large, "SELECT k, count(*) FROM t GROUP BY k").expect("fits"),
        200_000
    );
    assert_eq!(
        run(&large, "SELECT a.k FROM t a JOIN t b ON a.k = b.k").expect("fits"),
        200_000
    );
}
