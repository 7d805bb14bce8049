//! `LIKE` patterns of several literal parts between `%`s (TPC-H q13's `'%special%requests%'`,
//! q16's `'%Customer%Complaints%'`): Arrow's kernel has fast paths for one part only and
//! runs the others through a regular expression. Here the first part must start the
//! value, the last must end it, and each part between is found after the one before with
//! a precompiled `memmem` searcher. Patterns with `_` or an escape go to Arrow.

use std::sync::Arc;

use arrow::array::{Array, ArrayAccessor, ArrayRef, AsArray, BooleanArray};
use arrow::buffer::BooleanBuffer;
use arrow::datatypes::DataType;
use memchr::memmem::Finder;

use crate::physical::expr::ColumnarValue;

/// A pattern of literal parts between `%`s.
struct Parts<'p> {
    /// What the value must start with (may be empty).
    first: &'p [u8],
    /// Non-empty parts to find in order between `first` and `last`.
    middle: Vec<Finder<'p>>,
    /// What the value must end with (may be empty).
    last: &'p [u8],
}

impl<'p> Parts<'p> {
    /// The parts of `pattern` when it has at least two non-empty literal parts and no
    /// `_` or `\`; None otherwise (Arrow's kernel handles those).
    fn parse(pattern: &'p str) -> Option<Self> {
        if pattern.contains(['_', '\\']) {
            return None;
        }
        let parts: Vec<&str> = pattern.split('%').collect();
        if parts.iter().filter(|p| !p.is_empty()).count() < 2 {
            return None;
        }
        let (first, rest) = parts.split_first()?;
        let (last, middle) = rest.split_last()?;
        Some(Self {
            first: first.as_bytes(),
            middle: middle
                .iter()
                .filter(|p| !p.is_empty())
                .map(|p| Finder::new(p.as_bytes()))
                .collect(),
            last: last.as_bytes(),
        })
    }

    /// True when `s` matches the pattern.
    #[inline]
    fn matches(&self, s: &[u8]) -> bool {
        if s.len() < self.first.len() + self.last.len()
            || !s.starts_with(self.first)
            || !s.ends_with(self.last)
        {
            return false;
        }
        let mut rest = &s[self.first.len()..s.len() - self.last.len()];
        for f in &self.middle {
            match f.find(rest) {
                Some(at) => rest = &rest[at + f.needle().len()..],
                None => return false,
            }
        }
        true
    }
}

/// `values [NOT] LIKE pattern` for a case-sensitive `pattern` of several literal parts;
/// None when the pattern or the values' type is not one this handles.
pub fn like_parts(values: &ArrayRef, pattern: &str, negated: bool) -> Option<ArrayRef> {
    let parts = Parts::parse(pattern)?;
    let bits = match values.data_type() {
        DataType::Utf8 => eval(values.as_string::<i32>(), &parts),
        DataType::LargeUtf8 => eval(values.as_string::<i64>(), &parts),
        DataType::Utf8View => eval(values.as_string_view(), &parts),
        _ => return None,
    };
    let bits = if negated { !&bits } else { bits };
    Some(Arc::new(BooleanArray::new(bits, values.logical_nulls())))
}

/// [`like_parts`] on evaluated operands: `values` an array, `pattern` a non-NULL scalar,
/// case-sensitive.
pub fn like_parts_value(
    values: &ColumnarValue,
    pattern: &ColumnarValue,
    negated: bool,
    case_insensitive: bool,
) -> Option<ColumnarValue> {
    let (ColumnarValue::Array(values), ColumnarValue::Scalar(pattern)) = (values, pattern) else {
        return None;
    };
    if case_insensitive || pattern.is_null(0) {
        return None;
    }
    let pattern = arrow::compute::cast(pattern, &DataType::Utf8).ok()?;
    let pattern = pattern.as_string::<i32>().value(0);
    like_parts(values, pattern, negated).map(ColumnarValue::Array)
}

fn eval<'a>(a: impl ArrayAccessor<Item = &'a str>, parts: &Parts) -> BooleanBuffer {
    BooleanBuffer::collect_bool(a.len(), |i| parts.matches(a.value(i).as_bytes()))
}

#[cfg(test)]
mod tests {
    use arrow::array::{LargeStringArray, StringArray, StringViewArray};
    use arrow::compute::kernels::comparison;

    use super::*;

    /// Every pattern agrees with Arrow's kernel on values with overlaps, repeats, NULLs,
    /// multi-byte characters and parts at the very ends, in all three string types,
    /// negated or not.
    #[test]
    fn agrees_with_arrow() {
        let values: Vec<Option<&str>> = vec![
            Some("special requests"),
            Some("no special, some requests here"),
            Some("requests special"),
            Some("specialrequests"),
            Some("special"),
            None,
            Some(""),
            Some("abab"),
            Some("aba"),
            Some("ab"),
            Some("a"),
            Some("xaabbx"),
            Some("héllo wörld"),
            Some("Customer Complaints"),
            Some("Customer xx Complaints yy"),
        ];
        let patterns = [
            "%special%requests%",
            "special%requests",
            "%special%requests",
            "special%requests%",
            "%ab%ab%",
            "ab%ab",
            "a%b%a",
            "%a%a%",
            "%a%b%",
            "%é%ö%",
            "h%d",
            "%Customer%Complaints%",
            "%%x%%x%%",
        ];
        let arrays: Vec<ArrayRef> = vec![
            Arc::new(StringArray::from(values.clone())),
            Arc::new(LargeStringArray::from(values.clone())),
            Arc::new(StringViewArray::from(values.clone())),
        ];
        for a in &arrays {
            for p in patterns {
                let one: ArrayRef = Arc::new(StringArray::from(vec![p]));
                let one = arrow::compute::cast(&one, a.data_type()).expect("cast");
                let scalar = arrow::array::Scalar::new(one);
                for negated in [false, true] {
                    let ours = like_parts(a, p, negated).expect("a pattern of parts");
                    let theirs = if negated {
                        comparison::nlike(a, &scalar)
                    } else {
                        comparison::like(a, &scalar)
                    }
                    .expect("arrow like");
                    assert_eq!(
                        ours.as_boolean(),
                        &theirs,
                        "{p} negated={negated} on {}",
                        a.data_type()
                    );
                }
            }
        }
    }

    /// One literal part, `_` or an escape: left to Arrow.
    #[test]
    fn other_patterns_are_declined() {
        let a: ArrayRef = Arc::new(StringArray::from(vec!["x"]));
        for p in ["%x%", "x%", "%x", "x", "%a_b%c%", "%a\\%b%c%", "%%"] {
            assert!(like_parts(&a, p, false).is_none(), "{p}");
        }
        let ints: ArrayRef = Arc::new(arrow::array::Int32Array::from(vec![1]));
        assert!(like_parts(&ints, "%a%b%", false).is_none());
    }
}
