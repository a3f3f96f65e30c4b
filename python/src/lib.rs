//! The native half of the `smpflash` Python package: smpflash's own connectors, session, DFU
//! engine and virtual device, driven from Python.
//!
//! Nothing here reimplements a link or the update: a `NativeDevice` (`device.rs`) is a
//! [`smpflash_core::session::Session`] over the same connectors the CLI uses
//! (`UdpConnector`, `SerialConnector`, `BleConnector`, `SimConnector`), and its `dfu` is
//! [`smpflash_core::dfu::dfu`]. This crate only carries calls across: blocking calls wait with
//! the GIL released and Ctrl-C honoured (`wait.rs`), async calls become asyncio awaitables
//! (pyo3-async-runtimes), results cross as JSON documents (the CLI's `--json` shapes) that the
//! pure-Python layer turns into objects, and errors become the exceptions of `smpflash.errors`
//! (`errors.rs`).
#![deny(missing_docs)]

mod device;
mod errors;
mod scan;
mod sim;
mod wait;

use pyo3::prelude::*;

/// The tokio runtime every call runs on: pyo3-async-runtimes' own, so that blocking and
/// asyncio calls share one set of worker threads and one reactor.
pub(crate) fn runtime() -> &'static tokio::runtime::Runtime {
    pyo3_async_runtimes::tokio::get_runtime()
}

/// `smpflash._native`.
#[pymodule]
fn _native(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<device::NativeDevice>()?;
    m.add_class::<device::EventStream>()?;
    m.add_class::<sim::NativeSim>()?;
    m.add_function(wrap_pyfunction!(scan::scan, m)?)?;
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    Ok(())
}
