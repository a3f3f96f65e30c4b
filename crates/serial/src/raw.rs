//! The raw serial framing: bare SMP frames back to back, each delimited only by its own
//! header's length field — Zephyr 4.4's `CONFIG_MCUMGR_TRANSPORT_RAW_UART` (with
//! `CONFIG_UART_MCUMGR_RAW_PROTOCOL`) and MCUboot's `CONFIG_BOOT_SERIAL_RAW_PROTOCOL`.
//!
//! What the sources say:
//!
//! - Zephyr `drivers/console/uart_mcumgr.c`, `uart_mcumgr_send`: with
//!   `CONFIG_UART_MCUMGR_RAW_PROTOCOL` the frame (header and CBOR body) is written as is, no
//!   base64, no length prefix, no CRC, no newline. `uart_mcumgr_rx_byte` hands every received
//!   byte on as its own fragment.
//! - Zephyr `subsys/mgmt/mcumgr/transport/src/serial_util.c`, `mcumgr_serial_process_frag`
//!   (the `raw_transport` branch): bytes are appended until 8 (the header) are there; then the
//!   packet is dropped if `nh_len + 8` exceeds `CONFIG_MCUMGR_TRANSPORT_NETBUF_SIZE` or
//!   `nh_op >= MGMT_OP_COUNT`; it is complete once `nh_len + 8` bytes are buffered. A dropped
//!   packet restarts with the next byte, so the device resynchronises in whole 8-byte steps,
//!   not byte by byte. `smp_raw_uart.c` (`smp_raw_uart_process_frag`) optionally clears a
//!   partial packet after `CONFIG_MCUMGR_TRANSPORT_RAW_UART_INPUT_TIMEOUT_TIME_MS` of silence.
//! - MCUboot `boot/boot_serial/src/boot_serial.c`, `boot_serial_input_raw`: a buffered packet
//!   whose op is neither read (0) nor write (2), or whose `8 + nh_len` exceeds the receive
//!   buffer, makes it discard *everything* buffered; complete packets are dispatched and the
//!   bytes after them kept; `boot_serial_output` writes the answer's header and body, nothing
//!   else. `CONFIG_BOOT_SERIAL_RAW_PROTOCOL_INPUT_TIMEOUT` drops a stalled partial packet.
//!
//! There is no checksum and no delimiter: a receiver finds frames by their header alone.
//! [`RawCodec`] therefore checks more than the devices do before it trusts a header (reserved
//! bits clear, a known version, an op of the expected direction, a length within its bound,
//! and a body that is one CBOR map — checked as its bytes arrive, so garbage is refused before
//! its length is reached) and, when a candidate fails, drops one byte and looks again. A plausible header whose length never arrives is dropped the same way
//! by [`RawCodec::skip_stalled`], which the transport calls after a silence
//! ([`RAW_IDLE_RESYNC`](crate::transport::RAW_IDLE_RESYNC)).

use std::io;

use bytes::{Buf, BytesMut};
use smpflash_core::frame::HEADER_LEN;
use tokio_util::codec::{Decoder, Encoder};

/// The largest frame the header's 16-bit length can describe.
pub const MAX_RAW_FRAME: usize = HEADER_LEN + u16::MAX as usize;

/// Which ops a [`RawCodec`] accepts as the start of a frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Accept {
    /// Read and write responses (ops 1 and 3): a client reading a device's answers.
    Responses,
    /// Read and write requests (ops 0 and 2): a device emulator reading a client's requests.
    Requests,
}

impl Accept {
    fn op_ok(self, op: u8) -> bool {
        match self {
            Accept::Responses => op == 1 || op == 3,
            Accept::Requests => op == 0 || op == 2,
        }
    }
}

/// Why bytes were skipped while looking for a frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RawSkip {
    /// The 8 bytes at the front are not a header this codec accepts.
    BadHeader,
    /// The header's length goes beyond the codec's frame limit.
    TooLong,
    /// The body is not exactly one well-formed CBOR item.
    BadBody,
    /// A partial frame stalled (no byte for a while): its first byte was dropped.
    Stalled,
}

/// Decodes and encodes the raw framing; see the [module documentation](self).
#[derive(Debug, Clone)]
pub struct RawCodec {
    accept: Accept,
    max_frame: usize,
    /// Bytes skipped since the last frame, for one log line per run of garbage.
    skipped: usize,
}

impl RawCodec {
    /// A codec accepting frames of `accept`'s ops up to [`MAX_RAW_FRAME`] bytes.
    pub fn new(accept: Accept) -> Self {
        RawCodec { accept, max_frame: MAX_RAW_FRAME, skipped: 0 }
    }

    /// Bounds the frames (header included) this codec waits for, and so its buffer: a header
    /// announcing more is garbage. At least a header.
    pub fn with_max_frame(mut self, max_frame: usize) -> Self {
        self.max_frame = max_frame.clamp(HEADER_LEN, MAX_RAW_FRAME);
        self
    }

    /// What the header at the front of `src` announces, if it is one this codec accepts.
    fn check_header(&self, h: &[u8]) -> Result<usize, RawSkip> {
        let reserved = h[0] & 0xE0;
        let version = (h[0] >> 3) & 0x03;
        let op = h[0] & 0x07;
        if reserved != 0 || version > 1 || !self.accept.op_ok(op) {
            return Err(RawSkip::BadHeader);
        }
        let total = HEADER_LEN + u16::from_be_bytes([h[2], h[3]]) as usize;
        if total > self.max_frame {
            return Err(RawSkip::TooLong);
        }
        Ok(total)
    }

    fn skip(&mut self, src: &mut BytesMut, why: RawSkip) {
        src.advance(1);
        if self.skipped == 0 {
            tracing::debug!(target: "smpflash::serial", "raw framing: skipping bytes ({why:?})");
        }
        self.skipped += 1;
    }

    /// After a silence with a partial frame buffered: drops its first byte, so the next
    /// [`decode`](Decoder::decode) looks for a frame further on. Returns whether anything was
    /// dropped.
    pub fn skip_stalled(&mut self, src: &mut BytesMut) -> bool {
        if src.is_empty() {
            return false;
        }
        self.skip(src, RawSkip::Stalled);
        true
    }
}

/// How the body bytes received so far look.
#[derive(Debug, PartialEq, Eq)]
enum Body {
    /// Exactly one CBOR map (or nothing), filling `bytes`.
    Whole,
    /// The start of a CBOR map: more is needed.
    Partial,
    /// Not an SMP body.
    Bad,
}

/// Checks `bytes`, the body so far (`complete` when the header's length is all there). An SMP
/// body is one CBOR map (major type 5, first byte `A0`–`BB` or `BF`); a request may be empty
/// (`may_be_empty`), an answer never is (Zephyr and MCUboot always answer a map).
fn check_body(bytes: &[u8], complete: bool, may_be_empty: bool) -> Body {
    let Some(&first) = bytes.first() else {
        return match (complete, may_be_empty) {
            (false, _) => Body::Partial,
            (true, true) => Body::Whole,
            (true, false) => Body::Bad,
        };
    };
    if first >> 5 != 5 || (0xBC..=0xBE).contains(&first) {
        return Body::Bad;
    }
    let mut rest = bytes;
    match ciborium::de::from_reader::<ciborium::Value, _>(&mut rest) {
        Ok(_) if rest.is_empty() && complete => Body::Whole,
        Ok(_) => Body::Bad,
        Err(ciborium::de::Error::Io(_)) if !complete => Body::Partial,
        Err(_) => Body::Bad,
    }
}

impl Decoder for RawCodec {
    type Item = Vec<u8>;
    type Error = io::Error;

    fn decode(&mut self, src: &mut BytesMut) -> io::Result<Option<Vec<u8>>> {
        while src.len() >= HEADER_LEN {
            let total = match self.check_header(&src[..HEADER_LEN]) {
                Ok(total) => total,
                Err(why) => {
                    self.skip(src, why);
                    continue;
                }
            };
            let complete = src.len() >= total;
            match check_body(
                &src[HEADER_LEN..total.min(src.len())],
                complete,
                self.accept == Accept::Requests,
            ) {
                Body::Bad => {
                    self.skip(src, RawSkip::BadBody);
                    continue;
                }
                Body::Partial => {
                    src.reserve(total - src.len());
                    return Ok(None);
                }
                Body::Whole => {}
            }
            if self.skipped > 0 {
                tracing::debug!(target: "smpflash::serial", "raw framing: skipped {} bytes before a frame", self.skipped);
                self.skipped = 0;
            }
            return Ok(Some(src.split_to(total).to_vec()));
        }
        Ok(None)
    }

    fn decode_eof(&mut self, src: &mut BytesMut) -> io::Result<Option<Vec<u8>>> {
        let frame = self.decode(src)?;
        if frame.is_none() && !src.is_empty() {
            tracing::debug!(target: "smpflash::serial", "raw framing: {} bytes left at the end of the stream", src.len());
            src.clear();
        }
        Ok(frame)
    }
}

impl Encoder<&[u8]> for RawCodec {
    type Error = io::Error;

    fn encode(&mut self, frame: &[u8], dst: &mut BytesMut) -> io::Result<()> {
        dst.extend_from_slice(frame);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(op: u8, seq: u8, body: &[u8]) -> Vec<u8> {
        let l = (body.len() as u16).to_be_bytes();
        let mut f = vec![op, 0, l[0], l[1], 0, 0, seq, 0];
        f.extend_from_slice(body);
        f
    }

    /// `{"r": "hi"}`
    const ECHO_BODY: &[u8] = &[0xA1, 0x61, 0x72, 0x62, 0x68, 0x69];

    fn decode_all(codec: &mut RawCodec, bytes: &[u8]) -> Vec<Vec<u8>> {
        let mut buf = BytesMut::from(bytes);
        let mut out = Vec::new();
        while let Some(f) = codec.decode(&mut buf).unwrap() {
            out.push(f);
        }
        out
    }

    #[test]
    fn a_frame_comes_out_whole_and_only_once_complete() {
        let f = frame(3, 7, ECHO_BODY);
        let mut codec = RawCodec::new(Accept::Responses);
        let mut buf = BytesMut::new();
        for (i, b) in f.iter().enumerate() {
            buf.extend_from_slice(&[*b]);
            let got = codec.decode(&mut buf).unwrap();
            assert_eq!(got.is_some(), i == f.len() - 1, "byte {i}");
            if let Some(g) = got {
                assert_eq!(g, f);
            }
        }
        assert!(buf.is_empty());
    }

    #[test]
    fn garbage_before_and_frames_back_to_back() {
        let a = frame(3, 1, ECHO_BODY);
        let b = frame(1, 2, &[0xA0]);
        let mut wire = b"*** Booting Zephyr OS ***\r\n\x06\x09QUJD\n\xff\x00".to_vec();
        wire.extend_from_slice(&a);
        wire.extend_from_slice(&b);
        let mut codec = RawCodec::new(Accept::Responses);
        assert_eq!(decode_all(&mut codec, &wire), vec![a, b]);
    }

    #[test]
    fn requests_are_not_answers() {
        let req = frame(2, 1, ECHO_BODY);
        assert!(decode_all(&mut RawCodec::new(Accept::Responses), &req).is_empty());
        assert_eq!(decode_all(&mut RawCodec::new(Accept::Requests), &req), vec![req]);
    }

    #[test]
    fn a_header_that_promises_too_much_is_skipped_after_a_silence() {
        // A plausible header announcing 0x0100 body bytes that never come, whose body starts
        // like a map (`BF 61 78`: an indefinite map, key "x"), then a real frame.
        let real = frame(3, 9, ECHO_BODY);
        let mut wire = vec![0x03, 0x00, 0x01, 0x00, 0, 0, 0, 0, 0xBF, 0x61, 0x78];
        wire.extend_from_slice(&real);
        let mut codec = RawCodec::new(Accept::Responses);
        let mut buf = BytesMut::from(&wire[..]);
        assert_eq!(codec.decode(&mut buf).unwrap(), None);
        let mut found = None;
        while found.is_none() && codec.skip_stalled(&mut buf) {
            found = codec.decode(&mut buf).unwrap();
        }
        assert_eq!(found, Some(real));
    }

    #[test]
    fn a_frame_limit_bounds_the_wait() {
        let mut codec = RawCodec::new(Accept::Responses).with_max_frame(64);
        let mut wire = vec![0x03, 0x00, 0x10, 0x00, 0, 0, 0, 0];
        let real = frame(3, 9, ECHO_BODY);
        wire.extend_from_slice(&real);
        assert_eq!(decode_all(&mut codec, &wire), vec![real]);
    }

    #[test]
    fn a_body_that_is_not_one_cbor_item_is_not_a_frame() {
        let bad = frame(3, 1, &[0xA1, 0x61]);
        let good = frame(3, 2, ECHO_BODY);
        let mut wire = bad;
        wire.extend_from_slice(&good);
        assert_eq!(decode_all(&mut RawCodec::new(Accept::Responses), &wire), vec![good]);
    }
}
