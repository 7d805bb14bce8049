//! `INSERT INTO`: into an in-memory table (all rows converted first, then appended at
//! once, so a failing row leaves the table unchanged), into a sink connector table (rows
//! written as the query produces them, a stream's included) or into a filesystem table
//! (rolling part files, see [`crate::catalog::filesystem_sink`]).
//!
//! `INSERT INTO t (a, c) ...` fills the listed columns from the query, in the list's
//! order, and the others with NULL (Sluice has no column defaults, so a NOT NULL column
//! must be listed).

use std::sync::Arc;

use arrow::array::{new_null_array, Array, ArrayRef, AsArray, RecordBatch, StringArray};
use arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use sqlparser::ast;

use super::Session;
use crate::catalog::datagen::DatagenTable;
use crate::catalog::filesystem::FileSystemTable;
use crate::catalog::memory::MemTable;
use crate::catalog::nexmark::NexmarkTable;
use crate::catalog::sink::SinkTable;
use crate::catalog::CatalogEntry;
use crate::dataframe::DataFrame;
use crate::error::{did_you_mean, nearest, Result, SluiceError};
use crate::logical::expr::Scalar;
use crate::sql::object_name;
use crate::sql::planner::SqlPlanner;

impl Session {
    /// Runs `INSERT INTO table query`; the result is the number of rows written.
    pub(super) fn insert(&self, ins: &ast::Insert, params: &[Scalar]) -> Result<DataFrame> {
        let name = match &ins.table {
            ast::TableObject::TableName(n) => object_name(n),
            other => return Err(SluiceError::unsupported(format!("INSERT INTO {other}"))),
        };
        let CatalogEntry::Table(table) = self.catalog.get(&name)? else {
            return Err(SluiceError::plan(format!(
                "cannot INSERT into view '{name}'"
            )));
        };
        if table.as_any().is::<DatagenTable>() || table.as_any().is::<NexmarkTable>() {
            return Err(SluiceError::plan(format!(
                "cannot INSERT into table '{name}': it is a {} connector table, a \
                 read-only source that generates its rows",
                table.describe()
            )));
        }
        let schema = table.schema();
        if let Some(sink) = table.as_any().downcast_ref::<SinkTable>() {
            let (df, from) = self.insert_source(&name, &schema, ins, params)?;
            let stdout = std::io::stdout();
            let mut written = 0;
            let updating = df.is_updating();
            for batch in df.execute_iter()? {
                let (ops, batch) = split_op(batch?, updating)?;
                let batch = conform(&batch, &schema, &from)?;
                sink.write(&batch, ops.as_ref(), &mut stdout.lock())?;
                written += batch.num_rows();
            }
            return self.row_count(written);
        }
        if let Some(fs) = table.as_any().downcast_ref::<FileSystemTable>() {
            let (df, from) = self.insert_source(&name, &schema, ins, params)?;
            let written = fs.write_query(&df, &|b| conform(b, &schema, &from))?;
            return self.row_count(written);
        }
        let Some(mem) = table.as_any().downcast_ref::<MemTable>() else {
            return Err(SluiceError::unsupported(format!(
                "INSERT into {}",
                table.describe()
            )));
        };
        let (df, from) = self.insert_source(&name, &schema, ins, params)?;
        if df.is_updating() {
            return Err(SluiceError::unsupported(format!(
                "INSERT INTO in-memory table '{name}' of an updating query (a streaming \
                 GROUP BY without window columns produces a changelog, and an in-memory \
                 table takes appends only); group by window_start and window_end, or run \
                 the query in batch mode"
            )));
        }
        let new_batches = df
            .collect()?
            .iter()
            .map(|b| conform(b, &schema, &from))
            .collect::<Result<Vec<_>>>()?;
        let inserted = new_batches.iter().map(RecordBatch::num_rows).sum();
        mem.append(new_batches)?;
        self.row_count(inserted)
    }

    /// The query of an INSERT into `name` of `schema`, and where each of the table's
    /// columns comes from (see [`insert_targets`]).
    fn insert_source(
        &self,
        name: &str,
        schema: &SchemaRef,
        ins: &ast::Insert,
        params: &[Scalar],
    ) -> Result<(DataFrame, Vec<Option<usize>>)> {
        let source = ins
            .source
            .as_ref()
            .ok_or_else(|| SluiceError::unsupported("INSERT without a query or VALUES"))?;
        let listed: Vec<String> = ins.columns.iter().map(object_name).collect();
        let from = insert_targets(name, schema, &listed)?;
        let plan = SqlPlanner::new(&self.catalog)
            .with_params(params)
            .plan_query(source)?;
        let df = DataFrame::new(plan, self.query_config());
        let (got, want) = (df.schema().fields().len(), from.iter().flatten().count());
        if got != want {
            return Err(SluiceError::plan(if listed.is_empty() {
                format!("INSERT has {got} columns but table '{name}' has {want}")
            } else {
                format!("INSERT lists {want} columns but its query has {got}")
            }));
        }
        Ok((df, from))
    }

    /// The one-row result `count` of an INSERT.
    fn row_count(&self, rows: usize) -> Result<DataFrame> {
        let count = Arc::new(arrow::array::Int64Array::from(vec![rows as i64]));
        let s = Arc::new(Schema::new(vec![Field::new(
            "count",
            DataType::Int64,
            false,
        )]));
        self.read_batches(s.clone(), vec![RecordBatch::try_new(s, vec![count])?])
    }
}

/// A changelog batch's `op` column (first) and its other columns; `b` unchanged when the
/// query is not `updating`.
fn split_op(b: RecordBatch, updating: bool) -> Result<(Option<StringArray>, RecordBatch)> {
    if !updating {
        return Ok((None, b));
    }
    let ops = b.column(0).as_string_opt::<i32>().cloned().ok_or_else(|| {
        SluiceError::exec("internal: a changelog batch without its op column first")
    })?;
    let rest: Vec<usize> = (1..b.num_columns()).collect();
    Ok((Some(ops), b.project(&rest)?))
}

/// For each column of the table `name` of `schema`, the column of the INSERT's query that
/// fills it (`None`: NULL). With no column `list`, the query's columns in order; with one,
/// the listed columns (names as [`crate::sql::ident`] gives them) from the query's
/// columns in the list's order. A name the table lacks, a name listed twice and a NOT
/// NULL column left out are errors.
fn insert_targets(name: &str, schema: &SchemaRef, list: &[String]) -> Result<Vec<Option<usize>>> {
    if list.is_empty() {
        return Ok((0..schema.fields().len()).map(Some).collect());
    }
    let mut from = vec![None; schema.fields().len()];
    for (j, column) in list.iter().enumerate() {
        let Some(t) = schema.fields().iter().position(|f| f.name() == column) else {
            let names = schema.fields().iter().map(|f| f.name().as_str());
            return Err(SluiceError::plan(format!(
                "table '{name}' has no column '{column}'{}",
                did_you_mean(&nearest(column, names, 1))
            )));
        };
        if from[t].replace(j).is_some() {
            return Err(SluiceError::plan(format!(
                "column '{column}' is listed twice in INSERT INTO {name}"
            )));
        }
    }
    if let Some(f) = schema
        .fields()
        .iter()
        .zip(&from)
        .find_map(|(f, j)| (j.is_none() && !f.is_nullable()).then_some(f))
    {
        return Err(SluiceError::plan(format!(
            "column '{}' of table '{name}' is NOT NULL and has no default: list it in the \
             INSERT",
            f.name()
        )));
    }
    Ok(from)
}

/// `b` in the table's `schema`, column `t` from `b`'s column `from[t]` (NULLs where that
/// is `None`): each column cast to the column's type (a value that does not fit is an
/// error, not a NULL), NULLs refused in NOT NULL columns.
fn conform(b: &RecordBatch, schema: &SchemaRef, from: &[Option<usize>]) -> Result<RecordBatch> {
    let cols = from
        .iter()
        .zip(schema.fields())
        .map(|(j, f)| {
            let Some(j) = *j else {
                return Ok(new_null_array(f.data_type(), b.num_rows()));
            };
            let c = b.columns().get(j).ok_or_else(|| {
                SluiceError::exec(format!(
                    "internal: INSERT row of {} columns has no column {j}",
                    b.num_columns()
                ))
            })?;
            let c: ArrayRef = if c.data_type() == f.data_type() {
                c.clone()
            } else {
                arrow::compute::cast_with_options(
                    c,
                    f.data_type(),
                    &arrow::compute::CastOptions {
                        safe: false,
                        ..Default::default()
                    },
                )
                .map_err(|e| {
                    SluiceError::Type(format!(
                        "cannot insert {} into column {} ({}): {e}",
                        c.data_type(),
                        f.name(),
                        f.data_type()
                    ))
                })?
            };
            if !f.is_nullable() && c.null_count() > 0 {
                return Err(SluiceError::plan(format!(
                    "NULL value in NOT NULL column {}",
                    f.name()
                )));
            }
            Ok(c)
        })
        .collect::<Result<Vec<_>>>()?;
    Ok(RecordBatch::try_new(schema.clone(), cols)?)
}
