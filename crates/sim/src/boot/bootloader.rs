//! MCUboot's boot-time decisions over the simulated flash: which swap to do, whether the
//! candidate image is valid, the swap itself (resumable after power loss), and reverts.
//!
//! Follows bootutil's `boot_swap_type_multi` table and loader behaviour (mcu-tools/mcuboot
//! `docs/design.md`, "Image Trailer", "Swap Types", "Reverting").

use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::boot::trailer::{self, Flag, Magic};
use crate::flash::Flash;
use crate::image::slot::{self, Invalid};
use crate::profile::{BootMode, Profile};

/// What the next boot will do for one image, from the trailers (bootutil's table).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SwapType {
    /// Boot the primary as it is.
    None,
    /// Swap the secondary in for one boot.
    Test,
    /// Swap the secondary in for good.
    Perm,
    /// Swap the previous image back (the running test image was not confirmed).
    Revert,
}

/// Reads the swap type of the image with slots `primary` and `primary + 1`.
pub fn swap_type(flash: &Flash, primary: usize) -> SwapType {
    let p = trailer::read(flash, primary);
    let s = trailer::read(flash, primary + 1);
    match (s.magic, s.image_ok) {
        (Magic::Good, Flag::Set) => SwapType::Perm,
        (Magic::Good, Flag::Unset) => SwapType::Test,
        _ if p.magic == Magic::Good
            && s.magic == Magic::Unset
            && p.image_ok == Flag::Unset
            && p.copy_done == Flag::Set =>
        {
            SwapType::Revert
        }
        _ => SwapType::None,
    }
}

/// A swap or copy under way, saved so a power loss resumes it instead of leaving a half-swapped
/// image (MCUboot keeps this in the trailer's swap status area).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Progress {
    /// Image index.
    pub image: usize,
    /// What is being done.
    pub kind: ProgressKind,
    /// Sectors to process.
    pub sectors: usize,
    /// Sectors already processed.
    pub done: usize,
}

/// The kind of slot rewrite in progress.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum ProgressKind {
    /// Swap for a test boot.
    Test,
    /// Swap for good.
    Perm,
    /// Swap back.
    Revert,
    /// Copy the secondary over the primary (overwrite-only, or an image that cannot revert).
    Overwrite,
}

/// What a boot did, one line per image decision.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct BootEvent {
    /// Image index.
    pub image: usize,
    /// What happened, in words.
    pub what: String,
}

/// The boot stopped because power failed at the configured point.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PowerLost;

/// Boot-time state MCUboot keeps across resets.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct BootState {
    /// An interrupted swap or copy.
    pub progress: Option<Progress>,
    /// The slot each image runs from (direct-XIP chooses; swap modes always run the primary).
    pub active: Vec<usize>,
    /// The application asked for the bootloader at the next boot (`os reset` with `boot_mode`
    /// 1; Zephyr keeps it in retained RAM).
    #[serde(default)]
    pub recovery_requested: bool,
    /// MCUboot stayed in serial recovery at the last boot: it answers SMP, not the application.
    #[serde(default)]
    pub in_recovery: bool,
}

/// Boots the device: for each image, decide, validate, swap or revert. `power_loss_at` stops
/// the boot before that many sectors have been processed in total, as if power failed.
pub fn boot(
    flash: &mut Flash,
    state: &mut BootState,
    profile: &Profile,
    power_loss_at: Option<usize>,
) -> (Duration, Vec<BootEvent>, Result<(), PowerLost>) {
    let mut cost = Duration::ZERO;
    let mut events = Vec::new();
    let mut budget = power_loss_at;
    state.active = (0..profile.images.len()).map(|i| 2 * i).collect();

    // The image whose interrupted swap this boot finishes: its decision was already made.
    state.in_recovery = std::mem::take(&mut state.recovery_requested) && profile.serial_recovery;
    if state.in_recovery {
        // MCUboot checks the boot mode before any image decision and stays in boot_serial.
        events.push(BootEvent { image: 0, what: "boot mode 1: staying in serial recovery".into() });
        return (cost, events, Ok(()));
    }
    let resumed = state.progress.map(|p| p.image);
    if let Some(p) = state.progress {
        events.push(BootEvent {
            image: p.image,
            what: format!("resuming interrupted {:?} at sector {} of {}", p.kind, p.done, p.sectors),
        });
        if let Err(e) = run_progress(flash, state, &mut cost, &mut budget) {
            return (cost, events, Err(e));
        }
    }

    for image in (0..profile.images.len()).filter(|&i| Some(i) != resumed) {
        let result = match profile.mode {
            BootMode::DirectXip | BootMode::RamLoad => {
                boot_direct_xip(flash, state, profile, image, &mut events);
                Ok(())
            }
            BootMode::SerialRecovery => Ok(()),
            BootMode::SwapUsingMove | BootMode::OverwriteOnly => {
                boot_swap(flash, state, profile, image, &mut events, &mut cost, &mut budget)
            }
        };
        if let Err(e) = result {
            return (cost, events, Err(e));
        }
    }
    (cost, events, Ok(()))
}

fn boot_swap(
    flash: &mut Flash,
    state: &mut BootState,
    profile: &Profile,
    image: usize,
    events: &mut Vec<BootEvent>,
    cost: &mut Duration,
    budget: &mut Option<usize>,
) -> Result<(), PowerLost> {
    let primary = 2 * image;
    let secondary = primary + 1;
    let max = profile.max_image_size(image);
    let overwrite = profile.mode == BootMode::OverwriteOnly || !profile.images[image].revertible;
    let kind = match swap_type(flash, primary) {
        SwapType::None => return Ok(()),
        SwapType::Revert => ProgressKind::Revert,
        t @ (SwapType::Test | SwapType::Perm) => {
            let key = profile.signing_key.as_ref();
            let candidate = slot::validate_signed(flash.slot(secondary), max, key);
            let candidate = candidate.and_then(|c| {
                let running = slot::read_info(flash.slot(primary));
                match running {
                    Some(r) if profile.no_downgrade && c.version < r.version => {
                        Err(Invalid::Downgrade { new: c.version, running: r.version })
                    }
                    _ => Ok(c),
                }
            });
            match candidate {
                Err(why) => {
                    *cost += flash.erase_slot(secondary);
                    events.push(BootEvent {
                        image,
                        what: format!("secondary slot image rejected ({why}); slot erased, old image kept"),
                    });
                    return Ok(());
                }
                Ok(_) if overwrite => ProgressKind::Overwrite,
                Ok(_) if t == SwapType::Test => ProgressKind::Test,
                Ok(_) => ProgressKind::Perm,
            }
        }
    };
    let ss = flash.sector_size();
    let len_of = |slot: usize| slot::read_info(flash.slot(slot)).map_or(0, |i| i.total_len);
    let bytes = match kind {
        ProgressKind::Overwrite => len_of(secondary),
        _ => len_of(primary).max(len_of(secondary)),
    };
    state.progress = Some(Progress { image, kind, sectors: bytes.div_ceil(ss), done: 0 });
    events.push(BootEvent {
        image,
        what: match kind {
            ProgressKind::Test => "swapping in the secondary image for a test boot".into(),
            ProgressKind::Perm => "swapping in the secondary image permanently".into(),
            ProgressKind::Revert => "test image was not confirmed: reverting to the previous image".into(),
            ProgressKind::Overwrite => {
                "copying the secondary image over the primary (no revert possible)".into()
            }
        },
    });
    run_progress(flash, state, cost, budget)
}

/// Processes the saved swap/copy to its end, then writes the trailers it leaves behind.
fn run_progress(
    flash: &mut Flash,
    state: &mut BootState,
    cost: &mut Duration,
    budget: &mut Option<usize>,
) -> Result<(), PowerLost> {
    let Some(mut p) = state.progress else {
        return Ok(());
    };
    let primary = 2 * p.image;
    let secondary = primary + 1;
    while p.done < p.sectors {
        if let Some(left) = budget {
            if *left == 0 {
                state.progress = Some(p);
                return Err(PowerLost);
            }
            *left -= 1;
        }
        *cost += match p.kind {
            ProgressKind::Overwrite => flash.copy_sector(secondary, primary, p.done),
            _ => flash.swap_sector(primary, secondary, p.done),
        };
        p.done += 1;
        state.progress = Some(p);
    }
    trailer::erase(flash, primary);
    match p.kind {
        ProgressKind::Overwrite => {
            *cost += flash.erase_slot(secondary);
        }
        ProgressKind::Test => {
            trailer::erase(flash, secondary);
            trailer::write_magic(flash, primary);
            trailer::write_copy_done(flash, primary);
        }
        ProgressKind::Perm | ProgressKind::Revert => {
            trailer::erase(flash, secondary);
            trailer::write_magic(flash, primary);
            trailer::write_copy_done(flash, primary);
            // After a revert MCUboot marks the restored image good so it does not bounce back.
            trailer::write_image_ok(flash, primary);
        }
    }
    state.progress = None;
    Ok(())
}

fn boot_direct_xip(
    flash: &Flash,
    state: &mut BootState,
    profile: &Profile,
    image: usize,
    events: &mut Vec<BootEvent>,
) {
    let max = profile.max_image_size(image);
    let key = profile.signing_key.as_ref();
    let slots = [2 * image, 2 * image + 1];
    let valid: Vec<(usize, _)> = slots
        .iter()
        .filter_map(|&s| match slot::validate_signed(flash.slot(s), max, key) {
            Ok(info) => Some((s, info.version)),
            Err(why) => {
                if slot::read_info(flash.slot(s)).is_some() {
                    events.push(BootEvent { image, what: format!("slot {s} skipped: {why}") });
                }
                None
            }
        })
        .collect();
    // Highest version wins; on a tie the primary does.
    if let Some(&(slot, version)) = valid.iter().max_by(|a, b| a.1.cmp(&b.1).then(b.0.cmp(&a.0))) {
        if state.active.get(image) != Some(&slot) || slot % 2 == 1 {
            events.push(BootEvent { image, what: format!("running version {version} from slot {slot}") });
        }
        state.active[image] = slot;
    }
}

/// Whether each image has something bootable in its active slot.
pub fn bootable(flash: &Flash, state: &BootState, profile: &Profile) -> Result<(), String> {
    for (image, &slot) in state.active.iter().enumerate() {
        let max = profile.max_image_size(image);
        if let Err(why) = slot::validate_signed(flash.slot(slot), max, profile.signing_key.as_ref()) {
            return Err(format!(
                "image {image} ({}): no bootable image in slot {slot}: {why}",
                profile.images[image].name
            ));
        }
    }
    Ok(())
}
