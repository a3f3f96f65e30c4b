//! Everything the virtual device remembers: flash (kept across power cycles), MCUboot's boot
//! state, and the upload in progress (RAM: lost on reset).

use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::boot::bootloader::{BootEvent, BootState};
use crate::flash::Flash;
use crate::image::slot;
use crate::profile::Profile;
use smpflash_core::mcuboot::ImageVersion;

/// An upload in progress (Zephyr's `g_img_mgmt_state`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Upload {
    /// Slot being written.
    pub slot: usize,
    /// Next offset expected.
    pub off: usize,
    /// Declared image length.
    pub size: usize,
    /// `sha` of the first request, for resuming.
    pub sha: Vec<u8>,
    /// End of the part of the slot this upload has erased or found blank: data reaching past
    /// it has its sectors erased first (Zephyr's `off_last` under
    /// `CONFIG_IMG_ERASE_PROGRESSIVELY`). The slot's length once nothing is left to erase.
    pub erased_to: usize,
}

/// The device's state.
#[derive(Debug, Clone)]
pub struct State {
    /// Slot contents.
    pub flash: Flash,
    /// MCUboot's state across resets.
    pub boot: BootState,
    /// Upload in progress.
    pub upload: Option<Upload>,
    /// What the last boot did.
    pub boot_log: Vec<BootEvent>,
    /// The groups beside os and img: files, settings, counters, the open file.
    pub groups: crate::smp::groups::Groups,
}

/// Version of the factory image of image `i`.
pub fn factory_version(image: usize) -> ImageVersion {
    ImageVersion { major: 1, minor: 0, revision: 0, build_num: image as u32 }
}

impl State {
    /// A device fresh from the factory: each primary slot holds a valid image of version
    /// 1.0.0, confirmed; hash-only, or signed when the profile's key has its private half.
    pub fn factory(profile: &Profile) -> Self {
        let sizes: Vec<usize> = profile.images.iter().flat_map(|i| [i.slot_size, i.slot_size]).collect();
        let mut flash = Flash::new(&sizes, profile.flash);
        for image in 0..profile.images.len() {
            // A recognisable, per-image body so two devices' hashes match and images differ.
            let body: Vec<u8> = (0..16 * 1024u32).map(|i| (i * 7 + image as u32 * 13) as u8).collect();
            let built = slot::build(factory_version(image), &body);
            let signed = profile.signing_key.as_ref().and_then(|key| slot::sign(&built, key));
            flash.program(2 * image, 0, signed.as_deref().unwrap_or(&built));
        }
        State {
            flash,
            boot: BootState {
                progress: None,
                active: (0..profile.images.len()).map(|i| 2 * i).collect(),
                ..BootState::default()
            },
            upload: None,
            boot_log: Vec::new(),
            groups: crate::smp::groups::Groups::default(),
        }
    }

    /// Loads a state file written by [`save`](Self::save); `None` if it does not exist.
    pub fn load(path: &Path, profile: &Profile) -> std::io::Result<Option<Self>> {
        let bytes = match std::fs::read(path) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(e),
        };
        let bad = |why: &str| {
            std::io::Error::new(std::io::ErrorKind::InvalidData, format!("{}: {why}", path.display()))
        };
        let rest = bytes.strip_prefix(STATE_MAGIC).ok_or_else(|| bad("not a smpflash-sim state file"))?;
        let (len, rest) = rest.split_at_checked(4).ok_or_else(|| bad("truncated"))?;
        let len = u32::from_le_bytes(len.try_into().expect("4 bytes")) as usize;
        let (meta, mut data) = rest.split_at_checked(len).ok_or_else(|| bad("truncated"))?;
        let meta: Saved = serde_json::from_slice(meta).map_err(|e| bad(&e.to_string()))?;
        let expected: Vec<usize> = profile.images.iter().flat_map(|i| [i.slot_size, i.slot_size]).collect();
        if meta.slot_sizes != expected {
            return Err(bad(&format!(
                "slot sizes {:?} do not match profile {} ({:?}); delete the file or pick the profile it was made with",
                meta.slot_sizes, profile.name, expected
            )));
        }
        let mut slots = Vec::new();
        for size in &meta.slot_sizes {
            let (slot, rest) = data.split_at_checked(*size).ok_or_else(|| bad("truncated slot data"))?;
            slots.push(slot.to_vec());
            data = rest;
        }
        Ok(Some(State {
            flash: Flash::from_slots(slots, profile.flash),
            boot: meta.boot,
            upload: None,
            boot_log: Vec::new(),
            groups: crate::smp::groups::Groups::from_saved(meta.groups),
        }))
    }

    /// Writes the flash and boot state to `path` (atomically: a crash mid-write keeps the old
    /// file).
    pub fn save(&self, path: &Path) -> std::io::Result<()> {
        let meta = Saved {
            slot_sizes: self.flash.slots().iter().map(Vec::len).collect(),
            boot: self.boot.clone(),
            groups: self.groups.saved(),
        };
        let meta = serde_json::to_vec(&meta).expect("state metadata serializes");
        let mut out =
            Vec::with_capacity(meta.len() + self.flash.slots().iter().map(Vec::len).sum::<usize>() + 12);
        out.extend_from_slice(STATE_MAGIC);
        out.extend_from_slice(&(meta.len() as u32).to_le_bytes());
        out.extend_from_slice(&meta);
        for slot in self.flash.slots() {
            out.extend_from_slice(slot);
        }
        let tmp = path.with_extension("tmp");
        std::fs::write(&tmp, out)?;
        std::fs::rename(tmp, path)
    }
}

const STATE_MAGIC: &[u8; 8] = b"SMPFSIM1";

#[derive(Serialize, Deserialize)]
struct Saved {
    slot_sizes: Vec<usize>,
    boot: BootState,
    /// Defaulted so state files from before the groups load.
    #[serde(default)]
    groups: crate::smp::groups::Saved,
}
