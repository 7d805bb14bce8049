//! The `WITH (...)` options of the `filesystem` connector: parsing and validation into
//! [`FileSystemOptions`] (path, [`Format`], monitoring interval, rolling policy), and how
//! the options read in EXPLAIN.
//!
//! Option names follow Apache Flink's filesystem connector (`path`, `format`,
//! `source.monitor-interval`, `sink.rolling-policy.*`); options Flink's connector has and
//! Sluice's does not are refused as such. Durations are read by the parser
//! `table.exec.state.ttl` uses (in `crate::config`), and must be positive here; sizes take
//! Flink's memory units. The table itself is in [`super::filesystem`], user docs in
//! `docs/connectors.md`.

use std::path::PathBuf;
use std::time::Duration;

use crate::config::parse_duration;
use crate::error::{did_you_mean, nearest, Result, SluiceError};

/// Options of the filesystem connector.
const OPTIONS: [&str; 6] = [
    "connector",
    "path",
    "format",
    "source.monitor-interval",
    "sink.rolling-policy.file-size",
    "sink.rolling-policy.rollover-interval",
];

/// Default `sink.rolling-policy.file-size`: 128 MiB (Flink's).
const DEFAULT_FILE_SIZE: u64 = 128 << 20;

/// Default `sink.rolling-policy.rollover-interval`: 30 minutes (Flink's).
const DEFAULT_ROLLOVER_INTERVAL: Duration = Duration::from_secs(30 * 60);

/// The file format of a filesystem table (option `format`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// Apache Parquet.
    Parquet,
    /// CSV with a header line.
    Csv,
}

impl Format {
    /// The file extension (without the dot), also the option value.
    pub fn ext(self) -> &'static str {
        match self {
            Format::Parquet => "parquet",
            Format::Csv => "csv",
        }
    }
}

/// The validated options of a filesystem table.
#[derive(Debug, Clone, PartialEq)]
pub struct FileSystemOptions {
    /// A file or a directory.
    pub path: PathBuf,
    /// The files' format.
    pub format: Format,
    /// How often an unbounded scan lists the directory again; `None` = bounded.
    pub monitor_interval: Option<Duration>,
    /// A sink rolls to a new part file once the open one has this many bytes.
    pub file_size: u64,
    /// A sink rolls to a new part file once the open one is this old (checked per batch).
    pub rollover_interval: Duration,
}

/// Options of Flink's filesystem connector (and its formats) Sluice does not support.
const FLINK_ONLY: [&str; 9] = [
    "sink.rolling-policy.check-interval",
    "sink.rolling-policy.inactivity-interval",
    "sink.parallelism",
    "sink.shuffle-by-partition.enable",
    "source.path.regex-pattern",
    "source.report-statistics",
    "auto-compaction",
    "compaction.file-size",
    "partition.default-name",
];

/// The error for option `key` of table `table`, which is not one of [`OPTIONS`]: says so
/// for an option only Flink has, else suggests the nearest known option.
fn unknown_option(table: &str, key: &str) -> SluiceError {
    let flink_prefixes = ["sink.partition-commit.", "partition.", "csv.", "parquet."];
    let hint = if FLINK_ONLY.contains(&key) || flink_prefixes.iter().any(|p| key.starts_with(p)) {
        "; Flink's filesystem connector has it, Sluice's does not support it".to_string()
    } else {
        did_you_mean(&nearest(key, OPTIONS, 1))
    };
    SluiceError::plan(format!(
        "unknown filesystem option '{key}' for table '{table}' (options: {}){hint}",
        OPTIONS.join(", ")
    ))
}

/// Parses the value `v` of duration option `key`: a positive duration as Flink writes them
/// (see `crate::config::parse_duration`: a number and a unit such as `ms`, `s`, `min` or
/// `m`, `h`, `d`, milliseconds without one): `'500 ms'`, `'2 s'`, `'1 min'`.
fn parse_positive_duration(key: &str, v: &str) -> Result<Duration> {
    parse_duration(v).filter(|d| !d.is_zero()).ok_or_else(|| {
        SluiceError::plan(format!(
            "filesystem option '{key}' must be a positive duration such as '500 ms', '2 s', \
             '1 min' or '1 h', got '{v}'"
        ))
    })
}

/// Parses a positive memory size as Flink writes them: a number and an optional unit
/// (`b`, `kb`/`k`, `mb`/`m`, `gb`/`g`, `tb`/`t`, case-insensitive, powers of 1024):
/// `'128MB'`, `'64 kb'`, `'1048576'`.
fn parse_memory_size(key: &str, v: &str) -> Result<u64> {
    let bad = || {
        SluiceError::plan(format!(
            "filesystem option '{key}' must be a positive size such as '128MB', '64 kb', \
             '1 gb' or a number of bytes, got '{v}'"
        ))
    };
    let t = v.trim();
    let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let n: u64 = t[..split].parse().map_err(|_| bad())?;
    let shift = match t[split..].trim().to_ascii_lowercase().as_str() {
        "" | "b" | "bytes" => 0,
        "k" | "kb" | "kib" | "kibibytes" => 10,
        "m" | "mb" | "mib" | "mebibytes" => 20,
        "g" | "gb" | "gib" | "gibibytes" => 30,
        "t" | "tb" | "tib" | "tebibytes" => 40,
        _ => return Err(bad()),
    };
    match n.checked_mul(1u64 << shift) {
        Some(total) if total > 0 => Ok(total),
        _ => Err(bad()),
    }
}

/// `500 ms`, `2 s`, `1 min`: a duration as the options take it.
pub(crate) fn format_duration(d: Duration) -> String {
    let ms = d.as_millis();
    let (in_min, in_s) = (ms % 60_000, ms % 1_000);
    if in_min == 0 {
        format!("{} min", ms / 60_000)
    } else if in_s == 0 {
        format!("{} s", ms / 1_000)
    } else {
        format!("{ms} ms")
    }
}

/// Parses and validates the `WITH` options of filesystem table `table` (the `connector`
/// key itself is allowed; the last of repeated keys wins).
pub(crate) fn parse_options(
    table: &str,
    options: &[(String, String)],
) -> Result<FileSystemOptions> {
    if let Some((k, _)) = options.iter().find(|(k, _)| !OPTIONS.contains(&k.as_str())) {
        return Err(unknown_option(table, k));
    }
    let get = |k: &str| {
        options
            .iter()
            .rev()
            .find(|(n, _)| n == k)
            .map(|(_, v)| v.as_str())
    };
    let path = match get("path").map(str::trim) {
        Some(p) if !p.is_empty() => PathBuf::from(p.strip_prefix("file://").unwrap_or(p)),
        _ => {
            return Err(SluiceError::plan(format!(
                "filesystem table '{table}' needs option 'path' (a file or a directory)"
            )))
        }
    };
    let format = match get("format").map(|f| f.trim().to_ascii_lowercase()) {
        Some(f) if f == "parquet" => Format::Parquet,
        Some(f) if f == "csv" => Format::Csv,
        Some(f) => {
            return Err(SluiceError::plan(format!(
                "filesystem option 'format' must be 'parquet' or 'csv', got '{f}'"
            )))
        }
        None => {
            return Err(SluiceError::plan(format!(
                "filesystem table '{table}' needs option 'format' ('parquet' or 'csv')"
            )))
        }
    };
    let monitor_interval = get("source.monitor-interval")
        .map(|v| parse_positive_duration("source.monitor-interval", v))
        .transpose()?;
    let file_size = get("sink.rolling-policy.file-size")
        .map(|v| parse_memory_size("sink.rolling-policy.file-size", v))
        .transpose()?
        .unwrap_or(DEFAULT_FILE_SIZE);
    let rollover_interval = get("sink.rolling-policy.rollover-interval")
        .map(|v| parse_positive_duration("sink.rolling-policy.rollover-interval", v))
        .transpose()?
        .unwrap_or(DEFAULT_ROLLOVER_INTERVAL);
    Ok(FileSystemOptions {
        path,
        format,
        monitor_interval,
        file_size,
        rollover_interval,
    })
}

/// `filesystem(path=..., format=...[, monitor-interval=...])`: the options as a table's
/// EXPLAIN description shows them.
pub(crate) fn describe_options(o: &FileSystemOptions) -> String {
    let mut s = format!(
        "filesystem(path={}, format={}",
        o.path.display(),
        o.format.ext()
    );
    if let Some(i) = o.monitor_interval {
        s.push_str(&format!(", monitor-interval={}", format_duration(i)));
    }
    s.push(')');
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    fn opts(kv: &[(&str, &str)]) -> Vec<(String, String)> {
        kv.iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn durations_and_sizes_take_flink_units() {
        let d = |v| parse_positive_duration("k", v).map(|d| d.as_millis());
        assert_eq!(d("500 ms").expect("ms"), 500);
        assert_eq!(d("2 s").expect("s"), 2_000);
        assert_eq!(d("1 min").expect("min"), 60_000);
        assert_eq!(d("1m").expect("m"), 60_000);
        assert_eq!(d("3 h").expect("h"), 10_800_000);
        assert_eq!(d("250").expect("bare"), 250);
        for bad in ["0", "0 s", "-1 s", "1.5 s", "soon", "", "5 weeks"] {
            let e = d(bad).expect_err(bad).to_string();
            assert!(
                e.contains("'k'") && e.contains(&format!("got '{bad}'")),
                "{e}"
            );
        }
        let m = |v| parse_memory_size("k", v);
        assert_eq!(m("128MB").expect("mb"), 128 << 20);
        assert_eq!(m("64 kb").expect("kb"), 64 << 10);
        assert_eq!(m("1g").expect("g"), 1 << 30);
        assert_eq!(m("1000").expect("bytes"), 1000);
        for bad in ["0", "1.5mb", "12 parsecs", "", "99999999999999 tb"] {
            assert!(m(bad).is_err(), "{bad}");
        }
        assert_eq!(format_duration(Duration::from_millis(1500)), "1500 ms");
        assert_eq!(format_duration(Duration::from_secs(2)), "2 s");
        assert_eq!(format_duration(Duration::from_secs(1800)), "30 min");
    }

    #[test]
    fn options_default_and_validate() {
        let o = parse_options(
            "t",
            &opts(&[
                ("connector", "filesystem"),
                ("path", "file:///data/x"),
                ("format", "PARQUET"),
            ]),
        )
        .expect("ok");
        assert_eq!(o.path, PathBuf::from("/data/x"));
        assert_eq!(o.format, Format::Parquet);
        assert_eq!(o.monitor_interval, None);
        assert_eq!(o.file_size, DEFAULT_FILE_SIZE);
        assert_eq!(o.rollover_interval, DEFAULT_ROLLOVER_INTERVAL);
        assert_eq!(
            describe_options(&o),
            "filesystem(path=/data/x, format=parquet)"
        );
        let o = parse_options(
            "t",
            &opts(&[
                ("path", "/x"),
                ("format", "csv"),
                ("source.monitor-interval", "2 S"),
                ("sink.rolling-policy.rollover-interval", "10min"),
            ]),
        )
        .expect("intervals");
        assert_eq!(o.monitor_interval, Some(Duration::from_secs(2)));
        assert_eq!(o.rollover_interval, Duration::from_secs(600));
        assert_eq!(
            describe_options(&o),
            "filesystem(path=/x, format=csv, monitor-interval=2 s)"
        );
        let e = parse_options(
            "t",
            &opts(&[("path", "/x"), ("format", "csv"), ("pth", "/y")]),
        )
        .expect_err("typo");
        assert!(e.to_string().contains("did you mean path"), "{e}");
        let e = parse_options(
            "t",
            &opts(&[
                ("path", "/x"),
                ("format", "csv"),
                ("sink.rolling-policy.check-interval", "1 min"),
            ]),
        )
        .expect_err("flink only");
        assert!(e.to_string().contains("does not support"), "{e}");
        let e = parse_options(
            "t",
            &opts(&[
                ("path", "/x"),
                ("format", "csv"),
                ("source.monitor-interval", "0 s"),
            ]),
        )
        .expect_err("zero interval");
        assert!(
            e.to_string()
                .contains("'source.monitor-interval' must be a positive duration"),
            "{e}"
        );
    }
}
