//! What the image state means: per image, where its update stands and what the next reset will
//! do, as typed [`Situation`]s whose `Display` is one sentence.
//!
//! The flags are read the way Zephyr's img_mgmt reports them (`img_mgmt_state_read`): the
//! running slot is `active`, and `confirmed` unless the next boot reverts it; the other slot is
//! `pending` for a test swap, `pending` and `permanent` for a permanent one, `confirmed` when the
//! next boot reverts to it, and carries no flags otherwise. A slot with no valid image is not
//! listed at all. Combinations Zephyr never reports are [`Situation::Unusual`], said as they are.
//!
//! ```
//! use smpflash_core::command::image::SlotState;
//! use smpflash_core::status::statuses;
//!
//! let running = SlotState {
//!     slot: 0, version: "1.0.0".into(), bootable: true, confirmed: true, active: true,
//!     ..Default::default()
//! };
//! let s = statuses(&[running], None, false, &[]);
//! assert_eq!(
//!     s[0].to_string(),
//!     "image 0 runs 1.0.0, confirmed; slot 1 is empty — nothing has been uploaded"
//! );
//! ```

use std::fmt;

use serde::Serialize;

use crate::command::image::SlotState;
use crate::command::os::McubootMode;
use crate::dfu::plan::parse_version;
use crate::ImageHash;

/// An image in a slot, as a status names it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SlotImage {
    /// Slot number within the image (0 primary, 1 secondary).
    pub slot: u32,
    /// Version text as the device reports it.
    pub version: String,
    /// MCUboot image hash.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hash: Option<ImageHash>,
    /// Whether its header lets MCUboot boot it (`IMAGE_F_NON_BOOTABLE` clear).
    pub bootable: bool,
}

impl SlotImage {
    fn of(s: &SlotState) -> Self {
        SlotImage { slot: s.slot, version: s.version.clone(), hash: s.hash.clone(), bootable: s.bootable }
    }

    /// A hash prefix to give `smpflash image test/confirm` (it takes unambiguous prefixes).
    fn hash_arg(&self) -> String {
        self.hash.as_ref().map_or_else(|| "<hash>".into(), |h| h.short(4))
    }

    fn not_bootable(&self) -> &'static str {
        if self.bootable {
            ""
        } else {
            ", but its header marks it not bootable (a split-image part): MCUboot will not boot it"
        }
    }
}

/// How the bootloader picks the image to run, as far as it matters for the next reset.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum NewestRule {
    /// Direct-XIP without revert: the valid slot with the highest version runs.
    DirectXip,
    /// RAM load: the valid image with the highest version is copied to RAM and runs.
    RamLoad,
}

impl fmt::Display for NewestRule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            NewestRule::DirectXip => "direct-XIP",
            NewestRule::RamLoad => "RAM load",
        })
    }
}

/// Where one image's update stands.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "situation", rename_all = "snake_case")]
pub enum Situation {
    /// Only the running image is there.
    NothingUploaded {
        /// The running image.
        running: SlotImage,
        /// Its `image_ok` is set.
        confirmed: bool,
        /// The empty slot's number.
        empty_slot: u32,
    },
    /// The other slot holds an image nobody marked: a reset changes nothing (in the swap and
    /// overwrite modes; a device that does not report its mode may run one that boots the
    /// newest image).
    Unmarked {
        /// The running image.
        running: SlotImage,
        /// The image in the other slot.
        other: SlotImage,
        /// The device reported MCUboot's mode (bootloader info); without it the advice holds
        /// for the swap and overwrite modes only, and the sentence says so.
        mode_reported: bool,
    },
    /// The other slot holds the running image itself (same hash), unmarked.
    SameImageInBothSlots {
        /// The running image.
        running: SlotImage,
        /// The other slot.
        other: SlotImage,
    },
    /// The other slot's image is marked for test: the next reset boots it once.
    TestPending {
        /// The running image.
        running: SlotImage,
        /// The image marked for test.
        candidate: SlotImage,
        /// Whether the bootloader can go back (not in overwrite-only mode).
        can_revert: bool,
    },
    /// The other slot's image is marked permanent: the next reset boots it for good.
    PermanentPending {
        /// The running image.
        running: SlotImage,
        /// The image marked permanent.
        candidate: SlotImage,
    },
    /// The running image is on test and not confirmed: the next reset reverts.
    Testing {
        /// The running image.
        running: SlotImage,
        /// The image the next reset goes back to, if the device lists it.
        fallback: Option<SlotImage>,
    },
    /// Direct-XIP or RAM load: the newest valid image runs, marks or not.
    NewestBoots {
        /// The bootloader's rule.
        rule: NewestRule,
        /// The running image.
        running: SlotImage,
        /// The image in the other slot.
        other: SlotImage,
        /// Whether the other slot's image is newer, so the next reset runs it.
        other_is_newer: bool,
    },
    /// MCUboot runs single-slot: updates go through its serial recovery.
    SingleSlot {
        /// The running image.
        running: SlotImage,
    },
    /// The device answers as MCUboot's serial recovery: uploads go into the primary slot and a
    /// reset boots what is there.
    Recovery {
        /// What the bootloader lists.
        slots: Vec<SlotImage>,
    },
    /// Images are listed, but none as running (a second core's image on some builds).
    NoneRunning {
        /// What is listed.
        slots: Vec<SlotImage>,
    },
    /// The device has this image number but lists no slot of it with a valid image.
    NoImage,
    /// Flags Zephyr never reports together; said as they are.
    Unusual {
        /// The slots with their flags.
        slots: Vec<SlotState>,
    },
}

/// One image's status.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ImageStatus {
    /// The image number.
    pub image: u32,
    /// Where its update stands.
    #[serde(flatten)]
    pub situation: Situation,
}

/// The status of every image: from the image state, MCUboot's mode when the device reports it,
/// whether it answers as the serial-recovery bootloader, and the image numbers it has (from
/// slot info; empty: those in the state).
pub fn statuses(
    state: &[SlotState],
    mode: Option<McubootMode>,
    recovery: bool,
    device_images: &[u32],
) -> Vec<ImageStatus> {
    let mut images: Vec<u32> = device_images.to_vec();
    images.extend(state.iter().map(|s| s.image));
    images.sort_unstable();
    images.dedup();
    images
        .into_iter()
        .map(|image| {
            let slots: Vec<&SlotState> = state.iter().filter(|s| s.image == image).collect();
            ImageStatus { image, situation: situation(&slots, mode, recovery) }
        })
        .collect()
}

/// The situation of one image's slots.
pub fn situation(slots: &[&SlotState], mode: Option<McubootMode>, recovery: bool) -> Situation {
    let listed = || slots.iter().map(|s| SlotImage::of(s)).collect::<Vec<_>>();
    if slots.is_empty() {
        return Situation::NoImage;
    }
    if recovery {
        return Situation::Recovery { slots: listed() };
    }
    let unusual = || Situation::Unusual { slots: slots.iter().map(|s| (*s).clone()).collect() };
    let actives: Vec<&&SlotState> = slots.iter().filter(|s| s.active).collect();
    let a = match actives.as_slice() {
        [] => return Situation::NoneRunning { slots: listed() },
        [one] => **one,
        _ => return unusual(),
    };
    let others: Vec<&&SlotState> = slots.iter().filter(|s| !s.active).collect();
    let running = SlotImage::of(a);
    // The running slot is never pending or permanent; only one other slot exists.
    if a.pending || a.permanent || others.len() > 1 {
        return unusual();
    }
    let rule = match mode {
        Some(McubootMode::DirectXip) => Some(NewestRule::DirectXip),
        Some(McubootMode::RamLoad) => Some(NewestRule::RamLoad),
        _ => None,
    };
    let Some(o) = others.first().map(|o| **o) else {
        if mode == Some(McubootMode::SingleSlot) {
            return Situation::SingleSlot { running };
        }
        // Without revert, `confirmed` means nothing (Zephyr's direct-XIP listing leaves it out).
        if !a.confirmed && rule.is_none() {
            return Situation::Testing { running, fallback: None };
        }
        let empty_slot = 1 - a.slot.min(1);
        return Situation::NothingUploaded { running, confirmed: a.confirmed, empty_slot };
    };
    let other = SlotImage::of(o);
    if let Some(rule) = rule {
        // Zephyr flags the other slot pending+permanent exactly when it is newer; under RAM
        // load the flags say nothing, so the versions decide.
        let newer = match (
            crate::dfu::plan::parse_version(&o.version),
            crate::dfu::plan::parse_version(&a.version),
        ) {
            (Some(ov), Some(av)) => ov > av,
            _ => o.pending,
        };
        return Situation::NewestBoots { rule, running, other, other_is_newer: newer && o.bootable };
    }
    match (a.confirmed, o.pending, o.permanent, o.confirmed) {
        // The next boot reverts to the other slot.
        (false, false, false, _) => Situation::Testing { running, fallback: Some(other) },
        (true, true, true, false) => Situation::PermanentPending { running, candidate: other },
        (true, true, false, false) => Situation::TestPending {
            running,
            candidate: other,
            can_revert: mode != Some(McubootMode::OverwriteOnly),
        },
        (true, false, false, false) if o.hash.is_some() && o.hash == a.hash => {
            Situation::SameImageInBothSlots { running, other }
        }
        (true, false, false, false) => Situation::Unmarked { running, other, mode_reported: mode.is_some() },
        // Permanent without pending, a pending test under a running test, both slots
        // confirmed: Zephyr reports none of these.
        _ => unusual(),
    }
}

/// A slot with no image in it, as `image list` points out.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct EmptySlot {
    /// The image number.
    pub image: u32,
    /// The empty slot.
    pub slot: u32,
}

/// The slots of a two-slot image that the image state leaves out: img_mgmt lists only slots
/// holding a valid image, so an image with one slot listed has the other empty.
pub fn empty_slots(state: &[SlotState]) -> Vec<EmptySlot> {
    let mut images: Vec<u32> = state.iter().map(|s| s.image).collect();
    images.sort_unstable();
    images.dedup();
    images
        .into_iter()
        .filter_map(|image| match state.iter().filter(|s| s.image == image).collect::<Vec<_>>()[..] {
            [only] if only.slot <= 1 => Some(EmptySlot { image, slot: 1 - only.slot }),
            _ => None,
        })
        .collect()
}

fn flag_list(s: &SlotState) -> String {
    let flags: Vec<&str> = [
        (s.active, "active"),
        (s.confirmed, "confirmed"),
        (s.pending, "pending"),
        (s.permanent, "permanent"),
        (!s.bootable, "not bootable"),
    ]
    .into_iter()
    .filter_map(|(on, name)| on.then_some(name))
    .collect();
    if flags.is_empty() {
        "no flags".into()
    } else {
        flags.join(", ")
    }
}

impl fmt::Display for ImageStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let image = self.image;
        match &self.situation {
            Situation::NothingUploaded { running, empty_slot, confirmed } => write!(
                f,
                "image {image} runs {}{}; slot {empty_slot} is empty — nothing has been uploaded",
                running.version,
                if *confirmed { ", confirmed" } else { "" }
            ),
            Situation::Unmarked { running, other, mode_reported } => {
                let older = matches!(
                    (parse_version(&other.version), parse_version(&running.version)),
                    (Some(o), Some(r)) if o < r
                );
                let same = if other.version == running.version {
                    " too (another build)"
                } else if older {
                    ", older than the running image"
                } else {
                    ""
                };
                write!(
                    f,
                    "image {image} runs {}, confirmed; slot {} holds {}{same}, not marked{}",
                    running.version,
                    other.slot,
                    other.version,
                    other.not_bootable()
                )?;
                // After an update the old image stays behind: marking it would be a downgrade,
                // not the next step.
                if older && other.bootable {
                    f.write_str(": a reset changes nothing")?;
                } else if other.bootable {
                    write!(
                        f,
                        ": a reset changes nothing — mark it with `smpflash image test {}`",
                        other.hash_arg()
                    )?;
                    // Devices without bootloader info (Zephyr's default) do not say their mode;
                    // under direct-XIP or RAM load the newest image boots unmarked, and the
                    // application refuses marks (`rc 8`), so the advice above would be wrong.
                    if !mode_reported {
                        f.write_str(
                            " (so in MCUboot's swap and overwrite modes; the device does not report its \
                             mode, and under direct-XIP or RAM load the next reset runs the newest valid \
                             image without a mark)",
                        )?;
                    }
                }
                Ok(())
            }
            Situation::SameImageInBothSlots { running, other } => write!(
                f,
                "image {image} runs {}, confirmed; slot {} holds the same image (same hash): a reset \
                 changes nothing, and there is nothing new to test",
                running.version, other.slot
            ),
            Situation::TestPending { running, candidate, can_revert } => {
                write!(
                    f,
                    "image {image} runs {}; {} in slot {} is marked",
                    running.version, candidate.version, candidate.slot
                )?;
                if !candidate.bootable {
                    f.write_str(candidate.not_bootable())
                } else if *can_revert {
                    write!(
                        f,
                        " for test: the next reset boots it once, and the reset after reverts to {} \
                         unless it is confirmed — after the reset, `smpflash image confirm`",
                        running.version
                    )
                } else {
                    write!(
                        f,
                        " for test, but MCUboot runs overwrite-only and cannot revert: the next reset \
                         copies it over {} for good",
                        running.version
                    )
                }
            }
            Situation::PermanentPending { running, candidate } => {
                write!(
                    f,
                    "image {image} runs {}; {} in slot {} is marked",
                    running.version, candidate.version, candidate.slot
                )?;
                if candidate.bootable {
                    f.write_str(" permanent: the next reset boots it and keeps it")
                } else {
                    f.write_str(candidate.not_bootable())
                }
            }
            Situation::Testing { running, fallback: Some(fallback) } => write!(
                f,
                "image {image} runs {} under test (not confirmed): the next reset reverts to {} \
                 unless you confirm it — `smpflash image confirm`",
                running.version, fallback.version
            ),
            Situation::Testing { running, fallback: None } => write!(
                f,
                "image {image} runs {}, not confirmed, and no other image is listed: if MCUboot \
                 tests it, the next reset reverts — `smpflash image confirm` keeps it",
                running.version
            ),
            Situation::NewestBoots { rule, running, other, other_is_newer: true } => write!(
                f,
                "image {image} runs {} from slot {}; slot {} holds {}, newer: {rule} boots the newest \
                 valid image, so the next reset runs it — nothing to mark",
                running.version, running.slot, other.slot, other.version
            ),
            Situation::NewestBoots { rule, running, other, other_is_newer: false } => write!(
                f,
                "image {image} runs {} from slot {}; slot {} holds {}{}, not newer: {rule} boots the \
                 newest valid image, so the next reset runs {} again",
                running.version,
                running.slot,
                other.slot,
                other.version,
                other.not_bootable(),
                running.version
            ),
            Situation::SingleSlot { running } => write!(
                f,
                "image {image} runs {}; MCUboot runs single-slot: there is no second slot, updates \
                 go through its serial recovery (`smpflash dfu --recovery`)",
                running.version
            ),
            Situation::Recovery { slots } => {
                write!(f, "image {image}: the device answers as MCUboot's serial recovery; ")?;
                let held: Vec<String> =
                    slots.iter().map(|s| format!("slot {} holds {}", s.slot, s.version)).collect();
                write!(
                    f,
                    "{}: uploads go into the primary slot, and a reset boots what is there",
                    held.join(", ")
                )
            }
            Situation::NoneRunning { slots } => {
                let held: Vec<String> =
                    slots.iter().map(|s| format!("slot {} holds {}", s.slot, s.version)).collect();
                write!(f, "image {image} is not listed as running; {}", held.join(", "))
            }
            Situation::NoImage => write!(f, "image {image}: no slot holds a valid image"),
            Situation::Unusual { slots } => {
                let said: Vec<String> = slots
                    .iter()
                    .map(|s| format!("slot {} holds {} ({})", s.slot, s.version, flag_list(s)))
                    .collect();
                write!(
                    f,
                    "image {image}: {} — flags Zephyr does not report together; read them with \
                     `smpflash image list`",
                    said.join(", ")
                )
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn slot(slot: u32, version: &str, hash: u8) -> SlotState {
        SlotState {
            image: 0,
            slot,
            version: version.into(),
            hash: Some(ImageHash::from(vec![hash; 32])),
            bootable: true,
            ..Default::default()
        }
    }

    fn running() -> SlotState {
        SlotState { confirmed: true, active: true, ..slot(0, "1.0.0", 0xaa) }
    }

    fn one(state: &[SlotState], mode: Option<McubootMode>) -> ImageStatus {
        let mut s = statuses(state, mode, false, &[]);
        assert_eq!(s.len(), 1);
        s.remove(0)
    }

    #[test]
    fn the_sentences_of_a_test_and_confirm_update() {
        let fresh = one(&[running()], None);
        assert_eq!(
            fresh.to_string(),
            "image 0 runs 1.0.0, confirmed; slot 1 is empty — nothing has been uploaded"
        );
        let uploaded = one(&[running(), slot(1, "2.0.0", 0xbb)], Some(McubootMode::SwapUsingScratch));
        assert!(matches!(uploaded.situation, Situation::Unmarked { mode_reported: true, .. }));
        assert_eq!(
            uploaded.to_string(),
            "image 0 runs 1.0.0, confirmed; slot 1 holds 2.0.0, not marked: a reset changes nothing — \
             mark it with `smpflash image test bbbbbbbb`"
        );
        // Zephyr's default build answers no bootloader info: the advice says for which modes
        // it holds (the mps2 fixtures run RAM load, and the newer image boots unmarked there).
        let unknown = one(&[running(), slot(1, "2.0.0", 0xbb)], None);
        assert_eq!(
            unknown.to_string(),
            "image 0 runs 1.0.0, confirmed; slot 1 holds 2.0.0, not marked: a reset changes nothing — \
             mark it with `smpflash image test bbbbbbbb` (so in MCUboot's swap and overwrite modes; \
             the device does not report its mode, and under direct-XIP or RAM load the next reset \
             runs the newest valid image without a mark)"
        );
        let tested = one(&[running(), SlotState { pending: true, ..slot(1, "2.0.0", 0xbb) }], None);
        assert_eq!(
            tested.to_string(),
            "image 0 runs 1.0.0; 2.0.0 in slot 1 is marked for test: the next reset boots it once, \
             and the reset after reverts to 1.0.0 unless it is confirmed — after the reset, \
             `smpflash image confirm`"
        );
        let on_test = one(
            &[
                SlotState { active: true, ..slot(0, "2.0.0", 0xbb) },
                SlotState { confirmed: true, ..slot(1, "1.0.0", 0xaa) },
            ],
            None,
        );
        assert_eq!(
            on_test.to_string(),
            "image 0 runs 2.0.0 under test (not confirmed): the next reset reverts to 1.0.0 unless \
             you confirm it — `smpflash image confirm`"
        );
        let confirmed = one(
            &[SlotState { active: true, confirmed: true, ..slot(0, "2.0.0", 0xbb) }, slot(1, "1.0.0", 0xaa)],
            None,
        );
        assert!(matches!(confirmed.situation, Situation::Unmarked { .. }));
        assert_eq!(
            confirmed.to_string(),
            "image 0 runs 2.0.0, confirmed; slot 1 holds 1.0.0, older than the running image, not \
             marked: a reset changes nothing"
        );
        let permanent =
            one(&[running(), SlotState { pending: true, permanent: true, ..slot(1, "2.0.0", 0xbb) }], None);
        assert_eq!(
            permanent.to_string(),
            "image 0 runs 1.0.0; 2.0.0 in slot 1 is marked permanent: the next reset boots it and keeps it"
        );
    }

    /// Every combination of the other slot's flags (and the running slot's confirmed flag) maps
    /// to one situation, Zephyr's combinations to their own and the rest to `Unusual`.
    #[test]
    fn every_flag_combination_of_a_two_slot_image() {
        let mut seen = std::collections::BTreeMap::new();
        for bits in 0..32u8 {
            let bit = |n: u8| bits & (1 << n) != 0;
            let a = SlotState { active: true, confirmed: bit(0), ..slot(0, "1.0.0", 0xaa) };
            let o = SlotState {
                pending: bit(1),
                permanent: bit(2),
                confirmed: bit(3),
                bootable: !bit(4),
                ..slot(1, "2.0.0", 0xbb)
            };
            let s = one(&[a.clone(), o.clone()], None);
            let kind = match &s.situation {
                Situation::Unmarked { .. } => "unmarked",
                Situation::TestPending { .. } => "test",
                Situation::PermanentPending { .. } => "permanent",
                Situation::Testing { .. } => "testing",
                Situation::Unusual { .. } => "unusual",
                other => panic!("{bits:05b}: {other:?}"),
            };
            let expected = match (a.confirmed, o.pending, o.permanent, o.confirmed) {
                (true, false, false, false) => "unmarked",
                (true, true, false, false) => "test",
                (true, true, true, false) => "permanent",
                (false, false, false, _) => "testing",
                _ => "unusual",
            };
            assert_eq!(kind, expected, "{bits:05b}");
            let text = s.to_string();
            assert!(text.starts_with("image 0"), "{text}");
            if !o.bootable && matches!(kind, "unmarked" | "test" | "permanent") {
                assert!(text.contains("not bootable"), "{bits:05b}: {text}");
                assert!(!text.contains("smpflash image test"), "no advice to mark what cannot boot");
            }
            *seen.entry(kind).or_insert(0) += 1;
        }
        assert_eq!(seen.len(), 5, "{seen:?}");
        // A running slot flagged pending or permanent, or two running slots: unusual.
        for bad in [SlotState { pending: true, ..running() }, SlotState { permanent: true, ..running() }] {
            assert!(matches!(one(&[bad], None).situation, Situation::Unusual { .. }));
        }
        let two = [running(), SlotState { active: true, ..slot(1, "2.0.0", 0xbb) }];
        let s = one(&two, None);
        assert!(matches!(s.situation, Situation::Unusual { .. }));
        assert_eq!(
            s.to_string(),
            "image 0: slot 0 holds 1.0.0 (active, confirmed), slot 1 holds 2.0.0 (active) — flags \
             Zephyr does not report together; read them with `smpflash image list`"
        );
    }

    #[test]
    fn a_single_running_slot() {
        let unconfirmed = one(&[SlotState { confirmed: false, ..running() }], None);
        assert_eq!(
            unconfirmed.situation,
            Situation::Testing { running: SlotImage::of(&running()), fallback: None }
        );
        assert!(unconfirmed.to_string().contains("not confirmed, and no other image is listed"));
        let single = one(&[running()], Some(McubootMode::SingleSlot));
        assert!(single.to_string().contains("`smpflash dfu --recovery`"));
        // direct-XIP from slot 1: the empty slot is 0
        let from_1 = one(&[SlotState { slot: 1, ..running() }], Some(McubootMode::DirectXip));
        assert!(from_1.to_string().ends_with("slot 0 is empty — nothing has been uploaded"));
        // Zephyr's direct-XIP listing has no confirmed flag: nothing reverts there.
        let xip = one(&[SlotState { confirmed: false, ..running() }], Some(McubootMode::DirectXip));
        assert_eq!(xip.to_string(), "image 0 runs 1.0.0; slot 1 is empty — nothing has been uploaded");
    }

    #[test]
    fn same_image_or_version_in_both_slots() {
        let same = one(&[running(), slot(1, "1.0.0", 0xaa)], None);
        assert!(matches!(same.situation, Situation::SameImageInBothSlots { .. }));
        assert!(same.to_string().contains("holds the same image (same hash)"));
        let rebuilt = one(&[running(), slot(1, "1.0.0", 0xcc)], None);
        assert!(rebuilt.to_string().contains("slot 1 holds 1.0.0 too (another build), not marked"));
    }

    #[test]
    fn overwrite_only_cannot_revert() {
        let s = one(
            &[running(), SlotState { pending: true, ..slot(1, "2.0.0", 0xbb) }],
            Some(McubootMode::OverwriteOnly),
        );
        assert_eq!(
            s.to_string(),
            "image 0 runs 1.0.0; 2.0.0 in slot 1 is marked for test, but MCUboot runs overwrite-only \
             and cannot revert: the next reset copies it over 1.0.0 for good"
        );
    }

    #[test]
    fn newest_image_modes_need_no_marks() {
        // Zephyr's direct-XIP listing: the newer other slot is pending and permanent.
        let newer = SlotState { pending: true, permanent: true, ..slot(1, "2.0.0", 0xbb) };
        let s = one(&[running(), newer], Some(McubootMode::DirectXip));
        assert_eq!(
            s.to_string(),
            "image 0 runs 1.0.0 from slot 0; slot 1 holds 2.0.0, newer: direct-XIP boots the newest \
             valid image, so the next reset runs it — nothing to mark"
        );
        // RAM load: the flags say nothing; the versions decide.
        let s = one(&[running(), slot(1, "2.0.0", 0xbb)], Some(McubootMode::RamLoad));
        assert!(matches!(
            s.situation,
            Situation::NewestBoots { rule: NewestRule::RamLoad, other_is_newer: true, .. }
        ));
        let s = one(&[running(), slot(1, "0.9.0", 0xbb)], Some(McubootMode::RamLoad));
        assert!(s.to_string().ends_with(
            "not newer: RAM load boots the newest valid image, so the next reset runs 1.0.0 again"
        ));
        // direct-XIP with revert keeps test and confirm
        let s = one(
            &[running(), SlotState { pending: true, ..slot(1, "2.0.0", 0xbb) }],
            Some(McubootMode::DirectXipWithRevert),
        );
        assert!(matches!(s.situation, Situation::TestPending { can_revert: true, .. }));
    }

    #[test]
    fn recovery_no_running_slot_and_missing_images() {
        let listed = SlotState { active: false, confirmed: false, ..running() };
        let s = statuses(std::slice::from_ref(&listed), None, true, &[]);
        assert_eq!(
            s[0].to_string(),
            "image 0: the device answers as MCUboot's serial recovery; slot 0 holds 1.0.0: uploads go \
             into the primary slot, and a reset boots what is there"
        );
        let s = statuses(&[listed], None, false, &[0, 1]);
        assert_eq!(s[0].to_string(), "image 0 is not listed as running; slot 0 holds 1.0.0");
        assert_eq!(s[1], ImageStatus { image: 1, situation: Situation::NoImage });
        assert_eq!(s[1].to_string(), "image 1: no slot holds a valid image");
        assert!(statuses(&[], None, false, &[]).is_empty());
    }

    #[test]
    fn empty_slots_are_the_ones_not_listed() {
        let net = SlotState { image: 1, ..running() };
        let uploaded = slot(1, "2.0.0", 0xbb);
        assert_eq!(empty_slots(&[running(), uploaded.clone(), net]), [EmptySlot { image: 1, slot: 1 }]);
        assert_eq!(empty_slots(&[SlotState { slot: 1, ..running() }]), [EmptySlot { image: 0, slot: 0 }]);
        assert!(empty_slots(&[running(), uploaded]).is_empty());
        assert!(empty_slots(&[]).is_empty());
    }

    #[test]
    fn images_are_told_apart() {
        let net = SlotState { image: 1, ..running() };
        let s = statuses(
            &[running(), net, SlotState { image: 1, pending: true, ..slot(1, "2.0.0", 0xbb) }],
            None,
            false,
            &[],
        );
        assert!(matches!(s[0].situation, Situation::NothingUploaded { .. }));
        assert!(matches!(s[1].situation, Situation::TestPending { .. }));
        assert!(s[1].to_string().starts_with("image 1 runs 1.0.0; 2.0.0 in slot 1 is marked for test"));
        let json = serde_json::to_value(&s[1]).unwrap();
        assert_eq!((json["image"].as_u64(), json["situation"].as_str()), (Some(1), Some("test_pending")));
        assert_eq!(json["candidate"]["hash"], "bb".repeat(32));
    }
}
