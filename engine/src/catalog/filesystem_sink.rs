//! The sink side of the `filesystem` connector: `INSERT INTO` a filesystem table writes
//! rolling part files into its directory (user docs in `docs/connectors.md`).
//!
//! Protocol, as Flink's file sink without checkpoints:
//!
//! * one run of an INSERT writes `part-<run id>-<n>.<ext>` files (`n` = 0, 1, ...), the run
//!   id being unique per INSERT;
//! * while a part file is open it is written as the hidden
//!   `.part-<run id>-<n>.<ext>.inprogress`, which readers (the filesystem source among
//!   them) skip;
//! * it is closed — flushed, synced and renamed to its final name — when it reaches
//!   `sink.rolling-policy.file-size` bytes, when it has been open for
//!   `sink.rolling-policy.rollover-interval` (checked at each batch), and at the end of
//!   the query;
//! * when the INSERT fails, the open in-progress file is deleted; files closed before the
//!   failure stay (they are complete).

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use arrow::array::RecordBatch;
use arrow::datatypes::SchemaRef;
use parquet::arrow::ArrowWriter;
use parquet::basic::Compression;
use parquet::file::properties::WriterProperties;

use super::filesystem::FileSystemTable;
use super::filesystem_options::Format;
use crate::dataframe::DataFrame;
use crate::error::{Result, SluiceError};

/// Suffix of a part file being written.
pub const IN_PROGRESS_SUFFIX: &str = ".inprogress";

impl FileSystemTable {
    /// Runs `df` and writes its rows, each batch first passed through `conform` (cast to
    /// the table's types), into rolling part files; returns the number of rows written.
    /// An updating query (a changelog) is refused: files take appends only.
    pub fn write_query(
        &self,
        df: &DataFrame,
        conform: &dyn Fn(&RecordBatch) -> Result<RecordBatch>,
    ) -> Result<usize> {
        if df.is_updating() {
            return Err(SluiceError::unsupported(format!(
                "INSERT INTO filesystem table '{}' of an updating query (a streaming GROUP BY \
                 without window columns produces a changelog, and files take appends only); \
                 group by window_start and window_end, or run the query in batch mode",
                self.name()
            )));
        }
        // Planned (and its source files checked) before the directory is touched.
        let batches = df.execute_iter()?;
        let o = self.options();
        let mut writer = RollingFileWriter::try_new(
            self.name(),
            &o.path,
            o.format,
            self.schema_ref(),
            o.file_size,
            o.rollover_interval,
        )?;
        let mut rows = 0;
        let run = (|| -> Result<()> {
            for batch in batches {
                let batch = conform(&batch?)?;
                writer.write(&batch)?;
                rows += batch.num_rows();
            }
            Ok(())
        })();
        match run {
            Ok(()) => {
                writer.finish()?;
                Ok(rows)
            }
            Err(e) => {
                writer.abort();
                Err(e)
            }
        }
    }

    fn schema_ref(&self) -> SchemaRef {
        crate::catalog::TableProvider::schema(self)
    }
}

/// Counts the bytes written through it.
struct Counting<W> {
    inner: W,
    bytes: Arc<AtomicU64>,
}

impl<W: Write> Write for Counting<W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.bytes.fetch_add(n as u64, Ordering::Relaxed);
        Ok(n)
    }
    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush()
    }
}

/// The writer of an open part file.
enum FileWriter {
    Parquet(Box<ArrowWriter<File>>),
    /// The writer and the bytes written through it.
    Csv(
        Box<arrow::csv::Writer<Counting<BufWriter<File>>>>,
        Arc<AtomicU64>,
    ),
}

impl FileWriter {
    /// Bytes of the file so far (Parquet: written plus the buffered row group's estimate).
    fn size(&self) -> u64 {
        match self {
            FileWriter::Parquet(w) => (w.bytes_written() + w.in_progress_size()) as u64,
            FileWriter::Csv(_, bytes) => bytes.load(Ordering::Relaxed),
        }
    }
}

/// A part file being written.
struct OpenFile {
    writer: FileWriter,
    in_progress: PathBuf,
    target: PathBuf,
    opened: Instant,
}

/// Writes batches into rolling part files of one directory; see the module docs.
pub struct RollingFileWriter {
    table: String,
    dir: PathBuf,
    format: Format,
    schema: SchemaRef,
    file_size: u64,
    rollover_interval: Duration,
    run_id: String,
    next_part: u64,
    open: Option<OpenFile>,
    committed: Vec<PathBuf>,
}

/// A run id unique to this process and call: time, process id and a counter, mixed.
fn run_id() -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64);
    let mix = |mut z: u64| {
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    };
    let count = COUNTER.fetch_add(1, Ordering::Relaxed);
    let a = mix(nanos ^ u64::from(std::process::id()).rotate_left(32));
    let b = mix(a ^ count.wrapping_add(0x9E37_79B9_7F4A_7C15));
    format!("{a:016x}{b:016x}")
}

impl RollingFileWriter {
    /// A writer into directory `dir` (created if absent) for table `table`.
    pub fn try_new(
        table: &str,
        dir: &Path,
        format: Format,
        schema: SchemaRef,
        file_size: u64,
        rollover_interval: Duration,
    ) -> Result<Self> {
        if dir.is_file() {
            return Err(SluiceError::plan(format!(
                "filesystem sink '{table}': path {} is a file; a filesystem sink writes part \
                 files into a directory",
                dir.display()
            )));
        }
        std::fs::create_dir_all(dir).map_err(|source| SluiceError::Io {
            path: dir.to_path_buf(),
            source,
        })?;
        Ok(Self {
            table: table.to_string(),
            dir: dir.to_path_buf(),
            format,
            schema,
            file_size: file_size.max(1),
            rollover_interval,
            run_id: run_id(),
            next_part: 0,
            open: None,
            committed: Vec::new(),
        })
    }

    /// The final-named files written so far.
    pub fn committed(&self) -> &[PathBuf] {
        &self.committed
    }

    /// Writes `batch` (in the table's schema) to the open part file, opening one first if
    /// none is open or the open one is older than the rollover interval, and closing it
    /// when it reaches the size limit. On error the open file is deleted.
    pub fn write(&mut self, batch: &RecordBatch) -> Result<()> {
        if batch.num_rows() == 0 {
            return Ok(());
        }
        let r = self.write_inner(batch);
        if r.is_err() {
            self.abort();
        }
        r
    }

    fn write_inner(&mut self, batch: &RecordBatch) -> Result<()> {
        if self
            .open
            .as_ref()
            .is_some_and(|f| f.opened.elapsed() >= self.rollover_interval)
        {
            self.close()?;
        }
        if self.open.is_none() {
            self.open = Some(self.open_file()?);
        }
        let Some(f) = self.open.as_mut() else {
            return Err(SluiceError::exec("internal: no open part file"));
        };
        let written = match &mut f.writer {
            FileWriter::Parquet(w) => w.write(batch).map_err(|e| e.to_string()),
            FileWriter::Csv(w, _) => w.write(batch).map_err(|e| e.to_string()),
        };
        let full = f.writer.size() >= self.file_size;
        if let Err(e) = written {
            let path = f.in_progress.clone();
            return Err(self.write_error(&path, e));
        }
        if full {
            self.close()?;
        }
        Ok(())
    }

    fn write_error(&self, path: &Path, e: String) -> SluiceError {
        SluiceError::exec(format!(
            "filesystem sink '{}': cannot write {}: {e}",
            self.table,
            path.display()
        ))
    }

    /// Opens the next part file under its in-progress name.
    fn open_file(&mut self) -> Result<OpenFile> {
        let ext = self.format.ext();
        let (name, target) = loop {
            let name = format!("part-{}-{}.{ext}", self.run_id, self.next_part);
            self.next_part += 1;
            let target = self.dir.join(&name);
            if !target.exists() {
                break (name, target);
            }
        };
        let in_progress = self.dir.join(format!(".{name}{IN_PROGRESS_SUFFIX}"));
        let file = File::create(&in_progress).map_err(|source| SluiceError::Io {
            path: in_progress.clone(),
            source,
        })?;
        let writer = match self.format {
            Format::Parquet => {
                let props = WriterProperties::builder()
                    .set_compression(Compression::SNAPPY)
                    .build();
                let w = ArrowWriter::try_new(file, self.schema.clone(), Some(props));
                match w {
                    Ok(w) => FileWriter::Parquet(Box::new(w)),
                    Err(e) => {
                        let _ = std::fs::remove_file(&in_progress);
                        return Err(self.write_error(&in_progress, e.to_string()));
                    }
                }
            }
            Format::Csv => {
                let bytes = Arc::new(AtomicU64::new(0));
                let w = arrow::csv::WriterBuilder::new()
                    .with_header(true)
                    .build(Counting {
                        inner: BufWriter::new(file),
                        bytes: bytes.clone(),
                    });
                FileWriter::Csv(Box::new(w), bytes)
            }
        };
        Ok(OpenFile {
            writer,
            in_progress,
            target,
            opened: Instant::now(),
        })
    }

    /// Finishes the open part file (footer, flush, sync) and renames it to its final name.
    fn close(&mut self) -> Result<()> {
        let Some(f) = self.open.take() else {
            return Ok(());
        };
        let finished = match f.writer {
            FileWriter::Parquet(w) => w.into_inner().map_err(|e| e.to_string()),
            FileWriter::Csv(w, _) => w
                .into_inner()
                .inner
                .into_inner()
                .map_err(|e| e.error().to_string()),
        };
        let synced = finished.and_then(|file| file.sync_all().map_err(|e| e.to_string()));
        if let Err(e) = synced {
            let _ = std::fs::remove_file(&f.in_progress);
            return Err(self.write_error(&f.in_progress, e));
        }
        if let Err(source) = std::fs::rename(&f.in_progress, &f.target) {
            let _ = std::fs::remove_file(&f.in_progress);
            return Err(SluiceError::Io {
                path: f.target,
                source,
            });
        }
        self.committed.push(f.target);
        Ok(())
    }

    /// Closes the open part file: the end of the query. Returns the final-named files.
    pub fn finish(mut self) -> Result<Vec<PathBuf>> {
        self.close()?;
        Ok(std::mem::take(&mut self.committed))
    }

    /// Drops the open part file and deletes it (the query failed).
    pub fn abort(&mut self) {
        if let Some(f) = self.open.take() {
            drop(f.writer);
            let _ = std::fs::remove_file(&f.in_progress);
        }
    }
}

impl Drop for RollingFileWriter {
    fn drop(&mut self) {
        self.abort();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow::array::Int64Array;
    use arrow::datatypes::{DataType, Field, Schema};

    fn batch(n: i64) -> RecordBatch {
        let schema = Arc::new(Schema::new(vec![Field::new("a", DataType::Int64, true)]));
        RecordBatch::try_new(schema, vec![Arc::new(Int64Array::from_iter_values(0..n))])
            .expect("batch")
    }

    fn names(dir: &Path) -> Vec<String> {
        let mut v: Vec<String> = std::fs::read_dir(dir)
            .expect("dir")
            .map(|e| e.expect("entry").file_name().to_string_lossy().to_string())
            .collect();
        v.sort();
        v
    }

    #[test]
    fn rolls_on_age_and_renames_on_close() {
        let dir = tempfile::tempdir().expect("tmp");
        let out = dir.path().join("out");
        let mut w = RollingFileWriter::try_new(
            "t",
            &out,
            Format::Csv,
            batch(0).schema(),
            1 << 30,
            Duration::from_millis(30),
        )
        .expect("writer");
        w.write(&batch(10)).expect("write");
        // Open: only the hidden in-progress file exists.
        let open = names(&out);
        assert_eq!(open.len(), 1);
        assert!(open[0].starts_with(".part-") && open[0].ends_with(".csv.inprogress"));
        w.write(&batch(10)).expect("write");
        assert_eq!(w.committed().len(), 0, "younger than the interval");
        std::thread::sleep(Duration::from_millis(40));
        w.write(&batch(10)).expect("write");
        assert_eq!(w.committed().len(), 1, "rolled on age");
        let files = w.finish().expect("finish");
        assert_eq!(files.len(), 2);
        let left = names(&out);
        assert!(left.iter().all(|n| n.starts_with("part-")), "{left:?}");
        let first = std::fs::read_to_string(&files[0]).expect("read");
        assert_eq!(first.lines().count(), 21, "header and 20 rows");
    }

    #[test]
    fn rolls_on_size_and_aborts_cleanly() {
        let dir = tempfile::tempdir().expect("tmp");
        let mut w = RollingFileWriter::try_new(
            "t",
            dir.path(),
            Format::Parquet,
            batch(0).schema(),
            1,
            Duration::from_secs(3600),
        )
        .expect("writer");
        w.write(&batch(5)).expect("write");
        w.write(&batch(5)).expect("write");
        assert_eq!(w.committed().len(), 2, "each batch fills a file");
        drop(w);
        assert_eq!(names(dir.path()).len(), 2);

        let mut w = RollingFileWriter::try_new(
            "t",
            dir.path(),
            Format::Parquet,
            batch(0).schema(),
            1 << 30,
            Duration::from_secs(3600),
        )
        .expect("writer");
        w.write(&batch(5)).expect("write");
        assert_eq!(names(dir.path()).len(), 3);
        w.abort();
        assert_eq!(names(dir.path()).len(), 2, "in-progress file deleted");
    }

    #[test]
    fn run_ids_differ() {
        assert_ne!(run_id(), run_id());
        assert_eq!(run_id().len(), 32);
    }
}
