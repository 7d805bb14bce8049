//! SQL expressions → logical expressions: name resolution (including enclosing queries
//! for correlated subqueries), literals, operators, functions, aggregates and windows.

use std::sync::Arc;

use arrow::array::{Array, AsArray};
use sqlparser::ast::{self as ast, BinaryOperator, UnaryOperator};

use crate::error::{Result, SluiceError};
use crate::logical::expr::{lit, AggFunc, BinaryOp, Column, Expr, Scalar, WindowFrame, WindowFunc};
use crate::logical::plan::{JoinType, LogicalPlan};
use crate::logical::schema::PlanSchema;
use crate::sql::planner::{sort_expr, SqlPlanner};
use crate::sql::{
    convert_data_type, date_literal, ident, interval_expr, number_literal, object_name,
};

/// A join that a subquery in an expression adds to the plan the expression runs over.
#[derive(Debug, Clone)]
pub struct PendingJoin {
    /// The subquery's plan (aliased).
    pub plan: Arc<LogicalPlan>,
    /// How it joins.
    pub join_type: JoinType,
    /// Equi-keys (outer expr, subquery expr).
    pub on: Vec<(Expr, Expr)>,
    /// Remaining join condition.
    pub filter: Option<Expr>,
    /// NOT IN semantics.
    pub null_aware: bool,
}

/// What an expression is planned against.
pub struct ExprCtx<'s> {
    /// Columns in scope.
    pub schema: &'s PlanSchema,
    /// Joins that subqueries in the expression need.
    pub pending: Vec<PendingJoin>,
    /// SELECT-list aliases usable here (GROUP BY, HAVING, ORDER BY).
    pub aliases: Vec<(String, Expr)>,
}

impl<'s> ExprCtx<'s> {
    /// A context over `schema`.
    pub fn new(schema: &'s PlanSchema) -> Self {
        Self {
            schema,
            pending: vec![],
            aliases: vec![],
        }
    }

    /// Errors when a subquery appeared where Sluice cannot place its join.
    pub fn no_pending(&self, what: &str) -> Result<()> {
        if self.pending.is_empty() {
            Ok(())
        } else {
            Err(SluiceError::unsupported(format!("subqueries in {what}")))
        }
    }
}

fn binary_op(op: &BinaryOperator) -> Result<BinaryOp> {
    Ok(match op {
        BinaryOperator::Plus => BinaryOp::Plus,
        BinaryOperator::Minus => BinaryOp::Minus,
        BinaryOperator::Multiply => BinaryOp::Multiply,
        BinaryOperator::Divide => BinaryOp::Divide,
        BinaryOperator::Modulo => BinaryOp::Modulo,
        BinaryOperator::Eq => BinaryOp::Eq,
        BinaryOperator::NotEq => BinaryOp::NotEq,
        BinaryOperator::Lt => BinaryOp::Lt,
        BinaryOperator::LtEq => BinaryOp::LtEq,
        BinaryOperator::Gt => BinaryOp::Gt,
        BinaryOperator::GtEq => BinaryOp::GtEq,
        BinaryOperator::And => BinaryOp::And,
        BinaryOperator::Or => BinaryOp::Or,
        BinaryOperator::StringConcat => BinaryOp::Concat,
        other => return Err(SluiceError::unsupported(format!("operator {other}"))),
    })
}

impl SqlPlanner<'_> {
    /// Resolves a column: the current scope, then SELECT aliases, then enclosing queries.
    fn resolve(&self, col: Column, ctx: &ExprCtx) -> Result<Expr> {
        if let Some(i) = ctx.schema.find(&col)? {
            return Ok(Expr::Column(ctx.schema.field(i).column()));
        }
        if col.relation.is_none() {
            if let Some((_, e)) = ctx.aliases.iter().find(|(n, _)| *n == col.name) {
                return Ok(e.clone());
            }
        }
        for outer in self.outer.iter().rev() {
            if let Some(i) = outer.find(&col)? {
                return Ok(Expr::OuterColumn(outer.field(i).column()));
            }
        }
        Err(ctx.schema.not_found(&col))
    }

    /// Converts a SQL expression.
    pub fn sql_to_expr(&mut self, e: &ast::Expr, ctx: &mut ExprCtx) -> Result<Expr> {
        use ast::Expr as S;
        Ok(match e {
            S::Identifier(i) => self.resolve(
                Column {
                    relation: None,
                    name: ident(i),
                },
                ctx,
            )?,
            S::CompoundIdentifier(parts) => {
                let names: Vec<String> = parts.iter().map(ident).collect();
                let (rel, name) = match names.as_slice() {
                    [r, n] => (r.clone(), n.clone()),
                    [.., r, n] => (r.clone(), n.clone()),
                    _ => return Err(SluiceError::plan(format!("invalid column reference {e}"))),
                };
                self.resolve(
                    Column {
                        relation: Some(rel),
                        name,
                    },
                    ctx,
                )?
            }
            S::Value(v) => match &v.value {
                ast::Value::Placeholder(p) => {
                    let i = crate::sql::params::placeholder_index(p)?;
                    let value = self.params.get(i).ok_or_else(|| {
                        SluiceError::plan(format!(
                            "no value bound for parameter {p} ({} bound)",
                            self.params.len()
                        ))
                    })?;
                    Expr::Literal(value.clone())
                }
                other => value_literal(other)?,
            },
            S::TypedString(ts) => {
                let s = match &ts.value.value {
                    ast::Value::SingleQuotedString(s) => s.clone(),
                    other => {
                        return Err(SluiceError::plan(format!("invalid typed literal {other}")))
                    }
                };
                match &ts.data_type {
                    ast::DataType::Date => date_literal(&s)?,
                    other => lit(s.as_str()).cast(convert_data_type(other)?),
                }
            }
            S::Interval(iv) => interval_expr(iv)?,
            S::Nested(inner) => self.sql_to_expr(inner, ctx)?,
            S::BinaryOp { left, op, right } => {
                let l = self.sql_to_expr(left, ctx)?;
                let r = self.sql_to_expr(right, ctx)?;
                Expr::Binary {
                    left: Box::new(l),
                    op: binary_op(op)?,
                    right: Box::new(r),
                }
            }
            S::UnaryOp { op, expr } => {
                let inner = self.sql_to_expr(expr, ctx)?;
                match op {
                    UnaryOperator::Not => !inner,
                    UnaryOperator::Plus => inner,
                    UnaryOperator::Minus => match expr.as_ref() {
                        S::Value(ast::ValueWithSpan {
                            value: ast::Value::Number(n, _),
                            ..
                        }) => number_literal(&format!("-{n}"))?,
                        _ => Expr::Negative(Box::new(inner)),
                    },
                    other => return Err(SluiceError::unsupported(format!("operator {other}"))),
                }
            }
            S::IsNull(x) => self.sql_to_expr(x, ctx)?.is_null(),
            S::IsNotNull(x) => self.sql_to_expr(x, ctx)?.is_not_null(),
            S::IsTrue(x) => Expr::Function {
                name: "coalesce".into(),
                args: vec![self.sql_to_expr(x, ctx)?, lit(false)],
            },
            S::IsFalse(x) => Expr::Function {
                name: "coalesce".into(),
                args: vec![!self.sql_to_expr(x, ctx)?, lit(false)],
            },
            S::IsDistinctFrom(a, b) | S::IsNotDistinctFrom(a, b) => {
                let (a, b) = (self.sql_to_expr(a, ctx)?, self.sql_to_expr(b, ctx)?);
                let both_null = a.clone().is_null().and(b.clone().is_null());
                let same = Expr::Function {
                    name: "coalesce".into(),
                    args: vec![a.eq(b), lit(false)],
                }
                .or(both_null);
                if matches!(e, S::IsDistinctFrom(..)) {
                    !same
                } else {
                    same
                }
            }
            S::InList {
                expr,
                list,
                negated,
            } => {
                let x = self.sql_to_expr(expr, ctx)?;
                let l = list
                    .iter()
                    .map(|i| self.sql_to_expr(i, ctx))
                    .collect::<Result<Vec<_>>>()?;
                x.in_list(l, *negated)
            }
            S::Between {
                expr,
                negated,
                low,
                high,
            } => {
                let x = self.sql_to_expr(expr, ctx)?;
                let lo = self.sql_to_expr(low, ctx)?;
                let hi = self.sql_to_expr(high, ctx)?;
                if *negated {
                    x.clone().lt(lo).or(x.gt(hi))
                } else {
                    x.between(lo, hi)
                }
            }
            S::Like {
                negated,
                any,
                expr,
                pattern,
                escape_char,
            }
            | S::ILike {
                negated,
                any,
                expr,
                pattern,
                escape_char,
            } => {
                if *any {
                    return Err(SluiceError::unsupported("LIKE ANY"));
                }
                let mut pattern = self.sql_to_expr(pattern, ctx)?;
                if let Some(escape) = escape_char {
                    let escape = self.sql_to_expr(escape, ctx)?;
                    let text = |e: &Expr, what: &str| match e {
                        Expr::Literal(s) if s.is_null() => Ok(None),
                        Expr::Literal(s) => match s.0.as_string_opt::<i32>() {
                            Some(a) => Ok(Some(a.value(0).to_owned())),
                            None => Err(SluiceError::unsupported(format!(
                                "LIKE ... ESCAPE with a {what} that is not a string"
                            ))),
                        },
                        _ => Err(SluiceError::unsupported(format!(
                            "LIKE ... ESCAPE with a {what} that is not a literal: {e}"
                        ))),
                    };
                    pattern = match (text(&pattern, "pattern")?, text(&escape, "escape")?) {
                        (Some(p), Some(esc)) => lit(backslash_escaped(&p, &esc)?),
                        // A NULL pattern or escape makes the whole LIKE NULL.
                        _ => Expr::Literal(Scalar::null()),
                    };
                }
                Expr::Like {
                    negated: *negated,
                    expr: Box::new(self.sql_to_expr(expr, ctx)?),
                    pattern: Box::new(pattern),
                    case_insensitive: matches!(e, S::ILike { .. }),
                }
            }
            S::Cast {
                expr,
                data_type,
                format,
                ..
            } => {
                if format.is_some() {
                    return Err(SluiceError::unsupported("CAST ... FORMAT"));
                }
                let t = convert_data_type(data_type)?;
                match (expr.as_ref(), &t) {
                    (S::Value(v), arrow::datatypes::DataType::Date32) => match &v.value {
                        ast::Value::SingleQuotedString(s) => date_literal(s)?,
                        _ => self.sql_to_expr(expr, ctx)?.cast(t),
                    },
                    _ => self.sql_to_expr(expr, ctx)?.cast(t),
                }
            }
            S::Extract { field, expr, .. } => Expr::Function {
                name: "date_part".into(),
                args: vec![
                    lit(field.to_string().to_lowercase()),
                    self.sql_to_expr(expr, ctx)?,
                ],
            },
            S::Substring {
                expr,
                substring_from,
                substring_for,
                ..
            } => {
                let mut args = vec![self.sql_to_expr(expr, ctx)?];
                args.push(match substring_from {
                    Some(f) => self.sql_to_expr(f, ctx)?,
                    None => {
                        return Err(SluiceError::Type(
                            "substring() needs a start position argument".into(),
                        ))
                    }
                });
                if let Some(f) = substring_for {
                    args.push(self.sql_to_expr(f, ctx)?);
                }
                Expr::Function {
                    name: "substring".into(),
                    args,
                }
            }
            S::Trim {
                expr,
                trim_where,
                trim_what,
                trim_characters,
            } => {
                if trim_what.is_some() || trim_characters.is_some() {
                    return Err(SluiceError::unsupported(
                        "TRIM of characters other than spaces",
                    ));
                }
                let name = match trim_where {
                    Some(ast::TrimWhereField::Leading) => "ltrim",
                    Some(ast::TrimWhereField::Trailing) => "rtrim",
                    _ => "trim",
                };
                Expr::Function {
                    name: name.into(),
                    args: vec![self.sql_to_expr(expr, ctx)?],
                }
            }
            S::Position { expr, r#in } => Expr::Function {
                name: "strpos".into(),
                args: vec![self.sql_to_expr(r#in, ctx)?, self.sql_to_expr(expr, ctx)?],
            },
            S::Ceil { expr, .. } => Expr::Function {
                name: "ceil".into(),
                args: vec![self.sql_to_expr(expr, ctx)?],
            },
            S::Floor { expr, .. } => Expr::Function {
                name: "floor".into(),
                args: vec![self.sql_to_expr(expr, ctx)?],
            },
            S::Case {
                operand,
                conditions,
                else_result,
                ..
            } => {
                let operand = operand
                    .as_ref()
                    .map(|o| self.sql_to_expr(o, ctx))
                    .transpose()?;
                let mut when_then = Vec::new();
                for cw in conditions {
                    when_then.push((
                        self.sql_to_expr(&cw.condition, ctx)?,
                        self.sql_to_expr(&cw.result, ctx)?,
                    ));
                }
                let else_expr = else_result
                    .as_ref()
                    .map(|x| self.sql_to_expr(x, ctx))
                    .transpose()?;
                Expr::Case {
                    operand: operand.map(Box::new),
                    when_then,
                    else_expr: else_expr.map(Box::new),
                }
            }
            S::Function(f) => self.function(f, ctx)?,
            S::Subquery(q) => self.scalar_subquery(q, ctx)?,
            S::Exists { .. } | S::InSubquery { .. } => {
                return Err(SluiceError::unsupported(
                    "EXISTS / IN (subquery) is supported only as a top-level AND term of WHERE",
                ))
            }
            other => return Err(SluiceError::unsupported(format!("expression {other}"))),
        })
    }

    fn function(&mut self, f: &ast::Function, ctx: &mut ExprCtx) -> Result<Expr> {
        let name = object_name(&f.name);
        if f.filter.is_some() || !f.within_group.is_empty() {
            return Err(SluiceError::unsupported(format!(
                "FILTER / WITHIN GROUP in {name}()"
            )));
        }
        let (args, distinct, star) = match &f.args {
            ast::FunctionArguments::None => (vec![], false, false),
            ast::FunctionArguments::Subquery(_) => {
                return Err(SluiceError::unsupported(format!(
                    "subquery as argument of {name}()"
                )))
            }
            ast::FunctionArguments::List(l) => {
                let distinct = matches!(
                    l.duplicate_treatment,
                    Some(ast::DuplicateTreatment::Distinct)
                );
                let mut args = Vec::new();
                let mut star = false;
                for a in &l.args {
                    match a {
                        ast::FunctionArg::Unnamed(ast::FunctionArgExpr::Expr(x)) => {
                            args.push(self.sql_to_expr(x, ctx)?)
                        }
                        ast::FunctionArg::Unnamed(ast::FunctionArgExpr::Wildcard) => star = true,
                        other => {
                            return Err(SluiceError::unsupported(format!(
                                "function argument {other}"
                            )))
                        }
                    }
                }
                (args, distinct, star)
            }
        };
        if let Some(over) = &f.over {
            let spec = match over {
                ast::WindowType::WindowSpec(s) => s,
                ast::WindowType::NamedWindow(_) => {
                    return Err(SluiceError::unsupported("named windows"))
                }
            };
            let func = WindowFunc::from_name(&name)
                .ok_or_else(|| SluiceError::plan(format!("{name}() is not a window function")))?;
            // Ranking and offset functions ignore the frame, as in PostgreSQL.
            let frame = match (&spec.window_frame, func) {
                (Some(frame), WindowFunc::Agg(_)) => {
                    self.window_frame(frame, spec.order_by.len(), ctx)?
                }
                _ => None,
            };
            if distinct {
                return Err(SluiceError::unsupported("DISTINCT in window functions"));
            }
            let partition_by = spec
                .partition_by
                .iter()
                .map(|x| self.sql_to_expr(x, ctx))
                .collect::<Result<Vec<_>>>()?;
            let mut order_by = Vec::new();
            for o in &spec.order_by {
                order_by.push(sort_expr(self.sql_to_expr(&o.expr, ctx)?, &o.options)?);
            }
            return Ok(Expr::Window {
                func,
                args,
                partition_by,
                order_by,
                frame,
            });
        }
        if matches!(
            name.as_str(),
            "row_number" | "rank" | "dense_rank" | "lag" | "lead"
        ) {
            return Err(SluiceError::plan(format!(
                "window function {name}() needs an OVER clause"
            )));
        }
        if let Some(func) = AggFunc::from_name(&name) {
            if star && func != AggFunc::Count {
                return Err(SluiceError::plan(format!("{name}(*) is not valid")));
            }
            if args.len() > 1 || (args.is_empty() && !star) {
                return Err(SluiceError::plan(format!("{name}() takes one argument")));
            }
            return Ok(Expr::Aggregate {
                func,
                args,
                distinct,
            });
        }
        if distinct || star {
            return Err(SluiceError::plan(format!("{name}() is not an aggregate")));
        }
        if name == "mod" {
            // MOD(a, b), as in Flink and most SQL dialects: the remainder, a % b.
            let [a, b] = <[Expr; 2]>::try_from(args)
                .map_err(|_| SluiceError::plan("mod() takes two arguments"))?;
            return Ok(a % b);
        }
        Ok(Expr::Function { name, args })
    }
}

/// A literal value.
pub fn value_literal(v: &ast::Value) -> Result<Expr> {
    Ok(match v {
        ast::Value::Number(n, _) => number_literal(n)?,
        ast::Value::SingleQuotedString(s)
        | ast::Value::DoubleQuotedString(s)
        | ast::Value::EscapedStringLiteral(s) => lit(s.as_str()),
        ast::Value::Boolean(b) => lit(*b),
        ast::Value::Null => Expr::Literal(Scalar::null()),
        other => return Err(SluiceError::unsupported(format!("literal {other}"))),
    })
}

/// A `LIKE` pattern written with escape character `escape` (`ESCAPE '#'`), rewritten with
/// the backslash escapes the engine's LIKE reads: `#%`, `#_` and `##` become `\%`, `\_`
/// and `#` (an escaped ordinary character is that character), and a backslash is
/// literal. An empty `escape` turns escaping off, as in PostgreSQL.
fn backslash_escaped(pattern: &str, escape: &str) -> Result<String> {
    let mut esc = escape.chars();
    let esc = match (esc.next(), esc.next()) {
        (None, _) => None,
        (Some(c), None) => Some(c),
        _ => {
            return Err(SluiceError::plan(format!(
                "LIKE ... ESCAPE '{escape}': the escape must be one character"
            )))
        }
    };
    let mut out = String::with_capacity(pattern.len() + 4);
    let mut chars = pattern.chars();
    while let Some(c) = chars.next() {
        let c = if Some(c) == esc {
            let Some(n) = chars.next() else {
                return Err(SluiceError::plan(format!(
                    "LIKE pattern '{pattern}' ends with its escape character '{escape}'"
                )));
            };
            if matches!(n, '%' | '_') {
                out.push('\\');
            }
            n
        } else {
            c
        };
        if c == '\\' {
            out.push('\\');
        }
        out.push(c);
    }
    Ok(out)
}

impl SqlPlanner<'_> {
    /// An aggregate's explicit window frame: `ROWS` or `RANGE BETWEEN` with offsets from
    /// literal non-negative integers (`RANGE` needs exactly one ORDER BY key, of `order_keys`;
    /// `UNBOUNDED PRECEDING` to `CURRENT ROW`, the default, gives `None`). `GROUPS` frames
    /// are not supported.
    fn window_frame(
        &mut self,
        frame: &ast::WindowFrame,
        order_keys: usize,
        ctx: &mut ExprCtx,
    ) -> Result<Option<WindowFrame>> {
        use ast::WindowFrameBound as B;
        let end = frame.end_bound.clone().unwrap_or(B::CurrentRow);
        let desc = format!("{} BETWEEN {} AND {end}", frame.units, frame.start_bound);
        let range = match frame.units {
            ast::WindowFrameUnits::Rows => false,
            ast::WindowFrameUnits::Range => match (&frame.start_bound, &end) {
                // The default frame: the running aggregate up to the row's last peer.
                (B::Preceding(None), B::CurrentRow) => return Ok(None),
                (B::Preceding(None), B::Following(None)) => {
                    return Ok(Some(WindowFrame {
                        start: None,
                        end: None,
                        range: false,
                    }))
                }
                _ if order_keys != 1 => {
                    return Err(SluiceError::plan(format!(
                        "window frame {desc} needs exactly one ORDER BY key, got {order_keys}"
                    )))
                }
                _ => true,
            },
            units => {
                return Err(SluiceError::unsupported(format!("{units} window frames")));
            }
        };
        let mut offset = |b: &B, is_start: bool| -> Result<Option<i64>> {
            let (n, sign) = match b {
                B::CurrentRow => return Ok(Some(0)),
                B::Preceding(None) if is_start => return Ok(None),
                B::Following(None) if !is_start => return Ok(None),
                B::Preceding(None) | B::Following(None) => {
                    return Err(SluiceError::plan(format!(
                        "window frame {desc}: a frame cannot {} at {b}",
                        if is_start { "start" } else { "end" }
                    )))
                }
                B::Preceding(Some(n)) => (n, -1),
                B::Following(Some(n)) => (n, 1),
            };
            let value = match self.sql_to_expr(n, ctx)? {
                Expr::Literal(s) if s.data_type().is_integer() => {
                    arrow::compute::cast(&s.0, &arrow::datatypes::DataType::Int64)
                        .ok()
                        .and_then(|a| {
                            a.as_primitive_opt::<arrow::datatypes::Int64Type>()
                                .filter(|a| a.is_valid(0))
                                .map(|a| a.value(0))
                        })
                }
                _ => None,
            };
            match value {
                Some(v) if v >= 0 => Ok(Some(sign * v)),
                _ => Err(SluiceError::plan(format!(
                    "window frame {desc}: an offset must be a non-negative integer literal, \
                     got {n}"
                ))),
            }
        };
        let start = offset(&frame.start_bound, true)?;
        let end = offset(&end, false)?;
        Ok(Some(WindowFrame { start, end, range }))
    }
}
