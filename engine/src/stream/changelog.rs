//! Changelogs: the output of an updating streaming query (a non-windowed GROUP BY), whose
//! earlier rows are revised as input arrives. Every row carries its kind in an `op` column,
//! Flink's row kinds as strings: `+I` (insert), `-U` (the row before an update), `+U` (the
//! row after it) and `-D` (delete). Inside a plan the `op` column is the *last* column, so
//! filters and projections over a changelog keep their column positions and only carry it
//! along; the query's result moves it to the front, where the shell and sinks show it.
//!
//! Applying a changelog in order (insert `+I`/`+U` rows, remove one equal row per
//! `-U`/`-D`) gives the result the same query has over the input seen so far.

use std::sync::Arc;

use arrow::array::{ArrayRef, StringArray};
use arrow::datatypes::{DataType, Field, Schema, SchemaRef};

use crate::logical::plan::{JoinType, LogicalPlan};
use crate::physical::expr::PhysExpr;
use crate::physical::projection::ProjectionExec;
use crate::physical::ExecNode;

/// The name of the row-kind column.
pub const OP_COLUMN: &str = "op";

/// The kind of a changelog row.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RowKind {
    /// A new row.
    Insert,
    /// The old version of an updated row (retracts it).
    UpdateBefore,
    /// The new version of an updated row.
    UpdateAfter,
    /// A removed row.
    Delete,
}

impl RowKind {
    /// Flink's short form: `+I`, `-U`, `+U`, `-D`.
    pub fn as_str(self) -> &'static str {
        match self {
            RowKind::Insert => "+I",
            RowKind::UpdateBefore => "-U",
            RowKind::UpdateAfter => "+U",
            RowKind::Delete => "-D",
        }
    }

    /// The kind `s` names (`+I`, `-U`, `+U`, `-D`).
    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "+I" => RowKind::Insert,
            "-U" => RowKind::UpdateBefore,
            "+U" => RowKind::UpdateAfter,
            "-D" => RowKind::Delete,
            _ => return None,
        })
    }

    /// True for the kinds that add a row (`+I`, `+U`).
    pub fn is_addition(self) -> bool {
        matches!(self, RowKind::Insert | RowKind::UpdateAfter)
    }
}

/// The `op` column's field.
pub fn op_field() -> Field {
    Field::new(OP_COLUMN, DataType::Utf8, false)
}

/// An `op` column of `kinds`.
pub fn op_column(kinds: impl IntoIterator<Item = RowKind>) -> ArrayRef {
    Arc::new(StringArray::from_iter_values(
        kinds.into_iter().map(RowKind::as_str),
    ))
}

/// `schema` with the `op` column appended (the in-plan layout).
pub fn with_op_last(schema: &Schema) -> SchemaRef {
    let mut fields = schema.fields().to_vec();
    fields.push(Arc::new(op_field()));
    Arc::new(Schema::new(fields))
}

/// `schema` with the `op` column first (the layout of a query's result).
pub fn with_op_first(schema: &Schema) -> SchemaRef {
    let mut fields = vec![Arc::new(op_field())];
    fields.extend(schema.fields().iter().cloned());
    Arc::new(Schema::new(fields))
}

/// True when `plan`, run as a stream, produces a changelog rather than only inserts: it
/// has a GROUP BY without a window's start and end (see [`super::window_columns`]), an
/// outer join, or, with `late_updates` (`table.exec.emit.allow-lateness`), a windowed
/// GROUP BY, whose late rows revise windows that fired.
pub fn is_updating(plan: &LogicalPlan, late_updates: bool) -> bool {
    match plan {
        LogicalPlan::Aggregate {
            group_by, input, ..
        } => {
            late_updates
                || super::window_columns(group_by, input).is_none()
                || is_updating(input, late_updates)
        }
        LogicalPlan::Join {
            join_type: JoinType::Left | JoinType::Right | JoinType::Full,
            ..
        } => true,
        other => other
            .inputs()
            .into_iter()
            .any(|i| is_updating(i, late_updates)),
    }
}

/// The exprs of a projection over a changelog whose input has `input_width` columns, the
/// last of them `op`: `exprs`, then `op` carried along.
pub fn carry_op(mut exprs: Vec<PhysExpr>, input_width: usize) -> Vec<PhysExpr> {
    exprs.push(PhysExpr::Column(input_width - 1, OP_COLUMN.to_string()));
    exprs
}

/// `node` (a changelog with `op` last) with `op` moved to the front.
pub fn op_first(node: Arc<dyn ExecNode>) -> Arc<dyn ExecNode> {
    let schema = node.schema();
    let n = schema.fields().len();
    let mut exprs = vec![PhysExpr::Column(n - 1, OP_COLUMN.to_string())];
    exprs.extend(
        schema
            .fields()
            .iter()
            .take(n - 1)
            .enumerate()
            .map(|(i, f)| PhysExpr::Column(i, f.name().clone())),
    );
    let out = with_op_first(&Schema::new(schema.fields()[..n - 1].to_vec()));
    Arc::new(ProjectionExec::new(node, exprs, out))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn row_kinds_round_trip_and_know_additions() {
        for k in [
            RowKind::Insert,
            RowKind::UpdateBefore,
            RowKind::UpdateAfter,
            RowKind::Delete,
        ] {
            assert_eq!(RowKind::parse(k.as_str()), Some(k));
        }
        assert_eq!(RowKind::parse("+X"), None);
        assert!(RowKind::Insert.is_addition() && RowKind::UpdateAfter.is_addition());
        assert!(!RowKind::UpdateBefore.is_addition() && !RowKind::Delete.is_addition());
    }
}
