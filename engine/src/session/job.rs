//! Jobs: a statement run on its own thread, with a handle to wait for it or cancel it; for
//! an `INSERT INTO sink SELECT ...` over an unbounded source, which never ends by itself.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

use arrow::array::RecordBatch;

use super::Session;
use crate::error::{Result, SluiceError};
use crate::physical::ExecNode;

/// A running statement (see [`Session::submit`]).
#[derive(Debug)]
pub struct Job {
    cancel: Arc<AtomicBool>,
    plan: Arc<RunningPlan>,
    handle: JoinHandle<Result<Vec<RecordBatch>>>,
}

/// The physical plan of a job's query once it has started (see
/// [`crate::SessionConfig::running_plan`]).
#[derive(Debug, Default)]
pub struct RunningPlan(Mutex<Option<Arc<dyn ExecNode>>>);

impl RunningPlan {
    /// Records `plan` as the running one.
    pub fn set(&self, plan: Arc<dyn ExecNode>) {
        match self.0.lock() {
            Ok(mut p) => *p = Some(plan),
            Err(poisoned) => *poisoned.into_inner() = Some(plan),
        }
    }

    /// The running plan, if the query has started.
    pub fn get(&self) -> Option<Arc<dyn ExecNode>> {
        match self.0.lock() {
            Ok(p) => p.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }
}

impl Job {
    /// Asks the job to stop. Its sources stop at their next batch and the query ends
    /// there: windows that have not fired do not fire; what was written stays written.
    pub fn cancel(&self) {
        self.cancel.store(true, Ordering::Relaxed);
    }

    /// The job's physical plan with what each operator has measured so far (back-pressure
    /// of each streaming exchange since the job started, late rows of window operators),
    /// as `EXPLAIN ANALYZE` shows it; `None` until the query has started.
    pub fn metrics(&self) -> Option<String> {
        self.plan
            .get()
            .map(|p| crate::physical::display_plan_with_metrics(&p))
    }

    /// True once the statement has finished (ended, failed or been cancelled).
    pub fn is_finished(&self) -> bool {
        self.handle.is_finished()
    }

    /// Waits for the statement and returns its result (an INSERT's row count).
    pub fn wait(self) -> Result<Vec<RecordBatch>> {
        self.handle
            .join()
            .map_err(|_| SluiceError::exec("the job's thread panicked"))?
    }
}

impl Session {
    /// Runs the statement `sql` (typically `INSERT INTO sink SELECT ...`) on its own
    /// thread and returns a handle to it. The statement sees this session's tables and
    /// settings; a `SET` inside it does not change this session's.
    pub fn submit(&self, sql: &str) -> Result<Job> {
        let cancel = Arc::new(AtomicBool::new(false));
        let plan = Arc::new(RunningPlan::default());
        let mut config = self.config();
        config.cancel = Some(cancel.clone());
        config.running_plan = Some(plan.clone());
        let session = Session {
            catalog: self.catalog.clone(),
            config: Arc::new(Mutex::new(config)),
        };
        let sql = sql.to_string();
        let handle = std::thread::Builder::new()
            .name("sluice-job".into())
            .spawn(move || session.sql(&sql)?.collect())
            .map_err(|e| SluiceError::exec(format!("cannot start a job thread: {e}")))?;
        Ok(Job {
            cancel,
            plan,
            handle,
        })
    }
}
