//! Comparisons with constants compare a column in its own type: a literal (or a constant
//! expression such as `1 + 10`) that the column's type holds exactly is converted once,
//! instead of every row being cast to a wider common type. Results must not change.

use std::sync::Arc;

use arrow::array::{Decimal128Array, Int32Array, RecordBatch};
use arrow::datatypes::{DataType, Field, Schema};
use arrow::util::pretty::pretty_format_batches;
use sluice::{Session, SessionConfig};

fn session() -> Session {
    let s = Session::with_config(SessionConfig::default().with_target_partitions(2));
    let schema = Arc::new(Schema::new(vec![
        Field::new("q", DataType::Decimal128(15, 2), false),
        Field::new("size", DataType::Int32, true),
    ]));
    let q = Decimal128Array::from(vec![100, 1099, 1100, 1101, 2400, 2399])
        .with_precision_and_scale(15, 2)
        .expect("decimal");
    let size = Int32Array::from(vec![Some(1), Some(15), Some(1), Some(49), Some(14), None]);
    let b = RecordBatch::try_new(schema.clone(), vec![Arc::new(q), Arc::new(size)]).expect("batch");
    s.register_batches("t", schema, vec![b]).expect("register");
    s
}

fn rows(s: &Session, sql: &str) -> String {
    let batches = s.sql(sql).and_then(|df| df.collect()).expect(sql);
    pretty_format_batches(&batches).expect("format").to_string()
}

fn plan(s: &Session, sql: &str) -> String {
    s.sql(sql).and_then(|df| df.explain()).expect(sql)
}

#[test]
fn exact_constants_take_the_column_type() {
    let s = session();
    let sql = "SELECT q FROM t WHERE q <= 1 + 10 AND q >= 1 AND size IN (1, 15, 49) ORDER BY q";
    let p = plan(&s, sql);
    assert!(!p.contains("CAST"), "{p}");
    let got = rows(&s, sql);
    assert!(
        got.contains("| 1.00 ") && got.contains("10.99") && got.contains("11.00"),
        "{got}"
    );
    assert!(!got.contains("11.01"), "{got}");

    let got = rows(&s, "SELECT COUNT(*) AS n FROM t WHERE q < 24 AND size = 14");
    assert!(got.contains("| 0 |"), "{got}");
    let got = rows(
        &s,
        "SELECT COUNT(*) AS n FROM t WHERE q <= 24 AND size = 14",
    );
    assert!(got.contains("| 1 |"), "{got}");
}

#[test]
fn inexact_constants_still_widen() {
    let s = session();
    // 10.995 has three decimals: the column is widened, not the constant rounded.
    let sql = "SELECT COUNT(*) AS n FROM t WHERE q > 10.995";
    assert!(plan(&s, sql).contains("CAST"));
    assert!(rows(&s, sql).contains("| 4 |"));
    // 3000000000 does not fit INT: compared as BIGINT, so no row matches, and no error.
    let sql = "SELECT COUNT(*) AS n FROM t WHERE size = 3000000000";
    assert!(rows(&s, sql).contains("| 0 |"));
    // A constant that fails stays an error when run, naming the division.
    let err = s
        .sql("SELECT q FROM t WHERE q > 1 / 0")
        .and_then(|df| df.collect())
        .expect_err("division by zero");
    assert!(err.to_string().to_lowercase().contains("zero"), "{err}");
}
