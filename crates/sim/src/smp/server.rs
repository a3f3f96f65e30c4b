//! The SMP server: decodes a request frame, runs the group's handler with Zephyr's rules and
//! encodes the answer (v1 or v2 errors as Zephyr sends them).

use ciborium::Value;
use smpflash_core::command::image::{ImageErase, ImageStateRead, ImageStateWrite, ImageUpload, SlotInfo};
use smpflash_core::command::os::{AppInfo, BootloaderInfo, Echo, McumgrParams, Reset};
use smpflash_core::command::Command;
use smpflash_core::frame::{Frame, Header, Version};
use smpflash_core::rc::{self, group, img as img_rc};

use crate::profile::{BootMode, Profile};
use crate::smp::request::{map, Fail, Handled, Reply, Request};
use crate::smp::{img, os};
use crate::state::State;

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
        _ => Err(Fail::Smp(rc::MGMT_ERR_EINVAL)),
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
                let v1 = if group == group::IMAGE { img_rc_to_v1(rc) } else { rc::MGMT_ERR_EUNKNOWN };
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
    let recovery = profile.mode == BootMode::SerialRecovery;
    // Addressed by core's command definitions, so the device answers exactly the (group, id,
    // op) triples the client sends.
    match (h.group, h.id, h.op) {
        (Echo::GROUP, Echo::ID, Echo::OP) => os::echo(r),
        (Reset::GROUP, Reset::ID, Reset::OP) => os::reset(r),
        (McumgrParams::GROUP, McumgrParams::ID, McumgrParams::OP) if profile.params_command => {
            os::params(profile)
        }
        (AppInfo::GROUP, AppInfo::ID, AppInfo::OP) if !recovery => os::info(profile, r),
        // Bootloader mode is the same command as bootloader info, with a query.
        (BootloaderInfo::GROUP, BootloaderInfo::ID, BootloaderInfo::OP) if !recovery => {
            os::bootloader_info(profile, r)
        }
        (ImageStateRead::GROUP, ImageStateRead::ID, ImageStateRead::OP) => {
            Ok(img::state_read(state, profile))
        }
        (ImageStateWrite::GROUP, ImageStateWrite::ID, ImageStateWrite::OP) if !recovery => {
            img::state_write(state, profile, r)
        }
        (ImageUpload::GROUP, ImageUpload::ID, ImageUpload::OP) => img::upload(state, profile, r),
        (ImageErase::GROUP, ImageErase::ID, ImageErase::OP) => img::erase(state, profile, r),
        (SlotInfo::GROUP, SlotInfo::ID, SlotInfo::OP) => Ok(img::slot_info(profile)),
        _ => Err(Fail::Smp(rc::MGMT_ERR_ENOTSUP)),
    }
}
