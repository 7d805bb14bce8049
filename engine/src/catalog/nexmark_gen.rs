//! The Nexmark event generator behind the `nexmark` connector ([`super::nexmark`]).
//!
//! Nexmark models an online auction site as one sequence of events numbered 0, 1, 2, ...
//! In every run of 50 events, event 0 is a new person, events 1–3 are new auctions and
//! events 4–49 are bids. Person and auction ids follow from the event number (person `p`
//! is event `50p`, auction `a` is event `50(a / 3) + 1 + a % 3`), so every table can
//! map its own row numbers straight to event numbers and never generates another kind's
//! rows. References look back only: a new auction's seller and a bid's bidder are people
//! already created (mostly among the last 1 000), a bid's auction is among the last 100
//! auctions, and "hot" sellers, bidders and auctions get most of the traffic, with
//! Nexmark's default ratios.
//!
//! The algorithm follows the Nexmark generator of Apache Beam and of the Flink Nexmark
//! benchmark (`GeneratorConfig`, `PersonGenerator`, `AuctionGenerator`, `BidGenerator`),
//! but the random numbers differ: Nexmark seeds `java.util.Random` with the event id and
//! draws the fields in order, whereas here every field is hashed from `(seed, field,
//! event number)` with datagen's counter-based SplitMix64 streams. A column can therefore
//! be generated on its own (only projected columns are), and the values do not depend on
//! partitioning or batch size.

use std::sync::{Arc, OnceLock};

use arrow::array::{ArrayRef, Int64Array, PrimitiveArray, StringArray};
use arrow::buffer::{Buffer, OffsetBuffer, ScalarBuffer};
use arrow::datatypes::{DataType, TimestampMicrosecondType};

use super::datagen::{at, mix, stream_key, unit, BASE_TIMESTAMP_MICROS, GOLDEN};
use super::nexmark::Field;
use crate::error::{Result, SluiceError};

/// Events per cycle: 1 person, 3 auctions, 46 bids.
pub const TOTAL_PROPORTION: u64 = 50;
/// Id of the first person.
pub const FIRST_PERSON_ID: i64 = 1000;
/// Id of the first auction.
pub const FIRST_AUCTION_ID: i64 = 1000;
/// Smallest auction category.
pub const FIRST_CATEGORY_ID: i64 = 10;
/// Default events per second of event time (Nexmark's default first-event rate).
pub const DEFAULT_EVENT_TIME_RATE: u64 = 10_000;

const NUM_CATEGORIES: u64 = 5;
/// Random sellers and bidders are drawn from the most recent this many people.
const NUM_ACTIVE_PEOPLE: u64 = 1000;
/// Random bids go to one of the most recent this many auctions.
const NUM_IN_FLIGHT_AUCTIONS: u64 = 100;
/// A bid goes to a hot auction with probability 1 - 1/2.
const HOT_AUCTION_RATIO: u64 = 2;
/// An auction has a hot seller with probability 1 - 1/4.
const HOT_SELLERS_RATIO: u64 = 4;
/// A bid comes from a hot bidder with probability 1 - 1/4.
const HOT_BIDDERS_RATIO: u64 = 4;
/// The hot auction / seller / bidder is the first (bidder: second) of the latest group of
/// this many ids.
const HOT_GROUP: u64 = 100;
/// A bid comes through a hot channel with probability 1 - 1/2.
const HOT_CHANNELS_RATIO: u64 = 2;
/// Number of other channels.
const CHANNELS: u64 = 10_000;
const HOT_CHANNELS: [&str; 4] = ["Google", "Facebook", "Baidu", "Apple"];
const AVG_PERSON_BYTES: u64 = 200;
const AVG_AUCTION_BYTES: u64 = 500;
const AVG_BID_BYTES: u64 = 100;
/// Auctions last on average until this many more events have passed (100 auctions).
const AUCTION_HORIZON_EVENTS: u64 = NUM_IN_FLIGHT_AUCTIONS * TOTAL_PROPORTION / 3;

const US_STATES: [&str; 6] = ["AZ", "CA", "ID", "OR", "WA", "WY"];
const US_CITIES: [&str; 10] = [
    "Phoenix",
    "Los Angeles",
    "San Francisco",
    "Boise",
    "Portland",
    "Bend",
    "Redmond",
    "Seattle",
    "Kent",
    "Cheyenne",
];
const FIRST_NAMES: [&str; 11] = [
    "Peter", "Paul", "Luke", "John", "Saul", "Vicky", "Kate", "Julie", "Sarah", "Deiter", "Walter",
];
const LAST_NAMES: [&str; 9] = [
    "Shultz", "Abrams", "Spencer", "White", "Bartels", "Walton", "Smith", "Jones", "Noris",
];

/// Which of the three Nexmark tables.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// New people: one event in 50.
    Person,
    /// New auctions: three events in 50.
    Auction,
    /// Bids: 46 events in 50.
    Bid,
}

impl Kind {
    /// All kinds, in event order within a cycle.
    pub const ALL: [Kind; 3] = [Kind::Person, Kind::Auction, Kind::Bid];

    /// The table name (`person`, `auction`, `bid`).
    pub fn name(self) -> &'static str {
        match self {
            Kind::Person => "person",
            Kind::Auction => "auction",
            Kind::Bid => "bid",
        }
    }

    /// The kind named `s` (case-insensitive).
    pub fn parse(s: &str) -> Option<Kind> {
        Kind::ALL
            .into_iter()
            .find(|k| k.name().eq_ignore_ascii_case(s.trim()))
    }

    /// (offset of this kind's first event in a cycle, events of this kind per cycle).
    fn slot(self) -> (u64, u64) {
        match self {
            Kind::Person => (0, 1),
            Kind::Auction => (1, 3),
            Kind::Bid => (4, 46),
        }
    }

    /// Rows of this kind among events `0..events`.
    pub fn rows_in(self, events: u64) -> u64 {
        let (offset, count) = self.slot();
        events / TOTAL_PROPORTION * count
            + (events % TOTAL_PROPORTION)
                .saturating_sub(offset)
                .min(count)
    }

    /// The event number of this kind's row `row` (saturating far beyond any real run).
    pub fn event_of(self, row: u64) -> u64 {
        let (offset, count) = self.slot();
        (row / count)
            .saturating_mul(TOTAL_PROPORTION)
            .saturating_add(offset + row % count)
    }
}

/// Independent random streams, one per random choice (columns that must agree, such as
/// `channel` and `url`, read the same stream).
#[derive(Debug, Clone, Copy)]
enum Stream {
    Name,
    Email,
    Card,
    City,
    State,
    PersonExtra,
    Item,
    Desc,
    Initial,
    Reserve,
    Expires,
    Seller,
    Category,
    AuctionExtra,
    BidAuction,
    Bidder,
    Price,
    Channel,
    ChannelUrl,
    BidExtra,
}

const STREAMS: usize = Stream::BidExtra as usize + 1;

/// Salt that keeps Nexmark's streams apart from datagen's column streams.
const STREAM_SALT: u64 = 0x4E58_4D4B_0000_0000;

/// The generator of one event sequence: a pure function of `(seed, event number)`.
#[derive(Debug)]
pub struct EventGen {
    keys: [u64; STREAMS],
    event_time_rate: u64,
    /// The URL of each hot channel, then of each other channel, built on first use.
    urls: OnceLock<Vec<Box<[u8]>>>,
}

/// `[0, n)` from a uniform word (`n > 0`).
fn below(w: u64, n: u64) -> u64 {
    ((u128::from(w) * u128::from(n)) >> 64) as u64
}

/// The `k`-th derived word of `w` (`k >= 1`), independent of `w` and of other `k`.
fn sub(w: u64, k: u64) -> u64 {
    mix(w ^ k.wrapping_mul(GOLDEN))
}

/// Base-0 id of the newest person at event `e` (the event's own person if it is one).
fn last_person(e: u64) -> u64 {
    e / TOTAL_PROPORTION
}

/// Base-0 id of the newest auction at auction or bid event `e`.
fn last_auction(e: u64) -> u64 {
    let offset = (e % TOTAL_PROPORTION).clamp(1, 3) - 1;
    e / TOTAL_PROPORTION * 3 + offset
}

/// A random existing person among the most recent [`NUM_ACTIVE_PEOPLE`] at event `e`.
/// Unlike Nexmark, no "lead" ids past the newest person: every reference exists.
fn recent_person(e: u64, w: u64) -> u64 {
    let people = last_person(e) + 1;
    let active = people.min(NUM_ACTIVE_PEOPLE);
    people - active + below(w, active)
}

/// A price in cents, log-uniform from 1.00 to 1 000 000.00 (Nexmark's `nextPrice`).
fn price(w: u64) -> i64 {
    (10f64.powf(unit(w) * 6.0) * 100.0).round() as i64
}

/// Length of [`random_string`] for `w` and `max`: 3 to `max - 1`.
fn random_len(w: u64, max: u64) -> u64 {
    3 + below(w, max - 3)
}

/// Lowercase letters with `special` in about one position in 13 (never first or last).
fn random_string(w: u64, max: u64, special: u8, out: &mut Vec<u8>) {
    let len = random_len(w, max);
    let mut state = w;
    let mut word = 0;
    for j in 0..len {
        if j % 4 == 0 {
            state = state.wrapping_add(GOLDEN);
            word = mix(state);
        }
        let c = (word >> ((j % 4) * 16)) & 0xFFFF;
        if j > 0 && j + 1 < len && c % 13 == 0 {
            out.push(special);
        } else {
            out.push(b'a' + ((c / 13) % 26) as u8);
        }
    }
}

/// `extra`: lowercase letters bringing a row of `current` bytes to `average` on average
/// (±20 %), as Nexmark's `nextExtra`.
fn extra(w: u64, current: u64, average: u64, out: &mut Vec<u8>) {
    let Some(room) = average.checked_sub(current) else {
        return;
    };
    let delta = (room + 2) / 5;
    let mut len = room - delta + if delta == 0 { 0 } else { below(w, 2 * delta) };
    out.reserve(len as usize);
    let mut state = w;
    // 13 letters per random word (26^13 < 2^64).
    let mut chunk = [0u8; 13];
    while len > 0 {
        state = state.wrapping_add(GOLDEN);
        let mut word = mix(state);
        for c in &mut chunk {
            *c = b'a' + (word % 26) as u8;
            word /= 26;
        }
        let take = len.min(13);
        out.extend_from_slice(&chunk[..take as usize]);
        len -= take;
    }
}

fn push_u64(out: &mut Vec<u8>, mut n: u64) {
    let mut digits = [0u8; 20];
    let mut i = digits.len();
    loop {
        i -= 1;
        digits[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    out.extend_from_slice(&digits[i..]);
}

/// A string column with `f(event, buffer)` appending each row's bytes (ASCII).
fn strings(events: &[u64], per_row: usize, f: impl Fn(u64, &mut Vec<u8>)) -> Result<ArrayRef> {
    let mut offsets = Vec::with_capacity(events.len() + 1);
    let mut bytes = Vec::with_capacity(events.len() * per_row);
    offsets.push(0i32);
    for &e in events {
        f(e, &mut bytes);
        offsets.push(i32::try_from(bytes.len()).map_err(|_| {
            SluiceError::exec("nexmark batch of strings exceeds 2 GiB; use a smaller batch size")
        })?);
    }
    let offsets = OffsetBuffer::new(ScalarBuffer::from(offsets));
    Ok(Arc::new(StringArray::try_new(
        offsets,
        Buffer::from_vec(bytes),
        None,
    )?))
}

fn ints(events: &[u64], f: impl Fn(u64) -> i64) -> ArrayRef {
    let values: ScalarBuffer<i64> = events.iter().map(|&e| f(e)).collect();
    Arc::new(Int64Array::new(values, None))
}

impl EventGen {
    /// The sequence of `seed` whose event time advances `event_time_rate` (> 0) events
    /// per second.
    pub fn new(seed: u64, event_time_rate: u64) -> Self {
        let mut keys = [0; STREAMS];
        for (i, k) in keys.iter_mut().enumerate() {
            *k = stream_key(seed, STREAM_SALT | i as u64, 0);
        }
        Self {
            keys,
            event_time_rate: event_time_rate.max(1),
            urls: OnceLock::new(),
        }
    }

    fn word(&self, s: Stream, e: u64) -> u64 {
        at(self.keys[s as usize], e)
    }

    /// Event time of event `e`: the base instant (2026-01-01) plus `e / rate` seconds, in
    /// microseconds.
    pub fn timestamp(&self, e: u64) -> i64 {
        let offset = u128::from(e) * 1_000_000 / u128::from(self.event_time_rate);
        BASE_TIMESTAMP_MICROS.saturating_add(i64::try_from(offset).unwrap_or(i64::MAX))
    }

    fn name_len(&self, e: u64) -> u64 {
        let w = self.word(Stream::Name, e);
        (FIRST_NAMES[below(w, 11) as usize].len()
            + 1
            + LAST_NAMES[below(sub(w, 1), 9) as usize].len()) as u64
    }

    fn email_len(&self, e: u64) -> u64 {
        let w = self.word(Stream::Email, e);
        random_len(sub(w, 1), 7) + 1 + random_len(sub(w, 2), 5) + 4
    }

    fn city(&self, e: u64) -> &'static str {
        US_CITIES[below(self.word(Stream::City, e), 10) as usize]
    }

    /// (hot, index): a hot channel index in 0..4 or another channel in 0..10 000.
    fn channel(&self, e: u64) -> (bool, u64) {
        let w = self.word(Stream::Channel, e);
        if below(w, HOT_CHANNELS_RATIO) > 0 {
            (true, below(sub(w, 1), HOT_CHANNELS.len() as u64))
        } else {
            (false, below(sub(w, 1), CHANNELS))
        }
    }

    /// The URL of hot channel `i` (`hot`) or of channel `i`: a pure function of the seed
    /// and the channel (Nexmark, too, keeps one URL per channel).
    fn url(&self, hot: bool, i: u64) -> &[u8] {
        let urls = self.urls.get_or_init(|| {
            let hot = (0..HOT_CHANNELS.len() as u64).map(|i| (true, i));
            hot.chain((0..CHANNELS).map(|i| (false, i)))
                .enumerate()
                .map(|(slot, (hot, i))| self.make_url(slot as u64, hot, i))
                .collect()
        });
        let slot = if hot {
            i
        } else {
            HOT_CHANNELS.len() as u64 + i
        };
        urls.get(slot as usize).map_or(&[], |u| u)
    }

    fn make_url(&self, slot: u64, hot: bool, i: u64) -> Box<[u8]> {
        let w = at(self.keys[Stream::ChannelUrl as usize], slot);
        let mut out = b"https://www.nexmark.com/".to_vec();
        for k in 1..=3 {
            random_string(sub(w, k), 5, b'_', &mut out);
            out.push(b'/');
        }
        out.extend_from_slice(b"item.htm?query=1");
        if !hot && below(sub(w, 4), 10) > 0 {
            out.extend_from_slice(b"&channel_id=");
            // Nexmark's channel id: |Integer.reverse(channel)|.
            push_u64(
                &mut out,
                i64::from((i as u32).reverse_bits() as i32).unsigned_abs(),
            );
        }
        out.into_boxed_slice()
    }

    /// The column `field` for the events `events` (all of `field`'s kind); `data_type` is
    /// the declared Arrow type (a TIMESTAMP keeps its time zone).
    pub fn column(&self, field: Field, events: &[u64], data_type: &DataType) -> Result<ArrayRef> {
        use Field::*;
        Ok(match field {
            PersonId => ints(events, |e| FIRST_PERSON_ID + last_person(e) as i64),
            AuctionId => ints(events, |e| FIRST_AUCTION_ID + last_auction(e) as i64),
            PersonTime | AuctionTime | BidTime => {
                let values: ScalarBuffer<i64> = events.iter().map(|&e| self.timestamp(e)).collect();
                Arc::new(
                    PrimitiveArray::<TimestampMicrosecondType>::new(values, None)
                        .with_data_type(data_type.clone()),
                )
            }
            Expires => {
                let values: ScalarBuffer<i64> = events
                    .iter()
                    .map(|&e| {
                        let ts = self.timestamp(e);
                        let horizon = self
                            .timestamp(e.saturating_add(AUCTION_HORIZON_EVENTS))
                            .saturating_sub(ts);
                        let span = (horizon.max(0) as u64).saturating_mul(2).max(1);
                        ts.saturating_add(1 + below(self.word(Stream::Expires, e), span) as i64)
                    })
                    .collect();
                Arc::new(
                    PrimitiveArray::<TimestampMicrosecondType>::new(values, None)
                        .with_data_type(data_type.clone()),
                )
            }
            Name => strings(events, 12, |e, out| {
                let w = self.word(Stream::Name, e);
                out.extend_from_slice(FIRST_NAMES[below(w, 11) as usize].as_bytes());
                out.push(b' ');
                out.extend_from_slice(LAST_NAMES[below(sub(w, 1), 9) as usize].as_bytes());
            })?,
            Email => strings(events, 12, |e, out| {
                let w = self.word(Stream::Email, e);
                random_string(sub(w, 1), 7, b' ', out);
                out.push(b'@');
                random_string(sub(w, 2), 5, b' ', out);
                out.extend_from_slice(b".com");
            })?,
            CreditCard => strings(events, 19, |e, out| {
                let n = below(self.word(Stream::Card, e), 10_000_000_000_000_000);
                for g in (0..4).rev() {
                    let group = n / 10_000u64.pow(g) % 10_000;
                    for d in (0..4).rev() {
                        out.push(b'0' + (group / 10u64.pow(d) % 10) as u8);
                    }
                    if g > 0 {
                        out.push(b' ');
                    }
                }
            })?,
            City => strings(events, 8, |e, out| {
                out.extend_from_slice(self.city(e).as_bytes())
            })?,
            State => strings(events, 2, |e, out| {
                let i = below(self.word(Stream::State, e), US_STATES.len() as u64);
                out.extend_from_slice(US_STATES[i as usize].as_bytes());
            })?,
            PersonExtra => strings(events, 120, |e, out| {
                let current =
                    8 + self.name_len(e) + self.email_len(e) + 19 + self.city(e).len() as u64 + 2;
                extra(
                    self.word(Stream::PersonExtra, e),
                    current,
                    AVG_PERSON_BYTES,
                    out,
                );
            })?,
            ItemName => strings(events, 11, |e, out| {
                random_string(self.word(Stream::Item, e), 20, b' ', out)
            })?,
            Description => strings(events, 51, |e, out| {
                random_string(self.word(Stream::Desc, e), 100, b' ', out)
            })?,
            InitialBid => ints(events, |e| price(self.word(Stream::Initial, e))),
            Reserve => ints(events, |e| {
                price(self.word(Stream::Initial, e)) + price(self.word(Stream::Reserve, e))
            }),
            Seller => ints(events, |e| {
                let w = self.word(Stream::Seller, e);
                let base0 = if below(w, HOT_SELLERS_RATIO) > 0 {
                    last_person(e) / HOT_GROUP * HOT_GROUP
                } else {
                    recent_person(e, sub(w, 1))
                };
                FIRST_PERSON_ID + base0 as i64
            }),
            Category => ints(events, |e| {
                FIRST_CATEGORY_ID + below(self.word(Stream::Category, e), NUM_CATEGORIES) as i64
            }),
            AuctionExtra => strings(events, 390, |e, out| {
                let current = 8
                    + random_len(self.word(Stream::Item, e), 20)
                    + random_len(self.word(Stream::Desc, e), 100)
                    + 40;
                extra(
                    self.word(Stream::AuctionExtra, e),
                    current,
                    AVG_AUCTION_BYTES,
                    out,
                );
            })?,
            BidAuction => ints(events, |e| {
                let w = self.word(Stream::BidAuction, e);
                let newest = last_auction(e);
                let base0 = if below(w, HOT_AUCTION_RATIO) > 0 {
                    newest / HOT_GROUP * HOT_GROUP
                } else {
                    // One of the auctions likely still open; no "lead" ids past the newest.
                    let oldest = newest.saturating_sub(NUM_IN_FLIGHT_AUCTIONS);
                    oldest + below(sub(w, 1), newest - oldest + 1)
                };
                FIRST_AUCTION_ID + base0 as i64
            }),
            Bidder => ints(events, |e| {
                let w = self.word(Stream::Bidder, e);
                let newest = last_person(e);
                let base0 = if below(w, HOT_BIDDERS_RATIO) > 0 {
                    // The second of the latest group, once it exists.
                    (newest / HOT_GROUP * HOT_GROUP + 1).min(newest)
                } else {
                    recent_person(e, sub(w, 1))
                };
                FIRST_PERSON_ID + base0 as i64
            }),
            Price => ints(events, |e| price(self.word(Stream::Price, e))),
            Channel => strings(events, 10, |e, out| match self.channel(e) {
                (true, i) => out.extend_from_slice(HOT_CHANNELS[i as usize].as_bytes()),
                (false, i) => {
                    out.extend_from_slice(b"channel-");
                    push_u64(out, i);
                }
            })?,
            Url => strings(events, 60, |e, out| {
                let (hot, i) = self.channel(e);
                out.extend_from_slice(self.url(hot, i));
            })?,
            BidExtra => strings(events, 68, |e, out| {
                extra(self.word(Stream::BidExtra, e), 32, AVG_BID_BYTES, out)
            })?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_and_events_agree() {
        for events in [0, 1, 2, 4, 5, 49, 50, 51, 103, 50_000, 1_234_567] {
            let total: u64 = Kind::ALL.iter().map(|k| k.rows_in(events)).sum();
            assert_eq!(total, events, "events={events}");
            for k in Kind::ALL {
                let rows = k.rows_in(events);
                if rows > 0 {
                    assert!(k.event_of(rows - 1) < events, "{k:?} {events}");
                }
                assert!(k.event_of(rows) >= events, "{k:?} {events}");
            }
        }
        assert_eq!(Kind::Person.event_of(3), 150);
        assert_eq!(Kind::Auction.event_of(4), 52);
        assert_eq!(Kind::Bid.event_of(46), 54);
    }

    #[test]
    fn ids_follow_event_numbers() {
        assert_eq!(last_person(0), 0);
        assert_eq!(last_person(149), 2);
        assert_eq!(last_auction(1), 0);
        assert_eq!(last_auction(3), 2);
        assert_eq!(last_auction(4), 2);
        assert_eq!(last_auction(51), 3);
        assert_eq!(last_auction(99), 5);
    }

    #[test]
    fn strings_are_ascii_and_sized() {
        let mut out = Vec::new();
        for w in 0..2000u64 {
            out.clear();
            random_string(mix(w), 20, b' ', &mut out);
            assert!((3..20).contains(&out.len()));
            assert_ne!(out[0], b' ');
            assert_ne!(out[out.len() - 1], b' ');
            out.clear();
            extra(mix(w), 32, 100, &mut out);
            assert!((54..82).contains(&out.len()), "{}", out.len());
            assert!(out.iter().all(u8::is_ascii_lowercase));
        }
        out.clear();
        push_u64(&mut out, 0);
        push_u64(&mut out, 1_234_567);
        assert_eq!(out, b"01234567");
        let prices: Vec<i64> = (0..10_000u64).map(|w| price(mix(w))).collect();
        assert!(prices.iter().all(|p| (100..=100_000_000).contains(p)));
    }
}
