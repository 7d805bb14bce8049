//! `DISTINCT` aggregates (`count(DISTINCT x)`, `sum(DISTINCT x)`): the first time a
//! value is seen in a group it goes on to the plain accumulator, later times it does
//! not.
//!
//! Integer values (and dates) are remembered as `(group, i64)` pairs in one hash set;
//! other types as `(group, row bytes)` in arrow's row format. TPC-H q16 counts distinct
//! suppliers per (brand, type, size) over 12 M `partsupp` rows at SF 10.

use std::collections::HashSet;

use arrow::array::{Array, ArrayRef, AsArray, BooleanArray, UInt32Array};
use arrow::buffer::BooleanBuffer;
use arrow::compute::cast;
use arrow::datatypes::{DataType, Int64Type};
use arrow::row::{RowConverter, SortField};

use crate::error::{Result, SluiceError};
use crate::physical::accumulator::Accumulator;

type Hasher = ahash::RandomState;

/// The `(group, value)` pairs seen so far.
enum Seen {
    /// Values cast losslessly to `i64`.
    Ints(HashSet<(u32, i64), Hasher>),
    /// Values in arrow's row format.
    Rows(RowConverter, HashSet<(u32, Box<[u8]>), Hasher>),
}

/// Wraps `inner` so that it sees each value of type `t` once per group.
pub(crate) fn distinct(inner: Box<dyn Accumulator>, t: DataType) -> Result<Box<dyn Accumulator>> {
    let seen = match t {
        DataType::Int8
        | DataType::Int16
        | DataType::Int32
        | DataType::Int64
        | DataType::UInt8
        | DataType::UInt16
        | DataType::UInt32
        | DataType::Date32 => Seen::Ints(HashSet::default()),
        t => Seen::Rows(
            RowConverter::new(vec![SortField::new(t)])?,
            HashSet::default(),
        ),
    };
    Ok(Box::new(DistinctAcc {
        inner,
        seen,
        row_bytes: 0,
    }))
}

struct DistinctAcc {
    inner: Box<dyn Accumulator>,
    seen: Seen,
    /// Approximate bytes of the row-byte set's keys (an upper bound: NULL rows count).
    row_bytes: usize,
}

impl DistinctAcc {
    /// Rows of `v` (with their groups) whose value is new to their group, and the NULL
    /// rows: the inner accumulator skips those, but must see that a group of NULLs only
    /// (its `sum` is NULL, not 0) was reached.
    fn first_seen(&mut self, v: &ArrayRef, groups: &[u32]) -> Result<(Vec<u32>, Vec<u32>)> {
        let nulls = v.logical_nulls();
        let valid = |i: usize| nulls.as_ref().is_none_or(|n| n.is_valid(i));
        let mut keep = Vec::new();
        match &mut self.seen {
            Seen::Ints(seen) => {
                let ints = cast(v, &DataType::Int64)?;
                let ints = ints.as_primitive::<Int64Type>().values();
                for (i, (&g, &x)) in groups.iter().zip(ints.iter()).enumerate() {
                    if !valid(i) || seen.insert((g, x)) {
                        keep.push(i as u32);
                    }
                }
            }
            Seen::Rows(conv, seen) => {
                let rows = conv.convert_columns(std::slice::from_ref(v))?;
                for (i, &g) in groups.iter().enumerate() {
                    let row = rows.row(i);
                    let row = row.as_ref();
                    if !valid(i) || seen.insert((g, row.into())) {
                        // The key bytes, the boxed slice and the set's slot.
                        self.row_bytes += row.len() + 40;
                        keep.push(i as u32);
                    }
                }
            }
        }
        let keep_groups = keep.iter().map(|&i| groups[i as usize]).collect();
        Ok((keep, keep_groups))
    }
}

impl Accumulator for DistinctAcc {
    fn update(&mut self, values: &[ArrayRef], groups: &[u32], n: usize) -> Result<()> {
        let v = values
            .first()
            .ok_or_else(|| SluiceError::exec("a DISTINCT aggregate without an argument"))?;
        let (keep_idx, keep_groups) = self.first_seen(v, groups)?;
        let vals = arrow::compute::take(v, &UInt32Array::from(keep_idx), None)?;
        self.inner.update(&[vals], &keep_groups, n)
    }
    fn update_masked(
        &mut self,
        values: &[ArrayRef],
        groups: &[u32],
        n: usize,
        sel: &BooleanBuffer,
    ) -> Result<()> {
        // The value sets would take in the parked rows' NULLs with their group: add the
        // selected rows alone.
        let keep = BooleanArray::new(sel.clone(), None);
        let values = values
            .iter()
            .map(|v| arrow::compute::filter(v, &keep))
            .collect::<std::result::Result<Vec<_>, _>>()?;
        let groups: Vec<u32> = sel.set_indices().map(|i| groups[i]).collect();
        self.update(&values, &groups, n)
    }
    fn merge(&mut self, _states: &[ArrayRef], _groups: &[u32], _n: usize) -> Result<()> {
        Err(SluiceError::exec(
            "DISTINCT aggregates run in one phase and cannot merge",
        ))
    }
    fn state(&mut self, _n: usize) -> Result<Vec<ArrayRef>> {
        Err(SluiceError::exec(
            "DISTINCT aggregates run in one phase and have no partial state",
        ))
    }
    fn evaluate(&mut self, n: usize) -> Result<ArrayRef> {
        self.inner.evaluate(n)
    }
    fn extra_memory(&self) -> usize {
        let seen = match &self.seen {
            // The pair and the set's slot (hash byte, padding).
            Seen::Ints(s) => s.len() * 24,
            Seen::Rows(..) => self.row_bytes,
        };
        seen + self.inner.extra_memory()
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use arrow::array::{Int32Array, Int64Array, StringArray};

    use super::*;
    use crate::logical::expr::AggFunc;
    use crate::physical::accumulator::create_accumulator;

    /// count(DISTINCT) and sum(DISTINCT) per group, in two batches, NULLs skipped (a
    /// group of NULLs only sums to NULL); the same for integers (one set of pairs) and
    /// strings (row bytes).
    #[test]
    fn each_value_counts_once_per_group() {
        let groups = [0, 0, 1, 1, 0, 2, 1, 0];
        let ints: ArrayRef = Arc::new(Int32Array::from(vec![
            Some(5),
            Some(5),
            Some(5),
            None,
            Some(7),
            None,
            Some(5),
            Some(-7),
        ]));
        let strs: ArrayRef = Arc::new(StringArray::from(vec![
            Some("a"),
            Some("a"),
            Some("a"),
            None,
            Some("bb"),
            None,
            Some("a"),
            Some("c"),
        ]));
        for (t, v) in [(DataType::Int32, ints.clone()), (DataType::Utf8, strs)] {
            let mut count = create_accumulator(AggFunc::Count, true, Some(&t)).expect("count");
            // Split in two batches: the sets outlive a batch.
            count
                .update(&[v.slice(0, 3)], &groups[..3], 2)
                .expect("update");
            count
                .update(&[v.slice(3, 5)], &groups[3..], 3)
                .expect("update");
            let got = count.evaluate(3).expect("evaluate");
            let want: ArrayRef = Arc::new(Int64Array::from(vec![3, 1, 0]));
            assert_eq!(&got, &want, "{t}");
            assert!(count.extra_memory() > 0);
        }
        let mut sum = create_accumulator(AggFunc::Sum, true, Some(&DataType::Int32)).expect("sum");
        sum.update(&[ints], &groups, 3).expect("update");
        let got = sum.evaluate(3).expect("evaluate");
        let want: ArrayRef = Arc::new(Int64Array::from(vec![Some(5), Some(5), None]));
        assert_eq!(&got, &want);
    }
}
