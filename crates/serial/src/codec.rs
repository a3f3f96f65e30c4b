//! The console framing Zephyr's `mcumgr_serial` code speaks: each SMP frame travels as a
//! "packet" (2-byte big-endian length, the frame, CRC16-XMODEM of the frame), base64-encoded and
//! cut into newline-terminated lines marked `06 09` (first) or `04 14` (continuation), mixed in
//! with whatever else the device prints.
//!
//! The same framing runs in both directions, so [`ConsoleCodec`] serves a host talking to a
//! device as well as a device emulator talking to a host.

use std::collections::VecDeque;
use std::fmt;
use std::io;

use base64::engine::general_purpose::{GeneralPurpose, GeneralPurposeConfig};
use base64::engine::DecodePaddingMode;
use base64::Engine;
use bytes::BytesMut;
use crc::{Crc, CRC_16_XMODEM};
use smpflash_core::{Error, Result};
use tokio_util::codec::{Decoder, Encoder};

/// Marker opening the first line of a packet.
pub const PACKET_START: [u8; 2] = [0x06, 0x09];

/// Marker opening every further line of a packet.
pub const PACKET_CONTINUATION: [u8; 2] = [0x04, 0x14];

/// Longest line the encoder writes: marker, base64 text and newline.
///
/// Zephyr's `MCUMGR_SERIAL_MAX_FRAME` (127), which its own sender never exceeds and which fits
/// the default 128-byte line buffer of its UART receiver (`CONFIG_UART_MCUMGR_RX_BUF_SIZE`).
pub const MAX_LINE: usize = 127;

/// Packet bytes carried by one full line: 124 base64 characters. Whole 3-byte groups, so that
/// each line decodes on its own, which is how Zephyr's receiver decodes them.
const LINE_PAYLOAD: usize = (MAX_LINE - PACKET_START.len() - 1) / 4 * 3;

/// Largest frame the 16-bit packet length can describe (it counts the CRC too).
pub const MAX_ENCODABLE_FRAME: usize = u16::MAX as usize - 2;

/// The decoder's default bound on one line: the largest possible packet on a single line, as
/// MCUboot's serial recovery sends its answers, plus marker and a `\r`. Anything longer cannot
/// carry a packet and is skipped rather than buffered.
pub const DEFAULT_LINE_LIMIT: usize = PACKET_START.len() + 4 * (MAX_ENCODABLE_FRAME + 4).div_ceil(3) + 1;

const CRC16: Crc<u16> = Crc::<u16>::new(&CRC_16_XMODEM);

// Padding only closes a packet's last line, but a sender that leaves it off costs nothing to
// accept; trailing bits are accepted for the same reason.
const BASE64: GeneralPurpose = GeneralPurpose::new(
    &base64::alphabet::STANDARD,
    GeneralPurposeConfig::new()
        .with_decode_padding_mode(DecodePaddingMode::Indifferent)
        .with_decode_allow_trailing_bits(true),
);

/// Encodes one SMP frame as the wire bytes of its console lines.
///
/// Fails with [`Error::FrameTooLarge`] for frames over [`MAX_ENCODABLE_FRAME`] bytes.
pub fn encode_frame(frame: &[u8]) -> Result<Vec<u8>> {
    let mut out = Vec::with_capacity(encoded_len(frame.len()));
    encode_into(frame, &mut out)?;
    Ok(out)
}

/// How many wire bytes [`encode_frame`] produces for a frame of `frame_len` bytes.
pub fn encoded_len(frame_len: usize) -> usize {
    let packet = frame_len + 4;
    let lines = packet.div_ceil(LINE_PAYLOAD);
    4 * packet.div_ceil(3) + lines * (PACKET_START.len() + 1)
}

fn encode_into(frame: &[u8], out: &mut Vec<u8>) -> Result<()> {
    if frame.len() > MAX_ENCODABLE_FRAME {
        return Err(Error::FrameTooLarge { size: frame.len(), limit: MAX_ENCODABLE_FRAME });
    }
    let mut packet = Vec::with_capacity(frame.len() + 4);
    packet.extend_from_slice(&((frame.len() + 2) as u16).to_be_bytes());
    packet.extend_from_slice(frame);
    packet.extend_from_slice(&CRC16.checksum(frame).to_be_bytes());

    let mut text = String::with_capacity(MAX_LINE);
    for (i, chunk) in packet.chunks(LINE_PAYLOAD).enumerate() {
        out.extend_from_slice(if i == 0 { &PACKET_START } else { &PACKET_CONTINUATION });
        text.clear();
        BASE64.encode_string(chunk, &mut text);
        out.extend_from_slice(text.as_bytes());
        out.push(b'\n');
    }
    Ok(())
}

/// One thing read from a console.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConsoleItem {
    /// A whole SMP frame whose CRC checked out, without the packet's length and CRC.
    Frame(Vec<u8>),
    /// A console line that is not part of a packet (log output, shell prompt), without its
    /// line ending.
    Log(String),
    /// A packet, or a piece of one, that was thrown away.
    Discarded(Discard),
}

/// Why a packet, or a piece of one, was thrown away.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Discard {
    /// The packet was cut short: a new packet started (typically after a device reset) or the
    /// stream ended.
    Interrupted {
        /// Packet bytes received before the cut, length field included.
        received: usize,
    },
    /// A continuation line arrived with no packet in progress, e.g. when the port was opened
    /// in the middle of a packet.
    Orphan,
    /// A line's text is not valid base64.
    BadBase64,
    /// The length field is too small to hold the CRC, or more bytes came than it declares.
    BadLength {
        /// Value of the length field (frame plus CRC).
        declared: usize,
        /// Bytes received after the length field.
        received: usize,
    },
    /// The CRC does not match the frame.
    BadCrc {
        /// CRC the packet carries.
        carried: u16,
        /// CRC computed over the frame received.
        computed: u16,
    },
    /// A line longer than the decoder's limit; any packet in progress is dropped with it.
    LineTooLong {
        /// The limit it exceeded.
        limit: usize,
    },
}

impl Discard {
    /// Whether this points at corrupted data rather than a harmless cut (reset, joining a
    /// stream midway, binary noise).
    pub fn is_corruption(&self) -> bool {
        matches!(self, Discard::BadBase64 | Discard::BadLength { .. } | Discard::BadCrc { .. })
    }
}

impl fmt::Display for Discard {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Discard::Interrupted { received } => {
                write!(f, "packet cut short after {received} bytes")
            }
            Discard::Orphan => f.write_str("continuation line without a packet start"),
            Discard::BadBase64 => f.write_str("packet line is not valid base64"),
            Discard::BadLength { declared, received } => {
                write!(f, "packet length {declared} does not fit the {received} bytes that came with it")
            }
            Discard::BadCrc { carried, computed } => {
                write!(f, "packet CRC mismatch: carried {carried:#06x}, computed {computed:#06x}")
            }
            Discard::LineTooLong { limit } => write!(f, "line longer than {limit} bytes"),
        }
    }
}

/// Splits a console byte stream into frames, log lines and discarded packets, and encodes
/// frames into console lines.
///
/// Decoding never fails on content: garbage becomes [`ConsoleItem::Log`] or
/// [`ConsoleItem::Discarded`] and decoding goes on with the next line. Use
/// [`FrameCodec`] to get frames only.
#[derive(Debug)]
pub struct ConsoleCodec {
    line_limit: usize,
    /// Bytes at the start of the buffer already searched for a newline.
    scanned: usize,
    /// Inside a line that exceeded the limit: drop bytes up to its newline.
    skipping: bool,
    /// Decoded bytes of the packet in progress, length field included.
    packet: Option<Vec<u8>>,
    /// One line can give two items (text before a marker, then the packet's fate).
    ready: VecDeque<ConsoleItem>,
}

impl Default for ConsoleCodec {
    fn default() -> Self {
        Self::new()
    }
}

impl ConsoleCodec {
    /// A codec with the [`DEFAULT_LINE_LIMIT`].
    pub fn new() -> Self {
        ConsoleCodec {
            line_limit: DEFAULT_LINE_LIMIT,
            scanned: 0,
            skipping: false,
            packet: None,
            ready: VecDeque::new(),
        }
    }

    /// Sets the longest line (without its `\n`) the decoder buffers; longer lines are skipped.
    pub fn with_line_limit(mut self, limit: usize) -> Self {
        self.line_limit = limit.max(1);
        self
    }

    fn line(&mut self, line: &[u8]) {
        let line = trim_end(line);
        let Some(at) = line.windows(2).position(|w| w == PACKET_START || w == PACKET_CONTINUATION) else {
            if !line.trim_ascii().is_empty() {
                self.ready.push_back(log_item(line));
            }
            return;
        };
        // Base64 never contains the marker bytes, so a marker inside a line means text was
        // printed without a newline before the packet (MCUboot ends its lines "\n\r", a shell
        // prompt may precede it).
        let before = trim_end(&line[..at]);
        if !before.trim_ascii().is_empty() {
            self.ready.push_back(log_item(before));
        }
        let start = line[at..at + 2] == PACKET_START;
        self.fragment(start, &line[at + 2..]);
    }

    fn fragment(&mut self, start: bool, text: &[u8]) {
        if start {
            if let Some(old) = self.packet.replace(Vec::new()) {
                self.discard(Discard::Interrupted { received: old.len() });
            }
        }
        let Some(packet) = self.packet.as_mut() else {
            self.discard(Discard::Orphan);
            return;
        };
        // Each line's text is decoded on its own, as Zephyr's receiver does.
        if BASE64.decode_vec(text, packet).is_err() {
            self.packet = None;
            self.discard(Discard::BadBase64);
            return;
        }
        if packet.len() < 2 {
            return;
        }
        let declared = u16::from_be_bytes([packet[0], packet[1]]) as usize;
        let received = packet.len() - 2;
        if declared >= 2 && received < declared {
            return;
        }
        let packet = self.packet.take().expect("checked above");
        if declared < 2 || received > declared {
            self.discard(Discard::BadLength { declared, received });
            return;
        }
        let (frame, crc) = packet[2..].split_at(declared - 2);
        let carried = u16::from_be_bytes([crc[0], crc[1]]);
        let computed = CRC16.checksum(frame);
        if carried == computed {
            self.ready.push_back(ConsoleItem::Frame(frame.to_vec()));
        } else {
            self.discard(Discard::BadCrc { carried, computed });
        }
    }

    fn discard(&mut self, why: Discard) {
        self.ready.push_back(ConsoleItem::Discarded(why));
    }
}

fn trim_end(line: &[u8]) -> &[u8] {
    let end = line.iter().rposition(|b| !b.is_ascii_whitespace()).map_or(0, |i| i + 1);
    &line[..end]
}

fn log_item(line: &[u8]) -> ConsoleItem {
    ConsoleItem::Log(String::from_utf8_lossy(line).into_owned())
}

impl Decoder for ConsoleCodec {
    type Item = ConsoleItem;
    type Error = io::Error;

    fn decode(&mut self, src: &mut BytesMut) -> io::Result<Option<ConsoleItem>> {
        loop {
            if let Some(item) = self.ready.pop_front() {
                return Ok(Some(item));
            }
            match src[self.scanned..].iter().position(|&b| b == b'\n') {
                Some(i) => {
                    let end = self.scanned + i;
                    let line = src.split_to(end + 1);
                    self.scanned = 0;
                    if std::mem::take(&mut self.skipping) {
                        continue;
                    }
                    if end > self.line_limit {
                        self.packet = None;
                        self.discard(Discard::LineTooLong { limit: self.line_limit });
                        continue;
                    }
                    self.line(&line[..end]);
                }
                None if src.len() > self.line_limit => {
                    // Nothing this long can be a packet line: stop buffering it.
                    if !self.skipping {
                        self.skipping = true;
                        self.packet = None;
                        self.discard(Discard::LineTooLong { limit: self.line_limit });
                    }
                    src.clear();
                    self.scanned = 0;
                    return Ok(self.ready.pop_front());
                }
                None => {
                    self.scanned = src.len();
                    return Ok(None);
                }
            }
        }
    }

    fn decode_eof(&mut self, src: &mut BytesMut) -> io::Result<Option<ConsoleItem>> {
        if let Some(item) = self.decode(src)? {
            return Ok(Some(item));
        }
        // The last line may lack its newline.
        if !src.is_empty() {
            let line = src.split();
            self.scanned = 0;
            if !std::mem::take(&mut self.skipping) {
                self.line(&line);
            }
        }
        if let Some(old) = self.packet.take() {
            self.discard(Discard::Interrupted { received: old.len() });
        }
        Ok(self.ready.pop_front())
    }
}

/// Splits a whole captured console stream (a serial log saved to a file) into its items, as
/// the codec does on a live port: frames, log lines and discarded packets, in order.
pub fn decode_all(bytes: &[u8]) -> Vec<ConsoleItem> {
    let mut codec = ConsoleCodec::new();
    let mut buf = BytesMut::from(bytes);
    let mut items = Vec::new();
    // The codec reports content problems as items, never as errors.
    while let Ok(Some(item)) = codec.decode(&mut buf) {
        items.push(item);
    }
    while let Ok(Some(item)) = codec.decode_eof(&mut buf) {
        items.push(item);
    }
    items
}

fn encode_to_buf(frame: &[u8], dst: &mut BytesMut) -> io::Result<()> {
    let mut out = Vec::with_capacity(encoded_len(frame.len()));
    encode_into(frame, &mut out).map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e.to_string()))?;
    dst.extend_from_slice(&out);
    Ok(())
}

impl Encoder<&[u8]> for ConsoleCodec {
    type Error = io::Error;

    fn encode(&mut self, frame: &[u8], dst: &mut BytesMut) -> io::Result<()> {
        encode_to_buf(frame, dst)
    }
}

impl Encoder<Vec<u8>> for ConsoleCodec {
    type Error = io::Error;

    fn encode(&mut self, frame: Vec<u8>, dst: &mut BytesMut) -> io::Result<()> {
        encode_to_buf(&frame, dst)
    }
}

/// [`ConsoleCodec`] reduced to frames: console lines go to `tracing` at debug level under the
/// target `smpflash::console`, discarded packets under `smpflash::serial` (warn when the data
/// was corrupt, debug otherwise).
#[derive(Debug, Default)]
pub struct FrameCodec {
    inner: ConsoleCodec,
}

impl FrameCodec {
    /// A codec with the [`DEFAULT_LINE_LIMIT`].
    pub fn new() -> Self {
        Self::default()
    }

    /// Wraps a configured [`ConsoleCodec`].
    pub fn from_console(inner: ConsoleCodec) -> Self {
        FrameCodec { inner }
    }

    fn frames_only(item: Option<ConsoleItem>) -> Option<Option<Vec<u8>>> {
        match item? {
            ConsoleItem::Frame(frame) => Some(Some(frame)),
            ConsoleItem::Log(line) => {
                tracing::debug!(target: "smpflash::console", "{line}");
                Some(None)
            }
            ConsoleItem::Discarded(why) if why.is_corruption() => {
                tracing::warn!(target: "smpflash::serial", "dropped a packet: {why}");
                Some(None)
            }
            ConsoleItem::Discarded(why) => {
                tracing::debug!(target: "smpflash::serial", "dropped a packet: {why}");
                Some(None)
            }
        }
    }
}

impl Decoder for FrameCodec {
    type Item = Vec<u8>;
    type Error = io::Error;

    fn decode(&mut self, src: &mut BytesMut) -> io::Result<Option<Vec<u8>>> {
        loop {
            match Self::frames_only(self.inner.decode(src)?) {
                None => return Ok(None),
                Some(Some(frame)) => return Ok(Some(frame)),
                Some(None) => {}
            }
        }
    }

    fn decode_eof(&mut self, src: &mut BytesMut) -> io::Result<Option<Vec<u8>>> {
        loop {
            match Self::frames_only(self.inner.decode_eof(src)?) {
                None => return Ok(None),
                Some(Some(frame)) => return Ok(Some(frame)),
                Some(None) => {}
            }
        }
    }
}

impl Encoder<&[u8]> for FrameCodec {
    type Error = io::Error;

    fn encode(&mut self, frame: &[u8], dst: &mut BytesMut) -> io::Result<()> {
        encode_to_buf(frame, dst)
    }
}

impl Encoder<Vec<u8>> for FrameCodec {
    type Error = io::Error;

    fn encode(&mut self, frame: Vec<u8>, dst: &mut BytesMut) -> io::Result<()> {
        encode_to_buf(&frame, dst)
    }
}

#[cfg(test)]
mod decode_all_tests {
    use super::*;

    #[test]
    fn a_capture_with_log_lines_and_a_broken_packet() {
        let reset = [0x02, 0, 0, 2, 0, 0, 0, 5, 0xBF, 0xFF];
        let mut capture = b"*** Booting Zephyr ***\r\n".to_vec();
        capture.extend(encode_frame(&reset).unwrap());
        capture.extend_from_slice(b"\x06\x09!!!not base64\n");
        // the last packet without its newline
        let mut last = encode_frame(&[0x03, 0, 0, 1, 0, 0, 0, 5, 0xA0]).unwrap();
        last.pop();
        capture.extend(last);
        assert_eq!(
            decode_all(&capture),
            [
                ConsoleItem::Log("*** Booting Zephyr ***".into()),
                ConsoleItem::Frame(reset.to_vec()),
                ConsoleItem::Discarded(Discard::BadBase64),
                ConsoleItem::Frame(vec![0x03, 0, 0, 1, 0, 0, 0, 5, 0xA0]),
            ]
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The reset request `02 00 00 02 00 00 00 05 bf ff` (SMP v1 write, group 0, id 5, body
    /// `{}`) as it goes on the wire, worked out by hand:
    ///
    /// - length: 10 frame bytes + 2 CRC bytes = 12 = `00 0c`;
    /// - CRC16-XMODEM (poly 0x1021, init 0, unreflected) of the 10 bytes = `0x455a`;
    /// - packet `00 0c 02 00 00 02 00 00 00 05 bf ff 45 5a` (14 bytes), base64 in groups of
    ///   three: `00 0c 02`→`AAwC`, `00 00 02`→`AAAC`, `00 00 00`→`AAAA`, `05 bf ff`→`Bb//`,
    ///   `45 5a`→`RVo=`.
    const RESET: [u8; 10] = [0x02, 0x00, 0x00, 0x02, 0x00, 0x00, 0x00, 0x05, 0xbf, 0xff];
    const RESET_WIRE: &[u8] = b"\x06\x09AAwCAAACAAAABb//RVo=\n";

    fn decode_all(codec: &mut ConsoleCodec, bytes: &[u8]) -> Vec<ConsoleItem> {
        let mut buf = BytesMut::from(bytes);
        let mut items = Vec::new();
        while let Some(item) = codec.decode(&mut buf).unwrap() {
            items.push(item);
        }
        while let Some(item) = codec.decode_eof(&mut buf).unwrap() {
            items.push(item);
        }
        items
    }

    fn decode(bytes: &[u8]) -> Vec<ConsoleItem> {
        decode_all(&mut ConsoleCodec::new(), bytes)
    }

    fn frame(bytes: &[u8]) -> ConsoleItem {
        ConsoleItem::Frame(bytes.to_vec())
    }

    #[test]
    fn crc_is_xmodem() {
        // The catalogue check value of CRC-16/XMODEM.
        assert_eq!(CRC16.checksum(b"123456789"), 0x31c3);
    }

    #[test]
    fn reset_request_encodes_to_the_hand_computed_line() {
        assert_eq!(encode_frame(&RESET).unwrap(), RESET_WIRE);
        assert_eq!(encoded_len(RESET.len()), RESET_WIRE.len());
        assert_eq!(decode(RESET_WIRE), [frame(&RESET)]);
    }

    #[test]
    fn long_frame_splits_into_lines_zephyr_accepts() {
        let data: Vec<u8> = (0..500u32).map(|i| (i * 7 + 3) as u8).collect();
        let wire = encode_frame(&data).unwrap();
        assert_eq!(wire.len(), encoded_len(data.len()));
        let lines: Vec<&[u8]> = wire.split_inclusive(|&b| b == b'\n').collect();
        // 504 packet bytes at 93 per line.
        assert_eq!(lines.len(), 6);
        for (i, line) in lines.iter().enumerate() {
            assert!(line.len() <= MAX_LINE, "line {i} is {} bytes", line.len());
            assert_eq!(*line.last().unwrap(), b'\n');
            let marker = if i == 0 { PACKET_START } else { PACKET_CONTINUATION };
            assert_eq!(line[..2], marker, "line {i}");
            let text = &line[2..line.len() - 1];
            assert_eq!(text.len() % 4, 0, "line {i} does not decode on its own");
            if i + 1 < lines.len() {
                assert_eq!(line.len(), MAX_LINE);
                assert!(!text.contains(&b'='), "padding before the last line");
            }
        }
        assert_eq!(decode(&wire), [frame(&data)]);
    }

    #[test]
    fn empty_frame_round_trips() {
        let wire = encode_frame(&[]).unwrap();
        assert_eq!(decode(&wire), [frame(&[])]);
    }

    #[test]
    fn oversized_frame_is_refused() {
        assert!(encode_frame(&vec![0; MAX_ENCODABLE_FRAME]).is_ok());
        assert!(matches!(encode_frame(&vec![0; MAX_ENCODABLE_FRAME + 1]), Err(Error::FrameTooLarge { .. })));
        let mut buf = BytesMut::new();
        let err = ConsoleCodec::new().encode(&vec![0u8; MAX_ENCODABLE_FRAME + 1][..], &mut buf).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::InvalidInput);
    }

    #[test]
    fn largest_frame_on_one_line_fits_the_default_limit() {
        // MCUboot-style: a whole packet on one line, ended "\n\r".
        let data = vec![0x5a; MAX_ENCODABLE_FRAME];
        let mut packet = ((data.len() + 2) as u16).to_be_bytes().to_vec();
        packet.extend_from_slice(&data);
        packet.extend_from_slice(&CRC16.checksum(&data).to_be_bytes());
        let mut wire = PACKET_START.to_vec();
        wire.extend_from_slice(BASE64.encode(&packet).as_bytes());
        wire.extend_from_slice(b"\n\r");
        assert_eq!(decode(&wire), [frame(&data)]);
    }

    #[test]
    fn log_lines_and_crlf_are_handled() {
        let mut wire = b"[00:00:01.234,000] <inf> app: hello\r\n\r\n".to_vec();
        wire.extend_from_slice(&RESET_WIRE[..RESET_WIRE.len() - 1]);
        wire.extend_from_slice(b"\r\nuart:~$ ");
        assert_eq!(
            decode(&wire),
            [
                ConsoleItem::Log("[00:00:01.234,000] <inf> app: hello".into()),
                frame(&RESET),
                ConsoleItem::Log("uart:~$".into()),
            ]
        );
    }

    #[test]
    fn text_before_a_marker_is_a_log_line() {
        let mut wire = b"uart:~$ ".to_vec();
        wire.extend_from_slice(RESET_WIRE);
        assert_eq!(decode(&wire), [ConsoleItem::Log("uart:~$".into()), frame(&RESET)]);
    }

    #[test]
    fn crc_mismatch_is_dropped_and_the_next_frame_decodes() {
        let mut bad = encode_frame(b"\x01\x02\x03\x04\x05\x06\x07\x08").unwrap();
        // Flip the last payload character before the padding: still valid base64.
        let at = bad.iter().rposition(|&b| b != b'\n' && b != b'=').unwrap();
        bad[at] = if bad[at] == b'A' { b'B' } else { b'A' };
        let mut wire = bad;
        wire.extend_from_slice(RESET_WIRE);
        let items = decode(&wire);
        assert!(matches!(items[0], ConsoleItem::Discarded(Discard::BadCrc { .. })), "{items:?}");
        assert_eq!(items[1..], [frame(&RESET)]);
    }

    #[test]
    fn frame_cut_by_a_reset_is_dropped_and_the_new_one_decodes() {
        let long = encode_frame(&[0xaa; 300]).unwrap();
        let first_line = long.iter().position(|&b| b == b'\n').unwrap() + 1;
        let mut wire = long[..first_line + 40].to_vec();
        // The device resets mid-line: boot banner, then a fresh packet.
        wire.extend_from_slice(b"*** Booting Zephyr OS build v3.7.0 ***\r\n");
        wire.extend_from_slice(RESET_WIRE);
        let items = decode(&wire);
        assert_eq!(items, [ConsoleItem::Discarded(Discard::BadBase64), frame(&RESET),]);

        // Cut at a line boundary instead: the new start interrupts the old packet.
        let mut wire = long[..first_line].to_vec();
        wire.extend_from_slice(RESET_WIRE);
        assert_eq!(
            decode(&wire),
            [ConsoleItem::Discarded(Discard::Interrupted { received: 93 }), frame(&RESET),]
        );
    }

    #[test]
    fn invalid_base64_drops_the_packet_only() {
        let mut wire = b"\x06\x09AAw*AAAC\n".to_vec();
        wire.extend_from_slice(RESET_WIRE);
        assert_eq!(decode(&wire), [ConsoleItem::Discarded(Discard::BadBase64), frame(&RESET)]);
    }

    #[test]
    fn orphan_continuation_and_bad_lengths_are_reported() {
        // Length 1 cannot even hold the CRC.
        let short = format!("\x06\x09{}\n", BASE64.encode([0u8, 1, 0]));
        // Length 2 (empty frame) followed by more bytes than declared.
        let long = format!("\x06\x09{}\n", BASE64.encode([0u8, 2, 0, 0, 0, 0]));
        let mut wire = b"\x04\x14AAAA\n".to_vec();
        wire.extend_from_slice(short.as_bytes());
        wire.extend_from_slice(long.as_bytes());
        wire.extend_from_slice(RESET_WIRE);
        assert_eq!(
            decode(&wire),
            [
                ConsoleItem::Discarded(Discard::Orphan),
                ConsoleItem::Discarded(Discard::BadLength { declared: 1, received: 1 }),
                ConsoleItem::Discarded(Discard::BadLength { declared: 2, received: 4 }),
                frame(&RESET),
            ]
        );
    }

    #[test]
    fn overlong_lines_are_skipped_without_buffering() {
        let mut codec = ConsoleCodec::new().with_line_limit(64);
        let mut buf = BytesMut::from(&[b'x'; 100][..]);
        assert_eq!(
            codec.decode(&mut buf).unwrap(),
            Some(ConsoleItem::Discarded(Discard::LineTooLong { limit: 64 }))
        );
        assert!(buf.is_empty(), "the overlong line was kept in memory");
        buf.extend_from_slice(&[b'y'; 100]);
        assert_eq!(codec.decode(&mut buf).unwrap(), None);
        assert!(buf.is_empty());
        buf.extend_from_slice(b"tail of the long line\n");
        buf.extend_from_slice(RESET_WIRE);
        assert_eq!(codec.decode(&mut buf).unwrap(), Some(frame(&RESET)));
        assert_eq!(codec.decode(&mut buf).unwrap(), None);

        // A whole overlong line in one read drops the packet in progress too.
        let long = encode_frame(&[1; 200]).unwrap();
        let first_line = long.iter().position(|&b| b == b'\n').unwrap() + 1;
        let mut wire = long[..first_line].to_vec();
        wire.extend_from_slice(&[b'z'; 200]);
        wire.push(b'\n');
        wire.extend_from_slice(&long[first_line..]);
        wire.extend_from_slice(RESET_WIRE);
        let items = decode_all(&mut ConsoleCodec::new().with_line_limit(MAX_LINE), &wire);
        assert_eq!(
            items,
            [
                ConsoleItem::Discarded(Discard::LineTooLong { limit: MAX_LINE }),
                ConsoleItem::Discarded(Discard::Orphan),
                ConsoleItem::Discarded(Discard::Orphan),
                frame(&RESET),
            ]
        );
    }

    #[test]
    fn byte_by_byte_input_decodes() {
        let mut wire = b"boot\r\n".to_vec();
        wire.extend_from_slice(&encode_frame(&[9; 250]).unwrap());
        wire.extend_from_slice(RESET_WIRE);
        let mut codec = ConsoleCodec::new();
        let mut buf = BytesMut::new();
        let mut items = Vec::new();
        for &b in &wire {
            buf.extend_from_slice(&[b]);
            while let Some(item) = codec.decode(&mut buf).unwrap() {
                items.push(item);
            }
        }
        assert_eq!(items, [ConsoleItem::Log("boot".into()), frame(&[9; 250]), frame(&RESET)]);
    }

    #[test]
    fn end_of_stream_flushes_the_last_line_and_reports_a_cut_packet() {
        let long = encode_frame(&[3; 200]).unwrap();
        let first_line = long.iter().position(|&b| b == b'\n').unwrap() + 1;
        let mut wire = b"last words".to_vec();
        wire.push(b'\n');
        wire.extend_from_slice(&long[..first_line]);
        wire.extend_from_slice(b"no newline here");
        assert_eq!(
            decode(&wire),
            [
                ConsoleItem::Log("last words".into()),
                ConsoleItem::Log("no newline here".into()),
                ConsoleItem::Discarded(Discard::Interrupted { received: 93 }),
            ]
        );
    }

    #[test]
    fn frame_codec_yields_frames_only() {
        let mut wire = b"log line\n\x04\x14AAAA\n".to_vec();
        wire.extend_from_slice(RESET_WIRE);
        wire.extend_from_slice(b"\x06\x09!!!!\n");
        wire.extend_from_slice(&encode_frame(b"second").unwrap());
        let mut codec = FrameCodec::new();
        let mut buf = BytesMut::from(&wire[..]);
        assert_eq!(codec.decode(&mut buf).unwrap(), Some(RESET.to_vec()));
        assert_eq!(codec.decode(&mut buf).unwrap(), Some(b"second".to_vec()));
        assert_eq!(codec.decode(&mut buf).unwrap(), None);
        assert_eq!(codec.decode_eof(&mut buf).unwrap(), None);
    }
}
