//! Runnable examples of Sluice's embedded Rust API. Each function builds a small table,
//! queries it, and returns the rendered result; the binaries in `src/bin/` print them and
//! the tests below check them, so the examples cannot rot.

use std::sync::Arc;

use arrow::array::{Date32Array, Decimal128Array, Int64Array, RecordBatch, StringArray};
use arrow::datatypes::{DataType, Field, Schema};
use sluice::{col, lit, sum, JoinType, Result, Session};

/// A session with two small tables: `orders(id, customer, amount, day)` and
/// `customers(cid, name)`.
pub fn demo_session() -> Result<Session> {
    let session = Session::new();
    let orders = Arc::new(Schema::new(vec![
        Field::new("id", DataType::Int64, false),
        Field::new("customer", DataType::Int64, false),
        Field::new("amount", DataType::Decimal128(10, 2), false),
        Field::new("day", DataType::Date32, false),
    ]));
    let batch = RecordBatch::try_new(
        orders.clone(),
        vec![
            Arc::new(Int64Array::from(vec![1, 2, 3, 4])),
            Arc::new(Int64Array::from(vec![10, 10, 20, 30])),
            Arc::new(
                Decimal128Array::from(vec![1050, 2500, 999, 120_000])
                    .with_precision_and_scale(10, 2)?,
            ),
            Arc::new(Date32Array::from(vec![19_000, 19_001, 19_001, 19_002])),
        ],
    )?;
    session.register_batches("orders", orders, vec![batch])?;
    let customers = Arc::new(Schema::new(vec![
        Field::new("cid", DataType::Int64, false),
        Field::new("name", DataType::Utf8, false),
    ]));
    let batch = RecordBatch::try_new(
        customers.clone(),
        vec![
            Arc::new(Int64Array::from(vec![10, 20, 30])),
            Arc::new(StringArray::from(vec!["ada", "grace", "edsger"])),
        ],
    )?;
    session.register_batches("customers", customers, vec![batch])?;
    Ok(session)
}

/// Revenue per customer with SQL.
pub fn sql_example() -> Result<String> {
    let session = demo_session()?;
    session
        .sql(
            "SELECT name, count(*) AS orders, sum(amount) AS revenue
             FROM orders JOIN customers ON customer = cid
             WHERE amount > 10.00
             GROUP BY name
             ORDER BY revenue DESC",
        )?
        .to_pretty_string()
}

/// The same query with the DataFrame API.
pub fn dataframe_example() -> Result<String> {
    let session = demo_session()?;
    let orders = session.table("orders")?;
    let customers = session.table("customers")?;
    orders
        .filter(col("amount").gt(lit(10.0)))?
        .join(&customers, JoinType::Inner, &["customer"], &["cid"])?
        .aggregate(
            vec![col("name")],
            vec![
                sluice::count_star().alias("orders"),
                sum(col("amount")).alias("revenue"),
            ],
        )?
        .sort(vec![col("revenue").sort_desc()])?
        .to_pretty_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sql_and_dataframe_agree() {
        let a = sql_example().expect("sql");
        let b = dataframe_example().expect("dataframe");
        assert_eq!(a, b);
        assert!(a.contains("| edsger | 1      | 1200.00 |"), "{a}");
        assert!(a.contains("| ada    | 2      | 35.50   |"), "{a}");
        assert!(
            !a.contains("grace"),
            "grace's only order is below 10.00: {a}"
        );
    }
}
