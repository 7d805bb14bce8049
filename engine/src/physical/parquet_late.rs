//! Late materialization of a Parquet scan under dynamic filters: a unit of rows is read
//! in two passes. The first reads only the columns that joins' dynamic filters test and
//! tests them; when few rows pass (at most one in [`LATE_READ_RATIO`]), the second reads
//! the other columns for those rows alone, through a row selection, and the key columns
//! kept are stitched into its batches. When more pass (judged once [`TRIAL_ROWS`] rows
//! are tested), the unit is read again in one pass, and so is every later unit of the
//! scan: the filters above the scan then do their usual work.
//!
//! TPC-H q19's lineitem scan keeps 14 k of 6 M rows by `l_partkey`: its quantity,
//! price, discount and two string columns are decoded for those rows only. Pages are
//! still decompressed where any of their rows is selected.

use std::fs::File;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;

use arrow::array::{ArrayRef, BooleanArray, RecordBatch, RecordBatchOptions};
use arrow::compute::{and, concat, filter};
use arrow::datatypes::SchemaRef;
use parquet::arrow::arrow_reader::{
    ParquetRecordBatchReader, ParquetRecordBatchReaderBuilder, RowSelection, RowSelectionPolicy,
    RowSelector,
};
use parquet::arrow::ProjectionMask;

use crate::error::{Result, SluiceError};
use crate::physical::dynamic_filter::DynamicFilter;
use crate::physical::parquet::{ParquetFile, Unit};

/// The second pass reads selected rows only when at most one row in this many passed.
/// (A selection of many short runs costs more than decoding everything.)
pub const LATE_READ_RATIO: usize = 12;

/// Rows of a unit tested before the share passing can end the first pass.
const TRIAL_ROWS: usize = 65_536;

/// Dynamic filters on a scan's output columns, and what they did.
#[derive(Debug, Default)]
pub(crate) struct KeyFilters {
    /// (output column, filter on its values).
    pub filters: Vec<(usize, Arc<DynamicFilter>)>,
    /// Rows whose keys were tested.
    pub tested: AtomicU64,
    /// Rows read through a selection, after the test.
    pub selected: AtomicU64,
    /// Set once a unit showed that too many rows pass: the scan then reads plainly.
    pub useless: AtomicBool,
}

/// How one read of a file is set up.
pub(crate) struct ReadSpec<'a> {
    /// The file.
    pub file: &'a ParquetFile,
    /// File columns read (ascending), one per output column.
    pub columns: &'a [usize],
    /// The output schema.
    pub schema: SchemaRef,
    /// Rows per batch.
    pub batch_size: usize,
}

impl ReadSpec<'_> {
    fn err(&self, e: impl ToString) -> SluiceError {
        SluiceError::Parquet {
            path: self.file.path.clone(),
            message: e.to_string(),
        }
    }

    /// A reader of file columns `cols` over `range` with `selection` (the whole range
    /// when None).
    fn reader(
        &self,
        cols: &[usize],
        range: &Unit,
        selection: Option<RowSelection>,
    ) -> Result<ParquetRecordBatchReader> {
        let file = File::open(&self.file.path).map_err(|source| SluiceError::Io {
            path: self.file.path.clone(),
            source,
        })?;
        let selection =
            selection.unwrap_or_else(|| range.around(vec![RowSelector::select(range.len)]).into());
        let mask = ProjectionMask::roots(self.file.metadata.parquet_schema(), cols.iter().copied());
        ParquetRecordBatchReaderBuilder::new_with_metadata(file, self.file.metadata.clone())
            .with_row_groups(vec![range.row_group])
            .with_batch_size(self.batch_size)
            .with_row_selection(selection)
            .with_row_selection_policy(RowSelectionPolicy::Selectors)
            .with_projection(mask)
            .build()
            .map_err(|e| self.err(e))
    }
}

/// Batches of a read, in order.
pub(crate) type Batches = Box<dyn Iterator<Item = Result<RecordBatch>> + Send>;

/// Reads `range` (see the module note): the output batches, in order.
pub(crate) fn read_range(spec: &ReadSpec, range: &Unit, keys: &KeyFilters) -> Result<Batches> {
    if keys.useless.load(Ordering::Relaxed) {
        return whole(spec, range);
    }
    // Output positions of the key columns (each once, ascending).
    let mut key_pos: Vec<usize> = keys.filters.iter().map(|(c, _)| *c).collect();
    key_pos.sort_unstable();
    key_pos.dedup();
    let key_cols: Vec<usize> = key_pos.iter().map(|&p| spec.columns[p]).collect();
    // First pass: test the key columns, keeping the rows that pass.
    let mut masks = Vec::new();
    let mut parts: Vec<Vec<ArrayRef>> = vec![Vec::new(); key_pos.len()];
    let (mut tested, mut kept) = (0, 0);
    for b in spec.reader(&key_cols, range, None)? {
        let b = b.map_err(|e| spec.err(e))?;
        let mut mask: Option<BooleanArray> = None;
        for (col, f) in &keys.filters {
            let i = key_pos.binary_search(col).map_err(|_| {
                SluiceError::exec("parquet late read: a filter's column is not read")
            })?;
            let Some(m) = f.mask(b.column(i))? else {
                // A join has not set its filter yet: read plainly.
                return whole(spec, range);
            };
            mask = Some(match mask {
                Some(prev) => and(&prev, &m)?,
                None => m,
            });
        }
        let mask = mask.ok_or_else(|| SluiceError::exec("parquet late read without filters"))?;
        tested += b.num_rows();
        kept += mask.true_count();
        // The share passing so far, once the trial is over; before, the share of the
        // whole unit that has passed already.
        let base = if tested >= TRIAL_ROWS {
            tested
        } else {
            range.len
        };
        if kept.saturating_mul(LATE_READ_RATIO) > base {
            // Too many rows pass: this scan reads plainly from now on, and the filters
            // above it drop what they drop.
            keys.useless.store(true, Ordering::Relaxed);
            return whole(spec, range);
        }
        for (i, c) in b.columns().iter().enumerate() {
            parts[i].push(filter(c, &mask)?);
        }
        masks.push(mask);
    }
    keys.tested.fetch_add(tested as u64, Ordering::Relaxed);
    keys.selected.fetch_add(kept as u64, Ordering::Relaxed);
    if kept == 0 {
        return Ok(Box::new(std::iter::empty()));
    }
    let key_arrays = parts
        .iter()
        .map(|p| {
            let refs: Vec<&dyn arrow::array::Array> = p.iter().map(|a| a.as_ref()).collect();
            concat(&refs).map_err(SluiceError::from)
        })
        .collect::<Result<Vec<ArrayRef>>>()?;
    // Second pass: the other columns, for the rows kept.
    let others: Vec<usize> = spec
        .columns
        .iter()
        .enumerate()
        .filter(|(p, _)| key_pos.binary_search(p).is_err())
        .map(|(_, c)| *c)
        .collect();
    let mut stitch = Stitch {
        schema: spec.schema.clone(),
        key_pos,
        key_arrays,
        offset: 0,
        rows: kept,
    };
    if others.is_empty() {
        return Err(SluiceError::exec(
            "parquet late read: no columns besides the keys",
        ));
    }
    let inner: Vec<RowSelector> = RowSelection::from_filters(&masks).into();
    let reader = spec.reader(&others, range, Some(range.around(inner).into()))?;
    Ok(Box::new(
        batches(spec, reader).map(move |b| b.and_then(|b| stitch.merge(b))),
    ))
}

/// All of `range`'s columns, read in one pass.
fn whole(spec: &ReadSpec, range: &Unit) -> Result<Batches> {
    Ok(Box::new(batches(
        spec,
        spec.reader(spec.columns, range, None)?,
    )))
}

/// `reader`'s batches, its errors naming the file.
fn batches(
    spec: &ReadSpec,
    reader: ParquetRecordBatchReader,
) -> impl Iterator<Item = Result<RecordBatch>> + Send + use<> {
    let path = spec.file.path.clone();
    reader.map(move |b| {
        b.map_err(|e| SluiceError::Parquet {
            path: path.clone(),
            message: e.to_string(),
        })
    })
}

/// The key columns of a range, and how many of their rows the output has used.
struct Stitch {
    schema: SchemaRef,
    key_pos: Vec<usize>,
    key_arrays: Vec<ArrayRef>,
    offset: usize,
    rows: usize,
}

impl Stitch {
    /// The next `n` rows of the key columns.
    fn take(&mut self, n: usize) -> Result<Vec<ArrayRef>> {
        if self.offset + n > self.rows {
            return Err(SluiceError::exec(
                "parquet late read: the second pass returned more rows than the first",
            ));
        }
        let out = self
            .key_arrays
            .iter()
            .map(|a| a.slice(self.offset, n))
            .collect();
        self.offset += n;
        Ok(out)
    }

    /// Output batch: `other`'s columns with the key columns put back in place.
    fn merge(&mut self, other: RecordBatch) -> Result<RecordBatch> {
        let keys = self.take(other.num_rows())?;
        let (mut keys, mut rest) = (keys.into_iter(), other.columns().iter().cloned());
        let columns = (0..self.schema.fields().len())
            .map(|p| {
                if self.key_pos.binary_search(&p).is_ok() {
                    keys.next()
                } else {
                    rest.next()
                }
                .ok_or_else(|| SluiceError::exec("parquet late read: a column is missing"))
            })
            .collect::<Result<Vec<_>>>()?;
        let options = RecordBatchOptions::new().with_row_count(Some(other.num_rows()));
        Ok(RecordBatch::try_new_with_options(
            self.schema.clone(),
            columns,
            &options,
        )?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use arrow::array::{Array, AsArray, Int64Array, StringArray};
    use arrow::datatypes::{DataType, Field, Int64Type, Schema};
    use parquet::arrow::ArrowWriter;
    use parquet::file::properties::WriterProperties;

    use crate::catalog::parquet::read_metadata;
    use crate::physical::parquet::ParquetExec;
    use crate::physical::{collect_partitions, ExecNode, TaskContext};

    const ROWS: i64 = 200_000;

    /// `t(k, v, s)`: `k = i % 50_000` (NULL every 1000th row), `v = i`, `s = "s<i % 7>"`;
    /// row groups of 120 000 rows, small pages. Returns the directory (kept alive) and
    /// a two-partition scan of (k, v, s) or of `projection`.
    fn scan(projection: &[usize]) -> (tempfile::TempDir, ParquetExec) {
        let dir = tempfile::tempdir().expect("dir");
        let path = dir.path().join("t.parquet");
        let schema = Arc::new(Schema::new(vec![
            Field::new("k", DataType::Int64, true),
            Field::new("v", DataType::Int64, false),
            Field::new("s", DataType::Utf8, false),
        ]));
        let props = WriterProperties::builder()
            .set_max_row_group_row_count(Some(120_000))
            .set_data_page_row_count_limit(4096)
            .build();
        let file = File::create(&path).expect("create");
        let mut w = ArrowWriter::try_new(file, schema.clone(), Some(props)).expect("writer");
        let k: Int64Array = (0..ROWS)
            .map(|i| (i % 1000 != 0).then_some(i % 50_000))
            .collect();
        let s: StringArray = (0..ROWS).map(|i| Some(format!("s{}", i % 7))).collect();
        let batch = RecordBatch::try_new(
            schema.clone(),
            vec![
                Arc::new(k),
                Arc::new(Int64Array::from_iter_values(0..ROWS)),
                Arc::new(s),
            ],
        )
        .expect("batch");
        w.write(&batch).expect("write");
        w.close().expect("close");
        let metadata = read_metadata(&path).expect("metadata");
        let files = vec![ParquetFile { path, metadata }];
        let exec =
            ParquetExec::try_new(files, schema, Some(projection), &[], 2, 4096).expect("exec");
        (dir, exec)
    }

    fn filter_of(keys: &[i64]) -> Arc<DynamicFilter> {
        let f = Arc::new(DynamicFilter::default());
        let keys: ArrayRef = Arc::new(Int64Array::from(keys.to_vec()));
        f.set(&keys).expect("set");
        f
    }

    /// (k, v) of every row the scan returns, in order.
    fn rows(exec: Arc<dyn ExecNode>) -> Vec<(Option<i64>, i64)> {
        let ctx = Arc::new(TaskContext::default());
        let batches = collect_partitions(&exec, &ctx).expect("scan");
        let mut out = Vec::new();
        for b in &batches {
            let k = b.column(0).as_primitive::<Int64Type>();
            let v = b.column(1).as_primitive::<Int64Type>();
            for i in 0..b.num_rows() {
                out.push((k.is_valid(i).then(|| k.value(i)), v.value(i)));
            }
        }
        out
    }

    /// The rows whose k is one of `keys`, by brute force.
    fn expected(keys: &[i64]) -> Vec<(Option<i64>, i64)> {
        (0..ROWS)
            .filter(|i| i % 1000 != 0 && keys.contains(&(i % 50_000)))
            .map(|i| (Some(i % 50_000), i))
            .collect()
    }

    #[test]
    fn a_selective_filter_reads_only_the_rows_it_keeps() {
        let (_dir, exec) = scan(&[0, 1, 2]);
        // 7 is NULL where i % 1000 == 0 never holds for it; 3000 is NULL in every row.
        let keys = [7, 3000, 12_345, 49_999];
        let late = exec
            .with_key_filters(&[(0, filter_of(&keys))])
            .expect("a parquet scan takes key filters");
        assert!(late.details().contains("key columns read first"));
        let got = rows(late.clone());
        assert_eq!(got, expected(&keys));
        // The string column lines up with its rows (a second run of the scan).
        let ctx = Arc::new(TaskContext::default());
        for b in collect_partitions(&late, &ctx).expect("scan") {
            let v = b.column(1).as_primitive::<Int64Type>();
            let s = arrow::compute::cast(b.column(2), &DataType::Utf8).expect("utf8");
            for (i, s) in s.as_string::<i32>().iter().enumerate() {
                assert_eq!(s, Some(format!("s{}", v.value(i) % 7).as_str()));
            }
        }
        // Both runs counted: every row's key tested, only the kept rows read late.
        let m = late.metrics();
        assert!(m.contains(&format!("keys_tested={}", 2 * ROWS)), "{m}");
        assert!(
            m.contains(&format!("rows_read_late={}", 2 * got.len())),
            "{m}"
        );
    }

    #[test]
    fn two_filters_keep_rows_both_keep() {
        let (_dir, exec) = scan(&[0, 1]);
        // Two filters on the same key column: their intersection.
        let late = exec
            .with_key_filters(&[(0, filter_of(&[5, 6, 7])), (0, filter_of(&[6, 7, 8]))])
            .expect("late");
        assert_eq!(rows(late), expected(&[6, 7]));
    }

    #[test]
    fn a_filter_that_keeps_many_rows_leaves_them_to_the_filters_above() {
        let (_dir, exec) = scan(&[0, 1]);
        let keys: Vec<i64> = (0..25_000).collect();
        let late = exec
            .with_key_filters(&[(0, filter_of(&keys))])
            .expect("late");
        // Every row comes out, in order: dropping them is the job of the filter above.
        let got = rows(late.clone());
        assert_eq!(got.len() as i64, ROWS);
        assert!(got.iter().enumerate().all(|(i, r)| r.1 == i as i64));
        assert!(late.metrics().contains("rows_read_late=0"));
    }

    #[test]
    fn a_filter_not_yet_set_reads_every_row() {
        let (_dir, exec) = scan(&[0, 1]);
        let late = exec
            .with_key_filters(&[(0, Arc::new(DynamicFilter::default()))])
            .expect("late");
        assert_eq!(rows(late).len() as i64, ROWS);
    }

    #[test]
    fn keys_alone_or_nothing_passing() {
        let (_dir, exec) = scan(&[0]);
        // Only key columns read: nothing to read late.
        assert!(exec.with_key_filters(&[(0, filter_of(&[1]))]).is_none());
        let (_dir, exec) = scan(&[0, 1]);
        let late = exec
            .with_key_filters(&[(0, filter_of(&[-5]))])
            .expect("late");
        assert!(rows(late).is_empty());
    }
}
