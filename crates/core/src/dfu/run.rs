//! Carrying out a [`Plan`]: the only part of the DFU flow that talks to the device.

use std::time::{Duration, Instant};

use crate::command::image::{ImageStateRead, ImageStateWrite, SlotState};
use crate::command::os::{Echo, Reset};
use crate::error::{Error, Result};
use crate::image_hash::ImageHash;
use crate::mcuboot::PackageImage;
use crate::progress::{Event, Note, Progress, Step};
use crate::session::Session;
use crate::upload::{self, Limits, UploadOptions, UploadReport};

use super::plan::{is_unsupported, Action, Plan, Route};
use super::verdict::{self, NotApplied};

/// What running a plan produced.
pub struct Ran {
    /// One report per upload.
    pub uploads: Vec<UploadReport>,
    /// Whether the device was reset.
    pub reset: bool,
    /// Image state at the end (`None` when the plan did nothing).
    pub after: Option<Vec<SlotState>>,
}

fn step(progress: &dyn Progress, step: Step) {
    progress.event(&Event::Step { step });
}

async fn read_state(session: &Session) -> Result<Vec<SlotState>> {
    Ok(session.client().request_idempotent(&ImageStateRead {}).await?.images)
}

async fn write_state(session: &Session, hash: &ImageHash, confirm: bool) -> Result<Vec<SlotState>> {
    let write = ImageStateWrite { hash: Some(serde_bytes::ByteBuf::from(hash.to_vec())), confirm };
    Ok(session.client().request_idempotent(&write).await?.images)
}

/// Runs `plan`'s actions in order; `images` are the package images its candidates came from.
pub async fn run(
    session: &mut Session,
    plan: &Plan,
    images: &[PackageImage],
    limits: &Limits,
    upload_options: &UploadOptions,
    boot_timeout: Duration,
    progress: &dyn Progress,
) -> Result<Ran> {
    for skip in &plan.skipped {
        progress.event(&Event::Note { note: Note::Skipped { skip: skip.clone() } });
    }
    if plan.route == Route::SerialRecovery && !plan.is_empty() {
        progress.event(&Event::Note { note: Note::SerialRecovery });
    }
    for note in &plan.notes {
        progress.event(&Event::Note { note: note.clone() });
    }
    // Set when a mark was refused as unsupported and the plan allows taking that as "this
    // bootloader needs no marks": later marks and the confirm are dropped.
    let mut unmarked = false;
    let mut uploads = Vec::new();
    let mut reset = false;
    // The last state read since the device last changed, so the end needs no second read.
    let mut fresh: Option<Vec<SlotState>> = None;
    for action in &plan.actions {
        match action {
            Action::ConfirmUnderTest { image, hash } => {
                step(progress, Step::ConfirmUnderTest { image: *image });
                let state = write_state(session, hash, true).await?;
                verdict::check_confirmed(&state, *image)?;
                fresh = None;
            }
            Action::Upload { candidate, image, .. } => {
                let img = &images[*candidate];
                step(
                    progress,
                    Step::Upload {
                        image: *image,
                        name: img.name.clone(),
                        primary: plan.route == Route::SerialRecovery,
                    },
                );
                let o = UploadOptions { image: *image, ..upload_options.clone() };
                uploads.push(upload::upload(session, img.image.bytes(), limits, &o, progress).await?);
                fresh = None;
            }
            Action::VerifyUploads(expect) => {
                step(progress, Step::VerifyUpload);
                let state = read_state(session).await?;
                verdict::check_uploaded(&state, expect)?;
                fresh = Some(state);
            }
            Action::Mark { .. } if unmarked => {}
            Action::Mark { expect, permanent } => {
                step(progress, Step::Mark { image: expect.image, permanent: *permanent });
                match write_state(session, &expect.hash, *permanent).await {
                    Ok(state) => verdict::check_marked(&state, expect)?,
                    Err(e) if is_unsupported(&e) && plan.if_mark_unsupported.is_some() => {
                        let note = plan.if_mark_unsupported.clone().expect("checked");
                        progress.event(&Event::Note { note });
                        unmarked = true;
                    }
                    Err(e) => return Err(e),
                }
                fresh = None;
            }
            Action::Reset => {
                step(progress, Step::Reset);
                reset_and_wait(session, boot_timeout, progress).await?;
                reset = true;
                fresh = None;
            }
            Action::VerifyRunning { expect, marked } => {
                step(progress, Step::VerifyRunning);
                let marked: &[_] = if unmarked { &[] } else { marked };
                let mut state = read_state(session).await?;
                for _ in 0..2 {
                    if !verdict::never_reset(&state, marked) {
                        break;
                    }
                    progress.event(&Event::Note { note: Note::ResetAgain });
                    reset_and_wait(session, boot_timeout, progress).await?;
                    state = read_state(session).await?;
                }
                verdict::check_running(&state, expect)?;
                fresh = Some(state);
            }
            Action::Confirm(_) if unmarked => {}
            Action::VerifyBooted(expect) => {
                step(progress, Step::VerifyBooted);
                let state = read_state(session).await?;
                if verdict::check_booted(&state, expect)? == verdict::Booted::StillInRecovery {
                    progress.event(&Event::Note { note: Note::StillInRecovery });
                }
                fresh = Some(state);
            }
            Action::Confirm(expect) => {
                step(progress, Step::Confirm);
                for e in expect {
                    let state = write_state(session, &e.hash, true).await?;
                    verdict::check_confirmed(&state, e.image)?;
                }
                fresh = None;
            }
        }
    }
    let after = match fresh {
        Some(state) => Some(state),
        None if plan.is_empty() => None,
        None => Some(read_state(session).await?),
    };
    Ok(Ran { uploads, reset, after })
}

/// Resets the device and waits until it answers again, reconnecting when the link dropped.
pub async fn reset_and_wait(session: &mut Session, timeout: Duration, progress: &dyn Progress) -> Result<()> {
    reset_into(session, None, timeout, progress).await
}

/// Resets the device with `boot_mode` (sent only when set; 1 asks MCUboot to stay in serial
/// recovery) and waits until it answers again, reconnecting when the link dropped. Any answer
/// counts, an error included: MCUboot's serial recovery answers the probe (echo) with `rc 8`.
pub async fn reset_into(
    session: &mut Session,
    boot_mode: Option<u8>,
    timeout: Duration,
    progress: &dyn Progress,
) -> Result<()> {
    match session.client().request(&Reset { force: None, boot_mode }).await {
        Ok(_) => {}
        // A handler vetoed the reset (e.g. an upload in progress); force it.
        Err(Error::Device(e)) if e.group.is_none() && e.rc == crate::rc::MGMT_ERR_EBUSY => {
            session.client().request(&Reset { force: Some(1), boot_mode }).await?;
        }
        // The device may reset before its answer gets out.
        Err(e) if e.is_link_lost() => {}
        Err(Error::Timeout { .. }) => {}
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
            Ok(_) | Err(Error::Device(_)) => return Ok(()),
            Err(Error::Transport(why)) if why.kind == crate::transport::TransportKind::LinkLost => {
                progress.event(&Event::Reconnecting { reason: why.to_string() });
                // The boot budget, not the session's own reconnect budget, which stays as the
                // caller set it for later uploads.
                session.reconnect_within(deadline.saturating_duration_since(Instant::now())).await?;
            }
            Err(Error::Timeout { .. }) => {}
            Err(e) => return Err(e),
        }
        if Instant::now() >= deadline {
            return Err(NotApplied::DidNotComeBack { seconds: timeout.as_secs() }.into());
        }
    }
}
