//! The DFU flow: inspect the device, check the files against it, upload, verify, mark, reset,
//! verify again, confirm — and when the new image does not run, say why.

use std::time::{Duration, Instant};

use serde::Serialize;
use serde_bytes::ByteBuf;

use crate::command::image::{ImageStateRead, ImageStateWrite, SlotInfo, SlotInfoResponse, SlotState};
use crate::command::os::{BootloaderInfo, BootloaderMode, Echo, McubootMode, Reset};
use crate::error::{Error, Result};
use crate::mcuboot::{Package, PackageImage};
use crate::progress::{Event, Progress};
use crate::session::Session;
use crate::upload::{self, Limits, UploadOptions, UploadReport};

/// How the new images are marked.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Mode {
    /// Mark for test, reset, check the new image runs, then confirm it (single image default).
    TestAndConfirm,
    /// Mark permanent before the reset (nRF5340 multi-image default: the network core cannot
    /// revert, so testing it means nothing).
    ConfirmOnly,
    /// Mark for test and reset; leave confirming to the application.
    TestOnly,
    /// Upload and verify; do not mark or reset.
    UploadOnly,
}

impl std::str::FromStr for Mode {
    type Err = String;
    fn from_str(s: &str) -> std::result::Result<Self, String> {
        Ok(match s {
            "test-and-confirm" => Mode::TestAndConfirm,
            "confirm-only" => Mode::ConfirmOnly,
            "test-only" => Mode::TestOnly,
            "upload-only" => Mode::UploadOnly,
            other => {
                return Err(format!(
                    "unknown mode {other:?}: test-and-confirm, confirm-only, test-only or upload-only"
                ))
            }
        })
    }
}

/// Options of a DFU.
#[derive(Debug, Clone)]
pub struct DfuOptions {
    /// Marking mode; `None` picks by the package (see [`Mode`]).
    pub mode: Option<Mode>,
    /// Upload settings (window, chunk, timeouts). Its `image` is ignored: each package image
    /// carries its own.
    pub upload: UploadOptions,
    /// Upload even when the device already runs or holds the image.
    pub force: bool,
    /// How long to wait for the device to come back after a reset (MCUboot may be swapping).
    pub boot_timeout: Duration,
}

impl Default for DfuOptions {
    fn default() -> Self {
        DfuOptions {
            mode: None,
            upload: UploadOptions::default(),
            force: false,
            boot_timeout: Duration::from_secs(120),
        }
    }
}

/// What a DFU did.
#[derive(Debug, Clone, Serialize)]
pub struct DfuReport {
    /// The mode used.
    pub mode: Mode,
    /// Image state before.
    pub before: Vec<SlotState>,
    /// Image state at the end.
    pub after: Vec<SlotState>,
    /// One report per uploaded image.
    pub uploads: Vec<UploadReport>,
    /// Images skipped, and why.
    pub skipped: Vec<String>,
    /// Whether the device was reset.
    pub reset: bool,
    /// Total wall time, seconds.
    pub seconds: f64,
}

struct Device {
    state: Vec<SlotState>,
    /// The bootloader itself answers (MCUboot serial recovery): uploads go to the primary slot
    /// and there is nothing to mark.
    recovery: bool,
    limits: Limits,
    mode: Option<McubootMode>,
    no_downgrade: bool,
    slots: Option<SlotInfoResponse>,
}

fn step(progress: &dyn Progress, what: &str) {
    progress.event(&Event::Step { what: what.into() });
}

fn optional<T>(r: Result<T>) -> Result<Option<T>> {
    match r {
        Ok(v) => Ok(Some(v)),
        Err(Error::Device(_)) => Ok(None),
        Err(e) => Err(e),
    }
}

async fn inspect(session: &Session) -> Result<Device> {
    let c = session.client();
    let read = c.request_idempotent(&ImageStateRead {}).await?;
    let state = read.images;
    let limits = Limits::query(c).await?;
    let bootloader = optional(c.request_idempotent(&BootloaderInfo {}).await)?;
    let (mode, no_downgrade) = match &bootloader {
        Some(b) if b.bootloader == "MCUboot" => {
            match optional(c.request_idempotent(&BootloaderMode::default()).await)? {
                Some(m) => (Some(m.mode()), m.no_downgrade),
                None => (None, false),
            }
        }
        _ => (None, false),
    };
    let slots = optional(c.request_idempotent(&SlotInfo {}).await)?;
    // MCUboot's boot_serial lists images without Zephyr's `splitStatus` and implements neither
    // the parameters, bootloader-info nor OS-info commands; a Zephyr application with MCUmgr
    // answers at least one of them, or sends `splitStatus`.
    let recovery = read.split_status.is_none()
        && !limits.reported
        && bootloader.is_none()
        && optional(c.request_idempotent(&crate::command::os::AppInfo::default()).await)?.is_none();
    Ok(Device { state, recovery, limits, mode, no_downgrade, slots })
}

fn find(state: &[SlotState], image: u32, slot: u32) -> Option<&SlotState> {
    state.iter().find(|s| s.image == image && s.slot == slot)
}

fn active(state: &[SlotState], image: u32) -> Option<&SlotState> {
    state.iter().find(|s| s.image == image && s.active)
}

fn hex(h: &[u8]) -> String {
    h.iter().map(|b| format!("{b:02x}")).collect()
}

/// Checks a package image against the device; `Ok(Some(why))` means skip it.
fn check(dev: &Device, img: &PackageImage, force: bool) -> Result<Option<String>> {
    let index = img.image_index;
    let images: Vec<u32> = match &dev.slots {
        Some(s) => s.images.iter().map(|i| i.image).collect(),
        None => {
            let mut v: Vec<u32> = dev.state.iter().map(|s| s.image).collect();
            v.dedup();
            v
        }
    };
    if !images.is_empty() && !images.contains(&index) {
        return Err(Error::DfuRefused(format!(
            "{} is for image {index}, but the device has image(s) {images:?}{}",
            img.name,
            if index == 1 {
                " (image 1 is the nRF5340 network core; is this an nRF53 multi-image build?)"
            } else {
                ""
            }
        )));
    }
    if let Some(info) = dev.slots.as_ref().and_then(|s| s.images.iter().find(|i| i.image == index)) {
        let limit = info.max_image_size.or_else(|| info.slots.iter().map(|s| s.size).max());
        if let Some(limit) = limit {
            if img.image.bytes().len() as u64 > limit {
                return Err(Error::DfuRefused(format!(
                    "{} is {} bytes but image {index} takes at most {limit} bytes",
                    img.name,
                    img.image.bytes().len()
                )));
            }
        }
    }
    let hash = img.image.hash();
    let running = active(&dev.state, index);
    if let Some(run) = running {
        if !force && run.hash.as_deref().map(|h| &h[..]) == Some(hash) {
            return Ok(Some(format!(
                "image {index} already runs {} ({}), nothing to do",
                run.version, img.name
            )));
        }
        if dev.no_downgrade {
            if let Ok(v) = parse_version(&run.version) {
                let new = img.image.version();
                if (new.major, new.minor, new.revision) < v {
                    return Err(Error::DfuRefused(format!(
                        "{} is version {new}, older than the running {}, and the bootloader refuses downgrades",
                        img.name, run.version
                    )));
                }
            }
        }
    }
    Ok(None)
}

fn parse_version(text: &str) -> std::result::Result<(u8, u8, u16), ()> {
    let mut parts = text.split(['.', '+']);
    let mut next = || parts.next().ok_or(())?.parse::<u64>().map_err(|_| ());
    Ok((next()? as u8, next()? as u8, next()? as u16))
}

/// Where an upload to `image` lands: the slot that is not running.
fn target_slot(state: &[SlotState], image: u32) -> u32 {
    active(state, image).map_or(1, |a| 1 - a.slot.min(1))
}

/// Runs a whole DFU of `package`.
pub async fn dfu(
    session: &mut Session,
    package: &Package,
    opts: &DfuOptions,
    progress: &dyn Progress,
) -> Result<DfuReport> {
    let started = Instant::now();
    step(progress, "reading image state, buffers and bootloader");
    let dev = inspect(session).await?;
    let multi = package.images.len() > 1;
    let mode = opts.mode.unwrap_or(if multi { Mode::ConfirmOnly } else { Mode::TestAndConfirm });
    let before = dev.state.clone();
    let xip = matches!(dev.mode, Some(McubootMode::DirectXip | McubootMode::DirectXipWithRevert));

    let mut todo = Vec::new();
    let mut skipped = Vec::new();
    let mut confirmed = false;
    for img in &package.images {
        match check(&dev, img, opts.force)? {
            Some(_) if runs_under_test(&dev, img, mode, xip) => {
                // An earlier DFU stopped after the image started under test and before it was
                // confirmed: the next reset would revert it. Finishing that DFU means
                // confirming the image, not calling it done.
                step(progress, &format!("confirming image {}, which runs under test", img.image_index));
                confirm_running(session, img).await?;
                let note = format!(
                    "image {} already ran {} ({}) under test; confirmed it",
                    img.image_index,
                    img.image.version(),
                    img.name
                );
                progress.event(&Event::Note { text: note.clone() });
                skipped.push(note);
                confirmed = true;
            }
            Some(why) => {
                progress.event(&Event::Note { text: why.clone() });
                skipped.push(why);
            }
            None => todo.push(img),
        }
    }
    if todo.is_empty() {
        let after = if confirmed {
            session.client().request_idempotent(&ImageStateRead {}).await?.images
        } else {
            before.clone()
        };
        return Ok(DfuReport {
            mode,
            after,
            before,
            uploads: vec![],
            skipped,
            reset: false,
            seconds: started.elapsed().as_secs_f64(),
        });
    }

    if dev.recovery {
        return recovery_update(session, &dev, &todo, before, skipped, opts, progress, started).await;
    }

    let mut uploads = Vec::new();
    for img in &todo {
        let index = img.image_index;
        let slot = target_slot(&dev.state, index);
        let hash = img.image.hash();
        let already =
            find(&dev.state, index, slot).and_then(|s| s.hash.as_deref()).map(|h| &h[..]) == Some(hash);
        if already && !opts.force {
            let note = format!(
                "image {index}: slot {slot} already holds {} ({}), not uploading again",
                img.image.version(),
                img.name
            );
            progress.event(&Event::Note { text: note.clone() });
            skipped.push(note);
            continue;
        }
        step(progress, &format!("uploading {} to image {index}", img.name));
        let uo = UploadOptions { image: index, ..opts.upload.clone() };
        uploads.push(upload::upload(session, img.image.bytes(), &dev.limits, &uo, progress).await?);
    }

    step(progress, "verifying the uploaded images");
    let state = session.client().request_idempotent(&ImageStateRead {}).await?.images;
    for img in &todo {
        let slot = target_slot(&dev.state, img.image_index);
        let got = find(&state, img.image_index, slot).and_then(|s| s.hash.clone());
        if got.as_deref().map(|h| &h[..]) != Some(img.image.hash()) {
            return Err(Error::NotApplied(format!(
                "after the upload, image {} slot {slot} holds {} instead of {} — the device did not keep the upload",
                img.image_index,
                got.map_or("nothing".into(), |h| hex(&h)),
                img.image.hash_hex()
            )));
        }
    }
    if mode == Mode::UploadOnly {
        return Ok(DfuReport {
            mode,
            before,
            after: state,
            uploads,
            skipped,
            reset: false,
            seconds: started.elapsed().as_secs_f64(),
        });
    }

    if !xip {
        // The network core (image 1) first: it cannot revert, so it must never be left
        // marked after the application failed to mark.
        let mut order: Vec<&&PackageImage> = todo.iter().collect();
        order.sort_by_key(|i| std::cmp::Reverse(i.image_index));
        for img in order {
            let confirm = mode == Mode::ConfirmOnly || dev.mode == Some(McubootMode::OverwriteOnly);
            step(
                progress,
                &format!(
                    "marking image {} for {}",
                    img.image_index,
                    if confirm { "permanent install" } else { "test" }
                ),
            );
            let write = ImageStateWrite { hash: Some(ByteBuf::from(img.image.hash().to_vec())), confirm };
            let state = session.client().request_idempotent(&write).await?.images;
            let slot = target_slot(&dev.state, img.image_index);
            let marked = find(&state, img.image_index, slot).is_some_and(|s| s.pending);
            if !marked {
                return Err(Error::NotApplied(format!(
                    "image {} slot {slot} is not pending after marking it; the device refused to schedule it",
                    img.image_index
                )));
            }
        }
    }

    step(progress, "resetting the device");
    reset_and_wait(session, opts.boot_timeout, progress).await?;
    step(progress, "checking which images run now");
    let mut state = session.client().request_idempotent(&ImageStateRead {}).await?.images;
    // A lost reset request leaves every marked image still pending: the device never rebooted.
    // Only then is resetting again safe — after a real reboot a second reset would revert an
    // image under test.
    for _ in 0..2 {
        let never_reset = !xip
            && todo.iter().all(|img| {
                find(&state, img.image_index, target_slot(&dev.state, img.image_index))
                    .is_some_and(|s| s.pending)
            });
        if !never_reset {
            break;
        }
        progress.event(&Event::Note { text: "the device did not reset; asking again".into() });
        reset_and_wait(session, opts.boot_timeout, progress).await?;
        state = session.client().request_idempotent(&ImageStateRead {}).await?.images;
    }
    for img in &todo {
        let index = img.image_index;
        let run = active(&state, index);
        if run.and_then(|r| r.hash.as_deref()).map(|h| &h[..]) != Some(img.image.hash()) {
            return Err(Error::NotApplied(diagnose(&state, img, index)));
        }
    }
    if mode == Mode::TestAndConfirm && !xip {
        step(progress, "confirming the new image");
        for img in &todo {
            confirm_running(session, img).await?;
        }
    }
    let after = session.client().request_idempotent(&ImageStateRead {}).await?.images;
    Ok(DfuReport {
        mode,
        before,
        after,
        uploads,
        skipped,
        reset: true,
        seconds: started.elapsed().as_secs_f64(),
    })
}

/// Whether `img` is what image `img.image_index` runs, under test: not confirmed yet, in a mode
/// that confirms (direct-XIP and the recovery bootloader have nothing to confirm).
fn runs_under_test(dev: &Device, img: &PackageImage, mode: Mode, xip: bool) -> bool {
    let hash = img.image.hash();
    !xip && !dev.recovery
        && matches!(mode, Mode::TestAndConfirm | Mode::ConfirmOnly)
        && active(&dev.state, img.image_index)
            .is_some_and(|r| !r.confirmed && r.hash.as_deref().map(|h| &h[..]) == Some(hash))
}

/// Confirms `img`, which the device runs, and checks that it took.
async fn confirm_running(session: &Session, img: &PackageImage) -> Result<()> {
    let write = ImageStateWrite { hash: Some(ByteBuf::from(img.image.hash().to_vec())), confirm: true };
    let state = session.client().request_idempotent(&write).await?.images;
    if !active(&state, img.image_index).is_some_and(|s| s.confirmed) {
        return Err(Error::NotApplied(format!(
            "image {} runs the new version but did not become confirmed; it will revert at the next reset",
            img.image_index
        )));
    }
    Ok(())
}

/// Updating through MCUboot's serial recovery: the bootloader writes uploads straight into the
/// primary slot, so there is no marking; a reset then boots whatever MCUboot validates there.
#[allow(clippy::too_many_arguments)]
async fn recovery_update(
    session: &mut Session,
    dev: &Device,
    todo: &[&PackageImage],
    before: Vec<SlotState>,
    skipped: Vec<String>,
    opts: &DfuOptions,
    progress: &dyn Progress,
    started: Instant,
) -> Result<DfuReport> {
    progress.event(&Event::Note {
        text: "the bootloader itself answers (MCUboot serial recovery): uploading straight into the \
               primary slot; nothing to mark"
            .into(),
    });
    let mut uploads = Vec::new();
    for img in todo {
        step(progress, &format!("uploading {} to image {} (primary slot)", img.name, img.image_index));
        let uo = UploadOptions { image: img.image_index, ..opts.upload.clone() };
        uploads.push(upload::upload(session, img.image.bytes(), &dev.limits, &uo, progress).await?);
    }
    step(progress, "verifying the uploaded images");
    let state = session.client().request_idempotent(&ImageStateRead {}).await?.images;
    for img in todo {
        let got = find(&state, img.image_index, 0).and_then(|s| s.hash.clone());
        if got.as_deref().map(|h| &h[..]) != Some(img.image.hash()) {
            return Err(Error::NotApplied(format!(
                "after the upload the primary slot of image {} holds {} instead of {}",
                img.image_index,
                got.map_or("nothing".into(), |h| hex(&h)),
                img.image.hash_hex()
            )));
        }
    }
    let mut reset = false;
    if opts.mode != Some(Mode::UploadOnly) {
        step(progress, "resetting the device");
        reset_and_wait(session, opts.boot_timeout, progress).await?;
        reset = true;
    }
    let after = session.client().request_idempotent(&ImageStateRead {}).await?.images;
    Ok(DfuReport {
        mode: opts.mode.unwrap_or(Mode::UploadOnly),
        before,
        after,
        uploads,
        skipped,
        reset,
        seconds: started.elapsed().as_secs_f64(),
    })
}

/// Why the new image is not running, from the state after the reset.
fn diagnose(state: &[SlotState], img: &PackageImage, index: u32) -> String {
    let hash = img.image.hash();
    let holder = state.iter().find(|s| s.image == index && s.hash.as_deref().map(|h| &h[..]) == Some(hash));
    let running = active(state, index).map_or("nothing".to_string(), |r| format!("version {}", r.version));
    match holder {
        None => format!(
            "image {index} still runs {running}, and the new image is gone: MCUboot rejected it at boot and \
             erased it. Usual causes: the image is not signed with the key this bootloader expects \
             (or signed when it expects no signature), it was built for another slot or core, or a \
             downgrade was refused"
        ),
        Some(s) if s.pending => format!(
            "image {index} still runs {running}; the new image is still pending in slot {}: the device \
             reset without running MCUboot's swap (was it really reset?)",
            s.slot
        ),
        Some(s) => format!(
            "image {index} runs {running}; the new image sits in slot {} but is not active: it ran and was \
             reverted (it was not confirmed in time), or it was never marked for the next boot",
            s.slot
        ),
    }
}

/// Resets the device and waits until it answers again, reconnecting when the link dropped.
pub async fn reset_and_wait(session: &mut Session, timeout: Duration, progress: &dyn Progress) -> Result<()> {
    match session.client().request(&Reset::default()).await {
        Ok(_) => {}
        // A handler vetoed the reset (e.g. an upload in progress); force it.
        Err(Error::Device(e)) if e.group.is_none() && e.rc == crate::rc::MGMT_ERR_EBUSY => {
            session.client().request(&Reset { force: Some(1) }).await?;
        }
        // The device may reset before its answer gets out.
        Err(Error::Disconnected(_)) | Err(Error::Timeout { .. }) => {}
        Err(e) => return Err(e),
    }
    let deadline = Instant::now() + timeout;
    // Zephyr answers the reset first and resets CONFIG_MCUMGR_GRP_OS_RESET_MS (250 ms) later:
    // a probe sent sooner would be answered by the old image. A link that drops (BLE) says so
    // by itself; the probe below then reconnects, which for BLE means scanning for the device.
    tokio::time::sleep(Duration::from_millis(300)).await;
    loop {
        let probe = Echo { d: "smpflash".into() };
        match session.client().request_with_timeout(&probe, Duration::from_millis(1000)).await {
            Ok(_) => return Ok(()),
            Err(Error::Disconnected(why)) => {
                progress.event(&Event::Reconnecting { reason: why });
                session.reconnect_for = deadline.saturating_duration_since(Instant::now());
                session.reconnect().await?;
            }
            Err(Error::Timeout { .. }) => {}
            Err(e) => return Err(e),
        }
        if Instant::now() >= deadline {
            return Err(Error::NotApplied(format!(
                "the device did not come back within {} s of the reset",
                timeout.as_secs()
            )));
        }
    }
}
