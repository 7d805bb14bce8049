//! Flink's `TO_TIMESTAMP(string, format)`: the format is a Java `SimpleDateFormat`
//! pattern (`yyyy-MM-dd HH:mm:ss.SSS`, `dd/MM/yyyy`, `'T'` for literal text), translated
//! to a chrono format once per call and applied to every string.

use std::sync::Arc;

use arrow::array::{Array, ArrayRef, AsArray, TimestampMicrosecondArray};
use arrow::datatypes::DataType;
use chrono::{NaiveDate, NaiveDateTime};

use crate::error::{Result, SluiceError};

/// The chrono format of a Java date pattern, and whether it has a time of day.
pub fn chrono_format(java: &str) -> Result<(String, bool)> {
    let bad = |what: String| {
        SluiceError::Type(format!(
            "TO_TIMESTAMP format '{java}': {what} (supported: yyyy, yy, MM, dd, HH, hh, mm, \
             ss, SSS, a, and 'quoted text')"
        ))
    };
    let chars: Vec<char> = java.chars().collect();
    let mut out = String::new();
    let mut has_time = false;
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        let run = chars[i..].iter().take_while(|&&x| x == c).count();
        if c == '\'' {
            // Quoted literal text; '' is a quote.
            let end = chars[i + 1..].iter().position(|&x| x == '\'');
            let Some(end) = end else {
                return Err(bad("an unclosed quote".into()));
            };
            let text: String = chars[i + 1..i + 1 + end].iter().collect();
            out.push_str(&if text.is_empty() {
                "'".into()
            } else {
                text.replace('%', "%%")
            });
            i += end + 2;
            continue;
        }
        if !c.is_ascii_alphabetic() {
            if c == '%' {
                out.push_str("%%");
            } else {
                out.push(c);
            }
            i += 1;
            continue;
        }
        let spec = match (c, run) {
            ('y', 4) => "%Y",
            ('y', 2) => "%y",
            ('M', 2) => "%m",
            ('d', 2) => "%d",
            ('H', 2) => "%H",
            ('h', 2) => "%I",
            ('m', 2) => "%M",
            ('s', 2) => "%S",
            ('S', 3) => "%3f",
            ('a', 1) => "%p",
            _ => {
                return Err(bad(format!(
                    "'{}' is not supported",
                    std::iter::repeat_n(c, run).collect::<String>()
                )))
            }
        };
        has_time |= matches!(c, 'H' | 'h' | 'm' | 's' | 'S');
        out.push_str(spec);
        i += run;
    }
    Ok((out, has_time))
}

/// Parses every string of `strings` with the Java pattern `java` into a TIMESTAMP
/// (microseconds); NULL stays NULL, a string that does not fit is an error naming it.
pub fn parse_with(strings: &ArrayRef, java: &str) -> Result<ArrayRef> {
    let (fmt, has_time) = chrono_format(java)?;
    let s = arrow::compute::cast(strings, &DataType::Utf8)?;
    let s = s.as_string::<i32>();
    let parse = |v: &str| -> Option<NaiveDateTime> {
        if has_time {
            NaiveDateTime::parse_from_str(v, &fmt).ok()
        } else {
            NaiveDate::parse_from_str(v, &fmt)
                .ok()
                .and_then(|d| d.and_hms_opt(0, 0, 0))
        }
    };
    let values = (0..s.len())
        .map(|i| {
            if s.is_null(i) {
                return Ok(None);
            }
            let v = s.value(i);
            parse(v)
                .map(|t| Some(t.and_utc().timestamp_micros()))
                .ok_or_else(|| {
                    SluiceError::Type(format!(
                        "TO_TIMESTAMP: '{v}' does not match the format '{java}'"
                    ))
                })
        })
        .collect::<Result<Vec<_>>>()?;
    Ok(Arc::new(TimestampMicrosecondArray::from(values)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow::array::StringArray;

    #[test]
    fn java_patterns_translate_and_parse() {
        assert_eq!(
            chrono_format("yyyy-MM-dd'T'HH:mm:ss.SSS").expect("fmt"),
            ("%Y-%m-%dT%H:%M:%S.%3f".to_string(), true)
        );
        assert_eq!(
            chrono_format("dd/MM/yyyy").expect("fmt"),
            ("%d/%m/%Y".to_string(), false)
        );
        assert!(chrono_format("yyyy-MMM-dd").is_err());
        assert!(chrono_format("yyyy 'open").is_err());
        let s: ArrayRef = Arc::new(StringArray::from(vec![Some("21/11/2026"), None]));
        let t = parse_with(&s, "dd/MM/yyyy").expect("parse");
        let t = t
            .as_any()
            .downcast_ref::<TimestampMicrosecondArray>()
            .expect("ts");
        assert_eq!(t.value(0), 1_795_219_200_000_000);
        assert!(t.is_null(1));
        let bad: ArrayRef = Arc::new(StringArray::from(vec!["2026-11-21"]));
        let e = parse_with(&bad, "dd/MM/yyyy").expect_err("mismatch");
        assert!(e.to_string().contains("'2026-11-21'"), "{e}");
    }
}
