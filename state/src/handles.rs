//! Typed state handles: [`ValueState`], [`ListState`], [`MapState`].
//!
//! A handle is a cheap, cloneable token (backend id, slot, name) returned by registration.
//! Every call names the backend, the key and the namespace explicitly — there is no "current
//! key" — so vectorized operators can touch many keys per batch. Each call hashes the key once
//! to find its key group, then does two hash lookups. Reads hide entries expired at the
//! backend's current time; writes stamp `now + ttl`.

use std::collections::hash_map;
use std::fmt;
use std::hash::Hash;
use std::marker::PhantomData;
use std::sync::Arc;

use crate::entries::{ListEntry, MapEntry, MapItem, ValueEntry};
use crate::error::Result;
use crate::memory::MemoryStateBackend;
use crate::table::{live, Entry};
use crate::value::StateValue;

/// Identity of a registered state inside one backend.
#[derive(Clone, Debug)]
pub(crate) struct HandleMeta {
    pub backend: u64,
    pub index: usize,
    pub name: Arc<str>,
}

impl HandleMeta {
    /// Removes the entry of (`key`, `ns`) from this state; returns whether a live one existed.
    fn clear_entry<E: Entry>(
        &self,
        b: &mut MemoryStateBackend,
        key: &[u8],
        ns: &[u8],
    ) -> Result<bool> {
        let kg = b.key_group(self, key)?;
        let now = b.now();
        let t = b.table_mut::<E>(self)?;
        let was_live = t.get(kg, key, ns).is_some_and(|e| e.is_live(now));
        t.remove(kg, key, ns);
        Ok(was_live)
    }

    /// Keys with a live entry in `ns` (unordered).
    fn live_keys<'a, E: Entry>(
        &self,
        b: &'a MemoryStateBackend,
        ns: &'a [u8],
    ) -> Result<impl Iterator<Item = &'a [u8]> + 'a> {
        let now = b.now();
        let t = b.table::<E>(self)?;
        Ok(t.iter_namespace(ns)
            .filter(move |(_, e)| e.is_live(now))
            .map(|(k, _)| k))
    }
}

macro_rules! handle_common {
    ($ty:ident < $($p:ident),+ >) => {
        impl<$($p),+> Clone for $ty<$($p),+> {
            fn clone(&self) -> Self {
                Self { meta: self.meta.clone(), _marker: PhantomData }
            }
        }

        impl<$($p),+> fmt::Debug for $ty<$($p),+> {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.debug_struct(stringify!($ty)).field("name", &self.meta.name).finish()
            }
        }

        impl<$($p),+> $ty<$($p),+> {
            pub(crate) fn new(meta: HandleMeta) -> Self {
                Self { meta, _marker: PhantomData }
            }

            /// The state's registered name.
            pub fn name(&self) -> &str {
                &self.meta.name
            }
        }
    };
}

/// Handle to a state holding at most one `V` per (key, namespace).
pub struct ValueState<V> {
    meta: HandleMeta,
    _marker: PhantomData<fn() -> V>,
}
handle_common!(ValueState<V>);

/// Handle to a state holding an ordered list of `V` per (key, namespace).
pub struct ListState<V> {
    meta: HandleMeta,
    _marker: PhantomData<fn() -> V>,
}
handle_common!(ListState<V>);

/// Handle to a state holding a map `K -> V` per (key, namespace); each map entry has its own TTL.
pub struct MapState<K, V> {
    meta: HandleMeta,
    _marker: PhantomData<fn() -> (K, V)>,
}
handle_common!(MapState<K, V>);

impl<V: StateValue> ValueState<V> {
    /// The value, or `None` if absent or expired.
    pub fn get<'a>(
        &self,
        b: &'a MemoryStateBackend,
        key: &[u8],
        ns: &[u8],
    ) -> Result<Option<&'a V>> {
        let kg = b.key_group(&self.meta, key)?;
        let now = b.now();
        let t = b.table::<ValueEntry<V>>(&self.meta)?;
        Ok(t.get(kg, key, ns)
            .filter(|e| e.is_live(now))
            .map(|e| &e.value))
    }

    /// Sets the value (and refreshes its TTL).
    pub fn update(
        &self,
        b: &mut MemoryStateBackend,
        key: &[u8],
        ns: &[u8],
        value: V,
    ) -> Result<()> {
        let kg = b.key_group(&self.meta, key)?;
        let now = b.now();
        let t = b.table_mut::<ValueEntry<V>>(&self.meta)?;
        let expires_at = t.expiry(now);
        t.put(kg, key, ns, ValueEntry { value, expires_at });
        Ok(())
    }

    /// Combines into the value in place with `merge`, or sets it to `init()` when absent
    /// (or expired); refreshes its TTL. One lookup, and no allocation for an existing
    /// value: the update path of keyed aggregates.
    pub fn upsert(
        &self,
        b: &mut MemoryStateBackend,
        key: &[u8],
        ns: &[u8],
        init: impl FnOnce() -> V,
        merge: impl FnOnce(&mut V),
    ) -> Result<()> {
        let kg = b.key_group(&self.meta, key)?;
        let now = b.now();
        let t = b.table_mut::<ValueEntry<V>>(&self.meta)?;
        // An expired value counts as absent.
        if t.ttl_ms.is_some() && t.get(kg, key, ns).is_some_and(|e| !e.is_live(now)) {
            t.remove(kg, key, ns);
        }
        let expires_at = t.expiry(now);
        let inserted = std::cell::Cell::new(false);
        t.upsert(
            kg,
            key,
            ns,
            || {
                inserted.set(true);
                ValueEntry {
                    value: init(),
                    expires_at,
                }
            },
            |e| {
                if !inserted.get() {
                    merge(&mut e.value);
                }
                e.expires_at = expires_at;
            },
        );
        Ok(())
    }

    /// Removes the value; returns whether a live one existed.
    pub fn clear(&self, b: &mut MemoryStateBackend, key: &[u8], ns: &[u8]) -> Result<bool> {
        self.meta.clear_entry::<ValueEntry<V>>(b, key, ns)
    }

    /// Keys with a live value in `ns` (unordered).
    pub fn keys<'a>(
        &self,
        b: &'a MemoryStateBackend,
        ns: &'a [u8],
    ) -> Result<impl Iterator<Item = &'a [u8]> + 'a> {
        self.meta.live_keys::<ValueEntry<V>>(b, ns)
    }

    /// Every live `(key, value)` in `ns` (unordered).
    pub fn entries_in<'a>(
        &self,
        b: &'a MemoryStateBackend,
        ns: &'a [u8],
    ) -> Result<impl Iterator<Item = (&'a [u8], &'a V)> + 'a> {
        let now = b.now();
        let t = b.table::<ValueEntry<V>>(&self.meta)?;
        Ok(t.iter_namespace(ns)
            .filter(move |(_, e)| e.is_live(now))
            .map(|(k, e)| (k, &e.value)))
    }

    /// All live `(key, namespace, value)` (unordered).
    pub fn entries<'a>(
        &self,
        b: &'a MemoryStateBackend,
    ) -> Result<impl Iterator<Item = (&'a [u8], &'a [u8], &'a V)> + 'a> {
        let now = b.now();
        let t = b.table::<ValueEntry<V>>(&self.meta)?;
        Ok(t.iter_all()
            .filter(move |(_, _, e)| e.is_live(now))
            .map(|(k, ns, e)| (k, ns, &e.value)))
    }
}

impl<V: StateValue> ListState<V> {
    /// The list (empty if absent or expired).
    pub fn get<'a>(&self, b: &'a MemoryStateBackend, key: &[u8], ns: &[u8]) -> Result<&'a [V]> {
        let kg = b.key_group(&self.meta, key)?;
        let now = b.now();
        let t = b.table::<ListEntry<V>>(&self.meta)?;
        Ok(t.get(kg, key, ns)
            .filter(|e| e.is_live(now))
            .map_or(&[], |e| &e.items))
    }

    /// Appends one value (an expired list starts over); refreshes the list's TTL.
    pub fn add(&self, b: &mut MemoryStateBackend, key: &[u8], ns: &[u8], value: V) -> Result<()> {
        self.add_all(b, key, ns, std::iter::once(value))
    }

    /// Appends values in order (an expired list starts over); refreshes the list's TTL.
    pub fn add_all(
        &self,
        b: &mut MemoryStateBackend,
        key: &[u8],
        ns: &[u8],
        values: impl IntoIterator<Item = V>,
    ) -> Result<()> {
        let kg = b.key_group(&self.meta, key)?;
        let now = b.now();
        let t = b.table_mut::<ListEntry<V>>(&self.meta)?;
        let expires_at = t.expiry(now);
        t.upsert(kg, key, ns, ListEntry::empty, |e| {
            if !e.is_live(now) {
                e.clear();
            }
            values.into_iter().for_each(|v| e.push(v));
            e.expires_at = expires_at;
        });
        Ok(())
    }

    /// Keeps only the values `keep` accepts, in place and in order (a list left empty is
    /// removed); the list's TTL is not refreshed. Returns how many values were dropped.
    pub fn retain(
        &self,
        b: &mut MemoryStateBackend,
        key: &[u8],
        ns: &[u8],
        mut keep: impl FnMut(&V) -> bool,
    ) -> Result<usize> {
        let kg = b.key_group(&self.meta, key)?;
        let t = b.table_mut::<ListEntry<V>>(&self.meta)?;
        Ok(t.upsert(kg, key, ns, ListEntry::empty, |e| {
            let before = e.items.len();
            e.retain(&mut keep);
            before - e.items.len()
        }))
    }

    /// Changes values in place, in order: `f(i, value)` for the `i`-th value of a live
    /// list (an expired or absent list is left alone); the list's TTL is not refreshed.
    pub fn modify(
        &self,
        b: &mut MemoryStateBackend,
        key: &[u8],
        ns: &[u8],
        mut f: impl FnMut(usize, &mut V),
    ) -> Result<()> {
        let kg = b.key_group(&self.meta, key)?;
        let now = b.now();
        let t = b.table_mut::<ListEntry<V>>(&self.meta)?;
        t.upsert(kg, key, ns, ListEntry::empty, |e| {
            if e.is_live(now) {
                e.modify(&mut f);
            }
        });
        Ok(())
    }

    /// Replaces the list (an empty `values` removes it).
    pub fn update(
        &self,
        b: &mut MemoryStateBackend,
        key: &[u8],
        ns: &[u8],
        values: Vec<V>,
    ) -> Result<()> {
        let kg = b.key_group(&self.meta, key)?;
        let now = b.now();
        let t = b.table_mut::<ListEntry<V>>(&self.meta)?;
        if values.is_empty() {
            t.remove(kg, key, ns);
        } else {
            let expires_at = t.expiry(now);
            t.put(kg, key, ns, ListEntry::from_items(values, expires_at));
        }
        Ok(())
    }

    /// Removes the list; returns whether a live one existed.
    pub fn clear(&self, b: &mut MemoryStateBackend, key: &[u8], ns: &[u8]) -> Result<bool> {
        self.meta.clear_entry::<ListEntry<V>>(b, key, ns)
    }

    /// Keys with a live list in `ns` (unordered).
    pub fn keys<'a>(
        &self,
        b: &'a MemoryStateBackend,
        ns: &'a [u8],
    ) -> Result<impl Iterator<Item = &'a [u8]> + 'a> {
        self.meta.live_keys::<ListEntry<V>>(b, ns)
    }

    /// All live `(key, namespace, list)` (unordered).
    pub fn entries<'a>(
        &self,
        b: &'a MemoryStateBackend,
    ) -> Result<impl Iterator<Item = (&'a [u8], &'a [u8], &'a [V])> + 'a> {
        let now = b.now();
        let t = b.table::<ListEntry<V>>(&self.meta)?;
        Ok(t.iter_all()
            .filter(move |(_, _, e)| e.is_live(now))
            .map(|(k, ns, e)| (k, ns, e.items.as_slice())))
    }
}

/// One `(key, namespace, map)` of a map state, as yielded by [`MapState::entries`].
pub type MapStateEntry<'a, K, V> = (&'a [u8], &'a [u8], MapView<'a, K, V>);

/// Read-only view of one (key, namespace)'s map, hiding expired map entries.
pub struct MapView<'a, K, V> {
    entry: &'a MapEntry<K, V>,
    now: i64,
}

impl<'a, K: StateValue + Hash + Eq, V: StateValue> MapView<'a, K, V> {
    /// The live value of `k`.
    pub fn get(&self, k: &K) -> Option<&'a V> {
        self.entry
            .map
            .get(k)
            .filter(|item| live(item.expires_at, self.now))
            .map(|item| &item.value)
    }

    /// Live map entries (unordered).
    pub fn iter(&self) -> MapIter<'a, K, V> {
        MapIter {
            inner: self.entry.map.iter(),
            now: self.now,
        }
    }
}

/// Iterator over live `(map key, value)` of one (key, namespace).
pub struct MapIter<'a, K, V> {
    inner: hash_map::Iter<'a, K, MapItem<V>>,
    now: i64,
}

impl<'a, K, V> Iterator for MapIter<'a, K, V> {
    type Item = (&'a K, &'a V);

    fn next(&mut self) -> Option<Self::Item> {
        let now = self.now;
        self.inner
            .by_ref()
            .find(|(_, item)| live(item.expires_at, now))
            .map(|(k, item)| (k, &item.value))
    }
}

impl<K: StateValue + Hash + Eq, V: StateValue> MapState<K, V> {
    /// The map of (key, namespace), if it has any live entry.
    pub fn view<'a>(
        &self,
        b: &'a MemoryStateBackend,
        key: &[u8],
        ns: &[u8],
    ) -> Result<Option<MapView<'a, K, V>>> {
        let kg = b.key_group(&self.meta, key)?;
        let now = b.now();
        let t = b.table::<MapEntry<K, V>>(&self.meta)?;
        Ok(t.get(kg, key, ns)
            .filter(|e| e.is_live(now))
            .map(|entry| MapView { entry, now }))
    }

    /// The live value of map key `k`.
    pub fn get<'a>(
        &self,
        b: &'a MemoryStateBackend,
        key: &[u8],
        ns: &[u8],
        k: &K,
    ) -> Result<Option<&'a V>> {
        Ok(self.view(b, key, ns)?.and_then(|v| v.get(k)))
    }

    /// Whether map key `k` has a live value.
    pub fn contains(&self, b: &MemoryStateBackend, key: &[u8], ns: &[u8], k: &K) -> Result<bool> {
        Ok(self.get(b, key, ns, k)?.is_some())
    }

    /// Live map entries (unordered; empty if none).
    pub fn iter<'a>(
        &self,
        b: &'a MemoryStateBackend,
        key: &[u8],
        ns: &[u8],
    ) -> Result<impl Iterator<Item = (&'a K, &'a V)> + 'a> {
        Ok(self.view(b, key, ns)?.into_iter().flat_map(|v| v.iter()))
    }

    /// Whether the map has no live entry.
    pub fn is_empty(&self, b: &MemoryStateBackend, key: &[u8], ns: &[u8]) -> Result<bool> {
        Ok(self.view(b, key, ns)?.is_none())
    }

    /// Sets map key `k` to `v` (refreshing that entry's TTL).
    pub fn put(&self, b: &mut MemoryStateBackend, key: &[u8], ns: &[u8], k: K, v: V) -> Result<()> {
        let kg = b.key_group(&self.meta, key)?;
        let now = b.now();
        let t = b.table_mut::<MapEntry<K, V>>(&self.meta)?;
        let expires_at = t.expiry(now);
        t.upsert(kg, key, ns, MapEntry::empty, |e| e.insert(k, v, expires_at));
        Ok(())
    }

    /// Removes map key `k`; returns its value if it was live.
    pub fn remove(
        &self,
        b: &mut MemoryStateBackend,
        key: &[u8],
        ns: &[u8],
        k: &K,
    ) -> Result<Option<V>> {
        let kg = b.key_group(&self.meta, key)?;
        let now = b.now();
        let t = b.table_mut::<MapEntry<K, V>>(&self.meta)?;
        if t.get(kg, key, ns).is_none() {
            return Ok(None);
        }
        let old = t.upsert(kg, key, ns, MapEntry::empty, |e| e.remove(k));
        Ok(old
            .filter(|item| live(item.expires_at, now))
            .map(|item| item.value))
    }

    /// Removes the whole map; returns whether it had a live entry.
    pub fn clear(&self, b: &mut MemoryStateBackend, key: &[u8], ns: &[u8]) -> Result<bool> {
        self.meta.clear_entry::<MapEntry<K, V>>(b, key, ns)
    }

    /// Keys with a live map entry in `ns` (unordered).
    pub fn keys<'a>(
        &self,
        b: &'a MemoryStateBackend,
        ns: &'a [u8],
    ) -> Result<impl Iterator<Item = &'a [u8]> + 'a> {
        self.meta.live_keys::<MapEntry<K, V>>(b, ns)
    }

    /// All `(key, namespace, map)` with a live map entry (unordered).
    pub fn entries<'a>(
        &self,
        b: &'a MemoryStateBackend,
    ) -> Result<impl Iterator<Item = MapStateEntry<'a, K, V>> + 'a> {
        let now = b.now();
        let t = b.table::<MapEntry<K, V>>(&self.meta)?;
        Ok(t.iter_all()
            .filter(move |(_, _, e)| e.is_live(now))
            .map(move |(k, ns, entry)| (k, ns, MapView { entry, now })))
    }
}

macro_rules! clear_namespace {
    ($ty:ident < $($p:ident),+ >, $entry:ty, $($bounds:tt)*) => {
        impl<$($p),+> $ty<$($p),+> where $($bounds)* {
            /// Drops every key of namespace `ns` in this state; returns how many were dropped.
            pub fn clear_namespace(&self, b: &mut MemoryStateBackend, ns: &[u8]) -> Result<usize> {
                use crate::table::StateTable;
                Ok(b.table_mut::<$entry>(&self.meta)?.clear_namespace(ns))
            }
        }
    };
}

clear_namespace!(ValueState<V>, ValueEntry<V>, V: StateValue);
clear_namespace!(ListState<V>, ListEntry<V>, V: StateValue);
clear_namespace!(MapState<K, V>, MapEntry<K, V>, K: StateValue + Hash + Eq, V: StateValue);
