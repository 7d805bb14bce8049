//! Predicate pushdown and greedy inner-join ordering.

use std::sync::Arc;

use crate::error::{Result, SluiceError};
use crate::logical::expr::{conjunction, split_conjunction, BinaryOp, Column, Expr};
use crate::logical::plan::{JoinType, LogicalPlan};
use crate::logical::schema::PlanSchema;
use crate::optimizer::estimate::estimate_rows;
use crate::optimizer::outer_join;

/// Pushes every filter as far down as it can go.
pub fn push_down_filters(plan: Arc<LogicalPlan>) -> Result<Arc<LogicalPlan>> {
    push(plan, vec![])
}

fn covered(e: &Expr, s: &PlanSchema) -> bool {
    e.columns().iter().all(|c| matches!(s.find(c), Ok(Some(_))))
}

fn with_filter(plan: Arc<LogicalPlan>, preds: Vec<Expr>) -> Result<Arc<LogicalPlan>> {
    match conjunction(preds) {
        Some(p) => Ok(Arc::new(LogicalPlan::filter(plan, p)?)),
        None => Ok(plan),
    }
}

/// Replaces columns of `schema` in `e` by `f(index)`.
fn substitute(e: Expr, schema: &PlanSchema, f: &dyn Fn(usize) -> Expr) -> Result<Expr> {
    e.transform_up(&mut |x| match x {
        Expr::Column(c) => Ok::<_, SluiceError>(f(schema.index_of(&c)?)),
        other => Ok(other),
    })
}

fn split_disjunction(e: Expr, out: &mut Vec<Expr>) {
    match e {
        Expr::Binary {
            left,
            op: BinaryOp::Or,
            right,
        } => {
            split_disjunction(*left, out);
            split_disjunction(*right, out);
        }
        other => out.push(other),
    }
}

/// The AND terms of each branch of an OR, or `None` when `e` is not an OR.
fn or_branch_terms(e: &Expr) -> Option<Vec<Vec<Expr>>> {
    if !matches!(
        e,
        Expr::Binary {
            op: BinaryOp::Or,
            ..
        }
    ) {
        return None;
    }
    let mut branches = Vec::new();
    split_disjunction(e.clone(), &mut branches);
    Some(
        branches
            .into_iter()
            .map(|b| {
                let mut t = Vec::new();
                split_conjunction(b, &mut t);
                t
            })
            .collect(),
    )
}

/// `(a AND b) OR (a AND c)` → `a AND (b OR c)`, so a join key repeated in every branch
/// of an OR (TPC-H q19) becomes a key instead of a cross-join filter.
pub fn factor_or(e: Expr, out: &mut Vec<Expr>) {
    let Some(terms) = or_branch_terms(&e) else {
        split_conjunction(e, out);
        return;
    };
    let common: Vec<Expr> = terms[0]
        .iter()
        .filter(|t| terms[1..].iter().all(|other| other.contains(t)))
        .cloned()
        .collect();
    if common.is_empty() {
        out.push(e);
        return;
    }
    let rests: Vec<Option<Expr>> = terms
        .into_iter()
        .map(|t| conjunction(t.into_iter().filter(|x| !common.contains(x))))
        .collect();
    out.extend(common);
    // A branch with nothing left is TRUE, which makes the whole OR true.
    if rests.iter().all(Option::is_some) {
        if let Some(or) = rests.into_iter().flatten().reduce(|a, b| a.or(b)) {
            out.push(or);
        }
    }
}

fn push(plan: Arc<LogicalPlan>, mut preds: Vec<Expr>) -> Result<Arc<LogicalPlan>> {
    match plan.as_ref() {
        LogicalPlan::Filter { input, predicate } => {
            factor_or(predicate.clone(), &mut preds);
            push(input.clone(), preds)
        }
        LogicalPlan::Join {
            join_type: JoinType::Inner,
            ..
        } => reorder_inner(&plan, preds),
        LogicalPlan::Join {
            left,
            right,
            join_type,
            on,
            filter,
            null_aware,
            ..
        } => {
            let simpler = outer_join::simplify(*join_type, &preds, left.schema(), right.schema());
            if simpler != *join_type {
                let j = LogicalPlan::join(
                    left.clone(),
                    right.clone(),
                    simpler,
                    on.clone(),
                    filter.clone(),
                    *null_aware,
                )?;
                return push(Arc::new(j), preds);
            }
            let (ls, rs) = (left.schema().clone(), right.schema().clone());
            let mut lp = Vec::new();
            let mut rp = Vec::new();
            let mut above = Vec::new();
            for p in preds {
                let to_left = matches!(join_type, JoinType::Left | JoinType::Semi | JoinType::Anti)
                    && covered(&p, &ls);
                let to_right =
                    *join_type == JoinType::Right && covered(&p, &rs) && !covered(&p, &ls);
                if to_left {
                    lp.push(p)
                } else if to_right {
                    rp.push(p)
                } else {
                    above.push(p)
                }
            }
            // ON-clause terms on the null-supplying / filtered side alone can filter that input.
            let mut keep_filter = Vec::new();
            if let Some(f) = filter {
                let mut terms = Vec::new();
                split_conjunction(f.clone(), &mut terms);
                for t in terms {
                    let right_only =
                        !t.columns().is_empty() && covered(&t, &rs) && !covered(&t, &ls);
                    let left_only =
                        !t.columns().is_empty() && covered(&t, &ls) && !covered(&t, &rs);
                    if right_only
                        && matches!(join_type, JoinType::Left | JoinType::Semi | JoinType::Anti)
                    {
                        rp.push(t);
                    } else if left_only && *join_type == JoinType::Right {
                        lp.push(t);
                    } else {
                        keep_filter.push(t);
                    }
                }
            }
            let j = LogicalPlan::join(
                push(left.clone(), lp)?,
                push(right.clone(), rp)?,
                *join_type,
                on.clone(),
                conjunction(keep_filter),
                *null_aware,
            )?;
            with_filter(Arc::new(j), above)
        }
        LogicalPlan::Projection { input, exprs, .. } => {
            let schema = plan.schema().clone();
            let mut down = Vec::new();
            let mut above = Vec::new();
            for p in preds {
                let pushable = p.columns().iter().all(|c| {
                    schema.find(c).ok().flatten().is_some_and(|i| {
                        !exprs[i].contains_window() && !exprs[i].contains_aggregate()
                    })
                });
                if pushable {
                    down.push(substitute(p, &schema, &|i| exprs[i].clone().unalias())?);
                } else {
                    above.push(p);
                }
            }
            let p = LogicalPlan::project(push(input.clone(), down)?, exprs.clone())?;
            with_filter(Arc::new(p), above)
        }
        LogicalPlan::Alias { input, alias, .. } => {
            let schema = plan.schema().clone();
            let inner = input.schema().clone();
            let down = preds
                .into_iter()
                .map(|p| substitute(p, &schema, &|i| Expr::Column(inner.field(i).column())))
                .collect::<Result<Vec<_>>>()?;
            Ok(Arc::new(LogicalPlan::alias(
                push(input.clone(), down)?,
                alias,
            )))
        }
        LogicalPlan::Aggregate {
            input,
            group_by,
            aggs,
            ..
        } => {
            let schema = plan.schema().clone();
            let ng = group_by.len();
            let mut down = Vec::new();
            let mut above = Vec::new();
            for p in preds {
                let on_groups = p
                    .columns()
                    .iter()
                    .all(|c| schema.find(c).ok().flatten().is_some_and(|i| i < ng));
                if on_groups && !p.columns().is_empty() {
                    down.push(substitute(p, &schema, &|i| group_by[i].clone())?);
                } else {
                    above.push(p);
                }
            }
            let a =
                LogicalPlan::aggregate(push(input.clone(), down)?, group_by.clone(), aggs.clone())?;
            with_filter(Arc::new(a), above)
        }
        LogicalPlan::Sort {
            input,
            order_by,
            fetch,
        } if fetch.is_none() => Ok(Arc::new(LogicalPlan::Sort {
            input: push(input.clone(), preds)?,
            order_by: order_by.clone(),
            fetch: None,
        })),
        LogicalPlan::Union { inputs, schema } => {
            let mut new_inputs = Vec::new();
            for i in inputs {
                let is = i.schema().clone();
                let down = preds
                    .iter()
                    .map(|p| substitute(p.clone(), schema, &|k| Expr::Column(is.field(k).column())))
                    .collect::<Result<Vec<_>>>()?;
                new_inputs.push(push(i.clone(), down)?);
            }
            Ok(Arc::new(LogicalPlan::Union {
                inputs: new_inputs,
                schema: schema.clone(),
            }))
        }
        LogicalPlan::Scan {
            table,
            source,
            projection,
            filters,
            schema,
        } => {
            let mut hints = filters.clone();
            for p in &preds {
                let simple = matches!(p, Expr::Binary { left, op, right }
                    if op.is_comparison()
                    && matches!((&**left, &**right), (Expr::Column(_), Expr::Literal(_)) | (Expr::Literal(_), Expr::Column(_))));
                if simple && !hints.contains(p) {
                    hints.push(p.clone());
                }
            }
            let scan = Arc::new(LogicalPlan::Scan {
                table: table.clone(),
                source: source.clone(),
                projection: projection.clone(),
                filters: hints,
                schema: schema.clone(),
            });
            with_filter(scan, preds)
        }
        _ => {
            let inputs = plan
                .inputs()
                .into_iter()
                .map(|i| push(i.clone(), vec![]))
                .collect::<Result<Vec<_>>>()?;
            with_filter(Arc::new(plan.with_inputs(inputs)?), preds)
        }
    }
}

/// Collects the leaves and predicates of a tree of inner joins.
fn flatten(plan: &Arc<LogicalPlan>, leaves: &mut Vec<Arc<LogicalPlan>>, preds: &mut Vec<Expr>) {
    match plan.as_ref() {
        LogicalPlan::Join {
            left,
            right,
            join_type: JoinType::Inner,
            on,
            filter,
            ..
        } => {
            flatten(left, leaves, preds);
            flatten(right, leaves, preds);
            for (a, b) in on {
                preds.push(a.clone().eq(b.clone()));
            }
            if let Some(f) = filter {
                factor_or(f.clone(), preds);
            }
        }
        LogicalPlan::Filter { input, predicate }
            if matches!(
                input.as_ref(),
                LogicalPlan::Join {
                    join_type: JoinType::Inner,
                    ..
                }
            ) =>
        {
            factor_or(predicate.clone(), preds);
            flatten(input, leaves, preds);
        }
        _ => leaves.push(plan.clone()),
    }
}

/// Which leaves a predicate touches.
fn leaves_of(p: &Expr, leaves: &[Arc<LogicalPlan>]) -> Vec<usize> {
    let mut out = Vec::new();
    for c in p.columns() {
        for (i, l) in leaves.iter().enumerate() {
            if matches!(l.schema().find(&c), Ok(Some(_))) && !out.contains(&i) {
                out.push(i);
            }
        }
    }
    out
}

/// From `(a1 AND b1) OR (a2 AND b2)` where `a*` touch only leaf A, derives `a1 OR a2` for A
/// (implied by the original, which stays). TPC-H q7's nation pair and q19's part/lineitem
/// conditions filter their scans this way instead of after the joins.
fn derive_from_or(p: &Expr, leaves: &[Arc<LogicalPlan>]) -> Vec<(usize, Expr)> {
    let Some(terms) = or_branch_terms(p) else {
        return vec![];
    };
    let mut out = Vec::new();
    for i in 0..leaves.len() {
        let per_branch: Option<Vec<Expr>> = terms
            .iter()
            .map(|t| conjunction(t.iter().filter(|x| leaves_of(x, leaves) == [i]).cloned()))
            .collect();
        if let Some(parts) = per_branch {
            if let Some(derived) = parts.into_iter().reduce(|a, b| a.or(b)) {
                out.push((i, derived));
            }
        }
    }
    out
}

fn is_equi(p: &Expr) -> bool {
    matches!(p, Expr::Binary { op: BinaryOp::Eq, left, right } if !left.columns().is_empty() && !right.columns().is_empty())
}

fn reorder_inner(plan: &Arc<LogicalPlan>, extra: Vec<Expr>) -> Result<Arc<LogicalPlan>> {
    let original = plan.schema().clone();
    let mut leaves = Vec::new();
    let mut preds = extra;
    flatten(plan, &mut leaves, &mut preds);
    // Single-leaf predicates go into their leaf.
    let mut local: Vec<Vec<Expr>> = vec![vec![]; leaves.len()];
    let mut multi = Vec::new();
    let mut constant = Vec::new();
    for p in preds {
        match leaves_of(&p, &leaves).as_slice() {
            [] => constant.push(p),
            [one] => local[*one].push(p),
            _ => multi.push(p),
        }
    }
    for p in &multi {
        for (i, derived) in derive_from_or(p, &leaves) {
            local[i].push(derived);
        }
    }
    let mut pushed = Vec::new();
    for (l, ps) in leaves.iter().zip(local) {
        pushed.push(push(l.clone(), ps)?);
    }
    let est: Vec<f64> = pushed.iter().map(|l| estimate_rows(l)).collect();
    let n = pushed.len();
    let mut used = vec![false; n];
    let start = (0..n)
        .max_by(|&a, &b| est[a].total_cmp(&est[b]))
        .ok_or_else(|| SluiceError::plan("join without inputs"))?;
    used[start] = true;
    let mut members = vec![start];
    let mut current = pushed[start].clone();
    let mut remaining = multi;
    for _ in 1..n {
        // Prefer connected inputs; among them the one that shrinks (or grows) the result least.
        let connected_flags: Vec<bool> = (0..n)
            .map(|i| {
                remaining.iter().any(|p| {
                    let ls = leaves_of(p, &leaves);
                    is_equi(p)
                        && ls.contains(&i)
                        && ls.iter().all(|x| *x == i || members.contains(x))
                })
            })
            .collect();
        let connected = |i: usize| connected_flags[i];
        let candidates: Vec<usize> = (0..n).filter(|&i| !used[i]).collect();
        let any_connected = candidates.iter().any(|&i| connected(i));
        // Each candidate joined next, with the predicates that join can apply; the one
        // with the fewest estimated rows wins (statistics make a foreign key join keep
        // the share of the keys it matches).
        let mut best: Option<(f64, usize, Arc<LogicalPlan>, Vec<Expr>)> = None;
        for i in candidates
            .into_iter()
            .filter(|&i| !any_connected || connected(i))
        {
            let (now, later): (Vec<Expr>, Vec<Expr>) = remaining.iter().cloned().partition(|p| {
                leaves_of(p, &leaves)
                    .iter()
                    .all(|x| *x == i || members.contains(x))
            });
            let (on, filter) = match conjunction(now) {
                Some(c) => crate::sql::planner::split_join_condition(
                    c,
                    current.schema(),
                    pushed[i].schema(),
                ),
                None => (vec![], None),
            };
            let joined = Arc::new(LogicalPlan::join(
                current.clone(),
                pushed[i].clone(),
                JoinType::Inner,
                on,
                filter,
                false,
            )?);
            let rows = estimate_rows(&joined);
            let better = best.as_ref().is_none_or(|(r, b, ..)| {
                rows.total_cmp(r).then(est[i].total_cmp(&est[*b])).is_lt()
            });
            if better {
                best = Some((rows, i, joined, later));
            }
        }
        let (_, next, joined, later) =
            best.ok_or_else(|| SluiceError::plan("join ordering found no input"))?;
        used[next] = true;
        members.push(next);
        remaining = later;
        current = joined;
    }
    let current = with_filter(current, remaining)?;
    let current = with_filter(current, constant)?;
    // Restore the original column order.
    if current.schema().fields() == original.fields() {
        return Ok(current);
    }
    let exprs: Vec<Expr> = original
        .fields()
        .iter()
        .map(|f| {
            Expr::Column(Column {
                relation: f.qualifier.clone(),
                name: f.field.name().clone(),
            })
        })
        .collect();
    Ok(Arc::new(LogicalPlan::project(current, exprs)?))
}
