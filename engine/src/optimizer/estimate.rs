//! Cardinality estimates, for join order and hash-join build sides.
//!
//! Each plan node's estimate is its row count and, per output column, what is known of
//! the values: their range (from the table's statistics, narrowed by filters), their
//! distinct count (`ndv`) and the distinct count of the column in its base table
//! (`domain`). Scans start from the table's row count and column statistics (Parquet
//! footers); an integer or date column has at most `max - min + 1` distinct values.
//!
//! * Filters: a comparison with a literal keeps the share of the column's range it
//!   covers (conjuncts on one column narrow the range in turn, so a `BETWEEN` counts once);
//!   `= literal` keeps `1 / ndv`; `IN` lists `n / ndv`; `LIKE` 10%; anything else 25%.
//! * Equi-joins: `|L| |R| / max(ndv_L, ndv_R)`, where a side's key has at most as many
//!   distinct values as the other key's domain (a foreign key's values are those of the
//!   key it references: `l_orderkey` joins `o_orderkey`'s 1.5 M values, not the 6 M its
//!   range allows).
//! * Aggregates: the product of the group keys' distinct counts, at most the input.
//!
//! These are estimates with uniform, independent columns; they choose between plans, never
//! decide a result.

use arrow::array::{Array, AsArray};
use arrow::datatypes::DataType;

use crate::catalog::statistics::ColumnStatistics;
use crate::logical::expr::{BinaryOp, Expr};
use crate::logical::plan::{JoinType, LogicalPlan};
use crate::logical::schema::PlanSchema;

/// Row count assumed for a table that does not know its own.
const UNKNOWN_TABLE_ROWS: f64 = 1_000_000.0;
/// Share of rows kept by a predicate the estimator cannot read.
const DEFAULT_SELECTIVITY: f64 = 0.25;
/// Share kept by `= literal` on a column with unknown distinct count, and by `LIKE`.
const EQ_SELECTIVITY: f64 = 0.1;

/// What the estimator knows about one output column.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct ColumnEstimate {
    /// Smallest value (numeric scale of [`crate::catalog::statistics::numeric_values`]).
    pub min: Option<f64>,
    /// Largest value.
    pub max: Option<f64>,
    /// Distinct values among the rows.
    pub ndv: Option<f64>,
    /// Distinct values of the column in its base table, before any filter or join.
    pub domain: Option<f64>,
    /// Share of the rows that are NULL.
    pub null_share: Option<f64>,
}

/// Estimated rows of a plan and what is known of its columns.
#[derive(Debug, Clone, PartialEq)]
pub struct Estimate {
    /// Rows.
    pub rows: f64,
    /// One per output column.
    pub columns: Vec<ColumnEstimate>,
}

impl Estimate {
    fn unknown(rows: f64, width: usize) -> Self {
        Self {
            rows,
            columns: vec![ColumnEstimate::default(); width],
        }
    }

    /// Keeps `share` of the rows, chosen independently of the columns: a column's
    /// distinct values shrink as a sample's do.
    fn keep(&mut self, share: f64) {
        let share = share.clamp(0.0, 1.0);
        let before = self.rows;
        self.rows *= share;
        for c in &mut self.columns {
            c.ndv = c
                .ndv
                .map(|n| sampled_ndv(n, before, share).min(self.rows.max(1.0)));
        }
    }
}

/// Expected distinct values left when `share` of `rows` rows holding `ndv` distinct values
/// are kept at random.
fn sampled_ndv(ndv: f64, rows: f64, share: f64) -> f64 {
    if ndv <= 0.0 || rows <= 0.0 {
        return ndv;
    }
    let per_value = (rows / ndv).max(1.0);
    (ndv * (1.0 - (1.0 - share).powf(per_value))).max(1.0)
}

/// Estimated output rows of `plan`.
pub fn estimate_rows(plan: &LogicalPlan) -> f64 {
    estimate(plan).rows
}

/// Estimated output size of `plan` in bytes: rows times the width of a row (a string
/// counted as its 16-byte view plus 8 bytes of text).
pub fn estimate_bytes(plan: &LogicalPlan) -> f64 {
    let width: usize = plan
        .schema()
        .fields()
        .iter()
        .map(|f| {
            let t = f.field.data_type();
            t.primitive_width().unwrap_or(match t {
                DataType::Boolean => 1,
                _ => 24,
            })
        })
        .sum();
    estimate_rows(plan) * width.max(1) as f64
}

/// Estimated rows and column facts of `plan`.
pub fn estimate(plan: &LogicalPlan) -> Estimate {
    let width = plan.schema().fields().len();
    match plan {
        LogicalPlan::Scan {
            source,
            projection,
            schema,
            ..
        } => {
            // The scan's filters are hints: the Filter above it holds them and counts them.
            let rows = source.row_count().map_or(UNKNOWN_TABLE_ROWS, |r| r as f64);
            let stats = source.column_statistics();
            let columns = (0..width)
                .map(|i| {
                    let source_column = projection.as_ref().map_or(Some(i), |p| p.get(i).copied());
                    let s = source_column.and_then(|c| stats.get(c)).copied();
                    scan_column(s.unwrap_or_default(), schema, i, rows)
                })
                .collect();
            Estimate { rows, columns }
        }
        LogicalPlan::Empty {
            produce_one_row, ..
        } => Estimate::unknown(f64::from(u8::from(*produce_one_row)), width),
        LogicalPlan::Values { rows, .. } => Estimate::unknown(rows.len() as f64, width),
        LogicalPlan::Filter { input, predicate } => {
            let mut e = estimate(input);
            let share = selectivity(predicate, input.schema(), &mut e.columns);
            e.keep(share);
            e
        }
        LogicalPlan::Projection { input, exprs, .. } => {
            let e = estimate(input);
            let columns = exprs
                .iter()
                .map(|x| {
                    column_of(x, input.schema()).map_or_else(Default::default, |i| e.columns[i])
                })
                .collect();
            Estimate {
                rows: e.rows,
                columns,
            }
        }
        LogicalPlan::Aggregate {
            input, group_by, ..
        } => aggregate(input, group_by, width),
        LogicalPlan::Join {
            left,
            right,
            join_type,
            on,
            filter,
            ..
        } => join(left, right, *join_type, on, filter.as_ref(), plan.schema()),
        LogicalPlan::Limit { input, fetch, .. } | LogicalPlan::Sort { input, fetch, .. } => {
            let mut e = estimate(input);
            if let Some(f) = fetch {
                if e.rows > *f as f64 {
                    let share = *f as f64 / e.rows;
                    e.keep(share);
                }
            }
            e
        }
        LogicalPlan::Union { inputs, .. } => {
            Estimate::unknown(inputs.iter().map(|i| estimate_rows(i)).sum(), width)
        }
        LogicalPlan::Window { input, .. }
        | LogicalPlan::Watermark { input, .. }
        | LogicalPlan::WindowTvf { input, .. }
        | LogicalPlan::Alias { input, .. } => {
            let mut e = estimate(input);
            e.columns.resize(width, ColumnEstimate::default());
            e
        }
    }
}

/// A scan column's facts from the table's statistics.
fn scan_column(s: ColumnStatistics, schema: &PlanSchema, i: usize, rows: f64) -> ColumnEstimate {
    let discrete = schema.fields().get(i).is_some_and(|f| {
        let t = f.field.data_type();
        t.is_integer() || matches!(t, arrow::datatypes::DataType::Date32)
    });
    let ndv = match (s.min, s.max) {
        (Some(lo), Some(hi)) if discrete => Some((hi - lo + 1.0).clamp(1.0, rows.max(1.0))),
        _ => None,
    };
    ColumnEstimate {
        min: s.min,
        max: s.max,
        ndv,
        domain: ndv,
        null_share: s.null_count.map(|n| n as f64 / rows.max(1.0)),
    }
}

/// The input column `e` reads, if it is a column (or a cast of one: casts between
/// numeric types keep order).
fn column_of(e: &Expr, schema: &PlanSchema) -> Option<usize> {
    match e {
        Expr::Alias(e, _) | Expr::Cast { expr: e, .. } => column_of(e, schema),
        Expr::Column(c) => schema.find(c).ok().flatten(),
        _ => None,
    }
}

/// A literal's value on the numeric scale, if it has one.
fn literal_value(e: &Expr) -> Option<f64> {
    match e {
        Expr::Literal(s) => crate::catalog::statistics::numeric_values(&s.0)?
            .first()
            .copied()
            .flatten(),
        Expr::Cast { expr, .. } | Expr::Alias(expr, _) => literal_value(expr),
        _ => None,
    }
}

/// The share of rows `p` keeps; narrows the ranges in `columns` that a conjunct bounds.
fn selectivity(p: &Expr, schema: &PlanSchema, columns: &mut [ColumnEstimate]) -> f64 {
    let s = match p {
        Expr::Binary {
            left,
            op: BinaryOp::And,
            right,
        } => selectivity(left, schema, columns) * selectivity(right, schema, columns),
        Expr::Binary {
            left,
            op: BinaryOp::Or,
            right,
        } => {
            let a = selectivity(left, schema, &mut columns.to_vec());
            let b = selectivity(right, schema, &mut columns.to_vec());
            a + b - a * b
        }
        Expr::Not(inner) => 1.0 - selectivity(inner, schema, &mut columns.to_vec()),
        Expr::Binary { left, op, right } => comparison(left, *op, right, schema, columns),
        Expr::Like { negated, .. } => negate(EQ_SELECTIVITY, *negated),
        Expr::InList {
            expr,
            list,
            negated,
        } => {
            let ndv = column_of(expr, schema).and_then(|i| columns[i].ndv);
            let kept = ndv.map_or(EQ_SELECTIVITY * list.len() as f64, |n| {
                list.len() as f64 / n.max(1.0)
            });
            negate(kept.min(1.0), *negated)
        }
        Expr::IsNull(e) | Expr::IsNotNull(e) => {
            let nulls = column_of(e, schema)
                .and_then(|i| columns[i].null_share)
                .unwrap_or(EQ_SELECTIVITY);
            negate(nulls, matches!(p, Expr::IsNotNull(_)))
        }
        Expr::Literal(s) => match s.0.as_boolean_opt() {
            Some(b) if b.is_valid(0) && b.value(0) => 1.0,
            Some(_) => 0.0,
            None => DEFAULT_SELECTIVITY,
        },
        _ => DEFAULT_SELECTIVITY,
    };
    s.clamp(0.0, 1.0)
}

fn negate(kept: f64, negated: bool) -> f64 {
    if negated {
        1.0 - kept
    } else {
        kept
    }
}

/// `left op right` where one side may be a column and the other a literal.
fn comparison(
    left: &Expr,
    op: BinaryOp,
    right: &Expr,
    schema: &PlanSchema,
    columns: &mut [ColumnEstimate],
) -> f64 {
    let (col, op, lit) = match (column_of(left, schema), column_of(right, schema)) {
        (Some(a), Some(b)) => {
            return match op {
                BinaryOp::Eq => match (columns[a].ndv, columns[b].ndv) {
                    (Some(x), Some(y)) => 1.0 / x.max(y).max(1.0),
                    (Some(n), None) | (None, Some(n)) => 1.0 / n.max(1.0),
                    (None, None) => EQ_SELECTIVITY,
                },
                _ => DEFAULT_SELECTIVITY,
            }
        }
        (Some(c), None) => (c, Some(op), right),
        (None, Some(c)) => (c, op.swap(), left),
        (None, None) => return DEFAULT_SELECTIVITY,
    };
    let Some(op) = op else {
        return DEFAULT_SELECTIVITY;
    };
    let c = &mut columns[col];
    let value = literal_value(lit);
    let eq_share = c.ndv.map_or(EQ_SELECTIVITY, |n| 1.0 / n.max(1.0));
    match (op, value, c.min, c.max) {
        (BinaryOp::Eq, Some(v), Some(lo), Some(hi)) if v < lo || v > hi => 0.0,
        (BinaryOp::Eq, v, ..) => {
            if v.is_some() {
                c.min = v;
                c.max = v;
            }
            c.ndv = Some(1.0);
            eq_share
        }
        (BinaryOp::NotEq, ..) => 1.0 - eq_share,
        (
            BinaryOp::Lt | BinaryOp::LtEq | BinaryOp::Gt | BinaryOp::GtEq,
            Some(v),
            Some(lo),
            Some(hi),
        ) => {
            let (new_lo, new_hi) = match op {
                BinaryOp::Lt | BinaryOp::LtEq => (lo, v.min(hi)),
                _ => (v.max(lo), hi),
            };
            if new_hi < new_lo {
                return 0.0;
            }
            let share = if hi > lo {
                (new_hi - new_lo) / (hi - lo)
            } else {
                1.0
            };
            c.min = Some(new_lo);
            c.max = Some(new_hi);
            c.ndv = c.ndv.map(|n| (n * share).max(1.0));
            share
        }
        _ => DEFAULT_SELECTIVITY,
    }
}

fn aggregate(input: &LogicalPlan, group_by: &[Expr], width: usize) -> Estimate {
    let e = estimate(input);
    if group_by.is_empty() {
        return Estimate::unknown(1.0, width);
    }
    let keys: Vec<ColumnEstimate> = group_by
        .iter()
        .map(|g| column_of(g, input.schema()).map_or_else(Default::default, |i| e.columns[i]))
        .collect();
    let known: f64 = keys.iter().filter_map(|k| k.ndv).product();
    let unknown = if keys.iter().any(|k| k.ndv.is_none()) {
        (0.1 * e.rows).max(1.0)
    } else {
        1.0
    };
    let rows = (known * unknown).min(e.rows).max(1.0);
    let mut columns = keys;
    for c in &mut columns {
        c.ndv = c.ndv.map(|n| n.min(rows));
    }
    columns.resize(width, ColumnEstimate::default());
    Estimate { rows, columns }
}

/// Distinct values and domain of a side's join key (one column, or several as a whole).
fn key_facts(keys: &[&Expr], side: &LogicalPlan, e: &Estimate) -> (f64, Option<f64>) {
    let facts: Vec<ColumnEstimate> = keys
        .iter()
        .map(|k| column_of(k, side.schema()).map_or_else(Default::default, |i| e.columns[i]))
        .collect();
    let rows = e.rows.max(1.0);
    let ndv = facts
        .iter()
        .map(|f| f.ndv.unwrap_or(rows))
        .product::<f64>()
        .min(rows);
    let domain = facts.iter().map(|f| f.domain).product::<Option<f64>>();
    (ndv, domain)
}

fn join(
    left: &LogicalPlan,
    right: &LogicalPlan,
    join_type: JoinType,
    on: &[(Expr, Expr)],
    filter: Option<&Expr>,
    schema: &PlanSchema,
) -> Estimate {
    let (l, r) = (estimate(left), estimate(right));
    let (lkeys, rkeys): (Vec<&Expr>, Vec<&Expr>) = on.iter().map(|(a, b)| (a, b)).unzip();
    let (l_ndv, l_domain) = key_facts(&lkeys, left, &l);
    let (r_ndv, r_domain) = key_facts(&rkeys, right, &r);
    // A key has no more distinct values that can match than the other key's domain.
    let cap = |ndv: f64, other: Option<f64>| other.map_or(ndv, |d| ndv.min(d));
    let (l_eff, r_eff) = (cap(l_ndv, r_domain), cap(r_ndv, l_domain));
    if matches!(join_type, JoinType::Semi | JoinType::Anti) {
        let matched = if on.is_empty() {
            0.5
        } else {
            (r_eff / l_eff.max(1.0)).min(1.0)
        };
        let mut e = l;
        e.keep(negate(matched, join_type == JoinType::Anti).max(0.1));
        return e;
    }
    let mut rows = if on.is_empty() {
        l.rows * r.rows
    } else {
        l.rows * r.rows / l_eff.max(r_eff).max(1.0)
    };
    let mut columns = l.columns.clone();
    columns.extend(r.columns.iter().copied());
    if let Some(f) = filter {
        rows *= selectivity(f, schema, &mut columns);
    }
    rows = match join_type {
        JoinType::Left => rows.max(l.rows),
        JoinType::Right => rows.max(r.rows),
        JoinType::Full => rows.max(l.rows).max(r.rows),
        _ => rows,
    };
    // Each side's columns lose distinct values as that side's rows are dropped.
    let (lw, shrink) = (l.columns.len(), |c: &mut ColumnEstimate, side_rows: f64| {
        if side_rows > rows {
            c.ndv = c.ndv.map(|n| sampled_ndv(n, side_rows, rows / side_rows));
        }
        c.ndv = c.ndv.map(|n| n.min(rows.max(1.0)));
    });
    for (i, c) in columns.iter_mut().enumerate() {
        shrink(c, if i < lw { l.rows } else { r.rows });
        // An outer join adds NULLs to the other side's columns.
        let extended = match join_type {
            JoinType::Left => i >= lw,
            JoinType::Right => i < lw,
            JoinType::Full => true,
            _ => false,
        };
        if extended {
            c.null_share = None;
        }
    }
    Estimate { rows, columns }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use arrow::datatypes::{Field, Schema, SchemaRef};

    use super::*;
    use crate::catalog::TableProvider;
    use crate::error::{Result, SluiceError};
    use crate::logical::expr::{col, date_lit, lit};
    use crate::physical::ExecNode;

    /// A table that only knows its size and its columns' ranges.
    #[derive(Debug)]
    struct Stats {
        schema: SchemaRef,
        rows: usize,
        stats: Vec<ColumnStatistics>,
    }

    impl TableProvider for Stats {
        fn schema(&self) -> SchemaRef {
            self.schema.clone()
        }
        fn row_count(&self) -> Option<usize> {
            Some(self.rows)
        }
        fn column_statistics(&self) -> &[ColumnStatistics] {
            &self.stats
        }
        fn scan(
            &self,
            _: Option<&[usize]>,
            _: &[Expr],
            _: usize,
            _: usize,
        ) -> Result<Arc<dyn ExecNode>> {
            Err(SluiceError::exec("statistics only"))
        }
        fn describe(&self) -> String {
            "statistics".into()
        }
        fn as_any(&self) -> &dyn std::any::Any {
            self
        }
    }

    /// A scan of `name` with `rows` rows and `(column, type, min, max)` columns.
    fn table(name: &str, rows: usize, columns: &[(&str, DataType, f64, f64)]) -> Arc<LogicalPlan> {
        let schema = Arc::new(Schema::new(
            columns
                .iter()
                .map(|(c, t, ..)| Field::new(*c, t.clone(), false))
                .collect::<Vec<_>>(),
        ));
        let stats = columns
            .iter()
            .map(|(.., lo, hi)| ColumnStatistics {
                min: Some(*lo),
                max: Some(*hi),
                null_count: Some(0),
            })
            .collect();
        Arc::new(LogicalPlan::Scan {
            table: name.into(),
            source: Arc::new(Stats {
                schema: schema.clone(),
                rows,
                stats,
            }),
            projection: None,
            filters: vec![],
            schema: PlanSchema::from_arrow(Some(name), &schema),
        })
    }

    fn filter(input: &Arc<LogicalPlan>, p: Expr) -> Arc<LogicalPlan> {
        Arc::new(LogicalPlan::filter(input.clone(), p).expect("filter"))
    }

    fn join(l: &Arc<LogicalPlan>, r: &Arc<LogicalPlan>, t: JoinType, a: &str, b: &str) -> f64 {
        let j = LogicalPlan::join(l.clone(), r.clone(), t, vec![(col(a), col(b))], None, false);
        estimate_rows(&j.expect("join"))
    }

    fn close(actual: f64, expected: f64) {
        assert!(
            (actual - expected).abs() <= expected * 0.02 + 1.0,
            "estimated {actual}, expected about {expected}"
        );
    }

    fn orders() -> Arc<LogicalPlan> {
        table(
            "orders",
            1500,
            &[
                ("o_orderkey", DataType::Int64, 1.0, 6000.0),
                ("o_orderdate", DataType::Date32, 0.0, 999.0),
            ],
        )
    }

    fn lineitem() -> Arc<LogicalPlan> {
        table(
            "lineitem",
            6000,
            &[("l_orderkey", DataType::Int64, 1.0, 6000.0)],
        )
    }

    #[test]
    fn range_conjuncts_on_one_column_count_once() {
        let o = orders();
        let year = col("o_orderdate")
            .gt_eq(date_lit(100))
            .and(col("o_orderdate").lt(date_lit(200)));
        // 10% of the date range, not 25% of 25%.
        close(estimate_rows(&filter(&o, year)), 150.0);
        close(
            estimate_rows(&filter(&o, col("o_orderdate").gt(date_lit(5000)))),
            0.0,
        );
    }

    #[test]
    fn equality_keeps_one_distinct_value() {
        let t = table("t", 1000, &[("k", DataType::Int32, 1.0, 50.0)]);
        close(estimate_rows(&filter(&t, col("k").eq(lit(7)))), 20.0);
        close(estimate_rows(&filter(&t, col("k").eq(lit(99)))), 0.0);
        let two = col("k").in_list(vec![lit(1), lit(2)], false);
        close(estimate_rows(&filter(&t, two)), 40.0);
        // The footer's NULL count: none here.
        close(estimate_rows(&filter(&t, col("k").is_null())), 0.0);
        close(estimate_rows(&filter(&t, col("k").is_not_null())), 1000.0);
        // Unknown shapes keep the defaults.
        let s = table("s", 1000, &[("name", DataType::Utf8, 0.0, 0.0)]);
        close(
            estimate_rows(&filter(&s, col("name").like(lit("%x%")))),
            100.0,
        );
    }

    #[test]
    fn foreign_key_joins_match_the_referenced_keys() {
        let (o, l) = (orders(), lineitem());
        // l_orderkey's range allows 6000 values, but it holds orders' 1500 keys.
        close(
            join(&l, &o, JoinType::Inner, "l_orderkey", "o_orderkey"),
            6000.0,
        );
        // A tenth of the orders keeps a tenth of the lineitems, whichever side is left.
        let some = filter(&o, col("o_orderdate").lt(date_lit(100)));
        let fraction = 6000.0 * 100.0 / 999.0;
        close(
            join(&l, &some, JoinType::Inner, "l_orderkey", "o_orderkey"),
            fraction,
        );
        close(
            join(&some, &l, JoinType::Inner, "o_orderkey", "l_orderkey"),
            fraction,
        );
        close(
            join(&some, &l, JoinType::Left, "o_orderkey", "l_orderkey"),
            fraction,
        );
        close(
            join(&l, &some, JoinType::Left, "l_orderkey", "o_orderkey"),
            6000.0,
        );
        // Semi and anti joins keep the share of keys that do (not) match.
        close(
            join(&o, &l, JoinType::Semi, "o_orderkey", "l_orderkey"),
            1500.0,
        );
        close(
            join(&l, &some, JoinType::Semi, "l_orderkey", "o_orderkey"),
            fraction,
        );
        close(
            join(&l, &some, JoinType::Anti, "l_orderkey", "o_orderkey"),
            6000.0 - fraction,
        );
    }

    #[test]
    fn groups_are_at_most_the_product_of_key_distinct_counts() {
        let t = table(
            "t",
            1000,
            &[
                ("a", DataType::Int32, 1.0, 5.0),
                ("b", DataType::Int32, 1.0, 4.0),
            ],
        );
        let agg = |keys: Vec<Expr>| {
            let a = LogicalPlan::aggregate(t.clone(), keys, vec![]).expect("aggregate");
            estimate_rows(&a)
        };
        close(agg(vec![col("a"), col("b")]), 20.0);
        close(agg(vec![]), 1.0);
        // A computed key is unknown: a tenth of the input.
        close(agg(vec![col("a").eq(col("b"))]), 100.0);
    }

    #[test]
    fn build_side_weighs_row_width() {
        let narrow = table("n", 1000, &[("k", DataType::Int64, 1.0, 1000.0)]);
        let wide = table(
            "w",
            500,
            &[
                ("k", DataType::Int64, 1.0, 500.0),
                ("s", DataType::Utf8View, 0.0, 0.0),
                ("d", DataType::Decimal128(15, 2), 0.0, 1.0),
            ],
        );
        assert!(estimate_rows(&wide) < estimate_rows(&narrow));
        assert!(estimate_bytes(&wide) > estimate_bytes(&narrow));
    }
}
