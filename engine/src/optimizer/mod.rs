//! Logical optimizer: a fixed sequence of rewrites.
//!
//! 1. `pushdown`: filters move toward the scans (an outer join under a filter that drops
//!    its NULL-extended rows becomes inner, `outer_join`); inner-join trees are flattened and
//!    rebuilt (`join_order`): inputs that a small filtered input cuts down join it first,
//!    then the rest greedily so every join has keys where possible (no accidental cross
//!    products from comma-separated FROM lists) and small/filtered inputs join first.
//! 2. `prune`: scans read, and joins output, only the columns someone uses.
//! 3. top-k: `LIMIT` over `ORDER BY` becomes a sort that keeps only `fetch` rows.

pub mod estimate;
pub mod join_order;
pub mod outer_join;
pub mod prune;
pub mod pushdown;
pub mod repeated;

use std::sync::Arc;

use crate::error::Result;
use crate::logical::plan::LogicalPlan;

/// Optimizes `plan`; the result computes the same rows with the same schema.
pub fn optimize(plan: Arc<LogicalPlan>) -> Result<Arc<LogicalPlan>> {
    let plan = pushdown::push_down_filters(plan)?;
    let plan = prune::prune_columns(plan)?;
    limit_into_sort(plan)
}

fn limit_into_sort(plan: Arc<LogicalPlan>) -> Result<Arc<LogicalPlan>> {
    let inputs = plan
        .inputs()
        .into_iter()
        .map(|i| limit_into_sort(i.clone()))
        .collect::<Result<Vec<_>>>()?;
    let plan = Arc::new(plan.with_inputs(inputs)?);
    if let LogicalPlan::Limit {
        input,
        skip,
        fetch: Some(f),
    } = plan.as_ref()
    {
        if let LogicalPlan::Sort {
            input: si,
            order_by,
            fetch,
        } = input.as_ref()
        {
            let k = skip + f;
            let fetch = Some(fetch.map_or(k, |x| x.min(k)));
            return Ok(Arc::new(LogicalPlan::Limit {
                input: Arc::new(LogicalPlan::Sort {
                    input: si.clone(),
                    order_by: order_by.clone(),
                    fetch,
                }),
                skip: *skip,
                fetch: Some(*f),
            }));
        }
    }
    Ok(plan)
}
