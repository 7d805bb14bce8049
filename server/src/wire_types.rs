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
use sluice::physical::memory::batch_bytes;

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

/// The most bytes of rows the server puts in one Flight data message (arrow-flight's own
/// default; well under the 16 MiB that gRPC clients such as ADBC's accept by default).
pub const MAX_MESSAGE_BYTES: usize = 2 << 20;

/// `batch` cut into consecutive row ranges of about `max_bytes` each, measured by the
/// bytes its rows occupy (the engine's [`batch_bytes`]) rather than by the buffers its
/// columns hold. The two differ for a batch decoded from a Flight message (a bulk ingest's table),
/// whose columns all slice one message body: measured by buffers, every column weighs the
/// whole body, and a 130 000-row batch of `lineitem` went out as 500 messages of 260 rows,
/// ten times slower to read.
pub fn split_for_wire(batch: RecordBatch, max_bytes: usize) -> Vec<RecordBatch> {
    let bytes = batch_bytes(&batch);
    let rows = batch.num_rows();
    let pieces = bytes.div_ceil(max_bytes.max(1)).clamp(1, rows.max(1));
    if pieces == 1 {
        return vec![batch];
    }
    let per_piece = rows.div_ceil(pieces);
    (0..rows)
        .step_by(per_piece)
        .map(|start| batch.slice(start, per_piece.min(rows - start)))
        .collect()
}

/// Errors if a top-level view column holds more bytes than 32-bit offsets can address
/// (arrow's cast would panic on it, after copying 2 GiB). The views' lengths are added up:
/// the size of the data buffers is no bound, because views may share bytes (a `take` or a
/// join repeats a long value without copying it). Null slots count too; their views are
/// empty in the arrays arrow builds, and counting them can only refuse, never cut.
fn check_offsets(column: &ArrayRef, field: &Field) -> Result<(), ArrowError> {
    fn bytes<T: ByteViewType + ?Sized>(v: &GenericByteViewArray<T>) -> usize {
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
    use arrow::array::{
        BinaryViewArray, ByteView, Int32Array, ListArray, StringArray, StringViewArray,
    };
    use arrow::buffer::Buffer;
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
    fn sliced_views_with_nulls_convert_as_arrow_casts_them() {
        let values: Vec<Option<String>> = (0..5000)
            .map(|i| (i % 7 != 3).then(|| "é".repeat(i % 23) + &i.to_string()))
            .collect();
        let views = StringViewArray::from_iter(values.iter().map(Option::as_deref));
        // Slicing keeps the whole data buffers and shifts the null bitmap.
        let sliced: ArrayRef = Arc::new(views.slice(1001, 3000));
        let schema = Arc::new(Schema::new(vec![Field::new("s", DataType::Utf8View, true)]));
        let b = RecordBatch::try_new(schema.clone(), vec![sliced.clone()]).expect("batch");
        let out = to_wire(b, &wire_schema(&schema)).expect("converted");
        let expected = cast(&sliced, &DataType::Utf8).expect("cast");
        assert_eq!(out.column(0).as_ref(), expected.as_ref());
        let s = out.column(0).as_string::<i32>();
        assert_eq!(s.value(1), values[1002].as_deref().expect("a value"));
        assert!(s.is_null(3), "row 1004 is null");
        // Null slots take no bytes.
        assert_eq!(s.value_offsets()[4], s.value_offsets()[3]);
    }

    #[test]
    fn a_column_past_two_gib_is_refused_not_cut() {
        let gib = 1usize << 30;
        // Zeroed by the allocator and never written: the check comes before any copy.
        let data = Buffer::from_vec(vec![0u8; gib]);
        let view = ByteView::new(gib as u32, &[0; 4]).as_u128();
        let array = BinaryViewArray::try_new(vec![view; 3].into(), vec![data], None)
            .expect("three views of one GiB");
        let schema = Arc::new(Schema::new(vec![Field::new(
            "b",
            DataType::BinaryView,
            false,
        )]));
        let b = RecordBatch::try_new(schema.clone(), vec![Arc::new(array)]).expect("batch");
        let err = to_wire(b, &wire_schema(&schema)).expect_err("too big for i32 offsets");
        assert!(
            err.to_string()
                .contains("column 'b' holds 3221225472 bytes"),
            "{err}"
        );
    }

    /// `batch` written as an IPC stream and read back: its columns then slice one body.
    fn through_ipc(batch: &RecordBatch) -> RecordBatch {
        let mut bytes = Vec::new();
        let mut w =
            arrow::ipc::writer::StreamWriter::try_new(&mut bytes, &batch.schema()).expect("writer");
        w.write(batch).expect("write");
        w.finish().expect("finish");
        drop(w);
        let mut r =
            arrow::ipc::reader::StreamReader::try_new(bytes.as_slice(), None).expect("reader");
        r.next().expect("one batch").expect("decoded")
    }

    #[test]
    fn batches_are_cut_by_the_bytes_of_their_rows_not_of_shared_buffers() {
        let rows = 200_000;
        let schema = Arc::new(Schema::new(vec![
            Field::new("n", DataType::Int64, false),
            Field::new("s", DataType::Utf8, false),
        ]));
        let numbers = arrow::array::Int64Array::from_iter_values(0..rows as i64);
        let strings = StringArray::from_iter_values((0..rows).map(|i| format!("{i:010}")));
        let batch = RecordBatch::try_new(schema, vec![Arc::new(numbers), Arc::new(strings)])
            .expect("batch");
        let decoded = through_ipc(&batch);
        // 8 + 4 + 10 bytes a row: 4.4 MB in all, so three pieces of 2 MiB. Measured by
        // buffers, each column would weigh the whole 4.4 MB message body.
        let body: usize = decoded
            .columns()
            .iter()
            .map(|c| c.get_buffer_memory_size())
            .sum();
        assert!(
            body > 8_000_000,
            "both columns slice one body of {body} bytes"
        );
        let pieces = split_for_wire(decoded, MAX_MESSAGE_BYTES);
        let sizes: Vec<usize> = pieces.iter().map(|p| p.num_rows()).collect();
        assert_eq!(sizes, [66_667, 66_667, 66_666]);
        assert_eq!(
            arrow::compute::concat_batches(&batch.schema(), &pieces).expect("concat"),
            batch
        );
    }

    #[test]
    fn small_and_empty_batches_stay_whole() {
        let b = batch();
        assert_eq!(
            split_for_wire(b.clone(), MAX_MESSAGE_BYTES),
            std::slice::from_ref(&b)
        );
        let empty = b.slice(0, 0);
        assert_eq!(split_for_wire(empty.clone(), 1), [empty]);
        // A byte limit below one row's size still sends every row, one a message.
        assert_eq!(split_for_wire(b, 1).len(), 3);
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
