//! The updating aggregation: a GROUP BY without window columns over a stream. Its result
//! for a key changes whenever a row for that key arrives, so it emits a [changelog]
//! (`op` last): `+I` for a key's first row, then `-U` (the previous result) and `+U` (the
//! new one) on each change; a change that leaves the result as it was emits nothing (as
//! Flink's group aggregate does). Each key's merged partial state is a `sluice-state` value
//! (key = the arrow-row encoded group keys); the input arrives partitioned by key group.
//! Each batch is pre-aggregated first, so a key is revised once per batch, not per row.
//!
//! Over a changelog input (a GROUP BY over a GROUP BY) its `-U`/`-D` rows are subtracted
//! ([`super::retract`]), and a key left with no rows is deleted: `-D` with its last result.
//!
//! [changelog]: super::changelog

use std::collections::HashMap;
use std::sync::Arc;

use arrow::array::{ArrayRef, AsArray, BooleanArray, RecordBatch, UInt32Array};
use arrow::compute::kernels::cmp::not_distinct;
use arrow::compute::{and, filter_record_batch, interleave_record_batch, not, take};
use arrow::datatypes::SchemaRef;
use arrow::row::RowConverter;
use sluice_state::{MemoryStateBackend, StateDescriptor, ValueState, VOID_NAMESPACE};

use super::changelog::{op_column, RowKind};
use super::partial::{row_of, AggCalls, PartialRow};
use super::retract::Retraction;
use super::TtlClock;
use super::{key_converter, operator_backend};
use crate::error::Result;
use crate::physical::aggregate::AggSpec;
use crate::physical::expr::PhysExpr;
use crate::physical::{
    cast_to_schema, Element, ElementStream, ExecNode, Operator, OperatorStream, TaskContext,
};

/// The plan node.
#[derive(Debug)]
pub struct GroupAggregateExec {
    input: Arc<dyn ExecNode>,
    group_exprs: Vec<PhysExpr>,
    aggs: AggCalls,
    /// Set when the input is a changelog (its `op` column last).
    retraction: Option<Retraction>,
    /// `table.exec.state.ttl`: a key's state expires this long after its last update.
    ttl: Option<std::time::Duration>,
    /// The aggregate's columns (group keys, then aggregates) followed by `op`.
    schema: SchemaRef,
}

impl GroupAggregateExec {
    /// Aggregates `input` (partitioned by the key groups of `group_exprs`); `schema` is the
    /// changelog's (the aggregate's columns, then `op`). With `changelog_input`, `input`
    /// is a changelog whose retractions are taken back (COUNT, SUM and AVG only).
    pub fn try_new(
        input: Arc<dyn ExecNode>,
        group_exprs: Vec<PhysExpr>,
        aggs: Vec<AggSpec>,
        schema: SchemaRef,
        changelog_input: bool,
    ) -> Result<Self> {
        let (aggs, retraction) = if changelog_input {
            let (extended, r) = Retraction::extend(aggs)?;
            (extended, Some(r))
        } else {
            (aggs, None)
        };
        Ok(Self {
            input,
            group_exprs,
            aggs: AggCalls::try_new(aggs)?,
            retraction,
            ttl: None,
            schema,
        })
    }

    /// Lets a key's state expire `ttl` (wall clock) after its last update: its next row
    /// starts it over (`+I`), as Flink's state TTL does; `None` keeps it forever.
    pub fn with_state_ttl(mut self, ttl: Option<std::time::Duration>) -> Self {
        self.ttl = ttl;
        self
    }
}

impl ExecNode for GroupAggregateExec {
    fn name(&self) -> &'static str {
        "GroupAggregateExec"
    }
    fn schema(&self) -> SchemaRef {
        self.schema.clone()
    }
    fn children(&self) -> Vec<Arc<dyn ExecNode>> {
        vec![self.input.clone()]
    }
    fn output_partitions(&self) -> usize {
        self.input.output_partitions()
    }
    fn execute(&self, partition: usize, ctx: &Arc<TaskContext>) -> Result<ElementStream> {
        let input = self.input.execute(partition, ctx)?;
        let op = self.operator(partition)?;
        Ok(OperatorStream::boxed(input, op))
    }
    fn details(&self) -> String {
        let g: Vec<String> = self.group_exprs.iter().map(ToString::to_string).collect();
        let a: Vec<String> = self
            .aggs
            .specs()
            .iter()
            .map(|a| a.func.to_string())
            .collect();
        format!(
            "group=[{}], aggs=[{}], changelog{}",
            g.join(", "),
            a.join(", "),
            if self.retraction.is_some() {
                ", retracting"
            } else {
                ""
            }
        )
    }
}

impl GroupAggregateExec {
    /// The operator of instance `partition`, with empty state.
    fn operator(&self, partition: usize) -> Result<GroupAggOp> {
        let in_schema = self.input.schema();
        let converter = key_converter(&self.group_exprs, &in_schema)?;
        let mut backend = operator_backend(self.output_partitions(), partition)?;
        let clock = TtlClock::new(self.ttl);
        let mut desc = StateDescriptor::new("accumulators");
        if let Some(ms) = clock.ttl_ms() {
            desc = desc.with_ttl_ms(ms);
        }
        let accs = backend.register_value::<PartialRow>(&desc)?;
        let op = GroupAggOp {
            group_exprs: self.group_exprs.clone(),
            converter,
            aggs: self.aggs.clone(),
            retraction: self.retraction.clone(),
            schema: self.schema.clone(),
            backend,
            accs,
            clock,
        };
        Ok(op)
    }
}

struct GroupAggOp {
    group_exprs: Vec<PhysExpr>,
    converter: RowConverter,
    aggs: AggCalls,
    retraction: Option<Retraction>,
    schema: SchemaRef,
    backend: MemoryStateBackend,
    /// Each key's merged partial state.
    accs: ValueState<PartialRow>,
    clock: TtlClock,
}

impl GroupAggOp {
    /// Rows of kind `kind`: the group keys of `key_cols` at `rows`, then `values`.
    fn rows(
        &self,
        key_cols: &[ArrayRef],
        rows: &[u32],
        values: Vec<ArrayRef>,
        kinds: impl IntoIterator<Item = RowKind>,
    ) -> Result<RecordBatch> {
        let idx = UInt32Array::from(rows.to_vec());
        let mut cols = key_cols
            .iter()
            .map(|c| Ok(take(c, &idx, None)?))
            .collect::<Result<Vec<_>>>()?;
        cols.extend(values);
        cols.push(op_column(kinds));
        cast_to_schema(&self.schema, cols, rows.len())
    }
}

/// Which of `before`'s rows equal the matching row of `after` (NULLs equal), every
/// column compared.
fn unchanged(before: &[ArrayRef], after: &[ArrayRef]) -> Result<Option<BooleanArray>> {
    let mut same: Option<BooleanArray> = None;
    for (b, a) in before.iter().zip(after) {
        let eq = not_distinct(b, a)?;
        same = Some(match same {
            Some(s) => and(&s, &eq)?,
            None => eq,
        });
    }
    Ok(same)
}

impl Operator for GroupAggOp {
    fn process_batch(&mut self, batch: RecordBatch, out: &mut Vec<Element>) -> Result<()> {
        let n = batch.num_rows();
        if n == 0 {
            return Ok(());
        }
        self.clock.tick(&mut self.backend);
        let key_cols = self
            .group_exprs
            .iter()
            .map(|e| e.evaluate_array(&batch))
            .collect::<Result<Vec<_>>>()?;
        let encoded = (!key_cols.is_empty())
            .then(|| self.converter.convert_columns(&key_cols))
            .transpose()?;
        let key_of = |i: usize| -> &[u8] { encoded.as_ref().map_or(&[], |r| r.row(i).data()) };
        // One group per key in this batch.
        let mut index: HashMap<&[u8], u32, ahash::RandomState> = HashMap::default();
        let mut firsts: Vec<u32> = Vec::new();
        let mut ids = Vec::with_capacity(n);
        for i in 0..n {
            let next = firsts.len() as u32;
            ids.push(*index.entry(key_of(i)).or_insert_with(|| {
                firsts.push(i as u32);
                next
            }));
        }
        let ng = firsts.len();
        let slot = |g: usize| (key_of(firsts[g] as usize), VOID_NAMESPACE);
        // The keys seen before: their state merged in, and their old results.
        let (old_groups, old_states, states, emptied) = match &self.retraction {
            None => {
                let mut accs = self.aggs.update(&batch, &ids, ng)?;
                let (old_groups, old_states) =
                    self.aggs
                        .merge_stored(&mut accs, ng, &self.backend, &self.accs, slot)?;
                let states = self
                    .aggs
                    .store(&mut accs, ng, &mut self.backend, &self.accs, slot)?;
                (old_groups, old_states, states, None)
            }
            Some(r) => {
                let ops = batch.column(batch.num_columns() - 1).as_string::<i32>();
                let adds: BooleanArray = ops
                    .iter()
                    .map(|o| Some(matches!(o, Some("+I" | "+U"))))
                    .collect();
                let part = |mask: &BooleanArray| -> Result<_> {
                    let rows = filter_record_batch(&batch, mask)?;
                    let groups: Vec<u32> =
                        (0..n).filter(|&i| mask.value(i)).map(|i| ids[i]).collect();
                    self.aggs.update(&rows, &groups, ng)
                };
                let mut accs = part(&adds)?;
                let mut retracted = part(&not(&adds)?)?;
                let (old_groups, old_states) =
                    self.aggs
                        .merge_stored(&mut accs, ng, &self.backend, &self.accs, slot)?;
                let merged = self.aggs.states(&mut accs, ng)?;
                let states = r.subtract(&merged, &self.aggs.states(&mut retracted, ng)?)?;
                let emptied = r.emptied(&states)?;
                for g in 0..ng {
                    let (key, ns) = slot(g);
                    if emptied.value(g) {
                        self.accs.clear(&mut self.backend, key, ns)?;
                    } else {
                        self.accs
                            .update(&mut self.backend, key, ns, row_of(&states, g))?;
                    }
                }
                (old_groups, old_states, states, Some(emptied))
            }
        };
        let visible = |v: Vec<ArrayRef>| match &self.retraction {
            Some(r) => r.visible(v),
            None => v,
        };
        let n_old = old_groups.len();
        let old_values = visible(self.aggs.values_of(&old_states, n_old)?);
        let new_values = visible(self.aggs.values_of(&states, ng)?);
        let deleted = |g: usize| emptied.as_ref().is_some_and(|e| e.value(g));
        // -U/+U pairs for changed keys (unchanged ones emit nothing), +I for new keys, -D
        // for keys left without rows.
        let old_idx = UInt32Array::from(old_groups.clone());
        let after_of_old = new_values
            .iter()
            .map(|v| Ok(take(v, &old_idx, None)?))
            .collect::<Result<Vec<_>>>()?;
        let same = unchanged(&old_values, &after_of_old)?;
        let mut had_old = vec![None; ng];
        for (j, &g) in old_groups.iter().enumerate() {
            had_old[g as usize] = Some(j);
        }
        let mut order: Vec<(usize, usize)> = Vec::with_capacity(ng + n_old);
        for (g, old) in had_old.iter().enumerate() {
            match old {
                Some(j) if deleted(g) => order.push((0, *j)),
                None if deleted(g) => {}
                Some(j) if same.as_ref().is_some_and(|s| s.value(*j)) => {}
                Some(j) => order.extend([(0, *j), (1, g)]),
                None => order.push((1, g)),
            }
        }
        if order.is_empty() {
            return Ok(());
        }
        let old_firsts: Vec<u32> = old_groups.iter().map(|&g| firsts[g as usize]).collect();
        let before_kinds = old_groups.iter().map(|&g| match deleted(g as usize) {
            true => RowKind::Delete,
            false => RowKind::UpdateBefore,
        });
        let before = self.rows(&key_cols, &old_firsts, old_values, before_kinds)?;
        let after_kinds = had_old.iter().map(|o| match o {
            Some(_) => RowKind::UpdateAfter,
            None => RowKind::Insert,
        });
        let after = self.rows(&key_cols, &firsts, new_values, after_kinds)?;
        out.push(Element::Batch(interleave_record_batch(
            &[&before, &after],
            &order,
        )?));
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::logical::expr::AggFunc;
    use crate::physical::scan::MemoryExec;
    use arrow::array::{AsArray, Int64Array};
    use arrow::datatypes::{DataType, Field, Schema};

    #[test]
    fn a_key_whose_state_expired_starts_over_with_an_insert() {
        let schema = Arc::new(Schema::new(vec![Field::new("k", DataType::Int64, true)]));
        let input = Arc::new(MemoryExec::try_new(schema.clone(), &[], None, 1, 10).expect("in"));
        let out_schema = super::super::changelog::with_op_last(&Schema::new(vec![
            Field::new("k", DataType::Int64, true),
            Field::new("n", DataType::Int64, true),
        ]));
        let count = AggSpec {
            func: AggFunc::Count,
            distinct: false,
            args: vec![],
            input_type: None,
        };
        let exec = GroupAggregateExec::try_new(
            input,
            vec![PhysExpr::Column(0, "k".into())],
            vec![count],
            out_schema,
            false,
        )
        .expect("exec")
        .with_state_ttl(Some(std::time::Duration::from_millis(30)));
        let mut op = exec.operator(0).expect("operator");
        let mut run = |keys: Vec<i64>| {
            let b = RecordBatch::try_new(schema.clone(), vec![Arc::new(Int64Array::from(keys))])
                .expect("batch");
            let mut out = Vec::new();
            op.process_batch(b, &mut out).expect("process");
            let mut rows = Vec::new();
            for e in out {
                let Element::Batch(b) = e else { continue };
                let n = b.column(1).as_primitive::<arrow::datatypes::Int64Type>();
                let ops = b.column(2).as_string::<i32>();
                for i in 0..b.num_rows() {
                    rows.push(format!("{} {}", ops.value(i), n.value(i)));
                }
            }
            rows
        };
        assert_eq!(run(vec![1, 1]), ["+I 2"]);
        assert_eq!(run(vec![1]), ["-U 2", "+U 3"]);
        std::thread::sleep(std::time::Duration::from_millis(80));
        assert_eq!(run(vec![1]), ["+I 1"], "the expired count starts over");
    }
}
