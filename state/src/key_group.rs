//! Key groups: the unit of state redistribution.
//!
//! A key's serialized bytes are hashed with MurmurHash3 (x86, 32-bit, seed 0 — a fixed,
//! published function, so assignments are stable across Rust versions, platforms and
//! processes) and reduced modulo `max_parallelism` to a *key group*. Key groups, not keys, are
//! assigned to operator instances in contiguous ranges (Flink's formula), so changing the
//! parallelism only moves whole key groups; `max_parallelism` is fixed for the lifetime of a job.

use std::fmt;
use std::ops::RangeInclusive;

use crate::error::{Result, StateError};

/// The largest supported max parallelism (number of key groups), `2^15` as in Flink.
pub const MAX_MAX_PARALLELISM: u32 = 1 << 15;

/// A reasonable default max parallelism for small jobs (Flink's default lower bound).
pub const DEFAULT_MAX_PARALLELISM: u32 = 128;

/// A non-empty, **inclusive** range of key groups `[start, end]` owned by one operator instance.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct KeyGroupRange {
    start: u32,
    end: u32,
}

impl KeyGroupRange {
    /// The range `[start, end]` (both inclusive); errors if `start > end`.
    pub fn new(start: u32, end: u32) -> Result<Self> {
        if start > end {
            return Err(StateError::InvalidKeyGroupRange {
                start,
                end,
                max_parallelism: 0,
            });
        }
        Ok(Self { start, end })
    }

    /// All key groups `[0, max_parallelism - 1]` (a backend at parallelism 1).
    pub fn all(max_parallelism: u32) -> Result<Self> {
        check_max_parallelism(max_parallelism)?;
        Ok(Self {
            start: 0,
            end: max_parallelism - 1,
        })
    }

    /// First key group (inclusive).
    pub fn start(&self) -> u32 {
        self.start
    }

    /// Last key group (inclusive).
    pub fn end(&self) -> u32 {
        self.end
    }

    /// Number of key groups in the range (at least 1).
    pub fn len(&self) -> u32 {
        self.end - self.start + 1
    }

    /// Always `false`: ranges are non-empty by construction (present for API symmetry).
    pub fn is_empty(&self) -> bool {
        false
    }

    /// Whether `key_group` is in the range.
    pub fn contains(&self, key_group: u32) -> bool {
        key_group >= self.start && key_group <= self.end
    }

    /// The key groups of the range in ascending order.
    pub fn iter(&self) -> RangeInclusive<u32> {
        self.start..=self.end
    }

    /// Errors unless the whole range fits below `max_parallelism`.
    pub(crate) fn check_fits(&self, max_parallelism: u32) -> Result<()> {
        check_max_parallelism(max_parallelism)?;
        if self.end >= max_parallelism {
            return Err(StateError::InvalidKeyGroupRange {
                start: self.start,
                end: self.end,
                max_parallelism,
            });
        }
        Ok(())
    }
}

impl fmt::Display for KeyGroupRange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "[{}, {}]", self.start, self.end)
    }
}

/// Errors unless `max_parallelism` is in `1..=MAX_MAX_PARALLELISM`.
pub fn check_max_parallelism(max_parallelism: u32) -> Result<()> {
    if max_parallelism == 0 || max_parallelism > MAX_MAX_PARALLELISM {
        return Err(StateError::InvalidMaxParallelism(max_parallelism));
    }
    Ok(())
}

fn check_parallelism(max_parallelism: u32, parallelism: u32) -> Result<()> {
    check_max_parallelism(max_parallelism)?;
    if parallelism == 0 || parallelism > max_parallelism {
        return Err(StateError::InvalidParallelism {
            parallelism,
            max_parallelism,
        });
    }
    Ok(())
}

/// MurmurHash3 x86 32-bit of `data` with `seed` (Austin Appleby's public-domain algorithm).
pub fn murmur3_32(data: &[u8], seed: u32) -> u32 {
    const C1: u32 = 0xcc9e_2d51;
    const C2: u32 = 0x1b87_3593;
    let mut h = seed;
    let mut chunks = data.chunks_exact(4);
    for c in &mut chunks {
        let k = u32::from_le_bytes([c[0], c[1], c[2], c[3]]);
        h ^= k.wrapping_mul(C1).rotate_left(15).wrapping_mul(C2);
        h = h.rotate_left(13).wrapping_mul(5).wrapping_add(0xe654_6b64);
    }
    let tail = chunks.remainder();
    if !tail.is_empty() {
        let k = tail
            .iter()
            .enumerate()
            .fold(0u32, |k, (i, b)| k | (u32::from(*b) << (8 * i)));
        h ^= k.wrapping_mul(C1).rotate_left(15).wrapping_mul(C2);
    }
    // Lengths above 4 GiB wrap, as in the reference implementation's 32-bit length.
    h ^= data.len() as u32;
    h ^= h >> 16;
    h = h.wrapping_mul(0x85eb_ca6b);
    h ^= h >> 13;
    h = h.wrapping_mul(0xc2b2_ae35);
    h ^ (h >> 16)
}

/// Key group of `key` for an already validated `max_parallelism` (the hot path).
#[inline]
pub(crate) fn key_group_unchecked(key: &[u8], max_parallelism: u32) -> u32 {
    murmur3_32(key, 0) % max_parallelism
}

/// The key group of a serialized key: `murmur3_32(key, seed 0) % max_parallelism`.
pub fn key_group_for_key(key: &[u8], max_parallelism: u32) -> Result<u32> {
    check_max_parallelism(max_parallelism)?;
    Ok(key_group_unchecked(key, max_parallelism))
}

/// The key groups owned by operator instance `operator_index` of `parallelism` instances:
/// `[ceil(i * maxP / p), ceil((i + 1) * maxP / p) - 1]`.
pub fn range_for_operator(
    max_parallelism: u32,
    parallelism: u32,
    operator_index: u32,
) -> Result<KeyGroupRange> {
    check_parallelism(max_parallelism, parallelism)?;
    if operator_index >= parallelism {
        return Err(StateError::InvalidOperatorIndex {
            index: operator_index,
            parallelism,
        });
    }
    let (m, p, i) = (
        u64::from(max_parallelism),
        u64::from(parallelism),
        u64::from(operator_index),
    );
    let start = (i * m).div_ceil(p);
    let end = ((i + 1) * m).div_ceil(p) - 1;
    // Both are < max_parallelism <= 2^15, so the conversions cannot truncate.
    KeyGroupRange::new(start as u32, end as u32)
}

/// The operator instance that owns `key_group`: `key_group * parallelism / max_parallelism`.
pub fn operator_for_key_group(
    max_parallelism: u32,
    parallelism: u32,
    key_group: u32,
) -> Result<u32> {
    check_parallelism(max_parallelism, parallelism)?;
    if key_group >= max_parallelism {
        return Err(StateError::InvalidKeyGroup {
            key_group,
            max_parallelism,
        });
    }
    Ok((u64::from(key_group) * u64::from(parallelism) / u64::from(max_parallelism)) as u32)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn murmur3_matches_reference_vectors() {
        assert_eq!(murmur3_32(b"", 0), 0);
        assert_eq!(murmur3_32(b"", 1), 0x514e_28b7);
        assert_eq!(murmur3_32(b"hello", 0), 0x248b_fa47);
        assert_eq!(
            murmur3_32(b"The quick brown fox jumps over the lazy dog", 0),
            0x2e4f_f723
        );
    }

    #[test]
    fn key_group_is_stable_and_in_range() {
        for mp in [1, 7, 128, 32768] {
            for i in 0..1000u32 {
                let kg = key_group_for_key(&i.to_le_bytes(), mp).expect("valid");
                assert!(kg < mp);
            }
        }
        // Pinned value: key groups go into snapshots, so this must never change.
        assert_eq!(
            key_group_for_key(b"hello", 128).expect("valid"),
            0x248b_fa47 % 128
        );
    }

    #[test]
    fn ranges_partition_key_groups_and_agree_with_operator_for_key_group() {
        for (mp, p) in [(128, 1), (128, 3), (10, 10), (7, 3), (32768, 1000), (5, 4)] {
            let mut next = 0;
            for i in 0..p {
                let r = range_for_operator(mp, p, i).expect("valid");
                assert_eq!(r.start(), next, "contiguous for mp={mp} p={p}");
                for kg in r.iter() {
                    assert_eq!(operator_for_key_group(mp, p, kg).expect("valid"), i);
                }
                next = r.end() + 1;
            }
            assert_eq!(next, mp, "covers all key groups");
        }
        assert_eq!(
            range_for_operator(128, 3, 1).expect("valid"),
            KeyGroupRange::new(43, 85).expect("valid")
        );
    }

    #[test]
    fn arguments_are_validated() {
        assert!(matches!(
            key_group_for_key(b"k", 0),
            Err(StateError::InvalidMaxParallelism(0))
        ));
        assert!(matches!(
            range_for_operator(32769, 1, 0),
            Err(StateError::InvalidMaxParallelism(_))
        ));
        assert!(matches!(
            range_for_operator(4, 5, 0),
            Err(StateError::InvalidParallelism { .. })
        ));
        assert!(matches!(
            range_for_operator(4, 0, 0),
            Err(StateError::InvalidParallelism { .. })
        ));
        assert!(matches!(
            range_for_operator(4, 2, 2),
            Err(StateError::InvalidOperatorIndex { .. })
        ));
        assert!(matches!(
            operator_for_key_group(4, 2, 4),
            Err(StateError::InvalidKeyGroup { .. })
        ));
        assert!(KeyGroupRange::new(3, 2).is_err());
        assert!(KeyGroupRange::new(0, 4)
            .expect("valid")
            .check_fits(4)
            .is_err());
        assert_eq!(KeyGroupRange::all(4).expect("valid").len(), 4);
    }
}
