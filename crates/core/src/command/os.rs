//! OS management group (0): echo, reset, task and memory pool statistics, date and time,
//! MCUmgr parameters, application and bootloader info.

use serde::{Deserialize, Serialize};

use super::{Command, Empty};
use crate::frame::Op;
use crate::rc::group::OS;

/// Echo: the device answers with the same text.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
pub struct Echo {
    /// Text to echo.
    pub d: String,
}

/// Answer to [`Echo`].
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
pub struct EchoResponse {
    /// The echoed text.
    pub r: String,
}

impl Command for Echo {
    type Response = EchoResponse;
    const GROUP: u16 = OS;
    const ID: u8 = 0;
    const OP: Op = Op::Write;
    const NAME: &'static str = "echo";
}

/// Reset the device. The link drops after the answer.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize)]
pub struct Reset {
    /// Reset even when a handler vetoes it (after an `EBUSY` answer).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub force: Option<u8>,
    /// The boot mode for the next boot (Zephyr's `CONFIG_MCUMGR_GRP_OS_RESET_BOOT_MODE`:
    /// `boot_mode`, an unsigned integer up to 255; 0 normal, 1 the bootloader — MCUboot's
    /// serial recovery). Sent only when set.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub boot_mode: Option<u8>,
}

impl Reset {
    /// The boot mode that asks MCUboot to stay in serial recovery (Zephyr's
    /// `BOOT_MODE_TYPE_BOOTLOADER`).
    pub const BOOT_MODE_BOOTLOADER: u8 = 1;
}

impl Command for Reset {
    type Response = Empty;
    const GROUP: u16 = OS;
    const ID: u8 = 5;
    const OP: Op = Op::Write;
    const NAME: &'static str = "reset";
}

/// Read the device's SMP buffer parameters.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize)]
pub struct McumgrParams {}

/// Answer to [`McumgrParams`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
pub struct McumgrParamsResponse {
    /// Largest whole SMP frame the device accepts, header included.
    pub buf_size: u32,
    /// Number of such buffers.
    pub buf_count: u32,
}

impl Command for McumgrParams {
    type Response = McumgrParamsResponse;
    const GROUP: u16 = OS;
    const ID: u8 = 6;
    const OP: Op = Op::Read;
    const NAME: &'static str = "MCUmgr parameters";
}

/// Read application information (like `uname`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, Serialize)]
pub struct AppInfo {
    /// Format letters (`s`, `n`, `r`, `v`, `b`, `m`, `p`, `i`, `o`, `a`); device default if
    /// absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub format: Option<String>,
}

/// Answer to [`AppInfo`].
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
pub struct AppInfoResponse {
    /// The formatted text.
    pub output: String,
}

impl Command for AppInfo {
    type Response = AppInfoResponse;
    const GROUP: u16 = OS;
    const ID: u8 = 7;
    const OP: Op = Op::Read;
    const NAME: &'static str = "application info";
}

/// Ask which bootloader the device runs.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize)]
pub struct BootloaderInfo {}

/// Answer to [`BootloaderInfo`].
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
pub struct BootloaderInfoResponse {
    /// Bootloader name; `"MCUboot"` on MCUboot devices.
    pub bootloader: String,
}

impl Command for BootloaderInfo {
    type Response = BootloaderInfoResponse;
    const GROUP: u16 = OS;
    const ID: u8 = 8;
    const OP: Op = Op::Read;
    const NAME: &'static str = "bootloader info";
}

/// Ask MCUboot's mode (`{"query": "mode"}`).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
pub struct BootloaderMode {
    /// Always `"mode"`.
    pub query: String,
}

impl Default for BootloaderMode {
    fn default() -> Self {
        BootloaderMode { query: "mode".into() }
    }
}

/// Answer to [`BootloaderMode`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
pub struct BootloaderModeResponse {
    /// MCUboot mode number; see [`McubootMode`].
    pub mode: i32,
    /// Whether MCUboot refuses images older than the running one.
    #[serde(rename = "no-downgrade", default)]
    pub no_downgrade: bool,
}

impl BootloaderModeResponse {
    /// The mode as an enum.
    pub fn mode(&self) -> McubootMode {
        McubootMode::from_number(self.mode)
    }
}

impl Command for BootloaderMode {
    type Response = BootloaderModeResponse;
    const GROUP: u16 = OS;
    const ID: u8 = 8;
    const OP: Op = Op::Read;
    const NAME: &'static str = "bootloader mode";
}

/// MCUboot's upgrade strategy, as bootloader info reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum McubootMode {
    /// The device does not know.
    Unknown,
    /// One slot, no swap (updates through MCUboot's serial recovery).
    SingleSlot,
    /// Swap using a scratch area.
    SwapUsingScratch,
    /// Overwrite the primary with the secondary; no revert.
    OverwriteOnly,
    /// Swap without scratch (swap using move / offset).
    SwapWithoutScratch,
    /// Run in place from either slot.
    DirectXip,
    /// Direct-XIP that reverts an unconfirmed image.
    DirectXipWithRevert,
    /// Copy to RAM and run there.
    RamLoad,
    /// A number this crate does not know.
    Other(i32),
}

impl McubootMode {
    /// Maps Zephyr's `BOOTLOADER_MODE` number.
    pub fn from_number(n: i32) -> Self {
        match n {
            -1 => McubootMode::Unknown,
            0 => McubootMode::SingleSlot,
            1 => McubootMode::SwapUsingScratch,
            2 => McubootMode::OverwriteOnly,
            3 => McubootMode::SwapWithoutScratch,
            4 => McubootMode::DirectXip,
            5 => McubootMode::DirectXipWithRevert,
            6 => McubootMode::RamLoad,
            other => McubootMode::Other(other),
        }
    }

    /// Whether test/revert exists in this mode.
    pub fn can_revert(self) -> bool {
        matches!(
            self,
            McubootMode::SwapUsingScratch
                | McubootMode::SwapWithoutScratch
                | McubootMode::DirectXipWithRevert
        )
    }
}

/// Read the threads' statistics (`CONFIG_MCUMGR_GRP_OS_TASKSTAT`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize)]
pub struct TaskStats {}

/// Answer to [`TaskStats`].
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, Serialize)]
pub struct TaskStatsResponse {
    /// Thread name (or id) to its statistics.
    #[serde(default)]
    pub tasks: std::collections::BTreeMap<String, TaskStat>,
}

/// One thread's statistics.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, Serialize)]
pub struct TaskStat {
    /// Priority.
    pub prio: i64,
    /// Thread id (a sequence number, not the address).
    pub tid: u64,
    /// Zephyr's `thread_state` bits.
    pub state: u64,
    /// Stack bytes used (as the device counts them: bytes, or 4-byte words on older builds);
    /// absent without `CONFIG_MCUMGR_GRP_OS_TASKSTAT_STACK_INFO`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stkuse: Option<u64>,
    /// Stack size; absent like `stkuse`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stksiz: Option<u64>,
    /// Context switches (0 where the kernel does not count them).
    #[serde(default)]
    pub cswcnt: u64,
    /// Run time (0 where the kernel does not count it).
    #[serde(default)]
    pub runtime: u64,
}

impl Command for TaskStats {
    type Response = TaskStatsResponse;
    const GROUP: u16 = OS;
    const ID: u8 = 2;
    const OP: Op = Op::Read;
    const NAME: &'static str = "task statistics";
}

/// Read the memory pools' statistics (`CONFIG_MCUMGR_GRP_OS_MEMPOOL`... whichever the
/// firmware has; many answer "not supported").
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize)]
pub struct MemPoolStats {}

/// Answer to [`MemPoolStats`].
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, Serialize)]
pub struct MemPoolStatsResponse {
    /// Pool name to its statistics.
    #[serde(default)]
    pub mpools: std::collections::BTreeMap<String, MemPool>,
}

/// One memory pool.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, Serialize)]
pub struct MemPool {
    /// Block size.
    pub blksiz: u64,
    /// Blocks.
    pub nblks: u64,
    /// Free blocks.
    pub nfree: u64,
    /// Fewest free blocks seen.
    pub min: u64,
}

impl Command for MemPoolStats {
    type Response = MemPoolStatsResponse;
    const GROUP: u16 = OS;
    const ID: u8 = 3;
    const OP: Op = Op::Read;
    const NAME: &'static str = "memory pool statistics";
}

/// Read the device's clock (`CONFIG_MCUMGR_GRP_OS_DATETIME`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize)]
pub struct DateTimeGet {}

/// Answer to [`DateTimeGet`].
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
pub struct DateTimeResponse {
    /// `YYYY-MM-DDTHH:MM:SS` (with `.mmm` when the device has milliseconds).
    pub datetime: String,
}

impl Command for DateTimeGet {
    type Response = DateTimeResponse;
    const GROUP: u16 = OS;
    const ID: u8 = 4;
    const OP: Op = Op::Read;
    const NAME: &'static str = "datetime get";
}

/// Set the device's clock.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
pub struct DateTimeSet {
    /// `YYYY-MM-DDTHH:MM:SS`, optionally with `.mmm` and a `Z` or `+HH:MM` suffix.
    pub datetime: String,
}

impl Command for DateTimeSet {
    type Response = Empty;
    const GROUP: u16 = OS;
    const ID: u8 = 4;
    const OP: Op = Op::Write;
    const NAME: &'static str = "datetime set";
}
