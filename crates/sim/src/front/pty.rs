//! The serial front end: SMP in the console framing of Zephyr's UART transport, over a pty (or
//! any byte stream), paced like a real UART, with Zephyr's console chatter and line noise.
//!
//! A client opens [`PtyServer::path`] like any serial port. What the device does on the wire:
//!
//! - request frames are decoded from console lines; lines longer than Zephyr's 128-byte
//!   receive buffer are dropped whole, and a packet that does not fit one SMP buffer (frame,
//!   length and CRC together over `buf_size`) is dropped, as Zephyr decodes the whole packet
//!   into one net_buf;
//! - requests are handled one at a time, each holding one of the device's SMP buffers from its
//!   last line's arrival until its answer has been written; a frame that arrives while every
//!   buffer is taken, or while the device is rebooting, is dropped;
//! - answers use the same framing; log lines (with [`PtyOptions::log_lines`]) go between
//!   frames, never inside one;
//! - with [`PtyOptions::baud`] every byte in either direction takes 10 bit times;
//! - [`SerialFaults`] garble the device's output only (answers and log lines alike), so a
//!   faulty run shows the hard case: the device acted on a request whose answer was lost.
//!
//! The port stays open across device resets and power loss, as a real UART does.
//!
//! With [`PtyOptions::framing`] [`Framing::Raw`] the device speaks Zephyr 4.4's raw UART SMP
//! instead (`CONFIG_MCUMGR_TRANSPORT_RAW_UART`): answers are bare frames, nothing else is
//! printed (a raw UART carries no console), and requests are reassembled as
//! `mcumgr_serial_process_frag` does in its raw branch (`subsys/mgmt/mcumgr/transport/src/
//! serial_util.c`): bytes are collected until the 8-byte header is there; a header whose op is
//! 4 or more, or whose `nh_len + 8` exceeds the SMP buffer, drops the 8 bytes collected; the
//! frame is complete at `nh_len + 8` bytes.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use ciborium::Value;
use smpflash_core::frame::{Frame, Op};
use smpflash_core::rc::group;
use smpflash_serial::codec::{encode_frame, ConsoleCodec, ConsoleItem};
use smpflash_serial::Framing;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::sync::{broadcast, mpsc, oneshot, OwnedSemaphorePermit};
use tokio::task::JoinHandle;
use tokio::time::Instant;
use tokio_util::bytes::BytesMut;
use tokio_util::codec::Decoder;

use crate::boot::bootloader::BootEvent;
use crate::device::{Device, DeviceEvent};
use crate::faults::Rng;
use crate::profile::BootMode;
use crate::referee::{Client, Observation};
use crate::smp::request::field;

/// Zephyr's `CONFIG_UART_MCUMGR_RX_BUF_SIZE` (128): a line, newline included, must fit it.
const RX_LINE_LIMIT: usize = 127;

/// The packet's length field and CRC share the SMP buffer with the frame.
const PACKET_OVERHEAD: usize = 4;

/// Bits a UART moves per byte: start bit, 8 data bits, stop bit (8N1).
const BITS_PER_BYTE: f64 = 10.0;

/// How far behind schedule a paced link may fall and still catch up. Timers fire late by up to
/// a millisecond; keeping the schedule absolute stops those delays from adding up, while a
/// link idle for longer than this starts afresh.
const PACING_SLACK: Duration = Duration::from_millis(5);

/// A console write that cannot finish this long after its bytes left the wire means nobody
/// reads the pty: a UART's bytes then fall on the floor rather than stall the device.
const STALLED_WRITE: Duration = Duration::from_secs(1);

/// What Zephyr prints when the application starts.
const ZEPHYR_BANNER: &str = "*** Booting Zephyr OS build v3.7.0 ***";

/// Line noise on the device's output, from a seeded generator so a failing run repeats.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct SerialFaults {
    /// Probability that an outgoing byte has one random bit flipped.
    pub corrupt_byte_rate: f64,
    /// Probability that an outgoing line (up to and including its `\n`) is lost whole.
    pub drop_line_rate: f64,
    /// Seed.
    pub seed: u64,
}

/// Options of the serial front end.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PtyOptions {
    /// Pace both directions to this baud rate (8N1: 10 bits per byte); none moves bytes as
    /// fast as the pty does.
    pub baud: Option<u32>,
    /// Print Zephyr-style console output: boot banners, a log line when an upload erases the
    /// slot.
    pub log_lines: bool,
    /// Noise on the device's output.
    pub faults: SerialFaults,
    /// The SMP framing: the console framing (Zephyr's UART transport; the shell framing is the
    /// same on the wire) or the raw one (Zephyr's raw UART transport, no console output).
    pub framing: Framing,
}

impl Default for PtyOptions {
    fn default() -> Self {
        PtyOptions { baud: None, log_lines: true, faults: SerialFaults::default(), framing: Framing::Console }
    }
}

/// The device served on a byte stream; stops when dropped.
#[derive(Debug)]
pub struct StreamServer {
    tasks: Vec<JoinHandle<()>>,
}

impl Drop for StreamServer {
    fn drop(&mut self) {
        self.tasks.iter().for_each(JoinHandle::abort);
    }
}

/// The device served on a pty; stops (and the pty goes away) when dropped.
#[cfg(unix)]
#[derive(Debug)]
pub struct PtyServer {
    path: String,
    // Holding the client's side open ourselves keeps the device's side readable while no client
    // is attached: otherwise Linux reports EIO once the last client closes, and a client could
    // not close and reopen the port across a device reset.
    _client_side: tokio_serial::SerialStream,
    _console: StreamServer,
}

#[cfg(unix)]
impl PtyServer {
    /// The path a client opens as a serial port (`/dev/pts/N`).
    pub fn path(&self) -> &str {
        &self.path
    }
}

/// Serves `device` on a new pty; clients open [`PtyServer::path`].
#[cfg(unix)]
pub async fn serve(device: Arc<Device>, options: PtyOptions) -> std::io::Result<PtyServer> {
    use tokio_serial::SerialPort;

    let (device_side, client_side) = tokio_serial::SerialStream::pair()?;
    let path = client_side.name().ok_or_else(|| std::io::Error::other("the pty has no path"))?;
    tracing::info!("sim: serial console on {path}");
    let console = serve_stream(device, device_side, options).await;
    Ok(PtyServer { path, _client_side: client_side, _console: console })
}

/// Serves `device` on any byte stream (a pty end, a TCP connection, an in-memory pipe) until
/// the stream ends.
pub async fn serve_stream<S>(device: Arc<Device>, stream: S, options: PtyOptions) -> StreamServer
where
    S: AsyncRead + AsyncWrite + Send + 'static,
{
    let (input, output) = tokio::io::split(stream);
    let (out_tx, out_rx) = mpsc::unbounded_channel();
    let raw = options.framing.is_raw();
    let console = Console {
        out: out_tx,
        booted: Arc::new(Mutex::new(Instant::now())),
        // A raw UART carries SMP frames only: a log line would corrupt the stream.
        log_lines: options.log_lines && !raw,
        raw,
    };
    // Subscribed before anything runs, so no boot goes unannounced.
    let events = device.subscribe();
    let (work_tx, work_rx) = mpsc::unbounded_channel();
    let mode = device.profile().mode;
    StreamServer {
        tasks: vec![
            tokio::spawn(write_output(output, out_rx, options)),
            tokio::spawn(read_input(input, device.clone(), work_tx, options.baud, raw)),
            tokio::spawn(work(device, work_rx, console.clone())),
            tokio::spawn(announce_boots(events, console, mode)),
        ],
    }
}

/// Bytes for the writer, and who to tell once they are on the wire.
struct Output {
    bytes: Vec<u8>,
    sent: Option<oneshot::Sender<()>>,
}

/// A request with the SMP buffer it occupies.
type Work = (Vec<u8>, OwnedSemaphorePermit);

/// The device's side of the console: everything it prints goes through the one writer, so
/// output from the SMP worker and from boots never mixes within a line.
#[derive(Clone)]
struct Console {
    out: mpsc::UnboundedSender<Output>,
    booted: Arc<Mutex<Instant>>,
    log_lines: bool,
    /// Answers go out as bare frames.
    raw: bool,
}

impl Console {
    fn print(&self, text: String) -> bool {
        self.out.send(Output { bytes: text.into_bytes(), sent: None }).is_ok()
    }

    /// A line as Zephyr's logging prints it: uptime, level, module.
    fn log(&self, level: &str, module: &str, message: &str) {
        if self.log_lines {
            let up = self.booted.lock().unwrap_or_else(|e| e.into_inner()).elapsed();
            self.print(format!("{} <{level}> {module}: {message}\r\n", uptime(up)));
        }
    }

    /// Writes an answer and waits until it has left the wire, as Zephyr's UART transport
    /// sends byte by byte from the SMP work queue.
    async fn answer(&self, frame: &[u8]) {
        let bytes = match if self.raw { Ok(frame.to_vec()) } else { encode_frame(frame) } {
            Ok(bytes) => bytes,
            Err(e) => {
                tracing::warn!("sim serial: cannot frame a {}-byte answer: {e}", frame.len());
                return;
            }
        };
        let (sent, done) = oneshot::channel();
        let output = Output { bytes, sent: Some(sent) };
        if self.out.send(output).is_ok() {
            let _ = done.await;
        }
    }
}

/// Zephyr's log timestamp, `[hh:mm:ss.mmm,uuu]`.
fn uptime(up: Duration) -> String {
    let s = up.as_secs();
    let us = up.subsec_micros();
    format!("[{:02}:{:02}:{:02}.{:03},{:03}]", s / 3600, s / 60 % 60, s % 60, us / 1000, us % 1000)
}

/// A UART's timing in one direction: bytes arrive once their bits have crossed the wire.
struct Wire {
    baud: Option<u32>,
    /// When the bytes handed over so far have all crossed.
    free_at: Instant,
}

impl Wire {
    fn new(baud: Option<u32>) -> Self {
        Wire { baud: baud.filter(|&b| b > 0), free_at: Instant::now() }
    }

    /// How many bytes to move at a time: about a millisecond's worth, so that a reader sees
    /// a line trickle in rather than arrive whole after its last byte.
    fn chunk(&self) -> usize {
        match self.baud {
            Some(baud) => (baud as usize / 10 / 1000).clamp(1, 256),
            None => 4096,
        }
    }

    /// Waits until `bytes` more bytes have crossed the wire.
    async fn cross(&mut self, bytes: usize) {
        let Some(baud) = self.baud else {
            return;
        };
        let now = Instant::now();
        if self.free_at + PACING_SLACK < now {
            self.free_at = now;
        }
        self.free_at += Duration::from_secs_f64(bytes as f64 * BITS_PER_BYTE / baud as f64);
        tokio::time::sleep_until(self.free_at).await;
    }
}

/// Reads request frames off the console and queues them for the worker, or drops them where
/// Zephyr would.
async fn read_input<R: AsyncRead>(
    input: R,
    device: Arc<Device>,
    work: mpsc::UnboundedSender<Work>,
    baud: Option<u32>,
    raw: bool,
) {
    let mut input = std::pin::pin!(input);
    let mut wire = Wire::new(baud);
    let mut chunk = vec![0u8; wire.chunk()];
    let mut pending = BytesMut::new();
    let mut raw_rx = RawRx::default();
    let mut codec = ConsoleCodec::new().with_line_limit(RX_LINE_LIMIT);
    loop {
        let n = match input.read(&mut chunk).await {
            Ok(0) => {
                tracing::debug!("sim serial: console input ended");
                return;
            }
            Ok(n) => n,
            Err(e) => {
                tracing::debug!("sim serial: console input failed: {e}");
                return;
            }
        };
        wire.cross(n).await;
        if raw {
            for &byte in &chunk[..n] {
                if let Some(frame) = raw_rx.byte(byte, device.profile().buf_size, Instant::now()) {
                    accept(&device, &work, frame, 0);
                }
            }
            continue;
        }
        pending.extend_from_slice(&chunk[..n]);
        // Decoding cannot fail on content; an error would only come from the codec itself.
        while let Ok(Some(item)) = codec.decode(&mut pending) {
            match item {
                ConsoleItem::Frame(frame) => accept(&device, &work, frame, PACKET_OVERHEAD),
                ConsoleItem::Log(line) => tracing::trace!("sim serial: ignored input {line:?}"),
                ConsoleItem::Discarded(why) => tracing::debug!("sim serial: dropped input: {why}"),
            }
        }
    }
}

/// How long a partial request may wait for its remaining bytes on the raw UART: Zephyr's
/// `CONFIG_MCUMGR_TRANSPORT_RAW_UART_INPUT_TIMEOUT_TIME_MS` as the 4.4 `smp_svr` raw build has it
/// (`CONFIG_MCUMGR_TRANSPORT_RAW_UART_INPUT_TIMEOUT=y`, 3000 ms: the fixture's symbols).
pub const RAW_INPUT_TIMEOUT: Duration = Duration::from_millis(3000);

/// The raw framing's receive state, as Zephyr's `smp_raw_uart_process_frag` keeps it: the bytes
/// of the request being collected and its input timer.
#[derive(Debug, Default)]
struct RawRx {
    pending: BytesMut,
    /// When the input timer fires. Zephyr starts it at the first byte of a request that is not
    /// complete with it, stops it when a request completes, and at its expiry only flags the
    /// buffer: the next byte that arrives clears what was collected before it is taken.
    timer: Option<Instant>,
}

impl RawRx {
    /// One received byte (the UART driver hands Zephyr every byte as its own fragment): a
    /// request frame once complete.
    fn byte(&mut self, byte: u8, buf_size: usize, now: Instant) -> Option<Vec<u8>> {
        let expired = self.timer.is_some_and(|t| now >= t);
        if expired {
            if !self.pending.is_empty() {
                tracing::debug!(
                    "sim serial: raw input timeout; {} bytes of a partial request dropped",
                    self.pending.len()
                );
            }
            self.pending.clear();
            self.timer = None;
        }
        let first = self.pending.is_empty();
        let frame = raw_rx_byte(&mut self.pending, byte, buf_size);
        if frame.is_some() {
            self.timer = None;
        } else if first && !self.pending.is_empty() {
            self.timer = Some(now + RAW_INPUT_TIMEOUT);
        }
        frame
    }
}

/// One received byte in the raw framing, as Zephyr's `mcumgr_serial_process_frag` (raw branch)
/// takes it: a request frame once complete.
fn raw_rx_byte(pending: &mut BytesMut, byte: u8, buf_size: usize) -> Option<Vec<u8>> {
    pending.extend_from_slice(&[byte]);
    if pending.len() < smpflash_core::frame::HEADER_LEN {
        return None;
    }
    let total = smpflash_core::frame::HEADER_LEN + u16::from_be_bytes([pending[2], pending[3]]) as usize;
    let op = pending[0] & 0x07;
    if total > buf_size || op >= 4 {
        tracing::debug!(
            "sim serial: raw header {:02x?} refused; {} bytes dropped",
            &pending[..8],
            pending.len()
        );
        pending.clear();
        return None;
    }
    if pending.len() < total {
        return None;
    }
    Some(pending.split().to_vec())
}

/// Queues `frame`, which took `overhead` bytes more of the SMP buffer (the console framing's
/// length and CRC), or drops it where Zephyr would.
fn accept(device: &Device, work: &mpsc::UnboundedSender<Work>, frame: Vec<u8>, overhead: usize) {
    let buf_size = device.profile().buf_size;
    if !device.is_up() {
        tracing::debug!("sim serial: device is rebooting; request dropped");
    } else if frame.len() + overhead > buf_size {
        tracing::debug!(
            "sim serial: a {}-byte frame and its {overhead} bytes of framing exceed the \
             {buf_size}-byte SMP buffer; dropped",
            frame.len()
        );
        device.observe(&Client::Serial, Observation::TooLarge { len: frame.len() + overhead, buf_size });
    } else {
        match device.buffers().try_acquire_owned() {
            Ok(permit) => {
                let _ = work.send((frame, permit));
            }
            Err(_) => {
                tracing::debug!(
                    "sim serial: all {} SMP buffers busy; request dropped",
                    device.profile().buf_count
                );
                device.observe(
                    &Client::Serial,
                    Observation::NoBuffer { buffers: device.profile().buf_count, dropped: true },
                );
            }
        }
    }
}

/// The SMP work queue: one request at a time, its answer written before the next starts.
async fn work(device: Arc<Device>, mut queue: mpsc::UnboundedReceiver<Work>, console: Console) {
    let erase_unit = device.profile().flash.sector_size.max(1);
    // Only Zephyr's up-front erase logs: MCUboot's recovery does not, and under
    // CONFIG_IMG_ERASE_PROGRESSIVELY the erase happens chunk by chunk without a log line.
    let logs_erase =
        device.profile().mode != BootMode::SerialRecovery && !device.profile().erase_progressively;
    while let Some((frame, permit)) = queue.recv().await {
        let upload_len = upload_start(&frame);
        let outcome = device.handle(&Client::Serial, &frame).await;
        for answer in &outcome.responses {
            if let (true, Some(len)) = (logs_erase, upload_len) {
                if answer_has_offset(answer) {
                    let erased = len.div_ceil(erase_unit) * erase_unit;
                    console.log("inf", "mcumgr_img_grp", &format!("Erased {erased:#x} bytes of image slot"));
                }
            }
            console.answer(answer).await;
        }
        drop(permit);
        if outcome.reset {
            // Requests queued behind this one were in RAM: the reset loses them.
            while queue.try_recv().is_ok() {}
            device.reset().await;
        }
    }
}

/// The image length of an upload's first chunk: the request on which Zephyr erases the slot.
fn upload_start(raw: &[u8]) -> Option<usize> {
    let frame = Frame::decode(raw).ok()?;
    let h = frame.header;
    if (h.group, h.id, h.op) != (group::IMAGE, 1, Op::Write) {
        return None;
    }
    let body: Value = ciborium::from_reader(frame.body.as_slice()).ok()?;
    let off = field(&body, "off")?.as_integer()?;
    let len = field(&body, "len")?.as_integer()?;
    (u64::try_from(off).ok()? == 0).then(|| usize::try_from(len).ok()).flatten()
}

/// Whether an upload answer reports progress (rather than an error).
fn answer_has_offset(raw: &[u8]) -> bool {
    Frame::decode(raw)
        .ok()
        .and_then(|f| ciborium::from_reader::<Value, _>(f.body.as_slice()).ok())
        .is_some_and(|body| field(&body, "off").is_some())
}

/// Prints what a board prints on its console when it boots: MCUboot's log, then Zephyr's
/// banner (unless the device is MCUboot's serial recovery, which stays in the bootloader).
async fn announce_boots(mut events: broadcast::Receiver<DeviceEvent>, console: Console, mode: BootMode) {
    loop {
        let log = match events.recv().await {
            Ok(DeviceEvent::Booted(log)) => log,
            Ok(DeviceEvent::Resetting) => {
                tracing::debug!("sim serial: device resetting; the port stays open");
                continue;
            }
            Ok(DeviceEvent::PowerLost) => {
                tracing::debug!("sim serial: power lost; the port stays open");
                continue;
            }
            Ok(DeviceEvent::Mistake { .. }) => continue,
            Err(broadcast::error::RecvError::Lagged(_)) => continue,
            Err(broadcast::error::RecvError::Closed) => return,
        };
        *console.booted.lock().unwrap_or_else(|e| e.into_inner()) = Instant::now();
        if console.log_lines && !console.print(boot_text(&log, mode)) {
            return;
        }
    }
}

fn boot_text(log: &[BootEvent], mode: BootMode) -> String {
    let mut text = String::from("*** Booting MCUboot v2.1.0 ***\r\nI: Starting bootloader\r\n");
    for event in log {
        text.push_str(&format!("I: Image {}: {}\r\n", event.image, event.what));
    }
    if mode != BootMode::SerialRecovery {
        text.push_str("I: Jumping to the first image slot\r\n");
        text.push_str(ZEPHYR_BANNER);
        text.push_str("\r\n");
    }
    text
}

/// The single writer of the console: applies the faults and the baud rate.
async fn write_output<W: AsyncWrite>(
    output: W,
    mut queue: mpsc::UnboundedReceiver<Output>,
    options: PtyOptions,
) {
    let mut output = std::pin::pin!(output);
    let mut wire = Wire::new(options.baud);
    let mut rng = Rng::new(options.faults.seed);
    while let Some(item) = queue.recv().await {
        let bytes = garble(&item.bytes, &options.faults, &mut rng);
        for piece in bytes.chunks(wire.chunk()) {
            wire.cross(piece.len()).await;
            match tokio::time::timeout(STALLED_WRITE, output.write_all(piece)).await {
                Ok(Ok(())) => {}
                Ok(Err(e)) => {
                    tracing::debug!("sim serial: console output failed: {e}");
                    return;
                }
                Err(_) => {
                    tracing::debug!("sim serial: nobody reads the console; output dropped");
                    break;
                }
            }
        }
        if let Err(e) = output.flush().await {
            tracing::debug!("sim serial: console output failed: {e}");
            return;
        }
        if let Some(sent) = item.sent {
            let _ = sent.send(());
        }
    }
}

/// The device's output as a noisy line delivers it.
fn garble(bytes: &[u8], faults: &SerialFaults, rng: &mut Rng) -> Vec<u8> {
    if faults.corrupt_byte_rate <= 0.0 && faults.drop_line_rate <= 0.0 {
        return bytes.to_vec();
    }
    let mut out = Vec::with_capacity(bytes.len());
    for line in bytes.split_inclusive(|&b| b == b'\n') {
        if rng.chance(faults.drop_line_rate) {
            tracing::debug!("sim serial: injected loss of a {}-byte line", line.len());
            continue;
        }
        out.extend(line.iter().map(|&b| {
            if rng.chance(faults.corrupt_byte_rate) {
                b ^ 1 << (rng.next_u64() % 8)
            } else {
                b
            }
        }));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uptime_is_formatted_like_zephyr_logs() {
        assert_eq!(uptime(Duration::from_micros(3_723_234_567)), "[01:02:03.234,567]");
    }

    #[test]
    fn garble_without_faults_is_the_identity() {
        let mut rng = Rng::new(1);
        let data = b"line one\nline two\n".to_vec();
        assert_eq!(garble(&data, &SerialFaults::default(), &mut rng), data);
    }

    #[test]
    fn garble_drops_whole_lines_and_flips_single_bits() {
        let data = b"line one\nline two\n".to_vec();
        let drop_all = SerialFaults { drop_line_rate: 1.0, ..Default::default() };
        assert!(garble(&data, &drop_all, &mut Rng::new(1)).is_empty());
        let corrupt_all = SerialFaults { corrupt_byte_rate: 1.0, ..Default::default() };
        let noisy = garble(&data, &corrupt_all, &mut Rng::new(1));
        assert_eq!(noisy.len(), data.len());
        assert!(noisy.iter().zip(&data).all(|(a, b)| (a ^ b).count_ones() == 1));
    }

    /// Bytes fed one at a time at `at`, and the frames they complete.
    fn feed(rx: &mut RawRx, bytes: &[u8], at: Instant) -> Vec<Vec<u8>> {
        bytes.iter().filter_map(|&b| rx.byte(b, 384, at)).collect()
    }

    fn echo(seq: u8) -> Vec<u8> {
        // op 2, group 0, id 0, {"d": "hi"}
        let body = [0xa1, 0x61, 0x64, 0x62, 0x68, 0x69];
        let mut f = vec![0x0a, 0, 0, body.len() as u8, 0, 0, seq, 0];
        f.extend_from_slice(&body);
        f
    }

    #[test]
    fn raw_requests_are_framed_by_their_header_back_to_back() {
        let mut rx = RawRx::default();
        let t = Instant::now();
        let two = [echo(1), echo(2)].concat();
        assert_eq!(feed(&mut rx, &two, t), vec![echo(1), echo(2)]);
        assert!(rx.timer.is_none(), "a complete request stops the timer");
    }

    #[test]
    fn a_stalled_partial_request_is_dropped_when_the_next_byte_comes_after_the_timeout() {
        let t = Instant::now();
        // Within the timeout the rest completes it.
        let mut rx = RawRx::default();
        let whole = echo(1);
        assert!(feed(&mut rx, &whole[..5], t).is_empty());
        assert_eq!(feed(&mut rx, &whole[5..], t + RAW_INPUT_TIMEOUT / 2), vec![whole.clone()]);
        // After it, the stale bytes go and the new request is read from its own first byte,
        // as Zephyr's smp_raw_uart_process_frag clears the buffer its timer flagged.
        let mut rx = RawRx::default();
        assert!(feed(&mut rx, &whole[..5], t).is_empty());
        assert_eq!(feed(&mut rx, &echo(2), t + RAW_INPUT_TIMEOUT), vec![echo(2)]);
        // The timer runs from a request's first byte, not from its latest one.
        let mut rx = RawRx::default();
        assert!(feed(&mut rx, &whole[..3], t).is_empty());
        assert!(feed(&mut rx, &whole[3..6], t + RAW_INPUT_TIMEOUT / 2).is_empty());
        assert_eq!(feed(&mut rx, &echo(3), t + RAW_INPUT_TIMEOUT), vec![echo(3)]);
    }

    #[test]
    fn upload_start_finds_the_first_chunk_only() {
        use smpflash_core::command::image::ImageUpload;
        use smpflash_core::command::Command;
        use smpflash_core::frame::{Header, Version};

        let frame = |off: u64, len: Option<u64>| {
            let body = smpflash_core::cbor::to_vec(&ImageUpload { off, len, ..Default::default() }, "upload")
                .unwrap();
            let header = Header {
                version: Version::V2,
                op: ImageUpload::OP,
                flags: 0,
                len: 0,
                group: ImageUpload::GROUP,
                seq: 0,
                id: ImageUpload::ID,
            };
            Frame::new(header, body).unwrap().encode()
        };
        assert_eq!(upload_start(&frame(0, Some(5000))), Some(5000));
        assert_eq!(upload_start(&frame(128, None)), None);
    }
}
