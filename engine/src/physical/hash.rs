//! Row hashing over columns, shared by hash joins, hash aggregation and hash exchanges
//! (so equal keys land in the same partition and bucket everywhere), and the prefetch hint
//! their hash tables use.

use arrow::array::{Array, ArrayRef, AsArray};
use arrow::datatypes::{
    DataType, Date32Type, Date64Type, Decimal128Type, Float32Type, Float64Type, Int16Type,
    Int32Type, Int64Type, Int8Type, UInt16Type, UInt32Type, UInt64Type, UInt8Type,
};
use arrow::row::{RowConverter, SortField};

use crate::error::Result;

const K: u64 = 0x9E37_79B9_7F4A_7C15;
const NULL_HASH: u64 = 0x5bd1_e995_1234_5678;

/// One step of the word hash every key hash here is built from.
#[inline]
pub(crate) fn mix(h: u64, v: u64) -> u64 {
    (h.rotate_left(5) ^ v).wrapping_mul(K)
}

/// Hash of a byte string (the same function string columns use).
#[inline]
pub(crate) fn hash_bytes(b: &[u8]) -> u64 {
    let mut h = b.len() as u64;
    let mut chunks = b.chunks_exact(8);
    for c in &mut chunks {
        let mut a = [0u8; 8];
        a.copy_from_slice(c);
        h = mix(h, u64::from_le_bytes(a));
    }
    let rest = chunks.remainder();
    if !rest.is_empty() {
        let mut a = [0u8; 8];
        a[..rest.len()].copy_from_slice(rest);
        h = mix(h, u64::from_le_bytes(a));
    }
    h
}

macro_rules! hash_prim {
    ($arr:expr, $t:ty, $hashes:expr, $conv:expr) => {{
        let a = $arr.as_primitive::<$t>();
        let conv = $conv;
        if a.null_count() == 0 {
            for (h, v) in $hashes.iter_mut().zip(a.values().iter()) {
                *h = mix(*h, conv(*v));
            }
        } else {
            for (i, h) in $hashes.iter_mut().enumerate() {
                *h = mix(
                    *h,
                    if a.is_null(i) {
                        NULL_HASH
                    } else {
                        conv(a.value(i))
                    },
                );
            }
        }
    }};
}

/// Hashes column `arr` into `hashes` (one per row), combining with what is there.
pub fn hash_array(arr: &ArrayRef, hashes: &mut [u64]) -> Result<()> {
    match arr.data_type() {
        DataType::Int8 => hash_prim!(arr, Int8Type, hashes, |v: i8| v as u64),
        DataType::Int16 => hash_prim!(arr, Int16Type, hashes, |v: i16| v as u64),
        DataType::Int32 => hash_prim!(arr, Int32Type, hashes, |v: i32| v as u64),
        DataType::Int64 => hash_prim!(arr, Int64Type, hashes, |v: i64| v as u64),
        DataType::UInt8 => hash_prim!(arr, UInt8Type, hashes, |v: u8| v as u64),
        DataType::UInt16 => hash_prim!(arr, UInt16Type, hashes, |v: u16| v as u64),
        DataType::UInt32 => hash_prim!(arr, UInt32Type, hashes, |v: u32| v as u64),
        DataType::UInt64 => hash_prim!(arr, UInt64Type, hashes, |v: u64| v),
        DataType::Date32 => hash_prim!(arr, Date32Type, hashes, |v: i32| v as u64),
        DataType::Date64 => hash_prim!(arr, Date64Type, hashes, |v: i64| v as u64),
        DataType::Decimal128(..) => hash_prim!(arr, Decimal128Type, hashes, |v: i128| {
            (v as u64) ^ ((v >> 64) as u64).wrapping_mul(K)
        }),
        // +0.0 and -0.0 are equal, so they must hash alike.
        DataType::Float32 => hash_prim!(arr, Float32Type, hashes, |v: f32| (v + 0.0).to_bits()
            as u64),
        DataType::Float64 => hash_prim!(arr, Float64Type, hashes, |v: f64| (v + 0.0).to_bits()),
        DataType::Utf8 => {
            let a = arr.as_string::<i32>();
            for (i, h) in hashes.iter_mut().enumerate() {
                *h = mix(
                    *h,
                    if a.is_null(i) {
                        NULL_HASH
                    } else {
                        hash_bytes(a.value(i).as_bytes())
                    },
                );
            }
        }
        DataType::LargeUtf8 => {
            let a = arr.as_string::<i64>();
            for (i, h) in hashes.iter_mut().enumerate() {
                *h = mix(
                    *h,
                    if a.is_null(i) {
                        NULL_HASH
                    } else {
                        hash_bytes(a.value(i).as_bytes())
                    },
                );
            }
        }
        DataType::Utf8View => {
            let a = arr.as_string_view();
            for (i, h) in hashes.iter_mut().enumerate() {
                *h = mix(
                    *h,
                    if a.is_null(i) {
                        NULL_HASH
                    } else {
                        hash_bytes(a.value(i).as_bytes())
                    },
                );
            }
        }
        DataType::Boolean => {
            let a = arr.as_boolean();
            for (i, h) in hashes.iter_mut().enumerate() {
                *h = mix(
                    *h,
                    if a.is_null(i) {
                        NULL_HASH
                    } else {
                        u64::from(a.value(i)) + 1
                    },
                );
            }
        }
        DataType::Null => {
            for h in hashes.iter_mut() {
                *h = mix(*h, NULL_HASH);
            }
        }
        other => {
            // Any other type: hash its row encoding (equal values encode equally).
            let conv = RowConverter::new(vec![SortField::new(other.clone())])?;
            let rows = conv.convert_columns(std::slice::from_ref(arr))?;
            for (i, h) in hashes.iter_mut().enumerate() {
                *h = mix(
                    *h,
                    if arr.is_null(i) {
                        NULL_HASH
                    } else {
                        hash_bytes(rows.row(i).as_ref())
                    },
                );
            }
        }
    }
    Ok(())
}

/// One hash per row over all `cols`.
pub fn hash_columns(cols: &[ArrayRef], num_rows: usize) -> Result<Vec<u64>> {
    let mut hashes = vec![0u64; num_rows];
    for c in cols {
        hash_array(c, &mut hashes)?;
    }
    Ok(hashes)
}

/// Hints the CPU to load the cache line at `p`; a hint only (it never faults).
#[inline(always)]
#[allow(unsafe_code)]
pub(crate) fn prefetch<T>(p: *const T) {
    #[cfg(target_arch = "x86_64")]
    // SAFETY: a prefetch is a hint and does not fault, even for an invalid address; SSE
    // is part of the x86_64 baseline.
    unsafe {
        std::arch::x86_64::_mm_prefetch::<{ std::arch::x86_64::_MM_HINT_T0 }>(p.cast());
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = p;
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow::array::{Int64Array, StringArray, StringViewArray};
    use std::sync::Arc;

    #[test]
    fn equal_values_hash_alike_across_string_types() {
        let a: ArrayRef = Arc::new(StringArray::from(vec!["x", "yy"]));
        let b: ArrayRef = Arc::new(StringViewArray::from(vec!["x", "yy"]));
        assert_eq!(
            hash_columns(&[a], 2).expect("h"),
            hash_columns(&[b], 2).expect("h")
        );
        let i: ArrayRef = Arc::new(Int64Array::from(vec![Some(1), None, Some(1)]));
        let h = hash_columns(&[i], 3).expect("h");
        assert_eq!(h[0], h[2]);
        assert_ne!(h[0], h[1]);
    }
}
