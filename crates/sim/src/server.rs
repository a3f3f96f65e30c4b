//! The SMP server: decodes a request frame, runs the group's handler with Zephyr's rules and
//! encodes the answer (v1 or v2 errors as Zephyr sends them).

use std::time::Duration;

use ciborium::Value;
use smpflash_core::frame::{Frame, Header, Op, Version};
use smpflash_core::rc::group;

use crate::profile::{BootMode, Profile};
use crate::state::State;
use crate::{img_mgmt, os_mgmt};

/// A failed request, as the handler reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Fail {
    /// An SMP-level `MGMT_ERR_*` code: always sent as `{"rc": N}`.
    Smp(i64),
    /// A group's own code: `{"err": {...}}` in v2, translated to `MGMT_ERR_*` in v1.
    Group {
        /// Group.
        group: u16,
        /// Code.
        rc: i64,
        /// `rsn` text (sent when the profile has verbose errors).
        reason: Option<&'static str>,
    },
}

/// `MGMT_ERR_EINVAL`.
pub const EINVAL: i64 = 3;
/// `MGMT_ERR_ENOTSUP`.
pub const ENOTSUP: i64 = 8;
/// `MGMT_ERR_EBADSTATE`.
pub const EBADSTATE: i64 = 6;
/// `MGMT_ERR_UNSUPPORTED_TOO_NEW`.
pub const UNSUPPORTED_TOO_NEW: i64 = 13;

/// What a handler produced.
pub type Handled = Result<Vec<(&'static str, Value)>, Fail>;

/// What the server does with one request.
#[derive(Debug, Default)]
pub struct Reply {
    /// The answer frame; `None` when Zephyr would send nothing (undecodable header, a
    /// response op).
    pub frame: Option<Vec<u8>>,
    /// The device resets after sending the answer.
    pub reset: bool,
    /// Flash time the request took.
    pub cost: Duration,
    /// Flash changed in a way worth saving.
    pub flash_changed: bool,
}

/// Builds a CBOR map from text keys.
pub fn map(entries: Vec<(&'static str, Value)>) -> Value {
    Value::Map(entries.into_iter().map(|(k, v)| (Value::Text(k.into()), v)).collect())
}

/// Looks up a text key in a decoded request map.
pub fn field<'a>(body: &'a Value, key: &str) -> Option<&'a Value> {
    body.as_map()?.iter().find(|(k, _)| k.as_text() == Some(key)).map(|(_, v)| v)
}

/// A handler's view of the request.
pub struct Request<'a> {
    /// The decoded body.
    pub body: &'a Value,
    /// Extra results the handler reports to the server.
    pub reply: &'a mut Reply,
}

/// Zephyr's `img_mgmt_translate_error_code`: what a v1 client sees for an image group code.
fn img_rc_to_v1(rc: i64) -> i64 {
    match rc {
        3 | 4 => 5,                                 // no image / no TLVs: ENOENT
        9 | 27 | 28 => EBADSTATE,                   // no free slot, newer version, pending
        15 => 2,                                    // no free memory: ENOMEM
        14 | 19 | 20 | 21 | 22 | 24 | 25 => EINVAL, // invalid slot, offset, length, header, hash, address
        _ => 1,                                     // everything else folds into EUNKNOWN
    }
}

/// Handles one request frame.
pub fn handle(state: &mut State, profile: &Profile, raw: &[u8]) -> Reply {
    let mut reply = Reply::default();
    let Ok(req) = Frame::decode(raw) else {
        tracing::debug!("sim: dropping undecodable frame of {} bytes", raw.len());
        return reply;
    };
    if req.header.op.is_response() {
        return reply;
    }
    // A device without v2 support predates the version bits and answers as v1.
    let version = if profile.smp_v2 { req.header.version } else { Version::V1 };
    let result: Handled = match ciborium::from_reader::<Value, _>(req.body.as_slice()) {
        Ok(body) if body.is_map() => {
            let mut r = Request { body: &body, reply: &mut reply };
            dispatch(state, profile, &req.header, &mut r)
        }
        _ => Err(Fail::Smp(EINVAL)),
    };
    let legacy_rc = profile.mode == BootMode::SerialRecovery;
    let entries = match result {
        Ok(mut entries) => {
            if legacy_rc {
                // MCUboot's boot_serial always answers with an rc, 0 on success.
                entries.insert(0, ("rc", Value::Integer(0.into())));
            }
            entries
        }
        Err(Fail::Smp(rc)) => vec![("rc", Value::Integer(rc.into()))],
        Err(Fail::Group { group, rc, reason }) => {
            let mut e = if version == Version::V2 {
                vec![(
                    "err",
                    map(vec![("group", Value::Integer(group.into())), ("rc", Value::Integer(rc.into()))]),
                )]
            } else {
                let v1 = if group == group::IMAGE { img_rc_to_v1(rc) } else { 1 };
                vec![("rc", Value::Integer(v1.into()))]
            };
            if let (true, Some(text)) = (profile.verbose_errors, reason) {
                e.push(("rsn", Value::Text(text.into())));
            }
            e
        }
    };
    let mut body = Vec::new();
    ciborium::into_writer(&map(entries), &mut body).expect("CBOR into a Vec cannot fail");
    let header = Header { version, op: req.header.op.response(), flags: 0, len: 0, ..req.header };
    reply.frame = Frame::new(header, body).ok().map(|f| f.encode());
    reply
}

fn dispatch(state: &mut State, profile: &Profile, h: &Header, r: &mut Request<'_>) -> Handled {
    use Op::{Read, Write};
    let recovery = profile.mode == BootMode::SerialRecovery;
    match (h.group, h.id, h.op) {
        (group::OS, 0, Write) => os_mgmt::echo(r),
        (group::OS, 5, Write) => os_mgmt::reset(r),
        (group::OS, 6, Read) if profile.params_command => os_mgmt::params(profile),
        (group::OS, 7, Read) if !recovery => os_mgmt::info(profile, r),
        (group::OS, 8, Read) if !recovery => os_mgmt::bootloader_info(profile, r),
        (group::IMAGE, 0, Read) => Ok(img_mgmt::state_read(state, profile)),
        (group::IMAGE, 0, Write) if !recovery => img_mgmt::state_write(state, profile, r),
        (group::IMAGE, 1, Write) => img_mgmt::upload(state, profile, r),
        (group::IMAGE, 5, Write) => img_mgmt::erase(state, profile, r),
        (group::IMAGE, 6, Read) => Ok(img_mgmt::slot_info(profile)),
        _ => Err(Fail::Smp(ENOTSUP)),
    }
}
