//! The seam every medium implements: move whole SMP frames to and from one device.

use std::fmt;
use std::sync::Arc;

use async_trait::async_trait;

use crate::error::Result;

/// What kind of link failure happened, so a caller (and the CLI's exit code) can act on it
/// without reading the message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
#[non_exhaustive]
pub enum TransportKind {
    /// No Bluetooth adapter, or no Bluetooth stack to ask for one.
    NoAdapter,
    /// The device refused an operation until it is paired (ATT insufficient authentication).
    PairingRequired,
    /// The device or address was not found (not advertising, no such host).
    NotFound,
    /// The link could not be opened (port, socket, connection).
    Open,
    /// The link was up and went away: reconnecting may help.
    LinkLost,
    /// Reading or writing failed on an open link.
    Io,
    /// The link cannot carry SMP as required (no SMP characteristic, unusable MTU, a value
    /// the peer rejects).
    Unsupported,
}

/// A link failure: its kind, what was being done, and the underlying cause kept as the source.
#[derive(Debug, Clone)]
pub struct TransportError {
    /// Which kind of failure.
    pub kind: TransportKind,
    /// What was being done, in words ("cannot open serial port /dev/ttyACM0").
    pub context: String,
    /// The error of the layer below (io, btleplug, D-Bus), when there is one. Shared so that
    /// the request layer can hand the same cause to every request the failure ends.
    pub source: Option<Arc<dyn std::error::Error + Send + Sync>>,
}

impl TransportError {
    /// A failure without an underlying error.
    pub fn new(kind: TransportKind, context: impl Into<String>) -> Self {
        TransportError { kind, context: context.into(), source: None }
    }

    /// Keeps `source` as the cause.
    pub fn with_source(mut self, source: impl std::error::Error + Send + Sync + 'static) -> Self {
        self.source = Some(Arc::new(source));
        self
    }
}

impl fmt::Display for TransportError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The sentence names the cause inline: the CLI prints one line, not a source chain.
        match self.kind {
            TransportKind::LinkLost => write!(f, "connection to the device lost: {}", self.context)?,
            _ => write!(f, "{}", self.context)?,
        }
        if let Some(source) = &self.source {
            write!(f, ": {source}")?;
        }
        Ok(())
    }
}

impl std::error::Error for TransportError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.source.as_deref().map(|s| s as &(dyn std::error::Error + 'static))
    }
}

/// A link that carries whole SMP frames.
///
/// Implementations do their own framing (BLE fragmentation, serial base64 lines, one datagram
/// per frame) so that [`send`](Transport::send) takes and [`recv`](Transport::recv) yields exactly
/// one encoded frame, header included. Both take `&self` so that one task can wait for answers
/// while others send: the request layer keeps several requests in flight that way.
#[async_trait]
pub trait Transport: Send + Sync {
    /// Sends one encoded frame. Returns once the medium has accepted it (for BLE, once every
    /// fragment was written), not when the device answers.
    async fn send(&self, frame: &[u8]) -> Result<()>;

    /// Waits for the next whole frame from the device. An error means the link is gone
    /// (a [`TransportKind::LinkLost`] error) or broken; the request layer stops
    /// reading after one.
    async fn recv(&self) -> Result<Vec<u8>>;

    /// The largest whole frame (header included) this link can carry in one piece.
    fn max_frame(&self) -> usize;

    /// Bytes of the device's SMP buffer (`buf_size`) this transport's own framing occupies
    /// besides the frame: Zephyr's serial transport keeps the 2-byte length and the 2-byte CRC
    /// in the buffer, so a serial frame may be at most `buf_size - 4`.
    fn frame_overhead(&self) -> usize {
        0
    }

    /// Size of the pieces the medium carries a frame in, when it splits frames: over BLE one
    /// ATT value (`mtu - 3`), each costing a link-layer slot however full it is. 1 when frames
    /// travel whole. The upload engine uses it to avoid frames that end in a nearly empty piece.
    fn piece_len(&self) -> usize {
        1
    }

    /// A short description for logs and messages, e.g. `udp 127.0.0.1:1337`.
    fn describe(&self) -> String;

    /// Ends the link to the device, for media where the device notices: over BLE it
    /// disconnects, so the device advertises again and the next tool finds it. Call it before
    /// the program (and its async runtime) ends, on success and on failure alike; dropping a
    /// transport cannot reliably do that work. Closing a link that is already gone is not an
    /// error worth reporting. The default does nothing (UDP, serial: nothing to end).
    async fn close(&self) -> Result<()> {
        Ok(())
    }
}
