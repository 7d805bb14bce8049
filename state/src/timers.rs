//! Timers: per (key, namespace) callbacks at an event time or processing time.
//!
//! Each domain keeps an ordered set of `(timestamp, key, namespace)`, so registration is
//! idempotent (a duplicate is a no-op), deletion is a set removal, and advancing the clock pops
//! due timers in timestamp order (ties by key, then namespace). Timers belong to the key group
//! of their key: registering a timer for a key outside the owner's range is an error, and
//! snapshots/restores move timers with their key groups.

use std::collections::BTreeSet;

use crate::error::{Result, StateError};
use crate::key_group::{check_max_parallelism, key_group_unchecked, KeyGroupRange};

/// Approximate per-timer bookkeeping overhead in bytes (B-tree slot + vector headers).
const TIMER_OVERHEAD: usize = 64;

/// The clock a timer is registered against.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum TimeDomain {
    /// Fires when the watermark reaches the timestamp.
    EventTime,
    /// Fires when wall-clock (processing) time reaches the timestamp.
    ProcessingTime,
}

/// A registered timer. Ordered by timestamp, then key, then namespace.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Timer {
    /// When the timer fires (milliseconds).
    pub timestamp: i64,
    /// The serialized key the timer belongs to.
    pub key: Vec<u8>,
    /// The namespace (e.g. window) the timer belongs to.
    pub namespace: Vec<u8>,
}

impl Timer {
    fn size(&self) -> usize {
        self.key.len() + self.namespace.len() + TIMER_OVERHEAD
    }
}

/// Event-time and processing-time timers of one operator instance.
#[derive(Clone, Debug)]
pub struct TimerService {
    max_parallelism: u32,
    range: KeyGroupRange,
    event: BTreeSet<Timer>,
    processing: BTreeSet<Timer>,
    bytes: usize,
}

impl TimerService {
    /// An empty service owning the key groups `range` out of `max_parallelism`.
    pub fn new(max_parallelism: u32, range: KeyGroupRange) -> Result<Self> {
        check_max_parallelism(max_parallelism)?;
        range.check_fits(max_parallelism)?;
        Ok(Self {
            max_parallelism,
            range,
            event: BTreeSet::new(),
            processing: BTreeSet::new(),
            bytes: 0,
        })
    }

    /// The key group of `key`, or an error if this service does not own it.
    pub(crate) fn key_group(&self, key: &[u8]) -> Result<u32> {
        let key_group = key_group_unchecked(key, self.max_parallelism);
        if !self.range.contains(key_group) {
            return Err(StateError::KeyOutOfRange {
                state: "timers".to_string(),
                key_group,
                range: self.range,
            });
        }
        Ok(key_group)
    }

    fn set_mut(&mut self, domain: TimeDomain) -> &mut BTreeSet<Timer> {
        match domain {
            TimeDomain::EventTime => &mut self.event,
            TimeDomain::ProcessingTime => &mut self.processing,
        }
    }

    fn set(&self, domain: TimeDomain) -> &BTreeSet<Timer> {
        match domain {
            TimeDomain::EventTime => &self.event,
            TimeDomain::ProcessingTime => &self.processing,
        }
    }

    /// Registers a timer; returns `false` if the same timer was already registered.
    pub fn register(
        &mut self,
        domain: TimeDomain,
        timestamp: i64,
        key: &[u8],
        namespace: &[u8],
    ) -> Result<bool> {
        self.key_group(key)?;
        Ok(self.insert(
            domain,
            Timer {
                timestamp,
                key: key.to_vec(),
                namespace: namespace.to_vec(),
            },
        ))
    }

    /// Inserts a timer whose key group has been checked.
    pub(crate) fn insert(&mut self, domain: TimeDomain, timer: Timer) -> bool {
        let size = timer.size();
        let added = self.set_mut(domain).insert(timer);
        if added {
            self.bytes += size;
        }
        added
    }

    /// Deletes a timer; returns whether it was registered.
    pub fn delete(
        &mut self,
        domain: TimeDomain,
        timestamp: i64,
        key: &[u8],
        namespace: &[u8],
    ) -> Result<bool> {
        self.key_group(key)?;
        let probe = Timer {
            timestamp,
            key: key.to_vec(),
            namespace: namespace.to_vec(),
        };
        let removed = self.set_mut(domain).remove(&probe);
        if removed {
            self.bytes = self.bytes.saturating_sub(probe.size());
        }
        Ok(removed)
    }

    /// Registers an event-time timer (see [`TimerService::register`]).
    pub fn register_event_time_timer(
        &mut self,
        timestamp: i64,
        key: &[u8],
        namespace: &[u8],
    ) -> Result<bool> {
        self.register(TimeDomain::EventTime, timestamp, key, namespace)
    }

    /// Registers a processing-time timer (see [`TimerService::register`]).
    pub fn register_processing_time_timer(
        &mut self,
        timestamp: i64,
        key: &[u8],
        namespace: &[u8],
    ) -> Result<bool> {
        self.register(TimeDomain::ProcessingTime, timestamp, key, namespace)
    }

    /// Deletes an event-time timer (see [`TimerService::delete`]).
    pub fn delete_event_time_timer(
        &mut self,
        timestamp: i64,
        key: &[u8],
        namespace: &[u8],
    ) -> Result<bool> {
        self.delete(TimeDomain::EventTime, timestamp, key, namespace)
    }

    /// Deletes a processing-time timer (see [`TimerService::delete`]).
    pub fn delete_processing_time_timer(
        &mut self,
        timestamp: i64,
        key: &[u8],
        namespace: &[u8],
    ) -> Result<bool> {
        self.delete(TimeDomain::ProcessingTime, timestamp, key, namespace)
    }

    fn pop_due(&mut self, domain: TimeDomain, time: i64) -> Vec<Timer> {
        let set = self.set_mut(domain);
        let mut due = Vec::new();
        while set.first().is_some_and(|t| t.timestamp <= time) {
            if let Some(t) = set.pop_first() {
                due.push(t);
            }
        }
        let freed: usize = due.iter().map(Timer::size).sum();
        self.bytes = self.bytes.saturating_sub(freed);
        due
    }

    /// Removes and returns all event-time timers with `timestamp <= watermark`, in order.
    pub fn advance_watermark(&mut self, watermark: i64) -> Vec<Timer> {
        self.pop_due(TimeDomain::EventTime, watermark)
    }

    /// Removes and returns all processing-time timers with `timestamp <= now`, in order.
    pub fn advance_processing_time(&mut self, now: i64) -> Vec<Timer> {
        self.pop_due(TimeDomain::ProcessingTime, now)
    }

    /// The earliest pending timestamp of `domain`, if any.
    pub fn next_timestamp(&self, domain: TimeDomain) -> Option<i64> {
        self.set(domain).first().map(|t| t.timestamp)
    }

    /// Pending timers of `domain` in firing order.
    pub fn timers(&self, domain: TimeDomain) -> impl Iterator<Item = &Timer> + '_ {
        self.set(domain).iter()
    }

    /// Number of pending timers in both domains.
    pub fn len(&self) -> usize {
        self.event.len() + self.processing.len()
    }

    /// Whether no timer is pending.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Approximate bytes held by pending timers.
    pub fn size_estimate(&self) -> usize {
        self.bytes
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn service() -> TimerService {
        TimerService::new(16, KeyGroupRange::all(16).expect("valid")).expect("valid")
    }

    #[test]
    fn timers_fire_in_order_and_dedup() {
        let mut s = service();
        assert!(s.register_event_time_timer(30, b"b", b"").expect("ok"));
        assert!(s.register_event_time_timer(10, b"z", b"").expect("ok"));
        assert!(s.register_event_time_timer(10, b"a", b"w2").expect("ok"));
        assert!(s.register_event_time_timer(10, b"a", b"w1").expect("ok"));
        assert!(
            !s.register_event_time_timer(10, b"a", b"w1").expect("ok"),
            "duplicate"
        );
        assert!(s.register_processing_time_timer(5, b"a", b"").expect("ok"));
        assert_eq!(s.len(), 5);
        assert_eq!(s.next_timestamp(TimeDomain::EventTime), Some(10));

        assert!(s.advance_watermark(9).is_empty());
        let fired: Vec<_> = s
            .advance_watermark(10)
            .into_iter()
            .map(|t| (t.timestamp, t.key, t.namespace))
            .collect();
        assert_eq!(
            fired,
            vec![
                (10, b"a".to_vec(), b"w1".to_vec()),
                (10, b"a".to_vec(), b"w2".to_vec()),
                (10, b"z".to_vec(), Vec::new()),
            ]
        );
        assert!(
            s.advance_watermark(10).is_empty(),
            "fired timers are removed"
        );
        assert_eq!(s.advance_processing_time(100).len(), 1);
        assert_eq!(s.advance_watermark(i64::MAX).len(), 1);
        assert!(s.is_empty());
        assert_eq!(s.size_estimate(), 0);
    }

    #[test]
    fn delete_removes_only_that_timer() {
        let mut s = service();
        s.register_event_time_timer(1, b"k", b"").expect("ok");
        s.register_processing_time_timer(1, b"k", b"").expect("ok");
        assert!(!s.delete_event_time_timer(2, b"k", b"").expect("ok"));
        assert!(s.delete_event_time_timer(1, b"k", b"").expect("ok"));
        assert!(s.advance_watermark(5).is_empty());
        assert!(s.delete_processing_time_timer(1, b"k", b"").expect("ok"));
        assert_eq!(s.size_estimate(), 0);
    }

    #[test]
    fn keys_outside_the_range_are_rejected() {
        let key = b"some key";
        let kg = key_group_unchecked(key, 16);
        let other = if kg == 0 { 1 } else { 0 };
        let mut s =
            TimerService::new(16, KeyGroupRange::new(other, other).expect("valid")).expect("valid");
        let err = s
            .register_event_time_timer(1, key, b"")
            .expect_err("out of range");
        assert!(matches!(err, StateError::KeyOutOfRange { key_group, .. } if key_group == kg));
        assert!(TimerService::new(16, KeyGroupRange::new(0, 16).expect("valid")).is_err());
    }
}
