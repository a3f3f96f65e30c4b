//! The differences between a real Zephyr server and the virtual device that are known and
//! accepted for now: each entry matches cases by rule (group, command, request kind, server)
//! and says why it is accepted: a fixture built without something the virtual device has, or
//! a limit the virtual device does not model. A difference no entry covers fails the run.

use super::cases::{Case, Kind};
use super::fixtures::Entry;

/// One accepted class of differences.
#[derive(Debug)]
pub struct Intended {
    /// Short name, used in the summary.
    pub id: &'static str,
    /// Why it differs, and why that is accepted.
    pub reason: &'static str,
    /// Which cases it covers.
    pub rule: &'static str,
    matches: fn(&Case, &Entry) -> bool,
}

/// Every accepted difference.
pub const LIST: &[Intended] = &[
    Intended {
        id: "datetime compiled out",
        reason: "The fixtures are built without CONFIG_MCUMGR_GRP_OS_DATETIME (rc 8); the virtual \
                 device has an RTC (os_mgmt.c's datetime read and write rules: RTC_NOT_SET until \
                 set, EINVAL for a string out of bounds) so `smpflash os datetime` can be tried \
                 without hardware.",
        rule: "group 0, command 4",
        matches: |c, _| c.group == 0 && c.id == 4,
    },
    Intended {
        id: "settings saved",
        reason: "`smp_svr` on native_sim has no settings storage backend: settings save answers \
                 SETTINGS_MGMT_ERR_SAVE_NOT_SUPPORTED (group 3 rc 8); the virtual device keeps \
                 saved settings in its state file, as a board with NVS does. Malformed save \
                 bodies are compared (both answer MGMT_ERR_EINVAL).",
        rule: "group 3, command 3, write, a well-formed map",
        matches: |c, _| {
            c.group == 3
                && c.id == 3
                && c.op == super::cases::WRITE
                && matches!(c.kind, Kind::Command | Kind::ExtraField)
        },
    },
    Intended {
        id: "taskstat without stack info",
        reason: "The minimal builds (without the shell group: `serial_fs`, `serial_buf*`, …) \
                 report threads without `stksiz` and `stkuse` \
                 (CONFIG_MCUMGR_GRP_OS_TASKSTAT_STACK_INFO off) and without names; the virtual \
                 device reports them, as the full `smp_svr` builds do.",
        rule: "group 0, command 2, on a server without the shell group",
        matches: |c, e| c.group == 0 && c.id == 2 && !e.has_group("shell"),
    },
    Intended {
        id: "storage erase refused",
        reason: "The `serial_raw` build has no Zephyr basic group though its manifest lists zbasic \
                 (its enum answer lists groups 0 2 3 9 10; storage erase answers MGMT_ERR_ENOTSUP); \
                 the virtual device has the group and erases.",
        rule: "group 63, command 0, on serial_raw",
        matches: |c, e| c.group == 63 && c.id == 0 && e.config == "serial_raw",
    },
    Intended {
        id: "max_image_size compiled out",
        reason: "Zephyr adds `max_image_size` to slot info only with \
                 CONFIG_MCUMGR_GRP_IMG_TOO_LARGE_SYSBUILD or _BOOTLOADER_INFO (img_mgmt.c \
                 `img_mgmt_slot_max_size`), which the fixtures lack; the virtual device always \
                 reports it (smpflash's DFU plan checks an image's size against it) and has no profile \
                 switch for it.",
        rule: "img slot info (group 1, command 6)",
        matches: |c, _| c.group == 1 && c.id == 6,
    },
    Intended {
        id: "udp mtu",
        reason: "native_sim's UDP transport reads into CONFIG_MCUMGR_TRANSPORT_UDP_MTU (1500) and \
                 answers a longer frame rc 9; the virtual device's UDP front end takes a datagram \
                 up to buf_size (its profiles have no transport MTU), so smpflash's `--udp-mtu` \
                 and the UDP chunk sizing are tested against the real servers instead.",
        rule: "a UDP frame over 1500 bytes within buf_size",
        matches: |c, _| c.kind == Kind::OverMtu,
    },
];

/// The entry covering `case` on `entry`, if any.
pub fn covering(case: &Case, entry: &Entry) -> Option<&'static Intended> {
    LIST.iter().find(|i| (i.matches)(case, entry))
}
