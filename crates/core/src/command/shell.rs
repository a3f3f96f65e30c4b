//! Shell management group (9): run a shell command and get its output
//! (`subsys/mgmt/mcumgr/grp/shell_mgmt/src/shell_mgmt.c`).

use serde::{Deserialize, Serialize};

use super::Command;
use crate::frame::Op;
use crate::rc::group::SHELL;

/// Run a command in the device's shell (the dummy backend): `argv` is joined with spaces.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, Serialize)]
pub struct ShellExec {
    /// The command and its arguments.
    pub argv: Vec<String>,
}

/// Answer to [`ShellExec`].
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
pub struct ShellExecResponse {
    /// What the command printed.
    pub o: String,
    /// The command's return value (`shell_execute_cmd`'s: 0 success, a negative errno
    /// otherwise, e.g. -8 `ENOEXEC` for an unknown command). Older firmware
    /// (`CONFIG_MCUMGR_GRP_SHELL_LEGACY_RC_RETURN_CODE`) sends it as `rc`.
    #[serde(alias = "rc")]
    pub ret: i32,
}

impl Command for ShellExec {
    type Response = ShellExecResponse;
    const GROUP: u16 = SHELL;
    const ID: u8 = 0;
    const OP: Op = Op::Write;
    const NAME: &'static str = "shell exec";
}
