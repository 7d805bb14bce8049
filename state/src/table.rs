//! Heap storage of one state: `key group -> namespace -> key -> entry`, with byte accounting.
//!
//! The outer level is a vector indexed by key group (relative to the owned range), so a call
//! computes the key group once and then does two hash lookups by borrowed byte slices (no
//! allocation on reads or on updates of existing entries). Namespace-before-key nesting makes
//! dropping a whole namespace (a fired window) one map removal per key group.

use std::any::Any;
use std::collections::HashMap;
use std::sync::Arc;

use crate::descriptor::StateSignature;
use crate::error::Result;
use crate::restore::RawRow;
use crate::snapshot::{RowKind, RowRef, SnapshotWriter};

/// Approximate bookkeeping bytes per (key, namespace) entry (hash slots, boxes, headers).
pub(crate) const ENTRY_OVERHEAD: usize = 64;

/// Whether something with expiry `expires_at` is visible at `now`.
#[inline]
pub(crate) fn live(expires_at: Option<i64>, now: i64) -> bool {
    expires_at.is_none_or(|t| t > now)
}

/// Position of a (key, namespace) entry, for snapshot rows.
pub(crate) struct RowCtx<'a> {
    pub state: &'a str,
    pub key_group: u32,
    pub key: &'a [u8],
    pub namespace: &'a [u8],
}

impl<'a> RowCtx<'a> {
    pub fn row(
        &self,
        kind: RowKind,
        map_key: Option<&'a [u8]>,
        value: &'a [u8],
        expires_at: Option<i64>,
    ) -> RowRef<'a> {
        RowRef {
            kind,
            state: self.state,
            key_group: self.key_group,
            key: self.key,
            namespace: self.namespace,
            map_key,
            value: Some(value),
            expires_at,
            timer_ts: None,
        }
    }
}

/// What a state stores per (key, namespace).
pub(crate) trait Entry: Sized + Send + 'static {
    /// Approximate bytes held by the entry's contents.
    fn size(&self) -> usize;
    /// Whether the entry holds nothing (such entries are removed).
    fn is_empty(&self) -> bool;
    /// Whether anything in the entry is visible at `now`.
    fn is_live(&self, now: i64) -> bool;
    /// Drops contents expired at `now`.
    fn drop_expired(&mut self, now: i64);
    /// Writes the entry's live contents as snapshot rows.
    fn write_rows(&self, now: i64, ctx: &RowCtx<'_>, out: &mut SnapshotWriter) -> Result<()>;
    /// Decodes one snapshot row into an entry.
    fn decode_row(row: &RawRow) -> Result<Self>;
    /// Merges a decoded row into an existing entry (list append, map insert, value replace).
    fn merge(&mut self, other: Self);
}

// aHash rather than SipHash: state lookups are the hot path of keyed operators, and keys
// come from the job's own data.
type Keys<E> = HashMap<Box<[u8]>, E, ahash::RandomState>;
type Group<E> = HashMap<Box<[u8]>, Keys<E>, ahash::RandomState>;

/// One registered state's storage.
pub(crate) struct Table<E> {
    pub name: Arc<str>,
    pub signature: StateSignature,
    pub ttl_ms: Option<i64>,
    first_group: u32,
    groups: Vec<Group<E>>,
    bytes: usize,
    len: usize,
}

fn overhead(key: &[u8], ns: &[u8]) -> usize {
    key.len() + ns.len() + ENTRY_OVERHEAD
}

impl<E: Entry> Table<E> {
    pub fn new(
        name: Arc<str>,
        signature: StateSignature,
        ttl_ms: Option<i64>,
        first_group: u32,
        groups: u32,
    ) -> Self {
        Self {
            name,
            signature,
            ttl_ms,
            first_group,
            groups: (0..groups).map(|_| HashMap::default()).collect(),
            bytes: 0,
            len: 0,
        }
    }

    /// Expiry for an entry written at `now`.
    pub fn expiry(&self, now: i64) -> Option<i64> {
        self.ttl_ms.map(|t| now.saturating_add(t))
    }

    /// Index of an owned key group (checked by the backend before any table call).
    #[inline]
    fn slot(&self, key_group: u32) -> usize {
        (key_group - self.first_group) as usize
    }

    pub fn get(&self, key_group: u32, key: &[u8], ns: &[u8]) -> Option<&E> {
        self.groups[self.slot(key_group)].get(ns)?.get(key)
    }

    /// Inserts `entry`, or combines it into the existing entry with `combine`.
    fn put_with(
        &mut self,
        key_group: u32,
        key: &[u8],
        ns: &[u8],
        entry: E,
        combine: impl FnOnce(&mut E, E),
    ) {
        let slot = self.slot(key_group);
        if let Some(e) = self.groups[slot]
            .get_mut(ns)
            .and_then(|keys| keys.get_mut(key))
        {
            let before = e.size();
            combine(e, entry);
            self.bytes = (self.bytes + e.size()).saturating_sub(before);
            return;
        }
        self.insert_new(slot, key, ns, entry);
    }

    /// Inserts an entry known to be absent (an empty one is dropped instead).
    fn insert_new(&mut self, slot: usize, key: &[u8], ns: &[u8], e: E) {
        if e.is_empty() {
            return;
        }
        self.bytes += e.size() + overhead(key, ns);
        self.len += 1;
        let group = &mut self.groups[slot];
        match group.get_mut(ns) {
            Some(keys) => {
                keys.insert(key.into(), e);
            }
            None => {
                let mut keys = Keys::default();
                keys.insert(Box::from(key), e);
                group.insert(ns.into(), keys);
            }
        }
    }

    /// Inserts or replaces a (non-empty) entry.
    pub fn put(&mut self, key_group: u32, key: &[u8], ns: &[u8], entry: E) {
        self.put_with(key_group, key, ns, entry, |old, new| *old = new);
    }

    /// Applies `f` to the entry, creating it with `init` if absent; keeps byte accounting and
    /// removes (or does not insert) an entry that ends up empty.
    pub fn upsert<R>(
        &mut self,
        key_group: u32,
        key: &[u8],
        ns: &[u8],
        init: impl FnOnce() -> E,
        f: impl FnOnce(&mut E) -> R,
    ) -> R {
        let slot = self.slot(key_group);
        let group = &mut self.groups[slot];
        if let Some(keys) = group.get_mut(ns) {
            if let Some(e) = keys.get_mut(key) {
                let before = e.size();
                let r = f(e);
                let (after, empty) = (e.size(), e.is_empty());
                if empty {
                    keys.remove(key);
                    if keys.is_empty() {
                        group.remove(ns);
                    }
                    self.bytes = self.bytes.saturating_sub(before + overhead(key, ns));
                    self.len -= 1;
                } else {
                    self.bytes = (self.bytes + after).saturating_sub(before);
                }
                return r;
            }
        }
        let mut e = init();
        let r = f(&mut e);
        self.insert_new(slot, key, ns, e);
        r
    }

    /// Removes an entry; returns whether one existed.
    pub fn remove(&mut self, key_group: u32, key: &[u8], ns: &[u8]) -> bool {
        let slot = self.slot(key_group);
        let group = &mut self.groups[slot];
        let Some(keys) = group.get_mut(ns) else {
            return false;
        };
        let Some(e) = keys.remove(key) else {
            return false;
        };
        if keys.is_empty() {
            group.remove(ns);
        }
        self.bytes = self.bytes.saturating_sub(e.size() + overhead(key, ns));
        self.len -= 1;
        true
    }

    /// Entries of one namespace (including expired ones; callers filter).
    pub fn iter_namespace<'a>(
        &'a self,
        ns: &'a [u8],
    ) -> impl Iterator<Item = (&'a [u8], &'a E)> + 'a {
        self.groups
            .iter()
            .filter_map(move |g| g.get(ns))
            .flat_map(|keys| keys.iter().map(|(k, e)| (&**k, e)))
    }

    /// All `(key, namespace, entry)` (including expired ones; callers filter).
    pub fn iter_all(&self) -> impl Iterator<Item = (&[u8], &[u8], &E)> + '_ {
        self.groups.iter().flat_map(|g| {
            g.iter()
                .flat_map(|(ns, keys)| keys.iter().map(move |(k, e)| (&**k, &**ns, e)))
        })
    }
}

/// Type-erased interface of a [`Table`], as held by the backend.
pub(crate) trait StateTable: Send {
    fn name(&self) -> &str;
    fn signature(&self) -> &StateSignature;
    fn ttl_ms(&self) -> Option<i64>;
    fn as_any(&self) -> &dyn Any;
    fn as_any_mut(&mut self) -> &mut dyn Any;
    /// Removes all keys of a namespace; returns how many (key, namespace) entries were dropped.
    fn clear_namespace(&mut self, ns: &[u8]) -> usize;
    /// Drops expired contents; returns how many (key, namespace) entries disappeared.
    fn cleanup_expired(&mut self, now: i64) -> usize;
    fn size_estimate(&self) -> usize;
    /// Number of (key, namespace) entries, including expired ones not yet cleaned up.
    fn len(&self) -> usize;
    fn write_snapshot(&self, now: i64, out: &mut SnapshotWriter) -> Result<()>;
    /// Decodes and merges restored rows (all rows are decoded before any is merged).
    fn load_rows(&mut self, rows: &[RawRow]) -> Result<()>;
}

impl<E: Entry> StateTable for Table<E> {
    fn name(&self) -> &str {
        &self.name
    }

    fn signature(&self) -> &StateSignature {
        &self.signature
    }

    fn ttl_ms(&self) -> Option<i64> {
        self.ttl_ms
    }

    fn as_any(&self) -> &dyn Any {
        self
    }

    fn as_any_mut(&mut self) -> &mut dyn Any {
        self
    }

    fn clear_namespace(&mut self, ns: &[u8]) -> usize {
        let mut dropped = 0;
        let mut freed = 0;
        for group in &mut self.groups {
            if let Some(keys) = group.remove(ns) {
                dropped += keys.len();
                freed += keys
                    .iter()
                    .map(|(k, e)| e.size() + overhead(k, ns))
                    .sum::<usize>();
            }
        }
        self.bytes = self.bytes.saturating_sub(freed);
        self.len -= dropped;
        dropped
    }

    fn cleanup_expired(&mut self, now: i64) -> usize {
        let mut dropped = 0;
        let mut bytes = 0;
        for group in &mut self.groups {
            group.retain(|ns, keys| {
                keys.retain(|k, e| {
                    e.drop_expired(now);
                    let keep = !e.is_empty() && e.is_live(now);
                    if keep {
                        bytes += e.size() + overhead(k, ns);
                    } else {
                        dropped += 1;
                    }
                    keep
                });
                !keys.is_empty()
            });
        }
        self.bytes = bytes;
        self.len -= dropped;
        dropped
    }

    fn size_estimate(&self) -> usize {
        self.bytes
    }

    fn len(&self) -> usize {
        self.len
    }

    fn write_snapshot(&self, now: i64, out: &mut SnapshotWriter) -> Result<()> {
        for (key_group, group) in (self.first_group..).zip(&self.groups) {
            let mut namespaces: Vec<_> = group.iter().collect();
            namespaces.sort_unstable_by(|a, b| a.0.cmp(b.0));
            for (ns, keys) in namespaces {
                let mut entries: Vec<_> = keys.iter().collect();
                entries.sort_unstable_by(|a, b| a.0.cmp(b.0));
                for (key, e) in entries {
                    let ctx = RowCtx {
                        state: &self.name,
                        key_group,
                        key,
                        namespace: ns,
                    };
                    e.write_rows(now, &ctx, out)?;
                }
            }
        }
        Ok(())
    }

    fn load_rows(&mut self, rows: &[RawRow]) -> Result<()> {
        let decoded = rows
            .iter()
            .map(|r| E::decode_row(r).map(|e| (r, e)))
            .collect::<Result<Vec<_>>>()
            .map_err(|e| e.in_state(&self.name))?;
        for (row, entry) in decoded {
            self.put_with(row.key_group, &row.key, &row.namespace, entry, E::merge);
        }
        Ok(())
    }
}
