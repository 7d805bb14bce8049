//! SELECT planning: FROM → WHERE (with subquery joins) → GROUP BY / aggregates → HAVING
//! → window functions → projection → DISTINCT → ORDER BY.

use std::sync::Arc;

use sqlparser::ast::{self as ast, BinaryOperator};

use crate::error::{Result, SluiceError};
use crate::logical::expr::{conjunction, BinaryOp, Column, Expr};
use crate::logical::plan::LogicalPlan;
use crate::logical::schema::PlanSchema;
use crate::sql::expr::ExprCtx;
use crate::sql::outer_rows;
use crate::sql::planner::{distinct, ordinal, sort_expr, SqlPlanner};
use crate::sql::subquery::apply_pending;
use crate::sql::{ident, object_name};

fn split_sql_and<'e>(e: &'e ast::Expr, out: &mut Vec<&'e ast::Expr>) {
    match e {
        ast::Expr::BinaryOp {
            left,
            op: BinaryOperator::And,
            right,
        } => {
            split_sql_and(left, out);
            split_sql_and(right, out);
        }
        ast::Expr::Nested(inner)
            if matches!(
                **inner,
                ast::Expr::BinaryOp {
                    op: BinaryOperator::And,
                    ..
                }
            ) =>
        {
            split_sql_and(inner, out)
        }
        other => out.push(other),
    }
}

/// Where an ORDER BY key points.
enum OrderTarget {
    /// The i-th SELECT item.
    Output(usize),
    /// An expression over the input.
    Input(Expr),
}

/// Replaces group expressions and aggregate calls by references to the Aggregate's output.
fn rewrite_for_aggregate(
    e: Expr,
    groups: &[Expr],
    aggs: &[Expr],
    agg_schema: &PlanSchema,
) -> Result<Expr> {
    e.transform_down(&mut |x| {
        let bare = x.clone().unalias();
        if let Some(i) = groups.iter().position(|g| *g == bare) {
            return Ok::<_, SluiceError>(Some(Expr::Column(agg_schema.field(i).column())));
        }
        if let Some(j) = aggs.iter().position(|a| *a == bare) {
            return Ok(Some(Expr::Column(
                agg_schema.field(groups.len() + j).column(),
            )));
        }
        Ok(None)
    })
}

fn check_grouped(e: &Expr, agg_schema: &PlanSchema) -> Result<()> {
    for c in e.columns() {
        let internal = c.relation.as_deref().is_some_and(|r| r.starts_with("__sq"));
        if !internal && !matches!(agg_schema.find(&c), Ok(Some(_))) {
            return Err(SluiceError::plan(format!(
                "column '{c}' must appear in the GROUP BY clause or be used in an aggregate function"
            )));
        }
    }
    Ok(())
}

fn collect_calls(e: &Expr, is_call: fn(&Expr) -> bool, out: &mut Vec<Expr>) {
    e.walk(&mut |x| {
        if is_call(x) && !out.contains(x) {
            out.push(x.clone());
        }
    });
}

impl SqlPlanner<'_> {
    /// Plans one SELECT with the query's ORDER BY; `for_exists` stops after WHERE.
    pub(crate) fn plan_select(
        &mut self,
        s: &ast::Select,
        order_by: &[ast::OrderByExpr],
        for_exists: bool,
    ) -> Result<Arc<LogicalPlan>> {
        if s.top.is_some()
            || s.into.is_some()
            || !s.lateral_views.is_empty()
            || s.qualify.is_some()
            || !s.named_window.is_empty()
            || s.prewhere.is_some()
        {
            return Err(SluiceError::unsupported(
                "TOP / INTO / LATERAL VIEW / QUALIFY / WINDOW clauses",
            ));
        }
        let is_distinct = match &s.distinct {
            None | Some(ast::Distinct::All) => false,
            Some(ast::Distinct::Distinct) => true,
            Some(ast::Distinct::On(_)) => return Err(SluiceError::unsupported("DISTINCT ON")),
        };
        if s.projection.is_empty() {
            return Err(SluiceError::Parse("the SELECT list is empty".into()));
        }
        let mut plan = self.plan_from(&s.from)?;
        let from_schema = plan.schema().clone();

        // WHERE: subquery terms become joins; correlated terms are handed to the caller.
        let mut correlated = Vec::new();
        if let Some(w) = &s.selection {
            let mut terms = Vec::new();
            split_sql_and(w, &mut terms);
            let schema = plan.schema().clone();
            let mut ctx = ExprCtx::new(&schema);
            let mut kept = Vec::new();
            for t in terms {
                if self.where_subquery(t, &mut ctx, false)? {
                    continue;
                }
                let e = self.sql_to_expr(t, &mut ctx)?;
                if e.contains_outer() && !self.correlated.is_empty() {
                    correlated.push(e);
                } else {
                    kept.push(e);
                }
            }
            if let Some(p) = outer_rows::rewrite(&plan, &ctx.pending, &kept)? {
                plan = p;
            } else {
                plan = apply_pending(plan, ctx.pending)?;
                if let Some(p) = conjunction(kept) {
                    plan = Arc::new(LogicalPlan::filter(plan, p)?);
                }
            }
        }
        if for_exists {
            let grouped = !matches!(&s.group_by, ast::GroupByExpr::Expressions(v, _) if v.is_empty())
                || s.having.is_some();
            if grouped {
                return Err(SluiceError::unsupported("GROUP BY / HAVING inside EXISTS"));
            }
            if let Some(c) = self.correlated.last_mut() {
                c.extend(correlated);
            }
            return Ok(plan);
        }

        // SELECT list.
        let schema = plan.schema().clone();
        let mut ctx = ExprCtx::new(&schema);
        let mut items: Vec<(Expr, String)> = Vec::new();
        for item in &s.projection {
            match item {
                ast::SelectItem::UnnamedExpr(e) => {
                    let x = self.sql_to_expr(e, &mut ctx)?;
                    let name = match &x {
                        Expr::Column(c) => c.name.clone(),
                        _ => e.to_string(),
                    };
                    items.push((x, name));
                }
                ast::SelectItem::ExprWithAlias { expr, alias } => {
                    let x = self.sql_to_expr(expr, &mut ctx)?;
                    items.push((x, ident(alias)));
                }
                ast::SelectItem::Wildcard(_) => {
                    if from_schema.is_empty() {
                        return Err(SluiceError::plan("SELECT * with no FROM clause"));
                    }
                    for f in from_schema.fields() {
                        items.push((Expr::Column(f.column()), f.field.name().clone()));
                    }
                }
                ast::SelectItem::QualifiedWildcard(kind, _) => {
                    let q = match kind {
                        ast::SelectItemQualifiedWildcardKind::ObjectName(n) => object_name(n),
                        ast::SelectItemQualifiedWildcardKind::Expr(e) => e.to_string(),
                    };
                    let before = items.len();
                    for f in from_schema
                        .fields()
                        .iter()
                        .filter(|f| f.qualifier.as_deref() == Some(q.as_str()))
                    {
                        items.push((Expr::Column(f.column()), f.field.name().clone()));
                    }
                    if items.len() == before {
                        return Err(SluiceError::plan(format!(
                            "no table named '{q}' in FROM for {q}.*"
                        )));
                    }
                }
                ast::SelectItem::ExprWithAliases { .. } => {
                    return Err(SluiceError::unsupported(
                        "multiple aliases for one expression",
                    ))
                }
            }
        }
        let select_pending = std::mem::take(&mut ctx.pending);
        let aliases: Vec<(String, Expr)> =
            items.iter().map(|(e, n)| (n.clone(), e.clone())).collect();

        // GROUP BY (input columns first, then SELECT aliases, then positions).
        let group_sql: &[ast::Expr] = match &s.group_by {
            ast::GroupByExpr::Expressions(v, mods) => {
                if !mods.is_empty() {
                    return Err(SluiceError::unsupported(
                        "GROUP BY modifiers (ROLLUP, CUBE, ...)",
                    ));
                }
                v
            }
            ast::GroupByExpr::All(_) => return Err(SluiceError::unsupported("GROUP BY ALL")),
        };
        let mut group_exprs = Vec::new();
        for g in group_sql {
            if let Some(i) = ordinal(g)? {
                let (e, _) = items.get(i).ok_or_else(|| {
                    SluiceError::plan(format!("GROUP BY position {} is out of range", i + 1))
                })?;
                group_exprs.push(e.clone());
                continue;
            }
            let mut gctx = ExprCtx::new(&schema);
            gctx.aliases = aliases.clone();
            let x = self.sql_to_expr(g, &mut gctx)?;
            gctx.no_pending("GROUP BY")?;
            if x.contains_aggregate() {
                return Err(SluiceError::plan(format!(
                    "aggregate {x} is not allowed in GROUP BY"
                )));
            }
            group_exprs.push(x);
        }

        let mut hctx = ExprCtx::new(&schema);
        hctx.aliases = aliases.clone();
        let having = s
            .having
            .as_ref()
            .map(|h| self.sql_to_expr(h, &mut hctx))
            .transpose()?;
        let having_pending = hctx.pending;

        // ORDER BY: output names and positions first, then expressions over the input.
        let mut order: Vec<(OrderTarget, &ast::OrderByOptions)> = Vec::new();
        for o in order_by {
            if let Some(i) = ordinal(&o.expr)? {
                if i >= items.len() {
                    return Err(SluiceError::plan(format!(
                        "ORDER BY position {} is out of range",
                        i + 1
                    )));
                }
                order.push((OrderTarget::Output(i), &o.options));
                continue;
            }
            if let ast::Expr::Identifier(id) = &o.expr {
                let name = ident(id);
                if let Some(i) = items.iter().position(|(_, n)| *n == name) {
                    order.push((OrderTarget::Output(i), &o.options));
                    continue;
                }
            }
            let mut octx = ExprCtx::new(&schema);
            octx.aliases = aliases.clone();
            let x = self.sql_to_expr(&o.expr, &mut octx)?;
            octx.no_pending("ORDER BY")?;
            order.push((OrderTarget::Input(x), &o.options));
        }

        let has_agg = !group_exprs.is_empty()
            || having.is_some()
            || items.iter().any(|(e, _)| e.contains_aggregate())
            || order
                .iter()
                .any(|(t, _)| matches!(t, OrderTarget::Input(e) if e.contains_aggregate()));

        // Correlation outputs of a subquery: extra (hidden) columns the join keys refer to.
        let mut extra: Vec<(Expr, String)> = Vec::new();
        if !correlated.is_empty() {
            let mut rewritten = Vec::new();
            for c in correlated {
                if has_agg {
                    let (inner, outer) = match &c {
                        Expr::Binary { left, op: BinaryOp::Eq, right } if right.contains_outer() && !left.contains_outer() => {
                            ((**left).clone(), (**right).clone())
                        }
                        Expr::Binary { left, op: BinaryOp::Eq, right } if left.contains_outer() && !right.contains_outer() => {
                            ((**right).clone(), (**left).clone())
                        }
                        _ => {
                            return Err(SluiceError::unsupported(format!(
                                "correlated predicate {c} in an aggregating subquery (only `inner = outer` is supported)"
                            )))
                        }
                    };
                    let name = self.fresh("__corr");
                    group_exprs.push(inner.clone());
                    extra.push((inner, name.clone()));
                    rewritten.push(outer.eq(Expr::Column(Column {
                        relation: None,
                        name,
                    })));
                } else {
                    let mut err = None;
                    let r = c.transform_up(&mut |x| {
                        Ok::<_, SluiceError>(match x {
                            Expr::Column(col) => {
                                let e = Expr::Column(col);
                                let name = match extra.iter().find(|(x, _)| *x == e) {
                                    Some((_, n)) => n.clone(),
                                    None => {
                                        self.next_id += 1;
                                        let n = format!("__corr{}", self.next_id);
                                        extra.push((e, n.clone()));
                                        n
                                    }
                                };
                                Expr::Column(Column {
                                    relation: None,
                                    name,
                                })
                            }
                            other => other,
                        })
                    });
                    match r {
                        Ok(r) => rewritten.push(r),
                        Err(e) => err = Some(e),
                    }
                    if let Some(e) = err {
                        return Err(e);
                    }
                }
            }
            if let Some(c) = self.correlated.last_mut() {
                c.extend(rewritten);
            }
        }

        if has_agg && !extra.is_empty() {
            // For a correlated scalar subquery: its value when no row matches.
            let empty = items.first().map(|(e, _)| {
                e.clone().transform_up(&mut |x| {
                    Ok::<_, SluiceError>(match x {
                        Expr::Aggregate {
                            func: crate::logical::expr::AggFunc::Count,
                            ..
                        } => crate::logical::expr::lit(0i64),
                        Expr::Aggregate { .. } => {
                            Expr::Literal(crate::logical::expr::Scalar::null())
                        }
                        other => other,
                    })
                })
            });
            self.empty_value = match empty.transpose()? {
                Some(e)
                    if e.columns().is_empty()
                        && !matches!(e, Expr::Literal(ref s) if s.is_null()) =>
                {
                    Some(e)
                }
                _ => None,
            };
        }
        if has_agg {
            let mut aggs = Vec::new();
            let is_agg: fn(&Expr) -> bool = |x| matches!(x, Expr::Aggregate { .. });
            for (e, _) in &items {
                collect_calls(e, is_agg, &mut aggs);
            }
            if let Some(h) = &having {
                collect_calls(h, is_agg, &mut aggs);
            }
            for (t, _) in &order {
                if let OrderTarget::Input(e) = t {
                    collect_calls(e, is_agg, &mut aggs);
                }
            }
            for a in &aggs {
                if let Expr::Aggregate { args, .. } = a {
                    if args
                        .iter()
                        .any(|x| x.contains_aggregate() || x.contains_window())
                    {
                        return Err(SluiceError::plan(format!(
                            "aggregate calls cannot be nested: {a}"
                        )));
                    }
                }
            }
            let agg_plan = Arc::new(LogicalPlan::aggregate(
                plan,
                group_exprs.clone(),
                aggs.clone(),
            )?);
            let agg_schema = agg_plan.schema().clone();
            let rw = |e: Expr| -> Result<Expr> {
                let r = rewrite_for_aggregate(e, &group_exprs, &aggs, &agg_schema)?;
                check_grouped(&r, &agg_schema)?;
                Ok(r)
            };
            items = items
                .into_iter()
                .map(|(e, n)| Ok((rw(e)?, n)))
                .collect::<Result<_>>()?;
            extra = extra
                .into_iter()
                .map(|(e, n)| Ok((rw(e)?, n)))
                .collect::<Result<_>>()?;
            let having = having.map(rw).transpose()?;
            order = order
                .into_iter()
                .map(|(t, o)| {
                    Ok((
                        match t {
                            OrderTarget::Input(e) => OrderTarget::Input(rw(e)?),
                            out => out,
                        },
                        o,
                    ))
                })
                .collect::<Result<_>>()?;
            plan = apply_pending(agg_plan, having_pending)?;
            plan = apply_pending(plan, select_pending)?;
            if let Some(h) = having {
                plan = Arc::new(LogicalPlan::filter(plan, h)?);
            }
        } else {
            plan = apply_pending(plan, select_pending)?;
        }

        // Window functions.
        let mut wins = Vec::new();
        let is_win: fn(&Expr) -> bool = |x| matches!(x, Expr::Window { .. });
        for (e, _) in &items {
            collect_calls(e, is_win, &mut wins);
        }
        for (t, _) in &order {
            if let OrderTarget::Input(e) = t {
                collect_calls(e, is_win, &mut wins);
            }
        }
        if !wins.is_empty() {
            plan = Arc::new(LogicalPlan::window(plan, wins.clone())?);
            let rw = |e: Expr| -> Result<Expr> {
                e.transform_down(&mut |x| {
                    Ok::<_, SluiceError>(wins.iter().position(|w| w == x).map(|i| {
                        Expr::Column(Column {
                            relation: None,
                            name: wins[i].output_name(),
                        })
                    }))
                })
            };
            items = items
                .into_iter()
                .map(|(e, n)| Ok((rw(e)?, n)))
                .collect::<Result<_>>()?;
            order = order
                .into_iter()
                .map(|(t, o)| {
                    Ok((
                        match t {
                            OrderTarget::Input(e) => OrderTarget::Input(rw(e)?),
                            out => out,
                        },
                        o,
                    ))
                })
                .collect::<Result<_>>()?;
        }

        // Projection, with hidden columns for correlation keys and ORDER BY expressions.
        let mut proj: Vec<Expr> = items.iter().map(|(e, n)| e.clone().alias(n)).collect();
        proj.extend(extra.iter().map(|(e, n)| e.clone().alias(n)));
        let visible = proj.len();
        let mut sort = Vec::new();
        for (t, o) in order {
            let key = match t {
                OrderTarget::Output(i) => Expr::Column(Column {
                    relation: None,
                    name: items[i].1.clone(),
                }),
                OrderTarget::Input(e) => match items.iter().position(|(x, _)| *x == e) {
                    Some(i) => Expr::Column(Column {
                        relation: None,
                        name: items[i].1.clone(),
                    }),
                    None => {
                        if is_distinct {
                            return Err(SluiceError::plan(format!(
                                "for SELECT DISTINCT, ORDER BY expression {e} must appear in the select list"
                            )));
                        }
                        let name = format!("__order{}", proj.len());
                        proj.push(e.alias(&name));
                        Expr::Column(Column {
                            relation: None,
                            name,
                        })
                    }
                },
            };
            sort.push(sort_expr(key, o)?);
        }
        plan = Arc::new(LogicalPlan::project(plan, proj)?);
        if is_distinct {
            plan = distinct(plan)?;
        }
        if !sort.is_empty() {
            plan = Arc::new(LogicalPlan::Sort {
                input: plan,
                order_by: sort,
                fetch: None,
            });
        }
        if plan.schema().len() > visible {
            let keep: Vec<Expr> = plan.schema().fields()[..visible]
                .iter()
                .map(|f| Expr::Column(f.column()))
                .collect();
            plan = Arc::new(LogicalPlan::project(plan, keep)?);
        }
        Ok(plan)
    }
}
