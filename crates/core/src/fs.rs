//! File transfers over the fs group: a pipelined upload (the upload engine with a
//! [`FileTarget`]), a pipelined download, and the check of the result against the device's
//! hash or checksum.
//!
//! Zephyr's fs_mgmt keeps one file open and takes upload chunks strictly in order: a chunk
//! whose `off` is not the file's length is refused with `FS_MGMT_ERR_FILE_OFFSET_NOT_VALID`
//! and that length as `len`. [`FileTarget`] reads that answer as the device's offset, so the
//! engine resyncs from it exactly as from an image upload's `off`. Downloads are reads at any
//! offset (the device seeks), so several are kept in flight and put together by offset.

use std::collections::{BTreeSet, VecDeque};
use std::time::{Duration, Instant};

use futures_util::stream::{FuturesUnordered, StreamExt};
use serde::{Deserialize, Serialize};
use serde_bytes::ByteBuf;
use sha2::{Digest, Sha256};

use crate::client::Client;
use crate::command::fs::{
    FileClose, FileDownload, FileDownloadResponse, FileHash, FileStatus, FileUpload, HashOutput,
    SupportedHashes,
};
use crate::command::{self, Command};
use crate::error::{Error, ProtocolError, Result};
use crate::frame::Version;
use crate::progress::{Event, FileTransfer, Progress, UploadStart};
use crate::rc;
use crate::session::Session;
use crate::transport::TransportKind;
use crate::upload::{Ack, ChunkRequest, Limits, Target, UploadOptions, UploadReport};

impl ChunkRequest for FileUpload {
    fn data_mut(&mut self) -> &mut ByteBuf {
        &mut self.data
    }
}

/// A file on the device as an upload target.
#[derive(Debug, Clone)]
pub struct FileTarget {
    /// Path on the device.
    pub name: String,
}

#[derive(Deserialize)]
struct LenOnly {
    #[serde(default)]
    len: Option<u64>,
}

impl Target for FileTarget {
    type Request = FileUpload;

    fn request(&self, off: u64, total: u64, data: ByteBuf) -> FileUpload {
        FileUpload { off, data, name: self.name.clone(), len: (off == 0).then_some(total) }
    }

    /// A file upload goes on where the device's file ends; a chunk at offset 0 would truncate
    /// it. If the device has more or less than `confirmed`, it says so and the engine resyncs.
    fn reopen(&self, confirmed: u64) -> (u64, Option<usize>) {
        (confirmed, None)
    }

    async fn send(&self, client: &Client, req: &FileUpload, timeout: Duration) -> Result<Ack> {
        let frame = client.request_frame(req, timeout).await?;
        match command::decode_response::<FileUpload>(&frame) {
            Ok(r) => Ok(Ack { off: r.off, matched: None }),
            // v2: the group's error with the file's length beside it.
            Err(Error::Device(e))
                if e.group == Some(rc::group::FS) && e.rc == rc::fs::FILE_OFFSET_NOT_VALID =>
            {
                let len = crate::cbor::from_slice::<LenOnly>(&frame.body, FileUpload::NAME)?.len;
                match len {
                    Some(off) => Ok(Ack { off, matched: None }),
                    None => self.length(client, timeout).await.map_err(|_| Error::Device(e)),
                }
            }
            // v1 translates that error into MGMT_ERR_EUNKNOWN and drops `len`: the file's
            // length says where the device is.
            Err(Error::Device(e))
                if frame.header.version == Version::V1
                    && e.group.is_none()
                    && e.rc == rc::MGMT_ERR_EUNKNOWN
                    && req.off > 0 =>
            {
                self.length(client, timeout).await.map_err(|_| Error::Device(e))
            }
            Err(e) => Err(e),
        }
    }

    fn image(&self) -> u32 {
        0
    }

    fn file(&self) -> Option<FileTransfer> {
        Some(FileTransfer { path: self.name.clone(), download: false })
    }
}

impl FileTarget {
    async fn length(&self, client: &Client, timeout: Duration) -> Result<Ack> {
        let s = client.request_with_timeout(&FileStatus { name: self.name.clone() }, timeout).await?;
        Ok(Ack { off: s.len, matched: None })
    }
}

/// A hash or checksum type smpflash can compute locally.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
#[cfg_attr(feature = "clap", derive(clap::ValueEnum))]
pub enum HashKind {
    /// SHA-256 (`CONFIG_MCUMGR_GRP_FS_HASH_SHA256`).
    Sha256,
    /// IEEE CRC-32 (`CONFIG_MCUMGR_GRP_FS_CHECKSUM_IEEE_CRC32`).
    Crc32,
}

impl HashKind {
    /// The name the fs group uses.
    pub fn name(self) -> &'static str {
        match self {
            HashKind::Sha256 => "sha256",
            HashKind::Crc32 => "crc32",
        }
    }

    /// The kind with the fs group's name `name`.
    pub fn from_name(name: &str) -> Option<HashKind> {
        match name {
            "sha256" => Some(HashKind::Sha256),
            "crc32" => Some(HashKind::Crc32),
            _ => None,
        }
    }

    /// This hash of `bytes`, in the form the device answers it.
    pub fn of(self, bytes: &[u8]) -> HashOutput {
        match self {
            HashKind::Sha256 => HashOutput::Bytes(ByteBuf::from(Sha256::digest(bytes).to_vec())),
            HashKind::Crc32 => HashOutput::Number(u64::from(crc32fast::hash(bytes))),
        }
    }
}

/// How a transfer was checked.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Verified {
    /// The type the device computed.
    pub kind: HashKind,
    /// Its value (hex), equal on both sides.
    pub value: String,
}

/// What a file transfer did.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FileReport {
    /// Path on the device.
    pub remote: String,
    /// Bytes moved.
    pub bytes: u64,
    /// Wall time of the transfer, without the check.
    pub seconds: f64,
    /// Largest data length per chunk.
    pub chunk: usize,
    /// Largest number of requests in flight.
    pub window: usize,
    /// Requests sent more than once.
    pub retransmits: u64,
    /// Reconnections.
    pub reconnects: u32,
    /// The device's hash or checksum of the file matched the local one; `None`: the device
    /// has no hash command or none smpflash knows.
    pub verified: Option<Verified>,
    /// Transfers made: 1, or 2 when the first did not match the device's hash and the file
    /// went again one chunk at a time ([`retry_options`]).
    pub attempts: u32,
}

/// After a transfer the device's hash did not match: the options for the one more try, or
/// `None` when it already went one request at a time. A link that loses back-to-back frames
/// (an emulated UART that drops bursts, a USB CDC device with few receive buffers) makes the
/// device answer chunks sent again with offset errors, after which Zephyr may hold a file
/// other than the one it acknowledged (the private `close_file` says how); stop-and-wait
/// sends nothing back to back.
pub fn retry_options(opts: &UploadOptions) -> Option<UploadOptions> {
    (opts.window != Some(1)).then(|| UploadOptions { window: Some(1), ..opts.clone() })
}

/// What the second try says before it starts (as [`Event::Restarted`]).
fn retry_reason(e: &Error) -> String {
    format!("{e}: sending it again, one request at a time")
}

/// Picks the hash to check with: the strongest the device lists, else SHA-256 then CRC-32 by
/// trying, `None` when the device has no hash command.
async fn check_kind(client: &Client) -> Result<Option<HashKind>> {
    match client.request_idempotent(&SupportedHashes {}).await {
        Ok(s) => {
            for k in [HashKind::Sha256, HashKind::Crc32] {
                if s.types.contains_key(k.name()) {
                    return Ok(Some(k));
                }
            }
            Ok(None)
        }
        Err(Error::Device(e)) if e.is_not_supported() => Ok(Some(HashKind::Sha256)),
        Err(e) => Err(e),
    }
}

/// Checks the device's file `name` against `bytes` with the best hash the device has.
pub async fn verify(client: &Client, name: &str, bytes: &[u8]) -> Result<Option<Verified>> {
    if bytes.is_empty() {
        // Zephyr refuses to hash an empty file (FS_MGMT_ERR_FILE_EMPTY); its length says it all.
        let len = client.request_idempotent(&FileStatus { name: name.into() }).await.map(|s| s.len);
        return match len {
            Ok(0) => Ok(None),
            Ok(n) => Err(Error::FileMismatch { name: name.into(), what: format!("length {n}, expected 0") }),
            Err(Error::Device(e)) if e.is_not_supported() => Ok(None),
            Err(e) => Err(e),
        };
    }
    let Some(first) = check_kind(client).await? else { return Ok(None) };
    let mut kinds = vec![first];
    if first == HashKind::Sha256 {
        // Without the list of types, SHA-256 was a guess; CRC-32 is the other one Zephyr has.
        kinds.push(HashKind::Crc32);
    }
    for kind in kinds {
        // A read: asked again when its answer is slow to come (a lost request or answer on a
        // lossy link would otherwise fail a transfer that went through).
        let answer = client
            .request_idempotent(&FileHash {
                name: name.into(),
                kind: Some(kind.name().into()),
                off: None,
                len: None,
            })
            .await;
        let r = match answer {
            Ok(r) => r,
            Err(Error::Device(e))
                if e.is_not_supported()
                    || (e.group == Some(rc::group::FS) && e.rc == rc::fs::CHECKSUM_HASH_NOT_FOUND) =>
            {
                continue
            }
            Err(e) => return Err(e),
        };
        let local = kind.of(bytes);
        if r.len != bytes.len() as u64 || r.output != local {
            return Err(Error::FileMismatch {
                name: name.into(),
                what: format!(
                    "device {} {} over {} bytes, local {} over {} bytes",
                    kind.name(),
                    r.output.to_hex(),
                    r.len,
                    local.to_hex(),
                    bytes.len()
                ),
            });
        }
        return Ok(Some(Verified { kind, value: local.to_hex() }));
    }
    Ok(None)
}

/// Has the device close the file its fs group holds open, where it has the command
/// (`fs_mgmt_close_opened_file`; older devices answer "not supported", and close it after an
/// idle time). Zephyr closes an upload's file by itself only when it still knows the length
/// from the first chunk: after an offset error it forgets it, and the file stays open and
/// partly unwritten to flash (the hash then covers less than was acknowledged), and a new
/// upload from offset 0 into the still-open file counts on from the old length (Zephyr 4.4
/// `fs_mgmt_file_upload` truncates the file but not its offset). Both measured on native_sim's
/// `serial` build.
async fn close_file(client: &Client) -> Result<()> {
    // Closing twice closes nothing more: it may be asked again.
    match client.request_idempotent(&FileClose {}).await {
        Ok(_) => Ok(()),
        Err(Error::Device(e)) if e.is_not_supported() => Ok(()),
        Err(e) => Err(e),
    }
}

/// Uploads `bytes` to the device's file `name` (created or replaced), pipelined, then checks
/// it with the device's hash when it has one. When the hash does not match, the file goes once
/// more one request at a time ([`retry_options`]); a second mismatch is the error.
pub async fn upload_file(
    session: &mut Session,
    name: &str,
    bytes: &[u8],
    limits: &Limits,
    opts: &UploadOptions,
    progress: &dyn Progress,
) -> Result<FileReport> {
    match upload_once(session, name, bytes, limits, opts, progress).await {
        Err(e @ Error::FileMismatch { .. }) => {
            let Some(again) = retry_options(opts) else { return Err(e) };
            tracing::debug!("fs upload of {name} did not match; trying once more at window 1");
            progress.event(&Event::Restarted { reason: retry_reason(&e) });
            let report = upload_once(session, name, bytes, limits, &again, progress).await?;
            Ok(FileReport { attempts: 2, ..report })
        }
        other => other,
    }
}

async fn upload_once(
    session: &mut Session,
    name: &str,
    bytes: &[u8],
    limits: &Limits,
    opts: &UploadOptions,
    progress: &dyn Progress,
) -> Result<FileReport> {
    let target = FileTarget { name: name.into() };
    // A file an interrupted upload left open would take this upload's first chunk without its
    // count starting again (see `close_file`): the device would say it holds more than it does.
    close_file(session.client()).await?;
    let opts = &UploadOptions { first_timeout: first_chunk_timeout(opts), ..opts.clone() };
    let r: UploadReport =
        match crate::upload::upload_to(session, &target, bytes, limits, opts, progress).await {
            // The device counts past the end of the file: Zephyr 4.4 does when an upload from
            // offset 0 goes into a file it still holds open from an upload that ended without
            // its close (see `close_file`; measured on native_sim's `serial` build). Closing it
            // lets the next attempt start clean.
            Err(Error::Protocol(ProtocolError::OffsetBeyondImage { off, total })) => {
                close_file(session.client()).await?;
                let what =
                    format!("it counted {off} bytes of the {total} sent, going on from a file it held open");
                return Err(Error::FileMismatch { name: name.into(), what });
            }
            r => r?,
        };
    close_file(session.client()).await?;
    let verified = verify(session.client(), name, bytes).await?;
    Ok(FileReport {
        remote: name.into(),
        bytes: r.bytes,
        seconds: r.seconds,
        chunk: r.chunk,
        window: r.window,
        retransmits: r.retransmits,
        reconnects: r.reconnects,
        verified,
        attempts: 1,
    })
}

/// How long the first chunk of a file upload may take: [`FS_FIRST_CHUNK_TIMEOUT`], or the
/// ordinary timeout when that is longer, and never more than `opts.first_timeout`. An image's
/// first chunk may wait for a slot erase (`UploadOptions::first_timeout`, a minute by
/// default); a file's only deletes the old file and creates the new one (Zephyr's `fs_mgmt`:
/// `fs_unlink`, then `fs_open`). A device that loses the frame then fails in seconds, not
/// minutes.
pub fn first_chunk_timeout(opts: &UploadOptions) -> Duration {
    opts.first_timeout.min(opts.timeout.max(FS_FIRST_CHUNK_TIMEOUT))
}

/// The shortest wait for a file upload's first chunk ([`first_chunk_timeout`]).
pub const FS_FIRST_CHUNK_TIMEOUT: Duration = Duration::from_secs(10);

/// The largest file [`download_file`] accepts: what a device says beyond this is not a file
/// on a microcontroller's flash, and would be allocated in full.
pub const MAX_DOWNLOAD: u64 = 1 << 32;

/// Zephyr's `MCUMGR_GRP_FS_DL_CHUNK_SIZE` for a device with `buf_size` buffers and the default
/// `CONFIG_MCUMGR_GRP_FS_MAX_OFFSET_LEN` (`fs_mgmt_config.h`: the frame less its header and
/// the most the answer's CBOR can take besides the data).
pub fn zephyr_download_chunk(buf_size: usize) -> u64 {
    buf_size.saturating_sub(8 + 10 + 8 + 9 + 4 + 8) as u64
}

/// Offsets not yet received, as sorted disjoint ranges.
#[derive(Debug)]
struct Missing {
    ranges: BTreeSet<(u64, u64)>,
}

impl Missing {
    fn new(total: u64) -> Self {
        let mut ranges = BTreeSet::new();
        if total > 0 {
            ranges.insert((0, total));
        }
        Missing { ranges }
    }

    fn is_empty(&self) -> bool {
        self.ranges.is_empty()
    }

    fn received(&self) -> u64 {
        self.ranges.iter().map(|(a, b)| b - a).sum()
    }

    /// Marks `[from, to)` as received.
    fn fill(&mut self, from: u64, to: u64) {
        let hit: Vec<(u64, u64)> = self.ranges.iter().copied().filter(|&(a, b)| a < to && from < b).collect();
        for (a, b) in hit {
            self.ranges.remove(&(a, b));
            if a < from {
                self.ranges.insert((a, from));
            }
            if to < b {
                self.ranges.insert((to, b));
            }
        }
    }

    fn contains(&self, off: u64) -> bool {
        self.ranges.iter().any(|&(a, b)| a <= off && off < b)
    }
}

/// Downloads the device's file `name`: the first request learns its length and the device's
/// chunk size; then up to the window's worth of requests are in flight, each at the start of
/// a part not yet received. Lost requests are asked again, a dropped link is reconnected, and
/// the result is checked with the device's hash when it has one; when it does not match, the
/// file is read once more one request at a time, as [`upload_file`] does.
pub async fn download_file(
    session: &mut Session,
    name: &str,
    limits: &Limits,
    opts: &UploadOptions,
    progress: &dyn Progress,
) -> Result<(Vec<u8>, FileReport)> {
    match download_once(session, name, limits, opts, progress).await {
        Err(e @ Error::FileMismatch { .. }) => {
            let Some(again) = retry_options(opts) else { return Err(e) };
            tracing::debug!("fs download of {name} did not match; trying once more at window 1");
            progress.event(&Event::Restarted { reason: retry_reason(&e) });
            let (bytes, report) = download_once(session, name, limits, &again, progress).await?;
            Ok((bytes, FileReport { attempts: 2, ..report }))
        }
        other => other,
    }
}

async fn download_once(
    session: &mut Session,
    name: &str,
    limits: &Limits,
    opts: &UploadOptions,
    progress: &dyn Progress,
) -> Result<(Vec<u8>, FileReport)> {
    let started = Instant::now();
    let reconnects_before = session.reconnects();
    let window_max = opts.window.unwrap_or_else(|| limits.window()).max(1);
    let req = |off: u64| FileDownload { off, name: name.into() };
    // The first answer carries the length. Waiting for it alone would cost a round trip with
    // one request in flight, so the rest of the window goes out with it, at the offsets a
    // Zephyr device's chunk size puts the next chunks (`buf_size - 47`); if the guess is wrong
    // the answers still hold the file's bytes at those offsets, and the gaps are asked later.
    let guess = if limits.reported { zephyr_download_chunk(limits.buf_size) } else { 0 };
    let speculative: Vec<u64> =
        if guess > 0 { (1..window_max as u64).map(|k| k * guess).collect() } else { Vec::new() };
    let mut early: Vec<FileDownloadResponse> = Vec::new();
    let mut attempts = 0;
    let first: FileDownloadResponse = loop {
        let client = session.client();
        let answer = if attempts == 0 {
            let asks: Vec<FileDownload> = speculative.iter().map(|&off| req(off)).collect();
            let ahead = futures_util::future::join_all(
                asks.iter().map(|r| client.request_with_timeout(r, opts.timeout)),
            );
            let (answer, ahead) =
                futures_util::future::join(client.request_with_timeout(&req(0), opts.timeout), ahead).await;
            // What the speculative reads brought is kept; whatever failed is asked again later.
            early.extend(ahead.into_iter().filter_map(|r| r.ok()));
            answer
        } else {
            client.request_with_timeout(&req(0), opts.timeout).await
        };
        match answer {
            Ok(r) => break r,
            Err(Error::Timeout { .. }) if attempts < opts.max_attempts => attempts += 1,
            Err(e) if e.is_link_lost() && attempts < opts.max_attempts => {
                attempts += 1;
                progress.event(&Event::Reconnecting { reason: e.to_string() });
                session.reconnect().await?;
            }
            Err(e) => return Err(e),
        }
    };
    let total = first
        .len
        .ok_or(Error::Protocol(ProtocolError::MissingField { command: FileDownload::NAME, field: "len" }))?;
    if total > MAX_DOWNLOAD {
        return Err(Error::Protocol(ProtocolError::FileTooLarge { len: total, limit: MAX_DOWNLOAD }));
    }
    let mut out = vec![0u8; total as usize];
    let mut missing = Missing::new(total);
    let chunk = first.data.len() as u64;
    if first.off != 0 || chunk > total || (chunk == 0 && total > 0) {
        return Err(Error::Protocol(ProtocolError::BadChunk { off: first.off, len: chunk, total }));
    }
    out[..chunk as usize].copy_from_slice(&first.data);
    missing.fill(0, chunk);
    for r in early {
        let n = r.data.len() as u64;
        if n > 0 && r.off + n <= total {
            out[r.off as usize..(r.off + n) as usize].copy_from_slice(&r.data);
            missing.fill(r.off, r.off + n);
        }
    }
    progress.event(&Event::UploadStarted {
        image: 0,
        total,
        chunk: chunk as usize,
        window: window_max,
        resumed_at: 0,
        start: UploadStart::Fresh,
        file: Some(FileTransfer { path: name.into(), download: true }),
    });
    let mut window = window_max;
    let mut window_seen = 1;
    let mut streak = 0;
    let mut retransmits = 0u64;
    let mut failures = 0u32;
    // Offsets to ask (again) before new ones: the rest of a short answer, a lost request.
    let mut again: VecDeque<u64> = VecDeque::new();
    let mut next = chunk;
    while !missing.is_empty() {
        let client = session.client();
        let mut inflight = FuturesUnordered::new();
        let mut asked: BTreeSet<u64> = BTreeSet::new();
        let stop: Option<Error> = loop {
            while inflight.len() < window {
                let off = match again.pop_front() {
                    Some(off) => {
                        retransmits += 1;
                        off
                    }
                    None if next < total => {
                        let off = next;
                        next += chunk;
                        off
                    }
                    None => break,
                };
                if !missing.contains(off) || asked.contains(&off) {
                    continue;
                }
                asked.insert(off);
                let client = &client;
                let r = req(off);
                inflight.push(async move { (off, client.request_with_timeout(&r, opts.timeout).await) });
            }
            window_seen = window_seen.max(inflight.len());
            let Some((off, answer)) = inflight.next().await else {
                if missing.is_empty() {
                    break None;
                }
                // Everything asked was answered yet parts are missing: ask for them.
                again.extend(missing.ranges.iter().map(|&(a, _)| a));
                continue;
            };
            asked.remove(&off);
            match answer {
                Ok(r) => {
                    let n = r.data.len() as u64;
                    if r.off != off || off + n > total || (n == 0 && off < total) {
                        break Some(Error::Protocol(ProtocolError::BadChunk { off: r.off, len: n, total }));
                    }
                    let before = missing.received();
                    out[off as usize..(off + n) as usize].copy_from_slice(&r.data);
                    missing.fill(off, off + n);
                    if n < chunk && off + n < total {
                        // A short answer: the rest of this chunk is still to come.
                        again.push_back(off + n);
                    }
                    if missing.received() < before {
                        failures = 0;
                    }
                    streak += 1;
                    if streak >= window && window < window_max {
                        window += 1;
                        streak = 0;
                    }
                    let elapsed = started.elapsed().as_secs_f64().max(1e-6);
                    let got = total - missing.received();
                    progress.event(&Event::Progress {
                        image: 0,
                        acked: got,
                        total,
                        retransmits,
                        window,
                        rate: got as f64 / elapsed,
                    });
                }
                Err(Error::Timeout { .. }) => {
                    window = (window / 2).max(1);
                    streak = 0;
                    failures += 1;
                    if failures > opts.max_attempts * window_max as u32 {
                        break Some(Error::UploadStalled {
                            offset: total - missing.received(),
                            total,
                            attempts: failures,
                        });
                    }
                    again.push_back(off);
                }
                Err(e) if e.is_link_lost() => break Some(e),
                Err(e) => break Some(e),
            }
        };
        match stop {
            None => break,
            Some(Error::Transport(why)) if why.kind == TransportKind::LinkLost => {
                failures += 1;
                if failures > opts.max_attempts {
                    return Err(Error::Transport(why));
                }
                progress.event(&Event::Reconnecting { reason: why.to_string() });
                drop(inflight);
                again.extend(asked.iter().copied());
                session.reconnect().await?;
            }
            Some(e) => return Err(e),
        }
    }
    let elapsed = started.elapsed();
    let reconnects = session.reconnects() - reconnects_before;
    progress.event(&Event::UploadFinished {
        image: 0,
        bytes: total,
        elapsed,
        retransmits,
        reconnects,
        file: Some(FileTransfer { path: name.into(), download: true }),
    });
    let verified = verify(session.client(), name, &out).await?;
    let report = FileReport {
        remote: name.into(),
        bytes: total,
        seconds: elapsed.as_secs_f64(),
        chunk: chunk as usize,
        window: window_seen,
        retransmits,
        reconnects,
        verified,
        attempts: 1,
    };
    Ok((out, report))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_file_upload_waits_for_its_first_chunk_as_for_a_file_not_a_slot_erase() {
        let opts = UploadOptions::default();
        assert!(opts.first_timeout > FS_FIRST_CHUNK_TIMEOUT, "an image's first chunk waits longer");
        assert_eq!(first_chunk_timeout(&opts), FS_FIRST_CHUNK_TIMEOUT);
        let patient = UploadOptions { timeout: Duration::from_secs(30), ..opts.clone() };
        assert_eq!(first_chunk_timeout(&patient), Duration::from_secs(30));
        // A caller's shorter first wait stands.
        let brisk = UploadOptions { first_timeout: Duration::from_millis(500), ..opts };
        assert_eq!(first_chunk_timeout(&brisk), Duration::from_millis(500));
    }

    #[test]
    fn missing_ranges_fill_and_split() {
        let mut m = Missing::new(100);
        m.fill(10, 20);
        assert_eq!(m.received(), 90);
        assert!(m.contains(0) && !m.contains(10) && m.contains(20));
        m.fill(0, 10);
        m.fill(15, 100);
        assert!(m.is_empty());
    }

    #[test]
    fn local_hashes_match_zephyr_forms() {
        // crc32_ieee("123456789") = 0xCBF43926, the IEEE check value.
        assert_eq!(HashKind::Crc32.of(b"123456789"), HashOutput::Number(0xCBF4_3926));
        assert_eq!(
            HashKind::Sha256.of(b"abc").to_hex(),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }
}
