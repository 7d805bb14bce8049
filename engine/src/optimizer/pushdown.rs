//! Predicate pushdown: filters move toward the scans (inner-join trees are reordered by
//! `join_order` on the way).

use std::sync::Arc;

use crate::error::{Result, SluiceError};
use crate::logical::expr::{conjunction, split_conjunction, BinaryOp, Expr};
use crate::logical::plan::{JoinType, LogicalPlan};
use crate::logical::schema::PlanSchema;
use crate::optimizer::{join_order, outer_join};

/// Pushes every filter as far down as it can go.
pub fn push_down_filters(plan: Arc<LogicalPlan>) -> Result<Arc<LogicalPlan>> {
    push(plan, vec![])
}

fn covered(e: &Expr, s: &PlanSchema) -> bool {
    e.columns().iter().all(|c| matches!(s.find(c), Ok(Some(_))))
}

pub(super) fn with_filter(plan: Arc<LogicalPlan>, preds: Vec<Expr>) -> Result<Arc<LogicalPlan>> {
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
pub(super) fn or_branch_terms(e: &Expr) -> Option<Vec<Vec<Expr>>> {
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

pub(super) fn push(plan: Arc<LogicalPlan>, mut preds: Vec<Expr>) -> Result<Arc<LogicalPlan>> {
    match plan.as_ref() {
        LogicalPlan::Filter { input, predicate } => {
            factor_or(predicate.clone(), &mut preds);
            push(input.clone(), preds)
        }
        LogicalPlan::Join {
            join_type: JoinType::Inner,
            ..
        } => join_order::reorder_inner(&plan, preds),
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
