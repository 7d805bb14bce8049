//! Partial aggregate states as keyed-state values: one [`PartialRow`] holds the state
//! columns of one group (as produced by an accumulator's `state`), one [`Partial`] per
//! column, in a canonical type (integers, dates, timestamps and booleans as `i64`; floats
//! as `f64`; decimals as `i128`; strings as bytes). [`AggCalls`] runs a streaming
//! aggregation's accumulators over batches and over stored rows: the window operator
//! stores rows as they come and merges them, vectorized, when the window fires; the
//! updating aggregate keeps one merged row per key.

use std::sync::Arc;

use arrow::array::{
    Array, ArrayRef, AsArray, Decimal128Array, Float64Array, Int64Array, RecordBatch, StringArray,
};
use arrow::datatypes::{DataType, Decimal128Type, Float64Type, Int64Type};
use sluice_state::{MemoryStateBackend, StateError, StateValue, ValueState};

use crate::error::{Result, SluiceError};
use crate::logical::expr::AggFunc;
use crate::physical::accumulator::{create_accumulator, state_types, Accumulator};
use crate::physical::aggregate::AggSpec;

/// The aggregate calls of a streaming aggregation, with the types of their state columns.
#[derive(Debug, Clone)]
pub struct AggCalls {
    aggs: Vec<AggSpec>,
    state_types: Vec<Vec<DataType>>,
    /// How each flattened state column merges, for [`AggCalls::merge_into`].
    merges: Vec<MergeOp>,
}

/// How two values of one state column combine.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum MergeOp {
    /// Counts and sums.
    Add,
    /// MIN.
    Min,
    /// MAX.
    Max,
}

/// One accumulator per aggregate call.
pub type Accumulators = Vec<Box<dyn Accumulator>>;

impl AggCalls {
    /// The calls `aggs`; DISTINCT aggregates (which have no mergeable state) are refused.
    pub fn try_new(aggs: Vec<AggSpec>) -> Result<Self> {
        if let Some(a) = aggs.iter().find(|a| a.distinct) {
            return Err(SluiceError::unsupported(format!(
                "{}(DISTINCT ...) in a streaming aggregate",
                a.func
            )));
        }
        let state_types = aggs
            .iter()
            .map(|a| state_types(a.func, a.input_type.as_ref()))
            .collect::<Result<Vec<_>>>()?;
        let merges = aggs
            .iter()
            .zip(&state_types)
            .flat_map(|(a, types)| {
                let op = match a.func {
                    AggFunc::Min => MergeOp::Min,
                    AggFunc::Max => MergeOp::Max,
                    AggFunc::Count | AggFunc::Sum | AggFunc::Avg => MergeOp::Add,
                };
                std::iter::repeat_n(op, types.len())
            })
            .collect();
        Ok(Self {
            aggs,
            state_types,
            merges,
        })
    }

    /// Merges group `g` of flattened state columns `states` (canonical types, as from
    /// [`AggCalls::states`]) into `stored`, value by value: the in-place update of a
    /// keyed partial state (see `ValueState::upsert`).
    pub fn merge_into(&self, stored: &mut PartialRow, states: &[ArrayRef], g: usize) -> Result<()> {
        for ((slot, col), op) in stored.0.iter_mut().zip(states).zip(&self.merges) {
            if col.is_null(g) {
                continue;
            }
            let new = match col.data_type() {
                DataType::Int64 => Partial::Int(col.as_primitive::<Int64Type>().value(g)),
                DataType::Float64 => Partial::Float(col.as_primitive::<Float64Type>().value(g)),
                DataType::Decimal128(..) => {
                    Partial::Decimal(col.as_primitive::<Decimal128Type>().value(g))
                }
                _ => Partial::Bytes(col.as_string::<i32>().value(g).as_bytes().to_vec()),
            };
            merge_value(slot, new, *op)?;
        }
        Ok(())
    }

    /// The calls, for EXPLAIN.
    pub fn specs(&self) -> &[AggSpec] {
        &self.aggs
    }

    /// Fresh accumulators.
    pub fn accumulators(&self) -> Result<Accumulators> {
        self.aggs
            .iter()
            .map(|a| create_accumulator(a.func, false, a.input_type.as_ref()))
            .collect()
    }

    /// Fresh accumulators updated with `batch`, row `i` into group `groups[i]`.
    pub fn update(&self, batch: &RecordBatch, groups: &[u32], n: usize) -> Result<Accumulators> {
        let mut accs = self.accumulators()?;
        for (spec, acc) in self.aggs.iter().zip(accs.iter_mut()) {
            let vals = spec
                .args
                .iter()
                .map(|e| e.evaluate_array(batch))
                .collect::<Result<Vec<_>>>()?;
            acc.update(&vals, groups, n)?;
        }
        Ok(accs)
    }

    /// The state columns of every call, flattened, in their canonical types (taken out of
    /// `accs`, which are empty afterwards).
    pub fn states(&self, accs: &mut Accumulators, n: usize) -> Result<Vec<ArrayRef>> {
        let mut out = Vec::new();
        for acc in accs.iter_mut() {
            for s in acc.state(n)? {
                let t = canonical(s.data_type())?;
                out.push(if s.data_type() == &t {
                    s
                } else {
                    arrow::compute::cast(&s, &t)?
                });
            }
        }
        Ok(out)
    }

    /// `rows` as flattened state columns, in the accumulators' state types.
    pub fn columns_of(&self, rows: &[&PartialRow]) -> Result<Vec<ArrayRef>> {
        self.state_types
            .iter()
            .flatten()
            .enumerate()
            .map(|(col, t)| column_of(rows.iter().copied(), col, t))
            .collect()
    }

    /// Merges flattened state columns `states` (in their state or canonical types) into
    /// `accs`, row `i` into group `groups[i]`.
    pub fn merge(
        &self,
        accs: &mut Accumulators,
        states: &[ArrayRef],
        groups: &[u32],
        n: usize,
    ) -> Result<()> {
        let mut cols = states.iter();
        for (acc, types) in accs.iter_mut().zip(&self.state_types) {
            let typed = types
                .iter()
                .map(|t| {
                    let c = cols.next().ok_or_else(|| {
                        SluiceError::exec("streaming aggregate: fewer state columns than calls")
                    })?;
                    Ok(if c.data_type() == t {
                        c.clone()
                    } else {
                        arrow::compute::cast(c, t)?
                    })
                })
                .collect::<Result<Vec<_>>>()?;
            acc.merge(&typed, groups, n)?;
        }
        Ok(())
    }

    /// The final values of `accs` (one column per call), taken out of them.
    pub fn evaluate(&self, accs: &mut Accumulators, n: usize) -> Result<Vec<ArrayRef>> {
        accs.iter_mut().map(|a| a.evaluate(n)).collect()
    }

    /// Merges the state stored in `store` for each of `n` groups (group `g` under key and
    /// namespace `slot(g)`) into `accs`; returns which groups had stored state and that
    /// state, as columns (one row per such group).
    pub fn merge_stored<'k>(
        &self,
        accs: &mut Accumulators,
        n: usize,
        backend: &MemoryStateBackend,
        store: &ValueState<PartialRow>,
        slot: impl Fn(usize) -> (&'k [u8], &'k [u8]),
    ) -> Result<(Vec<u32>, Vec<ArrayRef>)> {
        let mut rows: Vec<&PartialRow> = Vec::new();
        let mut groups: Vec<u32> = Vec::new();
        for g in 0..n {
            let (key, ns) = slot(g);
            if let Some(r) = store.get(backend, key, ns)? {
                rows.push(r);
                groups.push(g as u32);
            }
        }
        let states = self.columns_of(&rows)?;
        self.merge(accs, &states, &groups, n)?;
        Ok((groups, states))
    }

    /// Takes the state out of `accs` and stores group `g`'s under `slot(g)` in `store`;
    /// returns the state columns.
    pub fn store<'k>(
        &self,
        accs: &mut Accumulators,
        n: usize,
        backend: &mut MemoryStateBackend,
        store: &ValueState<PartialRow>,
        slot: impl Fn(usize) -> (&'k [u8], &'k [u8]),
    ) -> Result<Vec<ArrayRef>> {
        let states = self.states(accs, n)?;
        for g in 0..n {
            let (key, ns) = slot(g);
            store.update(backend, key, ns, row_of(&states, g))?;
        }
        Ok(states)
    }

    /// The final values of `n` groups whose state is `states` (one row per group).
    pub fn values_of(&self, states: &[ArrayRef], n: usize) -> Result<Vec<ArrayRef>> {
        let mut accs = self.accumulators()?;
        let groups: Vec<u32> = (0..n as u32).collect();
        self.merge(&mut accs, states, &groups, n)?;
        self.evaluate(&mut accs, n)
    }
}

/// Combines `new` (not NULL) into `slot` by `op`.
fn merge_value(slot: &mut Partial, new: Partial, op: MergeOp) -> Result<()> {
    use std::cmp::Ordering::{Greater, Less};
    let overflow = || SluiceError::exec("integer overflow in a streaming SUM or COUNT");
    let keep_new = match (&*slot, &new, op) {
        (Partial::Null, _, _) => true,
        (Partial::Int(a), Partial::Int(b), MergeOp::Add) => {
            *slot = Partial::Int(a.checked_add(*b).ok_or_else(overflow)?);
            false
        }
        (Partial::Float(a), Partial::Float(b), MergeOp::Add) => {
            *slot = Partial::Float(a + b);
            false
        }
        (Partial::Decimal(a), Partial::Decimal(b), MergeOp::Add) => {
            *slot = Partial::Decimal(a.checked_add(*b).ok_or_else(overflow)?);
            false
        }
        (old, new, MergeOp::Min | MergeOp::Max) => {
            let ord = match (old, new) {
                (Partial::Int(a), Partial::Int(b)) => b.cmp(a),
                (Partial::Float(a), Partial::Float(b)) => b.total_cmp(a),
                (Partial::Decimal(a), Partial::Decimal(b)) => b.cmp(a),
                (Partial::Bytes(a), Partial::Bytes(b)) => b.cmp(a),
                _ => return Err(mismatch()),
            };
            ord == if op == MergeOp::Min { Less } else { Greater }
        }
        _ => return Err(mismatch()),
    };
    if keep_new {
        *slot = new;
    }
    Ok(())
}

fn mismatch() -> SluiceError {
    SluiceError::exec("streaming aggregate: a stored state value has another type")
}

/// One state value.
#[derive(Debug, Clone, PartialEq)]
pub enum Partial {
    /// NULL.
    Null,
    /// Integer-like.
    Int(i64),
    /// Floating point.
    Float(f64),
    /// Decimal (unscaled).
    Decimal(i128),
    /// String.
    Bytes(Vec<u8>),
}

/// The state columns of one group.
#[derive(Debug, Clone, PartialEq)]
pub struct PartialRow(pub Vec<Partial>);

/// The canonical type `t` is stored as.
pub fn canonical(t: &DataType) -> Result<DataType> {
    use DataType::*;
    Ok(match t {
        Float16 | Float32 | Float64 => Float64,
        Decimal128(..) => t.clone(),
        Utf8 | LargeUtf8 | Utf8View => Utf8,
        Null | Boolean | Int8 | Int16 | Int32 | Int64 | UInt8 | UInt16 | UInt32 | Date32
        | Date64 | Timestamp(..) => Int64,
        other => {
            return Err(SluiceError::unsupported(format!(
                "streaming aggregate state of type {other}"
            )))
        }
    })
}

/// Row `i` of every column of `cols` (already cast to their canonical types).
pub fn row_of(cols: &[ArrayRef], i: usize) -> PartialRow {
    PartialRow(
        cols.iter()
            .map(|c| {
                if c.is_null(i) {
                    return Partial::Null;
                }
                match c.data_type() {
                    DataType::Int64 => Partial::Int(c.as_primitive::<Int64Type>().value(i)),
                    DataType::Float64 => Partial::Float(c.as_primitive::<Float64Type>().value(i)),
                    DataType::Decimal128(..) => {
                        Partial::Decimal(c.as_primitive::<Decimal128Type>().value(i))
                    }
                    _ => Partial::Bytes(c.as_string::<i32>().value(i).as_bytes().to_vec()),
                }
            })
            .collect(),
    )
}

/// Column `col` of `rows` as an array of type `t` (a state column type).
pub fn column_of<'a>(
    rows: impl Iterator<Item = &'a PartialRow>,
    col: usize,
    t: &DataType,
) -> Result<ArrayRef> {
    let c = canonical(t)?;
    let values = rows.map(|r| r.0.get(col).unwrap_or(&Partial::Null));
    let arr: ArrayRef = match &c {
        DataType::Int64 => Arc::new(Int64Array::from_iter(values.map(|v| match v {
            Partial::Int(x) => Some(*x),
            _ => None,
        }))),
        DataType::Float64 => Arc::new(Float64Array::from_iter(values.map(|v| match v {
            Partial::Float(x) => Some(*x),
            _ => None,
        }))),
        DataType::Decimal128(p, s) => Arc::new(
            Decimal128Array::from_iter(values.map(|v| match v {
                Partial::Decimal(x) => Some(*x),
                _ => None,
            }))
            .with_precision_and_scale(*p, *s)?,
        ),
        _ => Arc::new(StringArray::from_iter(values.map(|v| match v {
            Partial::Bytes(b) => Some(String::from_utf8_lossy(b).into_owned()),
            _ => None,
        }))),
    };
    Ok(if &c == t {
        arr
    } else {
        arrow::compute::cast(&arr, t)?
    })
}

fn decode_err(reason: impl Into<String>) -> StateError {
    StateError::Decode {
        type_name: "PartialRow".into(),
        reason: reason.into(),
    }
}

impl StateValue for PartialRow {
    fn type_name() -> String {
        "PartialRow".to_string()
    }

    fn encode(&self, out: &mut Vec<u8>) {
        for v in &self.0 {
            match v {
                Partial::Null => out.push(0),
                Partial::Int(x) => {
                    out.push(1);
                    out.extend_from_slice(&x.to_le_bytes());
                }
                Partial::Float(x) => {
                    out.push(2);
                    out.extend_from_slice(&x.to_le_bytes());
                }
                Partial::Decimal(x) => {
                    out.push(3);
                    out.extend_from_slice(&x.to_le_bytes());
                }
                Partial::Bytes(b) => {
                    out.push(4);
                    out.extend_from_slice(&(b.len() as u32).to_le_bytes());
                    out.extend_from_slice(b);
                }
            }
        }
    }

    fn decode(mut bytes: &[u8]) -> sluice_state::Result<Self> {
        fn take<'a>(b: &mut &'a [u8], n: usize) -> sluice_state::Result<&'a [u8]> {
            if b.len() < n {
                return Err(decode_err("truncated"));
            }
            let (head, rest) = b.split_at(n);
            *b = rest;
            Ok(head)
        }
        let mut out = Vec::new();
        while let Some((&tag, rest)) = bytes.split_first() {
            bytes = rest;
            out.push(match tag {
                0 => Partial::Null,
                1 => Partial::Int(i64::from_le_bytes(
                    take(&mut bytes, 8)?
                        .try_into()
                        .map_err(|_| decode_err("int"))?,
                )),
                2 => Partial::Float(f64::from_le_bytes(
                    take(&mut bytes, 8)?
                        .try_into()
                        .map_err(|_| decode_err("float"))?,
                )),
                3 => Partial::Decimal(i128::from_le_bytes(
                    take(&mut bytes, 16)?
                        .try_into()
                        .map_err(|_| decode_err("decimal"))?,
                )),
                4 => {
                    let len = u32::from_le_bytes(
                        take(&mut bytes, 4)?
                            .try_into()
                            .map_err(|_| decode_err("len"))?,
                    ) as usize;
                    Partial::Bytes(take(&mut bytes, len)?.to_vec())
                }
                t => return Err(decode_err(format!("unknown tag {t}"))),
            });
        }
        Ok(PartialRow(out))
    }

    fn size_estimate(&self) -> usize {
        std::mem::size_of::<Self>()
            + self
                .0
                .iter()
                .map(|p| match p {
                    Partial::Bytes(b) => 32 + b.len(),
                    _ => 32,
                })
                .sum::<usize>()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn merge_into_adds_counts_and_sums_and_keeps_extremes() {
        use crate::physical::expr::PhysExpr;
        let spec = |func, t: DataType| AggSpec {
            func,
            distinct: false,
            args: vec![PhysExpr::Column(0, "x".into())],
            input_type: Some(t),
        };
        let calls = AggCalls::try_new(vec![
            spec(AggFunc::Count, DataType::Int64),
            spec(AggFunc::Sum, DataType::Int64),
            spec(AggFunc::Min, DataType::Utf8),
            spec(AggFunc::Max, DataType::Float64),
        ])
        .expect("calls");
        let mut stored = PartialRow(vec![
            Partial::Int(2),
            Partial::Null,
            Partial::Bytes(b"m".to_vec()),
            Partial::Float(1.5),
        ]);
        let states: Vec<ArrayRef> = vec![
            Arc::new(Int64Array::from(vec![3, 1])),
            Arc::new(Int64Array::from(vec![Some(10), None])),
            Arc::new(StringArray::from(vec![Some("a"), Some("z")])),
            Arc::new(Float64Array::from(vec![Some(0.5), Some(9.0)])),
        ];
        calls.merge_into(&mut stored, &states, 0).expect("merge");
        assert_eq!(
            stored.0,
            [
                Partial::Int(5),
                Partial::Int(10),
                Partial::Bytes(b"a".to_vec()),
                Partial::Float(1.5)
            ]
        );
        calls.merge_into(&mut stored, &states, 1).expect("merge");
        assert_eq!(
            stored.0,
            [
                Partial::Int(6),
                Partial::Int(10),
                Partial::Bytes(b"a".to_vec()),
                Partial::Float(9.0)
            ]
        );
        let mut full = PartialRow(vec![
            Partial::Int(i64::MAX),
            Partial::Null,
            Partial::Null,
            Partial::Null,
        ]);
        assert!(calls.merge_into(&mut full, &states, 0).is_err(), "overflow");
    }

    #[test]
    fn rows_round_trip_through_encoding_and_columns() {
        let row = PartialRow(vec![
            Partial::Null,
            Partial::Int(-7),
            Partial::Float(2.5),
            Partial::Decimal(12345),
            Partial::Bytes(b"abc".to_vec()),
        ]);
        let mut buf = Vec::new();
        row.encode(&mut buf);
        assert_eq!(PartialRow::decode(&buf).expect("decode"), row);
        assert!(PartialRow::decode(&buf[..buf.len() - 1]).is_err());
        let rows = [row.clone(), row];
        let c = column_of(rows.iter(), 1, &DataType::Int32).expect("col");
        assert_eq!(c.data_type(), &DataType::Int32);
        assert_eq!(c.len(), 2);
    }
}
