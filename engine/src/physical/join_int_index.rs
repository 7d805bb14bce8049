//! The index of a hash join whose key is one integer-like column (TPC-H's `c_custkey =
//! o_custkey`, `l_orderkey = o_orderkey`), or two whose build values fit 32 bits each
//! (q9's `(ps_partkey, ps_suppkey)`), packed into one `i64`: open addressing on the key
//! itself. A slot holds the key and its first build row, so a probe reads one slot for a
//! key that is absent or unique, and a matching slot is a match: no stored hash and no
//! key comparison after. Rows with the same key chain through `next`, and a slot flags
//! when it has more than one. Probes prefetch the slot of a row a few rows ahead, so the
//! cache misses of a big build side overlap.

use std::borrow::Cow;

use arrow::array::{ArrayRef, AsArray};
use arrow::buffer::{BooleanBuffer, NullBuffer};
use arrow::datatypes::{DataType, Int64Type};

use crate::error::Result;
use crate::physical::hash::prefetch;

/// A free slot's row.
const FREE: u32 = u32::MAX;
/// Set in a slot's row when more rows share its key (then chained through `next`).
const MORE: u32 = 1 << 31;
/// How many probe rows ahead a probe prefetches a slot.
const AHEAD: usize = 8;

/// A slot: a key and its first build row (`FREE` when unused). Packed to 12 bytes.
#[derive(Clone, Copy)]
#[repr(C, packed)]
struct Slot {
    key: i64,
    row: u32,
}

/// An open-addressed index from integer keys to build rows.
#[derive(Debug)]
pub struct IntJoinIndex {
    slots: Vec<Slot>,
    shift: u32,
    /// The next build row with the same key, in input order (`FREE` ends a chain).
    next: Vec<u32>,
}

impl std::fmt::Debug for Slot {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let (key, row) = (self.key, self.row);
        write!(f, "({key}, {row})")
    }
}

/// True when a join key of type `t` can be indexed as an `i64` (equal values, equal
/// `i64`s).
pub fn is_int_key(t: &DataType) -> bool {
    use DataType::*;
    matches!(
        t,
        Int8 | Int16 | Int32 | Int64 | UInt8 | UInt16 | UInt32 | Date32
    )
}

/// The values of the integer-like array `a` as `i64`s (whatever is under a NULL).
fn as_i64(a: &ArrayRef) -> Result<Cow<'_, [i64]>> {
    if let Some(p) = a.as_primitive_opt::<Int64Type>() {
        return Ok(Cow::Borrowed(p.values()));
    }
    let cast = arrow::compute::cast(a, &DataType::Int64)?;
    Ok(Cow::Owned(
        cast.as_primitive::<Int64Type>().values().to_vec(),
    ))
}

/// Join key columns as one `i64` a row.
pub struct IntKeys<'a> {
    /// The key of each row (whatever is under a NULL).
    pub values: Cow<'a, [i64]>,
    /// Rows that match nothing: a NULL key, or (two columns) a value beyond 32 bits.
    pub nulls: Option<NullBuffer>,
    /// True when some non-NULL value was beyond 32 bits (two columns only).
    pub wide: bool,
}

/// `keys` (one or two [`is_int_key`] columns) as one `i64` a row: a single column as it
/// is; two as their values' low 32 bits side by side, when both fit an `i32`.
pub fn int_keys(keys: &[ArrayRef]) -> Result<IntKeys<'_>> {
    let nulls = crate::physical::join_table::combined_validity(keys);
    match keys {
        [k] => Ok(IntKeys {
            values: as_i64(k)?,
            nulls,
            wide: false,
        }),
        [hi, lo] => {
            let (hi, lo) = (as_i64(hi)?, as_i64(lo)?);
            let fits = |v: i64| v as i32 as i64 == v;
            let values: Vec<i64> = (hi.iter().zip(lo.iter()))
                .map(|(&h, &l)| (h << 32) | (l as u32 as i64))
                .collect();
            let narrow = NullBuffer::new(BooleanBuffer::collect_bool(hi.len(), |i| {
                fits(hi[i]) & fits(lo[i])
            }));
            let both = NullBuffer::union(nulls.as_ref(), Some(&narrow));
            let count = |n: &Option<NullBuffer>| n.as_ref().map_or(0, NullBuffer::null_count);
            Ok(IntKeys {
                values: Cow::Owned(values),
                wide: count(&both) > count(&nulls),
                nulls: both,
            })
        }
        _ => Err(crate::error::SluiceError::exec(
            "internal: an integer join index takes one or two key columns",
        )),
    }
}

impl IntJoinIndex {
    /// Indexes the build rows' keys (fewer than 2^31 rows); rows in `keys.nulls` are
    /// left out.
    pub fn build(keys: &IntKeys) -> Self {
        let n = keys.values.len();
        // At most two thirds full: between 1.5 and 3 slots a row (18-36 bytes).
        let cap = (n + n / 2).next_power_of_two().max(16);
        let mut index = Self {
            slots: vec![Slot { key: 0, row: FREE }; cap],
            shift: 64 - cap.trailing_zeros(),
            next: vec![FREE; n],
        };
        let (values, nulls) = (&keys.values, &keys.nulls);
        let mask = cap - 1;
        // In reverse, each row goes to the head of its key's chain: chains list rows in
        // input order.
        for i in (0..n).rev() {
            if let Some(&k) = i.checked_sub(AHEAD).and_then(|a| values.get(a)) {
                prefetch(&index.slots[index.home(k)]);
            }
            if nulls.as_ref().is_some_and(|v| v.is_null(i)) {
                continue;
            }
            let k = values[i];
            let mut s = index.home(k);
            loop {
                let slot = index.slots[s];
                if slot.row == FREE {
                    index.slots[s] = Slot {
                        key: k,
                        row: i as u32,
                    };
                    break;
                }
                if slot.key == k {
                    index.next[i] = slot.row & !MORE;
                    index.slots[s].row = i as u32 | MORE;
                    break;
                }
                s = (s + 1) & mask;
            }
        }
        index
    }

    /// The slot where a lookup of `k` starts.
    #[inline]
    fn home(&self, k: i64) -> usize {
        ((k as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15) >> self.shift) as usize
    }

    /// Bytes held.
    pub fn memory_size(&self) -> usize {
        self.slots.len() * std::mem::size_of::<Slot>() + self.next.len() * 4
    }

    /// The matching pairs (probe row, build row) of probe rows `range` of the probe
    /// keys (made as the build keys were); rows in `probe.nulls` have none.
    pub fn matches(
        &self,
        probe: &IntKeys,
        range: std::ops::Range<usize>,
        probe_idx: &mut Vec<u32>,
        build_idx: &mut Vec<u32>,
    ) {
        let (values, nulls) = (&probe.values, &probe.nulls);
        let mask = self.slots.len() - 1;
        let end = range.end;
        for i in range {
            if let Some(&k) = values.get(i + AHEAD).filter(|_| i + AHEAD < end) {
                prefetch(&self.slots[self.home(k)]);
            }
            if nulls.as_ref().is_some_and(|v| v.is_null(i)) {
                continue;
            }
            let k = values[i];
            let mut s = self.home(k);
            loop {
                let slot = self.slots[s];
                if slot.row == FREE {
                    break;
                }
                if slot.key == k {
                    let mut j = slot.row & !MORE;
                    probe_idx.push(i as u32);
                    build_idx.push(j);
                    if slot.row & MORE != 0 {
                        j = self.next[j as usize];
                        while j != FREE {
                            probe_idx.push(i as u32);
                            build_idx.push(j);
                            j = self.next[j as usize];
                        }
                    }
                    break;
                }
                s = (s + 1) & mask;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use arrow::array::{Date32Array, Int32Array, Int64Array};

    use super::*;

    fn index(build: &[ArrayRef]) -> IntJoinIndex {
        IntJoinIndex::build(&int_keys(build).expect("keys"))
    }

    fn pairs(index: &IntJoinIndex, probe: &[ArrayRef]) -> Vec<(u32, u32)> {
        let (mut p, mut b) = (Vec::new(), Vec::new());
        let keys = int_keys(probe).expect("keys");
        index.matches(&keys, 0..keys.values.len(), &mut p, &mut b);
        p.into_iter().zip(b).collect()
    }

    /// Unique and repeated keys, NULLs on both sides, negative and extreme values, and
    /// enough rows to wrap probe sequences: every pair equals a nested-loop join's, in
    /// build input order per probe row.
    #[test]
    fn matches_equal_a_nested_loop() {
        let build: Vec<Option<i64>> = (0..5000)
            .map(|i| match i % 7 {
                0 => None,
                1 => Some(i64::MIN + i),
                2 => Some(i % 100), // repeated keys
                _ => Some(i * 1_000_003),
            })
            .chain([Some(i64::MAX), Some(-1), Some(-1)])
            .collect();
        let probe: Vec<Option<i64>> = (0..3000)
            .map(|i| match i % 5 {
                0 => None,
                1 => Some(i % 120),
                2 => Some(i64::MIN + i),
                3 => Some(i * 1_000_003),
                _ => Some(-1),
            })
            .chain([Some(i64::MAX)])
            .collect();
        let bk: ArrayRef = Arc::new(Int64Array::from(build.clone()));
        let pk: ArrayRef = Arc::new(Int64Array::from(probe.clone()));
        let index = index(&[bk]);
        let mut expected = Vec::new();
        for (i, p) in probe.iter().enumerate() {
            for (j, b) in build.iter().enumerate() {
                if p.is_some() && p == b {
                    expected.push((i as u32, j as u32));
                }
            }
        }
        assert!(expected.len() > 3000, "{}", expected.len());
        assert_eq!(pairs(&index, &[pk]), expected);
    }

    /// Narrower integer and date keys are indexed as `i64`.
    #[test]
    fn narrow_types_match() {
        let bk: ArrayRef = Arc::new(Int32Array::from(vec![Some(3), None, Some(-7), Some(3)]));
        let pk: ArrayRef = Arc::new(Int32Array::from(vec![Some(-7), Some(3), None, Some(4)]));
        assert_eq!(pairs(&index(&[bk]), &[pk]), vec![(0, 2), (1, 0), (1, 3)]);
        let bk: ArrayRef = Arc::new(Date32Array::from(vec![10, 20]));
        let pk: ArrayRef = Arc::new(Date32Array::from(vec![20, 30, 10]));
        assert_eq!(pairs(&index(&[bk]), &[pk]), vec![(0, 1), (2, 0)]);
        assert!(is_int_key(&DataType::Date32) && !is_int_key(&DataType::UInt64));
    }

    /// Two columns pack into one key: pairs match only when both values do, negative
    /// values included; a probe value beyond 32 bits (which would pack like a narrower
    /// one) matches nothing, and build values beyond 32 bits are reported.
    #[test]
    fn two_columns_pack() {
        let col = |v: Vec<Option<i64>>| -> ArrayRef { Arc::new(Int64Array::from(v)) };
        let build = [
            col(vec![Some(1), Some(1), Some(-2), None, Some(7)]),
            col(vec![Some(5), Some(6), Some(-3), Some(5), Some(8)]),
        ];
        let probe = [
            col(vec![Some(1), Some(-2), Some(1), Some(7), Some(1), None]),
            col(vec![
                Some(6),
                Some(-3),
                Some(5 + (1 << 32)),
                Some(8),
                Some(5),
                Some(5),
            ]),
        ];
        assert_eq!(
            pairs(&index(&build), &probe),
            vec![(0, 1), (1, 2), (3, 4), (4, 0)]
        );
        assert!(!int_keys(&build).expect("keys").wide);
        assert!(int_keys(&probe).expect("keys").wide);
    }
}
