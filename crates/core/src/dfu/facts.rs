//! What the device is, as the planner needs it: read once at the start of an update.

use serde::Serialize;

use crate::command::image::{ImageStateRead, SlotInfo, SlotInfoResponse, SlotState};
use crate::command::os::{AppInfo, BootloaderInfo, BootloaderMode, McubootMode};
use crate::error::{Error, Result};
use crate::session::Session;
use crate::upload::Limits;

/// The device as the planner sees it. Built by [`inspect`]; tests build it by hand.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DeviceFacts {
    /// Image state: every slot of every image.
    pub state: Vec<SlotState>,
    /// The device's SMP buffers.
    pub limits: Limits,
    /// What the bootloader-info command names (`"MCUboot"`), when the device answers it.
    pub bootloader: Option<String>,
    /// MCUboot's mode, when the device says.
    pub mode: Option<McubootMode>,
    /// MCUboot refuses images older than the running one.
    pub no_downgrade: bool,
    /// Slot sizes per image, when the device answers slot info.
    pub slots: Option<SlotInfoResponse>,
    /// The bootloader itself answers (MCUboot serial recovery): uploads land in the primary
    /// slot and there is nothing to mark.
    pub recovery: bool,
}

impl DeviceFacts {
    /// The slot image `image` runs from, if any.
    pub fn active(&self, image: u32) -> Option<&SlotState> {
        active(&self.state, image)
    }

    /// MCUboot runs images in place (direct-XIP): nothing to mark, swap or confirm.
    pub fn direct_xip(&self) -> bool {
        matches!(self.mode, Some(McubootMode::DirectXip | McubootMode::DirectXipWithRevert))
    }

    /// The image numbers the device has: from slot info, else from image state.
    pub fn images(&self) -> Vec<u32> {
        match &self.slots {
            Some(s) => s.images.iter().map(|i| i.image).collect(),
            None => {
                let mut v: Vec<u32> = self.state.iter().map(|s| s.image).collect();
                v.dedup();
                v
            }
        }
    }

    /// The largest image `image` takes, when the device says.
    pub fn max_image_size(&self, image: u32) -> Option<u64> {
        let info = self.slots.as_ref()?.images.iter().find(|i| i.image == image)?;
        info.max_image_size.or_else(|| info.slots.iter().map(|s| s.size).max())
    }
}

/// The slot of `image` that runs now.
pub fn active(state: &[SlotState], image: u32) -> Option<&SlotState> {
    state.iter().find(|s| s.image == image && s.active)
}

/// Slot `slot` of `image`.
pub fn find(state: &[SlotState], image: u32, slot: u32) -> Option<&SlotState> {
    state.iter().find(|s| s.image == image && s.slot == slot)
}

/// MCUboot's boot_serial lists images without Zephyr's `splitStatus` and implements neither
/// the parameters, bootloader-info nor OS-info commands; a Zephyr application with MCUmgr
/// answers at least one of them, or sends `splitStatus`.
pub fn looks_like_recovery(
    split_status: bool,
    params_reported: bool,
    bootloader_info: bool,
    app_info: bool,
) -> bool {
    !split_status && !params_reported && !bootloader_info && !app_info
}

/// A device error means "this device does not have that": the answer is absent, not fatal.
fn optional<T>(r: Result<T>) -> Result<Option<T>> {
    match r {
        Ok(v) => Ok(Some(v)),
        Err(Error::Device(_)) => Ok(None),
        Err(e) => Err(e),
    }
}

/// Reads what the planner needs: image state, buffers, bootloader and its mode, slot sizes.
pub async fn inspect(session: &Session) -> Result<DeviceFacts> {
    let c = session.client();
    let read = c.request_idempotent(&ImageStateRead {}).await?;
    let limits = Limits::query(c).await?;
    let bootloader = optional(c.request_idempotent(&BootloaderInfo {}).await)?.map(|b| b.bootloader);
    let (mode, no_downgrade) = match bootloader.as_deref() {
        Some("MCUboot") => match optional(c.request_idempotent(&BootloaderMode::default()).await)? {
            Some(m) => (Some(m.mode()), m.no_downgrade),
            None => (None, false),
        },
        _ => (None, false),
    };
    let slots = optional(c.request_idempotent(&SlotInfo {}).await)?;
    // Only asked when the cheaper signs already point at the bootloader.
    let recovery = read.split_status.is_none()
        && !limits.reported
        && bootloader.is_none()
        && looks_like_recovery(
            false,
            false,
            false,
            optional(c.request_idempotent(&AppInfo::default()).await)?.is_some(),
        );
    Ok(DeviceFacts { state: read.images, limits, bootloader, mode, no_downgrade, slots, recovery })
}
