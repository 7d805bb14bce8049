//! A correlated aggregate subquery over tables the outer query joins too, computed over
//! the outer query's own rows (TPC-H q2 and q17):
//!
//! ```sql
//! SELECT .. FROM part, partsupp, supplier WHERE p_partkey = ps_partkey AND s_suppkey = ps_suppkey
//!   AND p_size = 15 AND ps_supplycost = (SELECT min(ps_supplycost) FROM partsupp, supplier
//!                                        WHERE p_partkey = ps_partkey AND s_suppkey = ps_suppkey)
//! ```
//!
//! Decorrelated the usual way (`subquery`), the subquery is grouped by its correlation key
//! and joined back, and `partsupp ⋈ supplier` is computed twice. Here the outer rows `R`
//! (the FROM list under every WHERE term but the comparison) are computed once: the
//! subquery's value is the aggregate of `R` grouped by the correlation key, joined back to
//! `R`. Both occurrences of `R` are one subtree, so the physical planner computes it once
//! (`optimizer::repeated`).
//!
//! Why the answer is the same. Call the subquery's tables common and the outer query's
//! other tables outer-only. When
//! - every common table appears once in each FROM list, under the same name,
//! - every subquery WHERE term is also an outer WHERE term,
//! - every correlation predicate is `outer = inner`, `outer` over outer-only tables, and
//!   is also an outer WHERE term (with the common tables in the outer query's scope),
//! - every other outer WHERE term reads outer-only tables only,
//!
//! then the rows of `R` with key `k` are `P(k) × C(k)`: the outer-only rows with key `k`
//! times exactly the rows the subquery aggregates for `k`. Each row of `C(k)` appears
//! `|P(k)|` times, which MIN, MAX and AVG do not see; so only those aggregates qualify
//! (`COUNT` and `SUM` would be multiplied). `P(k)` is never empty for a key an outer row
//! has, and the subquery's NULL for an empty `C(k)` only meets outer rows that the
//! correlation term already dropped.

use std::sync::Arc;

use crate::error::Result;
use crate::logical::expr::{conjunction, split_conjunction, AggFunc, Column, Expr};
use crate::logical::plan::{JoinType, LogicalPlan};
use crate::optimizer::repeated::{subtree_key, ShareKey};
use crate::sql::expr::PendingJoin;

/// The WHERE of a SELECT over `from` with the joins its subqueries asked for (`pending`)
/// and its other terms (`kept`), rewritten to compute the outer rows once, when the one
/// subquery qualifies (see the module docs); `None` otherwise.
pub fn rewrite(
    from: &Arc<LogicalPlan>,
    pending: &[PendingJoin],
    kept: &[Expr],
) -> Result<Option<Arc<LogicalPlan>>> {
    let [sub] = pending else {
        return Ok(None);
    };
    let Some(shape) = Subquery::of(sub) else {
        return Ok(None);
    };
    let (Some(outer), Some(inner)) = (scans(from), scans(&shape.from)) else {
        return Ok(None);
    };
    let Some(outer_only) = outer_only(&outer, &inner) else {
        return Ok(None);
    };
    let in_outer_only =
        |e: &Expr| covered(e, &outer_only) && !e.any(&mut |x| matches!(x, Expr::OuterColumn(_)));
    let in_common = |e: &Expr| covered(e, &inner);
    if !shape
        .keys
        .iter()
        .all(|(o, i)| in_outer_only(o) && in_common(i))
    {
        return Ok(None);
    }

    let mut inner_terms_seen = vec![false; shape.terms.len()];
    let mut keys_seen = vec![false; shape.keys.len()];
    let (mut rest, mut compare) = (Vec::new(), Vec::new());
    for t in kept {
        if reads_relation(t, &shape.alias) {
            compare.push(t.clone());
            continue;
        }
        rest.push(t.clone());
        if let Some(i) = shape.terms.iter().position(|x| x == t) {
            inner_terms_seen[i] = true;
        } else if let Some(i) = shape.keys.iter().position(|k| is_equality(t, k)) {
            keys_seen[i] = true;
        } else if !in_outer_only(t) {
            return Ok(None);
        }
    }
    let Some(predicate) = conjunction(compare) else {
        return Ok(None);
    };
    if inner_terms_seen.contains(&false) || keys_seen.contains(&false) {
        return Ok(None);
    }

    // R, under a projection so that join reordering keeps it whole: both of its
    // occurrences must stay one subtree.
    let mut rows = from.clone();
    if let Some(p) = conjunction(rest) {
        rows = Arc::new(LogicalPlan::filter(rows, p)?);
    }
    let columns = rows
        .schema()
        .fields()
        .iter()
        .map(|f| Expr::Column(f.column()))
        .collect();
    let rows = Arc::new(LogicalPlan::project(rows, columns)?);
    let grouped = Arc::new(LogicalPlan::aggregate(
        rows.clone(),
        shape.group_by.to_vec(),
        shape.aggs.to_vec(),
    )?);
    let value = Arc::new(LogicalPlan::project(grouped, shape.outputs.to_vec())?);
    let value = Arc::new(LogicalPlan::alias(value, &shape.alias));
    let joined = Arc::new(LogicalPlan::join(
        rows,
        value,
        JoinType::Inner,
        sub.on.clone(),
        None,
        false,
    )?);
    Ok(Some(Arc::new(LogicalPlan::filter(joined, predicate)?)))
}

/// The parts of a pending left join of a correlated, aggregated scalar subquery:
/// `Alias(Projection(Aggregate(Filter?(FROM))))`.
struct Subquery<'a> {
    alias: String,
    outputs: &'a [Expr],
    group_by: &'a [Expr],
    aggs: &'a [Expr],
    /// Its WHERE terms.
    terms: Vec<Expr>,
    from: Arc<LogicalPlan>,
    /// Correlation keys: (outer expression, the subquery's expression).
    keys: Vec<(Expr, Expr)>,
}

impl<'a> Subquery<'a> {
    fn of(p: &'a PendingJoin) -> Option<Self> {
        if p.join_type != JoinType::Left || p.filter.is_some() || p.null_aware || p.on.is_empty() {
            return None;
        }
        let LogicalPlan::Alias { input, alias, .. } = p.plan.as_ref() else {
            return None;
        };
        let LogicalPlan::Projection { input, exprs, .. } = input.as_ref() else {
            return None;
        };
        let LogicalPlan::Aggregate {
            input,
            group_by,
            aggs,
            ..
        } = input.as_ref()
        else {
            return None;
        };
        if !aggs.iter().all(ignores_repeats) {
            return None;
        }
        let (terms, from) = match input.as_ref() {
            LogicalPlan::Filter { input, predicate } => {
                let mut terms = Vec::new();
                split_conjunction(predicate.clone(), &mut terms);
                (terms, input.clone())
            }
            _ => (vec![], input.clone()),
        };
        // Each key joins an output of the projection that is a GROUP BY expression.
        let mut keys = Vec::new();
        for (outer, key) in &p.on {
            let Expr::Column(c) = key else { return None };
            let inner = exprs.iter().find_map(|e| match e {
                Expr::Alias(x, name) if *name == c.name => Some(x.as_ref().clone()),
                _ => None,
            })?;
            if !group_by.contains(&inner) {
                return None;
            }
            keys.push((outer.clone(), inner));
        }
        if keys.len() != group_by.len() {
            return None;
        }
        Some(Self {
            alias: alias.clone(),
            outputs: exprs,
            group_by,
            aggs,
            terms,
            from,
            keys,
        })
    }
}

/// True for an aggregate whose value does not change when every input row is repeated
/// the same number of times.
fn ignores_repeats(e: &Expr) -> bool {
    match e {
        Expr::Alias(x, _) => ignores_repeats(x),
        Expr::Aggregate { func, .. } => matches!(func, AggFunc::Min | AggFunc::Max | AggFunc::Avg),
        _ => false,
    }
}

/// The tables a FROM list joins without conditions (a comma list), when all are scans of
/// bounded tables (a stream is never computed once for two readers), each with its
/// subtree key.
fn scans(plan: &Arc<LogicalPlan>) -> Option<Vec<(ShareKey, Arc<LogicalPlan>)>> {
    match plan.as_ref() {
        LogicalPlan::Join {
            left,
            right,
            join_type: JoinType::Inner,
            on,
            filter: None,
            ..
        } if on.is_empty() => {
            let mut out = scans(left)?;
            out.extend(scans(right)?);
            Some(out)
        }
        LogicalPlan::Scan { .. } => Some(vec![(subtree_key(plan)?, plan.clone())]),
        LogicalPlan::Alias { input, .. } if matches!(input.as_ref(), LogicalPlan::Scan { .. }) => {
            Some(vec![(subtree_key(plan)?, plan.clone())])
        }
        _ => None,
    }
}

/// The outer tables the subquery does not read, when each subquery table is one outer
/// table (same table, same name) and no name repeats.
fn outer_only(
    outer: &[(ShareKey, Arc<LogicalPlan>)],
    inner: &[(ShareKey, Arc<LogicalPlan>)],
) -> Option<Vec<(ShareKey, Arc<LogicalPlan>)>> {
    let once = |list: &[(ShareKey, Arc<LogicalPlan>)], k: &ShareKey| {
        list.iter().filter(|(x, _)| x == k).count() == 1
    };
    if !inner.iter().all(|(k, _)| once(outer, k) && once(inner, k)) {
        return None;
    }
    let rest: Vec<_> = outer
        .iter()
        .filter(|(k, _)| !inner.iter().any(|(x, _)| x == k))
        .cloned()
        .collect();
    (!rest.is_empty()).then_some(rest)
}

/// True when every column of `e` is a column of one of `tables`.
fn covered(e: &Expr, tables: &[(ShareKey, Arc<LogicalPlan>)]) -> bool {
    e.columns().iter().all(|c| {
        tables
            .iter()
            .any(|(_, t)| matches!(t.schema().find(c), Ok(Some(_))))
    })
}

/// True when `e` reads a column of the relation named `alias`.
fn reads_relation(e: &Expr, alias: &str) -> bool {
    e.columns()
        .iter()
        .any(|c: &Column| c.relation.as_deref() == Some(alias))
}

/// True when `e` is `a = b` or `b = a` for the pair `(a, b)`.
fn is_equality(e: &Expr, (a, b): &(Expr, Expr)) -> bool {
    *e == a.clone().eq(b.clone()) || *e == b.clone().eq(a.clone())
}
