//! Explaining raw SMP bytes: the header's fields with their names, the CBOR body, the device's
//! `rc` with its meaning, and — for bytes a hand-written client or a broken device produced —
//! what cannot be right about them, in plain words.
//!
//! Everything here is a pure function of the bytes: `smpflash decode` renders its
//! [`FrameReport`]s, and the virtual device can run [`inspect`] on a request it cannot handle to
//! say why. The checks only look; they never fix anything up.
//!
//! ```
//! use smpflash_core::decode::{inspect, Direction, Problem};
//!
//! // {"rc": 3} as an image state answer
//! let reports = inspect(&[0x01, 0, 0, 5, 0, 1, 0, 0, 0xa1, 0x62, b'r', b'c', 0x03], None);
//! let rc = reports[0].outcome.as_ref().unwrap();
//! assert_eq!(rc.name, Some("MGMT_ERR_EINVAL"));
//!
//! // a read request whose body is an image upload
//! let body = [0xa2, 0x63, b'o', b'f', b'f', 0x00, 0x64, b'd', b'a', b't', b'a', 0x41, 0x00];
//! let mut frame = vec![0x00, 0, 0, body.len() as u8, 0, 1, 0, 1];
//! frame.extend_from_slice(&body);
//! let reports = inspect(&frame, Some(Direction::Request));
//! assert!(reports[0].problems.contains(&Problem::WrongOp {
//!     command: "image upload",
//!     op: 0,
//!     expected: 2,
//! }));
//! ```

use std::fmt;
use std::io::Cursor;

use ciborium::Value;
use serde::Serialize;

use crate::frame::HEADER_LEN;
use crate::rc;

/// Who sent the bytes, when the caller knows: it turns "a response op" into a mistake for a
/// request and the other way round.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Direction {
    /// A client's request (what a device receives).
    Request,
    /// A device's answer (what a client receives).
    Response,
}

/// The header's fields as they are, named where the protocol names them. Unlike
/// [`crate::frame::Header`] it holds any 8 bytes, a wrong op or version included.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct HeaderFields {
    /// The 8 bytes.
    #[serde(serialize_with = "hex_bytes")]
    pub raw: [u8; HEADER_LEN],
    /// Bits 4-3 of byte 0: 0 is SMP v1, 1 is SMP v2.
    pub version: u8,
    /// Bits 2-0 of byte 0.
    pub op: u8,
    /// The op's name (`read`, `read-rsp`, `write`, `write-rsp`), if it has one.
    pub op_name: Option<&'static str>,
    /// Byte 1.
    pub flags: u8,
    /// Bytes 2-3, big-endian: the body length the header declares.
    pub len: u16,
    /// Bytes 4-5, big-endian.
    pub group: u16,
    /// The group's name, if it is an MCUmgr group.
    pub group_name: Option<&'static str>,
    /// Byte 6.
    pub seq: u8,
    /// Byte 7: the command id within the group.
    pub id: u8,
    /// The command's name, if the group has a command with this id (and op).
    pub command: Option<&'static str>,
}

impl HeaderFields {
    /// Splits 8 header bytes into their fields.
    pub fn new(raw: [u8; HEADER_LEN]) -> Self {
        let op = raw[0] & 0x07;
        let group = u16::from_be_bytes([raw[4], raw[5]]);
        let id = raw[7];
        HeaderFields {
            raw,
            version: (raw[0] >> 3) & 0x03,
            op,
            op_name: op_name(op),
            flags: raw[1],
            len: u16::from_be_bytes([raw[2], raw[3]]),
            group,
            group_name: group_name(group),
            seq: raw[6],
            id,
            command: command_for(group, id).map(|c| c.name_for(op)),
        }
    }
}

/// Why a body is not a CBOR value at all.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, thiserror::Error)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum BodyProblem {
    /// No bytes after the header.
    #[error("there is no body; even an empty request carries a CBOR map (`a0` or `bf ff`)")]
    Empty,
    /// The body is JSON text.
    #[error("this is JSON ({text}); SMP bodies are CBOR maps")]
    Json {
        /// The JSON, shortened to 80 characters.
        text: String,
    },
    /// Neither CBOR nor JSON.
    #[error("the body is not CBOR ({error})")]
    NotCbor {
        /// What the CBOR decoder said.
        error: String,
    },
}

/// The decoded body: one CBOR value.
#[derive(Debug, Clone, PartialEq)]
pub struct Body(pub Value);

impl Body {
    /// CBOR diagnostic notation, byte strings as hex (long ones shortened with their length):
    /// the same rendering as the `-v` trace.
    pub fn diagnostic(&self) -> String {
        crate::cbor::render(&self.0)
    }

    /// The value of text key `key`, if the body is a map holding it.
    pub fn get(&self, key: &str) -> Option<&Value> {
        match &self.0 {
            Value::Map(entries) => entries.iter().find(|(k, _)| k.as_text() == Some(key)).map(|(_, v)| v),
            _ => None,
        }
    }

    /// The body as JSON: text-keyed maps become objects, byte strings hex strings.
    pub fn to_json(&self) -> serde_json::Value {
        to_json(&self.0)
    }
}

impl Serialize for Body {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.to_json().serialize(s)
    }
}

/// An error code the body carries, with the name the firmware uses and what it means.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RcReport {
    /// The code.
    pub rc: i64,
    /// For an SMP v2 `err`, the group whose rc space the code is in; `None` for a bare `rc`
    /// (an SMP-level `MGMT_ERR_*` code).
    pub group: Option<u16>,
    /// Zephyr's name, e.g. `MGMT_ERR_EINVAL`.
    pub name: Option<&'static str>,
    /// What it means.
    pub meaning: Option<&'static str>,
    /// The device's `rsn` text, if it sent one.
    pub rsn: Option<String>,
}

impl fmt::Display for RcReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.group {
            Some(g) => write!(f, "err {{group {g}, rc {}}}", self.rc)?,
            None => write!(f, "rc {}", self.rc)?,
        }
        if let Some(name) = self.name {
            write!(f, " = {name}")?;
        }
        if let Some(meaning) = self.meaning {
            write!(f, ": {meaning}")?;
        }
        if self.name.is_none() {
            match self.group {
                Some(g) => {
                    write!(f, " (a code of the {} group this decoder has no names for)", group_label(g))?
                }
                None => write!(f, " (not an SMP-level code)")?,
            }
        }
        if let Some(rsn) = &self.rsn {
            write!(f, "; the device says {rsn:?}")?;
        }
        Ok(())
    }
}

/// Something about a frame that cannot be right.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Problem {
    /// Fewer than 8 bytes.
    TooShort {
        /// Bytes there are.
        got: usize,
    },
    /// Fewer than 8 bytes that are a CBOR map: a body printed without its header.
    BodyWithoutHeader {
        /// Bytes there are.
        got: usize,
    },
    /// Bits 7-5 of byte 0 are set.
    ReservedBits {
        /// Byte 0.
        byte0: u8,
    },
    /// A version other than 0 (v1) and 1 (v2).
    UnknownVersion {
        /// The version field.
        version: u8,
    },
    /// An op greater than 3.
    UnknownOp {
        /// The op field.
        op: u8,
    },
    /// A flags byte other than 0.
    FlagsSet {
        /// The flags byte.
        flags: u8,
    },
    /// The length field disagrees with the bytes after the header.
    LengthMismatch {
        /// What the header says.
        declared: u16,
        /// What follows.
        following: usize,
    },
    /// The length field, read little-endian, is the body's length.
    LengthLittleEndian {
        /// The field as sent.
        declared: u16,
        /// Its bytes swapped.
        swapped: u16,
    },
    /// The group field is no MCUmgr group, but read little-endian it is the body's length.
    LengthInGroup {
        /// The group field as sent.
        group: u16,
        /// Its bytes swapped.
        swapped: u16,
    },
    /// A group number no MCUmgr group has (Zephyr: 0-10, 63, user groups from 64).
    UnknownGroup {
        /// The group field.
        group: u16,
    },
    /// A known group without a command of this id.
    UnknownCommand {
        /// The group.
        group: u16,
        /// The command id.
        id: u8,
    },
    /// The command exists, but not with this op (an upload sent as a read).
    WrongOp {
        /// The command's name.
        command: &'static str,
        /// The op sent.
        op: u8,
        /// The request op the command takes (0 read, 2 write).
        expected: u8,
    },
    /// A response op (1 or 3) in a request.
    ResponseOpInRequest {
        /// The op sent.
        op: u8,
    },
    /// A request op (0 or 2) in an answer.
    RequestOpInResponse {
        /// The op sent.
        op: u8,
    },
    /// CBOR, but not a map.
    BodyNotMap {
        /// The CBOR type found.
        found: &'static str,
    },
    /// The CBOR value ends before the body does.
    TrailingBytes {
        /// Bytes the CBOR value takes.
        used: usize,
        /// Bytes left after it.
        extra: usize,
    },
    /// The body has a key of another command (`data` in something other than an upload).
    KeyOfAnotherCommand {
        /// The key.
        key: &'static str,
        /// The command it belongs to.
        belongs_to: &'static str,
        /// That command's group.
        group: u16,
        /// That command's id.
        id: u8,
        /// That command's op.
        op: u8,
    },
    /// A read of a command that also takes writes, carrying a key only its write uses (image
    /// state read with `confirm`): the device answers the read and ignores the key.
    WriteKeyInRead {
        /// The key.
        key: &'static str,
        /// The write the key belongs to.
        write: &'static str,
    },
    /// An image upload at offset 0 without `len`: Zephyr refuses it.
    UploadStartWithoutLen,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Problem::TooShort { got } => {
                write!(f, "only {got} byte{}: an SMP frame starts with an 8-byte header", plural(got))
            }
            Problem::BodyWithoutHeader { got } => write!(
                f,
                "only {got} byte{} and no header: this is an SMP body alone (a frame starts with \
                 the 8-byte header), decoded as such",
                plural(got)
            ),
            Problem::ReservedBits { byte0 } => {
                write!(f, "byte 0 is {byte0:#04x}: its top three bits are reserved and must be 0")
            }
            Problem::UnknownVersion { version } => {
                write!(f, "version {version} is no SMP version (0 is v1, 1 is v2)")
            }
            Problem::UnknownOp { op } => {
                write!(f, "op {op} is no SMP operation (0 read, 1 read response, 2 write, 3 write response)")
            }
            Problem::FlagsSet { flags } => {
                write!(f, "the flags byte is {flags:#04x}; SMP defines none, send 0")
            }
            Problem::LengthMismatch { declared, following } => write!(
                f,
                "the header says {declared} byte{} of body, {following} follow",
                plural(declared as usize)
            ),
            Problem::LengthLittleEndian { declared, swapped } => write!(
                f,
                "the length field holds {declared:#06x}; read little-endian it is {swapped}, the body's \
                 length: the header was written little-endian, SMP headers are big-endian"
            ),
            Problem::LengthInGroup { group, swapped } => write!(
                f,
                "the group field holds {group:#06x}, not a known MCUmgr group; read little-endian it is {swapped}, \
                 the body's length: looks like the body length written into the group field (the \
                 header's order is op, flags, length, group, sequence, command id, all big-endian)"
            ),
            Problem::UnknownGroup { group } => write!(
                f,
                "group {group} ({group:#06x}) is no MCUmgr group (Zephyr's are 0-10 and 63; user \
                 groups start at 64)"
            ),
            Problem::UnknownCommand { group, id } => {
                write!(f, "the {} group has no command {id}", group_label(group))
            }
            Problem::WrongOp { command, op, expected } => write!(
                f,
                "{command} is a {} (op {expected}); this frame is a {} (op {op})",
                op_name(expected).unwrap_or("?"),
                op_name(op).unwrap_or("?")
            ),
            Problem::ResponseOpInRequest { op } => {
                write!(f, "op {op} is a {}: a client sends read (0) or write (2)", op_name(op).unwrap_or("?"))
            }
            Problem::RequestOpInResponse { op } => write!(
                f,
                "op {op} is a {}: a device answers with read-rsp (1) or write-rsp (3)",
                op_name(op).unwrap_or("?")
            ),
            Problem::BodyNotMap { found } => {
                write!(f, "the body is a CBOR {found}; SMP bodies are CBOR maps")
            }
            Problem::TrailingBytes { used, extra } => {
                write!(f, "the CBOR map ends after {used} byte{}, {extra} more follow", plural(used))
            }
            Problem::KeyOfAnotherCommand { key, belongs_to, group, id, op } => write!(
                f,
                "the body's {key:?} key belongs to {belongs_to} (group {group}, id {id}, {})",
                op_name(op).unwrap_or("?")
            ),
            Problem::WriteKeyInRead { key, write } => write!(
                f,
                "the body's {key:?} key belongs to {write}, a write (op 2); sent as a read, the device \
                 answers the read and ignores it"
            ),
            Problem::UploadStartWithoutLen => write!(
                f,
                "an image upload at offset 0 must carry \"len\" (the image's size); Zephyr answers \
                 rc 3 without it"
            ),
        }
    }
}

fn plural(n: usize) -> &'static str {
    if n == 1 {
        ""
    } else {
        "s"
    }
}

/// One frame of the input, explained.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FrameReport {
    /// Where the frame starts in the input.
    pub offset: usize,
    /// How many bytes of the input it takes.
    pub bytes: usize,
    /// The header, when there are at least 8 bytes.
    pub header: Option<HeaderFields>,
    /// The body, or why it is not CBOR.
    #[serde(serialize_with = "body_result")]
    pub body: Result<Body, BodyProblem>,
    /// An `rc` or v2 `err` the body carries.
    pub outcome: Option<RcReport>,
    /// What cannot be right, header first.
    pub problems: Vec<Problem>,
}

impl FrameReport {
    /// Whether nothing is wrong with the frame.
    pub fn is_clean(&self) -> bool {
        self.problems.is_empty() && self.body.is_ok()
    }

    /// Everything wrong with the frame, a sentence each: the problems, then why the body is no
    /// CBOR (for a log line or a warning to whoever sent it).
    pub fn findings(&self) -> Vec<String> {
        let mut out: Vec<String> = self.problems.iter().map(ToString::to_string).collect();
        if let Err(problem) = &self.body {
            out.push(problem.to_string());
        }
        out
    }
}

/// Explains every frame in `bytes`. Frames sent back to back (a capture that joined two
/// notifications) are split where a header's length ends and another plausible header begins;
/// otherwise everything after the first header is its body, and a wrong length is a
/// [`Problem::LengthMismatch`]. Never fails: bytes that make no sense are reported as such.
pub fn inspect(bytes: &[u8], direction: Option<Direction>) -> Vec<FrameReport> {
    let mut reports = Vec::new();
    let mut pos = 0;
    loop {
        let rest = &bytes[pos..];
        let end = frame_end(rest);
        reports.push(inspect_one(&rest[..end], pos, direction));
        pos += end;
        if pos >= bytes.len() {
            break reports;
        }
    }
}

/// Where the frame at the start of `rest` ends: at its declared length only when everything
/// after it is a chain of well-formed frames (so the zeros of an image chunk never pass for a
/// second header).
fn frame_end(rest: &[u8]) -> usize {
    if rest.len() < HEADER_LEN {
        return rest.len();
    }
    let end = HEADER_LEN + u16::from_be_bytes([rest[2], rest[3]]) as usize;
    if end < rest.len() && well_formed_chain(&rest[end..]) {
        end
    } else {
        rest.len()
    }
}

/// Whether `bytes` are one or more frames a real device or client would send, back to back
/// and ending exactly at the end.
fn well_formed_chain(mut bytes: &[u8]) -> bool {
    while !bytes.is_empty() {
        let Some(raw) = header_bytes(bytes) else { return false };
        let h = HeaderFields::new(raw);
        let end = HEADER_LEN + h.len as usize;
        let plausible = raw[0] & 0xE0 == 0
            && h.version <= 1
            && h.op <= 3
            && h.flags == 0
            && (h.group_name.is_some() || h.group >= rc::group::PER_USER)
            && end <= bytes.len();
        if !plausible {
            return false;
        }
        let mut problems = Vec::new();
        if decode_body(&bytes[HEADER_LEN..end], &mut problems).is_err() || !problems.is_empty() {
            return false;
        }
        bytes = &bytes[end..];
    }
    true
}

fn header_bytes(bytes: &[u8]) -> Option<[u8; HEADER_LEN]> {
    bytes.get(..HEADER_LEN)?.try_into().ok()
}

/// Explains one frame: `bytes` are its header and everything taken as its body.
pub fn inspect_one(bytes: &[u8], offset: usize, direction: Option<Direction>) -> FrameReport {
    let Some(raw) = header_bytes(bytes) else {
        // Often what a script printed is the answer's body alone (`a1 62 72 63 03`): when the
        // bytes are a CBOR map, say what it holds, its rc included.
        let body = match ciborium::from_reader::<Value, _>(bytes) {
            Ok(v @ Value::Map(_)) => Ok(Body(v)),
            _ => Err(BodyProblem::Empty),
        };
        let outcome = body.as_ref().ok().and_then(outcome_of);
        let problem = match body {
            Ok(_) => Problem::BodyWithoutHeader { got: bytes.len() },
            Err(_) => Problem::TooShort { got: bytes.len() },
        };
        return FrameReport {
            offset,
            bytes: bytes.len(),
            header: None,
            body,
            outcome,
            problems: vec![problem],
        };
    };
    let h = HeaderFields::new(raw);
    let body_bytes = &bytes[HEADER_LEN..];
    let mut problems = header_problems(&h, body_bytes.len(), direction);
    let body = decode_body(body_bytes, &mut problems);
    if let Ok(b) = &body {
        problems.extend(body_problems(&h, b));
    }
    let outcome = body.as_ref().ok().and_then(outcome_of);
    FrameReport { offset, bytes: bytes.len(), header: Some(h), body, outcome, problems }
}

fn header_problems(h: &HeaderFields, following: usize, direction: Option<Direction>) -> Vec<Problem> {
    let mut p = Vec::new();
    if h.raw[0] & 0xE0 != 0 {
        p.push(Problem::ReservedBits { byte0: h.raw[0] });
    }
    if h.version > 1 {
        p.push(Problem::UnknownVersion { version: h.version });
    }
    if h.op > 3 {
        p.push(Problem::UnknownOp { op: h.op });
    }
    if h.flags != 0 {
        p.push(Problem::FlagsSet { flags: h.flags });
    }
    if h.len as usize != following {
        p.push(Problem::LengthMismatch { declared: h.len, following });
        if h.len.swap_bytes() as usize == following {
            p.push(Problem::LengthLittleEndian { declared: h.len, swapped: h.len.swap_bytes() });
        }
    }
    let known_group = h.group_name.is_some() || h.group >= rc::group::PER_USER;
    // A user group is legal, but with a wrong length field, one whose swapped bytes are exactly
    // the body's length is far likelier the misplaced length than a coincidence.
    let length_wrong = h.len as usize != following;
    if h.group_name.is_none() && length_wrong && h.group.swap_bytes() as usize == following {
        p.push(Problem::LengthInGroup { group: h.group, swapped: h.group.swap_bytes() });
    } else if !known_group {
        p.push(Problem::UnknownGroup { group: h.group });
    } else if h.group_name.is_some() {
        match command_for(h.group, h.id) {
            None => p.push(Problem::UnknownCommand { group: h.group, id: h.id }),
            Some(c) => {
                let request_op = h.op & !1;
                if h.op <= 3 && !c.takes(request_op) {
                    p.push(Problem::WrongOp { command: c.base, op: h.op, expected: c.request_op() });
                }
            }
        }
    }
    match direction {
        Some(Direction::Request) if h.op == 1 || h.op == 3 => {
            p.push(Problem::ResponseOpInRequest { op: h.op })
        }
        Some(Direction::Response) if h.op == 0 || h.op == 2 => {
            p.push(Problem::RequestOpInResponse { op: h.op })
        }
        _ => {}
    }
    p
}

fn decode_body(bytes: &[u8], problems: &mut Vec<Problem>) -> Result<Body, BodyProblem> {
    if bytes.is_empty() {
        return Err(BodyProblem::Empty);
    }
    let mut cursor = Cursor::new(bytes);
    let cbor = ciborium::from_reader::<Value, _>(&mut cursor);
    let used = cursor.position() as usize;
    match cbor {
        Ok(v @ Value::Map(_)) if used == bytes.len() => Ok(Body(v)),
        // JSON text is rarely CBOR, but `{` (0x7B) is a CBOR text-string head: prefer the
        // reading that takes every byte.
        _ if looks_like_json(bytes) => {
            let text = String::from_utf8_lossy(bytes);
            let mut short: String = text.chars().take(80).collect();
            if text.chars().count() > 80 {
                short.push('…');
            }
            Err(BodyProblem::Json { text: short })
        }
        Ok(v) => {
            if !matches!(v, Value::Map(_)) {
                problems.push(Problem::BodyNotMap { found: cbor_type(&v) });
            }
            if used < bytes.len() {
                problems.push(Problem::TrailingBytes { used, extra: bytes.len() - used });
            }
            Ok(Body(v))
        }
        Err(e) => Err(BodyProblem::NotCbor { error: cbor_error(&e, bytes.len()) }),
    }
}

/// What the CBOR decoder's error means, in words (its `Debug`/`Display` is for programmers).
fn cbor_error(e: &ciborium::de::Error<std::io::Error>, len: usize) -> String {
    use ciborium::de::Error as E;
    match e {
        E::Io(_) => format!("its {len} byte(s) end before the CBOR value they start is complete"),
        E::Syntax(at) => format!("invalid CBOR at byte {at}"),
        E::Semantic(at, what) => match at {
            Some(at) => format!("{what} at byte {at}"),
            None => what.clone(),
        },
        E::RecursionLimitExceeded => "CBOR nested too deeply".into(),
    }
}

fn looks_like_json(bytes: &[u8]) -> bool {
    let trimmed = bytes.trim_ascii_start();
    matches!(trimmed.first(), Some(b'{' | b'[')) && serde_json::from_slice::<serde_json::Value>(bytes).is_ok()
}

fn cbor_type(v: &Value) -> &'static str {
    match v {
        Value::Integer(_) => "integer",
        Value::Bytes(_) => "byte string",
        Value::Float(_) => "float",
        Value::Text(_) => "text string",
        Value::Bool(_) => "boolean",
        Value::Null => "null",
        Value::Tag(..) => "tagged value",
        Value::Array(_) => "array",
        Value::Map(_) => "map",
        _ => "value",
    }
}

/// Keys that belong to one request only, so their presence elsewhere tells what the sender
/// meant to send.
const TELLING_KEYS: &[(&str, u16, u8, u8)] = &[
    ("data", rc::group::IMAGE, 1, 2),
    ("off", rc::group::IMAGE, 1, 2),
    ("sha", rc::group::IMAGE, 1, 2),
    ("confirm", rc::group::IMAGE, 0, 2),
    ("hash", rc::group::IMAGE, 0, 2),
    ("d", rc::group::OS, 0, 2),
];

fn body_problems(h: &HeaderFields, body: &Body) -> Vec<Problem> {
    let mut p = Vec::new();
    // Answers carry `off` (upload) and `hash` (state) too: only requests are checked.
    let request = h.op == 0 || h.op == 2;
    if !request {
        return p;
    }
    for &(key, group, id, op) in TELLING_KEYS {
        if body.get(key).is_none() {
            continue;
        }
        let command = command_for(group, id);
        let belongs_to = command.map_or("?", |c| c.name_for(op));
        if h.group == group && h.id == id {
            // The right command with an op it does not take is a `WrongOp` already; one that
            // takes both (image state) silently does the read.
            if h.op != op && command.is_some_and(|c| c.takes(h.op)) {
                p.push(Problem::WriteKeyInRead { key, write: belongs_to });
                break;
            }
            continue;
        }
        p.push(Problem::KeyOfAnotherCommand { key, belongs_to, group, id, op });
        // One key names the command; more of the same command add nothing.
        break;
    }
    let is_upload = h.group == rc::group::IMAGE && h.id == 1;
    let at_start = matches!(body.get("off"), Some(Value::Integer(i)) if i128::from(*i) == 0);
    if is_upload && at_start && body.get("len").is_none() {
        p.push(Problem::UploadStartWithoutLen);
    }
    p
}

fn outcome_of(body: &Body) -> Option<RcReport> {
    let int = |v: &Value| match v {
        Value::Integer(i) => i64::try_from(i128::from(*i)).ok(),
        _ => None,
    };
    let rsn = match body.get("rsn") {
        Some(Value::Text(t)) => Some(t.clone()),
        _ => None,
    };
    if let Some(Value::Map(err)) = body.get("err") {
        let field = |k: &str| err.iter().find(|(key, _)| key.as_text() == Some(k)).and_then(|(_, v)| int(v));
        let rc = field("rc")?;
        let group = field("group").and_then(|g| u16::try_from(g).ok());
        return Some(RcReport {
            rc,
            group,
            name: group.and_then(|g| rc::group_err_name(g, rc)),
            meaning: group.and_then(|g| rc::group_err_description(g, rc)),
            rsn,
        });
    }
    let rc = body.get("rc").and_then(int)?;
    Some(RcReport {
        rc,
        group: None,
        name: rc::mgmt_err_name(rc),
        meaning: rc::mgmt_err_description(rc),
        rsn,
    })
}

/// The name of an op number.
pub fn op_name(op: u8) -> Option<&'static str> {
    ["read", "read-rsp", "write", "write-rsp"].get(op as usize).copied()
}

/// The name of an MCUmgr group number (user groups, from 64, have none).
pub fn group_name(group: u16) -> Option<&'static str> {
    use rc::group::*;
    Some(match group {
        OS => "os",
        IMAGE => "image",
        STAT => "stat",
        SETTINGS => "settings",
        LOG => "log",
        CRASH => "crash",
        SPLIT => "split",
        RUN => "run",
        FS => "fs",
        SHELL => "shell",
        ENUM => "enum",
        ZEPHYR_BASIC => "zephyr-basic",
        _ => return None,
    })
}

fn group_label(group: u16) -> String {
    group_name(group).map_or_else(|| format!("{group}"), str::to_string)
}

/// A command of a group: its name and which request ops it takes.
#[derive(Debug, Clone, Copy)]
struct CommandInfo {
    group: u16,
    id: u8,
    /// The command's name.
    base: &'static str,
    /// Its name as a read, if it takes reads.
    read: Option<&'static str>,
    /// Its name as a write, if it takes writes.
    write: Option<&'static str>,
}

impl CommandInfo {
    fn takes(&self, request_op: u8) -> bool {
        match request_op {
            0 => self.read.is_some(),
            _ => self.write.is_some(),
        }
    }

    fn request_op(&self) -> u8 {
        if self.write.is_some() {
            2
        } else {
            0
        }
    }

    fn name_for(&self, op: u8) -> &'static str {
        match op & !1 {
            0 => self.read.unwrap_or(self.base),
            _ => self.write.unwrap_or(self.base),
        }
    }
}

const fn r(group: u16, id: u8, name: &'static str) -> CommandInfo {
    CommandInfo { group, id, base: name, read: Some(name), write: None }
}
const fn w(group: u16, id: u8, name: &'static str) -> CommandInfo {
    CommandInfo { group, id, base: name, read: None, write: Some(name) }
}
const fn rw(group: u16, id: u8, base: &'static str, read: &'static str, write: &'static str) -> CommandInfo {
    CommandInfo { group, id, base, read: Some(read), write: Some(write) }
}

/// Zephyr's command ids (`OS_MGMT_ID_*`, `IMG_MGMT_ID_*`, …) and the handlers each registers
/// (`mh_read`, `mh_write`).
const COMMANDS: &[CommandInfo] = {
    use rc::group::*;
    &[
        w(OS, 0, "echo"),
        w(OS, 1, "console echo control"),
        r(OS, 2, "task statistics"),
        r(OS, 3, "memory pool statistics"),
        rw(OS, 4, "date-time", "date-time get", "date-time set"),
        w(OS, 5, "reset"),
        r(OS, 6, "MCUmgr parameters"),
        r(OS, 7, "OS/application info"),
        r(OS, 8, "bootloader info"),
        rw(IMAGE, 0, "image state", "image state read", "image state write (test/confirm)"),
        w(IMAGE, 1, "image upload"),
        w(IMAGE, 2, "image file"),
        r(IMAGE, 3, "image core list"),
        r(IMAGE, 4, "image core load"),
        w(IMAGE, 5, "image erase"),
        r(IMAGE, 6, "slot info"),
        r(STAT, 0, "statistics show"),
        r(STAT, 1, "statistics list"),
        rw(SETTINGS, 0, "settings", "settings read", "settings write"),
        w(SETTINGS, 1, "settings delete"),
        w(SETTINGS, 2, "settings commit"),
        rw(SETTINGS, 3, "settings load/save", "settings load", "settings save"),
        rw(FS, 0, "file", "file download", "file upload"),
        r(FS, 1, "file status"),
        r(FS, 2, "file hash/checksum"),
        r(FS, 3, "supported hash/checksum types"),
        w(FS, 4, "file close"),
        w(SHELL, 0, "shell command"),
        r(ENUM, 0, "group count"),
        r(ENUM, 1, "group list"),
        r(ENUM, 2, "single group"),
        r(ENUM, 3, "group details"),
        w(ZEPHYR_BASIC, 0, "erase storage"),
    ]
};

fn command_for(group: u16, id: u8) -> Option<CommandInfo> {
    COMMANDS.iter().find(|c| c.group == group && c.id == id).copied()
}

fn to_json(v: &Value) -> serde_json::Value {
    use serde_json::Value as J;
    match v {
        Value::Integer(i) => {
            let n = i128::from(*i);
            i64::try_from(n)
                .map(J::from)
                .or_else(|_| u64::try_from(n).map(J::from))
                .unwrap_or_else(|_| J::String(n.to_string()))
        }
        Value::Bytes(b) => J::String(hex::encode(b)),
        Value::Float(x) => serde_json::Number::from_f64(*x).map_or(J::Null, J::Number),
        Value::Text(t) => J::String(t.clone()),
        Value::Bool(b) => J::Bool(*b),
        Value::Null => J::Null,
        Value::Tag(_, inner) => to_json(inner),
        Value::Array(items) => J::Array(items.iter().map(to_json).collect()),
        Value::Map(entries) => J::Object(
            entries
                .iter()
                .map(|(k, v)| {
                    (k.as_text().map_or_else(|| crate::cbor::render(k), str::to_string), to_json(v))
                })
                .collect(),
        ),
        other => J::String(crate::cbor::render(other)),
    }
}

fn hex_bytes<S: serde::Serializer>(b: &[u8; HEADER_LEN], s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&hex::encode(b))
}

fn body_result<S: serde::Serializer>(b: &Result<Body, BodyProblem>, s: S) -> Result<S::Ok, S::Error> {
    use serde::ser::SerializeMap;
    let mut m = s.serialize_map(Some(2))?;
    match b {
        Ok(body) => {
            m.serialize_entry("cbor", body)?;
            m.serialize_entry("diagnostic", &body.diagnostic())?;
        }
        Err(problem) => {
            m.serialize_entry("problem", problem)?;
            m.serialize_entry("message", &problem.to_string())?;
        }
    }
    m.end()
}

/// Why text is not hex bytes.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HexError {
    /// No hex digits at all.
    #[error("no hex bytes in {0:?}")]
    Empty(String),
    /// A character that is neither a hex digit nor a separator.
    #[error("{ch:?} at position {at} is not a hex digit")]
    NotHex {
        /// The character.
        ch: char,
        /// Its position (in characters).
        at: usize,
    },
    /// A group of digits of odd length (half a byte).
    #[error("{token:?} has an odd number of hex digits")]
    OddDigits {
        /// The group.
        token: String,
    },
}

/// Reads hex bytes written any common way: `a1 62`, `a1:62`, `a162`, `0xa1, 0x62`, Python's
/// `['0xa1', '0x62']` or `0x1` (one digit after `0x` is one byte). Separators are whitespace
/// and `:,;-_[]'"`.
pub fn parse_hex(text: &str) -> Result<Vec<u8>, HexError> {
    let mut out = Vec::new();
    let is_sep = |c: char| c.is_whitespace() || ":,;-_[]'\"".contains(c);
    let mut chars = text.char_indices().peekable();
    let mut at = 0;
    while let Some(&(start, c)) = chars.peek() {
        if is_sep(c) {
            chars.next();
            at += 1;
            continue;
        }
        let mut end = start;
        let mut count = 0;
        while let Some(&(i, c)) = chars.peek() {
            if is_sep(c) {
                break;
            }
            end = i + c.len_utf8();
            count += 1;
            chars.next();
        }
        let token = &text[start..end];
        let (prefixed, digits) = match token.strip_prefix("0x").or_else(|| token.strip_prefix("0X")) {
            Some(rest) if !rest.is_empty() => (true, rest),
            _ => (false, token),
        };
        if let Some((i, ch)) = digits.chars().enumerate().find(|(_, ch)| !ch.is_ascii_hexdigit()) {
            return Err(HexError::NotHex { ch, at: at + i + if prefixed { 2 } else { 0 } });
        }
        // `0x1` (Python's `hex(1)`) is one byte; otherwise digits come in pairs.
        let padded = if prefixed && digits.len() == 1 { format!("0{digits}") } else { digits.to_string() };
        match hex::decode(&padded) {
            Ok(bytes) => out.extend(bytes),
            Err(_) => return Err(HexError::OddDigits { token: token.to_string() }),
        }
        at += count;
    }
    if out.is_empty() {
        return Err(HexError::Empty(text.to_string()));
    }
    Ok(out)
}

/// One line of a capture log, reduced to its hex: blank lines and `#` comments are `None`; a
/// leading label ending in `": "` (colon and space, as in `12:00:01.5 rx: a1 62`) is dropped.
pub fn log_line(line: &str) -> Option<&str> {
    let line = line.trim();
    if line.is_empty() || line.starts_with('#') {
        return None;
    }
    let hex = line.rfind(": ").map_or(line, |i| &line[i + 2..]).trim();
    (!hex.is_empty()).then_some(hex)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(h: [u8; 8], body: &[u8]) -> Vec<u8> {
        let mut v = h.to_vec();
        v.extend_from_slice(body);
        v
    }

    fn cbor(v: &Value) -> Vec<u8> {
        let mut out = Vec::new();
        ciborium::into_writer(v, &mut out).unwrap();
        out
    }

    fn map(entries: &[(&str, Value)]) -> Value {
        Value::Map(entries.iter().map(|(k, v)| (Value::Text(k.to_string()), v.clone())).collect())
    }

    #[test]
    fn a_clean_reset_request() {
        let r = inspect(&[0x02, 0, 0, 2, 0, 0, 0, 5, 0xBF, 0xFF], Some(Direction::Request));
        assert_eq!(r.len(), 1);
        let h = r[0].header.as_ref().unwrap();
        assert_eq!(
            (h.version, h.op_name, h.group_name, h.command),
            (0, Some("write"), Some("os"), Some("reset"))
        );
        assert!(r[0].is_clean(), "{:?}", r[0].problems);
        assert_eq!(r[0].body.as_ref().unwrap().diagnostic(), "{}");
    }

    #[test]
    fn rc_and_err_are_named() {
        let r = inspect(&[0x01, 0, 0, 5, 0, 1, 0, 0, 0xa1, 0x62, b'r', b'c', 0x03], None);
        let rc = r[0].outcome.as_ref().unwrap();
        assert_eq!((rc.rc, rc.group, rc.name), (3, None, Some("MGMT_ERR_EINVAL")));
        assert_eq!(rc.to_string(), "rc 3 = MGMT_ERR_EINVAL: invalid argument in the request");
        let body = cbor(&map(&[("err", map(&[("group", Value::from(1)), ("rc", Value::from(28))]))]));
        let r = inspect(&frame([0x0B, 0, 0, body.len() as u8, 0, 1, 3, 0], &body), None);
        let rc = r[0].outcome.as_ref().unwrap();
        assert_eq!((rc.rc, rc.group, rc.name), (28, Some(1), Some("IMG_MGMT_ERR_IMAGE_ALREADY_PENDING")));
        let r = inspect(&[0x01, 0, 0, 5, 0, 1, 0, 0, 0xa1, 0x62, b'r', b'c', 0x18, 99], None);
        assert_eq!(r[0].outcome.as_ref().unwrap().name, None, "rc 99 has no name");
    }

    #[test]
    fn a_wrong_length_is_said_in_numbers() {
        let body = cbor(&map(&[("d", Value::Text("x".repeat(290)))]));
        let r = inspect(&frame([0x02, 0, 0, 1, 0, 0, 0, 0], &body), None);
        assert_eq!(r.len(), 1);
        assert!(r[0].problems.contains(&Problem::LengthMismatch { declared: 1, following: body.len() }));
        assert_eq!(
            Problem::LengthMismatch { declared: 1, following: 299 }.to_string(),
            "the header says 1 byte of body, 299 follow"
        );
    }

    #[test]
    fn the_body_length_in_the_group_field_is_recognised() {
        let body = cbor(&map(&[("off", Value::from(0)), ("data", Value::Bytes(vec![0; 280]))]));
        let n = body.len() as u16;
        let [lo, hi] = n.to_le_bytes();
        let r = inspect(&frame([0x00, 0, 1, 0, lo, hi, 1, 0], &body), Some(Direction::Request));
        let p = &r[0].problems;
        assert!(
            p.contains(&Problem::LengthInGroup { group: u16::from_be_bytes([lo, hi]), swapped: n }),
            "{p:?}"
        );
        assert!(p.contains(&Problem::LengthMismatch { declared: 256, following: n as usize }));
        assert!(p
            .iter()
            .any(|x| matches!(x, Problem::KeyOfAnotherCommand { belongs_to: "image upload", .. })));
        assert!(p.iter().all(|x| !matches!(x, Problem::UnknownGroup { .. })), "said once, as the length");
    }

    #[test]
    fn a_little_endian_length_is_recognised() {
        let body = cbor(&map(&[("d", Value::Text("x".repeat(300)))]));
        let [lo, hi] = (body.len() as u16).to_le_bytes();
        let r = inspect(&frame([0x02, 0, lo, hi, 0, 0, 0, 0], &body), None);
        assert!(r[0].problems.iter().any(|p| matches!(p, Problem::LengthLittleEndian { .. })));
    }

    #[test]
    fn json_bodies_are_named() {
        let json = br#"{"image": 0, "off": 0}"#;
        let r = inspect(&frame([0x02, 0, 0, json.len() as u8, 0, 1, 0, 1], json), None);
        assert!(matches!(&r[0].body, Err(BodyProblem::Json { text }) if text.starts_with("{\"image\"")));
        assert!(r[0].body.as_ref().unwrap_err().to_string().contains("SMP bodies are CBOR maps"));
        assert_eq!(
            r[0].findings(),
            ["this is JSON ({\"image\": 0, \"off\": 0}); SMP bodies are CBOR maps"],
            "the body's problem is a finding too"
        );
    }

    #[test]
    fn ops_that_do_not_fit_the_command_or_direction() {
        let empty = [0xA0];
        // "confirm" sent as os command 6 (MCUmgr parameters), a write
        let r = inspect(&frame([0x02, 0, 0, 1, 0, 0, 0, 6], &empty), Some(Direction::Request));
        assert_eq!(r[0].problems, [Problem::WrongOp { command: "MCUmgr parameters", op: 2, expected: 0 }]);
        let r = inspect(&frame([0x03, 0, 0, 1, 0, 0, 0, 5], &empty), Some(Direction::Request));
        assert_eq!(r[0].problems, [Problem::ResponseOpInRequest { op: 3 }]);
        let r = inspect(&frame([0x02, 0, 0, 1, 0, 0, 0, 5], &empty), Some(Direction::Response));
        assert_eq!(r[0].problems, [Problem::RequestOpInResponse { op: 2 }]);
        let r = inspect(&frame([0x05, 0x10, 0, 1, 0, 0, 0, 5], &empty), None);
        assert!(r[0].problems.contains(&Problem::UnknownOp { op: 5 }));
        assert!(r[0].problems.contains(&Problem::FlagsSet { flags: 0x10 }));
        let r = inspect(&frame([0x12, 0, 0, 1, 0, 0, 0, 5], &empty), None);
        assert!(r[0].problems.contains(&Problem::UnknownVersion { version: 2 }));
        let r = inspect(&frame([0x02, 0, 0, 1, 0, 1, 0, 9], &empty), None);
        assert_eq!(r[0].problems, [Problem::UnknownCommand { group: 1, id: 9 }]);
        let r = inspect(&frame([0x02, 0, 0, 1, 0, 40, 0, 0], &empty), None);
        assert_eq!(r[0].problems, [Problem::UnknownGroup { group: 40 }]);
        let r = inspect(&frame([0x02, 0, 0, 1, 0, 64, 0, 0], &empty), None);
        assert!(r[0].is_clean(), "user groups are fine");
        // user group 256 with a one-byte body and a right length: no misplaced length
        let r = inspect(&frame([0x02, 0, 0, 1, 1, 0, 0, 0], &empty), None);
        assert!(r[0].is_clean(), "{:?}", r[0].problems);
    }

    #[test]
    fn upload_start_without_len_and_foreign_keys() {
        let body = cbor(&map(&[("off", Value::from(0)), ("data", Value::Bytes(vec![1, 2]))]));
        let r = inspect(&frame([0x02, 0, 0, body.len() as u8, 0, 1, 0, 1], &body), None);
        assert_eq!(r[0].problems, [Problem::UploadStartWithoutLen]);
        let body = cbor(&map(&[("confirm", Value::Bool(true))]));
        let r = inspect(&frame([0x02, 0, 0, body.len() as u8, 0, 0, 0, 0], &body), None);
        assert!(matches!(r[0].problems[..], [Problem::KeyOfAnotherCommand { key: "confirm", .. }]));
        // the same keys in answers are expected
        let body = cbor(&map(&[("off", Value::from(100))]));
        assert!(inspect(&frame([0x03, 0, 0, body.len() as u8, 0, 1, 0, 1], &body), None)[0].is_clean());
    }

    #[test]
    fn a_confirm_sent_as_a_read() {
        let body = cbor(&map(&[("confirm", Value::Bool(true))]));
        let r = inspect(&frame([0x00, 0, 0, body.len() as u8, 0, 1, 0, 0], &body), None);
        assert_eq!(
            r[0].problems,
            [Problem::WriteKeyInRead { key: "confirm", write: "image state write (test/confirm)" }]
        );
        assert!(r[0].problems[0]
            .to_string()
            .ends_with("sent as a read, the device answers the read and ignores it"));
        // as a write it is what it should be
        assert!(inspect(&frame([0x02, 0, 0, body.len() as u8, 0, 1, 0, 0], &body), None)[0].is_clean());
    }

    #[test]
    fn an_answer_body_printed_without_its_header_is_read_as_a_body() {
        // What the hand-written script printed of every answer: `{"rc": 3}`.
        let r = inspect(&[0xA1, 0x62, b'r', b'c', 0x03], None);
        assert_eq!(r[0].problems, [Problem::BodyWithoutHeader { got: 5 }]);
        let rc = r[0].outcome.as_ref().expect("the rc is read");
        assert_eq!((rc.rc, rc.name), (3, Some("MGMT_ERR_EINVAL")));
        // Bytes that are no CBOR map stay "too short".
        let r = inspect(&[0x01, 0x02], None);
        assert_eq!(r[0].problems, [Problem::TooShort { got: 2 }]);
        assert!(r[0].outcome.is_none());
        // A truncated body says so in words, not with the decoder's debug output.
        let r = inspect(&[0x02, 0, 0, 2, 0, 0, 0, 0, 0xA5, 0x01], None);
        let Err(BodyProblem::NotCbor { error }) = &r[0].body else { panic!("{:?}", r[0].body) };
        assert!(error.contains("end before the CBOR value"), "{error}");
    }

    #[test]
    fn bodies_that_are_not_maps_or_too_long() {
        let r = inspect(&[0x02, 0, 0, 1, 0, 0, 0, 0, 0x01], None);
        assert_eq!(r[0].problems, [Problem::BodyNotMap { found: "integer" }]);
        let r = inspect(&[0x02, 0, 0, 0, 0, 0, 0, 0], None);
        assert_eq!(r[0].body, Err(BodyProblem::Empty));
        let r = inspect(&[0x02, 0, 0, 2, 0, 0, 0, 0, 0xA0, 0xFF], None);
        assert_eq!(r[0].problems, [Problem::TrailingBytes { used: 1, extra: 1 }]);
        let r = inspect(&[0x02, 0, 0, 2, 0, 0, 0, 0, 0xFF, 0xFF], None);
        assert!(matches!(r[0].body, Err(BodyProblem::NotCbor { .. })));
        let r = inspect(&[0x02, 0, 0], None);
        assert_eq!(r[0].problems, [Problem::TooShort { got: 3 }]);
    }

    #[test]
    fn joined_frames_are_split() {
        let mut two = vec![0x02, 0, 0, 2, 0, 0, 0, 5, 0xBF, 0xFF];
        two.extend_from_slice(&[0x03, 0, 0, 1, 0, 0, 0, 5, 0xA0]);
        let r = inspect(&two, None);
        assert_eq!(r.len(), 2);
        assert_eq!((r[1].offset, r[1].bytes), (10, 9));
        assert!(r.iter().all(FrameReport::is_clean));
    }

    #[test]
    fn hex_in_many_spellings() {
        for text in ["a1 62", "a1:62", "A162", "0xa1, 0x62", "['0xa1', '0x62']", "a1-62\n"] {
            assert_eq!(parse_hex(text).unwrap(), [0xa1, 0x62], "{text}");
        }
        assert_eq!(parse_hex("0x0 0x1 0xff").unwrap(), [0, 1, 0xff]);
        assert_eq!(parse_hex("a1 6").unwrap_err(), HexError::OddDigits { token: "6".into() });
        assert_eq!(parse_hex("a1 zz").unwrap_err(), HexError::NotHex { ch: 'z', at: 3 });
        assert!(matches!(parse_hex(" : "), Err(HexError::Empty(_))));
        assert_eq!(log_line("12:00:01.5 rx: a1 62"), Some("a1 62"));
        assert_eq!(log_line("a1:62"), Some("a1:62"));
        assert_eq!(log_line("  # comment"), None);
        assert_eq!(log_line(""), None);
    }

    #[test]
    fn json_rendering_of_bodies() {
        let body = Body(map(&[("hash", Value::Bytes(vec![0xab, 0xcd])), ("n", Value::from(-1))]));
        assert_eq!(body.to_json(), serde_json::json!({"hash": "abcd", "n": -1}));
    }
}

#[cfg(test)]
mod props {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn never_panics_and_covers_the_input(bytes in proptest::collection::vec(any::<u8>(), 0..400)) {
            let reports = inspect(&bytes, None);
            let total: usize = reports.iter().map(|r| r.bytes).sum();
            prop_assert_eq!(total, bytes.len());
            for r in &reports {
                for p in &r.problems {
                    let _ = p.to_string();
                }
            }
        }

        #[test]
        fn hex_round_trips(bytes in proptest::collection::vec(any::<u8>(), 1..64)) {
            prop_assert_eq!(parse_hex(&hex::encode(&bytes)).unwrap(), bytes.clone());
            let spaced: Vec<String> = bytes.iter().map(|b| format!("0x{b:02x}")).collect();
            prop_assert_eq!(parse_hex(&spaced.join(", ")).unwrap(), bytes);
        }
    }
}
