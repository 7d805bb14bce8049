//! [`KeyedStateBackend`]: the object-safe lifecycle interface every backend implements.
//!
//! Typed state access is deliberately *not* part of this trait: generic methods
//! (`fn get<V: StateValue>`) would make it non-object-safe, and a byte-only interface would
//! force the heap backend to serialize on every access, which is what it exists to avoid.
//! Instead, typed handles ([`crate::ValueState`], [`crate::ListState`], [`crate::MapState`]) are
//! created by and operate on a concrete backend, while everything the engine's checkpoint and
//! memory machinery needs — time, timers, namespace cleanup, TTL cleanup, size, snapshot and
//! restore — is reachable through `Box<dyn KeyedStateBackend>`.

use crate::error::Result;
use crate::key_group::KeyGroupRange;
use crate::snapshot::Snapshot;
use crate::timers::TimerService;

/// Lifecycle operations of a keyed state backend owning a range of key groups.
pub trait KeyedStateBackend: Send {
    /// Number of key groups of the job (fixed for the job's lifetime).
    fn max_parallelism(&self) -> u32;

    /// The key groups this backend instance owns.
    fn key_group_range(&self) -> KeyGroupRange;

    /// The clock TTL is measured against (milliseconds; 0 until set).
    fn current_time(&self) -> i64;

    /// Sets the TTL clock; writes expire `ttl` after this time, reads hide entries expired at it.
    fn set_current_time(&mut self, now_ms: i64);

    /// The timer service (event time and processing time).
    fn timers(&self) -> &TimerService;

    /// The timer service, mutably.
    fn timers_mut(&mut self) -> &mut TimerService;

    /// Names of all states, registered or restored but not yet registered, sorted.
    fn state_names(&self) -> Vec<String>;

    /// Drops every key of `namespace` in every state (e.g. a fired window); returns the number
    /// of (key, namespace) entries dropped.
    fn clear_namespace(&mut self, namespace: &[u8]) -> usize;

    /// Physically drops entries expired at the current time; returns how many disappeared.
    fn cleanup_expired(&mut self) -> usize;

    /// Approximate bytes held: keys, namespaces, values and timers plus bookkeeping.
    fn size_estimate(&self) -> usize;

    /// Serializes all live state and timers.
    fn snapshot(&self) -> Result<Snapshot>;

    /// Loads the entries of `snapshots` whose key group this backend owns, merging them into
    /// current state. Snapshots may come from any parallelism with the same max parallelism.
    /// On error the backend may be partially restored and should be discarded.
    fn restore(&mut self, snapshots: &[Snapshot]) -> Result<()>;
}
