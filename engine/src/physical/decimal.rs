//! Decimal128 `+`, `-` and `*` without overflow checks where none can overflow.
//!
//! Arrow's decimal kernels add and multiply `i128`s with a checked operation per value.
//! Money columns are usually small (TPC-H's are `Decimal(15, 2)`), and when every value of
//! both inputs fits an `i64`, no result can overflow: a product of two `i64`s fits an
//! `i128`, and so does a sum of two `i64`s each rescaled by at most 10^18. Then the
//! operation is one widening multiply (or add) a value, with no checks. It gives the types
//! arrow gives (the Hive rules of `arrow_arith::numeric`), so plans do not change; inputs
//! with larger values, two scalars, or a null scalar go to arrow's kernels.

use std::sync::Arc;

use arrow::array::{Array, ArrayRef, AsArray, PrimitiveArray};
use arrow::buffer::{NullBuffer, ScalarBuffer};
use arrow::datatypes::{DataType, Decimal128Type, DECIMAL128_MAX_PRECISION, DECIMAL128_MAX_SCALE};

use crate::error::Result;
use crate::logical::expr::BinaryOp;
use crate::physical::expr::ColumnarValue;

/// Largest power of ten a rescale may multiply by and stay within the no-overflow bound.
const MAX_RESCALE: i16 = 18;

/// `l op r` for `+`, `-` or `*` of two Decimal128 inputs of small values, or `None` to use
/// arrow's kernels (any other operator or input).
pub fn small_decimal_op(
    op: BinaryOp,
    l: &ColumnarValue,
    r: &ColumnarValue,
) -> Option<Result<ColumnarValue>> {
    if !matches!(op, BinaryOp::Plus | BinaryOp::Minus | BinaryOp::Multiply) {
        return None;
    }
    let (DataType::Decimal128(p1, s1), DataType::Decimal128(p2, s2)) =
        (l.data_type(), r.data_type())
    else {
        return None;
    };
    let (p1, s1, p2, s2) = (*p1 as i16, *s1 as i16, *p2 as i16, *s2 as i16);
    let max_p = DECIMAL128_MAX_PRECISION as i16;
    let (la, l_scalar) = parts(l);
    let (ra, r_scalar) = parts(r);
    if l_scalar && r_scalar {
        return None;
    }
    let (la, ra) = (
        la.as_primitive::<Decimal128Type>(),
        ra.as_primitive::<Decimal128Type>(),
    );
    if (l_scalar && la.is_null(0)) || (r_scalar && ra.is_null(0)) {
        return None;
    }
    let shape = Shape {
        l: la.values(),
        l_scalar,
        r: ra.values(),
        r_scalar,
    };
    let (values, p, s) = match op {
        BinaryOp::Multiply => {
            let s = s1 + s2;
            if !(i8::MIN as i16..=DECIMAL128_MAX_SCALE as i16).contains(&s) {
                return None;
            }
            let values = shape.map(|a, b| a as i128 * b as i128)?;
            (values, (p1 + p2 + 1).min(max_p), s)
        }
        BinaryOp::Plus | BinaryOp::Minus => {
            let s = s1.max(s2);
            let p = (s + (p1 - s1).max(p2 - s2) + 1).min(max_p);
            if s - s1 > MAX_RESCALE || s - s2 > MAX_RESCALE {
                return None;
            }
            let lm = 10i64.pow((s - s1) as u32);
            let rm = 10i64.pow((s - s2) as u32);
            let values = match (op, lm == 1 && rm == 1) {
                (BinaryOp::Plus, true) => shape.map(|a, b| a as i128 + b as i128)?,
                (_, true) => shape.map(|a, b| a as i128 - b as i128)?,
                (op, false) => {
                    // Both multipliers are at most 10^18, so they and -rm fit an i64.
                    let rm = if op == BinaryOp::Minus { -rm } else { rm };
                    shape.map(|a, b| a as i128 * lm as i128 + b as i128 * rm as i128)?
                }
            };
            (values, p, s)
        }
        _ => return None,
    };
    let nulls = match (l_scalar, r_scalar) {
        (false, false) => NullBuffer::union(la.nulls(), ra.nulls()),
        (false, true) => la.nulls().cloned(),
        _ => ra.nulls().cloned(),
    };
    Some(
        PrimitiveArray::<Decimal128Type>::new(values, nulls)
            .with_precision_and_scale(p as u8, s as i8)
            .map(|a| ColumnarValue::Array(Arc::new(a) as ArrayRef))
            .map_err(Into::into),
    )
}

fn parts(v: &ColumnarValue) -> (&ArrayRef, bool) {
    match v {
        ColumnarValue::Array(a) => (a, false),
        ColumnarValue::Scalar(a) => (a, true),
    }
}

/// Whether `v` fits an `i64`.
pub(crate) fn fits(v: i128) -> bool {
    v as i64 as i128 == v
}

/// Two inputs' values, either of which may be a one-value scalar.
struct Shape<'a> {
    l: &'a [i128],
    l_scalar: bool,
    r: &'a [i128],
    r_scalar: bool,
}

impl Shape<'_> {
    /// `f` of every pair, in the pass that checks the inputs: None when some value (null
    /// slots too: they are computed and then masked) does not fit an `i64`.
    fn map(&self, f: impl Fn(i64, i64) -> i128) -> Option<ScalarBuffer<i128>> {
        let mut all_fit = true;
        let v: Vec<i128> = match (self.l_scalar, self.r_scalar) {
            (false, false) => self
                .l
                .iter()
                .zip(self.r)
                .map(|(&a, &b)| {
                    all_fit &= fits(a) & fits(b);
                    f(a as i64, b as i64)
                })
                .collect(),
            (false, true) => {
                all_fit = fits(self.r[0]);
                let b = self.r[0] as i64;
                self.l
                    .iter()
                    .map(|&a| {
                        all_fit &= fits(a);
                        f(a as i64, b)
                    })
                    .collect()
            }
            _ => {
                all_fit = fits(self.l[0]);
                let a = self.l[0] as i64;
                self.r
                    .iter()
                    .map(|&b| {
                        all_fit &= fits(b);
                        f(a, b as i64)
                    })
                    .collect()
            }
        };
        all_fit.then(|| v.into())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow::array::Decimal128Array;
    use arrow::compute::kernels::numeric;

    fn dec(values: &[Option<i128>], p: u8, s: i8) -> ArrayRef {
        Arc::new(
            Decimal128Array::from(values.to_vec())
                .with_precision_and_scale(p, s)
                .expect("decimal"),
        )
    }

    /// Runs the fast path and arrow's kernel on the same inputs and compares them.
    fn same_as_arrow(op: BinaryOp, l: ColumnarValue, r: ColumnarValue) -> ArrayRef {
        let fast = small_decimal_op(op, &l, &r)
            .expect("fast path taken")
            .expect("fast path ok");
        let ColumnarValue::Array(fast) = fast else {
            panic!("an array")
        };
        let datum = |v: &ColumnarValue| -> Box<dyn arrow::array::Datum> {
            match v {
                ColumnarValue::Array(a) => Box::new(a.clone()),
                ColumnarValue::Scalar(a) => Box::new(arrow::array::Scalar::new(a.clone())),
            }
        };
        let kernel = match op {
            BinaryOp::Plus => numeric::add,
            BinaryOp::Minus => numeric::sub,
            _ => numeric::mul,
        };
        let arrow = kernel(datum(&l).as_ref(), datum(&r).as_ref()).expect("arrow");
        assert_eq!(fast.data_type(), arrow.data_type(), "{op:?}");
        assert_eq!(&fast, &arrow, "{op:?}");
        fast
    }

    #[test]
    fn matches_arrow_for_arrays_scalars_nulls_and_mixed_scales() {
        let price = dec(&[Some(9_999_999), None, Some(-12_345), Some(0)], 15, 2);
        let disc = dec(&[Some(5), Some(10), None, Some(-1)], 15, 2);
        let rate = dec(&[Some(1_234), Some(-99), Some(7), Some(1)], 10, 4);
        let one = dec(&[Some(100)], 15, 2);
        let a = |x: &ArrayRef| ColumnarValue::Array(x.clone());
        for op in [BinaryOp::Plus, BinaryOp::Minus, BinaryOp::Multiply] {
            same_as_arrow(op, a(&price), a(&disc));
            same_as_arrow(op, a(&price), a(&rate));
            same_as_arrow(op, a(&rate), a(&price));
            same_as_arrow(op, a(&price), ColumnarValue::Scalar(one.clone()));
            same_as_arrow(op, ColumnarValue::Scalar(one.clone()), a(&disc));
        }
        let out = same_as_arrow(BinaryOp::Multiply, a(&price), a(&disc));
        let out = out.as_primitive::<Decimal128Type>();
        assert_eq!(out.data_type(), &DataType::Decimal128(31, 4));
        assert_eq!(out.value(0), 49_999_995);
        assert!(out.is_null(1) && out.is_null(2));
    }

    #[test]
    fn large_values_null_scalars_and_two_scalars_use_arrow() {
        let big = dec(&[Some(1), Some(i64::MAX as i128 + 1)], 38, 0);
        let small = dec(&[Some(1), Some(2)], 10, 0);
        let a = |x: &ArrayRef| ColumnarValue::Array(x.clone());
        assert!(small_decimal_op(BinaryOp::Multiply, &a(&big), &a(&small)).is_none());
        assert!(small_decimal_op(BinaryOp::Minus, &a(&small), &a(&big)).is_none());
        let big_scalar = ColumnarValue::Scalar(dec(&[Some(i64::MIN as i128 - 1)], 38, 0));
        assert!(small_decimal_op(BinaryOp::Multiply, &a(&small), &big_scalar).is_none());
        assert!(small_decimal_op(BinaryOp::Plus, &big_scalar, &a(&small)).is_none());
        let null = ColumnarValue::Scalar(dec(&[None], 10, 0));
        assert!(small_decimal_op(BinaryOp::Plus, &a(&small), &null).is_none());
        let one = ColumnarValue::Scalar(dec(&[Some(1)], 10, 0));
        assert!(small_decimal_op(BinaryOp::Plus, &one, &one).is_none());
        // Rescaling by more than 10^18 could overflow.
        let fine = dec(&[Some(1)], 38, 20);
        assert!(small_decimal_op(BinaryOp::Plus, &a(&fine), &a(&small)).is_none());
        // Not decimals at all.
        let ints = ColumnarValue::Array(Arc::new(arrow::array::Int64Array::from(vec![1])));
        assert!(small_decimal_op(BinaryOp::Plus, &ints, &ints).is_none());
    }
}
