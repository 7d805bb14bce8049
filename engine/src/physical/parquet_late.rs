//! Late materialization of a Parquet scan: a unit of rows is read in two passes. The
//! first reads the columns tested early (joins' dynamic filters, the predicate of the
//! filter above the scan) and tests them; when few rows pass (at most one in
//! [`LATE_READ_RATIO`]), the second reads the other columns for those rows alone,
//! through a row selection, and the first pass's columns are stitched into its batches.
//! When more pass (judged once [`TRIAL_ROWS`] rows are tested), the unit is read again
//! in one pass, and so is every later unit of the scan: the filters above the scan then
//! do their usual work.
//!
//! TPC-H q19's lineitem scan keeps 14 k of 6 M rows by `l_partkey`: its quantity,
//! price, discount and two string columns are decoded for those rows only. q3's
//! `lineitem` is tested by its ship date and by the keys of the orders it joins, which
//! together keep 5% of the rows. Pages are still decompressed where any of their rows
//! is selected.

use std::fs::File;
use std::sync::atomic::{AtomicU64, AtomicU8, Ordering};
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
use crate::physical::filter::FilterOp;
use crate::physical::parquet::{ParquetFile, Unit};
use crate::physical::EarlyTests;

/// The second pass reads selected rows only when at most one row in this many passed.
/// (A selection of many short runs costs more than decoding everything.)
pub const LATE_READ_RATIO: usize = 12;

/// Rows of a unit tested before the share passing can end the first pass.
const TRIAL_ROWS: usize = 65_536;

/// Once more than one row in this many has passed, the first pass ends at once.
const HOPELESS: usize = 4;

/// How a scan reads its units, decided by the first unit's trial (stored in
/// [`LateRead::mode`]).
const UNDECIDED: u8 = 0;
/// Only the join filters' key columns are tested first: they alone keep few rows, so
/// the predicate's columns are read late too (q19: 14 k of 6 M rows by key).
const KEYS: u8 = 1;
/// The key and predicate columns are tested first.
const ALL: u8 = 2;
/// Too many rows pass: units are read in one pass.
const PLAIN: u8 = 3;

/// The tests a scan applies early, ready to run, and what they did.
#[derive(Debug, Default)]
pub(crate) struct LateRead {
    /// (output column, dynamic filter on its values).
    pub keys: Vec<(usize, Arc<DynamicFilter>)>,
    /// The predicate's output columns (ascending) and its conjuncts, bound to them.
    pub predicate: Option<(Vec<usize>, FilterOp)>,
    /// Output columns tested (ascending).
    pub tested_columns: Vec<usize>,
    /// The key columns alone (ascending).
    key_columns: Vec<usize>,
    /// Rows tested.
    pub tested: AtomicU64,
    /// Rows read through a selection, after the test.
    pub selected: AtomicU64,
    /// [`UNDECIDED`], [`KEYS`], [`ALL`] or [`PLAIN`].
    mode: AtomicU8,
}

impl LateRead {
    /// Ready to run `tests`, or None when it is not worth it: when every column left for
    /// the second pass decodes cheaply (where `cheap` is true), skipping over their rows
    /// costs more than decoding them.
    pub fn new(tests: &EarlyTests, cheap: &[bool]) -> Option<Self> {
        let tested_columns = tests.columns();
        let worth =
            (0..cheap.len()).any(|c| !cheap[c] && tested_columns.binary_search(&c).is_err());
        worth.then(|| Self {
            keys: tests.keys.clone(),
            predicate: tests
                .predicate
                .clone()
                .map(|(cols, p)| (cols, FilterOp::new(p))),
            tested_columns,
            key_columns: tests.key_columns(),
            ..Self::default()
        })
    }

    /// Which rows of `b` (the columns `read`, in order) the join filters keep: None when
    /// a join has not set its filter yet, Some(None) when there are no join filters.
    fn key_mask(&self, b: &RecordBatch, read: &[usize]) -> Result<Option<Option<BooleanArray>>> {
        let mut mask = None;
        for (col, f) in &self.keys {
            let Some(m) = f.mask(b.column(position(read, *col)?))? else {
                return Ok(None);
            };
            mask = Some(match mask {
                Some(prev) => and(&prev, &m)?,
                None => m,
            });
        }
        Ok(Some(mask))
    }

    /// Which rows of `b` (the columns `read`, in order) the predicate keeps, when there
    /// is one.
    fn predicate_mask(&self, b: &RecordBatch, read: &[usize]) -> Result<Option<BooleanArray>> {
        let Some((cols, p)) = &self.predicate else {
            return Ok(None);
        };
        let idx = cols
            .iter()
            .map(|c| position(read, *c))
            .collect::<Result<Vec<_>>>()?;
        p.mask(&b.project(&idx)?).map(Some)
    }
}

/// Where output column `col` is among the columns `read` (ascending).
fn position(read: &[usize], col: usize) -> Result<usize> {
    read.binary_search(&col)
        .map_err(|_| SluiceError::exec("parquet late read: a tested column is not read first"))
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
pub(crate) fn read_range(spec: &ReadSpec, range: &Unit, tests: &LateRead) -> Result<Batches> {
    let mut mode = tests.mode.load(Ordering::Relaxed);
    if mode == PLAIN {
        return whole(spec, range);
    }
    let first_pos = match mode {
        KEYS => &tests.key_columns,
        _ => &tests.tested_columns,
    };
    let first_cols: Vec<usize> = first_pos.iter().map(|&p| spec.columns[p]).collect();
    // First pass: test, keeping the rows that pass of the columns it reads.
    let mut masks = Vec::new();
    let mut parts: Vec<Vec<ArrayRef>> = vec![Vec::new(); first_pos.len()];
    let (mut tested, mut kept, mut kept_by_keys) = (0, 0, 0);
    for b in spec.reader(&first_cols, range, None)? {
        let b = b.map_err(|e| spec.err(e))?;
        let Some(keys) = tests.key_mask(&b, first_pos)? else {
            // A join has not set its filter yet: read plainly.
            return whole(spec, range);
        };
        let pred = match mode {
            KEYS => None,
            _ => tests.predicate_mask(&b, first_pos)?,
        };
        kept_by_keys += keys.as_ref().map_or(b.num_rows(), |m| m.true_count());
        let mask = match (keys, pred) {
            (Some(k), Some(p)) => and(&k, &p)?,
            (Some(m), None) | (None, Some(m)) => m,
            (None, None) => return Err(SluiceError::exec("parquet late read without tests")),
        };
        tested += b.num_rows();
        kept += mask.true_count();
        let trial_over = tested >= TRIAL_ROWS || tested == range.len;
        if mode == UNDECIDED && trial_over {
            // The first trial decides for the scan. The keys alone are tested first when
            // they keep few rows: then the predicate's columns are read late as well.
            mode = if !tests.keys.is_empty() && kept_by_keys * LATE_READ_RATIO <= tested {
                KEYS
            } else if kept * LATE_READ_RATIO <= tested {
                ALL
            } else {
                PLAIN
            };
            tests.mode.store(mode, Ordering::Relaxed);
            if mode == KEYS {
                // Start the unit again, reading the predicate's columns late too.
                return read_range(spec, range, tests);
            }
        }
        // The share passing so far, once the trial is over; before, the share of the
        // whole unit that has passed already.
        let base = if trial_over { tested } else { range.len };
        // A quarter or more passing already: no need to wait for the trial's end
        // (q13's `o_comment NOT LIKE ..` keeps 99%, and its strings are costly).
        let hopeless = kept.saturating_mul(HOPELESS) > tested;
        if mode == PLAIN || hopeless || kept.saturating_mul(LATE_READ_RATIO) > base {
            // Too many rows pass: this scan reads plainly from now on, and the filters
            // above it drop what they drop.
            tests.mode.store(PLAIN, Ordering::Relaxed);
            return whole(spec, range);
        }
        for (i, c) in b.columns().iter().enumerate() {
            parts[i].push(filter(c, &mask)?);
        }
        masks.push(mask);
    }
    tests.tested.fetch_add(tested as u64, Ordering::Relaxed);
    tests.selected.fetch_add(kept as u64, Ordering::Relaxed);
    if kept == 0 {
        return Ok(Box::new(std::iter::empty()));
    }
    let first_arrays = parts
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
        .filter(|(p, _)| first_pos.binary_search(p).is_err())
        .map(|(_, c)| *c)
        .collect();
    if others.is_empty() {
        return Err(SluiceError::exec(
            "parquet late read: no columns left for the second pass",
        ));
    }
    let mut stitch = Stitch {
        schema: spec.schema.clone(),
        first_pos: first_pos.clone(),
        first_arrays,
        offset: 0,
        rows: kept,
    };
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

/// The first pass's columns of a range, and how many of their rows the output has used.
struct Stitch {
    schema: SchemaRef,
    first_pos: Vec<usize>,
    first_arrays: Vec<ArrayRef>,
    offset: usize,
    rows: usize,
}

impl Stitch {
    /// The next `n` rows of the first pass's columns.
    fn take(&mut self, n: usize) -> Result<Vec<ArrayRef>> {
        if self.offset + n > self.rows {
            return Err(SluiceError::exec(
                "parquet late read: the second pass returned more rows than the first",
            ));
        }
        let out = self
            .first_arrays
            .iter()
            .map(|a| a.slice(self.offset, n))
            .collect();
        self.offset += n;
        Ok(out)
    }

    /// Output batch: `other`'s columns with the first pass's columns put back in place.
    fn merge(&mut self, other: RecordBatch) -> Result<RecordBatch> {
        let first = self.take(other.num_rows())?;
        let (mut first, mut rest) = (first.into_iter(), other.columns().iter().cloned());
        let columns = (0..self.schema.fields().len())
            .map(|p| {
                if self.first_pos.binary_search(&p).is_ok() {
                    first.next()
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
    use crate::logical::expr::BinaryOp;
    use crate::physical::expr::PhysExpr;
    use crate::physical::parquet::ParquetExec;
    use crate::physical::{collect_partitions, ExecNode, TaskContext};

    const ROWS: i64 = 200_000;

    /// `t(k, v, s)`: `k = i % 50_000` (NULL every 1000th row), `v = i`, `s = "s<i % 7>"`;
    /// row groups of 120 000 rows, small pages. Returns the directory (kept alive) and
    /// a two-partition scan of (k, v, s) or of `projection`.
    fn scan(projection: &[usize]) -> (tempfile::TempDir, ParquetExec) {
        scan_with(projection, false)
    }

    /// [`scan`], with `v` written PLAIN (no dictionary) when `plain_v`.
    fn scan_with(projection: &[usize], plain_v: bool) -> (tempfile::TempDir, ParquetExec) {
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
            .set_column_dictionary_enabled("v".into(), !plain_v)
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

    fn keys_only(keys: Vec<(usize, Arc<DynamicFilter>)>) -> EarlyTests {
        EarlyTests {
            keys,
            predicate: None,
        }
    }

    /// Early tests of `lo <= v < hi` (v is output column `v_at`), and of `keys` on k.
    fn v_between(v_at: usize, lo: i64, hi: i64, keys: &[i64]) -> EarlyTests {
        let lit = |x: i64| Box::new(PhysExpr::Literal(Arc::new(Int64Array::from(vec![x]))));
        let v = || Box::new(PhysExpr::Column(0, "v".into()));
        let p = PhysExpr::Binary(
            Box::new(PhysExpr::Binary(v(), BinaryOp::GtEq, lit(lo))),
            BinaryOp::And,
            Box::new(PhysExpr::Binary(v(), BinaryOp::Lt, lit(hi))),
        );
        EarlyTests {
            keys: match keys {
                [] => vec![],
                keys => vec![(0, filter_of(keys))],
            },
            predicate: Some((vec![v_at], p)),
        }
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

    /// A scan of (k, v, s) returns each row's string with its row (a run of its own).
    fn strings_line_up(exec: &Arc<dyn ExecNode>) {
        let ctx = Arc::new(TaskContext::default());
        for b in collect_partitions(exec, &ctx).expect("scan") {
            let v = b.column(1).as_primitive::<Int64Type>();
            let s = arrow::compute::cast(b.column(2), &DataType::Utf8).expect("utf8");
            for (i, s) in s.as_string::<i32>().iter().enumerate() {
                assert_eq!(s, Some(format!("s{}", v.value(i) % 7).as_str()));
            }
        }
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
            .with_early_tests(&keys_only(vec![(0, filter_of(&keys))]))
            .expect("a parquet scan takes key filters");
        assert!(late.details().contains("k read first for 1 join filter(s)"));
        let got = rows(late.clone());
        assert_eq!(got, expected(&keys));
        strings_line_up(&late);
        // Both runs counted: every row's key tested, only the kept rows read late.
        let m = late.metrics();
        assert!(
            m.contains(&format!("rows_tested_first={}", 2 * ROWS)),
            "{m}"
        );
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
            .with_early_tests(&keys_only(vec![
                (0, filter_of(&[5, 6, 7])),
                (0, filter_of(&[6, 7, 8])),
            ]))
            .expect("late");
        assert_eq!(rows(late), expected(&[6, 7]));
    }

    #[test]
    fn a_filter_that_keeps_many_rows_leaves_them_to_the_filters_above() {
        let (_dir, exec) = scan(&[0, 1]);
        let keys: Vec<i64> = (0..25_000).collect();
        let late = exec
            .with_early_tests(&keys_only(vec![(0, filter_of(&keys))]))
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
            .with_early_tests(&keys_only(vec![(0, Arc::new(DynamicFilter::default()))]))
            .expect("late");
        assert_eq!(rows(late).len() as i64, ROWS);
    }

    #[test]
    fn keys_alone_or_nothing_passing() {
        let (_dir, exec) = scan(&[0]);
        // Only key columns read: nothing to read late.
        assert!(exec
            .with_early_tests(&keys_only(vec![(0, filter_of(&[1]))]))
            .is_none());
        let (_dir, exec) = scan(&[0, 1]);
        let late = exec
            .with_early_tests(&keys_only(vec![(0, filter_of(&[-5]))]))
            .expect("late");
        assert!(rows(late).is_empty());
    }

    /// (k, v) of the rows with `lo <= v < hi` and, when `keys` are given, k among them.
    fn expected_between(lo: i64, hi: i64, keys: &[i64]) -> Vec<(Option<i64>, i64)> {
        (lo..hi)
            .filter(|i| keys.is_empty() || (i % 1000 != 0 && keys.contains(&(i % 50_000))))
            .map(|i| ((i % 1000 != 0).then_some(i % 50_000), i))
            .collect()
    }

    #[test]
    fn a_selective_predicate_reads_only_the_rows_it_keeps() {
        let (_dir, exec) = scan(&[0, 1, 2]);
        // 4 000 rows of one unit (rows 120 000 to 200 000): 1 in 20 of it.
        let late = exec
            .with_early_tests(&v_between(1, 150_000, 154_000, &[]))
            .expect("a parquet scan takes a predicate");
        assert!(late.details().contains("v read first for the filter"));
        let got = rows(late.clone());
        assert_eq!(got, expected_between(150_000, 154_000, &[]));
        let m = late.metrics();
        assert!(m.contains(&format!("rows_tested_first={ROWS}")), "{m}");
        assert!(m.contains("rows_read_late=4000"), "{m}");
        // With a join's filter on k as well: rows both keep.
        let keys = [1_000, 1_001, 2_500, 3_000];
        let both = exec
            .with_early_tests(&v_between(1, 150_000, 154_000, &keys))
            .expect("late");
        assert!(both
            .details()
            .contains("k, v read first for the filter and 1 join filter(s)"));
        // The keys alone keep few rows: the scan may leave the predicate to the filter
        // above (it decides on its first unit), so it returns rows of those keys that
        // include every row both keep.
        let got = rows(both);
        assert!(got
            .iter()
            .all(|(k, _)| k.is_some_and(|k| keys.contains(&k))));
        let in_range: Vec<_> = got
            .into_iter()
            .filter(|(_, v)| (150_000..154_000).contains(v))
            .collect();
        assert_eq!(in_range, expected_between(150_000, 154_000, &keys));
    }

    #[test]
    fn a_predicate_keeping_many_rows_or_reading_every_column() {
        let (_dir, exec) = scan(&[0, 1]);
        let late = exec
            .with_early_tests(&v_between(1, 0, 150_000, &[]))
            .expect("late");
        // Every row comes out, in order: dropping them is the job of the filter above.
        let got = rows(late.clone());
        assert_eq!(got.len() as i64, ROWS);
        assert!(got.iter().enumerate().all(|(i, r)| r.1 == i as i64));
        assert!(late.metrics().contains("rows_read_late=0"));
        // Nothing left to read late.
        let (_dir, exec) = scan(&[1]);
        assert!(exec.with_early_tests(&v_between(0, 0, 10, &[])).is_none());
    }

    #[test]
    fn no_late_read_of_cheap_columns_alone() {
        // v is stored PLAIN: decoding it costs less than skipping rows of it.
        let (_dir, exec) = scan_with(&[0, 1], true);
        assert!(exec
            .with_early_tests(&keys_only(vec![(0, filter_of(&[7]))]))
            .is_none());
        let (_dir, exec) = scan_with(&[0, 1, 2], true);
        let keys = [7, 3000, 12_345, 49_999];
        let late = exec
            .with_early_tests(&keys_only(vec![(0, filter_of(&keys))]))
            .expect("s is worth reading late");
        let got = rows(late.clone());
        assert_eq!(got, expected(&keys));
        strings_line_up(&late);
        assert!(late
            .metrics()
            .contains(&format!("rows_read_late={}", 2 * got.len())));
    }
}
