//! `smpflash.scan`: the BLE devices in range that advertise the SMP service, found by the same
//! scan as `smpflash scan`.

use std::time::Duration;

use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;

use crate::device::{json, run};
use crate::errors::Failure;

/// Scans for `seconds`, then returns the devices found as JSON: a list of `{name, address,
/// rssi}`, strongest first (the CLI's `scan --json` shape). Blocking, or an awaitable with
/// `aio`.
#[pyfunction]
#[pyo3(signature = (seconds, aio))]
pub fn scan(py: Python<'_>, seconds: f64, aio: bool) -> PyResult<Bound<'_, PyAny>> {
    // Duration::from_secs_f64 panics on these; say what is wrong instead.
    if !(seconds.is_finite() && seconds > 0.0 && seconds <= 3600.0) {
        return Err(PyValueError::new_err(format!(
            "scan seconds must be above 0 and at most 3600, not {seconds}"
        )));
    }
    run(py, aio, async move {
        let found = smpflash_ble::scan(Duration::from_secs_f64(seconds)).await.map_err(Failure::from)?;
        json(&found)
    })
}
