//! Namespaces: a second, operator-chosen dimension of keyed state (e.g. a window).
//!
//! A namespace is opaque bytes. Operators without one (plain keyed aggregation, regular joins)
//! use [`VOID_NAMESPACE`]; window operators use [`WindowNamespace`], whose 16-byte encoding sorts
//! bytewise in window order (start, then end), so snapshots list windows chronologically.

use crate::error::{Result, StateError};

/// The empty namespace, for state that is not scoped by a window or similar.
pub const VOID_NAMESPACE: &[u8] = &[];

/// Convenience marker for the empty namespace; [`VoidNamespace::BYTES`] is [`VOID_NAMESPACE`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct VoidNamespace;

impl VoidNamespace {
    /// The encoded (empty) namespace.
    pub const BYTES: &'static [u8] = VOID_NAMESPACE;
}

impl AsRef<[u8]> for VoidNamespace {
    fn as_ref(&self) -> &[u8] {
        VOID_NAMESPACE
    }
}

/// A time window `[start_ms, end_ms)` used as a namespace.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct WindowNamespace {
    /// Window start in milliseconds (inclusive).
    pub start_ms: i64,
    /// Window end in milliseconds (exclusive).
    pub end_ms: i64,
}

/// Encoded length of a [`WindowNamespace`].
pub const WINDOW_NAMESPACE_LEN: usize = 16;

/// Big-endian with the sign bit flipped: bytewise order equals numeric order.
fn order_preserving(v: i64) -> [u8; 8] {
    ((v as u64) ^ (1 << 63)).to_be_bytes()
}

fn from_order_preserving(b: [u8; 8]) -> i64 {
    (u64::from_be_bytes(b) ^ (1 << 63)) as i64
}

impl WindowNamespace {
    /// A window `[start_ms, end_ms)`.
    pub fn new(start_ms: i64, end_ms: i64) -> Self {
        Self { start_ms, end_ms }
    }

    /// The 16-byte namespace encoding (order-preserving big-endian start, then end).
    pub fn encode(&self) -> [u8; WINDOW_NAMESPACE_LEN] {
        let mut out = [0u8; WINDOW_NAMESPACE_LEN];
        out[..8].copy_from_slice(&order_preserving(self.start_ms));
        out[8..].copy_from_slice(&order_preserving(self.end_ms));
        out
    }

    /// Decodes bytes written by [`WindowNamespace::encode`].
    pub fn decode(bytes: &[u8]) -> Result<Self> {
        let arr: [u8; WINDOW_NAMESPACE_LEN] = bytes.try_into().map_err(|_| {
            StateError::decode(
                "WindowNamespace",
                format!("expected {WINDOW_NAMESPACE_LEN} bytes, got {}", bytes.len()),
            )
        })?;
        let mut start = [0u8; 8];
        let mut end = [0u8; 8];
        start.copy_from_slice(&arr[..8]);
        end.copy_from_slice(&arr[8..]);
        Ok(Self {
            start_ms: from_order_preserving(start),
            end_ms: from_order_preserving(end),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn window_round_trips_and_sorts_bytewise() {
        let ws = [
            WindowNamespace::new(i64::MIN, -5),
            WindowNamespace::new(-10, 0),
            WindowNamespace::new(-10, 10),
            WindowNamespace::new(0, 1000),
            WindowNamespace::new(1000, 2000),
            WindowNamespace::new(i64::MAX - 1, i64::MAX),
        ];
        for w in ws {
            assert_eq!(WindowNamespace::decode(&w.encode()).expect("decodes"), w);
        }
        for pair in ws.windows(2) {
            assert!(pair[0].encode() < pair[1].encode());
        }
        assert!(WindowNamespace::decode(&[1, 2, 3]).is_err());
        assert!(VoidNamespace.as_ref().is_empty());
    }
}
