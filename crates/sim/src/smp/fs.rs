//! File system group handlers with Zephyr's rules (`fs_mgmt.c`) over a littlefs-like store
//! mounted at `/lfs1`, as in Zephyr's `smp_svr` sample: upload, download, status,
//! hash/checksum, the supported types, close.

use std::collections::BTreeMap;

use ciborium::Value;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::profile::Profile;
use crate::smp::request::{field, map, Fail, Handled, Request};
use smpflash_core::rc::{fs as rc, group, MGMT_ERR_EINVAL};

/// Where the file system is mounted (`smp_svr`'s littlefs).
pub const MOUNT: &str = "/lfs1";

/// Bytes the file system holds unless the profile says (`fs_size`). Zephyr's native_sim
/// fixtures mount a 16 KiB littlefs; the virtual device models a board with a 2 MiB storage
/// partition so megabyte transfers fit.
pub const CAPACITY: usize = 2 * 1024 * 1024;

/// The profile's file system size.
pub fn capacity(profile: &Profile) -> usize {
    profile.fs_size.unwrap_or(CAPACITY)
}

/// `CONFIG_MCUMGR_GRP_FS_PATH_LEN` (default 64).
pub const PATH_LEN: usize = 64;

/// `CONFIG_MCUMGR_GRP_FS_MAX_OFFSET_LEN` (default 4).
const MAX_OFFSET_LEN: usize = 4;

/// `fs_mgmt_config.h`'s `CBOR_AND_OTHER_HDR`: what a download answer needs besides data.
const CBOR_AND_OTHER_HDR: usize = 8
    + (9 + 1)
    + (1 + 3 + MAX_OFFSET_LEN)
    + (1 + 4 + MAX_OFFSET_LEN)
    + (1 + 2 + 1)
    + (1 + 3 + MAX_OFFSET_LEN);

/// `MCUMGR_GRP_FS_DL_CHUNK_SIZE` for a device with `buf_size` buffers.
pub fn download_chunk(buf_size: usize) -> usize {
    buf_size.saturating_sub(CBOR_AND_OTHER_HDR).max(1)
}

/// The files (kept in the state file: littlefs lives in flash).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Files {
    /// Path to contents.
    pub files: BTreeMap<String, Vec<u8>>,
}

/// `fs_mgmt_ctxt`: the open file (RAM, lost on reset).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Transfer {
    state: Mode,
    path: String,
    off: usize,
    len: usize,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
enum Mode {
    #[default]
    Idle,
    Upload,
    Download,
}

fn fs_err(rc: i64) -> Fail {
    Fail::Group { group: group::FS, rc, reason: None }
}

/// What `fs_stat` says of a path: littlefs answers `-ENOENT` off the mount point or for a
/// missing file, and a directory for the mount point itself.
enum Stat {
    File(usize),
    Dir,
    Missing,
}

impl Files {
    fn stat(&self, path: &str) -> Stat {
        if path == MOUNT || path == "/lfs1/" {
            return Stat::Dir;
        }
        match self.files.get(path) {
            Some(f) => Stat::File(f.len()),
            None => Stat::Missing,
        }
    }

    fn used(&self) -> usize {
        self.files.values().map(Vec::len).sum()
    }

    /// `fs_mgmt_filelen`.
    fn filelen(&self, path: &str) -> Result<usize, Fail> {
        match self.stat(path) {
            Stat::File(n) => Ok(n),
            Stat::Dir => Err(fs_err(rc::FILE_IS_DIRECTORY)),
            Stat::Missing => Err(fs_err(rc::FILE_NOT_FOUND)),
        }
    }

    /// `fs_open(FS_O_CREATE | FS_O_WRITE)`: only files directly under the mount point (the
    /// store has no directories, so a missing parent is `-ENOENT`, Zephyr's "mount point not
    /// found").
    fn create(&mut self, path: &str) -> Result<(), Fail> {
        let Some(rest) = path.strip_prefix("/lfs1/") else {
            return Err(fs_err(rc::MOUNT_POINT_NOT_FOUND));
        };
        if rest.is_empty() {
            return Err(fs_err(rc::FILE_IS_DIRECTORY));
        }
        if rest.contains('/') {
            return Err(fs_err(rc::MOUNT_POINT_NOT_FOUND));
        }
        self.files.entry(path.to_string()).or_default();
        Ok(())
    }
}

fn text<'a>(body: &'a Value, key: &str) -> Option<&'a str> {
    field(body, key).and_then(Value::as_text)
}

fn uint(body: &Value, key: &str) -> Option<u64> {
    field(body, key).and_then(Value::as_integer).and_then(|i| u64::try_from(i).ok())
}

/// The request's `name` as Zephyr checks it: present, non-empty, at most `PATH_LEN` bytes.
fn name(body: &Value) -> Result<String, Fail> {
    match text(body, "name") {
        Some(n) if !n.is_empty() && n.len() <= PATH_LEN => Ok(n.to_string()),
        _ => Err(Fail::Smp(MGMT_ERR_EINVAL)),
    }
}

/// `fs_mgmt_file_upload`.
pub fn upload(files: &mut Files, t: &mut Transfer, profile: &Profile, r: &mut Request<'_>) -> Handled {
    let off = uint(r.body, "off");
    let len = uint(r.body, "len");
    let data = match field(r.body, "data") {
        Some(Value::Bytes(b)) => b.clone(),
        _ => Vec::new(),
    };
    let path = name(r.body)?;
    let Some(off) = off else { return Err(Fail::Smp(MGMT_ERR_EINVAL)) };
    if off == 0 && len.is_none() {
        return Err(Fail::Smp(MGMT_ERR_EINVAL));
    }
    let off = off as usize;
    if t.state != Mode::Upload || t.path != path {
        *t = Transfer::default();
    }
    if t.state == Mode::Idle {
        files.create(&path)?;
        *t = Transfer { state: Mode::Upload, path: path.clone(), off: 0, len: 0 };
    }
    if off == 0 {
        t.len = len.unwrap_or(0) as usize;
        if let Err(e) = files.filelen(&path) {
            *t = Transfer::default();
            return Err(e);
        }
    } else if t.off == 0 {
        match files.filelen(&path) {
            Ok(n) => t.off = n,
            Err(e) => {
                *t = Transfer::default();
                return Err(e);
            }
        }
    }
    if off > 0 && off != t.off {
        // The file's length beside the error, so the client can go on from there.
        let at = t.off;
        *t = Transfer::default();
        return Err(Fail::GroupWith {
            group: group::FS,
            rc: rc::FILE_OFFSET_NOT_VALID,
            extra: vec![("len", Value::Integer((at as u64).into()))],
        });
    }
    if !data.is_empty() {
        let file_len = files.files.get(&path).map_or(0, Vec::len);
        let (base, keep) = if off == 0 { (files.used() - file_len, 0) } else { (files.used(), file_len) };
        if base + data.len() > capacity(profile) {
            // littlefs: -ENOSPC from fs_write.
            *t = Transfer::default();
            return Err(fs_err(rc::FILE_WRITE_FAILED));
        }
        let f = files.files.entry(path.clone()).or_default();
        f.truncate(keep);
        f.extend_from_slice(&data);
        t.off += data.len();
        r.reply.cost += profile.flash.program_per_byte * data.len() as u32;
        r.reply.flash_changed = true;
    }
    let answer = vec![("off", Value::Integer((t.off as u64).into()))];
    finish_check(t);
    Ok(answer)
}

/// `fs_mgmt_upload_download_finish_check`.
fn finish_check(t: &mut Transfer) {
    if t.len > 0 && t.off >= t.len {
        *t = Transfer::default();
    }
}

/// `fs_mgmt_file_download`.
pub fn download(files: &Files, t: &mut Transfer, profile: &Profile, r: &mut Request<'_>) -> Handled {
    let off = uint(r.body, "off");
    let path = name(r.body)?;
    let Some(off) = off else { return Err(Fail::Smp(MGMT_ERR_EINVAL)) };
    if t.state != Mode::Download || t.path != path {
        *t = Transfer::default();
    }
    if t.state == Mode::Idle {
        let len = files.filelen(&path)?;
        *t = Transfer { state: Mode::Download, path: path.clone(), off: 0, len };
    }
    let content = files.files.get(&path).map(Vec::as_slice).unwrap_or_default();
    // littlefs seeks past the end without complaint and reads nothing there.
    let from = (off as usize).min(content.len());
    let n = download_chunk(profile.buf_size).min(content.len() - from);
    let data = content[from..from + n].to_vec();
    t.off = from + n;
    let mut answer = vec![("off", Value::Integer(off.into())), ("data", Value::Bytes(data))];
    if off == 0 {
        answer.push(("len", Value::Integer((t.len as u64).into())));
    }
    finish_check(t);
    Ok(answer)
}

/// `fs_mgmt_file_status`.
pub fn status(files: &Files, r: &mut Request<'_>) -> Handled {
    let path = name(r.body)?;
    let len = files.filelen(&path)?;
    Ok(vec![("len", Value::Integer((len as u64).into()))])
}

/// The types the device has, as `fs_mgmt_hash_checksum_register_*` registers them.
const TYPES: [(&str, bool, u32); 2] = [("crc32", false, 4), ("sha256", true, 32)];

/// `fs_mgmt_file_hash_checksum`; the default type is crc32, as in Zephyr when it is built in.
pub fn hash(files: &Files, r: &mut Request<'_>) -> Handled {
    let kind = text(r.body, "type").unwrap_or("crc32").to_string();
    let path = name(r.body)?;
    let off = uint(r.body, "off").unwrap_or(0) as usize;
    let len = uint(r.body, "len");
    if len == Some(0) || kind.len() > 8 {
        return Err(Fail::Smp(MGMT_ERR_EINVAL));
    }
    if !TYPES.iter().any(|(n, _, _)| *n == kind) {
        return Err(fs_err(rc::CHECKSUM_HASH_NOT_FOUND));
    }
    let file_len = files.filelen(&path)?;
    if file_len <= off {
        return Err(fs_err(if file_len == 0 { rc::FILE_EMPTY } else { rc::FILE_OFFSET_LARGER_THAN_FILE }));
    }
    let content = &files.files[&path][off..];
    let take = len.map_or(content.len(), |l| (l as usize).min(content.len()));
    let bytes = &content[..take];
    let output = if kind == "sha256" {
        Value::Bytes(Sha256::digest(bytes).to_vec())
    } else {
        Value::Integer(u64::from(crc32fast::hash(bytes)).into())
    };
    let mut answer = vec![("type", Value::Text(kind))];
    if off != 0 {
        answer.push(("off", Value::Integer((off as u64).into())));
    }
    answer.push(("len", Value::Integer((take as u64).into())));
    answer.push(("output", output));
    Ok(answer)
}

/// `fs_mgmt_supported_hash_checksum`.
pub fn supported() -> Handled {
    let types = TYPES
        .iter()
        .map(|(n, bytes, size)| {
            (
                Value::Text((*n).into()),
                map(vec![
                    ("format", Value::Integer(u32::from(*bytes).into())),
                    ("size", Value::Integer((*size).into())),
                ]),
            )
        })
        .collect();
    Ok(vec![("types", Value::Map(types))])
}

/// `fs_mgmt_close_opened_file`.
pub fn close(t: &mut Transfer) -> Handled {
    *t = Transfer::default();
    Ok(vec![])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn download_chunk_follows_zephyr_config() {
        // 384-byte buffers: 384 - 47.
        assert_eq!(download_chunk(384), 337);
        assert_eq!(download_chunk(2048), 2001);
    }
}
