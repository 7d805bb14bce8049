//! Typed session settings, passed down to planners and operators (nothing reads
//! environment variables deep inside).

use std::path::PathBuf;

/// Settings of a [`crate::Session`].
#[derive(Debug, Clone)]
pub struct SessionConfig {
    /// Partitions (threads) a query runs with; defaults to the number of cores.
    pub target_partitions: usize,
    /// Rows per batch produced by scans.
    pub batch_size: usize,
    /// Batches an in-memory exchange partition buffers before the producer waits.
    pub exchange_capacity: usize,
    /// Directory for blocking exchanges and spill files.
    pub spill_dir: PathBuf,
}

impl Default for SessionConfig {
    fn default() -> Self {
        Self {
            target_partitions: std::thread::available_parallelism().map_or(2, |n| n.get()),
            batch_size: 8192,
            exchange_capacity: 16,
            spill_dir: std::env::temp_dir(),
        }
    }
}

impl SessionConfig {
    /// With `n` partitions (at least 1).
    pub fn with_target_partitions(mut self, n: usize) -> Self {
        self.target_partitions = n.max(1);
        self
    }
}
