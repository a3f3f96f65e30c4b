//! Device profiles: the slot layout, bootloader mode, SMP buffers and flash timing of a kind of
//! device, selectable by name and overridable field by field.

use std::path::Path;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::image::keys::SigningKey;

/// How MCUboot installs an update.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum BootMode {
    /// Swap the slots sector by sector (swap using move); a test image reverts unless confirmed.
    SwapUsingMove,
    /// Copy the secondary over the primary and erase the secondary; nothing can revert.
    OverwriteOnly,
    /// Run in place from whichever slot holds the valid image with the highest version.
    DirectXip,
    /// MCUboot's own serial recovery: the bootloader answers SMP and uploads go straight to the
    /// primary slot.
    SerialRecovery,
    /// MCUboot RAM_LOAD: the valid image with the highest version, from either slot, is copied
    /// to RAM and runs there; no trailers, no marks. Zephyr's img_mgmt refuses image state
    /// writes (`rc 8`) under it.
    RamLoad,
}

impl BootMode {
    /// The number bootloader info reports for this mode (Zephyr's `BOOTLOADER_MODE`).
    pub fn mode_number(self) -> i32 {
        match self {
            BootMode::SwapUsingMove => 3,
            BootMode::OverwriteOnly => 2,
            BootMode::DirectXip => 4,
            BootMode::SerialRecovery => 0,
            BootMode::RamLoad => 6,
        }
    }
}

/// One updatable image: a primary and a secondary slot.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ImageLayout {
    /// What runs from this image, for messages ("application core").
    pub name: String,
    /// Size of each slot in bytes (both slots of an image are the same size).
    pub slot_size: usize,
    /// Whether a test boot can revert. The nRF5340 network core cannot: its update is copied
    /// to the network core and the old image is gone.
    #[serde(default = "yes")]
    pub revertible: bool,
}

fn yes() -> bool {
    true
}

/// Flash timing, applied as real delays scaled by the device's time scale.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct FlashTiming {
    /// Erase unit in bytes.
    pub sector_size: usize,
    /// Time to erase one sector.
    #[serde(with = "micros")]
    pub erase_per_sector: Duration,
    /// Time to program one byte.
    #[serde(with = "micros_f64")]
    pub program_per_byte: Duration,
}

impl FlashTiming {
    /// Flash that takes no time: for benchmarks of the link alone.
    pub fn instant(sector_size: usize) -> Self {
        FlashTiming { sector_size, erase_per_sector: Duration::ZERO, program_per_byte: Duration::ZERO }
    }
}

/// Everything that makes one kind of virtual device.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Profile {
    /// Profile name.
    pub name: String,
    /// Bootloader strategy.
    pub mode: BootMode,
    /// Updatable images.
    pub images: Vec<ImageLayout>,
    /// Largest SMP frame the device accepts (`CONFIG_MCUMGR_TRANSPORT_NETBUF_SIZE`).
    pub buf_size: usize,
    /// Number of SMP buffers (`CONFIG_MCUMGR_TRANSPORT_NETBUF_COUNT`).
    pub buf_count: usize,
    /// Flash behaviour.
    pub flash: FlashTiming,
    /// Whether MCUboot refuses to install an image older than the running one.
    pub no_downgrade: bool,
    /// Whether `rsn` texts accompany image errors (`CONFIG_MCUMGR_GRP_IMG_VERBOSE_ERR`).
    pub verbose_errors: bool,
    /// Whether the device speaks SMP version 2 (`CONFIG_MCUMGR_SMP_SUPPORT_ORIGINAL_PROTOCOL`
    /// aside, Zephyr 3.3+ does).
    pub smp_v2: bool,
    /// Whether the device implements the MCUmgr parameters command.
    pub params_command: bool,
    /// Time MCUboot and the application take to start, before any swap work.
    #[serde(with = "micros")]
    pub boot_time: Duration,
    /// The key MCUboot checks image signatures with (`CONFIG_BOOT_SIGNATURE_KEY_FILE`); none
    /// models a bootloader that only checks the hash.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signing_key: Option<SigningKey>,
    /// Whether uploads erase each sector just before data first enters it, and the trailer
    /// sector when the upload completes, instead of everything up front on the first chunk
    /// (`CONFIG_IMG_ERASE_PROGRESSIVELY`, off by default in Zephyr). Defaulted so profiles
    /// serialized before the field existed still load.
    #[serde(default)]
    pub erase_progressively: bool,
    /// MCUboot is built with serial recovery entered by the boot mode, and the application
    /// with `CONFIG_MCUMGR_GRP_OS_RESET_BOOT_MODE`: a reset with `boot_mode` 1 comes back as
    /// MCUboot's serial recovery (original protocol, no flags in the image list, echo and
    /// erase `rc 8`, uploads into the primary slot); the next plain reset boots the
    /// application. Defaulted so older profiles load.
    #[serde(default)]
    pub serial_recovery: bool,
    /// MCUboot's serial recovery answers the params command (`buf_size`, `buf_count` 1), as
    /// newer MCUboot does (the `27c54835` fixtures: 1024 × 1). Defaulted so older profiles load.
    #[serde(default)]
    pub recovery_params: bool,
    /// Bootloader info is compiled out (`rc 8`), as on the Zephyr fixtures: the mode is not
    /// reported. Defaulted so older profiles load.
    #[serde(default)]
    pub no_bootloader_info: bool,
    /// Bytes the file system at `/lfs1` holds (the fs group); `None`: 2 MiB
    /// (`smp::fs::CAPACITY`). Defaulted so older profiles load.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fs_size: Option<usize>,
}

named_enum! {
    /// The built-in profiles, by the names users pick them with.
    pub enum SimProfile ("profile") {
        /// nRF5340 DK with NCS defaults: two images (application and network core), big
        /// buffers.
        Nrf5340 = "nrf5340",
        /// A Zephyr sample with MCUboot's defaults: one image, swap using move.
        ZephyrDefault = "zephyr-default",
        /// MCUboot built overwrite-only: no revert.
        OverwriteOnly = "overwrite-only",
        /// MCUboot in direct-XIP mode: the image runs from the slot it was written to.
        DirectXip = "direct-xip",
        /// MCUboot's own serial recovery (boot_serial): the original SMP, no params.
        McubootRecovery = "mcuboot-recovery",
        /// MCUboot RAM_LOAD with serial recovery entered by `reset --boot-mode 1`, like the
        /// mps2-an385 fixtures: 512 KiB slots, buffers 1024 × 4, no bootloader info, image state
        /// writes refused with `rc 8`; the newest valid image runs after a reset.
        RamLoad = "ram-load",
    }
}

/// nRF53/nRF52 internal flash: 4 KiB pages, about 85 ms to erase one and 41 us to write a
/// 32-bit word (product specification figures).
const NRF_FLASH: FlashTiming = FlashTiming {
    sector_size: 4096,
    erase_per_sector: Duration::from_micros(85_000),
    program_per_byte: Duration::from_nanos(10_250),
};

impl Profile {
    /// The built-in profile called `name` (one of [`SimProfile`]'s names).
    pub fn by_name(name: &str) -> Option<Profile> {
        name.parse().ok().map(Profile::builtin)
    }

    /// The built-in profile `kind`, with `overrides` applied in order (see
    /// [`apply_override`](Self::apply_override)).
    pub fn with_overrides(kind: SimProfile, overrides: &[String]) -> Result<Profile, String> {
        let mut p = Profile::builtin(kind);
        for o in overrides {
            p.apply_override(o)?;
        }
        Ok(p)
    }

    /// The built-in profile `kind`.
    pub fn builtin(kind: SimProfile) -> Profile {
        let base = Profile {
            name: kind.name().to_string(),
            mode: BootMode::SwapUsingMove,
            images: vec![ImageLayout { name: "application".into(), slot_size: 0x6_0000, revertible: true }],
            buf_size: 384,
            buf_count: 4,
            flash: NRF_FLASH,
            no_downgrade: false,
            verbose_errors: false,
            smp_v2: true,
            params_command: true,
            boot_time: Duration::from_millis(300),
            signing_key: None,
            erase_progressively: false,
            serial_recovery: false,
            recovery_params: false,
            no_bootloader_info: false,
            fs_size: None,
        };
        match kind {
            // nRF5340 DK with NCS partition manager defaults: 0xF0000 application slots (the
            // secondary in external flash), 0x40000 network core slots; NCS fast-DFU buffers.
            SimProfile::Nrf5340 => Profile {
                images: vec![
                    ImageLayout { name: "application core".into(), slot_size: 0xF_0000, revertible: true },
                    ImageLayout { name: "network core".into(), slot_size: 0x4_0000, revertible: false },
                ],
                buf_size: 2475,
                buf_count: 4,
                ..base
            },
            SimProfile::ZephyrDefault => base,
            SimProfile::OverwriteOnly => Profile { mode: BootMode::OverwriteOnly, ..base },
            SimProfile::DirectXip => Profile { mode: BootMode::DirectXip, ..base },
            SimProfile::McubootRecovery => Profile {
                mode: BootMode::SerialRecovery,
                // MCUboot's boot_serial answers in the original protocol and has no params.
                smp_v2: false,
                params_command: false,
                buf_size: 512,
                buf_count: 1,
                ..base
            },
            SimProfile::RamLoad => Profile {
                mode: BootMode::RamLoad,
                images: vec![ImageLayout {
                    name: "application".into(),
                    slot_size: 0x8_0000,
                    revertible: true,
                }],
                buf_size: 1024,
                buf_count: 4,
                serial_recovery: true,
                no_bootloader_info: true,
                ..base
            },
        }
    }

    /// Applies `key=value` overrides, e.g. `buf_size=1024`, `buf_count=8`, `slot_size=0x80000`
    /// (all images), `sector_size=4096`, `erase_ms=0`, `program_ns_per_byte=0`,
    /// `no_downgrade=true`, `verbose_errors=true`, `smp_v2=false`, `params=false`,
    /// `boot_ms=0`, `signing_key=root-ec-p256.pem` (a PEM public or private key file),
    /// `erase_progressively=true`, `serial_recovery=true`, `recovery_params=true`,
    /// `bootloader_info=false`, `fs_size=16384`.
    pub fn apply_override(&mut self, spec: &str) -> Result<(), String> {
        let (key, value) =
            spec.split_once('=').ok_or_else(|| format!("override {spec:?} is not key=value"))?;
        let num = || parse_number(value).ok_or_else(|| format!("{key}: {value:?} is not a number"));
        let flag = || value.parse::<bool>().map_err(|_| format!("{key}: {value:?} is not true/false"));
        match key {
            "buf_size" => self.buf_size = num()? as usize,
            "buf_count" => self.buf_count = (num()? as usize).max(1),
            "slot_size" => {
                let size = num()? as usize;
                self.images.iter_mut().for_each(|i| i.slot_size = size);
            }
            "sector_size" => self.flash.sector_size = num()? as usize,
            "erase_ms" => self.flash.erase_per_sector = Duration::from_millis(num()?),
            "program_ns_per_byte" => self.flash.program_per_byte = Duration::from_nanos(num()?),
            "no_downgrade" => self.no_downgrade = flag()?,
            "verbose_errors" => self.verbose_errors = flag()?,
            "smp_v2" => self.smp_v2 = flag()?,
            "params" => self.params_command = flag()?,
            "boot_ms" => self.boot_time = Duration::from_millis(num()?),
            "signing_key" => self.signing_key = Some(SigningKey::load(Path::new(value))?),
            "erase_progressively" => self.erase_progressively = flag()?,
            "serial_recovery" => self.serial_recovery = flag()?,
            "recovery_params" => self.recovery_params = flag()?,
            "bootloader_info" => self.no_bootloader_info = !flag()?,
            "fs_size" => self.fs_size = Some(num()? as usize),
            other => return Err(format!("unknown profile field {other:?}")),
        }
        self.validate()
    }

    /// Checks that slot sizes are whole sectors and the buffers can hold a frame.
    pub fn validate(&self) -> Result<(), String> {
        if self.flash.sector_size == 0 || !self.flash.sector_size.is_multiple_of(8) {
            return Err("sector_size must be a non-zero multiple of 8".into());
        }
        for img in &self.images {
            if img.slot_size < 4 * self.flash.sector_size || img.slot_size % self.flash.sector_size != 0 {
                return Err(format!(
                    "slot size {:#x} of {} must be at least 4 sectors and a whole number of sectors",
                    img.slot_size, img.name
                ));
            }
        }
        if self.buf_size < 64 {
            return Err("buf_size below 64 cannot carry an upload".into());
        }
        Ok(())
    }

    /// Largest image the bootloader accepts in a slot of `image`: the last sector holds the
    /// MCUboot trailer (magic, flags, swap status).
    pub fn max_image_size(&self, image: usize) -> usize {
        self.images[image].slot_size - self.flash.sector_size
    }
}

fn parse_number(text: &str) -> Option<u64> {
    match text.strip_prefix("0x").or_else(|| text.strip_prefix("0X")) {
        Some(hex) => u64::from_str_radix(hex, 16).ok(),
        None => text.parse().ok(),
    }
}

mod micros {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_u64(d.as_micros() as u64)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        Ok(Duration::from_micros(u64::deserialize(d)?))
    }
}

mod micros_f64 {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_f64(d.as_secs_f64() * 1e6)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        Ok(Duration::from_secs_f64(f64::deserialize(d)? / 1e6))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_named_profile_exists_and_is_valid() {
        for name in SimProfile::ALL.iter().map(|k| k.name()) {
            let p = Profile::by_name(name).unwrap();
            p.validate().unwrap();
            assert_eq!(p.name, name);
        }
        assert!(Profile::by_name("nope").is_none());
        let p = Profile::by_name("nrf5340").unwrap();
        assert_eq!((p.images.len(), p.buf_size, p.buf_count), (2, 2475, 4));
        for name in SimProfile::ALL.iter().map(|k| k.name()) {
            assert!(!Profile::by_name(name).unwrap().erase_progressively, "{name}");
        }
    }

    #[test]
    fn profiles_serialized_before_progressive_erase_still_load() {
        let p = Profile::by_name("zephyr-default").unwrap();
        let mut json = serde_json::to_value(&p).unwrap();
        json.as_object_mut().unwrap().remove("erase_progressively").expect("the field serializes");
        let old: Profile = serde_json::from_value(json).unwrap();
        assert_eq!(old, p);
    }

    #[test]
    fn overrides_apply_and_reject_nonsense() {
        let mut p = Profile::by_name("zephyr-default").unwrap();
        p.apply_override("buf_size=1024").unwrap();
        p.apply_override("slot_size=0x20000").unwrap();
        p.apply_override("erase_ms=0").unwrap();
        assert_eq!((p.buf_size, p.images[0].slot_size), (1024, 0x20000));
        assert_eq!(p.flash.erase_per_sector, Duration::ZERO);
        assert!(!p.erase_progressively, "Zephyr's default is to erase up front");
        p.apply_override("erase_progressively=true").unwrap();
        assert!(p.erase_progressively);
        assert!(p.apply_override("erase_progressively=yes").is_err());
        assert!(p.apply_override("colour=blue").is_err());
        assert!(p.apply_override("buf_size").is_err());
        assert!(p.apply_override("slot_size=5000").is_err());
        let mut p = Profile::by_name("zephyr-default").unwrap();
        p.apply_override("serial_recovery=true").unwrap();
        p.apply_override("recovery_params=true").unwrap();
        p.apply_override("bootloader_info=false").unwrap();
        assert!(p.serial_recovery && p.recovery_params && p.no_bootloader_info);
    }

    #[test]
    fn the_ram_load_profile_is_like_the_mps2_fixtures() {
        let p = Profile::by_name("ram-load").unwrap();
        assert_eq!((p.mode, p.mode.mode_number()), (BootMode::RamLoad, 6));
        assert_eq!((p.images[0].slot_size, p.buf_size, p.buf_count), (0x8_0000, 1024, 4));
        assert!(p.serial_recovery && p.no_bootloader_info && !p.recovery_params);
        for name in SimProfile::ALL.iter().map(|k| k.name()).filter(|n| *n != "ram-load") {
            let q = Profile::by_name(name).unwrap();
            assert!(!q.serial_recovery && !q.no_bootloader_info, "{name} unchanged");
        }
    }
}
