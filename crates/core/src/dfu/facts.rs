//! What the device is, as the planner needs it: read once at the start of an update.

use serde::Serialize;

use crate::command::image::{ImageStateRead, SlotInfo, SlotInfoResponse, SlotState};
use crate::command::os::{AppInfo, BootloaderInfo, BootloaderMode, Echo, McubootMode};
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

/// What tells MCUboot's serial recovery (boot_serial) from a Zephyr application, as read.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RecoverySigns {
    /// The image list carries Zephyr img_mgmt's `splitStatus`.
    pub split_status: bool,
    /// Some slot is listed `active` (boot_serial lists no flags at all).
    pub any_active: bool,
    /// The device answers bootloader info (an application's os_mgmt).
    pub bootloader_info: bool,
    /// The device answers OS/application info (an application's os_mgmt).
    pub app_info: bool,
    /// Echo answered `rc 8` (boot_serial without `CONFIG_BOOT_MGMT_ECHO`), when asked.
    pub echo_refused: bool,
}

/// MCUboot's boot_serial lists images without Zephyr's `splitStatus` and without flags (no
/// slot is `active`), and implements neither bootloader info nor OS info; its echo is usually
/// compiled out (`rc 8`). A Zephyr application with the img group sends `splitStatus` and lists
/// the slot it runs from as active. Whether the device reports its buffers (params) says
/// nothing: newer MCUboot answers params in recovery (`buf_size 1024, buf_count 1` on the
/// `27c54835` fixtures).
pub fn looks_like_recovery(s: RecoverySigns) -> bool {
    !s.split_status && !s.bootloader_info && !s.app_info && (!s.any_active || s.echo_refused)
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
    let mut signs = RecoverySigns {
        split_status: read.split_status.is_some(),
        any_active: read.images.iter().any(|s| s.active),
        bootloader_info: bootloader.is_some(),
        ..RecoverySigns::default()
    };
    // Asked only while the cheaper signs still point at the bootloader.
    if !signs.split_status && !signs.bootloader_info {
        signs.app_info = optional(c.request_idempotent(&AppInfo::default()).await)?.is_some();
        if !signs.app_info && signs.any_active {
            signs.echo_refused = matches!(
                c.request_idempotent(&Echo { d: "smpflash".into() }).await,
                Err(Error::Device(e)) if e.rc == crate::rc::MGMT_ERR_ENOTSUP
            );
        }
    }
    let recovery = looks_like_recovery(signs);
    Ok(DeviceFacts { state: read.images, limits, bootloader, mode, no_downgrade, slots, recovery })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recovery_is_recognised_by_what_the_device_is_not_by_params() {
        let boot_serial = RecoverySigns::default();
        assert!(looks_like_recovery(boot_serial), "no splitStatus, no flags, no info");
        // A build whose boot_serial lists an active flag is still told by its refused echo.
        assert!(looks_like_recovery(RecoverySigns { any_active: true, echo_refused: true, ..boot_serial }));
        assert!(!looks_like_recovery(RecoverySigns { any_active: true, ..boot_serial }));
        // An application: splitStatus, or bootloader info, or OS info.
        assert!(!looks_like_recovery(RecoverySigns { split_status: true, ..boot_serial }));
        assert!(!looks_like_recovery(RecoverySigns { bootloader_info: true, ..boot_serial }));
        assert!(!looks_like_recovery(RecoverySigns { app_info: true, echo_refused: true, ..boot_serial }));
    }
}
