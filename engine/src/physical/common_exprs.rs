//! Common subexpressions of an operator's expressions, computed once a batch.
//!
//! TPC-H q1 sums `l_extendedprice * (1 - l_discount)` and that same product times
//! `(1 + l_tax)`: evaluated separately, the product is computed twice for every row.
//! [`CommonExprs::extract`] finds each subexpression that occurs more than once, longest
//! first, gives it a column after the input's, and rewrites the expressions to read that
//! column; [`CommonExprs::extend`] computes those columns for a batch. A shared
//! expression may itself read an earlier one's column, so they are computed in order.
//! Nothing is taken from inside a CASE, which evaluates its parts on some rows only.

use std::collections::HashMap;
use std::sync::Arc;

use arrow::array::{ArrayRef, RecordBatch, RecordBatchOptions};
use arrow::datatypes::{Field, Schema, SchemaRef};

use crate::error::Result;
use crate::physical::expr::PhysExpr;

/// Shared subexpressions over an input, in the order they are computed.
#[derive(Debug, Clone)]
pub struct CommonExprs {
    exprs: Vec<PhysExpr>,
    /// `schemas[k]`: the input's columns and the first `k` shared ones.
    schemas: Vec<SchemaRef>,
}

/// Whether `e` reads an input column.
fn reads_input(e: &PhysExpr) -> bool {
    matches!(e, PhysExpr::Column(..)) || e.children().into_iter().any(reads_input)
}

/// Whether `e` computes something from the input (not a column, not a constant).
fn worth_sharing(e: &PhysExpr) -> bool {
    !matches!(e, PhysExpr::Column(..) | PhysExpr::Literal(_)) && reads_input(e)
}

/// Calls `f` on `e` and on every subexpression that is evaluated for every row. Not
/// inside a CASE: its conditions and branches may see only some rows (a branch guarded by
/// `d <> 0` may divide by `d`), and a shared column would compute them for all.
fn visit_eager<'a>(e: &'a PhysExpr, f: &mut impl FnMut(&'a PhysExpr)) {
    f(e);
    if !matches!(e, PhysExpr::Case(..)) {
        for c in e.children() {
            visit_eager(c, f);
        }
    }
}

impl CommonExprs {
    /// Moves the subexpressions that occur more than once in `exprs` (over `input`) into
    /// shared columns, rewriting `exprs` to read them.
    pub fn extract(exprs: &mut [PhysExpr], input: &SchemaRef) -> Result<Self> {
        let mut shared = Self {
            exprs: vec![],
            schemas: vec![input.clone()],
        };
        loop {
            // Every subexpression of the (rewritten) expressions, by its text, which
            // names column positions and so is unambiguous over one input.
            let mut seen: HashMap<String, (usize, PhysExpr)> = HashMap::new();
            for e in exprs.iter() {
                visit_eager(e, &mut |n| {
                    if worth_sharing(n) {
                        seen.entry(n.to_string()).or_insert((0, n.clone())).0 += 1;
                    }
                });
            }
            let Some((text, (_, expr))) = seen
                .into_iter()
                .filter(|(_, (count, _))| *count > 1)
                .max_by(|(a, _), (b, _)| a.len().cmp(&b.len()).then_with(|| b.cmp(a)))
            else {
                return Ok(shared);
            };
            let schema = shared.schemas.last().unwrap_or(input).clone();
            let column = schema.fields().len();
            let name = format!("common{}", shared.exprs.len());
            let mut fields = schema.fields().to_vec();
            fields.push(Arc::new(Field::new(&name, expr.data_type(&schema)?, true)));
            shared.schemas.push(Arc::new(Schema::new(fields)));
            shared.exprs.push(expr);
            for e in exprs.iter_mut() {
                *e = e.clone().bind(&mut |n| {
                    if n.to_string() == text {
                        PhysExpr::Column(column, name.clone())
                    } else {
                        n
                    }
                });
            }
        }
    }

    /// Whether there is nothing to share.
    pub fn is_empty(&self) -> bool {
        self.exprs.is_empty()
    }

    /// `batch` with the shared columns appended.
    pub fn extend(&self, batch: &RecordBatch) -> Result<RecordBatch> {
        let mut batch = batch.clone();
        for (e, schema) in self.exprs.iter().zip(&self.schemas[1..]) {
            let mut cols: Vec<ArrayRef> = batch.columns().to_vec();
            cols.push(e.evaluate_array(&batch)?);
            let options = RecordBatchOptions::new().with_row_count(Some(batch.num_rows()));
            batch = RecordBatch::try_new_with_options(schema.clone(), cols, &options)?;
        }
        Ok(batch)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use arrow::array::{AsArray, Int64Array};
    use arrow::datatypes::{DataType, Int64Type};

    use crate::logical::expr::BinaryOp;

    fn col(i: usize, n: &str) -> PhysExpr {
        PhysExpr::Column(i, n.into())
    }

    fn bin(l: PhysExpr, op: BinaryOp, r: PhysExpr) -> PhysExpr {
        PhysExpr::Binary(Box::new(l), op, Box::new(r))
    }

    fn lit(v: i64) -> PhysExpr {
        PhysExpr::Literal(Arc::new(Int64Array::from(vec![v])))
    }

    /// q1's shape: `p = x * (1 - d)` is shared by `sum(p)` and `sum(p * (1 + t))`, and
    /// the results are what evaluating each expression on its own gives.
    #[test]
    fn shared_product_is_computed_once_with_the_same_results() {
        let schema = Arc::new(Schema::new(vec![
            Field::new("x", DataType::Int64, false),
            Field::new("d", DataType::Int64, false),
            Field::new("t", DataType::Int64, true),
        ]));
        let p = || {
            bin(
                col(0, "x"),
                BinaryOp::Multiply,
                bin(lit(1), BinaryOp::Minus, col(1, "d")),
            )
        };
        let original = vec![
            col(0, "x"),
            p(),
            bin(
                p(),
                BinaryOp::Multiply,
                bin(lit(1), BinaryOp::Plus, col(2, "t")),
            ),
            bin(lit(1), BinaryOp::Plus, lit(2)),
        ];
        let mut exprs = original.clone();
        let common = CommonExprs::extract(&mut exprs, &schema).expect("extract");
        assert_eq!(common.exprs.len(), 1);
        assert_eq!(common.exprs[0].to_string(), p().to_string());
        assert_eq!(exprs[1].to_string(), "common0@3");
        assert!(exprs[2].to_string().starts_with("(common0@3 * "));
        assert_eq!(exprs[0].to_string(), original[0].to_string());
        assert_eq!(exprs[3].to_string(), original[3].to_string());

        let batch = RecordBatch::try_new(
            schema,
            vec![
                Arc::new(Int64Array::from(vec![10, 20, 30])),
                Arc::new(Int64Array::from(vec![0, 1, 2])),
                Arc::new(Int64Array::from(vec![Some(1), None, Some(3)])),
            ],
        )
        .expect("batch");
        let wide = common.extend(&batch).expect("extend");
        assert_eq!(wide.num_columns(), 4);
        for (e, o) in exprs.iter().zip(&original) {
            let got = e.evaluate_array(&wide).expect("rewritten");
            let want = o.evaluate_array(&batch).expect("original");
            assert_eq!(got.as_ref(), want.as_ref(), "{o}");
        }
        let p_col = wide.column(3).as_primitive::<Int64Type>();
        assert_eq!(p_col.values().as_ref(), &[10, 0, -30]);
    }

    /// A subexpression inside CASE branches is not shared (it would then be computed for
    /// rows the CASE keeps it from, here dividing by zero); a whole repeated CASE is.
    #[test]
    fn nothing_is_taken_out_of_a_case() {
        let schema = Arc::new(Schema::new(vec![
            Field::new("x", DataType::Int64, false),
            Field::new("d", DataType::Int64, false),
        ]));
        let guarded = |op, then_else| {
            PhysExpr::Case(
                vec![(
                    bin(col(1, "d"), op, lit(0)),
                    bin(col(0, "x"), BinaryOp::Divide, col(1, "d")),
                )],
                Box::new(lit(then_else)),
            )
        };
        let mut exprs = vec![guarded(BinaryOp::NotEq, 0), guarded(BinaryOp::Gt, 1)];
        let common = CommonExprs::extract(&mut exprs, &schema).expect("extract");
        assert!(common.is_empty(), "{:?}", common.exprs);
        let batch = RecordBatch::try_new(
            schema.clone(),
            vec![
                Arc::new(Int64Array::from(vec![10, 20])),
                Arc::new(Int64Array::from(vec![0, 5])),
            ],
        )
        .expect("batch");
        let wide = common.extend(&batch).expect("extend");
        for e in &exprs {
            e.evaluate_array(&wide).expect("no division by zero");
        }

        let mut exprs = vec![guarded(BinaryOp::NotEq, 0), guarded(BinaryOp::NotEq, 0)];
        let common = CommonExprs::extract(&mut exprs, &schema).expect("extract");
        assert_eq!(common.exprs.len(), 1);
        assert!(matches!(common.exprs[0], PhysExpr::Case(..)));
    }

    #[test]
    fn nothing_repeated_leaves_the_expressions_alone() {
        let schema = Arc::new(Schema::new(vec![Field::new("x", DataType::Int64, false)]));
        let mut exprs = vec![
            col(0, "x"),
            col(0, "x"),
            bin(col(0, "x"), BinaryOp::Plus, lit(1)),
        ];
        let common = CommonExprs::extract(&mut exprs, &schema).expect("extract");
        assert!(common.is_empty());
        assert_eq!(exprs[2].to_string(), "(x@0 + 1)");
    }
}
