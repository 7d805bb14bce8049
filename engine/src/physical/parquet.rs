//! Parquet scan: reads only the projected columns, skips row groups whose min/max
//! statistics prove a pushed-down predicate false, and splits the rows left across
//! partitions.
//!
//! Partitions get equal shares of rows, in file order, cutting inside a row group where
//! a share ends: a table written as one row group (TPC-H's `partsupp`, `part` and
//! `customer` at SF 1) is still read by every partition. A partition reads its part of a
//! row group through a row selection; with the file's offset index (read with the
//! footer) the pages it does not need are skipped, not decompressed.
//!
//! Under a filter or joins' dynamic filters the scan reads each unit in two passes,
//! the tested columns first (`parquet_late`).

use std::fs::File;
use std::path::PathBuf;
use std::sync::atomic::Ordering;
use std::sync::Arc;

use arrow::array::{Array, ArrayRef, BooleanArray, Scalar};
use arrow::compute::kernels::cmp;
use arrow::datatypes::{Schema, SchemaRef};
use parquet::arrow::arrow_reader::statistics::StatisticsConverter;
use parquet::arrow::arrow_reader::{
    ArrowReaderMetadata, ParquetRecordBatchReaderBuilder, RowSelection, RowSelectionPolicy,
    RowSelector,
};
use parquet::arrow::ProjectionMask;
use parquet::basic::Encoding;

use crate::error::{Result, SluiceError};
use crate::logical::expr::{BinaryOp, Expr};
use crate::physical::coerce::common_type;
use crate::physical::parquet_late::{read_range, Batches, LateRead, ReadSpec};
use crate::physical::{EarlyTests, Element, ElementStream, ExecNode, TaskContext};

/// One file and its footer.
#[derive(Debug, Clone)]
pub struct ParquetFile {
    /// Where it is.
    pub path: PathBuf,
    /// Its decoded footer.
    pub metadata: ArrowReaderMetadata,
}

/// Fewest rows worth a partition of their own: a smaller table is read by fewer.
const MIN_PARTITION_ROWS: usize = 1 << 16;

/// Rows `start..start + len` of one row group.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Unit {
    pub(crate) file: usize,
    pub(crate) row_group: usize,
    pub(crate) start: usize,
    pub(crate) len: usize,
    /// The row group's rows.
    pub(crate) rows: usize,
}

impl Unit {
    /// Selectors over the unit's row group: skip to the unit, `inner` (selectors over the
    /// unit's rows), skip the rest.
    pub(crate) fn around(&self, inner: Vec<RowSelector>) -> Vec<RowSelector> {
        let mut s = Vec::with_capacity(inner.len() + 2);
        if self.start > 0 {
            s.push(RowSelector::skip(self.start));
        }
        s.extend(inner);
        if self.start + self.len < self.rows {
            s.push(RowSelector::skip(self.rows - self.start - self.len));
        }
        s
    }
}

/// The plan node.
#[derive(Debug, Clone)]
pub struct ParquetExec {
    files: Vec<ParquetFile>,
    projection: Option<Vec<usize>>,
    schema: SchemaRef,
    /// Per partition: the rows to read, in file order.
    partitions: Vec<Vec<Unit>>,
    row_groups_total: usize,
    row_groups_pruned: usize,
    batch_size: usize,
    /// Tests applied while reading, when some (`parquet_late`).
    late: Option<Arc<LateRead>>,
}

impl ParquetExec {
    /// Plans a scan of `files`.
    pub fn try_new(
        files: Vec<ParquetFile>,
        file_schema: SchemaRef,
        projection: Option<&[usize]>,
        filters: &[Expr],
        partitions: usize,
        batch_size: usize,
    ) -> Result<Self> {
        let schema = match projection {
            Some(p) => Arc::new(file_schema.project(p)?),
            None => file_schema.clone(),
        };
        let mut units = Vec::new();
        let (mut total, mut pruned) = (0, 0);
        for (fi, f) in files.iter().enumerate() {
            let md = f.metadata.metadata();
            total += md.num_row_groups();
            let keep = prune_row_groups(f, &file_schema, filters);
            for (rg, meta) in md.row_groups().iter().enumerate() {
                if keep.as_ref().is_none_or(|k| k.value(rg) || k.is_null(rg)) {
                    let rows =
                        usize::try_from(meta.num_rows()).map_err(|_| SluiceError::Parquet {
                            path: f.path.clone(),
                            message: format!(
                                "row group {rg} claims {} rows in the footer",
                                meta.num_rows()
                            ),
                        })?;
                    units.push(Unit {
                        file: fi,
                        row_group: rg,
                        start: 0,
                        len: rows,
                        rows,
                    });
                } else {
                    pruned += 1;
                }
            }
        }
        Ok(Self {
            files,
            projection: projection.map(<[usize]>::to_vec),
            schema,
            partitions: split_rows(units, partitions),
            row_groups_total: total,
            row_groups_pruned: pruned,
            batch_size,
            late: None,
        })
    }
}

/// For each row group, whether it may contain rows passing all `filters` (None = keep all).
fn prune_row_groups(file: &ParquetFile, schema: &Schema, filters: &[Expr]) -> Option<BooleanArray> {
    let mut keep: Option<BooleanArray> = None;
    for f in filters {
        let Some(k) = prune_one(file, schema, f) else {
            continue;
        };
        keep = Some(match keep {
            None => k,
            Some(prev) => arrow::compute::and_kleene(&prev, &k).ok()?,
        });
    }
    keep
}

fn prune_one(file: &ParquetFile, schema: &Schema, f: &Expr) -> Option<BooleanArray> {
    let Expr::Binary { left, op, right } = f else {
        return None;
    };
    let (col, op, lit) = match (&**left, &**right) {
        (Expr::Column(c), Expr::Literal(l)) => (c, *op, l),
        (Expr::Literal(l), Expr::Column(c)) => (c, op.swap()?, l),
        _ => return None,
    };
    let md = file.metadata.metadata();
    let conv =
        StatisticsConverter::try_new(&col.name, schema, file.metadata.parquet_schema()).ok()?;
    let mins = conv.row_group_mins(md.row_groups().iter()).ok()?;
    let maxes = conv.row_group_maxes(md.row_groups().iter()).ok()?;
    let t = common_type(mins.data_type(), lit.data_type())?;
    let cast = |a: &ArrayRef| arrow::compute::cast(a, &t).ok();
    let (mins, maxes, lit) = (cast(&mins)?, cast(&maxes)?, cast(&lit.0)?);
    let lit = Scalar::new(lit);
    let r = match op {
        BinaryOp::Eq => arrow::compute::and_kleene(
            &cmp::lt_eq(&mins, &lit).ok()?,
            &cmp::gt_eq(&maxes, &lit).ok()?,
        ),
        BinaryOp::Lt => cmp::lt(&mins, &lit),
        BinaryOp::LtEq => cmp::lt_eq(&mins, &lit),
        BinaryOp::Gt => cmp::gt(&maxes, &lit),
        BinaryOp::GtEq => cmp::gt_eq(&maxes, &lit),
        _ => return None,
    };
    r.ok()
}

/// Deals `units` (whole row groups, in file order) to at most `partitions` partitions of
/// equal rows, each at least [`MIN_PARTITION_ROWS`] (but always one partition), cutting a
/// row group where a partition's share ends.
fn split_rows(units: Vec<Unit>, partitions: usize) -> Vec<Vec<Unit>> {
    let total: usize = units.iter().map(|u| u.len).sum();
    let n = partitions.clamp(1, total.div_ceil(MIN_PARTITION_ROWS).max(1));
    let share = total.div_ceil(n).max(1);
    let mut parts: Vec<Vec<Unit>> = vec![Vec::new(); n];
    let mut filled = 0;
    for mut u in units {
        while u.len > 0 {
            let p = (filled / share).min(n - 1);
            let take = if p == n - 1 {
                u.len
            } else {
                u.len.min(share - filled % share)
            };
            parts[p].push(Unit { len: take, ..u });
            u.start += take;
            u.len -= take;
            filled += take;
        }
    }
    parts
}

/// The row selection reading `units` (one file's, in row group order) out of their row
/// groups, or None when they are whole row groups.
fn selection(units: &[Unit]) -> Option<RowSelection> {
    if units.iter().all(|u| u.len == u.rows) {
        return None;
    }
    let s: Vec<RowSelector> = units
        .iter()
        .flat_map(|u| u.around(vec![RowSelector::select(u.len)]))
        .collect();
    Some(RowSelection::from(s))
}

impl ExecNode for ParquetExec {
    fn name(&self) -> &'static str {
        "ParquetExec"
    }
    fn schema(&self) -> SchemaRef {
        self.schema.clone()
    }
    fn children(&self) -> Vec<Arc<dyn ExecNode>> {
        vec![]
    }
    fn output_partitions(&self) -> usize {
        self.partitions.len()
    }
    fn execute(&self, partition: usize, ctx: &Arc<TaskContext>) -> Result<ElementStream> {
        let units = self
            .partitions
            .get(partition)
            .ok_or_else(|| SluiceError::exec("parquet partition out of range"))?;
        if let Some(late) = &self.late {
            return Ok(ctx.cancellable(self.read_late(units.clone(), late.clone())));
        }
        // Runs of units of one file, each read by one reader.
        let units: Vec<Vec<Unit>> = units
            .chunk_by(|a, b| a.file == b.file)
            .map(<[Unit]>::to_vec)
            .collect();
        let files = self.files.clone();
        let projection = self.projection.clone();
        let batch_size = self.batch_size;
        let iter = units.into_iter().flat_map(move |run| {
            let f = &files[run[0].file];
            let rgs: Vec<usize> = run.iter().map(|u| u.row_group).collect();
            let path = f.path.clone();
            let err = |e: String| SluiceError::Parquet {
                path: path.clone(),
                message: e,
            };
            let reader = File::open(&f.path)
                .map_err(|source| SluiceError::Io {
                    path: f.path.clone(),
                    source,
                })
                .and_then(|file| {
                    let mut b = ParquetRecordBatchReaderBuilder::new_with_metadata(
                        file,
                        f.metadata.clone(),
                    )
                    .with_row_groups(rgs)
                    .with_batch_size(batch_size);
                    if let Some(sel) = selection(&run) {
                        b = b
                            .with_row_selection(sel)
                            .with_row_selection_policy(RowSelectionPolicy::Selectors);
                    }
                    if let Some(p) = &projection {
                        let mask =
                            ProjectionMask::roots(f.metadata.parquet_schema(), p.iter().copied());
                        b = b.with_projection(mask);
                    }
                    b.build().map_err(|e| err(e.to_string()))
                });
            let items: Box<dyn Iterator<Item = Result<Element>> + Send> = match reader {
                Ok(r) => {
                    let path = f.path.clone();
                    Box::new(r.map(move |b| {
                        b.map(Element::Batch).map_err(|e| SluiceError::Parquet {
                            path: path.clone(),
                            message: e.to_string(),
                        })
                    }))
                }
                Err(e) => Box::new(std::iter::once(Err(e))),
            };
            items
        });
        Ok(ctx.cancellable(Box::new(iter.chain(std::iter::once(Ok(Element::End))))))
    }
    fn details(&self) -> String {
        let late = match &self.late {
            Some(l) => {
                let names: Vec<&str> = l
                    .tested_columns
                    .iter()
                    .map(|&c| self.schema.field(c).name().as_str())
                    .collect();
                let what = match (l.keys.len(), l.predicate.is_some()) {
                    (0, _) => "the filter".to_string(),
                    (k, false) => format!("{k} join filter(s)"),
                    (k, true) => format!("the filter and {k} join filter(s)"),
                };
                format!(", {} read first for {what}", names.join(", "))
            }
            None => String::new(),
        };
        format!(
            "files={}, row_groups={} (pruned {}){late}",
            self.files.len(),
            self.row_groups_total - self.row_groups_pruned,
            self.row_groups_pruned
        )
    }
    fn metrics(&self) -> String {
        self.late.as_ref().map_or_else(String::new, |l| {
            format!(
                "rows_tested_first={}, rows_read_late={}",
                l.tested.load(Ordering::Relaxed),
                l.selected.load(Ordering::Relaxed)
            )
        })
    }
    fn with_early_tests(&self, tests: &EarlyTests) -> Option<Arc<dyn ExecNode>> {
        let width = self.schema.fields().len();
        let tested = tests.columns();
        if tested.is_empty() || tested.iter().any(|&c| c >= width) {
            return None;
        }
        let late = LateRead::new(tests, &self.cheap_columns())?;
        Some(Arc::new(Self {
            late: Some(Arc::new(late)),
            ..self.clone()
        }))
    }
}

impl ParquetExec {
    /// The file column of each output column.
    fn file_columns(&self) -> Vec<usize> {
        match &self.projection {
            Some(p) => p.clone(),
            None => (0..self.schema.fields().len()).collect(),
        }
    }

    /// Per output column, whether its values decode cheaply: fixed-width values that
    /// some data pages of every row group store PLAIN (TPC-H's keys and prices, whose
    /// dictionaries overflow). A late read of such columns alone does not pay.
    fn cheap_columns(&self) -> Vec<bool> {
        let plain = |f: &ParquetFile, leaf: usize| {
            let schema = f.metadata.parquet_schema();
            // Leaves are roots only in a flat schema.
            schema.num_columns() == schema.root_schema().get_fields().len()
                && f.metadata.metadata().row_groups().iter().all(|rg| {
                    leaf < rg.num_columns() && {
                        let c = rg.column(leaf);
                        c.dictionary_page_offset().is_none()
                            || c.page_encoding_stats_mask()
                                .is_some_and(|m| m.is_set(Encoding::PLAIN))
                    }
                })
        };
        self.file_columns()
            .iter()
            .enumerate()
            .map(|(out, &leaf)| {
                self.schema.field(out).data_type().is_primitive()
                    && self.files.iter().all(|f| plain(f, leaf))
            })
            .collect()
    }

    /// Reads `units` in two passes each (`parquet_late`).
    fn read_late(&self, units: Vec<Unit>, late: Arc<LateRead>) -> ElementStream {
        let files = self.files.clone();
        let schema = self.schema.clone();
        let batch_size = self.batch_size;
        let columns = self.file_columns();
        let iter = units.into_iter().flat_map(move |u| {
            let spec = ReadSpec {
                file: &files[u.file],
                columns: &columns,
                schema: schema.clone(),
                batch_size,
            };
            let batches: Batches = match read_range(&spec, &u, &late) {
                Ok(b) => b,
                Err(e) => Box::new(std::iter::once(Err(e))),
            };
            batches.map(|b| b.map(Element::Batch))
        });
        Box::new(iter.chain(std::iter::once(Ok(Element::End))))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use arrow::array::{AsArray, Int64Array, RecordBatch};
    use arrow::datatypes::{DataType, Field, Int64Type};
    use parquet::arrow::ArrowWriter;
    use parquet::file::properties::WriterProperties;

    use crate::catalog::parquet::read_metadata;
    use crate::physical::collect_partitions;

    fn unit(row_group: usize, rows: usize) -> Unit {
        Unit {
            file: 0,
            row_group,
            start: 0,
            len: rows,
            rows,
        }
    }

    /// Shares are equal in rows, cut inside row groups, in file order; small tables get
    /// fewer partitions.
    #[test]
    fn rows_are_dealt_in_equal_contiguous_shares() {
        let parts = split_rows(vec![unit(0, 300_000)], 2);
        assert_eq!(parts.len(), 2);
        assert_eq!((parts[0][0].start, parts[0][0].len), (0, 150_000));
        assert_eq!((parts[1][0].start, parts[1][0].len), (150_000, 150_000));

        // 3 row groups over 2 partitions: the middle one is cut.
        let parts = split_rows(
            vec![unit(0, 100_000), unit(1, 100_000), unit(2, 100_000)],
            2,
        );
        let rows = |p: &[Unit]| p.iter().map(|u| u.len).sum::<usize>();
        assert_eq!((rows(&parts[0]), rows(&parts[1])), (150_000, 150_000));
        assert_eq!(
            parts[0][1],
            Unit {
                len: 50_000,
                ..unit(1, 100_000)
            }
        );
        assert_eq!(parts[1][0].start, 50_000);

        // Too few rows for two partitions; nothing at all still makes one.
        assert_eq!(split_rows(vec![unit(0, 1000)], 2).len(), 1);
        assert_eq!(split_rows(vec![], 4), vec![Vec::<Unit>::new()]);

        // Whole row groups need no selection; a cut one skips around its rows.
        assert!(selection(&[unit(0, 10), unit(1, 10)]).is_none());
        let sel = selection(&[Unit {
            start: 3,
            len: 4,
            ..unit(0, 10)
        }])
        .expect("cut");
        let selectors: Vec<RowSelector> = sel.into();
        assert_eq!(
            selectors,
            vec![
                RowSelector::skip(3),
                RowSelector::select(4),
                RowSelector::skip(3)
            ]
        );
    }

    /// A file of one row group, read by two partitions, gives each row once, in order.
    #[test]
    fn one_row_group_is_read_by_two_partitions() {
        let dir = tempfile::tempdir().expect("dir");
        let path = dir.path().join("t.parquet");
        let schema = Arc::new(Schema::new(vec![Field::new("v", DataType::Int64, false)]));
        let n = 3 * MIN_PARTITION_ROWS as i64;
        let props = WriterProperties::builder()
            .set_max_row_group_row_count(Some(n as usize))
            .set_data_page_row_count_limit(1000)
            .build();
        let file = File::create(&path).expect("create");
        let mut w = ArrowWriter::try_new(file, schema.clone(), Some(props)).expect("writer");
        let batch = RecordBatch::try_new(
            schema.clone(),
            vec![Arc::new(Int64Array::from_iter_values(0..n))],
        )
        .expect("batch");
        w.write(&batch).expect("write");
        w.close().expect("close");

        let metadata = read_metadata(&path).expect("metadata");
        assert_eq!(metadata.metadata().num_row_groups(), 1);
        assert!(
            metadata.metadata().page_index().is_some(),
            "offset index read"
        );
        let files = vec![ParquetFile { path, metadata }];
        let exec: Arc<dyn ExecNode> =
            Arc::new(ParquetExec::try_new(files, schema, None, &[], 2, 4096).expect("exec"));
        assert_eq!(exec.output_partitions(), 2);
        let ctx = Arc::new(TaskContext::default());
        let batches = collect_partitions(&exec, &ctx).expect("scan");
        let got: Vec<i64> = batches
            .iter()
            .flat_map(|b| b.column(0).as_primitive::<Int64Type>().values().to_vec())
            .collect();
        assert_eq!(got, (0..n).collect::<Vec<_>>());
    }
}
