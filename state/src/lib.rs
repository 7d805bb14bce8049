//! Keyed state for Sluice's streaming operators, modelled on Apache Flink's keyed state and
//! heap backend.
//!
//! **Keys and key groups.** State is partitioned by a serialized key (`&[u8]`; the engine
//! passes arrow-row encoded group keys). Each key hashes (MurmurHash3, fixed seed — stable
//! across processes and Rust versions) to one of `max_parallelism` *key groups*; each operator
//! instance owns a contiguous [`KeyGroupRange`] ([`range_for_operator`]). Rescaling moves whole
//! key groups: a snapshot taken at parallelism 2 restores at parallelism 3 because every
//! backend loads exactly the key groups it now owns. A key outside a backend's range is an
//! error, never a panic.
//!
//! **Namespaces.** Within a key, state is further scoped by a namespace (bytes), typically a
//! window ([`WindowNamespace`]) or nothing ([`VOID_NAMESPACE`]). Storage is indexed by
//! namespace so dropping a fired window ([`KeyedStateBackend::clear_namespace`]) is cheap.
//!
//! **State kinds.** [`ValueState`], [`ListState`] and [`MapState`] are registered by name with
//! a [`StateDescriptor`]; re-registering a name with another kind or type is an error. Every
//! access names the key and namespace explicitly (no hidden current key), so vectorized
//! operators can process many keys per batch at the cost of one hash and two lookups per call.
//!
//! **Heap backend.** [`MemoryStateBackend`] keeps live typed objects; values implement
//! [`StateValue`] and are encoded only when a [`Snapshot`] (checksummed Arrow IPC) is taken and
//! decoded on restore — lazily, when the restored state is registered with its type.
//! [`KeyedStateBackend::size_estimate`] reports approximate bytes held.
//!
//! **TTL.** A descriptor may carry a time-to-live; writes stamp `now + ttl` using a
//! caller-supplied clock ([`KeyedStateBackend::set_current_time`]). Expired entries are
//! invisible to reads and dropped by snapshots and [`KeyedStateBackend::cleanup_expired`] —
//! enough for regular joins with state retention.
//!
//! **Timers.** [`TimerService`] holds event-time and processing-time timers per (key,
//! namespace), deduplicated, fired in timestamp order by [`TimerService::advance_watermark`] /
//! [`TimerService::advance_processing_time`], and snapshotted per key group with the state.
//!
//! ```
//! use sluice_state::{KeyedStateBackend, MemoryStateBackend, StateDescriptor, WindowNamespace};
//!
//! // Instance 0 of 1: owns all 128 key groups.
//! let mut backend = MemoryStateBackend::for_operator(128, 1, 0)?;
//! let sum = backend.register_value::<i64>(&StateDescriptor::new("sum"))?;
//! let window = WindowNamespace::new(0, 1000).encode();
//! let key: &[u8] = b"user-42"; // e.g. an arrow-row encoded group key
//! let old = sum.get(&backend, key, &window)?.copied().unwrap_or(0);
//! sum.update(&mut backend, key, &window, old + 5)?;
//! backend.timers_mut().register_event_time_timer(999, key, &window)?;
//! for timer in backend.timers_mut().advance_watermark(1000) {
//!     assert_eq!(sum.get(&backend, &timer.key, &timer.namespace)?, Some(&5));
//! }
//! backend.clear_namespace(&window);
//! let snapshot = backend.snapshot()?;
//! # assert!(!snapshot.is_empty());
//! # Ok::<(), sluice_state::StateError>(())
//! ```

mod backend;
mod descriptor;
mod entries;
mod error;
mod handles;
mod key_group;
mod memory;
mod namespace;
mod restore;
mod snapshot;
mod table;
mod timers;
mod value;

pub use backend::KeyedStateBackend;
pub use descriptor::{StateDescriptor, StateKind};
pub use error::{Result, StateError};
pub use handles::{ListState, MapIter, MapState, MapStateEntry, MapView, ValueState};
pub use key_group::{
    check_max_parallelism, key_group_for_key, murmur3_32, operator_for_key_group,
    range_for_operator, KeyGroupRange, DEFAULT_MAX_PARALLELISM, MAX_MAX_PARALLELISM,
};
pub use memory::MemoryStateBackend;
pub use namespace::{VoidNamespace, WindowNamespace, VOID_NAMESPACE, WINDOW_NAMESPACE_LEN};
pub use snapshot::Snapshot;
pub use timers::{TimeDomain, Timer, TimerService};
pub use value::{encode_to_vec, StateValue};
