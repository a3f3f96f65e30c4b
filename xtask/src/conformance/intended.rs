//! The differences between a real Zephyr server and the virtual device that are known and
//! accepted for now: each entry matches cases by rule (group, command, request kind, server)
//! and says why, naming the open issue that will close it. A difference no entry covers fails
//! the run.

use super::cases::{Case, Kind};
use super::fixtures::Entry;

/// One accepted class of differences.
#[derive(Debug)]
pub struct Intended {
    /// Short name, used in the summary.
    pub id: &'static str,
    /// Why it differs, and the open issue that will close it.
    pub reason: &'static str,
    /// Which cases it covers.
    pub rule: &'static str,
    matches: fn(&Case, &Entry) -> bool,
}

/// Groups the virtual device does not have: stat, settings, fs, shell, enum, zephyr basic.
const NOT_MODELLED_GROUPS: [u16; 6] = [2, 3, 8, 9, 10, 63];

/// Every accepted difference.
pub const LIST: &[Intended] = &[
    Intended {
        id: "groups not modelled",
        reason: "The virtual device has no stat, settings, fs, shell, enum or zephyr-basic group yet \
                 (it answers rc 8); open issue \"The whole MCUmgr surface\".",
        rule: "group 2, 3, 8, 9, 10 or 63",
        matches: |c, _| NOT_MODELLED_GROUPS.contains(&c.group),
    },
    Intended {
        id: "os commands not modelled",
        reason: "The virtual device's OS group has echo, reset, params, info and bootloader info \
                 only: no taskstat or datetime yet; open issue \"The whole MCUmgr surface\".",
        rule: "group 0, command 2 (taskstat) or 4 (datetime)",
        matches: |c, _| c.group == 0 && (c.id == 2 || c.id == 4),
    },
    Intended {
        id: "bootloader info compiled out",
        reason: "The fixtures are built without CONFIG_MCUMGR_GRP_OS_BOOTLOADER_INFO (rc 8); the \
                 zephyr-default profile has it (smpflash's DFU reads the boot mode); \
                 `--set bootloader_info=false` compiles it out (the ram-load profile, used for \
                 the mps2 boards, does); open issue \"The whole MCUmgr surface\".",
        rule: "group 0, command 8",
        matches: |c, _| c.group == 0 && c.id == 8,
    },
    Intended {
        id: "max_image_size compiled out",
        reason: "Zephyr adds `max_image_size` to slot info only with \
                 CONFIG_MCUMGR_GRP_IMG_TOO_LARGE_SYSBUILD or _BOOTLOADER_INFO (img_mgmt.c \
                 `img_mgmt_slot_max_size`), which the fixtures lack; the virtual device always \
                 reports it and has no profile switch for it yet; open issue \"The whole MCUmgr \
                 surface\".",
        rule: "img slot info (group 1, command 6)",
        matches: |c, _| c.group == 1 && c.id == 6,
    },
    Intended {
        id: "udp mtu",
        reason: "native_sim's UDP transport reads into CONFIG_MCUMGR_TRANSPORT_UDP_MTU (1500) and \
                 answers a longer frame rc 9; the virtual device's UDP MTU is buf_size; open issue \
                 \"The whole MCUmgr surface\" (transport parameters in the profile).",
        rule: "a UDP frame over 1500 bytes within buf_size",
        matches: |c, _| c.kind == Kind::OverMtu,
    },
];

/// The entry covering `case` on `entry`, if any.
pub fn covering(case: &Case, entry: &Entry) -> Option<&'static Intended> {
    LIST.iter().find(|i| (i.matches)(case, entry))
}
