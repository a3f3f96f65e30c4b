//! The request layer: sequence numbers, answers matched to requests, several requests in
//! flight, per-request timeouts, and stray answers reported without failing anyone.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use crate::command::{self, Command};
use crate::error::{Error, Result};
use crate::frame::{Frame, Version};
use crate::rc;
use crate::transport::{Transport, TransportError, TransportKind};

/// Attempts of [`Client::request_idempotent`]: all within the request's one timeout.
pub const IDEMPOTENT_ATTEMPTS: u32 = 4;

/// How long a request waits for its answer unless told otherwise.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(5);

/// Sequence numbers remembered after their request ended, to tell late and duplicate answers
/// from answers nobody asked for.
const REMEMBERED: usize = 64;

/// Counts of answers that matched no waiting request.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct Stats {
    /// Requests sent.
    pub sent: u64,
    /// Answers delivered to their request.
    pub answered: u64,
    /// Requests that timed out, or whose answer stopped being waited for because another
    /// copy of the same idempotent request was answered.
    pub timed_out: u64,
    /// Answers that came after their request timed out.
    pub late: u64,
    /// Second answers to a request already answered.
    pub duplicate: u64,
    /// Answers with a sequence number no request used recently, or whose group/command did
    /// not match the request holding that number.
    pub unknown: u64,
    /// Frames from the device that did not decode.
    pub malformed: u64,
}

struct Waiter {
    group: u16,
    id: u8,
    reply: oneshot::Sender<Frame>,
}

#[derive(Default)]
struct Table {
    waiters: HashMap<u8, Waiter>,
    next_seq: u8,
    timed_out: VecDeque<u8>,
    answered: VecDeque<u8>,
    closed: Option<TransportError>,
    stats: Stats,
}

fn remember(list: &mut VecDeque<u8>, seq: u8) {
    list.retain(|&s| s != seq);
    if list.len() == REMEMBERED {
        list.pop_front();
    }
    list.push_back(seq);
}

struct Shared {
    transport: Arc<dyn Transport>,
    table: Mutex<Table>,
    version: Mutex<Version>,
    device_buf: Mutex<DeviceBuf>,
}

/// What the client knows of the device's SMP buffer, to refuse a request before sending it
/// when its frame (plus the transport's framing) would not fit.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DeviceBuf {
    /// `buf_size` from the device's params answer.
    pub reported: Option<usize>,
    /// The user's (`--buf-size`): wins over `reported`.
    pub given: Option<usize>,
}

impl DeviceBuf {
    /// The buffer size requests are checked against, and whether the device reported it.
    pub fn limit(&self) -> Option<(usize, bool)> {
        self.given.map(|g| (g, false)).or(self.reported.map(|r| (r, true)))
    }
}

impl Shared {
    fn table(&self) -> MutexGuard<'_, Table> {
        // A panic while holding the lock leaves plain counters behind; keep going.
        self.table.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn dispatch(&self, bytes: &[u8]) {
        let frame = match Frame::decode(bytes) {
            Ok(f) => f,
            Err(e) => {
                // The same checks as `smpflash decode`, so the log says what is wrong in words.
                let why: Vec<String> =
                    crate::decode::inspect(bytes, Some(crate::decode::Direction::Response))
                        .iter()
                        .flat_map(|r| r.findings())
                        .collect();
                tracing::warn!("dropping malformed frame from device: {e} ({})", why.join("; "));
                self.table().stats.malformed += 1;
                return;
            }
        };
        tracing::debug!("<- {}", crate::frame::describe(bytes));
        let mut t = self.table();
        let seq = frame.header.seq;
        let matches = t.waiters.get(&seq).map(|w| {
            w.group == frame.header.group && w.id == frame.header.id && frame.header.op.is_response()
        });
        match matches {
            Some(true) => {
                let waiter = t.waiters.remove(&seq).expect("checked above");
                remember(&mut t.answered, seq);
                t.stats.answered += 1;
                // The requester may have given up in the same instant; nothing to do then.
                let _ = waiter.reply.send(frame);
            }
            Some(false) => {
                t.stats.unknown += 1;
                tracing::warn!("answer with sequence {seq} does not match the request using it");
            }
            None if t.timed_out.contains(&seq) => {
                t.stats.late += 1;
                tracing::warn!("late answer to sequence {seq} (its request had timed out)");
            }
            None if t.answered.contains(&seq) => {
                t.stats.duplicate += 1;
                tracing::warn!("duplicate answer to sequence {seq}");
            }
            None => {
                t.stats.unknown += 1;
                tracing::warn!("answer with unknown sequence {seq}");
            }
        }
    }

    fn close(&self, why: TransportError) {
        let mut t = self.table();
        // Dropping the senders wakes every waiter with a closed channel.
        t.waiters.clear();
        t.closed = Some(why);
    }
}

/// Frees a request's sequence number however the request ends.
struct Abandon<'a> {
    shared: &'a Shared,
    seq: u8,
}

impl Abandon<'_> {
    fn finish(self, timed_out: bool) {
        let mut t = self.shared.table();
        if t.waiters.remove(&self.seq).is_some() {
            if timed_out {
                t.stats.timed_out += 1;
            }
            remember(&mut t.timed_out, self.seq);
        }
        drop(t);
        std::mem::forget(self);
    }
}

impl Drop for Abandon<'_> {
    fn drop(&mut self) {
        let mut t = self.shared.table();
        if t.waiters.remove(&self.seq).is_some() {
            remember(&mut t.timed_out, self.seq);
        }
    }
}

/// Sends typed requests over a [`Transport`] and returns their typed answers.
///
/// Cheap to share by reference: every method takes `&self`, so several requests can be in
/// flight at once from concurrent futures. A background task reads the transport; it stops when
/// the link reports an error, after which every request fails with
/// a [`TransportKind::LinkLost`] error.
pub struct Client {
    shared: Arc<Shared>,
    reader: JoinHandle<()>,
    timeout: Duration,
}

impl Drop for Client {
    fn drop(&mut self) {
        self.reader.abort();
    }
}

impl Client {
    /// Starts the request layer on `transport`. Must be called inside a tokio runtime.
    pub fn new(transport: Arc<dyn Transport>) -> Self {
        let shared = Arc::new(Shared {
            transport,
            table: Mutex::new(Table::default()),
            version: Mutex::new(Version::V2),
            device_buf: Mutex::new(DeviceBuf::default()),
        });
        let reader_shared = shared.clone();
        let reader = tokio::spawn(async move {
            loop {
                match reader_shared.transport.recv().await {
                    Ok(bytes) => reader_shared.dispatch(&bytes),
                    Err(e) => {
                        tracing::debug!("transport closed: {e}");
                        // Whatever broke the reader, the link is unusable from here: every
                        // later request reports it as lost, which the engines answer by
                        // reconnecting.
                        let why = match e {
                            Error::Transport(t) if t.kind == TransportKind::LinkLost => t,
                            other => TransportError::new(TransportKind::LinkLost, other.to_string()),
                        };
                        reader_shared.close(why);
                        break;
                    }
                }
            }
        });
        Client { shared, reader, timeout: DEFAULT_TIMEOUT }
    }

    /// Sets the timeout used by [`request`](Self::request).
    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// The timeout used by [`request`](Self::request).
    pub fn timeout(&self) -> Duration {
        self.timeout
    }

    /// The SMP version requests are sent with.
    pub fn version(&self) -> Version {
        *self.shared.version.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Forces the SMP version (the client starts with v2 and falls back by itself).
    pub fn set_version(&self, version: Version) {
        *self.shared.version.lock().unwrap_or_else(|e| e.into_inner()) = version;
    }

    /// What the client knows of the device's buffer.
    pub fn device_buf(&self) -> DeviceBuf {
        *self.shared.device_buf.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Replaces what the client knows of the device's buffer (a session carries it over a
    /// reconnect).
    pub fn set_device_buf(&self, buf: DeviceBuf) {
        *self.shared.device_buf.lock().unwrap_or_else(|e| e.into_inner()) = buf;
    }

    /// Records the `buf_size` the device reported ([`Limits::query`](crate::upload::Limits::query)
    /// does): requests whose frame would not fit fail before they are sent.
    pub fn set_reported_buf_size(&self, size: Option<usize>) {
        self.shared.device_buf.lock().unwrap_or_else(|e| e.into_inner()).reported = size;
    }

    /// Records the buffer size the user gave (`--buf-size`), which wins over a reported one.
    pub fn set_given_buf_size(&self, size: Option<usize>) {
        self.shared.device_buf.lock().unwrap_or_else(|e| e.into_inner()).given = size;
    }

    /// Largest frame the transport carries.
    pub fn max_frame(&self) -> usize {
        self.shared.transport.max_frame()
    }

    /// Bytes of the device's buffer the transport's framing uses besides the frame.
    pub fn frame_overhead(&self) -> usize {
        self.shared.transport.frame_overhead()
    }

    /// Size of the pieces the transport splits frames into (1: frames travel whole).
    pub fn piece_len(&self) -> usize {
        self.shared.transport.piece_len()
    }

    /// Closes the transport ([`Transport::close`]): over BLE, disconnects. Requests after
    /// this fail.
    pub async fn close(&self) -> Result<()> {
        self.shared.transport.close().await
    }

    /// The transport's description.
    pub fn describe(&self) -> String {
        self.shared.transport.describe()
    }

    /// Counters of requests, answers and stray answers so far.
    pub fn stats(&self) -> Stats {
        self.shared.table().stats
    }

    /// How long [`request`](Self::request) waits for an answer to a `C`: the command's own
    /// timeout ([`Command::TIMEOUT`], e.g. an erase) or the ordinary one, whichever is longer.
    pub fn timeout_for<C: Command>(&self) -> Duration {
        command::timeout_for::<C>(self.timeout)
    }

    /// Sends `cmd` and waits for its answer for [`timeout_for`](Self::timeout_for).
    pub async fn request<C: Command>(&self, cmd: &C) -> Result<C::Response> {
        self.request_with_timeout(cmd, self.timeout_for::<C>()).await
    }

    /// Sends a request that may safely reach the device twice (reads, and marks Zephyr treats
    /// as no-ops when repeated), asking again when its answer is slow to come, up to
    /// [`IDEMPOTENT_ATTEMPTS`] times in all, all within the one timeout
    /// [`request`](Self::request) would wait: the k-th copy goes out after k quarters of it
    /// without an answer, earlier copies keep waiting, and the first answer to any of them
    /// is taken. A lost request or answer is recovered, a slow device is not cut short, and
    /// the whole never takes longer than the timeout. A reset must never go through here: a
    /// second one would revert an image under test.
    pub async fn request_idempotent<C: Command>(&self, cmd: &C) -> Result<C::Response> {
        use futures_util::stream::{FuturesUnordered, StreamExt};
        let total = self.timeout_for::<C>();
        let started = tokio::time::Instant::now();
        let deadline = started + total;
        let spacing = total / IDEMPOTENT_ATTEMPTS;
        let mut attempts = FuturesUnordered::new();
        let mut sent = 0;
        loop {
            if sent < IDEMPOTENT_ATTEMPTS {
                let left = deadline.saturating_duration_since(tokio::time::Instant::now());
                attempts.push(self.request_with_timeout(cmd, left));
                sent += 1;
            }
            let next = if sent < IDEMPOTENT_ATTEMPTS { started + spacing * sent } else { deadline + total };
            let result = match tokio::time::timeout_at(next, attempts.next()).await {
                // Time for another copy.
                Err(_) => continue,
                Ok(None) => unreachable!("at least one attempt is waiting"),
                Ok(Some(Err(Error::Timeout { what, seq, .. }))) => {
                    Err(Error::Timeout { what, seq, timeout_ms: total.as_millis() as u64 })
                }
                Ok(Some(other)) => other,
            };
            // The copies still waiting are given up unanswered: they count as timed out.
            let unanswered = attempts.len() as u64;
            drop(attempts);
            self.shared.table().stats.timed_out += unanswered;
            return result;
        }
    }

    /// Sends `cmd` and waits up to `timeout` for its answer.
    ///
    /// A device that answers a v2 request in v1 does not speak v2: the client switches to v1
    /// for good and asks once more.
    pub async fn request_with_timeout<C: Command>(&self, cmd: &C, timeout: Duration) -> Result<C::Response> {
        let version = self.version();
        let frame = self.exchange(cmd, version, timeout).await?;
        match command::decode_response::<C>(&frame) {
            Err(Error::Device(e))
                if version == Version::V2
                    && frame.header.version == Version::V1
                    && e.group.is_none()
                    && [rc::MGMT_ERR_EUNKNOWN, rc::MGMT_ERR_ENOTSUP, rc::MGMT_ERR_UNSUPPORTED_TOO_NEW]
                        .contains(&e.rc) =>
            {
                tracing::info!("device answered SMP v2 with v1 error {}; falling back to v1", e.rc);
                self.set_version(Version::V1);
                let frame = self.exchange(cmd, Version::V1, timeout).await?;
                command::decode_response::<C>(&frame)
            }
            other => other,
        }
    }

    /// Sends `cmd` and returns the answer frame as it came, for a command whose error answers
    /// carry data (fs upload's `FS_MGMT_ERR_FILE_OFFSET_NOT_VALID` with the file's `len`).
    /// Uses the version already settled; no v1 fallback.
    pub async fn request_frame<C: Command>(&self, cmd: &C, timeout: Duration) -> Result<Frame> {
        self.exchange(cmd, self.version(), timeout).await
    }

    async fn exchange<C: Command>(&self, cmd: &C, version: Version, timeout: Duration) -> Result<Frame> {
        let (tx, rx) = oneshot::channel();
        let seq = {
            let mut t = self.shared.table();
            if let Some(why) = &t.closed {
                return Err(Error::Transport(why.clone()));
            }
            let seq = (0..=u8::MAX)
                .map(|i| t.next_seq.wrapping_add(i))
                .find(|s| !t.waiters.contains_key(s))
                .ok_or(Error::SequenceExhausted)?;
            t.next_seq = seq.wrapping_add(1);
            t.waiters.insert(seq, Waiter { group: C::GROUP, id: C::ID, reply: tx });
            t.stats.sent += 1;
            seq
        };
        // Whether the request ends in an answer, an error, a timeout or its future being
        // dropped (a pipelined upload abandons requests it no longer needs), its sequence
        // number must be freed, and an answer coming later must count as late.
        let guard = Abandon { shared: &self.shared, seq };
        let result = self.send_and_wait::<C>(cmd, version, seq, rx, timeout).await;
        guard.finish(matches!(result, Err(Error::Timeout { .. })));
        result
    }

    async fn send_and_wait<C: Command>(
        &self,
        cmd: &C,
        version: Version,
        seq: u8,
        rx: oneshot::Receiver<Frame>,
        timeout: Duration,
    ) -> Result<Frame> {
        let frame = command::encode_request(cmd, version, seq)?;
        let bytes = frame.encode();
        let limit = self.shared.transport.max_frame();
        if bytes.len() > limit {
            return Err(Error::FrameTooLarge { size: bytes.len(), limit });
        }
        if let Some((buf_size, reported)) = self.device_buf().limit() {
            let overhead = self.shared.transport.frame_overhead();
            if bytes.len() + overhead > buf_size {
                return Err(Error::TooLargeForDevice {
                    what: C::NAME,
                    frame: bytes.len(),
                    overhead,
                    buf_size,
                    reported,
                });
            }
        }
        tracing::debug!("-> {}: {}", C::NAME, crate::frame::describe(&bytes));
        self.shared.transport.send(&bytes).await?;
        match tokio::time::timeout(timeout, rx).await {
            Ok(Ok(frame)) => Ok(frame),
            Ok(Err(_)) => Err(Error::Transport(
                self.shared
                    .table()
                    .closed
                    .clone()
                    .unwrap_or_else(|| TransportError::new(TransportKind::LinkLost, "link closed")),
            )),
            Err(_) => {
                Err(Error::Timeout { what: C::NAME.into(), seq, timeout_ms: timeout.as_millis() as u64 })
            }
        }
    }
}
