//! The DFU rules as one pure function: from what the device is ([`DeviceFacts`]), what the
//! package holds ([`Candidate`]s) and the options, to the steps that update it — or a typed
//! refusal. No I/O: every rule is unit-tested here without a device.

use serde::Serialize;

use crate::command::os::McubootMode;
use crate::image_hash::ImageHash;
use crate::mcuboot::{ImageVersion, PackageImage};
use crate::progress::Skip;

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
}

impl From<&PackageImage> for Candidate {
    fn from(p: &PackageImage) -> Self {
        Candidate {
            image: p.image_index,
            name: p.name.clone(),
            version: p.image.version(),
            hash: ImageHash::from(p.image.hash()),
            size: p.image.bytes().len() as u64,
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

/// Where an upload to `image` lands: the slot that is not running.
pub fn target_slot(facts: &DeviceFacts, image: u32) -> u32 {
    facts.active(image).map_or(1, |a| 1 - a.slot.min(1))
}

/// Parses the leading `major.minor.revision` of a version text the device reports.
fn parse_version(text: &str) -> Option<(u8, u8, u16)> {
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
    if todo.is_empty() {
        return Ok(Plan { mode: chosen, route: Route::Application, skipped, actions });
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
        actions.push(Action::VerifyUploads(expect));
        if mode != Some(Mode::UploadOnly) {
            actions.push(Action::Reset);
        }
        return Ok(Plan {
            mode: mode.unwrap_or(Mode::UploadOnly),
            route: Route::SerialRecovery,
            skipped,
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
        return Ok(Plan { mode: chosen, route: Route::Application, skipped, actions });
    }

    let xip = facts.direct_xip();
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
    Ok(Plan { mode: chosen, route: Route::Application, skipped, actions })
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
        Candidate { image, name: format!("image{image}.bin"), version, hash: h(hash), size: 4096 }
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
                Action::VerifyUploads(vec![e]),
                Action::Reset
            ]
        );
        let p = plan(&f, &[candidate(0, 2, v(1, 1, 0))], Some(Mode::UploadOnly), false).unwrap();
        assert!(!has(&p, |a| *a == Action::Reset));
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
