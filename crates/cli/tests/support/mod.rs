//! What the CLI's peer-tool tests share: where the repository is, and a check that the Python
//! peers are installed (a missing one fails the test with the install command; it never skips).
// Each test crate uses a different part of this module.
#![allow(dead_code)]

use std::path::PathBuf;
use std::process::Command;

/// How to get the Python peers the interop tests drive.
pub const INSTALL: &str = "install the interop tools: pip install -r tests/requirements.txt";

/// The repository root (the tests run the scripts and examples from there).
pub fn root() -> PathBuf {
    PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../.."))
}

/// Panics with [`INSTALL`] unless `python3 -c "import MODULES"` works.
pub fn require_python(modules: &str) {
    match Command::new("python3").args(["-c", &format!("import {modules}")]).output() {
        Ok(out) if out.status.success() => {}
        Ok(out) => panic!("{INSTALL}\n{}", String::from_utf8_lossy(&out.stderr)),
        Err(e) => panic!("{INSTALL} (cannot run python3: {e})"),
    }
}

/// `smpflash sim ARGS` as its own process, its output collected as it comes; stopped (as
/// SIGTERM stops it: summary printed, bus closed) by [`SimProcess::stop`] or on drop.
pub struct SimProcess {
    child: std::process::Child,
    output: std::sync::Arc<std::sync::Mutex<String>>,
    /// Where it serves SMP over UDP.
    pub udp: String,
    /// Its pty, with `--pty`.
    pub pty: Option<String>,
    /// Its private D-Bus system bus, with `--bluez`.
    pub bus: Option<String>,
}

/// The line the sim prints for its private bus.
const BUS_EXPORT: &str = "export DBUS_SYSTEM_BUS_ADDRESS=";

impl SimProcess {
    /// Starts `smpflash sim` with `args` and waits until it printed where to connect.
    pub fn start(args: &[&str]) -> SimProcess {
        use std::io::{BufRead, BufReader};
        let mut child = Command::new(env!("CARGO_BIN_EXE_smpflash"))
            .arg("sim")
            .args(args)
            .stdout(std::process::Stdio::piped())
            .spawn()
            .expect("run smpflash sim");
        let stdout = BufReader::new(child.stdout.take().expect("piped"));
        let output = std::sync::Arc::new(std::sync::Mutex::new(String::new()));
        let sink = output.clone();
        std::thread::spawn(move || {
            for line in stdout.lines().map_while(Result::ok) {
                let mut out = sink.lock().unwrap();
                out.push_str(&line);
                out.push('\n');
            }
        });
        let mut sim = SimProcess { child, output, udp: String::new(), pty: None, bus: None };
        let (want_pty, want_bus) = (args.contains(&"--pty"), args.contains(&"--bluez"));
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
        loop {
            let text = sim.output();
            for line in text.lines() {
                if let Some(rest) = line.strip_prefix("SMP over UDP: ") {
                    sim.udp = rest.split_whitespace().next().unwrap_or_default().to_string();
                }
                if let Some(rest) = line.strip_prefix("SMP over serial: ") {
                    sim.pty = rest.split_whitespace().next().map(str::to_owned);
                }
                if let Some(rest) = line.strip_prefix(BUS_EXPORT) {
                    sim.bus = Some(rest.to_string());
                }
            }
            if !sim.udp.is_empty() && (!want_pty || sim.pty.is_some()) && (!want_bus || sim.bus.is_some()) {
                return sim;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "smpflash sim never said where to connect:\n{text}"
            );
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
    }

    /// All it printed so far.
    pub fn output(&self) -> String {
        self.output.lock().unwrap().clone()
    }

    /// Stops it with SIGTERM and returns all it printed, its summary included.
    pub fn stop(mut self) -> String {
        let _ = Command::new("kill").args(["-TERM", &self.child.id().to_string()]).status();
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while self.child.try_wait().ok().flatten().is_none() && std::time::Instant::now() < deadline {
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        // The reader thread drains the pipe to its end once the process is gone.
        std::thread::sleep(std::time::Duration::from_millis(200));
        self.output()
    }
}

impl Drop for SimProcess {
    fn drop(&mut self) {
        if self.child.try_wait().ok().flatten().is_none() {
            let _ = Command::new("kill").args(["-TERM", &self.child.id().to_string()]).status();
            std::thread::sleep(std::time::Duration::from_millis(300));
            let _ = self.child.kill();
        }
        let _ = self.child.wait();
    }
}

/// The warnings the virtual device printed about a client's mistakes (`client mistake [...]`
/// lines), which smpflash's own traffic and other correct clients must never cause.
pub fn client_mistakes(sim_output: &str) -> Vec<&str> {
    sim_output.lines().filter(|l| l.starts_with("client mistake [")).collect()
}

/// Runs `cmd` with its output captured, killed after `limit`.
pub fn run_with_timeout(cmd: &mut Command, limit: std::time::Duration) -> std::process::Output {
    let mut child = cmd
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("run the command");
    let deadline = std::time::Instant::now() + limit;
    while child.try_wait().unwrap().is_none() {
        if std::time::Instant::now() > deadline {
            let _ = child.kill();
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    child.wait_with_output().unwrap()
}
