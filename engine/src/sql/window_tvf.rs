//! Planning of window table functions in FROM: `TABLE(TUMBLE(TABLE t, DESCRIPTOR(ts),
//! size))`, `HOP(..., slide, size)`, `CUMULATE(..., step, size)` and `SESSION(TABLE t
//! [PARTITION BY keys], DESCRIPTOR(ts), gap)` (the `TABLE` keyword is removed and
//! `PARTITION BY` made an argument by [`super::flink::rewrite_window_tvfs`] before
//! parsing).

use std::sync::Arc;

use sqlparser::ast;

use super::flink::{interval_micros, SESSION_PARTITION_ARG};
use super::planner::SqlPlanner;
use super::{ident, object_name};
use crate::error::{Result, SluiceError};
use crate::logical::plan::LogicalPlan;
use crate::logical::time::WindowKind;

impl SqlPlanner<'_> {
    /// The plan of `TABLE(<call>)`: a window table function over a table or subquery.
    pub(crate) fn plan_window_tvf(&mut self, call: &ast::Expr) -> Result<Arc<LogicalPlan>> {
        let ast::Expr::Function(f) = call else {
            return Err(SluiceError::unsupported(format!("TABLE({call})")));
        };
        let name = object_name(&f.name).to_uppercase();
        let mut args = unnamed_args(&f.args, &name)?;
        let usage = match name.as_str() {
            "TUMBLE" => "TUMBLE(TABLE t, DESCRIPTOR(time_col), size)",
            "HOP" => "HOP(TABLE t, DESCRIPTOR(time_col), slide, size)",
            "CUMULATE" => "CUMULATE(TABLE t, DESCRIPTOR(time_col), step, size)",
            "SESSION" => "SESSION(TABLE t [PARTITION BY key_cols], DESCRIPTOR(time_col), gap)",
            other => {
                return Err(SluiceError::unsupported(format!(
                    "table function {other} (window table functions: TUMBLE, HOP, CUMULATE, \
                     SESSION)"
                )))
            }
        };
        let partition_by = match args.get(1).copied().and_then(partition_keys) {
            Some(keys) => {
                args.remove(1);
                keys.map_err(|e| SluiceError::plan(format!("{name}: {e}; usage: {usage}")))?
            }
            None => Vec::new(),
        };
        let wanted = if matches!(name.as_str(), "TUMBLE" | "SESSION") {
            3
        } else {
            4
        };
        if args.len() != wanted {
            return Err(SluiceError::plan(format!(
                "{name} takes {wanted} arguments: {usage}"
            )));
        }
        let input = match args[0] {
            ast::Expr::Identifier(_) | ast::Expr::CompoundIdentifier(_) => {
                let table = match args[0] {
                    ast::Expr::Identifier(i) => ident(i),
                    ast::Expr::CompoundIdentifier(parts) => {
                        parts.iter().map(ident).collect::<Vec<_>>().join(".")
                    }
                    _ => unreachable!("matched above"),
                };
                let scan = self.lookup_table(&table)?;
                Arc::new(LogicalPlan::alias(scan, &table))
            }
            ast::Expr::Subquery(q) => self.plan_query(q)?,
            other => {
                return Err(SluiceError::plan(format!(
                    "{name}: the first argument must be TABLE name, got {other}; usage: {usage}"
                )))
            }
        };
        let column = descriptor(args[1]).ok_or_else(|| {
            SluiceError::plan(format!(
                "{name}: the second argument must be DESCRIPTOR(time_col), got {}; usage: {usage}",
                args[1]
            ))
        })?;
        let interval = |e: &ast::Expr| {
            interval_micros(e).ok_or_else(|| {
                SluiceError::plan(format!(
                    "{name}: expected a constant INTERVAL (e.g. INTERVAL '10' SECOND), got {e}"
                ))
            })
        };
        let kind = match name.as_str() {
            "TUMBLE" => WindowKind::Tumble {
                size: interval(args[2])?,
            },
            "HOP" => WindowKind::Hop {
                slide: interval(args[2])?,
                size: interval(args[3])?,
            },
            "SESSION" => WindowKind::Session {
                gap: interval(args[2])?,
            },
            _ => WindowKind::Cumulate {
                step: interval(args[2])?,
                size: interval(args[3])?,
            },
        };
        Ok(Arc::new(LogicalPlan::window_tvf(
            input,
            kind,
            &column,
            &partition_by,
        )?))
    }
}

/// The column names of a rewritten `PARTITION BY` argument (`PARTITION_BY(k1, k2)`);
/// `None` when `e` is not one.
fn partition_keys(e: &ast::Expr) -> Option<Result<Vec<String>>> {
    let ast::Expr::Function(f) = e else {
        return None;
    };
    if !object_name(&f.name).eq_ignore_ascii_case(SESSION_PARTITION_ARG) {
        return None;
    }
    Some(unnamed_args(&f.args, "PARTITION BY").and_then(|args| {
        args.iter()
            .map(|a| match a {
                ast::Expr::Identifier(i) => Ok(ident(i)),
                other => Err(SluiceError::plan(format!(
                    "PARTITION BY takes column names, got {other}"
                ))),
            })
            .collect()
    }))
}

/// The positional arguments of a call; named arguments are refused.
fn unnamed_args<'a>(args: &'a ast::FunctionArguments, name: &str) -> Result<Vec<&'a ast::Expr>> {
    let ast::FunctionArguments::List(list) = args else {
        return Err(SluiceError::plan(format!("{name} needs arguments")));
    };
    list.args
        .iter()
        .map(|a| match a {
            ast::FunctionArg::Unnamed(ast::FunctionArgExpr::Expr(e)) => Ok(e),
            other => Err(SluiceError::unsupported(format!(
                "{name} argument {other} (only positional arguments are supported)"
            ))),
        })
        .collect()
}

/// The column of `DESCRIPTOR(col)`.
fn descriptor(e: &ast::Expr) -> Option<String> {
    let ast::Expr::Function(f) = e else {
        return None;
    };
    if !object_name(&f.name).eq_ignore_ascii_case("descriptor") {
        return None;
    }
    match unnamed_args(&f.args, "DESCRIPTOR").ok()?.as_slice() {
        [ast::Expr::Identifier(i)] => Some(ident(i)),
        _ => None,
    }
}
