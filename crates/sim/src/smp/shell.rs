//! Shell group handler with Zephyr's rules (`shell_mgmt.c`) over a small shell shaped like
//! `smp_svr`'s dummy backend: `help`, `kernel` (its subcommand list), `kernel version`,
//! `kernel uptime`, and the shell's answer to anything else.

use std::time::Duration;

use ciborium::Value;

use crate::smp::request::{field, Fail, Handled, Request};
use smpflash_core::rc::{group, shell as rc, MGMT_ERR_EINVAL};

/// `CONFIG_SHELL_CMD_BUFF_SIZE` (default 256).
const CMD_BUFF_SIZE: usize = 256;

/// `-ENOEXEC`, what `shell_execute_cmd` returns for a command it does not have.
const ENOEXEC: i32 = -8;

const HELP: &str = "\r\nPlease press the <Tab> button to see all available commands.\r\n\
You can also use the <Tab> button to prompt or auto-complete all commands or its subcommands.\r\n\
You can try to call commands with <-h> or <--help> parameter for more information.\r\n\r\n\
Shell supports following meta-keys:\r\n  Ctrl + (a key from: abcdefklnpuw)\r\n  Alt  + (a key from: bf)\r\n\
Please refer to shell documentation for more details.\r\n\r\n\
Available commands:\r\n  clear    : Clear screen.\r\n  device   : Device commands\r\n  devmem   : Read/write physical memory\r\n\
  help     : Prints the help message.\r\n  history  : Command history.\r\n  kernel   : Kernel commands\r\n\
  log      : Commands for controlling logger\r\n  resize   : Console gets terminal screen size or assumes default in case the readout fails.\r\n\
  retval   : Print return value of most recent command\r\n  shell    : Useful, not Unix-like shell commands.\r\n";

const KERNEL: &str = "\r\nkernel - Kernel commands\r\nSubcommands:\r\n  cycles     : Kernel cycles.\r\n\
  log_level  : <module name> <severity (0-4)>\r\n  reboot     : Reboot.\r\n  sleep      : ms\r\n\
  thread     : Kernel threads.\r\n  uptime     : Kernel uptime. Can be called with the -p or --pretty options\r\n\
  version    : Kernel version.\r\n";

/// What the shell prints and returns for `line` (words split on spaces, as Zephyr's shell does).
pub fn run_line(line: &str, uptime: Duration) -> (String, i32) {
    let words: Vec<&str> = line.split(' ').filter(|w| !w.is_empty()).collect();
    match words.as_slice() {
        ["help"] => (HELP.into(), 0),
        ["kernel"] => (KERNEL.into(), 1),
        ["kernel", "version"] => ("\r\nZephyr version 4.4.0\r\n".into(), 0),
        ["kernel", "uptime"] => (format!("\r\nUptime: {} ms\r\n", uptime.as_millis()), 0),
        [] => ("\r\n".into(), ENOEXEC),
        [cmd, ..] => (format!("\r\n\u{1b}[1;31m{cmd}: command not found\r\n\u{1b}[m"), ENOEXEC),
    }
}

/// `shell_mgmt_exec`: `argv`, a list of text strings, joined with spaces.
pub fn exec(uptime: Duration, r: &mut Request<'_>) -> Handled {
    let Some(Value::Array(argv)) = field(r.body, "argv") else {
        return Err(Fail::Smp(MGMT_ERR_EINVAL));
    };
    let mut line = String::new();
    let mut len = 0;
    for a in argv {
        // The composition stops at the first element that is not text.
        let Some(t) = a.as_text() else { break };
        if len + t.len() >= CMD_BUFF_SIZE {
            return Err(Fail::Group { group: group::SHELL, rc: rc::COMMAND_TOO_LONG, reason: None });
        }
        if !line.is_empty() {
            line.push(' ');
        }
        line.push_str(t);
        len += t.len() + 1;
    }
    if len == 0 {
        return Err(Fail::Group { group: group::SHELL, rc: rc::EMPTY_COMMAND, reason: None });
    }
    let (o, ret) = run_line(&line, uptime);
    Ok(vec![("o", Value::Text(o)), ("ret", Value::Integer(ret.into()))])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zephyr_shell_answers() {
        assert_eq!(run_line("kernel version", Duration::ZERO), ("\r\nZephyr version 4.4.0\r\n".into(), 0));
        assert_eq!(run_line("kernel", Duration::ZERO).1, 1);
        assert_eq!(run_line("", Duration::ZERO), ("\r\n".into(), -8));
        let (o, ret) = run_line("bogus cmd", Duration::ZERO);
        assert_eq!((o.as_str(), ret), ("\r\n\u{1b}[1;31mbogus: command not found\r\n\u{1b}[m", -8));
    }
}
