//! Query planning: WITH, set operations, ORDER BY / LIMIT, FROM items and joins.
//! SELECT bodies are in `select.rs`, expressions in `expr.rs`, subqueries in `subquery.rs`.

use std::collections::HashMap;
use std::sync::Arc;

use arrow::datatypes::{DataType, Field};
use sqlparser::ast::{self as ast, SetExpr, SetOperator, SetQuantifier, TableFactor};

use crate::catalog::{Catalog, CatalogEntry};
use crate::error::{Result, SluiceError};
use crate::logical::expr::{conjunction, split_conjunction, Column, Expr, Scalar, SortExpr};
use crate::logical::plan::{expr_field, JoinType, LogicalPlan};
use crate::logical::schema::{PlanSchema, QField};
use crate::physical::coerce::common_type;
use crate::physical::expr::expr_type;
use crate::sql::expr::ExprCtx;
use crate::sql::{ident, object_name};

/// Plans SQL queries against a catalog.
pub struct SqlPlanner<'a> {
    pub(crate) catalog: &'a Catalog,
    /// CTE scopes, innermost last.
    pub(crate) ctes: Vec<HashMap<String, Arc<LogicalPlan>>>,
    /// Schemas of enclosing queries, innermost last (for correlated subqueries).
    pub(crate) outer: Vec<PlanSchema>,
    /// Correlated predicates collected while planning a subquery, innermost last.
    pub(crate) correlated: Vec<Vec<Expr>>,
    pub(crate) next_id: usize,
    /// The value a just-planned correlated aggregate subquery has over no rows (COUNT → 0),
    /// when it is not NULL.
    pub(crate) empty_value: Option<Expr>,
    /// Values bound to `$1..$n` placeholders.
    pub(crate) params: &'a [Scalar],
}

impl<'a> SqlPlanner<'a> {
    /// A planner over `catalog`.
    pub fn new(catalog: &'a Catalog) -> Self {
        Self {
            catalog,
            ctes: vec![],
            outer: vec![],
            correlated: vec![],
            next_id: 0,
            empty_value: None,
            params: &[],
        }
    }

    /// Binds `params` to the placeholders `$1..$n` (see [`crate::sql::params`]).
    pub fn with_params(mut self, params: &'a [Scalar]) -> Self {
        self.params = params;
        self
    }

    pub(crate) fn fresh(&mut self, prefix: &str) -> String {
        self.next_id += 1;
        format!("{prefix}{}", self.next_id)
    }

    /// Plans a query.
    pub fn plan_query(&mut self, q: &ast::Query) -> Result<Arc<LogicalPlan>> {
        self.plan_query_opts(q, false)
    }

    /// Plans a query; `for_exists` keeps a bare SELECT body unprojected (EXISTS needs no columns).
    pub(crate) fn plan_query_opts(
        &mut self,
        q: &ast::Query,
        for_exists: bool,
    ) -> Result<Arc<LogicalPlan>> {
        if q.fetch.is_some() || !q.locks.is_empty() {
            return Err(SluiceError::unsupported("FETCH / FOR UPDATE clauses"));
        }
        let pushed_scope = if let Some(with) = &q.with {
            if with.recursive {
                return Err(SluiceError::unsupported("WITH RECURSIVE"));
            }
            self.ctes.push(HashMap::new());
            for cte in &with.cte_tables {
                let name = ident(&cte.alias.name);
                let plan = self.plan_query(&cte.query)?;
                let plan = self.rename_columns(plan, &cte.alias.columns)?;
                let plan = Arc::new(LogicalPlan::alias(plan, &name));
                if let Some(scope) = self.ctes.last_mut() {
                    scope.insert(name, plan);
                }
            }
            true
        } else {
            false
        };
        let result = self.plan_query_body(q, for_exists);
        if pushed_scope {
            self.ctes.pop();
        }
        result
    }

    fn plan_query_body(&mut self, q: &ast::Query, for_exists: bool) -> Result<Arc<LogicalPlan>> {
        let order_by: Vec<ast::OrderByExpr> = match &q.order_by {
            None => vec![],
            Some(ob) => match &ob.kind {
                ast::OrderByKind::Expressions(v) => v.clone(),
                ast::OrderByKind::All(_) => return Err(SluiceError::unsupported("ORDER BY ALL")),
            },
        };
        let plan = match q.body.as_ref() {
            SetExpr::Select(s) => {
                self.plan_select(s, &order_by, for_exists && order_by.is_empty())?
            }
            other => {
                let p = self.plan_set_expr(other)?;
                if order_by.is_empty() {
                    p
                } else {
                    let mut keys = Vec::new();
                    for o in &order_by {
                        let e = self.output_order_expr(&o.expr, &p)?;
                        keys.push(sort_expr(e, &o.options)?);
                    }
                    Arc::new(LogicalPlan::Sort {
                        input: p,
                        order_by: keys,
                        fetch: None,
                    })
                }
            }
        };
        self.apply_limit(plan, q.limit_clause.as_ref())
    }

    /// ORDER BY over a set operation's output: a column name or a 1-based position.
    fn output_order_expr(&mut self, e: &ast::Expr, plan: &Arc<LogicalPlan>) -> Result<Expr> {
        if let Some(i) = ordinal(e)? {
            let f = plan.schema().fields().get(i).ok_or_else(|| {
                SluiceError::plan(format!("ORDER BY position {} is out of range", i + 1))
            })?;
            return Ok(Expr::Column(f.column()));
        }
        let mut ctx = ExprCtx::new(plan.schema());
        let ex = self.sql_to_expr(e, &mut ctx)?;
        ctx.no_pending("ORDER BY")?;
        Ok(ex)
    }

    fn apply_limit(
        &mut self,
        plan: Arc<LogicalPlan>,
        lc: Option<&ast::LimitClause>,
    ) -> Result<Arc<LogicalPlan>> {
        let Some(lc) = lc else { return Ok(plan) };
        let (limit, offset) = match lc {
            ast::LimitClause::LimitOffset {
                limit,
                offset,
                limit_by,
            } => {
                if !limit_by.is_empty() {
                    return Err(SluiceError::unsupported("LIMIT BY"));
                }
                (limit.clone(), offset.as_ref().map(|o| o.value.clone()))
            }
            ast::LimitClause::OffsetCommaLimit { offset, limit } => {
                (Some(limit.clone()), Some(offset.clone()))
            }
        };
        let num = |e: &ast::Expr, what: &str| -> Result<usize> {
            match e {
                ast::Expr::Value(v) => match &v.value {
                    ast::Value::Number(n, _) => n.parse::<usize>().map_err(|_| {
                        SluiceError::plan(format!("{what} must be a non-negative integer, got {n}"))
                    }),
                    other => Err(SluiceError::plan(format!(
                        "{what} must be a non-negative integer, got {other}"
                    ))),
                },
                other => Err(SluiceError::plan(format!(
                    "{what} must be a non-negative integer, got {other}"
                ))),
            }
        };
        let fetch = match &limit {
            Some(ast::Expr::Value(v)) if matches!(v.value, ast::Value::Null) => None,
            Some(e) => Some(num(e, "LIMIT")?),
            None => None,
        };
        let skip = offset
            .as_ref()
            .map(|e| num(e, "OFFSET"))
            .transpose()?
            .unwrap_or(0);
        Ok(Arc::new(LogicalPlan::Limit {
            input: plan,
            skip,
            fetch,
        }))
    }

    fn plan_set_expr(&mut self, s: &SetExpr) -> Result<Arc<LogicalPlan>> {
        match s {
            SetExpr::Select(sel) => self.plan_select(sel, &[], false),
            SetExpr::Query(q) => self.plan_query(q),
            SetExpr::Values(v) => self.plan_values(v),
            SetExpr::SetOperation {
                left,
                op,
                set_quantifier,
                right,
            } => {
                let l = self.plan_set_expr(left)?;
                let r = self.plan_set_expr(right)?;
                let all = matches!(set_quantifier, SetQuantifier::All);
                if !matches!(
                    set_quantifier,
                    SetQuantifier::All | SetQuantifier::Distinct | SetQuantifier::None
                ) {
                    return Err(SluiceError::unsupported(format!(
                        "set quantifier {set_quantifier}"
                    )));
                }
                let (l, r) = coerce_union_inputs(l, r)?;
                match op {
                    SetOperator::Union => {
                        let u = Arc::new(LogicalPlan::union_all(vec![l, r])?);
                        if all {
                            Ok(u)
                        } else {
                            distinct(u)
                        }
                    }
                    SetOperator::Intersect | SetOperator::Except => {
                        intersect_except(l, r, matches!(op, SetOperator::Intersect), all)
                    }
                    other => Err(SluiceError::unsupported(format!("set operation {other}"))),
                }
            }
            other => Err(SluiceError::unsupported(format!("query body {other}"))),
        }
    }

    fn plan_values(&mut self, v: &ast::Values) -> Result<Arc<LogicalPlan>> {
        let empty = PlanSchema::default();
        let mut rows = Vec::new();
        for r in &v.rows {
            let mut ctx = ExprCtx::new(&empty);
            let row = r
                .iter()
                .map(|e| self.sql_to_expr(e, &mut ctx))
                .collect::<Result<Vec<_>>>()?;
            ctx.no_pending("VALUES")?;
            rows.push(row);
        }
        let width = rows.first().map_or(0, Vec::len);
        if rows.iter().any(|r| r.len() != width) {
            return Err(SluiceError::plan(
                "VALUES rows must all have the same number of columns",
            ));
        }
        let mut fields = Vec::new();
        for c in 0..width {
            let mut t = DataType::Null;
            for r in &rows {
                let rt = expr_type(&r[c], &empty)?;
                t = common_type(&t, &rt).ok_or_else(|| {
                    SluiceError::Type(format!("VALUES column {} mixes types {t} and {rt}", c + 1))
                })?;
            }
            if t == DataType::Null {
                t = DataType::Utf8;
            }
            fields.push(QField {
                qualifier: None,
                field: Arc::new(Field::new(format!("column{}", c + 1), t, true)),
            });
        }
        Ok(Arc::new(LogicalPlan::Values {
            schema: PlanSchema::new(fields),
            rows,
        }))
    }

    /// Renames a plan's columns (`AS t (a, b)`).
    pub(crate) fn rename_columns(
        &self,
        plan: Arc<LogicalPlan>,
        cols: &[ast::TableAliasColumnDef],
    ) -> Result<Arc<LogicalPlan>> {
        if cols.is_empty() {
            return Ok(plan);
        }
        if cols.len() > plan.schema().len() {
            return Err(SluiceError::plan(format!(
                "{} column aliases given for {} columns",
                cols.len(),
                plan.schema().len()
            )));
        }
        let exprs: Vec<Expr> = plan
            .schema()
            .fields()
            .iter()
            .enumerate()
            .map(|(i, f)| {
                let c = Expr::Column(f.column());
                match cols.get(i) {
                    Some(a) => c.alias(&ident(&a.name)),
                    None => c,
                }
            })
            .collect();
        Ok(Arc::new(LogicalPlan::project(plan, exprs)?))
    }

    /// Plans the FROM list (comma-separated items are cross-joined; the optimizer turns
    /// WHERE equalities into join keys).
    pub(crate) fn plan_from(&mut self, from: &[ast::TableWithJoins]) -> Result<Arc<LogicalPlan>> {
        let mut plan: Option<Arc<LogicalPlan>> = None;
        for twj in from {
            let item = self.plan_table_with_joins(twj)?;
            plan = Some(match plan {
                None => item,
                Some(p) => Arc::new(LogicalPlan::join(
                    p,
                    item,
                    JoinType::Inner,
                    vec![],
                    None,
                    false,
                )?),
            });
        }
        Ok(plan.unwrap_or_else(|| {
            Arc::new(LogicalPlan::Empty {
                produce_one_row: true,
                schema: PlanSchema::default(),
            })
        }))
    }

    fn plan_table_with_joins(&mut self, twj: &ast::TableWithJoins) -> Result<Arc<LogicalPlan>> {
        let mut left = self.plan_table_factor(&twj.relation)?;
        for j in &twj.joins {
            let right = self.plan_table_factor(&j.relation)?;
            use ast::JoinOperator as J;
            let (jt, constraint) = match &j.join_operator {
                J::Join(c) | J::Inner(c) => (JoinType::Inner, Some(c)),
                J::Left(c) | J::LeftOuter(c) => (JoinType::Left, Some(c)),
                J::Right(c) | J::RightOuter(c) => (JoinType::Right, Some(c)),
                J::FullOuter(c) => (JoinType::Full, Some(c)),
                J::CrossJoin(_) => (JoinType::Inner, None),
                J::Semi(c) | J::LeftSemi(c) => (JoinType::Semi, Some(c)),
                J::Anti(c) | J::LeftAnti(c) => (JoinType::Anti, Some(c)),
                other => return Err(SluiceError::unsupported(format!("join type {other:?}"))),
            };
            left = self.plan_join(left, right, jt, constraint)?;
        }
        Ok(left)
    }

    fn plan_join(
        &mut self,
        left: Arc<LogicalPlan>,
        right: Arc<LogicalPlan>,
        jt: JoinType,
        constraint: Option<&ast::JoinConstraint>,
    ) -> Result<Arc<LogicalPlan>> {
        let both = left.schema().join(right.schema());
        let cond = match constraint {
            None | Some(ast::JoinConstraint::None) => None,
            Some(ast::JoinConstraint::On(e)) => {
                let mut ctx = ExprCtx::new(&both);
                let c = self.sql_to_expr(e, &mut ctx)?;
                ctx.no_pending("JOIN ... ON")?;
                Some(c)
            }
            Some(ast::JoinConstraint::Using(cols)) => {
                let mut preds = Vec::new();
                for c in cols {
                    let name = object_name(c);
                    let col = |s: &PlanSchema| -> Result<Expr> {
                        let i = s.index_of(&Column {
                            relation: None,
                            name: name.clone(),
                        })?;
                        Ok(Expr::Column(s.field(i).column()))
                    };
                    preds.push(col(left.schema())?.eq(col(right.schema())?));
                }
                conjunction(preds)
            }
            Some(ast::JoinConstraint::Natural) => {
                return Err(SluiceError::unsupported("NATURAL JOIN"))
            }
        };
        let (on, filter) = match cond {
            Some(c) => split_join_condition(c, left.schema(), right.schema()),
            None => (vec![], None),
        };
        let joined = Arc::new(LogicalPlan::join(
            left.clone(),
            right.clone(),
            jt,
            on,
            filter,
            false,
        )?);
        match constraint {
            Some(ast::JoinConstraint::Using(cols))
                if !matches!(jt, JoinType::Semi | JoinType::Anti) =>
            {
                // USING columns appear once: from the preserved side, or merged for FULL.
                let names: Vec<String> = cols.iter().map(object_name).collect();
                let col = |s: &PlanSchema, n: &str| -> Result<Expr> {
                    let i = s.index_of(&Column {
                        relation: None,
                        name: n.to_string(),
                    })?;
                    Ok(Expr::Column(s.field(i).column()))
                };
                let mut exprs = Vec::new();
                for n in &names {
                    let (l, r) = (col(left.schema(), n)?, col(right.schema(), n)?);
                    exprs.push(match jt {
                        JoinType::Right => r,
                        JoinType::Full => {
                            crate::logical::expr::func("coalesce", vec![l, r]).alias(n)
                        }
                        _ => l,
                    });
                }
                for s in [left.schema(), right.schema()] {
                    for f in s.fields() {
                        if !names.contains(f.field.name()) {
                            exprs.push(Expr::Column(f.column()));
                        }
                    }
                }
                Ok(Arc::new(LogicalPlan::project(joined, exprs)?))
            }
            _ => Ok(joined),
        }
    }

    fn plan_table_factor(&mut self, tf: &TableFactor) -> Result<Arc<LogicalPlan>> {
        match tf {
            TableFactor::Table {
                name, alias, args, ..
            } => {
                if args.is_some() {
                    return Err(SluiceError::unsupported("table functions"));
                }
                let name = object_name(name);
                let base = self.lookup_table(&name)?;
                match alias {
                    Some(a) => {
                        let p = self.rename_columns(base, &a.columns)?;
                        Ok(Arc::new(LogicalPlan::alias(p, &ident(&a.name))))
                    }
                    None => Ok(base),
                }
            }
            TableFactor::Derived {
                subquery,
                alias,
                lateral,
                ..
            } => {
                if *lateral {
                    return Err(SluiceError::unsupported("LATERAL subqueries"));
                }
                let p = self.plan_query(subquery)?;
                let name = match alias {
                    Some(a) => ident(&a.name),
                    None => self.fresh("__derived"),
                };
                let p = match alias {
                    Some(a) => self.rename_columns(p, &a.columns)?,
                    None => p,
                };
                Ok(Arc::new(LogicalPlan::alias(p, &name)))
            }
            TableFactor::NestedJoin {
                table_with_joins,
                alias,
            } => {
                let p = self.plan_table_with_joins(table_with_joins)?;
                Ok(match alias {
                    Some(a) => Arc::new(LogicalPlan::alias(p, &ident(&a.name))),
                    None => p,
                })
            }
            TableFactor::TableFunction { expr, alias } => {
                let p = self.plan_window_tvf(expr)?;
                match alias {
                    Some(a) => {
                        let p = self.rename_columns(p, &a.columns)?;
                        Ok(Arc::new(LogicalPlan::alias(p, &ident(&a.name))))
                    }
                    None => Ok(p),
                }
            }
            other => Err(SluiceError::unsupported(format!("FROM item {other}"))),
        }
    }

    pub(crate) fn lookup_table(&self, name: &str) -> Result<Arc<LogicalPlan>> {
        for scope in self.ctes.iter().rev() {
            if let Some(p) = scope.get(name) {
                return Ok(p.clone());
            }
        }
        match self.catalog.get(name)? {
            CatalogEntry::Table(t) => {
                let schema = PlanSchema::from_arrow(Some(name), &t.schema());
                Ok(Arc::new(LogicalPlan::Scan {
                    table: name.to_string(),
                    source: t,
                    projection: None,
                    filters: vec![],
                    schema,
                }))
            }
            CatalogEntry::View(p) => Ok(Arc::new(LogicalPlan::alias(p, name))),
        }
    }
}

/// `Some(i)` for an integer literal (a 1-based ordinal → 0-based index).
pub(crate) fn ordinal(e: &ast::Expr) -> Result<Option<usize>> {
    if let ast::Expr::Value(v) = e {
        if let ast::Value::Number(n, _) = &v.value {
            let i: usize = n
                .parse()
                .map_err(|_| SluiceError::plan(format!("invalid position {n}")))?;
            if i == 0 {
                return Err(SluiceError::plan("positions start at 1"));
            }
            return Ok(Some(i - 1));
        }
    }
    Ok(None)
}

/// A sort key from ORDER BY options (NULLS LAST for ASC and NULLS FIRST for DESC by default).
pub(crate) fn sort_expr(e: Expr, o: &ast::OrderByOptions) -> Result<SortExpr> {
    let asc = match &o.sort {
        None | Some(ast::OrderBySort::Asc) => true,
        Some(ast::OrderBySort::Desc) => false,
        Some(ast::OrderBySort::Using(_)) => {
            return Err(SluiceError::unsupported("ORDER BY ... USING"))
        }
    };
    Ok(SortExpr {
        expr: e,
        asc,
        nulls_first: o.nulls_first.unwrap_or(!asc),
    })
}

/// `SELECT DISTINCT *` over `plan`.
pub(crate) fn distinct(plan: Arc<LogicalPlan>) -> Result<Arc<LogicalPlan>> {
    let keys: Vec<Expr> = plan
        .schema()
        .fields()
        .iter()
        .map(|f| Expr::Column(f.column()))
        .collect();
    Ok(Arc::new(LogicalPlan::aggregate(plan, keys, vec![])?))
}

/// INTERSECT / EXCEPT by grouping: tag each side's rows, group by all columns (grouping
/// treats NULLs as equal, as set operations must) and keep groups seen on both sides
/// (INTERSECT) or only on the left (EXCEPT). With ALL, each side's copies of a row are
/// numbered first (`ROW_NUMBER` per row value and side) and the number joins the group
/// key: the n-th copy is kept when both sides have one (INTERSECT ALL: as many copies
/// as the side with fewer) or only the left does (EXCEPT ALL: left minus right copies).
fn intersect_except(
    l: Arc<LogicalPlan>,
    r: Arc<LogicalPlan>,
    intersect: bool,
    all: bool,
) -> Result<Arc<LogicalPlan>> {
    let names: Vec<String> = l
        .schema()
        .fields()
        .iter()
        .map(|f| f.field.name().clone())
        .collect();
    let tag = |p: Arc<LogicalPlan>, v: i64| -> Result<Arc<LogicalPlan>> {
        let mut exprs: Vec<Expr> = p
            .schema()
            .fields()
            .iter()
            .enumerate()
            .map(|(i, f)| Expr::Column(f.column()).alias(&format!("__c{i}")))
            .collect();
        exprs.push(crate::logical::expr::lit(v).alias("__src"));
        Ok(Arc::new(LogicalPlan::project(p, exprs)?))
    };
    let mut u = Arc::new(LogicalPlan::union_all(vec![tag(l, 1)?, tag(r, 2)?])?);
    let c = |n: &str| Expr::Column(Column::from_name(n));
    let mut groups: Vec<Expr> = (0..names.len()).map(|i| c(&format!("__c{i}"))).collect();
    if all {
        let mut exprs: Vec<Expr> = groups.iter().cloned().chain([c("__src")]).collect();
        let number = Expr::Window {
            func: crate::logical::expr::WindowFunc::RowNumber,
            args: vec![],
            partition_by: exprs.clone(),
            order_by: vec![],
            frame: None,
        };
        let numbered = Arc::new(LogicalPlan::window(u, vec![number.clone()])?);
        exprs.push(c(&number.output_name()).alias("__n"));
        u = Arc::new(LogicalPlan::project(numbered, exprs)?);
        groups.push(c("__n"));
    }
    let aggs = vec![
        crate::logical::expr::min(c("__src")).alias("__min"),
        crate::logical::expr::max(c("__src")).alias("__max"),
    ];
    let agg = Arc::new(LogicalPlan::aggregate(u, groups, aggs)?);
    let one = || crate::logical::expr::lit(1i64);
    let keep = if intersect {
        c("__min")
            .eq(one())
            .and(c("__max").eq(crate::logical::expr::lit(2i64)))
    } else {
        c("__max").eq(one())
    };
    let filtered = Arc::new(LogicalPlan::filter(agg, keep)?);
    let out = names
        .iter()
        .enumerate()
        .map(|(i, n)| c(&format!("__c{i}")).alias(n))
        .collect();
    Ok(Arc::new(LogicalPlan::project(filtered, out)?))
}

/// Casts both inputs of a set operation to common column types.
pub(crate) fn coerce_union_inputs(
    l: Arc<LogicalPlan>,
    r: Arc<LogicalPlan>,
) -> Result<(Arc<LogicalPlan>, Arc<LogicalPlan>)> {
    let (ls, rs) = (l.schema().clone(), r.schema().clone());
    if ls.len() != rs.len() {
        return Err(SluiceError::plan(format!(
            "set operation inputs have {} and {} columns",
            ls.len(),
            rs.len()
        )));
    }
    let mut targets = Vec::new();
    for (a, b) in ls.fields().iter().zip(rs.fields()) {
        let (at, bt) = (a.field.data_type(), b.field.data_type());
        targets.push(common_type(at, bt).ok_or_else(|| {
            SluiceError::Type(format!(
                "set operation column {} has types {at} and {bt}",
                a.field.name()
            ))
        })?);
    }
    let fix = |p: Arc<LogicalPlan>, names_from: &PlanSchema| -> Result<Arc<LogicalPlan>> {
        let s = p.schema().clone();
        if s.fields()
            .iter()
            .zip(&targets)
            .all(|(f, t)| f.field.data_type() == t)
        {
            return Ok(p);
        }
        let exprs = s
            .fields()
            .iter()
            .zip(&targets)
            .zip(names_from.fields())
            .map(|((f, t), n)| {
                let c = Expr::Column(f.column());
                let c = if f.field.data_type() == t {
                    c
                } else {
                    c.cast(t.clone())
                };
                c.alias(n.field.name())
            })
            .collect();
        Ok(Arc::new(LogicalPlan::project(p, exprs)?))
    };
    Ok((fix(l, &ls)?, fix(r, &ls)?))
}

/// Splits a join condition into equi-key pairs (left side, right side) and a residual filter.
pub fn split_join_condition(
    cond: Expr,
    left: &PlanSchema,
    right: &PlanSchema,
) -> (Vec<(Expr, Expr)>, Option<Expr>) {
    let mut terms = Vec::new();
    split_conjunction(cond, &mut terms);
    let mut on = Vec::new();
    let mut rest = Vec::new();
    for t in terms {
        if let Expr::Binary {
            left: a,
            op: crate::logical::expr::BinaryOp::Eq,
            right: b,
        } = &t
        {
            let side = |e: &Expr, s: &PlanSchema| {
                let cols = e.columns();
                !cols.is_empty()
                    && !e.contains_outer()
                    && cols.iter().all(|c| matches!(s.find(c), Ok(Some(_))))
            };
            if side(a, left) && side(b, right) {
                on.push(((**a).clone(), (**b).clone()));
                continue;
            }
            if side(a, right) && side(b, left) {
                on.push(((**b).clone(), (**a).clone()));
                continue;
            }
        }
        rest.push(t);
    }
    (on, conjunction(rest))
}

/// The output field for an expression over `schema` (for callers outside this module).
pub fn field_of(e: &Expr, schema: &PlanSchema) -> Result<QField> {
    expr_field(e, schema)
}
