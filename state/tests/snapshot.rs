//! Snapshots: round trip, determinism, lazy typing of restored state, and errors (never
//! panics) for corrupt bytes, mismatched max parallelism and incompatible types.

use std::panic::{catch_unwind, AssertUnwindSafe};

use sluice_state::{
    KeyGroupRange, KeyedStateBackend, MemoryStateBackend, Snapshot, StateDescriptor, StateError,
    TimeDomain, VOID_NAMESPACE,
};

const NS: &[u8] = VOID_NAMESPACE;

fn filled() -> MemoryStateBackend {
    let mut b =
        MemoryStateBackend::new(32, KeyGroupRange::all(32).expect("range")).expect("backend");
    let v = b
        .register_value::<(String, Option<f64>)>(&StateDescriptor::new("v"))
        .expect("v");
    let l = b
        .register_list::<Vec<u8>>(&StateDescriptor::new("l"))
        .expect("l");
    let m = b
        .register_map::<u32, bool>(&StateDescriptor::new("m").with_ttl_ms(1_000_000))
        .expect("m");
    for i in 0..300u32 {
        let k = i.to_le_bytes();
        v.update(
            &mut b,
            &k,
            NS,
            (format!("s{i}"), (i % 2 == 0).then_some(f64::from(i))),
        )
        .expect("update");
        l.add_all(&mut b, &k, b"ns", [vec![1, 2], vec![], vec![i as u8]])
            .expect("add");
        m.put(&mut b, &k, NS, i, i % 3 == 0).expect("put");
        m.put(&mut b, &k, NS, i + 1, true).expect("put");
        b.timers_mut()
            .register(TimeDomain::EventTime, i64::from(i), &k, NS)
            .expect("timer");
    }
    b
}

#[test]
fn round_trip_is_exact_and_deterministic() {
    let b = filled();
    let s1 = b.snapshot().expect("snapshot");
    let s2 = b.snapshot().expect("snapshot");
    assert_eq!(s1, s2);
    assert!(!s1.is_empty());

    let mut r = MemoryStateBackend::restore_from(
        32,
        KeyGroupRange::all(32).expect("range"),
        std::slice::from_ref(&s1),
    )
    .expect("restore");
    assert_eq!(
        r.snapshot().expect("snapshot"),
        s1,
        "unregistered states pass through"
    );
    assert_eq!(r.state_names(), vec!["l", "m", "v"]);
    let v = r
        .register_value::<(String, Option<f64>)>(&StateDescriptor::new("v"))
        .expect("v");
    let l = r
        .register_list::<Vec<u8>>(&StateDescriptor::new("l"))
        .expect("l");
    let m = r
        .register_map::<u32, bool>(&StateDescriptor::new("m").with_ttl_ms(1_000_000))
        .expect("m");
    assert_eq!(
        r.snapshot().expect("snapshot"),
        s1,
        "registered states write the same rows"
    );
    let k = 42u32.to_le_bytes();
    assert_eq!(
        v.get(&r, &k, NS).expect("get"),
        Some(&("s42".to_string(), Some(42.0)))
    );
    assert_eq!(
        l.get(&r, &k, b"ns").expect("get"),
        [vec![1, 2], vec![], vec![42]]
    );
    assert_eq!(m.get(&r, &k, NS, &42).expect("get"), Some(&true));
    assert_eq!(m.get(&r, &k, NS, &43).expect("get"), Some(&true));
    assert_eq!(r.timers().len(), 300);
    assert_eq!(r.size_estimate() > 0, b.size_estimate() > 0);
}

#[test]
fn restored_state_registered_with_another_type_is_an_error() {
    let s = filled().snapshot().expect("snapshot");
    let mut r = MemoryStateBackend::restore_from(
        32,
        KeyGroupRange::all(32).expect("range"),
        std::slice::from_ref(&s),
    )
    .expect("restore");
    let err = r
        .register_value::<i64>(&StateDescriptor::new("v"))
        .expect_err("type changed");
    assert!(matches!(err, StateError::IncompatibleState { .. }), "{err}");
    assert!(err.to_string().contains("(String,Option<f64>)"), "{err}");
    assert!(r
        .register_list::<Vec<u8>>(&StateDescriptor::new("m"))
        .is_err());

    // Restoring into a backend where the name is registered with another type.
    let mut other =
        MemoryStateBackend::new(32, KeyGroupRange::all(32).expect("range")).expect("backend");
    other
        .register_map::<u32, u32>(&StateDescriptor::new("m"))
        .expect("m");
    assert!(matches!(
        other.restore(&[s]),
        Err(StateError::IncompatibleState { .. })
    ));
}

#[test]
fn max_parallelism_must_match() {
    let s = filled().snapshot().expect("snapshot");
    let err = MemoryStateBackend::restore_from(64, KeyGroupRange::all(64).expect("range"), &[s])
        .expect_err("mismatch");
    assert!(matches!(
        err,
        StateError::MaxParallelismMismatch {
            expected: 64,
            found: 32
        }
    ));
}

#[test]
fn corrupt_snapshots_are_errors_not_panics() {
    let good = filled().snapshot().expect("snapshot").into_bytes();
    let range = KeyGroupRange::all(32).expect("range");
    let mut cases: Vec<Vec<u8>> = vec![
        Vec::new(),
        b"not a snapshot".to_vec(),
        good[..good.len() / 2].to_vec(),
        good[..16].to_vec(),
    ];
    // Single-bit flips spread over the whole snapshot, including the header.
    let step = (good.len() / 200).max(1);
    for at in (0..good.len()).step_by(step) {
        let mut bad = good.clone();
        bad[at] ^= 0x10;
        cases.push(bad);
    }
    for (i, bytes) in cases.into_iter().enumerate() {
        let snap = Snapshot::from_bytes(bytes);
        let result = catch_unwind(AssertUnwindSafe(|| {
            MemoryStateBackend::restore_from(32, range, &[snap])
        }));
        match result {
            Ok(Err(StateError::CorruptSnapshot(_) | StateError::Arrow { .. })) => {}
            Ok(Err(other)) => panic!("case {i}: unexpected error kind {other}"),
            Ok(Ok(_)) => panic!("case {i}: corrupt snapshot restored"),
            Err(_) => panic!("case {i}: panicked"),
        }
    }
    let err =
        MemoryStateBackend::restore_from(32, range, &[Snapshot::from_bytes(b"junk".to_vec())])
            .expect_err("junk");
    assert_eq!(err.to_string(), "corrupt snapshot: missing SLSTATE1 header");
}

#[test]
fn empty_backend_snapshots_and_restores() {
    let b = MemoryStateBackend::new(8, KeyGroupRange::all(8).expect("range")).expect("backend");
    let s = b.snapshot().expect("snapshot");
    let r = MemoryStateBackend::restore_from(8, KeyGroupRange::new(2, 5).expect("range"), &[s])
        .expect("restore");
    assert!(r.state_names().is_empty());
    assert_eq!(r.size_estimate(), 0);
}
