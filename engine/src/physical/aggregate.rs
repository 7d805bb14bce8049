//! Hash aggregation in three modes: `Partial` (raw rows → per-group partial states),
//! `Final` (partial states → results, after a hash exchange on the group keys) and
//! `Complete` (raw rows → results in one phase; used for DISTINCT aggregates).
//!
//! Groups are found through Arrow's row format (any key types, one byte string per key)
//! and a chained hash table over the shared key hashes.

use std::collections::HashMap;
use std::sync::Arc;

use arrow::array::{ArrayRef, RecordBatch, RecordBatchOptions};
use arrow::datatypes::{DataType, SchemaRef};
use arrow::row::{RowConverter, Rows, SortField};

use crate::error::Result;
use crate::logical::expr::AggFunc;
use crate::physical::accumulator::{create_accumulator, Accumulator};
use crate::physical::expr::PhysExpr;
use crate::physical::hash::{hash_columns, IdentityBuild};
use crate::physical::{Element, ElementStream, ExecNode, Operator, OperatorStream, TaskContext};

/// Which phase an aggregation runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AggMode {
    /// Raw rows in, partial states out.
    Partial,
    /// Partial states in, final values out.
    Final,
    /// Raw rows in, final values out.
    Complete,
}

/// One aggregate call.
#[derive(Debug, Clone)]
pub struct AggSpec {
    /// The function.
    pub func: AggFunc,
    /// DISTINCT.
    pub distinct: bool,
    /// Arguments over the input (Partial/Complete) or state column positions (Final).
    pub args: Vec<PhysExpr>,
    /// Type of the (first) argument over the raw input.
    pub input_type: Option<DataType>,
}

/// The plan node.
#[derive(Debug)]
pub struct AggregateExec {
    input: Arc<dyn ExecNode>,
    mode: AggMode,
    group_exprs: Vec<PhysExpr>,
    aggs: Vec<AggSpec>,
    schema: SchemaRef,
}

impl AggregateExec {
    /// Aggregates `input`, producing `schema` (group columns, then one column per state
    /// (Partial) or per aggregate (Final/Complete)).
    pub fn new(
        input: Arc<dyn ExecNode>,
        mode: AggMode,
        group_exprs: Vec<PhysExpr>,
        aggs: Vec<AggSpec>,
        schema: SchemaRef,
    ) -> Self {
        Self {
            input,
            mode,
            group_exprs,
            aggs,
            schema,
        }
    }
}

impl ExecNode for AggregateExec {
    fn name(&self) -> &'static str {
        "AggregateExec"
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
        let key_types = self
            .group_exprs
            .iter()
            .map(|e| e.data_type(&self.input.schema()))
            .collect::<Result<Vec<_>>>()?;
        let accs = self
            .aggs
            .iter()
            .map(|a| create_accumulator(a.func, a.distinct, a.input_type.as_ref()))
            .collect::<Result<Vec<_>>>()?;
        let op = AggregateOp {
            mode: self.mode,
            group_exprs: self.group_exprs.clone(),
            aggs: self.aggs.clone(),
            accs,
            groups: GroupTable::try_new(key_types)?,
            schema: self.schema.clone(),
            batch_size: ctx.config.batch_size,
            group_ids: vec![],
        };
        Ok(OperatorStream::boxed(input, op))
    }
    fn details(&self) -> String {
        let g: Vec<String> = self.group_exprs.iter().map(ToString::to_string).collect();
        let a: Vec<String> = self
            .aggs
            .iter()
            .map(|a| {
                let args: Vec<String> = a.args.iter().map(ToString::to_string).collect();
                format!(
                    "{}({}{})",
                    a.func,
                    if a.distinct { "DISTINCT " } else { "" },
                    args.join(", ")
                )
            })
            .collect();
        format!(
            "mode={:?}, gby=[{}], aggr=[{}]",
            self.mode,
            g.join(", "),
            a.join(", ")
        )
    }
}

/// Maps group keys to dense group ids.
struct GroupTable {
    conv: Option<RowConverter>,
    rows: Option<Rows>,
    heads: HashMap<u64, u32, IdentityBuild>,
    next: Vec<u32>,
    num_groups: usize,
}

const NONE: u32 = u32::MAX;

impl GroupTable {
    fn try_new(key_types: Vec<DataType>) -> Result<Self> {
        let conv = if key_types.is_empty() {
            None
        } else {
            Some(RowConverter::new(
                key_types.into_iter().map(SortField::new).collect(),
            )?)
        };
        let rows = conv.as_ref().map(|c| c.empty_rows(0, 0));
        // Without keys there is exactly one group, even over empty input.
        let num_groups = usize::from(conv.is_none());
        Ok(Self {
            conv,
            rows,
            heads: HashMap::with_hasher(IdentityBuild::default()),
            next: vec![],
            num_groups,
        })
    }

    fn assign(&mut self, keys: &[ArrayRef], n: usize, out: &mut Vec<u32>) -> Result<()> {
        out.clear();
        let (Some(conv), Some(stored)) = (&self.conv, &mut self.rows) else {
            out.resize(n, 0);
            return Ok(());
        };
        let rows = conv.convert_columns(keys)?;
        let hashes = hash_columns(keys, n)?;
        for (i, h) in hashes.iter().enumerate() {
            let r = rows.row(i);
            let mut g = self.heads.get(h).copied().unwrap_or(NONE);
            while g != NONE && stored.row(g as usize) != r {
                g = self.next[g as usize];
            }
            if g == NONE {
                g = self.num_groups as u32;
                stored.push(r);
                let head = self.heads.entry(*h).or_insert(NONE);
                self.next.push(*head);
                *head = g;
                self.num_groups += 1;
            }
            out.push(g);
        }
        Ok(())
    }

    fn keys(&mut self) -> Result<Vec<ArrayRef>> {
        match (&self.conv, &self.rows) {
            (Some(c), Some(r)) => Ok(c.convert_rows(r)?),
            _ => Ok(vec![]),
        }
    }
}

struct AggregateOp {
    mode: AggMode,
    group_exprs: Vec<PhysExpr>,
    aggs: Vec<AggSpec>,
    accs: Vec<Box<dyn Accumulator>>,
    groups: GroupTable,
    schema: SchemaRef,
    batch_size: usize,
    group_ids: Vec<u32>,
}

impl Operator for AggregateOp {
    fn process_batch(&mut self, batch: RecordBatch, _out: &mut Vec<Element>) -> Result<()> {
        let n = batch.num_rows();
        let keys = self
            .group_exprs
            .iter()
            .map(|e| e.evaluate_array(&batch))
            .collect::<Result<Vec<_>>>()?;
        let mut ids = std::mem::take(&mut self.group_ids);
        self.groups.assign(&keys, n, &mut ids)?;
        let ng = self.groups.num_groups;
        for (spec, acc) in self.aggs.iter().zip(self.accs.iter_mut()) {
            let vals = spec
                .args
                .iter()
                .map(|e| e.evaluate_array(&batch))
                .collect::<Result<Vec<_>>>()?;
            if self.mode == AggMode::Final {
                acc.merge(&vals, &ids, ng)?;
            } else {
                acc.update(&vals, &ids, ng)?;
            }
        }
        self.group_ids = ids;
        Ok(())
    }

    fn on_end(&mut self, out: &mut Vec<Element>) -> Result<()> {
        let ng = self.groups.num_groups;
        let mut cols = self.groups.keys()?;
        for acc in &mut self.accs {
            if self.mode == AggMode::Partial {
                cols.extend(acc.state(ng)?);
            } else {
                cols.push(acc.evaluate(ng)?);
            }
        }
        let cols = cols
            .into_iter()
            .zip(self.schema.fields())
            .map(|(c, f)| {
                if c.data_type() == f.data_type() {
                    Ok(c)
                } else {
                    Ok(arrow::compute::cast(&c, f.data_type())?)
                }
            })
            .collect::<Result<Vec<_>>>()?;
        let opts = RecordBatchOptions::new().with_row_count(Some(ng));
        let batch = RecordBatch::try_new_with_options(self.schema.clone(), cols, &opts)?;
        let mut off = 0;
        while off < ng {
            let len = self.batch_size.min(ng - off);
            out.push(Element::Batch(batch.slice(off, len)));
            off += len;
        }
        Ok(())
    }
}
