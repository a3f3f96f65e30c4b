//! Blocking calls from Python: the work runs on the shared tokio runtime while the calling
//! thread waits with the GIL released, hands progress events to the caller's callback on its
//! own thread, and checks for signals every [`TICK`] so Ctrl-C (`KeyboardInterrupt`) stops a
//! long DFU: the task is cancelled and waited for before the exception propagates.

use std::future::Future;
use std::time::Duration;

use pyo3::prelude::*;
use tokio::sync::mpsc::UnboundedReceiver;

use crate::errors::{internal, to_py, Failure};
use crate::runtime;

/// How often a waiting call looks for a pending signal.
const TICK: Duration = Duration::from_millis(50);

enum Step<T> {
    Event(Option<String>),
    Done(Result<Result<T, Failure>, tokio::task::JoinError>),
    Tick,
}

async fn next_event(rx: &mut Option<UnboundedReceiver<String>>) -> Option<String> {
    match rx {
        Some(rx) => rx.recv().await,
        None => std::future::pending().await,
    }
}

/// Runs `fut` to its end and returns its value; each event from `events` (JSON text) is passed
/// to `callback`. An exception from the callback or a signal handler cancels the work.
pub fn block<T, F>(
    py: Python<'_>,
    fut: F,
    mut events: Option<UnboundedReceiver<String>>,
    callback: Option<&Bound<'_, PyAny>>,
) -> PyResult<T>
where
    T: Send + 'static,
    F: Future<Output = Result<T, Failure>> + Send + 'static,
{
    let rt = runtime();
    let mut task = rt.spawn(fut);
    loop {
        let step = py.detach(|| {
            rt.block_on(async {
                tokio::select! {
                    biased;
                    r = &mut task => Step::Done(r),
                    ev = next_event(&mut events) => Step::Event(ev),
                    _ = tokio::time::sleep(TICK) => Step::Tick,
                }
            })
        });
        let stop = match step {
            Step::Event(Some(json)) => match callback {
                Some(cb) => cb.call1((json,)).err(),
                None => None,
            },
            Step::Event(None) => {
                events = None;
                None
            }
            Step::Tick => py.check_signals().err(),
            Step::Done(done) => {
                // Events sent before the end are still due.
                if let (Some(rx), Some(cb)) = (events.as_mut(), callback) {
                    while let Ok(json) = rx.try_recv() {
                        cb.call1((json,))?;
                    }
                }
                return match done {
                    Ok(Ok(v)) => Ok(v),
                    Ok(Err(f)) => Err(to_py(py, f)),
                    Err(e) => Err(internal(e)),
                };
            }
        };
        if let Some(e) = stop {
            task.abort();
            // Wait for the cancelled work to let go of the session before raising.
            let _ = py.detach(|| rt.block_on(&mut task));
            return Err(e);
        }
    }
}
