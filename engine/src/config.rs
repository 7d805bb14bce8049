//! Typed session settings, passed down to planners and operators (nothing reads
//! environment variables deep inside).

use std::path::PathBuf;

/// How exchanges between partitions hold their data.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ExchangeMode {
    /// In memory; consumers read while producers write, bounded buffers give back-pressure.
    #[default]
    Pipelined,
    /// Producers write Arrow IPC files to `spill_dir`; consumers start once all producers
    /// finished and read the files back through mmap (re-readable, bounded memory).
    Blocking,
}

/// How a query runs (Flink's `execution.runtime-mode`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum RuntimeMode {
    /// Batch when every source is bounded, streaming otherwise.
    #[default]
    Automatic,
    /// Always batch (an unbounded source is an error).
    Batch,
    /// Always streaming, bounded sources included: results as event time advances.
    Streaming,
}

impl std::str::FromStr for RuntimeMode {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s.to_ascii_lowercase().as_str() {
            "automatic" => Ok(RuntimeMode::Automatic),
            "batch" => Ok(RuntimeMode::Batch),
            "streaming" => Ok(RuntimeMode::Streaming),
            other => Err(format!(
                "unknown execution.runtime-mode '{other}' (expected 'streaming', 'batch' or 'automatic')"
            )),
        }
    }
}

/// Settings of a [`crate::Session`].
#[derive(Debug, Clone)]
pub struct SessionConfig {
    /// Partitions (threads) a query runs with; defaults to the number of cores.
    pub target_partitions: usize,
    /// Rows per batch produced by scans; defaults to 16 384 (TPC-H at SF 10 ran 8–10%
    /// faster than with 8 192: fewer per-batch steps, and a batch's columns still fit
    /// the core's cache).
    pub batch_size: usize,
    /// Batches an in-memory exchange partition buffers before the producer waits.
    pub exchange_capacity: usize,
    /// Directory for blocking exchanges and spill files.
    pub spill_dir: PathBuf,
    /// How exchanges hold data.
    pub exchange_mode: ExchangeMode,
    /// Most bytes a query's buffering operators may reserve (`None` = no limit).
    pub memory_limit: Option<usize>,
    /// Batch, streaming, or chosen from the sources.
    pub runtime_mode: RuntimeMode,
    /// How long a streaming join keeps a key's rows after that key's last row arrived
    /// (`SET 'table.exec.state.ttl'`, wall-clock time); `None` keeps them forever.
    pub state_ttl: Option<std::time::Duration>,
    /// How long a source partition may go without data before it is marked idle, so the
    /// watermark advances without it (`SET 'table.exec.source.idle-timeout'`); `None`:
    /// never (a quiet partition holds event time back).
    pub idle_timeout: Option<std::time::Duration>,
    /// How long after a window fired its late rows still update it
    /// (`SET 'table.exec.emit.allow-lateness'`): windowed aggregates then emit a changelog
    /// (`+I` when a window fires, `-U`/`+U` per late revision); `None`: late rows are
    /// dropped and the output is append-only.
    pub allowed_lateness: Option<std::time::Duration>,
    /// Set by [`crate::Session::submit`] and [`crate::Session::set_cancel_flag`]: once it
    /// is `true`, the query's sources stop (with [`crate::SluiceError::Cancelled`]) and
    /// its result ends.
    pub cancel: Option<std::sync::Arc<std::sync::atomic::AtomicBool>>,
    /// Set by [`crate::Session::submit`]: where the query publishes its physical plan when
    /// it starts, so [`crate::Job::metrics`] can show the plan's metrics while it runs.
    pub running_plan: Option<std::sync::Arc<crate::session::RunningPlan>>,
}

impl SessionConfig {
    /// Applies `SET 'key' = 'value'`: `execution.runtime-mode` (`streaming`, `batch`,
    /// `automatic`), `table.exec.state.ttl`, `table.exec.source.idle-timeout` or
    /// `table.exec.emit.allow-lateness` (a duration such as `'1 h'`, `'30 s'`, `'500 ms'`,
    /// a plain number of milliseconds; `0` = never / none).
    pub fn set(&mut self, key: &str, value: &str) -> Result<(), String> {
        match key {
            "execution.runtime-mode" => self.runtime_mode = value.parse()?,
            "table.exec.state.ttl"
            | "table.exec.source.idle-timeout"
            | "table.exec.emit.allow-lateness" => {
                let d = parse_duration(value).ok_or_else(|| {
                    format!(
                        "SET '{key}': '{value}' is not a duration (e.g. '1 h', '30 s', '500 ms')"
                    )
                })?;
                let d = (!d.is_zero()).then_some(d);
                match key {
                    "table.exec.state.ttl" => self.state_ttl = d,
                    "table.exec.source.idle-timeout" => self.idle_timeout = d,
                    _ => self.allowed_lateness = d,
                }
            }
            other => {
                return Err(format!(
                    "unknown setting '{other}' (settable: 'execution.runtime-mode', \
                     'table.exec.state.ttl', 'table.exec.source.idle-timeout', \
                     'table.exec.emit.allow-lateness')"
                ))
            }
        }
        Ok(())
    }
}

/// Parses a duration as Flink writes them: a number of milliseconds, or a number and a
/// unit — `ms` (`milli`, `millis`, `millisecond`, `milliseconds`), `s` (`sec`, `secs`,
/// `second`, `seconds`), `min` or `m` (`mins`, `minute`, `minutes`), `h` (`hour`, `hours`)
/// or `d` (`day`, `days`) — case-insensitive, with optional whitespace around and between
/// them: `'500 ms'`, `'30s'`, `'1 MIN'`, `'250'`. `None` for anything else, a sign or a
/// fraction included, and for more milliseconds than a `u64` holds. Zero is a duration; a
/// caller that needs a positive one checks.
pub(crate) fn parse_duration(s: &str) -> Option<std::time::Duration> {
    let s = s.trim();
    let split = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    let n: u64 = s[..split].parse().ok()?;
    let ms = match s[split..].trim().to_ascii_lowercase().as_str() {
        "" | "ms" | "milli" | "millis" | "millisecond" | "milliseconds" => 1,
        "s" | "sec" | "secs" | "second" | "seconds" => 1_000,
        "m" | "min" | "mins" | "minute" | "minutes" => 60_000,
        "h" | "hour" | "hours" => 3_600_000,
        "d" | "day" | "days" => 86_400_000,
        _ => return None,
    };
    Some(std::time::Duration::from_millis(n.checked_mul(ms)?))
}

impl Default for SessionConfig {
    fn default() -> Self {
        Self {
            target_partitions: std::thread::available_parallelism().map_or(2, |n| n.get()),
            batch_size: 16384,
            exchange_capacity: 16,
            spill_dir: std::env::temp_dir(),
            exchange_mode: ExchangeMode::Pipelined,
            memory_limit: None,
            runtime_mode: RuntimeMode::Automatic,
            state_ttl: None,
            idle_timeout: None,
            allowed_lateness: None,
            cancel: None,
            running_plan: None,
        }
    }
}

impl SessionConfig {
    /// With exchanges of `mode`.
    pub fn with_exchange_mode(mut self, mode: ExchangeMode) -> Self {
        self.exchange_mode = mode;
        self
    }

    /// With a memory limit in bytes for buffering operators.
    pub fn with_memory_limit(mut self, bytes: usize) -> Self {
        self.memory_limit = Some(bytes);
        self
    }

    /// With `n` partitions (at least 1).
    pub fn with_target_partitions(mut self, n: usize) -> Self {
        self.target_partitions = n.max(1);
        self
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn durations_take_flink_units() {
        fn ms(v: &str) -> Option<u128> {
            parse_duration(v).map(|d| d.as_millis())
        }
        let units: [(&[&str], u128); 5] = [
            (&["ms", "milli", "millis", "millisecond", "milliseconds"], 1),
            (&["s", "sec", "secs", "second", "seconds"], 1_000),
            (&["m", "min", "mins", "minute", "minutes"], 60_000),
            (&["h", "hour", "hours"], 3_600_000),
            (&["d", "day", "days"], 86_400_000),
        ];
        for (names, factor) in units {
            for unit in names {
                assert_eq!(ms(&format!("3{unit}")), Some(3 * factor), "{unit}");
                assert_eq!(ms(&format!("3 {unit}")), Some(3 * factor), "{unit}");
                let upper = unit.to_ascii_uppercase();
                assert_eq!(ms(&format!("3 {upper}")), Some(3 * factor), "{upper}");
            }
        }
        assert_eq!(ms("1 Min"), Some(60_000));
        assert_eq!(ms(" \t2 \t s \n"), Some(2_000));
        assert_eq!(ms("250"), Some(250));
        assert_eq!(ms(" 250 "), Some(250));
        assert_eq!(ms("0"), Some(0));
        assert_eq!(ms("0 s"), Some(0));
        let max_days = u64::MAX / 86_400_000;
        assert_eq!(
            parse_duration(&format!("{max_days} d")),
            Some(Duration::from_millis(max_days * 86_400_000))
        );
        for bad in [
            "",
            "   ",
            "s",
            "-1",
            "-1 s",
            "+1 s",
            "1.5 s",
            "1,5 s",
            "soon",
            "5 weeks",
            "5 fortnights",
            "1 s 2",
            "1 2 s",
            "18446744073709551616",
            "18446744073709551615 s",
            &format!("{} d", max_days + 1),
        ] {
            assert_eq!(parse_duration(bad), None, "{bad:?}");
        }
    }
}
