//! The seam every medium implements: move whole SMP frames to and from one device.

use async_trait::async_trait;

use crate::error::Result;

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
    /// ([`Error::Disconnected`](crate::Error::Disconnected)) or broken; the request layer stops
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
}
