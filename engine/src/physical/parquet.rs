//! Parquet scan: reads only the projected columns, skips row groups whose min/max
//! statistics prove a pushed-down predicate false, and splits row groups across partitions.

use std::fs::File;
use std::path::PathBuf;
use std::sync::Arc;

use arrow::array::{Array, ArrayRef, BooleanArray, Scalar};
use arrow::compute::kernels::cmp;
use arrow::datatypes::{Schema, SchemaRef};
use parquet::arrow::arrow_reader::statistics::StatisticsConverter;
use parquet::arrow::arrow_reader::{ArrowReaderMetadata, ParquetRecordBatchReaderBuilder};
use parquet::arrow::ProjectionMask;

use crate::error::{Result, SluiceError};
use crate::logical::expr::{BinaryOp, Expr};
use crate::physical::coerce::common_type;
use crate::physical::{Element, ElementStream, ExecNode, TaskContext};

/// One file and its footer.
#[derive(Debug, Clone)]
pub struct ParquetFile {
    /// Where it is.
    pub path: PathBuf,
    /// Its decoded footer.
    pub metadata: ArrowReaderMetadata,
}

/// The plan node.
#[derive(Debug)]
pub struct ParquetExec {
    files: Vec<ParquetFile>,
    projection: Option<Vec<usize>>,
    schema: SchemaRef,
    /// Per partition: (file index, row groups) to read.
    partitions: Vec<Vec<(usize, Vec<usize>)>>,
    row_groups_total: usize,
    row_groups_pruned: usize,
    batch_size: usize,
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
            let n = f.metadata.metadata().num_row_groups();
            total += n;
            let keep = prune_row_groups(f, &file_schema, filters);
            for rg in 0..n {
                if keep.as_ref().is_none_or(|k| k.value(rg) || k.is_null(rg)) {
                    units.push((fi, rg));
                } else {
                    pruned += 1;
                }
            }
        }
        let n = partitions.clamp(1, units.len().max(1));
        let mut parts: Vec<Vec<(usize, Vec<usize>)>> = vec![Vec::new(); n];
        // Contiguous runs keep each partition's reads sequential within a file.
        let per = units.len().div_ceil(n).max(1);
        for (i, (fi, rg)) in units.into_iter().enumerate() {
            let p = &mut parts[(i / per).min(n - 1)];
            match p.last_mut() {
                Some((f, rgs)) if *f == fi => rgs.push(rg),
                _ => p.push((fi, vec![rg])),
            }
        }
        Ok(Self {
            files,
            projection: projection.map(<[usize]>::to_vec),
            schema,
            partitions: parts,
            row_groups_total: total,
            row_groups_pruned: pruned,
            batch_size,
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
            .cloned()
            .ok_or_else(|| SluiceError::exec("parquet partition out of range"))?;
        let files = self.files.clone();
        let projection = self.projection.clone();
        let batch_size = self.batch_size;
        let iter = units.into_iter().flat_map(move |(fi, rgs)| {
            let f = &files[fi];
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
        format!(
            "files={}, row_groups={} (pruned {})",
            self.files.len(),
            self.row_groups_total - self.row_groups_pruned,
            self.row_groups_pruned
        )
    }
}
