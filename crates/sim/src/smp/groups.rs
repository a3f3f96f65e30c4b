//! The groups beside os and img, as Zephyr's `smp_svr` sample registers them: their state
//! ([`Groups`]), the dispatch hook the server calls for any other group ([`lookup`], [`run`]),
//! and their v1 error translation ([`to_v1`]). Each group's handlers live in its own module.

use std::time::Instant;

use serde::{Deserialize, Serialize};
use smpflash_core::command::basic as cbasic;
use smpflash_core::command::enumeration as cenum;
use smpflash_core::command::fs as cfs;
use smpflash_core::command::os as cos;
use smpflash_core::command::settings as cset;
use smpflash_core::command::shell as cshell;
use smpflash_core::command::stat as cstat;
use smpflash_core::command::Command;
use smpflash_core::frame::HEADER_LEN;
use smpflash_core::rc::{self, group};

use crate::profile::Profile;
use crate::smp::request::{map, Fail, Handled, Kind, Request};
use crate::smp::{basic, enumeration, fs, os_extra, settings, shell, stat};
use crate::state::State;

/// What the groups remember: flash-backed parts persist in the state file, the rest is RAM.
#[derive(Debug, Clone)]
pub struct Groups {
    /// The littlefs-like file system at `/lfs1`.
    pub files: fs::Files,
    /// The fs group's open file.
    pub transfer: fs::Transfer,
    /// The settings.
    pub settings: settings::Settings,
    /// What the statistics count.
    pub counters: stat::Counters,
    /// The clock.
    pub rtc: os_extra::Rtc,
    /// When the application started (uptime, `ticks`).
    pub booted: Instant,
}

impl Default for Groups {
    fn default() -> Self {
        Groups {
            files: fs::Files::default(),
            transfer: fs::Transfer::default(),
            settings: settings::Settings::default(),
            counters: stat::Counters::default(),
            rtc: os_extra::Rtc::default(),
            booted: Instant::now(),
        }
    }
}

/// The flash-backed part of [`Groups`], as the state file holds it.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Saved {
    /// Files.
    #[serde(default)]
    pub files: fs::Files,
    /// Settings in storage.
    #[serde(default)]
    pub settings: settings::Stored,
}

impl Groups {
    /// After a power cycle: what flash kept, and the application's `settings_load` at boot.
    pub fn from_saved(s: Saved) -> Self {
        let mut g = Groups { files: s.files, ..Groups::default() };
        g.settings.stored = s.settings;
        g.settings.boot();
        g
    }

    /// What to keep in the state file.
    pub fn saved(&self) -> Saved {
        Saved { files: self.files.clone(), settings: self.settings.stored.clone() }
    }

    /// A reset: RAM is lost (the open file, run-time settings, the clock, counters), the
    /// application loads its settings again.
    pub fn reset(&mut self) {
        *self = Groups::from_saved(self.saved());
    }
}

/// The groups the device registers, in Zephyr's order (handler sections sorted by name), with
/// `smp_svr`'s names and handler counts.
pub fn registered(profile: &Profile) -> Vec<enumeration::Group> {
    // os_mgmt's handler table ends at bootloader info (id 8) when that is built in.
    let os_handlers = if profile.no_bootloader_info { 8 } else { 9 };
    vec![
        (group::ENUM, "enum mgmt", 4),
        (group::FS, "fs mgmt", 5),
        (group::IMAGE, "img mgmt", 7),
        (group::OS, "os mgmt", os_handlers),
        (group::SETTINGS, "settings mgmt", 4),
        (group::SHELL, "shell mgmt", 1),
        (group::STAT, "stat mgmt", 2),
        (group::ZEPHYR_BASIC, "zephyr basic mgmt", 1),
    ]
}

/// A command of these groups.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GroupCmd {
    /// fs file upload (write of id 0).
    FileUpload,
    /// fs file download (read of id 0).
    FileDownload,
    /// fs file status.
    FileStatus,
    /// fs hash/checksum.
    FileHash,
    /// fs supported hash/checksum types.
    SupportedHashes,
    /// fs close the open file.
    FileClose,
    /// os task statistics.
    TaskStats,
    /// os datetime read.
    DateTimeRead,
    /// os datetime write.
    DateTimeWrite,
    /// shell exec.
    ShellExec,
    /// stat show.
    StatShow,
    /// stat list.
    StatList,
    /// settings read.
    SettingRead,
    /// settings write.
    SettingWrite,
    /// settings delete.
    SettingDelete,
    /// settings commit.
    SettingsCommit,
    /// settings load.
    SettingsLoad,
    /// settings save.
    SettingsSave,
    /// enum count.
    EnumCount,
    /// enum list.
    EnumList,
    /// enum single.
    EnumSingle,
    /// enum details.
    EnumDetails,
    /// Zephyr basic storage erase.
    StorageErase,
}

/// Zephyr's handler table for these groups: (read, write) of a command, `None` when the group
/// or the id is unknown.
pub fn lookup(grp: u16, id: u8) -> Option<(Option<GroupCmd>, Option<GroupCmd>)> {
    use GroupCmd::*;
    // Addressed by core's command definitions, so the device and the client agree on numbers.
    Some(match (grp, id) {
        (cfs::FileDownload::GROUP, cfs::FileDownload::ID) => (Some(FileDownload), Some(FileUpload)),
        (cfs::FileStatus::GROUP, cfs::FileStatus::ID) => (Some(FileStatus), None),
        (cfs::FileHash::GROUP, cfs::FileHash::ID) => (Some(FileHash), None),
        (cfs::SupportedHashes::GROUP, cfs::SupportedHashes::ID) => (Some(SupportedHashes), None),
        (cfs::FileClose::GROUP, cfs::FileClose::ID) => (None, Some(FileClose)),
        (cos::TaskStats::GROUP, cos::TaskStats::ID) => (Some(TaskStats), None),
        (cos::DateTimeGet::GROUP, cos::DateTimeGet::ID) => (Some(DateTimeRead), Some(DateTimeWrite)),
        (cshell::ShellExec::GROUP, cshell::ShellExec::ID) => (None, Some(ShellExec)),
        (cstat::StatShow::GROUP, cstat::StatShow::ID) => (Some(StatShow), None),
        (cstat::StatList::GROUP, cstat::StatList::ID) => (Some(StatList), None),
        (cset::SettingRead::GROUP, cset::SettingRead::ID) => (Some(SettingRead), Some(SettingWrite)),
        (cset::SettingDelete::GROUP, cset::SettingDelete::ID) => (None, Some(SettingDelete)),
        (cset::SettingsCommit::GROUP, cset::SettingsCommit::ID) => (None, Some(SettingsCommit)),
        (cset::SettingsLoad::GROUP, cset::SettingsLoad::ID) => (Some(SettingsLoad), Some(SettingsSave)),
        (cenum::GroupCount::GROUP, cenum::GroupCount::ID) => (Some(EnumCount), None),
        (cenum::GroupList::GROUP, cenum::GroupList::ID) => (Some(EnumList), None),
        (cenum::GroupSingle::GROUP, cenum::GroupSingle::ID) => (Some(EnumSingle), None),
        (cenum::GroupDetails::GROUP, cenum::GroupDetails::ID) => (Some(EnumDetails), None),
        (cbasic::StorageErase::GROUP, cbasic::StorageErase::ID) => (None, Some(StorageErase)),
        _ => return None,
    })
}

impl GroupCmd {
    /// The command's name, as core's command definitions spell it.
    pub fn name(self) -> &'static str {
        use GroupCmd::*;
        match self {
            FileUpload => cfs::FileUpload::NAME,
            FileDownload => cfs::FileDownload::NAME,
            FileStatus => cfs::FileStatus::NAME,
            FileHash => cfs::FileHash::NAME,
            SupportedHashes => cfs::SupportedHashes::NAME,
            FileClose => cfs::FileClose::NAME,
            TaskStats => cos::TaskStats::NAME,
            DateTimeRead => cos::DateTimeGet::NAME,
            DateTimeWrite => cos::DateTimeSet::NAME,
            ShellExec => cshell::ShellExec::NAME,
            StatShow => cstat::StatShow::NAME,
            StatList => cstat::StatList::NAME,
            SettingRead => cset::SettingRead::NAME,
            SettingWrite => cset::SettingWrite::NAME,
            SettingDelete => cset::SettingDelete::NAME,
            SettingsCommit => cset::SettingsCommit::NAME,
            SettingsLoad => cset::SettingsLoad::NAME,
            SettingsSave => cset::SettingsSave::NAME,
            EnumCount => cenum::GroupCount::NAME,
            EnumList => cenum::GroupList::NAME,
            EnumSingle => cenum::GroupSingle::NAME,
            EnumDetails => cenum::GroupDetails::NAME,
            StorageErase => cbasic::StorageErase::NAME,
        }
    }

    /// The keys the handler decodes with `zcbor_map_decode_bulk` (see the server's `Cmd::keys`).
    pub fn keys(self) -> Option<&'static [(&'static str, Kind)]> {
        use GroupCmd::*;
        Some(match self {
            FileUpload => {
                &[("off", Kind::Uint64), ("name", Kind::Text), ("data", Kind::Bytes), ("len", Kind::Uint64)]
            }
            FileDownload => &[("off", Kind::Uint64), ("name", Kind::Text)],
            FileStatus => &[("name", Kind::Text)],
            FileHash => {
                &[("type", Kind::Text), ("name", Kind::Text), ("off", Kind::Uint64), ("len", Kind::Uint64)]
            }
            DateTimeWrite => &[("datetime", Kind::Text)],
            // shell_mgmt decodes the map itself, looking for `argv`.
            ShellExec => &[("argv", Kind::Array)],
            StatShow => &[("name", Kind::Text)],
            SettingRead => &[("name", Kind::Text), ("max_size", Kind::Uint)],
            SettingWrite => &[("name", Kind::Text), ("val", Kind::Bytes)],
            SettingDelete => &[("name", Kind::Text)],
            // Zephyr 4.4's save decodes a map (a non-map body is MGMT_ERR_EINVAL on the
            // fixtures), with an optional `name` of the subtree to save.
            SettingsSave => &[("name", Kind::Text)],
            EnumSingle => &[("index", Kind::Uint)],
            EnumDetails => &[("groups", Kind::Array)],
            SupportedHashes | FileClose | TaskStats | DateTimeRead | StatList | SettingsCommit
            | SettingsLoad | EnumCount | EnumList | StorageErase => return None,
        })
    }
}

/// Runs `cmd`. An answer larger than the device's buffer is `MGMT_ERR_EMSGSIZE`, as the
/// encoder runs out of room in Zephyr's net_buf.
pub fn run(state: &mut State, profile: &Profile, cmd: GroupCmd, r: &mut Request<'_>) -> Handled {
    let g = &mut state.groups;
    g.counters.requests += 1;
    let uptime = g.booted.elapsed();
    let groups = registered(profile);
    let answer = match cmd {
        GroupCmd::FileUpload => {
            let before = g.files.files.values().map(Vec::len).sum::<usize>();
            let a = fs::upload(&mut g.files, &mut g.transfer, profile, r);
            let after = g.files.files.values().map(Vec::len).sum::<usize>();
            g.counters.bytes_written += after.saturating_sub(before) as u64;
            a
        }
        GroupCmd::FileDownload => fs::download(&g.files, &mut g.transfer, profile, r),
        GroupCmd::FileStatus => fs::status(&g.files, r),
        GroupCmd::FileHash => fs::hash(&g.files, r),
        GroupCmd::SupportedHashes => fs::supported(),
        GroupCmd::FileClose => fs::close(&mut g.transfer),
        GroupCmd::TaskStats => os_extra::taskstat(),
        GroupCmd::DateTimeRead => os_extra::datetime_read(&g.rtc),
        GroupCmd::DateTimeWrite => os_extra::datetime_write(&mut g.rtc, r),
        GroupCmd::ShellExec => shell::exec(uptime, r),
        GroupCmd::StatShow => stat::show(&g.counters, uptime, r),
        GroupCmd::StatList => stat::list(&g.counters, uptime),
        GroupCmd::SettingRead => settings::read(&g.settings, r),
        GroupCmd::SettingWrite => settings::write(&mut g.settings, r),
        GroupCmd::SettingDelete => settings::delete(&mut g.settings, r),
        GroupCmd::SettingsCommit => Ok(vec![]),
        GroupCmd::SettingsLoad => settings::load(&mut g.settings),
        GroupCmd::SettingsSave => settings::save(&mut g.settings, r),
        GroupCmd::EnumCount => enumeration::count(&groups),
        GroupCmd::EnumList => enumeration::list(&groups),
        GroupCmd::EnumSingle => enumeration::single(&groups, r),
        GroupCmd::EnumDetails => enumeration::details(&groups, r),
        GroupCmd::StorageErase => {
            g.counters.erases += 1;
            basic::storage_erase(&mut g.files, &mut g.settings, profile, r)
        }
    }?;
    let mut body = Vec::new();
    ciborium::into_writer(&map(answer.clone()), &mut body).expect("CBOR into a Vec cannot fail");
    if HEADER_LEN + body.len() > profile.buf_size {
        return Err(Fail::Smp(MGMT_ERR_EMSGSIZE));
    }
    Ok(answer)
}

/// `MGMT_ERR_EMSGSIZE`: the answer does not fit the device's buffer.
const MGMT_ERR_EMSGSIZE: i64 = 7;

/// What a v1 client sees for a group code of these groups (each group's
/// `*_translate_error_code`).
pub fn to_v1(grp: u16, code: i64) -> i64 {
    match grp {
        // fs_mgmt_translate_error_code.
        group::FS => match code {
            rc::fs::FILE_INVALID_NAME | rc::fs::CHECKSUM_HASH_NOT_FOUND => rc::MGMT_ERR_EINVAL,
            rc::fs::FILE_NOT_FOUND | rc::fs::MOUNT_POINT_NOT_FOUND => rc::MGMT_ERR_ENOENT,
            _ => rc::MGMT_ERR_EUNKNOWN,
        },
        // stat_mgmt_translate_error_code: INVALID_GROUP and INVALID_STAT_NAME.
        group::STAT => match code {
            2 | 3 => rc::MGMT_ERR_ENOENT,
            4 => rc::MGMT_ERR_EINVAL,
            _ => rc::MGMT_ERR_EUNKNOWN,
        },
        // settings_mgmt_translate_error_code.
        group::SETTINGS => match code {
            rc::settings::KEY_TOO_LONG => rc::MGMT_ERR_EINVAL,
            rc::settings::KEY_NOT_FOUND | 4 => rc::MGMT_ERR_ENOENT,
            _ => rc::MGMT_ERR_EUNKNOWN,
        },
        // shell_mgmt_translate_error_code.
        group::SHELL => match code {
            rc::shell::COMMAND_TOO_LONG | rc::shell::EMPTY_COMMAND => rc::MGMT_ERR_EINVAL,
            _ => rc::MGMT_ERR_EUNKNOWN,
        },
        // enum_mgmt_translate_error_code: only TOO_MANY_GROUP_ENTRIES is EINVAL.
        group::ENUM => match code {
            2 => rc::MGMT_ERR_EINVAL,
            _ => rc::MGMT_ERR_EUNKNOWN,
        },
        _ => rc::MGMT_ERR_EUNKNOWN,
    }
}
