//! The groups beside os and img, as Zephyr's `smp_svr` sample registers them: their state
//! ([`Groups`]), the dispatch hook the server calls for any other group ([`lookup`], [`run`]),
//! and their v1 error translation ([`to_v1`]). Each group's handlers live in its own module.

use serde::{Deserialize, Serialize};
use smpflash_core::command::fs as cfs;
use smpflash_core::command::Command;
use smpflash_core::rc::{self, group};

use crate::profile::Profile;
use crate::smp::fs;
use crate::smp::request::{Handled, Kind, Request};
use crate::state::State;

/// What the groups remember: flash-backed parts persist in the state file, the rest is RAM.
#[derive(Debug, Clone, Default)]
pub struct Groups {
    /// The littlefs-like file system at `/lfs1`.
    pub files: fs::Files,
    /// The fs group's open file.
    pub transfer: fs::Transfer,
}

/// The flash-backed part of [`Groups`], as the state file holds it.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Saved {
    /// Files.
    #[serde(default)]
    pub files: fs::Files,
}

impl Groups {
    /// After a power cycle: what flash kept.
    pub fn from_saved(s: Saved) -> Self {
        Groups { files: s.files, ..Groups::default() }
    }

    /// What to keep in the state file.
    pub fn saved(&self) -> Saved {
        Saved { files: self.files.clone() }
    }
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
        _ => return None,
    })
}

impl GroupCmd {
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
            SupportedHashes | FileClose => return None,
        })
    }
}

/// Runs `cmd`.
pub fn run(state: &mut State, profile: &Profile, cmd: GroupCmd, r: &mut Request<'_>) -> Handled {
    let g = &mut state.groups;
    match cmd {
        GroupCmd::FileUpload => fs::upload(&mut g.files, &mut g.transfer, profile, r),
        GroupCmd::FileDownload => fs::download(&g.files, &mut g.transfer, profile, r),
        GroupCmd::FileStatus => fs::status(&g.files, r),
        GroupCmd::FileHash => fs::hash(&g.files, r),
        GroupCmd::SupportedHashes => fs::supported(),
        GroupCmd::FileClose => fs::close(&mut g.transfer),
    }
}

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
        _ => rc::MGMT_ERR_EUNKNOWN,
    }
}
