//! The `nexmark` connector: `CREATE TABLE ... WITH ('connector' = 'nexmark',
//! 'nexmark.table' = 'person' | 'auction' | 'bid', ...)` — schema and option errors, row
//! counts by Nexmark's proportions, determinism across seeds and partitionings,
//! referential integrity between the three tables, event time, throttling, and unbounded
//! tables read as streams.

use std::collections::HashSet;
use std::time::{Duration, Instant};

use arrow::array::{Array, AsArray, RecordBatch};
use arrow::compute::concat_batches;
use arrow::datatypes::{Int64Type, TimestampMicrosecondType};
use sluice::catalog::datagen::BASE_TIMESTAMP_MICROS;
use sluice::{Session, SessionConfig};

const PERSON: &str = "id BIGINT, name VARCHAR, emailAddress VARCHAR, creditCard VARCHAR, \
                      city VARCHAR, state VARCHAR, dateTime TIMESTAMP, extra VARCHAR";
const AUCTION: &str = "id BIGINT, itemName VARCHAR, description VARCHAR, initialBid BIGINT, \
                       reserve BIGINT, dateTime TIMESTAMP, expires TIMESTAMP, seller BIGINT, \
                       category BIGINT, extra VARCHAR";
const BID: &str = "auction BIGINT, bidder BIGINT, price BIGINT, channel VARCHAR, url VARCHAR, \
                   dateTime TIMESTAMP(3), extra VARCHAR";

fn session(partitions: usize) -> Session {
    Session::with_config(SessionConfig::default().with_target_partitions(partitions))
}

/// Creates the three tables over one sequence of `events` events (empty = unbounded)
/// with extra options `more` (e.g. `, 'seed' = '7'`).
fn create_all(s: &Session, events: &str, more: &str) {
    let events = if events.is_empty() {
        String::new()
    } else {
        format!(", 'events' = '{events}'")
    };
    for (name, cols) in [("person", PERSON), ("auction", AUCTION), ("bid", BID)] {
        run(
            s,
            &format!(
                "CREATE TABLE {name} ({cols}) WITH ('connector' = 'nexmark', \
                 'nexmark.table' = '{name}'{events}{more})"
            ),
        );
    }
}

/// Runs `sql` and returns its result as one batch.
fn run(s: &Session, sql: &str) -> RecordBatch {
    let df = s.sql(sql).unwrap_or_else(|e| panic!("{sql}: {e}"));
    let schema = df.result_schema();
    let batches = df.collect().unwrap_or_else(|e| panic!("{sql}: {e}"));
    concat_batches(&schema, &batches).expect("concat")
}

fn err(s: &Session, sql: &str) -> String {
    match s.sql(sql).and_then(|df| df.collect()) {
        Ok(b) => panic!("expected an error for {sql}, got {} batches", b.len()),
        Err(e) => e.to_string(),
    }
}

fn i64s(b: &RecordBatch, col: usize) -> Vec<i64> {
    let c = b.column(col).as_primitive::<Int64Type>();
    assert_eq!(c.null_count(), 0);
    c.values().to_vec()
}

fn times(b: &RecordBatch, col: usize) -> Vec<i64> {
    let c = b.column(col).as_primitive::<TimestampMicrosecondType>();
    assert_eq!(c.null_count(), 0);
    c.values().to_vec()
}

#[test]
fn row_counts_follow_nexmark_proportions() {
    let s = session(3);
    create_all(&s, "50000", "");
    for (table, rows) in [("person", 1000), ("auction", 3000), ("bid", 46000)] {
        let b = run(&s, &format!("SELECT COUNT(*) FROM {table}"));
        assert_eq!(i64s(&b, 0), vec![rows], "{table}");
        let t = s.catalog().get(table).expect("table");
        let sluice::catalog::CatalogEntry::Table(t) = t else {
            panic!("{table} is a table")
        };
        assert_eq!(t.row_count(), Some(rows as usize));
        assert!(t.is_bounded());
    }
    // A partial cycle: events 0..103 are persons 0, 50, 100, auctions 1-3, 51-53, 101-102.
    let s = session(2);
    create_all(&s, "103", "");
    let counts: Vec<i64> = ["person", "auction", "bid"]
        .iter()
        .map(|t| i64s(&run(&s, &format!("SELECT COUNT(*) FROM {t}")), 0)[0])
        .collect();
    assert_eq!(counts, vec![3, 8, 92]);
    let ids = i64s(&run(&s, "SELECT id FROM auction ORDER BY id"), 0);
    assert_eq!(ids, (1000..1008).collect::<Vec<i64>>());
}

#[test]
fn same_seed_same_rows_across_partitionings_and_batch_sizes() {
    let all = |partitions: usize, batch: usize, seed: &str| -> Vec<RecordBatch> {
        let cfg = SessionConfig {
            batch_size: batch,
            ..SessionConfig::default()
        }
        .with_target_partitions(partitions);
        let s = Session::with_config(cfg);
        create_all(&s, "20000", &format!(", 'seed' = '{seed}'"));
        ["person", "auction", "bid"]
            .iter()
            .map(|t| run(&s, &format!("SELECT * FROM {t} ORDER BY dateTime")))
            .collect()
    };
    let a = all(1, 8192, "42");
    assert_eq!(a[2].num_rows(), 18400);
    assert_eq!(a, all(4, 1000, "42"));
    assert_eq!(a, all(3, 333, "42"));
    let other = all(2, 8192, "43");
    // Ids and event times are the same; the random columns differ.
    assert_eq!(a[0].column(0), other[0].column(0));
    assert_eq!(a[2].column(5), other[2].column(5));
    for (t, col) in [(0, 1), (1, 3), (2, 2), (2, 6)] {
        assert_ne!(
            a[t].column(col),
            other[t].column(col),
            "table {t} column {col}"
        );
    }
}

#[test]
fn bids_and_auctions_refer_to_existing_rows() {
    let s = session(3);
    create_all(&s, "200000", ", 'seed' = '5'");
    let persons = run(&s, "SELECT id, dateTime FROM person");
    let person_ids: HashSet<i64> = i64s(&persons, 0).into_iter().collect();
    assert_eq!(person_ids.len(), 4000);
    let auctions = run(
        &s,
        "SELECT id, seller, category, dateTime, expires FROM auction",
    );
    let auction_ids: HashSet<i64> = i64s(&auctions, 0).into_iter().collect();
    assert_eq!(auction_ids.len(), 12000);
    let max_person = *person_ids.iter().max().expect("persons");
    let max_auction = *auction_ids.iter().max().expect("auctions");
    assert_eq!((max_person, max_auction), (4999, 12999));
    for seller in i64s(&auctions, 1) {
        assert!(person_ids.contains(&seller), "seller {seller}");
    }
    assert!(i64s(&auctions, 2).iter().all(|c| (10..15).contains(c)));
    let (created, expires) = (times(&auctions, 3), times(&auctions, 4));
    assert!(created.iter().zip(&expires).all(|(c, e)| e > c));

    let bids = run(&s, "SELECT auction, bidder, price FROM bid");
    let (auction, bidder) = (i64s(&bids, 0), i64s(&bids, 1));
    assert!(auction
        .iter()
        .all(|a| auction_ids.contains(a) && *a <= max_auction));
    assert!(bidder
        .iter()
        .all(|b| person_ids.contains(b) && *b <= max_person));
    assert!(i64s(&bids, 2)
        .iter()
        .all(|p| (100..=100_000_000).contains(p)));
    // Hot auctions (first of each group of 100) get about half of the bids, hot bidders
    // (second of each group of 100 people) about three quarters.
    let n = auction.len() as f64;
    let hot_auction = auction.iter().filter(|a| (*a - 1000) % 100 == 0).count() as f64 / n;
    let hot_bidder = bidder.iter().filter(|b| (*b - 1000) % 100 == 1).count() as f64 / n;
    assert!((0.45..0.6).contains(&hot_auction), "{hot_auction}");
    assert!((0.7..0.8).contains(&hot_bidder), "{hot_bidder}");

    // Every bid joins its auction, created no later than the bid.
    let b = run(
        &s,
        "SELECT COUNT(*), SUM(CASE WHEN b.dateTime >= a.dateTime THEN 1 ELSE 0 END) \
         FROM bid b JOIN auction a ON b.auction = a.id",
    );
    assert_eq!(i64s(&b, 0), vec![184_000]);
    assert_eq!(i64s(&b, 1), vec![184_000]);
}

#[test]
fn event_time_advances_with_the_event_number() {
    let s = session(1);
    create_all(&s, "50000", "");
    // Person p is event 50 p: 100 µs per event at the default 10 000 events/s.
    let p = run(&s, "SELECT id, dateTime FROM person");
    let expected: Vec<i64> = (0..1000)
        .map(|p| BASE_TIMESTAMP_MICROS + p * 5000)
        .collect();
    assert_eq!(times(&p, 1), expected);
    assert_eq!(i64s(&p, 0), (1000..2000).collect::<Vec<i64>>());
    // One partition yields bids in event order: strictly increasing event time.
    let b = run(&s, "SELECT dateTime FROM bid");
    let t = times(&b, 0);
    assert_eq!(t.len(), 46000);
    assert!(t.windows(2).all(|w| w[0] < w[1]));
    assert_eq!(t[0], BASE_TIMESTAMP_MICROS + 400);
    assert_eq!(t[45999], BASE_TIMESTAMP_MICROS + 49_999 * 100);

    let s = session(2);
    run(
        &s,
        &format!(
            "CREATE TABLE person ({PERSON}) WITH ('connector' = 'nexmark', \
             'nexmark.table' = 'person', 'events' = '500', 'event-time-rate' = '50')"
        ),
    );
    let t = times(&run(&s, "SELECT dateTime FROM person ORDER BY id"), 0);
    let expected: Vec<i64> = (0..10)
        .map(|p| BASE_TIMESTAMP_MICROS + p * 1_000_000)
        .collect();
    assert_eq!(t, expected);
}

#[test]
fn windows_over_bids_in_batch_and_streaming_mode() {
    for mode in ["batch", "streaming"] {
        let s = session(2);
        run(
            &s,
            &format!(
                "CREATE TABLE bid ({BID}, WATERMARK FOR dateTime AS dateTime - INTERVAL '1' \
                 SECOND) WITH ('connector' = 'nexmark', 'nexmark.table' = 'bid', \
                 'events' = '50000')"
            ),
        );
        s.sql(&format!("SET 'execution.runtime-mode' = '{mode}'"))
            .expect("set");
        // 10 000 events per second of event time, 46 in 50 of them bids.
        let b = run(
            &s,
            "SELECT window_start, COUNT(*) FROM TABLE(TUMBLE(TABLE bid, DESCRIPTOR(dateTime), \
             INTERVAL '1' SECOND)) GROUP BY window_start, window_end",
        );
        let mut windows: Vec<(i64, i64)> = times(&b, 0).into_iter().zip(i64s(&b, 1)).collect();
        windows.sort();
        let expected: Vec<(i64, i64)> = (0..5)
            .map(|w| (BASE_TIMESTAMP_MICROS + w * 1_000_000, 9200))
            .collect();
        assert_eq!(windows, expected, "{mode}");
    }
}

#[test]
fn unbounded_table_streams() {
    let s = session(2);
    create_all(&s, "", ", 'seed' = '1'");
    let df = s
        .sql("SELECT auction, price FROM bid WHERE price > 1000")
        .expect("plan");
    assert!(df.is_streaming());
    let e = df.collect().expect_err("collect of unbounded").to_string();
    assert!(e.contains("unbounded"), "{e}");
    let mut rows = 0;
    for b in df.execute_iter().expect("stream").take(4) {
        let b = b.expect("batch");
        assert!(i64s(&b, 1).iter().all(|p| *p > 1000));
        rows += b.num_rows();
    }
    assert!(rows > 0);
    let t = s.catalog().get("person").expect("person");
    let sluice::catalog::CatalogEntry::Table(t) = t else {
        panic!("table")
    };
    assert!(!t.is_bounded());
    assert_eq!(t.row_count(), None);
    s.sql("SET 'execution.runtime-mode' = 'batch'")
        .expect("set");
    let e = s
        .sql("SELECT * FROM person")
        .expect("plan")
        .execute_iter()
        .err()
        .expect("batch over unbounded fails")
        .to_string();
    assert!(e.contains("unbounded") && e.contains("streaming"), "{e}");
}

#[test]
fn rate_throttles_the_scan() {
    let s = session(2);
    // 2 000 events at 4 000 events/s: about half a second, whatever the table.
    create_all(&s, "2000", ", 'rate' = '4000'");
    let start = Instant::now();
    let b = run(&s, "SELECT COUNT(*) FROM bid");
    assert_eq!(i64s(&b, 0), vec![1840]);
    assert!(
        start.elapsed() >= Duration::from_millis(400),
        "{:?}",
        start.elapsed()
    );
    // The rate changes nothing but the pace.
    let unthrottled = session(2);
    create_all(&unthrottled, "2000", "");
    let q = "SELECT * FROM auction ORDER BY id";
    assert_eq!(run(&s, q), run(&unthrottled, q));
}

#[test]
fn explain_shows_the_nexmark_source() {
    let s = session(2);
    create_all(&s, "1000", ", 'seed' = '9', 'rate' = '100000'");
    let b = run(&s, "EXPLAIN SELECT price FROM bid");
    let text: Vec<String> = (0..b.num_columns())
        .flat_map(|c| {
            let col = b.column(c).as_string::<i32>();
            (0..col.len())
                .map(|i| col.value(i).to_string())
                .collect::<Vec<_>>()
        })
        .collect();
    let text = text.join("\n");
    assert!(
        text.contains(
            "NexmarkExec: table=bid, nexmark(table=bid, events=1000, seed=9, rate=100000)"
        ),
        "{text}"
    );
}

fn create_err(table: &str, cols: &str, opts: &str) -> String {
    let s = session(1);
    let sql = format!("CREATE TABLE {table} ({cols}) WITH ('connector' = 'nexmark'{opts})");
    err(&s, &sql)
}

#[test]
fn schema_must_be_the_standard_one() {
    let bid = ", 'nexmark.table' = 'bid'";
    // Any order and case is fine, as are computed columns.
    let s = session(1);
    run(
        &s,
        "CREATE TABLE b (DATETIME TIMESTAMP, extra VARCHAR, url VARCHAR, channel VARCHAR, \
         price BIGINT, bidder BIGINT, auction BIGINT, cents AS price * 100) \
         WITH ('connector' = 'nexmark', 'nexmark.table' = 'bid', 'events' = '100')",
    );
    let b = run(&s, "SELECT COUNT(*), SUM(cents) - SUM(price) * 100 FROM b");
    assert_eq!(i64s(&b, 0), vec![92]);
    assert_eq!(i64s(&b, 1), vec![0]);

    let e = create_err("b", "auction BIGINT, bidder BIGINT, price BIGINT", bid);
    assert!(e.contains("column 'channel' is missing"), "{e}");
    assert!(
        e.contains("auction BIGINT, bidder BIGINT, price BIGINT, channel VARCHAR, url VARCHAR, dateTime TIMESTAMP, extra VARCHAR"),
        "{e}"
    );
    let e = create_err("b", &BID.replace("price BIGINT", "price INT"), bid);
    assert!(
        e.contains("column 'price' is Int32, expected BIGINT"),
        "{e}"
    );
    let e = create_err("b", &format!("{BID}, note VARCHAR"), bid);
    assert!(e.contains("column 'note' is not one of them"), "{e}");
    let e = create_err("b", &BID.replace("bidder", "biddr"), bid);
    assert!(
        e.contains("'biddr'") && e.contains("did you mean bidder"),
        "{e}"
    );
    let e = create_err("p", BID, ", 'nexmark.table' = 'person'");
    assert!(
        e.contains("id BIGINT, name VARCHAR, emailAddress VARCHAR"),
        "{e}"
    );
    let e = create_err(
        "a",
        &AUCTION.replace("expires TIMESTAMP", "expires VARCHAR"),
        ", 'nexmark.table' = 'auction'",
    );
    assert!(
        e.contains("column 'expires' is Utf8, expected TIMESTAMP"),
        "{e}"
    );
}

#[test]
fn option_errors_name_the_option() {
    let cases = [
        ("", "needs option 'nexmark.table'"),
        (
            ", 'nexmark.table' = 'bids'",
            "must be one of 'person', 'auction', 'bid', got 'bids'",
        ),
        (
            ", 'nexmark.table' = 'bid', 'event' = '5'",
            "unknown nexmark option 'event'",
        ),
        (
            ", 'nexmark.table' = 'bid', 'event' = '5'",
            "did you mean events?",
        ),
        (
            ", 'nexmark.table' = 'bid', 'bogus' = '5'",
            "(options: connector, nexmark.table, events, rate, event-time-rate, seed)",
        ),
        (
            ", 'nexmark.table' = 'bid', 'events.num' = '5'",
            "'events' here",
        ),
        (
            ", 'nexmark.table' = 'bid', 'events' = '-5'",
            "'events' must be a non-negative integer, got '-5'",
        ),
        (
            ", 'nexmark.table' = 'bid', 'rate' = 'fast'",
            "'rate' must be a non-negative integer, got 'fast'",
        ),
        (
            ", 'nexmark.table' = 'bid', 'event-time-rate' = '0'",
            "'event-time-rate' must be a positive integer",
        ),
        (
            ", 'nexmark.table' = 'bid', 'seed' = 'x'",
            "'seed' must be an integer",
        ),
    ];
    for (opts, want) in cases {
        let e = create_err("b", BID, opts);
        assert!(e.contains(want), "{opts}: {e}");
    }
    let s = session(1);
    let e = err(&s, "CREATE TABLE t (x INT) WITH ('connector' = 'nexmarc')");
    assert!(e.contains("did you mean nexmark"), "{e}");
}

#[test]
fn nexmark_tables_are_read_only() {
    let s = session(1);
    create_all(&s, "100", "");
    let e = err(&s, "INSERT INTO bid SELECT * FROM bid");
    assert!(e.contains("read-only") && e.contains("nexmark"), "{e}");
}
