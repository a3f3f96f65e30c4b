//! The crate's one error type, and the device's own error names.

use std::fmt;

use crate::rc;

/// Everything that can go wrong in `smpflash-core`, by concern: the device's answer, the
/// frame, the link, the image file, the upload, the DFU verdict.
///
/// Deliberately not `#[non_exhaustive]`: a front end maps every variant to an exit code and a
/// message, and a new variant should fail to compile there until it has one.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The device answered with an error code.
    #[error("{0}")]
    Device(#[from] DeviceError),

    /// A frame too short to hold the 8-byte SMP header.
    #[error("truncated SMP frame: {got} bytes, the header alone needs 8")]
    TruncatedHeader {
        /// Bytes received.
        got: usize,
    },

    /// The header's length field disagrees with the bytes that came with it.
    #[error("SMP frame length mismatch: header says {declared} body bytes, frame carries {actual}")]
    LengthMismatch {
        /// Body length the header declares.
        declared: usize,
        /// Body bytes present.
        actual: usize,
    },

    /// Reserved header bits set or an SMP version this crate does not know.
    #[error("malformed SMP header: {0}")]
    BadHeader(crate::frame::HeaderProblem),

    /// The CBOR body of a frame could not be decoded into the expected message.
    #[error("malformed {what} from the device: {source}")]
    Decode {
        /// Which message was being decoded.
        what: &'static str,
        /// What the decoder said.
        #[source]
        source: ciborium::de::Error<std::io::Error>,
    },

    /// A message could not be encoded as CBOR.
    #[error("could not encode {what}: {source}")]
    Encode {
        /// Which message was being encoded.
        what: &'static str,
        /// What the encoder said.
        #[source]
        source: ciborium::ser::Error<std::io::Error>,
    },

    /// An answer that breaks the protocol (wrong group, command or op; an offset past the end).
    #[error("protocol error: {0}")]
    Protocol(#[from] ProtocolError),

    /// No answer in time.
    #[error("no response from the device within {timeout_ms} ms to {what} (sequence {seq})")]
    Timeout {
        /// The request that went unanswered.
        what: String,
        /// Its sequence number.
        seq: u8,
        /// How long we waited.
        timeout_ms: u64,
    },

    /// The request would not fit into one frame of this transport or device.
    #[error("request of {size} bytes exceeds the frame limit of {limit} bytes")]
    FrameTooLarge {
        /// Encoded size of the frame.
        size: usize,
        /// Largest frame allowed.
        limit: usize,
    },

    /// The request's frame, with the transport's framing, would not fit the device's SMP
    /// buffer (as it reported it, or as `--buf-size` gave it): refused before sending, since
    /// the device would drop it unanswered or fail it.
    #[error(
        "{what} request of {frame} bytes{} does not fit the device's {buf_size}-byte buffer ({}); not sent",
        if *overhead > 0 { format!(" (+{overhead} bytes of transport framing)") } else { String::new() },
        if *reported { "as the device reports it" } else { "as given by --buf-size" }
    )]
    TooLargeForDevice {
        /// The request.
        what: &'static str,
        /// Encoded size of the frame.
        frame: usize,
        /// Bytes of the device's buffer the transport's framing takes besides the frame.
        overhead: usize,
        /// The device's buffer size.
        buf_size: usize,
        /// Whether the device reported `buf_size` (false: the user gave it).
        reported: bool,
    },

    /// The link failed: it could not be opened, it broke, or it went away. The kind says
    /// which, so callers act on it without reading the message.
    #[error(transparent)]
    Transport(#[from] crate::transport::TransportError),

    /// All 256 sequence numbers are waiting for answers.
    #[error("too many requests in flight: every sequence number is taken")]
    SequenceExhausted,

    /// The device stopped taking data.
    #[error(
        "upload stalled at offset {offset} of {total}: no progress after {attempts} attempts; \
         the link is too lossy or the device stopped answering"
    )]
    UploadStalled {
        /// Bytes the device had confirmed.
        offset: u64,
        /// Image length.
        total: u64,
        /// Attempts without progress.
        attempts: u32,
    },

    /// The device received the whole image but its SHA-256 differs from what was sent.
    #[error(
        "the device reports the received image does not match what was sent (SHA-256 \
         mismatch): the transfer was corrupted; upload it again"
    )]
    UploadMismatch,

    /// A file transfer finished, but the device's hash or checksum of the file, or its
    /// length, differs from the local file's.
    #[error("the device's {name} does not match: {what}; transfer it again")]
    FileMismatch {
        /// Path on the device.
        name: String,
        /// What differs.
        what: String,
    },

    /// The update was refused before anything was written, or did not take.
    #[error(transparent)]
    Dfu(#[from] crate::dfu::DfuError),

    /// A firmware file that is not a valid image, HEX file or DFU package, or cannot be read.
    #[error(transparent)]
    Image(#[from] crate::mcuboot::ImageError),
}

impl Error {
    /// The link went away ([`TransportKind::LinkLost`](crate::transport::TransportKind::LinkLost)):
    /// reconnecting may help.
    pub fn is_link_lost(&self) -> bool {
        matches!(self, Error::Transport(t) if t.kind == crate::transport::TransportKind::LinkLost)
    }

    /// A [`TransportKind::LinkLost`](crate::transport::TransportKind::LinkLost) error.
    pub fn link_lost(context: impl Into<String>) -> Self {
        Error::Transport(crate::transport::TransportError::new(
            crate::transport::TransportKind::LinkLost,
            context,
        ))
    }
}

impl From<crate::dfu::Refusal> for Error {
    fn from(r: crate::dfu::Refusal) -> Self {
        Error::Dfu(r.into())
    }
}

impl From<crate::dfu::NotApplied> for Error {
    fn from(n: crate::dfu::NotApplied) -> Self {
        Error::Dfu(n.into())
    }
}

/// An answer that does not fit the request it matched.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ProtocolError {
    /// The answer's op, group or command is not the one the request expects.
    #[error(
        "answer to {command} has op {got_op:?}, group {got_group}, id {got_id}; expected \
         {want_op:?}, group {want_group}, id {want_id}"
    )]
    WrongAnswer {
        /// The request's name.
        command: &'static str,
        /// Op in the answer.
        got_op: crate::frame::Op,
        /// Group in the answer.
        got_group: u16,
        /// Command id in the answer.
        got_id: u8,
        /// Op expected.
        want_op: crate::frame::Op,
        /// Group expected.
        want_group: u16,
        /// Command id expected.
        want_id: u8,
    },
    /// The device asks for data past the end of the image: trusting it would end an upload
    /// early and call that success.
    #[error("the device asks for offset {off} of a {total}-byte image")]
    OffsetBeyondImage {
        /// The offset the device sent.
        off: u64,
        /// Image length.
        total: u64,
    },
    /// An answer lacks a field the protocol requires in it.
    #[error("the answer to {command} lacks `{field}`")]
    MissingField {
        /// The request's name.
        command: &'static str,
        /// The missing key.
        field: &'static str,
    },
    /// A download answer whose chunk does not fit the file.
    #[error("file download answered {len} bytes at offset {off} of a {total}-byte file")]
    BadChunk {
        /// Offset in the answer.
        off: u64,
        /// Bytes in the answer.
        len: u64,
        /// The file's length.
        total: u64,
    },
    /// The device claims a file larger than smpflash holds in memory.
    #[error("the device says the file has {len} bytes; more than {limit} is not a device file")]
    FileTooLarge {
        /// The claimed length.
        len: u64,
        /// The limit.
        limit: u64,
    },
}

/// Shorthand for this crate's results.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// An error code the device sent back.
///
/// SMP v1 devices send `{"rc": N}` with an `MGMT_ERR_*` code; SMP v2 devices send
/// `{"err": {"group": G, "rc": N}}` with a code of that group.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeviceError {
    /// Group whose rc space `rc` belongs to; `None` for SMP-level (`MGMT_ERR_*`) codes.
    pub group: Option<u16>,
    /// The numeric code.
    pub rc: i64,
    /// Reason text the device may add (`rsn`, with `CONFIG_MCUMGR_GRP_IMG_VERBOSE_ERR`).
    pub reason: Option<String>,
    /// Group of the request that failed, so a sentence can say "image" or "OS".
    pub request_group: u16,
}

impl DeviceError {
    /// Zephyr's name for this code, e.g. `IMG_MGMT_ERR_INVALID_IMAGE_HEADER_MAGIC`.
    pub fn name(&self) -> Option<&'static str> {
        match self.group {
            None => rc::mgmt_err_name(self.rc),
            Some(g) => rc::group_err_name(g, self.rc),
        }
    }

    /// A plain description of this code, e.g. "invalid header magic".
    pub fn description(&self) -> Option<&'static str> {
        match self.group {
            None => rc::mgmt_err_description(self.rc),
            Some(g) => rc::group_err_description(g, self.rc),
        }
    }

    /// Whether this is the SMP-level "command not supported" answer.
    pub fn is_not_supported(&self) -> bool {
        self.group.is_none() && self.rc == rc::MGMT_ERR_ENOTSUP
    }
}

impl std::error::Error for DeviceError {}

impl fmt::Display for DeviceError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let subject = match self.request_group {
            1 => "device rejected the image",
            0 => "device rejected the OS request",
            _ => "device rejected the request",
        };
        let what = self.description().unwrap_or("unrecognised error code");
        write!(f, "{subject}: {what}")?;
        match self.group {
            None => write!(f, " (rc {}", self.rc)?,
            Some(g) => write!(f, " ({} group rc {}", rc::group_name(g), self.rc)?,
        }
        if let Some(name) = self.name() {
            write!(f, ", {name}")?;
        }
        f.write_str(")")?;
        if let Some(reason) = self.reason.as_deref().filter(|r| !r.is_empty()) {
            write!(f, "; device says: {reason}")?;
        }
        Ok(())
    }
}
