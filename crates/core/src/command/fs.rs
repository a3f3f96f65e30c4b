//! File system management group (8): file upload and download, status, hash/checksum, the
//! supported hash/checksum types, and closing the open file.
//!
//! Field names and rules are Zephyr's `subsys/mgmt/mcumgr/grp/fs_mgmt/src/fs_mgmt.c`: an
//! upload's first chunk (`off` 0) must carry `len` and truncates an existing file; a later
//! chunk's `off` must be the file's current length, or the device answers
//! `FS_MGMT_ERR_FILE_OFFSET_NOT_VALID` with that length as `len`; a download answers the chunk
//! at `off` (its size is the device's `MCUMGR_GRP_FS_DL_CHUNK_SIZE`) and, for `off` 0 only, the
//! file's length.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_bytes::ByteBuf;

use super::{Command, Empty};
use crate::frame::Op;
use crate::rc::group::FS;

/// One chunk of a file upload.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, Serialize)]
pub struct FileUpload {
    /// Offset of this chunk; a later chunk's must be the file's length on the device.
    pub off: u64,
    /// The chunk's bytes.
    pub data: ByteBuf,
    /// Path on the device, e.g. `/lfs1/log.txt`.
    pub name: String,
    /// Length of the whole file (first chunk only; Zephyr refuses a first chunk without it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub len: Option<u64>,
}

/// Answer to [`FileUpload`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
pub struct FileUploadResponse {
    /// The file's length on the device after this chunk: the next offset it takes.
    pub off: u64,
}

impl Command for FileUpload {
    type Response = FileUploadResponse;
    const GROUP: u16 = FS;
    const ID: u8 = 0;
    const OP: Op = Op::Write;
    const NAME: &'static str = "file upload";
    /// A flash file system may erase a block before it writes one, and littlefs compacts
    /// metadata now and then: a few erases of 4 KiB pages at 85 ms each.
    const TIMEOUT: Option<Duration> = Some(FILE_WRITE_TIMEOUT);
}

/// Default wait for a [`FileUpload`] answer (see docs/cli.md, "Timeouts").
pub const FILE_WRITE_TIMEOUT: Duration = Duration::from_secs(5);

/// Ask for the chunk of a file at `off`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, Serialize)]
pub struct FileDownload {
    /// Offset to read from.
    pub off: u64,
    /// Path on the device.
    pub name: String,
}

/// Answer to [`FileDownload`].
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, Serialize)]
pub struct FileDownloadResponse {
    /// Offset of `data` (the request's).
    pub off: u64,
    /// The bytes at `off`: up to the device's download chunk size.
    pub data: ByteBuf,
    /// Length of the whole file (only in the answer for `off` 0).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub len: Option<u64>,
}

impl Command for FileDownload {
    type Response = FileDownloadResponse;
    const GROUP: u16 = FS;
    const ID: u8 = 0;
    const OP: Op = Op::Read;
    const NAME: &'static str = "file download";
}

/// Ask a file's length (`CONFIG_MCUMGR_GRP_FS_FILE_STATUS`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, Serialize)]
pub struct FileStatus {
    /// Path on the device.
    pub name: String,
}

/// Answer to [`FileStatus`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
pub struct FileStatusResponse {
    /// The file's length in bytes.
    pub len: u64,
}

impl Command for FileStatus {
    type Response = FileStatusResponse;
    const GROUP: u16 = FS;
    const ID: u8 = 1;
    const OP: Op = Op::Read;
    const NAME: &'static str = "file status";
}

/// Ask a hash or checksum of a file, or of `len` bytes from `off`
/// (`CONFIG_MCUMGR_GRP_FS_CHECKSUM_HASH`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, Serialize)]
pub struct FileHash {
    /// Path on the device.
    pub name: String,
    /// `"sha256"` or `"crc32"`; the device's default (crc32 when built in) if absent.
    #[serde(rename = "type", default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
    /// Where to start.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub off: Option<u64>,
    /// How many bytes; to the end if absent (Zephyr refuses 0).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub len: Option<u64>,
}

/// Answer to [`FileHash`].
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
pub struct FileHashResponse {
    /// The type used.
    #[serde(rename = "type")]
    pub kind: String,
    /// Offset, when the request gave a non-zero one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub off: Option<u64>,
    /// Bytes hashed.
    pub len: u64,
    /// The hash (a byte string, sha256) or checksum (a number, crc32).
    pub output: HashOutput,
}

/// A hash is a byte string, a checksum a number (Zephyr's `byte_string` flag of the type).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(untagged)]
pub enum HashOutput {
    /// A checksum, e.g. crc32.
    Number(u64),
    /// A hash, e.g. sha256.
    Bytes(ByteBuf),
}

impl HashOutput {
    /// Lower-case hex of a hash; a checksum as 8 hex digits (crc32's usual form).
    pub fn to_hex(&self) -> String {
        match self {
            HashOutput::Number(n) => format!("{n:08x}"),
            HashOutput::Bytes(b) => hex::encode(b),
        }
    }
}

impl Command for FileHash {
    type Response = FileHashResponse;
    const GROUP: u16 = FS;
    const ID: u8 = 2;
    const OP: Op = Op::Read;
    const NAME: &'static str = "file hash";
    /// The device reads the whole file before it answers: a 1 MiB file on external flash
    /// takes seconds.
    const TIMEOUT: Option<Duration> = Some(Duration::from_secs(30));
}

/// Ask which hash and checksum types the device has
/// (`CONFIG_MCUMGR_GRP_FS_CHECKSUM_HASH_SUPPORTED_CMD`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize)]
pub struct SupportedHashes {}

/// Answer to [`SupportedHashes`].
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, Serialize)]
pub struct SupportedHashesResponse {
    /// Type name to its description.
    #[serde(default)]
    pub types: BTreeMap<String, HashType>,
}

/// One hash or checksum type.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
pub struct HashType {
    /// 1: a byte string (a hash); 0: a number (a checksum).
    pub format: u32,
    /// Output size in bytes.
    pub size: u32,
}

impl Command for SupportedHashes {
    type Response = SupportedHashesResponse;
    const GROUP: u16 = FS;
    const ID: u8 = 3;
    const OP: Op = Op::Read;
    const NAME: &'static str = "supported file hashes";
}

/// Close the file an upload or download left open.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize)]
pub struct FileClose {}

impl Command for FileClose {
    type Response = Empty;
    const GROUP: u16 = FS;
    const ID: u8 = 4;
    const OP: Op = Op::Write;
    const NAME: &'static str = "file close";
}
