//! How an update ends when it does not succeed: refused before anything was written, or not
//! applied after it was. Each cause is typed; `Display` gives the sentence the user reads.
//!
//! The checks of the device's state after each phase are pure functions here, so the rules
//! ("the slot holds the upload", "the new image runs") are tested without a device.

use std::fmt;

use serde::Serialize;

use crate::command::image::SlotState;
use crate::image_hash::ImageHash;
use crate::mcuboot::ImageVersion;

use super::facts::{active, find};

/// An update that did not happen, or did not take.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DfuError {
    /// A pre-flight check refused the update before anything was written.
    #[error("refusing to update: {0}")]
    Refused(#[from] Refusal),
    /// The device did not end up running (or holding) the new image.
    #[error("the update was not applied: {0}")]
    NotApplied(#[from] NotApplied),
}

/// Why the planner refused a package for this device. Serializes with its cause under
/// `"refusal"` (`no_such_image`, …) and its fields, for front ends that hand it on as data.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, Serialize)]
#[serde(tag = "refusal", rename_all = "snake_case")]
#[non_exhaustive]
pub enum Refusal {
    /// The package image is for an image number the device does not have.
    #[error("{name} is for image {image}, but the device has image(s) {device_images:?}{}", nrf53_hint(*image))]
    NoSuchImage {
        /// File name.
        name: String,
        /// Image number of the file.
        image: u32,
        /// Image numbers the device has.
        device_images: Vec<u32>,
    },
    /// The image does not fit the device's slot.
    #[error("{name} is {size} bytes but image {image} takes at most {limit} bytes")]
    TooLarge {
        /// File name.
        name: String,
        /// Image number.
        image: u32,
        /// Bytes in the file's image.
        size: u64,
        /// Most bytes the device takes.
        limit: u64,
    },
    /// The bootloader refuses downgrades and the image is older than the running one.
    #[error("{name} is version {version}, older than the running {running}, and the bootloader refuses downgrades")]
    Downgrade {
        /// File name.
        name: String,
        /// The file's version.
        version: ImageVersion,
        /// The running version as the device reports it.
        running: String,
    },
}

fn nrf53_hint(image: u32) -> &'static str {
    if image == 1 {
        " (image 1 is the nRF5340 network core; is this an nRF53 multi-image build?)"
    } else {
        ""
    }
}

/// Why the device did not end up with the new image. Serializes with its cause under
/// `"verdict"` (`rejected_at_boot`, …) and its fields (hashes as hex).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, Serialize)]
#[serde(tag = "verdict", rename_all = "snake_case")]
#[non_exhaustive]
pub enum NotApplied {
    /// After the upload the slot does not hold what was sent.
    #[error("after the upload, image {image} slot {slot} holds {} instead of {expected} — the device did not keep the upload", or_nothing(found))]
    UploadNotKept {
        /// Image number.
        image: u32,
        /// Slot that should hold the upload.
        slot: u32,
        /// What it holds.
        found: Option<ImageHash>,
        /// What was sent.
        expected: ImageHash,
    },
    /// Marking the image did not make it pending.
    #[error("image {image} slot {slot} is not pending after marking it; the device refused to schedule it")]
    NotPending {
        /// Image number.
        image: u32,
        /// Slot that was marked.
        slot: u32,
    },
    /// The device did not answer again after the reset.
    #[error("the device did not come back within {seconds} s of the reset")]
    DidNotComeBack {
        /// How long we waited.
        seconds: u64,
    },
    /// The new image is gone after the reset: MCUboot rejected it.
    #[error(
        "image {image} still runs {}, and the new image is gone: MCUboot rejected it at boot and \
         erased it. Usual causes: the image is not signed with the key this bootloader expects \
         (or signed when it expects no signature), it was built for another slot or core, or a \
         downgrade was refused",
        running_text(running)
    )]
    RejectedAtBoot {
        /// Image number.
        image: u32,
        /// Version running now.
        running: Option<String>,
    },
    /// The new image is still pending: the device reset without MCUboot swapping.
    #[error(
        "image {image} still runs {}; the new image is still pending in slot {slot}: the device \
         reset without running MCUboot's swap (was it really reset?)",
        running_text(running)
    )]
    StillPending {
        /// Image number.
        image: u32,
        /// Version running now.
        running: Option<String>,
        /// Slot holding the new image.
        slot: u32,
    },
    /// The new image is on the device but does not run.
    #[error(
        "image {image} runs {}; the new image sits in slot {slot} but is not active: it ran and was \
         reverted (it was not confirmed in time), or it was never marked for the next boot",
        running_text(running)
    )]
    NotActive {
        /// Image number.
        image: u32,
        /// Version running now.
        running: Option<String>,
        /// Slot holding the new image.
        slot: u32,
    },
    /// An update through serial recovery was written and verified, but does not run after the
    /// reset.
    #[error("{0}")]
    NotBootedAfterRecovery(RecoveryNotBooted),
    /// `dfu --recovery`: after the reset with boot mode 1 the device answers as its application,
    /// not as the recovery bootloader.
    #[error(
        "the device did not enter serial recovery after a reset with boot mode 1: it answers as its \
         application (is CONFIG_MCUMGR_GRP_OS_RESET_BOOT_MODE and MCUboot's boot-mode entry built in?)"
    )]
    DidNotEnterRecovery,
    /// Confirming the running image did not take.
    #[error(
        "image {image} runs the new version but did not become confirmed; it will revert at the next reset"
    )]
    NotConfirmed {
        /// Image number.
        image: u32,
    },
}

/// Why an update through serial recovery did not boot. Serializes with its cause under
/// `"reason"`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, Serialize)]
#[serde(tag = "reason", rename_all = "snake_case")]
#[non_exhaustive]
pub enum RecoveryNotBooted {
    /// The device still answers as the recovery bootloader after the reset, and its primary
    /// slot no longer holds the upload.
    #[error("the device is still in serial recovery after the reset and its primary slot does not hold the upload")]
    StillInRecovery,
    /// Another image runs than the one written into the primary slot.
    #[error(
        "after leaving serial recovery image {image} runs {}, not the image written to its primary slot \
         ({expected}): the bootloader booted another — the other slot holds a higher version \
         (RAM_LOAD and direct-XIP boot the highest valid one), or the new image is not valid for \
         it (key, load address, slot) — or the primary slot was rewritten at the reset (a \
         debugger or an emulator reloading its images, as QEMU's loader does)",
        running_text(running)
    )]
    OtherImageRuns {
        /// Image number.
        image: u32,
        /// Version running now.
        running: Option<String>,
        /// What was written.
        expected: ImageHash,
    },
}

fn or_nothing(h: &Option<ImageHash>) -> String {
    h.as_ref().map_or("nothing".into(), ImageHash::to_string)
}

fn running_text(r: &Option<String>) -> String {
    r.as_ref().map_or("nothing".into(), |v| format!("version {v}"))
}

/// One image expected in one slot.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Expect {
    /// Image number.
    pub image: u32,
    /// Slot.
    pub slot: u32,
    /// The hash that slot must hold.
    pub hash: ImageHash,
}

impl fmt::Display for Expect {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "image {} slot {} = {}", self.image, self.slot, self.hash)
    }
}

fn holds(s: Option<&SlotState>, hash: &ImageHash) -> bool {
    s.and_then(|s| s.hash.as_ref()) == Some(hash)
}

/// After the uploads: each expected slot holds its image.
pub fn check_uploaded(state: &[SlotState], expect: &[Expect]) -> Result<(), NotApplied> {
    for e in expect {
        let slot = find(state, e.image, e.slot);
        if !holds(slot, &e.hash) {
            return Err(NotApplied::UploadNotKept {
                image: e.image,
                slot: e.slot,
                found: slot.and_then(|s| s.hash.clone()),
                expected: e.hash.clone(),
            });
        }
    }
    Ok(())
}

/// After marking: the marked slot is pending.
pub fn check_marked(state: &[SlotState], e: &Expect) -> Result<(), NotApplied> {
    if find(state, e.image, e.slot).is_some_and(|s| s.pending) {
        Ok(())
    } else {
        Err(NotApplied::NotPending { image: e.image, slot: e.slot })
    }
}

/// A lost reset request leaves every marked image still pending: the device never rebooted.
/// Only then is resetting again safe — after a real reboot a second reset would revert an
/// image under test.
pub fn never_reset(state: &[SlotState], marked: &[Expect]) -> bool {
    !marked.is_empty() && marked.iter().all(|e| find(state, e.image, e.slot).is_some_and(|s| s.pending))
}

/// After the reset: each image runs its new hash; otherwise why not.
pub fn check_running(state: &[SlotState], expect: &[Expect]) -> Result<(), NotApplied> {
    for e in expect {
        if !holds(active(state, e.image), &e.hash) {
            return Err(diagnose(state, e.image, &e.hash));
        }
    }
    Ok(())
}

/// What the check after leaving serial recovery found, when it passed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Booted {
    /// The application answers and runs each new image.
    Runs,
    /// The bootloader still answers (no slot is listed active: boot_serial lists no flags),
    /// and each primary slot holds its upload: nothing runs that could be checked.
    StillInRecovery,
}

/// After leaving serial recovery: when the application answers (some slot active), each image
/// must run what was written into its primary slot (by hash, whichever slot RAM_LOAD lists it
/// in); when the bootloader still answers, each primary slot must still hold its upload.
pub fn check_booted(state: &[SlotState], expect: &[Expect]) -> Result<Booted, NotApplied> {
    if !state.iter().any(|s| s.active) {
        return match check_uploaded(state, expect) {
            Ok(()) => Ok(Booted::StillInRecovery),
            Err(_) => Err(NotApplied::NotBootedAfterRecovery(RecoveryNotBooted::StillInRecovery)),
        };
    }
    for e in expect {
        if !holds(active(state, e.image), &e.hash) {
            return Err(NotApplied::NotBootedAfterRecovery(RecoveryNotBooted::OtherImageRuns {
                image: e.image,
                running: active(state, e.image).map(|r| r.version.clone()),
                expected: e.hash.clone(),
            }));
        }
    }
    Ok(Booted::Runs)
}

/// After confirming: the running image is confirmed.
pub fn check_confirmed(state: &[SlotState], image: u32) -> Result<(), NotApplied> {
    if active(state, image).is_some_and(|s| s.confirmed) {
        Ok(())
    } else {
        Err(NotApplied::NotConfirmed { image })
    }
}

/// Why the new image is not running, from the state after the reset.
pub fn diagnose(state: &[SlotState], image: u32, hash: &ImageHash) -> NotApplied {
    let holder = state.iter().find(|s| s.image == image && s.hash.as_ref() == Some(hash));
    let running = active(state, image).map(|r| r.version.clone());
    match holder {
        None => NotApplied::RejectedAtBoot { image, running },
        Some(s) if s.pending => NotApplied::StillPending { image, running, slot: s.slot },
        Some(s) => NotApplied::NotActive { image, running, slot: s.slot },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn verdicts_and_refusals_serialize_as_tagged_data() {
        let v = NotApplied::NotBootedAfterRecovery(RecoveryNotBooted::OtherImageRuns {
            image: 0,
            running: Some("1.0.0".into()),
            expected: ImageHash::from(vec![0xab; 2]),
        });
        assert_eq!(
            serde_json::to_value(&v).unwrap(),
            serde_json::json!({"verdict": "not_booted_after_recovery", "reason": "other_image_runs",
                "image": 0, "running": "1.0.0", "expected": "abab"})
        );
        assert_eq!(
            serde_json::to_value(NotApplied::DidNotComeBack { seconds: 3 }).unwrap(),
            serde_json::json!({"verdict": "did_not_come_back", "seconds": 3})
        );
        let r = Refusal::TooLarge { name: "a.bin".into(), image: 1, size: 10, limit: 5 };
        assert_eq!(serde_json::to_value(&r).unwrap()["refusal"], "too_large");
    }

    fn slot(image: u32, slot: u32, hash: u8, f: &str) -> SlotState {
        SlotState {
            image,
            slot,
            version: format!("1.{hash}.0"),
            hash: Some(ImageHash::from(vec![hash; 32])),
            bootable: true,
            pending: f.contains('p'),
            confirmed: f.contains('c'),
            active: f.contains('a'),
            permanent: false,
        }
    }

    fn h(b: u8) -> ImageHash {
        ImageHash::from(vec![b; 32])
    }

    #[test]
    fn diagnosis_names_rejected_pending_and_reverted_images() {
        let state = [slot(0, 0, 1, "ac")];
        assert_eq!(
            diagnose(&state, 0, &h(2)),
            NotApplied::RejectedAtBoot { image: 0, running: Some("1.1.0".into()) }
        );
        let state = [slot(0, 0, 1, "ac"), slot(0, 1, 2, "p")];
        assert_eq!(
            diagnose(&state, 0, &h(2)),
            NotApplied::StillPending { image: 0, running: Some("1.1.0".into()), slot: 1 }
        );
        let state = [slot(0, 0, 1, "ac"), slot(0, 1, 2, "")];
        let d = diagnose(&state, 0, &h(2));
        assert_eq!(d, NotApplied::NotActive { image: 0, running: Some("1.1.0".into()), slot: 1 });
        assert!(d.to_string().contains("it ran and was reverted"), "{d}");
        assert!(diagnose(&[], 0, &h(2)).to_string().contains("still runs nothing"));
    }

    #[test]
    fn after_recovery_the_written_image_must_run() {
        let e = Expect { image: 0, slot: 0, hash: h(2) };
        // Booted into the new image (RAM_LOAD lists it in whichever slot; checked by hash).
        assert_eq!(check_booted(&[slot(0, 0, 2, "ac")], std::slice::from_ref(&e)), Ok(Booted::Runs));
        // Still the bootloader (boot_serial lists no flags): the primary slot must hold it.
        assert_eq!(check_booted(&[slot(0, 0, 2, "")], std::slice::from_ref(&e)), Ok(Booted::StillInRecovery));
        assert_eq!(
            check_booted(&[slot(0, 0, 1, "")], std::slice::from_ref(&e)),
            Err(NotApplied::NotBootedAfterRecovery(RecoveryNotBooted::StillInRecovery))
        );
        // Another image runs (QEMU's loader put the factory image back).
        let err = check_booted(&[slot(0, 0, 1, "ac"), slot(0, 1, 3, "")], &[e]).unwrap_err();
        assert!(matches!(
            &err,
            NotApplied::NotBootedAfterRecovery(RecoveryNotBooted::OtherImageRuns { running: Some(v), .. }) if v == "1.1.0"
        ));
        assert!(err.to_string().contains("not the image written to its primary slot"), "{err}");
    }

    #[test]
    fn checks_read_the_state() {
        let e = Expect { image: 0, slot: 1, hash: h(2) };
        let state = [slot(0, 0, 1, "ac"), slot(0, 1, 2, "p")];
        assert_eq!(check_uploaded(&state, std::slice::from_ref(&e)), Ok(()));
        assert_eq!(check_marked(&state, &e), Ok(()));
        assert!(never_reset(&state, std::slice::from_ref(&e)));
        assert!(!never_reset(&state, &[]), "nothing marked: nothing to tell a lost reset by");
        let wrong = Expect { hash: h(3), ..e.clone() };
        match check_uploaded(&state, &[wrong]) {
            Err(NotApplied::UploadNotKept { found: Some(f), .. }) => assert_eq!(f, h(2)),
            other => panic!("{other:?}"),
        }
        let unmarked = [slot(0, 0, 1, "ac"), slot(0, 1, 2, "")];
        assert_eq!(check_marked(&unmarked, &e), Err(NotApplied::NotPending { image: 0, slot: 1 }));
        let swapped = [slot(0, 0, 2, "a"), slot(0, 1, 1, "c")];
        assert_eq!(check_running(&swapped, &[Expect { slot: 0, ..e.clone() }]), Ok(()));
        assert_eq!(check_confirmed(&swapped, 0), Err(NotApplied::NotConfirmed { image: 0 }));
        assert_eq!(check_confirmed(&state, 0), Ok(()));
        let missing = [slot(0, 0, 1, "ac")];
        let err = check_uploaded(&missing, &[e]).unwrap_err();
        assert!(err.to_string().contains("holds nothing instead of"), "{err}");
    }
}
