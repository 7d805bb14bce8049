//! Time bounds of an interval join: from a join condition such as
//! `l.ts BETWEEN r.ts - INTERVAL '10' SECOND AND r.ts` (or any conjunction of `<`, `<=`,
//! `>`, `>=`, `=` between a left and a right timestamp column, each plus or minus a constant
//! interval), the range `lower <= l.ts - r.ts <= upper`. The join uses it to drop rows no
//! future row of the other side can match once the watermark has passed them. A window
//! join (equal `window_end`s) is the case `0 <= l.window_end - r.window_end <= 0`.

use arrow::datatypes::DataType;

use crate::error::Result;
use crate::logical::expr::{split_conjunction, BinaryOp, Column, Expr};
use crate::logical::plan::LogicalPlan;
use crate::logical::schema::PlanSchema;
use crate::logical::time::interval_scalar_micros;
use crate::physical::expr::{create_physical_expr, PhysExpr};
use crate::stream::is_window_end;

/// `lower <= left - right <= upper`, in microseconds, between two time columns.
#[derive(Debug, Clone)]
pub struct TimeBounds {
    /// The left input's time column (over the left schema).
    pub left: PhysExpr,
    /// The right input's time column (over the right schema).
    pub right: PhysExpr,
    /// Smallest `left - right` that can match (`None`: unbounded).
    pub lower: Option<i64>,
    /// Largest `left - right` that can match (`None`: unbounded).
    pub upper: Option<i64>,
}

/// Which input a time column belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Input {
    Left,
    Right,
}

/// A time column plus a constant offset (µs).
struct Term {
    input: Input,
    column: Column,
    offset: i64,
}

fn term(e: &Expr, ls: &PlanSchema, rs: &PlanSchema) -> Option<Term> {
    match e {
        Expr::Column(c) => {
            let (input, schema) = if ls.index_of(c).is_ok() {
                (Input::Left, ls)
            } else {
                (Input::Right, rs)
            };
            let i = schema.index_of(c).ok()?;
            matches!(
                schema.fields()[i].field.data_type(),
                DataType::Timestamp(..)
            )
            .then(|| Term {
                input,
                column: c.clone(),
                offset: 0,
            })
        }
        Expr::Binary { left, op, right } => {
            let Expr::Literal(lit) = right.as_ref() else {
                return None;
            };
            let d = interval_scalar_micros(lit)?;
            let t = term(left, ls, rs)?;
            let offset = match op {
                BinaryOp::Plus => t.offset.checked_add(d)?,
                BinaryOp::Minus => t.offset.checked_sub(d)?,
                _ => return None,
            };
            Some(Term { offset, ..t })
        }
        _ => None,
    }
}

/// The time bounds `filter` (over the joined schema of `ls` and `rs`) puts on one left and
/// one right time column, if any.
pub fn time_bounds(filter: &Expr, ls: &PlanSchema, rs: &PlanSchema) -> Result<Option<TimeBounds>> {
    let mut parts = Vec::new();
    split_conjunction(filter.clone(), &mut parts);
    let mut found: Option<(Column, Column, Option<i64>, Option<i64>)> = None;
    for p in parts {
        let Expr::Binary { left, op, right } = p else {
            continue;
        };
        let (Some(a), Some(b)) = (term(&left, ls, rs), term(&right, ls, rs)) else {
            continue;
        };
        // As `l - r  op'  d`.
        let (l, r, d, op) = match (a.input, b.input) {
            (Input::Left, Input::Right) => (a.column, b.column, b.offset - a.offset, op),
            (Input::Right, Input::Left) => (b.column, a.column, a.offset - b.offset, flip(op)),
            _ => continue,
        };
        let (lo, hi) = match op {
            BinaryOp::Gt | BinaryOp::GtEq => (Some(d), None),
            BinaryOp::Lt | BinaryOp::LtEq => (None, Some(d)),
            BinaryOp::Eq => (Some(d), Some(d)),
            _ => continue,
        };
        match &mut found {
            None => found = Some((l, r, lo, hi)),
            Some((fl, fr, flo, fhi)) if *fl == l && *fr == r => {
                *flo = max_opt(*flo, lo);
                *fhi = min_opt(*fhi, hi);
            }
            Some(_) => {} // a second pair of time columns: the first pair is enough
        }
    }
    let Some((l, r, lower, upper)) = found else {
        return Ok(None);
    };
    Ok(Some(TimeBounds {
        left: create_physical_expr(&Expr::Column(l), ls)?,
        right: create_physical_expr(&Expr::Column(r), rs)?,
        lower,
        upper,
    }))
}

/// The bounds of a *window join*: an equi-join with `left.window_end = right.window_end`
/// among its keys (each traced back to a window table function's `window_end`, renamed or
/// not) pairs rows of the same window only, so a row can go once the watermark has passed
/// its window's end: the bounds `0 <= l.window_end - r.window_end <= 0`.
pub fn window_join_bounds(
    on: &[(Expr, Expr)],
    left: &LogicalPlan,
    right: &LogicalPlan,
) -> Result<Option<TimeBounds>> {
    let Some((l, r)) = on
        .iter()
        .find(|(l, r)| is_window_end(l, left) && is_window_end(r, right))
    else {
        return Ok(None);
    };
    Ok(Some(TimeBounds {
        left: create_physical_expr(l, left.schema())?,
        right: create_physical_expr(r, right.schema())?,
        lower: Some(0),
        upper: Some(0),
    }))
}

fn flip(op: BinaryOp) -> BinaryOp {
    match op {
        BinaryOp::Gt => BinaryOp::Lt,
        BinaryOp::GtEq => BinaryOp::LtEq,
        BinaryOp::Lt => BinaryOp::Gt,
        BinaryOp::LtEq => BinaryOp::GtEq,
        other => other,
    }
}

fn max_opt(a: Option<i64>, b: Option<i64>) -> Option<i64> {
    match (a, b) {
        (Some(x), Some(y)) => Some(x.max(y)),
        (x, None) | (None, x) => x,
    }
}

fn min_opt(a: Option<i64>, b: Option<i64>) -> Option<i64> {
    match (a, b) {
        (Some(x), Some(y)) => Some(x.min(y)),
        (x, None) | (None, x) => x,
    }
}
