//! Zephyr basic group handler (`basic_mgmt.c`): erase the storage partition, where the
//! settings and the file system live.

use crate::profile::Profile;
use crate::smp::fs::{capacity, Files};
use crate::smp::request::{Handled, Request};
use crate::smp::settings::Settings;

/// `storage_erase`: the whole partition (the file system's size), with the flash time of
/// erasing it.
pub fn storage_erase(
    files: &mut Files,
    settings: &mut Settings,
    profile: &Profile,
    r: &mut Request<'_>,
) -> Handled {
    files.files.clear();
    settings.stored.values.clear();
    let sectors = capacity(profile).div_ceil(profile.flash.sector_size.max(1)) as u32;
    r.reply.cost += profile.flash.erase_per_sector * sectors;
    r.reply.flash_changed = true;
    Ok(vec![])
}
