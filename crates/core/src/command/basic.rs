//! Zephyr basic group (63): erase the storage partition
//! (`subsys/mgmt/mcumgr/grp/zephyr_basic/src/basic_mgmt.c`).

use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::{Command, Empty};
use crate::frame::Op;
use crate::rc::group::ZEPHYR_BASIC;

/// Erase the `storage_partition` flash area (settings, file systems kept there are lost).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize)]
pub struct StorageErase {}

impl Command for StorageErase {
    type Response = Empty;
    const GROUP: u16 = ZEPHYR_BASIC;
    const ID: u8 = 0;
    const OP: Op = Op::Write;
    const NAME: &'static str = "storage erase";
    /// The device erases the whole partition before it answers (as an image slot erase).
    const TIMEOUT: Option<Duration> = Some(super::image::ERASE_TIMEOUT);
}
