//! Scans of generated tables (`datagen`, `nexmark`): which rows a partition generates,
//! batch by batch, with an optional wall-clock throttle. A batch query splits the rows
//! into one contiguous range per partition; a streaming one deals batches round-robin, so
//! partitions advance through the rows (and event time) together.

use std::time::{Duration, Instant};

use arrow::array::RecordBatch;

use crate::error::Result;
use crate::physical::{Element, ElementStream};

/// Sleeps so a partition emits no more than its share of a rows-per-second rate.
#[derive(Debug)]
pub(crate) struct Throttle {
    start: Option<Instant>,
    rows_per_second: f64,
    emitted: u64,
}

impl Throttle {
    /// A throttle to `rows_per_second` (> 0) whose clock starts at the first wait.
    pub(crate) fn new(rows_per_second: f64) -> Self {
        Self {
            start: None,
            rows_per_second,
            emitted: 0,
        }
    }

    /// Waits until `rows` more rows may be emitted.
    pub(crate) fn wait(&mut self, rows: u64) {
        let start = *self.start.get_or_insert_with(Instant::now);
        self.emitted += rows;
        let due = start + Duration::from_secs_f64(self.emitted as f64 / self.rows_per_second);
        let now = Instant::now();
        if due > now {
            std::thread::sleep(due - now);
        }
    }
}

/// The rows partition `partition` of `partitions` generates: batches of `batch_rows`
/// from the first row on, then every `stride` rows (0: one contiguous run), below the end.
/// `None` when the table is unbounded (`rows` is `None`) and the query is a batch.
pub(crate) fn partition_rows(
    rows: Option<u64>,
    partition: usize,
    partitions: usize,
    batch_rows: u64,
    streaming: bool,
) -> Option<(u64, u64, u64)> {
    let (p, n) = (partition as u64, partitions.max(1) as u64);
    match rows {
        _ if streaming => Some((p * batch_rows, rows.unwrap_or(u64::MAX), n * batch_rows)),
        Some(rows) => {
            let bound = |p: u64| (u128::from(rows) * u128::from(p) / u128::from(n)) as u64;
            Some((bound(p), bound(p + 1), 0))
        }
        None => None,
    }
}

/// One partition's generated rows, batch by batch, then `End`.
pub(crate) struct GeneratedStream<F> {
    next: u64,
    end: u64,
    batch_rows: u64,
    stride: u64,
    throttle: Option<Throttle>,
    /// Builds the batch of rows `start..start + n`.
    batch: F,
    finished: bool,
}

impl<F: FnMut(u64, u64) -> Result<RecordBatch> + Send + 'static> GeneratedStream<F> {
    /// The rows `(next, end, stride)` of [`partition_rows`], `batch_rows` at a time.
    pub(crate) fn boxed(
        (next, end, stride): (u64, u64, u64),
        batch_rows: u64,
        throttle: Option<Throttle>,
        batch: F,
    ) -> ElementStream {
        Box::new(Self {
            next,
            end,
            batch_rows: batch_rows.max(1),
            stride,
            throttle,
            batch,
            finished: false,
        })
    }
}

impl<F: FnMut(u64, u64) -> Result<RecordBatch>> Iterator for GeneratedStream<F> {
    type Item = Result<Element>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.finished {
            return None;
        }
        if self.next >= self.end {
            self.finished = true;
            return Some(Ok(Element::End));
        }
        let n = self.batch_rows.min(self.end - self.next);
        let batch = (self.batch)(self.next, n);
        self.next = if self.stride == 0 {
            self.next + n
        } else {
            self.next.saturating_add(self.stride)
        };
        if batch.is_err() {
            self.finished = true;
        } else if let Some(t) = &mut self.throttle {
            t.wait(n);
        }
        Some(batch.map(Element::Batch))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn batch_partitions_split_the_rows_and_streams_deal_batches() {
        let parts: Vec<_> = (0..3)
            .map(|p| partition_rows(Some(10), p, 3, 4, false))
            .collect();
        assert_eq!(parts, [Some((0, 3, 0)), Some((3, 6, 0)), Some((6, 10, 0))]);
        assert_eq!(partition_rows(Some(10), 1, 3, 4, true), Some((4, 10, 12)));
        assert_eq!(partition_rows(None, 1, 2, 4, true), Some((4, u64::MAX, 8)));
        assert_eq!(partition_rows(None, 0, 2, 4, false), None);
    }
}
