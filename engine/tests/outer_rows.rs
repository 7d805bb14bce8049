//! A correlated MIN/MAX/AVG subquery over tables its outer query joins too (TPC-H q2 and
//! q17's shape) is computed over the outer rows, which are computed once; the answers
//! equal ones computed by hand, including when an outer-only table repeats a key, when
//! the two queries name the tables differently, and when the subquery is correlated on a
//! column of its own tables (NULL keys included). Where the rewrite would change the answer
//! (SUM, an outer term on a subquery table that the subquery lacks, or the other way
//! round) or could not tell the tables apart (one read twice), it is not made, and the
//! answers still hold.

use std::sync::Arc;

use arrow::array::{ArrayRef, Int64Array, RecordBatch, StringArray};
use arrow::datatypes::{Field, Schema};
use common::{assert_shared_once, explain_analyze, lines};
use sluice::Session;

mod common;

/// Items `0..20` in groups `a..d` (`k % 4`), and a second group-`a` row for keys 0 and 8.
const ITEMS: usize = 20;
/// Vendors `0..10`, even ones `east`.
const VENDORS: i64 = 10;

fn item_rows() -> Vec<(i64, &'static str)> {
    let mut rows: Vec<(i64, &str)> = (0..ITEMS as i64)
        .map(|k| (k, ["a", "b", "c", "d"][(k % 4) as usize]))
        .collect();
    rows.extend([(0, "a"), (8, "a")]);
    rows
}

/// One offer per (item, vendor): `(k, vid, price)`, prices with ties.
fn offer_rows() -> Vec<(i64, i64, i64)> {
    (0..ITEMS as i64 * VENDORS)
        .map(|i| (i % ITEMS as i64, i / ITEMS as i64, (i * 37 + 11) % 7))
        .collect()
}

fn east(vid: i64) -> bool {
    vid % 2 == 0
}

/// Registers the in-memory table `name` with `cols` (nullable, typed by their arrays).
fn register(s: &Session, name: &str, cols: Vec<(&str, ArrayRef)>) {
    let fields: Vec<Field> = cols
        .iter()
        .map(|(n, c)| Field::new(*n, c.data_type().clone(), true))
        .collect();
    let schema = Arc::new(Schema::new(fields));
    let b = RecordBatch::try_new(schema.clone(), cols.into_iter().map(|c| c.1).collect())
        .expect("batch");
    s.register_batches(name, schema, vec![b]).expect("register");
}

fn session() -> Session {
    let s = Session::new();
    let ints = |v: Vec<i64>| -> ArrayRef { Arc::new(Int64Array::from(v)) };
    let items = item_rows();
    register(
        &s,
        "item",
        vec![
            ("k", ints(items.iter().map(|r| r.0).collect())),
            (
                "grp",
                Arc::new(StringArray::from_iter_values(items.iter().map(|r| r.1))),
            ),
        ],
    );
    let offers = offer_rows();
    register(
        &s,
        "offer",
        vec![
            ("k", ints(offers.iter().map(|r| r.0).collect())),
            ("vid", ints(offers.iter().map(|r| r.1).collect())),
            ("price", ints(offers.iter().map(|r| r.2).collect())),
        ],
    );
    let region = |v: i64| if east(v) { "east" } else { "west" };
    register(
        &s,
        "vendor",
        vec![
            ("vid", ints((0..VENDORS).collect())),
            (
                "region",
                Arc::new(StringArray::from_iter_values((0..VENDORS).map(region))),
            ),
        ],
    );
    s
}

/// `k | vid` lines for every group-`a` item row and offer of its key that `keep`
/// accepts given all of the key's offers, in (k, vid) order.
fn by_hand(keep: impl Fn(&(i64, i64, i64), &[(i64, i64, i64)]) -> bool) -> Vec<String> {
    let offers = offer_rows();
    let mut out = Vec::new();
    let items: Vec<i64> = item_rows()
        .into_iter()
        .filter(|r| r.1 == "a")
        .map(|r| r.0)
        .collect();
    for k in items {
        let of_k: Vec<_> = offers.iter().copied().filter(|o| o.0 == k).collect();
        for o in of_k.iter().filter(|o| keep(o, &of_k)) {
            out.push((k, o.1));
        }
    }
    out.sort();
    out.iter().map(|(k, v)| format!("{k} | {v}")).collect()
}

fn answer(s: &Session, sql: &str) -> Vec<String> {
    let batches = s.sql(sql).and_then(|d| d.collect()).expect("query");
    lines(&batches)
}

const Q2_SHAPE: &str = "SELECT item.k, offer.vid FROM item, offer, vendor
    WHERE item.k = offer.k AND offer.vid = vendor.vid AND vendor.region = 'east'
      AND item.grp = 'a'
      AND offer.price = (SELECT min(offer.price) FROM offer, vendor
                         WHERE item.k = offer.k AND offer.vid = vendor.vid
                           AND vendor.region = 'east')
    ORDER BY item.k, offer.vid";

#[test]
fn min_over_the_outer_join_is_computed_once() {
    let s = session();
    let expected = by_hand(|o, of_k| {
        let cheapest = of_k.iter().filter(|x| east(x.1)).map(|x| x.2).min();
        east(o.1) && Some(o.2) == cheapest
    });
    assert!(expected.len() > 5, "{expected:?}");
    assert_eq!(answer(&s, Q2_SHAPE), expected);
    assert_shared_once(&s, Q2_SHAPE);

    // With other names for the subquery's tables: the same answer, computed once too.
    let renamed = Q2_SHAPE
        .replace(
            "min(offer.price) FROM offer, vendor",
            "min(o2.price) FROM offer o2, vendor v2",
        )
        .replace(
            "item.k = offer.k AND offer.vid = vendor.vid\n                           AND vendor.region",
            "item.k = o2.k AND o2.vid = v2.vid\n                           AND v2.region",
        );
    assert!(renamed.contains("v2.region"), "{renamed}");
    assert_eq!(answer(&s, &renamed), expected);
    assert_shared_once(&s, &renamed);

    // A subquery term the outer query lacks (true of every row here) keeps the usual
    // decorrelation: the same answer, nothing shared.
    let usual = renamed.replace("v2.region = 'east'", "v2.region = 'east' AND o2.price >= 0");
    assert_ne!(usual, renamed);
    assert_eq!(answer(&s, &usual), expected);
    assert!(!explain_analyze(&s, &usual).contains("SharedExec"));

    // Aliases in the outer query only.
    let outer_aliases = "SELECT i.k, o.vid FROM item i, offer o, vendor v
        WHERE i.k = o.k AND o.vid = v.vid AND v.region = 'east' AND i.grp = 'a'
          AND o.price = (SELECT min(price) FROM offer, vendor
                         WHERE i.k = offer.k AND offer.vid = vendor.vid
                           AND vendor.region = 'east')
        ORDER BY i.k, o.vid";
    assert_eq!(answer(&s, outer_aliases), expected);
    assert_shared_once(&s, outer_aliases);
}

/// Keys 0 and 8 have two group-`a` items, so the outer rows hold their offers twice;
/// the average does not change.
#[test]
fn avg_ignores_repeated_outer_rows() {
    let s = session();
    let sql = "SELECT item.k, offer.vid FROM item, offer
        WHERE item.k = offer.k AND item.grp = 'a'
          AND offer.price < (SELECT avg(price) FROM offer WHERE offer.k = item.k)
        ORDER BY item.k, offer.vid";
    let expected = by_hand(|o, of_k| {
        let avg = of_k.iter().map(|x| x.2 as f64).sum::<f64>() / of_k.len() as f64;
        (o.2 as f64) < avg
    });
    assert_eq!(answer(&s, sql), expected);
    assert_shared_once(&s, sql);
}

/// SUM over the outer rows would count keys 0 and 8's offers twice.
#[test]
fn sum_is_not_taken_over_the_outer_rows() {
    let s = session();
    let sql = "SELECT item.k, offer.vid FROM item, offer
        WHERE item.k = offer.k AND item.grp = 'a'
          AND offer.price * 10 > (SELECT sum(price) FROM offer WHERE offer.k = item.k)
        ORDER BY item.k, offer.vid";
    let expected = by_hand(|o, of_k| o.2 * 10 > of_k.iter().map(|x| x.2).sum::<i64>());
    assert_eq!(answer(&s, sql), expected);
    assert!(!explain_analyze(&s, sql).contains("SharedExec"));
}

/// An outer term on `offer` that the subquery lacks (or the other way round) would change
/// which offers the maximum is taken over.
#[test]
fn different_terms_on_subquery_tables_keep_the_subquery() {
    let s = session();
    let outer_only = "SELECT item.k, offer.vid FROM item, offer
        WHERE item.k = offer.k AND item.grp = 'a' AND offer.vid < 5
          AND offer.price = (SELECT max(price) FROM offer WHERE offer.k = item.k)
        ORDER BY item.k, offer.vid";
    let max = |of_k: &[(i64, i64, i64)], low: bool| {
        of_k.iter().filter(|x| !low || x.1 < 5).map(|x| x.2).max()
    };
    let expected = by_hand(|o, of_k| o.1 < 5 && Some(o.2) == max(of_k, false));
    assert_eq!(answer(&s, outer_only), expected);
    assert!(!explain_analyze(&s, outer_only).contains("SharedExec"));

    let inner_only = "SELECT item.k, offer.vid FROM item, offer
        WHERE item.k = offer.k AND item.grp = 'a'
          AND offer.price = (SELECT max(price) FROM offer WHERE offer.k = item.k
                                                          AND offer.vid < 5)
        ORDER BY item.k, offer.vid";
    let expected = by_hand(|o, of_k| Some(o.2) == max(of_k, true));
    assert!(
        expected.iter().any(|l| l.ends_with(|c: char| c >= '5')),
        "some offer from vendors 5..9 ties the maximum of 0..4: {expected:?}"
    );
    assert_eq!(answer(&s, inner_only), expected);
    assert!(!explain_analyze(&s, inner_only).contains("SharedExec"));
}

/// `b(k, v)`: key 1 has values 5, NULL, 5; key 2 only NULL; a NULL key has 9; key 3 has
/// 7 and 2.
fn register_nullable_b(s: &Session) {
    register(
        s,
        "b",
        vec![
            (
                "k",
                Arc::new(Int64Array::from(vec![
                    Some(1),
                    Some(1),
                    Some(1),
                    Some(2),
                    None,
                    Some(3),
                    Some(3),
                ])),
            ),
            (
                "v",
                Arc::new(Int64Array::from(vec![
                    Some(5),
                    None,
                    Some(5),
                    None,
                    Some(9),
                    Some(7),
                    Some(2),
                ])),
            ),
        ],
    );
}

/// NULL keys match nothing, and NULL values are skipped by MAX as in the subquery: key 2's
/// only value is NULL, so its maximum is NULL and no row of it compares equal.
#[test]
fn null_keys_and_values_behave_as_in_the_subquery() {
    let s = Session::new();
    register(
        &s,
        "a",
        vec![
            (
                "k",
                Arc::new(Int64Array::from(vec![Some(1), Some(2), None, Some(3)])),
            ),
            ("tag", Arc::new(StringArray::from(vec!["x"; 4]))),
        ],
    );
    register_nullable_b(&s);
    let sql = "SELECT a.k, b.v FROM a, b WHERE a.k = b.k AND a.tag = 'x'
                 AND b.v = (SELECT max(b.v) FROM b WHERE b.k = a.k)
               ORDER BY a.k, b.v";
    assert_eq!(answer(&s, sql), vec!["1 | 5", "1 | 5", "3 | 7"]);
    assert_shared_once(&s, sql);
}

/// The outer query reads `offer` twice: which of the two the subquery's `offer` is cannot
/// be told, so the subquery is decorrelated the usual way.
#[test]
fn a_table_read_twice_keeps_the_subquery() {
    let s = session();
    let sql = "SELECT item.k, o1.vid FROM item, offer o1, offer o2
        WHERE item.k = o1.k AND o1.k = o2.k AND o1.vid = o2.vid AND item.grp = 'a'
          AND o1.price = (SELECT max(o.price) FROM offer o WHERE o.k = item.k)
        ORDER BY item.k, o1.vid";
    let expected = by_hand(|o, of_k| Some(o.2) == of_k.iter().map(|x| x.2).max());
    assert_eq!(answer(&s, sql), expected);
    assert!(!explain_analyze(&s, sql).contains("SharedExec"));
}

/// The subquery reads every outer table, correlated on one of their own columns (each
/// key's best east offer): the outer rows are exactly the subquery's rows, computed once.
#[test]
fn a_key_of_the_subquery_tables_themselves() {
    let s = session();
    let sql = "SELECT o.k, o.vid FROM offer o, vendor v
        WHERE o.vid = v.vid AND v.region = 'east'
          AND o.price = (SELECT max(o2.price) FROM offer o2, vendor v2
                         WHERE o2.vid = v2.vid AND v2.region = 'east' AND o2.k = o.k)
        ORDER BY o.k, o.vid";
    let offers = offer_rows();
    let mut expected: Vec<(i64, i64)> = offers
        .iter()
        .filter(|o| east(o.1))
        .filter(|o| {
            let best = offers
                .iter()
                .filter(|x| x.0 == o.0 && east(x.1))
                .map(|x| x.2)
                .max();
            Some(o.2) == best
        })
        .map(|o| (o.0, o.1))
        .collect();
    expected.sort();
    let expected: Vec<String> = expected.iter().map(|(k, v)| format!("{k} | {v}")).collect();
    assert!(expected.len() >= ITEMS, "{expected:?}");
    assert_eq!(answer(&s, sql), expected);
    assert_shared_once(&s, sql);
}

/// Correlated on its own table's key: rows with a NULL key have an empty subquery (no
/// maximum), and a key whose values are all NULL has none either.
#[test]
fn a_null_key_of_the_same_table_matches_nothing() {
    let s = Session::new();
    register_nullable_b(&s);
    let sql = "SELECT b.k, b.v FROM b WHERE b.v = (SELECT max(b2.v) FROM b b2 WHERE b2.k = b.k)
               ORDER BY b.k, b.v";
    assert_eq!(answer(&s, sql), vec!["1 | 5", "1 | 5", "3 | 7"]);
    // Taken over the outer rows: joined back (inner), not left-joined as usual. With no
    // join among them they are not shared, so the scan runs twice as it did before.
    let plan = s.sql(sql).expect("plan").logical_plan().display_indent();
    assert!(
        plan.contains("Join: Inner") && !plan.contains("Join: Left"),
        "{plan}"
    );
}
