//! Rendering of query results: pretty text tables for people, RFC 4180 CSV and JSON lines
//! for other programs.
//!
//! Values are rendered with Arrow's display machinery ([`ArrayFormatter`] with default
//! [`FormatOptions`]), so dates print as `YYYY-MM-DD`, decimals as plain numbers with
//! their scale (`1.50`) and timestamps in ISO 8601.

use std::io::Write;

use arrow::array::{Array, RecordBatch};
use arrow::datatypes::SchemaRef;
use arrow::json::writer::{LineDelimited, WriterBuilder};
use arrow::util::display::{ArrayFormatter, FormatOptions};
use arrow::util::pretty::pretty_format_batches_with_schema;

use crate::CliError;

/// How query results are written.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum OutputFormat {
    /// A boxed text table with a header row.
    #[default]
    Table,
    /// A header line, then one RFC 4180 record per row; NULL is an empty unquoted field.
    Csv,
    /// One JSON object per row (JSON lines); NULL is `null`.
    Json,
}

/// Writes a result with `schema` and `batches` to `out` in `format`.
///
/// A result without columns (the result of DDL) writes nothing.
pub fn write_result(
    out: &mut dyn Write,
    format: OutputFormat,
    schema: &SchemaRef,
    batches: &[RecordBatch],
) -> Result<(), CliError> {
    if schema.fields().is_empty() {
        return Ok(());
    }
    match format {
        OutputFormat::Table => write_table(out, schema, batches),
        OutputFormat::Csv => write_csv(out, schema, batches, true),
        OutputFormat::Json => write_json(out, batches),
    }
}

/// Writes one batch of a streaming result as it arrives: CSV writes its header only before
/// the first batch; a table is drawn per batch.
pub fn write_streamed(
    out: &mut dyn Write,
    format: OutputFormat,
    schema: &SchemaRef,
    batch: &RecordBatch,
    first: bool,
) -> Result<(), CliError> {
    let batches = std::slice::from_ref(batch);
    match format {
        OutputFormat::Table => write_table(out, schema, batches),
        OutputFormat::Csv => write_csv(out, schema, batches, first),
        OutputFormat::Json => write_json(out, batches),
    }
}

fn write_table(
    out: &mut dyn Write,
    schema: &SchemaRef,
    batches: &[RecordBatch],
) -> Result<(), CliError> {
    let table = pretty_format_batches_with_schema(schema.clone(), batches)?;
    writeln!(out, "{table}")?;
    Ok(())
}

fn write_csv(
    out: &mut dyn Write,
    schema: &SchemaRef,
    batches: &[RecordBatch],
    header: bool,
) -> Result<(), CliError> {
    let mut line = String::new();
    if header {
        for (i, field) in schema.fields().iter().enumerate() {
            if i > 0 {
                line.push(',');
            }
            push_csv_field(&mut line, field.name());
        }
        line.push('\n');
        out.write_all(line.as_bytes())?;
    }

    let options = FormatOptions::default();
    let mut cell = String::new();
    for batch in batches {
        let columns = batch
            .columns()
            .iter()
            .map(|c| {
                Ok((
                    c.logical_nulls(),
                    ArrayFormatter::try_new(c.as_ref(), &options)?,
                ))
            })
            .collect::<Result<Vec<_>, CliError>>()?;
        for row in 0..batch.num_rows() {
            line.clear();
            for (i, (nulls, formatter)) in columns.iter().enumerate() {
                if i > 0 {
                    line.push(',');
                }
                if nulls.as_ref().is_some_and(|n| n.is_null(row)) {
                    continue;
                }
                cell.clear();
                formatter.value(row).write(&mut cell)?;
                push_csv_field(&mut line, &cell);
            }
            line.push('\n');
            out.write_all(line.as_bytes())?;
        }
    }
    Ok(())
}

/// Appends `value` to `line` as one CSV field: quoted when it contains a comma, a quote,
/// CR or LF (embedded quotes doubled), and also when empty, so that an empty string stays
/// distinguishable from NULL (an empty unquoted field).
fn push_csv_field(line: &mut String, value: &str) {
    if value.is_empty() {
        line.push_str("\"\"");
    } else if value.contains([',', '"', '\r', '\n']) {
        line.push('"');
        line.push_str(&value.replace('"', "\"\""));
        line.push('"');
    } else {
        line.push_str(value);
    }
}

fn write_json(out: &mut dyn Write, batches: &[RecordBatch]) -> Result<(), CliError> {
    let mut writer = WriterBuilder::new()
        .with_explicit_nulls(true)
        .build::<_, LineDelimited>(out);
    for batch in batches {
        writer.write(batch)?;
    }
    writer.finish()?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use arrow::array::{ArrayRef, Int64Array, StringArray};

    use super::*;

    fn render(format: OutputFormat, batch: &RecordBatch) -> String {
        let mut out = Vec::new();
        write_result(
            &mut out,
            format,
            &batch.schema(),
            std::slice::from_ref(batch),
        )
        .expect("rendering succeeds");
        String::from_utf8(out).expect("output is UTF-8")
    }

    fn sample() -> RecordBatch {
        RecordBatch::try_from_iter(vec![
            (
                "n",
                Arc::new(Int64Array::from(vec![Some(1), None, Some(3)])) as ArrayRef,
            ),
            (
                "s",
                Arc::new(StringArray::from(vec![
                    Some("say \"hi\""),
                    Some(""),
                    Some("a\nb"),
                ])) as ArrayRef,
            ),
        ])
        .expect("valid batch")
    }

    #[test]
    fn csv_quotes_and_nulls() {
        assert_eq!(
            render(OutputFormat::Csv, &sample()),
            "n,s\n1,\"say \"\"hi\"\"\"\n,\"\"\n3,\"a\nb\"\n"
        );
    }

    #[test]
    fn json_lines_with_explicit_nulls() {
        assert_eq!(
            render(OutputFormat::Json, &sample()),
            "{\"n\":1,\"s\":\"say \\\"hi\\\"\"}\n{\"n\":null,\"s\":\"\"}\n{\"n\":3,\"s\":\"a\\nb\"}\n"
        );
    }

    #[test]
    fn table_has_header_even_without_rows() {
        let batch = sample();
        let mut out = Vec::new();
        write_result(&mut out, OutputFormat::Table, &batch.schema(), &[]).expect("renders");
        let text = String::from_utf8(out).expect("UTF-8");
        assert!(text.contains("| n | s |"), "{text}");
    }

    #[test]
    fn no_columns_writes_nothing() {
        let schema = Arc::new(arrow::datatypes::Schema::empty());
        for format in [OutputFormat::Table, OutputFormat::Csv, OutputFormat::Json] {
            let mut out = Vec::new();
            write_result(&mut out, format, &schema, &[]).expect("renders");
            assert!(out.is_empty());
        }
    }
}
