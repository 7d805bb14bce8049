//! Tables a session can query: the [`TableProvider`] trait and its in-memory, Parquet,
//! CSV and connector (`datagen`, `nexmark`, `filesystem`, `print`, `blackhole`)
//! implementations, plus the name → table registry.

pub mod csv;
pub mod datagen;
pub mod datagen_options;
pub mod filesystem;
pub mod filesystem_options;
pub mod filesystem_sink;
pub mod generated;
pub mod memory;
pub mod nexmark;
pub mod nexmark_gen;
pub mod parquet;
pub mod sink;
pub mod statistics;

use std::collections::BTreeMap;
use std::fmt::Debug;
use std::sync::{Arc, RwLock};

use arrow::datatypes::SchemaRef;

use crate::error::{did_you_mean, nearest, Result, SluiceError};
use crate::logical::expr::Expr;
use crate::logical::plan::LogicalPlan;
use crate::physical::ExecNode;

/// A table: its schema, a size estimate, and how to scan it.
pub trait TableProvider: Send + Sync + Debug {
    /// The table's columns.
    fn schema(&self) -> SchemaRef;
    /// Row count if known cheaply (used for join ordering).
    fn row_count(&self) -> Option<usize>;
    /// One entry per column of [`TableProvider::schema`] if the table knows its values'
    /// ranges without reading them (Parquet footers); empty otherwise.
    fn column_statistics(&self) -> &[statistics::ColumnStatistics] {
        &[]
    }
    /// A scan of the columns `projection` (indices into `schema`, `None` = all), split into
    /// up to `partitions` partitions. `filters` are hints the scan may use to skip data; the
    /// plan filters exactly above the scan either way.
    fn scan(
        &self,
        projection: Option<&[usize]>,
        filters: &[Expr],
        partitions: usize,
        batch_size: usize,
    ) -> Result<Arc<dyn ExecNode>>;
    /// A short description for EXPLAIN.
    fn describe(&self) -> String;
    /// False for a source that never ends (its scan runs only in streaming mode).
    fn is_bounded(&self) -> bool {
        true
    }
    /// For downcasting to the concrete table type (INSERT needs the in-memory table).
    fn as_any(&self) -> &dyn std::any::Any;
}

/// What a catalog name refers to.
#[derive(Debug, Clone)]
pub enum CatalogEntry {
    /// A base table.
    Table(Arc<dyn TableProvider>),
    /// A view: a stored logical plan.
    View(Arc<LogicalPlan>),
}

/// The registry of tables and views of a session.
#[derive(Debug, Default)]
pub struct Catalog {
    entries: RwLock<BTreeMap<String, CatalogEntry>>,
}

impl Catalog {
    /// Names are exact: SQL lower-cases unquoted identifiers before they get here, so
    /// `Foo` and `foo` meet, while `"Foo"` must be registered as `Foo`.
    fn key(name: &str) -> String {
        name.to_string()
    }

    /// Registers (or replaces) `name`.
    pub fn register(&self, name: &str, entry: CatalogEntry) -> Result<()> {
        let mut m = self
            .entries
            .write()
            .map_err(|_| SluiceError::exec("catalog lock poisoned"))?;
        m.insert(Self::key(name), entry);
        Ok(())
    }

    /// Registers `name` unless it exists (checked and inserted under one lock); returns
    /// whether it was registered.
    pub fn register_new(&self, name: &str, entry: CatalogEntry) -> Result<bool> {
        let mut m = self
            .entries
            .write()
            .map_err(|_| SluiceError::exec("catalog lock poisoned"))?;
        if m.contains_key(&Self::key(name)) {
            return Ok(false);
        }
        m.insert(Self::key(name), entry);
        Ok(true)
    }

    /// Removes `name`; returns whether it existed.
    pub fn deregister(&self, name: &str) -> Result<bool> {
        let mut m = self
            .entries
            .write()
            .map_err(|_| SluiceError::exec("catalog lock poisoned"))?;
        Ok(m.remove(&Self::key(name)).is_some())
    }

    /// Looks `name` up; the error names the closest known tables.
    pub fn get(&self, name: &str) -> Result<CatalogEntry> {
        let m = self
            .entries
            .read()
            .map_err(|_| SluiceError::exec("catalog lock poisoned"))?;
        if let Some(e) = m.get(&Self::key(name)) {
            return Ok(e.clone());
        }
        let hints = nearest(name, m.keys().map(String::as_str), 3);
        Err(SluiceError::plan(format!(
            "table '{name}' not found{}",
            did_you_mean(&hints)
        )))
    }

    /// True when `name` is registered.
    pub fn contains(&self, name: &str) -> bool {
        self.entries
            .read()
            .map(|m| m.contains_key(&Self::key(name)))
            .unwrap_or(false)
    }

    /// All names, sorted.
    pub fn names(&self) -> Vec<String> {
        self.entries
            .read()
            .map(|m| m.keys().cloned().collect())
            .unwrap_or_default()
    }
}

/// Connectors `CREATE TABLE ... WITH ('connector' = '...')` accepts.
pub const CONNECTORS: [&str; 5] = ["datagen", "nexmark", "filesystem", "print", "blackhole"];

/// The table `name` of `schema` that `CREATE TABLE ... WITH (options)` defines: the
/// `connector` option picks the implementation, which validates the other options.
pub fn connector_table(
    name: &str,
    schema: SchemaRef,
    options: &[(String, String)],
) -> Result<Arc<dyn TableProvider>> {
    let connector = options
        .iter()
        .rev()
        .find(|(k, _)| k == "connector")
        .map(|(_, v)| v.as_str());
    match connector {
        Some(c) if c.eq_ignore_ascii_case("datagen") => Ok(Arc::new(
            datagen::DatagenTable::try_new(name, schema, options)?,
        )),
        Some(c) if c.eq_ignore_ascii_case("nexmark") => Ok(Arc::new(
            nexmark::NexmarkTable::try_new(name, schema, options)?,
        )),
        Some(c) if c.eq_ignore_ascii_case("filesystem") => Ok(Arc::new(
            filesystem::FileSystemTable::try_new(name, schema, options)?,
        )),
        Some(c) if c.eq_ignore_ascii_case("print") || c.eq_ignore_ascii_case("blackhole") => {
            let kind = if c.eq_ignore_ascii_case("print") {
                sink::SinkKind::Print
            } else {
                sink::SinkKind::Blackhole
            };
            Ok(Arc::new(sink::SinkTable::try_new(
                name, schema, kind, options,
            )?))
        }
        Some(c) => {
            let hints = nearest(c, CONNECTORS, 1);
            Err(SluiceError::plan(format!(
                "unknown connector '{c}' for table '{name}' (supported connectors: {}){}",
                CONNECTORS.join(", "),
                did_you_mean(&hints)
            )))
        }
        None => Err(SluiceError::plan(format!(
            "CREATE TABLE {name} ... WITH (...) needs a 'connector' option (supported \
             connectors: {})",
            CONNECTORS.join(", ")
        ))),
    }
}

/// `path` itself when it is a file, else the files in directory `path` ending in `.ext`
/// (sorted, hidden files skipped).
pub fn list_files(path: &std::path::Path, ext: &str) -> Result<Vec<std::path::PathBuf>> {
    let meta = std::fs::metadata(path).map_err(|source| SluiceError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    if meta.is_file() {
        return Ok(vec![path.to_path_buf()]);
    }
    let rd = std::fs::read_dir(path).map_err(|source| SluiceError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    let mut files = Vec::new();
    for entry in rd {
        let entry = entry.map_err(|source| SluiceError::Io {
            path: path.to_path_buf(),
            source,
        })?;
        let p = entry.path();
        let name = entry.file_name().to_string_lossy().to_string();
        if p.is_file()
            && !name.starts_with('.')
            && !name.starts_with('_')
            && name.ends_with(&format!(".{ext}"))
        {
            files.push(p);
        }
    }
    files.sort();
    Ok(files)
}
