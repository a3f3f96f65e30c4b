//! The SMP server: reads the requests a packet holds, runs each group's handler with Zephyr's
//! rules and encodes the answers (v1 or v2 errors as Zephyr sends them).
//!
//! The order of the checks is Zephyr's (`subsys/mgmt/mcumgr/smp/src/smp.c`): header, length,
//! op, SMP version, handler lookup by group and command id, the handler for the op, and only
//! then the handler, which decodes its own body (`zcbor_map_decode_bulk`) — or does not read
//! it at all.

use ciborium::Value;
use smpflash_core::command::image::{ImageErase, ImageStateRead, ImageStateWrite, ImageUpload, SlotInfo};
use smpflash_core::command::os::{AppInfo, BootloaderInfo, Echo, McumgrParams, Reset};
use smpflash_core::command::Command;
use smpflash_core::frame::{Frame, Header, Op, Version, HEADER_LEN};
use smpflash_core::rc::{self, group, img as img_rc, os as os_rc};

use crate::profile::{BootMode, Profile};
use crate::smp::groups::{self, GroupCmd};
use crate::smp::request::{decode_bulk, map, Fail, Handled, Kind, Reply, Request};
use crate::smp::{img, os};
use crate::state::State;

/// `MGMT_ERR_ECORRUPT`: the packet is shorter than its header says.
pub const MGMT_ERR_ECORRUPT: i64 = 9;

/// `MGMT_OP_READ` and `MGMT_OP_WRITE`, the two request ops.
const OP_READ: u8 = 0;
const OP_WRITE: u8 = 2;

/// Zephyr's `img_mgmt_translate_error_code`: what a v1 client sees for an image group code.
fn img_rc_to_v1(rc: i64) -> i64 {
    match rc {
        img_rc::NO_IMAGE | img_rc::NO_TLVS => rc::MGMT_ERR_ENOENT,
        img_rc::NO_FREE_SLOT | img_rc::CURRENT_VERSION_IS_NEWER | img_rc::IMAGE_ALREADY_PENDING => {
            rc::MGMT_ERR_EBADSTATE
        }
        img_rc::NO_FREE_MEMORY => rc::MGMT_ERR_ENOMEM,
        img_rc::INVALID_SLOT
        | img_rc::INVALID_PAGE_OFFSET
        | img_rc::INVALID_OFFSET
        | img_rc::INVALID_LENGTH
        | img_rc::INVALID_IMAGE_HEADER
        | img_rc::INVALID_HASH
        | img_rc::INVALID_FLASH_ADDRESS => rc::MGMT_ERR_EINVAL,
        // Everything else folds into EUNKNOWN.
        _ => rc::MGMT_ERR_EUNKNOWN,
    }
}

/// Zephyr's `os_mgmt_translate_error_code` (os_mgmt.c): what a v1 client sees for an OS group
/// code.
fn os_rc_to_v1(rc: i64) -> i64 {
    match rc {
        os_rc::INVALID_FORMAT => rc::MGMT_ERR_EINVAL,
        // QUERY_YIELDS_NO_ANSWER and RTC_NOT_SET (4).
        os_rc::QUERY_YIELDS_NO_ANSWER | 4 => rc::MGMT_ERR_ENOENT,
        _ => rc::MGMT_ERR_EUNKNOWN,
    }
}

/// The 8-byte header as Zephyr's `smp_read_hdr` takes it: a `memcpy` into `struct smp_hdr`
/// (`nh_op:3`, `nh_version:2`, `_res1:3`), so every bit pattern is a header; the reserved bits
/// and the flags are never looked at.
#[derive(Debug, Clone, Copy)]
struct RawHeader {
    op: u8,
    version: u8,
    len: usize,
    group: u16,
    seq: u8,
    id: u8,
}

impl RawHeader {
    fn read(bytes: &[u8]) -> Option<RawHeader> {
        let b = bytes.get(..HEADER_LEN)?;
        Some(RawHeader {
            op: b[0] & 0x07,
            version: (b[0] >> 3) & 0x03,
            len: u16::from_be_bytes([b[2], b[3]]) as usize,
            group: u16::from_be_bytes([b[4], b[5]]),
            seq: b[6],
            id: b[7],
        })
    }
}

/// The commands the device has; which ops each is registered for is [`lookup`]'s.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Cmd {
    Echo,
    Reset,
    Params,
    Info,
    BootloaderInfo,
    StateRead,
    StateWrite,
    Upload,
    Erase,
    SlotInfo,
    /// A command of the groups beside os and img ([`groups`]).
    Group(GroupCmd),
}

impl Cmd {
    /// The command's name, as core's command definitions spell it.
    fn name(self) -> &'static str {
        match self {
            Cmd::Echo => Echo::NAME,
            Cmd::Reset => Reset::NAME,
            Cmd::Params => McumgrParams::NAME,
            Cmd::Info => AppInfo::NAME,
            Cmd::BootloaderInfo => BootloaderInfo::NAME,
            Cmd::StateRead => ImageStateRead::NAME,
            Cmd::StateWrite => ImageStateWrite::NAME,
            Cmd::Upload => ImageUpload::NAME,
            Cmd::Erase => ImageErase::NAME,
            Cmd::SlotInfo => SlotInfo::NAME,
            Cmd::Group(g) => g.name(),
        }
    }

    /// The keys the handler decodes with `zcbor_map_decode_bulk`, or `None` for a handler that
    /// never reads its request (Zephyr's `os_mgmt_reset` without `MCUMGR_GRP_OS_RESET_HOOK`,
    /// `os_mgmt_mcumgr_params`, `img_mgmt_state_read`, `img_mgmt_slot_info`): any body, even
    /// one that is not CBOR, is fine for those.
    fn keys(self) -> Option<&'static [(&'static str, Kind)]> {
        Some(match self {
            Cmd::Echo => &[("d", Kind::Text)],
            Cmd::Info => &[("format", Kind::Text)],
            Cmd::BootloaderInfo => &[("query", Kind::Text)],
            Cmd::StateWrite => &[("hash", Kind::Bytes), ("confirm", Kind::Bool)],
            Cmd::Upload => &[
                ("image", Kind::Uint),
                ("data", Kind::Bytes),
                ("len", Kind::Uint),
                ("off", Kind::Uint),
                ("sha", Kind::Bytes),
                ("upgrade", Kind::Bool),
            ],
            Cmd::Erase => &[("slot", Kind::Uint)],
            Cmd::Group(g) => return g.keys(),
            Cmd::Reset | Cmd::Params | Cmd::StateRead | Cmd::SlotInfo => return None,
        })
    }
}

/// Zephyr's `mgmt_find_handler` over the groups the device registers: the (read, write)
/// handlers of a command, `None` when the group or the command id is unknown. The group
/// tables are os_mgmt.c's `os_mgmt_group_handlers` (echo is `{os_mgmt_echo, os_mgmt_echo}`:
/// read and write) and img_mgmt.c's `img_mgmt_handlers`.
///
/// `entered`: MCUboot's serial recovery entered from an application (`boot_mode` 1), built as
/// on the mps2-an385 fixtures: echo and erase answer `rc 8` there. Under RAM_LOAD the
/// application has no state write (`rc 8`).
fn lookup(profile: &Profile, entered: bool, group: u16, id: u8) -> Option<(Option<Cmd>, Option<Cmd>)> {
    let recovery = profile.mode == BootMode::SerialRecovery;
    let state_write = !recovery && profile.mode != BootMode::RamLoad;
    // Addressed by core's command definitions, so the device and the client agree on numbers.
    let found = match (group, id) {
        (Echo::GROUP, Echo::ID) if entered => return None,
        (Echo::GROUP, Echo::ID) => (Some(Cmd::Echo), Some(Cmd::Echo)),
        (Reset::GROUP, Reset::ID) => (None, Some(Cmd::Reset)),
        (McumgrParams::GROUP, McumgrParams::ID) if profile.params_command => (Some(Cmd::Params), None),
        (AppInfo::GROUP, AppInfo::ID) if !recovery => (Some(Cmd::Info), None),
        // Bootloader mode is the same command as bootloader info, with a query.
        (BootloaderInfo::GROUP, BootloaderInfo::ID) if !recovery && !profile.no_bootloader_info => {
            (Some(Cmd::BootloaderInfo), None)
        }
        (ImageStateRead::GROUP, ImageStateRead::ID) => {
            (Some(Cmd::StateRead), state_write.then_some(Cmd::StateWrite))
        }
        (ImageErase::GROUP, ImageErase::ID) if entered => return None,
        (ImageUpload::GROUP, ImageUpload::ID) => (None, Some(Cmd::Upload)),
        (ImageErase::GROUP, ImageErase::ID) => (None, Some(Cmd::Erase)),
        (SlotInfo::GROUP, SlotInfo::ID) => (Some(Cmd::SlotInfo), None),
        _ if !recovery && !entered => {
            let (read, write) = groups::lookup(group, id)?;
            (read.map(Cmd::Group), write.map(Cmd::Group))
        }
        _ => return None,
    };
    Some(found)
}

/// What the device has at a group and command id, for a request of one op: what the server
/// does with it, named, so the virtual device can explain a refusal.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Lookup {
    /// No such group.
    UnknownGroup,
    /// The group exists without this command; its commands, id and name.
    UnknownCommand(Vec<(u8, &'static str)>),
    /// The command exists, but not for this op.
    WrongOp(&'static str),
    /// The command runs.
    Found {
        /// Its name.
        name: &'static str,
        /// Its handler decodes the body (a body that is not a CBOR map is refused).
        decodes_body: bool,
    },
}

/// [`Lookup`] of a request: the same table the server dispatches with.
pub fn describe(profile: &Profile, entered: bool, group: u16, id: u8, read: bool) -> Lookup {
    match lookup(profile, entered, group, id) {
        Some((r, w)) => match if read { r } else { w } {
            Some(cmd) => Lookup::Found { name: cmd.name(), decodes_body: cmd.keys().is_some() },
            None => Lookup::WrongOp(r.or(w).map_or("the command", Cmd::name)),
        },
        None => {
            let known: Vec<(u8, &'static str)> = (0..=u8::MAX)
                .filter_map(|i| {
                    let (r, w) = lookup(profile, entered, group, i)?;
                    Some((i, r.or(w)?.name()))
                })
                .collect();
            if known.is_empty() {
                Lookup::UnknownGroup
            } else {
                Lookup::UnknownCommand(known)
            }
        }
    }
}

/// The answer's header, Zephyr's `smp_make_rsp_hdr`: a read is answered with a read
/// response, anything else with a write response (`smp_rsp_op`); the version is the
/// request's, capped at v2 — or v1 on a device that predates v2.
fn response_header(profile: &Profile, h: &RawHeader) -> Header {
    let version = if profile.smp_v2 && h.version >= 1 { Version::V2 } else { Version::V1 };
    let op = if h.op == OP_READ { Op::ReadResponse } else { Op::WriteResponse };
    Header { version, op, flags: 0, len: 0, group: h.group, seq: h.seq, id: h.id }
}

fn encode(profile: &Profile, h: &RawHeader, entries: Vec<(&'static str, Value)>) -> Vec<u8> {
    let mut body = Vec::new();
    ciborium::into_writer(&map(entries), &mut body).expect("CBOR into a Vec cannot fail");
    Frame::new(response_header(profile, h), body).expect("an answer fits a frame").encode()
}

/// Zephyr's `smp_build_err_rsp`: `{"rc": N}` (with `rsn` when verbose errors are on).
fn error_frame(profile: &Profile, h: &RawHeader, rc: i64, reason: Option<&'static str>) -> Vec<u8> {
    let mut e = vec![("rc", Value::Integer(rc.into()))];
    if let (true, Some(text)) = (profile.verbose_errors, reason) {
        e.push(("rsn", Value::Text(text.into())));
    }
    encode(profile, h, e)
}

/// Handles one packet: a UDP datagram, a serial packet, a reassembled BLE write.
pub fn handle(state: &mut State, profile: &Profile, raw: &[u8]) -> Reply {
    let mut reply = Reply::default();
    if state.boot.in_recovery {
        // The application's profile reset into MCUboot's serial recovery: the bootloader
        // answers, in the original protocol, with one buffer.
        let boot_serial = Profile {
            mode: BootMode::SerialRecovery,
            smp_v2: false,
            params_command: profile.recovery_params,
            buf_count: 1,
            ..profile.clone()
        };
        recovery(state, &boot_serial, raw, &mut reply);
        return reply;
    }
    if profile.mode == BootMode::SerialRecovery {
        recovery(state, profile, raw, &mut reply);
        return reply;
    }
    // Zephyr: smp.c smp_process_request_packet takes the requests of a packet one after the
    // other (`while (req->len > 0)`), answers each in its own frame, and stops at the first
    // request answered with an error.
    let mut rest = raw;
    while !rest.is_empty() {
        // Zephyr: smp_read_hdr returns MGMT_ERR_EINVAL for fewer than 8 bytes, and
        // smp_process_request_packet breaks with MGMT_ERR_ECORRUPT and valid_hdr false:
        // no answer is sent (there is no header to answer with).
        let Some(h) = RawHeader::read(rest) else {
            tracing::debug!("sim: {} bytes too short for an SMP header; dropped", rest.len());
            break;
        };
        // Zephyr's request reader (cbor_nb_reader_init) covers everything after the header,
        // not just the header's length: a handler decodes its map from there.
        let body = &rest[HEADER_LEN..];
        // Zephyr: smp_process_request_packet, "Does buffer contain whole message?":
        // MGMT_ERR_ECORRUPT, answered (valid_hdr) with the request's header.
        if body.len() < h.len {
            reply.frames.push(error_frame(profile, &h, MGMT_ERR_ECORRUPT, None));
            break;
        }
        // Zephyr: smp_process_request_packet handles only MGMT_OP_READ and MGMT_OP_WRITE;
        // any other op (a response, op 4-7) is MGMT_ERR_ENOTSUP without CONFIG_SMP_CLIENT,
        // which a server does not enable, answered as a write response.
        if h.op != OP_READ && h.op != OP_WRITE {
            reply.frames.push(error_frame(profile, &h, rc::MGMT_ERR_ENOTSUP, None));
            break;
        }
        if !request(state, profile, &h, body, &mut reply) {
            break;
        }
        // Zephyr: `net_buf_pull(req, req_hdr.nh_len)`: what follows the header's length is
        // the next request.
        rest = &body[h.len..];
    }
    reply
}

/// MCUboot's serial recovery (`boot_serial.c`, `boot_serial_input`): one request per packet;
/// a packet shorter than a header, with an op other than read or write, or with more body
/// than its header's length is ignored; a body shorter than the header says is handled as it
/// came.
fn recovery(state: &mut State, profile: &Profile, raw: &[u8], reply: &mut Reply) {
    let Some(h) = RawHeader::read(raw) else {
        return;
    };
    let body = &raw[HEADER_LEN..];
    if (h.op != OP_READ && h.op != OP_WRITE) || h.len < body.len() {
        return;
    }
    request(state, profile, &h, body, reply);
}

/// Zephyr's `smp_handle_single_req` for one request; returns whether the packet's next
/// request is handled too (not after an error answer).
fn request(state: &mut State, profile: &Profile, h: &RawHeader, body: &[u8], reply: &mut Reply) -> bool {
    // A device without v2 support predates the version bits, ignores them and answers as v1.
    let version = match (profile.smp_v2, h.version) {
        (false, _) | (true, 0) => Version::V1,
        (true, 1) => Version::V2,
        // Zephyr: smp.c smp_handle_single_req, "We do not currently support future versions
        // of the protocol": MGMT_ERR_UNSUPPORTED_TOO_NEW, before any handler lookup.
        (true, _) => {
            reply.frames.push(error_frame(profile, h, rc::MGMT_ERR_UNSUPPORTED_TOO_NEW, None));
            return false;
        }
    };
    // Zephyr: smp.c smp_handle_single_payload: mgmt_find_handler (group, then command id)
    // NULL -> MGMT_ERR_ENOTSUP; then the handler of the op, NULL -> MGMT_ERR_ENOTSUP; only
    // then does the handler decode the body.
    let entered = state.boot.in_recovery;
    let cmd = lookup(profile, entered, h.group, h.id)
        .and_then(|(read, write)| if h.op == OP_READ { read } else { write });
    let Some(cmd) = cmd else {
        reply.frames.push(error_frame(profile, h, rc::MGMT_ERR_ENOTSUP, None));
        return false;
    };
    let decoded = ciborium::from_reader::<Value, _>(body).ok();
    let empty = Value::Map(Vec::new());
    let result = match cmd.keys() {
        Some(keys) => match decode_bulk(decoded.as_ref(), keys) {
            Ok(()) => {
                let body = decoded.as_ref().unwrap_or(&empty);
                run(state, profile, cmd, &mut Request { body, reply })
            }
            Err(fail) => Err(fail),
        },
        // The reset reads `boot_mode` when there is one (CONFIG_MCUMGR_GRP_OS_RESET_BOOT_MODE)
        // and otherwise takes any body.
        None if cmd == Cmd::Reset && decoded.as_ref().is_some_and(|v| v.as_map().is_some()) => {
            run(state, profile, cmd, &mut Request { body: decoded.as_ref().unwrap_or(&empty), reply })
        }
        None => run(state, profile, cmd, &mut Request { body: &empty, reply }),
    };
    match result {
        Ok(mut entries) => {
            if profile.mode == BootMode::SerialRecovery {
                // MCUboot's boot_serial always answers with an rc, 0 on success.
                entries.insert(0, ("rc", Value::Integer(0.into())));
            }
            reply.frames.push(encode(profile, h, entries));
            true
        }
        // Zephyr: a handler's MGMT_ERR_* return is an error answer (smp_on_err), which ends
        // the packet.
        Err(Fail::Smp(rc)) => {
            reply.frames.push(error_frame(profile, h, rc, None));
            false
        }
        // A group error is part of a successful answer in v2 (smp_add_cmd_err); in v1
        // smp_handle_single_req translates it into an MGMT_ERR_* return, an error answer.
        Err(Fail::Group { group, rc, reason }) if version == Version::V2 => {
            let mut e = vec![(
                "err",
                map(vec![("group", Value::Integer(group.into())), ("rc", Value::Integer(rc.into()))]),
            )];
            if let (true, Some(text)) = (profile.verbose_errors, reason) {
                e.push(("rsn", Value::Text(text.into())));
            }
            reply.frames.push(encode(profile, h, e));
            true
        }
        Err(Fail::GroupWith { group, rc, extra }) if version == Version::V2 => {
            let mut e = vec![(
                "err",
                map(vec![("group", Value::Integer(group.into())), ("rc", Value::Integer(rc.into()))]),
            )];
            e.extend(extra);
            reply.frames.push(encode(profile, h, e));
            true
        }
        Err(Fail::GroupWith { group, rc, .. }) => {
            reply.frames.push(error_frame(profile, h, groups::to_v1(group, rc), None));
            false
        }
        Err(Fail::Group { group, rc, reason }) => {
            let v1 = match group {
                group::IMAGE => img_rc_to_v1(rc),
                group::OS => os_rc_to_v1(rc),
                _ => groups::to_v1(group, rc),
            };
            reply.frames.push(error_frame(profile, h, v1, reason));
            false
        }
    }
}

fn run(state: &mut State, profile: &Profile, cmd: Cmd, r: &mut Request<'_>) -> Handled {
    match cmd {
        Cmd::Echo => os::echo(r),
        Cmd::Reset => os::reset(r),
        Cmd::Params => os::params(profile),
        Cmd::Info => os::info(profile, r),
        Cmd::BootloaderInfo => os::bootloader_info(profile, r),
        Cmd::StateRead => Ok(img::state_read(state, profile)),
        Cmd::StateWrite => img::state_write(state, profile, r),
        Cmd::Upload => img::upload(state, profile, r),
        Cmd::Erase => img::erase(state, profile, r),
        Cmd::SlotInfo => Ok(img::slot_info(profile)),
        Cmd::Group(g) => groups::run(state, profile, g, r),
    }
}
