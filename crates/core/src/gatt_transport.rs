//! SMP over a GATT characteristic: frames out as MTU-sized writes, frames in reassembled from
//! notifications by the SMP header's length.

use crate::frame::{expected_len, Header, HEADER_LEN};
use crate::gatt::GattLink;
use crate::transport::{Transport, TransportError, TransportKind};
use crate::{Error, Result};
use async_trait::async_trait;
use tokio::sync::Mutex;

/// Largest frame SMP over BLE can describe: the header's 16-bit length plus the header.
///
/// BLE fragments frames, so the MTU does not bound them; the device's `buf_size` does, and the
/// upload engine learns that from the MCUmgr parameters command.
pub const MAX_FRAME: usize = u16::MAX as usize + HEADER_LEN;

/// Rebuilds whole SMP frames from the pieces a GATT link delivers.
///
/// Zephyr's `smp_bt` notifies a response in pieces of at most `mtu - 3` bytes and always starts
/// a new frame in a new notification, and a device reassembles written pieces the same way, so
/// this works in both directions: the client reads notifications with it, and a simulated device
/// can read writes with it.
///
/// A piece that would run past the length the header announced means a piece was lost or the
/// peer misbehaved. The partial frame is dropped with a warning and reassembly resumes at the
/// next piece that starts with a plausible header (possibly the offending piece itself, since
/// a lost tail followed by a new frame looks exactly like that). A new frame short enough to
/// fit the missing tail cannot be told apart by length; the glued result then fails to decode
/// in the request layer, which counts it as malformed.
#[derive(Debug, Default)]
pub struct FrameReassembler {
    buf: Vec<u8>,
    expected: usize,
    discarded: u64,
}

impl FrameReassembler {
    /// An empty reassembler.
    pub fn new() -> Self {
        Self::default()
    }

    /// Feeds one notification (or write) value; returns a frame once one is complete.
    pub fn push(&mut self, piece: &[u8]) -> Option<Vec<u8>> {
        if !self.buf.is_empty() {
            if self.buf.len() + piece.len() <= self.expected {
                self.buf.extend_from_slice(piece);
                return self.take_if_complete();
            }
            tracing::warn!(
                "SMP fragment overruns the frame: header announced {} bytes, {} buffered, \
                 {} more arrived; dropping the partial frame",
                self.expected,
                self.buf.len(),
                piece.len()
            );
            self.discarded += 1;
            self.buf.clear();
        }
        self.start(piece)
    }

    fn start(&mut self, piece: &[u8]) -> Option<Vec<u8>> {
        let Some(expected) = plausible_frame_len(piece) else {
            tracing::warn!("dropping {} byte fragment that does not start an SMP frame", piece.len());
            self.discarded += 1;
            return None;
        };
        if piece.len() > expected {
            tracing::warn!(
                "SMP fragment of {} bytes is longer than the {} byte frame its header announces; \
                 dropping it",
                piece.len(),
                expected
            );
            self.discarded += 1;
            return None;
        }
        self.expected = expected;
        self.buf.extend_from_slice(piece);
        self.take_if_complete()
    }

    fn take_if_complete(&mut self) -> Option<Vec<u8>> {
        (self.buf.len() == self.expected).then(|| std::mem::take(&mut self.buf))
    }

    /// Bytes of an incomplete frame held so far.
    pub fn pending(&self) -> usize {
        self.buf.len()
    }

    /// How many partial frames or stray fragments were thrown away.
    pub fn discarded(&self) -> u64 {
        self.discarded
    }
}

/// The total frame length if `piece` starts with a header this crate could decode.
fn plausible_frame_len(piece: &[u8]) -> Option<usize> {
    Header::decode(piece).ok()?;
    expected_len(piece)
}

/// A [`Transport`] that carries SMP frames over any [`GattLink`].
///
/// Frames go out as consecutive writes of at most `mtu - 3` bytes with no extra framing (the
/// device reassembles by the SMP header's length, as Zephyr's `smp_bt` does), and come back
/// reassembled from notifications the same way.
pub struct GattTransport<L: GattLink> {
    link: L,
    // Held across all writes of one frame: the device cannot tell whose fragment is whose, so
    // two concurrent senders must never interleave.
    send_lock: Mutex<()>,
    // Held across a whole receive: the partial frame lives here so a cancelled `recv` loses
    // nothing.
    rx: Mutex<FrameReassembler>,
}

impl<L: GattLink> GattTransport<L> {
    /// Carries SMP over `link`.
    pub fn new(link: L) -> Self {
        GattTransport { link, send_lock: Mutex::new(()), rx: Mutex::new(FrameReassembler::new()) }
    }

    /// The underlying link.
    pub fn link(&self) -> &L {
        &self.link
    }

    /// Gives the link back.
    pub fn into_inner(self) -> L {
        self.link
    }

    /// Largest write value the link takes.
    fn chunk_len(&self) -> Result<usize> {
        let mtu = self.link.mtu();
        mtu.checked_sub(3).filter(|&c| c > 0).ok_or_else(|| {
            Error::from(TransportError::new(
                TransportKind::Unsupported,
                format!("{}: unusable ATT MTU {mtu}", self.link.describe()),
            ))
        })
    }
}

#[async_trait]
impl<L: GattLink> Transport for GattTransport<L> {
    /// Writes the frame as consecutive values of at most `mtu - 3` bytes.
    ///
    /// Cancelling this future part way leaves a partial frame on the device, which it only
    /// drops when the next frame overruns it; the request layer never cancels a send.
    async fn send(&self, frame: &[u8]) -> Result<()> {
        if frame.len() > MAX_FRAME {
            return Err(Error::FrameTooLarge { size: frame.len(), limit: MAX_FRAME });
        }
        let chunk = self.chunk_len()?;
        let _guard = self.send_lock.lock().await;
        if !self.link.is_connected() {
            return Err(Error::link_lost(format!("{} is not connected", self.link.describe())));
        }
        tracing::trace!(
            "writing {} byte frame as {} values of up to {chunk} bytes",
            frame.len(),
            frame.len().div_ceil(chunk)
        );
        for piece in frame.chunks(chunk) {
            self.link.write(piece).await?;
        }
        Ok(())
    }

    async fn recv(&self) -> Result<Vec<u8>> {
        let mut rx = self.rx.lock().await;
        loop {
            let piece = self.link.notification().await?;
            if let Some(frame) = rx.push(&piece) {
                return Ok(frame);
            }
        }
    }

    fn max_frame(&self) -> usize {
        MAX_FRAME
    }

    fn piece_len(&self) -> usize {
        self.chunk_len().unwrap_or(1)
    }

    fn describe(&self) -> String {
        self.link.describe()
    }

    /// Disconnects the link.
    async fn close(&self) -> Result<()> {
        self.link.disconnect().await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(body_len: usize, fill: u8) -> Vec<u8> {
        let mut f = vec![0x09, 0, 0, 0, 0, 1, 7, 0];
        f[2..4].copy_from_slice(&(body_len as u16).to_be_bytes());
        f.extend(std::iter::repeat_n(fill, body_len));
        f
    }

    #[test]
    fn reassembles_a_frame_split_over_many_pieces() {
        let f = frame(100, 0xAB);
        let mut r = FrameReassembler::new();
        let pieces: Vec<_> = f.chunks(20).collect();
        for p in &pieces[..pieces.len() - 1] {
            assert_eq!(r.push(p), None);
        }
        assert_eq!(r.push(pieces[pieces.len() - 1]), Some(f));
        assert_eq!(r.pending(), 0);
        assert_eq!(r.discarded(), 0);
    }

    #[test]
    fn a_frame_in_one_piece_comes_out_at_once() {
        let f = frame(3, 1);
        assert_eq!(FrameReassembler::new().push(&f), Some(f));
    }

    #[test]
    fn overrun_drops_the_partial_frame_and_resyncs_on_the_new_header() {
        let first = frame(50, 1);
        // Long enough to overrun the 38 bytes the first frame still expects.
        let second = frame(40, 2);
        let mut r = FrameReassembler::new();
        // The tail of the first frame is lost; the second frame's single piece overruns it.
        assert_eq!(r.push(&first[..20]), None);
        assert_eq!(r.push(&second), Some(second));
        assert_eq!(r.discarded(), 1);
    }

    #[test]
    fn stray_pieces_are_skipped_until_a_header_arrives() {
        let f = frame(10, 3);
        let mut r = FrameReassembler::new();
        // Reserved bits set: not a header.
        assert_eq!(r.push(&[0xFF; 20]), None);
        assert_eq!(r.push(&[1, 2, 3]), None);
        assert_eq!(r.push(&f), Some(f));
        assert_eq!(r.discarded(), 2);
    }

    #[test]
    fn a_piece_longer_than_its_own_frame_is_dropped() {
        let mut f = frame(4, 5);
        f.extend_from_slice(&[9, 9]);
        let mut r = FrameReassembler::new();
        assert_eq!(r.push(&f), None);
        assert_eq!(r.discarded(), 1);
        assert_eq!(r.pending(), 0);
    }
}
