//! Filter: keeps the rows for which a predicate is true (NULL counts as false).
//!
//! The predicate's `AND`ed conjuncts are tested one after the other. While most rows
//! still pass, each tests the whole batch and the masks are combined; once at most a
//! quarter pass, the batch is cut to them and the remaining conjuncts test only those
//! (TPC-H q6: the ship date range leaves 15% of `lineitem` for the three tests after it).

use std::sync::Arc;

use arrow::array::{AsArray, BooleanArray, BooleanBufferBuilder, RecordBatch, UInt32Array};
use arrow::buffer::BooleanBuffer;
use arrow::compute::{and, filter_record_batch, take};
use arrow::datatypes::SchemaRef;

use crate::error::Result;
use crate::logical::expr::BinaryOp;
use crate::physical::expr::{to_mask, PhysExpr};
use crate::physical::{Element, ElementStream, ExecNode, Operator, OperatorStream, TaskContext};

/// The plan node.
#[derive(Debug)]
pub struct FilterExec {
    input: Arc<dyn ExecNode>,
    predicate: PhysExpr,
}

impl FilterExec {
    /// Filters `input` by a boolean `predicate` bound to the input schema.
    pub fn new(input: Arc<dyn ExecNode>, predicate: PhysExpr) -> Self {
        Self { input, predicate }
    }
}

impl ExecNode for FilterExec {
    fn name(&self) -> &'static str {
        "FilterExec"
    }
    fn schema(&self) -> SchemaRef {
        self.input.schema()
    }
    fn children(&self) -> Vec<Arc<dyn ExecNode>> {
        vec![self.input.clone()]
    }
    fn output_partitions(&self) -> usize {
        self.input.output_partitions()
    }
    fn execute(&self, partition: usize, ctx: &Arc<TaskContext>) -> Result<ElementStream> {
        let input = self.input.execute(partition, ctx)?;
        Ok(OperatorStream::boxed(
            input,
            FilterOp::new(self.predicate.clone()),
        ))
    }
    fn details(&self) -> String {
        self.predicate.to_string()
    }
    fn as_filter(&self) -> Option<(Arc<dyn ExecNode>, PhysExpr)> {
        Some((self.input.clone(), self.predicate.clone()))
    }
}

/// The operator: stateless, so control elements pass through unchanged.
#[derive(Debug)]
pub struct FilterOp {
    /// The predicate's conjuncts, in order.
    conjuncts: Vec<PhysExpr>,
    /// The predicate as planned, when it calls `CURRENT_WATERMARK`: each watermark binds
    /// it anew.
    template: Option<PhysExpr>,
}

/// Share of a batch's rows at or below which it is cut before the next conjunct.
const CUT_AT: f64 = 0.25;

impl FilterOp {
    /// Keeps the rows for which `predicate` is true.
    pub fn new(predicate: PhysExpr) -> Self {
        let template = predicate.uses_watermark().then(|| predicate.clone());
        Self {
            conjuncts: conjuncts(predicate),
            template,
        }
    }

    /// The rows of `batch` that pass every conjunct; None when none do.
    fn filter(&self, batch: RecordBatch) -> Result<Option<RecordBatch>> {
        Ok(self.select(batch, f64::INFINITY)?.map(|(b, _)| b))
    }

    /// The rows of `batch` that pass every conjunct, for an operator that can take a
    /// selection: the batch itself with a mask of them when at least `min_share` of its
    /// rows pass (no copy), else the batch cut to them (no mask). None when none pass.
    pub(crate) fn select(
        &self,
        batch: RecordBatch,
        min_share: f64,
    ) -> Result<Option<(RecordBatch, Option<BooleanArray>)>> {
        let rows = batch.num_rows();
        let Some(n) = self.narrow(batch, false)? else {
            return Ok(None);
        };
        Ok(Some(match n.passing {
            // Not cut before the last conjunct, and enough pass: no copy.
            Some(m)
                if n.batch.num_rows() == rows
                    && m.true_count() as f64 >= min_share * rows as f64 =>
            {
                (n.batch, Some(m))
            }
            Some(m) => (filter_record_batch(&n.batch, &m)?, None),
            None => (n.batch, None),
        }))
    }

    /// Which rows of `batch` pass every conjunct (NULL counts as false).
    pub(crate) fn mask(&self, batch: &RecordBatch) -> Result<BooleanArray> {
        let rows = batch.num_rows();
        let Some(n) = self.narrow(batch.clone(), true)? else {
            return Ok(BooleanArray::new(BooleanBuffer::new_unset(rows), None));
        };
        Ok(match (n.positions, n.passing) {
            (None, Some(m)) => m,
            (None, None) => BooleanArray::new(BooleanBuffer::new_set(rows), None),
            (Some(at), passing) => {
                let mut bits = BooleanBufferBuilder::new(rows);
                bits.append_n(rows, false);
                for (i, &p) in at.values().iter().enumerate() {
                    if passing.as_ref().is_none_or(|m| m.value(i)) {
                        bits.set_bit(p as usize, true);
                    }
                }
                BooleanArray::new(bits.finish(), None)
            }
        })
    }

    /// Tests the conjuncts in order. While most rows still pass, each tests the whole
    /// batch; once at most [`CUT_AT`] of it passes, the batch is cut to those rows
    /// (with their positions in the input, when `track` asks) and the rest test only
    /// them. None when no row passes.
    fn narrow(&self, mut batch: RecordBatch, track: bool) -> Result<Option<Narrowed>> {
        let mut passing: Option<BooleanArray> = None;
        let mut positions: Option<UInt32Array> = None;
        for (i, c) in self.conjuncts.iter().enumerate() {
            let m = to_mask(&c.evaluate_array(&batch)?)?;
            let m = match passing {
                Some(before) => and(&before, &m)?,
                None => m,
            };
            let kept = m.true_count();
            if kept == 0 {
                return Ok(None);
            }
            let more = i + 1 < self.conjuncts.len();
            if kept == batch.num_rows() {
                passing = None;
            } else if more && kept as f64 <= CUT_AT * batch.num_rows() as f64 {
                if track {
                    let at =
                        UInt32Array::from_iter_values(m.values().set_indices().map(|p| p as u32));
                    positions = Some(match positions {
                        Some(before) => take(&before, &at, None)?.as_primitive().clone(),
                        None => at,
                    });
                }
                batch = filter_record_batch(&batch, &m)?;
                passing = None;
            } else {
                passing = Some(m);
            }
        }
        Ok(Some(Narrowed {
            batch,
            positions,
            passing,
        }))
    }
}

/// What [`FilterOp::narrow`] leaves: `batch`'s rows pass where `passing` is true (every
/// row when None); `positions` are their rows in the input, when the batch was cut and
/// they were asked for.
struct Narrowed {
    batch: RecordBatch,
    positions: Option<UInt32Array>,
    passing: Option<BooleanArray>,
}

/// `e`'s top-level `AND` terms, left to right.
fn conjuncts(e: PhysExpr) -> Vec<PhysExpr> {
    match e {
        PhysExpr::Binary(l, BinaryOp::And, r) => {
            let mut out = conjuncts(*l);
            out.extend(conjuncts(*r));
            out
        }
        e => vec![e],
    }
}

impl Operator for FilterOp {
    fn process_batch(&mut self, batch: RecordBatch, out: &mut Vec<Element>) -> Result<()> {
        if batch.num_rows() == 0 {
            return Ok(());
        }
        if let Some(filtered) = self.filter(batch)? {
            out.push(Element::Batch(filtered));
        }
        Ok(())
    }

    fn on_watermark(&mut self, ts: i64, out: &mut Vec<Element>) -> Result<()> {
        if let Some(t) = &self.template {
            self.conjuncts = conjuncts(t.bind_watermark(ts));
        }
        out.push(Element::Watermark(ts));
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use arrow::array::{AsArray, Int64Array};
    use arrow::datatypes::{DataType, Field, Int64Type, Schema};

    fn col(i: usize) -> PhysExpr {
        PhysExpr::Column(i, format!("c{i}"))
    }

    fn lit(v: i64) -> PhysExpr {
        PhysExpr::Literal(Arc::new(Int64Array::from(vec![v])))
    }

    fn cmp(l: PhysExpr, op: BinaryOp, r: PhysExpr) -> PhysExpr {
        PhysExpr::Binary(Box::new(l), op, Box::new(r))
    }

    /// Conjunct by conjunct, cutting the batch or not, the rows kept are those the whole
    /// predicate keeps, in order; NULLs count as false.
    #[test]
    fn conjuncts_keep_exactly_what_the_predicate_keeps() {
        let n = 10_000i64;
        let a = Int64Array::from_iter((0..n).map(|i| (i % 97 != 0).then_some(i % 100)));
        let b = Int64Array::from_iter_values((0..n).map(|i| (i * 37) % 1000));
        let schema = Arc::new(Schema::new(vec![
            Field::new("c0", DataType::Int64, true),
            Field::new("c1", DataType::Int64, false),
        ]));
        let batch = RecordBatch::try_new(schema, vec![Arc::new(a), Arc::new(b)]).expect("batch");
        let and = |l, r| cmp(l, BinaryOp::And, r);
        // a < 90 keeps ~90% (no cut), a < 10 then ~10% (cut), then b >= 500.
        let cut = and(
            and(
                cmp(col(0), BinaryOp::Lt, lit(90)),
                cmp(col(0), BinaryOp::Lt, lit(10)),
            ),
            cmp(col(1), BinaryOp::GtEq, lit(500)),
        );
        // b >= 500 keeps half, a > 50 about half of those: never cut.
        let uncut = and(
            cmp(col(1), BinaryOp::GtEq, lit(500)),
            cmp(col(0), BinaryOp::Gt, lit(50)),
        );
        for predicate in [cut, uncut] {
            let whole = to_mask(&predicate.evaluate_array(&batch).expect("eval")).expect("mask");
            let want = filter_record_batch(&batch, &whole).expect("filter");
            let op = FilterOp::new(predicate);
            assert!(op.conjuncts.len() >= 2);
            let got = op.filter(batch.clone()).expect("filter").expect("rows");
            assert!(got.num_rows() > 0 && got.num_rows() < batch.num_rows());
            assert_eq!(got, want);
            // The mask, cut or not, is the whole predicate's (its NULLs false).
            let whole = BooleanArray::from_iter(whole.iter().map(|v| Some(v == Some(true))));
            assert_eq!(op.mask(&batch).expect("mask"), whole);
        }
        let none = FilterOp::new(and(
            cmp(col(1), BinaryOp::Lt, lit(0)),
            cmp(col(0), BinaryOp::Lt, lit(10)),
        ));
        assert!(none.filter(batch.clone()).expect("filter").is_none());
        let m = none.mask(&batch).expect("mask");
        assert_eq!((m.len(), m.true_count()), (batch.num_rows(), 0));
        let all = FilterOp::new(cmp(col(1), BinaryOp::GtEq, lit(0)));
        let m = all.mask(&batch).expect("mask");
        assert_eq!(m.true_count(), batch.num_rows());
        let got = all.filter(batch.clone()).expect("filter").expect("rows");
        assert_eq!(
            got.column(1).as_primitive::<Int64Type>().values(),
            batch.column(1).as_primitive::<Int64Type>().values()
        );
    }
}
