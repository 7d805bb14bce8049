//! Reading snapshots back: validation and filtering to the restoring backend's key groups.
//!
//! Everything untrusted is checked — header and checksum, schema, format version, max
//! parallelism, row kinds, required columns, descriptor-before-data order, and that each row's
//! key hashes to its recorded key group — so bad bytes give [`StateError`]s, never panics.

use std::collections::BTreeMap;

use arrow::array::{
    Array, BinaryArray, Int64Array, RecordBatch, StringArray, UInt32Array, UInt8Array,
};
use arrow::ipc::reader::StreamReader;

use crate::descriptor::{describe, StateSignature};
use crate::error::{Result, StateError};
use crate::key_group::{key_group_unchecked, KeyGroupRange};
use crate::snapshot::{
    arrow_err, schema as snapshot_schema, RowKind, Snapshot, FORMAT_VERSION, META_MAX_PARALLELISM,
    META_VERSION,
};
use crate::timers::{TimeDomain, Timer};

/// A state row read back from a snapshot.
#[derive(Clone, Debug)]
pub(crate) struct RawRow {
    pub key_group: u32,
    pub key: Vec<u8>,
    pub namespace: Vec<u8>,
    pub map_key: Option<Vec<u8>>,
    pub value: Vec<u8>,
    pub expires_at: Option<i64>,
}

impl RawRow {
    pub fn size(&self) -> usize {
        self.key.len()
            + self.namespace.len()
            + self.map_key.as_ref().map_or(0, Vec::len)
            + self.value.len()
            + std::mem::size_of::<Self>()
    }
}

/// All rows of one state read from snapshots.
#[derive(Clone, Debug)]
pub(crate) struct RawState {
    pub signature: StateSignature,
    pub ttl_ms: Option<i64>,
    pub rows: Vec<RawRow>,
}

/// The part of one or more snapshots that belongs to a key group range.
#[derive(Debug, Default)]
pub(crate) struct RawSnapshot {
    pub states: BTreeMap<String, RawState>,
    pub timers: Vec<(TimeDomain, Timer)>,
}

fn corrupt(msg: impl Into<String>) -> StateError {
    StateError::CorruptSnapshot(msg.into())
}

fn column<T: Array + 'static>(batch: &RecordBatch, i: usize) -> Result<&T> {
    batch
        .column(i)
        .as_any()
        .downcast_ref::<T>()
        .ok_or_else(|| corrupt(format!("column {i} has an unexpected type")))
}

/// Reads `snapshots`, keeping only rows whose key group is in `range`.
pub(crate) fn read_snapshots(
    snapshots: &[Snapshot],
    max_parallelism: u32,
    range: KeyGroupRange,
) -> Result<RawSnapshot> {
    let mut out = RawSnapshot::default();
    for snapshot in snapshots {
        read_one(snapshot, max_parallelism, range, &mut out)?;
    }
    Ok(out)
}

fn read_one(
    snapshot: &Snapshot,
    max_parallelism: u32,
    range: KeyGroupRange,
    out: &mut RawSnapshot,
) -> Result<()> {
    let ipc = snapshot.ipc_stream()?;
    let reader = StreamReader::try_new(ipc, None).map_err(arrow_err("opening a snapshot"))?;
    let schema = reader.schema();
    let expected = snapshot_schema(max_parallelism);
    if schema.fields() != expected.fields() {
        return Err(corrupt("unexpected snapshot schema"));
    }
    if schema.metadata.get(META_VERSION).map(String::as_str) != Some(FORMAT_VERSION) {
        return Err(corrupt("unknown snapshot format version"));
    }
    let found = schema
        .metadata
        .get(META_MAX_PARALLELISM)
        .and_then(|v| v.parse::<u32>().ok())
        .ok_or_else(|| corrupt("missing max parallelism"))?;
    if found != max_parallelism {
        return Err(StateError::MaxParallelismMismatch {
            expected: max_parallelism,
            found,
        });
    }
    // Descriptors of this snapshot; data rows must follow their state's descriptor.
    let mut seen: BTreeMap<String, ()> = BTreeMap::new();
    for batch in reader {
        let batch = batch.map_err(arrow_err("reading a snapshot batch"))?;
        let kind = column::<UInt8Array>(&batch, 0)?;
        let state = column::<StringArray>(&batch, 1)?;
        let key_group = column::<UInt32Array>(&batch, 2)?;
        let key = column::<BinaryArray>(&batch, 3)?;
        let namespace = column::<BinaryArray>(&batch, 4)?;
        let map_key = column::<BinaryArray>(&batch, 5)?;
        let value = column::<BinaryArray>(&batch, 6)?;
        let expires_at = column::<Int64Array>(&batch, 7)?;
        let timer_ts = column::<Int64Array>(&batch, 8)?;
        for i in 0..batch.num_rows() {
            let row_kind = RowKind::from_u8(kind.value(i))
                .ok_or_else(|| corrupt(format!("unknown row kind {}", kind.value(i))))?;
            let name = state.value(i);
            let value_at = |what: &str| {
                value
                    .is_valid(i)
                    .then(|| value.value(i).to_vec())
                    .ok_or_else(|| corrupt(format!("{what} row of state '{name}' has no value")))
            };
            if row_kind == RowKind::Descriptor {
                let (signature, ttl_ms) = StateSignature::decode(&value_at("descriptor")?)
                    .map_err(|e| corrupt(format!("descriptor of state '{name}': {e}")))?;
                seen.insert(name.to_string(), ());
                match out.states.get(name) {
                    Some(existing) if existing.signature != signature => {
                        return Err(StateError::IncompatibleState {
                            name: name.to_string(),
                            existing: describe(&existing.signature, existing.ttl_ms),
                            requested: describe(&signature, ttl_ms),
                        });
                    }
                    Some(_) => {}
                    None => {
                        out.states.insert(
                            name.to_string(),
                            RawState {
                                signature,
                                ttl_ms,
                                rows: Vec::new(),
                            },
                        );
                    }
                }
                continue;
            }
            let kg = key_group.value(i);
            if !range.contains(kg) {
                continue;
            }
            let key_bytes = key.value(i);
            if key_group_unchecked(key_bytes, max_parallelism) != kg {
                return Err(corrupt(format!(
                    "row {i}: key does not hash to key group {kg}"
                )));
            }
            let ns = namespace.value(i).to_vec();
            let ts = |col: &Int64Array| col.is_valid(i).then(|| col.value(i));
            let domain = match row_kind {
                RowKind::EventTimer => Some(TimeDomain::EventTime),
                RowKind::ProcessingTimer => Some(TimeDomain::ProcessingTime),
                _ => None,
            };
            if let Some(domain) = domain {
                let timestamp = ts(timer_ts)
                    .ok_or_else(|| corrupt(format!("timer row {i} has no timestamp")))?;
                out.timers.push((
                    domain,
                    Timer {
                        timestamp,
                        key: key_bytes.to_vec(),
                        namespace: ns,
                    },
                ));
                continue;
            }
            let target = match out.states.get_mut(name) {
                Some(t) if seen.contains_key(name) => t,
                _ => {
                    return Err(corrupt(format!(
                        "row {i} of state '{name}' precedes its descriptor"
                    )))
                }
            };
            let expected_kind = match target.signature.kind {
                crate::StateKind::Value => RowKind::Value,
                crate::StateKind::List => RowKind::ListItem,
                crate::StateKind::Map => RowKind::MapEntry,
            };
            if row_kind != expected_kind {
                return Err(corrupt(format!(
                    "row {i} of {} state '{name}' has kind {row_kind:?}",
                    target.signature.kind.as_str()
                )));
            }
            let map_key = if row_kind == RowKind::MapEntry {
                if !map_key.is_valid(i) {
                    return Err(corrupt(format!(
                        "map row {i} of state '{name}' has no map key"
                    )));
                }
                Some(map_key.value(i).to_vec())
            } else {
                None
            };
            target.rows.push(RawRow {
                key_group: kg,
                key: key_bytes.to_vec(),
                namespace: ns,
                map_key,
                value: value_at("data")?,
                expires_at: ts(expires_at),
            });
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::snapshot::SnapshotWriter;

    #[test]
    fn header_and_checksum_are_checked() {
        let w = SnapshotWriter::new(8).expect("writer");
        let snap = w.finish().expect("finish");
        let range = KeyGroupRange::all(8).expect("valid");
        assert!(read_snapshots(std::slice::from_ref(&snap), 8, range).is_ok());

        let mut flipped = snap.as_bytes().to_vec();
        let last = flipped.len() - 1;
        flipped[last] ^= 1;
        let err = read_snapshots(&[Snapshot::from_bytes(flipped)], 8, range).expect_err("corrupt");
        assert!(err.to_string().contains("checksum"), "{err}");

        assert!(Snapshot::from_bytes(vec![1, 2, 3]).ipc_stream().is_err());
        assert!(matches!(
            read_snapshots(&[snap], 16, KeyGroupRange::all(16).expect("valid")),
            Err(StateError::MaxParallelismMismatch {
                expected: 16,
                found: 8
            })
        ));
    }

    #[test]
    fn garbage_ipc_with_valid_header_is_an_error() {
        let range = KeyGroupRange::all(8).expect("valid");
        for ipc in [
            &b""[..],
            b"\xff\xff\xff\xff\x10\x00\x00\x00garbage!garbage!",
            &[0u8; 64],
        ] {
            let snap = Snapshot::wrap_ipc(ipc);
            assert!(read_snapshots(&[snap], 8, range).is_err());
        }
    }
}
