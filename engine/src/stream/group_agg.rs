//! The updating aggregation: a GROUP BY without window columns over a stream. Its result
//! for a key changes whenever a row for that key arrives, so it emits a [changelog]
//! (`op` last): `+I` for a key's first row, then `-U` (the previous result) and `+U` (the
//! new one) on each change; a change that leaves the result as it was emits nothing (as
//! Flink's group aggregate does). Each key's merged partial state is a `sluice-state` value
//! (key = the arrow-row encoded group keys); the input arrives partitioned by key group.
//! Each batch is pre-aggregated first, so a key is revised once per batch, not per row.
//!
//! [changelog]: super::changelog

use std::collections::HashMap;
use std::sync::Arc;

use arrow::array::{ArrayRef, BooleanArray, RecordBatch, UInt32Array};
use arrow::compute::kernels::cmp::not_distinct;
use arrow::compute::{and, interleave_record_batch, take};
use arrow::datatypes::SchemaRef;
use arrow::row::{RowConverter, SortField};
use sluice_state::{MemoryStateBackend, StateDescriptor, ValueState, VOID_NAMESPACE};

use super::changelog::{op_column, RowKind};
use super::exchange::MAX_PARALLELISM;
use super::partial::{AggCalls, PartialRow};
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
    /// The aggregate's columns (group keys, then aggregates) followed by `op`.
    schema: SchemaRef,
}

impl GroupAggregateExec {
    /// Aggregates `input` (partitioned by the key groups of `group_exprs`); `schema` is the
    /// changelog's (the aggregate's columns, then `op`).
    pub fn try_new(
        input: Arc<dyn ExecNode>,
        group_exprs: Vec<PhysExpr>,
        aggs: Vec<AggSpec>,
        schema: SchemaRef,
    ) -> Result<Self> {
        Ok(Self {
            input,
            group_exprs,
            aggs: AggCalls::try_new(aggs)?,
            schema,
        })
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
        let in_schema = self.input.schema();
        let key_fields = self
            .group_exprs
            .iter()
            .map(|k| Ok(SortField::new(k.data_type(&in_schema)?)))
            .collect::<Result<Vec<_>>>()?;
        let mut backend = MemoryStateBackend::for_operator(
            MAX_PARALLELISM,
            self.output_partitions() as u32,
            partition as u32,
        )?;
        let accs = backend.register_value::<PartialRow>(&StateDescriptor::new("accumulators"))?;
        let op = GroupAggOp {
            group_exprs: self.group_exprs.clone(),
            converter: RowConverter::new(key_fields)?,
            aggs: self.aggs.clone(),
            schema: self.schema.clone(),
            backend,
            accs,
        };
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
            "group=[{}], aggs=[{}], changelog",
            g.join(", "),
            a.join(", ")
        )
    }
}

struct GroupAggOp {
    group_exprs: Vec<PhysExpr>,
    converter: RowConverter,
    aggs: AggCalls,
    schema: SchemaRef,
    backend: MemoryStateBackend,
    /// Each key's merged partial state.
    accs: ValueState<PartialRow>,
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
        let mut accs = self.aggs.update(&batch, &ids, ng)?;
        // The keys seen before: their state merged in, and their old results.
        let slot = |g: usize| (key_of(firsts[g] as usize), VOID_NAMESPACE);
        let (old_groups, old_states) =
            self.aggs
                .merge_stored(&mut accs, ng, &self.backend, &self.accs, slot)?;
        let n_old = old_groups.len();
        let old_values = self.aggs.values_of(&old_states, n_old)?;
        let states = self
            .aggs
            .store(&mut accs, ng, &mut self.backend, &self.accs, slot)?;
        let new_values = self.aggs.values_of(&states, ng)?;
        // -U/+U pairs for changed keys (unchanged ones emit nothing), +I for new keys.
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
                Some(j) if same.as_ref().is_some_and(|s| s.value(*j)) => {}
                Some(j) => order.extend([(0, *j), (1, g)]),
                None => order.push((1, g)),
            }
        }
        if order.is_empty() {
            return Ok(());
        }
        let old_firsts: Vec<u32> = old_groups.iter().map(|&g| firsts[g as usize]).collect();
        let before = self.rows(
            &key_cols,
            &old_firsts,
            old_values,
            std::iter::repeat_n(RowKind::UpdateBefore, n_old),
        )?;
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
