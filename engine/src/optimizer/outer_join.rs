//! Outer-join simplification: a filter above an outer join that can never be true on a
//! row whose null-supplying side is all NULL removes exactly the rows the outer join
//! adds, so the join may as well be inner (or, for a full join, one-sided).
//!
//! TPC-H q20 and q17 decorrelate `x > (SELECT agg ... WHERE correlated)` into a left join
//! with the aggregate and a filter `x > agg`; as an inner join the aggregate side can be
//! cut by the other side's keys (join reordering and dynamic filters apply).
//!
//! The test is conservative: an expression counts as NULL on an all-NULL side only when
//! that follows from its shape (columns of the side, NULL literals, and operators that
//! return NULL for a NULL operand). Functions, `IS NULL`, `COALESCE`-like CASEs and
//! anything else unknown keep the join as it is.

use crate::logical::expr::{BinaryOp, Expr};
use crate::logical::plan::JoinType;
use crate::logical::schema::PlanSchema;

/// The join type that gives the same rows as `join_type` under the filter terms `preds`
/// (a conjunction) evaluated above it; `left`/`right` are the join inputs' schemas.
pub fn simplify(
    join_type: JoinType,
    preds: &[Expr],
    left: &PlanSchema,
    right: &PlanSchema,
) -> JoinType {
    let rejects = |side: &PlanSchema, other: &PlanSchema| {
        let in_side = |e: &Expr| match e {
            Expr::Column(c) => {
                matches!(side.find(c), Ok(Some(_))) && matches!(other.find(c), Ok(None))
            }
            _ => false,
        };
        preds.iter().any(|p| rejects_null(p, &in_side))
    };
    match join_type {
        JoinType::Left if rejects(right, left) => JoinType::Inner,
        JoinType::Right if rejects(left, right) => JoinType::Inner,
        JoinType::Full => match (rejects(left, right), rejects(right, left)) {
            (true, true) => JoinType::Inner,
            // The rows with a NULL left side go; what is left is the left join.
            (true, false) => JoinType::Left,
            (false, true) => JoinType::Right,
            (false, false) => JoinType::Full,
        },
        other => other,
    }
}

/// True when `e` is NULL or FALSE whenever every column for which `in_side` holds is NULL.
fn rejects_null(e: &Expr, in_side: &dyn Fn(&Expr) -> bool) -> bool {
    match e {
        Expr::Binary {
            left,
            op: BinaryOp::And,
            right,
        } => rejects_null(left, in_side) || rejects_null(right, in_side),
        Expr::Binary {
            left,
            op: BinaryOp::Or,
            right,
        } => rejects_null(left, in_side) && rejects_null(right, in_side),
        Expr::IsNotNull(x) => is_null(x, in_side),
        Expr::Alias(x, _) => rejects_null(x, in_side),
        other => is_null(other, in_side),
    }
}

/// True when `e` is NULL whenever every column for which `in_side` holds is NULL.
fn is_null(e: &Expr, in_side: &dyn Fn(&Expr) -> bool) -> bool {
    match e {
        Expr::Column(_) => in_side(e),
        Expr::Literal(s) => s.is_null(),
        Expr::Binary { left, op, right } if op.is_arithmetic() || op.is_comparison() => {
            is_null(left, in_side) || is_null(right, in_side)
        }
        Expr::Alias(x, _) | Expr::Not(x) | Expr::Negative(x) => is_null(x, in_side),
        Expr::Cast { expr, .. } => is_null(expr, in_side),
        Expr::Like { expr, pattern, .. } => is_null(expr, in_side) || is_null(pattern, in_side),
        Expr::InList { expr, .. } => is_null(expr, in_side),
        // Whichever branch is taken is NULL (a missing ELSE is NULL).
        Expr::Case {
            when_then,
            else_expr,
            ..
        } => {
            when_then.iter().all(|(_, then)| is_null(then, in_side))
                && else_expr.as_deref().is_none_or(|x| is_null(x, in_side))
        }
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::logical::expr::{col, lit, Scalar};
    use crate::logical::schema::PlanSchema;
    use arrow::datatypes::{DataType, Field, Schema};

    fn schema(rel: &str, cols: &[&str]) -> PlanSchema {
        let fields: Vec<Field> = cols
            .iter()
            .map(|c| Field::new(*c, DataType::Int64, true))
            .collect();
        PlanSchema::from_arrow(Some(rel), &Schema::new(fields))
    }

    fn simplified(join_type: JoinType, pred: Expr) -> JoinType {
        simplify(
            join_type,
            &[pred],
            &schema("l", &["a", "b"]),
            &schema("r", &["c", "d"]),
        )
    }

    #[test]
    fn the_null_literal_is_null() {
        // Type Null has no null buffer; the rule above depends on seeing it as NULL.
        assert!(Scalar::null().is_null());
        assert_eq!(Scalar::null().to_string(), "NULL");
        assert!(!matches!(lit(0i64), Expr::Literal(s) if s.is_null()));
    }

    #[test]
    fn comparisons_on_the_null_side_make_the_join_inner() {
        assert_eq!(
            simplified(JoinType::Left, col("c").gt(lit(1i64))),
            JoinType::Inner
        );
        assert_eq!(
            simplified(JoinType::Right, (col("a") + lit(1i64)).eq(col("d"))),
            JoinType::Inner
        );
        // q20's shape: x > CASE WHEN key IS NULL THEN NULL ELSE agg END
        let case = Expr::Case {
            operand: None,
            when_then: vec![(col("c").is_null(), lit(Scalar::null()))],
            else_expr: Some(Box::new(col("d"))),
        };
        assert_eq!(
            simplified(JoinType::Left, col("a").gt(case)),
            JoinType::Inner
        );
    }

    #[test]
    fn terms_true_on_null_rows_keep_the_outer_join() {
        // Filters on the preserved side, IS NULL, OR with a preserved-side branch, and a
        // CASE that turns NULL into a value (COUNT's 0) all let NULL-extended rows through.
        for p in [
            col("a").gt(lit(1i64)),
            col("c").is_null(),
            col("c").gt(lit(1i64)).or(col("a").gt(lit(1i64))),
            col("a").lt(Expr::Case {
                operand: None,
                when_then: vec![(col("c").is_null(), lit(0i64))],
                else_expr: Some(Box::new(col("d"))),
            }),
        ] {
            assert_eq!(simplified(JoinType::Left, p), JoinType::Left);
        }
    }

    #[test]
    fn full_joins_lose_the_side_the_filter_rejects() {
        // `c > 1` drops the left rows without a match: every right row stays.
        assert_eq!(
            simplified(JoinType::Full, col("c").gt(lit(1i64))),
            JoinType::Right
        );
        assert_eq!(
            simplified(JoinType::Full, col("a").gt(lit(1i64))),
            JoinType::Left
        );
        assert_eq!(
            simplified(JoinType::Full, col("a").eq(col("c"))),
            JoinType::Inner
        );
    }
}
