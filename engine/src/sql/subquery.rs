//! Subqueries, decorrelated into joins at planning time (never evaluated per row):
//!
//! * `EXISTS (q)` / `NOT EXISTS (q)` → semi / anti join on q's correlated predicates;
//! * `x IN (q)` / `x NOT IN (q)` → semi / null-aware anti join on `x = q.col`;
//! * scalar `(q)` → left join; a correlated aggregate subquery is grouped by its
//!   correlation keys first (`WHERE inner = outer` becomes `GROUP BY inner`).
//!
//! While a subquery is planned, the enclosing schemas are on `SqlPlanner::outer`, and the
//! WHERE terms that mention them are collected in `SqlPlanner::correlated` instead of
//! being filtered inside the subquery.

use std::sync::Arc;

use sqlparser::ast::{self as ast, UnaryOperator};

use crate::error::{Result, SluiceError};
use crate::logical::expr::{conjunction, Column, Expr};
use crate::logical::plan::{JoinType, LogicalPlan};
use crate::logical::schema::PlanSchema;
use crate::optimizer::estimate::estimate_rows;
use crate::sql::expr::{ExprCtx, PendingJoin};
use crate::sql::planner::{split_join_condition, SqlPlanner};

/// Rewrites a collected correlated predicate for use above the join: inner columns refer
/// to the aliased subquery, outer references become ordinary columns.
fn requalify(e: Expr, alias: &str) -> Result<Expr> {
    e.transform_up(&mut |x| {
        Ok::<_, SluiceError>(match x {
            Expr::Column(c) => Expr::Column(Column {
                relation: Some(alias.to_string()),
                name: c.name,
            }),
            Expr::OuterColumn(c) => Expr::Column(c),
            other => other,
        })
    })
}

/// Applies the joins that subqueries of an expression asked for.
pub fn apply_pending(
    mut plan: Arc<LogicalPlan>,
    pending: Vec<PendingJoin>,
) -> Result<Arc<LogicalPlan>> {
    for p in pending {
        plan = attach(plan, p)?;
    }
    Ok(plan)
}

fn join_with(plan: Arc<LogicalPlan>, p: PendingJoin) -> Result<Arc<LogicalPlan>> {
    Ok(Arc::new(LogicalPlan::join(
        plan,
        p.plan,
        p.join_type,
        p.on,
        p.filter,
        p.null_aware,
    )?))
}

/// The inputs of `p` the outer side of a pending join needs.
fn outer_columns(p: &PendingJoin) -> Vec<Column> {
    let sub = p.plan.schema();
    let mut outer: Vec<Column> = Vec::new();
    for (o, _) in &p.on {
        outer.extend(o.columns());
    }
    if let Some(f) = &p.filter {
        outer.extend(
            f.columns()
                .into_iter()
                .filter(|c| !matches!(sub.find(c), Ok(Some(_)))),
        );
    }
    outer
}

/// The child of an inner join that holds all of `cols`, if one does.
fn covering_child<'a>(plan: &'a Arc<LogicalPlan>, cols: &[Column]) -> Option<&'a Arc<LogicalPlan>> {
    let LogicalPlan::Join {
        left,
        right,
        join_type: JoinType::Inner,
        null_aware: false,
        ..
    } = plan.as_ref()
    else {
        return None;
    };
    let covers = |s: &Arc<LogicalPlan>| {
        !cols.is_empty()
            && cols
                .iter()
                .all(|c| matches!(s.schema().find(c), Ok(Some(_))))
    };
    [left, right].into_iter().find(|s| covers(s))
}

/// Joins `p` as deep as its outer columns allow: a semi, anti or left join whose outer
/// side only needs one input of an inner join commutes with that inner join, so TPC-H
/// q18's `o_orderkey IN (...)` filters `orders` before it meets `lineitem`. A semi/anti
/// join moves down only when it reduces that input: its subquery aggregates (q18's GROUP
/// BY .. HAVING) or is much smaller. A subquery over a big table (q21's EXISTS over
/// lineitem) is cheaper on top, after the inner joins have filtered.
fn attach(plan: Arc<LogicalPlan>, p: PendingJoin) -> Result<Arc<LogicalPlan>> {
    if !matches!(
        p.join_type,
        JoinType::Semi | JoinType::Anti | JoinType::Left
    ) {
        return join_with(plan, p);
    }
    let outer = outer_columns(&p);
    let mut target = &plan;
    while let Some(child) = covering_child(target, &outer) {
        target = child;
    }
    let reduces = p.join_type == JoinType::Left
        || has_aggregate(&p.plan)
        || 4.0 * estimate_rows(&p.plan) < estimate_rows(target);
    if std::ptr::eq(target, &plan) || !reduces {
        return join_with(plan, p);
    }
    push_into(&plan, &outer, p)
}

/// Rebuilds the inner-join path down to the input covering `outer`, joining `p` there.
fn push_into(
    plan: &Arc<LogicalPlan>,
    outer: &[Column],
    p: PendingJoin,
) -> Result<Arc<LogicalPlan>> {
    let Some(child) = covering_child(plan, outer) else {
        return join_with(plan.clone(), p);
    };
    let LogicalPlan::Join {
        left,
        right,
        on,
        filter,
        ..
    } = plan.as_ref()
    else {
        return join_with(plan.clone(), p);
    };
    let (l, r) = if std::ptr::eq(child, left) {
        (push_into(left, outer, p)?, right.clone())
    } else {
        (left.clone(), push_into(right, outer, p)?)
    };
    Ok(Arc::new(LogicalPlan::join(
        l,
        r,
        JoinType::Inner,
        on.clone(),
        filter.clone(),
        false,
    )?))
}

impl SqlPlanner<'_> {
    /// Plans `q` inside a query whose rows have schema `outer`; returns the aliased plan and
    /// its correlated predicates, rewritten to join conditions.
    fn plan_correlated(
        &mut self,
        q: &ast::Query,
        outer: &PlanSchema,
        for_exists: bool,
    ) -> Result<(Arc<LogicalPlan>, Vec<Expr>)> {
        self.outer.push(outer.clone());
        self.correlated.push(vec![]);
        self.empty_value = None;
        let planned = self.plan_query_opts(q, for_exists);
        self.outer.pop();
        let preds = self.correlated.pop().unwrap_or_default();
        let plan = planned?;
        let alias = self.fresh("__sq");
        let plan = Arc::new(LogicalPlan::alias(plan, &alias));
        let preds = preds
            .into_iter()
            .map(|p| requalify(p, &alias))
            .collect::<Result<Vec<_>>>()?;
        Ok((plan, preds))
    }

    fn join_condition(
        preds: Vec<Expr>,
        outer: &PlanSchema,
        sub: &PlanSchema,
    ) -> (Vec<(Expr, Expr)>, Option<Expr>) {
        match conjunction(preds) {
            Some(c) => split_join_condition(c, outer, sub),
            None => (vec![], None),
        }
    }

    /// A scalar subquery: joins it (left) and returns the column holding its value.
    pub(crate) fn scalar_subquery(&mut self, q: &ast::Query, ctx: &mut ExprCtx) -> Result<Expr> {
        let (plan, preds) = self.plan_correlated(q, ctx.schema, false)?;
        let visible: Vec<_> = plan
            .schema()
            .fields()
            .iter()
            .filter(|f| !f.field.name().starts_with("__corr"))
            .collect();
        if visible.len() != 1 {
            return Err(SluiceError::plan(format!(
                "a scalar subquery must return one column, this one returns {}",
                visible.len()
            )));
        }
        let mut value = Expr::Column(visible[0].column());
        let aggregated = matches!(strip_alias(&plan), LogicalPlan::Projection { input, .. } if is_aggregate(input));
        if !preds.is_empty() && !aggregated {
            return Err(SluiceError::unsupported(
                "correlated scalar subqueries without an aggregate (they could return several rows)",
            ));
        }
        let plan = if preds.is_empty() && !single_row(&plan) {
            // More than one row is an error, never a silent fan-out of the outer rows.
            let alias = visible[0].qualifier.clone().unwrap_or_default();
            let name = visible[0].field.name().clone();
            let v = Expr::Column(visible[0].column());
            let agg = Arc::new(LogicalPlan::aggregate(
                plan.clone(),
                vec![],
                vec![
                    crate::logical::expr::count_star().alias("__n"),
                    crate::logical::expr::min(v).alias("__v"),
                ],
            )?);
            let checked = crate::logical::expr::func(
                "__one_row",
                vec![
                    Expr::Column(Column::from_name("__n")),
                    Expr::Column(Column::from_name("__v")),
                ],
            );
            let proj = Arc::new(LogicalPlan::project(agg, vec![checked.alias(&name)])?);
            Arc::new(LogicalPlan::alias(proj, &alias))
        } else {
            plan
        };
        // COUNT over no matching rows is 0, not NULL: use the aggregate's empty-input value.
        if let (Some(empty), false) = (self.empty_value.take(), preds.is_empty()) {
            let probe = plan
                .schema()
                .fields()
                .iter()
                .find(|f| f.field.name().starts_with("__corr"))
                .map(|f| f.column());
            if let Some(probe) = probe {
                value = Expr::Case {
                    operand: None,
                    when_then: vec![(Expr::Column(probe).is_null(), empty)],
                    else_expr: Some(Box::new(value)),
                };
            }
        }
        let (on, filter) = Self::join_condition(preds, ctx.schema, plan.schema());
        ctx.pending.push(PendingJoin {
            plan,
            join_type: JoinType::Left,
            on,
            filter,
            null_aware: false,
        });
        Ok(value)
    }

    /// Handles a WHERE term that is `[NOT] EXISTS` or `[NOT] IN (subquery)`; false when `e`
    /// is something else.
    pub(crate) fn where_subquery(
        &mut self,
        e: &ast::Expr,
        ctx: &mut ExprCtx,
        negate: bool,
    ) -> Result<bool> {
        match e {
            ast::Expr::Nested(inner) => self.where_subquery(inner, ctx, negate),
            ast::Expr::UnaryOp {
                op: UnaryOperator::Not,
                expr,
            } => self.where_subquery(expr, ctx, !negate),
            ast::Expr::Exists { subquery, negated } => {
                let (plan, preds) = self.plan_correlated(subquery, ctx.schema, true)?;
                let (on, filter) = Self::join_condition(preds, ctx.schema, plan.schema());
                ctx.pending.push(PendingJoin {
                    plan,
                    join_type: if *negated != negate {
                        JoinType::Anti
                    } else {
                        JoinType::Semi
                    },
                    on,
                    filter,
                    null_aware: false,
                });
                Ok(true)
            }
            ast::Expr::InSubquery {
                expr,
                subquery,
                negated,
            } => {
                let x = self.sql_to_expr(expr, ctx)?;
                let (plan, preds) = self.plan_correlated(subquery, ctx.schema, false)?;
                let first = plan
                    .schema()
                    .fields()
                    .first()
                    .map(|f| f.column())
                    .ok_or_else(|| SluiceError::plan("IN subquery returns no columns"))?;
                let width = plan
                    .schema()
                    .fields()
                    .iter()
                    .filter(|f| !f.field.name().starts_with("__corr"))
                    .count();
                if width != 1 {
                    return Err(SluiceError::plan(format!(
                        "IN subquery must return one column, this one returns {width}"
                    )));
                }
                let anti = *negated != negate;
                if anti && !preds.is_empty() {
                    return Err(SluiceError::unsupported("correlated NOT IN subqueries"));
                }
                let (mut on, filter) = Self::join_condition(preds, ctx.schema, plan.schema());
                on.insert(0, (x, Expr::Column(first)));
                ctx.pending.push(PendingJoin {
                    plan,
                    join_type: if anti { JoinType::Anti } else { JoinType::Semi },
                    on,
                    filter,
                    null_aware: anti,
                });
                Ok(true)
            }
            _ => Ok(false),
        }
    }
}

fn has_aggregate(p: &LogicalPlan) -> bool {
    matches!(p, LogicalPlan::Aggregate { .. }) || p.inputs().iter().any(|i| has_aggregate(i))
}

/// True when `p` yields at most one row (an aggregate without GROUP BY, or LIMIT 1).
fn single_row(p: &LogicalPlan) -> bool {
    match p {
        LogicalPlan::Aggregate { group_by, .. } => group_by.is_empty(),
        LogicalPlan::Limit { fetch: Some(f), .. } => *f <= 1,
        LogicalPlan::Alias { input, .. }
        | LogicalPlan::Projection { input, .. }
        | LogicalPlan::Sort { input, .. } => single_row(input),
        _ => false,
    }
}

fn strip_alias(p: &LogicalPlan) -> &LogicalPlan {
    match p {
        LogicalPlan::Alias { input, .. } => strip_alias(input),
        other => other,
    }
}

fn is_aggregate(p: &LogicalPlan) -> bool {
    match p {
        LogicalPlan::Aggregate { .. } => true,
        LogicalPlan::Filter { input, .. }
        | LogicalPlan::Projection { input, .. }
        | LogicalPlan::Join { left: input, .. } => is_aggregate(input),
        _ => false,
    }
}
