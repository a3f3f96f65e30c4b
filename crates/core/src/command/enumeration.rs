//! Enumeration group (10): which management groups the device has
//! (`subsys/mgmt/mcumgr/grp/enum_mgmt/src/enum_mgmt.c`).

use serde::{Deserialize, Serialize};

use super::Command;
use crate::frame::Op;
use crate::rc::group::ENUM;

/// How many groups the device has.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize)]
pub struct GroupCount {}

/// Answer to [`GroupCount`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
pub struct GroupCountResponse {
    /// Number of groups.
    pub count: u32,
}

impl Command for GroupCount {
    type Response = GroupCountResponse;
    const GROUP: u16 = ENUM;
    const ID: u8 = 0;
    const OP: Op = Op::Read;
    const NAME: &'static str = "enum count";
}

/// The device's group ids.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize)]
pub struct GroupList {}

/// Answer to [`GroupList`].
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, Serialize)]
pub struct GroupListResponse {
    /// Group ids in registration order.
    #[serde(default)]
    pub groups: Vec<u16>,
}

impl Command for GroupList {
    type Response = GroupListResponse;
    const GROUP: u16 = ENUM;
    const ID: u8 = 1;
    const OP: Op = Op::Read;
    const NAME: &'static str = "enum list";
}

/// The group at `index` in the device's list.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize)]
pub struct GroupSingle {
    /// Position in the list (0 first).
    pub index: u32,
}

/// Answer to [`GroupSingle`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
pub struct GroupSingleResponse {
    /// The group's id.
    pub group: u16,
    /// `true` on the last group.
    #[serde(default)]
    pub end: bool,
}

impl Command for GroupSingle {
    type Response = GroupSingleResponse;
    const GROUP: u16 = ENUM;
    const ID: u8 = 2;
    const OP: Op = Op::Read;
    const NAME: &'static str = "enum single";
}

/// Details of groups (all, or those listed) (`CONFIG_MCUMGR_GRP_ENUM_DETAILS`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, Serialize)]
pub struct GroupDetails {
    /// Only these groups; all when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub groups: Option<Vec<u16>>,
}

/// Answer to [`GroupDetails`].
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, Serialize)]
pub struct GroupDetailsResponse {
    /// One entry per group.
    #[serde(default)]
    pub groups: Vec<GroupDetail>,
}

/// One group's details.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, Serialize)]
pub struct GroupDetail {
    /// Group id.
    pub group: u16,
    /// Its name (`CONFIG_MCUMGR_GRP_ENUM_DETAILS_NAME`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Number of command ids (`CONFIG_MCUMGR_GRP_ENUM_DETAILS_HANDLERS`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub handlers: Option<u32>,
}

impl Command for GroupDetails {
    type Response = GroupDetailsResponse;
    const GROUP: u16 = ENUM;
    const ID: u8 = 3;
    const OP: Op = Op::Read;
    const NAME: &'static str = "enum details";
}
