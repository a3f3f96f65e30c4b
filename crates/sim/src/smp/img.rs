//! Image group handlers with Zephyr's rules (`img_mgmt.c`, `img_mgmt_state.c`,
//! `zephyr_img_mgmt.c`): state read/write, upload, erase, slot info.

use ciborium::Value;
use sha2::{Digest, Sha256};

use crate::boot::bootloader::{swap_type, SwapType};
use crate::boot::trailer::{self, Flag, Magic};
use crate::image::slot::{self, SlotImage};
use crate::profile::{BootMode, Profile};
use crate::smp::request::{field, map, Fail, Handled, Request};
use crate::state::{State, Upload};
use smpflash_core::rc::{group, img as rc, MGMT_ERR_EBADSTATE, MGMT_ERR_EINVAL};

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
    slot::read_info(state.flash.slot(slot))
}

fn opposite(slot: usize) -> usize {
    slot ^ 1
}

/// `img_mgmt_get_next_boot_slot`.
fn next_boot(state: &State, profile: &Profile, image: usize) -> (usize, NextBoot) {
    let active = state.boot.active[image];
    let other = opposite(active);
    match profile.mode {
        BootMode::DirectXip | BootMode::RamLoad => {
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
    if !matches!(profile.mode, BootMode::DirectXip | BootMode::RamLoad) {
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

/// MCUboot's boot_serial (`bs_list`): image, slot, version and hash, no flags.
fn recovery_slot_entry(profile: &Profile, slot: usize, img: &SlotImage) -> Value {
    let Value::Map(full) = slot_entry(profile, slot, img, [false; 4]) else { unreachable!("a map") };
    let keep = ["image", "slot", "version", "hash"];
    Value::Map(full.into_iter().filter(|(k, _)| k.as_text().is_some_and(|k| keep.contains(&k))).collect())
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
        if profile.mode == BootMode::SerialRecovery {
            for slot in [2 * image, 2 * image + 1] {
                if let Some(img) = info(state, slot) {
                    list.push(recovery_slot_entry(profile, slot, &img));
                }
            }
            continue;
        }
        if profile.mode == BootMode::RamLoad {
            // Zephyr's img_mgmt under RAM_LOAD (as the mps2 fixtures list): the running slot
            // active and confirmed, the other without flags.
            slots.push((a, [true, false, true, false]));
            slots.push((o, [false; 4]));
        } else if profile.mode == BootMode::DirectXip {
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
        Some(_) => return Err(Fail::Smp(MGMT_ERR_EINVAL)),
    };
    let hash = match field(r.body, "hash") {
        None => None,
        Some(Value::Bytes(b)) => Some(b.clone()),
        Some(_) => return Err(Fail::Smp(MGMT_ERR_EINVAL)),
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
    if !matches!(profile.mode, BootMode::DirectXip | BootMode::RamLoad) {
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
        Some(Value::Integer(i)) => u64::try_from(*i).map(Some).map_err(|_| Fail::Smp(MGMT_ERR_EINVAL)),
        Some(_) => Err(Fail::Smp(MGMT_ERR_EINVAL)),
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
        Some(_) => return Err(Fail::Smp(MGMT_ERR_EINVAL)),
    };
    let sha: Vec<u8> = match field(body, "sha") {
        Some(Value::Bytes(b)) => b.clone(),
        None => Vec::new(),
        Some(_) => return Err(Fail::Smp(MGMT_ERR_EINVAL)),
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
        let slot_len = state.flash.slot(slot).len();
        // A blank slot needs no erase in either mode.
        let mut erased_to = if state.flash.is_erased(slot) { slot_len } else { 0 };
        if erased_to == 0 && !profile.erase_progressively {
            // Erase what the image will occupy and the trailer sector, as Zephyr does before
            // the first write.
            r.reply.cost += state.flash.erase(slot, 0, size);
            let ss = state.flash.sector_size();
            r.reply.cost += state.flash.erase(slot, slot_len - ss, ss);
            erased_to = slot_len;
        }
        state.upload = Some(Upload { slot, off: 0, size, sha, erased_to });
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
    let end = u.off + data.len();
    if end > u.erased_to {
        // Progressive erase: the sectors this chunk is the first to reach are erased just
        // before it is programmed, so their cost lands on this chunk's answer.
        let ss = state.flash.sector_size();
        r.reply.cost += state.flash.erase(u.slot, u.erased_to, end - u.erased_to);
        u.erased_to = (end.div_ceil(ss) * ss).min(state.flash.slot(u.slot).len());
    }
    r.reply.cost += state.flash.program(u.slot, u.off, data);
    u.off = end;
    let mut out = vec![("off", Value::Integer((u.off as u64).into()))];
    if u.off == u.size {
        let slot_len = state.flash.slot(u.slot).len();
        if u.erased_to < slot_len {
            // The image stopped short of the trailer sector, so the progressive erase never
            // reached it; a previous image's magic and flags there would decide the next boot.
            let ss = state.flash.sector_size();
            r.reply.cost += state.flash.erase(u.slot, slot_len - ss, ss);
        }
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
        return Err(Fail::Smp(MGMT_ERR_EBADSTATE));
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

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use smpflash_core::mcuboot::ImageVersion;

    use super::*;
    use crate::boot::bootloader;
    use crate::smp::request::Reply;

    /// Chunk size that does not divide the 4 KiB sector, so chunks straddle sector boundaries.
    const CHUNK: usize = 1000;

    fn profile(progressive: bool) -> Profile {
        let mut p = Profile::by_name("zephyr-default").unwrap();
        // Programming time off: every cost left in an answer is erase time.
        p.apply_override("program_ns_per_byte=0").unwrap();
        p.apply_override(&format!("erase_progressively={progressive}")).unwrap();
        p
    }

    /// An image of five and a half sectors: it ends inside a sector, well before the trailer.
    fn image() -> Vec<u8> {
        let body: Vec<u8> = (0..22_000u32).map(|i| (i * 31 + 5) as u8).collect();
        slot::build(ImageVersion { major: 2, minor: 0, revision: 0, build_num: 0 }, &body)
    }

    /// A factory device whose secondary slot is all zeros: programming cannot set a bit, so any
    /// sector the upload fails to erase corrupts the image or its trailer.
    fn dirty_device(p: &Profile) -> State {
        let mut state = State::factory(p);
        let len = state.flash.slot(1).len();
        state.flash.program(1, 0, &vec![0; len]);
        state
    }

    fn request(
        state: &mut State,
        p: &Profile,
        handler: fn(&mut State, &Profile, &mut Request<'_>) -> Handled,
        body: Vec<(&'static str, Value)>,
    ) -> (Handled, Duration) {
        let body = map(body);
        let mut reply = Reply::default();
        let out = handler(state, p, &mut Request { body: &body, reply: &mut reply });
        (out, reply.cost)
    }

    /// Sends the chunk at `off`; the first carries `len` and the image's sha, as clients do.
    fn send_chunk(state: &mut State, p: &Profile, img: &[u8], off: usize) -> (Handled, Duration) {
        let end = (off + CHUNK).min(img.len());
        let mut body = vec![
            ("off", Value::Integer((off as u64).into())),
            ("data", Value::Bytes(img[off..end].to_vec())),
        ];
        if off == 0 {
            body.push(("len", Value::Integer((img.len() as u64).into())));
            body.push(("sha", Value::Bytes(Sha256::digest(img).to_vec())));
        }
        request(state, p, upload, body)
    }

    fn answer(out: &Handled, key: &str) -> Option<Value> {
        out.as_ref().unwrap().iter().find(|(k, _)| *k == key).map(|(_, v)| v.clone())
    }

    /// Uploads `img` from `from` to the end; the cost of each answer. Checks the last answer
    /// reports a hash match.
    fn upload_from(state: &mut State, p: &Profile, img: &[u8], from: usize) -> Vec<Duration> {
        let mut costs = Vec::new();
        let mut off = from;
        let mut last = None;
        while off < img.len() {
            let (out, cost) = send_chunk(state, p, img, off);
            let next = answer(&out, "off").and_then(|v| v.as_integer()).map(|i| u64::try_from(i).unwrap());
            assert_eq!(next, Some((off + CHUNK).min(img.len()) as u64), "{out:?}");
            costs.push(cost);
            off = next.unwrap() as usize;
            last = Some(out);
        }
        assert_eq!(answer(&last.unwrap(), "match"), Some(Value::Bool(true)), "the slot holds the image");
        assert!(state.upload.is_none());
        costs
    }

    fn sectors(bytes: usize, p: &Profile) -> u32 {
        bytes.div_ceil(p.flash.sector_size) as u32
    }

    #[test]
    fn progressive_erase_charges_each_sector_to_the_chunk_that_reaches_it() {
        let p = profile(true);
        let img = image();
        let mut state = dirty_device(&p);
        let costs = upload_from(&mut state, &p, &img, 0);
        let erase = p.flash.erase_per_sector;
        assert_eq!(costs[0], erase, "the first chunk pays for its own sector, not the image's");
        let expected: Vec<Duration> = (0..costs.len())
            .map(|i| {
                let (off, end) = (i * CHUNK, ((i + 1) * CHUNK).min(img.len()));
                let trailer = u32::from(end == img.len());
                erase * (sectors(end, &p) - sectors(off, &p) + trailer)
            })
            .collect();
        assert_eq!(costs, expected);

        // The same total as erasing up front: the image's sectors and the trailer sector, once.
        let up_front = profile(false);
        let mut other = dirty_device(&up_front);
        let up_front_costs = upload_from(&mut other, &up_front, &img, 0);
        let total = erase * (sectors(img.len(), &p) + 1);
        assert_eq!(costs.iter().sum::<Duration>(), total);
        assert_eq!(up_front_costs.iter().sum::<Duration>(), total);
        assert_eq!(state.flash.slot(1), other.flash.slot(1), "both modes leave the same slot");
    }

    #[test]
    fn without_the_option_the_first_chunk_erases_everything() {
        let p = profile(false);
        let img = image();
        let mut state = dirty_device(&p);
        let costs = upload_from(&mut state, &p, &img, 0);
        assert_eq!(costs[0], p.flash.erase_per_sector * (sectors(img.len(), &p) + 1));
        assert!(costs[1..].iter().all(|c| c.is_zero()), "{costs:?}");
    }

    #[test]
    fn a_blank_slot_costs_no_erase_in_either_mode() {
        for progressive in [false, true] {
            let p = profile(progressive);
            let mut state = State::factory(&p);
            assert!(state.flash.is_erased(1));
            let costs = upload_from(&mut state, &p, &image(), 0);
            assert!(costs.iter().all(|c| c.is_zero()), "progressive {progressive}: {costs:?}");
        }
    }

    #[test]
    fn a_resumed_progressive_upload_erases_each_sector_once() {
        let p = profile(true);
        let img = image();
        let mut state = dirty_device(&p);
        let mut costs: Vec<Duration> = Vec::new();
        for i in 0..10 {
            costs.push(send_chunk(&mut state, &p, &img, i * CHUNK).1);
        }
        // The client lost track and starts over with the same sha: told where to go on.
        let (out, cost) = send_chunk(&mut state, &p, &img, 0);
        assert_eq!(answer(&out, "off"), Some(Value::Integer(((10 * CHUNK) as u64).into())));
        assert!(cost.is_zero(), "resuming erases nothing again");
        costs.extend(upload_from(&mut state, &p, &img, 10 * CHUNK));
        assert_eq!(costs.iter().sum::<Duration>(), p.flash.erase_per_sector * (sectors(img.len(), &p) + 1));
    }

    #[test]
    fn a_progressively_erased_image_tests_and_reverts_like_before() {
        let img = image();
        let hash = slot::read_info(&img).unwrap().hash;
        for progressive in [false, true] {
            let p = profile(progressive);
            let mut state = dirty_device(&p);
            let factory = info(&state, 0).unwrap().hash;
            upload_from(&mut state, &p, &img, 0);
            // A trailer sector left dirty reads as a corrupt magic, and the test is refused.
            let (out, _) = request(&mut state, &p, state_write, vec![("hash", Value::Bytes(hash.to_vec()))]);
            out.unwrap_or_else(|e| panic!("progressive {progressive}: {e:?}"));
            let (_, log, result) = bootloader::boot(&mut state.flash, &mut state.boot, &p, None);
            result.unwrap();
            assert_eq!(info(&state, 0).map(|i| i.hash), Some(hash), "progressive {progressive}: {log:?}");
            // Never confirmed: the next boot reverts to the factory image.
            bootloader::boot(&mut state.flash, &mut state.boot, &p, None).2.unwrap();
            assert_eq!(info(&state, 0).map(|i| i.hash), Some(factory), "progressive {progressive}");
        }
    }
}
