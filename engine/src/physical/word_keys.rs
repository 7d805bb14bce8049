//! Group keys of several narrow columns packed into one `u64`, so a multi-column key is
//! grouped like a single integer (one multiply-hash and one 8-byte compare per row, in
//! the group table's open-addressed integer index) instead of through a hash of several
//! words and a key comparison.
//!
//! The word holds one NULL flag bit per column (bit `c` for column `c`), then each
//! column's value in a fixed bit range: 8, 16 or 32 bits for integers and dates, and for
//! a `Utf8View` string its length and bytes, as many bytes as the bits left over allow
//! (TPC-H q1 groups by two one-letter flags; q12 by ship modes of at most 7 bytes). A
//! NULL's value bits are zero. A longer string than the layout holds makes
//! [`WordKeys::encode`] return false and the group table move to a wider key form.

use std::sync::Arc;

use arrow::array::{Array, ArrayRef, AsArray, Int64Array, StringViewBuilder};
use arrow::datatypes::{DataType, Int64Type};

use crate::error::{Result, SluiceError};

/// How one column sits in the word.
#[derive(Debug)]
struct Slot {
    /// Bit offset of the value.
    shift: u32,
    kind: SlotKind,
}

#[derive(Debug)]
enum SlotKind {
    /// An integer of `bits` bits, sign-extended when read back if `signed`.
    Int { bits: u32, signed: bool },
    /// A string of at most `max_len` bytes: its length in `len_bits` bits, then its bytes.
    Str { max_len: u32, len_bits: u32 },
}

impl Slot {
    /// Bits the value takes.
    fn bits(&self) -> u32 {
        match self.kind {
            SlotKind::Int { bits, .. } => bits,
            SlotKind::Str { max_len, len_bits } => len_bits + 8 * max_len,
        }
    }

    /// A mask of the value's bits (before shifting).
    fn mask(&self) -> u64 {
        u64::MAX >> (64 - self.bits())
    }
}

/// Bits needed to write the number `m`.
fn bits_for(m: u32) -> u32 {
    32 - m.leading_zeros()
}

/// The one-word layout of some key columns.
#[derive(Debug)]
pub struct WordKeys {
    types: Vec<DataType>,
    slots: Vec<Slot>,
}

impl WordKeys {
    /// A layout for keys of `types`, or None when they do not fit one word (a type
    /// without a narrow form, or no room for at least one byte of each string).
    pub fn try_new(types: &[DataType]) -> Option<Self> {
        use DataType::*;
        let int_bits = |t: &DataType| match t {
            Int8 | UInt8 => Some(8),
            Int16 | UInt16 => Some(16),
            Int32 | UInt32 | Date32 => Some(32),
            _ => None,
        };
        let mut fixed = types.len() as u32;
        let mut strings = 0u32;
        for t in types {
            match (t, int_bits(t)) {
                (_, Some(b)) => fixed += b,
                (Utf8View, None) => strings += 1,
                _ => return None,
            }
        }
        if fixed > 64 {
            return None;
        }
        // Each string gets an equal share of the bits left: its length, then its bytes.
        let share = (64 - fixed).checked_div(strings).unwrap_or(0);
        let max_len = (1..=7u32)
            .rev()
            .find(|&m| bits_for(m) + 8 * m <= share)
            .unwrap_or(0);
        if strings > 0 && max_len == 0 {
            return None;
        }
        let mut shift = types.len() as u32;
        let slots = types
            .iter()
            .map(|t| {
                let kind = match int_bits(t) {
                    Some(bits) => SlotKind::Int {
                        bits,
                        signed: !matches!(t, UInt8 | UInt16 | UInt32),
                    },
                    None => SlotKind::Str {
                        max_len,
                        len_bits: bits_for(max_len),
                    },
                };
                let slot = Slot { shift, kind };
                shift += slot.bits();
                slot
            })
            .collect();
        Some(Self {
            types: types.to_vec(),
            slots,
        })
    }

    /// The key column types.
    pub fn types(&self) -> &[DataType] {
        &self.types
    }

    /// Sets `out` to the words of the first `n` rows of `keys` (as `i64`, the group
    /// table's integer key); false when some string is longer than the layout holds.
    pub fn encode(&self, keys: &[ArrayRef], n: usize, out: &mut Vec<i64>) -> Result<bool> {
        out.clear();
        out.resize(n, 0);
        for (c, (k, slot)) in keys.iter().zip(&self.slots).enumerate() {
            let shift = slot.shift;
            match slot.kind {
                SlotKind::Str { max_len, len_bits } => {
                    let a = k.as_string_view();
                    for (i, (o, &v)) in out.iter_mut().zip(a.views()).enumerate() {
                        let len = v as u32;
                        if len > max_len {
                            if a.is_valid(i) {
                                return Ok(false);
                            }
                            continue;
                        }
                        // The view holds the length in its low 32 bits and the bytes from
                        // bit 32; bytes past the length are not guaranteed to be zero.
                        let bytes = ((v >> 32) as u64) & ((1u64 << (8 * len)) - 1);
                        *o |= ((u64::from(len) | bytes << len_bits) << shift) as i64;
                    }
                }
                SlotKind::Int { bits, .. } => {
                    let a = arrow::compute::cast(k, &DataType::Int64)?;
                    let mask = (1u64 << bits) - 1;
                    let vals = a.as_primitive::<Int64Type>().values();
                    for (o, &v) in out.iter_mut().zip(vals.iter()) {
                        *o |= ((v as u64 & mask) << shift) as i64;
                    }
                }
            }
            if let Some(nulls) = k.logical_nulls().filter(|m| m.null_count() > 0) {
                let value_mask = !(slot.mask() << shift);
                for i in (0..n).filter(|&i| nulls.is_null(i)) {
                    out[i] = ((out[i] as u64 & value_mask) | 1 << c) as i64;
                }
            }
        }
        Ok(true)
    }

    /// The columns of the keys `words`, in order.
    pub fn to_arrays(&self, words: &[i64]) -> Result<Vec<ArrayRef>> {
        let mut out = Vec::with_capacity(self.slots.len());
        for (c, (slot, t)) in self.slots.iter().zip(&self.types).enumerate() {
            let valid = |w: i64| w & (1 << c) == 0;
            let value = |w: i64| (w as u64 >> slot.shift) & slot.mask();
            let col: ArrayRef = match slot.kind {
                SlotKind::Str { len_bits, .. } => {
                    let mut b = StringViewBuilder::with_capacity(words.len());
                    for &w in words {
                        if !valid(w) {
                            b.append_null();
                            continue;
                        }
                        let v = value(w);
                        let len = (v & ((1 << len_bits) - 1)) as usize;
                        let bytes = (v >> len_bits).to_le_bytes();
                        let s = std::str::from_utf8(&bytes[..len])
                            .map_err(|e| SluiceError::exec(format!("group key: {e}")))?;
                        b.append_value(s);
                    }
                    Arc::new(b.finish())
                }
                SlotKind::Int { bits, signed } => {
                    let read = |w: i64| {
                        let v = value(w);
                        if signed {
                            ((v << (64 - bits)) as i64) >> (64 - bits)
                        } else {
                            v as i64
                        }
                    };
                    let a = Int64Array::from_iter(words.iter().map(|&w| valid(w).then(|| read(w))));
                    arrow::compute::cast(&a, t)?
                }
            };
            out.push(col);
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use arrow::array::{Date32Array, Int8Array, StringViewArray, UInt8Array};
    use arrow::buffer::NullBuffer;

    #[test]
    fn keys_round_trip_with_nulls_and_negatives() {
        let types = vec![
            DataType::Utf8View,
            DataType::Int8,
            DataType::UInt8,
            DataType::Date32,
        ];
        // 4 NULL bits and 48 integer bits leave 12: one-byte strings.
        let w = WordKeys::try_new(&types).expect("fits");
        let cols: Vec<ArrayRef> = vec![
            Arc::new(StringViewArray::from(vec![
                Some("A"),
                None,
                Some(""),
                Some("b"),
            ])),
            Arc::new(Int8Array::from(vec![
                Some(-1),
                Some(i8::MIN),
                None,
                Some(7),
            ])),
            Arc::new(UInt8Array::from(vec![Some(255), Some(0), Some(1), None])),
            Arc::new(Date32Array::from(vec![
                None,
                Some(-9000),
                Some(0),
                Some(i32::MAX),
            ])),
        ];
        let mut words = vec![];
        assert!(w.encode(&cols, 4, &mut words).expect("encode"));
        let distinct: std::collections::HashSet<_> = words.iter().collect();
        assert_eq!(distinct.len(), 4);
        let back = w.to_arrays(&words).expect("decode");
        for (a, b) in back.iter().zip(&cols) {
            assert_eq!(a.as_ref(), b.as_ref());
        }
    }

    #[test]
    fn strings_get_the_bits_left_over() {
        let one = WordKeys::try_new(&[DataType::Utf8View]).expect("fits");
        let modes: Vec<ArrayRef> = vec![Arc::new(StringViewArray::from(vec!["REG AIR", "FOB"]))];
        let mut words = vec![];
        assert!(one.encode(&modes, 2, &mut words).expect("encode"));
        assert_eq!(
            one.to_arrays(&words).expect("decode")[0].as_ref(),
            modes[0].as_ref()
        );
        let two = WordKeys::try_new(&[DataType::Utf8View, DataType::Utf8View]).expect("fits");
        // 62 bits over two strings: 31 each, 2 length bits and 3 bytes.
        let cols: Vec<ArrayRef> = vec![
            Arc::new(StringViewArray::from(vec!["abc", "R"])),
            Arc::new(StringViewArray::from(vec!["F", "xyz"])),
        ];
        assert!(two.encode(&cols, 2, &mut words).expect("encode"));
        let long: Vec<ArrayRef> = vec![
            Arc::new(StringViewArray::from(vec!["abcd"])),
            Arc::new(StringViewArray::from(vec!["F"])),
        ];
        assert!(!two.encode(&long, 1, &mut words).expect("encode"));
        // A long string under a NULL slot is no obstacle.
        let (views, buffers, _) = StringViewArray::from(vec!["abcd"]).into_parts();
        let null_long: Vec<ArrayRef> = vec![
            Arc::new(StringViewArray::new(
                views,
                buffers,
                Some(NullBuffer::new_null(1)),
            )),
            Arc::new(StringViewArray::from(vec!["F"])),
        ];
        assert!(two.encode(&null_long, 1, &mut words).expect("encode"));
        let back = two.to_arrays(&words).expect("decode");
        assert!(back[0].is_null(0));
    }

    #[test]
    fn wide_or_single_keys_do_not_fit() {
        use DataType::*;
        assert!(WordKeys::try_new(&[Int32, Int32]).is_none());
        assert!(WordKeys::try_new(&[Int64, Int8]).is_none());
        assert!(WordKeys::try_new(&[Utf8, Int8]).is_none());
        assert!(WordKeys::try_new(&[Int32, Int32, Utf8View]).is_none());
        // 29 bits left for two strings: one byte each.
        assert!(WordKeys::try_new(&[Int32, Utf8View, Utf8View]).is_some());
        assert!(WordKeys::try_new(&[Int16, Int16, Int16]).is_some());
    }
}
