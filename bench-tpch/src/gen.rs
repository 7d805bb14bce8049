//! TPC-H data generation with `tpchgen` / `tpchgen-arrow`: in memory, or as Parquet files.
//!
//! The generators can split a table into `part_count` contiguous parts (1-based `part`);
//! concatenating the parts in order gives the same rows as a single part. Region and nation
//! are fixed-size tables whose generators ignore the split, so they are always generated
//! (and written) as one part.
//!
//! Parquet layout: `out_dir/<table>.parquet` for one part, or
//! `out_dir/<table>/part-N.parquet` (N 1-based) for several. Files are written under a
//! temporary name and renamed when complete, so an interrupted run never leaves a table that
//! looks present.

use std::fs;
use std::path::{Path, PathBuf};
use std::thread;

use arrow::array::RecordBatch;
use arrow::datatypes::SchemaRef;
use arrow::error::ArrowError;
use indicatif::{MultiProgress, ProgressBar, ProgressStyle};
use parquet::arrow::ArrowWriter;
use parquet::basic::Compression;
use parquet::file::properties::WriterProperties;
use sluice::catalog::parquet::ParquetTable;
use sluice::catalog::TableProvider;
use sluice::Session;
use tpchgen::generators::{
    CustomerGenerator, LineItemGenerator, NationGenerator, OrderGenerator, PartGenerator,
    PartSuppGenerator, RegionGenerator, SupplierGenerator,
};
use tpchgen_arrow::{
    CustomerArrow, LineItemArrow, NationArrow, OrderArrow, PartArrow, PartSuppArrow, RegionArrow,
    SupplierArrow,
};

use crate::error::{BenchError, Result};

/// Rows per generated record batch.
pub const BATCH_SIZE: usize = 8192;

/// Rows per Parquet row group.
pub const ROW_GROUP_ROWS: usize = 1024 * 1024;

/// A generated table: name, schema and batches.
pub type GeneratedTable = (String, SchemaRef, Vec<RecordBatch>);

/// An iterator of generated record batches.
pub type BatchIter = Box<dyn Iterator<Item = std::result::Result<RecordBatch, ArrowError>> + Send>;

/// The eight TPC-H tables.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Table {
    /// `region` (5 rows).
    Region,
    /// `nation` (25 rows).
    Nation,
    /// `part` (200,000 × SF rows).
    Part,
    /// `supplier` (10,000 × SF rows).
    Supplier,
    /// `partsupp` (800,000 × SF rows).
    PartSupp,
    /// `customer` (150,000 × SF rows).
    Customer,
    /// `orders` (1,500,000 × SF rows).
    Orders,
    /// `lineitem` (about 6,000,000 × SF rows).
    LineItem,
}

impl Table {
    /// All tables, smallest first.
    pub const ALL: [Table; 8] = [
        Table::Region,
        Table::Nation,
        Table::Supplier,
        Table::Customer,
        Table::Part,
        Table::PartSupp,
        Table::Orders,
        Table::LineItem,
    ];

    /// The SQL table name.
    pub fn name(self) -> &'static str {
        match self {
            Table::Region => "region",
            Table::Nation => "nation",
            Table::Part => "part",
            Table::Supplier => "supplier",
            Table::PartSupp => "partsupp",
            Table::Customer => "customer",
            Table::Orders => "orders",
            Table::LineItem => "lineitem",
        }
    }

    /// The Arrow schema of the generated batches.
    pub fn schema(self) -> SchemaRef {
        match self {
            Table::Region => RegionArrow::schema_ref(),
            Table::Nation => NationArrow::schema_ref(),
            Table::Part => PartArrow::schema_ref(),
            Table::Supplier => SupplierArrow::schema_ref(),
            Table::PartSupp => PartSuppArrow::schema_ref(),
            Table::Customer => CustomerArrow::schema_ref(),
            Table::Orders => OrderArrow::schema_ref(),
            Table::LineItem => LineItemArrow::schema_ref(),
        }
    }

    /// The table with SQL name `name` (case-insensitive).
    pub fn from_name(name: &str) -> Option<Table> {
        Table::ALL
            .into_iter()
            .find(|t| t.name().eq_ignore_ascii_case(name))
    }

    /// Whether the generator splits the table into parts (region and nation do not).
    pub fn is_partitionable(self) -> bool {
        !matches!(self, Table::Region | Table::Nation)
    }

    /// Approximate row count at scale factor `sf` (exact except for lineitem).
    pub fn estimated_rows(self, sf: f64) -> u64 {
        let per_sf = match self {
            Table::Region => return 5,
            Table::Nation => return 25,
            Table::Part => 200_000.0,
            Table::Supplier => 10_000.0,
            Table::PartSupp => 800_000.0,
            Table::Customer => 150_000.0,
            Table::Orders => 1_500_000.0,
            Table::LineItem => 6_000_000.0,
        };
        (per_sf * sf) as u64
    }

    /// The number of parts the table is generated in when `parts` are requested.
    pub fn effective_parts(self, parts: usize) -> usize {
        if self.is_partitionable() {
            parts.max(1)
        } else {
            1
        }
    }

    /// Generates part `part` (1-based) of `part_count` of this table at scale factor `sf`.
    pub fn batches(self, sf: f64, part: usize, part_count: usize) -> Result<BatchIter> {
        if part == 0 || part > part_count {
            return Err(BenchError::InvalidArgument(format!(
                "part {part} of {part_count} (parts are 1-based)"
            )));
        }
        let to_i32 = |v: usize| {
            i32::try_from(v)
                .map_err(|_| BenchError::InvalidArgument(format!("part number {v} too large")))
        };
        let (part, count) = (to_i32(part)?, to_i32(part_count)?);
        let iter: BatchIter = match self {
            Table::Region => Box::new(
                RegionArrow::new(RegionGenerator::new(sf, part, count)).with_batch_size(BATCH_SIZE),
            ),
            Table::Nation => Box::new(
                NationArrow::new(NationGenerator::new(sf, part, count)).with_batch_size(BATCH_SIZE),
            ),
            Table::Part => Box::new(
                PartArrow::new(PartGenerator::new(sf, part, count)).with_batch_size(BATCH_SIZE),
            ),
            Table::Supplier => Box::new(
                SupplierArrow::new(SupplierGenerator::new(sf, part, count))
                    .with_batch_size(BATCH_SIZE),
            ),
            Table::PartSupp => Box::new(
                PartSuppArrow::new(PartSuppGenerator::new(sf, part, count))
                    .with_batch_size(BATCH_SIZE),
            ),
            Table::Customer => Box::new(
                CustomerArrow::new(CustomerGenerator::new(sf, part, count))
                    .with_batch_size(BATCH_SIZE),
            ),
            Table::Orders => Box::new(
                OrderArrow::new(OrderGenerator::new(sf, part, count)).with_batch_size(BATCH_SIZE),
            ),
            Table::LineItem => Box::new(
                LineItemArrow::new(LineItemGenerator::new(sf, part, count))
                    .with_batch_size(BATCH_SIZE),
            ),
        };
        Ok(iter)
    }
}

/// Checks that `sf` is a usable scale factor.
pub fn validate_scale_factor(sf: f64) -> Result<()> {
    if sf.is_finite() && sf > 0.0 {
        Ok(())
    } else {
        Err(BenchError::InvalidArgument(format!(
            "scale factor must be a positive number, got {sf}"
        )))
    }
}

/// Number of worker threads used for generation.
fn worker_threads() -> usize {
    thread::available_parallelism().map_or(1, |n| n.get())
}

/// Runs `work(i)` for every `i` in `0..count` on up to [`worker_threads`] threads and
/// returns the results in index order.
fn parallel_map<T: Send>(count: usize, work: impl Fn(usize) -> Result<T> + Sync) -> Result<Vec<T>> {
    let threads = worker_threads().min(count).max(1);
    if threads == 1 {
        return (0..count).map(&work).collect();
    }
    let work = &work;
    let mut slots: Vec<Option<Result<T>>> = (0..count).map(|_| None).collect();
    thread::scope(|scope| {
        let handles: Vec<_> = (0..threads)
            .map(|t| {
                scope.spawn(move || {
                    (t..count)
                        .step_by(threads)
                        .map(|i| (i, work(i)))
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        for handle in handles {
            match handle.join() {
                Ok(results) => {
                    for (i, result) in results {
                        slots[i] = Some(result);
                    }
                }
                Err(panic) => std::panic::resume_unwind(panic),
            }
        }
    });
    slots
        .into_iter()
        .map(|slot| {
            slot.unwrap_or_else(|| Err(BenchError::InvalidArgument("worker lost a part".into())))
        })
        .collect()
}

/// Generates all eight tables at scale factor `sf` in memory.
///
/// Large tables are generated in parts on several threads; the batches are in the same
/// order as a single-threaded generation.
pub fn generate_tables(sf: f64) -> Result<Vec<GeneratedTable>> {
    validate_scale_factor(sf)?;
    let threads = worker_threads();
    Table::ALL
        .iter()
        .map(|&table| {
            let parts = if table.estimated_rows(sf) >= 100_000 {
                table.effective_parts(threads)
            } else {
                1
            };
            let per_part = parallel_map(parts, |i| {
                table
                    .batches(sf, i + 1, parts)?
                    .collect::<std::result::Result<Vec<_>, _>>()
                    .map_err(BenchError::from)
            })?;
            let batches = per_part.into_iter().flatten().collect();
            Ok((table.name().to_owned(), table.schema(), batches))
        })
        .collect()
}

/// Generates all eight tables at scale factor `sf` in memory and registers them in
/// `session` under their TPC-H names.
pub fn register_generated(session: &Session, sf: f64) -> Result<()> {
    for (name, schema, batches) in generate_tables(sf)? {
        session.register_batches(&name, schema, batches)?;
    }
    Ok(())
}

/// Where a table's Parquet data lives in a data directory, if it is there.
///
/// A table is present as `dir/<table>.parquet` (a file) or `dir/<table>/` (a directory
/// holding at least one `.parquet` file).
pub fn table_path(dir: &Path, table: &str) -> Option<PathBuf> {
    let file = dir.join(format!("{table}.parquet"));
    if file.is_file() {
        return Some(file);
    }
    let sub = dir.join(table);
    let has_parquet = fs::read_dir(&sub).ok()?.flatten().any(|entry| {
        entry.path().extension().is_some_and(|ext| ext == "parquet")
            && entry.file_type().is_ok_and(|t| t.is_file())
    });
    has_parquet.then_some(sub)
}

/// Names of the TPC-H tables missing from `dir` (all of them when `dir` does not exist).
pub fn missing_tables(dir: &Path) -> Vec<String> {
    Table::ALL
        .iter()
        .filter(|t| table_path(dir, t.name()).is_none())
        .map(|t| t.name().to_owned())
        .collect()
}

/// The scale factor of the Parquet data in `dir`, read off `supplier`'s row count in the
/// Parquet footers (the engine's [`ParquetTable`]; 10,000 rows per unit of scale, exact at
/// every scale); `None` when `supplier` is absent.
pub fn data_scale_factor(dir: &Path) -> Result<Option<f64>> {
    let Some(path) = table_path(dir, Table::Supplier.name()) else {
        return Ok(None);
    };
    let rows = ParquetTable::try_new(&path)?.row_count().unwrap_or(0);
    let per_sf = Table::Supplier.estimated_rows(1.0) as f64;
    Ok(Some(rows as f64 / per_sf))
}

/// Registers the eight TPC-H tables of the Parquet data directory `dir` in `session`.
///
/// Fails with [`BenchError::MissingTables`] if any table is absent.
pub fn register_parquet_dir(session: &Session, dir: &Path) -> Result<()> {
    let missing = missing_tables(dir);
    if !missing.is_empty() {
        return Err(BenchError::MissingTables {
            dir: dir.to_owned(),
            missing,
        });
    }
    for table in Table::ALL {
        if let Some(path) = table_path(dir, table.name()) {
            session.register_parquet(table.name(), &path)?;
        }
    }
    Ok(())
}

/// Writes the eight tables at scale factor `sf` as Snappy-compressed Parquet under
/// `out_dir` (created if needed), in `parts` files per table (see the module docs for the
/// layout). Tables already present are skipped. With `progress`, shows a progress bar per
/// table on stderr. Returns the names of the tables written.
pub fn write_parquet(sf: f64, out_dir: &Path, parts: usize, progress: bool) -> Result<Vec<String>> {
    validate_scale_factor(sf)?;
    if parts == 0 {
        return Err(BenchError::InvalidArgument(
            "--parts must be at least 1".into(),
        ));
    }
    fs::create_dir_all(out_dir).map_err(|e| BenchError::io("creating", out_dir, e))?;
    let bars = if progress {
        MultiProgress::new()
    } else {
        MultiProgress::with_draw_target(indicatif::ProgressDrawTarget::hidden())
    };
    let style = ProgressStyle::with_template(
        "{prefix:>9} [{elapsed_precise}] {bar:40.cyan/blue} {human_pos}/{human_len} rows {msg}",
    )
    .map_err(|e| BenchError::InvalidArgument(format!("progress template: {e}")))?
    .progress_chars("=> ");
    let mut written = Vec::new();
    for table in Table::ALL {
        if table_path(out_dir, table.name()).is_some() {
            continue;
        }
        let bar = bars.add(ProgressBar::new(table.estimated_rows(sf)));
        bar.set_style(style.clone());
        bar.set_prefix(table.name());
        write_table(table, sf, out_dir, table.effective_parts(parts), &bar)?;
        bar.set_length(bar.position());
        bar.finish_with_message("done");
        written.push(table.name().to_owned());
    }
    Ok(written)
}

/// Writes one table: a single file, or a directory of part files renamed into place at
/// the end.
fn write_table(
    table: Table,
    sf: f64,
    out_dir: &Path,
    parts: usize,
    bar: &ProgressBar,
) -> Result<()> {
    let name = table.name();
    if parts == 1 {
        let final_path = out_dir.join(format!("{name}.parquet"));
        let tmp_path = out_dir.join(format!(".{name}.parquet.tmp"));
        write_part(table, sf, 1, 1, &tmp_path, bar)?;
        return fs::rename(&tmp_path, &final_path)
            .map_err(|e| BenchError::io("renaming", &tmp_path, e));
    }
    let final_dir = out_dir.join(name);
    let tmp_dir = out_dir.join(format!(".{name}.tmp"));
    if tmp_dir.exists() {
        fs::remove_dir_all(&tmp_dir).map_err(|e| BenchError::io("removing", &tmp_dir, e))?;
    }
    fs::create_dir_all(&tmp_dir).map_err(|e| BenchError::io("creating", &tmp_dir, e))?;
    parallel_map(parts, |i| {
        let path = tmp_dir.join(format!("part-{}.parquet", i + 1));
        write_part(table, sf, i + 1, parts, &path, bar)
    })?;
    if final_dir.exists() {
        // A directory without Parquet files (otherwise the table would have been skipped).
        fs::remove_dir_all(&final_dir).map_err(|e| BenchError::io("removing", &final_dir, e))?;
    }
    fs::rename(&tmp_dir, &final_dir).map_err(|e| BenchError::io("renaming", &tmp_dir, e))
}

/// Writes part `part` of `part_count` of `table` to the Parquet file `path`.
fn write_part(
    table: Table,
    sf: f64,
    part: usize,
    part_count: usize,
    path: &Path,
    bar: &ProgressBar,
) -> Result<()> {
    let file = fs::File::create(path).map_err(|e| BenchError::io("creating", path, e))?;
    let props = WriterProperties::builder()
        .set_compression(Compression::SNAPPY)
        .set_max_row_group_row_count(Some(ROW_GROUP_ROWS))
        .build();
    let mut writer = ArrowWriter::try_new(file, table.schema(), Some(props))?;
    for batch in table.batches(sf, part, part_count)? {
        let batch = batch?;
        writer.write(&batch)?;
        bar.inc(batch.num_rows() as u64);
    }
    writer.close()?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    use arrow::array::{Array, AsArray};
    use arrow::datatypes::{Date32Type, Decimal128Type};
    use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;

    fn rows(batches: &[RecordBatch]) -> usize {
        batches.iter().map(RecordBatch::num_rows).sum()
    }

    fn scratch_dir(tag: &str) -> PathBuf {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos());
        std::env::temp_dir().join(format!("sluice-tpch-{tag}-{}-{nanos}", std::process::id()))
    }

    #[test]
    fn table_names_round_trip() {
        for table in Table::ALL {
            assert_eq!(Table::from_name(table.name()), Some(table));
        }
        assert_eq!(Table::from_name("LINEITEM"), Some(Table::LineItem));
        assert_eq!(Table::from_name("lineitems"), None);
        assert_eq!(Table::Nation.effective_parts(4), 1);
        assert_eq!(Table::Orders.effective_parts(4), 4);
        assert!(Table::Orders.batches(0.01, 0, 1).is_err());
        assert!(Table::Orders.batches(0.01, 3, 2).is_err());
        assert!(validate_scale_factor(0.0).is_err());
        assert!(validate_scale_factor(f64::NAN).is_err());
    }

    #[test]
    fn generates_all_tables_in_memory() -> Result<()> {
        let tables = generate_tables(0.01)?;
        let counts: Vec<(&str, usize)> = tables
            .iter()
            .map(|(name, schema, batches)| {
                for batch in batches {
                    assert_eq!(&batch.schema(), schema, "{name}");
                }
                (name.as_str(), rows(batches))
            })
            .collect();
        assert_eq!(
            counts,
            vec![
                ("region", 5),
                ("nation", 25),
                ("supplier", 100),
                ("customer", 1_500),
                ("part", 2_000),
                ("partsupp", 8_000),
                ("orders", 15_000),
                ("lineitem", 60_175),
            ]
        );
        Ok(())
    }

    #[test]
    fn parts_concatenate_to_the_whole_table() -> Result<()> {
        let whole: Vec<RecordBatch> = Table::Orders
            .batches(0.01, 1, 1)?
            .collect::<std::result::Result<_, _>>()?;
        let mut parts = Vec::new();
        for part in 1..=3 {
            parts.extend(
                Table::Orders
                    .batches(0.01, part, 3)?
                    .collect::<std::result::Result<Vec<_>, _>>()?,
            );
        }
        let schema = Table::Orders.schema();
        let whole = arrow::compute::concat_batches(&schema, &whole)?;
        let parts = arrow::compute::concat_batches(&schema, &parts)?;
        assert_eq!(whole, parts);
        Ok(())
    }

    /// q6 computed by hand over the generated data must match the reference answer: checks
    /// that tpchgen produces the reference data set and that the comparator accepts it.
    #[test]
    fn generated_data_matches_reference_q6() -> Result<()> {
        let date = |y, m, d| {
            let epoch = chrono_days(1970, 1, 1);
            chrono_days(y, m, d) - epoch
        };
        let (lo, hi) = (date(1994, 1, 1), date(1995, 1, 1));
        let mut revenue: i128 = 0; // scale 4
        for batch in Table::LineItem.batches(0.01, 1, 1)? {
            let batch = batch?;
            let col = |name: &str| {
                batch
                    .column_by_name(name)
                    .ok_or_else(|| BenchError::InvalidArgument(format!("no column {name}")))
            };
            let qty = col("l_quantity")?.as_primitive::<Decimal128Type>();
            let price = col("l_extendedprice")?.as_primitive::<Decimal128Type>();
            let disc = col("l_discount")?.as_primitive::<Decimal128Type>();
            let ship = col("l_shipdate")?.as_primitive::<Date32Type>();
            for i in 0..batch.num_rows() {
                let (q, p, d, s) = (qty.value(i), price.value(i), disc.value(i), ship.value(i));
                if s >= lo && s < hi && (5..=7).contains(&d) && q < 2400 {
                    revenue += p * d;
                }
            }
            assert_eq!(qty.null_count(), 0);
        }
        let array =
            arrow::array::Decimal128Array::from(vec![revenue]).with_precision_and_scale(38, 4)?;
        let schema = Arc::new(arrow::datatypes::Schema::new(vec![
            arrow::datatypes::Field::new("revenue", array.data_type().clone(), false),
        ]));
        let batch = RecordBatch::try_new(schema, vec![Arc::new(array)])?;
        let expected = crate::queries::reference_answer(0.01, 6).unwrap_or_default();
        let check = crate::answers::ReferenceAnswer::parse(expected).compare(&[batch])?;
        assert_eq!(check, Ok(()), "revenue {revenue} (scale 4)");
        Ok(())
    }

    /// Days since 0000-03-01 in the proleptic Gregorian calendar (only differences matter).
    fn chrono_days(y: i32, m: i32, d: i32) -> i32 {
        let (y, m) = if m <= 2 { (y - 1, m + 9) } else { (y, m - 3) };
        365 * y + y / 4 - y / 100 + y / 400 + (153 * m + 2) / 5 + d - 1
    }

    #[test]
    fn writes_parquet_files_and_skips_present_tables() -> Result<()> {
        let dir = scratch_dir("gen");
        let written = write_parquet(0.01, &dir, 2, false)?;
        assert_eq!(written.len(), 8);
        assert!(missing_tables(&dir).is_empty());
        assert!(dir.join("nation.parquet").is_file());
        assert!(dir.join("orders/part-1.parquet").is_file());
        assert!(dir.join("orders/part-2.parquet").is_file());
        assert_eq!(
            data_scale_factor(&dir)?,
            Some(0.01),
            "supplier in two parts"
        );
        assert_eq!(data_scale_factor(&dir.join("nope"))?, None);
        let mut orders = 0;
        for part in 1..=2 {
            let path = dir.join(format!("orders/part-{part}.parquet"));
            let file = fs::File::open(&path).map_err(|e| BenchError::io("opening", &path, e))?;
            let builder = ParquetRecordBatchReaderBuilder::try_new(file)?;
            assert_eq!(builder.schema().fields().len(), 9);
            for batch in builder.build()? {
                orders += batch?.num_rows();
            }
        }
        assert_eq!(orders, 15_000);
        assert!(
            write_parquet(0.01, &dir, 2, false)?.is_empty(),
            "all present"
        );
        fs::remove_file(dir.join("nation.parquet"))
            .map_err(|e| BenchError::io("removing", &dir, e))?;
        assert_eq!(missing_tables(&dir), vec!["nation".to_owned()]);
        assert_eq!(
            write_parquet(0.01, &dir, 1, false)?,
            vec!["nation".to_owned()]
        );
        let session = Session::new();
        register_parquet_dir(&session, &dir)?;
        assert!(matches!(
            register_parquet_dir(&session, &dir.join("nope")),
            Err(BenchError::MissingTables { missing, .. }) if missing.len() == 8
        ));
        fs::remove_dir_all(&dir).map_err(|e| BenchError::io("removing", &dir, e))?;
        Ok(())
    }
}
