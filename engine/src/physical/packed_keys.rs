//! Group keys packed into fixed-width `u64` words: one word of NULL flags (bit `c` for key
//! column `c`), then each column's value: one word for an integer or date, two for a
//! decimal, two for a string of at most 12 bytes (its `Utf8View` view with the unused
//! bytes zeroed: length and bytes). A NULL's value words are zero. Comparing and hashing
//! a few words is much cheaper than encoding Arrow rows (TPC-H q1 groups 6 M rows by two
//! one-letter strings).

use arrow::array::{Array, ArrayRef, AsArray, Decimal128Array, Int64Array, StringViewBuilder};
use arrow::datatypes::{DataType, Decimal128Type, Int64Type};

use crate::error::{Result, SluiceError};
use crate::physical::hash::mix;

/// Most key columns a packed key holds (one NULL flag bit each; words stay few).
const MAX_COLUMNS: usize = 8;

/// The stored keys of a group table, `width` words each, in group order.
#[derive(Debug)]
pub struct PackedKeys {
    types: Vec<DataType>,
    /// Words each column takes.
    words: Vec<usize>,
    width: usize,
    values: Vec<u64>,
    /// The last batch's encoded keys.
    scratch: Vec<u64>,
}

/// Words one value of type `t` takes, or None when `t` has no packed form.
fn words_of(t: &DataType) -> Option<usize> {
    use DataType::*;
    match t {
        Int8 | Int16 | Int32 | Int64 | UInt8 | UInt16 | UInt32 | Date32 => Some(1),
        Decimal128(..) | Utf8View => Some(2),
        _ => None,
    }
}

impl PackedKeys {
    /// Packed storage for keys of `types`, or None when some type has no packed form.
    pub fn try_new(types: &[DataType]) -> Option<Self> {
        if types.is_empty() || types.len() > MAX_COLUMNS {
            return None;
        }
        let words = types.iter().map(words_of).collect::<Option<Vec<_>>>()?;
        Some(Self {
            types: types.to_vec(),
            width: 1 + words.iter().sum::<usize>(),
            words,
            values: vec![],
            scratch: vec![],
        })
    }

    /// The key column types.
    pub fn types(&self) -> &[DataType] {
        &self.types
    }

    /// Words per key.
    pub fn width(&self) -> usize {
        self.width
    }

    /// Encodes the first `n` rows of `keys` into the scratch rows ([`Self::encoded`]);
    /// false when some value has no packed form (a string longer than 12 bytes).
    pub fn encode(&mut self, keys: &[ArrayRef], n: usize) -> Result<bool> {
        let w = self.width;
        let out = &mut self.scratch;
        out.clear();
        out.resize(n * w, 0);
        let mut at = 1;
        for (c, ((k, t), &words)) in keys.iter().zip(&self.types).zip(&self.words).enumerate() {
            match t {
                DataType::Utf8View => {
                    let a = k.as_string_view();
                    for (i, &v) in a.views().iter().take(n).enumerate() {
                        let len = v as u32;
                        if len > 12 {
                            if a.is_valid(i) {
                                return Ok(false);
                            }
                            continue;
                        }
                        put(out, i * w + at, inline_view(v, len));
                    }
                }
                DataType::Decimal128(..) => {
                    let a = k.as_primitive::<Decimal128Type>();
                    for (i, &v) in a.values().iter().take(n).enumerate() {
                        put(out, i * w + at, v as u128);
                    }
                }
                _ => {
                    let a = arrow::compute::cast(k, &DataType::Int64)?;
                    for (i, &v) in a
                        .as_primitive::<Int64Type>()
                        .values()
                        .iter()
                        .take(n)
                        .enumerate()
                    {
                        out[i * w + at] = v as u64;
                    }
                }
            }
            if let Some(nulls) = k.logical_nulls().filter(|n| n.null_count() > 0) {
                for i in (0..n).filter(|&i| nulls.is_null(i)) {
                    out[i * w] |= 1 << c;
                    out[i * w + at..i * w + at + words].fill(0);
                }
            }
            at += words;
        }
        Ok(true)
    }

    /// The rows [`Self::encode`] wrote, `width` words each.
    pub fn encoded(&self) -> &[u64] {
        &self.scratch
    }

    /// Encoded row `i` of the last batch.
    #[inline]
    pub fn encoded_row(&self, i: usize) -> &[u64] {
        &self.scratch[i * self.width..(i + 1) * self.width]
    }

    /// Stored key `g`.
    #[inline]
    pub fn key(&self, g: usize) -> &[u64] {
        &self.values[g * self.width..(g + 1) * self.width]
    }

    /// Stores encoded row `i` as the next key.
    #[inline]
    pub fn push_encoded(&mut self, i: usize) {
        let w = self.width;
        self.values
            .extend_from_slice(&self.scratch[i * w..(i + 1) * w]);
    }

    /// Bytes held.
    pub fn memory_size(&self) -> usize {
        (self.values.capacity() + self.scratch.capacity()) * 8
    }

    /// The stored keys as columns, in group order.
    pub fn to_arrays(&self) -> Result<Vec<ArrayRef>> {
        let w = self.width;
        let n = self.values.len() / w;
        let valid = |c: usize, g: usize| self.values[g * w] & (1 << c) == 0;
        let mut at = 1;
        let mut out = Vec::with_capacity(self.types.len());
        for (c, (t, &words)) in self.types.iter().zip(&self.words).enumerate() {
            let word = |g: usize| self.values[g * w + at];
            let wide =
                |g: usize| u128::from(word(g)) | u128::from(self.values[g * w + at + 1]) << 64;
            let col: ArrayRef = match t {
                DataType::Utf8View => {
                    let mut b = StringViewBuilder::with_capacity(n);
                    for g in 0..n {
                        if valid(c, g) {
                            let v = wide(g);
                            let bytes = v.to_le_bytes();
                            let s = std::str::from_utf8(&bytes[4..4 + (v as u32 as usize)])
                                .map_err(|e| SluiceError::exec(format!("group key: {e}")))?;
                            b.append_value(s);
                        } else {
                            b.append_null();
                        }
                    }
                    std::sync::Arc::new(b.finish())
                }
                DataType::Decimal128(p, s) => std::sync::Arc::new(
                    Decimal128Array::from_iter(
                        (0..n).map(|g| valid(c, g).then(|| wide(g) as i128)),
                    )
                    .with_precision_and_scale(*p, *s)?,
                ),
                _ => {
                    let a =
                        Int64Array::from_iter((0..n).map(|g| valid(c, g).then(|| word(g) as i64)));
                    arrow::compute::cast(&a, t)?
                }
            };
            out.push(col);
            at += words;
        }
        Ok(out)
    }
}

/// Hash of one packed key.
#[inline]
pub fn hash_words(key: &[u64]) -> u64 {
    key.iter().fold(key.len() as u64, |h, &v| mix(h, v))
}

#[inline]
fn put(out: &mut [u64], at: usize, v: u128) {
    out[at] = v as u64;
    out[at + 1] = (v >> 64) as u64;
}

/// A view of a string of `len <= 12` bytes with the bytes past the string zeroed (Arrow
/// does not require them to be).
#[inline]
fn inline_view(v: u128, len: u32) -> u128 {
    if len >= 12 {
        v
    } else {
        v & ((1u128 << (32 + 8 * len)) - 1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    use arrow::array::{Date32Array, Int32Array, StringViewArray};
    use arrow::buffer::NullBuffer;

    #[test]
    fn keys_round_trip_with_nulls() {
        let types = vec![
            DataType::Utf8View,
            DataType::Int32,
            DataType::Decimal128(15, 2),
            DataType::Date32,
        ];
        let mut p = PackedKeys::try_new(&types).expect("packable");
        assert_eq!(p.width(), 1 + 2 + 1 + 2 + 1);
        let cols: Vec<ArrayRef> = vec![
            Arc::new(StringViewArray::from(vec![
                Some("A"),
                None,
                Some("twelve bytes"),
            ])),
            Arc::new(Int32Array::from(vec![Some(-1), Some(7), None])),
            Arc::new(
                Decimal128Array::from(vec![Some(-12345), None, Some(i128::from(i64::MAX) * 4)])
                    .with_precision_and_scale(15, 2)
                    .expect("decimal"),
            ),
            Arc::new(Date32Array::from(vec![None, Some(9000), Some(0)])),
        ];
        assert!(p.encode(&cols, 3).expect("encode"));
        for i in 0..3 {
            p.push_encoded(i);
        }
        let back = p.to_arrays().expect("decode");
        for (a, b) in back.iter().zip(&cols) {
            assert_eq!(a.as_ref(), b.as_ref());
        }
    }

    #[test]
    fn padding_past_an_inline_string_is_ignored() {
        // Arrow validates zero padding only where it checks arrays; packing masks it anyway.
        let clean = StringViewArray::from(vec!["ab", "twelve bytes"]);
        let short = clean.views()[0];
        assert_eq!(inline_view(short | (0xFFu128 << 120), 2), short);
        assert_eq!(inline_view(clean.views()[1], 12), clean.views()[1]);
    }

    #[test]
    fn long_strings_and_unsupported_types_do_not_pack() {
        let mut p = PackedKeys::try_new(&[DataType::Utf8View]).expect("packable");
        let long: ArrayRef = Arc::new(StringViewArray::from(vec!["thirteen byte"]));
        assert!(!p.encode(&[long], 1).expect("encode"));
        // A long string under a NULL slot is no obstacle.
        let (views, buffers, _) = StringViewArray::from(vec!["thirteen byte"]).into_parts();
        let null_long: ArrayRef = Arc::new(StringViewArray::new(
            views,
            buffers,
            Some(NullBuffer::new_null(1)),
        ));
        assert!(p.encode(&[null_long], 1).expect("encode"));
        assert!(PackedKeys::try_new(&[DataType::Utf8]).is_none());
        assert!(PackedKeys::try_new(&[DataType::Float64]).is_none());
    }
}
