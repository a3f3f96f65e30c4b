//! Settings management group (3): read, write and delete a setting; commit, load and save
//! (`subsys/mgmt/mcumgr/grp/settings_mgmt/src/settings_mgmt.c`).

use serde::{Deserialize, Serialize};
use serde_bytes::ByteBuf;

use super::{Command, Empty};
use crate::frame::Op;
use crate::rc::group::SETTINGS;

/// Read a setting's value.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, Serialize)]
pub struct SettingRead {
    /// The setting's name, e.g. `app/threshold` (root key `app`).
    pub name: String,
    /// Largest value wanted; the device caps it at its `CONFIG_MCUMGR_GRP_SETTINGS_VALUE_LEN`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_size: Option<u32>,
}

/// Answer to [`SettingRead`].
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, Serialize)]
pub struct SettingReadResponse {
    /// The value's bytes.
    pub val: ByteBuf,
    /// The device's limit, sent when the request asked for more than it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_size: Option<u32>,
}

impl Command for SettingRead {
    type Response = SettingReadResponse;
    const GROUP: u16 = SETTINGS;
    const ID: u8 = 0;
    const OP: Op = Op::Read;
    const NAME: &'static str = "settings read";
}

/// Write a setting (at run time: `settings_runtime_set`; `save` persists).
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, Serialize)]
pub struct SettingWrite {
    /// The setting's name.
    pub name: String,
    /// Its new value.
    pub val: ByteBuf,
}

impl Command for SettingWrite {
    type Response = Empty;
    const GROUP: u16 = SETTINGS;
    const ID: u8 = 0;
    const OP: Op = Op::Write;
    const NAME: &'static str = "settings write";
}

/// Delete a setting from storage.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, Serialize)]
pub struct SettingDelete {
    /// The setting's name.
    pub name: String,
}

impl Command for SettingDelete {
    type Response = Empty;
    const GROUP: u16 = SETTINGS;
    const ID: u8 = 1;
    const OP: Op = Op::Write;
    const NAME: &'static str = "settings delete";
}

/// Apply the settings written so far (`settings_commit`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize)]
pub struct SettingsCommit {}

impl Command for SettingsCommit {
    type Response = Empty;
    const GROUP: u16 = SETTINGS;
    const ID: u8 = 2;
    const OP: Op = Op::Write;
    const NAME: &'static str = "settings commit";
}

/// Load the settings from storage (`settings_load`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize)]
pub struct SettingsLoad {}

impl Command for SettingsLoad {
    type Response = Empty;
    const GROUP: u16 = SETTINGS;
    const ID: u8 = 3;
    const OP: Op = Op::Read;
    const NAME: &'static str = "settings load";
}

/// Save the run-time settings to storage (`settings_save`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize)]
pub struct SettingsSave {}

impl Command for SettingsSave {
    type Response = Empty;
    const GROUP: u16 = SETTINGS;
    const ID: u8 = 3;
    const OP: Op = Op::Write;
    const NAME: &'static str = "settings save";
}
