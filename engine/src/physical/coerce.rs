//! Implicit type coercion: which common type two operands are cast to before an Arrow
//! kernel sees them. Kept in one place so SQL and DataFrame expressions behave the same.

use arrow::array::{Array, ArrayRef};
use arrow::datatypes::DataType;

use crate::logical::expr::BinaryOp;

/// Signed/unsigned integer types.
pub fn is_integer(t: &DataType) -> bool {
    t.is_integer()
}

/// Float types.
pub fn is_float(t: &DataType) -> bool {
    t.is_floating()
}

/// Character string types.
pub fn is_string(t: &DataType) -> bool {
    matches!(t, DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View)
}

/// Any number.
pub fn is_numeric(t: &DataType) -> bool {
    is_integer(t) || is_float(t) || matches!(t, DataType::Decimal128(..))
}

/// Decimal digits an integer type needs.
fn integer_digits(t: &DataType) -> u8 {
    match t {
        DataType::Int8 | DataType::UInt8 => 3,
        DataType::Int16 | DataType::UInt16 => 5,
        DataType::Int32 | DataType::UInt32 => 10,
        _ => 20,
    }
}

/// The decimal type an integer type fits in exactly.
pub fn integer_as_decimal(t: &DataType) -> DataType {
    DataType::Decimal128(integer_digits(t), 0)
}

fn wider_decimal(p1: u8, s1: i8, p2: u8, s2: i8) -> DataType {
    let s = s1.max(s2);
    let int_digits = (i16::from(p1) - i16::from(s1)).max(i16::from(p2) - i16::from(s2));
    let p = (int_digits + i16::from(s)).clamp(1, 38) as u8;
    DataType::Decimal128(p, s)
}

/// The common type for comparing, unioning or CASE-merging two values; `None` when the
/// types cannot meet.
pub fn common_type(l: &DataType, r: &DataType) -> Option<DataType> {
    use DataType::*;
    if l == r {
        return Some(l.clone());
    }
    Some(match (l, r) {
        (Null, t) | (t, Null) => t.clone(),
        (a, b) if is_integer(a) && is_integer(b) => Int64,
        (a, b) if is_numeric(a) && is_numeric(b) && (is_float(a) || is_float(b)) => Float64,
        (Decimal128(p1, s1), Decimal128(p2, s2)) => wider_decimal(*p1, *s1, *p2, *s2),
        (Decimal128(p, s), i) | (i, Decimal128(p, s)) if is_integer(i) => {
            wider_decimal(*p, *s, integer_digits(i), 0)
        }
        (a, b) if is_string(a) && is_string(b) => {
            if matches!(a, Utf8View) || matches!(b, Utf8View) {
                Utf8View
            } else {
                LargeUtf8
            }
        }
        (s, t) | (t, s) if is_string(s) && (t.is_temporal() || is_numeric(t) || *t == Boolean) => {
            t.clone()
        }
        (Date32, Timestamp(u, z)) | (Timestamp(u, z), Date32) => Timestamp(*u, z.clone()),
        (Date32, Date64) | (Date64, Date32) => Date64,
        _ => return None,
    })
}

/// A numeric literal in the numeric type `to`, when it converts there and back unchanged
/// (not NULL, no rounding, no overflow). A comparison of a column of type `to` with it
/// then needs no cast of the column: `l_quantity < 24` compares `Decimal128(15, 2)`
/// values as they are, not cast to `Decimal128(22, 2)` row by row.
pub fn exact_literal(lit: &ArrayRef, to: &DataType) -> Option<ArrayRef> {
    let from = lit.data_type();
    if from == to || !is_numeric(from) || !is_numeric(to) || lit.len() != 1 || lit.is_null(0) {
        return None;
    }
    let there = arrow::compute::cast(lit, to).ok()?;
    let back = arrow::compute::cast(&there, from).ok()?;
    (!there.is_null(0) && back.as_ref() == lit.as_ref()).then_some(there)
}

/// The types the operands of an arithmetic operator are cast to; `None` where the kernel
/// decides (decimals of different precision, date ± interval).
pub fn arithmetic_types(op: BinaryOp, l: &DataType, r: &DataType) -> Option<(DataType, DataType)> {
    use DataType::*;
    let _ = op;
    match (l, r) {
        (Null, Null) => Some((Int64, Int64)),
        (Null, t) => Some((t.clone(), t.clone())),
        (t, Null) => Some((t.clone(), t.clone())),
        (a, b) if is_integer(a) && is_integer(b) => Some((Int64, Int64)),
        (a, b) if is_numeric(a) && is_numeric(b) && (is_float(a) || is_float(b)) => {
            Some((Float64, Float64))
        }
        (Decimal128(..), i) if is_integer(i) => Some((l.clone(), integer_as_decimal(i))),
        (i, Decimal128(..)) if is_integer(i) => Some((integer_as_decimal(i), r.clone())),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use DataType::*;

    #[test]
    fn decimals_widen_to_hold_both() {
        assert_eq!(
            common_type(&Decimal128(15, 2), &Decimal128(38, 4)),
            Some(Decimal128(38, 4))
        );
        assert_eq!(
            common_type(&Decimal128(15, 2), &Int64),
            Some(Decimal128(22, 2))
        );
        assert_eq!(common_type(&Int32, &Int64), Some(Int64));
        assert_eq!(common_type(&Utf8, &Date32), Some(Date32));
        assert_eq!(common_type(&Utf8, &Utf8View), Some(Utf8View));
        assert_eq!(common_type(&Boolean, &Date32), None);
    }

    #[test]
    fn literals_take_the_column_type_only_when_exact() {
        use arrow::array::{Decimal128Array, Float64Array, Int64Array};
        use std::sync::Arc;
        let int = |v: i64| -> ArrayRef { Arc::new(Int64Array::from(vec![v])) };
        let got = exact_literal(&int(24), &Decimal128(15, 2)).expect("24 fits");
        let want = Decimal128Array::from(vec![2400])
            .with_precision_and_scale(15, 2)
            .expect("decimal");
        assert_eq!(got.as_ref(), &want as &dyn Array);
        assert!(exact_literal(&int(15), &Int32).is_some());
        // Overflow, rounding, NULL and non-numeric types keep the common type.
        assert!(exact_literal(&int(i64::MAX), &Int32).is_none());
        assert!(exact_literal(&int(10_i64.pow(14)), &Decimal128(15, 2)).is_none());
        let half: ArrayRef = Arc::new(Float64Array::from(vec![2.5]));
        assert!(exact_literal(&half, &Int64).is_none());
        let third: ArrayRef = Arc::new(
            Decimal128Array::from(vec![55])
                .with_precision_and_scale(4, 3)
                .expect("decimal"),
        );
        assert!(exact_literal(&third, &Decimal128(15, 2)).is_none());
        let null: ArrayRef = Arc::new(Int64Array::from(vec![None]));
        assert!(exact_literal(&null, &Int32).is_none());
        assert!(exact_literal(&int(1), &Utf8).is_none());
    }

    #[test]
    fn arithmetic_leaves_decimal_pairs_to_the_kernel() {
        assert_eq!(
            arithmetic_types(BinaryOp::Plus, &Decimal128(15, 2), &Decimal128(15, 2)),
            None
        );
        assert_eq!(
            arithmetic_types(BinaryOp::Multiply, &Int32, &Float64),
            Some((Float64, Float64))
        );
    }
}
