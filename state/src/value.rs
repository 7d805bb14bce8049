//! The value codec: [`StateValue`], and its implementations for common types.
//!
//! The memory backend keeps live typed objects and only encodes them when taking a snapshot
//! (and decodes them on restore), so the codec is off the per-record path. Encodings are
//! little-endian fixed width for numbers, raw bytes for strings and byte vectors, a tag byte
//! for `Option`, and a `u32` little-endian length prefix before every tuple component except
//! the last. `decode` always consumes the whole slice.

use crate::error::{Result, StateError};

/// A type that can live in keyed state: cloneable, sendable, and encodable for snapshots.
pub trait StateValue: Clone + Send + 'static {
    /// A stable name of the type, recorded in snapshots to detect type changes on restore
    /// (e.g. `"i64"`, `"(String,i64)"`). Must not depend on the compiler version.
    fn type_name() -> String;

    /// Appends the encoding of `self` to `out`.
    fn encode(&self, out: &mut Vec<u8>);

    /// Decodes a value from exactly `bytes` (as written by [`StateValue::encode`]).
    fn decode(bytes: &[u8]) -> Result<Self>;

    /// Approximate bytes held by the value (inline plus heap), for memory accounting.
    fn size_estimate(&self) -> usize {
        std::mem::size_of::<Self>()
    }
}

macro_rules! fixed_width {
    ($($t:ty => $name:literal),* $(,)?) => {$(
        impl StateValue for $t {
            fn type_name() -> String {
                $name.to_string()
            }

            fn encode(&self, out: &mut Vec<u8>) {
                out.extend_from_slice(&self.to_le_bytes());
            }

            fn decode(bytes: &[u8]) -> Result<Self> {
                let arr = bytes.try_into().map_err(|_| {
                    StateError::decode(
                        $name,
                        format!("expected {} bytes, got {}", std::mem::size_of::<$t>(), bytes.len()),
                    )
                })?;
                Ok(<$t>::from_le_bytes(arr))
            }
        }
    )*};
}

fixed_width!(i64 => "i64", u64 => "u64", i32 => "i32", u32 => "u32", f64 => "f64");

impl StateValue for bool {
    fn type_name() -> String {
        "bool".to_string()
    }

    fn encode(&self, out: &mut Vec<u8>) {
        out.push(u8::from(*self));
    }

    fn decode(bytes: &[u8]) -> Result<Self> {
        match bytes {
            [0] => Ok(false),
            [1] => Ok(true),
            _ => Err(StateError::decode(
                "bool",
                format!("invalid bytes {bytes:?}"),
            )),
        }
    }
}

impl StateValue for String {
    fn type_name() -> String {
        "String".to_string()
    }

    fn encode(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(self.as_bytes());
    }

    fn decode(bytes: &[u8]) -> Result<Self> {
        String::from_utf8(bytes.to_vec()).map_err(|e| StateError::decode("String", e.to_string()))
    }

    fn size_estimate(&self) -> usize {
        std::mem::size_of::<Self>() + self.capacity()
    }
}

impl StateValue for Vec<u8> {
    fn type_name() -> String {
        "Vec<u8>".to_string()
    }

    fn encode(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(self);
    }

    fn decode(bytes: &[u8]) -> Result<Self> {
        Ok(bytes.to_vec())
    }

    fn size_estimate(&self) -> usize {
        std::mem::size_of::<Self>() + self.capacity()
    }
}

impl<T: StateValue> StateValue for Option<T> {
    fn type_name() -> String {
        format!("Option<{}>", T::type_name())
    }

    fn encode(&self, out: &mut Vec<u8>) {
        match self {
            None => out.push(0),
            Some(v) => {
                out.push(1);
                v.encode(out);
            }
        }
    }

    fn decode(bytes: &[u8]) -> Result<Self> {
        match bytes.split_first() {
            Some((0, [])) => Ok(None),
            Some((1, rest)) => T::decode(rest).map(Some),
            _ => Err(StateError::decode(
                Self::type_name(),
                "missing or invalid tag byte",
            )),
        }
    }

    fn size_estimate(&self) -> usize {
        match self {
            None => std::mem::size_of::<Self>(),
            Some(v) => v.size_estimate().max(std::mem::size_of::<Self>()),
        }
    }
}

/// Appends `v` with a `u32` little-endian length prefix.
fn encode_prefixed<T: StateValue>(v: &T, out: &mut Vec<u8>) {
    let at = out.len();
    out.extend_from_slice(&[0; 4]);
    v.encode(out);
    let len = (out.len() - at - 4) as u32;
    out[at..at + 4].copy_from_slice(&len.to_le_bytes());
}

/// Splits a length-prefixed component off the front of `bytes`.
fn split_prefixed<'a>(
    bytes: &'a [u8],
    type_name: &dyn Fn() -> String,
) -> Result<(&'a [u8], &'a [u8])> {
    let err = |reason: String| StateError::decode(type_name(), reason);
    let (len, rest) = bytes
        .split_first_chunk::<4>()
        .ok_or_else(|| err(format!("truncated length prefix ({} bytes)", bytes.len())))?;
    let len = u32::from_le_bytes(*len) as usize;
    if len > rest.len() {
        return Err(err(format!(
            "component length {len} exceeds remaining {} bytes",
            rest.len()
        )));
    }
    Ok(rest.split_at(len))
}

impl<A: StateValue, B: StateValue> StateValue for (A, B) {
    fn type_name() -> String {
        format!("({},{})", A::type_name(), B::type_name())
    }

    fn encode(&self, out: &mut Vec<u8>) {
        encode_prefixed(&self.0, out);
        self.1.encode(out);
    }

    fn decode(bytes: &[u8]) -> Result<Self> {
        let (a, rest) = split_prefixed(bytes, &Self::type_name)?;
        Ok((A::decode(a)?, B::decode(rest)?))
    }

    fn size_estimate(&self) -> usize {
        self.0.size_estimate() + self.1.size_estimate()
    }
}

impl<A: StateValue, B: StateValue, C: StateValue> StateValue for (A, B, C) {
    fn type_name() -> String {
        format!("({},{},{})", A::type_name(), B::type_name(), C::type_name())
    }

    fn encode(&self, out: &mut Vec<u8>) {
        encode_prefixed(&self.0, out);
        encode_prefixed(&self.1, out);
        self.2.encode(out);
    }

    fn decode(bytes: &[u8]) -> Result<Self> {
        let (a, rest) = split_prefixed(bytes, &Self::type_name)?;
        let (b, rest) = split_prefixed(rest, &Self::type_name)?;
        Ok((A::decode(a)?, B::decode(b)?, C::decode(rest)?))
    }

    fn size_estimate(&self) -> usize {
        self.0.size_estimate() + self.1.size_estimate() + self.2.size_estimate()
    }
}

/// Encodes `v` into a fresh vector.
pub fn encode_to_vec<T: StateValue>(v: &T) -> Vec<u8> {
    let mut out = Vec::new();
    v.encode(&mut out);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn round_trip<T: StateValue + PartialEq + std::fmt::Debug>(v: T) {
        let bytes = encode_to_vec(&v);
        assert_eq!(T::decode(&bytes).expect("decodes"), v, "{}", T::type_name());
    }

    #[test]
    fn values_round_trip() {
        round_trip(-5i64);
        round_trip(u64::MAX);
        round_trip(i32::MIN);
        round_trip(7u32);
        round_trip(1.5f64);
        round_trip(true);
        round_trip(false);
        round_trip("héllo".to_string());
        round_trip(vec![0u8, 1, 255]);
        round_trip(Some(3i64));
        round_trip(None::<String>);
        round_trip(("a".to_string(), 2i64));
        round_trip((String::new(), (vec![1u8], Some(true)), -1i32));
        round_trip((Some("x".to_string()), String::new()));
    }

    #[test]
    fn type_names_are_stable() {
        assert_eq!(<(String, Option<i64>)>::type_name(), "(String,Option<i64>)");
        assert_eq!(<(u64, bool, Vec<u8>)>::type_name(), "(u64,bool,Vec<u8>)");
    }

    #[test]
    fn bad_bytes_are_errors() {
        assert!(i64::decode(&[1, 2, 3]).is_err());
        assert!(bool::decode(&[2]).is_err());
        assert!(bool::decode(&[]).is_err());
        assert!(String::decode(&[0xff, 0xfe]).is_err());
        assert!(Option::<i64>::decode(&[]).is_err());
        assert!(Option::<i64>::decode(&[0, 1]).is_err());
        assert!(<(String, i64)>::decode(&[1, 0]).is_err());
        assert!(<(String, i64)>::decode(&[200, 0, 0, 0, 1]).is_err());
        let err = <(i64, i64)>::decode(&[8, 0, 0, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9])
            .expect_err("second component too short");
        assert!(err.to_string().contains("i64"), "{err}");
    }

    #[test]
    fn size_estimate_counts_heap() {
        let s = "x".repeat(100);
        assert!(s.size_estimate() >= 100);
        assert!((s.clone(), 1i64).size_estimate() >= 108);
        assert_eq!(5i64.size_estimate(), 8);
    }
}
