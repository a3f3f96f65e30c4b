//! The upload engine: exact chunk sizing, several chunks in flight, the device's offset as the
//! truth, retransmission, and resuming after a dropped link.
//!
//! The engine moves bytes into a [`Target`]: an image slot ([`ImageTarget`], [`upload`]) or a
//! file ([`crate::fs::FileTarget`]). A target builds the request for a chunk and reads the
//! device's answer as the offset it wants next; everything else (sizing, the window, resyncs,
//! reconnects) is the engine's.
//!
//! Chunks are sized so the whole request (header, CBOR map with `off` and `data`, and on the
//! first request `image`, `len`, `sha`, `upgrade`) fits both the transport's frame limit and
//! the device's `buf_size`, measured by encoding rather than estimated. Up to W requests are in
//! flight, W from the device's `buf_count - 1` (one buffer serves the answer), shrinking on
//! timeouts and growing back on success.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use futures_util::stream::{FuturesUnordered, StreamExt};
use serde_bytes::ByteBuf;
use sha2::{Digest, Sha256};

use crate::cbor;
use crate::client::Client;
use crate::command::image::ImageUpload;
use crate::command::os::McumgrParams;
use crate::command::Command;
use crate::error::{Error, Result};
use crate::frame::HEADER_LEN;
use crate::progress::{Event, Note, Progress, UploadStart};
use crate::session::Session;
use crate::transport::TransportKind;

/// Frame size assumed for a device without the parameters command (Zephyr's default).
pub const DEFAULT_BUF_SIZE: usize = 384;

/// The device's SMP buffers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct Limits {
    /// Largest whole frame the device takes.
    pub buf_size: usize,
    /// Number of buffers.
    pub buf_count: usize,
    /// Whether the device reported these (false: defaults for a device without params).
    /// After [`with_given`](Self::with_given), whether the buffer count is known (the device
    /// reported it, or `--buf-size` gave one), which is what lets the upload pipeline.
    pub reported: bool,
}

/// Buffers given by the user (`--buf-size BYTES[xCOUNT]`): `1024`, or `1024x4` for four
/// 1024-byte buffers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct BufSize {
    /// Largest whole frame the device takes, transport framing included (as `buf_size` in
    /// the device's params answer).
    pub size: usize,
    /// Number of buffers, when known.
    pub count: Option<usize>,
}

impl std::str::FromStr for BufSize {
    type Err = String;

    fn from_str(s: &str) -> std::result::Result<Self, String> {
        let num = |t: &str, what: &str| -> std::result::Result<usize, String> {
            let t = t.trim();
            let n = match t.strip_prefix("0x").or_else(|| t.strip_prefix("0X")) {
                Some(hex) => usize::from_str_radix(hex, 16),
                None => t.parse(),
            };
            n.map_err(|_| format!("{what} {t:?} is not a number"))
        };
        // A leading 0x is a hex prefix, not the count's separator.
        let from = if s.len() > 2 && s[..2].eq_ignore_ascii_case("0x") { 2 } else { 0 };
        let (size, count) = match s[from..].find(['x', 'X']) {
            Some(i) => (num(&s[..from + i], "buffer size")?, Some(num(&s[from + i + 1..], "buffer count")?)),
            None => (num(s, "buffer size")?, None),
        };
        if size < 64 {
            return Err(format!("a {size}-byte buffer holds no upload request (at least 64 bytes)"));
        }
        if count == Some(0) {
            return Err("the buffer count must be at least 1".into());
        }
        Ok(BufSize { size, count })
    }
}

impl std::fmt::Display for BufSize {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.count {
            Some(n) => write!(f, "{}x{n}", self.size),
            None => write!(f, "{}", self.size),
        }
    }
}

impl Limits {
    /// Asks the device; a device without the parameters command gets Zephyr's defaults and
    /// one request in flight.
    pub async fn query(client: &Client) -> Result<Limits> {
        match client.request_idempotent(&McumgrParams {}).await {
            Ok(p) => {
                client.set_reported_buf_size(Some(p.buf_size as usize));
                Ok(Limits {
                    buf_size: p.buf_size as usize,
                    buf_count: (p.buf_count as usize).max(1),
                    reported: true,
                })
            }
            Err(Error::Device(e)) if e.is_not_supported() => {
                Ok(Limits { buf_size: DEFAULT_BUF_SIZE, buf_count: 1, reported: false })
            }
            Err(e) => Err(e),
        }
    }

    /// These limits with the user's `given` buffers applied. The explicit option wins: its size
    /// replaces the device's (reported or assumed), its count, when given, the device's count;
    /// without a count a device that reported one keeps it and one that did not gets one
    /// request in flight. See [`given_exceeds`](Self::given_exceeds) for the warning.
    pub fn with_given(self, given: Option<BufSize>) -> Limits {
        let Some(g) = given else { return self };
        let buf_count = g.count.unwrap_or(if self.reported { self.buf_count } else { 1 }).max(1);
        Limits { buf_size: g.size, buf_count, reported: self.reported || g.count.is_some() }
    }

    /// When the device reported its buffers and `given` asks for more (a larger size or more
    /// buffers), the note to show: the device will likely drop or refuse such requests.
    pub fn given_exceeds(&self, given: Option<BufSize>) -> Option<Note> {
        let g = given?;
        let more = g.size > self.buf_size || g.count.is_some_and(|n| n > self.buf_count);
        (self.reported && more).then_some(Note::BuffersAboveReported {
            given: g.to_string(),
            reported: format!("{}x{}", self.buf_size, self.buf_count),
        })
    }

    /// Requests to keep in flight: `buf_count - 1`, at least one.
    pub fn window(&self) -> usize {
        if self.reported {
            self.buf_count.saturating_sub(1).max(1)
        } else {
            1
        }
    }
}

/// How to upload.
#[derive(Debug, Clone)]
pub struct UploadOptions {
    /// Image number (0 application; 1 nRF5340 network core).
    pub image: u32,
    /// Most requests in flight; `None`: from the device's buffers.
    pub window: Option<usize>,
    /// Most data bytes per chunk; `None`: as many as fit. Below what the buffers take, it
    /// lowers the chunk; above it, it raises the frame only when the device did not report
    /// its buffers and none were given (the 384-byte buffer assumed then is a guess, and an
    /// explicit chunk says what the device takes); a reported or given buffer still caps it.
    pub chunk: Option<usize>,
    /// The device's buffers as the user gives them (`--buf-size`): used when the device does
    /// not report them, and in place of what it reports when it does (see
    /// [`Limits::with_given`]).
    pub buf_size: Option<BufSize>,
    /// Make every chunk's data length a multiple of this (flash write alignment).
    pub align: usize,
    /// Ask the device to refuse an image not newer than the running one.
    pub upgrade: bool,
    /// Timeout of the first request, during which the device may erase the slot.
    pub first_timeout: Duration,
    /// Timeout of every other request.
    pub timeout: Duration,
    /// Attempts without progress before giving up.
    pub max_attempts: u32,
}

impl Default for UploadOptions {
    fn default() -> Self {
        UploadOptions {
            image: 0,
            window: None,
            chunk: None,
            buf_size: None,
            align: 1,
            upgrade: false,
            first_timeout: Duration::from_secs(60),
            timeout: Duration::from_secs(5),
            max_attempts: 6,
        }
    }
}

/// What an upload did.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct UploadReport {
    /// Image number.
    pub image: u32,
    /// Bytes in the image.
    pub bytes: u64,
    /// Wall time.
    pub seconds: f64,
    /// Largest data length per chunk.
    pub chunk: usize,
    /// Largest window used.
    pub window: usize,
    /// Chunks sent more than once.
    pub retransmits: u64,
    /// Bytes sent more than once.
    pub resent_bytes: u64,
    /// Reconnections.
    pub reconnects: u32,
    /// Offset the device resumed at, when it had part of the image already.
    pub resumed_at: u64,
    /// How the upload started: fresh, resumed, or with the first chunk partly accepted.
    pub start: UploadStart,
    /// Answers in which the device took only the first part of a chunk and asked for the rest
    /// (MCUboot's serial recovery writes whole flash-write units); the rest is sent with the
    /// next chunk and not counted as retransmitted.
    pub partial_accepts: u64,
    /// The device's `match` on the last chunk, when it reported one.
    pub matched: Option<bool>,
}

/// A request that carries a chunk of data in a `data` byte string.
pub trait ChunkRequest: Command + Clone {
    /// The chunk's bytes.
    fn data_mut(&mut self) -> &mut ByteBuf;
}

impl ChunkRequest for ImageUpload {
    fn data_mut(&mut self) -> &mut ByteBuf {
        &mut self.data
    }
}

/// What the device said about a chunk: the offset it expects next.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ack {
    /// The next offset the device takes (its truth).
    pub off: u64,
    /// Whether the whole upload matched the hash the first request gave, when the device says.
    pub matched: Option<bool>,
}

/// Where an upload goes: builds each chunk's request and reads the device's answer.
pub trait Target {
    /// The chunk request.
    type Request: ChunkRequest;
    /// The request carrying `data` at `off` of a `total`-byte upload (at `off` 0 with the
    /// fields only a first request has).
    fn request(&self, off: u64, total: u64, data: ByteBuf) -> Self::Request;
    /// After a dropped link, where the first request goes and the most bytes it carries, given
    /// the last offset the device confirmed.
    fn reopen(&self, confirmed: u64) -> (u64, Option<usize>);
    /// Sends `req` and reads the answer as an [`Ack`]; an answer that says "not there, but
    /// here" is an `Ack` too, so the engine resyncs.
    fn send<'a>(
        &'a self,
        client: &'a Client,
        req: &'a Self::Request,
        timeout: Duration,
    ) -> impl std::future::Future<Output = Result<Ack>> + 'a;
    /// The image number for progress events (0 for a file).
    fn image(&self) -> u32;
    /// The file, for a file upload's progress events.
    fn file(&self) -> Option<crate::progress::FileTransfer> {
        None
    }
}

/// An image slot: Zephyr's and MCUboot's image upload.
#[derive(Debug, Clone)]
pub struct ImageTarget {
    /// Image number.
    pub image: u32,
    /// SHA-256 of the whole image, sent in the first request.
    pub sha: ByteBuf,
    /// Ask the device to refuse an image not newer than the running one.
    pub upgrade: bool,
}

impl Target for ImageTarget {
    type Request = ImageUpload;

    fn request(&self, off: u64, total: u64, data: ByteBuf) -> ImageUpload {
        let first = off == 0;
        ImageUpload {
            image: first.then_some(self.image),
            len: first.then_some(total),
            off,
            sha: first.then(|| self.sha.clone()),
            data,
            upgrade: (first && self.upgrade).then_some(true),
        }
    }

    /// Asking a device to resume needs only the header (Zephyr checks the first chunk holds
    /// one): if it resumes, nothing else is sent twice; if it lost the upload, it starts over
    /// from these bytes.
    fn reopen(&self, _confirmed: u64) -> (u64, Option<usize>) {
        (0, Some(RESUME_PROBE_LEN))
    }

    async fn send(&self, client: &Client, req: &ImageUpload, timeout: Duration) -> Result<Ack> {
        let r = client.request_with_timeout(req, timeout).await?;
        Ok(Ack { off: r.off, matched: r.matched })
    }

    fn image(&self) -> u32 {
        self.image
    }
}

/// The largest data length for which `template` (with that much data) encodes into a frame of
/// at most `frame_limit` bytes, header included.
pub fn max_data_len<R: ChunkRequest>(frame_limit: usize, template: &R) -> Result<usize> {
    let mut empty = template.clone();
    *empty.data_mut() = ByteBuf::new();
    // An empty byte string encodes as one byte; a longer one adds 1, 2 or 4 length bytes.
    let base = HEADER_LEN + cbor::encoded_len(&empty)? - 1;
    let fits = |n: usize| base + bstr_len(n) <= frame_limit;
    let room = frame_limit.saturating_sub(base);
    let best = (1..=5).map(|k| room.saturating_sub(k)).find(|&n| fits(n)).unwrap_or(0);
    Ok(best)
}

/// The frame limit to use on a medium that splits frames into pieces of `piece` bytes (BLE:
/// ATT values). A frame's last piece costs a whole link-layer slot however little it holds, so
/// when the frame's tail past its last whole piece is a small part of it, dropping the tail
/// moves more image bytes per piece (2475-byte frames in 244-byte values: 10 full values and
/// one of 35 bytes; 2440 bytes fill 10). A large tail is kept: shrinking a frame by a third
/// would leave the window, not the pieces, limiting the link.
pub fn limit_for_pieces<R: ChunkRequest>(limit: usize, piece: usize, template: &R) -> Result<usize> {
    let tail = limit % piece.max(1);
    if piece <= 1 || tail == 0 || limit < piece || tail * 10 > limit {
        return Ok(limit);
    }
    let whole = limit - tail;
    let per_piece =
        |l: usize| -> Result<f64> { Ok(max_data_len(l, template)? as f64 / l.div_ceil(piece) as f64) };
    Ok(if per_piece(whole)? > per_piece(limit)? { whole } else { limit })
}

/// Encoded size of a CBOR byte string of `n` bytes.
fn bstr_len(n: usize) -> usize {
    n + match n {
        0..=23 => 1,
        24..=0xFF => 2,
        0x100..=0xFFFF => 3,
        _ => 5,
    }
}

struct Plan<'a, T> {
    target: &'a T,
    bytes: &'a [u8],
    frame_limit: usize,
    opts: &'a UploadOptions,
    /// Write alignment learned from the device's partial acceptances (1: none seen).
    learned_align: AtomicUsize,
}

/// The smallest power of two `a > tail` with `sent % a == tail`: the least flash-write
/// alignment that explains a device taking `sent - tail` of `sent` bytes.
fn alignment_for(sent: usize, tail: usize) -> usize {
    let mut a = 2usize;
    while a <= 4096 {
        if a > tail && sent % a == tail {
            return a;
        }
        a *= 2;
    }
    1
}

fn lcm(a: usize, b: usize) -> usize {
    fn gcd(a: usize, b: usize) -> usize {
        if b == 0 {
            a
        } else {
            gcd(b, a % b)
        }
    }
    (a / gcd(a, b).max(1)) * b
}

impl<T: Target> Plan<'_, T> {
    fn total(&self) -> u64 {
        self.bytes.len() as u64
    }

    /// The device took `accepted` of `sent` bytes: size later chunks to whole write units.
    fn learn_partial(&self, sent: u64, accepted: u64) {
        let a = alignment_for(sent as usize, (sent - accepted) as usize);
        if a > 1 {
            self.learned_align.fetch_max(a, Ordering::Relaxed);
        }
    }

    fn align(&self) -> usize {
        lcm(self.opts.align.max(1), self.learned_align.load(Ordering::Relaxed).max(1))
    }

    fn request(&self, off: u64) -> Result<T::Request> {
        let mut req = self.target.request(off, self.total(), ByteBuf::new());
        let mut n = max_data_len(self.frame_limit, &req)?;
        if let Some(max) = self.opts.chunk {
            n = n.min(max);
        }
        let align = self.align();
        if align > 1 && n >= align {
            n -= n % align;
        }
        let left = (self.total() - off) as usize;
        if n == 0 && left > 0 {
            return Err(Error::FrameTooLarge {
                size: HEADER_LEN + cbor::encoded_len(&req)? + 1,
                limit: self.frame_limit,
            });
        }
        let n = n.min(left);
        *req.data_mut() = ByteBuf::from(self.bytes[off as usize..off as usize + n].to_vec());
        Ok(req)
    }
}

/// Why the pipelined phase stopped early.
enum Stop {
    /// The link dropped: reconnect and resume.
    Disconnected(crate::transport::TransportError),
    /// The device lost the upload (answered offset 0): start over.
    Restart,
    /// The first request went unanswered: send it again.
    Retry,
    /// Give up with this error.
    Fatal(Error),
}

/// Bytes of the first request when asking a device to resume: the MCUboot header.
const RESUME_PROBE_LEN: usize = 32;

struct Counters {
    retransmits: u64,
    partial_accepts: u64,
    resent_bytes: u64,
    sent_high: u64,
    window_max: usize,
    chunk_max: usize,
    matched: Option<bool>,
    started: Instant,
    /// The offset the device last confirmed (where a file upload reopens after a reconnect).
    confirmed: u64,
}

/// Uploads `bytes` as image `opts.image`, reconnecting through `session` when the link drops.
pub async fn upload(
    session: &mut Session,
    bytes: &[u8],
    limits: &Limits,
    opts: &UploadOptions,
    progress: &dyn Progress,
) -> Result<UploadReport> {
    let target = ImageTarget {
        image: opts.image,
        sha: ByteBuf::from(Sha256::digest(bytes).to_vec()),
        upgrade: opts.upgrade,
    };
    upload_to(session, &target, bytes, limits, opts, progress).await
}

/// Uploads `bytes` into `target`, reconnecting through `session` when the link drops. The
/// options' `image` and `upgrade` are the target's business ([`upload`] builds an
/// [`ImageTarget`] from them).
pub async fn upload_to<T: Target>(
    session: &mut Session,
    target: &T,
    bytes: &[u8],
    limits: &Limits,
    opts: &UploadOptions,
    progress: &dyn Progress,
) -> Result<UploadReport> {
    let total = bytes.len() as u64;
    if let Some(note) = limits.given_exceeds(opts.buf_size) {
        tracing::warn!("{note}");
        progress.event(&Event::Note { note });
    }
    // Only an explicit chunk can stand in for buffers nobody reported or gave.
    let guessed = !limits.reported && opts.buf_size.is_none();
    let limits = &limits.with_given(opts.buf_size);
    if let Some(g) = opts.buf_size {
        // The client checks every request against the device's buffer: the given one wins.
        session.client().set_given_buf_size(Some(g.size));
    }
    let window_max = opts.window.unwrap_or_else(|| limits.window()).max(1);
    let mut c = Counters {
        retransmits: 0,
        partial_accepts: 0,
        resent_bytes: 0,
        sent_high: 0,
        window_max: 1,
        chunk_max: 0,
        matched: None,
        started: Instant::now(),
        confirmed: 0,
    };
    let mut attempts = 0u32;
    let mut resumed_at = 0;
    let mut start = UploadStart::Fresh;
    let mut learned_align = 1;
    let reconnects_before = session.reconnects();
    let mut announced = false;
    loop {
        let transport_overhead = session.client().frame_overhead();
        let max_frame = session.client().max_frame();
        let mut frame_limit = max_frame.min(limits.buf_size.saturating_sub(transport_overhead));
        // Sized for a later request, which is what almost every frame is.
        let later = target.request(total, total, ByteBuf::new());
        match opts.chunk {
            Some(chunk) if guessed => {
                // The assumed buffer is a guess: a later request carrying `chunk` bytes is what
                // the user says the device takes (within what the transport carries).
                let wanted = HEADER_LEN + cbor::encoded_len(&later)? - 1 + bstr_len(chunk);
                frame_limit = frame_limit.max(wanted.min(max_frame));
            }
            Some(chunk) if chunk > max_data_len(frame_limit, &later)? && c.sent_high == 0 => tracing::warn!(
                "--chunk {chunk} does not fit the device's {}-byte buffer; chunks are at most {} bytes",
                limits.buf_size,
                max_data_len(frame_limit, &later)?
            ),
            _ => {}
        }
        let frame_limit = limit_for_pieces(frame_limit, session.client().piece_len(), &later)?;
        let plan = Plan { target, bytes, frame_limit, opts, learned_align: AtomicUsize::new(learned_align) };
        // A first request opens the upload; after a dropped link the target says where.
        let (open_at, cap) = if c.sent_high > 0 { target.reopen(c.confirmed.min(total)) } else { (0, None) };
        let mut first = plan.request(open_at)?;
        if let Some(cap) = cap {
            let data = first.data_mut();
            let keep = data.len().min(cap);
            data.truncate(keep);
        }
        let n0 = first.data_mut().len() as u64;
        c.chunk_max = c.chunk_max.max(n0 as usize);
        c.count_send(open_at, n0);
        let answer = target.send(session.client(), &first, opts.first_timeout).await;
        let stop = match answer {
            Ok(r) => {
                let acked = r.off;
                if acked > total {
                    return Err(beyond_the_image(acked, total));
                }
                c.confirmed = acked;
                let end0 = open_at + n0;
                let this_start = if acked > open_at && acked < end0 {
                    // The device wrote only the first `acked` bytes (whole flash-write units)
                    // and asks for the rest: neither a resume nor a retransmission.
                    plan.learn_partial(n0, acked - open_at);
                    c.accept_part(open_at, n0, acked);
                    UploadStart::PartialFirstChunk { accepted: acked - open_at, sent: n0 }
                } else if acked > end0 {
                    UploadStart::Resumed { at: acked }
                } else {
                    UploadStart::Fresh
                };
                if let UploadStart::Resumed { at } = this_start {
                    resumed_at = at;
                }
                if !announced {
                    start = this_start;
                    progress.event(&Event::UploadStarted {
                        image: target.image(),
                        total,
                        chunk: c.chunk_max,
                        window: window_max,
                        resumed_at,
                        start: start.clone(),
                        file: target.file(),
                    });
                    announced = true;
                }
                let piped = pipeline(session.client(), &plan, acked, window_max, &mut c, progress).await;
                learned_align = plan.learned_align.load(Ordering::Relaxed);
                match piped {
                    Ok(()) => break,
                    Err(stop) => stop,
                }
            }
            Err(Error::Transport(why)) if why.kind == TransportKind::LinkLost => Stop::Disconnected(why),
            // The first request may be lost like any other: ask again.
            Err(Error::Timeout { .. }) => Stop::Retry,
            Err(e) => return Err(e),
        };
        attempts += 1;
        let stalled = Error::UploadStalled { offset: 0, total, attempts };
        match stop {
            Stop::Disconnected(why) if attempts > opts.max_attempts => return Err(Error::Transport(why)),
            Stop::Disconnected(why) => {
                progress.event(&Event::Reconnecting { reason: why.to_string() });
                session.reconnect().await?;
            }
            Stop::Restart | Stop::Retry if attempts > opts.max_attempts => return Err(stalled),
            Stop::Restart => {
                progress.event(&Event::Restarted { reason: "the device lost the upload in progress".into() })
            }
            Stop::Retry => {}
            Stop::Fatal(e) => return Err(e),
        }
    }
    if c.matched == Some(false) {
        return Err(Error::UploadMismatch);
    }
    let elapsed = c.started.elapsed();
    let reconnects = session.reconnects() - reconnects_before;
    progress.event(&Event::UploadFinished {
        image: target.image(),
        bytes: total,
        elapsed,
        retransmits: c.retransmits,
        reconnects,
        file: target.file(),
    });
    Ok(UploadReport {
        image: target.image(),
        bytes: total,
        seconds: elapsed.as_secs_f64(),
        chunk: c.chunk_max,
        window: c.window_max,
        retransmits: c.retransmits,
        resent_bytes: c.resent_bytes,
        reconnects,
        resumed_at,
        start,
        partial_accepts: c.partial_accepts,
        matched: c.matched,
    })
}

/// A device asking for data past the end of the image is not speaking the protocol: trusting
/// it would end the upload early and call that success.
fn beyond_the_image(off: u64, total: u64) -> Error {
    Error::Protocol(crate::error::ProtocolError::OffsetBeyondImage { off, total })
}

impl Counters {
    /// Records sending `n` bytes at `off`, counting what was sent before.
    fn count_send(&mut self, off: u64, n: u64) {
        if off < self.sent_high {
            self.retransmits += 1;
            self.resent_bytes += n.min(self.sent_high - off);
        }
        self.sent_high = self.sent_high.max(off + n);
    }

    /// Records the device taking only `off..accepted` of the `n` bytes sent at `off`. When
    /// nothing after that chunk was sent, the bytes it did not take never count as sent: the
    /// device asks for them, and sending them is the next chunk, not a retransmission.
    fn accept_part(&mut self, off: u64, n: u64, accepted: u64) {
        self.partial_accepts += 1;
        if self.sent_high == off + n {
            self.sent_high = accepted;
        }
    }
}

type Answer = (u64, u64, Result<Ack>);

async fn pipeline<T: Target>(
    client: &Client,
    plan: &Plan<'_, T>,
    mut acked: u64,
    window_max: usize,
    c: &mut Counters,
    progress: &dyn Progress,
) -> std::result::Result<(), Stop> {
    let total = plan.total();
    let opts = plan.opts;
    let mut window = window_max;
    let mut streak = 0usize;
    let mut failures = 0u32;
    // Progress is measured against the furthest offset the device ever confirmed, so that a
    // device moving back and forth, or answering without taking anything, cannot keep the
    // upload going forever.
    let mut best = acked;
    let mut next = acked;
    // A chunk counts as sent when its future first runs, not when it is queued: a resync
    // drops queued futures that never ran, and counting those made re-sent bytes that never
    // crossed the link.
    let counters = std::sync::Mutex::new(c);
    let c = || counters.lock().unwrap_or_else(|e| e.into_inner());
    let send = |off: u64, mut req: T::Request| {
        let c = &c;
        async move {
            let n = req.data_mut().len() as u64;
            c().count_send(off, n);
            (off, n, plan.target.send(client, &req, opts.timeout).await)
        }
    };
    let mut inflight = FuturesUnordered::new();
    loop {
        if acked >= total {
            return Ok(());
        }
        while inflight.len() < window && next < total {
            let mut req = plan.request(next).map_err(Stop::Fatal)?;
            let n = req.data_mut().len() as u64;
            let mut c = c();
            c.chunk_max = c.chunk_max.max(n as usize);
            inflight.push(send(next, req));
            next += n;
        }
        {
            let mut c = c();
            c.window_max = c.window_max.max(inflight.len());
        }
        let Some((off, n, answer)): Option<Answer> = inflight.next().await else {
            // Everything sent was answered, yet the device has not confirmed it all: ask again
            // from what it confirmed.
            next = acked;
            continue;
        };
        let mut resync = None;
        match answer {
            Ok(r) => {
                let dev = r.off;
                if dev > total {
                    return Err(Stop::Fatal(beyond_the_image(dev, total)));
                }
                if dev == 0 && off > 0 {
                    return Err(Stop::Restart);
                }
                if dev == off + n || (dev > off + n && dev <= next) {
                    acked = acked.max(dev);
                    streak += 1;
                    if streak >= window && window < window_max {
                        window += 1;
                        streak = 0;
                    }
                    if dev >= total {
                        c().matched = r.matched;
                    }
                } else if dev > off && dev < off + n && dev >= acked {
                    // The device wrote only the first part (whole flash-write units, as
                    // MCUboot's serial recovery does) and asks for the rest: go on from there.
                    tracing::debug!("device took {} of {n} bytes at {off}; continuing at {dev}", dev - off);
                    plan.learn_partial(n, dev - off);
                    c().accept_part(off, n, dev);
                    acked = dev;
                    resync = Some(dev);
                } else {
                    // The device wants another offset (a chunk before this one was lost, or
                    // it is ahead of what we sent): its answer is the truth.
                    tracing::debug!("device expects offset {dev}, not {}; resending from there", off + n);
                    resync = Some(dev);
                }
            }
            Err(Error::Timeout { .. }) => {
                window = (window / 2).max(1);
                streak = 0;
                resync = Some(acked);
            }
            Err(Error::Transport(why)) if why.kind == TransportKind::LinkLost => {
                return Err(Stop::Disconnected(why))
            }
            Err(e) => return Err(Stop::Fatal(e)),
        }
        if let Some(at) = resync {
            // Abandon what is in flight: the device answers stale chunks with its offset and
            // writes nothing, so resending from `at` is safe.
            inflight = FuturesUnordered::new();
            acked = at;
            next = at;
        }
        c().confirmed = acked;
        if acked > best {
            best = acked;
            failures = 0;
        } else if resync.is_some() {
            failures += 1;
            if failures > opts.max_attempts {
                return Err(Stop::Fatal(Error::UploadStalled { offset: acked, total, attempts: failures }));
            }
        }
        let (started, retransmits) = {
            let c = c();
            (c.started, c.retransmits)
        };
        let elapsed = started.elapsed().as_secs_f64().max(1e-6);
        progress.event(&Event::Progress {
            image: plan.target.image(),
            acked,
            total,
            retransmits,
            window,
            rate: acked as f64 / elapsed,
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn chunks_fill_the_frame_exactly(limit in 60usize..70_000, off in any::<u32>(), first in any::<bool>(),
                                         image in 0u32..3, len in any::<u32>(), upgrade in any::<bool>()) {
            let template = ImageUpload {
                image: first.then_some(image),
                len: first.then_some(len as u64),
                off: if first { 0 } else { off as u64 },
                sha: first.then(|| ByteBuf::from(vec![0xAB; 32])),
                data: ByteBuf::new(),
                upgrade: (first && upgrade).then_some(true),
            };
            let n = max_data_len(limit, &template).unwrap();
            let with = |n: usize| {
                let req = ImageUpload { data: ByteBuf::from(vec![0u8; n]), ..template.clone() };
                HEADER_LEN + cbor::encoded_len(&req).unwrap()
            };
            // A first request whose fields alone overflow the frame gets 0 (the upload then
            // reports the frame too small); otherwise the chunk fits.
            prop_assert!(with(n) <= limit || (n == 0 && with(0) > limit), "n {} gives {} > {}", n, with(n), limit);
            prop_assert!(with(n + 1) > limit, "n {} is not the largest", n);
        }
    }

    #[test]
    fn frames_are_rounded_to_whole_att_values_only_when_the_tail_is_small() {
        let later = ImageUpload { off: 1 << 20, ..Default::default() };
        // nRF5340 buffers over 247-byte ATT MTU (phone-slow): 10 x 244 + 35 -> 10 whole values.
        assert_eq!(limit_for_pieces(2475, 244, &later).unwrap(), 2440);
        // 498-byte MTU (phone-fast): 2475 is already 5 x 495.
        assert_eq!(limit_for_pieces(2475, 495, &later).unwrap(), 2475);
        // Zephyr's 384-byte buffers over 244-byte values: the tail is a third of the frame.
        assert_eq!(limit_for_pieces(384, 244, &later).unwrap(), 384);
        // Frames that travel whole, and frames smaller than one piece, are left alone.
        assert_eq!(limit_for_pieces(1472, 1, &later).unwrap(), 1472);
        assert_eq!(limit_for_pieces(200, 244, &later).unwrap(), 200);
        // Whatever the sizes, a rounded limit never carries fewer bytes per piece.
        for piece in [20, 64, 100, 244, 495, 509] {
            for limit in (64..4000).step_by(7) {
                let chosen = limit_for_pieces(limit, piece, &later).unwrap();
                let per = |l: usize| max_data_len(l, &later).unwrap() as f64 / l.div_ceil(piece) as f64;
                assert!(per(chosen) >= per(limit), "{limit}/{piece} -> {chosen}");
                assert!(chosen == limit || chosen.is_multiple_of(piece));
            }
        }
    }

    #[test]
    fn zephyr_default_buffers_give_known_chunk_sizes() {
        let next = ImageUpload { off: 4096, ..Default::default() };
        // 384-byte frames: 8 header + map(2) {"off": 4096 (5), "data": bstr}
        let n = max_data_len(384, &next).unwrap();
        assert_eq!(
            HEADER_LEN + cbor::encoded_len(&ImageUpload { data: ByteBuf::from(vec![0; n]), ..next }).unwrap(),
            384
        );
    }
}
