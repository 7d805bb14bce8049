//! The `filesystem` connector, after Apache Flink's: a table over a file or a directory of
//! Parquet or CSV files (`CREATE TABLE t (...) WITH ('connector' = 'filesystem', 'path' =
//! '/dir', 'format' = 'parquet')`; options in [`super::filesystem_options`], user docs in
//! `docs/connectors.md`).
//!
//! As a **source** the table reads the data files of `path` (a file, or the `*.parquet` /
//! `*.csv` files of a directory in name order, skipping names that start with `.` or `_`,
//! so a sink's in-progress files are never read). The declared columns are bound to each
//! file's columns by name (case-insensitive, exact spelling first) and cast to the declared
//! types where the file's type converts without loss ([`safe_cast`]). Files are listed and
//! checked when a query over the table is planned, not at `CREATE TABLE`, so a table can
//! name a directory a sink has not written yet.
//!
//! Reading reuses the engine's scans: each file is read by a one-file
//! [`ParquetExec`] (with row-group pruning) or [`CsvExec`], and partition `p` of `n` reads
//! the files whose index (in listing order) is `p` modulo `n`.
//!
//! Without `source.monitor-interval` the table is bounded. With it the table is unbounded:
//! a streaming scan reads the files present, then lists the directory again every
//! interval and reads each file whose name it has not seen, once. Files are assumed
//! complete when they appear: a writer must write under a hidden name and rename.
//!
//! As a **sink** (`INSERT INTO`) it writes rolling part files; see
//! [`super::filesystem_sink`].

use std::collections::{HashSet, VecDeque};
use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use arrow::array::{RecordBatch, RecordBatchOptions};
use arrow::datatypes::{DataType, Field, Schema, SchemaRef, TimeUnit};

use super::filesystem_options::{
    describe_options, format_duration, parse_options, FileSystemOptions, Format,
};
use crate::catalog::parquet::read_metadata;
use crate::catalog::{list_files, TableProvider};
use crate::error::{did_you_mean, nearest, Result, SluiceError};
use crate::logical::expr::Expr;
use crate::physical::parquet::{ParquetExec, ParquetFile};
use crate::physical::scan::CsvExec;
use crate::physical::{Element, ElementStream, ExecNode, TaskContext};

/// True when a value of type `from` (a file's column) converts to `to` (the declared type)
/// without loss: the same type; a wider integer, or a DOUBLE for integers of up to 32 bits
/// and FLOAT; any string type to a string type; a timestamp of any unit and time zone to a
/// timestamp (values are instants in UTC; a coarser unit drops sub-unit digits); DATE64 to
/// DATE; a decimal with no fewer integer and fractional digits; a dictionary of a castable
/// value type.
pub fn safe_cast(from: &DataType, to: &DataType) -> bool {
    use DataType::*;
    fn int_width(t: &DataType) -> Option<(bool, u32)> {
        Some(match t {
            Int8 => (true, 8),
            Int16 => (true, 16),
            Int32 => (true, 32),
            Int64 => (true, 64),
            UInt8 => (false, 8),
            UInt16 => (false, 16),
            UInt32 => (false, 32),
            UInt64 => (false, 64),
            _ => return None,
        })
    }
    if from == to {
        return true;
    }
    if let Dictionary(_, value) = from {
        return safe_cast(value, to);
    }
    if let (Some((fs, fw)), Some((ts, tw))) = (int_width(from), int_width(to)) {
        return match (fs, ts) {
            (true, true) | (false, false) => tw >= fw,
            (false, true) => tw > fw,
            (true, false) => false,
        };
    }
    match (from, to) {
        (f, Float64) if int_width(f).is_some_and(|(_, w)| w <= 32) => true,
        (Float16 | Float32, Float64) | (Float16, Float32) => true,
        (Utf8 | LargeUtf8 | Utf8View, Utf8 | LargeUtf8 | Utf8View) => true,
        (Timestamp(..), Timestamp(..)) => true,
        (Date64, Date32) => true,
        (Decimal128(fp, fs), Decimal128(tp, ts)) => {
            ts >= fs && i16::from(*tp) - i16::from(*ts) >= i16::from(*fp) - i16::from(*fs)
        }
        (Binary | LargeBinary | BinaryView, Binary | LargeBinary | BinaryView) => true,
        _ => false,
    }
}

/// The SQL name of a declared type, for messages (`BIGINT (Int64)`).
fn sql_type(t: &DataType) -> String {
    let sql = match t {
        DataType::Boolean => "BOOLEAN",
        DataType::Int8 => "TINYINT",
        DataType::Int16 => "SMALLINT",
        DataType::Int32 => "INT",
        DataType::Int64 => "BIGINT",
        DataType::Float32 => "FLOAT",
        DataType::Float64 => "DOUBLE",
        DataType::Utf8 => "VARCHAR",
        DataType::Date32 => "DATE",
        DataType::Timestamp(TimeUnit::Microsecond, None) => "TIMESTAMP",
        DataType::Decimal128(..) => "DECIMAL",
        _ => return t.to_string(),
    };
    format!("{sql} ({t})")
}

/// How a file is read.
#[derive(Debug, Clone)]
enum FileReader {
    /// A Parquet file and its footer.
    Parquet(ParquetFile),
    /// A CSV file, its header's columns typed as declared (undeclared ones as strings).
    Csv(SchemaRef),
}

/// A data file whose columns are bound to the table's declared columns.
#[derive(Debug, Clone)]
struct BoundFile {
    path: PathBuf,
    reader: FileReader,
    /// For each declared column, the index of the file column holding it.
    columns: Vec<usize>,
    /// Every declared column has its exact name and type in the file (scan filters may
    /// then prune Parquet row groups).
    exact: bool,
}

/// The file column for declared column `name`: the exact name, else the only
/// case-insensitive match.
fn find_column(names: &[&str], name: &str) -> Option<usize> {
    if let Some(i) = names.iter().position(|n| *n == name) {
        return Some(i);
    }
    let mut matches = names
        .iter()
        .enumerate()
        .filter(|(_, n)| n.eq_ignore_ascii_case(name));
    match (matches.next(), matches.next()) {
        (Some((i, _)), None) => Some(i),
        _ => None,
    }
}

/// The column names of CSV file `path`'s header line.
fn csv_header(path: &Path) -> Result<Vec<Field>> {
    let f = File::open(path).map_err(|source| SluiceError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    let (header, _) = arrow::csv::reader::Format::default()
        .with_header(true)
        .infer_schema(f, Some(0))
        .map_err(|e| SluiceError::exec(format!("cannot read CSV file {}: {e}", path.display())))?;
    Ok(header
        .fields()
        .iter()
        .map(|f| Field::new(f.name(), DataType::Utf8, true))
        .collect())
}

/// Opens `path` and binds its columns to the `declared` columns of table `table`.
fn bind_file(table: &str, declared: &Schema, format: Format, path: &Path) -> Result<BoundFile> {
    let (file_fields, metadata) = match format {
        Format::Parquet => {
            let metadata = read_metadata(path)?;
            let fields = metadata
                .schema()
                .fields()
                .iter()
                .map(|f| f.as_ref().clone())
                .collect::<Vec<_>>();
            (fields, Some(metadata))
        }
        Format::Csv => (csv_header(path)?, None),
    };
    let names: Vec<&str> = file_fields.iter().map(|f| f.name().as_str()).collect();
    let mut columns = Vec::with_capacity(declared.fields().len());
    let mut exact = true;
    for d in declared.fields() {
        let Some(i) = find_column(&names, d.name()) else {
            let hints = nearest(d.name(), names.iter().copied(), 1);
            return Err(SluiceError::plan(format!(
                "filesystem table '{table}': file {} has no column '{}' (its columns: {}; \
                 declared columns are matched by name, case-insensitively){}",
                path.display(),
                d.name(),
                names.join(", "),
                did_you_mean(&hints)
            )));
        };
        let file_type = file_fields[i].data_type();
        if format == Format::Parquet && !safe_cast(file_type, d.data_type()) {
            return Err(SluiceError::plan(format!(
                "filesystem table '{table}': column '{}' is declared {} but file {} stores \
                 it as {file_type}, which does not convert to it without loss",
                d.name(),
                sql_type(d.data_type()),
                path.display()
            )));
        }
        exact &= names[i] == d.name().as_str() && file_type == d.data_type();
        columns.push(i);
    }
    let reader = match metadata {
        Some(metadata) => FileReader::Parquet(ParquetFile {
            path: path.to_path_buf(),
            metadata,
        }),
        None => {
            // CSV values are parsed straight into the declared types.
            let mut typed = file_fields;
            for (d, &c) in declared.fields().iter().zip(&columns) {
                typed[c] = Field::new(typed[c].name(), d.data_type().clone(), true);
            }
            FileReader::Csv(Arc::new(Schema::new(typed)))
        }
    };
    Ok(BoundFile {
        path: path.to_path_buf(),
        reader,
        columns,
        exact,
    })
}

/// A filesystem table; see the module docs.
#[derive(Debug)]
pub struct FileSystemTable {
    name: String,
    schema: SchemaRef,
    options: FileSystemOptions,
}

impl FileSystemTable {
    /// The filesystem table `name` of `schema` with the connector `options` (the
    /// `connector` key itself is allowed). The path is not touched here.
    pub fn try_new(name: &str, schema: SchemaRef, options: &[(String, String)]) -> Result<Self> {
        let options = parse_options(name, options)?;
        Ok(Self {
            name: name.to_string(),
            schema,
            options,
        })
    }

    /// The table's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The validated options.
    pub fn options(&self) -> &FileSystemOptions {
        &self.options
    }

    /// The data files of the table now, in name order, each opened and checked against the
    /// declared columns.
    fn bound_files(&self) -> Result<Vec<BoundFile>> {
        let o = &self.options;
        if let Err(e) = std::fs::metadata(&o.path) {
            if e.kind() == std::io::ErrorKind::NotFound {
                return Err(SluiceError::plan(format!(
                    "filesystem table '{}': path {} does not exist",
                    self.name,
                    o.path.display()
                )));
            }
        }
        let paths = list_files(&o.path, o.format.ext())?;
        if paths.is_empty() && o.monitor_interval.is_none() {
            return Err(SluiceError::plan(format!(
                "filesystem table '{}': no .{} files in {} (names starting with '.' or '_' \
                 are skipped)",
                self.name,
                o.format.ext(),
                o.path.display()
            )));
        }
        paths
            .iter()
            .map(|p| bind_file(&self.name, &self.schema, o.format, p))
            .collect()
    }
}

impl TableProvider for FileSystemTable {
    fn schema(&self) -> SchemaRef {
        self.schema.clone()
    }
    fn row_count(&self) -> Option<usize> {
        None
    }
    fn scan(
        &self,
        projection: Option<&[usize]>,
        filters: &[Expr],
        partitions: usize,
        batch_size: usize,
    ) -> Result<Arc<dyn ExecNode>> {
        let files = self.bound_files()?;
        let projection: Vec<usize> = match projection {
            Some(p) => p.to_vec(),
            None => (0..self.schema.fields().len()).collect(),
        };
        let schema = Arc::new(self.schema.project(&projection)?);
        let partitions = match self.options.monitor_interval {
            Some(_) => partitions.max(1),
            None => partitions.clamp(1, files.len().max(1)),
        };
        Ok(Arc::new(FileScanExec {
            spec: Arc::new(ScanSpec {
                table: self.name.clone(),
                format: self.options.format,
                declared: self.schema.clone(),
                projection,
                schema,
                filters: filters.to_vec(),
                batch_size,
            }),
            dir: self.options.path.clone(),
            files,
            partitions,
            monitor_interval: self.options.monitor_interval,
            discovery: Mutex::new(None),
        }))
    }
    fn describe(&self) -> String {
        describe_options(&self.options)
    }
    fn is_bounded(&self) -> bool {
        self.options.monitor_interval.is_none()
    }
    fn as_any(&self) -> &dyn std::any::Any {
        self
    }
}

/// What every partition of a scan needs to read a file.
#[derive(Debug)]
struct ScanSpec {
    table: String,
    format: Format,
    /// All declared columns (new files of a monitored directory are bound to them).
    declared: SchemaRef,
    /// The declared columns read, in output order.
    projection: Vec<usize>,
    /// The output schema (the projected declared columns).
    schema: SchemaRef,
    filters: Vec<Expr>,
    batch_size: usize,
}

impl ScanSpec {
    /// The stream of `file`'s batches in the output schema (no `End`).
    fn open(&self, file: &BoundFile, ctx: &Arc<TaskContext>) -> Result<FileBatches> {
        // The file's columns in file order (a reader yields them so); `order` puts them
        // back in the output order.
        let wanted: Vec<usize> = self.projection.iter().map(|&d| file.columns[d]).collect();
        let mut file_projection = wanted.clone();
        file_projection.sort_unstable();
        file_projection.dedup();
        let order = wanted
            .iter()
            .map(|c| file_projection.binary_search(c).unwrap_or_default())
            .collect();
        let exec: Arc<dyn ExecNode> = match &file.reader {
            FileReader::Parquet(f) => {
                let filters: &[Expr] = if file.exact { &self.filters } else { &[] };
                Arc::new(ParquetExec::try_new(
                    vec![f.clone()],
                    f.metadata.schema().clone(),
                    Some(&file_projection),
                    filters,
                    1,
                    self.batch_size,
                )?)
            }
            FileReader::Csv(file_schema) => Arc::new(CsvExec::try_new(
                vec![file.path.clone()],
                file_schema.clone(),
                Some(&file_projection),
                1,
                self.batch_size,
            )?),
        };
        Ok(FileBatches {
            path: file.path.clone(),
            stream: exec.execute(0, ctx)?,
            order,
        })
    }

    /// `batch` of `file` (columns in `order`) in the output schema: columns cast to the
    /// declared types, NOT NULL checked.
    fn adapt(&self, file: &FileBatches, batch: &RecordBatch) -> Result<RecordBatch> {
        let cols = file
            .order
            .iter()
            .zip(self.schema.fields())
            .map(|(&i, f)| {
                let c = batch.column(i);
                if c.data_type() == f.data_type() {
                    return Ok(c.clone());
                }
                let opts = arrow::compute::CastOptions {
                    safe: false,
                    ..Default::default()
                };
                arrow::compute::cast_with_options(c, f.data_type(), &opts).map_err(|e| {
                    SluiceError::exec(format!(
                        "filesystem table '{}': cannot convert column '{}' of file {} from \
                         {} to {}: {e}",
                        self.table,
                        f.name(),
                        file.path.display(),
                        c.data_type(),
                        f.data_type()
                    ))
                })
            })
            .collect::<Result<Vec<_>>>()?;
        let opts = RecordBatchOptions::new().with_row_count(Some(batch.num_rows()));
        RecordBatch::try_new_with_options(self.schema.clone(), cols, &opts).map_err(|e| {
            SluiceError::exec(format!(
                "filesystem table '{}': file {}: {e}",
                self.table,
                file.path.display()
            ))
        })
    }
}

/// The batches of one file being read.
struct FileBatches {
    path: PathBuf,
    stream: ElementStream,
    /// For each output column, its position in the reader's batches.
    order: Vec<usize>,
}

/// The scan of a filesystem table: partition `p` of `n` reads the files whose index is `p`
/// modulo `n` — of the files listed at planning (bounded), or in the order they were
/// discovered (monitoring).
#[derive(Debug)]
pub struct FileScanExec {
    spec: Arc<ScanSpec>,
    dir: PathBuf,
    /// The files listed when the scan was planned.
    files: Vec<BoundFile>,
    partitions: usize,
    monitor_interval: Option<Duration>,
    /// The directory listing the partitions of a monitoring scan share (made by the first
    /// partition started).
    discovery: Mutex<Option<Arc<Discovery>>>,
}

impl FileScanExec {
    fn discovery(&self, interval: Duration) -> Result<Arc<Discovery>> {
        let mut d = self
            .discovery
            .lock()
            .map_err(|_| SluiceError::exec("filesystem scan lock poisoned"))?;
        Ok(d.get_or_insert_with(|| {
            Arc::new(Discovery {
                dir: self.dir.clone(),
                format: self.spec.format,
                interval,
                state: Mutex::new(DiscoveryState {
                    seen: self.files.iter().map(|f| f.path.clone()).collect(),
                    files: self
                        .files
                        .iter()
                        .cloned()
                        .map(|f| Some(Entry::Bound(f)))
                        .collect(),
                    next_listing: Instant::now() + interval,
                }),
            })
        })
        .clone())
    }
}

impl ExecNode for FileScanExec {
    fn name(&self) -> &'static str {
        "FileSystemScanExec"
    }
    fn schema(&self) -> SchemaRef {
        self.spec.schema.clone()
    }
    fn children(&self) -> Vec<Arc<dyn ExecNode>> {
        vec![]
    }
    fn output_partitions(&self) -> usize {
        self.partitions
    }
    fn execute(&self, partition: usize, ctx: &Arc<TaskContext>) -> Result<ElementStream> {
        if partition >= self.partitions {
            return Err(SluiceError::exec("filesystem scan partition out of range"));
        }
        let source = match self.monitor_interval {
            None => Source::Fixed(
                self.files
                    .iter()
                    .skip(partition)
                    .step_by(self.partitions)
                    .cloned()
                    .collect(),
            ),
            Some(_) if !ctx.streaming => {
                return Err(SluiceError::unsupported(format!(
                    "table '{}' is unbounded (filesystem with 'source.monitor-interval'): only \
                     a streaming query can read it (SET 'execution.runtime-mode' = \
                     'streaming' or 'automatic')",
                    self.spec.table
                )))
            }
            Some(interval) => Source::Monitored {
                discovery: self.discovery(interval)?,
                next: partition,
                stride: self.partitions,
            },
        };
        Ok(ctx.cancellable(Box::new(FileStream {
            spec: self.spec.clone(),
            ctx: ctx.clone(),
            source,
            current: None,
            last_data: Instant::now(),
            idle: false,
            done: false,
        })))
    }
    fn details(&self) -> String {
        let mut s = format!(
            "table={}, path={}, format={}, files={}",
            self.spec.table,
            self.dir.display(),
            self.spec.format.ext(),
            self.files.len()
        );
        if let Some(i) = self.monitor_interval {
            s.push_str(&format!(", monitor-interval={}", format_duration(i)));
        }
        s
    }
}

/// A file of a monitored directory: checked at planning, or found later (checked when
/// read).
#[derive(Debug)]
enum Entry {
    Bound(BoundFile),
    New(PathBuf),
}

/// How often a partition waiting for new files checks whether its query was cancelled.
const CANCEL_CHECK: Duration = Duration::from_millis(100);

/// The files of a monitored directory in discovery order, shared by the partitions.
#[derive(Debug)]
struct Discovery {
    dir: PathBuf,
    format: Format,
    interval: Duration,
    state: Mutex<DiscoveryState>,
}

#[derive(Debug)]
struct DiscoveryState {
    /// In discovery order; a file's entry is taken by the partition that reads it.
    files: Vec<Option<Entry>>,
    seen: HashSet<PathBuf>,
    next_listing: Instant,
}

impl Discovery {
    /// Takes file `index` in discovery order, waiting (listing the directory every
    /// interval) until there is one, or until `deadline` (then `None`). Fails with
    /// [`SluiceError::Cancelled`] within [`CANCEL_CHECK`] of `cancelled` turning true.
    fn wait_for(
        &self,
        index: usize,
        deadline: Option<Instant>,
        cancelled: impl Fn() -> bool,
    ) -> Result<Option<Entry>> {
        loop {
            if cancelled() {
                return Err(SluiceError::Cancelled);
            }
            let wait = {
                let mut st = self
                    .state
                    .lock()
                    .map_err(|_| SluiceError::exec("filesystem scan lock poisoned"))?;
                if let Some(e) = st.files.get_mut(index) {
                    return e.take().map(Some).ok_or_else(|| {
                        SluiceError::exec("internal: a monitored file was taken twice")
                    });
                }
                let now = Instant::now();
                if now >= st.next_listing {
                    for p in list_files(&self.dir, self.format.ext())? {
                        if st.seen.insert(p.clone()) {
                            st.files.push(Some(Entry::New(p)));
                        }
                    }
                    st.next_listing = now + self.interval;
                    continue;
                }
                if deadline.is_some_and(|d| now >= d) {
                    return Ok(None);
                }
                let next = st.next_listing - now;
                deadline.map_or(next, |d| next.min(d - now))
            };
            std::thread::sleep(wait.min(CANCEL_CHECK));
        }
    }
}

/// Where a partition's files come from.
enum Source {
    /// A bounded scan's files.
    Fixed(VecDeque<BoundFile>),
    /// Files `next`, `next + stride`, ... of a monitored directory.
    Monitored {
        discovery: Arc<Discovery>,
        next: usize,
        stride: usize,
    },
}

/// One partition of a filesystem scan: its files' batches, one file after the other, then
/// `End` (never, when monitoring).
struct FileStream {
    spec: Arc<ScanSpec>,
    ctx: Arc<TaskContext>,
    source: Source,
    current: Option<FileBatches>,
    /// When the partition last produced rows (or started).
    last_data: Instant,
    /// Whether it has said it is idle since.
    idle: bool,
    done: bool,
}

/// What a partition reads next.
enum NextFile {
    File(BoundFile),
    /// A monitored partition found no file within the idle timeout.
    Idle,
    /// A bounded partition has read all its files.
    Done,
}

impl FileStream {
    /// The partition's next file. A monitored partition that waits longer than the idle
    /// timeout (`table.exec.source.idle-timeout`) says so once.
    fn next_file(&mut self) -> Result<NextFile> {
        match &mut self.source {
            Source::Fixed(files) => Ok(files.pop_front().map_or(NextFile::Done, NextFile::File)),
            Source::Monitored {
                discovery,
                next,
                stride,
            } => {
                let deadline = match (self.idle, self.ctx.config.idle_timeout) {
                    (false, Some(t)) => Some(self.last_data + t),
                    _ => None,
                };
                let ctx = &self.ctx;
                let Some(entry) = discovery.wait_for(*next, deadline, || ctx.is_cancelled())?
                else {
                    self.idle = true;
                    return Ok(NextFile::Idle);
                };
                *next += *stride;
                match entry {
                    Entry::Bound(f) => Ok(NextFile::File(f)),
                    Entry::New(p) => {
                        bind_file(&self.spec.table, &self.spec.declared, self.spec.format, &p)
                            .map(NextFile::File)
                    }
                }
            }
        }
    }

    fn step(&mut self) -> Result<Option<Element>> {
        loop {
            if let Some(file) = &mut self.current {
                match file.stream.next().transpose()? {
                    Some(Element::Batch(b)) => {
                        let b = self.spec.adapt(file, &b)?;
                        self.last_data = Instant::now();
                        self.idle = false;
                        return Ok(Some(Element::Batch(b)));
                    }
                    Some(Element::End) | None => self.current = None,
                    Some(_) => {}
                }
                continue;
            }
            match self.next_file()? {
                NextFile::File(f) => self.current = Some(self.spec.open(&f, &self.ctx)?),
                NextFile::Idle => return Ok(Some(Element::Idle)),
                NextFile::Done => return Ok(Some(Element::End)),
            }
        }
    }
}

impl Iterator for FileStream {
    type Item = Result<Element>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.done {
            return None;
        }
        let r = self.step();
        if !matches!(r, Ok(Some(Element::Batch(_) | Element::Idle))) {
            self.done = true;
        }
        r.transpose()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn safe_casts_never_lose_values() {
        use DataType::*;
        let ts = |u| Timestamp(u, None);
        assert!(safe_cast(&Int32, &Int64));
        assert!(safe_cast(&UInt32, &Int64));
        assert!(!safe_cast(&UInt64, &Int64));
        assert!(!safe_cast(&Int64, &Int32));
        assert!(!safe_cast(&Int8, &UInt16));
        assert!(safe_cast(&Int32, &Float64));
        assert!(!safe_cast(&Int64, &Float64));
        assert!(safe_cast(&Float32, &Float64));
        assert!(!safe_cast(&Float64, &Float32));
        assert!(safe_cast(&LargeUtf8, &Utf8));
        assert!(safe_cast(
            &Dictionary(Box::new(Int32), Box::new(Utf8)),
            &Utf8
        ));
        assert!(safe_cast(
            &ts(TimeUnit::Millisecond),
            &ts(TimeUnit::Microsecond)
        ));
        assert!(safe_cast(
            &Timestamp(TimeUnit::Nanosecond, Some("UTC".into())),
            &ts(TimeUnit::Microsecond)
        ));
        assert!(safe_cast(&Decimal128(10, 2), &Decimal128(12, 3)));
        assert!(!safe_cast(&Decimal128(10, 2), &Decimal128(10, 3)));
        assert!(!safe_cast(&Utf8, &Int64));
        assert!(!safe_cast(&Int64, &Utf8));
    }

    #[test]
    fn columns_bind_by_exact_then_case_insensitive_name() {
        assert_eq!(find_column(&["a", "A"], "A"), Some(1));
        assert_eq!(find_column(&["x", "Ts"], "ts"), Some(1));
        assert_eq!(find_column(&["ts", "TS"], "Ts"), None, "ambiguous");
        assert_eq!(find_column(&["x"], "y"), None);
    }
}
