//! The one error type of the crate: [`StateError`].
//!
//! Every fallible operation returns a typed error naming the state (where there is one) and the
//! cause; nothing in the library panics on bad arguments, foreign keys or corrupt snapshots.

use arrow::error::ArrowError;

use crate::key_group::KeyGroupRange;

/// Everything that can go wrong in keyed state.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StateError {
    /// `max_parallelism` is outside `1..=32768`.
    #[error("invalid max parallelism {0}: must be in 1..=32768")]
    InvalidMaxParallelism(u32),

    /// `parallelism` is zero or larger than `max_parallelism`.
    #[error(
        "invalid parallelism {parallelism}: must be in 1..={max_parallelism} (the max parallelism)"
    )]
    InvalidParallelism {
        /// The requested parallelism.
        parallelism: u32,
        /// The max parallelism it was checked against.
        max_parallelism: u32,
    },

    /// An operator index is not below the parallelism.
    #[error("operator index {index} out of range for parallelism {parallelism}")]
    InvalidOperatorIndex {
        /// The requested operator (subtask) index.
        index: u32,
        /// The parallelism it was checked against.
        parallelism: u32,
    },

    /// A key group range is empty/reversed or does not fit the max parallelism.
    #[error("invalid key group range [{start}, {end}] for max parallelism {max_parallelism}")]
    InvalidKeyGroupRange {
        /// First key group (inclusive).
        start: u32,
        /// Last key group (inclusive).
        end: u32,
        /// The max parallelism it was checked against (0 when not checked against one).
        max_parallelism: u32,
    },

    /// A key group id is not below the max parallelism.
    #[error("key group {key_group} out of range for max parallelism {max_parallelism}")]
    InvalidKeyGroup {
        /// The key group id.
        key_group: u32,
        /// The max parallelism it was checked against.
        max_parallelism: u32,
    },

    /// A key hashes to a key group that this backend instance does not own.
    #[error("state '{state}': key belongs to key group {key_group}, outside this backend's key groups {range}")]
    KeyOutOfRange {
        /// The state (or `timers`) that was accessed.
        state: String,
        /// The key group the key hashes to.
        key_group: u32,
        /// The key groups owned by the backend.
        range: KeyGroupRange,
    },

    /// A state name is already registered (or restored) with a different kind, type or TTL.
    #[error("state '{name}' is registered as {existing}, cannot register it as {requested}")]
    IncompatibleState {
        /// The state name.
        name: String,
        /// Description of the existing registration.
        existing: String,
        /// Description of the rejected registration.
        requested: String,
    },

    /// A state descriptor is invalid (empty name, non-positive TTL).
    #[error("invalid state descriptor '{name}': {reason}")]
    InvalidDescriptor {
        /// The state name.
        name: String,
        /// Why it is invalid.
        reason: String,
    },

    /// A state handle was used with a backend that did not create it.
    #[error("state '{name}': handle does not belong to this backend")]
    ForeignHandle {
        /// The state name in the handle.
        name: String,
    },

    /// Bytes could not be decoded as a [`crate::StateValue`].
    #[error("cannot decode {type_name}: {reason}")]
    Decode {
        /// The type being decoded.
        type_name: String,
        /// What was wrong with the bytes.
        reason: String,
    },

    /// An error that happened while working on a particular state.
    #[error("state '{name}': {source}")]
    InState {
        /// The state name.
        name: String,
        /// The underlying error.
        #[source]
        source: Box<StateError>,
    },

    /// Snapshot bytes are malformed (bad header, checksum, schema or contents).
    #[error("corrupt snapshot: {0}")]
    CorruptSnapshot(String),

    /// A snapshot was taken with a different max parallelism than the restoring backend.
    #[error("snapshot was taken with max parallelism {found}, backend has {expected}: key groups cannot be reassigned")]
    MaxParallelismMismatch {
        /// The backend's max parallelism.
        expected: u32,
        /// The snapshot's max parallelism.
        found: u32,
    },

    /// Arrow failed while writing or reading snapshot IPC data.
    #[error("arrow error while {context}: {source}")]
    Arrow {
        /// What was being done.
        context: &'static str,
        /// The Arrow error.
        #[source]
        source: ArrowError,
    },
}

impl StateError {
    /// Wraps `self` with the name of the state it happened in.
    pub(crate) fn in_state(self, name: &str) -> Self {
        StateError::InState {
            name: name.to_string(),
            source: Box::new(self),
        }
    }

    /// A decode error for `type_name`.
    pub(crate) fn decode(type_name: impl Into<String>, reason: impl Into<String>) -> Self {
        StateError::Decode {
            type_name: type_name.into(),
            reason: reason.into(),
        }
    }
}

/// Result alias for this crate.
pub type Result<T, E = StateError> = std::result::Result<T, E>;
