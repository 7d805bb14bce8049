//! The regular streaming join: an inner equi-join of two append-only streams, as a
//! symmetric hash join. Each side's rows are kept in `sluice-state` list state (key = the
//! arrow-row encoded join keys, value = the arrow-row encoded row); a batch from one side
//! is probed against the other side's state, then added to its own. Every pair is emitted
//! exactly once, when its later row arrives, and only as an insert: an inner join of
//! append-only inputs is append-only. Both inputs arrive partitioned by the key groups of
//! their join keys, so equal keys meet in one instance.
//!
//! An *interval join* (the condition bounds `left.t - right.t` between constants, see
//! [`super::interval`]) drops a row once the watermark shows no future row of the other
//! side can match it: a left row at `t` when the watermark reaches `t - lower`, a right row
//! at `t` when it reaches `t + upper`. A per-key event-time timer (rounded up to the
//! second) triggers the cleanup. Otherwise state grows with both inputs unless
//! `table.exec.state.ttl` is set: then a key's rows on one side are dropped once that side
//! has seen no row for the key for that long (wall clock), and later rows of the other
//! side no longer find them, as in Flink.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use arrow::array::{Array, ArrayRef, AsArray, RecordBatch, UInt32Array};
use arrow::compute::{filter_record_batch, take_record_batch};
use arrow::datatypes::SchemaRef;
use arrow::row::RowConverter;
use sluice_state::{
    KeyedStateBackend, ListState, MemoryStateBackend, StateDescriptor, VOID_NAMESPACE,
};

use super::changelog::{op_column, with_op_last, RowKind};
use super::interval::TimeBounds;
use super::two_input::{two_input_stream, Side, TwoInputOperator};
use super::TtlClock;
use super::{key_converter, operator_backend, row_converter};
use crate::error::Result;
use crate::logical::plan::JoinType;
use crate::physical::expr::{to_mask, PhysExpr};
use crate::physical::window_tvf::{micros_per_unit, to_micros};
use crate::physical::{cast_to_schema, Element, ElementStream, ExecNode, TaskContext};

/// The plan node.
#[derive(Debug)]
pub struct StreamJoinExec {
    left: Arc<dyn ExecNode>,
    right: Arc<dyn ExecNode>,
    left_keys: Vec<PhysExpr>,
    right_keys: Vec<PhysExpr>,
    /// Extra condition over the joined row.
    filter: Option<PhysExpr>,
    schema: SchemaRef,
    ttl: Option<Duration>,
    bounds: Option<TimeBounds>,
    join_type: JoinType,
}

impl StreamJoinExec {
    /// Joins `left` and `right` (each partitioned by the key groups of its keys, into the
    /// same number of partitions) where `left_keys` equal `right_keys` and `filter` holds.
    pub fn new(
        (left, left_keys): (Arc<dyn ExecNode>, Vec<PhysExpr>),
        (right, right_keys): (Arc<dyn ExecNode>, Vec<PhysExpr>),
        filter: Option<PhysExpr>,
        schema: SchemaRef,
        ttl: Option<Duration>,
    ) -> Self {
        Self {
            left,
            right,
            left_keys,
            right_keys,
            filter,
            schema,
            ttl,
            bounds: None,
            join_type: JoinType::Inner,
        }
    }

    /// A LEFT, RIGHT or FULL outer join: unmatched rows of the preserved side(s) are
    /// emitted padded with NULLs (`+I`) and retracted (`-D`) at their first match, so the
    /// output is a changelog (`op` last) and the node's schema gains the `op` column.
    pub fn with_join_type(mut self, join_type: JoinType) -> Self {
        self.join_type = join_type;
        self
    }

    /// An interval join: rows are dropped once `bounds` and the watermark rule out a match.
    pub fn with_time_bounds(mut self, bounds: Option<TimeBounds>) -> Self {
        self.bounds = bounds;
        self
    }
}

impl ExecNode for StreamJoinExec {
    fn name(&self) -> &'static str {
        "StreamJoinExec"
    }
    fn schema(&self) -> SchemaRef {
        match self.join_type {
            JoinType::Inner => self.schema.clone(),
            _ => with_op_last(&self.schema),
        }
    }
    fn children(&self) -> Vec<Arc<dyn ExecNode>> {
        vec![self.left.clone(), self.right.clone()]
    }
    fn output_partitions(&self) -> usize {
        self.left.output_partitions()
    }
    fn execute(&self, partition: usize, ctx: &Arc<TaskContext>) -> Result<ElementStream> {
        two_input_stream(
            self.left.execute(partition, ctx)?,
            self.right.execute(partition, ctx)?,
            ctx.config.exchange_capacity,
            self.operator(partition)?,
        )
    }
    fn details(&self) -> String {
        let pairs: Vec<String> = self
            .left_keys
            .iter()
            .zip(&self.right_keys)
            .map(|(l, r)| format!("{l} = {r}"))
            .collect();
        let mut d = format!(
            "{}, on=[{}]",
            format!("{:?}", self.join_type).to_lowercase(),
            pairs.join(", ")
        );
        if let Some(f) = &self.filter {
            d.push_str(&format!(", filter={f}"));
        }
        if let Some(b) = &self.bounds {
            let s = |v: Option<i64>| v.map_or("unbounded".into(), |v| format!("{v}µs"));
            d.push_str(&format!(
                ", interval: {} <= {} - {} <= {}",
                s(b.lower),
                b.left,
                b.right,
                s(b.upper)
            ));
        }
        if let Some(t) = self.ttl {
            d.push_str(&format!(", state ttl={t:?}"));
        }
        d
    }
}

impl StreamJoinExec {
    /// The operator of instance `partition`, with empty state.
    fn operator(&self, partition: usize) -> Result<JoinOp> {
        let mut backend = operator_backend(self.output_partitions(), partition)?;
        let mut sides = Vec::with_capacity(2);
        // Each side's time column and how long after it a row may still match.
        let (left_time, right_time) = match &self.bounds {
            Some(b) => (
                b.lower.map(|lo| (b.left.clone(), -lo)),
                b.upper.map(|hi| (b.right.clone(), hi)),
            ),
            None => (None, None),
        };
        for (name, input, keys, time) in [
            ("left", &self.left, &self.left_keys, left_time),
            ("right", &self.right, &self.right_keys, right_time),
        ] {
            let mut desc = StateDescriptor::new(format!("{name} rows"));
            if let Some(ms) = TtlClock::new(self.ttl).ttl_ms() {
                desc = desc.with_ttl_ms(ms);
            }
            let schema = input.schema();

            let retain = match time {
                Some((expr, after)) => {
                    let t = expr.data_type(&schema)?;
                    let unit = micros_per_unit(&t).ok_or_else(|| {
                        crate::error::SluiceError::plan(format!(
                            "interval join time column {expr} is {t}, not a TIMESTAMP"
                        ))
                    })?;
                    Some(Retain { expr, unit, after })
                }
                None => None,
            };
            sides.push(JoinSide {
                fields: schema.fields().clone(),
                keys: keys.clone(),
                key_conv: key_converter(keys, &schema)?,
                row_conv: row_converter(&schema)?,
                rows: backend.register_list::<StoredRow>(&desc)?,
                retain,
            });
        }
        let (Some(right), Some(left)) = (sides.pop(), sides.pop()) else {
            return Err(crate::error::SluiceError::exec("join: missing a side"));
        };
        Ok(JoinOp {
            left,
            right,
            filter: self.filter.clone(),
            schema: self.schema.clone(),
            join_type: self.join_type,
            backend,
            clock: TtlClock::new(self.ttl),
        })
    }
}

/// A stored row: the watermark (µs) at which it can no longer match (`i64::MAX`: never),
/// how many rows of the other side it has matched (an outer join's NULL padding is
/// retracted at the first), and its arrow-row encoding.
type StoredRow = (i64, i64, Vec<u8>);

/// How long an interval join keeps one side's rows: until the watermark reaches the time
/// column (`expr`, in units of `unit` µs; 0 = nanoseconds) plus `after` µs.
struct Retain {
    expr: PhysExpr,
    unit: i64,
    after: i64,
}

/// One input's keys, encoders and stored rows.
struct JoinSide {
    /// The input's columns (an outer join pads the other side's rows with their NULLs).
    fields: arrow::datatypes::Fields,
    keys: Vec<PhysExpr>,
    key_conv: RowConverter,
    row_conv: RowConverter,
    rows: ListState<StoredRow>,
    retain: Option<Retain>,
}

/// `side`'s input and the other one, out of `left` and `right`.
fn this_and_other<'a>(
    side: Side,
    left: &'a JoinSide,
    right: &'a JoinSide,
) -> (&'a JoinSide, &'a JoinSide) {
    match side {
        Side::Left => (left, right),
        Side::Right => (right, left),
    }
}

/// The timer namespace of a side's cleanup timers.
fn side_ns(side: Side) -> &'static [u8] {
    match side {
        Side::Left => b"L",
        Side::Right => b"R",
    }
}

/// Cleanup timers fire on whole seconds (µs), so a key has at most one per second.
fn round_up_to_second(t: i64) -> i64 {
    t.div_euclid(1_000_000)
        .saturating_add(1)
        .saturating_mul(1_000_000)
}

struct JoinOp {
    left: JoinSide,
    right: JoinSide,
    filter: Option<PhysExpr>,
    /// The joined columns (without `op`).
    schema: SchemaRef,
    join_type: JoinType,
    backend: MemoryStateBackend,
    clock: TtlClock,
}

impl JoinOp {
    /// True when `side`'s rows all appear in the output (an outer join's preserved side).
    fn preserves(&self, side: Side) -> bool {
        matches!(
            (self.join_type, side),
            (JoinType::Full, _) | (JoinType::Left, Side::Left) | (JoinType::Right, Side::Right)
        )
    }

    /// `batch` (joined columns) with the `op` column, for an outer join's changelog; an
    /// inner join's output has none.
    fn with_op(&self, batch: RecordBatch, kind: RowKind) -> Result<RecordBatch> {
        if self.join_type == JoinType::Inner {
            return Ok(batch);
        }
        let mut cols = batch.columns().to_vec();
        cols.push(op_column(std::iter::repeat_n(kind, batch.num_rows())));
        Ok(RecordBatch::try_new(with_op_last(&self.schema), cols)?)
    }

    /// Rows of `side` (its columns `cols`) padded with NULLs for the other side, as `kind`.
    fn padded(&self, side: Side, cols: Vec<ArrayRef>, kind: RowKind) -> Result<Element> {
        let n = cols.first().map_or(0, |c| c.len());
        let (_, other) = this_and_other(side, &self.left, &self.right);
        let nulls: Vec<ArrayRef> = other
            .fields
            .iter()
            .map(|f| arrow::array::new_null_array(f.data_type(), n))
            .collect();
        let cols = match side {
            Side::Left => [cols, nulls].concat(),
            Side::Right => [nulls, cols].concat(),
        };
        let joined = cast_to_schema(&self.schema, cols, n)?;
        Ok(Element::Batch(self.with_op(joined, kind)?))
    }
}

impl TwoInputOperator for JoinOp {
    fn process_batch(
        &mut self,
        side: Side,
        batch: RecordBatch,
        out: &mut Vec<Element>,
    ) -> Result<()> {
        self.clock.tick(&mut self.backend);
        let n = batch.num_rows();
        let (this, other) = this_and_other(side, &self.left, &self.right);
        let key_cols = this
            .keys
            .iter()
            .map(|k| k.evaluate_array(&batch))
            .collect::<Result<Vec<_>>>()?;
        let keys = this.key_conv.convert_columns(&key_cols)?;
        // A NULL key equals nothing: such rows neither match nor are kept.
        let has_null = |i: usize| key_cols.iter().any(|c| c.is_null(i));
        // Candidate pairs: a batch row and a stored row of the other side (its key, its
        // position in the key's list, its matches so far, its bytes).
        let mut probe: Vec<u32> = Vec::new();
        let mut matched: Vec<(&[u8], usize, i64, &[u8])> = Vec::new();
        for i in (0..n).filter(|&i| !has_null(i)) {
            let key = keys.row(i).data();
            for (j, (_, m, r)) in other
                .rows
                .get(&self.backend, key, VOID_NAMESPACE)?
                .iter()
                .enumerate()
            {
                probe.push(i as u32);
                matched.push((key, j, *m, r));
            }
        }
        let mut this_matches = vec![0i64; n];
        // Stored rows of the other side that matched now: (key, position) -> new matches.
        let mut other_matches: HashMap<(&[u8], usize), i64, ahash::RandomState> =
            HashMap::default();
        if !probe.is_empty() {
            let idx = UInt32Array::from(probe);
            let this_cols = take_record_batch(&batch, &idx)?.columns().to_vec();
            let parser = other.row_conv.parser();
            let other_cols = other
                .row_conv
                .convert_rows(matched.iter().map(|m| parser.parse(m.3)))?;
            let cols = match side {
                Side::Left => [this_cols, other_cols].concat(),
                Side::Right => [other_cols, this_cols].concat(),
            };
            let joined = cast_to_schema(&self.schema, cols, idx.len())?;
            let mask = match &self.filter {
                Some(f) => Some(to_mask(&f.evaluate_array(&joined)?)?),
                None => None,
            };
            let passes = |c: usize| mask.as_ref().is_none_or(|m| m.value(c));
            let mut first_match: Vec<u32> = Vec::new();
            for c in (0..idx.len()).filter(|&c| passes(c)) {
                this_matches[idx.value(c) as usize] += 1;
                let (key, j, before, _) = matched[c];
                let add = other_matches.entry((key, j)).or_insert(0);
                if *add == 0 && before == 0 {
                    first_match.push(c as u32);
                }
                *add += 1;
            }
            // An outer row of the other side that was emitted padded with NULLs is
            // retracted before its first real match.
            if self.preserves(side.other()) && !first_match.is_empty() {
                let rows = first_match
                    .iter()
                    .map(|&c| parser.parse(matched[c as usize].3));
                let cols = other.row_conv.convert_rows(rows)?;
                out.push(self.padded(side.other(), cols, RowKind::Delete)?);
            }
            let joined = match mask {
                Some(m) => filter_record_batch(&joined, &m)?,
                None => joined,
            };
            if joined.num_rows() > 0 {
                out.push(Element::Batch(self.with_op(joined, RowKind::Insert)?));
            }
        }
        // This side's outer rows without a match, padded with NULLs.
        if self.preserves(side) {
            let lonely: Vec<u32> = (0..n as u32)
                .filter(|&i| this_matches[i as usize] == 0)
                .collect();
            if !lonely.is_empty() {
                let cols = take_record_batch(&batch, &UInt32Array::from(lonely))?
                    .columns()
                    .to_vec();
                out.push(self.padded(side, cols, RowKind::Insert)?);
            }
        }
        let other_matches: Vec<(Vec<u8>, usize, i64)> = other_matches
            .into_iter()
            .map(|((k, j), add)| (k.to_vec(), j, add))
            .collect();
        let (this, other) = this_and_other(side, &self.left, &self.right);
        if self.preserves(side.other()) {
            for (key, j, add) in &other_matches {
                other
                    .rows
                    .modify(&mut self.backend, key, VOID_NAMESPACE, |i, r| {
                        if i == *j {
                            r.1 += add;
                        }
                    })?;
            }
        }
        let rows = this.row_conv.convert_columns(batch.columns())?;
        let drop_at = match &this.retain {
            Some(r) => {
                let t = arrow::compute::cast(
                    &r.expr.evaluate_array(&batch)?,
                    &arrow::datatypes::DataType::Int64,
                )?;
                let t = t.as_primitive::<arrow::datatypes::Int64Type>();
                // A NULL time never matches a bound: keep such rows no longer than needed.
                (0..n)
                    .map(|i| match t.is_null(i) {
                        true => i64::MIN,
                        false => to_micros(t.value(i), r.unit).saturating_add(r.after),
                    })
                    .collect()
            }
            None => vec![i64::MAX; n],
        };
        // One cleanup timer per key and second (registered once per batch).
        let mut timers: HashSet<(i64, &[u8]), ahash::RandomState> = HashSet::default();
        for i in (0..n).filter(|&i| !has_null(i)) {
            let key = keys.row(i).data();
            this.rows.add(
                &mut self.backend,
                key,
                VOID_NAMESPACE,
                (drop_at[i], this_matches[i], rows.row(i).as_ref().to_vec()),
            )?;
            if drop_at[i] != i64::MAX {
                let at = round_up_to_second(drop_at[i]);
                if timers.insert((at, key)) {
                    self.backend
                        .timers_mut()
                        .register_event_time_timer(at, key, side_ns(side))?;
                }
            }
        }
        Ok(())
    }

    /// Drops the rows the watermark `wm` has ruled out of any future match.
    fn on_watermark(&mut self, wm: i64, out: &mut Vec<Element>) -> Result<()> {
        for timer in self.backend.timers_mut().advance_watermark(wm) {
            let side = if timer.namespace == side_ns(Side::Left) {
                &self.left
            } else {
                &self.right
            };
            side.rows.retain(
                &mut self.backend,
                &timer.key,
                VOID_NAMESPACE,
                |(drop_at, _, _)| *drop_at > wm,
            )?;
        }
        out.push(Element::Watermark(wm));
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::physical::scan::MemoryExec;
    use arrow::array::Int64Array;
    use arrow::datatypes::{DataType, Field, Schema};

    fn input(name: &str) -> (Arc<dyn ExecNode>, Vec<PhysExpr>) {
        let schema = Arc::new(Schema::new(vec![
            Field::new(format!("{name}k"), DataType::Int64, true),
            Field::new(format!("{name}v"), DataType::Int64, true),
        ]));
        let exec = MemoryExec::try_new(schema, &[], None, 1, 10).expect("input");
        (
            Arc::new(exec),
            vec![PhysExpr::Column(0, format!("{name}k"))],
        )
    }

    fn op(ttl: Option<Duration>) -> JoinOp {
        let (l, r) = (input("l"), input("r"));
        let fields = [l.0.schema(), r.0.schema()]
            .iter()
            .flat_map(|s| s.fields().iter().cloned().collect::<Vec<_>>())
            .collect::<Vec<_>>();
        StreamJoinExec::new(l, r, None, Arc::new(Schema::new(fields)), ttl)
            .operator(0)
            .expect("operator")
    }

    fn batch(keys: Vec<Option<i64>>, vals: Vec<i64>) -> RecordBatch {
        let schema = Arc::new(Schema::new(vec![
            Field::new("k", DataType::Int64, true),
            Field::new("v", DataType::Int64, true),
        ]));
        RecordBatch::try_new(
            schema,
            vec![
                Arc::new(Int64Array::from(keys)),
                Arc::new(Int64Array::from(vals)),
            ],
        )
        .expect("batch")
    }

    /// The (left v, right v) pairs `side`'s batch produces.
    fn pairs(op: &mut JoinOp, side: Side, b: RecordBatch) -> Vec<(i64, i64)> {
        let mut out = Vec::new();
        op.process_batch(side, b, &mut out).expect("process");
        let mut p = Vec::new();
        for e in out {
            let Element::Batch(b) = e else { continue };
            let v = |c: usize| b.column(c).as_any().downcast_ref::<Int64Array>().cloned();
            let (Some(l), Some(r)) = (v(1), v(3)) else {
                panic!("not int columns")
            };
            p.extend(l.values().iter().copied().zip(r.values().iter().copied()));
        }
        p.sort();
        p
    }

    #[test]
    fn each_pair_is_emitted_once_when_its_later_row_arrives() {
        let mut op = op(None);
        assert!(pairs(
            &mut op,
            Side::Left,
            batch(vec![Some(1), Some(2)], vec![10, 20])
        )
        .is_empty());
        let p = pairs(
            &mut op,
            Side::Right,
            batch(
                vec![Some(1), Some(1), Some(3), None],
                vec![100, 101, 300, 400],
            ),
        );
        assert_eq!(p, [(10, 100), (10, 101)]);
        // A NULL key matches nothing and is not kept.
        let p = pairs(
            &mut op,
            Side::Left,
            batch(vec![Some(1), None], vec![11, 12]),
        );
        assert_eq!(p, [(11, 100), (11, 101)]);
        let p = pairs(&mut op, Side::Right, batch(vec![Some(2)], vec![200]));
        assert_eq!(p, [(20, 200)]);
    }

    #[test]
    fn an_interval_join_drops_rows_the_watermark_rules_out() {
        use arrow::array::TimestampMicrosecondArray;
        use arrow::datatypes::TimeUnit;
        let schema = Arc::new(Schema::new(vec![
            Field::new("k", DataType::Int64, true),
            Field::new("t", DataType::Timestamp(TimeUnit::Microsecond, None), true),
        ]));
        let side = || -> (Arc<dyn ExecNode>, Vec<PhysExpr>) {
            let exec = MemoryExec::try_new(schema.clone(), &[], None, 1, 10).expect("input");
            (Arc::new(exec), vec![PhysExpr::Column(0, "k".into())])
        };
        let joined = Arc::new(Schema::new(
            [schema.fields().to_vec(), schema.fields().to_vec()].concat(),
        ));
        // -10 s <= left.t - right.t <= 0: a left row may match for 10 s after its time,
        // a right row only until its own time.
        let bounds = TimeBounds {
            left: PhysExpr::Column(1, "t".into()),
            right: PhysExpr::Column(1, "t".into()),
            lower: Some(-10_000_000),
            upper: Some(0),
        };
        let mut op = StreamJoinExec::new(side(), side(), None, joined, None)
            .with_time_bounds(Some(bounds))
            .operator(0)
            .expect("operator");
        let rows = |ts: &[i64]| {
            RecordBatch::try_new(
                schema.clone(),
                vec![
                    Arc::new(Int64Array::from(vec![1; ts.len()])),
                    Arc::new(TimestampMicrosecondArray::from(ts.to_vec())),
                ],
            )
            .expect("batch")
        };
        let sec = 1_000_000;
        let mut out = Vec::new();
        op.process_batch(Side::Left, rows(&[sec, 5 * sec]), &mut out)
            .expect("left");
        op.process_batch(Side::Right, rows(&[3 * sec]), &mut out)
            .expect("right");
        let stored = |op: &JoinOp, s: &JoinSide| {
            s.rows
                .entries(&op.backend)
                .map_or(0, |e| e.map(|(_, _, l)| l.len()).sum::<usize>())
        };
        assert_eq!((stored(&op, &op.left), stored(&op, &op.right)), (2, 1));
        // At 12 s the left row of 1 s (matchable until 11 s) and the right row of 3 s go.
        op.on_watermark(12 * sec, &mut out).expect("watermark");
        assert_eq!((stored(&op, &op.left), stored(&op, &op.right)), (1, 0));
        assert!(matches!(out.last(), Some(Element::Watermark(w)) if *w == 12 * sec));
        op.on_watermark(16 * sec, &mut out).expect("watermark");
        assert_eq!(stored(&op, &op.left), 0);
    }

    /// The output rows as `op l_v r_v` text, in order.
    fn changelog(op: &mut JoinOp, side: Side, b: RecordBatch) -> Vec<String> {
        let mut out = Vec::new();
        op.process_batch(side, b, &mut out).expect("process");
        let mut lines = Vec::new();
        for e in out {
            let Element::Batch(b) = e else { continue };
            let v = |c: usize, i: usize| {
                let a = b
                    .column(c)
                    .as_any()
                    .downcast_ref::<Int64Array>()
                    .expect("int");
                if a.is_null(i) {
                    "-".to_string()
                } else {
                    a.value(i).to_string()
                }
            };
            let ops = b.column(4).as_string::<i32>();
            for i in 0..b.num_rows() {
                lines.push(format!("{} {} {}", ops.value(i), v(1, i), v(3, i)));
            }
        }
        lines
    }

    #[test]
    fn a_full_join_pads_unmatched_rows_and_retracts_the_padding_at_the_first_match() {
        let (l, r) = (input("l"), input("r"));
        let fields = [l.0.schema(), r.0.schema()]
            .iter()
            .flat_map(|s| s.fields().iter().cloned().collect::<Vec<_>>())
            .collect::<Vec<_>>();
        let mut op = StreamJoinExec::new(l, r, None, Arc::new(Schema::new(fields)), None)
            .with_join_type(JoinType::Full)
            .operator(0)
            .expect("operator");
        let left = changelog(
            &mut op,
            Side::Left,
            batch(vec![Some(1), None], vec![10, 11]),
        );
        assert_eq!(left, ["+I 10 -", "+I 11 -"]);
        // Two right rows match left 10 at once: one retraction, then both pairs.
        let right = changelog(
            &mut op,
            Side::Right,
            batch(vec![Some(1), Some(1), Some(2)], vec![100, 101, 200]),
        );
        assert_eq!(right, ["-D 10 -", "+I 10 100", "+I 10 101", "+I - 200"]);
        // Left 10 matched before: no second retraction.
        let more = changelog(&mut op, Side::Right, batch(vec![Some(1)], vec![102]));
        assert_eq!(more, ["+I 10 102"]);
        let late = changelog(&mut op, Side::Left, batch(vec![Some(2)], vec![20]));
        assert_eq!(late, ["-D - 200", "+I 20 200"]);
    }

    #[test]
    fn rows_older_than_the_state_ttl_no_longer_match() {
        let mut op = op(Some(Duration::from_millis(30)));
        assert!(pairs(&mut op, Side::Left, batch(vec![Some(1)], vec![10])).is_empty());
        std::thread::sleep(Duration::from_millis(80));
        assert!(
            pairs(&mut op, Side::Right, batch(vec![Some(1)], vec![100])).is_empty(),
            "the left row expired"
        );
        let p = pairs(&mut op, Side::Left, batch(vec![Some(1)], vec![11]));
        assert_eq!(p, [(11, 100)], "the right row is fresh");
    }
}
