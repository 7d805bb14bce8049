//! Planning of window table functions in FROM: `TABLE(TUMBLE(TABLE t, DESCRIPTOR(ts),
//! size))`, `HOP(..., slide, size)`, `CUMULATE(..., step, size)` (the `TABLE` keyword is
//! removed by [`super::flink::rewrite_window_tvfs`] before parsing).

use std::sync::Arc;

use sqlparser::ast;

use super::flink::interval_micros;
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
        let args = unnamed_args(&f.args, &name)?;
        let usage = match name.as_str() {
            "TUMBLE" => "TUMBLE(TABLE t, DESCRIPTOR(time_col), size)",
            "HOP" => "HOP(TABLE t, DESCRIPTOR(time_col), slide, size)",
            "CUMULATE" => "CUMULATE(TABLE t, DESCRIPTOR(time_col), step, size)",
            "SESSION" => {
                return Err(SluiceError::unsupported(
                    "SESSION windows (TUMBLE, HOP and CUMULATE are supported)",
                ))
            }
            other => {
                return Err(SluiceError::unsupported(format!(
                    "table function {other} (window table functions: TUMBLE, HOP, CUMULATE)"
                )))
            }
        };
        let wanted = if name == "TUMBLE" { 3 } else { 4 };
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
            _ => WindowKind::Cumulate {
                step: interval(args[2])?,
                size: interval(args[3])?,
            },
        };
        Ok(Arc::new(LogicalPlan::window_tvf(input, kind, &column)?))
    }
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
