//! The `datagen` connector: a table that stores no rows and generates them at scan time,
//! after Apache Flink's datagen source (`CREATE TABLE t (...) WITH ('connector' =
//! 'datagen', ...)`; options in [`super::datagen_options`], user docs in
//! `docs/connectors.md`).
//!
//! Values are a pure function of `(seed, column position, row index)`: every row is
//! hashed with a counter-based generator (SplitMix64 finalizer), so the same seed and
//! options give the same rows on every run, whatever the partitioning, batch size or
//! projection. Each batch is built column by column: the column's generator and type are
//! matched once per batch, and the inner loop fills a typed buffer.
//!
//! Without `number-of-rows` (and without a sequence column) the table is unbounded; the
//! engine has no streaming runtime yet, so scanning such a table fails with a clear error
//! instead of running forever.

use std::sync::Arc;

use arrow::array::{
    ArrayRef, ArrowPrimitiveType, BooleanArray, PrimitiveArray, RecordBatch, RecordBatchOptions,
    StringBuilder,
};
use arrow::buffer::{BooleanBuffer, NullBuffer, ScalarBuffer};
use arrow::datatypes::{
    DataType, Date32Type, Decimal128Type, Float32Type, Float64Type, Int16Type, Int32Type,
    Int64Type, Int8Type, SchemaRef, TimestampMicrosecondType,
};

use super::datagen_options::{parse_spec, ColumnGen, ColumnSpec, DatagenSpec};
use super::generated::{partition_rows, GeneratedStream, Throttle};
use crate::catalog::TableProvider;
use crate::error::{Result, SluiceError};
use crate::logical::expr::Expr;
use crate::physical::{ElementStream, ExecNode, TaskContext};

/// Days from 1970-01-01 to 2026-01-01: the fixed "now" random DATE values count back from.
pub const BASE_DATE_DAYS: i32 = 20_454;

/// Microseconds from the epoch to 2026-01-01 00:00:00: the fixed "now" random TIMESTAMP
/// values count back from.
pub const BASE_TIMESTAMP_MICROS: i64 = BASE_DATE_DAYS as i64 * 86_400_000_000;

/// Most bytes of random string data one column of one batch holds; batches of long strings
/// get fewer rows.
const MAX_STRING_BYTES_PER_BATCH: usize = 64 << 20;

/// A table generated from its options; see the module docs.
#[derive(Debug)]
pub struct DatagenTable {
    name: String,
    schema: SchemaRef,
    spec: Arc<DatagenSpec>,
}

impl DatagenTable {
    /// A datagen table `name` of `schema` with the connector `options` (key → value text,
    /// e.g. `("fields.id.kind", "sequence")`; the `connector` key itself is allowed).
    pub fn try_new(name: &str, schema: SchemaRef, options: &[(String, String)]) -> Result<Self> {
        let spec = parse_spec(&schema, options)?;
        Ok(Self {
            name: name.to_string(),
            schema,
            spec: Arc::new(spec),
        })
    }

    /// The validated options.
    pub fn spec(&self) -> &DatagenSpec {
        &self.spec
    }

    /// True when the table has a finite number of rows.
    pub fn is_bounded(&self) -> bool {
        self.spec.rows.is_some()
    }
}

/// `datagen(rows=N|unbounded, seed=S[, rows-per-second=R])`.
fn describe_spec(spec: &DatagenSpec) -> String {
    let rows = spec
        .rows
        .map_or_else(|| "unbounded".to_string(), |r| r.to_string());
    let mut s = format!("datagen(rows={rows}, seed={}", spec.seed);
    if spec.rows_per_second > 0 {
        s.push_str(&format!(", rows-per-second={}", spec.rows_per_second));
    }
    s.push(')');
    s
}

impl TableProvider for DatagenTable {
    fn schema(&self) -> SchemaRef {
        self.schema.clone()
    }
    fn row_count(&self) -> Option<usize> {
        self.spec
            .rows
            .map(|r| usize::try_from(r).unwrap_or(usize::MAX))
    }
    fn scan(
        &self,
        projection: Option<&[usize]>,
        _filters: &[Expr],
        partitions: usize,
        batch_size: usize,
    ) -> Result<Arc<dyn ExecNode>> {
        Ok(Arc::new(DatagenExec::try_new(
            &self.name,
            &self.schema,
            self.spec.clone(),
            projection,
            partitions,
            batch_size,
        )?))
    }
    fn describe(&self) -> String {
        describe_spec(&self.spec)
    }
    fn is_bounded(&self) -> bool {
        DatagenTable::is_bounded(self)
    }
    fn as_any(&self) -> &dyn std::any::Any {
        self
    }
}

/// The scan of a datagen table: partition `p` generates a contiguous range of row indices.
#[derive(Debug)]
pub struct DatagenExec {
    table: String,
    generator: Arc<Generator>,
    spec: Arc<DatagenSpec>,
    partitions: usize,
    batch_rows: u64,
}

impl DatagenExec {
    /// A scan of the `projection` columns of a datagen table.
    pub fn try_new(
        table: &str,
        schema: &SchemaRef,
        spec: Arc<DatagenSpec>,
        projection: Option<&[usize]>,
        partitions: usize,
        batch_size: usize,
    ) -> Result<Self> {
        let indices: Vec<usize> = match projection {
            Some(p) => p.to_vec(),
            None => (0..schema.fields().len()).collect(),
        };
        let out_schema = Arc::new(schema.project(&indices)?);
        let mut columns = Vec::with_capacity(indices.len());
        let mut batch_rows = batch_size.max(1) as u64;
        for (&i, field) in indices.iter().zip(out_schema.fields()) {
            let col = spec.columns.get(i).ok_or_else(|| {
                SluiceError::exec(format!("datagen scan of '{table}': no column {i}"))
            })?;
            if let ColumnGen::StringRandom { length } = col.gen {
                let cap = (MAX_STRING_BYTES_PER_BATCH / length.max(1)).max(1) as u64;
                batch_rows = batch_rows.min(cap);
            }
            columns.push(GenColumn {
                position: i as u64,
                data_type: field.data_type().clone(),
                spec: col.clone(),
            });
        }
        let mut partitions = partitions.max(1);
        if let Some(rows) = spec.rows {
            let batches = rows.div_ceil(batch_rows).max(1);
            partitions = partitions.min(usize::try_from(batches).unwrap_or(usize::MAX));
        }
        if spec.rows_per_second > 0 {
            // About ten batches a second per partition, so a throttled scan trickles.
            let per_partition = spec.rows_per_second.div_ceil(partitions as u64);
            batch_rows = batch_rows.min(per_partition.div_ceil(10).max(1));
        }
        Ok(Self {
            table: table.to_string(),
            generator: Arc::new(Generator {
                schema: out_schema,
                seed: spec.seed,
                columns,
            }),
            spec,
            partitions,
            batch_rows,
        })
    }
}

impl ExecNode for DatagenExec {
    fn name(&self) -> &'static str {
        "DatagenExec"
    }
    fn schema(&self) -> SchemaRef {
        self.generator.schema.clone()
    }
    fn children(&self) -> Vec<Arc<dyn ExecNode>> {
        vec![]
    }
    fn output_partitions(&self) -> usize {
        self.partitions
    }
    fn execute(&self, partition: usize, ctx: &Arc<TaskContext>) -> Result<ElementStream> {
        if partition >= self.partitions {
            return Err(SluiceError::exec("datagen scan partition out of range"));
        }
        let throttle = (self.spec.rows_per_second > 0)
            .then(|| Throttle::new(self.spec.rows_per_second as f64 / self.partitions as f64));
        let range = partition_rows(
            self.spec.rows,
            partition,
            self.partitions,
            self.batch_rows,
            ctx.streaming,
        )
        .ok_or_else(|| {
            SluiceError::unsupported(format!(
                "table '{}' is unbounded (datagen without 'number-of-rows'): only a \
                 streaming query can read it (SET 'execution.runtime-mode' = 'streaming' \
                 or 'automatic'); or set 'number-of-rows'",
                self.table
            ))
        })?;
        let generator = self.generator.clone();
        Ok(ctx.cancellable(GeneratedStream::boxed(
            range,
            self.batch_rows,
            throttle,
            move |start, n| generator.batch(start, n as usize),
        )))
    }
    fn details(&self) -> String {
        format!("table={}, {}", self.table, describe_spec(&self.spec))
    }
}

/// A projected column: its position in the table (which seeds its values), type and spec.
#[derive(Debug)]
struct GenColumn {
    position: u64,
    data_type: DataType,
    spec: ColumnSpec,
}

/// Builds batches of generated rows.
#[derive(Debug)]
struct Generator {
    schema: SchemaRef,
    seed: u64,
    columns: Vec<GenColumn>,
}

/// 2^64 / φ: the Weyl increment of SplitMix64.
pub(crate) const GOLDEN: u64 = 0x9E37_79B9_7F4A_7C15;

/// The SplitMix64 finalizer: a bijective mix of all 64 bits.
pub(crate) fn mix(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// The key of one random stream: `salt` 0 = values, 1 = NULL decisions.
pub(crate) fn stream_key(seed: u64, column: u64, salt: u64) -> u64 {
    mix(mix(seed.wrapping_add(GOLDEN)) ^ mix((column << 1 | salt).wrapping_add(GOLDEN)))
}

/// The random word of row `row` in the stream `key`.
pub(crate) fn at(key: u64, row: u64) -> u64 {
    mix(key.wrapping_add(row.wrapping_add(1).wrapping_mul(GOLDEN)))
}

/// A uniform float in `[0, 1)`.
pub(crate) fn unit(x: u64) -> f64 {
    (x >> 11) as f64 * (1.0 / (1u64 << 53) as f64)
}

/// A uniform integer in `[lo, hi]` (`lo <= hi`).
fn uniform_i64(x: u64, lo: i64, hi: i64) -> i64 {
    let span = (i128::from(hi) - i128::from(lo) + 1) as u128;
    let off = (u128::from(x) * span) >> 64;
    (i128::from(lo) + off as i128) as i64
}

/// A uniform 128-bit integer in `[lo, hi]` (`lo <= hi`) from row `row` of stream `key`.
fn uniform_i128(key: u64, row: u64, lo: i128, hi: i128) -> i128 {
    let x = at(key, row);
    let span = hi.abs_diff(lo).saturating_add(1);
    let off = if span <= 1u128 << 64 {
        (u128::from(x) * span) >> 64
    } else {
        let y = mix(x ^ GOLDEN);
        ((u128::from(x) << 64) | u128::from(y)) % span
    };
    lo.wrapping_add(off as i128)
}

const HEX: &[u8; 16] = b"0123456789abcdef";

/// An array of type `T` with `f(row)` for rows `start..start + n`.
fn primitive<T: ArrowPrimitiveType>(
    start: u64,
    n: usize,
    nulls: Option<NullBuffer>,
    f: impl Fn(u64) -> T::Native,
) -> PrimitiveArray<T> {
    let values: ScalarBuffer<T::Native> = (start..start + n as u64).map(f).collect();
    PrimitiveArray::<T>::new(values, nulls)
}

/// An integer array of type `t` (matched once) with `f(row)` narrowed to the type; the
/// options guarantee `f`'s values fit.
fn integers(
    t: &DataType,
    start: u64,
    n: usize,
    nulls: Option<NullBuffer>,
    f: impl Fn(u64) -> i64,
) -> Result<ArrayRef> {
    Ok(match t {
        DataType::Int8 => Arc::new(primitive::<Int8Type>(start, n, nulls, |r| f(r) as i8)),
        DataType::Int16 => Arc::new(primitive::<Int16Type>(start, n, nulls, |r| f(r) as i16)),
        DataType::Int32 => Arc::new(primitive::<Int32Type>(start, n, nulls, |r| f(r) as i32)),
        DataType::Int64 => Arc::new(primitive::<Int64Type>(start, n, nulls, f)),
        other => return Err(mismatch(other)),
    })
}

/// A float array of type `t` (matched once) with `f(row)`.
fn floats(
    t: &DataType,
    start: u64,
    n: usize,
    nulls: Option<NullBuffer>,
    f: impl Fn(u64) -> f64,
) -> Result<ArrayRef> {
    Ok(match t {
        DataType::Float32 => Arc::new(primitive::<Float32Type>(start, n, nulls, |r| f(r) as f32)),
        DataType::Float64 => Arc::new(primitive::<Float64Type>(start, n, nulls, f)),
        other => return Err(mismatch(other)),
    })
}

fn mismatch(t: &DataType) -> SluiceError {
    SluiceError::exec(format!("datagen generator does not match column type {t}"))
}

impl Generator {
    /// Rows `start..start + n`.
    fn batch(&self, start: u64, n: usize) -> Result<RecordBatch> {
        let columns = self
            .columns
            .iter()
            .map(|c| self.column(c, start, n))
            .collect::<Result<Vec<_>>>()?;
        let opts = RecordBatchOptions::new().with_row_count(Some(n));
        Ok(RecordBatch::try_new_with_options(
            self.schema.clone(),
            columns,
            &opts,
        )?)
    }

    fn column(&self, c: &GenColumn, start: u64, n: usize) -> Result<ArrayRef> {
        let key = stream_key(self.seed, c.position, 0);
        let nulls = (c.spec.null_rate > 0.0).then(|| {
            let null_key = stream_key(self.seed, c.position, 1);
            let rate = c.spec.null_rate;
            NullBuffer::new(BooleanBuffer::collect_bool(n, |i| {
                unit(at(null_key, start + i as u64)) >= rate
            }))
        });
        let t = &c.data_type;
        match c.spec.gen {
            ColumnGen::IntRandom { min, max } => {
                integers(t, start, n, nulls, |r| uniform_i64(at(key, r), min, max))
            }
            ColumnGen::IntSequence { start: s } => {
                integers(t, start, n, nulls, |r| s.wrapping_add(r as i64))
            }
            ColumnGen::FloatRandom { min, max } => floats(t, start, n, nulls, |r| {
                let u = unit(at(key, r));
                (min * (1.0 - u) + max * u).clamp(min, max)
            }),
            ColumnGen::FloatSequence { start: s } => {
                floats(t, start, n, nulls, |r| s.wrapping_add(r as i64) as f64)
            }
            ColumnGen::DecimalRandom { min, max } => {
                let a = primitive::<Decimal128Type>(start, n, nulls, |r| {
                    uniform_i128(key, r, min, max)
                });
                Ok(Arc::new(a.with_data_type(t.clone())))
            }
            ColumnGen::DecimalSequence { start: s, step } => {
                let a = primitive::<Decimal128Type>(start, n, nulls, |r| {
                    s.wrapping_add(i128::from(r).wrapping_mul(step))
                });
                Ok(Arc::new(a.with_data_type(t.clone())))
            }
            ColumnGen::BoolRandom => {
                let values =
                    BooleanBuffer::collect_bool(n, |i| at(key, start + i as u64) >> 63 == 1);
                Ok(Arc::new(BooleanArray::new(values, nulls)))
            }
            ColumnGen::StringRandom { length } => {
                let mut b = StringBuilder::with_capacity(n, n * length);
                let mut buf = String::with_capacity(length);
                for i in 0..n {
                    if nulls.as_ref().is_some_and(|nb| nb.is_null(i)) {
                        b.append_null();
                        continue;
                    }
                    buf.clear();
                    let mut state = at(key, start + i as u64);
                    let mut word = state;
                    for j in 0..length {
                        if j > 0 && j % 16 == 0 {
                            state = state.wrapping_add(GOLDEN);
                            word = mix(state);
                        }
                        buf.push(char::from(HEX[((word >> ((j % 16) * 4)) & 15) as usize]));
                    }
                    b.append_value(&buf);
                }
                Ok(Arc::new(b.finish()))
            }
            ColumnGen::StringSequence { start: s } => {
                let mut b = StringBuilder::with_capacity(n, n * 8);
                for i in 0..n {
                    if nulls.as_ref().is_some_and(|nb| nb.is_null(i)) {
                        b.append_null();
                    } else {
                        b.append_value(s.wrapping_add((start + i as u64) as i64).to_string());
                    }
                }
                Ok(Arc::new(b.finish()))
            }
            ColumnGen::DateRandom { max_past_days } => {
                let a = primitive::<Date32Type>(start, n, nulls, |r| {
                    BASE_DATE_DAYS - uniform_i64(at(key, r), 0, max_past_days) as i32
                });
                Ok(Arc::new(a))
            }
            ColumnGen::TimestampRandom { max_past_ms } => {
                let a = primitive::<TimestampMicrosecondType>(start, n, nulls, |r| {
                    BASE_TIMESTAMP_MICROS - uniform_i64(at(key, r), 0, max_past_ms) * 1000
                });
                Ok(Arc::new(a.with_data_type(t.clone())))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base_instants_are_2026_01_01() {
        let d = chrono::NaiveDate::from_ymd_opt(2026, 1, 1).expect("date");
        let epoch = chrono::NaiveDate::from_ymd_opt(1970, 1, 1).expect("date");
        assert_eq!((d - epoch).num_days(), i64::from(BASE_DATE_DAYS));
    }

    #[test]
    fn uniform_bounds_are_inclusive_and_cover_full_range() {
        assert_eq!(uniform_i64(0, -5, 5), -5);
        assert_eq!(uniform_i64(u64::MAX, -5, 5), 5);
        assert_eq!(uniform_i64(0, i64::MIN, i64::MAX), i64::MIN);
        assert_eq!(uniform_i64(u64::MAX, i64::MIN, i64::MAX), i64::MAX);
        let big = 10i128.pow(38) - 1;
        for r in 0..1000 {
            let v = uniform_i128(7, r, -big, big);
            assert!((-big..=big).contains(&v));
        }
    }

    #[test]
    fn values_depend_on_row_not_on_batching() {
        let schema = Arc::new(arrow::datatypes::Schema::new(vec![
            arrow::datatypes::Field::new("x", DataType::Int64, true),
            arrow::datatypes::Field::new("s", DataType::Utf8, true),
        ]));
        let opts = vec![
            ("number-of-rows".to_string(), "100".to_string()),
            ("fields.s.length".to_string(), "20".to_string()),
        ];
        let t = DatagenTable::try_new("t", schema, &opts).expect("table");
        let ctx = Arc::new(TaskContext::default());
        let run = |parts: usize, batch: usize| {
            let exec = t.scan(None, &[], parts, batch).expect("scan");
            let batches = crate::physical::collect_partitions(&exec, &ctx).expect("run");
            arrow::compute::concat_batches(&exec.schema(), &batches).expect("concat")
        };
        let a = run(1, 1000);
        assert_eq!(a.num_rows(), 100);
        assert_eq!(a, run(3, 7));
    }
}
