//! The snapshot format: a checksummed Arrow IPC stream of state rows.
//!
//! Layout: 8 magic bytes `SLSTATE1`, an 8-byte little-endian FNV-1a 64 checksum of the rest,
//! then an Arrow IPC stream whose schema metadata records the format version and max
//! parallelism. Every row has a `kind`:
//!
//! | kind | meaning | columns used |
//! |---|---|---|
//! | 0 descriptor | one per state, before its data | `state`, `value` = encoded kind/types/TTL |
//! | 1 value | one per (key, namespace) | `state, key_group, key, namespace, value, expires_at` |
//! | 2 list item | one per element, in list order | same as value |
//! | 3 map entry | one per map entry, sorted by encoded map key | same plus `map_key` |
//! | 4/5 timer | event-time / processing-time timer | `key_group, key, namespace, timer_ts` |
//!
//! Rows are sorted (state name, key group, namespace, key), so equal state gives equal bytes.
//! Restoring reads only rows whose key group is in the new owner's range and verifies that each
//! row's key group matches its key's hash.

use std::sync::Arc;

use arrow::array::{
    ArrayRef, BinaryBuilder, Int64Builder, RecordBatch, StringBuilder, UInt32Builder, UInt8Builder,
};
use arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use arrow::ipc::writer::StreamWriter;

use crate::error::{Result, StateError};

const MAGIC: &[u8; 8] = b"SLSTATE1";
const HEADER_LEN: usize = 16;
pub(crate) const FORMAT_VERSION: &str = "1";
pub(crate) const META_VERSION: &str = "sluice.state.format_version";
pub(crate) const META_MAX_PARALLELISM: &str = "sluice.state.max_parallelism";
/// Rows per record batch written.
const BATCH_ROWS: usize = 16 * 1024;

/// Serialized keyed state of one backend: opaque bytes to store and hand back to `restore`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Snapshot {
    bytes: Vec<u8>,
}

impl Snapshot {
    /// Wraps bytes previously obtained from [`Snapshot::as_bytes`] (validated on restore).
    pub fn from_bytes(bytes: Vec<u8>) -> Self {
        Self { bytes }
    }

    /// The serialized snapshot.
    pub fn as_bytes(&self) -> &[u8] {
        &self.bytes
    }

    /// The serialized snapshot, by value.
    pub fn into_bytes(self) -> Vec<u8> {
        self.bytes
    }

    /// Size in bytes.
    pub fn len(&self) -> usize {
        self.bytes.len()
    }

    /// Whether the snapshot has no bytes at all (never true for a snapshot a backend produced).
    pub fn is_empty(&self) -> bool {
        self.bytes.is_empty()
    }

    /// The Arrow IPC stream inside, after checking magic bytes and checksum.
    pub fn ipc_stream(&self) -> Result<&[u8]> {
        if self.bytes.len() < HEADER_LEN || &self.bytes[..8] != MAGIC {
            return Err(StateError::CorruptSnapshot(
                "missing SLSTATE1 header".to_string(),
            ));
        }
        let mut sum = [0u8; 8];
        sum.copy_from_slice(&self.bytes[8..HEADER_LEN]);
        let body = &self.bytes[HEADER_LEN..];
        if u64::from_le_bytes(sum) != fnv1a64(body) {
            return Err(StateError::CorruptSnapshot("checksum mismatch".to_string()));
        }
        Ok(body)
    }

    /// Builds a snapshot around an arbitrary IPC stream (tests of the reader's validation).
    #[cfg(test)]
    pub(crate) fn wrap_ipc(ipc: &[u8]) -> Self {
        let mut bytes = header_placeholder();
        bytes.extend_from_slice(ipc);
        seal(&mut bytes);
        Self { bytes }
    }
}

/// FNV-1a 64-bit hash, the snapshot checksum.
fn fnv1a64(data: &[u8]) -> u64 {
    data.iter().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(*b)).wrapping_mul(0x0000_0100_0000_01b3)
    })
}

fn header_placeholder() -> Vec<u8> {
    let mut v = Vec::with_capacity(1024);
    v.extend_from_slice(MAGIC);
    v.extend_from_slice(&[0; 8]);
    v
}

fn seal(bytes: &mut [u8]) {
    let sum = fnv1a64(&bytes[HEADER_LEN..]);
    bytes[8..HEADER_LEN].copy_from_slice(&sum.to_le_bytes());
}

/// What a snapshot row describes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum RowKind {
    Descriptor = 0,
    Value = 1,
    ListItem = 2,
    MapEntry = 3,
    EventTimer = 4,
    ProcessingTimer = 5,
}

impl RowKind {
    pub(crate) fn from_u8(v: u8) -> Option<Self> {
        Some(match v {
            0 => RowKind::Descriptor,
            1 => RowKind::Value,
            2 => RowKind::ListItem,
            3 => RowKind::MapEntry,
            4 => RowKind::EventTimer,
            5 => RowKind::ProcessingTimer,
            _ => return None,
        })
    }
}

pub(crate) fn schema(max_parallelism: u32) -> Schema {
    Schema::new(vec![
        Field::new("kind", DataType::UInt8, false),
        Field::new("state", DataType::Utf8, false),
        Field::new("key_group", DataType::UInt32, false),
        Field::new("key", DataType::Binary, false),
        Field::new("namespace", DataType::Binary, false),
        Field::new("map_key", DataType::Binary, true),
        Field::new("value", DataType::Binary, true),
        Field::new("expires_at", DataType::Int64, true),
        Field::new("timer_ts", DataType::Int64, true),
    ])
    .with_metadata([
        (META_VERSION, FORMAT_VERSION.to_string()),
        (META_MAX_PARALLELISM, max_parallelism.to_string()),
    ])
}

/// One row to write; fields a kind does not use are ignored.
pub(crate) struct RowRef<'a> {
    pub kind: RowKind,
    pub state: &'a str,
    pub key_group: u32,
    pub key: &'a [u8],
    pub namespace: &'a [u8],
    pub map_key: Option<&'a [u8]>,
    pub value: Option<&'a [u8]>,
    pub expires_at: Option<i64>,
    pub timer_ts: Option<i64>,
}

/// Accumulates rows into record batches and streams them into IPC bytes.
pub(crate) struct SnapshotWriter {
    schema: SchemaRef,
    writer: StreamWriter<Vec<u8>>,
    rows: usize,
    kind: UInt8Builder,
    state: StringBuilder,
    key_group: UInt32Builder,
    key: BinaryBuilder,
    namespace: BinaryBuilder,
    map_key: BinaryBuilder,
    value: BinaryBuilder,
    expires_at: Int64Builder,
    timer_ts: Int64Builder,
}

pub(crate) fn arrow_err(
    context: &'static str,
) -> impl FnOnce(arrow::error::ArrowError) -> StateError {
    move |source| StateError::Arrow { context, source }
}

impl SnapshotWriter {
    pub fn new(max_parallelism: u32) -> Result<Self> {
        let schema = Arc::new(schema(max_parallelism));
        let writer = StreamWriter::try_new(header_placeholder(), &schema)
            .map_err(arrow_err("starting the snapshot stream"))?;
        Ok(Self {
            schema,
            writer,
            rows: 0,
            kind: UInt8Builder::new(),
            state: StringBuilder::new(),
            key_group: UInt32Builder::new(),
            key: BinaryBuilder::new(),
            namespace: BinaryBuilder::new(),
            map_key: BinaryBuilder::new(),
            value: BinaryBuilder::new(),
            expires_at: Int64Builder::new(),
            timer_ts: Int64Builder::new(),
        })
    }

    pub fn push(&mut self, row: RowRef<'_>) -> Result<()> {
        self.kind.append_value(row.kind as u8);
        self.state.append_value(row.state);
        self.key_group.append_value(row.key_group);
        self.key.append_value(row.key);
        self.namespace.append_value(row.namespace);
        self.map_key.append_option(row.map_key);
        self.value.append_option(row.value);
        self.expires_at.append_option(row.expires_at);
        self.timer_ts.append_option(row.timer_ts);
        self.rows += 1;
        if self.rows >= BATCH_ROWS {
            self.flush()?;
        }
        Ok(())
    }

    fn flush(&mut self) -> Result<()> {
        if self.rows == 0 {
            return Ok(());
        }
        let columns: Vec<ArrayRef> = vec![
            Arc::new(self.kind.finish()),
            Arc::new(self.state.finish()),
            Arc::new(self.key_group.finish()),
            Arc::new(self.key.finish()),
            Arc::new(self.namespace.finish()),
            Arc::new(self.map_key.finish()),
            Arc::new(self.value.finish()),
            Arc::new(self.expires_at.finish()),
            Arc::new(self.timer_ts.finish()),
        ];
        let batch = RecordBatch::try_new(self.schema.clone(), columns)
            .map_err(arrow_err("building a snapshot batch"))?;
        self.writer
            .write(&batch)
            .map_err(arrow_err("writing a snapshot batch"))?;
        self.rows = 0;
        Ok(())
    }

    pub fn finish(mut self) -> Result<Snapshot> {
        self.flush()?;
        self.writer
            .finish()
            .map_err(arrow_err("finishing the snapshot stream"))?;
        let mut bytes = self
            .writer
            .into_inner()
            .map_err(arrow_err("finishing the snapshot stream"))?;
        seal(&mut bytes);
        Ok(Snapshot { bytes })
    }
}
