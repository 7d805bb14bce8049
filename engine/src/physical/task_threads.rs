//! The threads a query run starts, so that the run can end them before it returns.
//!
//! Exchange producers run on threads of their own. When a query ends early — an error in
//! one partition, a LIMIT satisfied, a result stream dropped — the other producers may
//! still be running, holding the plan, its memory and its spill files. A run therefore
//! *stops* ([`TaskThreads::stop_and_wait`]): it sets a flag every source checks at its next
//! batch (see [`super::TaskContext::cancellable`]), so each producer ends soon, and waits
//! until the last one has dropped what it held. Only then does `collect` return, so a
//! failed query leaves no spill directory behind, even when the process exits right after.
//!
//! The wait is bounded ([`STOP_GRACE`]): a thread that does not end by then is left
//! running and logged, rather than turning a query's error into a hang.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Condvar, Mutex, PoisonError};
use std::time::Duration;

use crate::error::{Result, SluiceError};

/// How long [`TaskThreads::stop_and_wait`] waits for the run's threads to end.
pub const STOP_GRACE: Duration = Duration::from_secs(60);

/// The threads of one query run and its stop flag.
#[derive(Debug, Default)]
pub struct TaskThreads {
    stopped: AtomicBool,
    /// Threads started and not yet ended.
    running: Mutex<usize>,
    ended: Condvar,
}

/// Counts its thread as ended when dropped (also when the thread panics).
struct Running<'a>(&'a TaskThreads);

impl Drop for Running<'_> {
    fn drop(&mut self) {
        self.0.ended();
    }
}

impl TaskThreads {
    /// True once the run is stopping: sources end at their next batch.
    pub fn is_stopped(&self) -> bool {
        self.stopped.load(Ordering::Relaxed)
    }

    /// Starts `f` on a thread named `name`, counted until `f` and everything it captured
    /// are dropped.
    pub fn spawn(
        self: &std::sync::Arc<Self>,
        name: String,
        f: impl FnOnce() + Send + 'static,
    ) -> Result<()> {
        *self.running.lock().unwrap_or_else(PoisonError::into_inner) += 1;
        let threads = self.clone();
        let started = std::thread::Builder::new().name(name).spawn(move || {
            let _running = Running(&threads);
            f();
        });
        if let Err(e) = started {
            self.ended();
            return Err(SluiceError::exec(format!("cannot start a thread: {e}")));
        }
        Ok(())
    }

    fn ended(&self) {
        let mut n = self.running.lock().unwrap_or_else(PoisonError::into_inner);
        *n = n.saturating_sub(1);
        self.ended.notify_all();
    }

    /// Makes every source of the run end at its next batch, then waits (at most
    /// [`STOP_GRACE`]) until every thread started with [`TaskThreads::spawn`] has ended.
    pub fn stop_and_wait(&self) {
        self.stop_and_wait_within(STOP_GRACE);
    }

    /// [`TaskThreads::stop_and_wait`] with a grace period of `grace`; returns how many
    /// threads were still running when it gave up (0 when all ended).
    pub fn stop_and_wait_within(&self, grace: Duration) -> usize {
        self.stopped.store(true, Ordering::Relaxed);
        let running = self.running.lock().unwrap_or_else(PoisonError::into_inner);
        let (running, _) = self
            .ended
            .wait_timeout_while(running, grace, |n| *n > 0)
            .unwrap_or_else(PoisonError::into_inner);
        if *running > 0 {
            tracing::warn!(
                threads = *running,
                "a stopped query's threads did not end within {grace:?}; left running"
            );
        }
        *running
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    #[test]
    fn stop_waits_for_every_thread_and_what_it_captured() {
        let threads = Arc::new(TaskThreads::default());
        let held = Arc::new(());
        for i in 0..3 {
            let held = held.clone();
            let t = threads.clone();
            threads
                .spawn(format!("t{i}"), move || {
                    while !t.is_stopped() {
                        std::thread::sleep(Duration::from_millis(1));
                    }
                    std::thread::sleep(Duration::from_millis(20));
                    drop(held);
                })
                .expect("spawn");
        }
        assert!(!threads.is_stopped());
        threads.stop_and_wait();
        assert!(threads.is_stopped());
        assert_eq!(
            Arc::strong_count(&held),
            1,
            "every thread dropped its capture"
        );
    }

    #[test]
    fn the_wait_gives_up_after_its_grace_on_a_thread_that_ignores_the_stop() {
        let threads = Arc::new(TaskThreads::default());
        let (release, parked) = std::sync::mpsc::channel::<()>();
        threads
            .spawn("ignores the stop".into(), move || {
                let _ = parked.recv();
            })
            .expect("spawn");
        let started = std::time::Instant::now();
        assert_eq!(threads.stop_and_wait_within(Duration::from_millis(50)), 1);
        assert!(started.elapsed() < Duration::from_secs(5));
        // Let it go: it is counted as ended once it does.
        release.send(()).expect("send");
        assert_eq!(threads.stop_and_wait_within(Duration::from_secs(30)), 0);
    }

    #[test]
    fn a_panicking_thread_counts_as_ended() {
        let threads = Arc::new(TaskThreads::default());
        threads
            .spawn("panics".into(), || panic!("boom"))
            .expect("spawn");
        assert_eq!(threads.stop_and_wait_within(Duration::from_secs(30)), 0);
    }
}
