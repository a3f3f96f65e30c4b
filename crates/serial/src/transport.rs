//! [`SerialTransport`]: the console or raw framing over a serial port, a TCP socket (ser2net,
//! emulators) or any byte stream.

use std::io;
use std::time::Duration;

use async_trait::async_trait;
use bytes::BytesMut;
use smpflash_core::transport::{Transport, TransportError, TransportKind};
use smpflash_core::{Error, Result};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, ReadHalf, WriteHalf};
use tokio::net::TcpStream;
use tokio::sync::Mutex;
use tokio::time::Instant;
use tokio_util::codec::Decoder;

use crate::codec::{self, FrameCodec, MAX_ENCODABLE_FRAME};
use crate::framing::{self, Framing};
use crate::raw::{Accept, RawCodec, MAX_RAW_FRAME};

/// With the raw framing, how long a partial frame may sit without a new byte before its first
/// byte is dropped and the buffer searched again (the host side of Zephyr's
/// `CONFIG_MCUMGR_TRANSPORT_RAW_UART_INPUT_TIMEOUT` and MCUboot's
/// `CONFIG_BOOT_SERIAL_RAW_PROTOCOL_INPUT_TIMEOUT`): the raw framing has no delimiter, so a
/// garbage byte that looks like a header would otherwise hold the next answer hostage.
pub const RAW_IDLE_RESYNC: Duration = Duration::from_millis(250);

/// How long [`SerialTransport::detect_framing`] waits for each probe's answer by default.
pub const DEFAULT_PROBE_WAIT: Duration = Duration::from_millis(500);

/// A decoder of either framing.
#[derive(Debug)]
enum WireCodec {
    Console(FrameCodec),
    Raw(RawCodec),
}

impl WireCodec {
    fn new(framing: Framing) -> Self {
        if framing.is_raw() {
            WireCodec::Raw(RawCodec::new(Accept::Responses))
        } else {
            WireCodec::Console(FrameCodec::new())
        }
    }
}

/// The read half with its buffer and decoder.
struct Reader {
    io: ReadHalf<Box<dyn Link>>,
    buf: BytesMut,
    codec: WireCodec,
}

impl Reader {
    /// Reads more bytes; `Ok(0)` is the end of the stream.
    async fn fill(&mut self) -> io::Result<usize> {
        self.buf.reserve(4096);
        self.io.read_buf(&mut self.buf).await
    }

    async fn next_frame(&mut self) -> Option<io::Result<Vec<u8>>> {
        loop {
            let decoded = match &mut self.codec {
                WireCodec::Console(c) => c.decode(&mut self.buf),
                WireCodec::Raw(c) => c.decode(&mut self.buf),
            };
            match decoded {
                Ok(Some(frame)) => return Some(Ok(frame)),
                Ok(None) => {}
                Err(e) => return Some(Err(e)),
            }
            let read = match &mut self.codec {
                WireCodec::Raw(c) if !self.buf.is_empty() => {
                    match tokio::time::timeout(RAW_IDLE_RESYNC, self.io.read_buf(&mut self.buf)).await {
                        Ok(r) => r,
                        Err(_) => {
                            c.skip_stalled(&mut self.buf);
                            continue;
                        }
                    }
                }
                _ => self.fill().await,
            };
            match read {
                Ok(0) => {
                    let last = match &mut self.codec {
                        WireCodec::Console(c) => c.decode_eof(&mut self.buf),
                        WireCodec::Raw(c) => c.decode_eof(&mut self.buf),
                    };
                    return match last {
                        Ok(Some(frame)) => Some(Ok(frame)),
                        Ok(None) => None,
                        Err(e) => Some(Err(e)),
                    };
                }
                Ok(_) => {}
                Err(e) => return Some(Err(e)),
            }
        }
    }
}

/// Frame limit used unless told otherwise: Zephyr's default `CONFIG_MCUMGR_TRANSPORT_UART_MTU`.
///
/// The packet's 16-bit length allows [`MAX_ENCODABLE_FRAME`]. What really bounds a request is
/// the device's SMP buffer: Zephyr reassembles each packet into one buffer of
/// `CONFIG_MCUMGR_TRANSPORT_NETBUF_SIZE` bytes that also holds the length and the CRC, so a
/// request may be `buf_size - 4` bytes ([`frame_overhead`](Transport::frame_overhead)). The
/// UART MTU (`CONFIG_MCUMGR_TRANSPORT_UART_MTU`, 256) only limits what the device sends. The
/// upload engine takes the smaller of this and the device's buffer, so the transport itself does
/// not cap frames; lower it with [`with_max_frame`](SerialTransport::with_max_frame) for a device
/// that cannot report its buffers.
pub const DEFAULT_MAX_FRAME: usize = MAX_ENCODABLE_FRAME;

/// URL scheme that [`SerialTransport::connect`] reads as raw serial over TCP.
pub const TCP_SCHEME: &str = "tcp://";

/// What a console link needs from its byte stream; boxed so the transport is one type whatever
/// the stream.
trait Link: AsyncRead + AsyncWrite + Send + Unpin {}

impl<T: AsyncRead + AsyncWrite + Send + Unpin> Link for T {}

/// SMP over a serial link: frames as base64 lines among the device's log output (the console
/// framing, the default), or bare frames (the raw framing, [`with_framing`](Self::with_framing)).
///
/// One task may wait in [`recv`](Transport::recv) while others [`send`](Transport::send): the
/// read and write halves have separate locks. Each frame's lines are written under the write
/// lock, so concurrent frames never interleave on the wire.
pub struct SerialTransport {
    reader: Mutex<Reader>,
    writer: Mutex<WriteHalf<Box<dyn Link>>>,
    description: String,
    framing: Framing,
    line_delay: Option<Duration>,
    // When the last paced line went out; taken and set under the write lock.
    last_line: std::sync::Mutex<Option<Instant>>,
    max_frame: usize,
}

impl std::fmt::Debug for SerialTransport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SerialTransport")
            .field("description", &self.description)
            .field("framing", &self.framing)
            .field("line_delay", &self.line_delay)
            .field("max_frame", &self.max_frame)
            .finish_non_exhaustive()
    }
}

impl SerialTransport {
    /// Opens a serial port (`/dev/ttyACM0`, `COM3`, a pty such as `/dev/pts/5`) at `baud`,
    /// 8N1 without flow control. Must be called inside a tokio runtime.
    pub fn open(path: &str, baud: u32) -> Result<Self> {
        use tokio_serial::SerialPortBuilderExt;

        let port = tokio_serial::new(path, baud).open_native_async().map_err(|e| {
            TransportError::new(TransportKind::Open, format!("cannot open serial port {path}")).with_source(e)
        })?;
        Ok(Self::from_stream(port, format!("serial {path} @ {baud}")))
    }

    /// Connects to raw serial over TCP (ser2net in raw mode, emulators, QEMU's `-serial tcp:`),
    /// given as `tcp://HOST:PORT` or `HOST:PORT`.
    pub async fn connect_tcp(target: &str) -> Result<Self> {
        let addr = target.strip_prefix(TCP_SCHEME).unwrap_or(target);
        let stream = TcpStream::connect(addr).await.map_err(|e| {
            TransportError::new(TransportKind::Open, format!("cannot connect to {addr}")).with_source(e)
        })?;
        // Lines are small and answers are awaited: do not let Nagle hold them back.
        stream.set_nodelay(true).map_err(|e| {
            TransportError::new(TransportKind::Open, format!("cannot set TCP_NODELAY on {addr}"))
                .with_source(e)
        })?;
        Ok(Self::from_stream(stream, format!("serial {TCP_SCHEME}{addr}")))
    }

    /// Opens `target`: a `tcp://HOST:PORT` address with [`connect_tcp`](Self::connect_tcp),
    /// anything else as a serial port path with [`open`](Self::open) at `baud`.
    pub async fn connect(target: &str, baud: u32) -> Result<Self> {
        if target.starts_with(TCP_SCHEME) {
            Self::connect_tcp(target).await
        } else {
            Self::open(target, baud)
        }
    }

    /// Runs the console framing over any byte stream (a pty, a socket, an in-memory pipe).
    /// `description` is what [`describe`](Transport::describe) returns.
    pub fn from_stream<S>(stream: S, description: impl Into<String>) -> Self
    where
        S: AsyncRead + AsyncWrite + Send + Unpin + 'static,
    {
        let (read, write) = tokio::io::split(Box::new(stream) as Box<dyn Link>);
        SerialTransport {
            reader: Mutex::new(Reader {
                io: read,
                buf: BytesMut::new(),
                codec: WireCodec::new(Framing::Console),
            }),
            writer: Mutex::new(write),
            description: description.into(),
            framing: Framing::Console,
            line_delay: None,
            last_line: std::sync::Mutex::new(None),
            max_frame: DEFAULT_MAX_FRAME,
        }
    }

    /// Speaks `framing` from now on (the console framing unless told otherwise). Bytes already
    /// received and not yet decoded are dropped.
    pub fn with_framing(mut self, framing: Framing) -> Self {
        self.framing = framing;
        let reader = self.reader.get_mut();
        reader.codec = WireCodec::new(framing);
        reader.buf.clear();
        if framing.is_raw() {
            self.max_frame = self.max_frame.min(MAX_RAW_FRAME);
        }
        self
    }

    /// The framing this link speaks.
    pub fn framing(&self) -> Framing {
        self.framing
    }

    /// Finds out which framing the device speaks, and switches to it.
    ///
    /// Sends an echo in the console framing first and waits up to `wait` for its answer; if none
    /// comes, sends an echo as a bare frame and waits up to `wait` again, still taking a late
    /// console answer. The console probe first because it cannot confuse a raw device (see
    /// `framing::console_probe`: a raw device refuses every 8-byte block of it and keeps
    /// nothing), while raw bytes would sit in a console device's line buffer; after an
    /// unanswered raw probe a newline is sent to end that line. A console device costs one
    /// echo round trip, a raw one `wait` more.
    ///
    /// Returns the link and `Some(framing)` found, or `None` when neither probe was answered
    /// (the link then stays in the console framing).
    pub async fn detect_framing(mut self, wait: Duration) -> Result<(Self, Option<Framing>)> {
        let found = self.probe(wait).await?;
        let framing = found.unwrap_or(Framing::Console);
        Ok((self.with_framing(framing), found))
    }

    async fn probe(&mut self, wait: Duration) -> Result<Option<Framing>> {
        let mut console = FrameCodec::new();
        let mut raw = RawCodec::new(Accept::Responses);
        let mut console_buf = BytesMut::new();
        let mut raw_buf = BytesMut::new();
        for (wire, kind) in
            [(framing::console_probe(), Framing::Console), (framing::raw_probe(), Framing::Raw)]
        {
            tracing::debug!(target: "smpflash::serial", "probing the {kind} framing ({} bytes)", wire.len());
            self.write_raw(&wire).await?;
            let deadline = Instant::now() + wait;
            loop {
                while let Ok(Some(frame)) = console.decode(&mut console_buf) {
                    if framing::answers_probe(&frame, framing::CONSOLE_PROBE_SEQ) {
                        return Ok(Some(Framing::Console));
                    }
                }
                while let Ok(Some(frame)) = raw.decode(&mut raw_buf) {
                    if framing::answers_probe(&frame, framing::RAW_PROBE_SEQ) {
                        return Ok(Some(Framing::Raw));
                    }
                }
                let reader = self.reader.get_mut();
                reader.buf.clear();
                let read = match tokio::time::timeout_at(deadline, reader.fill()).await {
                    Err(_) => break,
                    Ok(r) => r,
                };
                match read {
                    Ok(0) => return Err(Error::link_lost(format!("{} closed", self.description))),
                    Ok(_) => {
                        console_buf.extend_from_slice(&reader.buf);
                        raw_buf.extend_from_slice(&reader.buf);
                        reader.buf.clear();
                    }
                    Err(e) => return Err(self.read_error(e)),
                }
            }
        }
        // A console device holds the raw probe as the start of a line: end it.
        self.write_raw(b"\n").await?;
        Ok(None)
    }

    async fn write_raw(&self, bytes: &[u8]) -> Result<()> {
        let mut writer = self.writer.lock().await;
        writer.write_all(bytes).await.map_err(|e| self.write_error(e))?;
        writer.flush().await.map_err(|e| self.write_error(e))
    }

    fn read_error(&self, e: io::Error) -> Error {
        if is_disconnect(&e) {
            TransportError::new(TransportKind::LinkLost, self.description.clone()).with_source(e).into()
        } else {
            TransportError::new(TransportKind::Io, format!("reading from {}", self.description))
                .with_source(e)
                .into()
        }
    }

    /// Pauses this long after each line of a multi-line frame, for devices whose UART receive
    /// buffers overflow when lines arrive back to back (typically USB CDC ACM, which delivers
    /// at full USB speed whatever the baud rate).
    ///
    /// The pause starts once the operating system has taken the line, not once it has left
    /// the wire: on a real UART it must exceed the line's transmission time (about 11 ms for a
    /// 127-byte line at 115200 baud) to leave the device any slack.
    pub fn with_line_delay(mut self, delay: Duration) -> Self {
        self.line_delay = (!delay.is_zero()).then_some(delay);
        self
    }

    /// Sets the largest SMP frame (header included) this link reports it carries; see
    /// [`DEFAULT_MAX_FRAME`]. Capped at [`MAX_ENCODABLE_FRAME`].
    pub fn with_max_frame(mut self, max_frame: usize) -> Self {
        self.max_frame = max_frame.min(MAX_ENCODABLE_FRAME);
        self
    }

    /// Lowers the frame limit further, e.g. to the device's `buf_size`.
    pub fn limit_frame(&mut self, limit: usize) {
        self.max_frame = self.max_frame.min(limit);
    }

    /// The pause between lines, if any.
    pub fn line_delay(&self) -> Option<Duration> {
        self.line_delay
    }

    fn write_error(&self, e: io::Error) -> Error {
        if is_disconnect(&e) {
            TransportError::new(TransportKind::LinkLost, self.description.clone()).with_source(e).into()
        } else {
            TransportError::new(TransportKind::Io, format!("writing to {}", self.description))
                .with_source(e)
                .into()
        }
    }
}

/// Errors that mean the other end is gone rather than a transient failure: a closed socket, an
/// unplugged USB adapter (EIO, ENXIO, ENODEV), a pty whose other side was closed (EIO).
fn is_disconnect(e: &io::Error) -> bool {
    use io::ErrorKind::*;
    matches!(e.kind(), BrokenPipe | ConnectionReset | ConnectionAborted | NotConnected | UnexpectedEof)
        || (cfg!(unix) && matches!(e.raw_os_error(), Some(5 | 6 | 19)))
}

#[async_trait]
impl Transport for SerialTransport {
    async fn send(&self, frame: &[u8]) -> Result<()> {
        if self.framing.is_raw() {
            if frame.len() > MAX_RAW_FRAME {
                return Err(Error::FrameTooLarge { size: frame.len(), limit: MAX_RAW_FRAME });
            }
            tracing::trace!(target: "smpflash::serial", "-> {} frame bytes, raw", frame.len());
            return self.write_raw(frame).await;
        }
        let wire = codec::encode_frame(frame)?;
        tracing::trace!(
            target: "smpflash::serial",
            "-> {} frame bytes as {} wire bytes",
            frame.len(),
            wire.len()
        );
        let mut writer = self.writer.lock().await;
        match self.line_delay {
            None => writer.write_all(&wire).await,
            Some(delay) => {
                // The pause separates frames too. Pipelined requests would otherwise put one
                // frame's last line and the next frame's first line back to back, the very
                // burst the pause is for: on Zephyr's native_sim `serial` build, a 4000-byte
                // fs upload with 3 requests in flight took 20-26 s of timeouts without this,
                // and 0.7 s with it. Waiting here rather than after a frame's last line lets a
                // lone request's send return as soon as its last line is out.
                let last = *self.last_line.lock().unwrap_or_else(|e| e.into_inner());
                if let Some(last) = last {
                    tokio::time::sleep_until(last + delay).await;
                }
                let mut lines = wire.split_inclusive(|&b| b == b'\n').peekable();
                let mut result = Ok(());
                while let Some(line) = lines.next() {
                    result = async {
                        writer.write_all(line).await?;
                        writer.flush().await
                    }
                    .await;
                    if result.is_err() {
                        break;
                    }
                    if lines.peek().is_some() {
                        tokio::time::sleep(delay).await;
                    }
                }
                *self.last_line.lock().unwrap_or_else(|e| e.into_inner()) = Some(Instant::now());
                result
            }
        }
        .map_err(|e| self.write_error(e))?;
        writer.flush().await.map_err(|e| self.write_error(e))
    }

    async fn recv(&self) -> Result<Vec<u8>> {
        let mut reader = self.reader.lock().await;
        match reader.next_frame().await {
            Some(Ok(frame)) => Ok(frame),
            Some(Err(e)) => Err(self.read_error(e)),
            None => Err(Error::link_lost(format!("{} closed", self.description))),
        }
    }

    fn max_frame(&self) -> usize {
        self.max_frame
    }

    /// Console framing: Zephyr decodes the length, the frame and the CRC into one SMP buffer.
    /// Raw framing: the buffer holds the frame alone (`mcumgr_serial_process_frag` refuses
    /// `nh_len + 8 > CONFIG_MCUMGR_TRANSPORT_NETBUF_SIZE`).
    fn frame_overhead(&self) -> usize {
        if self.framing.is_raw() {
            0
        } else {
            4
        }
    }

    fn describe(&self) -> String {
        self.description.clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::codec::{ConsoleCodec, ConsoleItem};
    use tokio::io::AsyncReadExt;
    use tokio_util::codec::Decoder;

    #[tokio::test]
    async fn paced_send_writes_the_same_bytes_line_by_line() {
        let (ours, mut theirs) = tokio::io::duplex(1 << 16);
        let link = SerialTransport::from_stream(ours, "duplex").with_line_delay(Duration::from_millis(1));
        let frame: Vec<u8> = (0..400u16).map(|i| i as u8).collect();
        link.send(&frame).await.unwrap();
        drop(link);
        let mut wire = Vec::new();
        theirs.read_to_end(&mut wire).await.unwrap();
        assert_eq!(wire, codec::encode_frame(&frame).unwrap());
        let mut buf = bytes::BytesMut::from(&wire[..]);
        assert_eq!(ConsoleCodec::new().decode(&mut buf).unwrap(), Some(ConsoleItem::Frame(frame)));
    }

    /// When each line of the wire arrived, read from the far end of a paced link.
    async fn line_arrivals(mut theirs: tokio::io::DuplexStream, lines: usize) -> Vec<Instant> {
        let mut at = Vec::new();
        let mut byte = [0u8; 1];
        while at.len() < lines {
            theirs.read_exact(&mut byte).await.unwrap();
            if byte[0] == b'\n' {
                at.push(Instant::now());
            }
        }
        at
    }

    #[tokio::test(start_paused = true)]
    async fn the_line_delay_also_separates_pipelined_frames() {
        let delay = Duration::from_millis(10);
        let (ours, theirs) = tokio::io::duplex(1 << 16);
        let link = SerialTransport::from_stream(ours, "duplex").with_line_delay(delay);
        let frame: Vec<u8> = (0..400u16).map(|i| i as u8).collect();
        let per_frame = codec::encode_frame(&frame).unwrap().iter().filter(|&&b| b == b'\n').count();
        assert!(per_frame > 1, "a frame of several lines");
        let arrivals = tokio::spawn(line_arrivals(theirs, 2 * per_frame));
        let start = Instant::now();
        // Two requests in flight at once, as the upload pipeline sends them.
        let (a, b) = tokio::join!(link.send(&frame), link.send(&frame));
        a.unwrap();
        b.unwrap();
        let at = arrivals.await.unwrap();
        for (n, pair) in at.windows(2).enumerate() {
            assert!(
                pair[1] - pair[0] >= delay,
                "line {} followed line {} after {:?}",
                n + 1,
                n,
                pair[1] - pair[0]
            );
        }
        // No pause after the last line: both frames took their lines' pauses and no more.
        assert_eq!(start.elapsed(), delay * (2 * per_frame as u32 - 1));
    }

    #[tokio::test]
    async fn end_of_stream_is_a_disconnect() {
        let (ours, theirs) = tokio::io::duplex(64);
        let link = SerialTransport::from_stream(ours, "duplex");
        drop(theirs);
        assert!(matches!(link.recv().await, Err(ref e) if e.is_link_lost()));
    }

    #[tokio::test]
    async fn frame_limit_settings() {
        let (ours, _theirs) = tokio::io::duplex(64);
        let mut link = SerialTransport::from_stream(ours, "duplex");
        assert_eq!(link.max_frame(), DEFAULT_MAX_FRAME);
        link = link.with_max_frame(1 << 20);
        assert_eq!(link.max_frame(), MAX_ENCODABLE_FRAME);
        link.limit_frame(128);
        link.limit_frame(512);
        assert_eq!(link.max_frame(), 128);
        assert_eq!(link.describe(), "duplex");
    }

    #[tokio::test]
    async fn oversized_frames_are_refused_before_writing() {
        let (ours, _theirs) = tokio::io::duplex(64);
        let link = SerialTransport::from_stream(ours, "duplex");
        assert!(matches!(
            link.send(&vec![0; MAX_ENCODABLE_FRAME + 1]).await,
            Err(Error::FrameTooLarge { .. })
        ));
    }

    #[tokio::test]
    async fn missing_port_is_a_transport_error() {
        let err = SerialTransport::open("/nonexistent/ttyNOPE", 115_200).unwrap_err();
        assert!(matches!(err, Error::Transport(ref t) if t.kind == TransportKind::Open), "{err}");
        assert!(err.to_string().contains("/nonexistent/ttyNOPE"), "{err}");
    }
}
