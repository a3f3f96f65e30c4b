//! The DFU rules as one pure function: from what the device is ([`DeviceFacts`]), what the
//! package holds ([`Candidate`]s) and the options, to the steps that update it — or a typed
//! refusal. No I/O: every rule is unit-tested here without a device.

use serde::Serialize;

use crate::command::os::McubootMode;
use crate::error::Error;
use crate::image_hash::ImageHash;
use crate::mcuboot::{HeaderFlags, ImageVersion, PackageImage};
use crate::progress::{BootEvidence, Note, Skip};

use super::facts::{find, DeviceFacts};
use super::verdict::{Expect, Refusal};
use super::Mode;

/// One image of the package, as the planner sees it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Candidate {
    /// Image number it goes to (0 application; 1 nRF5340 network core).
    pub image: u32,
    /// File name, for messages.
    pub name: String,
    /// The image's version.
    pub version: ImageVersion,
    /// The MCUboot image hash.
    pub hash: ImageHash,
    /// Bytes to upload.
    pub size: u64,
    /// The header carries MCUboot's `RAM_LOAD` flag: the image is built for a bootloader that
    /// copies it to RAM (`imgtool sign --load-addr`).
    pub ram_load: bool,
}

impl From<&PackageImage> for Candidate {
    fn from(p: &PackageImage) -> Self {
        Candidate {
            image: p.image_index,
            name: p.name.clone(),
            version: p.image.version(),
            hash: ImageHash::from(p.image.hash()),
            size: p.image.bytes().len() as u64,
            ram_load: p.image.header().flags.contains(HeaderFlags::RAM_LOAD),
        }
    }
}

/// Which way the update goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Route {
    /// A Zephyr application with MCUmgr: upload to the free slot, mark, reset, check.
    Application,
    /// MCUboot's serial recovery answers: uploads land in the primary slot; nothing to mark.
    SerialRecovery,
}

/// One thing the runner does, in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Confirm an image that already runs under test (an earlier DFU stopped before its
    /// confirm), and check that it took.
    ConfirmUnderTest {
        /// Image number.
        image: u32,
        /// Its hash.
        hash: ImageHash,
    },
    /// Upload candidate `candidate` to image `image` (landing in `slot`).
    Upload {
        /// Index into the candidates.
        candidate: usize,
        /// Image number.
        image: u32,
        /// The slot it lands in.
        slot: u32,
    },
    /// Read image state and check every slot holds its upload.
    VerifyUploads(Vec<Expect>),
    /// Mark an image for the next boot and check it became pending.
    Mark {
        /// The slot and hash to mark.
        expect: Expect,
        /// Permanently, or for one test boot.
        permanent: bool,
    },
    /// Reset and wait for the device to answer again.
    Reset,
    /// Read which images run, resetting again while every `marked` slot is still pending
    /// (a lost reset), and check each `expect` runs.
    VerifyRunning {
        /// Images that must run, in their slots after the boot.
        expect: Vec<Expect>,
        /// Slots marked before the reset.
        marked: Vec<Expect>,
    },
    /// Confirm the images that now run under test, and check it took.
    Confirm(Vec<Expect>),
    /// After leaving serial recovery: read which images run and check each `expect` (written
    /// into the primary slot) is the one that booted.
    VerifyBooted(Vec<Expect>),
}

/// What an update will do: decided before anything is written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plan {
    /// The marking mode.
    pub mode: Mode,
    /// Application or serial recovery.
    pub route: Route,
    /// Images left out, and why.
    pub skipped: Vec<Skip>,
    /// What the planner concluded about the boot (RAM_LOAD, direct-XIP), told before the steps.
    pub notes: Vec<Note>,
    /// When a [`Action::Mark`] is refused as unsupported (`rc 8`, `MGMT_ERR_ENOTSUP`): whether
    /// that may be taken as "this bootloader needs no marking" (then this note is told, the
    /// marks and the confirm are dropped and the check after the reset still decides), or is a
    /// failure (`None`). See [`mark_refusal_rule`].
    pub if_mark_unsupported: Option<Note>,
    /// The steps, in order.
    pub actions: Vec<Action>,
}

impl Plan {
    /// Whether the plan writes anything or resets.
    pub fn is_empty(&self) -> bool {
        self.actions.is_empty()
    }
}

/// The default mode for a package: test-and-confirm for one image; confirm-only for several
/// (the nRF5340 network core cannot revert, so testing it means nothing).
pub fn default_mode(images: usize) -> Mode {
    if images > 1 {
        Mode::ConfirmOnly
    } else {
        Mode::TestAndConfirm
    }
}

/// How this device's bootloader picks the image to boot, as far as the planner can tell.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BootChoice {
    /// Swap / overwrite: an image runs after a reset only when marked.
    Marked,
    /// Direct-XIP (with or without revert), as the device reports it: nothing to mark
    /// (the behaviour smpflash always had for these modes).
    DirectXip,
    /// MCUboot boots the newest valid image without any mark (RAM_LOAD, direct-XIP without
    /// revert); `evidence` says how that is known.
    NewestValid {
        /// Reported by the device, or inferred.
        evidence: BootEvidence,
    },
}

/// The boot rule for `facts` and `candidates`:
/// - bootloader mode 6 (RAM_LOAD) or 4 (direct-XIP without revert) reported → the newest
///   valid image boots, nothing to mark; said in a note;
/// - direct-XIP with revert reported → no marks (as before);
/// - no mode reported, the device is not known to run another bootloader, and every candidate
///   is built for RAM_LOAD (its header's `RAM_LOAD` flag) → inferred RAM_LOAD: an image built
///   for it only boots under a RAM_LOAD MCUboot, which takes no marks (Zephyr's img_mgmt
///   refuses them with `rc 8` there);
/// - otherwise marks are needed.
pub fn boot_choice(facts: &DeviceFacts, candidates: &[Candidate]) -> BootChoice {
    match facts.mode {
        Some(McubootMode::RamLoad) => BootChoice::NewestValid { evidence: BootEvidence::ReportedRamLoad },
        Some(McubootMode::DirectXip) => BootChoice::NewestValid { evidence: BootEvidence::ReportedDirectXip },
        Some(McubootMode::DirectXipWithRevert) => BootChoice::DirectXip,
        Some(McubootMode::Unknown) | None
            if mcuboot_or_unknown(facts)
                && !candidates.is_empty()
                && candidates.iter().all(|c| c.ram_load) =>
        {
            BootChoice::NewestValid { evidence: BootEvidence::RamLoadImage }
        }
        _ => BootChoice::Marked,
    }
}

fn mcuboot_or_unknown(facts: &DeviceFacts) -> bool {
    facts.bootloader.as_deref().is_none_or(|b| b == "MCUboot")
}

/// The fallback for a refused mark: a state write refused with `rc 8` (`MGMT_ERR_ENOTSUP`) by
/// an application (not the recovery bootloader) whose bootloader mode is not reported, under a
/// bootloader that is MCUboot or unknown, means the build has no marking at all — Zephyr's
/// img_mgmt refuses state writes only when built for RAM_LOAD or direct-XIP without revert,
/// where MCUboot boots the newest valid image by itself. Any other refusal stays a failure.
pub fn mark_refusal_rule(facts: &DeviceFacts) -> Option<Note> {
    let unreported = matches!(facts.mode, None | Some(McubootMode::Unknown));
    (!facts.recovery && unreported && mcuboot_or_unknown(facts))
        .then_some(Note::NewestValidBoots { evidence: BootEvidence::MarkRefused })
}

/// Whether `err` is the refusal [`mark_refusal_rule`] speaks of: `rc 8` in the SMP header
/// (`MGMT_ERR_ENOTSUP`), not a group error.
pub fn is_unsupported(err: &Error) -> bool {
    matches!(err, Error::Device(e) if e.group.is_none() && e.rc == crate::rc::MGMT_ERR_ENOTSUP)
}

/// Where an upload to `image` lands: the slot that is not running.
pub fn target_slot(facts: &DeviceFacts, image: u32) -> u32 {
    facts.active(image).map_or(1, |a| 1 - a.slot.min(1))
}

/// Parses the leading `major.minor.revision` of a version text the device reports.
pub(crate) fn parse_version(text: &str) -> Option<(u8, u8, u16)> {
    let mut parts = text.split(['.', '+']);
    let mut next = || parts.next()?.parse::<u64>().ok();
    Some((next()? as u8, next()? as u8, next()? as u16))
}

/// What the pre-flight check makes of one candidate.
enum Check {
    Go,
    AlreadyRuns { version: String },
}

/// Refuses a candidate the device cannot take; tells whether it already runs.
fn check(facts: &DeviceFacts, c: &Candidate, force: bool) -> Result<Check, Refusal> {
    let images = facts.images();
    if !images.is_empty() && !images.contains(&c.image) {
        return Err(Refusal::NoSuchImage { name: c.name.clone(), image: c.image, device_images: images });
    }
    if let Some(limit) = facts.max_image_size(c.image) {
        if c.size > limit {
            return Err(Refusal::TooLarge { name: c.name.clone(), image: c.image, size: c.size, limit });
        }
    }
    if let Some(run) = facts.active(c.image) {
        if !force && run.hash.as_ref() == Some(&c.hash) {
            return Ok(Check::AlreadyRuns { version: run.version.clone() });
        }
        if facts.no_downgrade {
            if let Some(v) = parse_version(&run.version) {
                if (c.version.major, c.version.minor, c.version.revision) < v {
                    return Err(Refusal::Downgrade {
                        name: c.name.clone(),
                        version: c.version,
                        running: run.version.clone(),
                    });
                }
            }
        }
    }
    Ok(Check::Go)
}

/// Whether `c` is what its image runs, under test: not confirmed yet, in a mode that
/// confirms (direct-XIP and the recovery bootloader have nothing to confirm).
fn runs_under_test(facts: &DeviceFacts, c: &Candidate, mode: Mode) -> bool {
    !facts.direct_xip()
        && !facts.recovery
        && matches!(mode, Mode::TestAndConfirm | Mode::ConfirmOnly)
        && facts.active(c.image).is_some_and(|r| !r.confirmed && r.hash.as_ref() == Some(&c.hash))
}

/// Decides the update: the mode, the route, what is skipped and the steps.
///
/// `mode` is the caller's choice, `None` for [`default_mode`]. With `force`, images the device
/// already runs or holds are uploaded again.
pub fn plan(
    facts: &DeviceFacts,
    candidates: &[Candidate],
    mode: Option<Mode>,
    force: bool,
) -> Result<Plan, Refusal> {
    let chosen = mode.unwrap_or(default_mode(candidates.len()));
    let mut skipped = Vec::new();
    let mut actions = Vec::new();
    let mut todo = Vec::new();
    for (i, c) in candidates.iter().enumerate() {
        match check(facts, c, force)? {
            Check::AlreadyRuns { .. } if runs_under_test(facts, c, chosen) => {
                // An earlier DFU stopped after the image started under test and before it was
                // confirmed: the next reset would revert it. Finishing that DFU means
                // confirming the image, not calling it done.
                actions.push(Action::ConfirmUnderTest { image: c.image, hash: c.hash.clone() });
                skipped.push(Skip::ConfirmedUnderTest {
                    image: c.image,
                    version: c.version,
                    name: c.name.clone(),
                });
            }
            Check::AlreadyRuns { version } => {
                skipped.push(Skip::AlreadyRunning { image: c.image, version, name: c.name.clone() })
            }
            Check::Go => todo.push(i),
        }
    }
    let route = if facts.recovery { Route::SerialRecovery } else { Route::Application };
    if todo.is_empty() {
        return Ok(Plan { mode: chosen, route, skipped, notes: vec![], if_mark_unsupported: None, actions });
    }

    if facts.recovery {
        // The bootloader writes uploads straight into the primary slot; a reset then boots
        // whatever MCUboot validates there.
        let expect: Vec<Expect> = todo
            .iter()
            .map(|&i| Expect { image: candidates[i].image, slot: 0, hash: candidates[i].hash.clone() })
            .collect();
        actions.extend(todo.iter().map(|&i| Action::Upload {
            candidate: i,
            image: candidates[i].image,
            slot: 0,
        }));
        actions.push(Action::VerifyUploads(expect.clone()));
        if mode != Some(Mode::UploadOnly) {
            // Leaving recovery boots the application; every update ends by checking what runs.
            actions.push(Action::Reset);
            actions.push(Action::VerifyBooted(expect));
        }
        return Ok(Plan {
            mode: mode.unwrap_or(Mode::UploadOnly),
            route: Route::SerialRecovery,
            skipped,
            notes: vec![],
            if_mark_unsupported: None,
            actions,
        });
    }

    let expect: Vec<Expect> = todo
        .iter()
        .map(|&i| {
            let c = &candidates[i];
            Expect { image: c.image, slot: target_slot(facts, c.image), hash: c.hash.clone() }
        })
        .collect();
    for (&i, e) in todo.iter().zip(&expect) {
        let c = &candidates[i];
        let already = find(&facts.state, e.image, e.slot).and_then(|s| s.hash.as_ref()) == Some(&c.hash);
        if already && !force {
            skipped.push(Skip::AlreadyInSlot {
                image: e.image,
                slot: e.slot,
                version: c.version,
                name: c.name.clone(),
            });
        } else {
            actions.push(Action::Upload { candidate: i, image: e.image, slot: e.slot });
        }
    }
    actions.push(Action::VerifyUploads(expect.clone()));
    if chosen == Mode::UploadOnly {
        return Ok(Plan { mode: chosen, route, skipped, notes: vec![], if_mark_unsupported: None, actions });
    }

    let choice = boot_choice(
        facts,
        &candidates
            .iter()
            .enumerate()
            .filter(|(i, _)| todo.contains(i))
            .map(|(_, c)| c.clone())
            .collect::<Vec<_>>(),
    );
    let mut notes = Vec::new();
    if let BootChoice::NewestValid { evidence } = choice {
        notes.push(Note::NewestValidBoots { evidence });
    }
    let xip = choice != BootChoice::Marked;
    let mut marked = Vec::new();
    if !xip {
        // The network core (image 1) first: it cannot revert, so it must never be left
        // marked after the application failed to mark.
        let mut order = expect.clone();
        order.sort_by_key(|e| std::cmp::Reverse(e.image));
        let permanent = chosen == Mode::ConfirmOnly || facts.mode == Some(McubootMode::OverwriteOnly);
        for e in order {
            actions.push(Action::Mark { expect: e.clone(), permanent });
            marked.push(e);
        }
    }
    actions.push(Action::Reset);
    // After the boot the new image runs from the primary slot (swap, overwrite) or, under
    // direct-XIP, from the slot it was written to; the check is by hash, whichever slot.
    actions.push(Action::VerifyRunning { expect: expect.clone(), marked });
    if chosen == Mode::TestAndConfirm && !xip {
        actions.push(Action::Confirm(expect));
    }
    let if_mark_unsupported = if xip { None } else { mark_refusal_rule(facts) };
    Ok(Plan { mode: chosen, route, skipped, notes, if_mark_unsupported, actions })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::command::image::{SlotInfoImage, SlotInfoResponse, SlotInfoSlot, SlotState};
    use crate::upload::Limits;

    fn h(b: u8) -> ImageHash {
        ImageHash::from(vec![b; 32])
    }

    fn v(major: u8, minor: u8, revision: u16) -> ImageVersion {
        ImageVersion { major, minor, revision, build_num: 0 }
    }

    fn slot(image: u32, slot: u32, hash: u8, version: &str, flags: &str) -> SlotState {
        SlotState {
            image,
            slot,
            version: version.into(),
            hash: Some(h(hash)),
            bootable: true,
            pending: flags.contains('p'),
            confirmed: flags.contains('c'),
            active: flags.contains('a'),
            permanent: false,
        }
    }

    /// A Zephyr application running 1.0.0 (hash 1) on image 0, confirmed, with params.
    fn app() -> DeviceFacts {
        DeviceFacts {
            state: vec![slot(0, 0, 1, "1.0.0", "ac")],
            limits: Limits { buf_size: 2475, buf_count: 4, reported: true },
            bootloader: Some("MCUboot".into()),
            mode: Some(McubootMode::SwapUsingScratch),
            no_downgrade: false,
            slots: None,
            recovery: false,
        }
    }

    fn candidate(image: u32, hash: u8, version: ImageVersion) -> Candidate {
        Candidate {
            image,
            name: format!("image{image}.bin"),
            version,
            hash: h(hash),
            size: 4096,
            ram_load: false,
        }
    }

    fn uploads(p: &Plan) -> Vec<(u32, u32)> {
        p.actions
            .iter()
            .filter_map(
                |a| if let Action::Upload { image, slot, .. } = a { Some((*image, *slot)) } else { None },
            )
            .collect()
    }

    fn marks(p: &Plan) -> Vec<(u32, bool)> {
        p.actions
            .iter()
            .filter_map(|a| {
                if let Action::Mark { expect, permanent } = a {
                    Some((expect.image, *permanent))
                } else {
                    None
                }
            })
            .collect()
    }

    fn has(p: &Plan, f: impl Fn(&Action) -> bool) -> bool {
        p.actions.iter().any(f)
    }

    #[test]
    fn single_image_tests_resets_checks_and_confirms() {
        let p = plan(&app(), &[candidate(0, 2, v(1, 1, 0))], None, false).unwrap();
        assert_eq!((p.mode, p.route), (Mode::TestAndConfirm, Route::Application));
        let e = Expect { image: 0, slot: 1, hash: h(2) };
        assert_eq!(
            p.actions,
            vec![
                Action::Upload { candidate: 0, image: 0, slot: 1 },
                Action::VerifyUploads(vec![e.clone()]),
                Action::Mark { expect: e.clone(), permanent: false },
                Action::Reset,
                Action::VerifyRunning { expect: vec![e.clone()], marked: vec![e.clone()] },
                Action::Confirm(vec![e]),
            ]
        );
    }

    #[test]
    fn multi_image_marks_network_core_first_and_permanently() {
        let mut f = app();
        f.state.push(slot(1, 0, 9, "1.0.0", "ac"));
        let p = plan(&f, &[candidate(0, 2, v(1, 1, 0)), candidate(1, 3, v(1, 1, 0))], None, false).unwrap();
        assert_eq!(p.mode, Mode::ConfirmOnly);
        assert_eq!(uploads(&p), [(0, 1), (1, 1)]);
        assert_eq!(marks(&p), [(1, true), (0, true)], "network core first");
        assert!(!has(&p, |a| matches!(a, Action::Confirm(_))), "confirm-only has nothing left to confirm");
    }

    #[test]
    fn test_only_and_upload_only_stop_early() {
        let c = [candidate(0, 2, v(1, 1, 0))];
        let p = plan(&app(), &c, Some(Mode::TestOnly), false).unwrap();
        assert_eq!(marks(&p), [(0, false)]);
        assert!(has(&p, |a| *a == Action::Reset) && !has(&p, |a| matches!(a, Action::Confirm(_))));
        let p = plan(&app(), &c, Some(Mode::UploadOnly), false).unwrap();
        assert!(matches!(p.actions.last(), Some(Action::VerifyUploads(_))), "{:?}", p.actions);
        assert!(marks(&p).is_empty() && !has(&p, |a| *a == Action::Reset));
    }

    #[test]
    fn direct_xip_neither_marks_nor_confirms() {
        let mut f = app();
        f.mode = Some(McubootMode::DirectXip);
        let p = plan(&f, &[candidate(0, 2, v(1, 1, 0))], None, false).unwrap();
        assert!(marks(&p).is_empty());
        assert!(has(&p, |a| *a == Action::Reset));
        assert!(has(&p, |a| matches!(a, Action::VerifyRunning { marked, .. } if marked.is_empty())));
        assert!(!has(&p, |a| matches!(a, Action::Confirm(_))));
    }

    #[test]
    fn overwrite_only_marks_permanently_even_in_test_mode() {
        let mut f = app();
        f.mode = Some(McubootMode::OverwriteOnly);
        let p = plan(&f, &[candidate(0, 2, v(1, 1, 0))], None, false).unwrap();
        assert_eq!(marks(&p), [(0, true)]);
    }

    #[test]
    fn serial_recovery_writes_the_primary_slot_and_resets() {
        let f = DeviceFacts {
            bootloader: None,
            mode: None,
            recovery: true,
            limits: Limits { buf_size: 384, buf_count: 1, reported: false },
            state: vec![slot(0, 0, 1, "1.0.0", "")],
            ..app()
        };
        let p = plan(&f, &[candidate(0, 2, v(1, 1, 0))], None, false).unwrap();
        assert_eq!((p.route, p.mode), (Route::SerialRecovery, Mode::UploadOnly));
        let e = Expect { image: 0, slot: 0, hash: h(2) };
        assert_eq!(
            p.actions,
            vec![
                Action::Upload { candidate: 0, image: 0, slot: 0 },
                Action::VerifyUploads(vec![e.clone()]),
                Action::Reset,
                Action::VerifyBooted(vec![e])
            ]
        );
        let p = plan(&f, &[candidate(0, 2, v(1, 1, 0))], Some(Mode::UploadOnly), false).unwrap();
        assert!(!has(&p, |a| *a == Action::Reset));
    }

    fn no_marks(p: &Plan) -> bool {
        marks(p).is_empty()
            && !has(p, |a| matches!(a, Action::Confirm(_)))
            && has(p, |a| *a == Action::Reset)
            && has(p, |a| matches!(a, Action::VerifyRunning { marked, .. } if marked.is_empty()))
    }

    fn ram_load(hash: u8, version: ImageVersion) -> Candidate {
        Candidate { ram_load: true, ..candidate(0, hash, version) }
    }

    /// An mps2-an385 fixture: MCUboot RAM_LOAD, no bootloader info, no mode.
    fn silent_mcuboot() -> DeviceFacts {
        DeviceFacts { bootloader: None, mode: None, ..app() }
    }

    #[test]
    fn reported_ram_load_uploads_resets_and_checks_without_marks() {
        let mut f = app();
        f.mode = Some(McubootMode::RamLoad);
        let p = plan(&f, &[candidate(0, 2, v(1, 1, 0))], None, false).unwrap();
        assert!(no_marks(&p), "{:?}", p.actions);
        assert_eq!(p.notes, [Note::NewestValidBoots { evidence: BootEvidence::ReportedRamLoad }]);
        assert!(p.notes[0].to_string().contains("nothing to mark"));
        assert_eq!(p.if_mark_unsupported, None, "no marks to be refused");
    }

    #[test]
    fn reported_direct_xip_without_revert_says_so() {
        let mut f = app();
        f.mode = Some(McubootMode::DirectXip);
        let p = plan(&f, &[candidate(0, 2, v(1, 1, 0))], None, false).unwrap();
        assert!(no_marks(&p));
        assert_eq!(p.notes, [Note::NewestValidBoots { evidence: BootEvidence::ReportedDirectXip }]);
        f.mode = Some(McubootMode::DirectXipWithRevert);
        let p = plan(&f, &[candidate(0, 2, v(1, 1, 0))], None, false).unwrap();
        assert!(no_marks(&p) && p.notes.is_empty(), "with revert: as before");
    }

    #[test]
    fn ram_load_is_inferred_from_a_ram_load_image_when_the_mode_is_not_reported() {
        let p = plan(&silent_mcuboot(), &[ram_load(2, v(1, 0, 0))], None, false).unwrap();
        assert!(no_marks(&p), "{:?}", p.actions);
        assert_eq!(p.notes, [Note::NewestValidBoots { evidence: BootEvidence::RamLoadImage }]);
        assert!(p.notes[0].to_string().contains("inferred RAM_LOAD"));
        // A reported swap mode wins over the image's flag.
        let p = plan(&app(), &[ram_load(2, v(1, 0, 0))], None, false).unwrap();
        assert_eq!(marks(&p), [(0, false)]);
        // Another bootloader: no inference.
        let other = DeviceFacts { bootloader: Some("other".into()), ..silent_mcuboot() };
        assert_eq!(marks(&plan(&other, &[ram_load(2, v(1, 0, 0))], None, false).unwrap()), [(0, false)]);
        // An image not built for RAM_LOAD: marks as usual, with the refusal fallback.
        let p = plan(&silent_mcuboot(), &[candidate(0, 2, v(1, 0, 0))], None, false).unwrap();
        assert_eq!(marks(&p), [(0, false)]);
        assert!(p.notes.is_empty());
    }

    #[test]
    fn a_mark_refused_as_unsupported_means_no_marks_only_where_that_is_plausible() {
        let c = [candidate(0, 2, v(1, 1, 0))];
        let want = Some(Note::NewestValidBoots { evidence: BootEvidence::MarkRefused });
        // Mode not reported, MCUboot or unknown bootloader, an application: the fallback holds.
        assert_eq!(plan(&silent_mcuboot(), &c, None, false).unwrap().if_mark_unsupported, want);
        let mcuboot_no_mode = DeviceFacts { mode: None, ..app() };
        assert_eq!(mark_refusal_rule(&mcuboot_no_mode), want);
        // A reported swap mode marks for real: a refusal is a failure.
        assert_eq!(plan(&app(), &c, None, false).unwrap().if_mark_unsupported, None);
        // Another bootloader, or the recovery bootloader itself: no.
        assert_eq!(
            mark_refusal_rule(&DeviceFacts { bootloader: Some("other".into()), ..silent_mcuboot() }),
            None
        );
        assert_eq!(mark_refusal_rule(&DeviceFacts { recovery: true, ..silent_mcuboot() }), None);
        // Only rc 8 in the header counts.
        let dev = |rc, group| {
            Error::Device(crate::error::DeviceError { rc, group, reason: None, request_group: 1 })
        };
        assert!(is_unsupported(&dev(8, None)));
        assert!(!is_unsupported(&dev(8, Some(1))), "a group error is another thing");
        assert!(!is_unsupported(&dev(3, None)));
    }

    #[test]
    fn recovery_that_reports_params_is_still_recovery_and_ends_checking_what_boots() {
        let f = DeviceFacts {
            bootloader: None,
            mode: None,
            recovery: true,
            limits: Limits { buf_size: 1024, buf_count: 1, reported: true },
            state: vec![slot(0, 0, 1, "0.0.0", "")],
            ..app()
        };
        let p = plan(&f, &[ram_load(2, v(1, 0, 0))], None, false).unwrap();
        assert_eq!(p.route, Route::SerialRecovery);
        assert_eq!(uploads(&p), [(0, 0)]);
        assert!(
            matches!(p.actions.last(), Some(Action::VerifyBooted(e)) if e[0].slot == 0 && e[0].hash == h(2))
        );
        assert!(marks(&p).is_empty() && p.notes.is_empty() && p.if_mark_unsupported.is_none());
    }

    #[test]
    fn an_image_that_already_runs_is_skipped_unless_forced() {
        let c = [candidate(0, 1, v(1, 0, 0))];
        let p = plan(&app(), &c, None, false).unwrap();
        assert!(p.is_empty());
        assert_eq!(
            p.skipped,
            [Skip::AlreadyRunning { image: 0, version: "1.0.0".into(), name: "image0.bin".into() }]
        );
        assert!(p.skipped[0].to_string().contains("already runs 1.0.0"));
        let forced = plan(&app(), &c, None, true).unwrap();
        assert_eq!(uploads(&forced), [(0, 1)]);
    }

    #[test]
    fn an_image_already_in_the_free_slot_is_not_uploaded_again_but_still_applied() {
        let mut f = app();
        f.state.push(slot(0, 1, 2, "1.1.0", ""));
        let p = plan(&f, &[candidate(0, 2, v(1, 1, 0))], None, false).unwrap();
        assert!(uploads(&p).is_empty());
        assert!(matches!(&p.skipped[..], [Skip::AlreadyInSlot { image: 0, slot: 1, .. }]));
        assert!(p.skipped[0].to_string().contains("already holds"));
        assert_eq!(marks(&p), [(0, false)], "it is still marked, reset and checked");
        assert_eq!(uploads(&plan(&f, &[candidate(0, 2, v(1, 1, 0))], None, true).unwrap()), [(0, 1)]);
    }

    #[test]
    fn an_image_running_under_test_is_confirmed_not_uploaded() {
        let mut f = app();
        f.state = vec![slot(0, 0, 2, "1.1.0", "a"), slot(0, 1, 1, "1.0.0", "c")];
        let p = plan(&f, &[candidate(0, 2, v(1, 1, 0))], None, false).unwrap();
        assert_eq!(p.actions, [Action::ConfirmUnderTest { image: 0, hash: h(2) }]);
        assert!(p.skipped[0].to_string().contains("under test; confirmed it"));
        // test-only leaves confirming to the application; direct-XIP has nothing to confirm
        assert!(plan(&f, &[candidate(0, 2, v(1, 1, 0))], Some(Mode::TestOnly), false).unwrap().is_empty());
        f.mode = Some(McubootMode::DirectXip);
        assert!(plan(&f, &[candidate(0, 2, v(1, 1, 0))], None, false).unwrap().is_empty());
    }

    #[test]
    fn running_from_the_secondary_slot_uploads_to_the_primary() {
        let mut f = app();
        f.mode = Some(McubootMode::DirectXip);
        f.state = vec![slot(0, 0, 5, "0.9.0", ""), slot(0, 1, 1, "1.0.0", "ac")];
        assert_eq!(uploads(&plan(&f, &[candidate(0, 2, v(1, 1, 0))], None, false).unwrap()), [(0, 0)]);
    }

    #[test]
    fn a_downgrade_is_refused_when_the_bootloader_refuses_them() {
        let mut f = app();
        f.no_downgrade = true;
        f.state = vec![slot(0, 0, 1, "1.2.3.4", "ac")];
        let e = plan(&f, &[candidate(0, 2, v(1, 1, 0))], None, false).unwrap_err();
        assert!(matches!(&e, Refusal::Downgrade { running, .. } if running == "1.2.3.4"), "{e:?}");
        assert!(
            e.to_string().contains("older than the running 1.2.3.4")
                && e.to_string().contains("refuses downgrades")
        );
        assert!(plan(&f, &[candidate(0, 2, v(1, 3, 0))], None, false).is_ok(), "an upgrade passes");
        f.no_downgrade = false;
        assert!(plan(&f, &[candidate(0, 2, v(1, 1, 0))], None, false).is_ok(), "downgrades allowed");
    }

    #[test]
    fn an_image_too_large_for_the_slot_is_refused() {
        let mut f = app();
        let info = |max| SlotInfoResponse {
            images: vec![SlotInfoImage {
                image: 0,
                slots: vec![SlotInfoSlot { slot: 0, size: 0x1000, upload_image_id: None }],
                max_image_size: max,
            }],
        };
        f.slots = Some(info(None));
        let mut big = candidate(0, 2, v(1, 1, 0));
        big.size = 0x1001;
        let e = plan(&f, std::slice::from_ref(&big), None, false).unwrap_err();
        assert_eq!(e, Refusal::TooLarge { name: "image0.bin".into(), image: 0, size: 0x1001, limit: 0x1000 });
        assert!(e.to_string().contains("takes at most 4096 bytes"));
        f.slots = Some(info(Some(0x800)));
        assert!(matches!(
            plan(&f, std::slice::from_ref(&big), None, false),
            Err(Refusal::TooLarge { limit: 0x800, .. })
        ));
        big.size = 0x1000;
        f.slots = Some(info(None));
        assert!(plan(&f, &[big], None, false).is_ok(), "exactly the slot size fits");
    }

    #[test]
    fn a_wrong_image_number_is_refused_with_the_nrf53_hint() {
        let e = plan(&app(), &[candidate(1, 2, v(1, 1, 0))], None, false).unwrap_err();
        assert!(matches!(&e, Refusal::NoSuchImage { image: 1, device_images, .. } if device_images == &[0]));
        assert!(e.to_string().contains("is for image 1, but the device has image(s) [0]"));
        assert!(e.to_string().contains("network core"));
    }

    #[test]
    fn a_refusal_of_any_image_refuses_the_whole_package() {
        let mut f = app();
        f.state.push(slot(1, 0, 9, "1.0.0", "ac"));
        let e = plan(&f, &[candidate(0, 2, v(1, 1, 0)), candidate(2, 3, v(1, 1, 0))], None, false);
        assert!(matches!(e, Err(Refusal::NoSuchImage { image: 2, .. })));
    }
}
