//! Hash join: every join type, with either input as the build side.
//!
//! # Design
//! ```text
//!   build input (all partitions) ──collect once──> JoinTable (shared by all probe partitions)
//!   probe partition p ──> ProbeOp: hash keys → candidate pairs → vectorized key check
//!                                  → residual filter → emit per mode
//!   last probe partition to end ──> emits build rows never / ever matched (outer, semi, anti)
//! ```
//! Candidates come from hash equality only; keys are then compared column by column with
//! Arrow's `eq` kernel on the gathered pairs, so any key type works without per-row dispatch.

use std::sync::{Arc, OnceLock};

use arrow::array::{
    new_null_array, Array, ArrayRef, BooleanArray, RecordBatch, RecordBatchOptions, UInt32Array,
};
use arrow::compute::kernels::cmp;
use arrow::compute::{and, filter, take};
use arrow::datatypes::{Schema, SchemaRef};

use crate::error::{Result, SluiceError};
use crate::physical::dynamic_filter::DynamicFilter;
use crate::physical::expr::PhysExpr;
use crate::physical::join_spill::{
    collect_build, BuildSide, BuildStorage, LoadedPart, ProbePart, ProbeSpill, SpilledProbe,
};
use crate::physical::join_table::{indices, JoinTable};
use crate::physical::{Element, ElementStream, ExecNode, Operator, OperatorStream, TaskContext};

/// What a join emits, relative to its build and probe sides.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct JoinMode {
    /// Matching (left, right) pairs.
    pub pairs: bool,
    /// Probe rows without a match, padded with NULLs.
    pub probe_outer: bool,
    /// Build rows without a match, padded with NULLs.
    pub build_outer: bool,
    /// Probe rows with a match (probe columns only).
    pub probe_semi: bool,
    /// Probe rows without a match (probe columns only).
    pub probe_anti: bool,
    /// Build rows with a match (build columns only).
    pub build_semi: bool,
    /// Build rows without a match (build columns only).
    pub build_anti: bool,
    /// NOT IN semantics for `probe_anti`: NULLs on either side drop rows.
    pub null_aware: bool,
}

impl JoinMode {
    fn tracks_build(&self) -> bool {
        self.build_outer || self.build_semi || self.build_anti
    }
}

/// Why a build failed (kept apart so a memory-limit failure stays that kind of error).
#[derive(Debug, Clone)]
enum BuildError {
    Resources(String),
    Other(String),
}

/// The plan node.
#[derive(Debug)]
pub struct HashJoinExec {
    build: Arc<dyn ExecNode>,
    probe: Arc<dyn ExecNode>,
    build_keys: Vec<PhysExpr>,
    probe_keys: Vec<PhysExpr>,
    /// Residual condition bound to (left columns ++ right columns).
    filter: Option<PhysExpr>,
    build_is_left: bool,
    mode: JoinMode,
    dynamic_filters: Vec<(usize, Arc<DynamicFilter>)>,
    pair_schema: SchemaRef,
    schema: SchemaRef,
    /// Where each output column comes from.
    sources: Arc<[Source]>,
    /// The output columns kept, when not all of them.
    projection: Option<Vec<usize>>,
    /// The build side, in memory or spilled (its memory is released with the plan).
    build_side: OnceLock<std::result::Result<Arc<BuildSide>, BuildError>>,
}

/// How to construct a [`HashJoinExec`].
#[derive(Debug)]
pub struct HashJoinSpec {
    /// The side that is hashed.
    pub build: Arc<dyn ExecNode>,
    /// The side that streams.
    pub probe: Arc<dyn ExecNode>,
    /// Key expressions over the build side.
    pub build_keys: Vec<PhysExpr>,
    /// Key expressions over the probe side (same count and order).
    pub probe_keys: Vec<PhysExpr>,
    /// Residual condition over left ++ right columns.
    pub filter: Option<PhysExpr>,
    /// True when the build side is the logical left input.
    pub build_is_left: bool,
    /// What to emit.
    pub mode: JoinMode,
    /// Filters on probe-side scans, each to set from build key `.0` once the build is in
    /// memory (see `dynamic_filter`).
    pub dynamic_filters: Vec<(usize, Arc<DynamicFilter>)>,
    /// The output columns to produce (indices into the join's whole output), when the
    /// parent needs only some: the others are never gathered.
    pub projection: Option<Vec<usize>>,
}

/// Where an output column of a join comes from: a column of the probe or of the build
/// side (NULL where that side is padded).
#[derive(Debug, Clone, Copy)]
enum Source {
    Probe(usize),
    Build(usize),
}

impl HashJoinExec {
    /// A join from its spec; fails when the projection names a column the join does not
    /// output.
    pub fn try_new(spec: HashJoinSpec) -> Result<Self> {
        let (l, r) = if spec.build_is_left {
            (spec.build.schema(), spec.probe.schema())
        } else {
            (spec.probe.schema(), spec.build.schema())
        };
        let fields: Vec<_> = l
            .fields()
            .iter()
            .chain(r.fields())
            .map(|f| Arc::new(f.as_ref().clone().with_nullable(true)))
            .collect();
        let pair_schema = Arc::new(Schema::new(fields));
        let m = spec.mode;
        let (np, nb) = (
            spec.probe.schema().fields().len(),
            spec.build.schema().fields().len(),
        );
        let (probe, build) = ((0..np).map(Source::Probe), (0..nb).map(Source::Build));
        let (schema, sources): (SchemaRef, Vec<Source>) =
            if m.pairs || m.probe_outer || m.build_outer {
                let sources = if spec.build_is_left {
                    build.chain(probe).collect()
                } else {
                    probe.chain(build).collect()
                };
                (pair_schema.clone(), sources)
            } else if m.probe_semi || m.probe_anti {
                (spec.probe.schema(), probe.collect())
            } else {
                (spec.build.schema(), build.collect())
            };
        let (schema, sources) = match &spec.projection {
            Some(p) => {
                if let Some(&bad) = p.iter().find(|&&i| i >= sources.len()) {
                    return Err(SluiceError::plan(format!(
                        "internal: join projection column {bad} of {}",
                        sources.len()
                    )));
                }
                (
                    Arc::new(schema.project(p)?),
                    p.iter().map(|&i| sources[i]).collect(),
                )
            }
            None => (schema, sources),
        };
        Ok(Self {
            build: spec.build,
            probe: spec.probe,
            build_keys: spec.build_keys,
            probe_keys: spec.probe_keys,
            filter: spec.filter,
            build_is_left: spec.build_is_left,
            mode: spec.mode,
            dynamic_filters: spec.dynamic_filters,
            pair_schema,
            schema,
            sources: sources.into(),
            projection: spec.projection,
            build_side: OnceLock::new(),
        })
    }

    fn build_side(&self, ctx: &Arc<TaskContext>) -> Result<Arc<BuildSide>> {
        let r = self.build_side.get_or_init(|| {
            let partitions = self.probe.output_partitions();
            let set_filters = |keys: &[ArrayRef]| -> Result<()> {
                for (k, f) in &self.dynamic_filters {
                    if let Some(keys) = keys.get(*k) {
                        f.set(keys)?;
                    }
                }
                Ok(())
            };
            match collect_build(&self.build, &self.build_keys, partitions, ctx, &set_filters) {
                Ok(b) => Ok(Arc::new(b)),
                Err(SluiceError::ResourcesExhausted(m)) => Err(BuildError::Resources(m)),
                Err(e) => Err(BuildError::Other(e.to_string())),
            }
        });
        match r {
            Ok(b) => Ok(b.clone()),
            Err(BuildError::Resources(m)) => Err(SluiceError::ResourcesExhausted(m.clone())),
            Err(BuildError::Other(m)) => Err(SluiceError::Execution(m.clone())),
        }
    }
}

impl ExecNode for HashJoinExec {
    fn name(&self) -> &'static str {
        "HashJoinExec"
    }
    fn schema(&self) -> SchemaRef {
        self.schema.clone()
    }
    fn children(&self) -> Vec<Arc<dyn ExecNode>> {
        vec![self.build.clone(), self.probe.clone()]
    }
    fn output_partitions(&self) -> usize {
        self.probe.output_partitions()
    }
    fn execute(&self, partition: usize, ctx: &Arc<TaskContext>) -> Result<ElementStream> {
        let build = self.build_side(ctx)?;
        let (table, phase) = match &build.storage {
            BuildStorage::Memory(t, _) => (t.clone(), Phase::Probe),
            BuildStorage::Spilled(_) => (
                Arc::new(JoinTable::empty(self.build.schema())),
                Phase::Spill(ProbeSpill::new(
                    &ctx.config.spill_dir,
                    &self.probe.schema(),
                )?),
            ),
        };
        let input = self.probe.execute(partition, ctx)?;
        let op = ProbeOp {
            table,
            build,
            phase,
            probe_keys: self.probe_keys.clone(),
            filter: self.filter.clone(),
            build_is_left: self.build_is_left,
            mode: self.mode,
            pair_schema: self.pair_schema.clone(),
            probe_schema: self.probe.schema(),
            schema: self.schema.clone(),
            sources: self.sources.clone(),
            visited: vec![],
            pending: None,
        };
        Ok(OperatorStream::boxed(input, op))
    }
    fn details(&self) -> String {
        let keys: Vec<String> = self
            .build_keys
            .iter()
            .zip(&self.probe_keys)
            .map(|(b, p)| format!("{b} = {p}"))
            .collect();
        let mut s = format!(
            "mode={:?}, build={}, on=[{}]",
            self.mode,
            if self.build_is_left { "left" } else { "right" },
            keys.join(", ")
        );
        if let Some(f) = &self.filter {
            s.push_str(&format!(", filter={f}"));
        }
        if let Some(p) = &self.projection {
            s.push_str(&format!(", projection={p:?}"));
        }
        s.replace("JoinMode ", "")
    }
}

struct ProbeOp {
    /// The table probed now: the whole build side, or the current part of a spilled one.
    table: Arc<JoinTable>,
    build: Arc<BuildSide>,
    phase: Phase,
    probe_keys: Vec<PhysExpr>,
    filter: Option<PhysExpr>,
    build_is_left: bool,
    mode: JoinMode,
    pair_schema: SchemaRef,
    probe_schema: SchemaRef,
    /// The output schema, and where each of its columns comes from.
    schema: SchemaRef,
    sources: Arc<[Source]>,
    /// Build rows of `table` matched by this partition (only when the mode tracks the
    /// build side).
    visited: Vec<bool>,
    /// The probe batch being joined, when it yields its output in several chunks.
    pending: Option<PendingProbe>,
}

/// Where a probe partition is.
enum Phase {
    /// Probing an in-memory build side as batches arrive.
    Probe,
    /// The build side spilled: probe batches are spilled into the same parts.
    Spill(ProbeSpill),
    /// Input ended: joining spilled part `part` (its table is `ProbeOp::table`).
    Join {
        probe: SpilledProbe,
        part: usize,
        reader: Option<(ProbePart, Arc<LoadedPart>)>,
    },
    /// Every part is joined.
    Done,
}

/// A probe batch part-way through: rows before `next` are joined.
struct PendingProbe {
    batch: RecordBatch,
    keys: Vec<ArrayRef>,
    next: usize,
    /// Probe rows that found a match so far (outer, semi and anti joins).
    matched: Vec<bool>,
}

/// Most pairs gathered at once for a join without keys (one output chunk).
const MAX_CROSS_PAIRS: usize = 1 << 16;

impl ProbeOp {
    /// Columns of `batch` gathered at `idx`.
    fn gather(batch: &RecordBatch, idx: &dyn Array) -> Result<Vec<ArrayRef>> {
        batch
            .columns()
            .iter()
            .map(|c| Ok(take(c, idx, None)?))
            .collect()
    }

    /// An output batch of `n` rows: each probe (build) column gathered from `probe`
    /// (`build`) at its indices, or all NULL when that side is `None`.
    fn emit(
        &self,
        probe: Option<(&RecordBatch, &UInt32Array)>,
        build: Option<(&RecordBatch, &UInt32Array)>,
        n: usize,
    ) -> Result<RecordBatch> {
        let cols = self
            .sources
            .iter()
            .zip(self.schema.fields())
            .map(|(s, f)| {
                let (side, i) = match *s {
                    Source::Probe(i) => (probe, i),
                    Source::Build(i) => (build, i),
                };
                Ok(match side {
                    Some((b, idx)) => take(b.column(i), idx, None)?,
                    None => new_null_array(f.data_type(), n),
                })
            })
            .collect::<Result<Vec<_>>>()?;
        self.batch(&self.schema, cols, n)
    }

    fn batch(&self, schema: &SchemaRef, cols: Vec<ArrayRef>, n: usize) -> Result<RecordBatch> {
        let opts = RecordBatchOptions::new().with_row_count(Some(n));
        Ok(RecordBatch::try_new_with_options(
            schema.clone(),
            cols,
            &opts,
        )?)
    }

    /// (left ++ right) columns from probe-side and build-side columns (what a residual
    /// filter is bound to).
    fn pair_batch(
        &self,
        probe_cols: Vec<ArrayRef>,
        build_cols: Vec<ArrayRef>,
        n: usize,
    ) -> Result<RecordBatch> {
        let cols = if self.build_is_left {
            build_cols.into_iter().chain(probe_cols).collect()
        } else {
            probe_cols.into_iter().chain(build_cols).collect()
        };
        self.batch(&self.pair_schema, cols, n)
    }

    /// The verified matching pairs (probe row, build row) of probe rows `range`.
    fn matches(
        &self,
        batch: &RecordBatch,
        keys: &[ArrayRef],
        range: std::ops::Range<usize>,
    ) -> Result<(Vec<u32>, Vec<u32>)> {
        let (mut pidx, mut bidx) = (Vec::new(), Vec::new());
        if keys.is_empty() {
            self.table.cross(range, &mut pidx, &mut bidx);
        } else {
            self.table.candidates(keys, range, &mut pidx, &mut bidx)?;
        }
        self.verify(batch, keys, pidx, bidx)
    }

    /// Where the next output chunk of `p` ends: a keyed join's matches come in one chunk;
    /// a join without keys pairs every build row with each probe row, so its chunks hold
    /// about [`MAX_CROSS_PAIRS`] pairs.
    fn chunk_end(&self, p: &PendingProbe) -> usize {
        let n = p.batch.num_rows();
        if !p.keys.is_empty() {
            return n;
        }
        let per = (MAX_CROSS_PAIRS / self.table.num_rows().max(1)).max(1);
        (p.next + per).min(n)
    }

    /// Keeps the candidate pairs whose keys are equal and that pass the residual filter.
    fn verify(
        &self,
        batch: &RecordBatch,
        keys: &[ArrayRef],
        p: Vec<u32>,
        b: Vec<u32>,
    ) -> Result<(Vec<u32>, Vec<u32>)> {
        // An exact index's pairs have equal keys: only a residual filter is left to test.
        let exact = self.table.exact();
        if p.is_empty() || (exact && self.filter.is_none()) {
            return Ok((p, b));
        }
        let (pa, ba) = (indices(&p), indices(&b));
        let mut mask: Option<BooleanArray> = None;
        let unchecked = if exact { &[][..] } else { keys };
        for (pk, bk) in unchecked.iter().zip(&self.table.keys) {
            let eq = cmp::eq(&take(pk, &pa, None)?, &take(bk, &ba, None)?)?;
            mask = Some(match mask {
                None => eq,
                Some(m) => and(&m, &eq)?,
            });
        }
        if let Some(f) = &self.filter {
            let joined = self.pair_batch(
                Self::gather(batch, &pa)?,
                Self::gather(&self.table.batch, &ba)?,
                p.len(),
            )?;
            let fm = crate::physical::expr::to_mask(&f.evaluate_array(&joined)?)?;
            mask = Some(match mask {
                None => fm,
                Some(m) => and(&m, &fm)?,
            });
        }
        let Some(mask) = mask else { return Ok((p, b)) };
        let keep = |v: &[u32]| -> Vec<u32> {
            v.iter()
                .zip(mask.iter())
                .filter(|(_, m)| m.unwrap_or(false))
                .map(|(x, _)| *x)
                .collect()
        };
        Ok((keep(&p), keep(&b)))
    }

    fn probe_rows_where(
        &self,
        batch: &RecordBatch,
        keep: Vec<bool>,
    ) -> Result<Option<RecordBatch>> {
        let mask = BooleanArray::from(keep);
        let n = mask.true_count();
        if n == 0 {
            return Ok(None);
        }
        // A semi or anti join outputs probe columns only.
        let cols: Vec<ArrayRef> = self
            .sources
            .iter()
            .filter_map(|s| match *s {
                Source::Probe(i) => Some(filter(batch.column(i), &mask).map_err(SluiceError::from)),
                Source::Build(_) => None,
            })
            .collect::<Result<_>>()?;
        Ok(Some(self.batch(&self.schema, cols, n)?))
    }
}

impl ProbeOp {
    /// Starts joining `batch`, with join keys `keys`, against the current table.
    fn start(
        &mut self,
        batch: RecordBatch,
        keys: Vec<ArrayRef>,
        out: &mut Vec<Element>,
    ) -> Result<()> {
        let n = batch.num_rows();
        self.pending = Some(PendingProbe {
            batch,
            keys,
            next: 0,
            matched: vec![false; n],
        });
        self.resume_chunk(out)
    }

    fn probe_keys(&self, batch: &RecordBatch) -> Result<Vec<ArrayRef>> {
        self.probe_keys
            .iter()
            .map(|e| e.evaluate_array(batch))
            .collect()
    }

    /// Emits the next output chunk of the pending probe batch.
    fn resume_chunk(&mut self, out: &mut Vec<Element>) -> Result<()> {
        let Some(mut p) = self.pending.take() else {
            return Ok(());
        };
        let m = self.mode;
        let end = self.chunk_end(&p);
        let (pidx, bidx) = self.matches(&p.batch, &p.keys, p.next..end)?;
        p.next = end;
        if m.tracks_build() {
            if self.visited.is_empty() {
                self.visited = vec![false; self.table.num_rows()];
            }
            for &b in &bidx {
                self.visited[b as usize] = true;
            }
        }
        for &i in &pidx {
            p.matched[i as usize] = true;
        }
        if m.pairs && !pidx.is_empty() {
            let (pa, ba) = (indices(&pidx), indices(&bidx));
            let joined = self.emit(
                Some((&p.batch, &pa)),
                Some((&self.table.batch, &ba)),
                pidx.len(),
            )?;
            out.push(Element::Batch(joined));
        }
        if p.next < p.batch.num_rows() {
            self.pending = Some(p);
            return Ok(());
        }
        let PendingProbe {
            batch,
            keys,
            matched,
            ..
        } = p;
        let n = batch.num_rows();
        if m.probe_outer || m.probe_semi || m.probe_anti {
            if m.probe_outer {
                let idx: Vec<u32> = (0..n as u32).filter(|&i| !matched[i as usize]).collect();
                if !idx.is_empty() {
                    let rows = self.emit(Some((&batch, &indices(&idx))), None, idx.len())?;
                    out.push(Element::Batch(rows));
                }
            } else {
                let keep: Vec<bool> = if m.probe_semi {
                    matched
                } else if m.null_aware && self.build.rows > 0 {
                    (0..n)
                        .map(|i| !matched[i] && keys.iter().all(|k| !k.is_null(i)))
                        .collect()
                } else {
                    matched.iter().map(|x| !x).collect()
                };
                if let Some(b) = self.probe_rows_where(&batch, keep)? {
                    out.push(Element::Batch(b));
                }
            }
        }
        Ok(())
    }

    /// This partition is done with the current table (the build side or one part of it):
    /// merges what it matched; the last partition to finish emits the build rows that
    /// were never (outer, anti) or ever (semi) matched.
    fn finish_part(&mut self, part: usize, out: &mut Vec<Element>) -> Result<()> {
        let m = self.mode;
        if !m.tracks_build() {
            return Ok(());
        }
        let visited = {
            let mut tr = self.build.tracker(part)?;
            let n = self.table.num_rows();
            if tr.visited.len() != n {
                tr.visited.resize(n, false);
            }
            for (i, v) in self.visited.iter().enumerate() {
                if *v {
                    tr.visited[i] = true;
                }
            }
            tr.remaining = tr.remaining.saturating_sub(1);
            if tr.remaining > 0 {
                return Ok(());
            }
            std::mem::take(&mut tr.visited)
        };
        let want_matched = m.build_semi;
        let idx: Vec<u32> = (0..self.table.num_rows() as u32)
            .filter(|&i| visited.get(i as usize).copied().unwrap_or(false) == want_matched)
            .collect();
        if idx.is_empty() {
            return Ok(());
        }
        let b = self.emit(None, Some((&self.table.batch, &indices(&idx))), idx.len())?;
        out.push(Element::Batch(b));
        Ok(())
    }

    /// One step through the spilled parts: load a part, join one probe batch of it, or
    /// finish it.
    fn join_spilled(&mut self, out: &mut Vec<Element>) -> Result<()> {
        let Phase::Join {
            probe,
            part,
            reader,
        } = &mut self.phase
        else {
            return Ok(());
        };
        let current = *part;
        let reader = match reader {
            Some((r, _)) => r,
            None => {
                let BuildStorage::Spilled(spilled) = &self.build.storage else {
                    return Err(SluiceError::exec("hash join build side is not spilled"));
                };
                let loaded = spilled.load(current)?;
                self.table = loaded.table.clone();
                self.visited.clear();
                &mut reader.insert((probe.part(current)?, loaded)).0
            }
        };
        if let Some(batch) = reader.next_batch(&self.probe_schema)? {
            let keys = self.probe_keys(&batch)?;
            return self.start(batch, keys, out);
        }
        self.finish_part(current, out)?;
        // Let go of the part (its memory is released once no probe holds it).
        self.table = Arc::new(JoinTable::empty(self.table.batch.schema()));
        if current + 1 == self.build.parts() {
            self.phase = Phase::Done;
        } else if let Phase::Join { part, reader, .. } = &mut self.phase {
            *part = current + 1;
            *reader = None;
        }
        Ok(())
    }
}

impl Operator for ProbeOp {
    fn process_batch(&mut self, batch: RecordBatch, out: &mut Vec<Element>) -> Result<()> {
        let m = self.mode;
        if m.probe_anti && m.null_aware && self.build.rows > 0 && self.build.has_null_key {
            return Ok(()); // x NOT IN (.., NULL, ..) is never true
        }
        let keys = self.probe_keys(&batch)?;
        if let Phase::Spill(spill) = &mut self.phase {
            return spill.write(batch, &keys);
        }
        self.start(batch, keys, out)
    }

    fn has_pending(&self) -> bool {
        self.pending.is_some() || matches!(self.phase, Phase::Join { .. })
    }

    fn resume(&mut self, out: &mut Vec<Element>) -> Result<()> {
        if self.pending.is_some() {
            self.resume_chunk(out)
        } else {
            self.join_spilled(out)
        }
    }

    fn on_end(&mut self, out: &mut Vec<Element>) -> Result<()> {
        match std::mem::replace(&mut self.phase, Phase::Done) {
            Phase::Spill(spill) => {
                self.phase = Phase::Join {
                    probe: spill.finish()?,
                    part: 0,
                    reader: None,
                };
                Ok(())
            }
            _ => self.finish_part(0, out),
        }
    }
}
