//! Rescaling by key group: state and timers for 10 000 keys written by 2 backends are
//! snapshotted and restored into 3 backends; every key's value, list, map and timers end up in
//! exactly one new backend, unchanged. Also: rescale back down to 1 and compare snapshots.

use std::collections::BTreeMap;

use sluice_state::{
    key_group_for_key, operator_for_key_group, range_for_operator, KeyedStateBackend, ListState,
    MapState, MemoryStateBackend, Snapshot, StateDescriptor, TimeDomain, ValueState,
    WindowNamespace, VOID_NAMESPACE,
};

const MAX_P: u32 = 128;
const KEYS: u32 = 10_000;

struct Handles {
    sum: ValueState<i64>,
    rows: ListState<(String, i64)>,
    counts: MapState<String, u64>,
}

fn register(b: &mut MemoryStateBackend) -> Handles {
    Handles {
        sum: b.register_value(&StateDescriptor::new("sum")).expect("sum"),
        rows: b
            .register_list(&StateDescriptor::new("rows"))
            .expect("rows"),
        counts: b
            .register_map(&StateDescriptor::new("counts"))
            .expect("counts"),
    }
}

fn key(i: u32) -> Vec<u8> {
    // Arrow-row-like bytes: a tag byte then the big-endian id.
    let mut k = vec![1u8];
    k.extend_from_slice(&i.to_be_bytes());
    k
}

fn window(i: u32) -> Vec<u8> {
    let start = i64::from(i % 7) * 1000;
    WindowNamespace::new(start, start + 1000).encode().to_vec()
}

/// Expected contents of one key, as plain data.
#[derive(Debug, PartialEq)]
struct KeyState {
    sum: Option<i64>,
    rows: Vec<(String, i64)>,
    counts: BTreeMap<String, u64>,
    event_timers: Vec<i64>,
    processing_timers: Vec<i64>,
}

fn expected(i: u32) -> KeyState {
    let rows = (0..i % 4)
        .map(|j| (format!("row-{i}-{j}"), i64::from(j)))
        .collect();
    let counts = (0..i % 3)
        .map(|j| (format!("c{j}"), u64::from(i * j)))
        .collect();
    KeyState {
        sum: match i % 5 {
            0 => None,
            _ => Some(i64::from(i) * 3),
        },
        rows,
        counts,
        event_timers: vec![i64::from(i % 50), 1000 + i64::from(i % 50)],
        processing_timers: match i % 2 {
            0 => vec![i64::from(i)],
            _ => vec![],
        },
    }
}

fn fill(b: &mut MemoryStateBackend, h: &Handles, i: u32) {
    let (k, w) = (key(i), window(i));
    let e = expected(i);
    if let Some(s) = e.sum {
        h.sum.update(b, &k, VOID_NAMESPACE, s).expect("update");
    }
    h.rows.add_all(b, &k, &w, e.rows).expect("add_all");
    for (mk, v) in e.counts {
        h.counts.put(b, &k, VOID_NAMESPACE, mk, v).expect("put");
    }
    for ts in e.event_timers {
        b.timers_mut()
            .register(TimeDomain::EventTime, ts, &k, &w)
            .expect("timer");
    }
    for ts in e.processing_timers {
        b.timers_mut()
            .register(TimeDomain::ProcessingTime, ts, &k, VOID_NAMESPACE)
            .expect("timer");
    }
}

/// Timers of a backend grouped by key: (event-time, processing-time) timestamps in order.
type TimerIndex = BTreeMap<Vec<u8>, (Vec<i64>, Vec<i64>)>;

fn timer_index(b: &MemoryStateBackend) -> TimerIndex {
    let mut index = TimerIndex::new();
    for t in b.timers().timers(TimeDomain::EventTime) {
        index.entry(t.key.clone()).or_default().0.push(t.timestamp);
    }
    for t in b.timers().timers(TimeDomain::ProcessingTime) {
        index.entry(t.key.clone()).or_default().1.push(t.timestamp);
    }
    index
}

fn read(b: &MemoryStateBackend, h: &Handles, timers: &TimerIndex, i: u32) -> KeyState {
    let (k, w) = (key(i), window(i));
    let (event_timers, processing_timers) = timers.get(&k).cloned().unwrap_or_default();
    KeyState {
        sum: h.sum.get(b, &k, VOID_NAMESPACE).expect("get").copied(),
        rows: h.rows.get(b, &k, &w).expect("get").to_vec(),
        counts: h
            .counts
            .iter(b, &k, VOID_NAMESPACE)
            .expect("iter")
            .map(|(mk, v)| (mk.clone(), *v))
            .collect(),
        event_timers,
        processing_timers,
    }
}

fn build(parallelism: u32) -> (Vec<MemoryStateBackend>, Vec<Handles>) {
    let mut backends: Vec<_> = (0..parallelism)
        .map(|i| MemoryStateBackend::for_operator(MAX_P, parallelism, i).expect("backend"))
        .collect();
    let handles = backends.iter_mut().map(register).collect();
    (backends, handles)
}

fn owner(i: u32, parallelism: u32) -> usize {
    let kg = key_group_for_key(&key(i), MAX_P).expect("kg");
    operator_for_key_group(MAX_P, parallelism, kg).expect("owner") as usize
}

#[test]
fn rescale_two_to_three_and_back_to_one() {
    let (mut old, old_handles) = build(2);
    for i in 0..KEYS {
        let o = owner(i, 2);
        fill(&mut old[o], &old_handles[o], i);
    }
    let snapshots: Vec<Snapshot> = old
        .iter()
        .map(|b| b.snapshot().expect("snapshot"))
        .collect();

    // Restore at parallelism 3: each new backend reads both snapshots, keeps its key groups.
    let mut new: Vec<MemoryStateBackend> = (0..3)
        .map(|i| {
            let range = range_for_operator(MAX_P, 3, i).expect("range");
            MemoryStateBackend::restore_from(MAX_P, range, &snapshots).expect("restore")
        })
        .collect();
    let new_handles: Vec<Handles> = new.iter_mut().map(register).collect();
    let empty = KeyState {
        sum: None,
        rows: vec![],
        counts: BTreeMap::new(),
        event_timers: vec![],
        processing_timers: vec![],
    };
    let timers: Vec<TimerIndex> = new.iter().map(timer_index).collect();
    let mut per_backend = [0u32; 3];
    for i in 0..KEYS {
        let o = owner(i, 3);
        per_backend[o] += 1;
        let got = read(&new[o], &new_handles[o], &timers[o], i);
        assert_eq!(got, expected(i), "key {i} in its owner {o}");
        assert_ne!(got, empty);
        for (j, b) in new.iter().enumerate().filter(|(j, _)| *j != o) {
            // A key of another backend is not even addressable there, and has no timers there.
            assert!(new_handles[j].sum.get(b, &key(i), VOID_NAMESPACE).is_err());
            assert!(!timers[j].contains_key(&key(i)));
        }
    }
    assert!(per_backend.iter().all(|n| *n > 2_500), "{per_backend:?}");
    let total_timers: usize = new.iter().map(|b| b.timers().len()).sum();
    let old_timers: usize = old.iter().map(|b| b.timers().len()).sum();
    assert_eq!(total_timers, old_timers);
    let entries: usize = new
        .iter()
        .map(|b| b.entry_count("rows").expect("rows"))
        .sum();
    let old_entries: usize = old
        .iter()
        .map(|b| b.entry_count("rows").expect("rows"))
        .sum();
    assert_eq!(entries, old_entries);

    // Scale in to 1 from the 3 snapshots, and also from the original 2: identical bytes.
    let snapshots3: Vec<Snapshot> = new
        .iter()
        .map(|b| b.snapshot().expect("snapshot"))
        .collect();
    let all = range_for_operator(MAX_P, 1, 0).expect("range");
    let from3 = MemoryStateBackend::restore_from(MAX_P, all, &snapshots3).expect("restore");
    let from2 = MemoryStateBackend::restore_from(MAX_P, all, &snapshots).expect("restore");
    // Not yet registered states are passed through raw and still snapshot identically.
    assert_eq!(
        from3.snapshot().expect("snapshot"),
        from2.snapshot().expect("snapshot")
    );
    let mut from3 = from3;
    let h = register(&mut from3);
    let timers = timer_index(&from3);
    for i in 0..KEYS {
        assert_eq!(read(&from3, &h, &timers, i), expected(i));
    }
    assert!(from3.size_estimate() > 0);

    // The restored timers fire in order.
    let fired = from3.timers_mut().advance_watermark(999);
    assert_eq!(fired.len(), KEYS as usize);
    assert!(fired.windows(2).all(|w| w[0] <= w[1]));
}
