//! Library errors as the exceptions of `smpflash.errors`: which class, which `kind`, and the
//! typed attributes each carries. [`classify`] is exhaustive over `smpflash_core::Error`, like
//! the CLI's exit codes, so a new error variant does not compile until it has a class.

use pyo3::exceptions::{PyRuntimeError, PyValueError};
use pyo3::prelude::*;
use serde_json::{json, Value};
use smpflash_core::dfu::DfuError;
use smpflash_core::mcuboot::ImageError;
use smpflash_core::transport::TransportKind;
use smpflash_core::Error;
use smpflash_sim::connect::SimStartError;

/// Why a call failed.
#[derive(Debug)]
pub enum Failure {
    /// The library's error.
    Core(Error),
    /// The in-process virtual device did not start.
    Sim(SimStartError),
    /// A bad argument: Python's `ValueError`.
    Usage(String),
    /// The device was closed.
    Closed,
}

impl From<Error> for Failure {
    fn from(e: Error) -> Self {
        Failure::Core(e)
    }
}

impl From<ImageError> for Failure {
    fn from(e: ImageError) -> Self {
        Failure::Core(e.into())
    }
}

impl From<SimStartError> for Failure {
    fn from(e: SimStartError) -> Self {
        Failure::Sim(e)
    }
}

/// One exception to raise: a class of `smpflash.errors`, its `kind`, its message and its
/// attributes.
#[derive(Debug, PartialEq)]
pub struct Raised {
    /// Class name in `smpflash.errors`.
    pub class: &'static str,
    /// A finer name, stable across messages (`"device"`, `"link_lost"`, `"upload_stalled"`).
    pub kind: &'static str,
    /// The sentence the CLI prints for the same error.
    pub message: String,
    /// Typed attributes (a JSON object).
    pub attrs: Value,
}

fn transport_kind(k: TransportKind) -> &'static str {
    match k {
        TransportKind::NoAdapter => "no_adapter",
        TransportKind::PairingRequired => "pairing_required",
        TransportKind::NotFound => "not_found",
        TransportKind::Open => "open",
        TransportKind::LinkLost => "link_lost",
        TransportKind::Io => "io",
        TransportKind::Unsupported => "unsupported",
        // A kind added to core later still raises ConnectionError, with a generic kind.
        _ => "other",
    }
}

/// The exception a library error becomes.
pub fn classify(e: &Error) -> Raised {
    let raised = |class, kind, attrs| Raised { class, kind, message: e.to_string(), attrs };
    match e {
        Error::Device(d) => raised(
            "DeviceError",
            "device",
            json!({
                "group": d.group, "rc": d.rc, "name": d.name(), "description": d.description(),
                "reason": d.reason, "request_group": d.request_group,
            }),
        ),
        Error::Dfu(DfuError::Refused(r)) => raised("Refused", "refused", json!({ "refusal": r })),
        Error::Dfu(DfuError::NotApplied(n)) => raised("NotApplied", "not_applied", json!({ "verdict": n })),
        Error::Timeout { what, seq, timeout_ms } => {
            raised("Timeout", "timeout", json!({ "what": what, "seq": seq, "timeout_ms": timeout_ms }))
        }
        Error::UploadStalled { offset, total, attempts } => raised(
            "Timeout",
            "upload_stalled",
            json!({ "offset": offset, "total": total, "attempts": attempts }),
        ),
        Error::UploadMismatch => raised("UploadError", "upload_mismatch", json!({})),
        Error::FileMismatch { name, what } => {
            raised("UploadError", "file_mismatch", json!({ "name": name, "what": what }))
        }
        Error::Transport(t) => {
            raised("ConnectionError", transport_kind(t.kind), json!({ "context": t.context }))
        }
        Error::TruncatedHeader { .. } => raised("ProtocolError", "truncated_header", json!({})),
        Error::LengthMismatch { .. } => raised("ProtocolError", "length_mismatch", json!({})),
        Error::BadHeader(_) => raised("ProtocolError", "bad_header", json!({})),
        Error::Decode { what, .. } => raised("ProtocolError", "decode", json!({ "what": what })),
        Error::Protocol(_) => raised("ProtocolError", "protocol", json!({})),
        // Local limits of this program and link, not the device's fault.
        Error::Encode { what, .. } => raised("Error", "encode", json!({ "what": what })),
        Error::FrameTooLarge { size, limit } => {
            raised("Error", "frame_too_large", json!({ "size": size, "limit": limit }))
        }
        Error::TooLargeForDevice { what, frame, buf_size, .. } => raised(
            "Error",
            "too_large_for_device",
            json!({ "what": what, "frame": frame, "buf_size": buf_size }),
        ),
        Error::SequenceExhausted => raised("Error", "sequence_exhausted", json!({})),
        Error::Image(ImageError::Io { path, .. }) => raised("ImageError", "io", json!({ "path": path })),
        Error::Image(_) => raised("ImageError", "invalid", json!({})),
    }
}

/// The Python exception for a failure.
pub fn to_py(py: Python<'_>, f: Failure) -> PyErr {
    let raised = match f {
        Failure::Core(e) => classify(&e),
        Failure::Usage(m) => return PyValueError::new_err(m),
        Failure::Closed => return PyValueError::new_err("the device is closed"),
        Failure::Sim(SimStartError::Profile(m)) => return PyValueError::new_err(m),
        Failure::Sim(e @ SimStartError::Device(_)) => {
            Raised { class: "Error", kind: "sim", message: e.to_string(), attrs: json!({}) }
        }
        Failure::Sim(e @ (SimStartError::Udp(_) | SimStartError::Pty(_))) => {
            Raised { class: "ConnectionError", kind: "open", message: e.to_string(), attrs: json!({}) }
        }
    };
    build(py, &raised).unwrap_or_else(|e| e)
}

/// Instantiates the class through `smpflash.errors._from_native`, which owns the tree.
fn build(py: Python<'_>, r: &Raised) -> PyResult<PyErr> {
    let make = py.import("smpflash.errors")?.getattr("_from_native")?;
    let exc = make.call1((r.class, r.kind, r.message.as_str(), r.attrs.to_string()))?;
    Ok(PyErr::from_value(exc))
}

/// A task of ours that panicked: a bug, said as such.
pub fn internal(e: impl std::fmt::Display) -> PyErr {
    PyRuntimeError::new_err(format!("internal error in smpflash: {e}"))
}
