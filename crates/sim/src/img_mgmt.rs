//! Image group handlers with Zephyr's rules (`img_mgmt.c`, `img_mgmt_state.c`,
//! `zephyr_img_mgmt.c`): state read/write, upload, erase, slot info.

use ciborium::Value;
use sha2::{Digest, Sha256};

use crate::bootloader::{swap_type, SwapType};
use crate::profile::{BootMode, Profile};
use crate::server::{field, map, Fail, Handled, Request, EBADSTATE, EINVAL};
use crate::slot_image::{self, SlotImage};
use crate::state::{State, Upload};
use crate::trailer::{self, Flag, Magic};
use smpflash_core::rc::group;

/// Image group rc values (Zephyr `img_mgmt.h`).
mod rc {
    pub const NO_FREE_SLOT: i64 = 9;
    pub const FLASH_WRITE_FAILED: i64 = 12;
    pub const INVALID_SLOT: i64 = 14;
    pub const INVALID_OFFSET: i64 = 20;
    pub const INVALID_LENGTH: i64 = 21;
    pub const INVALID_IMAGE_HEADER: i64 = 22;
    pub const INVALID_IMAGE_HEADER_MAGIC: i64 = 23;
    pub const INVALID_HASH: i64 = 24;
    pub const HASH_NOT_FOUND: i64 = 8;
    pub const CURRENT_VERSION_IS_NEWER: i64 = 27;
    pub const IMAGE_ALREADY_PENDING: i64 = 28;
    pub const INVALID_IMAGE_TOO_LARGE: i64 = 30;
    pub const INVALID_IMAGE_DATA_OVERRUN: i64 = 31;
    pub const IMAGE_CONFIRMATION_DENIED: i64 = 32;
    pub const IMAGE_SETTING_TEST_TO_ACTIVE_DENIED: i64 = 33;
}

fn img_err(rc: i64, reason: &'static str) -> Fail {
    Fail::Group { group: group::IMAGE, rc, reason: Some(reason) }
}

/// Zephyr's next-boot classification.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum NextBoot {
    Normal,
    Test,
    Revert,
}

fn info(state: &State, slot: usize) -> Option<SlotImage> {
    slot_image::read_info(state.flash.slot(slot))
}

fn opposite(slot: usize) -> usize {
    slot ^ 1
}

/// `img_mgmt_get_next_boot_slot`.
fn next_boot(state: &State, profile: &Profile, image: usize) -> (usize, NextBoot) {
    let active = state.boot.active[image];
    let other = opposite(active);
    match profile.mode {
        BootMode::DirectXip => {
            let newer = matches!((info(state, active), info(state, other)),
                (Some(a), Some(o)) if a.version < o.version);
            (if newer { other } else { active }, NextBoot::Normal)
        }
        BootMode::SerialRecovery => (active, NextBoot::Normal),
        BootMode::SwapUsingMove | BootMode::OverwriteOnly => match swap_type(&state.flash, 2 * image) {
            SwapType::None => (active, NextBoot::Normal),
            SwapType::Perm => (other, NextBoot::Normal),
            SwapType::Revert => (other, NextBoot::Revert),
            SwapType::Test => (other, NextBoot::Test),
        },
    }
}

/// `img_mgmt_slot_in_use`.
fn slot_in_use(state: &State, profile: &Profile, slot: usize) -> bool {
    let image = slot / 2;
    let active = state.boot.active[image];
    if profile.mode != BootMode::DirectXip {
        let (nbs, kind) = next_boot(state, profile, image);
        if slot == nbs && kind == NextBoot::Revert {
            return true;
        }
        if (slot == nbs && kind == NextBoot::Test) || (active != nbs && kind == NextBoot::Normal) {
            return true;
        }
    }
    active == slot
}

fn slot_entry(profile: &Profile, slot: usize, img: &SlotImage, flags: [bool; 4]) -> Value {
    let [active, pending, confirmed, permanent] = flags;
    let mut e = Vec::new();
    if profile.images.len() > 1 {
        e.push(("image", Value::Integer(((slot / 2) as u64).into())));
    }
    let v = img.version;
    let version = if v.build_num != 0 {
        format!("{}.{}.{}.{}", v.major, v.minor, v.revision, v.build_num)
    } else {
        format!("{}.{}.{}", v.major, v.minor, v.revision)
    };
    e.extend([
        ("slot", Value::Integer(((slot % 2) as u64).into())),
        ("version", Value::Text(version)),
        ("hash", Value::Bytes(img.hash.to_vec())),
        ("bootable", Value::Bool(img.bootable())),
        ("pending", Value::Bool(pending)),
        ("confirmed", Value::Bool(confirmed)),
        ("active", Value::Bool(active)),
        ("permanent", Value::Bool(permanent)),
    ]);
    map(e)
}

/// Image state read (`img_mgmt_state_read`).
pub fn state_read(state: &State, profile: &Profile) -> Vec<(&'static str, Value)> {
    let mut list = Vec::new();
    for image in 0..profile.images.len() {
        let a = state.boot.active[image];
        let o = opposite(a);
        let mut slots: Vec<(usize, [bool; 4])> = Vec::new();
        if profile.mode == BootMode::DirectXip {
            let (nbs, _) = next_boot(state, profile, image);
            slots.push((a, [true, false, false, false]));
            slots.push((o, [false, nbs == o, false, nbs == o]));
        } else {
            let (nbs, kind) = next_boot(state, profile, image);
            let flags_a = [true, false, kind != NextBoot::Revert, false];
            let mut flags_o = [false; 4];
            if nbs != a {
                match kind {
                    NextBoot::Normal => flags_o = [false, true, false, true],
                    NextBoot::Revert => flags_o = [false, false, true, false],
                    NextBoot::Test => flags_o = [false, true, false, false],
                }
            }
            slots.push((a, flags_a));
            slots.push((o, flags_o));
        }
        slots.sort_by_key(|(s, _)| *s);
        for (slot, flags) in slots {
            if let Some(img) = info(state, slot) {
                list.push(slot_entry(profile, slot, &img, flags));
            }
        }
    }
    let mut out = vec![("images", Value::Array(list))];
    if profile.mode != BootMode::SerialRecovery {
        out.push(("splitStatus", Value::Integer(0.into())));
    }
    out
}

/// Image state write: test or confirm (`img_mgmt_state_write`).
pub fn state_write(state: &mut State, profile: &Profile, r: &mut Request<'_>) -> Handled {
    let confirm = match field(r.body, "confirm") {
        None => false,
        Some(Value::Bool(b)) => *b,
        Some(_) => return Err(Fail::Smp(EINVAL)),
    };
    let hash = match field(r.body, "hash") {
        None => None,
        Some(Value::Bytes(b)) => Some(b.clone()),
        Some(_) => return Err(Fail::Smp(EINVAL)),
    };
    let slot = match hash {
        None | Some(_) if hash.as_ref().is_none_or(|h| h.is_empty()) => {
            if !confirm {
                return Err(img_err(rc::INVALID_HASH, "test without a hash"));
            }
            state.boot.active[0]
        }
        Some(h) if h.len() != 32 => return Err(img_err(rc::INVALID_HASH, "hash is not 32 bytes")),
        Some(h) => (0..state.flash.slot_count())
            .find(|&s| info(state, s).is_some_and(|i| i.hash[..] == h[..]))
            .ok_or(img_err(rc::HASH_NOT_FOUND, "no slot holds an image with this hash"))?,
        None => unreachable!("handled by the first arm"),
    };
    set_next_boot_slot(state, profile, slot, confirm)?;
    r.reply.flash_changed = true;
    Ok(state_read(state, profile))
}

/// `img_mgmt_set_next_boot_slot` followed by bootutil's `boot_set_next`.
fn set_next_boot_slot(state: &mut State, profile: &Profile, slot: usize, confirm: bool) -> Result<(), Fail> {
    let image = slot / 2;
    let active = state.boot.active[image];
    // CONFIG_MCUMGR_GRP_IMG_ALLOW_CONFIRM_NON_ACTIVE_IMAGE_SECONDARY=y (Zephyr's default):
    // another image's secondary may be confirmed, its primary may not.
    if confirm && image != 0 && slot == active {
        return Err(img_err(rc::IMAGE_CONFIRMATION_DENIED, "cannot confirm another image's running slot"));
    }
    if !confirm && slot == active {
        return Err(img_err(rc::IMAGE_SETTING_TEST_TO_ACTIVE_DENIED, "cannot test the running slot"));
    }
    if profile.mode != BootMode::DirectXip {
        let (nbs, kind) = next_boot(state, profile, image);
        match kind {
            NextBoot::Test => {
                if !confirm && slot == nbs {
                    return Ok(());
                }
                return Err(img_err(rc::IMAGE_ALREADY_PENDING, "another image is already pending"));
            }
            NextBoot::Normal => {
                if confirm && slot == nbs {
                    return Ok(());
                }
                if (slot == active && active != nbs) || (!confirm && slot != active && slot == nbs) {
                    return Err(img_err(rc::IMAGE_ALREADY_PENDING, "another image is already pending"));
                }
            }
            NextBoot::Revert => {
                if confirm && slot == nbs {
                    return Ok(());
                }
                if !confirm {
                    return Err(img_err(rc::IMAGE_ALREADY_PENDING, "a revert is pending"));
                }
            }
        }
    }
    let t = trailer::read(&state.flash, slot);
    if slot == active {
        if t.magic == Magic::Good && t.image_ok == Flag::Unset {
            trailer::write_image_ok(&mut state.flash, slot);
        }
        return Ok(());
    }
    match t.magic {
        Magic::Good => Ok(()),
        Magic::Unset => {
            trailer::write_magic(&mut state.flash, slot);
            if confirm {
                trailer::write_image_ok(&mut state.flash, slot);
            }
            Ok(())
        }
        Magic::Bad => {
            trailer::erase(&mut state.flash, slot);
            Err(img_err(rc::INVALID_IMAGE_HEADER_MAGIC, "slot trailer is corrupt"))
        }
    }
}

/// The slot an upload to `image` goes to (`img_mgmt_get_unused_slot_area_id`).
fn upload_slot(state: &State, profile: &Profile, image: usize) -> Option<usize> {
    if image >= profile.images.len() {
        return None;
    }
    if profile.mode == BootMode::SerialRecovery {
        return Some(2 * image);
    }
    let slot = opposite(state.boot.active[image]);
    (!slot_in_use(state, profile, slot)).then_some(slot)
}

fn uint(body: &Value, key: &str) -> Result<Option<u64>, Fail> {
    match field(body, key) {
        None => Ok(None),
        Some(Value::Integer(i)) => u64::try_from(*i).map(Some).map_err(|_| Fail::Smp(EINVAL)),
        Some(_) => Err(Fail::Smp(EINVAL)),
    }
}

/// Image upload (`img_mgmt_upload` + `img_mgmt_upload_inspect`).
pub fn upload(state: &mut State, profile: &Profile, r: &mut Request<'_>) -> Handled {
    let body = r.body;
    let image = uint(body, "image")?.unwrap_or(0) as usize;
    let len = uint(body, "len")?;
    let off = uint(body, "off")?.ok_or(img_err(rc::INVALID_OFFSET, "request has no off"))? as usize;
    let data: &[u8] = match field(body, "data") {
        Some(Value::Bytes(b)) => b,
        None => &[],
        Some(_) => return Err(Fail::Smp(EINVAL)),
    };
    let sha: Vec<u8> = match field(body, "sha") {
        Some(Value::Bytes(b)) => b.clone(),
        None => Vec::new(),
        Some(_) => return Err(Fail::Smp(EINVAL)),
    };
    let upgrade = matches!(field(body, "upgrade"), Some(Value::Bool(true)));
    let good = |state: &State| -> Handled {
        let off = state.upload.as_ref().map_or(0, |u| u.off);
        Ok(vec![("off", Value::Integer((off as u64).into()))])
    };

    if off == 0 {
        if data.len() < 32 {
            return Err(img_err(rc::INVALID_IMAGE_HEADER, "image data shorter than a header"));
        }
        let size = len.ok_or(img_err(rc::INVALID_LENGTH, "first chunk has no len"))? as usize;
        if data[..4] != smpflash_core::mcuboot::IMAGE_MAGIC.to_le_bytes() {
            return Err(img_err(
                rc::INVALID_IMAGE_HEADER_MAGIC,
                "data does not start with the MCUboot magic",
            ));
        }
        if sha.len() > 32 {
            return Err(img_err(rc::INVALID_HASH, "sha longer than 32 bytes"));
        }
        // Same sha as the interrupted upload: resume where it stopped.
        if !sha.is_empty() && state.upload.as_ref().is_some_and(|u| u.sha == sha) {
            return good(state);
        }
        let slot = upload_slot(state, profile, image)
            .ok_or(img_err(rc::NO_FREE_SLOT, "no slot available to upload to"))?;
        if size > state.flash.slot(slot).len() {
            return Err(img_err(rc::INVALID_IMAGE_TOO_LARGE, "image too large for the slot"));
        }
        if upgrade {
            let running = info(state, state.boot.active[0]).map(|i| i.version);
            let header = smpflash_core::mcuboot::ImageHeader::parse(data).ok();
            if let (Some(cur), Some(h)) = (running, header) {
                if cur >= h.version {
                    return Err(img_err(
                        rc::CURRENT_VERSION_IS_NEWER,
                        "image is not newer than the running one",
                    ));
                }
            }
        }
        if !state.flash.is_erased(slot) {
            // Erase what the image will occupy and the trailer sector, as Zephyr does before
            // the first write.
            r.reply.cost += state.flash.erase(slot, 0, size);
            let end = state.flash.slot(slot).len();
            let ss = state.flash.sector_size();
            r.reply.cost += state.flash.erase(slot, end - ss, ss);
        }
        state.upload = Some(Upload { slot, off: 0, size, sha });
    } else {
        let Some(u) = &state.upload else {
            return good(state);
        };
        if off != u.off {
            return good(state);
        }
        if off + data.len() > u.size {
            return Err(img_err(rc::INVALID_IMAGE_DATA_OVERRUN, "more data than the declared length"));
        }
    }

    let u = state.upload.as_mut().expect("set above");
    if u.off + data.len() > u.size {
        return Err(img_err(rc::INVALID_IMAGE_DATA_OVERRUN, "more data than the declared length"));
    }
    if u.off + data.len() > state.flash.slot(u.slot).len() {
        return Err(img_err(rc::FLASH_WRITE_FAILED, "write beyond the slot"));
    }
    r.reply.cost += state.flash.program(u.slot, u.off, data);
    u.off += data.len();
    let mut out = vec![("off", Value::Integer((u.off as u64).into()))];
    if u.off == u.size {
        let (slot, size, sha) = (u.slot, u.size, u.sha.clone());
        if !sha.is_empty() {
            let digest = Sha256::digest(&state.flash.slot(slot)[..size]);
            out.push(("match", Value::Bool(digest[..sha.len().min(32)] == sha[..])));
        }
        state.upload = None;
        r.reply.flash_changed = true;
    }
    Ok(out)
}

/// Image erase (`img_mgmt_erase`): the secondary slot by default.
pub fn erase(state: &mut State, profile: &Profile, r: &mut Request<'_>) -> Handled {
    let slot = uint(r.body, "slot")?.unwrap_or(1) as usize;
    if slot >= state.flash.slot_count() {
        return Err(img_err(rc::INVALID_SLOT, "no such slot"));
    }
    if info(state, slot).is_some() && slot_in_use(state, profile, slot) {
        return Err(Fail::Smp(EBADSTATE));
    }
    if !state.flash.is_erased(slot) {
        r.reply.cost += state.flash.erase_slot(slot);
    }
    state.upload = None;
    r.reply.flash_changed = true;
    Ok(vec![])
}

/// Slot info: sizes of every slot and where uploads go.
pub fn slot_info(profile: &Profile) -> Vec<(&'static str, Value)> {
    let images = profile
        .images
        .iter()
        .enumerate()
        .map(|(i, layout)| {
            let size = Value::Integer((layout.slot_size as u64).into());
            map(vec![
                ("image", Value::Integer((i as u64).into())),
                (
                    "slots",
                    Value::Array(vec![
                        map(vec![("slot", Value::Integer(0.into())), ("size", size.clone())]),
                        map(vec![
                            ("slot", Value::Integer(1.into())),
                            ("size", size),
                            ("upload_image_id", Value::Integer((i as u64).into())),
                        ]),
                    ]),
                ),
                ("max_image_size", Value::Integer((profile.max_image_size(i) as u64).into())),
            ])
        })
        .collect();
    vec![("images", Value::Array(images))]
}
