//! [`MemoryStateBackend`]: the heap backend, keeping live typed objects per key group.

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::hash::Hash;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use crate::backend::KeyedStateBackend;
use crate::descriptor::{describe, StateDescriptor, StateKind, StateSignature};
use crate::entries::{ListEntry, MapEntry, ValueEntry};
use crate::error::{Result, StateError};
use crate::handles::{HandleMeta, ListState, MapState, ValueState};
use crate::key_group::{key_group_unchecked, range_for_operator, KeyGroupRange};
use crate::restore::{read_snapshots, RawState};
use crate::snapshot::{RowKind, RowRef, Snapshot, SnapshotWriter};
use crate::table::{live, Entry, StateTable, Table};
use crate::timers::{TimeDomain, TimerService};
use crate::value::StateValue;

static NEXT_BACKEND_ID: AtomicU64 = AtomicU64::new(1);

/// Keyed state held on the heap as live objects; serialized only by [`KeyedStateBackend::snapshot`].
pub struct MemoryStateBackend {
    id: u64,
    max_parallelism: u32,
    range: KeyGroupRange,
    now: i64,
    tables: Vec<Box<dyn StateTable>>,
    by_name: HashMap<String, usize>,
    /// Restored states not registered yet: decoded (and typed) on registration.
    pending: BTreeMap<String, RawState>,
    timers: TimerService,
}

impl fmt::Debug for MemoryStateBackend {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MemoryStateBackend")
            .field("max_parallelism", &self.max_parallelism)
            .field("range", &self.range)
            .field("now", &self.now)
            .field("states", &self.state_names())
            .field("timers", &self.timers.len())
            .finish()
    }
}

impl MemoryStateBackend {
    /// An empty backend owning `range` out of `max_parallelism` key groups.
    pub fn new(max_parallelism: u32, range: KeyGroupRange) -> Result<Self> {
        let timers = TimerService::new(max_parallelism, range)?;
        Ok(Self {
            id: NEXT_BACKEND_ID.fetch_add(1, Ordering::Relaxed),
            max_parallelism,
            range,
            now: 0,
            tables: Vec::new(),
            by_name: HashMap::new(),
            pending: BTreeMap::new(),
            timers,
        })
    }

    /// An empty backend for operator instance `index` of `parallelism`.
    pub fn for_operator(max_parallelism: u32, parallelism: u32, index: u32) -> Result<Self> {
        Self::new(
            max_parallelism,
            range_for_operator(max_parallelism, parallelism, index)?,
        )
    }

    /// A backend owning `range`, restored from `snapshots` (taken at any parallelism).
    pub fn restore_from(
        max_parallelism: u32,
        range: KeyGroupRange,
        snapshots: &[Snapshot],
    ) -> Result<Self> {
        let mut backend = Self::new(max_parallelism, range)?;
        backend.restore(snapshots)?;
        Ok(backend)
    }

    /// Registers (or looks up) a value state.
    pub fn register_value<V: StateValue>(
        &mut self,
        desc: &StateDescriptor,
    ) -> Result<ValueState<V>> {
        let meta = self.register::<ValueEntry<V>>(desc, StateSignature::value::<V>())?;
        Ok(ValueState::new(meta))
    }

    /// Registers (or looks up) a list state.
    pub fn register_list<V: StateValue>(&mut self, desc: &StateDescriptor) -> Result<ListState<V>> {
        let meta = self.register::<ListEntry<V>>(desc, StateSignature::list::<V>())?;
        Ok(ListState::new(meta))
    }

    /// Registers (or looks up) a map state.
    pub fn register_map<K, V>(&mut self, desc: &StateDescriptor) -> Result<MapState<K, V>>
    where
        K: StateValue + Hash + Eq,
        V: StateValue,
    {
        let meta = self.register::<MapEntry<K, V>>(desc, StateSignature::map::<K, V>())?;
        Ok(MapState::new(meta))
    }

    /// Registering an existing name with the same kind, types and TTL returns a handle to the
    /// same state; anything else is [`StateError::IncompatibleState`]. A restored state is
    /// decoded here, and may be registered with a different TTL than it was written with.
    fn register<E: Entry>(
        &mut self,
        desc: &StateDescriptor,
        sig: StateSignature,
    ) -> Result<HandleMeta> {
        desc.validate()?;
        let incompatible = |existing: String| StateError::IncompatibleState {
            name: desc.name().to_string(),
            existing,
            requested: describe(&sig, desc.ttl_ms()),
        };
        if let Some(&index) = self.by_name.get(desc.name()) {
            let t = &self.tables[index];
            if t.signature() != &sig || t.ttl_ms() != desc.ttl_ms() {
                return Err(incompatible(describe(t.signature(), t.ttl_ms())));
            }
            return Ok(HandleMeta {
                backend: self.id,
                index,
                name: desc.name().into(),
            });
        }
        let name: Arc<str> = desc.name().into();
        let mut table = Table::<E>::new(
            name.clone(),
            sig.clone(),
            desc.ttl_ms(),
            self.range.start(),
            self.range.len(),
        );
        if let Some(p) = self.pending.get(desc.name()) {
            if p.signature != sig {
                return Err(incompatible(format!(
                    "{} (restored)",
                    describe(&p.signature, p.ttl_ms)
                )));
            }
            table.load_rows(&p.rows)?;
            self.pending.remove(desc.name());
        }
        let index = self.tables.len();
        self.tables.push(Box::new(table));
        self.by_name.insert(desc.name().to_string(), index);
        Ok(HandleMeta {
            backend: self.id,
            index,
            name,
        })
    }

    /// The TTL clock.
    #[inline]
    pub(crate) fn now(&self) -> i64 {
        self.now
    }

    /// The key group of `key`, or [`StateError::KeyOutOfRange`] naming the state.
    #[inline]
    pub(crate) fn key_group(&self, meta: &HandleMeta, key: &[u8]) -> Result<u32> {
        let key_group = key_group_unchecked(key, self.max_parallelism);
        if !self.range.contains(key_group) {
            return Err(StateError::KeyOutOfRange {
                state: meta.name.to_string(),
                key_group,
                range: self.range,
            });
        }
        Ok(key_group)
    }

    /// The typed table behind a handle.
    #[inline]
    pub(crate) fn table<E: Entry>(&self, meta: &HandleMeta) -> Result<&Table<E>> {
        self.tables
            .get(meta.index)
            .filter(|_| meta.backend == self.id)
            .and_then(|t| t.as_any().downcast_ref::<Table<E>>())
            .ok_or_else(|| StateError::ForeignHandle {
                name: meta.name.to_string(),
            })
    }

    /// The typed table behind a handle, mutably.
    #[inline]
    pub(crate) fn table_mut<E: Entry>(&mut self, meta: &HandleMeta) -> Result<&mut Table<E>> {
        let id = self.id;
        self.tables
            .get_mut(meta.index)
            .filter(|_| meta.backend == id)
            .and_then(|t| t.as_any_mut().downcast_mut::<Table<E>>())
            .ok_or_else(|| StateError::ForeignHandle {
                name: meta.name.to_string(),
            })
    }

    /// Number of (key, namespace) entries of a registered state (including expired entries
    /// not yet cleaned up), or `None` if no state has that name.
    pub fn entry_count(&self, name: &str) -> Option<usize> {
        self.by_name.get(name).map(|&i| self.tables[i].len())
    }
}

fn row_kind(kind: StateKind) -> RowKind {
    match kind {
        StateKind::Value => RowKind::Value,
        StateKind::List => RowKind::ListItem,
        StateKind::Map => RowKind::MapEntry,
    }
}

impl KeyedStateBackend for MemoryStateBackend {
    fn max_parallelism(&self) -> u32 {
        self.max_parallelism
    }

    fn key_group_range(&self) -> KeyGroupRange {
        self.range
    }

    fn current_time(&self) -> i64 {
        self.now
    }

    fn set_current_time(&mut self, now_ms: i64) {
        self.now = now_ms;
    }

    fn timers(&self) -> &TimerService {
        &self.timers
    }

    fn timers_mut(&mut self) -> &mut TimerService {
        &mut self.timers
    }

    fn state_names(&self) -> Vec<String> {
        let mut names: Vec<String> = self
            .by_name
            .keys()
            .chain(self.pending.keys())
            .cloned()
            .collect();
        names.sort_unstable();
        names
    }

    fn clear_namespace(&mut self, namespace: &[u8]) -> usize {
        let mut dropped: usize = self
            .tables
            .iter_mut()
            .map(|t| t.clear_namespace(namespace))
            .sum();
        for p in self.pending.values_mut() {
            let before = p.rows.len();
            p.rows.retain(|r| r.namespace != namespace);
            dropped += before - p.rows.len();
        }
        dropped
    }

    fn cleanup_expired(&mut self) -> usize {
        let now = self.now;
        let mut dropped: usize = self.tables.iter_mut().map(|t| t.cleanup_expired(now)).sum();
        for p in self.pending.values_mut() {
            let before = p.rows.len();
            p.rows.retain(|r| live(r.expires_at, now));
            dropped += before - p.rows.len();
        }
        dropped
    }

    fn size_estimate(&self) -> usize {
        let tables: usize = self.tables.iter().map(|t| t.size_estimate()).sum();
        let pending: usize = self
            .pending
            .values()
            .flat_map(|p| p.rows.iter().map(|r| r.size()))
            .sum();
        tables + pending + self.timers.size_estimate()
    }

    fn snapshot(&self) -> Result<Snapshot> {
        let mut out = SnapshotWriter::new(self.max_parallelism)?;
        // All descriptors first (sorted by name), then each state's rows, then timers.
        let mut states: BTreeMap<&str, Option<&dyn StateTable>> = BTreeMap::new();
        for t in &self.tables {
            states.insert(t.name(), Some(t.as_ref()));
        }
        for name in self.pending.keys() {
            states.insert(name, None);
        }
        for (&name, table) in &states {
            let encoded = match (table, self.pending.get(name)) {
                (Some(t), _) => t.signature().encode(t.ttl_ms()),
                (None, Some(p)) => p.signature.encode(p.ttl_ms),
                (None, None) => continue,
            };
            out.push(RowRef {
                kind: RowKind::Descriptor,
                state: name,
                key_group: 0,
                key: &[],
                namespace: &[],
                map_key: None,
                value: Some(&encoded),
                expires_at: None,
                timer_ts: None,
            })?;
        }
        for (&name, table) in &states {
            if let Some(t) = table {
                t.write_snapshot(self.now, &mut out)?;
                continue;
            }
            let Some(p) = self.pending.get(name) else {
                continue;
            };
            let kind = row_kind(p.signature.kind);
            let mut rows: Vec<_> = p
                .rows
                .iter()
                .filter(|r| live(r.expires_at, self.now))
                .collect();
            // Stable: keeps list order and the (already sorted) map key order within an entry.
            rows.sort_by(|a, b| {
                (a.key_group, &a.namespace, &a.key).cmp(&(b.key_group, &b.namespace, &b.key))
            });
            for r in rows {
                out.push(RowRef {
                    kind,
                    state: name,
                    key_group: r.key_group,
                    key: &r.key,
                    namespace: &r.namespace,
                    map_key: r.map_key.as_deref(),
                    value: Some(&r.value),
                    expires_at: r.expires_at,
                    timer_ts: None,
                })?;
            }
        }
        for (domain, kind) in [
            (TimeDomain::EventTime, RowKind::EventTimer),
            (TimeDomain::ProcessingTime, RowKind::ProcessingTimer),
        ] {
            for t in self.timers.timers(domain) {
                out.push(RowRef {
                    kind,
                    state: "",
                    key_group: key_group_unchecked(&t.key, self.max_parallelism),
                    key: &t.key,
                    namespace: &t.namespace,
                    map_key: None,
                    value: None,
                    expires_at: None,
                    timer_ts: Some(t.timestamp),
                })?;
            }
        }
        out.finish()
    }

    fn restore(&mut self, snapshots: &[Snapshot]) -> Result<()> {
        let raw = read_snapshots(snapshots, self.max_parallelism, self.range)?;
        for (name, state) in raw.states {
            if let Some(&index) = self.by_name.get(&name) {
                let t = &mut self.tables[index];
                if t.signature() != &state.signature {
                    return Err(StateError::IncompatibleState {
                        existing: describe(t.signature(), t.ttl_ms()),
                        requested: format!(
                            "{} (restored)",
                            describe(&state.signature, state.ttl_ms)
                        ),
                        name,
                    });
                }
                t.load_rows(&state.rows)?;
                continue;
            }
            match self.pending.get_mut(&name) {
                Some(p) if p.signature != state.signature => {
                    return Err(StateError::IncompatibleState {
                        existing: format!("{} (restored)", describe(&p.signature, p.ttl_ms)),
                        requested: format!(
                            "{} (restored)",
                            describe(&state.signature, state.ttl_ms)
                        ),
                        name,
                    });
                }
                Some(p) => p.rows.extend(state.rows),
                None => {
                    self.pending.insert(name, state);
                }
            }
        }
        for (domain, timer) in raw.timers {
            self.timers.insert(domain, timer);
        }
        Ok(())
    }
}
