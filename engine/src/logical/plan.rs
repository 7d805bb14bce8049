//! Logical plans: a tree of relational operators with qualified schemas. The SQL planner
//! and the DataFrame API both build these; the optimizer rewrites them; the physical
//! planner turns them into operators.

use std::fmt::{self, Write};
use std::sync::Arc;

use arrow::datatypes::{DataType, Field};

use crate::catalog::TableProvider;
use crate::error::{Result, SluiceError};
use crate::logical::expr::{AggFunc, Expr, SortExpr, WindowFunc};
use crate::logical::schema::{PlanSchema, QField};
use crate::physical::expr::expr_type;

/// Join types.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum JoinType {
    /// Matching pairs only.
    Inner,
    /// All left rows; NULLs where the right has no match.
    Left,
    /// All right rows; NULLs where the left has no match.
    Right,
    /// All rows of both sides.
    Full,
    /// Left rows that have a match (output: left columns only).
    Semi,
    /// Left rows that have no match (output: left columns only).
    Anti,
}

impl fmt::Display for JoinType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            JoinType::Inner => "Inner",
            JoinType::Left => "Left",
            JoinType::Right => "Right",
            JoinType::Full => "Full",
            JoinType::Semi => "LeftSemi",
            JoinType::Anti => "LeftAnti",
        })
    }
}

/// A node of a logical plan.
#[derive(Debug, Clone)]
pub enum LogicalPlan {
    /// Read a table.
    Scan {
        /// Catalog name.
        table: String,
        /// The table.
        source: Arc<dyn TableProvider>,
        /// Column indices of the table to read (`None` = all).
        projection: Option<Vec<usize>>,
        /// Predicates the scan may use to skip data (it still filters exactly above).
        filters: Vec<Expr>,
        /// Output schema (qualified by the table name).
        schema: PlanSchema,
    },
    /// A relation with no columns and one row (`SELECT 1`) or none.
    Empty {
        /// One row (true) or none.
        produce_one_row: bool,
        /// Output schema (empty).
        schema: PlanSchema,
    },
    /// Literal rows (`VALUES`).
    Values {
        /// Output schema.
        schema: PlanSchema,
        /// Rows of constant expressions.
        rows: Vec<Vec<Expr>>,
    },
    /// Keep rows where the predicate is true.
    Filter {
        /// Input.
        input: Arc<LogicalPlan>,
        /// Boolean predicate.
        predicate: Expr,
    },
    /// Compute expressions.
    Projection {
        /// Input.
        input: Arc<LogicalPlan>,
        /// Output expressions.
        exprs: Vec<Expr>,
        /// Output schema.
        schema: PlanSchema,
    },
    /// Group and aggregate; output is the group keys then the aggregates.
    Aggregate {
        /// Input.
        input: Arc<LogicalPlan>,
        /// GROUP BY expressions.
        group_by: Vec<Expr>,
        /// Aggregate calls.
        aggs: Vec<Expr>,
        /// Output schema.
        schema: PlanSchema,
    },
    /// Join two inputs.
    Join {
        /// Left input.
        left: Arc<LogicalPlan>,
        /// Right input.
        right: Arc<LogicalPlan>,
        /// Join type.
        join_type: JoinType,
        /// Equi-join keys (left expr, right expr).
        on: Vec<(Expr, Expr)>,
        /// Extra condition over both sides.
        filter: Option<Expr>,
        /// NOT IN semantics for an anti join: a NULL on either side removes rows.
        null_aware: bool,
        /// Output schema.
        schema: PlanSchema,
    },
    /// Sort (optionally keeping only the first `fetch` rows).
    Sort {
        /// Input.
        input: Arc<LogicalPlan>,
        /// Sort keys.
        order_by: Vec<SortExpr>,
        /// Top-k.
        fetch: Option<usize>,
    },
    /// Skip and take rows.
    Limit {
        /// Input.
        input: Arc<LogicalPlan>,
        /// OFFSET.
        skip: usize,
        /// LIMIT.
        fetch: Option<usize>,
    },
    /// Concatenate inputs with the same column types (UNION ALL).
    Union {
        /// Inputs.
        inputs: Vec<Arc<LogicalPlan>>,
        /// Output schema (the first input's names).
        schema: PlanSchema,
    },
    /// Append window function columns.
    Window {
        /// Input.
        input: Arc<LogicalPlan>,
        /// Window expressions.
        exprs: Vec<Expr>,
        /// Output schema: input columns then one per window expression.
        schema: PlanSchema,
    },
    /// Event time: `column` (a timestamp) is the rows' event time, and watermarks trail
    /// the largest time seen by `delay_micros`. Streaming plans generate watermarks here;
    /// batch plans pass rows through.
    Watermark {
        /// Input.
        input: Arc<LogicalPlan>,
        /// Index of the event-time column.
        column: usize,
        /// Bounded out-of-orderness, in microseconds.
        delay_micros: i64,
    },
    /// A window table function: every input row once per window holding it, with the
    /// columns `window_start`, `window_end` and `window_time` (end minus 1 µs) appended.
    WindowTvf {
        /// Input.
        input: Arc<LogicalPlan>,
        /// Window shape.
        kind: super::time::WindowKind,
        /// Index of the time column windows are taken over.
        time_column: usize,
        /// SESSION: the columns whose values keep sessions apart (`PARTITION BY`).
        partition_by: Vec<usize>,
        /// Output schema: input columns then the three window columns.
        schema: PlanSchema,
    },
    /// Rename the relation (`(subquery) AS alias`, `table AS alias`).
    Alias {
        /// Input.
        input: Arc<LogicalPlan>,
        /// New relation name.
        alias: String,
        /// Requalified schema.
        schema: PlanSchema,
    },
}

/// The result type of an aggregate over `input`.
pub fn agg_type(func: AggFunc, input: Option<&DataType>) -> Result<DataType> {
    use DataType::*;
    Ok(match (func, input) {
        (AggFunc::Count, _) => Int64,
        (_, None) => return Err(SluiceError::plan(format!("{func}() needs an argument"))),
        (AggFunc::Min | AggFunc::Max, Some(t)) => t.clone(),
        (AggFunc::Sum, Some(t)) if t.is_integer() => Int64,
        (AggFunc::Sum, Some(Decimal128(_, s))) => Decimal128(38, *s),
        (AggFunc::Avg, Some(Decimal128(_, s))) => Decimal128(38, (*s + 4).min(38)),
        (AggFunc::Sum | AggFunc::Avg, Some(t)) if t.is_numeric() => Float64,
        (AggFunc::Sum | AggFunc::Avg, Some(Null)) => Float64,
        (f, Some(t)) => return Err(SluiceError::Type(format!("{f}() is not defined for {t}"))),
    })
}

/// The type of an aggregate or window expression (or any expression) over `schema`.
pub fn any_expr_type(e: &Expr, schema: &PlanSchema) -> Result<DataType> {
    match e {
        Expr::Alias(inner, _) => any_expr_type(inner, schema),
        Expr::Aggregate { func, args, .. } => {
            let t = args.first().map(|a| expr_type(a, schema)).transpose()?;
            agg_type(*func, t.as_ref())
        }
        Expr::Window { func, args, .. } => match func {
            WindowFunc::RowNumber | WindowFunc::Rank | WindowFunc::DenseRank => Ok(DataType::Int64),
            WindowFunc::Lag | WindowFunc::Lead => match args.first() {
                Some(a) => expr_type(a, schema),
                None => Err(SluiceError::plan(format!("{func}() needs an argument"))),
            },
            WindowFunc::Agg(a) => {
                let t = args.first().map(|x| expr_type(x, schema)).transpose()?;
                agg_type(*a, t.as_ref())
            }
        },
        other => expr_type(other, schema),
    }
}

/// The output field of `e` over `schema` (the qualifier is kept for plain column references).
pub fn expr_field(e: &Expr, schema: &PlanSchema) -> Result<QField> {
    if let Expr::Column(c) = e {
        let i = schema.index_of(c)?;
        return Ok(schema.field(i).clone());
    }
    let t = any_expr_type(e, schema)?;
    Ok(QField {
        qualifier: None,
        field: Arc::new(Field::new(e.output_name(), t, true)),
    })
}

impl LogicalPlan {
    /// The output schema.
    pub fn schema(&self) -> &PlanSchema {
        match self {
            LogicalPlan::Scan { schema, .. }
            | LogicalPlan::Empty { schema, .. }
            | LogicalPlan::Values { schema, .. }
            | LogicalPlan::Projection { schema, .. }
            | LogicalPlan::Aggregate { schema, .. }
            | LogicalPlan::Join { schema, .. }
            | LogicalPlan::Union { schema, .. }
            | LogicalPlan::Window { schema, .. }
            | LogicalPlan::WindowTvf { schema, .. }
            | LogicalPlan::Alias { schema, .. } => schema,
            LogicalPlan::Filter { input, .. }
            | LogicalPlan::Watermark { input, .. }
            | LogicalPlan::Sort { input, .. }
            | LogicalPlan::Limit { input, .. } => input.schema(),
        }
    }

    /// The inputs.
    pub fn inputs(&self) -> Vec<&Arc<LogicalPlan>> {
        match self {
            LogicalPlan::Scan { .. } | LogicalPlan::Empty { .. } | LogicalPlan::Values { .. } => {
                vec![]
            }
            LogicalPlan::Filter { input, .. }
            | LogicalPlan::Projection { input, .. }
            | LogicalPlan::Aggregate { input, .. }
            | LogicalPlan::Sort { input, .. }
            | LogicalPlan::Limit { input, .. }
            | LogicalPlan::Window { input, .. }
            | LogicalPlan::Watermark { input, .. }
            | LogicalPlan::WindowTvf { input, .. }
            | LogicalPlan::Alias { input, .. } => vec![input],
            LogicalPlan::Join { left, right, .. } => vec![left, right],
            LogicalPlan::Union { inputs, .. } => inputs.iter().collect(),
        }
    }

    /// A projection, computing its schema.
    pub fn project(input: Arc<LogicalPlan>, exprs: Vec<Expr>) -> Result<LogicalPlan> {
        let fields = exprs
            .iter()
            .map(|e| match e {
                Expr::Alias(inner, name) => {
                    let t = any_expr_type(inner, input.schema())?;
                    Ok(QField {
                        qualifier: None,
                        field: Arc::new(Field::new(name, t, true)),
                    })
                }
                other => expr_field(other, input.schema()),
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(LogicalPlan::Projection {
            input,
            exprs,
            schema: PlanSchema::new(fields),
        })
    }

    /// A filter, checking that the predicate is boolean.
    pub fn filter(input: Arc<LogicalPlan>, predicate: Expr) -> Result<LogicalPlan> {
        let t = expr_type(&predicate, input.schema())?;
        if !matches!(t, DataType::Boolean | DataType::Null) {
            return Err(SluiceError::Type(format!(
                "filter predicate `{predicate}` must be boolean, got {t}"
            )));
        }
        Ok(LogicalPlan::Filter { input, predicate })
    }

    /// An aggregation, computing its schema.
    pub fn aggregate(
        input: Arc<LogicalPlan>,
        group_by: Vec<Expr>,
        aggs: Vec<Expr>,
    ) -> Result<LogicalPlan> {
        let mut fields = Vec::new();
        for g in &group_by {
            fields.push(expr_field(g, input.schema())?);
        }
        for a in &aggs {
            let t = any_expr_type(a, input.schema())?;
            fields.push(QField {
                qualifier: None,
                field: Arc::new(Field::new(a.output_name(), t, true)),
            });
        }
        Ok(LogicalPlan::Aggregate {
            input,
            group_by,
            aggs,
            schema: PlanSchema::new(fields),
        })
    }

    /// A join, computing its schema.
    pub fn join(
        left: Arc<LogicalPlan>,
        right: Arc<LogicalPlan>,
        join_type: JoinType,
        on: Vec<(Expr, Expr)>,
        filter: Option<Expr>,
        null_aware: bool,
    ) -> Result<LogicalPlan> {
        let (l, r) = (left.schema(), right.schema());
        let schema = match join_type {
            JoinType::Inner => l.join(r),
            JoinType::Left => l.join(&r.nullable()),
            JoinType::Right => l.nullable().join(r),
            JoinType::Full => l.nullable().join(&r.nullable()),
            JoinType::Semi | JoinType::Anti => l.clone(),
        };
        let both = l.join(r);
        for (a, b) in &on {
            expr_type(a, l)?;
            expr_type(b, r)?;
        }
        if let Some(f) = &filter {
            expr_type(f, &both)?;
        }
        Ok(LogicalPlan::Join {
            left,
            right,
            join_type,
            on,
            filter,
            null_aware,
            schema,
        })
    }

    /// UNION ALL of inputs whose column types already agree; the output takes the first
    /// input's names, unqualified and nullable.
    pub fn union_all(inputs: Vec<Arc<LogicalPlan>>) -> Result<LogicalPlan> {
        let first = inputs
            .first()
            .ok_or_else(|| SluiceError::plan("UNION needs at least one input"))?;
        let schema = PlanSchema::new(
            first
                .schema()
                .fields()
                .iter()
                .map(|f| QField {
                    qualifier: None,
                    field: Arc::new(f.field.as_ref().clone().with_nullable(true)),
                })
                .collect(),
        );
        Ok(LogicalPlan::Union { inputs, schema })
    }

    /// Renames the relation.
    pub fn alias(input: Arc<LogicalPlan>, alias: &str) -> LogicalPlan {
        let schema = input.schema().with_qualifier(alias);
        LogicalPlan::Alias {
            input,
            alias: alias.to_string(),
            schema,
        }
    }

    /// A window node, computing its schema.
    pub fn window(input: Arc<LogicalPlan>, exprs: Vec<Expr>) -> Result<LogicalPlan> {
        let mut fields = input.schema().fields().to_vec();
        for e in &exprs {
            let t = any_expr_type(e, input.schema())?;
            fields.push(QField {
                qualifier: None,
                field: Arc::new(Field::new(e.output_name(), t, true)),
            });
        }
        Ok(LogicalPlan::Window {
            input,
            exprs,
            schema: PlanSchema::new(fields),
        })
    }

    /// Rebuilds this node over new inputs (same order as [`LogicalPlan::inputs`]).
    pub fn with_inputs(&self, mut inputs: Vec<Arc<LogicalPlan>>) -> Result<LogicalPlan> {
        let mut next = || {
            if inputs.is_empty() {
                Err(SluiceError::plan(
                    "internal: with_inputs got too few inputs",
                ))
            } else {
                Ok(inputs.remove(0))
            }
        };
        Ok(match self {
            LogicalPlan::Scan { .. } | LogicalPlan::Empty { .. } | LogicalPlan::Values { .. } => {
                self.clone()
            }
            LogicalPlan::Filter { predicate, .. } => LogicalPlan::Filter {
                input: next()?,
                predicate: predicate.clone(),
            },
            LogicalPlan::Projection { exprs, .. } => LogicalPlan::project(next()?, exprs.clone())?,
            LogicalPlan::Aggregate { group_by, aggs, .. } => {
                LogicalPlan::aggregate(next()?, group_by.clone(), aggs.clone())?
            }
            LogicalPlan::Sort {
                order_by, fetch, ..
            } => LogicalPlan::Sort {
                input: next()?,
                order_by: order_by.clone(),
                fetch: *fetch,
            },
            LogicalPlan::Limit { skip, fetch, .. } => LogicalPlan::Limit {
                input: next()?,
                skip: *skip,
                fetch: *fetch,
            },
            LogicalPlan::Window { exprs, .. } => LogicalPlan::window(next()?, exprs.clone())?,
            LogicalPlan::Alias { alias, .. } => LogicalPlan::alias(next()?, alias),
            LogicalPlan::Watermark {
                column,
                delay_micros,
                ..
            } => LogicalPlan::Watermark {
                input: next()?,
                column: *column,
                delay_micros: *delay_micros,
            },
            LogicalPlan::WindowTvf {
                kind,
                time_column,
                partition_by,
                schema,
                ..
            } => LogicalPlan::WindowTvf {
                input: next()?,
                kind: *kind,
                time_column: *time_column,
                partition_by: partition_by.clone(),
                schema: schema.clone(),
            },
            LogicalPlan::Join {
                join_type,
                on,
                filter,
                null_aware,
                ..
            } => {
                let l = next()?;
                let r = next()?;
                LogicalPlan::join(l, r, *join_type, on.clone(), filter.clone(), *null_aware)?
            }
            LogicalPlan::Union { schema, .. } => LogicalPlan::Union {
                inputs: std::mem::take(&mut inputs),
                schema: schema.clone(),
            },
        })
    }

    /// An indented, one-node-per-line rendering (used by EXPLAIN).
    pub fn display_indent(&self) -> String {
        self.display_indent_with(&|_| String::new())
    }

    /// Like [`LogicalPlan::display_indent`], with `note(node)` appended to each node's line.
    pub fn display_indent_with(&self, note: &dyn Fn(&LogicalPlan) -> String) -> String {
        let mut s = String::new();
        self.fmt_indent(&mut s, 0, note);
        s
    }

    fn fmt_indent(&self, out: &mut String, depth: usize, note: &dyn Fn(&LogicalPlan) -> String) {
        let pad = "  ".repeat(depth);
        let list = |v: &[Expr]| {
            v.iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join(", ")
        };
        let line = match self {
            LogicalPlan::Scan {
                table,
                projection,
                filters,
                schema,
                ..
            } => {
                let cols: Vec<String> = schema
                    .fields()
                    .iter()
                    .map(|f| f.field.name().clone())
                    .collect();
                let mut l = format!("Scan: {table}");
                if projection.is_some() {
                    let _ = write!(l, " projection=[{}]", cols.join(", "));
                }
                if !filters.is_empty() {
                    let _ = write!(l, " filters=[{}]", list(filters));
                }
                l
            }
            LogicalPlan::Empty {
                produce_one_row, ..
            } => format!("Empty: rows={}", u8::from(*produce_one_row)),
            LogicalPlan::Values { rows, .. } => format!("Values: {} rows", rows.len()),
            LogicalPlan::Filter { predicate, .. } => format!("Filter: {predicate}"),
            LogicalPlan::Projection { exprs, .. } => format!("Projection: {}", list(exprs)),
            LogicalPlan::Aggregate { group_by, aggs, .. } => {
                format!(
                    "Aggregate: groupBy=[{}], aggr=[{}]",
                    list(group_by),
                    list(aggs)
                )
            }
            LogicalPlan::Join {
                join_type,
                on,
                filter,
                null_aware,
                ..
            } => {
                let keys: Vec<String> = on.iter().map(|(a, b)| format!("{a} = {b}")).collect();
                let mut l = format!("Join: {join_type} on=[{}]", keys.join(", "));
                if let Some(f) = filter {
                    let _ = write!(l, " filter={f}");
                }
                if *null_aware {
                    l.push_str(" null_aware");
                }
                l
            }
            LogicalPlan::Sort {
                order_by, fetch, ..
            } => {
                let keys: Vec<String> = order_by.iter().map(ToString::to_string).collect();
                let mut l = format!("Sort: {}", keys.join(", "));
                if let Some(f) = fetch {
                    let _ = write!(l, " fetch={f}");
                }
                l
            }
            LogicalPlan::Limit { skip, fetch, .. } => format!(
                "Limit: skip={skip}, fetch={}",
                fetch.map_or("None".to_string(), |f| f.to_string())
            ),
            LogicalPlan::Union { .. } => "Union".to_string(),
            LogicalPlan::Window { exprs, .. } => format!("Window: {}", list(exprs)),
            LogicalPlan::Alias { alias, .. } => format!("Alias: {alias}"),
            LogicalPlan::Watermark {
                input,
                column,
                delay_micros,
            } => format!(
                "Watermark: {} - {} ms",
                input.schema().fields()[*column].field.name(),
                delay_micros / 1000
            ),
            LogicalPlan::WindowTvf {
                kind,
                time_column,
                partition_by,
                input,
                ..
            } => {
                let name = |i: usize| input.schema().fields()[i].field.name().clone();
                let keys: Vec<String> = partition_by.iter().map(|&i| name(i)).collect();
                format!(
                    "WindowTvf: {kind} on {}{}",
                    name(*time_column),
                    if keys.is_empty() {
                        String::new()
                    } else {
                        format!(" PARTITION BY {}", keys.join(", "))
                    }
                )
            }
        };
        let _ = writeln!(out, "{pad}{line}{}", note(self));
        for i in self.inputs() {
            i.fmt_indent(out, depth + 1, note);
        }
    }
}
