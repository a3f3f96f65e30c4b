//! Typed SMP commands: each request type names its response type, group, id and op, so callers
//! never build frames by hand.

pub mod basic;
pub mod enumeration;
pub mod fs;
pub mod image;
pub mod os;
pub mod settings;
pub mod shell;
pub mod stat;

use std::time::Duration;

use serde::{de::DeserializeOwned, Deserialize, Serialize};

use crate::cbor;
use crate::error::{Error, Result};
use crate::frame::{Frame, Header, Op, Version};

/// A request the device understands, tied to the answer it gets.
pub trait Command: Serialize {
    /// The decoded success answer.
    type Response: DeserializeOwned;
    /// Management group.
    const GROUP: u16;
    /// Command id within the group.
    const ID: u8;
    /// [`Op::Read`] or [`Op::Write`].
    const OP: Op;
    /// Short name for logs and errors, e.g. `"image upload"`.
    const NAME: &'static str;
    /// How long the device may take to answer, for a command that does slow work before it
    /// answers (erasing a slot, writing an image trailer). `None`: the client's ordinary
    /// timeout (`--timeout`). [`Client::request`](crate::client::Client::request) waits for
    /// the longer of the two, so raising `--timeout` never shortens a slow command's wait.
    const TIMEOUT: Option<Duration> = None;
}

/// The wait for an answer to `C` when the caller gives none: `C::TIMEOUT` if the command has
/// its own, but never less than `ordinary`.
pub fn timeout_for<C: Command>(ordinary: Duration) -> Duration {
    C::TIMEOUT.map_or(ordinary, |t| t.max(ordinary))
}

/// An answer with no fields of interest (reset, erase).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize)]
pub struct Empty {}

/// Encodes `cmd` as a frame with the given version and sequence number.
pub fn encode_request<C: Command>(cmd: &C, version: Version, seq: u8) -> Result<Frame> {
    let body = cbor::to_vec(cmd, C::NAME)?;
    Frame::new(Header { version, op: C::OP, flags: 0, len: 0, group: C::GROUP, seq, id: C::ID }, body)
}

/// Checks that `frame` answers a `C` and decodes it, turning a device error into
/// [`Error::Device`].
pub fn decode_response<C: Command>(frame: &Frame) -> Result<C::Response> {
    let h = &frame.header;
    if h.op != C::OP.response() || h.group != C::GROUP || h.id != C::ID {
        return Err(Error::Protocol(crate::error::ProtocolError::WrongAnswer {
            command: C::NAME,
            got_op: h.op,
            got_group: h.group,
            got_id: h.id,
            want_op: C::OP.response(),
            want_group: C::GROUP,
            want_id: C::ID,
        }));
    }
    if let Some(err) = cbor::device_error(&frame.body, C::GROUP)? {
        return Err(Error::Device(err));
    }
    cbor::from_slice(&frame.body, C::NAME)
}
