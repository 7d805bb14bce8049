//! Subtrees a query computes more than once, found so they are computed once: a CTE used
//! twice (TPC-H q15's `revenue`), or the same join written in a query and in its
//! subquery (q11's `partsupp ⋈ supplier ⋈ nation`). Column pruning reads the union of
//! the columns every occurrence of a repeated join needs, so the pruned occurrences stay
//! equal (`prune`); the physical planner plans each shareable subtree once, under a
//! `SharedExec` that every occurrence reads.

use std::collections::HashMap;

use crate::logical::plan::LogicalPlan;
use crate::optimizer::estimate::estimate_bytes;

/// What makes two logical subtrees the same computation: their rendering (operators,
/// expressions, columns, output types) and the tables their scans read.
pub type ShareKey = (String, Vec<usize>);

/// Largest estimated output worth keeping in memory to compute a subtree once.
pub const MAX_SHARED_BYTES: f64 = 64.0 * 1024.0 * 1024.0;

/// The key of `plan` when it reads only bounded sources (a stream is never kept).
pub fn subtree_key(plan: &LogicalPlan) -> Option<ShareKey> {
    let mut sources = Vec::new();
    let mut bounded = true;
    visit(plan, &mut |p| {
        if let LogicalPlan::Scan { source, .. } = p {
            bounded &= source.is_bounded();
            sources.push(std::sync::Arc::as_ptr(source) as *const () as usize);
        }
    });
    bounded.then(|| {
        (
            format!("{}{:?}", plan.display_indent(), plan.schema()),
            sources,
        )
    })
}

/// True when `plan` is a join, or a column projection right over one.
fn is_join(plan: &LogicalPlan) -> bool {
    match plan {
        LogicalPlan::Join { .. } => true,
        LogicalPlan::Projection { input, .. } => matches!(input.as_ref(), LogicalPlan::Join { .. }),
        _ => false,
    }
}

/// True when `plan`'s estimated output is small enough to keep in memory.
pub fn fits(plan: &LogicalPlan) -> bool {
    estimate_bytes(plan) <= MAX_SHARED_BYTES
}

/// The key of `plan` if it is worth computing once when repeated: a bounded aggregate
/// or join (or a projection over a join) small enough to keep.
pub fn share_key(plan: &LogicalPlan) -> Option<ShareKey> {
    let kind = matches!(plan, LogicalPlan::Aggregate { .. }) || is_join(plan);
    if !kind || !fits(plan) {
        return None;
    }
    subtree_key(plan)
}

/// How many times each subtree with a key from `key` occurs in `plan`; only those
/// occurring more than once.
fn repeated(
    plan: &LogicalPlan,
    key: &dyn Fn(&LogicalPlan) -> Option<ShareKey>,
) -> HashMap<ShareKey, usize> {
    let mut counts: HashMap<ShareKey, usize> = HashMap::new();
    visit(plan, &mut |p| {
        if let Some(k) = key(p) {
            *counts.entry(k).or_default() += 1;
        }
    });
    counts.retain(|_, n| *n > 1);
    counts
}

/// How many times each shareable subtree occurs in `plan`; only those occurring more
/// than once, and not those inside one (computed once with it).
pub fn repeated_subtrees(plan: &LogicalPlan) -> HashMap<ShareKey, usize> {
    let all = repeated(plan, &share_key);
    let mut outermost = HashMap::new();
    count_outermost(plan, &all, &mut outermost);
    outermost.retain(|_, n| *n > 1);
    outermost
}

/// Counts the nodes of `plan` repeated in `all`, without looking inside them.
fn count_outermost(
    plan: &LogicalPlan,
    all: &HashMap<ShareKey, usize>,
    counts: &mut HashMap<ShareKey, usize>,
) {
    if let Some(k) = share_key(plan).filter(|k| all.contains_key(k)) {
        *counts.entry(k).or_default() += 1;
        return;
    }
    for i in plan.inputs() {
        count_outermost(i, all, counts);
    }
}

/// The bounded joins that occur more than once in `plan`, whatever their size (before
/// pruning, their width says little about what they will output).
pub fn repeated_joins(plan: &LogicalPlan) -> HashMap<ShareKey, usize> {
    repeated(plan, &|p| {
        matches!(p, LogicalPlan::Join { .. })
            .then(|| subtree_key(p))
            .flatten()
    })
}

/// Calls `f` on every node of `plan`, parents first.
pub fn visit(plan: &LogicalPlan, f: &mut impl FnMut(&LogicalPlan)) {
    f(plan);
    for i in plan.inputs() {
        visit(i, f);
    }
}
