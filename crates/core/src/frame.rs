//! The SMP frame: an 8-byte big-endian header followed by a CBOR body.
//!
//! ```text
//! byte 0   bits 7-5 reserved, bits 4-3 version, bits 2-0 op
//! byte 1   flags
//! byte 2-3 body length
//! byte 4-5 group
//! byte 6   sequence number
//! byte 7   command id
//! ```

use crate::error::{Error, Result};

/// Size of the SMP header.
pub const HEADER_LEN: usize = 8;

/// What a frame does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Op {
    /// Read request.
    Read = 0,
    /// Answer to a read.
    ReadResponse = 1,
    /// Write request.
    Write = 2,
    /// Answer to a write.
    WriteResponse = 3,
}

/// What is wrong with an SMP header that cannot be decoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum HeaderProblem {
    /// The op field holds a value that names no op.
    #[error("unknown op {0}")]
    UnknownOp(u8),
    /// The reserved top bits of the first byte are set.
    #[error("reserved bits set in first byte {0:#04x}")]
    ReservedBits(u8),
    /// A protocol version other than 1 (SMP v1) and 2 (SMP v2).
    #[error("unsupported SMP version {0}")]
    UnsupportedVersion(u8),
}

impl Op {
    fn from_bits(bits: u8) -> Result<Self> {
        Ok(match bits {
            0 => Op::Read,
            1 => Op::ReadResponse,
            2 => Op::Write,
            3 => Op::WriteResponse,
            other => return Err(Error::BadHeader(HeaderProblem::UnknownOp(other))),
        })
    }

    /// The op a device answers this request op with.
    pub fn response(self) -> Op {
        match self {
            Op::Read | Op::ReadResponse => Op::ReadResponse,
            Op::Write | Op::WriteResponse => Op::WriteResponse,
        }
    }

    /// Whether this op is an answer.
    pub fn is_response(self) -> bool {
        matches!(self, Op::ReadResponse | Op::WriteResponse)
    }
}

/// SMP protocol version carried in the header.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Version {
    /// The original protocol: errors as a bare `rc`.
    V1 = 0,
    /// SMP version 2: group-scoped errors as `{"err": {"group", "rc"}}`.
    #[default]
    V2 = 1,
}

/// The 8-byte header of an SMP frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
pub struct Header {
    /// Protocol version.
    pub version: Version,
    /// Operation.
    pub op: Op,
    /// Flags byte; Zephyr sends and expects 0.
    pub flags: u8,
    /// Length of the CBOR body in bytes.
    pub len: u16,
    /// Management group.
    pub group: u16,
    /// Sequence number, echoed by the answer.
    pub seq: u8,
    /// Command id within the group.
    pub id: u8,
}

impl Header {
    /// Encodes the header.
    pub fn encode(&self) -> [u8; HEADER_LEN] {
        let g = self.group.to_be_bytes();
        let l = self.len.to_be_bytes();
        [((self.version as u8) << 3) | self.op as u8, self.flags, l[0], l[1], g[0], g[1], self.seq, self.id]
    }

    /// Decodes a header from the first 8 bytes of `bytes`.
    pub fn decode(bytes: &[u8]) -> Result<Self> {
        let b: &[u8; HEADER_LEN] = bytes
            .get(..HEADER_LEN)
            .and_then(|b| b.try_into().ok())
            .ok_or(Error::TruncatedHeader { got: bytes.len() })?;
        if b[0] & 0xE0 != 0 {
            return Err(Error::BadHeader(HeaderProblem::ReservedBits(b[0])));
        }
        let version = match (b[0] >> 3) & 0x03 {
            0 => Version::V1,
            1 => Version::V2,
            v => return Err(Error::BadHeader(HeaderProblem::UnsupportedVersion(v))),
        };
        Ok(Header {
            version,
            op: Op::from_bits(b[0] & 0x07)?,
            flags: b[1],
            len: u16::from_be_bytes([b[2], b[3]]),
            group: u16::from_be_bytes([b[4], b[5]]),
            seq: b[6],
            id: b[7],
        })
    }
}

/// A whole SMP frame: header plus CBOR body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Frame {
    /// The header; its `len` always equals `body.len()`.
    pub header: Header,
    /// The CBOR body.
    pub body: Vec<u8>,
}

impl Frame {
    /// Builds a frame, setting the header's length from the body.
    pub fn new(mut header: Header, body: Vec<u8>) -> Result<Self> {
        header.len = u16::try_from(body.len()).map_err(|_| Error::FrameTooLarge {
            size: body.len() + HEADER_LEN,
            limit: u16::MAX as usize + HEADER_LEN,
        })?;
        Ok(Frame { header, body })
    }

    /// Header and body as one byte vector, ready for a transport.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(HEADER_LEN + self.body.len());
        out.extend_from_slice(&self.header.encode());
        out.extend_from_slice(&self.body);
        out
    }

    /// Decodes exactly one frame; trailing or missing bytes are an error.
    pub fn decode(bytes: &[u8]) -> Result<Self> {
        let header = Header::decode(bytes)?;
        let body = &bytes[HEADER_LEN..];
        if body.len() != header.len as usize {
            return Err(Error::LengthMismatch { declared: header.len as usize, actual: body.len() });
        }
        Ok(Frame { header, body: body.to_vec() })
    }

    /// Total encoded length.
    pub fn len(&self) -> usize {
        HEADER_LEN + self.body.len()
    }

    /// Whether the frame has no body (never true for a valid SMP frame, whose body is a map).
    pub fn is_empty(&self) -> bool {
        self.body.is_empty()
    }
}

/// How many bytes a frame starting with `prefix` will have in total, once the header is there.
///
/// Stream transports (BLE notifications, serial) use this to know when a frame is complete.
pub fn expected_len(prefix: &[u8]) -> Option<usize> {
    (prefix.len() >= HEADER_LEN).then(|| HEADER_LEN + u16::from_be_bytes([prefix[2], prefix[3]]) as usize)
}

/// One line for `-v` traces, on both sides (smpflash and the virtual device): version, op,
/// group and command by name, sequence and length from the header, the CBOR body in diagnostic
/// notation, and an `rc` by name. It is [`crate::decode`]'s reading of the frame (the one
/// `smpflash decode` prints in full), on one line; bytes that do not hold a header are shown as
/// hex.
pub fn describe(bytes: &[u8]) -> String {
    let Ok(raw) = <[u8; HEADER_LEN]>::try_from(bytes.get(..HEADER_LEN).unwrap_or_default()) else {
        return format!("{} bytes, too short for a header: {}", bytes.len(), hex::encode(bytes));
    };
    let h = crate::decode::HeaderFields::new(raw);
    let op = h.op_name.map_or_else(|| format!("op {}", h.op), str::to_string);
    let group = h.group_name.map_or_else(|| format!("group {}", h.group), str::to_string);
    let command = h.command.map_or_else(|| format!("id {}", h.id), str::to_string);
    let body = &bytes[HEADER_LEN..];
    let len = usize::from(h.len);
    let mismatch = if body.len() == len { String::new() } else { format!(" ({} bytes follow)", body.len()) };
    let report = crate::decode::inspect_one(bytes, 0, None);
    let rc = report.outcome.map_or_else(String::new, |rc| format!(" [{rc}]"));
    format!(
        "v{} {op} {group}/{command} seq {} len {len}{mismatch} {}{rc}",
        h.version,
        h.seq,
        crate::cbor::diagnostic(&body[..len.min(body.len())])
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn reset_example_from_the_protocol_facts() {
        let h = Header { version: Version::V1, op: Op::Write, flags: 0, len: 2, group: 0, seq: 0, id: 5 };
        let f = Frame::new(h, vec![0xBF, 0xFF]).unwrap();
        assert_eq!(f.encode(), [0x02, 0x00, 0x00, 0x02, 0x00, 0x00, 0x00, 0x05, 0xBF, 0xFF]);
        let v2 = Frame::new(Header { version: Version::V2, ..h }, vec![0xBF, 0xFF]).unwrap();
        assert_eq!(v2.encode()[0], 0x0A);
    }

    #[test]
    fn decode_rejects_short_and_mismatched_frames() {
        assert!(matches!(Frame::decode(&[0x02, 0, 0]), Err(Error::TruncatedHeader { got: 3 })));
        assert!(matches!(
            Frame::decode(&[0x03, 0, 0, 5, 0, 0, 0, 5, 0xA0]),
            Err(Error::LengthMismatch { declared: 5, actual: 1 })
        ));
        assert!(matches!(
            Frame::decode(&[0x23, 0, 0, 0, 0, 0, 0, 0]),
            Err(Error::BadHeader(HeaderProblem::ReservedBits(0x23)))
        ));
        assert!(matches!(Frame::decode(&[0x13, 0, 0, 0, 0, 0, 0, 0]), Err(Error::BadHeader(_))));
        assert!(matches!(Frame::decode(&[0x04, 0, 0, 0, 0, 0, 0, 0]), Err(Error::BadHeader(_))));
    }

    fn any_header() -> impl Strategy<Value = Header> {
        (
            prop_oneof![Just(Version::V1), Just(Version::V2)],
            prop_oneof![Just(Op::Read), Just(Op::ReadResponse), Just(Op::Write), Just(Op::WriteResponse)],
            any::<u8>(),
            any::<u16>(),
            any::<u16>(),
            any::<u8>(),
            any::<u8>(),
        )
            .prop_map(|(version, op, flags, len, group, seq, id)| Header {
                version,
                op,
                flags,
                len,
                group,
                seq,
                id,
            })
    }

    proptest! {
        #[test]
        fn header_round_trips(h in any_header()) {
            prop_assert_eq!(Header::decode(&h.encode()).unwrap(), h);
        }

        #[test]
        fn frame_round_trips(h in any_header(), body in proptest::collection::vec(any::<u8>(), 0..600)) {
            let f = Frame::new(h, body).unwrap();
            prop_assert_eq!(Frame::decode(&f.encode()).unwrap(), f);
        }

        #[test]
        fn decoder_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..64)) {
            let _ = Frame::decode(&bytes);
            let _ = expected_len(&bytes);
        }
    }
}
