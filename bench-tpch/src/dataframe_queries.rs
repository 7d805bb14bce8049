//! TPC-H queries 1, 3, 5, 6 and 10 written with Sluice's DataFrame API.
//!
//! Each function mirrors `queries/qN.sql`: the same predicates and literals (dates as
//! `DATE` literals, `0.05` as `DECIMAL(2,2)`, `1` and `24` as `BIGINT`, exactly the types
//! the SQL planner gives them), the same output columns in the same order with the same
//! names, and the same `ORDER BY` / `LIMIT`. The SQL lists its tables comma-separated and
//! joins them in `WHERE`; here each join is spelled out with its key columns, and the
//! single-table predicates filter the tables before they are joined. The optimizer
//! flattens inner-join trees and reorders them in both cases, so both forms run the same
//! kind of plan.
//!
//! The DataFrame API has no decimal-literal or date-from-text constructor, so
//! [`decimal_lit`] builds a `Decimal128` literal from an Arrow array and [`date`] computes
//! the day number for [`sluice::date_lit`].

use std::sync::Arc;

use arrow::array::Decimal128Array;
use sluice::logical::expr::Scalar;
use sluice::{avg, col, count_star, date_lit, lit, sum, DataFrame, Expr, JoinType, Session};

use crate::error::Result;

/// The TPC-H queries that have a DataFrame version, in order.
pub const DATAFRAME_QUERIES: [usize; 5] = [1, 3, 5, 6, 10];

/// Whether query `n` has a DataFrame version (see [`DATAFRAME_QUERIES`]).
pub fn has_dataframe_query(n: usize) -> bool {
    DATAFRAME_QUERIES.contains(&n)
}

/// Builds TPC-H query `n` with the DataFrame API over the tables registered in `session`.
///
/// Returns `None` when query `n` has no DataFrame version (only 1, 3, 5, 6 and 10 do), and
/// `Some(Err(..))` when building the plan fails (e.g. a table is not registered). Nothing
/// runs until the DataFrame is collected.
pub fn dataframe_query(session: &Session, n: usize) -> Option<Result<DataFrame>> {
    Some(match n {
        1 => q1(session),
        3 => q3(session),
        5 => q5(session),
        6 => q6(session),
        10 => q10(session),
        _ => return None,
    })
}

/// A `DATE` literal for the given calendar day (proleptic Gregorian), like the SQL
/// planner's `CAST('YYYY-MM-DD' AS date)`.
pub fn date(year: i32, month: u32, day: u32) -> Expr {
    date_lit(days_from_civil(year, month, day))
}

/// Days from 1970-01-01 to the given day (negative before it), for `month` in `1..=12` and
/// `day` in `1..=31`. Howard Hinnant's `days_from_civil`.
pub fn days_from_civil(year: i32, month: u32, day: u32) -> i32 {
    let year = if month <= 2 { year - 1 } else { year };
    let era = year.div_euclid(400);
    let year_of_era = year.rem_euclid(400);
    // Months counted from March, so that the leap day is the last day of the year.
    let month_from_march = (month as i32 + 9) % 12;
    let day_of_year = (153 * month_from_march + 2) / 5 + day as i32 - 1;
    let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    era * 146_097 + day_of_era - 719_468
}

/// A `DECIMAL(precision, scale)` literal whose value is `unscaled / 10^scale`, like the SQL
/// planner's literal `0.05` (`decimal_lit(5, 2, 2)`).
pub fn decimal_lit(unscaled: i128, precision: u8, scale: i8) -> Result<Expr> {
    let array = Decimal128Array::from(vec![unscaled]).with_precision_and_scale(precision, scale)?;
    Ok(lit(Scalar(Arc::new(array))))
}

/// `l_extendedprice * (1 - l_discount)`.
fn discounted_price() -> Expr {
    col("l_extendedprice") * (lit(1i64) - col("l_discount"))
}

/// `sum(l_extendedprice * (1 - l_discount)) AS revenue`.
fn revenue() -> Expr {
    sum(discounted_price()).alias("revenue")
}

/// Columns by name.
fn cols(names: &[&str]) -> Vec<Expr> {
    names.iter().map(|name| col(name)).collect()
}

/// Q1, pricing summary report.
fn q1(session: &Session) -> Result<DataFrame> {
    let df = session
        .table("lineitem")?
        .filter(col("l_shipdate").lt_eq(date(1998, 9, 2)))?
        .aggregate(
            cols(&["l_returnflag", "l_linestatus"]),
            vec![
                sum(col("l_quantity")).alias("sum_qty"),
                sum(col("l_extendedprice")).alias("sum_base_price"),
                sum(discounted_price()).alias("sum_disc_price"),
                sum(discounted_price() * (lit(1i64) + col("l_tax"))).alias("sum_charge"),
                avg(col("l_quantity")).alias("avg_qty"),
                avg(col("l_extendedprice")).alias("avg_price"),
                avg(col("l_discount")).alias("avg_disc"),
                count_star().alias("count_order"),
            ],
        )?
        .sort(vec![
            col("l_returnflag").sort_asc(),
            col("l_linestatus").sort_asc(),
        ])?;
    Ok(df)
}

/// Q3, shipping priority.
fn q3(session: &Session) -> Result<DataFrame> {
    let customer = session
        .table("customer")?
        .filter(col("c_mktsegment").eq(lit("BUILDING")))?;
    let orders = session
        .table("orders")?
        .filter(col("o_orderdate").lt(date(1995, 3, 15)))?;
    let lineitem = session
        .table("lineitem")?
        .filter(col("l_shipdate").gt(date(1995, 3, 15)))?;
    let df = customer
        .join(&orders, JoinType::Inner, &["c_custkey"], &["o_custkey"])?
        .join(&lineitem, JoinType::Inner, &["o_orderkey"], &["l_orderkey"])?
        .aggregate(
            cols(&["l_orderkey", "o_orderdate", "o_shippriority"]),
            vec![revenue()],
        )?
        .select(cols(&[
            "l_orderkey",
            "revenue",
            "o_orderdate",
            "o_shippriority",
        ]))?
        .sort(vec![
            col("revenue").sort_desc(),
            col("o_orderdate").sort_asc(),
        ])?
        .limit(0, Some(10))?;
    Ok(df)
}

/// Q5, local supplier volume.
fn q5(session: &Session) -> Result<DataFrame> {
    let orders = session.table("orders")?.filter(
        col("o_orderdate")
            .gt_eq(date(1994, 1, 1))
            .and(col("o_orderdate").lt(date(1995, 1, 1))),
    )?;
    let region = session
        .table("region")?
        .filter(col("r_name").eq(lit("ASIA")))?;
    let df = session
        .table("customer")?
        .join(&orders, JoinType::Inner, &["c_custkey"], &["o_custkey"])?
        .join(
            &session.table("lineitem")?,
            JoinType::Inner,
            &["o_orderkey"],
            &["l_orderkey"],
        )?
        .join(
            &session.table("supplier")?,
            JoinType::Inner,
            &["l_suppkey", "c_nationkey"],
            &["s_suppkey", "s_nationkey"],
        )?
        .join(
            &session.table("nation")?,
            JoinType::Inner,
            &["s_nationkey"],
            &["n_nationkey"],
        )?
        .join(&region, JoinType::Inner, &["n_regionkey"], &["r_regionkey"])?
        .aggregate(cols(&["n_name"]), vec![revenue()])?
        .sort(vec![col("revenue").sort_desc()])?;
    Ok(df)
}

/// Q6, forecasting revenue change.
fn q6(session: &Session) -> Result<DataFrame> {
    let df = session
        .table("lineitem")?
        .filter(
            col("l_shipdate")
                .gt_eq(date(1994, 1, 1))
                .and(col("l_shipdate").lt(date(1995, 1, 1)))
                .and(col("l_discount").between(decimal_lit(5, 2, 2)?, decimal_lit(7, 2, 2)?))
                .and(col("l_quantity").lt(lit(24i64))),
        )?
        .aggregate(
            vec![],
            vec![sum(col("l_extendedprice") * col("l_discount")).alias("revenue")],
        )?;
    Ok(df)
}

/// Q10, returned item reporting.
fn q10(session: &Session) -> Result<DataFrame> {
    let orders = session.table("orders")?.filter(
        col("o_orderdate")
            .gt_eq(date(1993, 10, 1))
            .and(col("o_orderdate").lt(date(1994, 1, 1))),
    )?;
    let lineitem = session
        .table("lineitem")?
        .filter(col("l_returnflag").eq(lit("R")))?;
    let df = session
        .table("customer")?
        .join(&orders, JoinType::Inner, &["c_custkey"], &["o_custkey"])?
        .join(&lineitem, JoinType::Inner, &["o_orderkey"], &["l_orderkey"])?
        .join(
            &session.table("nation")?,
            JoinType::Inner,
            &["c_nationkey"],
            &["n_nationkey"],
        )?
        .aggregate(
            cols(&[
                "c_custkey",
                "c_name",
                "c_acctbal",
                "c_phone",
                "n_name",
                "c_address",
                "c_comment",
            ]),
            vec![revenue()],
        )?
        .select(cols(&[
            "c_custkey",
            "c_name",
            "revenue",
            "c_acctbal",
            "n_name",
            "c_address",
            "c_phone",
            "c_comment",
        ]))?
        .sort(vec![col("revenue").sort_desc()])?
        .limit(0, Some(20))?;
    Ok(df)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn civil_days() {
        assert_eq!(days_from_civil(1970, 1, 1), 0);
        assert_eq!(days_from_civil(1969, 12, 31), -1);
        assert_eq!(days_from_civil(1998, 9, 2), 10471);
        assert_eq!(days_from_civil(1995, 3, 15), 9204);
        assert_eq!(days_from_civil(1994, 1, 1), 8766);
        assert_eq!(days_from_civil(1995, 1, 1), 9131);
        assert_eq!(days_from_civil(1993, 10, 1), 8674);
        assert_eq!(days_from_civil(2000, 2, 29), 11016);
        assert_eq!(days_from_civil(1900, 3, 1), -25508);
    }

    #[test]
    fn literals_match_the_sql_planner() -> Result<()> {
        for (text, expr) in [
            ("0.05", decimal_lit(5, 2, 2)?),
            ("0.07", decimal_lit(7, 2, 2)?),
        ] {
            assert_eq!(sluice::sql::number_literal(text)?, expr, "{text}");
        }
        for (text, expr) in [
            ("1998-09-02", date(1998, 9, 2)),
            ("1993-10-01", date(1993, 10, 1)),
        ] {
            assert_eq!(sluice::sql::date_literal(text)?, expr, "{text}");
        }
        Ok(())
    }

    #[test]
    fn only_five_queries() {
        let session = Session::new();
        for n in 0..=23 {
            assert_eq!(
                dataframe_query(&session, n).is_some(),
                has_dataframe_query(n),
                "q{n}"
            );
        }
        // The tables are not registered: building fails with an error, not a panic.
        assert!(matches!(dataframe_query(&session, 1), Some(Err(_))));
    }
}
