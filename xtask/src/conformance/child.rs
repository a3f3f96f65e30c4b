//! Every process the conformance run starts is a [`ChildGuard`]: killed when the guard drops, and
//! listed so that Ctrl-C ([`kill_all_on_interrupt`]) kills whatever is still running.

use std::collections::BTreeMap;
use std::io;
use std::path::PathBuf;
use std::process::{Child, Command, ExitStatus};
use std::sync::Mutex;
use std::thread;
use std::time::{Duration, Instant};

use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;

/// Live children by pid (with what they are, for the interrupt message).
static LIVE: Mutex<BTreeMap<u32, String>> = Mutex::new(BTreeMap::new());
/// Set on Ctrl-C: no new process starts.
static INTERRUPTED: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);
/// Scratch directories to remove after an interrupt.
static SCRATCH: Mutex<Vec<PathBuf>> = Mutex::new(Vec::new());

/// A started process, SIGKILLed and reaped when dropped.
#[derive(Debug)]
pub struct ChildGuard {
    child: Child,
    status: Option<ExitStatus>,
}

impl ChildGuard {
    /// Starts `cmd`. The child gets the parent-death signal SIGKILL when `setpriv` is there, so
    /// it does not outlive a run that was itself killed.
    pub fn spawn(cmd: &mut Command, what: &str) -> io::Result<ChildGuard> {
        // Under the registry's lock, so that an interrupt kills every child that started.
        let mut live = LIVE.lock().expect("child registry");
        if INTERRUPTED.load(std::sync::atomic::Ordering::SeqCst) {
            return Err(io::Error::new(io::ErrorKind::Interrupted, "interrupted"));
        }
        let child = cmd.spawn()?;
        live.insert(child.id(), what.to_string());
        drop(live);
        Ok(ChildGuard { child, status: None })
    }

    /// The process id.
    pub fn id(&self) -> u32 {
        self.child.id()
    }

    /// The underlying child (to take its pipes).
    pub fn child_mut(&mut self) -> &mut Child {
        &mut self.child
    }

    /// Its exit status if it has exited.
    pub fn try_wait(&mut self) -> io::Result<Option<ExitStatus>> {
        if self.status.is_none() {
            self.status = self.child.try_wait()?;
            if self.status.is_some() {
                LIVE.lock().expect("child registry").remove(&self.child.id());
            }
        }
        Ok(self.status)
    }

    /// Waits at most `limit` for it to exit.
    pub fn wait_within(&mut self, limit: Duration) -> io::Result<Option<ExitStatus>> {
        let end = Instant::now() + limit;
        loop {
            if let Some(s) = self.try_wait()? {
                return Ok(Some(s));
            }
            if Instant::now() >= end {
                return Ok(None);
            }
            thread::sleep(Duration::from_millis(20));
        }
    }

    /// SIGKILLs it (unless it exited) and reaps it.
    pub fn kill(&mut self) {
        if self.status.is_none() {
            let _ = self.child.kill();
            self.status = self.child.wait().ok();
        }
        LIVE.lock().expect("child registry").remove(&self.child.id());
    }
}

impl Drop for ChildGuard {
    fn drop(&mut self) {
        self.kill();
    }
}

/// `cmd` prefixed with `setpriv --pdeathsig KILL` (util-linux) when available.
pub fn with_pdeathsig(program: &str) -> Command {
    if have_setpriv() {
        let mut c = Command::new("setpriv");
        c.args(["--pdeathsig", "KILL", "--", program]);
        c
    } else {
        Command::new(program)
    }
}

fn have_setpriv() -> bool {
    static HAVE: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *HAVE.get_or_init(|| {
        Command::new("setpriv").arg("--help").output().map(|o| o.status.success()).unwrap_or(false)
    })
}

/// Registers a scratch directory to remove after an interrupt (the launcher removes it itself
/// on the ordinary paths).
pub fn register_scratch(dir: PathBuf) {
    SCRATCH.lock().expect("scratch registry").push(dir);
}

/// Unregisters a scratch directory that was removed.
pub fn unregister_scratch(dir: &PathBuf) {
    SCRATCH.lock().expect("scratch registry").retain(|d| d != dir);
}

/// SIGKILLs every live child.
pub fn kill_all() {
    let live = LIVE.lock().expect("child registry").clone();
    for pid in live.keys() {
        let _ = kill(Pid::from_raw(*pid as i32), Signal::SIGKILL);
    }
}

/// Starts a thread that, on Ctrl-C or SIGTERM, kills every live child, removes the scratch
/// directories and exits with 130.
pub fn kill_all_on_interrupt() {
    thread::spawn(|| {
        let rt = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
            Ok(rt) => rt,
            Err(e) => {
                eprintln!("conformance: no interrupt handler ({e})");
                return;
            }
        };
        rt.block_on(async {
            let mut term = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(t) => t,
                Err(_) => {
                    let _ = tokio::signal::ctrl_c().await;
                    return;
                }
            };
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                _ = term.recv() => {}
            }
        });
        INTERRUPTED.store(true, std::sync::atomic::Ordering::SeqCst);
        let live = LIVE.lock().expect("child registry").clone();
        eprintln!("conformance: interrupted; killing {} processes", live.len());
        kill_all();
        for dir in SCRATCH.lock().expect("scratch registry").iter() {
            let _ = std::fs::remove_dir_all(dir);
        }
        std::process::exit(130);
    });
}
