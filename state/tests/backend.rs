//! The memory backend through its public API: the three state kinds, namespaces and
//! `clear_namespace`, TTL, registration rules, key-group range checks, size accounting and
//! timers living in the backend.

use sluice_state::{
    KeyGroupRange, KeyedStateBackend, MemoryStateBackend, StateDescriptor, StateError, TimeDomain,
    WindowNamespace, VOID_NAMESPACE,
};

const NS: &[u8] = VOID_NAMESPACE;

fn backend() -> MemoryStateBackend {
    MemoryStateBackend::new(64, KeyGroupRange::all(64).expect("range")).expect("backend")
}

fn key(i: u32) -> Vec<u8> {
    format!("key-{i}").into_bytes()
}

#[test]
fn value_state_get_update_clear() {
    let mut b = backend();
    let count = b
        .register_value::<i64>(&StateDescriptor::new("count"))
        .expect("register");
    assert_eq!(count.get(&b, b"a", NS).expect("get"), None);
    count.update(&mut b, b"a", NS, 1).expect("update");
    count.update(&mut b, b"a", NS, 2).expect("update");
    count.update(&mut b, b"b", NS, 10).expect("update");
    assert_eq!(count.get(&b, b"a", NS).expect("get"), Some(&2));
    assert_eq!(count.get(&b, b"a", b"other ns").expect("get"), None);
    assert!(count.clear(&mut b, b"a", NS).expect("clear"));
    assert!(!count.clear(&mut b, b"a", NS).expect("clear"));
    assert_eq!(count.get(&b, b"a", NS).expect("get"), None);
    let entries: Vec<_> = count.entries(&b).expect("entries").collect();
    assert_eq!(entries, vec![(&b"b"[..], NS, &10)]);
    assert_eq!(b.entry_count("count"), Some(1));
    count.update(&mut b, b"c", b"w1", 7).expect("update");
    let in_ns: Vec<_> = count.entries_in(&b, b"w1").expect("entries").collect();
    assert_eq!(in_ns, vec![(&b"c"[..], &7)]);
    let in_void: Vec<_> = count.entries_in(&b, NS).expect("entries").collect();
    assert_eq!(in_void, vec![(&b"b"[..], &10)]);
}

#[test]
fn value_state_upsert_merges_in_place_or_inserts() {
    let mut b = backend();
    let sum = b
        .register_value::<i64>(&StateDescriptor::new("sum"))
        .expect("register");
    for v in [5, 7] {
        sum.upsert(&mut b, b"a", NS, || v, |s| *s += v)
            .expect("upsert");
    }
    assert_eq!(sum.get(&b, b"a", NS).expect("get"), Some(&12));
    // With a TTL, an expired value is replaced by `init`, not merged into.
    let ttl = b
        .register_value::<i64>(&StateDescriptor::new("ttl sum").with_ttl_ms(100))
        .expect("register");
    b.set_current_time(0);
    ttl.upsert(&mut b, b"a", NS, || 1, |s| *s += 1)
        .expect("upsert");
    ttl.upsert(&mut b, b"a", NS, || 1, |s| *s += 1)
        .expect("upsert");
    assert_eq!(ttl.get(&b, b"a", NS).expect("get"), Some(&2));
    b.set_current_time(150);
    assert_eq!(ttl.get(&b, b"a", NS).expect("get"), None);
    ttl.upsert(&mut b, b"a", NS, || 1, |s| *s += 1)
        .expect("upsert");
    assert_eq!(ttl.get(&b, b"a", NS).expect("get"), Some(&1));
    assert_eq!(b.entry_count("ttl sum"), Some(1));
}

#[test]
fn list_state_modify_changes_values_in_place() {
    let mut b = backend();
    let l = b
        .register_list::<i64>(&StateDescriptor::new("l"))
        .expect("register");
    l.add_all(&mut b, b"k", NS, [1, 2, 3]).expect("add");
    l.modify(&mut b, b"k", NS, |i, v| *v += 10 * i as i64)
        .expect("modify");
    assert_eq!(l.get(&b, b"k", NS).expect("get"), [1, 12, 23]);
    // An absent list stays absent.
    l.modify(&mut b, b"none", NS, |_, v| *v = 0)
        .expect("modify");
    assert!(l.get(&b, b"none", NS).expect("get").is_empty());
    assert_eq!(b.entry_count("l"), Some(1));
}

#[test]
fn list_state_retain_filters_in_place() {
    let mut b = backend();
    let list = b
        .register_list::<i64>(&StateDescriptor::new("nums"))
        .expect("register");
    list.add_all(&mut b, b"k", NS, [1, 2, 3, 4]).expect("add");
    assert_eq!(
        list.retain(&mut b, b"k", NS, |v| v % 2 == 0)
            .expect("retain"),
        2
    );
    assert_eq!(list.get(&b, b"k", NS).expect("get"), &[2, 4]);
    assert_eq!(list.retain(&mut b, b"k", NS, |_| false).expect("retain"), 2);
    assert_eq!(b.entry_count("nums"), Some(0), "an emptied list is removed");
    assert_eq!(
        list.retain(&mut b, b"absent", NS, |_| true)
            .expect("retain"),
        0
    );
    assert_eq!(
        b.entry_count("nums"),
        Some(0),
        "retain does not create lists"
    );
}

#[test]
fn list_state_add_get_update_clear() {
    let mut b = backend();
    let list = b
        .register_list::<String>(&StateDescriptor::new("rows"))
        .expect("register");
    assert!(list.get(&b, b"k", NS).expect("get").is_empty());
    list.add(&mut b, b"k", NS, "x".into()).expect("add");
    list.add_all(&mut b, b"k", NS, ["y".to_string(), "z".to_string()])
        .expect("add_all");
    assert_eq!(list.get(&b, b"k", NS).expect("get"), ["x", "y", "z"]);
    list.update(&mut b, b"k", NS, vec!["only".into()])
        .expect("update");
    assert_eq!(list.get(&b, b"k", NS).expect("get"), ["only"]);
    list.update(&mut b, b"k", NS, Vec::new()).expect("update");
    assert_eq!(
        b.entry_count("rows"),
        Some(0),
        "empty update removes the entry"
    );
    list.add(&mut b, b"k", NS, "again".into()).expect("add");
    assert!(list.clear(&mut b, b"k", NS).expect("clear"));
    assert!(list.get(&b, b"k", NS).expect("get").is_empty());
}

#[test]
fn map_state_operations() {
    let mut b = backend();
    let m = b
        .register_map::<String, (i64, bool)>(&StateDescriptor::new("m"))
        .expect("register");
    assert!(m.is_empty(&b, b"k", NS).expect("is_empty"));
    m.put(&mut b, b"k", NS, "a".into(), (1, true)).expect("put");
    m.put(&mut b, b"k", NS, "b".into(), (2, false))
        .expect("put");
    m.put(&mut b, b"k", NS, "a".into(), (3, true)).expect("put");
    assert_eq!(
        m.get(&b, b"k", NS, &"a".into()).expect("get"),
        Some(&(3, true))
    );
    assert!(m.contains(&b, b"k", NS, &"b".into()).expect("contains"));
    assert!(!m.contains(&b, b"k", NS, &"c".into()).expect("contains"));
    let mut all: Vec<_> = m
        .iter(&b, b"k", NS)
        .expect("iter")
        .map(|(k, v)| (k.clone(), *v))
        .collect();
    all.sort();
    assert_eq!(
        all,
        vec![("a".to_string(), (3, true)), ("b".to_string(), (2, false))]
    );
    assert_eq!(
        m.remove(&mut b, b"k", NS, &"a".into()).expect("remove"),
        Some((3, true))
    );
    assert_eq!(
        m.remove(&mut b, b"k", NS, &"a".into()).expect("remove"),
        None
    );
    assert_eq!(
        m.remove(&mut b, b"nokey", NS, &"a".into()).expect("remove"),
        None
    );
    assert_eq!(b.entry_count("m"), Some(1));
    assert_eq!(
        m.remove(&mut b, b"k", NS, &"b".into()).expect("remove"),
        Some((2, false))
    );
    assert_eq!(
        b.entry_count("m"),
        Some(0),
        "removing the last map entry removes the key"
    );
    m.put(&mut b, b"k", NS, "c".into(), (0, false))
        .expect("put");
    let (k, ns, view) = m.entries(&b).expect("entries").next().expect("one entry");
    assert_eq!((k, ns), (&b"k"[..], NS));
    assert_eq!(view.get(&"c".into()), Some(&(0, false)));
    assert!(m.clear(&mut b, b"k", NS).expect("clear"));
    assert!(m.is_empty(&b, b"k", NS).expect("is_empty"));
}

#[test]
fn clear_namespace_drops_only_that_window() {
    let mut b = backend();
    let sum = b
        .register_value::<i64>(&StateDescriptor::new("sum"))
        .expect("register");
    let seen = b
        .register_list::<u64>(&StateDescriptor::new("seen"))
        .expect("register");
    let w1 = WindowNamespace::new(0, 1000).encode();
    let w2 = WindowNamespace::new(1000, 2000).encode();
    for i in 0..500 {
        sum.update(&mut b, &key(i), &w1, i64::from(i))
            .expect("update");
        sum.update(&mut b, &key(i), &w2, -1).expect("update");
        seen.add(&mut b, &key(i), &w1, u64::from(i)).expect("add");
    }
    assert_eq!(sum.keys(&b, &w1).expect("keys").count(), 500);
    assert_eq!(sum.clear_namespace(&mut b, &w1).expect("clear"), 500);
    assert_eq!(sum.keys(&b, &w1).expect("keys").count(), 0);
    assert_eq!(sum.keys(&b, &w2).expect("keys").count(), 500);
    assert_eq!(
        seen.keys(&b, &w1).expect("keys").count(),
        500,
        "other states untouched"
    );
    // Backend-wide: drops the list entries of w1; w2's sums stay.
    assert_eq!(b.clear_namespace(&w1), 500);
    assert_eq!(seen.keys(&b, &w1).expect("keys").count(), 0);
    assert_eq!(sum.get(&b, &key(7), &w2).expect("get"), Some(&-1));
    assert_eq!(b.clear_namespace(&w2), 500);
    assert_eq!(b.size_estimate(), 0, "accounting returns to zero");
}

#[test]
fn ttl_hides_expired_entries_and_cleanup_drops_them() {
    let mut b = backend();
    let ttl = StateDescriptor::new("join-left").with_ttl_ms(100);
    let v = b.register_value::<i64>(&ttl).expect("register");
    let l = b
        .register_list::<i64>(&StateDescriptor::new("l").with_ttl_ms(100))
        .expect("register");
    let m = b
        .register_map::<i64, i64>(&StateDescriptor::new("m").with_ttl_ms(100))
        .expect("register");

    b.set_current_time(1_000);
    v.update(&mut b, b"k", NS, 1).expect("update");
    l.add(&mut b, b"k", NS, 1).expect("add");
    m.put(&mut b, b"k", NS, 1, 1).expect("put");
    b.set_current_time(1_050);
    m.put(&mut b, b"k", NS, 2, 2).expect("put"); // expires at 1150
    l.add(&mut b, b"k", NS, 2).expect("add"); // refreshes the whole list to 1150

    b.set_current_time(1_099);
    assert_eq!(v.get(&b, b"k", NS).expect("get"), Some(&1));
    b.set_current_time(1_100);
    assert_eq!(
        v.get(&b, b"k", NS).expect("get"),
        None,
        "expired at exactly now + ttl"
    );
    assert_eq!(v.keys(&b, NS).expect("keys").count(), 0);
    assert_eq!(l.get(&b, b"k", NS).expect("get"), [1, 2]);
    assert_eq!(
        m.get(&b, b"k", NS, &1).expect("get"),
        None,
        "map entries expire individually"
    );
    assert_eq!(m.get(&b, b"k", NS, &2).expect("get"), Some(&2));
    assert_eq!(m.iter(&b, b"k", NS).expect("iter").count(), 1);

    // Expired state is not in a snapshot.
    let restored = MemoryStateBackend::restore_from(
        64,
        KeyGroupRange::all(64).expect("range"),
        &[b.snapshot().expect("snapshot")],
    )
    .expect("restore");
    let mut restored = restored;
    restored.set_current_time(1_100);
    assert_eq!(
        restored.entry_count("join-left"),
        None,
        "not registered yet"
    );
    let rv = restored.register_value::<i64>(&ttl).expect("register");
    assert_eq!(restored.entry_count("join-left"), Some(0));
    assert_eq!(rv.get(&restored, b"k", NS).expect("get"), None);

    // Adding to an expired list starts a new list.
    b.set_current_time(1_200);
    l.add(&mut b, b"k", NS, 3).expect("add");
    assert_eq!(l.get(&b, b"k", NS).expect("get"), [3]);

    let before = b.size_estimate();
    assert_eq!(
        b.cleanup_expired(),
        2,
        "the value and the map are gone; the list is fresh"
    );
    assert!(b.size_estimate() < before);
    assert_eq!(b.entry_count("join-left"), Some(0));
    assert_eq!(b.entry_count("m"), Some(0));
    assert_eq!(b.entry_count("l"), Some(1));
}

#[test]
fn re_registration_rules() {
    let mut b = backend();
    let first = b
        .register_value::<i64>(&StateDescriptor::new("s"))
        .expect("register");
    let again = b
        .register_value::<i64>(&StateDescriptor::new("s"))
        .expect("same kind is fine");
    first.update(&mut b, b"k", NS, 5).expect("update");
    assert_eq!(
        again.get(&b, b"k", NS).expect("get"),
        Some(&5),
        "same state"
    );

    let err = b
        .register_list::<i64>(&StateDescriptor::new("s"))
        .expect_err("wrong kind");
    assert!(matches!(err, StateError::IncompatibleState { .. }), "{err}");
    assert_eq!(
        err.to_string(),
        "state 's' is registered as value<i64>, cannot register it as list<i64>"
    );
    let err = b
        .register_value::<String>(&StateDescriptor::new("s"))
        .expect_err("wrong type");
    assert!(err.to_string().contains("value<String>"), "{err}");
    let err = b
        .register_value::<i64>(&StateDescriptor::new("s").with_ttl_ms(5))
        .expect_err("different ttl");
    assert!(err.to_string().contains("ttl 5 ms"), "{err}");
    assert!(matches!(
        b.register_map::<i64, i64>(&StateDescriptor::new("")),
        Err(StateError::InvalidDescriptor { .. })
    ));
    assert!(b
        .register_value::<i64>(&StateDescriptor::new("t").with_ttl_ms(-1))
        .is_err());
}

#[test]
fn keys_outside_the_owned_range_are_errors() {
    let mut b = MemoryStateBackend::for_operator(128, 4, 1).expect("backend");
    let range = b.key_group_range();
    assert_eq!((range.start(), range.end()), (32, 63));
    let v = b
        .register_value::<i64>(&StateDescriptor::new("v"))
        .expect("register");
    let (mut inside, mut outside) = (None, None);
    for i in 0..1000 {
        let k = key(i);
        let kg = sluice_state::key_group_for_key(&k, 128).expect("kg");
        if range.contains(kg) {
            inside.get_or_insert(k);
        } else {
            outside.get_or_insert((k, kg));
        }
    }
    let inside = inside.expect("some key inside");
    let (outside, kg) = outside.expect("some key outside");
    v.update(&mut b, &inside, NS, 1).expect("inside is fine");
    let err = v.update(&mut b, &outside, NS, 1).expect_err("outside");
    assert!(
        matches!(&err, StateError::KeyOutOfRange { state, key_group, .. } if state == "v" && *key_group == kg),
        "{err}"
    );
    assert!(err.to_string().contains("[32, 63]"), "{err}");
    assert!(v.get(&b, &outside, NS).is_err());
    assert!(b
        .timers_mut()
        .register_event_time_timer(1, &outside, NS)
        .is_err());
    assert!(MemoryStateBackend::new(16, KeyGroupRange::new(8, 16).expect("range")).is_err());
}

#[test]
fn handles_from_another_backend_are_rejected() {
    let mut a = backend();
    let mut b = backend();
    let ha = a
        .register_value::<i64>(&StateDescriptor::new("v"))
        .expect("register");
    b.register_value::<i64>(&StateDescriptor::new("v"))
        .expect("register");
    assert!(matches!(
        ha.update(&mut b, b"k", NS, 1),
        Err(StateError::ForeignHandle { .. })
    ));
}

#[test]
fn size_estimate_tracks_contents() {
    let mut b = backend();
    assert_eq!(b.size_estimate(), 0);
    let l = b
        .register_list::<String>(&StateDescriptor::new("l"))
        .expect("register");
    let m = b
        .register_map::<String, String>(&StateDescriptor::new("m"))
        .expect("register");
    l.add(&mut b, b"k", NS, "x".repeat(1000)).expect("add");
    let one = b.size_estimate();
    assert!(one >= 1000, "{one}");
    l.add(&mut b, b"k", NS, "y".repeat(1000)).expect("add");
    assert!(b.size_estimate() >= one + 1000);
    m.put(&mut b, b"k", NS, "a".into(), "v".repeat(500))
        .expect("put");
    let with_map = b.size_estimate();
    m.put(&mut b, b"k", NS, "a".into(), "w".repeat(500))
        .expect("replace");
    assert_eq!(
        b.size_estimate(),
        with_map,
        "replacing an equal-sized value"
    );
    b.timers_mut()
        .register(TimeDomain::EventTime, 5, b"k", NS)
        .expect("timer");
    assert!(b.size_estimate() > with_map);
    b.timers_mut().advance_watermark(5);
    l.clear(&mut b, b"k", NS).expect("clear");
    m.remove(&mut b, b"k", NS, &"a".into()).expect("remove");
    assert_eq!(b.size_estimate(), 0);
}
