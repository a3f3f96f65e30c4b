//! Running one client as a child process, with a deadline, and the CPU time it used.
//!
//! The CPU time comes from `wait4`, which reaps the child and returns its own resource usage
//! (user + system, all its threads, and any of its children it waited for). Unlike
//! `getrusage(RUSAGE_CHILDREN)` deltas this cannot mix in another child of the bench (the
//! virtual device processes stay alive while clients come and go), and unlike
//! `/usr/bin/time` it needs nothing installed.

use std::io::Read;
use std::process::{Child, Command, Stdio};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};

/// What a finished child left.
#[derive(Debug)]
pub struct Finished {
    /// Exit code; `None` when a signal ended it (the deadline's kill included).
    pub code: Option<i32>,
    pub stdout: String,
    pub stderr: String,
    /// User + system CPU seconds of the child.
    pub cpu_s: f64,
    pub timed_out: bool,
}

impl Finished {
    pub fn success(&self) -> bool {
        self.code == Some(0) && !self.timed_out
    }

    /// The last lines of stderr, for a one-line failure reason.
    pub fn why(&self) -> String {
        if self.timed_out {
            return "did not finish before the deadline".into();
        }
        let tail: Vec<&str> = self.stderr.lines().filter(|l| !l.trim().is_empty()).collect();
        let tail = tail[tail.len().saturating_sub(2)..].join(" / ");
        format!("exit {:?}: {}", self.code, if tail.is_empty() { "no message" } else { &tail })
    }
}

fn drain(mut from: impl Read + Send + 'static) -> JoinHandle<String> {
    thread::spawn(move || {
        let mut bytes = Vec::new();
        let _ = from.read_to_end(&mut bytes);
        String::from_utf8_lossy(&bytes).into_owned()
    })
}

/// Runs `cmd` to its end, killing it after `deadline`.
pub fn run(cmd: &mut Command, deadline: Duration) -> Result<Finished> {
    cmd.stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::piped());
    let mut child = cmd.spawn().with_context(|| format!("cannot start {cmd:?}"))?;
    let stdout = drain(child.stdout.take().expect("piped"));
    let stderr = drain(child.stderr.take().expect("piped"));
    let started = Instant::now();
    let mut timed_out = false;
    let (status, usage) = loop {
        if let Some(done) = wait4(&child, false)? {
            break done;
        }
        if !timed_out && started.elapsed() > deadline {
            timed_out = true;
            // Not reaped yet, so the pid is still this child's.
            let _ = child.kill();
            break wait4(&child, true)?.expect("a blocking wait returns the child");
        }
        // Polling costs the child nothing and keeps the deadline without a second thread.
        thread::sleep(Duration::from_millis(5));
    };
    let seconds = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
    let code = libc::WIFEXITED(status).then(|| libc::WEXITSTATUS(status));
    Ok(Finished {
        code,
        stdout: stdout.join().unwrap_or_default(),
        stderr: stderr.join().unwrap_or_default(),
        cpu_s: seconds(usage.ru_utime) + seconds(usage.ru_stime),
        timed_out,
    })
}

/// Reaps `child` if it has ended (or, with `block`, once it ends): its wait status and usage.
fn wait4(child: &Child, block: bool) -> Result<Option<(i32, libc::rusage)>> {
    let pid = child.id() as libc::pid_t;
    let mut status = 0;
    // SAFETY: rusage is plain old data for which all zeroes is a valid value.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    let flags = if block { 0 } else { libc::WNOHANG };
    // SAFETY: both pointers are to live locals of the right types; `pid` is our own unreaped
    // child, so no other process can be reaped or inspected by mistake.
    let got = unsafe { libc::wait4(pid, &mut status, flags, &mut usage) };
    match got {
        0 => Ok(None),
        p if p == pid => Ok(Some((status, usage))),
        _ => bail!("wait4({pid}) failed: {}", std::io::Error::last_os_error()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn output_exit_code_and_cpu_time_come_back() {
        let done =
            run(Command::new("sh").args(["-c", "echo out; echo err >&2; exit 3"]), Duration::from_secs(10))
                .unwrap();
        assert_eq!((done.code, done.stdout.as_str(), done.stderr.as_str()), (Some(3), "out\n", "err\n"));
        assert!(done.cpu_s >= 0.0 && !done.timed_out);
    }
}
