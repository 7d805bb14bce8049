//! Per-(key, namespace) entries of the three state kinds, as stored on the heap.
//!
//! Values stay typed; they are encoded only by [`Entry::write_rows`] (snapshot) and decoded only
//! by [`Entry::decode_row`] (restore). TTL granularity: a value and a whole list carry one
//! expiry (refreshed by every write); each map entry carries its own.

use std::collections::HashMap;
use std::hash::Hash;
use std::mem::size_of;

use crate::error::{Result, StateError};
use crate::restore::RawRow;
use crate::snapshot::{RowKind, SnapshotWriter};
use crate::table::{live, Entry, RowCtx};
use crate::value::StateValue;

/// A single value.
pub(crate) struct ValueEntry<V> {
    pub value: V,
    pub expires_at: Option<i64>,
}

impl<V: StateValue> Entry for ValueEntry<V> {
    fn size(&self) -> usize {
        self.value.size_estimate() + size_of::<Option<i64>>()
    }

    fn is_empty(&self) -> bool {
        false
    }

    fn is_live(&self, now: i64) -> bool {
        live(self.expires_at, now)
    }

    fn drop_expired(&mut self, _now: i64) {
        // The table drops the whole entry once `is_live` is false.
    }

    fn write_rows(&self, now: i64, ctx: &RowCtx<'_>, out: &mut SnapshotWriter) -> Result<()> {
        if !self.is_live(now) {
            return Ok(());
        }
        let mut buf = Vec::new();
        self.value.encode(&mut buf);
        out.push(ctx.row(RowKind::Value, None, &buf, self.expires_at))
    }

    fn decode_row(row: &RawRow) -> Result<Self> {
        Ok(Self {
            value: V::decode(&row.value)?,
            expires_at: row.expires_at,
        })
    }

    fn merge(&mut self, other: Self) {
        *self = other;
    }
}

/// An ordered list; `bytes` caches the items' size estimate.
pub(crate) struct ListEntry<V> {
    pub items: Vec<V>,
    pub expires_at: Option<i64>,
    pub bytes: usize,
}

impl<V: StateValue> ListEntry<V> {
    pub fn empty() -> Self {
        Self {
            items: Vec::new(),
            expires_at: None,
            bytes: 0,
        }
    }

    pub fn from_items(items: Vec<V>, expires_at: Option<i64>) -> Self {
        let bytes = items.iter().map(StateValue::size_estimate).sum();
        Self {
            items,
            expires_at,
            bytes,
        }
    }

    pub fn push(&mut self, v: V) {
        self.bytes += v.size_estimate();
        self.items.push(v);
    }

    pub fn clear(&mut self) {
        self.items.clear();
        self.bytes = 0;
    }

    /// Changes the items in place, `f(index, item)`, keeping the size estimate right.
    pub fn modify(&mut self, mut f: impl FnMut(usize, &mut V)) {
        for (i, v) in self.items.iter_mut().enumerate() {
            let before = v.size_estimate();
            f(i, v);
            self.bytes = (self.bytes + v.size_estimate()).saturating_sub(before);
        }
    }

    /// Keeps the items `keep` accepts, in order.
    pub fn retain(&mut self, mut keep: impl FnMut(&V) -> bool) {
        let mut dropped = 0;
        self.items.retain(|v| {
            let k = keep(v);
            if !k {
                dropped += v.size_estimate();
            }
            k
        });
        self.bytes = self.bytes.saturating_sub(dropped);
    }
}

impl<V: StateValue> Entry for ListEntry<V> {
    fn size(&self) -> usize {
        self.bytes + size_of::<Self>()
    }

    fn is_empty(&self) -> bool {
        self.items.is_empty()
    }

    fn is_live(&self, now: i64) -> bool {
        live(self.expires_at, now)
    }

    fn drop_expired(&mut self, now: i64) {
        if !self.is_live(now) {
            self.clear();
        }
    }

    fn write_rows(&self, now: i64, ctx: &RowCtx<'_>, out: &mut SnapshotWriter) -> Result<()> {
        if !self.is_live(now) {
            return Ok(());
        }
        let mut buf = Vec::new();
        for item in &self.items {
            buf.clear();
            item.encode(&mut buf);
            out.push(ctx.row(RowKind::ListItem, None, &buf, self.expires_at))?;
        }
        Ok(())
    }

    fn decode_row(row: &RawRow) -> Result<Self> {
        Ok(Self::from_items(
            vec![V::decode(&row.value)?],
            row.expires_at,
        ))
    }

    fn merge(&mut self, other: Self) {
        self.bytes += other.bytes;
        self.items.extend(other.items);
        self.expires_at = match (self.expires_at, other.expires_at) {
            (Some(a), Some(b)) => Some(a.max(b)),
            _ => None,
        };
    }
}

/// One map entry's value and expiry.
pub(crate) struct MapItem<V> {
    pub value: V,
    pub expires_at: Option<i64>,
}

/// A user map; `bytes` caches the items' size estimate.
pub(crate) struct MapEntry<K, V> {
    pub map: HashMap<K, MapItem<V>>,
    pub bytes: usize,
}

/// Per map item overhead beyond key and value (expiry, hash slot).
const ITEM_OVERHEAD: usize = size_of::<Option<i64>>() + 8;

fn item_size<K: StateValue, V: StateValue>(k: &K, v: &V) -> usize {
    k.size_estimate() + v.size_estimate() + ITEM_OVERHEAD
}

impl<K: StateValue + Hash + Eq, V: StateValue> MapEntry<K, V> {
    pub fn empty() -> Self {
        Self {
            map: HashMap::new(),
            bytes: 0,
        }
    }

    pub fn insert(&mut self, k: K, value: V, expires_at: Option<i64>) {
        let key_size = k.size_estimate();
        self.bytes += key_size + value.size_estimate() + ITEM_OVERHEAD;
        if let Some(old) = self.map.insert(k, MapItem { value, expires_at }) {
            self.bytes = self
                .bytes
                .saturating_sub(key_size + old.value.size_estimate() + ITEM_OVERHEAD);
        }
    }

    pub fn remove(&mut self, k: &K) -> Option<MapItem<V>> {
        let old = self.map.remove(k)?;
        self.bytes = self.bytes.saturating_sub(item_size(k, &old.value));
        Some(old)
    }
}

impl<K: StateValue + Hash + Eq, V: StateValue> Entry for MapEntry<K, V> {
    fn size(&self) -> usize {
        self.bytes + size_of::<Self>()
    }

    fn is_empty(&self) -> bool {
        self.map.is_empty()
    }

    fn is_live(&self, now: i64) -> bool {
        self.map.values().any(|item| live(item.expires_at, now))
    }

    fn drop_expired(&mut self, now: i64) {
        let mut freed = 0;
        self.map.retain(|k, item| {
            let keep = live(item.expires_at, now);
            if !keep {
                freed += item_size(k, &item.value);
            }
            keep
        });
        self.bytes = self.bytes.saturating_sub(freed);
    }

    fn write_rows(&self, now: i64, ctx: &RowCtx<'_>, out: &mut SnapshotWriter) -> Result<()> {
        let mut rows: Vec<(Vec<u8>, &MapItem<V>)> = self
            .map
            .iter()
            .filter(|(_, item)| live(item.expires_at, now))
            .map(|(k, item)| (crate::value::encode_to_vec(k), item))
            .collect();
        rows.sort_unstable_by(|a, b| a.0.cmp(&b.0));
        let mut buf = Vec::new();
        for (key, item) in &rows {
            buf.clear();
            item.value.encode(&mut buf);
            out.push(ctx.row(RowKind::MapEntry, Some(key), &buf, item.expires_at))?;
        }
        Ok(())
    }

    fn decode_row(row: &RawRow) -> Result<Self> {
        let key_bytes = row
            .map_key
            .as_deref()
            .ok_or_else(|| StateError::CorruptSnapshot("map row without map key".to_string()))?;
        let mut e = Self::empty();
        e.insert(
            K::decode(key_bytes)?,
            V::decode(&row.value)?,
            row.expires_at,
        );
        Ok(e)
    }

    fn merge(&mut self, other: Self) {
        for (k, item) in other.map {
            self.insert(k, item.value, item.expires_at);
        }
    }
}
