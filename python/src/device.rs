//! `NativeDevice`: one [`Session`] to one device, opened through smpflash's connectors, and the
//! device commands over it. Each method takes `aio`: false blocks ([`crate::wait::block`]),
//! true returns an asyncio awaitable. Results are JSON documents of the library's types.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use pyo3::prelude::*;
use pyo3::pybacked::PyBackedBytes;
use pyo3::IntoPyObjectExt;
use serde_bytes::ByteBuf;
use smpflash_ble::{BleConnector, ConnectOptions};
use smpflash_core::command::basic::StorageErase;
use smpflash_core::command::fs::{FileHash, FileStatus};
use smpflash_core::command::image::{ImageErase, ImageStateRead, ImageStateWrite, SlotInfo};
use smpflash_core::command::os::{AppInfo, DateTimeGet, DateTimeSet, Echo, MemPoolStats, Reset, TaskStats};
use smpflash_core::command::settings::{
    SettingDelete, SettingRead, SettingWrite, SettingsCommit, SettingsLoad, SettingsSave,
};
use smpflash_core::command::shell::ShellExec;
use smpflash_core::command::stat::{StatList, StatShow};
use smpflash_core::dfu::{self, DfuOptions, Mode};
use smpflash_core::fs::{self, HashKind};
use smpflash_core::groups;
use smpflash_core::mcuboot;
use smpflash_core::progress::{Event, Progress};
use smpflash_core::session::{Connector, Session};
use smpflash_core::upload::{self, Limits, UploadOptions};
use smpflash_serial::{Framing, SerialConnector};
use smpflash_sim::connect::{SimConnector, SimLink, SimOptions};
use smpflash_sim::profile::SimProfile;
use smpflash_udp::UdpConnector;
use tokio::sync::mpsc::{unbounded_channel, UnboundedReceiver, UnboundedSender};
use tokio::sync::Mutex;

use crate::errors::{to_py, Failure};
use crate::wait::block;

/// How long closing a link may take (BLE: the disconnect), as in the CLI.
const CLOSE_LIMIT: Duration = Duration::from_secs(5);

struct Inner {
    session: Mutex<Option<Session>>,
    /// The request timeout the device was opened with; uploads use it too.
    timeout: Duration,
    /// Over BLE, closing also waits for btleplug's disconnects.
    ble: bool,
    /// What the link is, from the first client (`udp 127.0.0.1:1337`, …).
    describe: String,
}

impl Drop for Inner {
    fn drop(&mut self) {
        // A device Python dropped without closing: end its link on the runtime, where its
        // sockets were registered.
        if let Some(session) = self.session.get_mut().take() {
            crate::runtime().spawn(async move {
                let _ = tokio::time::timeout(CLOSE_LIMIT, session.close()).await;
            });
        }
    }
}

/// One open device (`smpflash._native.NativeDevice`); the Python `Device` and `AsyncDevice`
/// wrap it.
#[pyclass(module = "smpflash._native", frozen)]
pub struct NativeDevice {
    inner: Arc<Inner>,
}

/// Progress events of a running DFU, for `async for` (`smpflash._native.EventStream`): each
/// `next()` is an awaitable of the next event's JSON, or `None` once the DFU has ended.
#[pyclass(module = "smpflash._native", frozen)]
pub struct EventStream {
    rx: Arc<Mutex<UnboundedReceiver<String>>>,
}

#[pymethods]
impl EventStream {
    /// The next event (JSON text), or `None` at the end.
    fn next<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        let rx = self.rx.clone();
        pyo3_async_runtimes::tokio::future_into_py(py, async move { Ok(rx.lock().await.recv().await) })
    }
}

/// Sends each event, as JSON with its sentence under `message`, to the caller.
struct Events(UnboundedSender<String>);

impl Progress for Events {
    fn event(&self, event: &Event) {
        let _ = self.0.send(event_json(event));
    }
}

/// An event as the CLI's JSON lines have it, plus the sentence the CLI prints for steps, notes
/// and reconnections, so a script can show what the CLI shows.
fn event_json(event: &Event) -> String {
    let mut value = serde_json::to_value(event).unwrap_or_default();
    let message = match event {
        Event::Step { step } => Some(step.to_string()),
        Event::Note { note } => Some(note.to_string()),
        Event::Reconnecting { reason } | Event::Restarted { reason } => Some(reason.clone()),
        Event::UploadStarted { start, .. } => Some(start.to_string()),
        Event::Progress { .. } | Event::UploadFinished { .. } => None,
    };
    if let (Some(m), Some(object)) = (message, value.as_object_mut()) {
        object.insert("message".into(), m.into());
    }
    value.to_string()
}

/// A request whose answer says nothing beyond success.
fn done<T>(answer: Result<T, smpflash_core::Error>) -> Result<(), Failure> {
    answer.map(drop).map_err(Failure::from)
}

pub(crate) fn json<T: serde::Serialize>(value: &T) -> Result<String, Failure> {
    serde_json::to_string(value).map_err(|e| Failure::Usage(format!("cannot encode the result: {e}")))
}

/// Runs `fut` blocking or as an awaitable.
pub(crate) fn run<'py, T, F>(py: Python<'py>, aio: bool, fut: F) -> PyResult<Bound<'py, PyAny>>
where
    T: for<'a> IntoPyObject<'a> + Send + 'static,
    F: std::future::Future<Output = Result<T, Failure>> + Send + 'static,
{
    if aio {
        pyo3_async_runtimes::tokio::future_into_py(py, async move {
            fut.await.map_err(|f| Python::attach(|py| to_py(py, f)))
        })
    } else {
        block(py, fut, None, None)?.into_bound_py_any(py)
    }
}

fn parse<T: std::str::FromStr>(what: &str, text: &str) -> PyResult<T>
where
    T::Err: std::fmt::Display,
{
    text.parse().map_err(|e| pyo3::exceptions::PyValueError::new_err(format!("{what}: {e}")))
}

fn mode(text: Option<String>) -> PyResult<Option<Mode>> {
    text.map(|m| {
        serde_json::from_value(serde_json::Value::String(m.clone())).map_err(|_| {
            pyo3::exceptions::PyValueError::new_err(format!(
                "unknown mode {m:?}; choose one of test-and-confirm, confirm-only, test-only, upload-only"
            ))
        })
    })
    .transpose()
}

impl NativeDevice {
    fn inner(&self) -> Arc<Inner> {
        self.inner.clone()
    }
}

/// Locks the session, or says the device is closed.
macro_rules! session {
    ($guard:ident, $inner:expr) => {
        let mut $guard = $inner.session.lock().await;
        let $guard = $guard.as_mut().ok_or(Failure::Closed)?;
    };
}

/// Runs `$body` with the device's open session bound to `$s` (a closed device raises), blocking
/// or as an awaitable: the shape of every device call. `|s, inner|` also names the device's
/// shared state (its timeout) for the body.
macro_rules! with_session {
    ($self:ident, $py:ident, $aio:ident, |$s:ident, $inner:ident| $body:expr) => {{
        let $inner = $self.inner();
        run($py, $aio, async move {
            session!($s, $inner);
            $body
        })
    }};
    ($self:ident, $py:ident, $aio:ident, |$s:ident| $body:expr) => {
        with_session!($self, $py, $aio, |$s, inner| $body)
    };
}

#[pymethods]
impl NativeDevice {
    /// Opens a session to the device `link` (`udp`, `serial`, `ble` or `sim`) names with
    /// `target`, through the connector the CLI uses for the same option.
    #[staticmethod]
    #[pyo3(signature = (link, target, aio, baud=115_200, framing=None, line_delay_ms=None, mtu=None,
        timeout=5.0, sim_link=None, sim_set=Vec::new(), sim_time_scale=1.0, sim_state=None))]
    #[allow(clippy::too_many_arguments)]
    fn open<'py>(
        py: Python<'py>,
        link: &str,
        target: String,
        aio: bool,
        baud: u32,
        framing: Option<String>,
        line_delay_ms: Option<u64>,
        mtu: Option<usize>,
        timeout: f64,
        sim_link: Option<String>,
        sim_set: Vec<String>,
        sim_time_scale: f64,
        sim_state: Option<PathBuf>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let timeout = Duration::from_secs_f64(timeout.max(0.05));
        let framing: Option<Framing> = framing.map(|f| parse("framing", &f)).transpose()?;
        enum Chosen {
            Ready(Box<dyn Connector>),
            Sim(SimOptions),
        }
        let chosen = match link {
            "udp" => Chosen::Ready(Box::new(match mtu {
                Some(mtu) => UdpConnector::new(target).with_path_mtu(mtu),
                None => UdpConnector::new(target),
            })),
            "serial" => Chosen::Ready(Box::new(
                SerialConnector::new(target, baud)
                    .with_max_frame(mtu)
                    .with_line_delay(line_delay_ms.map(Duration::from_millis))
                    .with_framing(framing),
            )),
            "ble" => Chosen::Ready(Box::new(BleConnector::new(
                target,
                ConnectOptions { mtu, ..Default::default() },
            ))),
            "sim" => Chosen::Sim(SimOptions {
                profile: parse::<SimProfile>("sim", &target)?,
                overrides: sim_set,
                time_scale: sim_time_scale,
                state_file: sim_state,
                link: match sim_link {
                    Some(l) => parse::<SimLink>("sim_link", &l)?,
                    None => SimLink::BlePhoneFast,
                },
                mtu,
            }),
            other => {
                return Err(pyo3::exceptions::PyValueError::new_err(format!(
                    "unknown link {other:?}: udp, serial, ble or sim"
                )))
            }
        };
        let ble = link == "ble";
        run(py, aio, async move {
            let connector = match chosen {
                Chosen::Ready(c) => c,
                Chosen::Sim(options) => Box::new(SimConnector::start(&options).await?),
            };
            let session = Session::open(connector, timeout).await?;
            let describe = session.client().describe();
            Ok(NativeDevice {
                inner: Arc::new(Inner { session: Mutex::new(Some(session)), timeout, ble, describe }),
            })
        })
    }

    /// What the link is.
    fn describe(&self) -> String {
        self.inner.describe.clone()
    }

    /// Ends the link (BLE: disconnects). Closing twice is harmless.
    fn close<'py>(&self, py: Python<'py>, aio: bool) -> PyResult<Bound<'py, PyAny>> {
        let inner = self.inner();
        run(py, aio, async move {
            let session = inner.session.lock().await.take();
            if let Some(session) = session {
                match tokio::time::timeout(CLOSE_LIMIT, session.close()).await {
                    Ok(Ok(())) => tracing::debug!("link closed"),
                    Ok(Err(e)) => tracing::debug!("closing the link failed: {e}"),
                    Err(_) => tracing::debug!("closing the link took longer than {CLOSE_LIMIT:?}"),
                }
                drop(session);
                if inner.ble {
                    smpflash_ble::finish_disconnects(CLOSE_LIMIT).await;
                }
            }
            Ok(())
        })
    }

    /// `echo`: the text the device sends back.
    fn echo<'py>(&self, py: Python<'py>, text: String, aio: bool) -> PyResult<Bound<'py, PyAny>> {
        with_session!(self, py, aio, |s| Ok(s.client().request(&Echo { d: text }).await?.r))
    }

    /// `params`: the device's SMP buffers (JSON of `Limits`).
    fn params<'py>(&self, py: Python<'py>, aio: bool) -> PyResult<Bound<'py, PyAny>> {
        with_session!(self, py, aio, |s| json(&Limits::query(s.client()).await?))
    }

    /// Image state (JSON list of slots).
    fn image_state<'py>(&self, py: Python<'py>, aio: bool) -> PyResult<Bound<'py, PyAny>> {
        with_session!(self, py, aio, |s| json(&s.client().request(&ImageStateRead {}).await?.images))
    }

    /// Image state write: mark `hash` for test, or confirm it (or, without a hash, the
    /// running image). Returns the new image state.
    #[pyo3(signature = (hash, confirm, aio))]
    fn image_write<'py>(
        &self,
        py: Python<'py>,
        hash: Option<Vec<u8>>,
        confirm: bool,
        aio: bool,
    ) -> PyResult<Bound<'py, PyAny>> {
        with_session!(self, py, aio, |s| {
            let hash = hash.map(ByteBuf::from);
            json(&s.client().request(&ImageStateWrite { hash, confirm }).await?.images)
        })
    }

    /// Shell exec: `argv` runs in the device's shell. JSON `{"output", "ret"}`.
    fn shell_exec<'py>(&self, py: Python<'py>, argv: Vec<String>, aio: bool) -> PyResult<Bound<'py, PyAny>> {
        with_session!(self, py, aio, |s| {
            let r = s.client().request(&ShellExec { argv }).await?;
            json(&serde_json::json!({ "output": r.o, "ret": r.ret }))
        })
    }

    /// Stat list: the statistics groups' names (JSON list).
    fn stat_list<'py>(&self, py: Python<'py>, aio: bool) -> PyResult<Bound<'py, PyAny>> {
        with_session!(self, py, aio, |s| json(&s.client().request(&StatList {}).await?.stat_list))
    }

    /// Stat show: one group's counters (JSON map of name to value).
    fn stat_read<'py>(&self, py: Python<'py>, name: String, aio: bool) -> PyResult<Bound<'py, PyAny>> {
        with_session!(self, py, aio, |s| json(&s.client().request(&StatShow { name }).await?.fields))
    }

    /// Settings read: the value's bytes, as hex.
    fn settings_get<'py>(&self, py: Python<'py>, name: String, aio: bool) -> PyResult<Bound<'py, PyAny>> {
        with_session!(self, py, aio, |s| Ok(hex::encode(
            s.client().request(&SettingRead { name, max_size: None }).await?.val
        )))
    }

    /// Settings write (at run time; `settings_save` keeps it).
    fn settings_set<'py>(
        &self,
        py: Python<'py>,
        name: String,
        value: PyBackedBytes,
        aio: bool,
    ) -> PyResult<Bound<'py, PyAny>> {
        let value = value.to_vec();
        with_session!(self, py, aio, |s| done(
            s.client().request(&SettingWrite { name, val: ByteBuf::from(value) }).await
        ))
    }

    /// Settings save: what was written goes to storage.
    fn settings_save<'py>(&self, py: Python<'py>, aio: bool) -> PyResult<Bound<'py, PyAny>> {
        with_session!(self, py, aio, |s| done(s.client().request(&SettingsSave {}).await))
    }

    /// Settings delete: the setting leaves storage (Zephyr's `settings_delete`); the value the
    /// device holds now stays until it restarts.
    fn settings_delete<'py>(&self, py: Python<'py>, name: String, aio: bool) -> PyResult<Bound<'py, PyAny>> {
        with_session!(self, py, aio, |s| done(s.client().request(&SettingDelete { name }).await))
    }

    /// Settings commit: the handlers apply what was written.
    fn settings_commit<'py>(&self, py: Python<'py>, aio: bool) -> PyResult<Bound<'py, PyAny>> {
        with_session!(self, py, aio, |s| done(s.client().request(&SettingsCommit {}).await))
    }

    /// Settings load: the stored values are read back into the handlers.
    fn settings_load<'py>(&self, py: Python<'py>, aio: bool) -> PyResult<Bound<'py, PyAny>> {
        with_session!(self, py, aio, |s| done(s.client().request(&SettingsLoad {}).await))
    }

    /// `os info`: the application's text (`uname`-like; `format`: Zephyr's letters, all by default).
    #[pyo3(signature = (format, aio))]
    fn info<'py>(&self, py: Python<'py>, format: Option<String>, aio: bool) -> PyResult<Bound<'py, PyAny>> {
        with_session!(self, py, aio, |s| Ok(s.client().request(&AppInfo { format }).await?.output))
    }

    /// The device's management groups (JSON list of `{group, name, handlers}`).
    fn groups<'py>(&self, py: Python<'py>, aio: bool) -> PyResult<Bound<'py, PyAny>> {
        with_session!(self, py, aio, |s| json(&groups::list(s.client()).await?))
    }

    /// `os tasks`: thread name to its statistics (JSON map).
    fn os_tasks<'py>(&self, py: Python<'py>, aio: bool) -> PyResult<Bound<'py, PyAny>> {
        with_session!(self, py, aio, |s| json(&s.client().request(&TaskStats {}).await?.tasks))
    }

    /// `os mempool`: memory pool name to its statistics (JSON map).
    fn os_mempool<'py>(&self, py: Python<'py>, aio: bool) -> PyResult<Bound<'py, PyAny>> {
        with_session!(self, py, aio, |s| json(&s.client().request(&MemPoolStats {}).await?.mpools))
    }

    /// `os datetime`: the device's clock as its text (`2026-01-02T03:04:05`).
    fn datetime_get<'py>(&self, py: Python<'py>, aio: bool) -> PyResult<Bound<'py, PyAny>> {
        with_session!(self, py, aio, |s| Ok(s.client().request(&DateTimeGet {}).await?.datetime))
    }

    /// `os datetime set`: sets the device's clock (the device checks the text).
    fn datetime_set<'py>(&self, py: Python<'py>, datetime: String, aio: bool) -> PyResult<Bound<'py, PyAny>> {
        with_session!(self, py, aio, |s| done(s.client().request(&DateTimeSet { datetime }).await))
    }

    /// Zephyr basic `storage erase`: the storage partition (settings, files) is erased.
    fn storage_erase<'py>(&self, py: Python<'py>, aio: bool) -> PyResult<Bound<'py, PyAny>> {
        with_session!(self, py, aio, |s| done(s.client().request(&StorageErase {}).await))
    }

    /// `image slots`: each image's slots with their sizes (JSON list).
    fn image_slots<'py>(&self, py: Python<'py>, aio: bool) -> PyResult<Bound<'py, PyAny>> {
        with_session!(self, py, aio, |s| json(&s.client().request(&SlotInfo {}).await?.images))
    }

    /// fs hash: the device's hash or checksum of a file (`kind`: `sha256`, `crc32`, or the
    /// device's default). JSON `{"type", "len", "output"}` with `output` in hex.
    #[pyo3(signature = (remote, kind, aio))]
    fn fs_hash<'py>(
        &self,
        py: Python<'py>,
        remote: String,
        kind: Option<String>,
        aio: bool,
    ) -> PyResult<Bound<'py, PyAny>> {
        let kind = match kind {
            None => None,
            Some(k) => Some(HashKind::from_name(&k).map(HashKind::name).ok_or_else(|| {
                pyo3::exceptions::PyValueError::new_err(format!("{k:?} is not a hash type: sha256 or crc32"))
            })?),
        };
        with_session!(self, py, aio, |s| {
            let req = FileHash { name: remote, kind: kind.map(String::from), off: None, len: None };
            let r = s.client().request(&req).await?;
            json(&serde_json::json!({ "type": r.kind, "len": r.len, "output": r.output.to_hex() }))
        })
    }

    /// fs status: a file's length.
    fn fs_stat<'py>(&self, py: Python<'py>, remote: String, aio: bool) -> PyResult<Bound<'py, PyAny>> {
        with_session!(self, py, aio, |s| Ok(s.client().request(&FileStatus { name: remote }).await?.len))
    }

    /// Erases a slot (the device's default, the secondary, without one).
    #[pyo3(signature = (slot, aio))]
    fn image_erase<'py>(&self, py: Python<'py>, slot: Option<u32>, aio: bool) -> PyResult<Bound<'py, PyAny>> {
        with_session!(self, py, aio, |s, inner| {
            s.client().request(&ImageErase { slot }).await?;
            Ok(())
        })
    }

    /// Resets the device.
    #[pyo3(signature = (force, boot_mode, aio))]
    fn reset<'py>(
        &self,
        py: Python<'py>,
        force: bool,
        boot_mode: Option<u8>,
        aio: bool,
    ) -> PyResult<Bound<'py, PyAny>> {
        with_session!(self, py, aio, |s, inner| {
            s.client().request(&Reset { force: force.then_some(1), boot_mode }).await?;
            Ok(())
        })
    }

    /// A whole DFU, blocking; `progress` gets each event's JSON on the calling thread.
    /// Returns the report's JSON.
    #[pyo3(signature = (path, mode=None, force=false, recovery=false, window=None, chunk=None, progress=None))]
    #[allow(clippy::too_many_arguments)]
    fn dfu(
        &self,
        py: Python<'_>,
        path: PathBuf,
        mode: Option<String>,
        force: bool,
        recovery: bool,
        window: Option<usize>,
        chunk: Option<usize>,
        progress: Option<Bound<'_, PyAny>>,
    ) -> PyResult<String> {
        let (tx, rx) = unbounded_channel();
        let fut = self.dfu_future(path, self::mode(mode)?, force, recovery, window, chunk, tx);
        block(py, fut, Some(rx), progress.as_ref())
    }

    /// A whole DFU for asyncio: an awaitable of the report's JSON, and the stream of its events.
    #[pyo3(signature = (path, mode=None, force=false, recovery=false, window=None, chunk=None))]
    #[allow(clippy::too_many_arguments)]
    fn dfu_async<'py>(
        &self,
        py: Python<'py>,
        path: PathBuf,
        mode: Option<String>,
        force: bool,
        recovery: bool,
        window: Option<usize>,
        chunk: Option<usize>,
    ) -> PyResult<(Bound<'py, PyAny>, EventStream)> {
        let (tx, rx) = unbounded_channel();
        let fut = self.dfu_future(path, self::mode(mode)?, force, recovery, window, chunk, tx);
        let awaitable = run(py, true, fut)?;
        Ok((awaitable, EventStream { rx: Arc::new(Mutex::new(rx)) }))
    }

    /// fs upload of `data` to the device's file `remote`, pipelined and checked with the
    /// device's hash, as `smpflash fs upload`, blocking; `progress` gets each event's JSON.
    /// Returns the JSON of the file report.
    #[pyo3(signature = (data, remote, progress=None))]
    fn fs_upload(
        &self,
        py: Python<'_>,
        data: PyBackedBytes,
        remote: String,
        progress: Option<Bound<'_, PyAny>>,
    ) -> PyResult<String> {
        let (tx, rx) = unbounded_channel();
        block(py, self.fs_upload_future(data.to_vec(), remote, tx), Some(rx), progress.as_ref())
    }

    /// The fs upload for asyncio: an awaitable of the report's JSON, and the stream of its
    /// events.
    fn fs_upload_async<'py>(
        &self,
        py: Python<'py>,
        data: PyBackedBytes,
        remote: String,
    ) -> PyResult<(Bound<'py, PyAny>, EventStream)> {
        let (tx, rx) = unbounded_channel();
        let awaitable = run(py, true, self.fs_upload_future(data.to_vec(), remote, tx))?;
        Ok((awaitable, EventStream { rx: Arc::new(Mutex::new(rx)) }))
    }

    /// fs download of the device's file `remote`, pipelined and checked, as `smpflash fs
    /// download`, blocking; `progress` as for `fs_upload`. JSON `{"report", "hex"}`.
    #[pyo3(signature = (remote, progress=None))]
    fn fs_download(
        &self,
        py: Python<'_>,
        remote: String,
        progress: Option<Bound<'_, PyAny>>,
    ) -> PyResult<String> {
        let (tx, rx) = unbounded_channel();
        block(py, self.fs_download_future(remote, tx), Some(rx), progress.as_ref())
    }

    /// The fs download for asyncio: an awaitable of its JSON, and the stream of its events.
    fn fs_download_async<'py>(
        &self,
        py: Python<'py>,
        remote: String,
    ) -> PyResult<(Bound<'py, PyAny>, EventStream)> {
        let (tx, rx) = unbounded_channel();
        let awaitable = run(py, true, self.fs_download_future(remote, tx))?;
        Ok((awaitable, EventStream { rx: Arc::new(Mutex::new(rx)) }))
    }

    /// Uploads a file's images to their free slots (no marking, no reset), blocking; returns
    /// the JSON list of upload reports.
    #[pyo3(signature = (path, window=None, chunk=None, progress=None))]
    fn upload(
        &self,
        py: Python<'_>,
        path: PathBuf,
        window: Option<usize>,
        chunk: Option<usize>,
        progress: Option<Bound<'_, PyAny>>,
    ) -> PyResult<String> {
        let (tx, rx) = unbounded_channel();
        block(py, self.upload_future(path, window, chunk, tx), Some(rx), progress.as_ref())
    }

    /// The upload for asyncio: an awaitable of the reports' JSON, and the stream of its events.
    #[pyo3(signature = (path, window=None, chunk=None))]
    fn upload_async<'py>(
        &self,
        py: Python<'py>,
        path: PathBuf,
        window: Option<usize>,
        chunk: Option<usize>,
    ) -> PyResult<(Bound<'py, PyAny>, EventStream)> {
        let (tx, rx) = unbounded_channel();
        let awaitable = run(py, true, self.upload_future(path, window, chunk, tx))?;
        Ok((awaitable, EventStream { rx: Arc::new(Mutex::new(rx)) }))
    }
}

impl NativeDevice {
    /// Every image of the file to its image's free slot, as `smpflash image upload`.
    fn upload_future(
        &self,
        path: PathBuf,
        window: Option<usize>,
        chunk: Option<usize>,
        tx: UnboundedSender<String>,
    ) -> impl std::future::Future<Output = Result<String, Failure>> + Send + 'static {
        let inner = self.inner();
        async move {
            let package = mcuboot::load(&path)?;
            session!(s, inner);
            let limits = Limits::query(s.client()).await?;
            let events = Events(tx);
            let mut reports = Vec::new();
            for image in &package.images {
                let options = UploadOptions {
                    image: image.image_index,
                    window,
                    chunk,
                    timeout: inner.timeout,
                    ..Default::default()
                };
                reports.push(upload::upload(s, image.image.bytes(), &limits, &options, &events).await?);
            }
            json(&reports)
        }
    }

    /// `data` to the device's file `remote`, as `smpflash fs upload`.
    fn fs_upload_future(
        &self,
        data: Vec<u8>,
        remote: String,
        tx: UnboundedSender<String>,
    ) -> impl std::future::Future<Output = Result<String, Failure>> + Send + 'static {
        let inner = self.inner();
        async move {
            session!(s, inner);
            let limits = Limits::query(s.client()).await?;
            let opts = UploadOptions { timeout: inner.timeout, ..Default::default() };
            json(&fs::upload_file(s, &remote, &data, &limits, &opts, &Events(tx)).await?)
        }
    }

    /// The device's file `remote`, as `smpflash fs download`.
    fn fs_download_future(
        &self,
        remote: String,
        tx: UnboundedSender<String>,
    ) -> impl std::future::Future<Output = Result<String, Failure>> + Send + 'static {
        let inner = self.inner();
        async move {
            session!(s, inner);
            let limits = Limits::query(s.client()).await?;
            let opts = UploadOptions { timeout: inner.timeout, ..Default::default() };
            let (bytes, report) = fs::download_file(s, &remote, &limits, &opts, &Events(tx)).await?;
            json(&serde_json::json!({ "report": report, "hex": hex::encode(bytes) }))
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn dfu_future(
        &self,
        path: PathBuf,
        mode: Option<Mode>,
        force: bool,
        recovery: bool,
        window: Option<usize>,
        chunk: Option<usize>,
        tx: UnboundedSender<String>,
    ) -> impl std::future::Future<Output = Result<String, Failure>> + Send + 'static {
        let inner = self.inner();
        async move {
            let package = mcuboot::load(&path)?;
            let options = DfuOptions {
                mode,
                upload: UploadOptions { window, chunk, timeout: inner.timeout, ..Default::default() },
                force,
                enter_recovery: recovery,
                ..Default::default()
            };
            session!(s, inner);
            let events = Events(tx);
            json(&dfu::dfu(s, &package, &options, &events).await?)
        }
    }
}
