//! The build side of a hash join, in memory or spilled (a grace hash join).
//!
//! # Design
//! ```text
//!   build partitions ──push──> BuildCollector ──fits──> one JoinTable, shared by all probes
//!                                  │ reservation refused
//!                                  v
//!   every build row ──key hash──> SPILL_BUCKETS parts on disk (Arrow IPC, mmap-read)
//!   each probe partition ──same hash──> its own probe parts on disk
//!   then, part by part: load build part i as a JoinTable (shared while any probe uses it),
//!   join the probe's part i against it, emit build rows of part i that no probe matched
//! ```
//! A key always hashes to the same part on both sides, so joining part by part is exact;
//! only one or two build parts are in memory at a time. NULL keys never match, so their
//! rows may land in any part; what NOT IN needs from the whole build side (its row count
//! and whether any key is NULL) is counted while partitioning.
//!
//! Joins without keys (cross joins) cannot be partitioned and do not spill.

use std::path::Path;
use std::sync::{Arc, Mutex, MutexGuard, Weak};

use arrow::array::{ArrayRef, RecordBatch};
use arrow::compute::concat_batches;
use arrow::datatypes::{Schema, SchemaRef};
use sluice_flight_shuffle::{Exchange, ShuffleReader, ShuffleWriter};

use crate::error::{Result, SluiceError};
use crate::physical::exchange::{spill_bucket, spill_storage, split_rows, SPILL_BUCKETS};
use crate::physical::expr::PhysExpr;
use crate::physical::hash::hash_columns;
use crate::physical::join_table::{combined_validity, JoinTable};
use crate::physical::memory::{batch_bytes, MemoryPool, Reservation};
use crate::physical::parallel::{concat_compacted, PARALLEL_ROWS};
use crate::physical::{run_partitions, with_schema, Element, ExecNode, TaskContext};

/// Index bytes per build row on top of its data (bucket heads, chain link, stored hash).
const INDEX_BYTES_PER_ROW: usize = 24;

/// Rows of spilled probe batches joined at once (spilled batches are small; this
/// coalesces them).
const PROBE_BATCH_ROWS: usize = 8192;

/// Which build rows some probe matched, merged over the probe partitions of one part.
#[derive(Debug, Default)]
pub struct BuildTracker {
    /// Per build row of the part: matched by some probe partition.
    pub visited: Vec<bool>,
    /// Probe partitions that have not finished this part yet.
    pub remaining: usize,
}

/// The build side, ready for probing.
#[derive(Debug)]
pub struct BuildSide {
    /// Build rows in all parts.
    pub rows: usize,
    /// True when some build row has a NULL key (matters for NOT IN).
    pub has_null_key: bool,
    /// Where the rows are.
    pub storage: BuildStorage,
    trackers: Vec<Mutex<BuildTracker>>,
}

/// Where the build rows are.
#[derive(Debug)]
pub enum BuildStorage {
    /// One table in memory, with the reservation that accounts for it.
    Memory(Arc<JoinTable>, Reservation),
    /// [`SPILL_BUCKETS`] parts on disk.
    Spilled(SpilledBuild),
}

impl BuildSide {
    /// Number of parts a probe goes through (1 in memory).
    pub fn parts(&self) -> usize {
        self.trackers.len()
    }

    /// The match tracker of part `part`.
    pub fn tracker(&self, part: usize) -> Result<MutexGuard<'_, BuildTracker>> {
        self.trackers
            .get(part)
            .ok_or_else(|| SluiceError::exec(format!("hash join part {part} out of range")))?
            .lock()
            .map_err(|_| SluiceError::exec("hash join tracker lock poisoned"))
    }
}

/// Reads every build partition of `build` and keeps the rows in memory, or spills them
/// into parts once the memory pool refuses them (only when `keys` is not empty).
/// `probe_partitions` probes will each report on every part. `on_keys` gets the key
/// columns of a build side kept in memory, while its index is built.
pub fn collect_build(
    build: &Arc<dyn ExecNode>,
    keys: &[PhysExpr],
    probe_partitions: usize,
    ctx: &Arc<TaskContext>,
    on_keys: &(dyn Fn(&[ArrayRef]) -> Result<()> + Sync),
) -> Result<BuildSide> {
    let collector = Mutex::new(Collector::Memory {
        batches: Vec::new(),
        reservation: ctx.memory.reservation("HashJoinExec (build side)"),
    });
    let spill = SpillSpec {
        schema: nullable(&build.schema()),
        keys,
        dir: &ctx.config.spill_dir,
    };
    run_partitions(build, ctx, |stream| {
        for e in stream {
            let Element::Batch(b) = e? else { continue };
            if b.num_rows() > 0 {
                let mut c = collector
                    .lock()
                    .map_err(|_| SluiceError::exec("hash join build lock poisoned"))?;
                c.push(b, &spill)?;
            }
        }
        Ok(())
    })?;
    let collector = collector
        .into_inner()
        .map_err(|_| SluiceError::exec("hash join build lock poisoned"))?;
    let tracker = |rows: usize| {
        Mutex::new(BuildTracker {
            visited: vec![false; rows],
            remaining: probe_partitions,
        })
    };
    let spilled = match collector {
        Collector::Memory {
            batches,
            mut reservation,
        } => {
            // The probe partitions wait for the table: they lend their threads.
            let rows: usize = batches.iter().map(RecordBatch::num_rows).sum();
            let threads = if rows >= PARALLEL_ROWS {
                ctx.config.target_partitions
            } else {
                1
            };
            let batch = concat_compacted(&build.schema(), &batches, threads)?;
            drop(batches);
            let table = JoinTable::build_with(batch, keys, threads > 1, on_keys)?;
            match reservation.resize(table.memory_size()) {
                Ok(()) => {
                    return Ok(BuildSide {
                        rows: table.num_rows(),
                        has_null_key: table.has_null_key,
                        trackers: vec![tracker(table.num_rows())],
                        storage: BuildStorage::Memory(Arc::new(table), reservation),
                    })
                }
                Err(SluiceError::ResourcesExhausted(_)) if !keys.is_empty() => {
                    let mut s = BuildSpill::new(&spill)?;
                    s.write(table.batch, &spill)?;
                    s
                }
                Err(e) => return Err(e),
            }
        }
        Collector::Spilling(s) => s,
    };
    let BuildSpill {
        exchange,
        mut writer,
        rows,
        has_null_key,
    } = spilled;
    writer.finish()?;
    Ok(BuildSide {
        rows,
        has_null_key,
        trackers: (0..SPILL_BUCKETS).map(|_| tracker(0)).collect(),
        storage: BuildStorage::Spilled(SpilledBuild {
            exchange,
            spill_schema: spill.schema,
            schema: build.schema(),
            keys: keys.to_vec(),
            memory: ctx.memory.clone(),
            loaded: (0..SPILL_BUCKETS)
                .map(|_| Mutex::new(Weak::new()))
                .collect(),
        }),
    })
}

/// How build rows are spilled.
struct SpillSpec<'a> {
    schema: SchemaRef,
    keys: &'a [PhysExpr],
    dir: &'a Path,
}

/// The build side while it is read.
enum Collector {
    Memory {
        batches: Vec<RecordBatch>,
        reservation: Reservation,
    },
    Spilling(BuildSpill),
}

impl Collector {
    fn push(&mut self, batch: RecordBatch, spec: &SpillSpec) -> Result<()> {
        let (batches, reservation) = match self {
            Self::Spilling(s) => return s.write(batch, spec),
            Self::Memory {
                batches,
                reservation,
            } => (batches, reservation),
        };
        let grow = batch_bytes(&batch) + batch.num_rows() * INDEX_BYTES_PER_ROW;
        let want = reservation.size() + grow;
        let grown = if spec.keys.is_empty() {
            reservation.resize(want)
        } else {
            reservation.resize_spillable(want)
        };
        match grown {
            Ok(()) => {
                batches.push(batch);
                return Ok(());
            }
            Err(SluiceError::ResourcesExhausted(_)) if !spec.keys.is_empty() => {}
            Err(e) => return Err(e),
        }
        let mut s = BuildSpill::new(spec)?;
        for b in std::mem::take(batches).into_iter().chain([batch]) {
            s.write(b, spec)?;
        }
        // Dropping the in-memory state releases its reservation.
        *self = Self::Spilling(s);
        Ok(())
    }
}

/// Build rows being written into parts, with what NOT IN needs to know of all of them.
struct BuildSpill {
    exchange: Exchange,
    writer: Box<dyn ShuffleWriter>,
    rows: usize,
    has_null_key: bool,
}

impl BuildSpill {
    fn new(spec: &SpillSpec) -> Result<Self> {
        let exchange = spill_storage(spec.dir, spec.schema.clone(), SPILL_BUCKETS)?;
        let writer = exchange.writer(0)?;
        Ok(Self {
            exchange,
            writer,
            rows: 0,
            has_null_key: false,
        })
    }

    fn write(&mut self, batch: RecordBatch, spec: &SpillSpec) -> Result<()> {
        let keys = spec
            .keys
            .iter()
            .map(|e| e.evaluate_array(&batch))
            .collect::<Result<Vec<_>>>()?;
        self.rows += batch.num_rows();
        self.has_null_key |= combined_validity(&keys).is_some_and(|v| v.null_count() > 0);
        write_parts(
            self.writer.as_mut(),
            &with_schema(&spec.schema, batch)?,
            &keys,
        )
    }
}

/// Writes the rows of `batch` into the part their `keys` hash to.
fn write_parts(
    writer: &mut dyn ShuffleWriter,
    batch: &RecordBatch,
    keys: &[arrow::array::ArrayRef],
) -> Result<()> {
    let hashes = hash_columns(keys, batch.num_rows())?;
    for (part, rows) in split_rows(batch, &hashes, SPILL_BUCKETS, spill_bucket)? {
        writer.write(part, rows)?;
    }
    Ok(())
}

/// `schema` with every field nullable (spill files take any batch of those types).
fn nullable(schema: &SchemaRef) -> SchemaRef {
    let fields: Vec<_> = schema
        .fields()
        .iter()
        .map(|f| f.as_ref().clone().with_nullable(true))
        .collect();
    Arc::new(Schema::new(fields))
}

/// Build rows spilled into parts.
#[derive(Debug)]
pub struct SpilledBuild {
    exchange: Exchange,
    /// The schema of the spill files (every field nullable).
    spill_schema: SchemaRef,
    /// The build side's own schema.
    schema: SchemaRef,
    keys: Vec<PhysExpr>,
    memory: Arc<MemoryPool>,
    /// The table of each part while some probe holds it.
    loaded: Vec<Mutex<Weak<LoadedPart>>>,
}

/// One build part loaded as a table, with the memory it holds.
#[derive(Debug)]
pub struct LoadedPart {
    /// The part's rows and index.
    pub table: Arc<JoinTable>,
    _reservation: Reservation,
}

impl SpilledBuild {
    /// The table of part `part`, loaded once and shared while any probe holds it.
    pub fn load(&self, part: usize) -> Result<Arc<LoadedPart>> {
        let slot = self
            .loaded
            .get(part)
            .ok_or_else(|| SluiceError::exec(format!("hash join part {part} out of range")))?;
        let mut slot = slot
            .lock()
            .map_err(|_| SluiceError::exec("hash join part lock poisoned"))?;
        if let Some(p) = slot.upgrade() {
            return Ok(p);
        }
        let batches = read_all(self.exchange.reader(part)?)?;
        let batch = with_schema(&self.schema, concat_batches(&self.spill_schema, &batches)?)?;
        drop(batches);
        let table = JoinTable::build(batch, &self.keys)?;
        let mut reservation = self.memory.reservation("HashJoinExec (spilled build part)");
        reservation.resize(table.memory_size()).map_err(|e| {
            SluiceError::ResourcesExhausted(format!(
                "{e} (one of {SPILL_BUCKETS} spilled parts of the build side, {} rows, does not fit)",
                table.num_rows()
            ))
        })?;
        let p = Arc::new(LoadedPart {
            table: Arc::new(table),
            _reservation: reservation,
        });
        *slot = Arc::downgrade(&p);
        Ok(p)
    }
}

fn read_all(reader: Box<dyn ShuffleReader>) -> Result<Vec<RecordBatch>> {
    reader.map(|b| b.map_err(SluiceError::from)).collect()
}

/// One probe partition's rows, spilled into the parts of a spilled build side.
pub struct ProbeSpill {
    exchange: Exchange,
    writer: Box<dyn ShuffleWriter>,
    schema: SchemaRef,
}

impl ProbeSpill {
    /// Spill storage for probe batches of `schema` in `dir`.
    pub fn new(dir: &Path, schema: &SchemaRef) -> Result<Self> {
        let schema = nullable(schema);
        let exchange = spill_storage(dir, schema.clone(), SPILL_BUCKETS)?;
        let writer = exchange.writer(0)?;
        Ok(Self {
            exchange,
            writer,
            schema,
        })
    }

    /// Spills `batch`, whose join keys are `keys`.
    pub fn write(&mut self, batch: RecordBatch, keys: &[arrow::array::ArrayRef]) -> Result<()> {
        let batch = with_schema(&self.schema, batch)?;
        write_parts(self.writer.as_mut(), &batch, keys)
    }

    /// No more probe rows: the parts can be read.
    pub fn finish(mut self) -> Result<SpilledProbe> {
        self.writer.finish()?;
        Ok(SpilledProbe {
            exchange: self.exchange,
            schema: self.schema,
        })
    }
}

/// A probe partition's spilled rows, readable part by part.
pub struct SpilledProbe {
    exchange: Exchange,
    schema: SchemaRef,
}

impl SpilledProbe {
    /// The batches of part `part`, coalesced into batches of about [`PROBE_BATCH_ROWS`].
    pub fn part(&self, part: usize) -> Result<ProbePart> {
        Ok(ProbePart {
            reader: self.exchange.reader(part)?,
            schema: self.schema.clone(),
        })
    }
}

/// Reads one part of a spilled probe side.
pub struct ProbePart {
    reader: Box<dyn ShuffleReader>,
    schema: SchemaRef,
}

impl ProbePart {
    /// The next coalesced probe batch (under `schema`), or `None` at the end of the part.
    pub fn next_batch(&mut self, schema: &SchemaRef) -> Result<Option<RecordBatch>> {
        let mut held = Vec::new();
        let mut rows = 0;
        while rows < PROBE_BATCH_ROWS {
            match self.reader.next() {
                Some(b) => {
                    let b = b?;
                    rows += b.num_rows();
                    held.push(b);
                }
                None => break,
            }
        }
        if held.is_empty() {
            return Ok(None);
        }
        let batch = concat_batches(&self.schema, &held)?;
        Ok(Some(with_schema(schema, batch)?))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::physical::scan::MemoryExec;
    use crate::SessionConfig;
    use arrow::array::Int64Array;
    use arrow::datatypes::{DataType, Field};

    fn build_input(rows: i64) -> Arc<dyn ExecNode> {
        let schema = Arc::new(Schema::new(vec![Field::new("k", DataType::Int64, true)]));
        let k: Int64Array = (0..rows).map(|i| (i % 1000 != 0).then_some(i)).collect();
        let batch = RecordBatch::try_new(schema.clone(), vec![Arc::new(k)]).expect("batch");
        Arc::new(MemoryExec::try_new(schema, &[batch], None, 2, 4096).expect("exec"))
    }

    fn ctx(limit: usize) -> Arc<TaskContext> {
        Arc::new(TaskContext::new(
            SessionConfig::default().with_memory_limit(limit),
        ))
    }

    #[test]
    fn a_refused_build_spills_every_row_into_parts() {
        let keys = [PhysExpr::Column(0, "k".into())];
        let ctx = ctx(200_000);
        let side =
            collect_build(&build_input(100_000), &keys, 2, &ctx, &|_| Ok(())).expect("spills");
        assert_eq!(
            (side.rows, side.has_null_key, side.parts()),
            (100_000, true, 64)
        );
        let BuildStorage::Spilled(spilled) = &side.storage else {
            panic!("800 kB of keys must not fit in 200 kB")
        };
        let mut total = 0;
        for part in 0..side.parts() {
            let loaded = spilled.load(part).expect("a part fits");
            // Shared while held: a second load is the same table.
            let again = spilled.load(part).expect("loaded");
            assert!(Arc::ptr_eq(&loaded.table, &again.table));
            total += loaded.table.num_rows();
        }
        assert_eq!(total, 100_000);
        assert_eq!(
            ctx.memory.used(),
            0,
            "parts release their memory when dropped"
        );
    }

    #[test]
    fn a_build_that_fits_stays_in_memory() {
        let keys = [PhysExpr::Column(0, "k".into())];
        let side =
            collect_build(&build_input(1000), &keys, 2, &ctx(1 << 30), &|_| Ok(())).expect("fits");
        assert!(matches!(side.storage, BuildStorage::Memory(..)));
        assert_eq!(side.parts(), 1);
    }
}
