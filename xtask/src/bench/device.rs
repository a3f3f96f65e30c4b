//! The virtual devices the clients upload to: `smpflash sim` processes for UDP and serial, and
//! the flash state the in-process BLE device starts from.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use anyhow::{bail, Context, Result};

use super::child;
use super::matrix::Flash;

/// Profile of every device the bench uploads to.
pub const PROFILE: &str = "nrf5340";

/// Slots big enough for a 1 MiB image (the nrf5340 application slot holds 956 KiB).
pub const SLOT_SIZE: u64 = 0x12_0000;

/// The bench's changes to the profile: slots for 1 MiB, and `CONFIG_IMG_ERASE_PROGRESSIVELY`,
/// which Zephyr offers for flash with long erase times (as the nRF5340's): without it the
/// device erases the whole image before answering the first chunk, and no client, however
/// good, could use the link meanwhile.
pub fn profile_overrides() -> Vec<String> {
    vec![format!("slot_size={SLOT_SIZE:#x}"), "erase_progressively=true".into()]
}

/// `profile_overrides` as repeated `flag VALUE` arguments.
pub fn override_args(flag: &str) -> Vec<String> {
    profile_overrides().into_iter().flat_map(|o| [flag.to_string(), o]).collect()
}

/// A `smpflash sim` process: UDP always, a paced pty when asked. Stopped when dropped.
pub struct SimProcess {
    child: Child,
    pub udp: String,
    pub pty: Option<String>,
}

impl SimProcess {
    pub fn start(smpflash: &Path, flash: Flash, rtt_ms: u64, baud: Option<u32>, log: &Path) -> Result<Self> {
        let mut cmd = Command::new(smpflash);
        cmd.args(["sim", "--profile", PROFILE])
            .args(override_args("--set"))
            .args(["--udp", "127.0.0.1:0"])
            .args(["--time-scale", &flash.time_scale().to_string(), "--rtt-ms", &rtt_ms.to_string()]);
        if let Some(b) = baud {
            cmd.args(["--pty", "--pty-baud", &b.to_string()]);
        }
        cmd.stdin(Stdio::null()).stdout(Stdio::piped()).stderr(std::fs::File::create(log)?);
        let mut child = cmd.spawn().with_context(|| format!("cannot start {cmd:?}"))?;
        let (tx, lines) = mpsc::channel();
        let out = child.stdout.take().expect("piped");
        // Reads to the end, so the device never blocks on a full pipe while it runs.
        std::thread::spawn(move || {
            for line in BufReader::new(out).lines().map_while(|l| l.ok()) {
                let _ = tx.send(line);
            }
        });
        let mut sim = SimProcess { child, udp: String::new(), pty: None };
        while sim.udp.is_empty() || (baud.is_some() && sim.pty.is_none()) {
            let Ok(line) = lines.recv_timeout(Duration::from_secs(15)) else {
                bail!("smpflash sim did not say where it listens (see {})", log.display());
            };
            let word = |prefix: &str| line.strip_prefix(prefix).and_then(|r| r.split_whitespace().next());
            if let Some(addr) = word("SMP over UDP: ") {
                sim.udp = addr.to_string();
            }
            if let Some(path) = word("SMP over serial: ") {
                sim.pty = Some(path.to_string());
            }
        }
        Ok(sim)
    }

    /// Uploads `image` once, unmeasured, over UDP: the slot then holds an image, so every
    /// measured upload starts with the erase a device in the field does, and no upload is
    /// left half done for the next client to resume.
    pub fn prime(&self, smpflash: &Path, image: &Path) -> Result<()> {
        let done = child::run(
            Command::new(smpflash).args(["--udp", &self.udp, "--json", "image", "upload"]).arg(image),
            Duration::from_secs(180),
        )?;
        if !done.success() {
            bail!("priming the device failed: {}", done.why());
        }
        Ok(())
    }
}

impl Drop for SimProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A state file of an in-process device whose upload slot holds `image`: BLE runs start from a
/// copy of it, so they erase like the UDP and serial runs do.
pub fn primed_state(smpflash: &Path, dir: &Path, image: &Path) -> Result<PathBuf> {
    let state = dir.join("primed.state");
    let done = child::run(
        Command::new(smpflash)
            .arg(format!("--sim={PROFILE}"))
            .args(override_args("--sim-set"))
            .args(["--sim-link", "udp", "--sim-time-scale", "0"])
            .arg("--sim-state")
            .arg(&state)
            .args(["--json", "image", "upload"])
            .arg(image),
        Duration::from_secs(180),
    )?;
    if !done.success() {
        bail!("preparing the BLE device's flash failed: {}", done.why());
    }
    Ok(state)
}
