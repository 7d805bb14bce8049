//! The `nexmark` connector: the three tables of the Nexmark benchmark (`person`,
//! `auction`, `bid`) generated at scan time, after the Flink Nexmark benchmark's source
//! (`CREATE TABLE bid (...) WITH ('connector' = 'nexmark', 'nexmark.table' = 'bid')`;
//! user docs in `docs/connectors.md`, the generator in [`super::nexmark_gen`]).
//!
//! All three tables are views of one event sequence: with the same `seed` and
//! `event-time-rate`, a bid's `auction` is the `id` of a row of the `auction` table and its
//! `bidder` the `id` of a `person`. A scan generates only its own table's rows, mapping its
//! row numbers to event numbers. Values are a pure function of `(seed, event number)`, so
//! partitioning, batch size, projection and `rate` never change them.
//!
//! This module holds the standard schemas ([`Field`], [`standard_fields`]), the options
//! ([`parse_options`]), the table and its scan.
//!
//! Without `events` the table is unbounded and only a streaming query can read it; a
//! streaming scan deals batches round-robin to partitions so they advance through event
//! time together, as datagen does.

use std::sync::Arc;

use arrow::array::{RecordBatch, RecordBatchOptions};
use arrow::datatypes::{DataType, Schema, SchemaRef};

use super::generated::{partition_rows, GeneratedStream, Throttle};
use super::nexmark_gen::{EventGen, Kind, DEFAULT_EVENT_TIME_RATE, TOTAL_PROPORTION};
use crate::catalog::TableProvider;
use crate::error::{did_you_mean, nearest, Result, SluiceError};
use crate::logical::expr::Expr;
use crate::physical::{ElementStream, ExecNode, TaskContext};

/// SQL type of a Nexmark column.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ColType {
    /// BIGINT (Int64).
    BigInt,
    /// VARCHAR (Utf8).
    Varchar,
    /// TIMESTAMP (Timestamp, microseconds).
    Timestamp,
}

impl ColType {
    /// The SQL name.
    pub fn sql(self) -> &'static str {
        match self {
            ColType::BigInt => "BIGINT",
            ColType::Varchar => "VARCHAR",
            ColType::Timestamp => "TIMESTAMP",
        }
    }

    /// True when Arrow type `t` stores this type.
    pub fn accepts(self, t: &DataType) -> bool {
        match self {
            ColType::BigInt => *t == DataType::Int64,
            ColType::Varchar => *t == DataType::Utf8,
            ColType::Timestamp => matches!(
                t,
                DataType::Timestamp(arrow::datatypes::TimeUnit::Microsecond, _)
            ),
        }
    }
}

/// A column of one of the Nexmark tables, named after it ([`Field::name`] has the SQL
/// name): `PersonId` is `person.id`, `PersonTime` is `person.dateTime`, `BidAuction` is
/// `bid.auction`, and so on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[allow(missing_docs)] // the variants are the columns; see the enum's docs
pub enum Field {
    PersonId,
    Name,
    Email,
    CreditCard,
    City,
    State,
    PersonTime,
    PersonExtra,
    AuctionId,
    ItemName,
    Description,
    InitialBid,
    Reserve,
    AuctionTime,
    Expires,
    Seller,
    Category,
    AuctionExtra,
    BidAuction,
    Bidder,
    Price,
    Channel,
    Url,
    BidTime,
    BidExtra,
}

impl Field {
    /// The standard column name (Flink Nexmark's spelling).
    pub fn name(self) -> &'static str {
        use Field::*;
        match self {
            PersonId | AuctionId => "id",
            Name => "name",
            Email => "emailAddress",
            CreditCard => "creditCard",
            City => "city",
            State => "state",
            PersonTime | AuctionTime | BidTime => "dateTime",
            PersonExtra | AuctionExtra | BidExtra => "extra",
            ItemName => "itemName",
            Description => "description",
            InitialBid => "initialBid",
            Reserve => "reserve",
            Expires => "expires",
            Seller => "seller",
            Category => "category",
            BidAuction => "auction",
            Bidder => "bidder",
            Price => "price",
            Channel => "channel",
            Url => "url",
        }
    }

    /// The column's SQL type.
    pub fn col_type(self) -> ColType {
        use Field::*;
        match self {
            PersonId | AuctionId | InitialBid | Reserve | Seller | Category | BidAuction
            | Bidder | Price => ColType::BigInt,
            PersonTime | AuctionTime | BidTime | Expires => ColType::Timestamp,
            _ => ColType::Varchar,
        }
    }
}

/// The standard columns of `kind`, in Flink Nexmark's order.
pub fn standard_fields(kind: Kind) -> &'static [Field] {
    use Field::*;
    match kind {
        Kind::Person => &[
            PersonId,
            Name,
            Email,
            CreditCard,
            City,
            State,
            PersonTime,
            PersonExtra,
        ],
        Kind::Auction => &[
            AuctionId,
            ItemName,
            Description,
            InitialBid,
            Reserve,
            AuctionTime,
            Expires,
            Seller,
            Category,
            AuctionExtra,
        ],
        Kind::Bid => &[BidAuction, Bidder, Price, Channel, Url, BidTime, BidExtra],
    }
}

/// Options of the nexmark connector.
pub const OPTIONS: [&str; 6] = [
    "connector",
    "nexmark.table",
    "events",
    "rate",
    "event-time-rate",
    "seed",
];

/// Flink Nexmark option names and what to use instead.
const FLINK_OPTIONS: [(&str, &str); 6] = [
    ("events.num", "'events'"),
    (
        "first-event.rate",
        "'event-time-rate' (event time) or 'rate' (wall clock)",
    ),
    (
        "next-event.rate",
        "'event-time-rate' (event time) or 'rate' (wall clock)",
    ),
    ("rate.limited", "'rate'"),
    ("nexmark.table.type", "'nexmark.table'"),
    ("table", "'nexmark.table'"),
];

/// A validated nexmark table definition.
#[derive(Debug, Clone, PartialEq)]
pub struct NexmarkSpec {
    /// Which table.
    pub kind: Kind,
    /// Events of all kinds in the sequence; `None` = unbounded.
    pub events: Option<u64>,
    /// Events per second of wall-clock time over the whole sequence; 0 = as fast as
    /// possible.
    pub rate: u64,
    /// Events per second of event time (spacing of `dateTime`).
    pub event_time_rate: u64,
    /// Seed: the same seed gives the same events.
    pub seed: u64,
}

impl NexmarkSpec {
    /// Rows of this table; `None` = unbounded.
    pub fn rows(&self) -> Option<u64> {
        self.events.map(|e| self.kind.rows_in(e))
    }
}

fn parse_u64(key: &str, v: &str) -> Result<u64> {
    v.trim().parse::<u64>().map_err(|_| {
        SluiceError::plan(format!(
            "nexmark option '{key}' must be a non-negative integer, got '{v}'"
        ))
    })
}

fn unknown_option(key: &str) -> SluiceError {
    let hint = match FLINK_OPTIONS.iter().find(|(k, _)| *k == key) {
        Some((_, instead)) => format!("; Flink Nexmark's '{key}' is {instead} here"),
        None => did_you_mean(&nearest(key, OPTIONS, 1)),
    };
    SluiceError::plan(format!(
        "unknown nexmark option '{key}' (options: {}){hint}",
        OPTIONS.join(", ")
    ))
}

/// Parses and validates the `WITH` options of a nexmark table.
pub fn parse_options(options: &[(String, String)]) -> Result<NexmarkSpec> {
    if let Some((k, _)) = options.iter().find(|(k, _)| !OPTIONS.contains(&k.as_str())) {
        return Err(unknown_option(k));
    }
    let get = |k: &str| {
        options
            .iter()
            .rev()
            .find(|(n, _)| n == k)
            .map(|(_, v)| v.as_str())
    };
    let kinds = || {
        Kind::ALL
            .iter()
            .map(|k| format!("'{}'", k.name()))
            .collect::<Vec<_>>()
            .join(", ")
    };
    let kind = match get("nexmark.table") {
        None => {
            return Err(SluiceError::plan(format!(
                "nexmark table needs option 'nexmark.table' (one of {})",
                kinds()
            )))
        }
        Some(v) => Kind::parse(v).ok_or_else(|| {
            SluiceError::plan(format!(
                "nexmark option 'nexmark.table' must be one of {}, got '{v}'",
                kinds()
            ))
        })?,
    };
    let events = get("events").map(|v| parse_u64("events", v)).transpose()?;
    let rate = get("rate")
        .map(|v| parse_u64("rate", v))
        .transpose()?
        .unwrap_or(0);
    let event_time_rate = match get("event-time-rate") {
        None => DEFAULT_EVENT_TIME_RATE,
        Some(v) => match parse_u64("event-time-rate", v)? {
            0 => {
                return Err(SluiceError::plan(
                    "nexmark option 'event-time-rate' must be a positive integer (events per \
                     second of event time), got '0'",
                ))
            }
            r => r,
        },
    };
    let seed = match get("seed") {
        None => 0,
        Some(v) => match v.trim().parse::<u64>() {
            Ok(s) => s,
            Err(_) => v.trim().parse::<i64>().map(|s| s as u64).map_err(|_| {
                SluiceError::plan(format!(
                    "nexmark option 'seed' must be an integer, got '{v}'"
                ))
            })?,
        },
    };
    Ok(NexmarkSpec {
        kind,
        events,
        rate,
        event_time_rate,
        seed,
    })
}

/// The standard schema of `kind`, for messages: `id BIGINT, name VARCHAR, ...`.
pub fn standard_schema(kind: Kind) -> String {
    standard_fields(kind)
        .iter()
        .map(|f| format!("{} {}", f.name(), f.col_type().sql()))
        .collect::<Vec<_>>()
        .join(", ")
}

/// The field of each column of `schema`, which must hold exactly the standard columns of
/// `kind` (names case-insensitive, any order).
pub fn bind_schema(table: &str, kind: Kind, schema: &Schema) -> Result<Vec<Field>> {
    let fail = |why: String| {
        SluiceError::plan(format!(
            "nexmark table '{table}' ('nexmark.table' = '{}') must declare exactly the \
             columns ({}) (names case-insensitive, any order; computed columns and a \
             WATERMARK may be added): {why}",
            kind.name(),
            standard_schema(kind)
        ))
    };
    let mut bound: Vec<Field> = Vec::with_capacity(schema.fields().len());
    for col in schema.fields() {
        let Some(f) = standard_fields(kind)
            .iter()
            .find(|f| f.name().eq_ignore_ascii_case(col.name()))
        else {
            let names = standard_fields(kind).iter().map(|f| f.name());
            let hints = nearest(col.name(), names, 1);
            return Err(fail(format!(
                "column '{}' is not one of them{}",
                col.name(),
                did_you_mean(&hints)
            )));
        };
        if bound.contains(f) {
            return Err(fail(format!("column '{}' appears twice", col.name())));
        }
        if !f.col_type().accepts(col.data_type()) {
            return Err(fail(format!(
                "column '{}' is {}, expected {}",
                col.name(),
                col.data_type(),
                f.col_type().sql()
            )));
        }
        bound.push(*f);
    }
    if let Some(missing) = standard_fields(kind).iter().find(|f| !bound.contains(f)) {
        return Err(fail(format!("column '{}' is missing", missing.name())));
    }
    Ok(bound)
}

/// A Nexmark table; see the module docs.
#[derive(Debug)]
pub struct NexmarkTable {
    name: String,
    schema: SchemaRef,
    fields: Vec<Field>,
    spec: NexmarkSpec,
}

impl NexmarkTable {
    /// The nexmark table `name` of `schema` with the connector `options` (the `connector`
    /// key itself is allowed).
    pub fn try_new(name: &str, schema: SchemaRef, options: &[(String, String)]) -> Result<Self> {
        let spec = parse_options(options)?;
        let fields = bind_schema(name, spec.kind, &schema)?;
        Ok(Self {
            name: name.to_string(),
            schema,
            fields,
            spec,
        })
    }

    /// The validated options.
    pub fn spec(&self) -> &NexmarkSpec {
        &self.spec
    }
}

/// `nexmark(table=bid, events=N|unbounded, seed=S[, rate=R][, event-time-rate=T])`.
fn describe_spec(spec: &NexmarkSpec) -> String {
    let events = spec
        .events
        .map_or_else(|| "unbounded".to_string(), |e| e.to_string());
    let mut s = format!(
        "nexmark(table={}, events={events}, seed={}",
        spec.kind.name(),
        spec.seed
    );
    if spec.rate > 0 {
        s.push_str(&format!(", rate={}", spec.rate));
    }
    if spec.event_time_rate != DEFAULT_EVENT_TIME_RATE {
        s.push_str(&format!(", event-time-rate={}", spec.event_time_rate));
    }
    s.push(')');
    s
}

impl TableProvider for NexmarkTable {
    fn schema(&self) -> SchemaRef {
        self.schema.clone()
    }
    fn row_count(&self) -> Option<usize> {
        self.spec
            .rows()
            .map(|r| usize::try_from(r).unwrap_or(usize::MAX))
    }
    fn scan(
        &self,
        projection: Option<&[usize]>,
        _filters: &[Expr],
        partitions: usize,
        batch_size: usize,
    ) -> Result<Arc<dyn ExecNode>> {
        Ok(Arc::new(NexmarkExec::try_new(
            &self.name,
            &self.schema,
            &self.fields,
            &self.spec,
            projection,
            partitions,
            batch_size,
        )?))
    }
    fn describe(&self) -> String {
        describe_spec(&self.spec)
    }
    fn is_bounded(&self) -> bool {
        self.spec.events.is_some()
    }
    fn as_any(&self) -> &dyn std::any::Any {
        self
    }
}

/// Most rows in one generated batch (keeps string buffers of a batch modest).
const MAX_BATCH_ROWS: u64 = 65_536;

/// The scan of a nexmark table: partition `p` generates a contiguous range of the table's
/// rows (batch mode) or every `p`-th batch (streaming).
#[derive(Debug)]
pub struct NexmarkExec {
    table: String,
    schema: SchemaRef,
    fields: Arc<Vec<Field>>,
    spec: NexmarkSpec,
    generator: Arc<EventGen>,
    partitions: usize,
    batch_rows: u64,
}

impl NexmarkExec {
    /// A scan of the `projection` columns of a nexmark table whose columns are `fields`.
    pub fn try_new(
        table: &str,
        schema: &SchemaRef,
        fields: &[Field],
        spec: &NexmarkSpec,
        projection: Option<&[usize]>,
        partitions: usize,
        batch_size: usize,
    ) -> Result<Self> {
        let indices: Vec<usize> = match projection {
            Some(p) => p.to_vec(),
            None => (0..schema.fields().len()).collect(),
        };
        let out_schema = Arc::new(schema.project(&indices)?);
        let fields = indices
            .iter()
            .map(|&i| {
                fields.get(i).copied().ok_or_else(|| {
                    SluiceError::exec(format!("nexmark scan of '{table}': no column {i}"))
                })
            })
            .collect::<Result<Vec<_>>>()?;
        let mut batch_rows = (batch_size.max(1) as u64).min(MAX_BATCH_ROWS);
        let mut partitions = partitions.max(1);
        if let Some(rows) = spec.rows() {
            let batches = rows.div_ceil(batch_rows).max(1);
            partitions = partitions.min(usize::try_from(batches).unwrap_or(usize::MAX));
        }
        if spec.rate > 0 {
            // A batch every 10 ms or less per partition, so a throttled scan trickles and
            // an event waits at most that long in its batch before it is emitted.
            let per_partition = rows_per_second(spec) / partitions as f64;
            batch_rows = batch_rows.min(((per_partition / 100.0).ceil() as u64).max(1));
        }
        Ok(Self {
            table: table.to_string(),
            schema: out_schema,
            fields: Arc::new(fields),
            spec: spec.clone(),
            generator: Arc::new(EventGen::new(spec.seed, spec.event_time_rate)),
            partitions,
            batch_rows,
        })
    }
}

/// This table's share of `rate`: rows per second over all partitions.
fn rows_per_second(spec: &NexmarkSpec) -> f64 {
    let per_cycle = spec.kind.rows_in(TOTAL_PROPORTION) as f64;
    spec.rate as f64 * per_cycle / TOTAL_PROPORTION as f64
}

impl ExecNode for NexmarkExec {
    fn name(&self) -> &'static str {
        "NexmarkExec"
    }
    fn schema(&self) -> SchemaRef {
        self.schema.clone()
    }
    fn children(&self) -> Vec<Arc<dyn ExecNode>> {
        vec![]
    }
    fn output_partitions(&self) -> usize {
        self.partitions
    }
    fn execute(&self, partition: usize, ctx: &Arc<TaskContext>) -> Result<ElementStream> {
        if partition >= self.partitions {
            return Err(SluiceError::exec("nexmark scan partition out of range"));
        }
        let range = partition_rows(
            self.spec.rows(),
            partition,
            self.partitions,
            self.batch_rows,
            ctx.streaming,
        )
        .ok_or_else(|| {
            SluiceError::unsupported(format!(
                "table '{}' is unbounded (nexmark without 'events'): only a streaming \
                 query can read it (SET 'execution.runtime-mode' = 'streaming' or \
                 'automatic'); or set 'events'",
                self.table
            ))
        })?;
        let throttle = (self.spec.rate > 0)
            .then(|| Throttle::new(rows_per_second(&self.spec) / self.partitions as f64));
        let rows = NexmarkRows {
            generator: self.generator.clone(),
            schema: self.schema.clone(),
            fields: self.fields.clone(),
            kind: self.spec.kind,
        };
        Ok(ctx.cancellable(GeneratedStream::boxed(
            range,
            self.batch_rows,
            throttle,
            move |start, n| rows.batch(start, n),
        )))
    }
    fn details(&self) -> String {
        format!("table={}, {}", self.table, describe_spec(&self.spec))
    }
}

/// Builds batches of one table's rows.
struct NexmarkRows {
    generator: Arc<EventGen>,
    schema: SchemaRef,
    fields: Arc<Vec<Field>>,
    kind: Kind,
}

impl NexmarkRows {
    /// Rows `start..start + n` of the table.
    fn batch(&self, start: u64, n: u64) -> Result<RecordBatch> {
        let events: Vec<u64> = (start..start + n).map(|r| self.kind.event_of(r)).collect();
        let columns = self
            .fields
            .iter()
            .zip(self.schema.fields())
            .map(|(f, col)| self.generator.column(*f, &events, col.data_type()))
            .collect::<Result<Vec<_>>>()?;
        let opts = RecordBatchOptions::new().with_row_count(Some(events.len()));
        Ok(RecordBatch::try_new_with_options(
            self.schema.clone(),
            columns,
            &opts,
        )?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow::datatypes::{DataType, Field as ArrowField};

    fn opts(kv: &[(&str, &str)]) -> Vec<(String, String)> {
        kv.iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    fn bid_schema() -> SchemaRef {
        let ts = DataType::Timestamp(arrow::datatypes::TimeUnit::Microsecond, None);
        Arc::new(Schema::new(vec![
            ArrowField::new("auction", DataType::Int64, true),
            ArrowField::new("bidder", DataType::Int64, true),
            ArrowField::new("price", DataType::Int64, true),
            ArrowField::new("channel", DataType::Utf8, true),
            ArrowField::new("url", DataType::Utf8, true),
            ArrowField::new("datetime", ts, true),
            ArrowField::new("extra", DataType::Utf8, true),
        ]))
    }

    #[test]
    fn values_depend_on_row_not_on_batching() {
        let o = opts(&[("nexmark.table", "bid"), ("events", "1000"), ("seed", "3")]);
        let t = NexmarkTable::try_new("bid", bid_schema(), &o).expect("table");
        let ctx = Arc::new(TaskContext::default());
        let run = |parts: usize, batch: usize| {
            let exec = t.scan(None, &[], parts, batch).expect("scan");
            let batches = crate::physical::collect_partitions(&exec, &ctx).expect("run");
            arrow::compute::concat_batches(&exec.schema(), &batches).expect("concat")
        };
        let a = run(1, 4096);
        assert_eq!(a.num_rows(), 920);
        assert_eq!(a, run(3, 7));
        let projected = t.scan(Some(&[6, 2]), &[], 1, 100).expect("scan");
        let batches = crate::physical::collect_partitions(&projected, &ctx).expect("run");
        let p = arrow::compute::concat_batches(&projected.schema(), &batches).expect("concat");
        assert_eq!(p.column(0), a.column(6));
        assert_eq!(p.column(1), a.column(2));
    }

    #[test]
    fn options_are_checked() {
        let e = parse_options(&opts(&[("events.num", "5")])).expect_err("flink name");
        assert!(e.to_string().contains("'events' here"), "{e}");
        let e = parse_options(&opts(&[("nexmark.table", "bids")])).expect_err("kind");
        assert!(e.to_string().contains("'bid'"), "{e}");
        let e = parse_options(&opts(&[("nexmark.table", "bid"), ("rate", "-1")]))
            .expect_err("negative");
        assert!(e.to_string().contains("non-negative"), "{e}");
        let s = parse_options(&opts(&[("nexmark.table", "BID"), ("seed", "-1")])).expect("ok");
        assert_eq!((s.kind, s.seed, s.events), (Kind::Bid, u64::MAX, None));
    }
}
