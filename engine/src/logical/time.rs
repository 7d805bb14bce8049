//! Event time in logical plans: the watermark of a table with a `WATERMARK` clause and the
//! window table functions (`TUMBLE`, `HOP`, `CUMULATE`, `SESSION`, and count windows in
//! the DataFrame API) that assign rows to windows.

use std::fmt;
use std::sync::Arc;

use arrow::array::AsArray;
use arrow::datatypes::{DataType, Field, IntervalMonthDayNanoType};

use super::expr::Scalar;
use super::plan::LogicalPlan;
use super::schema::{PlanSchema, QField};
use crate::error::{Result, SluiceError};

/// The columns a window table function appends.
pub const WINDOW_COLUMNS: [&str; 3] = ["window_start", "window_end", "window_time"];

/// How a window table function assigns a row (its time `t`) to windows. Sizes in microseconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WindowKind {
    /// `TUMBLE(size)`: the one window `[k·size, (k+1)·size)` holding `t`.
    Tumble {
        /// Window length.
        size: i64,
    },
    /// `HOP(slide, size)`: every window `[k·slide, k·slide + size)` holding `t`.
    Hop {
        /// Distance between window starts.
        slide: i64,
        /// Window length (a multiple of `slide`).
        size: i64,
    },
    /// `CUMULATE(step, size)`: windows `[k·size, k·size + j·step)`, j = 1..size/step, that
    /// hold `t`.
    Cumulate {
        /// Growth of each window over the previous one.
        step: i64,
        /// Longest window (a multiple of `step`).
        size: i64,
    },
    /// `SESSION(gap)`: rows (of one partition key) no more than `gap` apart share a
    /// window, from its first row's time to its last row's time plus `gap` (Flink's rule:
    /// a row exactly `gap` after the last joins the session). Not assigned row by row:
    /// `HeldWindowExec` groups the rows.
    Session {
        /// Inactivity that ends a session.
        gap: i64,
    },
    /// Count windows (DataFrame API only): each key's rows in event-time order, `size`
    /// rows to a window, a new window every `slide` rows. Not assigned row by row:
    /// `HeldWindowExec` groups the rows.
    Count {
        /// Rows in a window.
        size: i64,
        /// Rows between window starts (at most `size`).
        slide: i64,
    },
}

impl WindowKind {
    /// Checks sizes: positive, and sizes a multiple of the slide or step.
    pub fn validate(self) -> Result<Self> {
        let (unit, size, name) = match self {
            WindowKind::Tumble { size } => (size, size, "TUMBLE"),
            WindowKind::Hop { slide, size } => (slide, size, "HOP"),
            WindowKind::Cumulate { step, size } => (step, size, "CUMULATE"),
            WindowKind::Session { gap } => (gap, gap, "SESSION"),
            WindowKind::Count { size, slide } => {
                if slide <= 0 || size <= 0 || slide > size {
                    return Err(SluiceError::plan(format!(
                        "{self}: a count window needs 0 < slide <= size"
                    )));
                }
                return Ok(self);
            }
        };
        if unit <= 0 || size <= 0 {
            return Err(SluiceError::plan(format!(
                "{name}: window sizes must be positive intervals"
            )));
        }
        if size % unit != 0 {
            return Err(SluiceError::plan(format!(
                "{name}: the window size must be a whole multiple of the {}",
                if matches!(self, WindowKind::Hop { .. }) {
                    "slide"
                } else {
                    "step"
                }
            )));
        }
        Ok(self)
    }

    /// Calls `f(start, end)` for every window of a row at time `t` (for a session, the
    /// row's own window `[t, t + gap)`, before sessions merge; none for a count window,
    /// whose rows are placed by their order).
    pub fn assign(self, t: i64, mut f: impl FnMut(i64, i64)) {
        match self {
            WindowKind::Tumble { size } => {
                let start = t - t.rem_euclid(size);
                f(start, start + size);
            }
            WindowKind::Hop { slide, size } => {
                let last = t - t.rem_euclid(slide);
                let mut start = last - size + slide;
                while start <= last {
                    f(start, start + size);
                    start += slide;
                }
            }
            WindowKind::Cumulate { step, size } => {
                let start = t - t.rem_euclid(size);
                let first_end = t - t.rem_euclid(step) + step;
                let mut end = first_end;
                while end <= start + size {
                    f(start, end);
                    end += step;
                }
            }
            WindowKind::Session { gap } => f(t, t + gap),
            WindowKind::Count { .. } => {}
        }
    }
}

impl WindowKind {
    /// True for windows whose rows are held until they close (SESSION and count
    /// windows), rather than assigned row by row.
    pub fn is_held(self) -> bool {
        matches!(self, WindowKind::Session { .. } | WindowKind::Count { .. })
    }
}

impl fmt::Display for WindowKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let s = |us: i64| format!("{}ms", us / 1000);
        match self {
            WindowKind::Tumble { size } => write!(f, "TUMBLE(size={})", s(*size)),
            WindowKind::Hop { slide, size } => {
                write!(f, "HOP(slide={}, size={})", s(*slide), s(*size))
            }
            WindowKind::Cumulate { step, size } => {
                write!(f, "CUMULATE(step={}, size={})", s(*step), s(*size))
            }
            WindowKind::Session { gap } => write!(f, "SESSION(gap={})", s(*gap)),
            WindowKind::Count { size, slide } if size == slide => {
                write!(f, "COUNT(size={size} rows)")
            }
            WindowKind::Count { size, slide } => {
                write!(f, "COUNT(size={size} rows, slide={slide} rows)")
            }
        }
    }
}

/// The event-time column's index in `input`, checked to be a timestamp.
fn time_column(input: &LogicalPlan, column: &str, what: &str) -> Result<usize> {
    let schema = input.schema();
    let (i, f) = schema
        .fields()
        .iter()
        .enumerate()
        .find(|(_, f)| f.field.name() == column)
        .ok_or_else(|| SluiceError::plan(format!("{what}: no column '{column}'")))?;
    if !matches!(f.field.data_type(), DataType::Timestamp(..)) {
        return Err(SluiceError::plan(format!(
            "{what}: column '{column}' is {}, not a TIMESTAMP",
            f.field.data_type()
        )));
    }
    Ok(i)
}

impl LogicalPlan {
    /// Event time on `column` with watermarks `delay_micros` behind the largest time seen.
    pub fn watermark(input: Arc<LogicalPlan>, column: &str, delay_micros: i64) -> Result<Self> {
        let column = time_column(&input, column, "WATERMARK")?;
        Ok(LogicalPlan::Watermark {
            input,
            column,
            delay_micros,
        })
    }

    /// The window table function `kind` over `input`, windows by `column`; a SESSION's
    /// sessions are kept apart per value of the `partition_by` columns.
    pub fn window_tvf(
        input: Arc<LogicalPlan>,
        kind: WindowKind,
        column: &str,
        partition_by: &[String],
    ) -> Result<Self> {
        let time_column = time_column(&input, column, &kind.to_string())?;
        if !partition_by.is_empty() && !kind.is_held() {
            return Err(SluiceError::plan(format!(
                "{kind}: PARTITION BY is for SESSION and count windows only"
            )));
        }
        let partition_by = partition_by
            .iter()
            .map(|c| {
                input
                    .schema()
                    .fields()
                    .iter()
                    .position(|f| f.field.name() == c)
                    .ok_or_else(|| {
                        SluiceError::plan(format!("{kind}: PARTITION BY: no column '{c}'"))
                    })
            })
            .collect::<Result<Vec<_>>>()?;
        let ts = input.schema().fields()[time_column]
            .field
            .data_type()
            .clone();
        let mut fields = input.schema().fields().to_vec();
        for name in WINDOW_COLUMNS {
            if fields.iter().any(|f| f.field.name() == name) {
                return Err(SluiceError::plan(format!(
                    "{kind}: the input already has a column '{name}'"
                )));
            }
            fields.push(QField {
                qualifier: None,
                field: Arc::new(Field::new(name, ts.clone(), false)),
            });
        }
        Ok(LogicalPlan::WindowTvf {
            input,
            kind: kind.validate()?,
            time_column,
            partition_by,
            schema: PlanSchema::new(fields),
        })
    }
}

/// A window table function for [`crate::DataFrame::window`]: the DataFrame form of
/// `TABLE(TUMBLE(TABLE t, DESCRIPTOR(time), size))` and its kin.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Window {
    kind: std::result::Result<WindowKind, String>,
    time: String,
    partition_by: Vec<String>,
}

impl Window {
    fn new(time: &str, kind: Option<WindowKind>, what: &str) -> Self {
        Self {
            kind: kind.ok_or_else(|| format!("{what}: a size too large for 64 bits")),
            time: time.to_string(),
            partition_by: Vec::new(),
        }
    }

    /// `TUMBLE`: windows of `size` over the timestamp column `time`.
    pub fn tumble(time: &str, size: std::time::Duration) -> Self {
        let kind = micros(size).map(|size| WindowKind::Tumble { size });
        Self::new(time, kind, "TUMBLE")
    }

    /// `HOP`: windows of `size` starting every `slide`.
    pub fn hop(time: &str, slide: std::time::Duration, size: std::time::Duration) -> Self {
        let kind = micros(slide)
            .zip(micros(size))
            .map(|(slide, size)| WindowKind::Hop { slide, size });
        Self::new(time, kind, "HOP")
    }

    /// `CUMULATE`: windows growing by `step` up to `size`.
    pub fn cumulate(time: &str, step: std::time::Duration, size: std::time::Duration) -> Self {
        let kind = micros(step)
            .zip(micros(size))
            .map(|(step, size)| WindowKind::Cumulate { step, size });
        Self::new(time, kind, "CUMULATE")
    }

    /// `SESSION`: rows at most `gap` apart share a window (per key with
    /// [`Window::partition_by`]).
    pub fn session(time: &str, gap: std::time::Duration) -> Self {
        let kind = micros(gap).map(|gap| WindowKind::Session { gap });
        Self::new(time, kind, "SESSION")
    }

    /// Count windows: each key's rows (see [`Window::partition_by`]) in order of the
    /// timestamp column `time`, `size` rows to a window (`window_start` is the first
    /// row's time, `window_time` the last's). Rows of a window that never fills are not
    /// emitted, as in Flink.
    pub fn count(time: &str, size: u64) -> Self {
        Self::sliding_count(time, size, size)
    }

    /// Count windows of `size` rows, a new one every `slide` rows (`slide <= size`).
    pub fn sliding_count(time: &str, size: u64, slide: u64) -> Self {
        let kind = i64::try_from(size)
            .ok()
            .zip(i64::try_from(slide).ok())
            .map(|(size, slide)| WindowKind::Count { size, slide });
        Self::new(time, kind, "COUNT")
    }

    /// Keeps windows of different values of `columns` apart (SESSION and count windows).
    pub fn partition_by(mut self, columns: &[&str]) -> Self {
        self.partition_by = columns.iter().map(|c| c.to_string()).collect();
        self
    }

    /// The window table function over `input`.
    pub(crate) fn plan(&self, input: Arc<LogicalPlan>) -> Result<LogicalPlan> {
        let kind = self.kind.clone().map_err(SluiceError::plan)?;
        LogicalPlan::window_tvf(input, kind, &self.time, &self.partition_by)
    }
}

fn micros(d: std::time::Duration) -> Option<i64> {
    i64::try_from(d.as_micros()).ok()
}

/// The microseconds of a constant interval of fixed length (days and smaller units).
pub fn interval_scalar_micros(s: &Scalar) -> Option<i64> {
    let v = s.0.as_primitive_opt::<IntervalMonthDayNanoType>()?.value(0);
    if v.months != 0 {
        return None; // months have no fixed length
    }
    i64::from(v.days)
        .checked_mul(86_400_000_000)?
        .checked_add(v.nanoseconds / 1000)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn windows(k: WindowKind, t: i64) -> Vec<(i64, i64)> {
        let mut v = vec![];
        k.assign(t, |s, e| v.push((s, e)));
        v
    }

    #[test]
    fn windows_hold_their_rows() {
        assert_eq!(windows(WindowKind::Tumble { size: 10 }, 25), vec![(20, 30)]);
        assert_eq!(windows(WindowKind::Tumble { size: 10 }, -1), vec![(-10, 0)]);
        assert_eq!(
            windows(WindowKind::Hop { slide: 5, size: 15 }, 12),
            vec![(0, 15), (5, 20), (10, 25)]
        );
        assert_eq!(
            windows(WindowKind::Cumulate { step: 5, size: 15 }, 17),
            vec![(15, 20), (15, 25), (15, 30)]
        );
        assert_eq!(
            windows(WindowKind::Cumulate { step: 5, size: 15 }, 14),
            vec![(0, 15)]
        );
    }

    #[test]
    fn sizes_must_divide() {
        let e = WindowKind::Hop { slide: 4, size: 10 }
            .validate()
            .expect_err("bad");
        assert!(e.to_string().contains("multiple of the slide"), "{e}");
    }
}
