//! Retraction: aggregating a changelog. When the input of an updating GROUP BY is itself
//! a changelog (a GROUP BY over a GROUP BY, Nexmark q4), its `-U`/`-D` rows take back rows
//! counted before. COUNT, SUM and AVG states can be subtracted; MIN and MAX cannot (the
//! next-best value is gone), so they are refused, as are DISTINCT aggregates.
//!
//! The calls are extended with hidden counts: `COUNT(*)`, the rows a group holds (a group
//! whose count drops to zero is deleted: `-D`), and a `COUNT(x)` per `SUM(x)`, so a sum
//! whose values were all taken back is NULL again rather than 0. The batch's additions and
//! retractions are pre-aggregated separately and the retractions' state subtracted from
//! the merged one, column by column (see [`Retraction::subtract`]).

use arrow::array::{Array, ArrayRef, AsArray, BooleanArray, Int64Array};
use arrow::compute::kernels::numeric::sub_wrapping;
use arrow::compute::{is_null, nullif};
use arrow::datatypes::Int64Type;

use crate::error::{Result, SluiceError};
use crate::logical::expr::AggFunc;
use crate::physical::accumulator::state_types;
use crate::physical::aggregate::AggSpec;

/// How a changelog-aggregating GROUP BY's calls were extended (see the module docs).
#[derive(Debug, Clone)]
pub struct Retraction {
    /// The user's calls, first in the extended list.
    calls: usize,
    /// Position (in the flattened state columns) of the hidden row count.
    row_count: usize,
    /// `(sum, count)` state positions: the sum is NULL where the count is 0. One per SUM
    /// (with its hidden `COUNT(x)`) and per AVG (its own count).
    null_when_empty: Vec<(usize, usize)>,
}

impl Retraction {
    /// `aggs` extended with the hidden counts; refuses calls that cannot retract.
    pub fn extend(aggs: Vec<AggSpec>) -> Result<(Vec<AggSpec>, Self)> {
        if let Some(a) = aggs
            .iter()
            .find(|a| a.distinct || matches!(a.func, AggFunc::Min | AggFunc::Max))
        {
            return Err(SluiceError::unsupported(format!(
                "{}{} over an updating result (a changelog) in a streaming query: only \
                 COUNT, SUM and AVG can take back retracted rows",
                a.func.to_string().to_uppercase(),
                if a.distinct { "(DISTINCT ...)" } else { "" }
            )));
        }
        let widths = aggs
            .iter()
            .map(|a| Ok(state_types(a.func, a.input_type.as_ref())?.len()))
            .collect::<Result<Vec<_>>>()?;
        let offsets: Vec<usize> = widths
            .iter()
            .scan(0, |o, w| {
                let at = *o;
                *o += w;
                Some(at)
            })
            .collect();
        let calls = aggs.len();
        let mut width: usize = widths.iter().sum();
        let count = |args: Vec<_>, input_type| AggSpec {
            func: AggFunc::Count,
            distinct: false,
            args,
            input_type,
        };
        let mut extended = aggs.clone();
        extended.push(count(Vec::new(), None));
        let row_count = width;
        width += 1;
        let mut null_when_empty = Vec::new();
        for (i, a) in aggs.iter().enumerate() {
            match a.func {
                AggFunc::Sum => {
                    extended.push(count(a.args.clone(), a.input_type.clone()));
                    null_when_empty.push((offsets[i], width));
                    width += 1;
                }
                AggFunc::Avg => null_when_empty.push((offsets[i], offsets[i] + 1)),
                _ => {}
            }
        }
        Ok((
            extended,
            Self {
                calls,
                row_count,
                null_when_empty,
            },
        ))
    }

    /// `plus` minus `minus`, column by column (flattened state columns of the same groups,
    /// NULL counting as zero), with each sum NULL where its count is zero.
    pub fn subtract(&self, plus: &[ArrayRef], minus: &[ArrayRef]) -> Result<Vec<ArrayRef>> {
        let mut out = plus
            .iter()
            .zip(minus)
            .map(|(p, m)| {
                // A group without retractions has a NULL (or 0) state: nothing to subtract.
                if m.null_count() == m.len() {
                    return Ok(p.clone());
                }
                let zero = arrow::compute::cast(&Int64Array::from(vec![0]), p.data_type())?;
                let fill = |a: &ArrayRef| -> Result<ArrayRef> {
                    let z = arrow::array::Scalar::new(zero.clone());
                    Ok(arrow::compute::kernels::zip::zip(&is_null(a)?, &z, a)?)
                };
                Ok(sub_wrapping(&fill(p)?, &fill(m)?)?)
            })
            .collect::<Result<Vec<_>>>()?;
        for &(sum, count) in &self.null_when_empty {
            let empty = zero_counts(&out[count])?;
            out[sum] = nullif(&out[sum], &empty)?;
        }
        Ok(out)
    }

    /// Which groups hold no row any more (their hidden row count is zero or below).
    pub fn emptied(&self, states: &[ArrayRef]) -> Result<BooleanArray> {
        zero_counts(&states[self.row_count])
    }

    /// The user's calls' values out of the extended calls' `values`.
    pub fn visible(&self, mut values: Vec<ArrayRef>) -> Vec<ArrayRef> {
        values.truncate(self.calls);
        values
    }
}

/// `count <= 0`, row by row (a NULL count is empty too).
fn zero_counts(count: &ArrayRef) -> Result<BooleanArray> {
    let c = count.as_primitive::<Int64Type>();
    Ok(c.iter().map(|v| Some(v.unwrap_or(0) <= 0)).collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::physical::expr::PhysExpr;
    use arrow::datatypes::DataType;
    use std::sync::Arc;

    fn spec(func: AggFunc) -> AggSpec {
        AggSpec {
            func,
            distinct: false,
            args: vec![PhysExpr::Column(0, "x".into())],
            input_type: Some(DataType::Int64),
        }
    }

    fn ints(v: &[Option<i64>]) -> ArrayRef {
        Arc::new(Int64Array::from(v.to_vec()))
    }

    #[test]
    fn sums_and_counts_subtract_and_empty_sums_become_null() {
        // SUM(x), AVG(x), then hidden COUNT(*) and COUNT(x) for the SUM.
        let (ext, r) =
            Retraction::extend(vec![spec(AggFunc::Sum), spec(AggFunc::Avg)]).expect("extend");
        assert_eq!(ext.len(), 4);
        // Columns: sum, avg sum, avg count, rows, sum count; two groups.
        let plus = [
            ints(&[Some(10), Some(5)]),
            ints(&[Some(10), Some(5)]),
            ints(&[Some(2), Some(1)]),
            ints(&[Some(2), Some(1)]),
            ints(&[Some(2), Some(1)]),
        ];
        let minus = [
            ints(&[Some(4), Some(5)]),
            ints(&[Some(4), Some(5)]),
            ints(&[Some(1), Some(1)]),
            ints(&[Some(1), Some(1)]),
            ints(&[Some(1), Some(1)]),
        ];
        let out = r.subtract(&plus, &minus).expect("subtract");
        assert_eq!(out[0].as_ref(), ints(&[Some(6), None]).as_ref());
        assert_eq!(out[1].as_ref(), ints(&[Some(6), None]).as_ref());
        assert_eq!(
            r.emptied(&out).expect("emptied"),
            BooleanArray::from(vec![false, true])
        );
        assert_eq!(r.visible(out).len(), 2);
    }

    #[test]
    fn a_null_state_minus_a_value_is_its_negation() {
        let (_, r) = Retraction::extend(vec![spec(AggFunc::Count)]).expect("extend");
        let out = r
            .subtract(
                &[ints(&[None]), ints(&[Some(1)])],
                &[ints(&[Some(3)]), ints(&[Some(1)])],
            )
            .expect("subtract");
        assert_eq!(out[0].as_ref(), ints(&[Some(-3)]).as_ref());
    }

    #[test]
    fn min_max_and_distinct_cannot_retract() {
        for func in [AggFunc::Min, AggFunc::Max] {
            let e = Retraction::extend(vec![spec(func)]).expect_err("refused");
            assert!(e.to_string().contains("only COUNT, SUM and AVG"), "{e}");
        }
        let mut d = spec(AggFunc::Count);
        d.distinct = true;
        assert!(Retraction::extend(vec![d]).is_err());
    }
}
