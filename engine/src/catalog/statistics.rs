//! Column statistics a table knows without reading its rows (Parquet footers), for
//! cardinality estimates: each column's smallest and largest value on a numeric scale and
//! its NULL count.

use arrow::array::{Array, ArrayRef, AsArray};
use arrow::datatypes::{DataType, Float64Type};
use parquet::arrow::arrow_reader::statistics::StatisticsConverter;
use parquet::arrow::arrow_reader::ArrowReaderMetadata;

/// What is known about one column's values.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct ColumnStatistics {
    /// Smallest non-NULL value on the column's numeric scale (see [`numeric_values`]).
    pub min: Option<f64>,
    /// Largest non-NULL value on the same scale.
    pub max: Option<f64>,
    /// NULL values in the column.
    pub null_count: Option<u64>,
}

/// The values of `array` on a numeric scale that keeps their order: integers and floats
/// as themselves, decimals as their value, dates in days (`Date32`) or milliseconds
/// (`Date64`), timestamps in their unit. `None` for other types (strings, booleans, ...).
pub fn numeric_values(array: &ArrayRef) -> Option<Vec<Option<f64>>> {
    let t = array.data_type();
    let as_float = match t {
        t if t.is_numeric() => arrow::compute::cast(array, &DataType::Float64).ok()?,
        DataType::Date32 => {
            let days = arrow::compute::cast(array, &DataType::Int32).ok()?;
            arrow::compute::cast(&days, &DataType::Float64).ok()?
        }
        DataType::Date64 | DataType::Timestamp(..) => {
            let n = arrow::compute::cast(array, &DataType::Int64).ok()?;
            arrow::compute::cast(&n, &DataType::Float64).ok()?
        }
        _ => return None,
    };
    Some(as_float.as_primitive::<Float64Type>().iter().collect())
}

/// Merges the row groups' statistics of every file into one [`ColumnStatistics`] per
/// column of `files`' shared Arrow schema. A column whose statistics are missing or not
/// numeric gets what is known (possibly nothing).
pub fn parquet_statistics(files: &[&ArrowReaderMetadata]) -> Vec<ColumnStatistics> {
    let Some(first) = files.first() else {
        return vec![];
    };
    let schema = first.schema();
    schema
        .fields()
        .iter()
        .map(|field| {
            let mut out = ColumnStatistics {
                null_count: Some(0),
                ..Default::default()
            };
            let mut bounds_complete = true;
            for meta in files {
                let Ok(conv) =
                    StatisticsConverter::try_new(field.name(), schema, meta.parquet_schema())
                else {
                    return ColumnStatistics::default();
                };
                let groups = meta.metadata().row_groups();
                if groups.is_empty() {
                    continue;
                }
                let nulls = conv.row_group_null_counts(groups.iter()).ok();
                out.null_count = match (out.null_count, nulls) {
                    (Some(n), Some(a)) if a.null_count() == 0 => {
                        Some(n + a.values().iter().sum::<u64>())
                    }
                    _ => None,
                };
                let extreme = |a: Option<ArrayRef>, pick: fn(f64, f64) -> f64| {
                    let values = numeric_values(&a?)?;
                    // A row group without a bound leaves the column's bound unknown.
                    values.into_iter().try_fold(None, |acc: Option<f64>, v| {
                        v.map(|v| Some(acc.map_or(v, |a| pick(a, v))))
                    })?
                };
                let mins = extreme(conv.row_group_mins(groups.iter()).ok(), f64::min);
                let maxes = extreme(conv.row_group_maxes(groups.iter()).ok(), f64::max);
                match (mins, maxes) {
                    (Some(lo), Some(hi)) if bounds_complete => {
                        out.min = Some(out.min.map_or(lo, |m| m.min(lo)));
                        out.max = Some(out.max.map_or(hi, |m| m.max(hi)));
                    }
                    _ => bounds_complete = false,
                }
            }
            if !bounds_complete {
                out.min = None;
                out.max = None;
            }
            out
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use arrow::array::{Date32Array, Decimal128Array, Int64Array, RecordBatch, StringArray};
    use arrow::datatypes::{Field, Schema};
    use parquet::arrow::ArrowWriter;
    use parquet::file::properties::WriterProperties;

    use super::*;
    use crate::catalog::parquet::read_metadata;

    #[test]
    fn parquet_footers_give_ranges_and_null_counts() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("t.parquet");
        let schema = Arc::new(Schema::new(vec![
            Field::new("i", DataType::Int64, true),
            Field::new("d", DataType::Date32, false),
            Field::new("m", DataType::Decimal128(15, 2), false),
            Field::new("s", DataType::Utf8, false),
        ]));
        let batch = RecordBatch::try_new(
            schema.clone(),
            vec![
                Arc::new(Int64Array::from(vec![Some(5), None, Some(-3), Some(40)])),
                Arc::new(Date32Array::from(vec![100, 90, 300, 200])),
                Arc::new(
                    Decimal128Array::from(vec![150, -25, 990, 0])
                        .with_precision_and_scale(15, 2)
                        .expect("decimal"),
                ),
                Arc::new(StringArray::from(vec!["b", "a", "d", "c"])),
            ],
        )
        .expect("batch");
        // Two rows a row group: the bounds merge across groups.
        let props = WriterProperties::builder()
            .set_max_row_group_row_count(Some(2))
            .build();
        let mut w = ArrowWriter::try_new(
            std::fs::File::create(&path).expect("create"),
            schema,
            Some(props),
        )
        .expect("writer");
        w.write(&batch).expect("write");
        w.close().expect("close");
        let meta = read_metadata(&path).expect("footer");
        assert_eq!(meta.metadata().num_row_groups(), 2);
        let stats = parquet_statistics(&[&meta]);
        let range = |i: usize| (stats[i].min, stats[i].max);
        assert_eq!(range(0), (Some(-3.0), Some(40.0)));
        assert_eq!(stats[0].null_count, Some(1));
        assert_eq!(range(1), (Some(90.0), Some(300.0)));
        assert_eq!(range(2), (Some(-0.25), Some(9.9)));
        assert_eq!(stats[2].null_count, Some(0));
        // Strings have no numeric scale.
        assert_eq!(range(3), (None, None));
        assert!(parquet_statistics(&[]).is_empty());
    }
}
