//! Zephyr's error codes: the SMP-level `MGMT_ERR_*` set and each group's own rc space.
//!
//! Names and meanings follow Zephyr's `mgmt_defines.h`, `img_mgmt.h`, `os_mgmt.h` and
//! `zephyr_basic_mgmt.h`, so a user can search for the exact name the firmware uses.

/// SMP-level: the command is not supported by the device.
pub const MGMT_ERR_ENOTSUP: i64 = 8;
/// SMP-level: unknown error.
pub const MGMT_ERR_EUNKNOWN: i64 = 1;
/// SMP-level: the request used a newer SMP version than the device speaks.
pub const MGMT_ERR_UNSUPPORTED_TOO_NEW: i64 = 13;
/// SMP-level: the device is busy (reset refuses with this unless forced).
pub const MGMT_ERR_EBUSY: i64 = 10;

/// SMP-level: out of memory.
pub const MGMT_ERR_ENOMEM: i64 = 2;
/// SMP-level: an argument of the request is missing or invalid.
pub const MGMT_ERR_EINVAL: i64 = 3;
/// SMP-level: no such entry.
pub const MGMT_ERR_ENOENT: i64 = 5;
/// SMP-level: the device is in a state that does not allow the request.
pub const MGMT_ERR_EBADSTATE: i64 = 6;

/// The image group's own codes (`IMG_MGMT_ERR_*`) that code outside this table names: the
/// virtual device answers with them and smpflash matches on them, so both take the numbers
/// from here.
pub mod img {
    /// `IMG_MGMT_ERR_NO_IMAGE`.
    pub const NO_IMAGE: i64 = 3;
    /// `IMG_MGMT_ERR_NO_TLVS`.
    pub const NO_TLVS: i64 = 4;
    /// `IMG_MGMT_ERR_HASH_NOT_FOUND`.
    pub const HASH_NOT_FOUND: i64 = 8;
    /// `IMG_MGMT_ERR_NO_FREE_SLOT`.
    pub const NO_FREE_SLOT: i64 = 9;
    /// `IMG_MGMT_ERR_FLASH_WRITE_FAILED`.
    pub const FLASH_WRITE_FAILED: i64 = 12;
    /// `IMG_MGMT_ERR_INVALID_SLOT`.
    pub const INVALID_SLOT: i64 = 14;
    /// `IMG_MGMT_ERR_NO_FREE_MEMORY`.
    pub const NO_FREE_MEMORY: i64 = 15;
    /// `IMG_MGMT_ERR_INVALID_PAGE_OFFSET`.
    pub const INVALID_PAGE_OFFSET: i64 = 19;
    /// `IMG_MGMT_ERR_INVALID_OFFSET`.
    pub const INVALID_OFFSET: i64 = 20;
    /// `IMG_MGMT_ERR_INVALID_LENGTH`.
    pub const INVALID_LENGTH: i64 = 21;
    /// `IMG_MGMT_ERR_INVALID_IMAGE_HEADER`.
    pub const INVALID_IMAGE_HEADER: i64 = 22;
    /// `IMG_MGMT_ERR_INVALID_IMAGE_HEADER_MAGIC`.
    pub const INVALID_IMAGE_HEADER_MAGIC: i64 = 23;
    /// `IMG_MGMT_ERR_INVALID_HASH`.
    pub const INVALID_HASH: i64 = 24;
    /// `IMG_MGMT_ERR_INVALID_FLASH_ADDRESS`.
    pub const INVALID_FLASH_ADDRESS: i64 = 25;
    /// `IMG_MGMT_ERR_CURRENT_VERSION_IS_NEWER`.
    pub const CURRENT_VERSION_IS_NEWER: i64 = 27;
    /// `IMG_MGMT_ERR_IMAGE_ALREADY_PENDING`.
    pub const IMAGE_ALREADY_PENDING: i64 = 28;
    /// `IMG_MGMT_ERR_INVALID_IMAGE_TOO_LARGE`.
    pub const INVALID_IMAGE_TOO_LARGE: i64 = 30;
    /// `IMG_MGMT_ERR_INVALID_IMAGE_DATA_OVERRUN`.
    pub const INVALID_IMAGE_DATA_OVERRUN: i64 = 31;
    /// `IMG_MGMT_ERR_IMAGE_CONFIRMATION_DENIED`.
    pub const IMAGE_CONFIRMATION_DENIED: i64 = 32;
    /// `IMG_MGMT_ERR_IMAGE_SETTING_TEST_TO_ACTIVE_DENIED`.
    pub const IMAGE_SETTING_TEST_TO_ACTIVE_DENIED: i64 = 33;
}

/// The OS group's own codes (`OS_MGMT_ERR_*`) that code outside this table names.
pub mod os {
    /// `OS_MGMT_ERR_INVALID_FORMAT`.
    pub const INVALID_FORMAT: i64 = 2;
    /// `OS_MGMT_ERR_QUERY_YIELDS_NO_ANSWER`.
    pub const QUERY_YIELDS_NO_ANSWER: i64 = 3;
}

/// The file system group's own codes (`FS_MGMT_ERR_*`, `fs_mgmt.h`).
pub mod fs {
    /// `FS_MGMT_ERR_UNKNOWN`.
    pub const UNKNOWN: i64 = 1;
    /// `FS_MGMT_ERR_FILE_INVALID_NAME`.
    pub const FILE_INVALID_NAME: i64 = 2;
    /// `FS_MGMT_ERR_FILE_NOT_FOUND`.
    pub const FILE_NOT_FOUND: i64 = 3;
    /// `FS_MGMT_ERR_FILE_IS_DIRECTORY`.
    pub const FILE_IS_DIRECTORY: i64 = 4;
    /// `FS_MGMT_ERR_FILE_WRITE_FAILED`.
    pub const FILE_WRITE_FAILED: i64 = 10;
    /// `FS_MGMT_ERR_FILE_OFFSET_NOT_VALID`: the answer carries the file's length as `len`.
    pub const FILE_OFFSET_NOT_VALID: i64 = 11;
    /// `FS_MGMT_ERR_FILE_OFFSET_LARGER_THAN_FILE`.
    pub const FILE_OFFSET_LARGER_THAN_FILE: i64 = 12;
    /// `FS_MGMT_ERR_CHECKSUM_HASH_NOT_FOUND`.
    pub const CHECKSUM_HASH_NOT_FOUND: i64 = 13;
    /// `FS_MGMT_ERR_MOUNT_POINT_NOT_FOUND`.
    pub const MOUNT_POINT_NOT_FOUND: i64 = 14;
    /// `FS_MGMT_ERR_FILE_EMPTY`.
    pub const FILE_EMPTY: i64 = 16;
}

/// The statistics group's own codes (`STAT_MGMT_ERR_*`).
pub mod stat {
    /// `STAT_MGMT_ERR_INVALID_STAT_NAME`: Zephyr 4.4 answers it for an unknown group name.
    pub const INVALID_STAT_NAME: i64 = 3;
}

/// The settings group's own codes (`SETTINGS_MGMT_ERR_*`).
pub mod settings {
    /// `SETTINGS_MGMT_ERR_KEY_TOO_LONG`.
    pub const KEY_TOO_LONG: i64 = 2;
    /// `SETTINGS_MGMT_ERR_KEY_NOT_FOUND`.
    pub const KEY_NOT_FOUND: i64 = 3;
    /// `SETTINGS_MGMT_ERR_ROOT_KEY_NOT_FOUND`.
    pub const ROOT_KEY_NOT_FOUND: i64 = 5;
    /// `SETTINGS_MGMT_ERR_SAVE_NOT_SUPPORTED`.
    pub const SAVE_NOT_SUPPORTED: i64 = 8;
}

/// The shell group's own codes (`SHELL_MGMT_RET_RC_*`).
pub mod shell {
    /// `SHELL_MGMT_RET_RC_COMMAND_TOO_LONG`.
    pub const COMMAND_TOO_LONG: i64 = 2;
    /// `SHELL_MGMT_RET_RC_EMPTY_COMMAND`.
    pub const EMPTY_COMMAND: i64 = 3;
}

/// The enumeration group's own codes (`ENUM_MGMT_ERR_*`).
pub mod enumeration {
    /// `ENUM_MGMT_ERR_INDEX_TOO_LARGE`.
    pub const INDEX_TOO_LARGE: i64 = 4;
}

/// Group numbers Zephyr assigns.
pub mod group {
    /// OS management.
    pub const OS: u16 = 0;
    /// Image management.
    pub const IMAGE: u16 = 1;
    /// Statistics.
    pub const STAT: u16 = 2;
    /// Settings.
    pub const SETTINGS: u16 = 3;
    /// Log.
    pub const LOG: u16 = 4;
    /// Crash.
    pub const CRASH: u16 = 5;
    /// Split image.
    pub const SPLIT: u16 = 6;
    /// Run.
    pub const RUN: u16 = 7;
    /// File system.
    pub const FS: u16 = 8;
    /// Shell.
    pub const SHELL: u16 = 9;
    /// Enumeration.
    pub const ENUM: u16 = 10;
    /// Zephyr basic (storage erase).
    pub const ZEPHYR_BASIC: u16 = 63;
    /// The first group number left to applications (`MGMT_GROUP_ID_PERUSER`).
    pub const PER_USER: u16 = 64;
}

type Table = &'static [(&'static str, &'static str)];

const MGMT_ERR: Table = &[
    ("MGMT_ERR_EOK", "no error"),
    ("MGMT_ERR_EUNKNOWN", "unknown error"),
    ("MGMT_ERR_ENOMEM", "out of memory"),
    ("MGMT_ERR_EINVAL", "invalid argument in the request"),
    ("MGMT_ERR_ETIMEOUT", "operation timed out on the device"),
    ("MGMT_ERR_ENOENT", "no such entry"),
    ("MGMT_ERR_EBADSTATE", "the device is in a state that does not allow this"),
    ("MGMT_ERR_EMSGSIZE", "response too large for the device's buffer"),
    ("MGMT_ERR_ENOTSUP", "command not supported by the device"),
    ("MGMT_ERR_ECORRUPT", "corrupt data"),
    ("MGMT_ERR_EBUSY", "the device is busy"),
    ("MGMT_ERR_EACCESSDENIED", "access denied"),
    ("MGMT_ERR_UNSUPPORTED_TOO_OLD", "the request's SMP version is too old for the device"),
    ("MGMT_ERR_UNSUPPORTED_TOO_NEW", "the request's SMP version is too new for the device"),
];

const IMG_MGMT_ERR: Table = &[
    ("IMG_MGMT_ERR_OK", "no error"),
    ("IMG_MGMT_ERR_UNKNOWN", "unknown image management error"),
    ("IMG_MGMT_ERR_FLASH_CONFIG_QUERY_FAIL", "failed to query the flash area configuration"),
    ("IMG_MGMT_ERR_NO_IMAGE", "there is no image in the slot"),
    ("IMG_MGMT_ERR_NO_TLVS", "the image in the slot has no TLVs"),
    ("IMG_MGMT_ERR_INVALID_TLV", "the image in the slot has an invalid TLV"),
    ("IMG_MGMT_ERR_TLV_MULTIPLE_HASHES_FOUND", "the image in the slot has several hash TLVs"),
    ("IMG_MGMT_ERR_TLV_INVALID_SIZE", "the image in the slot has a TLV of invalid size"),
    ("IMG_MGMT_ERR_HASH_NOT_FOUND", "the image in the slot has no hash TLV"),
    ("IMG_MGMT_ERR_NO_FREE_SLOT", "there is no free slot for the image"),
    ("IMG_MGMT_ERR_FLASH_OPEN_FAILED", "opening the flash area failed"),
    ("IMG_MGMT_ERR_FLASH_READ_FAILED", "reading flash failed"),
    ("IMG_MGMT_ERR_FLASH_WRITE_FAILED", "writing flash failed"),
    ("IMG_MGMT_ERR_FLASH_ERASE_FAILED", "erasing flash failed"),
    ("IMG_MGMT_ERR_INVALID_SLOT", "invalid slot"),
    ("IMG_MGMT_ERR_NO_FREE_MEMORY", "the device ran out of heap memory"),
    ("IMG_MGMT_ERR_FLASH_CONTEXT_ALREADY_SET", "the flash context is already set"),
    ("IMG_MGMT_ERR_FLASH_CONTEXT_NOT_SET", "the flash context is not set"),
    ("IMG_MGMT_ERR_FLASH_AREA_DEVICE_NULL", "the flash area has no device"),
    ("IMG_MGMT_ERR_INVALID_PAGE_OFFSET", "invalid page offset"),
    ("IMG_MGMT_ERR_INVALID_OFFSET", "missing or invalid offset"),
    ("IMG_MGMT_ERR_INVALID_LENGTH", "missing or invalid image length"),
    ("IMG_MGMT_ERR_INVALID_IMAGE_HEADER", "the image is smaller than an MCUboot header"),
    ("IMG_MGMT_ERR_INVALID_IMAGE_HEADER_MAGIC", "invalid header magic"),
    ("IMG_MGMT_ERR_INVALID_HASH", "invalid hash"),
    ("IMG_MGMT_ERR_INVALID_FLASH_ADDRESS", "the image's load address does not match the slot"),
    ("IMG_MGMT_ERR_VERSION_GET_FAILED", "could not read the running image's version"),
    ("IMG_MGMT_ERR_CURRENT_VERSION_IS_NEWER", "the running image is newer than the upload"),
    ("IMG_MGMT_ERR_IMAGE_ALREADY_PENDING", "another image is already pending"),
    ("IMG_MGMT_ERR_INVALID_IMAGE_VECTOR_TABLE", "the image's vector table is invalid"),
    ("IMG_MGMT_ERR_INVALID_IMAGE_TOO_LARGE", "the image is too large for the slot"),
    ("IMG_MGMT_ERR_INVALID_IMAGE_DATA_OVERRUN", "more data sent than the declared image length"),
    ("IMG_MGMT_ERR_IMAGE_CONFIRMATION_DENIED", "confirmation of the image was denied"),
    ("IMG_MGMT_ERR_IMAGE_SETTING_TEST_TO_ACTIVE_DENIED", "the active slot cannot be marked for test"),
    ("IMG_MGMT_ERR_ACTIVE_SLOT_NOT_KNOWN", "the active slot cannot be determined"),
];

const OS_MGMT_ERR: Table = &[
    ("OS_MGMT_ERR_OK", "no error"),
    ("OS_MGMT_ERR_UNKNOWN", "unknown OS management error"),
    ("OS_MGMT_ERR_INVALID_FORMAT", "invalid format"),
    ("OS_MGMT_ERR_QUERY_YIELDS_NO_ANSWER", "the query was not recognised"),
    ("OS_MGMT_ERR_RTC_NOT_SET", "the RTC is not set"),
    ("OS_MGMT_ERR_RTC_COMMAND_FAILED", "the RTC command failed"),
    ("OS_MGMT_ERR_QUERY_RESPONSE_VALUE_NOT_VALID", "the query has no valid answer"),
];

const ZEPHYRBASIC_MGMT_ERR: Table = &[
    ("ZEPHYRBASIC_MGMT_ERR_OK", "no error"),
    ("ZEPHYRBASIC_MGMT_ERR_UNKNOWN", "unknown error"),
    ("ZEPHYRBASIC_MGMT_ERR_FLASH_OPEN_FAILED", "opening the storage flash area failed"),
    ("ZEPHYRBASIC_MGMT_ERR_FLASH_CONFIG_QUERY_FAIL", "querying the storage flash area failed"),
    ("ZEPHYRBASIC_MGMT_ERR_FLASH_ERASE_FAILED", "erasing the storage flash area failed"),
];

const FS_MGMT_ERR: Table = &[
    ("FS_MGMT_ERR_OK", "no error"),
    ("FS_MGMT_ERR_UNKNOWN", "unknown file system error"),
    ("FS_MGMT_ERR_FILE_INVALID_NAME", "the file name is not valid"),
    ("FS_MGMT_ERR_FILE_NOT_FOUND", "no such file"),
    ("FS_MGMT_ERR_FILE_IS_DIRECTORY", "the path is a directory, not a file"),
    ("FS_MGMT_ERR_FILE_OPEN_FAILED", "opening the file failed"),
    ("FS_MGMT_ERR_FILE_SEEK_FAILED", "seeking in the file failed"),
    ("FS_MGMT_ERR_FILE_READ_FAILED", "reading the file failed"),
    ("FS_MGMT_ERR_FILE_TRUNCATE_FAILED", "truncating the file failed"),
    ("FS_MGMT_ERR_FILE_DELETE_FAILED", "deleting the file failed"),
    ("FS_MGMT_ERR_FILE_WRITE_FAILED", "writing the file failed (is the file system full?)"),
    ("FS_MGMT_ERR_FILE_OFFSET_NOT_VALID", "the offset is not the file's length on the device"),
    ("FS_MGMT_ERR_FILE_OFFSET_LARGER_THAN_FILE", "the offset is past the end of the file"),
    ("FS_MGMT_ERR_CHECKSUM_HASH_NOT_FOUND", "the device does not have this hash or checksum type"),
    ("FS_MGMT_ERR_MOUNT_POINT_NOT_FOUND", "no file system is mounted there"),
    ("FS_MGMT_ERR_READ_ONLY_FILESYSTEM", "the file system is read-only"),
    ("FS_MGMT_ERR_FILE_EMPTY", "the file is empty"),
    ("FS_MGMT_ERR_FILE_CLOSE_FAILED", "closing the file failed"),
];

const STAT_MGMT_ERR: Table = &[
    ("STAT_MGMT_ERR_OK", "no error"),
    ("STAT_MGMT_ERR_UNKNOWN", "unknown statistics error"),
    ("STAT_MGMT_ERR_INVALID_GROUP", "no such statistics group"),
    ("STAT_MGMT_ERR_INVALID_STAT_NAME", "no such statistics group or counter"),
    ("STAT_MGMT_ERR_INVALID_STAT_SIZE", "the counter's size cannot be handled"),
    ("STAT_MGMT_ERR_WALK_ABORTED", "reading the counters was aborted"),
];

const SETTINGS_MGMT_ERR: Table = &[
    ("SETTINGS_MGMT_ERR_OK", "no error"),
    ("SETTINGS_MGMT_ERR_UNKNOWN", "unknown settings error"),
    ("SETTINGS_MGMT_ERR_KEY_TOO_LONG", "the setting's name is too long"),
    ("SETTINGS_MGMT_ERR_KEY_NOT_FOUND", "no such setting"),
    ("SETTINGS_MGMT_ERR_READ_NOT_SUPPORTED", "the setting cannot be read"),
    ("SETTINGS_MGMT_ERR_ROOT_KEY_NOT_FOUND", "no settings handler for the name's root key"),
    ("SETTINGS_MGMT_ERR_WRITE_NOT_SUPPORTED", "the setting cannot be written"),
    ("SETTINGS_MGMT_ERR_DELETE_NOT_SUPPORTED", "the setting cannot be deleted"),
    ("SETTINGS_MGMT_ERR_SAVE_NOT_SUPPORTED", "the settings cannot be saved (no storage backend?)"),
];

const SHELL_MGMT_RET_RC: Table = &[
    ("SHELL_MGMT_RET_RC_OK", "no error"),
    ("SHELL_MGMT_RET_RC_UNKNOWN", "unknown shell error"),
    ("SHELL_MGMT_RET_RC_COMMAND_TOO_LONG", "the command line is too long for the device's shell"),
    ("SHELL_MGMT_RET_RC_EMPTY_COMMAND", "no command given"),
];

const ENUM_MGMT_ERR: Table = &[
    ("ENUM_MGMT_ERR_OK", "no error"),
    ("ENUM_MGMT_ERR_UNKNOWN", "unknown enumeration error"),
    ("ENUM_MGMT_ERR_TOO_MANY_GROUP_ENTRIES", "too many groups asked"),
    ("ENUM_MGMT_ERR_INSUFFICIENT_HEAP_FOR_ENTRIES", "the device has no memory for the groups asked"),
    ("ENUM_MGMT_ERR_INDEX_TOO_LARGE", "the index is past the last group"),
];

fn lookup(table: Table, rc: i64) -> Option<(&'static str, &'static str)> {
    usize::try_from(rc).ok().and_then(|i| table.get(i)).copied()
}

fn group_table(group: u16) -> Option<Table> {
    match group {
        group::OS => Some(OS_MGMT_ERR),
        group::IMAGE => Some(IMG_MGMT_ERR),
        group::ZEPHYR_BASIC => Some(ZEPHYRBASIC_MGMT_ERR),
        group::FS => Some(FS_MGMT_ERR),
        group::STAT => Some(STAT_MGMT_ERR),
        group::SETTINGS => Some(SETTINGS_MGMT_ERR),
        group::SHELL => Some(SHELL_MGMT_RET_RC),
        group::ENUM => Some(ENUM_MGMT_ERR),
        _ => None,
    }
}

/// Zephyr's name of an SMP-level (`MGMT_ERR_*`) code.
pub fn mgmt_err_name(rc: i64) -> Option<&'static str> {
    lookup(MGMT_ERR, rc).map(|(n, _)| n)
}

/// A plain description of an SMP-level code.
pub fn mgmt_err_description(rc: i64) -> Option<&'static str> {
    lookup(MGMT_ERR, rc).map(|(_, d)| d)
}

/// Zephyr's name of a group's own rc, e.g. `IMG_MGMT_ERR_IMAGE_ALREADY_PENDING` for (1, 28).
pub fn group_err_name(group: u16, rc: i64) -> Option<&'static str> {
    group_table(group).and_then(|t| lookup(t, rc)).map(|(n, _)| n)
}

/// A plain description of a group's own rc.
pub fn group_err_description(group: u16, rc: i64) -> Option<&'static str> {
    group_table(group).and_then(|t| lookup(t, rc)).map(|(_, d)| d)
}

/// A short human name of a group, used in messages ("image group rc 23").
pub fn group_name(group: u16) -> String {
    match group {
        group::OS => "OS".into(),
        group::IMAGE => "image".into(),
        group::STAT => "statistics".into(),
        group::SETTINGS => "settings".into(),
        group::LOG => "log".into(),
        group::CRASH => "crash".into(),
        group::SPLIT => "split".into(),
        group::RUN => "run".into(),
        group::FS => "file system".into(),
        group::SHELL => "shell".into(),
        group::ENUM => "enumeration".into(),
        group::ZEPHYR_BASIC => "Zephyr basic".into(),
        other => format!("group {other}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn image_codes_match_zephyr_numbering() {
        assert_eq!(group_err_name(1, 3), Some("IMG_MGMT_ERR_NO_IMAGE"));
        assert_eq!(group_err_name(1, 9), Some("IMG_MGMT_ERR_NO_FREE_SLOT"));
        assert_eq!(group_err_name(1, 20), Some("IMG_MGMT_ERR_INVALID_OFFSET"));
        assert_eq!(group_err_name(1, 23), Some("IMG_MGMT_ERR_INVALID_IMAGE_HEADER_MAGIC"));
        assert_eq!(group_err_name(1, 27), Some("IMG_MGMT_ERR_CURRENT_VERSION_IS_NEWER"));
        assert_eq!(group_err_name(1, 28), Some("IMG_MGMT_ERR_IMAGE_ALREADY_PENDING"));
        assert_eq!(group_err_name(1, 30), Some("IMG_MGMT_ERR_INVALID_IMAGE_TOO_LARGE"));
        assert_eq!(group_err_name(1, 33), Some("IMG_MGMT_ERR_IMAGE_SETTING_TEST_TO_ACTIVE_DENIED"));
        assert_eq!(group_err_name(1, 35), None);
        assert_eq!(mgmt_err_name(8), Some("MGMT_ERR_ENOTSUP"));
        assert_eq!(mgmt_err_name(13), Some("MGMT_ERR_UNSUPPORTED_TOO_NEW"));
        assert_eq!(mgmt_err_name(-1), None);
        assert_eq!(group_err_name(0, 3), Some("OS_MGMT_ERR_QUERY_YIELDS_NO_ANSWER"));
        assert_eq!(group_err_name(8, 1), Some("FS_MGMT_ERR_UNKNOWN"));
        assert_eq!(
            group_err_name(group::FS, fs::FILE_OFFSET_NOT_VALID),
            Some("FS_MGMT_ERR_FILE_OFFSET_NOT_VALID")
        );
        assert_eq!(
            group_err_name(group::FS, fs::MOUNT_POINT_NOT_FOUND),
            Some("FS_MGMT_ERR_MOUNT_POINT_NOT_FOUND")
        );
        assert_eq!(group_err_name(group::FS, fs::FILE_EMPTY), Some("FS_MGMT_ERR_FILE_EMPTY"));
        assert_eq!(
            group_err_name(group::STAT, stat::INVALID_STAT_NAME),
            Some("STAT_MGMT_ERR_INVALID_STAT_NAME")
        );
        assert_eq!(
            group_err_name(group::SETTINGS, settings::ROOT_KEY_NOT_FOUND),
            Some("SETTINGS_MGMT_ERR_ROOT_KEY_NOT_FOUND")
        );
        assert_eq!(
            group_err_name(group::SETTINGS, settings::SAVE_NOT_SUPPORTED),
            Some("SETTINGS_MGMT_ERR_SAVE_NOT_SUPPORTED")
        );
        assert_eq!(
            group_err_name(group::SHELL, shell::EMPTY_COMMAND),
            Some("SHELL_MGMT_RET_RC_EMPTY_COMMAND")
        );
        assert_eq!(
            group_err_name(group::ENUM, enumeration::INDEX_TOO_LARGE),
            Some("ENUM_MGMT_ERR_INDEX_TOO_LARGE")
        );
    }

    #[test]
    fn named_codes_match_the_tables() {
        for (rc, name) in [
            (MGMT_ERR_ENOMEM, "MGMT_ERR_ENOMEM"),
            (MGMT_ERR_EINVAL, "MGMT_ERR_EINVAL"),
            (MGMT_ERR_ENOENT, "MGMT_ERR_ENOENT"),
            (MGMT_ERR_EBADSTATE, "MGMT_ERR_EBADSTATE"),
        ] {
            assert_eq!(mgmt_err_name(rc), Some(name));
        }
        use img::*;
        for (rc, name) in [
            (NO_IMAGE, "NO_IMAGE"),
            (NO_TLVS, "NO_TLVS"),
            (HASH_NOT_FOUND, "HASH_NOT_FOUND"),
            (NO_FREE_SLOT, "NO_FREE_SLOT"),
            (FLASH_WRITE_FAILED, "FLASH_WRITE_FAILED"),
            (INVALID_SLOT, "INVALID_SLOT"),
            (NO_FREE_MEMORY, "NO_FREE_MEMORY"),
            (INVALID_PAGE_OFFSET, "INVALID_PAGE_OFFSET"),
            (INVALID_OFFSET, "INVALID_OFFSET"),
            (INVALID_LENGTH, "INVALID_LENGTH"),
            (INVALID_IMAGE_HEADER, "INVALID_IMAGE_HEADER"),
            (INVALID_IMAGE_HEADER_MAGIC, "INVALID_IMAGE_HEADER_MAGIC"),
            (INVALID_HASH, "INVALID_HASH"),
            (INVALID_FLASH_ADDRESS, "INVALID_FLASH_ADDRESS"),
            (CURRENT_VERSION_IS_NEWER, "CURRENT_VERSION_IS_NEWER"),
            (IMAGE_ALREADY_PENDING, "IMAGE_ALREADY_PENDING"),
            (INVALID_IMAGE_TOO_LARGE, "INVALID_IMAGE_TOO_LARGE"),
            (INVALID_IMAGE_DATA_OVERRUN, "INVALID_IMAGE_DATA_OVERRUN"),
            (IMAGE_CONFIRMATION_DENIED, "IMAGE_CONFIRMATION_DENIED"),
            (IMAGE_SETTING_TEST_TO_ACTIVE_DENIED, "IMAGE_SETTING_TEST_TO_ACTIVE_DENIED"),
        ] {
            assert_eq!(group_err_name(group::IMAGE, rc), Some(format!("IMG_MGMT_ERR_{name}").as_str()));
        }
        assert_eq!(group_err_name(group::OS, os::INVALID_FORMAT), Some("OS_MGMT_ERR_INVALID_FORMAT"));
        assert_eq!(
            group_err_name(group::OS, os::QUERY_YIELDS_NO_ANSWER),
            Some("OS_MGMT_ERR_QUERY_YIELDS_NO_ANSWER")
        );
    }
}
