//! Blocking result partitions: Arrow IPC spill files, read back through `mmap`.
//!
//! Every producer writes one IPC *file* per output partition it addresses
//! (`p{producer}-q{partition}-s{segment}.arrow`) into a private temporary
//! directory. A producer's files are registered with the exchange when it
//! finishes; a reader waits on the producer table's condvar until every
//! producer finished, then reads the partition's files in producer order.
//!
//! Reading is zero-copy: the file is memory-mapped, the map is handed to an
//! Arrow [`Buffer`] through [`bytes::Bytes::from_owner`], and
//! [`FileDecoder`] slices the column buffers out of it. The batches keep the
//! map alive for as long as they are referenced.
//!
//! The IPC file format allows a single dictionary per dictionary-encoded
//! field. When a batch carries a different dictionary than the ones already in
//! the file, the writer closes that file and continues in a new *segment*
//! file, so dictionary columns need no special care from producers.
//!
//! The temporary directory is shared (`Arc`) by the exchange, its writers and
//! its readers, and removed with everything in it when the last one is
//! dropped, so a reader never loses a file under its feet.

use std::collections::VecDeque;
use std::fs::File;
use std::io::BufWriter;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use arrow::array::RecordBatch;
use arrow::buffer::Buffer;
use arrow::datatypes::SchemaRef;
use arrow::error::ArrowError;
use arrow::ipc::reader::{read_footer_length, FileDecoder};
use arrow::ipc::writer::FileWriter;
use arrow::ipc::{root_as_footer, Block};
use memmap2::Mmap;
use tempfile::TempDir;

use crate::shared::{Core, Failure, WriterState};
use crate::{Result, ShuffleError, ShuffleReader, ShuffleWriter};

/// Length of the IPC file trailer: footer length (4 bytes) and `ARROW1`.
const TRAILER_LEN: usize = 10;

fn io_error(path: &Path) -> impl FnOnce(std::io::Error) -> ShuffleError + '_ {
    move |source| ShuffleError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// A completed spill file of one producer for one partition.
#[derive(Debug, Clone)]
struct SpillFile {
    producer: usize,
    segment: usize,
    path: PathBuf,
}

/// The spill directory and the registry of completed files.
#[derive(Debug)]
struct Spill {
    dir: TempDir,
    /// Per partition: files of the producers that finished.
    files: Mutex<Vec<Vec<SpillFile>>>,
}

impl Spill {
    fn lock_files(&self) -> Result<std::sync::MutexGuard<'_, Vec<Vec<SpillFile>>>> {
        self.files.lock().map_err(|_| ShuffleError::Poisoned {
            what: "spill file registry",
        })
    }

    /// The files of `partition` in read order: by producer, then segment.
    fn partition_files(&self, partition: usize) -> Result<VecDeque<PathBuf>> {
        let mut files = self
            .lock_files()?
            .get(partition)
            .cloned()
            .unwrap_or_default();
        files.sort_by_key(|file| (file.producer, file.segment));
        Ok(files.into_iter().map(|file| file.path).collect())
    }
}

/// The blocking half of an [`crate::Exchange`].
#[derive(Debug)]
pub(crate) struct Blocking {
    core: Arc<Core>,
    spill: Arc<Spill>,
}

impl Blocking {
    /// Create the private spill directory inside `spill_dir` (created if missing).
    pub(crate) fn new(core: Arc<Core>, spill_dir: &Path) -> Result<Self> {
        std::fs::create_dir_all(spill_dir).map_err(io_error(spill_dir))?;
        let dir = tempfile::Builder::new()
            .prefix("sluice-shuffle-")
            .tempdir_in(spill_dir)
            .map_err(io_error(spill_dir))?;
        let files = Mutex::new(vec![Vec::new(); core.num_partitions()]);
        Ok(Self {
            core,
            spill: Arc::new(Spill { dir, files }),
        })
    }

    /// The private spill directory.
    pub(crate) fn path(&self) -> &Path {
        self.spill.dir.path()
    }

    /// Hand out producer `producer`'s writer (once).
    pub(crate) fn writer(&self, producer: usize) -> Result<Box<dyn ShuffleWriter>> {
        self.core.take_producer(producer)?;
        let num_partitions = self.core.num_partitions();
        Ok(Box::new(BlockingWriter {
            core: Arc::clone(&self.core),
            spill: Arc::clone(&self.spill),
            producer,
            open: (0..num_partitions).map(|_| None).collect(),
            segments: vec![0; num_partitions],
            closed: Vec::new(),
            state: WriterState::Open,
        }))
    }

    /// A reader of `partition` (any number of times).
    pub(crate) fn reader(&self, partition: usize) -> Result<Box<dyn ShuffleReader>> {
        self.core.check_partition(partition)?;
        Ok(Box::new(BlockingReader {
            core: Arc::clone(&self.core),
            spill: Arc::clone(&self.spill),
            partition,
            state: ReadState::Waiting,
        }))
    }

    /// The exchange is being dropped: fail producers nobody took.
    pub(crate) fn release_untaken(&self) {
        self.core.release_untaken();
    }
}

/// A spill file being written.
struct OpenSegment {
    file: SpillFile,
    writer: FileWriter<BufWriter<File>>,
}

impl OpenSegment {
    /// Create segment `segment` of `producer` for `partition`.
    fn create(
        spill: &Spill,
        schema: &SchemaRef,
        producer: usize,
        partition: usize,
        segment: usize,
    ) -> Result<Self> {
        let path = spill
            .dir
            .path()
            .join(format!("p{producer}-q{partition}-s{segment}.arrow"));
        let file = File::create(&path).map_err(io_error(&path))?;
        let writer = FileWriter::try_new_buffered(file, schema)?;
        Ok(Self {
            file: SpillFile {
                producer,
                segment,
                path,
            },
            writer,
        })
    }

    /// Write the footer and return the file with its size in bytes.
    fn close(mut self) -> Result<(SpillFile, u64)> {
        self.writer.finish()?;
        let len = self
            .writer
            .get_ref()
            .get_ref()
            .metadata()
            .map_err(io_error(&self.file.path))?
            .len();
        Ok((self.file, len))
    }
}

/// Whether `error` is the IPC file writer refusing a second dictionary for a field.
fn is_dictionary_replacement(error: &ArrowError) -> bool {
    matches!(error, ArrowError::InvalidArgumentError(message)
        if message.contains("Dictionary replacement"))
}

/// A producer's writer into a blocking exchange.
struct BlockingWriter {
    core: Arc<Core>,
    spill: Arc<Spill>,
    producer: usize,
    /// Per partition: the file currently written, created on first use.
    open: Vec<Option<OpenSegment>>,
    /// Per partition: the number of segments started so far.
    segments: Vec<usize>,
    /// Segments closed early (dictionary rollover) with their partition.
    closed: Vec<(usize, SpillFile)>,
    state: WriterState,
}

impl BlockingWriter {
    /// The open segment of `partition`, created if needed.
    fn segment(&mut self, partition: usize) -> Result<&mut OpenSegment> {
        let invalid = || ShuffleError::InvalidPartition {
            partition,
            count: self.core.num_partitions(),
        };
        let slot = self.open.get_mut(partition).ok_or_else(invalid)?;
        let segment = match slot.take() {
            Some(segment) => segment,
            None => {
                let number = self.segments.get_mut(partition).ok_or_else(invalid)?;
                let segment = OpenSegment::create(
                    &self.spill,
                    self.core.schema(),
                    self.producer,
                    partition,
                    *number,
                )?;
                *number += 1;
                segment
            }
        };
        Ok(slot.insert(segment))
    }

    /// Close the open segment of `partition`, if any, keeping it for `finish`.
    fn close_segment(&mut self, partition: usize) -> Result<()> {
        if let Some(segment) = self.open.get_mut(partition).and_then(Option::take) {
            let (file, len) = segment.close()?;
            self.core.metrics().record_spill(len);
            self.closed.push((partition, file));
        }
        Ok(())
    }

    fn append(&mut self, partition: usize, batch: &RecordBatch) -> Result<()> {
        match self.segment(partition)?.writer.write(batch) {
            Ok(()) => Ok(()),
            Err(error) if is_dictionary_replacement(&error) => {
                // The dictionary check runs before anything is written, so the
                // current file is intact: close it and continue in a new one.
                self.close_segment(partition)?;
                Ok(self.segment(partition)?.writer.write(batch)?)
            }
            Err(error) => Err(error.into()),
        }
    }

    /// Close every open segment and register all files with the exchange.
    fn complete(&mut self) -> Result<()> {
        for partition in 0..self.open.len() {
            self.close_segment(partition)?;
        }
        let mut registry = self.spill.lock_files()?;
        for (partition, file) in self.closed.drain(..) {
            if let Some(files) = registry.get_mut(partition) {
                files.push(file);
            }
        }
        Ok(())
    }

    /// Drop the unfinished output of a failed producer (best effort).
    fn discard_files(&mut self) {
        let open = self
            .open
            .iter_mut()
            .filter_map(Option::take)
            .map(|s| s.file);
        let closed = self.closed.drain(..).map(|(_, file)| file);
        for file in open.chain(closed).collect::<Vec<_>>() {
            // The directory is removed with the exchange anyway.
            let _ = std::fs::remove_file(&file.path);
        }
    }

    fn fail(&mut self, failure: Failure) {
        self.core.fail_producer(failure);
        self.discard_files();
    }
}

impl ShuffleWriter for BlockingWriter {
    fn write(&mut self, partition: usize, batch: RecordBatch) -> Result<()> {
        self.state.check_open(self.producer)?;
        self.core.check_write(partition, &batch)?;
        let batch = crate::compact_views(batch);
        self.append(partition, &batch)?;
        self.core.metrics().record_batch(batch.num_rows());
        Ok(())
    }

    fn finish(&mut self) -> Result<()> {
        self.state.check_open(self.producer)?;
        if let Err(error) = self.complete() {
            // Readers must not wait for a producer that can no longer finish.
            self.state = WriterState::Aborted;
            self.fail(Failure::Aborted {
                producer: self.producer,
                message: format!("finishing the spill files failed: {error}"),
            });
            return Err(error);
        }
        self.core.finish_producer(self.producer)?;
        self.state = WriterState::Finished;
        Ok(())
    }

    fn abort(&mut self, message: String) {
        if self.state == WriterState::Aborted {
            return;
        }
        self.state = WriterState::Aborted;
        self.fail(Failure::Aborted {
            producer: self.producer,
            message,
        });
    }
}

impl Drop for BlockingWriter {
    fn drop(&mut self) {
        if self.state == WriterState::Open {
            self.fail(Failure::Dropped {
                producer: self.producer,
            });
        }
    }
}

/// A memory-mapped spill file being decoded.
struct MappedFile {
    path: PathBuf,
    buffer: Buffer,
    decoder: FileDecoder,
    blocks: Vec<Block>,
    next: usize,
}

impl MappedFile {
    /// Map `path` and parse its footer and dictionaries.
    fn open(path: PathBuf, schema: &SchemaRef) -> Result<Self> {
        let file = File::open(&path).map_err(io_error(&path))?;
        // SAFETY: the file lives in the exchange's private temporary directory
        // and is never modified after its writer finished (it is registered for
        // reading only then); the directory is removed only after every reader
        // is dropped, and nothing else writes or truncates it.
        #[allow(unsafe_code)]
        let map = unsafe { Mmap::map(&file) }.map_err(io_error(&path))?;
        let buffer = Buffer::from(bytes::Bytes::from_owner(map));

        let corrupt = |message: String| ShuffleError::CorruptSpill {
            path: path.clone(),
            message,
        };
        let trailer_start = buffer
            .len()
            .checked_sub(TRAILER_LEN)
            .ok_or_else(|| corrupt(format!("{} bytes is too short", buffer.len())))?;
        let trailer: [u8; TRAILER_LEN] = buffer
            .get(trailer_start..)
            .and_then(|trailer| trailer.try_into().ok())
            .ok_or_else(|| corrupt("missing trailer".to_string()))?;
        let footer_start = trailer_start
            .checked_sub(read_footer_length(trailer)?)
            .ok_or_else(|| corrupt("footer length exceeds the file".to_string()))?;
        let footer_bytes = buffer
            .get(footer_start..trailer_start)
            .ok_or_else(|| corrupt("footer out of bounds".to_string()))?;
        let footer =
            root_as_footer(footer_bytes).map_err(|e| corrupt(format!("invalid footer: {e}")))?;

        let mut decoder = FileDecoder::new(Arc::clone(schema), footer.version());
        for block in footer.dictionaries().iter().flatten() {
            let data = block_data(&buffer, block, &path)?;
            decoder.read_dictionary(block, &data)?;
        }
        let blocks = footer
            .recordBatches()
            .map(|blocks| blocks.iter().copied().collect())
            .unwrap_or_default();
        Ok(Self {
            path,
            buffer,
            decoder,
            blocks,
            next: 0,
        })
    }

    /// The next record batch of the file, `None` at its end.
    fn next_batch(&mut self) -> Result<Option<RecordBatch>> {
        while let Some(block) = self.blocks.get(self.next) {
            self.next += 1;
            let data = block_data(&self.buffer, block, &self.path)?;
            if let Some(batch) = self.decoder.read_record_batch(block, &data)? {
                return Ok(Some(batch));
            }
        }
        Ok(None)
    }
}

/// The bytes of `block` (metadata and body) within `buffer`, bounds-checked.
fn block_data(buffer: &Buffer, block: &Block, path: &Path) -> Result<Buffer> {
    let offset = usize::try_from(block.offset()).ok();
    let metadata = usize::try_from(block.metaDataLength()).ok();
    let body = usize::try_from(block.bodyLength()).ok();
    let range = match (offset, metadata, body) {
        (Some(offset), Some(metadata), Some(body)) => metadata
            .checked_add(body)
            .and_then(|len| Some((offset, len, offset.checked_add(len)?))),
        _ => None,
    };
    match range {
        Some((offset, len, end)) if end <= buffer.len() => {
            Ok(buffer.slice_with_length(offset, len))
        }
        _ => Err(ShuffleError::CorruptSpill {
            path: path.to_path_buf(),
            message: format!(
                "block at offset {} ({} + {} bytes) exceeds the file ({} bytes)",
                block.offset(),
                block.metaDataLength(),
                block.bodyLength(),
                buffer.len()
            ),
        }),
    }
}

/// Where a [`BlockingReader`] is.
enum ReadState {
    /// Not started: wait for the producers first.
    Waiting,
    /// Going through the partition's files.
    Reading {
        pending: VecDeque<PathBuf>,
        current: Option<MappedFile>,
    },
    /// Exhausted or failed.
    Done,
}

/// A consumer's reader of one blocking partition.
struct BlockingReader {
    core: Arc<Core>,
    spill: Arc<Spill>,
    partition: usize,
    state: ReadState,
}

impl BlockingReader {
    fn next_batch(&mut self) -> Result<Option<RecordBatch>> {
        loop {
            match &mut self.state {
                ReadState::Done => return Ok(None),
                ReadState::Waiting => {
                    self.core.wait_all_finished()?;
                    let pending = self.spill.partition_files(self.partition)?;
                    self.state = ReadState::Reading {
                        pending,
                        current: None,
                    };
                }
                ReadState::Reading { pending, current } => {
                    if let Some(file) = current {
                        if let Some(batch) = file.next_batch()? {
                            return Ok(Some(batch));
                        }
                        *current = None;
                    } else if let Some(path) = pending.pop_front() {
                        *current = Some(MappedFile::open(path, self.core.schema())?);
                    } else {
                        return Ok(None);
                    }
                }
            }
        }
    }
}

impl Iterator for BlockingReader {
    type Item = Result<RecordBatch>;

    fn next(&mut self) -> Option<Self::Item> {
        let next = self.next_batch().transpose();
        if !matches!(next, Some(Ok(_))) {
            self.state = ReadState::Done;
        }
        next
    }
}

impl ShuffleReader for BlockingReader {}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use arrow::array::{Array, Int64Array, RecordBatch};
    use arrow::datatypes::{DataType, Field, Schema};

    use super::*;

    /// The decoded column data must point into the memory map, not into a copy.
    #[test]
    fn decoded_batches_borrow_the_memory_map() -> Result<(), Box<dyn std::error::Error>> {
        let dir = tempfile::tempdir()?;
        let path = dir.path().join("one.arrow");
        let schema = Arc::new(Schema::new(vec![Field::new("v", DataType::Int64, false)]));
        let batch = RecordBatch::try_new(
            Arc::clone(&schema),
            vec![Arc::new(Int64Array::from_iter_values(0..1000))],
        )?;
        let mut writer = FileWriter::try_new_buffered(File::create(&path)?, &schema)?;
        writer.write(&batch)?;
        writer.finish()?;
        drop(writer);

        let mut file = MappedFile::open(path, &(schema as SchemaRef))?;
        let map = file.buffer.as_ptr_range();
        let read = file.next_batch()?.ok_or("no batch")?;
        assert_eq!(read, batch);
        let values = read.column(0).to_data().buffers()[0].as_ptr();
        assert!(
            map.contains(&values),
            "column data was copied out of the map"
        );
        assert!(file.next_batch()?.is_none());
        Ok(())
    }

    #[test]
    fn truncated_file_is_an_error_not_a_panic() -> Result<(), Box<dyn std::error::Error>> {
        let dir = tempfile::tempdir()?;
        let path = dir.path().join("short.arrow");
        std::fs::write(&path, b"ARROW1")?;
        let schema: SchemaRef = Arc::new(Schema::empty());
        assert!(matches!(
            MappedFile::open(path, &schema),
            Err(ShuffleError::CorruptSpill { .. })
        ));
        Ok(())
    }
}
