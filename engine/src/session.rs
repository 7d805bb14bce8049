//! The embedded entry point: a [`Session`] holds registered tables and settings, runs SQL
//! statements and starts DataFrames. Everything runs in the calling process.

mod insert;
mod job;

pub use job::{Job, RunningPlan};

use std::path::Path;
use std::sync::Arc;

use arrow::array::{RecordBatch, StringArray};
use arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use sqlparser::ast::{self as ast, Statement};

use crate::catalog::csv::CsvTable;
use crate::catalog::memory::MemTable;
use crate::catalog::parquet::ParquetTable;
use crate::catalog::{connector_table, Catalog, CatalogEntry, TableProvider};
use crate::config::SessionConfig;
use crate::dataframe::DataFrame;
use crate::error::{Result, SluiceError};
use crate::logical::expr::Scalar;
use crate::logical::plan::LogicalPlan;
use crate::logical::schema::PlanSchema;
use crate::sql::params::number_placeholders;
use crate::sql::planner::SqlPlanner;
use crate::sql::{
    convert_data_type, ident, object_name, parse, with_options, FileFormat, SqlStatement,
};

/// An embedded Sluice instance.
#[derive(Debug, Clone, Default)]
pub struct Session {
    catalog: Arc<Catalog>,
    /// The settings (`SET` changes them), shared by clones of the session.
    config: Arc<std::sync::Mutex<SessionConfig>>,
}

impl Session {
    /// A session with default settings (one partition per core).
    pub fn new() -> Self {
        Self::default()
    }

    /// A session with `config`.
    pub fn with_config(config: SessionConfig) -> Self {
        Self {
            catalog: Arc::new(Catalog::default()),
            config: Arc::new(std::sync::Mutex::new(config)),
        }
    }

    /// The settings queries get: the session's, with any `SET` applied.
    fn query_config(&self) -> SessionConfig {
        self.config()
    }

    /// The settings, with any `SET` applied.
    pub fn config(&self) -> SessionConfig {
        match self.config.lock() {
            Ok(c) => c.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    /// Makes `flag` this session's cancel flag ([`SessionConfig::cancel`]): once it is
    /// set, a running query stops reading its sources and its result ends early (the
    /// shell sets it on Ctrl-C and clears it before each statement).
    pub fn set_cancel_flag(&self, flag: Option<Arc<std::sync::atomic::AtomicBool>>) {
        match self.config.lock() {
            Ok(mut c) => c.cancel = flag,
            Err(poisoned) => poisoned.into_inner().cancel = flag,
        }
    }

    /// The table registry.
    pub fn catalog(&self) -> &Arc<Catalog> {
        &self.catalog
    }

    /// Registers a table provider under `name`.
    pub fn register_table(&self, name: &str, table: Arc<dyn TableProvider>) -> Result<()> {
        self.catalog.register(name, CatalogEntry::Table(table))
    }

    /// Registers in-memory batches as table `name`.
    pub fn register_batches(
        &self,
        name: &str,
        schema: SchemaRef,
        batches: Vec<RecordBatch>,
    ) -> Result<()> {
        self.register_table(name, Arc::new(MemTable::try_new(schema, batches)?))
    }

    /// Registers a Parquet file or directory of Parquet files as table `name`.
    pub fn register_parquet(&self, name: &str, path: impl AsRef<Path>) -> Result<()> {
        self.register_table(name, Arc::new(ParquetTable::try_new(path)?))
    }

    /// Registers a CSV file (with header) or directory of CSV files as table `name`.
    pub fn register_csv(&self, name: &str, path: impl AsRef<Path>) -> Result<()> {
        self.register_table(name, Arc::new(CsvTable::try_new(path)?))
    }

    /// Registers every `NAME.parquet` file and `NAME/` directory of Parquet files in `dir`
    /// as table `NAME`; returns the names.
    pub fn register_parquet_dir(&self, dir: impl AsRef<Path>) -> Result<Vec<String>> {
        let dir = dir.as_ref();
        let rd = std::fs::read_dir(dir).map_err(|source| SluiceError::Io {
            path: dir.to_path_buf(),
            source,
        })?;
        let mut names = Vec::new();
        let mut entries: Vec<_> = rd.filter_map(|e| e.ok()).map(|e| e.path()).collect();
        entries.sort();
        for p in entries {
            let Some(file_name) = p.file_name().map(|f| f.to_string_lossy().to_string()) else {
                continue;
            };
            if file_name.starts_with('.') {
                continue;
            }
            let name = if p.is_dir() {
                let has_parquet = std::fs::read_dir(&p)
                    .map(|rd| {
                        rd.filter_map(|e| e.ok())
                            .any(|e| e.path().extension().is_some_and(|x| x == "parquet"))
                    })
                    .unwrap_or(false);
                if !has_parquet {
                    continue;
                }
                file_name
            } else if let Some(stem) = file_name.strip_suffix(".parquet") {
                stem.to_string()
            } else {
                continue;
            };
            self.register_parquet(&name, &p)?;
            names.push(name);
        }
        Ok(names)
    }

    /// Removes a table or view; returns whether it existed.
    pub fn deregister(&self, name: &str) -> Result<bool> {
        self.catalog.deregister(name)
    }

    /// Registered table and view names.
    pub fn table_names(&self) -> Vec<String> {
        self.catalog.names()
    }

    /// A DataFrame reading table `name`.
    pub fn table(&self, name: &str) -> Result<DataFrame> {
        let plan = SqlPlanner::new(&self.catalog)
            .plan_query(&single_query(&format!("SELECT * FROM {name}"))?)?;
        Ok(DataFrame::new(plan, self.query_config()))
    }

    /// A DataFrame reading a Parquet file or directory (not registered).
    pub fn read_parquet(&self, path: impl AsRef<Path>) -> Result<DataFrame> {
        let t = Arc::new(ParquetTable::try_new(path.as_ref())?);
        Ok(self.scan_of(&path.as_ref().display().to_string(), t))
    }

    /// A DataFrame reading a CSV file or directory (not registered).
    pub fn read_csv(&self, path: impl AsRef<Path>) -> Result<DataFrame> {
        let t = Arc::new(CsvTable::try_new(path.as_ref())?);
        Ok(self.scan_of(&path.as_ref().display().to_string(), t))
    }

    /// A DataFrame over in-memory batches (not registered).
    pub fn read_batches(&self, schema: SchemaRef, batches: Vec<RecordBatch>) -> Result<DataFrame> {
        Ok(self.scan_of("batches", Arc::new(MemTable::try_new(schema, batches)?)))
    }

    fn scan_of(&self, name: &str, t: Arc<dyn TableProvider>) -> DataFrame {
        let name = Path::new(name)
            .file_stem()
            .map_or_else(|| name.to_string(), |s| s.to_string_lossy().to_string());
        let schema = PlanSchema::from_arrow(Some(&name), &t.schema());
        DataFrame::new(
            Arc::new(LogicalPlan::Scan {
                table: name,
                source: t,
                projection: None,
                filters: vec![],
                schema,
            }),
            self.query_config(),
        )
    }

    /// Plans SQL text. DDL statements (CREATE EXTERNAL TABLE / VIEW / TABLE, INSERT, DROP)
    /// take effect immediately; the returned DataFrame is the last statement's result
    /// (an empty result for DDL).
    pub fn sql(&self, sql: &str) -> Result<DataFrame> {
        self.sql_with_params(sql, &[])
    }

    /// Like [`Session::sql`], with `params` bound to the placeholders (`?` in text order,
    /// or `$1..$n`). Each value becomes a literal of its own type; the number of values must
    /// match the number of placeholders.
    pub fn sql_with_params(&self, sql: &str, params: &[Scalar]) -> Result<DataFrame> {
        let mut statements = parse(sql)?;
        if statements.is_empty() {
            return Err(SluiceError::Parse("no statement to run".into()));
        }
        let wanted = number_placeholders(&mut statements)?;
        if wanted != params.len() {
            return Err(SluiceError::plan(format!(
                "the statement has {wanted} parameter(s) but {} value(s) were bound",
                params.len()
            )));
        }
        let mut last = None;
        for s in statements {
            last = Some(self.statement(s, params)?);
        }
        last.ok_or_else(|| SluiceError::Parse("no statement to run".into()))
    }

    /// How many parameters `sql` takes (after parsing it; nothing runs).
    pub fn parameter_count(sql: &str) -> Result<usize> {
        number_placeholders(&mut parse(sql)?)
    }

    /// True when `name` exists and `IF NOT EXISTS` says to do nothing; an error when it
    /// exists otherwise.
    fn exists(&self, name: &str, if_not_exists: bool) -> Result<bool> {
        if !self.catalog.contains(name) {
            Ok(false)
        } else if if_not_exists {
            Ok(true)
        } else {
            Err(SluiceError::plan(format!("table '{name}' already exists")))
        }
    }

    fn done(&self) -> DataFrame {
        DataFrame::new(
            Arc::new(LogicalPlan::Empty {
                produce_one_row: false,
                schema: PlanSchema::default(),
            }),
            self.query_config(),
        )
    }

    fn text_result(&self, cols: &[&str], rows: Vec<Vec<String>>) -> Result<DataFrame> {
        let schema = Arc::new(Schema::new(
            cols.iter()
                .map(|c| Field::new(*c, DataType::Utf8, false))
                .collect::<Vec<_>>(),
        ));
        let arrays = (0..cols.len())
            .map(|i| {
                Arc::new(StringArray::from(
                    rows.iter().map(|r| r[i].clone()).collect::<Vec<_>>(),
                )) as _
            })
            .collect();
        let batch = RecordBatch::try_new(schema.clone(), arrays)?;
        self.read_batches(schema, vec![batch])
    }

    fn statement(&self, s: SqlStatement, params: &[Scalar]) -> Result<DataFrame> {
        let st = match s {
            SqlStatement::CreateExternalTable {
                name,
                format,
                location,
                if_not_exists,
            } => {
                if self.exists(&name, if_not_exists)? {
                    return Ok(self.done());
                }
                match format {
                    FileFormat::Parquet => self.register_parquet(&name, &location)?,
                    FileFormat::Csv => self.register_csv(&name, &location)?,
                }
                return Ok(self.done());
            }
            SqlStatement::CreateTimeTable {
                name,
                if_not_exists,
                elements,
                watermark,
                options,
            } => {
                if self.exists(&name, if_not_exists)? {
                    return Ok(self.done());
                }
                let plan = crate::sql::flink::plan_time_table(
                    &self.catalog,
                    &name,
                    &elements,
                    watermark.as_ref(),
                    &options,
                )?;
                self.catalog.register(&name, CatalogEntry::View(plan))?;
                return Ok(self.done());
            }
            SqlStatement::Standard(st) => st,
        };
        match *st {
            Statement::Query(q) => {
                let plan = SqlPlanner::new(&self.catalog)
                    .with_params(params)
                    .plan_query(&q)?;
                Ok(DataFrame::new(plan, self.query_config()))
            }
            Statement::Explain {
                statement, analyze, ..
            } => {
                let Statement::Query(q) = *statement else {
                    return Err(SluiceError::unsupported(
                        "EXPLAIN of a statement other than a query",
                    ));
                };
                let plan = SqlPlanner::new(&self.catalog)
                    .with_params(params)
                    .plan_query(&q)?;
                let df = DataFrame::new(plan, self.query_config());
                if analyze {
                    let text = df.explain_analyze()?;
                    return self.text_result(
                        &["plan_type", "plan"],
                        vec![vec!["physical_plan_with_metrics".into(), text]],
                    );
                }
                let text = df.explain()?;
                let mut rows = Vec::new();
                for (kind, body) in ["logical_plan", "optimized_logical_plan", "physical_plan"]
                    .iter()
                    .zip(text.split("== ").filter(|s| !s.is_empty()))
                {
                    let body = body.split_once("==\n").map_or(body, |(_, b)| b);
                    rows.push(vec![kind.to_string(), body.trim_end().to_string()]);
                }
                self.text_result(&["plan_type", "plan"], rows)
            }
            Statement::CreateView(v) => {
                let name = object_name(&v.name);
                if self.catalog.contains(&name) && !v.or_replace {
                    if v.if_not_exists {
                        return Ok(self.done());
                    }
                    return Err(SluiceError::plan(format!("'{name}' already exists")));
                }
                let mut planner = SqlPlanner::new(&self.catalog).with_params(params);
                let plan = planner.plan_query(&v.query)?;
                let cols: Vec<ast::TableAliasColumnDef> = v
                    .columns
                    .iter()
                    .map(|c| ast::TableAliasColumnDef {
                        name: c.name.clone(),
                        data_type: None,
                    })
                    .collect();
                let plan = planner.rename_columns(plan, &cols)?;
                self.catalog.register(&name, CatalogEntry::View(plan))?;
                Ok(self.done())
            }
            Statement::CreateTable(ct) => {
                let name = object_name(&ct.name);
                if self.catalog.contains(&name) && !ct.or_replace {
                    if ct.if_not_exists {
                        return Ok(self.done());
                    }
                    return Err(SluiceError::plan(format!("table '{name}' already exists")));
                }
                if let Some(c) = ct.constraints.first() {
                    return Err(SluiceError::unsupported(format!(
                        "table constraint {c} (CREATE TABLE {name}): Sluice keeps no keys or \
                         checks"
                    )));
                }
                if let Some(options) = with_options(&ct.table_options)? {
                    if ct.query.is_some() {
                        return Err(SluiceError::unsupported(
                            "CREATE TABLE ... WITH (connector options) AS SELECT",
                        ));
                    }
                    if ct.columns.is_empty() {
                        return Err(SluiceError::plan(format!(
                            "CREATE TABLE {name} ... WITH (...) needs a column list"
                        )));
                    }
                    let table = connector_table(&name, column_schema(&ct.columns)?, &options)?;
                    self.register_table(&name, table)?;
                    return Ok(self.done());
                }
                let (schema, batches) = match &ct.query {
                    Some(q) => {
                        let plan = SqlPlanner::new(&self.catalog)
                            .with_params(params)
                            .plan_query(q)?;
                        let df = DataFrame::new(plan, self.query_config());
                        (df.schema(), df.collect()?)
                    }
                    None => (column_schema(&ct.columns)?, vec![]),
                };
                self.register_batches(&name, schema, batches)?;
                Ok(self.done())
            }
            Statement::Insert(ins) => self.insert(&ins, params),
            Statement::Drop {
                object_type,
                if_exists,
                names,
                ..
            } => {
                if !matches!(object_type, ast::ObjectType::Table | ast::ObjectType::View) {
                    return Err(SluiceError::unsupported(format!("DROP {object_type}")));
                }
                let want_view = matches!(object_type, ast::ObjectType::View);
                for n in &names {
                    let name = object_name(n);
                    match self.catalog.get(&name) {
                        Ok(entry) => {
                            let is_view = matches!(entry, CatalogEntry::View(_));
                            if is_view != want_view {
                                let (what, other) = if is_view {
                                    ("a view", "VIEW")
                                } else {
                                    ("a table", "TABLE")
                                };
                                return Err(SluiceError::plan(format!(
                                    "'{name}' is {what}; use DROP {other}"
                                )));
                            }
                            self.catalog.deregister(&name)?;
                        }
                        Err(_) if if_exists => {}
                        Err(e) => return Err(e),
                    }
                }
                Ok(self.done())
            }
            Statement::Set(ast::Set::SingleAssignment {
                variable, values, ..
            }) => {
                let key = object_name(&variable);
                let value = match values.as_slice() {
                    [ast::Expr::Value(v)] => match &v.value {
                        ast::Value::SingleQuotedString(s) | ast::Value::DoubleQuotedString(s) => {
                            s.clone()
                        }
                        other => other.to_string(),
                    },
                    [ast::Expr::Identifier(i)] => i.value.clone(),
                    _ => return Err(SluiceError::plan(format!("SET {key}: expected one value"))),
                };
                let mut config = self.query_config();
                config.set(&key, &value).map_err(SluiceError::plan)?;
                match self.config.lock() {
                    Ok(mut c) => *c = config,
                    Err(poisoned) => *poisoned.into_inner() = config,
                }
                Ok(self.done())
            }
            Statement::ShowTables { .. } => {
                let rows = self.table_names().into_iter().map(|n| vec![n]).collect();
                self.text_result(&["table_name"], rows)
            }
            other => Err(SluiceError::unsupported(format!("statement: {other}"))),
        }
    }
}

/// The schema of a `CREATE TABLE` column list (`NOT NULL` columns are not nullable).
/// Column options Sluice does not keep (`DEFAULT`, `PRIMARY KEY`, `UNIQUE`, `CHECK`, ...)
/// are refused rather than ignored: a default that silently became NULL would be a wrong
/// answer. `NULL` and `COMMENT` are accepted.
pub(crate) fn column_schema(columns: &[ast::ColumnDef]) -> Result<SchemaRef> {
    let fields = columns
        .iter()
        .map(|c| {
            let mut not_null = false;
            for o in &c.options {
                match &o.option {
                    ast::ColumnOption::NotNull => not_null = true,
                    ast::ColumnOption::Null | ast::ColumnOption::Comment(_) => {}
                    other => {
                        return Err(SluiceError::unsupported(format!(
                            "column option {other} (column {}): Sluice keeps only NULL and \
                             NOT NULL",
                            ident(&c.name)
                        )))
                    }
                }
            }
            Ok(Field::new(
                ident(&c.name),
                convert_data_type(&c.data_type)?,
                !not_null,
            ))
        })
        .collect::<Result<Vec<_>>>()?;
    Ok(Arc::new(Schema::new(fields)))
}

fn single_query(sql: &str) -> Result<ast::Query> {
    match parse(sql)?.pop() {
        Some(SqlStatement::Standard(st)) => match *st {
            Statement::Query(q) => Ok(*q),
            _ => Err(SluiceError::plan("expected a query")),
        },
        _ => Err(SluiceError::plan("expected a query")),
    }
}
