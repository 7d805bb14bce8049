//! Column pruning: each node asks its inputs only for the columns it uses, so scans read
//! only what the query needs, and a join's keys and filter columns stop at the join (a
//! column projection over it, which the physical join takes as its output projection).

use std::collections::HashMap;
use std::sync::Arc;

use crate::error::{Result, SluiceError};
use crate::logical::expr::{Column, Expr};
use crate::logical::plan::LogicalPlan;
use crate::logical::schema::PlanSchema;
use crate::optimizer::repeated::{fits, repeated_joins, subtree_key, ShareKey};

/// Prunes unused columns below the root (the root keeps its schema). A join that occurs
/// more than once outputs the union of the columns its occurrences need, when that
/// keeps it small enough to compute once (see `repeated`): a first pass gathers the
/// union, a second applies it.
pub fn prune_columns(plan: Arc<LogicalPlan>) -> Result<Arc<LogicalPlan>> {
    let all: Vec<Column> = plan.schema().fields().iter().map(|f| f.column()).collect();
    let mut pruner = Pruner {
        widen: repeated_joins(&plan)
            .into_keys()
            .map(|k| (k, Vec::new()))
            .collect(),
        gathering: true,
    };
    let pruned = pruner.prune(&plan, &all)?;
    if pruner.widen.is_empty() {
        return Ok(pruned);
    }
    pruner.gathering = false;
    pruner.prune(&plan, &all)
}

/// Column pruning's state: the repeated joins and the columns their occurrences need.
struct Pruner {
    widen: HashMap<ShareKey, Vec<Column>>,
    /// True in the first pass, which gathers the union of needed columns.
    gathering: bool,
}

fn add_cols(e: &Expr, out: &mut Vec<Column>) {
    for c in e.columns() {
        if !out.contains(&c) {
            out.push(c);
        }
    }
}

/// True when field `i` of `schema` is among `required` (resolving unqualified names too).
fn is_required(schema: &PlanSchema, i: usize, required: &[Column]) -> bool {
    required.iter().any(|c| {
        matches!(schema.find(c), Ok(Some(j)) if j == i)
            || schema.find(c).is_err() && c.name == *schema.field(i).field.name()
    })
}

/// `join` under a projection onto the columns its parent requires, when it outputs
/// others (keys and filter columns used only by the join itself): the physical join
/// then never gathers them (see `HashJoinExec`'s output projection).
fn drop_join_only_columns(join: Arc<LogicalPlan>, required: &[Column]) -> Result<Arc<LogicalPlan>> {
    let schema = join.schema();
    let mut keep: Vec<usize> = (0..schema.len())
        .filter(|&i| is_required(schema, i, required))
        .collect();
    if keep.len() == schema.len() {
        return Ok(join);
    }
    if keep.is_empty() {
        keep.push(0); // COUNT(*) over a join still needs its row count
    }
    let columns: Vec<Column> = keep.iter().map(|&i| schema.field(i).column()).collect();
    // A name both sides carry unqualified cannot be selected by name: keep every column.
    let resolvable = columns
        .iter()
        .zip(&keep)
        .all(|(c, &i)| matches!(schema.find(c), Ok(Some(j)) if j == i));
    if !resolvable {
        return Ok(join);
    }
    let exprs = columns.into_iter().map(Expr::Column).collect();
    Ok(Arc::new(LogicalPlan::project(join, exprs)?))
}

impl Pruner {
    fn prune(&mut self, plan: &Arc<LogicalPlan>, required: &[Column]) -> Result<Arc<LogicalPlan>> {
        Ok(match plan.as_ref() {
            LogicalPlan::Scan {
                table,
                source,
                projection,
                filters,
                schema,
            } => {
                let table_schema = source.schema();
                let current: Vec<usize> = projection
                    .clone()
                    .unwrap_or_else(|| (0..table_schema.fields().len()).collect());
                let mut keep: Vec<usize> = (0..schema.len())
                    .filter(|&i| is_required(schema, i, required))
                    .map(|i| current[i])
                    .collect();
                if keep.is_empty() {
                    keep.push(current.first().copied().unwrap_or(0));
                }
                keep.sort_unstable();
                keep.dedup();
                let qualifier = schema.fields().first().and_then(|f| f.qualifier.clone());
                let fields = keep
                    .iter()
                    .map(|&i| crate::logical::schema::QField {
                        qualifier: qualifier.clone().or_else(|| Some(table.clone())),
                        field: Arc::new(table_schema.field(i).clone()),
                    })
                    .collect();
                Arc::new(LogicalPlan::Scan {
                    table: table.clone(),
                    source: source.clone(),
                    projection: Some(keep),
                    filters: filters.clone(),
                    schema: PlanSchema::new(fields),
                })
            }
            LogicalPlan::Projection {
                input,
                exprs,
                schema,
            } => {
                let kept: Vec<Expr> = exprs
                    .iter()
                    .enumerate()
                    .filter(|(i, _)| is_required(schema, *i, required))
                    .map(|(_, e)| e.clone())
                    .collect();
                let kept = if kept.is_empty() {
                    exprs[..1.min(exprs.len())].to_vec()
                } else {
                    kept
                };
                let mut need = Vec::new();
                for e in &kept {
                    add_cols(e, &mut need);
                }
                Arc::new(LogicalPlan::project(self.prune(input, &need)?, kept)?)
            }
            LogicalPlan::Filter { input, predicate } => {
                let mut need = required.to_vec();
                add_cols(predicate, &mut need);
                Arc::new(LogicalPlan::Filter {
                    input: self.prune(input, &need)?,
                    predicate: predicate.clone(),
                })
            }
            LogicalPlan::Sort {
                input,
                order_by,
                fetch,
            } => {
                let mut need = required.to_vec();
                for s in order_by {
                    add_cols(&s.expr, &mut need);
                }
                Arc::new(LogicalPlan::Sort {
                    input: self.prune(input, &need)?,
                    order_by: order_by.clone(),
                    fetch: *fetch,
                })
            }
            LogicalPlan::Limit { input, skip, fetch } => Arc::new(LogicalPlan::Limit {
                input: self.prune(input, required)?,
                skip: *skip,
                fetch: *fetch,
            }),
            LogicalPlan::Aggregate {
                input,
                group_by,
                aggs,
                ..
            } => {
                let mut need = Vec::new();
                for e in group_by.iter().chain(aggs) {
                    add_cols(e, &mut need);
                }
                Arc::new(LogicalPlan::aggregate(
                    self.prune(input, &need)?,
                    group_by.clone(),
                    aggs.clone(),
                )?)
            }
            LogicalPlan::Join { .. } => self.repeated_join(plan, required)?,
            LogicalPlan::Alias {
                input,
                alias,
                schema,
            } => {
                let inner = input.schema();
                let need: Vec<Column> = (0..schema.len())
                    .filter(|&i| is_required(schema, i, required))
                    .map(|i| inner.field(i).column())
                    .collect();
                Arc::new(LogicalPlan::alias(self.prune(input, &need)?, alias))
            }
            LogicalPlan::Window { input, exprs, .. } => {
                let mut need: Vec<Column> = required
                    .iter()
                    .filter(|c| matches!(input.schema().find(c), Ok(Some(_))))
                    .cloned()
                    .collect();
                for e in exprs {
                    add_cols(e, &mut need);
                }
                Arc::new(LogicalPlan::window(
                    self.prune(input, &need)?,
                    exprs.clone(),
                )?)
            }
            LogicalPlan::Union { inputs, schema } => {
                // Positional: every input keeps all its columns.
                let mut new_inputs = Vec::new();
                for i in inputs {
                    let all: Vec<Column> = i.schema().fields().iter().map(|f| f.column()).collect();
                    new_inputs.push(self.prune(i, &all)?);
                }
                Arc::new(LogicalPlan::Union {
                    inputs: new_inputs,
                    schema: schema.clone(),
                })
            }
            LogicalPlan::Watermark { input, .. } | LogicalPlan::WindowTvf { input, .. } => {
                // These refer to input columns by position: the input keeps all of them.
                let all: Vec<Column> = input.schema().fields().iter().map(|f| f.column()).collect();
                Arc::new(plan.with_inputs(vec![self.prune(input, &all)?])?)
            }
            LogicalPlan::Empty { .. } | LogicalPlan::Values { .. } => plan.clone(),
        })
    }

    /// Prunes the join `plan` to `required`, widened to the union of what every
    /// occurrence needs when it is a repeated join and that union keeps it small.
    fn repeated_join(
        &mut self,
        plan: &Arc<LogicalPlan>,
        required: &[Column],
    ) -> Result<Arc<LogicalPlan>> {
        let key = (!self.widen.is_empty())
            .then(|| subtree_key(plan))
            .flatten()
            .filter(|k| self.widen.contains_key(k));
        if let Some(key) = key {
            let mut wide = self.widen[&key].clone();
            for c in required {
                if !wide.contains(c) {
                    wide.push(c.clone());
                }
            }
            if self.gathering {
                self.widen.insert(key, wide);
            } else {
                let joined = self.join(plan, &wide)?;
                if fits(&joined) {
                    return Ok(joined);
                }
            }
        }
        self.join(plan, required)
    }

    /// Prunes the join `plan`'s inputs to the columns `required` of it and its keys and
    /// filter read.
    fn join(&mut self, plan: &Arc<LogicalPlan>, required: &[Column]) -> Result<Arc<LogicalPlan>> {
        let LogicalPlan::Join {
            left,
            right,
            join_type,
            on,
            filter,
            null_aware,
            ..
        } = plan.as_ref()
        else {
            return Err(SluiceError::plan("internal: a join was expected"));
        };
        let mut need = required.to_vec();
        for (a, b) in on {
            add_cols(a, &mut need);
            add_cols(b, &mut need);
        }
        if let Some(f) = filter {
            add_cols(f, &mut need);
        }
        let side = |s: &PlanSchema| -> Vec<Column> {
            need.iter()
                .filter(|c| matches!(s.find(c), Ok(Some(_))))
                .cloned()
                .collect()
        };
        let (ln, rn) = (side(left.schema()), side(right.schema()));
        let join = Arc::new(LogicalPlan::join(
            self.prune(left, &ln)?,
            self.prune(right, &rn)?,
            *join_type,
            on.clone(),
            filter.clone(),
            *null_aware,
        )?);
        drop_join_only_columns(join, required)
    }
}
