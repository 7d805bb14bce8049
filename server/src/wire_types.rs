//! The Arrow types the server sends: view types become their classic forms.
//!
//! Sluice decodes strings as `Utf8View` (and binary as `BinaryView`) because its operators
//! compare and hash them faster. Over Flight, a view column costs 16 bytes a row plus its
//! data, where `Utf8` costs 4 plus the data: TPC-H SF 1 `lineitem` arrives as 1199 MiB
//! with views and 965 MiB without, and a bulk read's client CPU goes mostly into copying
//! bytes. Many Flight SQL clients in use (older pyarrow, the Java and Go drivers before
//! they learned view types) cannot read view columns at all. So every schema the server
//! reports (query results, prepared statements, `GetTables`) and every batch it streams
//! uses `Utf8`/`Binary` in place of `Utf8View`/`BinaryView`, nested types included.

use std::sync::Arc;

use arrow::array::{Array, ArrayRef, AsArray, GenericByteViewArray, RecordBatch};
use arrow::compute::cast;
use arrow::datatypes::{ByteViewType, DataType, Field, FieldRef, Fields, Schema, SchemaRef};
use arrow::error::ArrowError;

/// `data_type` with view types replaced by their classic forms, at any depth.
pub fn wire_type(data_type: &DataType) -> DataType {
    match data_type {
        DataType::Utf8View => DataType::Utf8,
        DataType::BinaryView => DataType::Binary,
        DataType::List(f) => DataType::List(wire_field(f)),
        DataType::LargeList(f) => DataType::LargeList(wire_field(f)),
        DataType::FixedSizeList(f, n) => DataType::FixedSizeList(wire_field(f), *n),
        DataType::Struct(fields) => DataType::Struct(wire_fields(fields)),
        DataType::Map(f, sorted) => DataType::Map(wire_field(f), *sorted),
        other => other.clone(),
    }
}

fn wire_field(field: &FieldRef) -> FieldRef {
    Arc::new(Field::clone(field).with_data_type(wire_type(field.data_type())))
}

fn wire_fields(fields: &Fields) -> Fields {
    fields.iter().map(wire_field).collect()
}

/// `schema` as the server reports it to clients.
pub fn wire_schema(schema: &Schema) -> SchemaRef {
    Arc::new(Schema::new_with_metadata(
        wire_fields(schema.fields()),
        schema.metadata().clone(),
    ))
}

/// `batch` converted to `schema` (from [`wire_schema`] of the batch's own schema).
///
/// A string or binary column whose values add up to more than 2 GiB in one batch does not
/// fit 32-bit offsets; it is refused with an error rather than cut.
pub fn to_wire(batch: RecordBatch, schema: &SchemaRef) -> Result<RecordBatch, ArrowError> {
    if batch.schema().fields() == schema.fields() {
        return Ok(batch);
    }
    let columns = batch
        .columns()
        .iter()
        .zip(schema.fields())
        .map(|(column, field)| {
            if column.data_type() == field.data_type() {
                return Ok(column.clone());
            }
            check_offsets(column, field)?;
            cast(column, field.data_type())
        })
        .collect::<Result<Vec<ArrayRef>, ArrowError>>()?;
    RecordBatch::try_new(schema.clone(), columns)
}

/// Errors if a top-level view column holds more bytes than 32-bit offsets can address
/// (arrow's cast would panic on it). Values longer than 12 bytes live in the data buffers
/// and shorter ones inline, so their sum is at most the buffers' size plus 12 a row; only
/// past that bound are the lengths added up.
fn check_offsets(column: &ArrayRef, field: &Field) -> Result<(), ArrowError> {
    fn bytes<T: ByteViewType + ?Sized>(v: &GenericByteViewArray<T>) -> usize {
        let bound = v.data_buffers().iter().map(|b| b.len()).sum::<usize>() + 12 * v.len();
        if bound <= i32::MAX as usize {
            return bound;
        }
        v.lengths().map(|l| l as usize).sum()
    }
    let bytes = match column.data_type() {
        DataType::Utf8View => bytes(column.as_string_view()),
        DataType::BinaryView => bytes(column.as_binary_view()),
        _ => 0,
    };
    if bytes > i32::MAX as usize {
        return Err(ArrowError::ComputeError(format!(
            "column '{}' holds {bytes} bytes in one batch, more than a 32-bit {} column can \
             carry to the client",
            field.name(),
            field.data_type()
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow::array::{BinaryViewArray, Int32Array, ListArray, StringViewArray};
    use arrow::datatypes::Int32Type;

    fn batch() -> RecordBatch {
        let schema = Arc::new(Schema::new(vec![
            Field::new("n", DataType::Int32, false),
            Field::new("s", DataType::Utf8View, true),
            Field::new("b", DataType::BinaryView, false),
        ]));
        RecordBatch::try_new(
            schema,
            vec![
                Arc::new(Int32Array::from(vec![1, 2, 3])),
                Arc::new(StringViewArray::from(vec![
                    Some("short"),
                    None,
                    Some("a string longer than twelve bytes"),
                ])),
                Arc::new(BinaryViewArray::from_iter_values([
                    b"x".as_slice(),
                    b"",
                    b"yz",
                ])),
            ],
        )
        .expect("batch")
    }

    #[test]
    fn views_are_sent_as_classic_strings_and_binary() {
        let b = batch();
        let schema = wire_schema(&b.schema());
        let types: Vec<_> = schema.fields().iter().map(|f| f.data_type()).collect();
        assert_eq!(
            types,
            [&DataType::Int32, &DataType::Utf8, &DataType::Binary]
        );
        assert!(schema.field(1).is_nullable());
        let out = to_wire(b, &schema).expect("converted");
        assert_eq!(out.schema(), schema);
        let s = out.column(1).as_string::<i32>();
        assert_eq!(s.value(0), "short");
        assert!(s.is_null(1));
        assert_eq!(s.value(2), "a string longer than twelve bytes");
        assert_eq!(out.column(2).as_binary::<i32>().value(2), b"yz");
    }

    #[test]
    fn nested_view_types_are_replaced_and_other_types_kept() {
        let list = DataType::List(Arc::new(Field::new("item", DataType::Utf8View, true)));
        assert_eq!(
            wire_type(&list),
            DataType::List(Arc::new(Field::new("item", DataType::Utf8, true)))
        );
        let ints = ListArray::from_iter_primitive::<Int32Type, _, _>([Some(vec![Some(1)])]);
        let schema = Arc::new(Schema::new(vec![Field::new(
            "l",
            ints.data_type().clone(),
            true,
        )]));
        let b = RecordBatch::try_new(schema.clone(), vec![Arc::new(ints)]).expect("batch");
        assert_eq!(wire_schema(&schema), schema);
        assert_eq!(to_wire(b.clone(), &schema).expect("unchanged"), b);
    }
}
