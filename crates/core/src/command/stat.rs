//! Statistics group (2): the list of statistics groups and one group's counters
//! (`subsys/mgmt/mcumgr/grp/stat_mgmt/src/stat_mgmt.c`).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::Command;
use crate::frame::Op;
use crate::rc::group::STAT;

/// Read one statistics group's counters.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, Serialize)]
pub struct StatShow {
    /// The group's name (`CONFIG_STAT_MGMT_MAX_NAME_LEN` - 1 bytes at most).
    pub name: String,
}

/// Answer to [`StatShow`].
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, Serialize)]
pub struct StatShowResponse {
    /// The group's name.
    pub name: String,
    /// Counter name to value.
    #[serde(default)]
    pub fields: BTreeMap<String, u64>,
}

impl Command for StatShow {
    type Response = StatShowResponse;
    const GROUP: u16 = STAT;
    const ID: u8 = 0;
    const OP: Op = Op::Read;
    const NAME: &'static str = "stat show";
}

/// List the statistics groups.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize)]
pub struct StatList {}

/// Answer to [`StatList`].
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, Serialize)]
pub struct StatListResponse {
    /// Group names.
    #[serde(default)]
    pub stat_list: Vec<String>,
}

impl Command for StatList {
    type Response = StatListResponse;
    const GROUP: u16 = STAT;
    const ID: u8 = 1;
    const OP: Op = Op::Read;
    const NAME: &'static str = "stat list";
}
